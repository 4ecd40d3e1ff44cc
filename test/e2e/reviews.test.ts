// The operators' routes of the API (src/api/reviews.ts) through real HTTP, with tokens
// whose roles claim says who may do what, on transfers a worker in this process parks.
import type { FastifyInstance } from 'fastify';
import { createActivities } from '../../src/activities';
import { buildApi } from '../../src/api/app';
import { jwksVerifier } from '../../src/api/auth';
import { parseFaults, UnreliableBank } from '../../src/bank/faults';
import { MemoryStore } from '../../src/bank/store';
import type { BankingService } from '../../src/bank/banking-service';
import { getStatus, transferStartOptions, type TransferView } from '../../src/contract';
import type { moneyTransfer } from '../../src/workflows';
import { RefuseFirstRefundBank } from '../../tools/export-histories';
import { startTokenIssuer, type TokenClaims, type TokenIssuer } from '../../tools/token-issuer';
import {
  acceptedDecisions,
  sleep,
  testWorker,
  transferDetails,
  uniqueId,
  useTestTemporal,
} from '../support/helpers';

jest.setTimeout(60_000);

const temporal = useTestTemporal();
let issuer: TokenIssuer;
let api: FastifyInstance;
let base: string;
const taskQueue = uniqueId('reviews');

beforeAll(async () => {
  issuer = await startTokenIssuer();
  api = await buildApi({ client: temporal().client, settings: { taskQueue }, verify: jwksVerifier(issuer) });
  await api.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(api.server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await api?.close();
  await issuer?.close();
});

const as = (subject: string, ...roles: string[]) => issuer.sign({ subject, roles, scope: '' });

async function call(
  method: string,
  url: string,
  token: string | null,
  body?: unknown,
  idempotencyKey?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${base}${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Parks a transfer on `bank` (its deposit refused, then its refund), and runs `fn` with its id. */
async function withParked(bank: BankingService, fn: (id: string) => Promise<void>): Promise<void> {
  const worker = await testWorker(temporal().workerConnection, taskQueue, createActivities(bank));
  await worker.runUntil(async () => {
    const handle = await temporal().client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
      taskQueue,
      workflowId: uniqueId('parked'),
      args: [transferDetails()],
      ...transferStartOptions(),
    });
    while ((await handle.query(getStatus)).stage !== 'needs-review') await sleep(50);
    await fn(handle.workflowId);
    await handle.result().catch(() => undefined);
  });
}

const refusingRefunds = () =>
  new UnreliableBank('bank', { faults: parseFaults('deposit:reject,refund:reject') });

test('a reviewer finds the parked transfer in GET /reviews and retries it; the workflow records her as the operator', async () => {
  await withParked(
    new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') }),
    async (id) => {
      const alice = await as('alice', 'reviewer');
      let listed: Array<{ id: string; status?: TransferView }> = [];
      for (let i = 0; i < 50 && !listed.some((r) => r.id === id); i++) {
        listed = (await call('GET', '/reviews', alice)).body.reviews as typeof listed;
        if (!listed.some((r) => r.id === id)) await sleep(200); // visibility catches up
      }
      expect(listed.find((r) => r.id === id)?.status).toMatchObject({
        stage: 'needs-review',
        owed: 250,
        review: { reminders: 0 },
      });
      const retried = await call('POST', `/reviews/${id}/retry`, alice);
      expect(retried.status).toBe(200);
      expect(retried.body).toMatchObject({
        resolution: { action: 'retryRefund', operator: 'alice' },
        refundId: expect.any(String),
      });
    },
  );
});

test.each([
  ['no token', null, 'GET', '/reviews', 401],
  ['a token with no role', () => as('dan'), 'GET', '/reviews', 403],
  ['an approver retrying', () => as('bob', 'approver'), 'POST', '/reviews/x/retry', 403],
  ['a reviewer approving', () => as('alice', 'reviewer'), 'POST', '/reviews/x/approve', 403],
  ['a reviewer rejecting', () => as('alice', 'reviewer'), 'POST', '/reviews/x/reject', 403],
  ['an approver proposing', () => as('bob', 'approver'), 'POST', '/reviews/x/propose', 403],
  [
    'an expired token',
    () => issuer.sign({ subject: 'alice', roles: ['reviewer'], expiresIn: -120 }),
    'GET',
    '/reviews',
    401,
  ],
  [
    'a tampered token (roles added to a signed one)',
    async () => {
      const [header, payload, signature] = (await as('dan')).split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as TokenClaims;
      const forged = Buffer.from(JSON.stringify({ ...claims, roles: ['approver'] })).toString('base64url');
      return `${header}.${forged}.${signature}`;
    },
    'GET',
    '/reviews',
    401,
  ],
] as const)('refused: %s', async (_, token, method, url, status) => {
  const answer = await call(
    method,
    url,
    typeof token === 'function' ? await token() : token,
    url.endsWith('reject') || url.endsWith('propose') ? { note: 'n' } : undefined,
  );
  expect({ status: answer.status, type: answer.body.type }).toEqual({
    status,
    type: status === 401 ? '/problems/unauthorized' : '/problems/forbidden',
  });
});

test('four eyes through the API: carol proposes, cannot approve it herself, bob approves; both names are in history', async () => {
  await withParked(refusingRefunds(), async (id) => {
    const carol = await as('carol', 'reviewer', 'approver');
    const bob = await as('bob', 'approver');
    expect((await call('POST', `/reviews/${id}/propose`, carol, {})).status).toBe(400);
    const proposed = await call('POST', `/reviews/${id}/propose`, carol, { note: 'paid by cheque 77' });
    expect(proposed).toMatchObject({
      status: 200,
      body: { stage: 'needs-review', review: { proposal: { operator: 'carol', note: 'paid by cheque 77' } } },
    });
    const self = await call('POST', `/reviews/${id}/approve`, carol);
    expect(self).toMatchObject({
      status: 409,
      body: {
        type: '/problems/decision-refused',
        detail: 'carol proposed this resolution: another operator must approve it.',
      },
    });
    const approved = await call('POST', `/reviews/${id}/approve`, bob);
    expect(approved).toMatchObject({
      status: 200,
      body: {
        stage: 'failed',
        resolution: {
          action: 'resolveManually',
          operator: 'carol',
          approvedBy: 'bob',
          note: 'paid by cheque 77',
        },
      },
    });
    const accepted = await acceptedDecisions(temporal().client.workflow.getHandle(id));
    expect(accepted).toEqual(['resolveManually by carol', 'approveResolution by bob']);
  });
});

test('refund-to through the API: the money goes to the account the reviewer chose, and a decision on a closed transfer is 404', async () => {
  let parkedId = '';
  // The customer has a second account, 85-999, where the refund can go.
  const store = new MemoryStore(
    new Map([
      ['85-150', 2000],
      ['43-812', 0],
      ['85-999', 0],
    ]),
  );
  await withParked(
    new RefuseFirstRefundBank('bank', { store, faults: parseFaults('deposit:reject') }),
    async (id) => {
      parkedId = id;
      const alice = await as('alice', 'reviewer');
      const unknown = await call('POST', `/reviews/${id}/refund-to`, alice, { account: '99-999' });
      expect(unknown).toMatchObject({ status: 409, body: { type: '/problems/decision-refused' } });
      const status = await temporal().client.workflow.getHandle(id).query(getStatus);
      expect(status.review!.accounts).toEqual(['85-999']);
      const account = '85-999';
      const moved = await call('POST', `/reviews/${id}/refund-to`, alice, { account });
      expect(moved).toMatchObject({
        status: 200,
        body: { refundedTo: account, resolution: { action: 'refundTo', account, operator: 'alice' } },
      });
    },
  );
  const late = await call('POST', `/reviews/${parkedId}/retry`, await as('alice', 'reviewer'));
  expect(late.status).toBe(404);
});

test('a decision sent again with its Idempotency-Key is the same decision: one Update, its outcome answered twice; a new key is a new decision', async () => {
  await withParked(refusingRefunds(), async (id) => {
    const alice = await as('alice', 'reviewer');
    const handle = temporal().client.workflow.getHandle<typeof moneyTransfer>(id);
    const first = await call('POST', `/reviews/${id}/retry`, alice, undefined, 'retry-1');
    // The refund was refused again: the transfer waits for review again, still open.
    expect(first).toMatchObject({ status: 200, body: { stage: 'needs-review' } });
    // As a caller does after a 503 whose first POST had in fact reached the workflow.
    const again = await call('POST', `/reviews/${id}/retry`, alice, undefined, 'retry-1');
    expect(again).toEqual(first);
    expect(await acceptedDecisions(handle)).toEqual(['retryRefund by alice']);
    const second = await call('POST', `/reviews/${id}/retry`, alice, undefined, 'retry-2');
    expect(second.status).toBe(200);
    expect(await acceptedDecisions(handle)).toEqual(['retryRefund by alice', 'retryRefund by alice']);
    const bad = await call('POST', `/reviews/${id}/retry`, alice, undefined, 'not a key!');
    expect(bad).toMatchObject({ status: 400, body: { type: '/problems/invalid-idempotency-key' } });
    await handle.terminate('test over');
  });
});

test('a decision that closed its transfer, sent again with its Idempotency-Key, answers its outcome rather than 404', async () => {
  await withParked(
    new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') }),
    async (id) => {
      const alice = await as('alice', 'reviewer');
      const first = await call('POST', `/reviews/${id}/retry`, alice, undefined, 'retry-closing');
      expect(first).toMatchObject({ status: 200, body: { stage: 'failed', refundId: expect.any(String) } });
      await temporal()
        .client.workflow.getHandle(id)
        .result()
        .catch(() => undefined);
      const again = await call('POST', `/reviews/${id}/retry`, alice, undefined, 'retry-closing');
      expect(again).toEqual(first);
      const other = await call('POST', `/reviews/${id}/retry`, alice, undefined, 'another-key');
      expect(other.status).toBe(404);
    },
  );
});
