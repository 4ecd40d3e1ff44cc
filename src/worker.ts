import { existsSync } from 'node:fs';
import path from 'node:path';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import { DefaultLogger, Runtime, Worker, NativeConnection, type LogLevel } from '@temporalio/worker';
import { createActivities } from './activities';
import { isPostgresUrl, PgStore, redactPassword } from './bank/store';
import { bankFromEnv } from './bank/from-env';
import type { BankingService } from './bank/banking-service';
import {
  connectionError,
  describeError,
  loadSettings,
  StartupError,
  webUiLink,
  type Settings,
} from './platform/config';
import { ensureNamespaceReady } from './platform/namespace-check';
import {
  metricsBindFromEnv,
  runtimeTelemetryOptions,
  shutdownTracing,
  withTracing,
} from './platform/telemetry';

const USAGE = `Usage: npm run worker

Runs workflow moneyTransfer and the bank activities until Ctrl-C or SIGTERM, which let
the bank calls in progress finish first. It takes no options: its settings come from
the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE, BANK_DB, ...),
listed in docs/configuration.md.`;

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.length === 1 && ['--help', '-h'].includes(args[0]!)) {
    console.log(USAGE);
    return 0;
  }
  if (args.length > 0) {
    console.error(`worker: it takes no arguments, got '${args.join(' ')}'. Try --help.`);
    return 2;
  }
  installLogger();
  const settings = loadSettings();
  const bank = bankFromEnv();
  const tuning = tuningFromEnv();
  const deployment = deploymentFromEnv(); // bad settings stop it before it connects
  // A database that cannot be used fails the start, not every transfer later.
  if (bank.store instanceof PgStore) {
    try {
      await bank.store.ready();
    } catch (err) {
      await bank.store.close();
      throw new StartupError((err as Error).message);
    }
  }
  const connection = await connectWorker(settings);
  try {
    const registered = await ensureNamespaceReady(connection, settings);
    if (registered) console.log(registered);
    const worker = await createWorker(connection, settings, bank, tuning, deployment);
    // The SDK shuts the worker down on the first of these signals; this says so. It stays
    // listening, so that a second Ctrl-C does not kill the process in the middle of a bank call.
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
    const running = worker.run(); // polling starts here
    console.log(
      `Worker polling ${settings.address}, namespace ${settings.namespace}, ` +
        `task queue ${settings.taskQueue}: workflow moneyTransfer; activities ${[...worker.options.activities.keys()].join(', ')}. ` +
        'Press Ctrl-C to stop.',
    );
    console.log(bankLine());
    const version = worker.options.workerDeploymentOptions?.version;
    if (version) {
      console.log(
        `Worker Deployment ${version.deploymentName}, build id ${version.buildId}: a transfer stays on the ` +
          'build it started on. New transfers come here once this version is current.',
      );
    }
    const metrics = metricsBindFromEnv();
    if (metrics) console.log(`Metrics: http://${metrics}/metrics`);
    await running;
    console.log('Worker stopped.');
    return 0;
  } finally {
    await connection.close();
    await bank.store.close();
    await shutdownTracing(); // sends the spans still buffered
  }
}

/** Where this worker's bank keeps its balances, and who shares them. */
export function bankLine(env: NodeJS.ProcessEnv = process.env): string {
  const db = env.BANK_DB;
  if (db && isPostgresUrl(db)) return `Bank: PostgreSQL ${redactPassword(db)}`;
  if (db) return `Bank: SQLite file ${db}.`;
  return (
    'Bank: in memory, starting from the seed balances. Each worker process has its own: several workers ' +
    'do not share them (BANK_DB=<file> or BANK_DB=postgres://... does).'
  );
}

/**
 * Builds a worker that runs `moneyTransfer` and the bank activities on the task queue;
 * with a `deployment` version (WORKER_BUILD_ID), as a versioned worker of that deployment.
 */
export async function createWorker(
  connection: NativeConnection,
  settings: Settings,
  bank: BankingService,
  tuning: Tuning = {},
  deployment: WorkerDeploymentVersion | undefined = deploymentFromEnv(),
): Promise<Worker> {
  return Worker.create({
    connection,
    namespace: settings.namespace,
    taskQueue: settings.taskQueue,
    ...withTracing(settings.tracing, workflowSource(settings.tracing !== undefined)),
    activities: createActivities(bank, {
      webUiLink: (workflowId, runId) => webUiLink(settings, workflowId, runId),
      webhookUrl: process.env.REVIEW_WEBHOOK_URL || undefined,
    }),
    dataConverter: settings.dataConverter,
    // On Ctrl-C or SIGTERM, a bank call in progress gets the longest attempt any activity
    // has (the refund's 20 s) to finish, rather than being cancelled at once.
    shutdownGraceTime: '20 seconds',
    // PINNED: a transfer can wait days for an operator; it finishes on the code it started on.
    ...(deployment && {
      workerDeploymentOptions: {
        useWorkerVersioning: true,
        version: deployment,
        defaultVersioningBehavior: 'PINNED',
      },
    }),
    ...tuning,
  });
}

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
export const WORKFLOW_BUNDLE_PATH = path.join(__dirname, 'workflow-bundle.js');

/**
 * In production (NODE_ENV=production) the bundle `npm run build` made, so no webpack
 * runs at start. In development, the bundle in DEV_WORKFLOW_BUNDLE: `npm run worker`'s
 * launcher (tools/run.js) sets it only after checking that the bundle was built from
 * the current workflow code. Otherwise, and with tracing on, the worker bundles
 * src/workflows itself, so edits are picked up.
 */
function workflowSource(
  tracing: boolean,
): { workflowsPath: string } | { workflowBundle: { codePath: string } } {
  if (process.env.NODE_ENV !== 'production') {
    const dev = process.env.DEV_WORKFLOW_BUNDLE;
    return dev && !tracing
      ? { workflowBundle: { codePath: dev } }
      : { workflowsPath: require.resolve('./workflows') };
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

if (require.main === module) {
  main().then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      console.error(describeError(err));
      process.exit(1);
    },
  );
}
