// `npm run bench -- --api`: the HTTP API beside the direct client, in one run. A fresh dev
// server, the production worker and `npm run api` as processes, with tokens this process
// signs and serves as a JWKS. N transfers at concurrency C through each path: the client's
// `workflow.execute`, and POST /transfers, whose answer is the early return, followed by
// the workflow's result.
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Client, Connection } from '@temporalio/client';
import { DEFAULT_TRANSFER } from '../../src/platform/starter-options';
import { transferStartOptions, type PaymentDetails } from '../../src/contract';
import type { moneyTransfer } from '../../src/workflows';
import { startDevServer } from '../dev-server';
import { freePort } from '../common';
import { ScriptProcess, startWorkerProcess } from '../processes';

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
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench', alg: 'ES256' }] });
  const jwksServer = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(jwks));
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks`;
  const token = await new SignJWT({ scope: 'transfers:create transfers:read' })
    .setProtectedHeader({ alg: 'ES256', kid: 'bench' })
    .setSubject('bench')
    .setIssuer('bench-issuer')
    .setAudience('urn:money-transfer:api')
    .setExpirationTime('2h')
    .sign(privateKey);
  const taskQueue = `bench-api-${Date.now().toString(36)}`;
  const apiPort = await freePort();
  const common = { NODE_ENV: 'production', TEMPORAL_ADDRESS: server.address, TEMPORAL_TASK_QUEUE: taskQueue };
  const { worker } = await startWorkerProcess(common);
  const api = new ScriptProcess('src/api.js', [], {
    ...common,
    API_PORT: String(apiPort),
    AUTH_JWKS_URL: jwksUrl,
    AUTH_ISSUER: 'bench-issuer',
    AUTH_AUDIENCE: 'urn:money-transfer:api',
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
    ): Promise<PathResult> => {
      const answer: number[] = [];
      const completion: number[] = [];
      let next = 0;
      let failed = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) {
            const i = next++;
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
    const viaClient = await measure('direct', transfers, direct);
    const apiCpuBefore = cpuSeconds(api.child.pid);
    const viaApi = await measure('api', transfers, overHttp);
    const apiCpu = (cpuSeconds(api.child.pid) ?? NaN) - (apiCpuBefore ?? NaN);
    viaApi.statuses = statuses;
    return apiReport(transfers, concurrency, viaClient, viaApi, apiCpu, peakRssMb(api.child.pid));
  } finally {
    api.child.kill('SIGTERM');
    await api.exited;
    await worker.stop();
    await client.connection.close();
    await new Promise((resolve) => jwksServer.close(resolve));
    await server.teardown();
  }
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
