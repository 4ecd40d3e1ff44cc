// `npm run worker`: runs the transfer's workflows and the bank activities on the task
// queue. The options it reads from the environment are in src/platform/worker-options.ts.
import { Worker, type NativeConnection } from '@temporalio/worker';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import { createActivities } from './activities';
import type { BankingService } from './bank/banking-service';
import { bankFromEnv, bankLine, ensureBankReady } from './bank/from-env';
import { describeError, loadSettings, webUiLink, type Settings } from './platform/config';
import { ensureNamespaceReady } from './platform/namespace-check';
import { metricsBindFromEnv, shutdownTracing, withTracing } from './platform/telemetry';
import {
  connectWorker,
  deploymentFromEnv,
  installLogger,
  sayWhenStopping,
  tuningFromEnv,
  workflowSource,
  type Tuning,
} from './platform/worker-options';
import { REFUND_ATTEMPT_TIMEOUT_MS, TRANSFER_WORKFLOW_TYPES } from './contract';

const USAGE = `Usage: npm run worker

Runs the transfer's workflows and the bank activities until Ctrl-C or SIGTERM, which let
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
  await ensureBankReady(bank); // a database that cannot be used fails the start, not every transfer
  const connection = await connectWorker(settings);
  try {
    const registered = await ensureNamespaceReady(connection, settings);
    if (registered) console.log(registered);
    const worker = await createWorker(connection, settings, bank, tuning, deployment);
    sayWhenStopping();
    const running = worker.run(); // polling starts here
    console.log(
      `Worker polling ${settings.address}, namespace ${settings.namespace}, ` +
        `task queue ${settings.taskQueue}: workflows ${TRANSFER_WORKFLOW_TYPES.join(', ')}; activities ${[...worker.options.activities.keys()].join(', ')}. ` +
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
    // has (the refund's) to finish, rather than being cancelled at once.
    shutdownGraceTime: REFUND_ATTEMPT_TIMEOUT_MS,
    // PINNED: a transfer can wait days for an operator; it finishes on the code it started on.
    ...(deployment && {
      workerDeploymentOptions: {
        useWorkerVersioning: true,
        version: deployment,
        defaultVersioningBehavior: 'PINNED',
      },
    }),
    maxCachedWorkflows: WORKFLOW_CACHE_SIZE,
    ...tuning,
  });
}

/**
 * Workflows the worker keeps in memory between their tasks. A transfer in flight wants its
 * place; a parked one wakes only for a reminder or a query, and replays its short history
 * when it is not cached. The SDK's default follows the heap limit (2,310 on this machine's
 * 4 GB heap), so a worker with thousands of transfers in review kept them all: 1,070 MB of
 * RSS at 2,500 parked (docs/benchmark.md, "Waiting at scale"). 250 is room for C=100 in
 * flight more than twice over; WORKER_TUNING='{"maxCachedWorkflows": N}' sets another.
 */
export const WORKFLOW_CACHE_SIZE = 250;

if (require.main === module) {
  main().then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      console.error(describeError(err));
      process.exit(1);
    },
  );
}
