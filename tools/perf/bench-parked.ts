// `npm run bench -- --parked N`: many transfers waiting for review at once. A fresh dev
// server, one production worker on a PostgreSQL bank of its own (the in-memory bank's 2000
// would run dry), and `npm run api`. Every deposit and every refund is refused, so each
// transfer parks in needs-review. At each checkpoint: the worker's RSS,
// getStatus over 200 random parked transfers (most of them out of the worker's cache),
// the first page of `npm run review -- list` and of GET /reviews. At the end the bank takes
// refunds again (the worker restarted without that fault, its cache empty) and 1000 retry
// decisions go at once through the API; each refund posts and its transfer ends.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { getStatus, NEEDS_REVIEW_QUERY, transferStartOptions } from '../../src/contract';
import { PgStore } from '../../src/bank/store';
import { DEFAULT_TRANSFER } from '../../src/platform/starter-options';
import type { moneyTransfer } from '../../src/workflows';
import { startPostgres } from '../cluster/postgres';
import { freePort } from '../common';
import { startDevServer } from '../dev-server';
import { ScriptProcess, startWorkerProcess } from '../processes';
import { startTokenIssuer } from '../token-issuer';
import type { ProcessReadings } from './bench-long';

const SAMPLE = 200;
const DECISIONS = 1000;

interface Checkpoint {
  parked: number;
  secondsToPark: number;
  rssMb?: number;
  statusP50: number;
  statusP99: number;
  listMs: number;
  reviewsMs: number;
}

export async function parkedBench(
  checkpoints: number[],
  tuning: string | undefined,
  read: ProcessReadings,
): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-bench-parked-'));
  chmodSync(dir, 0o711); // PostgreSQL may run as its own account, and enters it
  const postgres = await startPostgres({ dataDir: dir });
  const server = await startDevServer({});
  const issuer = await startTokenIssuer('bench-issuer', 'bench');
  const cleanup: Array<() => Promise<unknown>> = [];
  try {
    const bankDb = await postgres.createDatabase('bank');
    const total = checkpoints.at(-1)!;
    // Each parked transfer keeps 1 withdrawn until its refund: open the source with enough.
    const seed = new PgStore(
      bankDb,
      new Map([
        [DEFAULT_TRANSFER.sourceAccount, total],
        [DEFAULT_TRANSFER.targetAccount, 0],
      ]),
    );
    await seed.ready();
    await seed.close();
    const taskQueue = `bench-parked-${Date.now().toString(36)}`;
    const common = {
      NODE_ENV: 'production',
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: taskQueue,
    };
    const startWorker = async (faults: string) => {
      const { worker } = await startWorkerProcess({
        ...common,
        BANK_DB: bankDb,
        BANK_FAULTS: faults,
        ...(tuning ? { WORKER_TUNING: tuning } : {}),
      });
      cleanup.push(() => worker.stop());
      return worker;
    };
    const worker = await startWorker('deposit:reject,refund:reject');
    const apiPort = await freePort();
    const api = new ScriptProcess('src/api.js', [], { ...common, API_PORT: String(apiPort), ...issuer.env });
    cleanup.push(() => api.stop());
    await api.waitFor('API listening on ', 60_000);
    const reviewer = await issuer.sign({
      subject: 'bench-reviewer',
      roles: ['reviewer'],
      scope: '',
      expiresIn: '4h',
    });
    const base = `http://127.0.0.1:${apiPort}`;
    const client = new Client({ connection: await Connection.connect({ address: server.address }) });
    cleanup.push(() => client.connection.close());

    const ids: string[] = [];
    const results: Checkpoint[] = [];
    const started = performance.now();
    for (const target of checkpoints) {
      // Start up to the checkpoint, 50 at a time, then wait until all of them are parked.
      const from = ids.length;
      let next = from;
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (next < target) {
            const i = next++;
            const id = `${taskQueue}-${i}`;
            await client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
              taskQueue,
              workflowId: id,
              args: [{ ...DEFAULT_TRANSFER, amount: 1, referenceId: id }],
              ...transferStartOptions(),
            });
            ids.push(id);
          }
        }),
      );
      for (;;) {
        const { count } = await client.workflowService.countWorkflowExecutions({
          namespace: client.options.namespace,
          query: NEEDS_REVIEW_QUERY,
        });
        const parked = Number(count ?? 0);
        process.stderr.write(`parked: ${parked}/${target}\n`);
        if (parked >= target) break;
        await new Promise((resolve) => setTimeout(resolve, 5000));
      }
      const secondsToPark = (performance.now() - started) / 1000;
      await new Promise((resolve) => setTimeout(resolve, 5000)); // the worker settles
      const rssMb = read.rssMb(worker.child.pid);
      const sample = Array.from({ length: SAMPLE }, () => ids[Math.floor(Math.random() * ids.length)]!);
      const times: number[] = [];
      for (const id of sample) {
        const t0 = performance.now();
        const status = await client.workflow.getHandle<typeof moneyTransfer>(id).query(getStatus);
        times.push(performance.now() - t0);
        if (status.stage !== 'needs-review') throw new Error(`${id} is in ${status.stage}, not needs-review`);
      }
      times.sort((a, b) => a - b);
      const t1 = performance.now();
      const list = new ScriptProcess('src/review-cli.js', ['list'], common);
      const listed = await list.exited;
      const listMs = performance.now() - t1;
      if (listed.code !== 0 || !list.stdout.includes('More: npm run review -- list'))
        throw new Error(`review list failed (${listed.code}): ${list.stderr.slice(-500)}`);
      const t2 = performance.now();
      const page = await fetch(`${base}/reviews`, { headers: { authorization: `Bearer ${reviewer}` } });
      const body = (await page.json()) as { reviews?: unknown[]; total?: number };
      const reviewsMs = performance.now() - t2;
      if (page.status !== 200 || body.reviews?.length !== 50)
        throw new Error(`GET /reviews answered ${page.status}: ${JSON.stringify(body).slice(0, 300)}`);
      results.push({
        parked: target,
        secondsToPark,
        rssMb,
        statusP50: times[Math.floor(SAMPLE / 2)]!,
        statusP99: times[Math.floor(SAMPLE * 0.99)]!,
        listMs,
        reviewsMs,
      });
      process.stderr.write(`checkpoint ${JSON.stringify(results.at(-1))}\n`);
    }

    const peakMb = read.peakRssMb(worker.child.pid);
    await worker.stop();
    await startWorker('deposit:reject');
    // 1000 retry decisions at once, through the API, on the oldest parked transfers.
    const chosen = ids.slice(0, Math.min(DECISIONS, ids.length));
    const t3 = performance.now();
    const answers = await Promise.all(
      chosen.map(async (id) => {
        // As a caller does: a 503 (Temporal did not answer in time) is sent again, with the
        // same Idempotency-Key, so that it is the same decision.
        const tries: number[] = [];
        for (;;) {
          const response = await fetch(`${base}/reviews/${encodeURIComponent(id)}/retry`, {
            method: 'POST',
            headers: { authorization: `Bearer ${reviewer}`, 'idempotency-key': `bench-retry-${id}` },
          });
          await response.arrayBuffer();
          tries.push(response.status);
          if (response.status !== 503 || tries.length >= 10) return tries.join(' then ');
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }),
    );
    const answeredMs = performance.now() - t3;
    // Carried out: the refund posted and the transfer ended (failed, on the refused deposit).
    const ends = await Promise.all(
      chosen.map((id) =>
        client.workflow
          .getHandle(id)
          .result()
          .then(
            () => 'completed',
            (err: Error) => err.name,
          ),
      ),
    );
    const doneMs = performance.now() - t3;
    const statuses = tally(answers);
    const endings = tally(ends);
    return [
      `One production worker${tuning ? ` (WORKER_TUNING=${tuning})` : ''}, a fresh dev server, a PostgreSQL bank.`,
      '',
      '| parked | time to park them, s | worker RSS, MB | getStatus p50 / p99 over 200, ms | `review list`, first page, ms | GET /reviews, first page, ms |',
      '|---|---|---|---|---|---|',
      ...results.map(
        (r) =>
          `| ${r.parked} | ${r.secondsToPark.toFixed(0)} | ${r.rssMb ?? ''} | ${r.statusP50.toFixed(0)} / ${r.statusP99.toFixed(0)} | ${r.listMs.toFixed(0)} | ${r.reviewsMs.toFixed(0)} |`,
      ),
      '',
      `${chosen.length} retry decisions at once through POST /reviews/{id}/retry: answered in ${(answeredMs / 1000).toFixed(1)} s (${statuses}); ` +
        `every transfer ended ${(doneMs / 1000).toFixed(1)} s after the first was sent (${endings}).`,
      `Worker peak RSS while they parked: ${peakMb ?? '?'} MB.`,
    ].join('\n');
  } finally {
    for (const close of cleanup.reverse()) await close().catch(() => undefined);
    await issuer.close();
    await server.teardown();
    await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function tally(items: string[]): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} × ${k}`).join(', ');
}
