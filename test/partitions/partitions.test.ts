// The money rule across hosts. Each part runs on a test host of its own (a network
// namespace with its own address, test/support/hosts.ts): Temporal's PostgreSQL, the
// frontend, two history hosts sharing the shards, matching, Temporal's worker service, the
// bank's PostgreSQL and three worker hosts; this process is the driver. While the property
// generator's transfers are in flight, hosts are cut off (their link taken down, then
// brought back), both databases crash and restart, a history host dies and comes back, and
// workers are SIGKILLed. The checks are the property test's, and once the network has
// healed every transfer shows its stage. Needs root; docs/cluster.md draws the hosts. Size:
// PARTITIONS_TRANSFERS (default 40; CI runs 200), PARTITIONS_KILLS (default 3);
// PARTITIONS_SEED repeats a run's plan, faults and cuts.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prng } from '../../src/bank/faults';
import { startCluster, type Cluster } from '../../tools/cluster/cluster';
import { startPostgres, type Postgres } from '../../tools/cluster/postgres';
import { createHosts, type Host, type Hosts, type Net } from '../support/hosts';
import { count, OPENING, reason, total, type Disruption } from '../support/property';
import { propertyRun, propertySize, writeWorkflowBundle } from '../support/property-run';

const size = propertySize('partitions', { transfers: 40, kills: 3 });
const WORKERS = 3;
const DEADLINE_MS = 900_000;

jest.setTimeout(DEADLINE_MS + 900_000);

let dataDir: string | undefined;
let hosts: Hosts | undefined;
let cluster: Cluster | undefined;
let bankPostgres: Postgres | undefined;

afterAll(async () => {
  try {
    await cluster?.stop();
    await bankPostgres?.stop();
  } finally {
    hosts?.remove();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test(`partitions: ${size.transfers} transfers on ${WORKERS} worker hosts, a cluster of 6 hosts and a bank database host; partitions, database restarts, history host kills, worker SIGKILLs (PARTITIONS_SEED=${size.seed})`, async () => {
  const started = Date.now();
  dataDir = mkdtempSync(path.join(tmpdir(), 'money-transfer-partitions-'));
  chmodSync(dataDir, 0o711); // PostgreSQL runs as its own account, and enters it
  const workerHosts = Array.from({ length: WORKERS }, (_, i) => `worker-${i + 1}`);
  const h = (hosts = createHosts({
    'temporal-db': ['cluster'],
    frontend: ['cluster'],
    'history-1': ['cluster'],
    'history-2': ['cluster'],
    matching: ['cluster'],
    'worker-service': ['cluster'],
    'bank-db': ['bank'],
    ...Object.fromEntries(workerHosts.map((name) => [name, ['cluster', 'bank'] as Net[]])),
  }));
  const at = (name: string) => ({ address: h.get(name).address(), netns: h.get(name).netns });
  const c = (cluster = await startCluster({
    dataDir: path.join(dataDir, 'cluster'),
    historyShards: 4,
    hosts: {
      postgres: { ...at('temporal-db'), clients: [h.subnet('cluster')] },
      frontend: at('frontend'),
      matching: at('matching'),
      worker: at('worker-service'),
      history: [at('history-1'), at('history-2')],
    },
  }));
  let bank = (bankPostgres = await startPostgres({
    dataDir: path.join(dataDir, 'bank'),
    host: { ...at('bank-db'), clients: [h.subnet('bank')] },
  }));
  const bankDb = await bank.createDatabase('bank');
  // Nothing of the run may reach this machine's loopback: every address is a test host's.
  for (const address of [c.address, bankDb])
    expect(address).toMatch(
      new RegExp(`(${h.get('frontend').address()}|${h.get('bank-db').address('bank')}):`),
    );

  const bundle = await writeWorkflowBundle(dataDir);
  const random = prng(`partitions ${size.seed} hosts`);
  const pickWorker = () => h.get(workerHosts[Math.floor(random() * WORKERS)]!);
  // A cut lasts longer than the 5 s activity attempt, so the server times out what the
  // host was doing while its bank call may still post.
  const partition =
    (kind: string, host: () => Host, net: Net | undefined, ms: number): Disruption['run'] =>
    async () => {
      const cut = host();
      cut.cut(net);
      await sleep(ms);
      cut.heal(net);
      partitions.set(kind, (partitions.get(kind) ?? 0) + 1);
    };
  const partitions = new Map<string, number>();
  const restartBank = (how: 'immediate' | 'SIGKILL') => async () => {
    await bank.crash(how);
    bank = bankPostgres = await bank.restart();
  };
  const killHistoryHost = async () => {
    // The whole host goes: its process dies and its link with it. It comes back on the same address.
    const host = h.get('history-2');
    host.cut();
    await c.kill('history-2', 'SIGKILL');
    await sleep(5000);
    host.heal();
    await c.restart('history-2');
  };
  const infrastructure: Disruption[] = [
    { atFraction: 0.1, name: 'partition', run: partition('worker-frontend', pickWorker, 'cluster', 15_000) },
    { atFraction: 0.15, name: 'bank-db', run: restartBank('immediate') },
    {
      atFraction: 0.2,
      name: 'partition',
      run: partition('history', () => h.get('history-1'), undefined, 25_000),
    },
    { atFraction: 0.3, name: 'temporal-db', run: () => c.crashPostgres('immediate') },
    { atFraction: 0.35, name: 'partition', run: partition('worker-bank', pickWorker, 'bank', 12_000) },
    { atFraction: 0.45, name: 'history-host', run: killHistoryHost },
    {
      atFraction: 0.55,
      name: 'partition',
      run: partition('bank-db', () => h.get('bank-db'), undefined, 15_000),
    },
    { atFraction: 0.6, name: 'bank-db', run: restartBank('SIGKILL') },
    { atFraction: 0.7, name: 'temporal-db', run: () => c.crashPostgres('SIGKILL') },
    { atFraction: 0.8, name: 'partition', run: partition('worker-frontend', pickWorker, 'cluster', 15_000) },
    { atFraction: 0.85, name: 'partition', run: partition('worker-bank', pickWorker, 'bank', 12_000) },
  ];

  const { disruptions, closed } = await propertyRun(size, {
    address: c.address,
    bankDb,
    workers: WORKERS,
    workerNetns: (slot) => h.get(workerHosts[slot]!).netns,
    workerEnv: { NODE_ENV: 'development', DEV_WORKFLOW_BUNDLE: bundle },
    killGapMs: [5000, 15000],
    infrastructure,
    deadlineMs: DEADLINE_MS,
    reviewCli: { address: c.address },
    line: ({ result, balances }) => {
      const byKind = [...partitions].map(([kind, n]) => `${n} ${kind}`).join(', ');
      const n = (name: string) => result.disruptions.get(name) ?? 0;
      return (
        `${result.closed.length} transfers: ${count(result.closed.map(reason))}; ${result.kills} worker kills, ` +
        `${n('partition')} partitions (${byKind}), ${n('bank-db')} bank database restarts, ` +
        `${n('temporal-db')} Temporal database restarts, ${n('history-host')} history host kills; ` +
        `money before ${total(OPENING)}, after ${total(balances)}`
      );
    },
    since: started,
  });
  expect(Object.fromEntries(disruptions)).toEqual({
    partition: 6,
    'bank-db': 2,
    'temporal-db': 2,
    'history-host': 1,
  });
  // Every link is back, and every transfer, closed or waiting for review, shows its stage.
  expect(h.all().flatMap((host) => (['cluster', 'bank'] as const).filter((net) => isCut(host, net)))).toEqual(
    [],
  );
  expect(closed.filter((t) => t.stage.startsWith('unknown')).map((t) => t.workflowId)).toEqual([]);
});

function isCut(host: Host, net: Net): boolean {
  try {
    return !host.linked(net);
  } catch {
    return false; // not on that net
  }
}
