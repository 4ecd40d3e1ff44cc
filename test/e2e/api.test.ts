// The HTTP front door through real HTTP: the API built by src/api/app.ts on a free port,
// tokens signed by a key this file makes and served as a JWKS, a worker in this process
// on a PostgreSQL bank of its own, and worker processes where one must be killed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { generateKeyPair } from 'jose';
import { Context } from '@temporalio/activity';
import { createActivities } from '../../src/activities';
import { buildApi, transferId } from '../../src/api/app';
import { jwksVerifier } from '../../src/api/auth';
import { paymentSchema } from '../../src/api/schemas';
import { getStatus } from '../../src/contract';
import { BankingService, type CallOptions as BankCallOptions } from '../../src/bank/banking-service';
import { PgStore } from '../../src/bank/store';
import { startPostgres, type Postgres } from '../../tools/cluster/postgres';
import { signToken, startTokenIssuer, type TokenClaims, type TokenIssuer } from '../../tools/token-issuer';
import {
  freePort,
  runScript,
  sleep,
  startWorkerProcess,
  testServer,
  testWorker,
  uniqueId,
  useTestTemporal,
} from '../support/helpers';

jest.setTimeout(120_000);

const temporal = useTestTemporal();
let issuer: TokenIssuer;
let dataDir: string;
let postgres: Postgres;
let bankDb: string;
let store: PgStore;
let api: FastifyInstance;
let base: string;
const taskQueue = uniqueId('api');

beforeAll(async () => {
  issuer = await startTokenIssuer();
  dataDir = mkdtempSync(path.join(tmpdir(), 'money-transfer-api-'));
  postgres = await startPostgres({ dataDir });
  bankDb = await postgres.createDatabase('api');
  store = new PgStore(bankDb);
  api = await buildApi({
    client: temporal().client,
    settings: { taskQueue },
    verify: jwksVerifier(issuer),
  });
  await api.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  await api?.close();
  await store?.close();
  await postgres?.stop();
  await issuer?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function token(claims: TokenClaims = {}): Promise<string> {
  return issuer.sign(claims);
}

interface Answer {
  status: number;
  type: string | null;
  location: string | null;
  body: Record<string, unknown>;
}

interface CallOptions {
  body?: unknown;
  raw?: string;
  key?: string | null;
  token?: string | null;
  contentType?: string;
  /** Another API than the file's own. */
  at?: string;
}

async function call(method: string, url: string, options: CallOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  const bearer = options.token === undefined ? await token() : options.token;
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (options.key) headers['idempotency-key'] = options.key;
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
  const response = await fetch(`${options.at ?? base}${url}`, { method, headers, body });
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    location: response.headers.get('location'),
    body: (await response.json()) as Record<string, unknown>,
  };
}

/** Serves another API on a free port; returns its base URL. */
async function serve(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}

const anyone = async () => ({
  subject: 'x',
  scopes: new Set(['transfers:create', 'transfers:read']),
  roles: new Set<string>(),
});

const payment = (overrides: Record<string, unknown> = {}) => ({
  sourceAccount: '85-150',
  targetAccount: '43-812',
  amount: 10,
  referenceId: uniqueId('api-ref'),
  ...overrides,
});

async function withWorker<T>(fn: () => Promise<T>): Promise<T> {
  const worker = await testWorker(
    temporal().workerConnection,
    taskQueue,
    createActivities(new BankingService('bank', { store })),
  );
  return worker.runUntil(fn);
}

async function untilClosed(location: string, at?: string): Promise<Answer> {
  for (;;) {
    const answer = await call('GET', location, { at });
    if (answer.body.execution !== 'RUNNING') return answer;
    await sleep(100);
  }
}

test('POST starts a transfer that answers 201 at the early return; GET follows it to its result', async () => {
  await withWorker(async () => {
    const posted = await call('POST', '/transfers', { body: payment(), key: uniqueId('key') });
    expect(posted).toMatchObject({ status: 201, location: expect.stringMatching(/^\/transfers\/pay-/) });
    expect(posted.body.status).toMatchObject({ withdrawId: expect.stringMatching(/^W-/) });
    const closed = await untilClosed(posted.location!);
    expect(closed.body).toMatchObject({
      execution: 'COMPLETED',
      result: expect.stringMatching(/^Transfer complete/),
      startedBy: 'billing-service',
    });
  });
});

test('insufficient funds: 422 at once, as problem details, and no money moves', async () => {
  const before = Object.fromEntries(await store.balances());
  await withWorker(async () => {
    const started = Date.now();
    const refused = await call('POST', '/transfers', {
      body: payment({ amount: 999_999 }),
      key: uniqueId('key'),
    });
    console.log(`insufficient funds answered in ${Date.now() - started} ms:`, JSON.stringify(refused.body));
    expect(refused).toMatchObject({ status: 422, type: 'application/problem+json; charset=utf-8' });
    expect(refused.body).toMatchObject({
      type: '/problems/insufficient-funds',
      status: 422,
      detail: expect.stringContaining('insufficient funds'),
    });
  });
  expect(Object.fromEntries(await store.balances())).toEqual(before);
});

test('20 concurrent POSTs with one key start exactly one workflow, and every answer names the same transfer', async () => {
  const key = uniqueId('key');
  const body = payment();
  const answers = await withWorker(() =>
    Promise.all(Array.from({ length: 20 }, () => call('POST', '/transfers', { body, key }))),
  );
  const ids = new Set(answers.map((a) => a.location));
  const statuses = answers.map((a) => a.status);
  const id = decodeURIComponent([...ids][0]!.split('/').pop()!);
  const { count: runs } = await temporal().client.workflow.count(`WorkflowId = '${id}'`);
  const withdrawals = (await store.entries()).filter((e) => e.reference === `${body.referenceId}-withdrawal`);
  console.log(
    `20 concurrent POSTs, one key: ${new Set(statuses).size} distinct statuses (${[...new Set(statuses)].join(', ')}), ` +
      `${ids.size} distinct transfers, ${runs} workflow run(s), ${withdrawals.length} withdrawal(s)`,
  );
  expect({ ids: ids.size, runs, withdrawals: withdrawals.length }).toEqual({
    ids: 1,
    runs: 1,
    withdrawals: 1,
  });
  expect(statuses.every((s) => s === 201 || s === 200)).toBe(true);
});

test('the same key with a different body is 422, naming what differs, running or closed; the same body replays the first answer', async () => {
  const key = uniqueId('key');
  const body = payment();
  await withWorker(async () => {
    const first = await call('POST', '/transfers', { body, key });
    expect(first.status).toBe(201);
    const other = await call('POST', '/transfers', { body: { ...body, amount: 11 }, key });
    expect(other).toMatchObject({ status: 422, body: { type: '/problems/idempotency-key-reused' } });
    expect(other.body.detail).toContain('amount is 10, not 11');
    await untilClosed(first.location!);
    const again = await call('POST', '/transfers', { body, key });
    // The same key and body replay the first answer, even after the end; GET shows the end.
    expect(again).toMatchObject({ status: 201, location: first.location, body: first.body });
    expect((await call('GET', first.location!)).body).toMatchObject({ execution: 'COMPLETED' });
    const closedOther = await call('POST', '/transfers', { body: { ...body, targetAccount: '43-999' }, key });
    expect(closedOther.body).toMatchObject({ type: '/problems/idempotency-key-reused' });
    expect(closedOther.body.detail).toContain('targetAccount is "43-812", not "43-999"');
  });
});

test.each([
  ['no Idempotency-Key', { body: payment(), key: null }, 400, 'idempotency-key-missing'],
  ['a malformed key', { body: payment(), key: 'has space' }, 400, 'invalid-idempotency-key'],
  ['an unknown field', { body: { ...payment(), memo: 'x' } }, 400, 'unknown-field'],
  ['a missing field', { body: { ...payment(), targetAccount: undefined } }, 400, 'missing-field'],
  ['a number as a string', { body: payment({ amount: '10' }) }, 400, 'invalid-amount'],
  ['a fractional amount', { body: payment({ amount: 2.5 }) }, 400, 'invalid-amount'],
  ['a zero amount', { body: payment({ amount: 0 }) }, 400, 'invalid-amount'],
  ['a negative amount', { body: payment({ amount: -5 }) }, 400, 'invalid-amount'],
  ['an account that is a number', { body: payment({ sourceAccount: 85150 }) }, 400, 'wrong-type'],
  ['a control character', { body: payment({ referenceId: 'ref\u0000x' }) }, 400, 'invalid-characters'],
  ['a bidi override', { body: payment({ targetAccount: '43\u202e812' }) }, 400, 'invalid-characters'],
  ['an over-long account', { body: payment({ sourceAccount: 'x'.repeat(35) }) }, 400, 'too-long'],
  ['an over-long reference', { body: payment({ referenceId: 'r'.repeat(65) }) }, 400, 'too-long'],
  ['the same account twice', { body: payment({ targetAccount: '85-150' }) }, 400, 'invalid-payment'],
  ['malformed JSON', { raw: '{"amount": ' }, 400, 'malformed-json'],
  [
    'a body over the limit',
    { raw: JSON.stringify({ ...payment(), pad: 'x'.repeat(5000) }) },
    413,
    'body-too-large',
  ],
  [
    'a form body',
    { raw: 'amount=10', contentType: 'application/x-www-form-urlencoded' },
    415,
    'unsupported-media-type',
  ],
  ['a text body', { raw: 'pay 10', contentType: 'text/plain' }, 415, 'unsupported-media-type'],
  ['an empty JSON body', { raw: '' }, 400, 'malformed-json'],
  ['an array for a body', { body: [] }, 400, 'wrong-type'],
  ['an amount past 2^53', { body: payment({ amount: 2 ** 53 + 2 }) }, 400, 'invalid-amount'],
] as Array<[string, CallOptions, number, string]>)(
  'bad input, %s: the problem says why, and no workflow starts',
  async (_name, request, status, type) => {
    const key = uniqueId('key');
    const answer = await call('POST', '/transfers', { key, ...request });
    expect({ status: answer.status, contentType: answer.type, type: answer.body.type }).toEqual({
      status,
      contentType: 'application/problem+json; charset=utf-8',
      type: `/problems/${type}`,
    });
    const id = transferId('billing-service', key);
    await expect(temporal().client.workflow.getHandle(id).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  },
);

test.each([
  ['no token', { token: null }, 401, 'unauthorized', 'Send a bearer token'],
  ['a token for another audience', { audience: 'urn:someone-else' }, 401, 'unauthorized', 'aud claim'],
  ['an expired token', { expiresIn: Math.floor(Date.now() / 1000) - 60 }, 401, 'unauthorized', 'expired'],
  ['a token without the scope', { scope: 'transfers:read' }, 403, 'forbidden', 'transfers:create'],
  ['a token that never expires', { expiresIn: 'never' }, 401, 'unauthorized', 'exp'],
])('auth, %s: the problem says why', async (_name, options, status, type, detail) => {
  const bearer = 'token' in options ? options.token : await token(options);
  const answer = await call('POST', '/transfers', { body: payment(), key: uniqueId('key'), token: bearer });
  expect(answer).toMatchObject({ status, body: { type: `/problems/${type}` } });
  expect(answer.body.detail).toContain(detail);
});

test('GET of a closed transfer with no worker running answers from history; a running one says so', async () => {
  const done = await withWorker(async () => {
    const posted = await call('POST', '/transfers', { body: payment(), key: uniqueId('key') });
    return untilClosed(posted.location!);
  });
  // No worker polls the task queue now.
  const closed = await call('GET', `/transfers/${done.body.id as string}`);
  expect(closed.body).toMatchObject({ execution: 'COMPLETED', answeredFrom: 'history' });
  // One that no worker ever picks up: 202 at the bound, and the query gets no answer.
  const stuck = await buildApi({
    client: temporal().client,
    settings: { taskQueue: uniqueId('nobody') },
    verify: anyone,
    earlyReturnMs: 500,
  });
  try {
    const at = await serve(stuck);
    const started = Date.now();
    const posted = await call('POST', '/transfers', { body: payment(), key: uniqueId('key'), at });
    expect({ status: posted.status, fast: Date.now() - started < 3000 }).toEqual({ status: 202, fast: true });
    const read = await call('GET', posted.location!, { at });
    expect(read.body).toMatchObject({
      execution: 'RUNNING',
      answeredFrom: 'history',
      note: expect.stringContaining('No worker answered'),
    });
  } finally {
    await stuck.close();
  }
});

test('GET /transfers pages through visibility with a page token', async () => {
  await withWorker(async () => {
    for (let i = 0; i < 3; i++) {
      const posted = await call('POST', '/transfers', { body: payment(), key: uniqueId('key') });
      await untilClosed(posted.location!);
    }
  });
  const lister = await token({ scope: 'transfers:list' });
  const forbidden = await call('GET', '/transfers?execution=Completed');
  expect(forbidden).toMatchObject({ status: 403, body: { type: '/problems/forbidden' } });
  const first = await call('GET', '/transfers?execution=Completed&pageSize=2', { token: lister });
  expect(first.status).toBe(200);
  const firstIds = (first.body.transfers as Array<{ id: string }>).map((t) => t.id);
  expect(firstIds).toHaveLength(2);
  expect(first.body.nextPageToken).toEqual(expect.any(String));
  const second = await call(
    'GET',
    `/transfers?execution=Completed&pageSize=2&pageToken=${first.body.nextPageToken as string}`,
    { token: lister },
  );
  const secondIds = (second.body.transfers as Array<{ id: string }>).map((t) => t.id);
  expect(secondIds.length).toBeGreaterThan(0);
  expect(secondIds.filter((id) => firstIds.includes(id))).toEqual([]);
  const bad = await call('GET', '/transfers?stage=sideways', { token: lister });
  expect(bad).toMatchObject({ status: 400, body: { type: '/problems/invalid-query' } });
});

test('a Temporal server that cannot be reached is a 503 problem, not a hang', async () => {
  const port = await freePort();
  const client = new Client({
    connection: Connection.lazy({ address: `127.0.0.1:${port}`, connectTimeout: 1000 }),
  });
  const down = await buildApi({ client, settings: { taskQueue }, verify: anyone, temporalDeadlineMs: 2000 });
  try {
    const at = await serve(down);
    const started = Date.now();
    const answer = await call('POST', '/transfers', { body: payment(), key: uniqueId('key'), at });
    console.log(`Temporal unreachable, answered in ${Date.now() - started} ms:`, JSON.stringify(answer.body));
    expect({ status: answer.status, type: answer.body.type }).toEqual({
      status: 503,
      type: '/problems/temporal-unavailable',
    });
    expect(Date.now() - started).toBeLessThan(8000);
    expect((await call('GET', '/readyz', { at })).status).toBe(503);
    expect((await call('GET', '/healthz', { at })).status).toBe(200);
  } finally {
    await down.close();
    await client.connection.close();
  }
});

test.each([
  [1, 'CANCELLED'],
  [8, 'RESOURCE_EXHAUSTED'],
  [10, 'ABORTED'],
  [13, 'INTERNAL'],
])(
  'Temporal failing a POST with gRPC %i (%s), as while a host fails over, is a 503 to retry with the key, not a 500',
  async (code, name) => {
    const client = new Client({ connection: Connection.lazy({ address: `127.0.0.1:${await freePort()}` }) });
    // The call fails as the server fails it mid-fail-over: a ServiceError over the gRPC error.
    client.workflow.executeUpdateWithStart = async () => {
      throw new ServiceError(`${name} from the frontend`, {
        cause: Object.assign(new Error(name), { code }),
      });
    };
    const failing = await buildApi({ client, settings: { taskQueue }, verify: anyone });
    try {
      const answer = await call('POST', '/transfers', {
        body: payment(),
        key: uniqueId('key'),
        at: await serve(failing),
      });
      expect({ status: answer.status, type: answer.body.type }).toEqual({
        status: 503,
        type: '/problems/temporal-unavailable',
      });
    } finally {
      await failing.close();
      await client.connection.close();
    }
  },
);

test('the OpenAPI document holds the very schema that validates the body', async () => {
  const answer = await call('GET', '/openapi.json', { token: null });
  const doc = answer.body as {
    components: { schemas: Record<string, unknown> };
    paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
  };
  const validated: Record<string, unknown> = { ...paymentSchema };
  delete validated.$id;
  expect(doc.components.schemas.Payment).toEqual(validated);
  expect(doc.paths['/transfers']!.post!.requestBody!.content['application/json']!.schema).toEqual({
    $ref: '#/components/schemas/Payment',
  });
  expect((await call('GET', '/readyz', { token: null })).status).toBe(200);
});

test('a worker killed between the early return and the deposit: the transfer still completes', async () => {
  const queue = uniqueId('api-kill');
  const env = {
    TEMPORAL_ADDRESS: testServer().address,
    TEMPORAL_TASK_QUEUE: queue,
    BANK_DB: bankDb,
    BANK_DELAY_MS: '1500',
    DEV_WORKFLOW_BUNDLE: process.env.MONEY_TRANSFER_TEST_BUNDLE,
  };
  const own = await buildApi({ client: temporal().client, settings: { taskQueue: queue }, verify: anyone });
  const { worker } = await startWorkerProcess(env);
  let second: Awaited<ReturnType<typeof startWorkerProcess>>['worker'] | undefined;
  try {
    const at = await serve(own);
    const body = payment();
    const posted = await call('POST', '/transfers', { body, key: uniqueId('key'), at });
    expect(posted.status).toBe(201);
    // The deposit is under way (1.5 s per bank call): kill the worker in it.
    await sleep(300);
    worker.child.kill('SIGKILL');
    await worker.exited;
    second = (await startWorkerProcess(env)).worker;
    const closed = await untilClosed(posted.location!, at);
    expect(closed.body).toMatchObject({
      execution: 'COMPLETED',
      result: expect.stringMatching(/^Transfer complete/),
    });
    const mine = (await store.entries()).filter((e) => e.reference.startsWith(`${body.referenceId}-`));
    expect(mine.map((e) => e.amount).sort((a, b) => a - b)).toEqual([-10, 10]);
  } finally {
    worker.child.kill('SIGKILL');
    second?.child.kill('SIGKILL');
    await Promise.all([worker.exited, second?.exited]);
    await own.close();
  }
});

test('a caller reads only its own transfers; a lower-case bearer scheme is accepted', async () => {
  const posted = await withWorker(async () => {
    const answer = await call('POST', '/transfers', { body: payment(), key: uniqueId('key') });
    await untilClosed(answer.location!);
    return answer;
  });
  const other = await call('GET', posted.location!, { token: await token({ subject: 'another-service' }) });
  expect(other).toMatchObject({ status: 404, body: { type: '/problems/not-found' } });
  const response = await fetch(`${base}${posted.location!}`, {
    headers: { authorization: `bearer ${await token()}` },
  });
  expect(response.status).toBe(200);
});

test("a transfer terminated after its 201 and settled by an operator reads as settled, still its caller's", async () => {
  const body = payment();
  const deposit = `${body.referenceId}-deposit`;
  /** The deposit of this payment hangs until its activity is given up on. */
  class HangingDeposit extends BankingService {
    override deposit(account: string, amount: number, reference: string, call: BankCallOptions = {}) {
      if (reference !== deposit || Context.current().info.workflowType !== 'moneyTransfer') {
        return super.deposit(account, amount, reference, call);
      }
      return new Promise<string>((_, reject) =>
        call.signal?.addEventListener('abort', () => reject(new Error('given up'))),
      );
    }
  }
  const worker = await testWorker(
    temporal().workerConnection,
    taskQueue,
    createActivities(new HangingDeposit('bank', { store })),
  );
  await worker.runUntil(async () => {
    const posted = await call('POST', '/transfers', { body, key: uniqueId('key') });
    expect(posted.status).toBe(201);
    const id = posted.body.id as string;
    await temporal().client.workflow.getHandle(id).terminate('stopped by an operator');
    const settle = await runScript(
      'src/review-cli.js',
      ['settle', id, '--operator', 'ana', '--note', 'terminated by mistake'],
      { TEMPORAL_ADDRESS: testServer().address, TEMPORAL_TASK_QUEUE: taskQueue },
    );
    expect(settle.code).toBe(0);
    const read = await call('GET', posted.location!);
    expect(read.body).toMatchObject({
      execution: 'COMPLETED',
      stage: 'settled',
      startedBy: 'billing-service',
      result: expect.stringMatching(/^Settled by ana \(terminated by mistake\): 10 is back in 85-150/),
    });
  });
});

/** An API on the file's own keys that waits up to 15 s for the withdrawal's outcome. */
async function patientApi(): Promise<{ at: string; app: FastifyInstance }> {
  const app = await buildApi({
    client: temporal().client,
    settings: { taskQueue },
    verify: jwksVerifier(issuer),
    earlyReturnMs: 15_000,
    temporalDeadlineMs: 20_000,
  });
  return { at: await serve(app), app };
}

test('a transfer cancelled while its withdrawal hangs at the bank answers 409 transfer-cancelled; nothing moved', async () => {
  const body = payment();
  /** The withdrawal of this payment hangs until its activity is cancelled. */
  class HangingWithdrawal extends BankingService {
    override withdraw(account: string, amount: number, reference: string, call: BankCallOptions = {}) {
      if (!reference.startsWith(`${body.referenceId}-`))
        return super.withdraw(account, amount, reference, call);
      return new Promise<string>((_, reject) =>
        call.signal?.addEventListener('abort', () => reject(new Error('the bank call was abandoned'))),
      );
    }
  }
  const { at, app } = await patientApi();
  const worker = await testWorker(
    temporal().workerConnection,
    taskQueue,
    createActivities(new HangingWithdrawal('bank', { store })),
  );
  try {
    const key = uniqueId('key');
    const handle = temporal().client.workflow.getHandle(transferId('billing-service', key));
    const answer = await worker.runUntil(async () => {
      const posting = call('POST', '/transfers', { body, key, at });
      for (;;) {
        const stage = await handle.query(getStatus).then(
          (status) => status.stage,
          () => 'not yet',
        );
        if (stage === 'withdrawing') break;
        await sleep(50);
      }
      await handle.cancel();
      return posting;
    });
    console.log('Cancelled in the withdrawal:', answer.status, JSON.stringify(answer.body));
    expect({ status: answer.status, type: answer.body.type }).toEqual({
      status: 409,
      type: '/problems/transfer-cancelled',
    });
    expect(answer.body).toMatchObject({
      transfer: `/transfers/${encodeURIComponent(handle.workflowId)}`,
      settlement: 'nothing-to-refund',
    });
    const mine = (await store.entries()).filter((e) => e.reference.startsWith(`${body.referenceId}-`));
    expect(mine).toEqual([]);
  } finally {
    await app.close();
  }
});

test('a withdrawal whose replies were lost, settled and refunded, answers 502 payment-failed', async () => {
  const body = payment();
  /** Posts this payment's withdrawal, then loses every reply. */
  class LostReplies extends BankingService {
    override async withdraw(account: string, amount: number, reference: string, call: BankCallOptions = {}) {
      const id = await super.withdraw(account, amount, reference, call);
      if (reference.startsWith(`${body.referenceId}-`)) throw new Error(`the reply to ${id} was lost`);
      return id;
    }
  }
  const { at, app } = await patientApi();
  const worker = await testWorker(
    temporal().workerConnection,
    taskQueue,
    createActivities(new LostReplies('bank', { store })),
  );
  try {
    const answer = await worker.runUntil(() =>
      call('POST', '/transfers', { body, key: uniqueId('key'), at }),
    );
    console.log('Unknown outcome, settled:', answer.status, JSON.stringify(answer.body));
    expect({ status: answer.status, type: answer.body.type }).toEqual({
      status: 502,
      type: '/problems/payment-failed',
    });
    expect(answer.body).toMatchObject({ settlement: 'refunded', refundId: expect.any(String) });
    // The withdrawal posted and was put back: the source is whole again.
    const mine = (await store.entries()).filter((e) => e.reference.startsWith(`${body.referenceId}-`));
    expect(mine.map((e) => e.amount).sort((a, b) => a - b)).toEqual([-10, 10]);
  } finally {
    await app.close();
  }
});

test('keys that cannot be fetched are 503 auth-unavailable; a token from a key the issuer never published is 401', async () => {
  const nowhere = `http://127.0.0.1:${await freePort()}/jwks`;
  const blind = await buildApi({
    client: temporal().client,
    settings: { taskQueue },
    verify: jwksVerifier({ ...issuer, jwksUrl: nowhere }),
  });
  try {
    const answer = await call('GET', '/transfers?stage=needs-review', { at: await serve(blind) });
    console.log('JWKS unreachable:', answer.status, JSON.stringify(answer.body));
    expect({ status: answer.status, type: answer.body.type }).toEqual({
      status: 503,
      type: '/problems/auth-unavailable',
    });
    expect(JSON.stringify(answer.body)).not.toContain('eyJ'); // no token echoed
  } finally {
    await blind.close();
  }
  const { privateKey: stranger } = await generateKeyPair('ES256');
  for (const kid of ['test', 'unpublished']) {
    const forged = await signToken(stranger, kid, issuer.issuer, {});
    const answer = await call('POST', '/transfers', { body: payment(), key: uniqueId('key'), token: forged });
    expect({ kid, status: answer.status, type: answer.body.type }).toEqual({
      kid,
      status: 401,
      type: '/problems/unauthorized',
    });
  }
});

test('a browser page on another origin gets no CORS grant: it cannot call the API', async () => {
  const preflight = await fetch(`${base}/transfers`, {
    method: 'OPTIONS',
    headers: {
      origin: 'https://elsewhere.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization, content-type, idempotency-key',
    },
  });
  expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  expect(preflight.headers.get('access-control-allow-headers')).toBeNull();
  const read = await fetch(`${base}/transfers?stage=needs-review`, {
    headers: {
      origin: 'https://elsewhere.example',
      authorization: `Bearer ${await token({ scope: 'transfers:list' })}`,
    },
  });
  expect(read.status).toBe(200);
  expect(read.headers.get('access-control-allow-origin')).toBeNull();
});
