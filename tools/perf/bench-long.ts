// `npm run bench -- --long`: whether a worker's costs stay flat over a long run. A fresh dev
// server and the production worker as its own process; N transfers at concurrency C with no
// pause, read in blocks of B: each block's throughput, the worker's CPU per transfer, and its
// RSS when the block ends. The transfers go back and forth between the tutorial's two
// accounts, so that neither runs dry however long the run.
import { Client, Connection } from '@temporalio/client';
import { transferStartOptions, type PaymentDetails } from '../../src/contract';
import { DEFAULT_TRANSFER } from '../../src/platform/starter-options';
import type { moneyTransfer } from '../../src/workflows';
import { startDevServer } from '../dev-server';
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
}

export async function longBench(
  transfers: number,
  concurrency: number,
  blockSize: number,
  read: ProcessReadings,
  serverPid: () => number | undefined,
): Promise<string> {
  const server = await startDevServer({});
  const taskQueue = `bench-long-${Date.now().toString(36)}`;
  const { worker } = await startWorkerProcess({
    NODE_ENV: 'production',
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: taskQueue,
  });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const workerPid = worker.child.pid;
  const blocks: Block[] = [];
  let failed = 0;
  try {
    let next = 0;
    let done = 0;
    let mark = {
      at: performance.now(),
      worker: read.cpuSeconds(workerPid),
      server: read.cpuSeconds(serverPid()),
    };
    const endBlock = () => {
      const now = {
        at: performance.now(),
        worker: read.cpuSeconds(workerPid),
        server: read.cpuSeconds(serverPid()),
      };
      const perTransfer = (after?: number, before?: number) =>
        after === undefined || before === undefined ? undefined : ((after - before) * 1000) / blockSize;
      blocks.push({
        transfers: blockSize,
        seconds: (now.at - mark.at) / 1000,
        workerCpuMs: perTransfer(now.worker, mark.worker),
        serverCpuMs: perTransfer(now.server, mark.server),
        rssMb: read.rssMb(workerPid),
      });
      const b = blocks.at(-1)!;
      process.stderr.write(
        `long run: block ${blocks.length}: ${(b.transfers / b.seconds).toFixed(1)}/s, ` +
          `worker ${b.workerCpuMs?.toFixed(1)} ms/transfer, RSS ${b.rssMb} MB\n`,
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
          if (++done % blockSize === 0) endBlock();
        }
      }),
    );
    const peak = read.peakRssMb(workerPid);
    return report(blocks, { transfers, concurrency, failed, peak });
  } finally {
    await worker.stop();
    await client.connection.close();
    await server.teardown();
  }
}

function report(
  blocks: Block[],
  run: { transfers: number; concurrency: number; failed: number; peak?: number },
): string {
  const fmt = (n: number | undefined, digits = 1) => (n === undefined ? '' : n.toFixed(digits));
  const lines = [
    `${run.transfers} transfers at C=${run.concurrency}, the production worker on a fresh dev server; ${run.failed} failed`,
    '',
    '| block | transfers | transfers/s | worker CPU ms / transfer | server CPU ms / transfer | worker RSS at its end, MB |',
    '|---|---|---|---|---|---|',
    ...blocks.map(
      (b, i) =>
        `| ${i + 1} | ${b.transfers} | ${fmt(b.transfers / b.seconds)} | ${fmt(b.workerCpuMs)} | ${fmt(b.serverCpuMs)} | ${fmt(b.rssMb, 0)} |`,
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
