// The tutorial's recovery drills, automated: a worker killed mid-deposit, no worker at
// all, and a dev server restarted under a running transfer.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { startDevServer } from '../../tools/dev-server';
import { moneyTransfer } from '../../src/workflows';
import {
  activityRuns,
  freePort,
  startWorkerProcess,
  testServer,
  TestTemporal,
  testWorker,
  transferDetails,
  uniqueId,
} from '../support/helpers';

jest.setTimeout(60_000);

let temporal: TestTemporal;
beforeAll(async () => {
  temporal = await TestTemporal.connect();
});
afterAll(async () => {
  await temporal.close();
});

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function pendingActivities(handle: WorkflowHandle) {
  return (await handle.describe()).raw.pendingActivities ?? [];
}

test('worker crash: SIGKILL during the deposit, a new worker finishes the transfer', async () => {
  const taskQueue = uniqueId('crash');
  const env = { TEMPORAL_ADDRESS: testServer().address, TEMPORAL_TASK_QUEUE: taskQueue };
  // Slow bank calls leave time to kill the worker while the deposit runs.
  const { worker: first } = await startWorkerProcess({ ...env, BANK_DELAY_MS: '2000' });
  const handle = await temporal.client.workflow.start(moneyTransfer, {
    taskQueue,
    workflowId: uniqueId('crash'),
    args: [transferDetails()],
  });

  await waitUntil('the deposit is running', async () =>
    (await pendingActivities(handle)).some((a) => a.activityType?.name === 'deposit' && a.lastStartedTime),
  );
  first.child.kill('SIGKILL');
  expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

  const { worker: second } = await startWorkerProcess(env);
  try {
    await expect(handle.result()).resolves.toMatch(/^Transfer complete \(transaction IDs: W-\w+, D-\w+\)$/);
  } finally {
    await second.stop();
  }

  expect(await activityRuns(handle)).toEqual([
    { name: 'withdraw', attempts: 1, outcome: 'completed' },
    { name: 'deposit', attempts: 2, outcome: 'completed' },
  ]);
  // The second attempt started because the dead worker's attempt missed its heartbeat.
  const history = await handle.fetchHistory();
  const depositStarted = history.events!.filter((e) => e.activityTaskStartedEventAttributes).at(-1)!;
  const lastFailure = depositStarted.activityTaskStartedEventAttributes!.lastFailure;
  expect(lastFailure?.timeoutFailureInfo?.timeoutType).toBe(4 /* TIMEOUT_TYPE_HEARTBEAT */);
});

test('no worker: the transfer waits as Running, then completes once a worker starts', async () => {
  const taskQueue = uniqueId('idle');
  const handle = await temporal.client.workflow.start(moneyTransfer, {
    taskQueue,
    workflowId: uniqueId('idle'),
    args: [transferDetails()],
  });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const description = await handle.describe();
  expect(description.status.name).toBe('RUNNING');
  expect(description.raw.pendingWorkflowTask).toBeTruthy(); // nobody has picked it up

  const worker = await testWorker(temporal.workerConnection, taskQueue);
  await expect(worker.runUntil(handle.result())).resolves.toMatch(/^Transfer complete/);
});

test('server restart: a transfer started before the restart completes after it', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-restart-'));
  const serverOptions = {
    ip: '127.0.0.1',
    port: await freePort(),
    dbFilename: path.join(dir, 'temporal.sqlite'),
  };
  const taskQueue = uniqueId('restart');
  try {
    let server = await startDevServer(serverOptions);
    let connection = await Connection.connect({ address: server.address });
    const { workflowId } = await new Client({ connection }).workflow.start(moneyTransfer, {
      taskQueue,
      workflowId: uniqueId('restart'),
      args: [transferDetails()],
    });
    await connection.close();
    await server.teardown();

    server = await startDevServer(serverOptions);
    try {
      connection = await Connection.connect({ address: server.address });
      const handle = new Client({ connection }).workflow.getHandle<typeof moneyTransfer>(workflowId);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      const workerConnection = await NativeConnection.connect({ address: server.address });
      try {
        const worker = await testWorker(workerConnection, taskQueue);
        await expect(worker.runUntil(handle.result())).resolves.toMatch(/^Transfer complete/);
      } finally {
        await workerConnection.close();
        await connection.close();
      }
    } finally {
      await server.teardown();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
