// `npm run build` runs this after tsc: it prebuilds the workflow bundle, so a
// production worker (NODE_ENV=production) starts without running webpack.
import { writeFileSync } from 'node:fs';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { TRACING_WORKFLOW_MODULES, tracingBundlePath } from '../src/telemetry';
import { WORKFLOW_BUNDLE_PATH } from '../src/worker';

/** With `tracing`, the bundle includes the OpenTelemetry workflow interceptors (docs/tracing.md). */
export async function buildWorkflowBundle({ tracing = false } = {}): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../src/workflows'),
    workflowInterceptorModules: tracing ? TRACING_WORKFLOW_MODULES : undefined,
    logger: new DefaultLogger('WARN'),
  });
  return code;
}

if (require.main === module) {
  // The plain bundle, and one a worker with tracing on runs.
  Promise.all([buildWorkflowBundle(), buildWorkflowBundle({ tracing: true })]).then(
    ([plain, tracing]) => {
      writeFileSync(WORKFLOW_BUNDLE_PATH, plain);
      writeFileSync(tracingBundlePath(WORKFLOW_BUNDLE_PATH), tracing);
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
