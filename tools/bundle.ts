// `npm run build` runs this after tsc: it prebuilds the workflow bundle, so a
// production worker (NODE_ENV=production) starts without running webpack, and writes
// the build id of that workflow code beside it (docs/versioning.md). With `--dev` it
// writes the development bundle that tools/run.js keeps, and the files it was made from.
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, type BundleOptions } from '@temporalio/worker';
import { TRACING_WORKFLOW_MODULES, tracingBundlePath } from '../src/platform/telemetry';
import { WORKFLOW_BUNDLE_PATH } from '../src/platform/worker-options';
import { ROOT } from './common';

/**
 * With `tracing`, the bundle includes the OpenTelemetry workflow interceptors
 * (docs/tracing.md). With `filesRead`, webpack adds to it every file it read. `limits`, for
 * test bundles only, is a module that replaces src/workflows/limits.ts.
 */
export async function buildWorkflowBundle({
  tracing = false,
  workflowsPath = require.resolve('../src/workflows'),
  filesRead,
  limits,
}: {
  tracing?: boolean;
  workflowsPath?: string;
  filesRead?: Set<string>;
  limits?: string;
} = {}): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: tracing ? TRACING_WORKFLOW_MODULES : undefined,
    logger: new DefaultLogger('WARN'),
    webpackConfigHook: (config) => ({
      ...config,
      plugins: [
        ...(config.plugins ?? []),
        ...(filesRead === undefined
          ? []
          : [
              (compiler: Compiler) =>
                compiler.hooks.afterCompile.tap('FilesRead', ({ fileDependencies }) => {
                  for (const file of fileDependencies) filesRead.add(file);
                }),
            ]),
        ...(limits === undefined
          ? []
          : [
              (compiler: Compiler) =>
                compiler.hooks.normalModuleFactory.tap('Limits', (factory) =>
                  factory.hooks.beforeResolve.tap('Limits', (resolving) => {
                    if (path.resolve(resolving.context, resolving.request) === LIMITS_MODULE)
                      resolving.request = limits;
                  }),
                ),
            ]),
      ],
    }),
  });
  return code;
}

/** The module `limits` replaces, however a workflow file imports it. */
const LIMITS_MODULE = path.join(ROOT, 'src', 'workflows', 'limits');

type Compiler = Parameters<Extract<NonNullable<WebpackPlugins>[number], (...args: never[]) => unknown>>[0];
type WebpackPlugins = NonNullable<Parameters<NonNullable<BundleOptions['webpackConfigHook']>>[0]['plugins']>;

/**
 * Writes the plain bundle to `bundlePath` (in one rename, so a reader sees the old bundle
 * or the new one, whole) and, to `filesReadPath`, the project files webpack read for it,
 * from which tools/run.js writes the bundle's stamp. node_modules is left out:
 * package-lock.json stands for it.
 */
export async function writeDevBundle(bundlePath: string, filesReadPath: string): Promise<void> {
  const filesRead = new Set<string>();
  const code = await buildWorkflowBundle({ filesRead });
  mkdirSync(path.dirname(bundlePath), { recursive: true });
  writeFileSync(`${bundlePath}.${process.pid}.tmp`, code);
  renameSync(`${bundlePath}.${process.pid}.tmp`, bundlePath);
  // Webpack also lists folders it looked in, and its generated entry point, which is not on disk.
  const inProject = [...filesRead]
    .map((file) => path.relative(ROOT, file))
    .filter((rel) => !rel.startsWith('..') && !rel.split(path.sep).includes('node_modules'))
    .filter((rel) => statSync(path.join(ROOT, rel), { throwIfNoEntry: false })?.isFile());
  writeFileSync(filesReadPath, JSON.stringify(inProject.sort()));
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
  const run =
    process.argv[2] === '--dev'
      ? writeDevBundle(process.argv[3]!, process.argv[4]!)
      : writeWorkflowBundles(WORKFLOW_BUNDLE_PATH).then((buildId) =>
          console.log(`Workflow bundle ${WORKFLOW_BUNDLE_PATH}, build id ${buildId}`),
        );
  run.catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
