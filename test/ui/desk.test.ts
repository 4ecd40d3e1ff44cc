// The operators' desk in headless Chromium: people sign in at the local OpenID provider
// (the code flow with PKCE), see parked transfers appear without reloading, and decide;
// four eyes hold even for someone with both roles; a page from another origin cannot act.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import { createActivities } from '../../src/activities';
import { buildApi } from '../../src/api/app';
import { jwksVerifier } from '../../src/api/auth';
import type { CallOptions } from '../../src/bank/banking-service';
import { parseFaults, UnreliableBank } from '../../src/bank/faults';
import { MemoryStore } from '../../src/bank/store';
import { AccountClosedError, getStatus, transferStartOptions } from '../../src/contract';
import type { moneyTransfer } from '../../src/workflows';
import { API_AUDIENCE, DESK_CLIENT_ID } from '../../tools/oidc';
import {
  acceptedDecisions,
  freePort,
  ROOT,
  ScriptProcess,
  sleep,
  testServer,
  testWorker,
  transferDetails,
  uniqueId,
} from '../support/helpers';
import { launchChromium } from './browser';

jest.setTimeout(180_000);

const SCREENSHOTS = path.join(ROOT, 'test-results', 'ui');
const taskQueue = uniqueId('desk');

/** Every first refund round is refused (the source account looks closed); later rounds go through. */
class RefuseFirstRoundBank extends UnreliableBank {
  override refund(account: string, amount: number, reference: string, call: CallOptions = {}) {
    if (reference.endsWith('-refund')) {
      return Promise.reject(new AccountClosedError(`The account ${account} is closed.`));
    }
    return super.refund(account, amount, reference, call);
  }
}

let dir: string;
let oidcProcess: ScriptProcess | undefined;
let provider: { issuer: string; jwksUrl: string };
let api: FastifyInstance;
let base: string;
let client: Client;
let connection: NativeConnection;
let worker: Worker;
let running: Promise<void>;
const people = new Map<string, BrowserContext>();

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-desk-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // oidc-provider is ESM only, which jest cannot load in-process: `npm run oidc`, as a process.
  const oidcPort = await freePort();
  oidcProcess = new ScriptProcess('tools/oidc.js', [], {
    OIDC_PORT: String(oidcPort),
    OIDC_DIR: dir,
    OIDC_DESK_URLS: base,
  });
  await oidcProcess.waitFor("The desk's people");
  provider = { issuer: `http://127.0.0.1:${oidcPort}`, jwksUrl: `http://127.0.0.1:${oidcPort}/jwks` };
  client = new Client({ connection: await Connection.connect({ address: testServer().address }) });
  api = await buildApi({
    client,
    settings: { taskQueue },
    verify: jwksVerifier({ jwksUrl: provider.jwksUrl, issuer: provider.issuer, audience: API_AUDIENCE }),
    desk: { issuer: provider.issuer, clientId: DESK_CLIENT_ID, publicUrl: base },
  });
  await api.listen({ host: '127.0.0.1', port });
  connection = await NativeConnection.connect({ address: testServer().address });
  const store = new MemoryStore(
    new Map([
      ['85-150', 100_000],
      ['43-812', 0],
      ['85-999', 0],
    ]),
  );
  worker = await testWorker(
    connection,
    taskQueue,
    createActivities(new RefuseFirstRoundBank('bank', { store, faults: parseFaults('deposit:reject') })),
  );
  running = worker.run();
});

afterAll(async () => {
  for (const context of people.values()) await context.close();
  worker?.shutdown();
  await running;
  await connection?.close();
  await api?.close();
  await client?.connection.close();
  oidcProcess?.child.kill('SIGTERM');
  await oidcProcess?.exited;
  rmSync(dir, { recursive: true, force: true });
});

/** A parked transfer: its deposit refused, then its first refund. */
async function parked(): Promise<WorkflowHandle<typeof moneyTransfer>> {
  const handle = await client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
    taskQueue,
    workflowId: uniqueId('desk-parked'),
    args: [transferDetails()],
    ...transferStartOptions(),
  });
  while ((await handle.query(getStatus)).stage !== 'needs-review') await sleep(50);
  return handle;
}

/** `name` signs in at the provider's development login, in a browser profile of their own. */
async function signIn(name: string): Promise<Page> {
  const context = await launchChromium(path.join(dir, `profile-${name}`));
  people.set(name, context);
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${base}/desk`);
  // No session: the desk sends the browser to the provider.
  expect(page.url()).toMatch(new RegExp(`^${provider.issuer}/interaction/`));
  await page.locator('input[name="login"]').fill(name);
  await page.locator('input[name="password"]').fill('any password');
  await page.getByRole('button', { name: 'Sign-in' }).click();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL(`${base}/desk`);
  await page.getByText(`Signed in as ${name}`).waitFor();
  return page;
}

function transferCard(page: Page, id: string) {
  return page.getByRole('article', { name: id });
}

/** The outcome the page reads out, once it matches `wanted`. */
async function outcome(page: Page, wanted: RegExp): Promise<string> {
  const status = page.getByRole('status');
  const deadline = Date.now() + 15_000;
  for (;;) {
    const said = (await status.textContent()) ?? '';
    if (wanted.test(said)) return said;
    if (Date.now() > deadline) throw new Error(`the desk said '${said}', not ${String(wanted)}`);
    await sleep(100);
  }
}

test('a reviewer signs in, sees a parked transfer appear without reloading, and retries it; another refunds to another account', async () => {
  const alice = await signIn('alice');
  const handle = await parked();
  const parkedAt = Date.now();
  const card = transferCard(alice, handle.workflowId);
  await card.waitFor({ timeout: 15_000 }); // the page polls; nobody reloads it
  console.log(
    `The parked transfer appeared on the desk ${Date.now() - parkedAt} ms after it parked (polling every 2 s)`,
  );
  expect(await card.textContent()).toMatch(
    /Payment250 from 85-150 to 43-812 \(ref [^)]+\)Owed250 to 85-150Reason/,
  );
  await alice.screenshot({ path: path.join(SCREENSHOTS, 'desk-reviewer.png'), fullPage: true });
  if (process.env.UPDATE_DOCS_SCREENSHOTS) {
    await alice.screenshot({ path: path.join(ROOT, 'docs', 'desk-reviewer.png'), fullPage: true });
  }
  // No approver's buttons for a reviewer.
  expect(await card.getByRole('button', { name: 'Approve the resolution' }).count()).toBe(0);
  await card.getByRole('button', { name: 'Retry the refund' }).click();
  await outcome(alice, new RegExp(`^Retry the refund ${handle.workflowId}: done; it is now failed\\.$`));
  expect(await handle.query(getStatus)).toMatchObject({
    refundId: expect.any(String),
    resolution: { action: 'retryRefund', operator: 'alice' },
  });

  const other = await parked();
  const otherCard = transferCard(alice, other.workflowId);
  await otherCard.waitFor({ timeout: 15_000 });
  await otherCard.getByLabel('Account').selectOption('85-999');
  await otherCard.getByRole('button', { name: 'Refund to this account' }).click();
  await outcome(alice, new RegExp(`^Refund to this account ${other.workflowId}: done; it is now failed\\.$`));
  expect(await other.query(getStatus)).toMatchObject({
    refundedTo: '85-999',
    resolution: { action: 'refundTo', account: '85-999', operator: 'alice' },
  });
});

test('four eyes: carol proposes and cannot approve her own proposal; bob approves; both names are in history', async () => {
  const handle = await parked();
  const carol = await signIn('carol');
  const card = transferCard(carol, handle.workflowId);
  await card.waitFor({ timeout: 15_000 });
  await card.getByLabel('What was done').fill('Refunded by cheque 1001');
  await card.getByRole('button', { name: 'Propose a manual resolution' }).click();
  await outcome(carol, /: done; it waits for review again\.$/);
  await card.getByRole('button', { name: 'Approve the resolution' }).waitFor();
  await card.getByRole('button', { name: 'Approve the resolution' }).click();
  await outcome(carol, /was refused: carol proposed this resolution: another operator must approve it\.$/);

  const bob = await signIn('bob');
  const bobsCard = transferCard(bob, handle.workflowId);
  await bobsCard.waitFor({ timeout: 15_000 });
  expect(await bobsCard.textContent()).toContain(
    'carol proposes to resolve it manually: Refunded by cheque 1001',
  );
  await bob.screenshot({ path: path.join(SCREENSHOTS, 'desk-approver.png'), fullPage: true });
  if (process.env.UPDATE_DOCS_SCREENSHOTS) {
    await bob.screenshot({ path: path.join(ROOT, 'docs', 'desk-approver.png'), fullPage: true });
  }
  await bobsCard.getByRole('button', { name: 'Approve the resolution' }).click();
  await outcome(bob, new RegExp(`^Approve the resolution ${handle.workflowId}: done; it is now failed\\.$`));

  const accepted = await acceptedDecisions(handle, true);
  console.log(`Four eyes at the desk, from history: ${accepted.join('; ')}`);
  expect(accepted).toEqual(['resolveManually by carol: Refunded by cheque 1001', 'approveResolution by bob']);
  expect(await handle.query(getStatus)).toMatchObject({
    stage: 'failed',
    resolution: { operator: 'carol', approvedBy: 'bob', approvedAt: expect.any(String) },
  });
});

test('a decision whose answer was lost (a 503 after Temporal took it, then a dropped connection) is sent again by the desk with its key, and made once', async () => {
  const handle = await parked();
  const page = people.get('alice')?.pages()[0] ?? (await signIn('alice'));
  await page.goto(`${base}/desk`);
  const keys: string[] = [];
  // Each POST reaches the API; the first two answers are lost on the way back.
  await page.route(`${base}/reviews/${handle.workflowId}/retry`, async (route) => {
    keys.push(route.request().headers()['idempotency-key'] ?? '(none)');
    const answer = await route.fetch();
    if (keys.length === 1) {
      return route.fulfill({
        status: 503,
        contentType: 'application/problem+json',
        body: JSON.stringify({ type: '/problems/temporal-unavailable', status: 503 }),
      });
    }
    if (keys.length === 2) return route.abort('connectionreset');
    return route.fulfill({ response: answer });
  });
  const card = transferCard(page, handle.workflowId);
  await card.waitFor({ timeout: 15_000 });
  await card.getByRole('button', { name: 'Retry the refund' }).click();
  await outcome(page, new RegExp(`^Retry the refund ${handle.workflowId}: done; it is now failed\\.$`));
  expect(keys).toHaveLength(3);
  expect(new Set(keys).size).toBe(1);
  expect(keys[0]).toMatch(/^[0-9a-f]{32}$/);
  expect(await acceptedDecisions(handle)).toEqual(['retryRefund by alice']);
  await page.unroute(`${base}/reviews/${handle.workflowId}/retry`);
});

test('a page from another origin cannot act with the session, and the desk sends its security headers', async () => {
  const handle = await parked();
  const alice = people.get('alice') ?? (await signIn('alice')).context();
  const page = await alice.newPage();
  // The provider's origin: same host, another port, so the browser still sends the cookie.
  await page.goto(`${provider.issuer}/.well-known/openid-configuration`);
  const sent = await page.evaluate(async (url) => {
    try {
      const response = await fetch(url, { method: 'POST', credentials: 'include', mode: 'no-cors' });
      return response.type;
    } catch (err) {
      return String(err);
    }
  }, `${base}/reviews/${handle.workflowId}/retry`);
  expect(sent).toBe('opaque');
  await sleep(1000);
  expect(await handle.query(getStatus)).toMatchObject({ stage: 'needs-review' });
  expect((await handle.query(getStatus)).resolution).toBeUndefined();
  await page.close();

  const response = await fetch(`${base}/desk/login`, { redirect: 'manual' });
  const headers = Object.fromEntries(response.headers);
  expect(headers).toMatchObject({
    'content-security-policy': expect.stringContaining("frame-ancestors 'none'"),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  });
  await handle.terminate('test over');
});

test('axe-core finds no serious or critical accessibility violation on the desk', async () => {
  const alice = people.get('alice')!;
  const page = alice.pages()[0]!;
  await page.goto(`${base}/desk`);
  await page.getByText('Signed in as alice').waitFor();
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  const violations = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as {
        axe: { run: () => Promise<{ violations: Array<{ id: string; impact: string }> }> };
      }
    ).axe;
    return (await axe.run()).violations.map((v) => `${v.impact} ${v.id}`);
  });
  console.log(`axe-core on the desk: ${violations.length === 0 ? 'no violations' : violations.join(', ')}`);
  expect(violations.filter((v) => /^(serious|critical) /.test(v))).toEqual([]);
});
