// `npm run bench -- --long`: whether a worker's costs stay flat over a long run. A fresh dev
// server and the production worker as its own process; N transfers at concurrency C with no
// pause, read in blocks of B: each block's throughput, the worker's CPU per transfer, its
// RSS when the block ends, and from the worker's own metrics its workflow tasks and sticky
// cache misses (a task whose workflow had left the cache, and is replayed) per transfer.
// The transfers go back and forth between the tutorial's two accounts, so that neither
// runs dry however long the run.
import { Client, Connection } from '@temporalio/client';
import { transferStartOptions, type PaymentDetails } from '../../src/contract';
import { connectClient, type Settings } from '../../src/platform/config';
import { DEFAULT_TRANSFER } from '../../src/platform/starter-options';
import type { moneyTransfer } from '../../src/workflows';
import { startDevServer } from '../dev-server';
import { freePort } from '../common';
import { startWorkerProcess } from '../processes';

export interface ProcessReadings {
  cpuSeconds: (pid: number | undefined) => number | undefined;
  rssMb: (pid: number | undefined) => number | undefined;
  peakRssMb: (pid: number | undefined) => number | undefined;
}

interface Block {
  transfers: number;
  seconds: number;
  workerCpuMs?: number;
  serverCpuMs?: number;
  rssMb?: number;
  /** Deltas of the worker's counters over the block, per transfer. */
  tasks?: number;
  cacheMisses?: number;
}

/** Core's counters this bench reads, summed over their labels (undefined: no endpoint). */
const COUNTERS = {
  tasks: 'temporal_workflow_task_execution_latency_count',
  cacheMisses: 'temporal_sticky_cache_miss_total',
} as const;
type Counters = Record<keyof typeof COUNTERS, number>;

async function readCounters(metricsUrl: string): Promise<Counters | undefined> {
  try {
    const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(2000) })).text();
    const sum = (name: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
        .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    return { tasks: sum(COUNTERS.tasks), cacheMisses: sum(COUNTERS.cacheMisses) };
  } catch {
    return undefined;
  }
}

export async function longBench(
  transfers: number,
  concurrency: number,
  blockSize: number,
  read: ProcessReadings,
  serverPid: () => number | undefined,
  configured?: Settings,
): Promise<string> {
  // A server of the caller's (a cluster, say: its processes are not read), or a fresh dev server.
  const server = configured ? undefined : await startDevServer({});
  const taskQueue = `bench-long-${Date.now().toString(36)}`;
  const metrics = `127.0.0.1:${await freePort()}`;
  const { worker } = await startWorkerProcess({
    NODE_ENV: 'production',
    WORKER_METRICS_BIND: metrics,
    TEMPORAL_TASK_QUEUE: taskQueue,
    ...(server && { TEMPORAL_ADDRESS: server.address }),
  });
  const client = configured
    ? await connectClient(configured)
    : new Client({ connection: await Connection.connect({ address: server!.address }) });
  const workerPid = worker.child.pid;
  const blocks: Block[] = [];
  let failed = 0;
  try {
    let next = 0;
    let done = 0;
    const reading = async () => ({
      at: performance.now(),
      worker: read.cpuSeconds(workerPid),
      server: read.cpuSeconds(serverPid()),
      counters: await readCounters(`http://${metrics}/metrics`),
    });
    let mark = await reading();
    const endBlock = async () => {
      const now = await reading();
      const perTransfer = (after?: number, before?: number) =>
        after === undefined || before === undefined ? undefined : ((after - before) * 1000) / blockSize;
      blocks.push({
        transfers: blockSize,
        seconds: (now.at - mark.at) / 1000,
        workerCpuMs: perTransfer(now.worker, mark.worker),
        serverCpuMs: perTransfer(now.server, mark.server),
        rssMb: read.rssMb(workerPid),
        ...(now.counters &&
          mark.counters && {
            tasks: (now.counters.tasks - mark.counters.tasks) / blockSize,
            cacheMisses: (now.counters.cacheMisses - mark.counters.cacheMisses) / blockSize,
          }),
      });
      const b = blocks.at(-1)!;
      process.stderr.write(
        `long run: block ${blocks.length}: ${(b.transfers / b.seconds).toFixed(1)}/s, ` +
          `worker ${b.workerCpuMs?.toFixed(1)} ms/transfer, RSS ${b.rssMb} MB, ` +
          `${b.tasks?.toFixed(2)} workflow tasks and ${b.cacheMisses?.toFixed(3)} cache misses per transfer\n`,
      );
      mark = now;
    };
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < transfers) {
          const i = next++;
          // Back and forth, so the balances stay near where they opened; the first lanes go
          // forth only, so that the way back finds money, however the lanes interleave.
          const forth = i % 2 === 0 || i < 2 * concurrency;
          const details: PaymentDetails = {
            ...DEFAULT_TRANSFER,
            sourceAccount: forth ? DEFAULT_TRANSFER.sourceAccount : DEFAULT_TRANSFER.targetAccount,
            targetAccount: forth ? DEFAULT_TRANSFER.targetAccount : DEFAULT_TRANSFER.sourceAccount,
            amount: 1,
            referenceId: `${taskQueue}-${i}`,
          };
          try {
            await client.workflow.execute<typeof moneyTransfer>('moneyTransfer', {
              taskQueue,
              workflowId: `${taskQueue}-${i}`,
              args: [details],
              ...transferStartOptions(),
            });
          } catch {
            failed++;
          }
          if (++done % blockSize === 0) await endBlock();
        }
      }),
    );
    const peak = read.peakRssMb(workerPid);
    const where = configured ? `the Temporal server at ${configured.address}` : 'a fresh dev server';
    return report(blocks, { transfers, concurrency, failed, peak, where });
  } finally {
    await worker.stop();
    await client.connection.close();
    await server?.teardown();
  }
}

function report(
  blocks: Block[],
  run: { transfers: number; concurrency: number; failed: number; peak?: number; where: string },
): string {
  const fmt = (n: number | undefined, digits = 1) => (n === undefined ? '' : n.toFixed(digits));
  const lines = [
    `${run.transfers} transfers at C=${run.concurrency}, the production worker on ${run.where}; ${run.failed} failed`,
    '',
    '| block | transfers | transfers/s | worker CPU ms / transfer | server CPU ms / transfer | worker RSS at its end, MB | workflow tasks / transfer | cache misses / transfer |',
    '|---|---|---|---|---|---|---|---|',
    ...blocks.map(
      (b, i) =>
        `| ${i + 1} | ${b.transfers} | ${fmt(b.transfers / b.seconds)} | ${fmt(b.workerCpuMs)} | ${fmt(b.serverCpuMs)} | ${fmt(b.rssMb, 0)} | ${fmt(b.tasks, 2)} | ${fmt(b.cacheMisses, 3)} |`,
    ),
  ];
  const [second, last] = [blocks[1], blocks.at(-1)];
  if (second && last && blocks.length >= 3) {
    const ratio = (a?: number, b?: number) => (a === undefined || b === undefined ? '?' : (a / b).toFixed(2));
    const rss = blocks.slice(1).map((b) => b.rssMb ?? 0);
    lines.push(
      '',
      `last block / second block: worker CPU per transfer ${ratio(last.workerCpuMs, second.workerCpuMs)}, ` +
        `throughput ${ratio(last.transfers / last.seconds, second.transfers / second.seconds)}; ` +
        `worker RSS after the first block ${Math.min(...rss)} to ${Math.max(...rss)} MB, peak ${run.peak ?? '?'} MB`,
    );
  }
  return lines.join('\n');
}
