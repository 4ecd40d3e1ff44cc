// The money rule on a production-shaped cluster (tools/cluster.ts: four temporal-server
// processes on PostgreSQL, 4 history shards), with 3 worker processes sharing one
// PostgreSQL bank. The property generator's transfers run under random bank faults and
// latencies on both sides of the 5 s timeout, SIGKILLs of a random worker, cancels and
// duplicate submissions; while they are in flight the history process is SIGKILLed and
// restarted twice, matching once, and the frontend restarted once. The clerk closes
// accounts under transfers, and the operator resolves parked ones through the review CLI
// (`list` on SQL visibility, then `retry` or `refund-to`). The checks are the property
// test's. Size: CLUSTER_TRANSFERS (default 40; CI runs 200) and CLUSTER_KILLS (default 4);
// CLUSTER_SEED repeats a run's plan and faults.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { prng } from '../../src/bank-faults';
import { startCluster, type Cluster, type ServiceName } from '../../tools/cluster';
import { uniqueId } from '../helpers';
import {
  checkTheRun,
  count,
  createBank,
  OPENING,
  randomPlans,
  readBank,
  reason,
  reviewDesk,
  runScenario,
  total,
} from '../support/property';

const CLUSTER_TRANSFERS = Number(process.env.CLUSTER_TRANSFERS ?? 40);
const CLUSTER_KILLS = Number(process.env.CLUSTER_KILLS ?? 4);
const seed = Number(process.env.CLUSTER_SEED ?? Date.now() % 1_000_000);
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

test(`cluster: ${CLUSTER_TRANSFERS} transfers, ${WORKERS} workers on a PostgreSQL bank, random faults, worker SIGKILLs, history, matching and frontend restarts (CLUSTER_SEED=${seed})`, async () => {
  const started = Date.now();
  dataDir = mkdtempSync(path.join(tmpdir(), 'money-transfer-cluster-property-'));
  cluster = await startCluster({ dataDir, historyShards: 4 });
  const { address } = cluster;
  const bankDb = await cluster.postgres.createDatabase('bank');
  await createBank(bankDb);

  const random = prng(`cluster ${seed}`);
  const taskQueue = uniqueId('cluster');
  const plans = randomPlans(random, CLUSTER_TRANSFERS, `c${seed}`);
  const desk = reviewDesk({
    bankDb,
    plans,
    taskQueue,
    random: prng(`cluster ${seed} desk ${random()}`),
    parksWanted: Math.max(2, Math.round(CLUSTER_TRANSFERS / 40)),
    reviewCli: { address },
  });
  // The workers load a bundle built here from src: the cluster project starts no dev
  // server, whose setup would have refreshed lib's production bundle.
  const bundle = path.join(dataDir, 'workflow-bundle.js');
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../src/workflows'),
    logger: new DefaultLogger('WARN'),
  });
  writeFileSync(bundle, code);
  const c = cluster;
  const killAndRestart = (service: ServiceName) => async () => {
    await c.kill(service, 'SIGKILL');
    await c.restart(service);
  };
  const result = await runScenario({
    plans,
    address,
    bankDb,
    taskQueue,
    workers: WORKERS,
    workerEnv: { BANK_FAULTS: `random:${seed}`, NODE_ENV: 'development', DEV_WORKFLOW_BUNDLE: bundle },
    kills: CLUSTER_KILLS,
    killGapMs: [3000, 10000],
    infrastructure: [
      { atFraction: 0.2, name: 'history', run: killAndRestart('history') },
      { atFraction: 0.4, name: 'matching', run: killAndRestart('matching') },
      { atFraction: 0.6, name: 'history', run: killAndRestart('history') },
      { atFraction: 0.8, name: 'frontend', run: () => c.restart('frontend') },
    ],
    random,
    deadlineMs: DEADLINE_MS,
    alongside: desk.alongside,
  });
  const bank = await readBank(bankDb);
  const { report } = desk;
  const { closed, disruptions } = result;
  console.log(
    `cluster: seed ${seed}; ${closed.length} transfers: ${count(closed.map(reason))} ` +
      `(${plans.length} payments, ${closed.length - plans.length} duplicate submissions, ` +
      `${plans.filter((p) => p.cancelAfterMs !== undefined).length} cancels, ${result.faults} faults injected; ` +
      `${report.parked.size} parked, resolved through npm run review: retry ${report.resolved.retryRefund}, refund-to ${report.resolved.refundTo}, ` +
      `${report.listFailures} list runs and ${report.lostAnswers} decisions lost to restarts); ` +
      `${result.kills} worker kills, ${disruptions.get('history') ?? 0} history restarts, ` +
      `${disruptions.get('matching') ?? 0} matching restarts, ${disruptions.get('frontend') ?? 0} frontend restarts; ` +
      `money before ${total(OPENING)}, after ${total(bank.balances)}; ${Math.round((Date.now() - started) / 1000)} s`,
  );
  expect(Object.fromEntries(disruptions)).toEqual({ history: 2, matching: 1, frontend: 1 });
  // At 40 transfers and up, transfers must park and both kinds of decision end a review.
  checkTheRun(result, report, bank, { kills: CLUSTER_KILLS, mustPark: CLUSTER_TRANSFERS >= 40 });
});
