// WORKER_METRICS_BIND: the worker process serves the SDK's metrics and the project's
// counters for Prometheus. Known transfers, then a scrape, then exact counts.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { CommandProcess } from '../../tools/processes';
import { freePort, ROOT, runScript, startWorkerProcess, testServer, uniqueId } from '../support/helpers';

jest.setTimeout(90_000);

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus' text format: `name{a="x",b="y"} 3`. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? ([^ ]+)/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The project's counters, as `name{label} value` lines with the one label that matters. */
function projectCounters(text: string, taskQueue: string): string[] {
  return (
    parse(text)
      // The SDK labels its own metrics task_queue, and the workflow's and activity's taskQueue.
      .filter((s) => s.name.startsWith('money_transfer_') && s.labels.taskQueue === taskQueue)
      .map((s) => {
        const key = s.labels.outcome ?? s.labels.path;
        return `${s.name}${key ? `{${s.labels.outcome ? 'outcome' : 'path'}="${key}"}` : ''} ${s.value}`;
      })
      .sort()
  );
}

/** A worker process with metrics on, for transfers on its own task queue. */
async function metricsWorker(env: Record<string, string> = {}) {
  const port = await freePort();
  const taskQueue = uniqueId('queue');
  const childEnv = { TEMPORAL_ADDRESS: testServer().address, TEMPORAL_TASK_QUEUE: taskQueue };
  const { worker } = await startWorkerProcess({
    ...childEnv,
    WORKER_METRICS_BIND: `127.0.0.1:${port}`,
    ...env,
  });
  const url = `http://127.0.0.1:${port}/metrics`;
  return {
    worker,
    taskQueue,
    url,
    /** Scrapes the endpoint, keeping the text in test-results/metrics/ to read after the run. */
    scrape: async (name: string) => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      const text = await res.text();
      mkdirSync(path.join(ROOT, 'test-results', 'metrics'), { recursive: true });
      writeFileSync(path.join(ROOT, 'test-results', 'metrics', `${name}.txt`), text);
      return text;
    },
    starter: async (args: string[]) => {
      const workflowId = uniqueId('metrics');
      const run = await runScript(
        'src/starter.js',
        ['--workflow-id', workflowId, '--reference', uniqueId('ref'), ...args],
        childEnv,
      );
      return { ...run, workflowId };
    },
  };
}

let workers: CommandProcess[] = [];
afterEach(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  workers = [];
});

test('after a success and an insufficient-funds failure: completed 1, failed 1, and SDK metrics', async () => {
  const w = await metricsWorker();
  workers.push(w.worker);
  await w.worker.waitFor(`Metrics: ${w.url}`); // the worker says where to scrape
  expect((await w.starter([])).code).toBe(0);
  expect((await w.starter(['--amount', '25000'])).code).toBe(1);
  const text = await w.scrape('success-and-failure');
  expect(projectCounters(text, w.taskQueue)).toEqual([
    'money_transfer_transfers_total{outcome="completed"} 1',
    'money_transfer_transfers_total{outcome="failed"} 1',
  ]);
  // And the SDK's own metrics, from the same endpoint.
  const sdk = (name: string) =>
    parse(text).find((s) => s.name === name && s.labels.task_queue === w.taskQueue)?.value;
  expect(sdk('temporal_workflow_completed_total')).toBe(1);
  expect(sdk('temporal_workflow_failed_total')).toBe(1);
});

test('a failing deposit that is refunded, after one failed refund attempt: compensated 1, refunded 1, one retry', async () => {
  const w = await metricsWorker({ BANK_FAULTS: 'deposit:fail,refund:fail*1' });
  workers.push(w.worker);
  const run = await w.starter([]);
  expect(run.code).toBe(1);
  // It failed with the deposit's injected fault, as the workflow's own failure says.
  const connection = await Connection.connect({ address: testServer().address });
  try {
    const error = await new Client({ connection }).workflow
      .getHandle(run.workflowId)
      .result()
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toMatchObject({
      activityType: 'deposit',
      cause: { message: expect.stringMatching(/^Injected fault: deposit /) as unknown },
    });
  } finally {
    await connection.close();
  }
  const text = await w.scrape('refunded');
  expect(projectCounters(text, w.taskQueue)).toEqual([
    'money_transfer_refund_retries_total 1',
    'money_transfer_settlements_total{path="refunded"} 1',
    'money_transfer_transfers_total{outcome="compensated"} 1',
  ]);
});
