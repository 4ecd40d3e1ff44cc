// `npm run test:ui`: the dev server's own Web UI, in headless Chromium, shows what the
// README promises. Needs Debian's chromium (CHROMIUM_PATH overrides /usr/bin/chromium).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import type { BrowserContext, Page } from 'playwright-core';
import { createActivities } from '../../src/activities';
import { BankingService } from '../../src/bank/banking-service';
import { startDevServer } from '../../tools/dev-server';
import { loadDrilledActivities } from '../support/drill';
import { DEFAULT_TASK_QUEUE } from '../../src/contract';
import { launchChromium } from './browser';
import { freeDevServerPort, ROOT, runScript, testWorker } from '../support/helpers';

jest.setTimeout(120_000);

const SCREENSHOTS = path.join(ROOT, 'test-results', 'ui');
const DOCS_SCREENSHOTS = { 'pay-invoice-701': 'web-ui-success.png', 'pay-invoice-703': 'web-ui-drill.png' };

let server: Awaited<ReturnType<typeof startDevServer>>;
let port: number;
let browser: BrowserContext;
let profile: string;
const links = new Map<string, { link: string; stdout: string; code: number | null }>();

/** Runs the starter as a child process against a worker here, and keeps the link it printed. */
async function transfer(
  name: string,
  args: string[],
  activities = createActivities(new BankingService('bank')),
) {
  // The README's ids and the default queue: this server is the test's own, and the screenshots read like the tutorial.
  const taskQueue = DEFAULT_TASK_QUEUE;
  const connection = await NativeConnection.connect({ address: server.address });
  try {
    const worker = await testWorker(connection, taskQueue, activities);
    const env = { TEMPORAL_ADDRESS: `localhost:${port}`, TEMPORAL_TASK_QUEUE: taskQueue };
    const run = await worker.runUntil(runScript('src/starter.js', ['--workflow-id', name, ...args], env));
    const link = /^Web UI: (\S+)$/m.exec(run.stdout)?.[1];
    if (!link) throw new Error(`the starter printed no Web UI link:\n${run.stdout}\n${run.stderr}`);
    links.set(name, { link, stdout: run.stdout, code: run.code });
  } finally {
    await connection.close();
  }
}

async function open(link: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(link, { waitUntil: 'networkidle' });
  await page.getByRole('heading', { name: 'Event History' }).waitFor();
  return page;
}

/** Saves the page; with UPDATE_DOCS_SCREENSHOTS=1 also a cropped copy (header and timeline) into docs/. */
async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
  const docsFile = DOCS_SCREENSHOTS[name as keyof typeof DOCS_SCREENSHOTS];
  if (process.env.UPDATE_DOCS_SCREENSHOTS && docsFile) {
    const clip = { x: 72, y: 60, width: 1208, height: 820 };
    await page.screenshot({ path: path.join(ROOT, 'docs', docsFile), clip });
  }
}

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  port = await freeDevServerPort();
  server = await startDevServer({ ip: '127.0.0.1', port, ui: true, uiPort: port + 1000 });
  profile = mkdtempSync(path.join(tmpdir(), 'money-transfer-chromium-'));
  browser = await launchChromium(profile);
  await transfer('pay-invoice-701', []);
  await transfer('pay-invoice-702', ['--amount', '25000']);
  await transfer('pay-invoice-703', [], loadDrilledActivities()(new BankingService('bank')));
});

afterAll(async () => {
  await browser?.close();
  await server?.teardown();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('the starter printed links to this Web UI, one per execution', () => {
  expect([...links.values()].map((l) => l.code)).toEqual([0, 1, 1]);
  for (const [name, { link }] of links) {
    expect(link).toMatch(
      new RegExp(
        `^http://localhost:${port + 1000}/namespaces/default/workflows/${name}/[0-9a-f-]{36}/history$`,
      ),
    );
  }
});

test.each([
  ['pay-invoice-701', 'Completed', ['withdraw', 'deposit'], []],
  ['pay-invoice-702', 'Failed', ['withdraw'], ['deposit', 'refund']],
  ['pay-invoice-703', 'Failed', ['withdraw', 'refund'], []],
])('%s: the link opens its page, showing %s and its activities', async (name, status, shown, absent) => {
  const { link } = links.get(name)!;
  const page = await open(link);
  try {
    expect(page.url()).toBe(link); // no redirect: the link is the execution's own page
    const runId = link.split('/').at(-2)!;
    await page.getByRole('heading', { name, exact: true }).waitFor({ timeout: 5000 }); // the id is the page title
    const text = await page.locator('body').innerText();
    expect(text).toContain(name);
    expect(text).toContain(runId);
    expect(text).toMatch(new RegExp(`\\n${status}\\n${name}\\n`)); // the status badge beside the id
    expect(text).toContain('moneyTransfer');
    for (const activity of shown) expect(text).toMatch(new RegExp(`\\b${activity}\\b`));
    for (const activity of absent) expect(text).not.toMatch(new RegExp(`\\b${activity}\\b`));
    if (name === 'pay-invoice-703') {
      expect(text).toContain('3 • deposit'); // the timeline marks the deposit's 3 attempts
      expect(text).toMatch(/Activity Task Started\s+Attempt\s+3/);
      expect(text).toContain('This deposit has failed.');
    }
    if (name === 'pay-invoice-702') expect(text).toContain('InsufficientFundsError');
    await screenshot(page, name);
  } finally {
    await page.close();
  }
});

test("the Queries tab lists getStatus, and running it shows the transfer's stage and ids", async () => {
  // A query needs a worker to answer it, so run one on the queue the transfer used.
  const connection = await NativeConnection.connect({ address: server.address });
  const page = await browser.newPage();
  try {
    const worker = await testWorker(connection, DEFAULT_TASK_QUEUE);
    const text = await worker.runUntil(async () => {
      await page.goto(links.get('pay-invoice-701')!.link.replace(/\/history$/, '/query'), {
        waitUntil: 'networkidle',
      });
      await page.getByRole('button', { name: 'Run Query' }).waitFor();
      expect(await page.content()).toContain('getStatus'); // offered as the query type
      await page.getByRole('button', { name: 'Run Query' }).click();
      await page.getByText('"completed"').waitFor();
      return page.locator('main').innerText();
    });
    expect(text).toMatch(/"stage": "completed"/);
    expect(text).toMatch(/"withdrawId": "W-[A-Z0-9]{10}"/);
    expect(text).toMatch(/"depositId": "D-[A-Z0-9]{10}"/);
    await screenshot(page, 'pay-invoice-701-query');
  } finally {
    await page.close();
    await connection.close();
  }
});

test("the demo's link opens the demo's execution", async () => {
  const { stdout, code } = await runScript('tools/demo.js', [], { TEMPORAL_ADDRESS: `localhost:${port}` });
  expect(code).toBe(0);
  const link = /^Web UI: (\S+)$/m.exec(stdout)?.[1];
  expect(link).toMatch(
    new RegExp(`^http://localhost:${port + 1000}/namespaces/default/workflows/pay-invoice-701/`),
  );
  const page = await open(link!);
  try {
    const text = await page.locator('body').innerText();
    expect(text).toMatch(/\nCompleted\npay-invoice-701\n/); // the demo's run, a later one than the test's
    expect(text).toContain(link!.split('/').at(-2)!);
  } finally {
    await page.close();
  }
});
