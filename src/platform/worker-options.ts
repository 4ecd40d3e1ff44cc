// The worker's options that come from the environment and the build: its Worker
// Deployment version, its tuning, where its workflow code comes from, its logger, and its
// connection. src/worker.ts reads them here, so its main path stays on one screen.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, type LogLevel } from '@temporalio/worker';
import { connectionError, StartupError, type Settings } from './config';
import { runtimeTelemetryOptions } from './telemetry';

export const DEFAULT_DEPLOYMENT_NAME = 'money-transfer';

/**
 * The Worker Deployment Version from WORKER_BUILD_ID and WORKER_DEPLOYMENT_NAME
 * (docs/versioning.md), or undefined, for an unversioned worker, when no build id is set.
 */
export function deploymentFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerDeploymentVersion | undefined {
  const buildId = env.WORKER_BUILD_ID;
  const name = env.WORKER_DEPLOYMENT_NAME;
  if (!buildId) {
    if (name) {
      throw new StartupError(
        `WORKER_DEPLOYMENT_NAME is set to '${name}', but WORKER_BUILD_ID is not: a worker joins a ` +
          'Worker Deployment only with a build id, such as WORKER_BUILD_ID=$(cat lib/src/workflow-bundle.build-id).',
      );
    }
    return undefined;
  }
  // The server joins them as <name>.<build id>, and keeps build ids to 255 bytes.
  if (!/^[^\s]{1,255}$/.test(buildId) || buildId === '__unversioned__') {
    throw new StartupError(
      `WORKER_BUILD_ID must be 1 to 255 characters without spaces, such as the one \`npm run build\` ` +
        `writes to lib/src/workflow-bundle.build-id; got '${buildId}'`,
    );
  }
  const deploymentName = name || DEFAULT_DEPLOYMENT_NAME;
  if (!/^[^\s.:]{1,255}$/.test(deploymentName)) {
    throw new StartupError(
      `WORKER_DEPLOYMENT_NAME must be 1 to 255 characters without spaces, '.' or ':'; got '${deploymentName}'`,
    );
  }
  return { deploymentName, buildId };
}

export async function connectWorker(settings: Settings): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect(settings.connection);
  } catch (cause) {
    throw await connectionError(settings, cause);
  }
}

/** One logger for the SDK, the workflows and the activities; LOG_LEVEL sets its level. */
export function installLogger(defaultLevel: LogLevel = 'INFO'): void {
  const level = (process.env.LOG_LEVEL?.toUpperCase() || defaultLevel) as LogLevel;
  // The one Runtime.install: metrics go through it too (WORKER_METRICS_BIND).
  Runtime.install({ logger: new DefaultLogger(level), telemetryOptions: runtimeTelemetryOptions() });
}

/** Where `npm run build` writes the prebuilt workflow bundle. */
export const WORKFLOW_BUNDLE_PATH = path.join(__dirname, '..', 'workflow-bundle.js');

/**
 * In production (NODE_ENV=production) the bundle `npm run build` made, so no webpack
 * runs at start. In development, the bundle in DEV_WORKFLOW_BUNDLE: `npm run worker`'s
 * launcher (tools/run.js) sets it only after checking that the bundle was built from
 * the current workflow code. Otherwise, and with tracing on, the worker bundles
 * src/workflows itself, so edits are picked up.
 */
export function workflowSource(
  tracing: boolean,
): { workflowsPath: string } | { workflowBundle: { codePath: string } } {
  if (process.env.NODE_ENV !== 'production') {
    const dev = process.env.DEV_WORKFLOW_BUNDLE;
    return dev && !tracing
      ? { workflowBundle: { codePath: dev } }
      : { workflowsPath: require.resolve('../workflows') };
  }
  if (!existsSync(WORKFLOW_BUNDLE_PATH)) {
    throw new StartupError(
      `NODE_ENV=production needs the prebuilt ${WORKFLOW_BUNDLE_PATH}: run \`npm run build\` first.`,
    );
  }
  return { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } };
}

/** The worker options `npm run bench -- --tune` varies; WORKER_TUNING (JSON) overrides them. */
const TUNABLE = [
  'maxConcurrentWorkflowTaskExecutions',
  'maxConcurrentActivityTaskExecutions',
  'maxCachedWorkflows',
  'maxConcurrentWorkflowTaskPolls',
  'maxConcurrentActivityTaskPolls',
] as const;

export type Tuning = Partial<Record<(typeof TUNABLE)[number], number>>;

export function tuningFromEnv(env: NodeJS.ProcessEnv = process.env): Tuning {
  if (!env.WORKER_TUNING) return {};
  const expected = `WORKER_TUNING must be a JSON object such as '{"maxCachedWorkflows": 50}'`;
  let tuning: unknown;
  try {
    tuning = JSON.parse(env.WORKER_TUNING);
  } catch {
    throw new StartupError(`${expected}, got '${env.WORKER_TUNING}'`);
  }
  // JSON.parse also accepts null, numbers, strings and arrays.
  if (typeof tuning !== 'object' || tuning === null || Array.isArray(tuning)) {
    throw new StartupError(`${expected}, got '${env.WORKER_TUNING}'`);
  }
  for (const [key, value] of Object.entries(tuning)) {
    if (!(TUNABLE as readonly string[]).includes(key) || !Number.isInteger(value)) {
      throw new StartupError(`WORKER_TUNING: ${key} is not one of ${TUNABLE.join(', ')} with a whole number`);
    }
  }
  return tuning;
}

/**
 * The SDK shuts the worker down on the first SIGINT or SIGTERM; this says so. It stays
 * listening, so that a second Ctrl-C does not kill the process in the middle of a bank call.
 */
export function sayWhenStopping(): void {
  let signalled = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      console.log(
        signalled
          ? `${signal} received: still finishing the tasks in progress (SIGKILL stops at once).`
          : `${signal} received: finishing the tasks in progress, then stopping.`,
      );
      signalled = true;
    });
  }
}
