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
import { connectClient, loadSettings, type Settings } from '../../src/platform/config';
import { startDevServer } from '../dev-server';
import { apiBench, apiBenchMoves } from './bench-api';
import { longBench } from './bench-long';
import { parkedBench } from './bench-parked';
import { transferStartOptions, type PaymentDetails } from '../../src/contract';
import { OPENING_BALANCES } from '../../src/bank/store';
import { DEFAULT_TRANSFER } from '../../src/starter';
import { CommandProcess, ScriptProcess, startWorkerProcess } from '../processes';
import { median, ROOT } from '../common';
import { installLogger, type Tuning } from '../../src/platform/worker-options';
import type { moneyTransfer } from '../../src/workflows';

const JSON_PATH = path.join(ROOT, 'test-results', 'bench.json');
// The source account's opening balance; each bench transfer moves 1.
const SOURCE_BALANCE = OPENING_BALANCES.get(DEFAULT_TRANSFER.sourceAccount)!;

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

/** A process's memory field from /proc (VmHWM: peak RSS; VmRSS: now), in MB. */
function memoryMb(field: 'VmHWM' | 'VmRSS'): (pid: number | undefined) => number | undefined {
  return (pid) => {
    try {
      const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match ? Math.round(Number(match[1]) / 1024) : undefined;
    } catch {
      return undefined;
    }
  };
}
const peakRssMb = memoryMb('VmHWM');

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
            ...transferStartOptions(),
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

// ---- --cost: what one transfer costs the server and the worker ----

/** A worker to measure: the project's production worker, or any command serving a transfer workflow. */
interface CostTarget {
  label: string;
  /** A shell command (run with exec, so its pid is the worker's); unset: lib/src/worker.js. */
  command?: string;
  workflowType: string;
  taskQueue: string;
  /** The input's key names: the project's camelCase, or the Python template's snake_case. */
  snakeCase: boolean;
  /** Start with the project's start options (TransferStatus set at start), as its own clients do. */
  projectStart: boolean;
}

interface CostResult {
  label: string;
  perSecond: number;
  failed: number;
  serverCpuMsPerTransfer?: number;
  workerCpuMsPerTransfer?: number;
  workerPeakRssMb?: number;
  firstTransferMs: number;
  sequentialP50: number;
}

function costInput(target: CostTarget, referenceId: string): unknown {
  const d: PaymentDetails = { ...DEFAULT_TRANSFER, amount: 1, referenceId };
  return target.snakeCase
    ? {
        source_account: d.sourceAccount,
        target_account: d.targetAccount,
        amount: d.amount,
        reference_id: d.referenceId,
      }
    : d;
}

/** Runs `count` transfers of the target's workflow, `concurrency` at a time; returns latencies and failures. */
async function costPhase(
  client: Client,
  target: CostTarget,
  tag: string,
  count: number,
  concurrency: number,
): Promise<{ latencies: number[]; failed: number; seconds: number }> {
  const latencies: number[] = [];
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const referenceId = `${tag}-${i}`;
        const t0 = performance.now();
        try {
          await client.workflow.execute(target.workflowType, {
            taskQueue: target.taskQueue,
            workflowId: `bench-${referenceId}`,
            args: [costInput(target, referenceId)],
            ...(target.projectStart ? transferStartOptions() : {}),
          });
        } catch {
          failed++;
        }
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies, failed, seconds: (performance.now() - started) / 1000 };
}

/**
 * One target on a fresh dev server: spawn the worker and time its first transfer from
 * spawn to result, 49 more one at a time (warm-up), `transfers` at `concurrency` with
 * the server's and worker's CPU read from /proc around them, then `sequential` one at a
 * time for the p50.
 */
async function costRun(
  target: CostTarget,
  transfers: number,
  concurrency: number,
  sequential: number,
): Promise<CostResult> {
  const server = await startDevServer();
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const serverPid = devServerPid();
  const env: Record<string, string | undefined> = {
    ...Object.fromEntries(
      Object.keys(process.env)
        .filter((k) => k.startsWith('TEMPORAL_'))
        .map((k) => [k, undefined]),
    ),
    NODE_ENV: 'production',
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: target.taskQueue,
  };
  const worker = target.command
    ? new CommandProcess('sh', ['-c', `exec ${target.command}`], env)
    : new ScriptProcess('src/worker.js', [], env);
  const tag = `${target.taskQueue}-${Date.now().toString(36)}`;
  // Aborted on the way out: a call still waiting when the connection closes would retry on it.
  const stopFirst = new AbortController();
  const firstRun = client.withAbortSignal(stopFirst.signal, () =>
    costPhase(client, target, `${tag}-first`, 1, 1),
  );
  try {
    // A worker that never serves the workflow (wrong type or queue) would hang the run.
    let timer: NodeJS.Timeout | undefined;
    const first = await Promise.race([
      firstRun,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${target.label}: no first transfer in 60 s`)), 60_000);
      }),
      worker.exited.then(({ code, signal }) => {
        throw new Error(
          `${target.label}: the worker exited (${signal ?? `code ${code}`}) before its first transfer`,
        );
      }),
    ])
      .catch((err: Error) => {
        throw new Error(`${err.message}\n${worker.stdout}${worker.stderr}`);
      })
      .finally(() => clearTimeout(timer));
    if (first.failed) throw new Error(`${target.label}: the first transfer failed\n${worker.stderr}`);
    const firstTransferMs = performance.now() - worker.started;
    await costPhase(client, target, `${tag}-warm`, 49, 1);
    const [w0, s0] = [cpuSeconds(worker.child.pid), cpuSeconds(serverPid)];
    const load = await costPhase(client, target, `${tag}-load`, transfers, concurrency);
    const [w1, s1] = [cpuSeconds(worker.child.pid), cpuSeconds(serverPid)];
    const seq = await costPhase(client, target, `${tag}-seq`, sequential, 1);
    const perTransfer = (a?: number, b?: number) =>
      a === undefined || b === undefined ? undefined : ((b - a) * 1000) / transfers;
    const result: CostResult = {
      label: target.label,
      perSecond: transfers / load.seconds,
      failed: load.failed + seq.failed,
      serverCpuMsPerTransfer: perTransfer(s0, s1),
      workerCpuMsPerTransfer: perTransfer(w0, w1),
      workerPeakRssMb: peakRssMb(worker.child.pid),
      firstTransferMs,
      sequentialP50: median(seq.latencies),
    };
    process.stderr.write(`${JSON.stringify(result)}\n`);
    return result;
  } finally {
    worker.child.kill('SIGTERM');
    await worker.exited;
    stopFirst.abort();
    await firstRun; // costPhase counts a failed transfer; it does not throw
    await client.connection.close();
    await server.teardown();
  }
}

function costReport(targets: CostTarget[], rounds: CostResult[][]): string {
  const figures: Array<[string, (r: CostResult) => number | undefined, number]> = [
    ['transfers/s at C=100', (r) => r.perSecond, 1],
    ['server CPU ms per transfer', (r) => r.serverCpuMsPerTransfer, 1],
    ['worker CPU ms per transfer', (r) => r.workerCpuMsPerTransfer, 1],
    ['worker peak RSS MB', (r) => r.workerPeakRssMb, 0],
    ['start to first transfer done, ms', (r) => r.firstTransferMs, 0],
    ['sequential p50 ms', (r) => r.sequentialP50, 1],
    ['failed', (r) => r.failed, 0],
  ];
  const med = (f: (r: CostResult) => number | undefined, t: number) => {
    const values = rounds.map((round) => f(round[t]!)).filter((v): v is number => v !== undefined);
    return values.length ? median(values) : undefined;
  };
  const others = targets.slice(1);
  const header = [`figure (median of ${rounds.length})`, ...targets.map((t) => t.label)];
  header.push(...others.map((t) => `ratio to ${t.label}`));
  const rows = [header];
  for (const [name, f, digits] of figures) {
    const row = [name, ...targets.map((_, t) => fmt(med(f, t), digits))];
    for (let t = 1; t < targets.length; t++) {
      const [a, b] = [med(f, 0), med(f, t)];
      row.push(a !== undefined && b ? (a / b).toFixed(2) : '');
    }
    rows.push(row);
  }
  const md = rows.map((r) => `| ${r.join(' | ')} |`);
  md.splice(1, 0, `|${rows[0]!.map(() => '---').join('|')}|`);
  const each = rounds
    .map((round, i) =>
      round
        .map(
          (r) =>
            `round ${i + 1} ${r.label}: ${fmt(r.perSecond, 1)}/s, server ${fmt(r.serverCpuMsPerTransfer, 1)} ms, ` +
            `worker ${fmt(r.workerCpuMsPerTransfer, 1)} ms, RSS ${fmt(r.workerPeakRssMb)} MB, ` +
            `first ${fmt(r.firstTransferMs)} ms, p50 ${fmt(r.sequentialP50, 1)} ms`,
        )
        .join('\n'),
    )
    .join('\n');
  return `${md.join('\n')}\n\n${each}`;
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
      cost: { type: 'boolean', default: false },
      'worker-cmd': { type: 'string', multiple: true, default: [] },
      'workflow-type': { type: 'string', multiple: true, default: [] },
      'worker-task-queue': { type: 'string', multiple: true, default: [] },
      input: { type: 'string', multiple: true, default: [] },
      rounds: { type: 'string', default: '1' },
      'task-queue': { type: 'string' },
      json: { type: 'boolean', default: false },
      api: { type: 'boolean', default: false },
      long: { type: 'boolean', default: false },
      parked: { type: 'string' },
      tuning: { type: 'string' },
      block: { type: 'string', default: '2000' },
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
  --json           also write the results as JSON to test-results/bench.json
  --api            POST /transfers through npm run api beside the client's own starts, at
                   --concurrency, --transfers each: throughput, p50/p99 to the early return
                   and to completion, the API process's CPU per request and peak RSS
  --long           one long run of --transfers at --concurrency without a pause, read in
                   blocks of --block (default 2000): each block's transfers/s, the worker's
                   CPU per transfer, its RSS at the block's end, its workflow tasks and
                   sticky cache misses per transfer; the transfers go back and forth
                   between the two accounts, so any --transfers works; with
                   --configured-server, on that server (a cluster: npm run cluster)
  --parked N[,N...]  transfers parked in review at once, counted at each N: the worker's
                   RSS, getStatus p50/p99 over 200 random ones, the first page of review
                   list and of GET /reviews; then 1000 retry decisions at once through
                   the API. Needs PostgreSQL (the bank). --tuning JSON: WORKER_TUNING
  --cost           per transfer: server and worker CPU (/proc), worker peak RSS, transfers/s
                   at C after 50 sequential, process start to first transfer done, and the
                   sequential p50 over --low-load; a fresh dev server for each worker
  --worker-cmd CMD with --cost: also measure this worker command (repeatable), e.g.
                   'python3 /tmp/py-template/run_worker.py'. It gets TEMPORAL_ADDRESS and
                   NODE_ENV=production, and serves --workflow-type (MoneyTransfer) on
                   --worker-task-queue (TRANSFER_MONEY_TASK_QUEUE) with --input snake
                   (source_account, ...), camel (sourceAccount, ...) or project (camel, and
                   TransferStatus set at start as this project's clients do). Each of these three
                   applies to the --worker-cmd in its position; the last one to the rest
  --rounds R       with --cost: R rounds, the workers interleaved; medians and ratios
  --task-queue Q   use task queue Q instead of a fresh bench-... one, so that workers you
                   start beside the bench's own (TEMPORAL_TASK_QUEUE=Q) share the load`);
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
  installLogger('WARN');
  if (values.parked !== undefined) {
    const checkpoints = values.parked.split(',').map(Number);
    if (checkpoints.some((n, i) => !Number.isSafeInteger(n) || n < 1 || n <= (checkpoints[i - 1] ?? 0)))
      throw new Error('--parked takes whole numbers from small to large, such as 1000,5000,10000');
    const read = { cpuSeconds, rssMb: memoryMb('VmRSS'), peakRssMb };
    console.log(await parkedBench(checkpoints, values.tuning, read));
    return;
  }
  if (values.long) {
    const block = Number(values.block);
    if (!Number.isSafeInteger(block) || block < 1 || block > transfers)
      throw new Error('--block must be a whole number from 1 to --transfers');
    const read = { cpuSeconds, rssMb: memoryMb('VmRSS'), peakRssMb };
    const configured = values['configured-server'] ? loadSettings() : undefined;
    console.log(await longBench(transfers, concurrency, block, read, devServerPid, configured));
    return;
  }
  if (transfers + lowLoad > SOURCE_BALANCE) {
    throw new Error(
      `each transfer moves 1 from ${DEFAULT_TRANSFER.sourceAccount}, which holds ${SOURCE_BALANCE}: keep --transfers plus --low-load within that`,
    );
  }

  if (values.api) {
    if (apiBenchMoves(transfers) > SOURCE_BALANCE) {
      throw new Error(
        `--api moves ${apiBenchMoves(transfers)} from ${DEFAULT_TRANSFER.sourceAccount}, which holds ${SOURCE_BALANCE}: lower --transfers`,
      );
    }
    console.log(await apiBench(transfers, concurrency, cpuSeconds, peakRssMb));
    return;
  }
  if (values.cost) {
    const rounds = Number(values.rounds);
    if (!Number.isSafeInteger(rounds) || rounds < 1) throw new Error('--rounds must be at least 1');
    if (50 + transfers + lowLoad > SOURCE_BALANCE)
      throw new Error(`--cost moves 50 + --transfers + --low-load from an account holding ${SOURCE_BALANCE}`);
    const targets: CostTarget[] = [
      {
        label: 'this project, production worker',
        workflowType: 'moneyTransfer',
        taskQueue: 'bench-cost',
        snakeCase: false,
        projectStart: true,
      },
      ...values['worker-cmd'].map((command, i) => {
        const nth = (list: string[], fallback: string) => list[i] ?? list.at(-1) ?? fallback;
        const input = nth(values.input, 'snake');
        if (!['snake', 'camel', 'project'].includes(input))
          throw new Error('--input is snake, camel or project');
        return {
          label: `--worker-cmd ${i + 1}`,
          command,
          workflowType: nth(values['workflow-type'], 'MoneyTransfer'),
          taskQueue: nth(values['worker-task-queue'], 'TRANSFER_MONEY_TASK_QUEUE'),
          snakeCase: input === 'snake',
          projectStart: input === 'project',
        };
      }),
    ];
    const results: CostResult[][] = [];
    for (let i = 0; i < rounds; i++) {
      // Alternate the order, so neither worker always runs on the machine the other left.
      const order = i % 2 ? [...targets].reverse() : targets;
      const round = new Map<CostTarget, CostResult>();
      for (const target of order) round.set(target, await costRun(target, transfers, concurrency, lowLoad));
      results.push(targets.map((t) => round.get(t)!));
    }
    for (const t of targets) if (t.command) console.log(`${t.label}: ${t.command}`);
    console.log(costReport(targets, results));
    return;
  }
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
