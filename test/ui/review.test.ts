// The review path in the Web UI: the list filtered on TransferStatus finds the parked
// transfer, its page shows the summary and current details, and after `review resolve`
// in a terminal the page shows it failed with the operator's note.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { BrowserContext, Page } from 'playwright-core';
import { createActivities } from '../../src/activities';
import { parseFaults, UnreliableBank } from '../../src/bank/faults';
import { getStatus } from '../../src/contract';
import { startDevServer } from '../../tools/dev-server';
import { freeDevServerPort, ROOT, runScript, ScriptProcess, testWorker } from '../support/helpers';
import { launchChromium } from './browser';

jest.setTimeout(120_000);

const SCREENSHOTS = path.join(ROOT, 'test-results', 'ui');
const WORKFLOW_ID = 'pay-invoice-704';

let server: Awaited<ReturnType<typeof startDevServer>>;
let port: number;
let browser: BrowserContext;
let profile: string;

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  port = await freeDevServerPort();
  server = await startDevServer({ ip: '127.0.0.1', port, ui: true, uiPort: port + 1000 });
  profile = mkdtempSync(path.join(tmpdir(), 'money-transfer-chromium-'));
  browser = await launchChromium(profile);
});

afterAll(async () => {
  await browser?.close();
  await server?.teardown();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** The page's text, with that of its frames: the UI renders Markdown metadata in an iframe. */
async function text(page: Page): Promise<string> {
  const texts = await Promise.all(
    page.frames().map((frame) =>
      frame
        .locator('body')
        .innerText()
        .catch(() => ''),
    ),
  );
  return texts.join('\n');
}

async function waitForText(page: Page, wanted: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await text(page)).includes(wanted)) {
    if (Date.now() > deadline) throw new Error(`the page never showed '${wanted}':\n${await text(page)}`);
    await page.waitForTimeout(200);
  }
}

test('a parked transfer: found by TransferStatus in the list, its metadata shown, resolved from the terminal', async () => {
  const env = { TEMPORAL_ADDRESS: `localhost:${port}`, TEMPORAL_TASK_QUEUE: 'review-ui' };
  const connection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  // The deposit fails and the bank refuses every refund: the transfer parks for review.
  const bank = new UnreliableBank('bank', { faults: parseFaults('deposit:reject,refund:reject') });
  const worker = await testWorker(connection, 'review-ui', createActivities(bank));
  const starter = new ScriptProcess('src/starter.js', ['--workflow-id', WORKFLOW_ID], env);
  try {
    await worker.runUntil(async () => {
      await starter.waitFor('Web UI: ');
      const link = /^Web UI: (\S+)$/m.exec(starter.stdout)![1]!;
      const handle = client.workflow.getHandle(WORKFLOW_ID);
      while ((await handle.query(getStatus)).stage !== 'needs-review')
        await new Promise((r) => setTimeout(r, 100));

      const list = await browser.newPage();
      const query = encodeURIComponent('TransferStatus="needs-review"');
      await list.goto(`http://localhost:${port + 1000}/namespaces/default/workflows?query=${query}`, {
        waitUntil: 'networkidle',
      });
      await list.getByText(WORKFLOW_ID).first().waitFor({ timeout: 15_000 });
      expect(await text(list)).toContain(WORKFLOW_ID);
      await list.screenshot({ path: path.join(SCREENSHOTS, 'review-list.png'), fullPage: true });
      await list.close();

      // A running execution's page keeps polling, so it never goes network-idle.
      const page = await browser.newPage();
      await page.goto(link, { waitUntil: 'domcontentloaded' });
      await page.getByText('250 from 85-150 to 43-812 (ref 12345)').first().waitFor({ timeout: 15_000 });
      // The current details come from the running worker, in the User Metadata tab.
      await page.getByText('User Metadata', { exact: true }).first().click();
      await waitForText(page, 'Needs review. 250 is owed to 85-150.');
      const before = await text(page);
      expect(before).toMatch(/\nRunning\npay-invoice-704\n/);
      expect(before).toContain('retryRefund');
      await page.screenshot({ path: path.join(SCREENSHOTS, 'review-parked.png'), fullPage: true });
      if (process.env.UPDATE_DOCS_SCREENSHOTS) {
        await page.screenshot({
          path: path.join(ROOT, 'docs', 'web-ui-review.png'),
          clip: { x: 72, y: 60, width: 1208, height: 820 },
        });
      }

      const resolved = await runScript(
        'src/review-cli.js',
        ['resolve', WORKFLOW_ID, '--note', 'Refunded by cheque 1001', '--operator', 'alice'],
        env,
      );
      expect(resolved.code).toBe(0);
      const approved = await runScript(
        'src/review-cli.js',
        ['approve', WORKFLOW_ID, '--operator', 'bob'],
        env,
      );
      expect(approved.code).toBe(0);
      expect((await starter.exited).code).toBe(1);
      const failure = await handle.result().catch((err: unknown) => (err as { cause?: unknown }).cause);
      expect(failure).toMatchObject({
        type: 'ResolvedManually',
        message: 'Resolved manually by alice, approved by bob: Refunded by cheque 1001',
      });

      await page.goto(link, { waitUntil: 'domcontentloaded' });
      await waitForText(page, 'Resolved manually by alice, approved by bob: Refunded by cheque 1001');
      expect(await text(page)).toMatch(/\nFailed\npay-invoice-704\n/);
      await page.screenshot({ path: path.join(SCREENSHOTS, 'review-resolved.png'), fullPage: true });
      await page.close();
    });
  } finally {
    if (starter.child.exitCode === null) {
      starter.child.kill();
      await starter.exited;
    }
    await client.connection.close();
    await connection.close();
  }
});
