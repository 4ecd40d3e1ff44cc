// The money rule on a production-shaped cluster (tools/cluster/cluster.ts: four temporal-server
// processes on PostgreSQL, 4 history shards), with 3 worker processes sharing one
// PostgreSQL bank. The property generator's transfers run under random bank faults and
// latencies on both sides of the 5 s timeout, SIGKILLs of a random worker, cancels and
// duplicate submissions; while they are in flight the history process is SIGKILLed and
// restarted twice, matching once, and the frontend restarted once. The clerk closes
// accounts under transfers, and the operator resolves parked ones through the review CLI
// (`list` on SQL visibility, then `retry` or `refund-to`). The checks are the property
// test's. Size: CLUSTER_TRANSFERS (default 40; CI runs 200) and CLUSTER_KILLS (default 4);
// CLUSTER_SEED repeats a run's plan and faults.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startCluster, type Cluster, type ServiceName } from '../../tools/cluster/cluster';
import { apiLine, count, OPENING, reason, total } from '../support/property';
import { propertyRun, propertySize, writeWorkflowBundle } from '../support/property-run';

const size = propertySize('cluster', { transfers: 40, kills: 4 });
const WORKERS = 3;
// A workflow task stuck on a killed worker's sticky queue, or a shard moving between
// history processes, takes a while on a real cluster: the deadline leaves room for both.
const DEADLINE_MS = 900_000;

jest.setTimeout(DEADLINE_MS + 600_000);

let dataDir: string | undefined;
let cluster: Cluster | undefined;

afterAll(async () => {
  await cluster?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test(`cluster: ${size.transfers} transfers, ${WORKERS} workers on a PostgreSQL bank, random faults, worker SIGKILLs, history, matching and frontend restarts, PostgreSQL crashes (CLUSTER_SEED=${size.seed})`, async () => {
  const started = Date.now();
  dataDir = mkdtempSync(path.join(tmpdir(), 'money-transfer-cluster-property-'));
  cluster = await startCluster({ dataDir, historyShards: 4 });
  const { address } = cluster;
  const bundle = await writeWorkflowBundle(dataDir);
  const c = cluster;
  const killAndRestart = (service: ServiceName) => async () => {
    await c.kill(service, 'SIGKILL');
    await c.restart(service);
  };
  const { disruptions } = await propertyRun(size, {
    address,
    bankDb: await cluster.postgres.createDatabase('bank'),
    workers: WORKERS,
    workerEnv: { NODE_ENV: 'development', DEV_WORKFLOW_BUNDLE: bundle },
    killGapMs: [3000, 10000],
    infrastructure: [
      { atFraction: 0.2, name: 'history', run: killAndRestart('history') },
      // One PostgreSQL holds Temporal's persistence and the bank's ledger: both go away at once.
      { atFraction: 0.3, name: 'postgres', run: () => c.crashPostgres('immediate') },
      { atFraction: 0.4, name: 'matching', run: killAndRestart('matching') },
      { atFraction: 0.6, name: 'history', run: killAndRestart('history') },
      { atFraction: 0.7, name: 'postgres', run: () => c.crashPostgres('SIGKILL') },
      { atFraction: 0.8, name: 'frontend', run: () => c.restart('frontend') },
    ],
    deadlineMs: DEADLINE_MS,
    reviewCli: { address },
    // The line the cluster issue asks for: outcomes, then kills and restarts, then the money.
    line: ({ plans, result, report, balances }) =>
      `${result.closed.length} transfers: ${count(result.closed.map(reason))} ` +
      `(${plans.length} payments, ${result.closed.length - plans.length} duplicate submissions, ` +
      `${plans.filter((p) => p.cancelAfterMs !== undefined).length} cancels, ${result.faults} faults injected; ` +
      `${report.parked.size} parked, resolved through npm run review: retry ${report.resolved.retryRefund}, ` +
      `refund-to ${report.resolved.refundTo}, ${report.listFailures} list runs and ${report.lostAnswers} ` +
      `decisions lost to restarts); ${result.api ? `${apiLine(result.api)}; ` : ''}${result.kills} worker kills, ` +
      `${(['history', 'matching', 'frontend', 'postgres'] as const).map((s) => `${result.disruptions.get(s) ?? 0} ${s} restarts`).join(', ')}; ` +
      `money before ${total(OPENING)}, after ${total(balances)}`,
    since: started, // the cluster's start included
  });
  expect(Object.fromEntries(disruptions)).toEqual({ history: 2, matching: 1, frontend: 1, postgres: 2 });
});
