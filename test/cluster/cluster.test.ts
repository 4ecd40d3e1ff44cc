// The production-shaped cluster of `npm run cluster`: four temporal-server processes on
// PostgreSQL. A transfer runs through it with the compiled worker and starter, connected by
// TEMPORAL_ADDRESS alone, before and after the history process is SIGKILLed and restarted.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { TRANSFER_STATUS } from '../../src/contract';
import { groupAlive, SERVICES, startCluster, type Cluster } from '../../tools/cluster/cluster';
import { runScript, startWorkerProcess, uniqueId } from '../support/helpers';

jest.setTimeout(120_000);

let dataDir: string;
let cluster: Cluster | undefined;
let startMs = 0;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'money-transfer-cluster-'));
  const started = Date.now();
  cluster = await startCluster({
    dataDir,
    historyShards: 4,
    log: (line) => process.stderr.write(`cluster: ${line}\n`),
  });
  startMs = Date.now() - started;
  process.stderr.write(`cluster: cold start in ${(startMs / 1000).toFixed(1)} s at ${cluster.address}\n`);
}, 600_000);

afterAll(async () => {
  await cluster?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function running(): Cluster {
  if (!cluster) throw new Error('the cluster did not start (see beforeAll)');
  return cluster;
}

/** Runs the starter once against the cluster with a fresh reference; returns its workflow id. */
async function transferThroughStarter(): Promise<string> {
  const workflowId = uniqueId('cluster-transfer');
  const run = await runScript(
    'src/starter.js',
    ['--workflow-id', workflowId, '--reference', uniqueId('ref')],
    {
      TEMPORAL_ADDRESS: running().address,
    },
  );
  // The whole run in the comparison, so a failure shows the starter's output.
  expect(run).toMatchObject({ code: 0, stdout: expect.stringContaining('Result: Transfer complete') });
  return workflowId;
}

test('the four services are separate processes, on 4 history shards', () => {
  const pids = running().pids();
  const servicePids = SERVICES.map((name) => pids[name]);
  expect(servicePids.every((pid) => typeof pid === 'number')).toBe(true);
  expect(new Set([...servicePids, pids.postgres]).size).toBe(SERVICES.length + 1);
  expect(running().historyShards).toBe(4);
});

test('transfers complete before and after the history process is SIGKILLed and restarted; TransferStatus is queryable', async () => {
  const { worker } = await startWorkerProcess({ TEMPORAL_ADDRESS: running().address });
  const ids: string[] = [];
  try {
    ids.push(await transferThroughStarter());

    const oldHistory = running().pids().history;
    await running().kill('history', 'SIGKILL');
    expect(running().pids().history).toBeUndefined();
    await running().restart('history');
    expect(running().pids().history).not.toBe(oldHistory);

    ids.push(await transferThroughStarter());
  } finally {
    await worker.stop('SIGINT');
  }

  // SQL visibility is written by history's visibility queue after the close: poll a while.
  const connection = await Connection.connect({ address: running().address });
  try {
    const client = new Client({ connection, namespace: running().namespace });
    // A success keeps the value the starter set at start; ExecutionStatus says how it ended.
    const query = `${TRANSFER_STATUS.name} = 'started' AND ExecutionStatus = 'Completed' AND (${ids.map((id) => `WorkflowId = '${id}'`).join(' OR ')})`;
    const deadline = Date.now() + 30_000;
    let found: string[] = [];
    while (found.length < ids.length && Date.now() < deadline) {
      found = [];
      for await (const execution of client.workflow.list({ query })) found.push(execution.workflowId);
      if (found.length < ids.length) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(found.sort()).toEqual([...ids].sort());
  } finally {
    await connection.close();
  }
});

test('stop() ends every process the cluster started', async () => {
  const pids = Object.values(running().pids()).map(Number);
  expect(pids).toHaveLength(SERVICES.length + 1);
  await running().stop();
  // Each process leads its own group: PostgreSQL's backends are in the postmaster's.
  expect(pids.filter((pid) => groupAlive(pid))).toEqual([]);
  expect(running().pids()).toEqual({});
  cluster = undefined;
});
