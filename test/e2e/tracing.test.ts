// Tracing: one transfer makes one trace, from the client's start through the workflow to
// each activity. The project's own wiring (connectClient, createWorker, withTracing)
// with an in-memory exporter in place of OTLP.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { BANK_HOSTNAME, BankingService } from '../../src/bank/banking-service';
import { connectClient, loadSettings } from '../../src/platform/config';
import { shutdownTracing, startTracing, tracingBundlePath, withTracing } from '../../src/platform/telemetry';
import { createWorker } from '../../src/worker';
import { buildWorkflowBundle } from '../../tools/bundle';
import { ROOT, testServer, transferDetails, uniqueId } from '../support/helpers';

jest.setTimeout(120_000);

const exporter = new InMemorySpanExporter();
let dir: string;

beforeAll(() => {
  // Registered before anything else, so the project's calls to startTracing reuse it.
  startTracing(new SimpleSpanProcessor(exporter));
  dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-tracing-'));
});
afterAll(async () => {
  await shutdownTracing();
  rmSync(dir, { recursive: true, force: true });
});

/** Settings as the starter and worker read them, with tracing on. */
function settings(taskQueue: string) {
  return loadSettings({
    TEMPORAL_ADDRESS: testServer().address,
    TEMPORAL_TASK_QUEUE: taskQueue,
    OTEL_TRACES_EXPORTER: 'console', // any exporter turns tracing on; the in-memory one is registered
  });
}

/** Runs one transfer and returns the spans of its trace, once all of them have arrived. */
async function traceOf(makeWorker: (connection: NativeConnection, taskQueue: string) => Promise<Worker>) {
  const taskQueue = uniqueId('queue');
  const s = settings(taskQueue);
  const client = await connectClient(s);
  const connection = await NativeConnection.connect(s.connection);
  try {
    const worker = await makeWorker(connection, taskQueue);
    const workflowId = uniqueId('traced');
    const result = await worker.runUntil(
      client.workflow.execute('moneyTransfer', { taskQueue, workflowId, args: [transferDetails()] }),
    );
    expect(result).toMatch(/^Transfer complete/);
    // Workflow spans leave the sandbox through a sink after their activation: wait for them.
    const start = () =>
      exporter
        .getFinishedSpans()
        .find(
          (s) => s.name === 'StartWorkflow:moneyTransfer' && s.attributes.temporalWorkflowId === workflowId,
        );
    for (let i = 0; i < 100 && !start(); i++) await new Promise((r) => setTimeout(r, 50));
    const traceId = start()!.spanContext().traceId;
    const inTrace = () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    for (let i = 0; i < 100 && inTrace().length < 6; i++) await new Promise((r) => setTimeout(r, 50));
    return inTrace();
  } finally {
    await client.connection.close();
    await connection.close();
  }
}

/** Each span as `name <- parent name`, with the ids checked to exist in the same trace. */
function tree(spans: ReadableSpan[]): string[] {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  return spans
    .map((s) => {
      if (!s.parentSpanId) return `${s.name} (root)`;
      const parent = byId.get(s.parentSpanId);
      return `${s.name} <- ${parent ? parent.name : `missing ${s.parentSpanId}`}`;
    })
    .sort();
}

const EXPECTED = [
  'RunActivity:deposit <- StartActivity:deposit',
  'RunActivity:withdraw <- StartActivity:withdraw',
  'RunWorkflow:moneyTransfer <- StartWorkflow:moneyTransfer',
  'StartActivity:deposit <- RunWorkflow:moneyTransfer',
  'StartActivity:withdraw <- RunWorkflow:moneyTransfer',
  'StartWorkflow:moneyTransfer (root)',
];

test('the worker as `npm run worker` builds it (bundling src/workflows with the interceptors): one trace, client to activities', async () => {
  const spans = await traceOf((connection, taskQueue) =>
    createWorker(connection, settings(taskQueue), new BankingService(BANK_HOSTNAME)),
  );
  expect(tree(spans)).toEqual(EXPECTED);
  // The trace as ids, to read after the run: test-results/tracing/trace.txt.
  mkdirSync(path.join(ROOT, 'test-results', 'tracing'), { recursive: true });
  writeFileSync(
    path.join(ROOT, 'test-results', 'tracing', 'trace.txt'),
    spans
      .map(
        (s) =>
          `${s.spanContext().traceId} ${s.spanContext().spanId} <- ${s.parentSpanId ?? '(root)'} ${s.name}\n`,
      )
      .join(''),
  );
});

test('the prebuilt tracing bundle `npm run build` writes gives the same trace', async () => {
  // The same call tools/bundle.ts makes, into the file name the production worker looks for.
  const plainPath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(tracingBundlePath(plainPath), await buildWorkflowBundle({ tracing: true }));
  const spans = await traceOf((connection, taskQueue) =>
    Worker.create({
      connection,
      taskQueue,
      activities: createActivities(new BankingService('bank')),
      ...withTracing('console', { workflowBundle: { codePath: plainPath } }),
    }),
  );
  expect(tree(spans)).toEqual(EXPECTED);
});

test('without the tracing bundle, a production worker with tracing on refuses to start, saying why', () => {
  expect(() =>
    withTracing('console', { workflowBundle: { codePath: path.join(dir, 'nothing.js') } }),
  ).toThrow(
    `Tracing needs the prebuilt ${path.join(dir, 'nothing-tracing.js')}: run \`npm run build\` first.`,
  );
});
