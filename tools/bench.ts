// `npm run bench`: how fast transfers run and what bounds them. Starts a fresh dev
// server (in-memory SQLite, the start-dev default) and the production worker as its own
// process, then runs N transfers at concurrency C and 100 sequential ones.
// `--tune` also measures each worker knob against the defaults. Linux reads CPU and
// memory from /proc; elsewhere those columns are empty.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { connectClient, loadSettings, type Settings } from '../src/config';
import { startDevServer } from './dev-server';
import type { PaymentDetails } from '../src/shared';
import { DEFAULT_TRANSFER } from '../src/starter';
import { startWorkerProcess } from './processes';
import { median } from './startup-time';
import { installLogger, type Tuning } from '../src/worker';
import type { moneyTransfer } from '../src/workflows';

const JSON_PATH = path.join(__dirname, '..', '..', 'test-results', 'bench.json');
const SEED_BALANCE = 2000; // the source account's opening balance; each bench transfer moves 1.

interface Config {
  label: string;
  tuning?: Tuning;
  /** Dev server dynamic config over DEV_SERVER_DYNAMIC_CONFIG, e.g. { 'system.enableActivityEagerExecution': 'false' }. */
  serverConfig?: Record<string, string>;
}

interface PhaseResult {
  transfers: number;
  concurrency: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
  failed: number;
  workerCpuSeconds?: number;
  serverCpuSeconds?: number;
  clientCpuSeconds: number;
}

interface RunResult {
  label: string;
  /** The dev server's CPU over the idle phase (a polling worker, no transfers), in cores. */
  idleServerCores?: number;
  workerReadyMs: number;
  workerPeakRssMb?: number;
  load: PhaseResult;
  lowLoad?: PhaseResult;
}

const TUNE: Config[] = [
  { label: 'maxConcurrentWorkflowTaskExecutions=10', tuning: { maxConcurrentWorkflowTaskExecutions: 10 } },
  { label: 'maxConcurrentWorkflowTaskExecutions=100', tuning: { maxConcurrentWorkflowTaskExecutions: 100 } },
  { label: 'maxConcurrentActivityTaskExecutions=20', tuning: { maxConcurrentActivityTaskExecutions: 20 } },
  { label: 'maxConcurrentActivityTaskExecutions=200', tuning: { maxConcurrentActivityTaskExecutions: 200 } },
  { label: 'maxCachedWorkflows=0', tuning: { maxCachedWorkflows: 0 } },
  { label: 'maxCachedWorkflows=50', tuning: { maxCachedWorkflows: 50 } },
  { label: 'eager activity execution off', serverConfig: { 'system.enableActivityEagerExecution': 'false' } },
  {
    label: 'dev server poll rates at their default (20)',
    serverConfig: { 'history.transferProcessorMaxPollRPS': '20', 'history.timerProcessorMaxPollRPS': '20' },
  },
];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** CPU seconds a process has used, from /proc (Linux only). */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return undefined;
  }
}

function peakRssMb(pid: number | undefined): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Math.round(Number(match[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/** The dev server is a child of this process, started by the SDK. */
function devServerPid(): number | undefined {
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.split(') ')[1]?.split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('start-dev')) {
        return Number(entry);
      }
    }
  } catch {
    // not Linux
  }
  return undefined;
}

/** Runs `count` transfers, `concurrency` at a time, timing each from start to result. */
async function phase(
  client: Client,
  taskQueue: string,
  count: number,
  concurrency: number,
  label: string,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  const started = performance.now();
  const clientCpu = process.cpuUsage();
  const progress = setInterval(() => report(false), process.stderr.isTTY ? 250 : 5000);
  function report(final: boolean): void {
    const rate = latencies.length / ((performance.now() - started) / 1000);
    const line = `${label}: ${latencies.length}/${count} transfers, ${rate.toFixed(0)}/s`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${final ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  }
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const details: PaymentDetails = {
          ...DEFAULT_TRANSFER,
          amount: 1,
          referenceId: `${taskQueue}-${label}-${i}`,
        };
        const t0 = performance.now();
        try {
          await client.workflow.execute<typeof moneyTransfer>('moneyTransfer', {
            taskQueue,
            workflowId: `bench-${taskQueue}-${label}-${i}`,
            args: [details],
          });
        } catch {
          failed++;
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  clearInterval(progress);
  report(true);
  const seconds = (performance.now() - started) / 1000;
  const { user, system } = process.cpuUsage(clientCpu);
  const sorted = latencies.sort((a, b) => a - b);
  return {
    transfers: count,
    concurrency,
    seconds,
    perSecond: count / seconds,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    failed,
    // This process: the client, and the SDK's threads that watch the dev server.
    clientCpuSeconds: (user + system) / 1e6,
  };
}

/** One configuration: a fresh dev server and worker, the load phase, then the low-load phase. */
/**
 * One configuration: a fresh dev server (or, with `configured`, the server TEMPORAL_*
 * names) and a fresh worker process, the load phase, then the low-load phase.
 */
async function run(
  config: Config,
  transfers: number,
  concurrency: number,
  lowLoad: number,
  configured: Settings | undefined,
  idleSeconds = 0,
  sharedTaskQueue?: string,
): Promise<RunResult> {
  const server = configured ? undefined : await startDevServer({ dynamicConfig: config.serverConfig });
  const client = configured
    ? await connectClient(configured)
    : new Client({ connection: await Connection.connect({ address: server!.address }) });
  const taskQueue = sharedTaskQueue ?? `bench-${Date.now().toString(36)}`;
  const serverPid = configured ? undefined : devServerPid();
  // The worker reads TEMPORAL_* like any process here; against our own dev server only
  // its address applies, so none of the caller's other settings leak in.
  const env: Record<string, string | undefined> = configured
    ? {}
    : Object.fromEntries(
        Object.keys(process.env)
          .filter((k) => k.startsWith('TEMPORAL_'))
          .map((k) => [k, undefined]),
      );
  const { worker, readyMs } = await startWorkerProcess({
    ...env,
    NODE_ENV: 'production',
    ...(server && { TEMPORAL_ADDRESS: server.address }),
    TEMPORAL_TASK_QUEUE: taskQueue,
    WORKER_TUNING: JSON.stringify(config.tuning ?? {}),
  });
  try {
    let idleServerCores: number | undefined;
    if (idleSeconds > 0 && serverPid !== undefined) {
      const before = cpuSeconds(serverPid);
      await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
      const after = cpuSeconds(serverPid);
      if (before !== undefined && after !== undefined) idleServerCores = (after - before) / idleSeconds;
    }
    const cpu = () => [cpuSeconds(worker.child.pid), cpuSeconds(serverPid)] as const;
    const [workerBefore, serverBefore] = cpu();
    const load = await phase(client, taskQueue, transfers, concurrency, config.label);
    const [workerAfter, serverAfter] = cpu();
    if (workerBefore !== undefined && workerAfter !== undefined)
      load.workerCpuSeconds = workerAfter - workerBefore;
    if (serverBefore !== undefined && serverAfter !== undefined)
      load.serverCpuSeconds = serverAfter - serverBefore;
    const result: RunResult = { label: config.label, workerReadyMs: readyMs, idleServerCores, load };
    if (lowLoad > 0) result.lowLoad = await phase(client, taskQueue, lowLoad, 1, 'low load');
    result.workerPeakRssMb = peakRssMb(worker.child.pid);
    return result;
  } finally {
    await worker.stop();
    await client.connection.close();
    await server?.teardown();
  }
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined ? '' : n.toFixed(digits));

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
    )
    .join('\n');
}

function report(results: RunResult[]): string {
  const base = results[0]!;
  const rows = [
    [
      'run',
      'transfers/s',
      'ratio',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'failed',
      'worker CPU',
      'server CPU',
      'client CPU',
      'ready ms',
      'peak RSS MB',
      'idle server CPU',
    ],
  ];
  const line = (label: string, p: PhaseResult, r: RunResult, ratio: string) => [
    label,
    fmt(p.perSecond, 1),
    ratio,
    fmt(p.p50),
    fmt(p.p95),
    fmt(p.p99),
    String(p.failed),
    // CPU in cores: CPU seconds over wall seconds, so 1.0 is one core busy the whole time.
    p.workerCpuSeconds === undefined ? '' : `${(p.workerCpuSeconds / p.seconds).toFixed(2)} cores`,
    p.serverCpuSeconds === undefined ? '' : `${(p.serverCpuSeconds / p.seconds).toFixed(2)} cores`,
    `${(p.clientCpuSeconds / p.seconds).toFixed(2)} cores`,
    fmt(r.workerReadyMs),
    fmt(r.workerPeakRssMb),
    r.idleServerCores === undefined ? '' : `${r.idleServerCores.toFixed(3)} cores`,
  ];
  for (const r of results) {
    rows.push(
      line(
        `${r.label} (N=${r.load.transfers}, C=${r.load.concurrency})`,
        r.load,
        r,
        (r.load.perSecond / base.load.perSecond).toFixed(2),
      ),
    );
    if (r.lowLoad) rows.push(line(`${r.label}, low load (N=${r.lowLoad.transfers}, C=1)`, r.lowLoad, r, ''));
  }
  return table(rows);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      transfers: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '100' },
      'low-load': { type: 'string', default: '100' },
      tune: { type: 'boolean', default: false },
      'poll-rates': { type: 'boolean', default: false },
      idle: { type: 'string', default: '0' },
      'configured-server': { type: 'boolean', default: false },
      'task-queue': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(`Usage: npm run bench -- [--transfers N] [--concurrency C] [--low-load N] [--tune] [--json]
  --transfers N    transfers in the load run (default 1000)
  --concurrency C  transfers in flight at once (default 100)
  --low-load N     sequential transfers for the low-load latency (default 100; 0 skips)
  --tune           also run each worker knob against the defaults, and print ratios
  --poll-rates     alternate the dev server's tuned poll rates with their defaults (20), twice
  --idle S         first measure the dev server's CPU for S seconds with only a worker polling
  --configured-server  use the server TEMPORAL_* configuration names, not a fresh dev server
  --task-queue Q   use task queue Q instead of a fresh bench-... one, so that workers you
                   start beside the bench's own (TEMPORAL_TASK_QUEUE=Q) share the load
  --json           also write the results as JSON to test-results/bench.json`);
    return;
  }
  const transfers = Number(values.transfers);
  const concurrency = Number(values.concurrency);
  const lowLoad = Number(values['low-load']);
  const idle = Number(values.idle);
  for (const [flag, n, min] of [
    ['--transfers', transfers, 1],
    ['--concurrency', concurrency, 1],
    ['--low-load', lowLoad, 0],
    ['--idle', idle, 0],
  ] as const) {
    if (!Number.isSafeInteger(n) || n < min)
      throw new Error(`${flag} must be a whole number of at least ${min}`);
  }
  if (transfers + lowLoad > SEED_BALANCE) {
    throw new Error(
      `each transfer moves 1 from ${DEFAULT_TRANSFER.sourceAccount}, which holds ${SEED_BALANCE}: keep --transfers plus --low-load within that`,
    );
  }

  installLogger('WARN');
  const configured = values['configured-server'] ? loadSettings() : undefined;
  if (!configured) {
    process.stderr.write(
      'Each run: a fresh dev server (in-memory SQLite) and the production worker as its own process.\n',
    );
  }
  if (configured)
    console.log(`Using the Temporal server at ${configured.address}, namespace ${configured.namespace}.`);
  const taskQueue = values['task-queue'];
  if (taskQueue !== undefined && (values.tune || values['poll-rates'])) {
    throw new Error('--task-queue runs one configuration: leave out --tune and --poll-rates');
  }
  const results = [
    await run({ label: 'defaults' }, transfers, concurrency, lowLoad, configured, idle, taskQueue),
  ];
  if (values['poll-rates'] && !configured) {
    // Side by side on the same machine state: the tuned server, the stock one, twice.
    const stock = TUNE.find((c) => c.label.startsWith('dev server poll rates'))!;
    results.push(await run(stock, transfers, concurrency, lowLoad, configured, idle));
    results.push(await run({ label: 'defaults, again' }, transfers, concurrency, lowLoad, configured, idle));
    results.push(await run(stock, transfers, concurrency, lowLoad, configured, idle));
  }
  if (values.tune) {
    const tuneLowLoad = Math.min(lowLoad, 30);
    // Server settings can only be varied on a dev server of our own.
    const configs = configured ? TUNE.filter((c) => !c.serverConfig) : TUNE;
    for (const config of configs)
      results.push(await run(config, transfers, concurrency, tuneLowLoad, configured));
    // The defaults again at the end: how far the machine drifted during the sweep.
    results.push(await run({ label: 'defaults, again' }, transfers, concurrency, tuneLowLoad, configured));
  }
  console.log(report(results));
  if (values.json) {
    mkdirSync(path.dirname(JSON_PATH), { recursive: true });
    writeFileSync(
      JSON_PATH,
      JSON.stringify({ cpus: cpus().length, node: process.version, results }, null, 2),
    );
    console.log(`results: ${path.relative(process.cwd(), JSON_PATH)}`);
  }
  console.log(
    `worker ready to poll: median ${fmt(median(results.map((r) => r.workerReadyMs)))} ms over ${results.length} starts`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
