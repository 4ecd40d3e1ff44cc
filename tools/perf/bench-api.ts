// `npm run bench -- --api`: the HTTP API beside the direct client, in one run. A fresh dev
// server, the production worker and `npm run api` as processes, with tokens this process
// signs and serves as a JWKS. N transfers at concurrency C through each path, in turns: the
// client's `workflow.execute`, and POST /transfers, whose answer is the early return,
// followed by the workflow's result.
import { Client, Connection } from '@temporalio/client';
import { DEFAULT_TRANSFER } from '../../src/platform/starter-options';
import { transferStartOptions, type PaymentDetails } from '../../src/contract';
import type { moneyTransfer } from '../../src/workflows';
import { startDevServer } from '../dev-server';
import { freePort } from '../common';
import { ScriptProcess, startWorkerProcess } from '../processes';
import { startTokenIssuer } from '../token-issuer';

interface PathResult {
  label: string;
  seconds: number;
  perSecond: number;
  /** Until the answer: the result for the client, the early return for the API. */
  answer: number[];
  completion: number[];
  failed: number;
  statuses: Map<number, number>;
}

const WARM_UP = 50;
/** Each path's transfers in this many turns, the paths alternating. */
const ROUNDS = 3;

/** Each path moves 1 per transfer from the tutorial's source account. */
export function apiBenchMoves(transfers: number): number {
  return 2 * (transfers + WARM_UP);
}

export async function apiBench(
  transfers: number,
  concurrency: number,
  cpuSeconds: (pid: number | undefined) => number | undefined,
  peakRssMb: (pid: number | undefined) => number | undefined,
): Promise<string> {
  const server = await startDevServer({});
  const issuer = await startTokenIssuer('bench-issuer', 'bench');
  const token = await issuer.sign({ subject: 'bench', expiresIn: '2h' });
  const taskQueue = `bench-api-${Date.now().toString(36)}`;
  const apiPort = await freePort();
  const common = { NODE_ENV: 'production', TEMPORAL_ADDRESS: server.address, TEMPORAL_TASK_QUEUE: taskQueue };
  const { worker } = await startWorkerProcess(common);
  const api = new ScriptProcess('src/api.js', [], {
    ...common,
    API_PORT: String(apiPort),
    ...issuer.env,
  });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  try {
    await api.waitFor('API listening on ');
    const base = `http://127.0.0.1:${apiPort}`;
    const details = (label: string, i: number): PaymentDetails => ({
      ...DEFAULT_TRANSFER,
      amount: 1,
      referenceId: `${taskQueue}-${label}-${i}`,
    });
    const direct = async (label: string, i: number): Promise<[number, number]> => {
      const t0 = performance.now();
      await client.workflow.execute<typeof moneyTransfer>('moneyTransfer', {
        taskQueue,
        workflowId: `${taskQueue}-${label}-${i}`,
        args: [details(label, i)],
        ...transferStartOptions(),
      });
      const t = performance.now() - t0;
      return [t, t];
    };
    const statuses = new Map<number, number>();
    const overHttp = async (label: string, i: number): Promise<[number, number]> => {
      const t0 = performance.now();
      const response = await fetch(`${base}/transfers`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'idempotency-key': `${label}-${i}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify(details(label, i)),
      });
      const { id } = (await response.json()) as { id?: string };
      const early = performance.now() - t0;
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (!id || response.status >= 300) throw new Error(`POST answered ${response.status}`);
      await client.workflow.getHandle(id).result();
      return [early, performance.now() - t0];
    };
    const measure = async (
      label: string,
      count: number,
      one: (label: string, i: number) => Promise<[number, number]>,
      first = 0,
    ): Promise<PathResult> => {
      const answer: number[] = [];
      const completion: number[] = [];
      let next = 0;
      let failed = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) {
            const i = first + next++;
            try {
              const [a, c] = await one(label, i);
              answer.push(a);
              completion.push(c);
            } catch {
              failed++;
            }
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      process.stderr.write(`${label}: ${count} transfers in ${seconds.toFixed(1)} s\n`);
      return { label, seconds, perSecond: count / seconds, answer, completion, failed, statuses: new Map() };
    };
    await measure('warm-direct', WARM_UP, direct);
    await measure('warm-api', WARM_UP, overHttp);
    statuses.clear();
    // The paths take turns, so that neither runs only on the fuller server.
    const rounds: PathResult[][] = [[], []];
    let apiCpu = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const count = Math.floor(transfers / ROUNDS) + (round < transfers % ROUNDS ? 1 : 0);
      rounds[0]!.push(await measure('direct', count, direct, round * transfers));
      const before = cpuSeconds(api.child.pid) ?? NaN;
      rounds[1]!.push(await measure('api', count, overHttp, round * transfers));
      apiCpu += (cpuSeconds(api.child.pid) ?? NaN) - before;
    }
    const [viaClient, viaApi] = rounds.map(combine) as [PathResult, PathResult];
    viaApi.statuses = statuses;
    return apiReport(transfers, concurrency, viaClient, viaApi, apiCpu, peakRssMb(api.child.pid));
  } finally {
    api.child.kill('SIGTERM');
    await api.exited;
    await worker.stop();
    await client.connection.close();
    await issuer.close();
    await server.teardown();
  }
}

function combine(results: PathResult[]): PathResult {
  const seconds = results.reduce((sum, r) => sum + r.seconds, 0);
  const count = results.reduce((sum, r) => sum + r.answer.length + r.failed, 0);
  return {
    label: results[0]!.label,
    seconds,
    perSecond: count / seconds,
    answer: results.flatMap((r) => r.answer),
    completion: results.flatMap((r) => r.completion),
    failed: results.reduce((sum, r) => sum + r.failed, 0),
    statuses: new Map(),
  };
}

function pct(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

function apiReport(
  transfers: number,
  concurrency: number,
  direct: PathResult,
  api: PathResult,
  apiCpuSeconds: number,
  apiPeakRssMb: number | undefined,
): string {
  const ms = (n: number) => `${n.toFixed(0)} ms`;
  const row = (r: PathResult, answerLabel: string) =>
    `| ${r.label === 'direct' ? 'client `workflow.execute`' : 'HTTP API, POST /transfers'} | ${transfers} | ${concurrency} | ${r.perSecond.toFixed(1)} | ${answerLabel === '' ? '' : `${ms(pct(r.answer, 50))} / ${ms(pct(r.answer, 99))}`} | ${ms(pct(r.completion, 50))} / ${ms(pct(r.completion, 99))} | ${r.failed} |`;
  const lines = [
    '| path | transfers | C | transfers/s | early return p50 / p99 | completion p50 / p99 | failed |',
    '|---|---|---|---|---|---|---|',
    row(direct, ''),
    row(api, 'early'),
    '',
    `API answers: ${[...api.statuses].map(([status, n]) => `${n} × ${status}`).join(', ')}`,
    `throughput, API / client: ${(api.perSecond / direct.perSecond).toFixed(2)} (goal ≥ 0.9)`,
    `p50 early return / p50 completion over the API: ${(pct(api.answer, 50) / pct(api.completion, 50)).toFixed(2)} (goal ≤ 0.6)`,
    `API process: ${((apiCpuSeconds * 1000) / transfers).toFixed(2)} ms CPU per request, peak RSS ${apiPeakRssMb?.toFixed(0) ?? '?'} MB`,
  ];
  return lines.join('\n');
}
