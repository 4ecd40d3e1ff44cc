import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import {
  Client,
  Connection,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { LogEntry } from '@temporalio/worker';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { nanoid } from 'nanoid';
import { createActivities } from '../../src/activities';
import type { BankStore } from '../../src/bank/store';
import { BankingService } from '../../src/bank/banking-service';
import { transferStartOptions, type PaymentDetails, type ReviewPolicy } from '../../src/contract';
import { DEFAULT_TRANSFER } from '../../src/starter';
import { freePort, ROOT } from '../../tools/common';
import { compiled } from '../../tools/processes';
import type { moneyTransfer } from '../../src/workflows';

type Activities = ReturnType<typeof createActivities>;

/** Every log line the SDK, workflows and activities emit during this test file. */
export const logs: LogEntry[] = [];
Runtime.install({
  logger: new DefaultLogger('INFO', (entry) => {
    logs.push(entry);
    if (process.env.LOG_LEVEL && entry.level !== 'TRACE' && entry.level !== 'DEBUG') {
      console.log(`[${entry.level}] ${entry.message}`, entry.meta ?? '');
    }
  }),
});

export { TEST_NAMESPACE } from '../setup/global-setup';

/** node:sqlite, behind the SQLite bank store, exists from Node 22.5. */
export const HAS_NODE_SQLITE = process.getBuiltinModule?.('node:sqlite') !== undefined;

/**
 * `fastBundlePath`: the workflow built with test/support/fast-limits.ts, whose review policy
 * may remind every 10 ms and whose waiting runs continue as new after 120 events.
 */
export function testServer(): { address: string; bundlePath: string; fastBundlePath: string } {
  const address = process.env.MONEY_TRANSFER_TEST_ADDRESS;
  const bundlePath = process.env.MONEY_TRANSFER_TEST_BUNDLE;
  const fastBundlePath = process.env.MONEY_TRANSFER_TEST_FAST_BUNDLE;
  if (!address || !bundlePath || !fastBundlePath) {
    throw new Error(
      'No Temporal test server: run the tests with `npm test`, whose jest global setup starts one.',
    );
  }
  return { address, bundlePath, fastBundlePath };
}

/** Histories in test/fixtures/histories recorded on the fast bundle's limits: only such a bundle replays them all. */
export const TEST_LIMITS_HISTORIES = [
  'review-continue-as-new-run-1.json',
  'review-continue-as-new-run-2.json',
];

/** The references a store voided, in order. */
export async function voidedReferences(store: BankStore): Promise<string[]> {
  return (await store.voided()).map((record) => record.reference);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function uniqueId(prefix: string): string {
  return `${prefix}-${nanoid(10)}`;
}

/** The tutorial's transfer with a reference of its own, so the bank treats it as new. */
export function transferDetails(overrides: Partial<PaymentDetails> = {}): PaymentDetails {
  return { ...DEFAULT_TRANSFER, referenceId: uniqueId('ref'), ...overrides };
}

/** A worker with the shared test bundle, on `taskQueue`; by default with a fresh bank at its opening balances. */
export function testWorker(
  connection: NativeConnection,
  taskQueue: string,
  activities: Activities = createActivities(new BankingService('bank-api.example.com')),
  bundle: 'plain' | 'fast' = 'plain',
): Promise<Worker> {
  const { bundlePath, fastBundlePath } = testServer();
  return Worker.create({
    connection,
    taskQueue,
    workflowBundle: { codePath: bundle === 'fast' ? fastBundlePath : bundlePath },
    activities,
  });
}

/** A client and a worker connection to the shared test server; call `close()` in afterAll. */
export class TestTemporal {
  private constructor(
    readonly client: Client,
    readonly workerConnection: NativeConnection,
  ) {}

  static async connect(): Promise<TestTemporal> {
    const { address } = testServer();
    const connection = await Connection.connect({ address });
    const workerConnection = await NativeConnection.connect({ address });
    return new TestTemporal(new Client({ connection }), workerConnection);
  }

  /** Runs `fn` while a worker with these activities polls a task queue (a fresh one by default). */
  async withWorker<T>(
    activities: Activities,
    fn: (taskQueue: string) => Promise<T>,
    taskQueue = uniqueId('queue'),
    bundle: 'plain' | 'fast' = 'plain',
  ): Promise<T> {
    const worker = await testWorker(this.workerConnection, taskQueue, activities, bundle);
    return worker.runUntil(fn(taskQueue));
  }

  /**
   * Starts a transfer of fresh details on a worker with these activities (on the fast test
   * bundle with `bundle: 'fast'`), and runs `fn` while the worker serves it.
   */
  async withTransfer<T>(
    activities: Activities,
    fn: (
      handle: WorkflowHandleWithFirstExecutionRunId<typeof moneyTransfer>,
      details: PaymentDetails,
    ) => Promise<T>,
    {
      policy = {},
      startOptions = transferStartOptions(),
      bundle = 'plain',
      prefix = 'review',
    }: TransferOptions = {},
  ): Promise<T> {
    const details = transferDetails();
    return this.withWorker(
      activities,
      async (taskQueue) => {
        const handle = await this.client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
          taskQueue,
          workflowId: uniqueId(prefix),
          args: [details, policy],
          ...startOptions,
        });
        return fn(handle, details);
      },
      undefined,
      bundle,
    );
  }

  /** Starts a transfer; `details` may be anything, to test bad input. */
  start(taskQueue: string, ...args: unknown[]): Promise<WorkflowHandle<typeof moneyTransfer>> {
    return this.client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
      taskQueue,
      workflowId: uniqueId('transfer'),
      args: args as [PaymentDetails],
      ...transferStartOptions(),
    });
  }

  /** Runs one transfer with the given activities, and returns the handle and the settled result. */
  async transfer(
    activities: Activities,
    details: PaymentDetails,
  ): Promise<{ handle: WorkflowHandle<typeof moneyTransfer>; result: Promise<string> }> {
    return this.withWorker(activities, async (taskQueue) => {
      const handle = await this.start(taskQueue, details);
      const result = handle.result();
      await Promise.allSettled([result]);
      return { handle, result };
    });
  }

  async close(): Promise<void> {
    await this.client.connection.close();
    await this.workerConnection.close();
  }
}

export interface TransferOptions {
  policy?: ReviewPolicy;
  startOptions?: object;
  bundle?: 'plain' | 'fast';
  /** The workflow id's prefix. */
  prefix?: string;
}

/** Connects before the test file's tests and closes after them; use the getter inside tests. */
export function useTestTemporal(): () => TestTemporal {
  let temporal: TestTemporal | undefined;
  beforeAll(async () => {
    temporal = await TestTemporal.connect();
  });
  afterAll(async () => {
    await temporal?.close();
  });
  return () => {
    if (!temporal) throw new Error('useTestTemporal(): the connection opens in beforeAll');
    return temporal;
  };
}

export interface ActivityRun {
  /** The attempt number of the last try, as recorded by ActivityTaskStarted. */
  attempts: number;
  outcome: 'completed' | 'failed' | 'timedOut' | 'running';
}

/** Each activity the workflow scheduled, in order, read from the workflow history. */
export async function activityRuns(handle: WorkflowHandle): Promise<Array<{ name: string } & ActivityRun>> {
  const history = await handle.fetchHistory();
  const runs = new Map<number, { name: string } & ActivityRun>();
  for (const event of history.events ?? []) {
    const id = Number(event.eventId);
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled)
      runs.set(id, { name: scheduled.activityType?.name ?? '?', attempts: 0, outcome: 'running' });
    const started = event.activityTaskStartedEventAttributes;
    if (started) runs.get(Number(started.scheduledEventId))!.attempts = started.attempt ?? 0;
    const completed = event.activityTaskCompletedEventAttributes;
    if (completed) runs.get(Number(completed.scheduledEventId))!.outcome = 'completed';
    const failed = event.activityTaskFailedEventAttributes;
    if (failed) runs.get(Number(failed.scheduledEventId))!.outcome = 'failed';
    const timedOut = event.activityTaskTimedOutEventAttributes;
    if (timedOut) runs.get(Number(timedOut.scheduledEventId))!.outcome = 'timedOut';
  }
  return [...runs.values()];
}

export { freePort, ROOT } from '../../tools/common';
export { ScriptProcess, startWorkerProcess } from '../../tools/processes';

/** Runs a compiled script (src/starter.js, ...) to the end. LOG_LEVEL is WARN unless env says otherwise. */
export function runScript(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const file = compiled(script);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [file, ...args],
      { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'WARN', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (err.code as number) : 0, stdout, stderr }),
    );
  });
}

/** A localhost port P where P + 1000 (a dev server's Web UI) is free too. */
export async function freeDevServerPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 1000 > 65535) continue;
    const probe = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false));
      probe.listen(port + 1000, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((resolve) => probe.close(resolve));
      return port;
    }
  }
}

/**
 * The operators' Updates a transfer accepted, in order, read from its history, as
 * `name by operator`, with `: note` when the Update carried one and `withNotes` is set.
 */
export async function acceptedDecisions(handle: WorkflowHandle, withNotes = false): Promise<string[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? []).flatMap((e) => {
    const request = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
    const payload = request?.input?.args?.payloads?.[0];
    if (!request || !payload) return [];
    const arg = defaultPayloadConverter.fromPayload<{ operator?: string; note?: string }>(payload);
    const note = withNotes && arg.note ? `: ${arg.note}` : '';
    return [`${request.input!.name} by ${arg.operator}${note}`];
  });
}
