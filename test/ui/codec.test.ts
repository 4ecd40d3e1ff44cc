// The Web UI and the codec server, in headless Chromium: a dev server started as
// `npm run server` starts it with a key ring (--ui-codec-endpoint), an encrypted transfer,
// and its page with the codec server down (ciphertext) and up (the transfer as it was).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { BrowserContext, Page } from 'playwright-core';
import { createActivities } from '../../src/activities';
import { BankingService } from '../../src/bank/banking-service';
import { EncryptionCodec, newKey, readKeyRing } from '../../src/platform/codec';
import { startDevServer } from '../../tools/dev-server';
import { startCodecServer, uiOrigins, type RunningCodecServer } from '../../src/codec-server';
import { freeDevServerPort, freePort, ROOT, testServer, transferDetails } from '../support/helpers';
import { launchChromium } from './browser';

jest.setTimeout(120_000);

const SCREENSHOTS = path.join(ROOT, 'test-results', 'ui');

let server: Awaited<ReturnType<typeof startDevServer>>;
let port: number;
let codecPort: number;
let codec: EncryptionCodec;
let codecServer: RunningCodecServer | undefined;
let browser: BrowserContext;
let dir: string;
let link: string;
const details = transferDetails({ amount: 1987 });

beforeAll(async () => {
  mkdirSync(SCREENSHOTS, { recursive: true });
  dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-codec-ui-'));
  // A test key ring, generated for this run only.
  const keys = path.join(dir, 'keys.json');
  writeFileSync(keys, JSON.stringify({ current: 'test-key-1', keys: { 'test-key-1': newKey() } }), {
    mode: 0o600,
  });
  codec = new EncryptionCodec(readKeyRing(keys));
  port = await freeDevServerPort();
  codecPort = await freePort();
  // The arguments tools/server.ts adds when PAYLOAD_KEYS_FILE is set.
  server = await startDevServer({
    ip: '127.0.0.1',
    port,
    ui: true,
    uiPort: port + 1000,
    extraArgs: ['--ui-codec-endpoint', `http://127.0.0.1:${codecPort}`],
  });

  const dataConverter = { payloadCodecs: [codec] };
  const connection = await NativeConnection.connect({ address: server.address });
  const client = new Client({
    connection: await Connection.connect({ address: server.address }),
    dataConverter,
  });
  try {
    const worker = await Worker.create({
      connection,
      taskQueue: 'codec-ui',
      workflowBundle: { codePath: testServer().bundlePath },
      activities: createActivities(new BankingService('bank')),
      dataConverter,
    });
    const handle = await client.workflow.start('moneyTransfer', {
      taskQueue: 'codec-ui',
      workflowId: 'pay-invoice-701',
      args: [details],
    });
    await worker.runUntil(handle.result());
    link = `http://localhost:${port + 1000}/namespaces/default/workflows/pay-invoice-701/${handle.firstExecutionRunId}/history`;
  } finally {
    await client.connection.close();
    await connection.close();
  }

  mkdirSync(path.join(dir, 'profile'));
  browser = await launchChromium(path.join(dir, 'profile'));
});

afterAll(async () => {
  await browser?.close();
  await codecServer?.close();
  await server?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function open(): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(link, { waitUntil: 'networkidle' });
  await page.getByRole('heading', { name: 'Event History' }).waitFor();
  return page;
}

test('without the codec server, the page shows ciphertext, not the transfer', async () => {
  const page = await open();
  try {
    const text = await page.locator('body').innerText();
    expect(text).toContain('pay-invoice-701');
    expect(text).toContain('Codec Server could not connect');
    // The raw payload, its metadata in base64: the encoding, the key id, and the ciphertext.
    expect(text).toContain(`"encoding": "${Buffer.from('binary/encrypted').toString('base64')}"`);
    expect(text).toContain(`"encryption-key-id": "${Buffer.from('test-key-1').toString('base64')}"`);
    expect(text).not.toContain(details.sourceAccount);
    expect(text).not.toContain(details.referenceId);
    expect(text).not.toContain('Transfer complete');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'codec-off.png'), fullPage: true });
  } finally {
    await page.close();
  }
});

test('with the codec server, the page shows the input and result decoded', async () => {
  codecServer = await startCodecServer({
    codec,
    origins: uiOrigins(`http://localhost:${port + 1000}`),
    port: codecPort,
  });
  const page = await open();
  try {
    await page.getByText('Transfer complete').first().waitFor({ timeout: 10_000 });
    const text = await page.locator('body').innerText();
    expect(text).toContain(details.sourceAccount);
    expect(text).toContain(details.targetAccount);
    expect(text).toContain(details.referenceId);
    expect(text).toContain('1987');
    expect(text).not.toContain(Buffer.from('binary/encrypted').toString('base64'));
    expect(text).not.toContain('Codec Server could not connect');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'codec-on.png'), fullPage: true });
    if (process.env.UPDATE_DOCS_SCREENSHOTS) {
      await page.screenshot({
        path: path.join(ROOT, 'docs', 'web-ui-codec.png'),
        clip: { x: 72, y: 60, width: 1208, height: 820 },
      });
    }
  } finally {
    await page.close();
  }
});
