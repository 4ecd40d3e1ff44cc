// `npm run build` runs this after tsc: it prebuilds the workflow bundle, so a
// production worker (NODE_ENV=production) starts without running webpack, and writes
// the build id of that workflow code beside it (docs/versioning.md).
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { TRACING_WORKFLOW_MODULES, tracingBundlePath } from '../src/telemetry';
import { WORKFLOW_BUNDLE_PATH } from '../src/worker';

/** With `tracing`, the bundle includes the OpenTelemetry workflow interceptors (docs/tracing.md). */
export async function buildWorkflowBundle({
  tracing = false,
  workflowsPath = require.resolve('../src/workflows'),
} = {}): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: tracing ? TRACING_WORKFLOW_MODULES : undefined,
    logger: new DefaultLogger('WARN'),
  });
  return code;
}

/**
 * A build id for the workflow code in a plain bundle: the same code gives the same id,
 * so rebuilding unchanged code does not start a new Worker Deployment Version. The
 * bundle holds no paths or times, only the code and the SDK's.
 */
export function buildIdOf(bundle: string): string {
  return createHash('sha256').update(bundle).digest('hex').slice(0, 12);
}

/** Where the build id of the bundle at `bundlePath` goes: lib/src/workflow-bundle.build-id. */
export function buildIdPath(bundlePath: string): string {
  return bundlePath.replace(/\.js$/, '.build-id');
}

/**
 * Writes the plain bundle of `workflowsPath` to `bundlePath`, its build id beside it, and
 * with `tracing` the bundle a worker with tracing on runs. Returns the build id.
 */
export async function writeWorkflowBundles(
  bundlePath: string,
  { workflowsPath = require.resolve('../src/workflows'), tracing = true } = {},
): Promise<string> {
  const [plain, traced] = await Promise.all([
    buildWorkflowBundle({ workflowsPath }),
    tracing ? buildWorkflowBundle({ workflowsPath, tracing }) : undefined,
  ]);
  // The tracing interceptors add no commands to history, so both share the plain id.
  const buildId = buildIdOf(plain);
  writeFileSync(bundlePath, plain);
  if (traced !== undefined) writeFileSync(tracingBundlePath(bundlePath), traced);
  writeFileSync(buildIdPath(bundlePath), `${buildId}\n`);
  return buildId;
}

if (require.main === module) {
  writeWorkflowBundles(WORKFLOW_BUNDLE_PATH).then(
    (buildId) => console.log(`Workflow bundle ${WORKFLOW_BUNDLE_PATH}, build id ${buildId}`),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
