// Payload encryption against the test server: the worker and starter processes read the
// key ring from PAYLOAD_KEYS_FILE, the server stores only ciphertext, and a history
// written with an old key still decodes and replays after a rotation.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { BankingService } from '../../src/bank/banking-service';
import { EncryptionCodec, KEY_ID_METADATA, newKey, readKeyRing } from '../../src/platform/codec';
import type { PaymentDetails } from '../../src/contract';
import {
  freePort,
  ROOT,
  runScript,
  ScriptProcess,
  startWorkerProcess,
  testServer,
  transferDetails,
  uniqueId,
} from '../support/helpers';

jest.setTimeout(60_000);

// Test keys, generated for this run and written only to a temporary directory.
let dir: string;
let oldRing: string; // { current: k1 }
let newRing: string; // { current: k2, keys: k1, k2 }: k1 rotated out for writing, kept for reading
let plain: Client; // no codec: sees what the server stores
let connection: NativeConnection;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-codec-'));
  const k1 = newKey();
  oldRing = path.join(dir, 'old.json');
  newRing = path.join(dir, 'new.json');
  writeFileSync(oldRing, JSON.stringify({ current: 'k1', keys: { k1 } }), { mode: 0o600 });
  writeFileSync(newRing, JSON.stringify({ current: 'k2', keys: { k1, k2: newKey() } }), { mode: 0o600 });
  plain = new Client({ connection: await Connection.connect({ address: testServer().address }) });
  connection = await NativeConnection.connect({ address: testServer().address });
});
afterAll(async () => {
  await plain.connection.close();
  await connection.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The history exactly as the server returns it, serialized to bytes, and the parsed events. */
async function rawHistory(workflowId: string) {
  const history = await plain.workflow.getHandle(workflowId).fetchHistory();
  return { bytes: Buffer.from(temporal.api.history.v1.History.encode(history).finish()), history };
}

/** The payload strings a transfer's history would show in plain text. */
function secretsOf(details: PaymentDetails): string[] {
  // The amount as the JSON payload spells it: a bare 1987 could also be a digit run in a
  // worker's identity (pid@host) or a random id, which are not payloads.
  return [details.sourceAccount, details.targetAccount, `"amount":${details.amount}`, details.referenceId];
}

/** Runs the starter and the worker as processes, as people do, with this environment. */
async function transferWithProcesses(details: PaymentDetails, env: Record<string, string>) {
  const workflowId = uniqueId('codec');
  const childEnv = { TEMPORAL_ADDRESS: testServer().address, TEMPORAL_TASK_QUEUE: uniqueId('queue'), ...env };
  const { worker } = await startWorkerProcess(childEnv);
  try {
    const args = [
      '--workflow-id',
      workflowId,
      '--amount',
      String(details.amount),
      '--reference',
      details.referenceId,
    ];
    const run = await runScript('src/starter.js', args, childEnv);
    return { workflowId, run };
  } finally {
    await worker.stop();
  }
}

describe('with PAYLOAD_KEYS_FILE set', () => {
  const details = transferDetails({ amount: 1987 });
  let workflowId: string;
  let bytes: Buffer;
  let history: temporal.api.history.v1.IHistory;

  beforeAll(async () => {
    const transfer = await transferWithProcesses(details, { PAYLOAD_KEYS_FILE: newRing });
    workflowId = transfer.workflowId;
    expect(transfer.run.code).toBe(0);
    expect((await plain.workflow.getHandle(workflowId).describe()).status.name).toBe('COMPLETED');
    ({ bytes, history } = await rawHistory(workflowId));
  });

  test('the raw history holds no account number, amount or reference', () => {
    expect(bytes.length).toBeGreaterThan(1000);
    const found = secretsOf(details).filter((secret) => bytes.includes(secret));
    mkdirSync(path.join(ROOT, 'test-results', 'codec'), { recursive: true });
    writeFileSync(
      path.join(ROOT, 'test-results', 'codec', 'raw-history.txt'),
      `${bytes.length} bytes of history; searched for ${JSON.stringify(secretsOf(details))}; found ${JSON.stringify(found)}\n`,
    );
    expect(found).toEqual([]);
    expect(bytes.includes('Transfer complete')).toBe(false);
    expect(bytes.includes('binary/encrypted')).toBe(true);
  });

  test('every payload in it is encrypted with the current key, k2', () => {
    const payloads = payloadsOf(history);
    expect(payloads.length).toBeGreaterThanOrEqual(6); // input, 2 activity inputs and results, result
    for (const p of payloads) {
      expect(Buffer.from(p.metadata![KEY_ID_METADATA]!).toString()).toBe('k2');
    }
  });

  test("through the codec, the workflow's input and result read as before", async () => {
    const codec = new EncryptionCodec(readKeyRing(newRing));
    const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
    const [input] = await codec.decode(started.input!.payloads as Payload[]);
    expect(defaultPayloadConverter.fromPayload(input!)).toEqual(details);
    const encrypted = new Client({
      connection: plain.connection,
      dataConverter: { payloadCodecs: [codec] },
    });
    expect(await encrypted.workflow.getHandle(workflowId).result()).toMatch(/^Transfer complete/);
  });

  test('without the key, a client cannot read the result', async () => {
    await expect(plain.workflow.getHandle(workflowId).result()).rejects.toThrow(/binary\/encrypted/);
  });
});

test('control: without PAYLOAD_KEYS_FILE the same search finds every value', async () => {
  const details = transferDetails({ amount: 1987 });
  const { workflowId, run } = await transferWithProcesses(details, {});
  expect(run.code).toBe(0);
  const { bytes } = await rawHistory(workflowId);
  expect(secretsOf(details).filter((secret) => bytes.includes(secret))).toEqual(secretsOf(details));
});

describe('rotation', () => {
  const details = transferDetails({ amount: 1234 });
  const workflowId = uniqueId('rotation');
  let history: temporal.api.history.v1.IHistory;
  const workerOptions = (ring: string) => ({
    workflowBundle: { codePath: testServer().bundlePath },
    dataConverter: { payloadCodecs: [new EncryptionCodec(readKeyRing(ring))] },
  });

  beforeAll(async () => {
    // Written with the old ring, whose current key is k1.
    const taskQueue = uniqueId('queue');
    const options = workerOptions(oldRing);
    const worker = await Worker.create({
      connection,
      taskQueue,
      activities: createActivities(new BankingService('bank')),
      ...options,
    });
    const client = new Client({ connection: plain.connection, dataConverter: options.dataConverter });
    await worker.runUntil(
      client.workflow.execute('moneyTransfer', { taskQueue, workflowId, args: [details] }),
    );
    history = (await rawHistory(workflowId)).history;
    expect(
      new Set(payloadsOf(history).map((p) => Buffer.from(p.metadata![KEY_ID_METADATA]!).toString())),
    ).toEqual(new Set(['k1']));
  });

  test('a history written with the old key decodes with the new ring', async () => {
    const client = new Client({
      connection: plain.connection,
      dataConverter: workerOptions(newRing).dataConverter,
    });
    expect(await client.workflow.getHandle(workflowId).result()).toMatch(/^Transfer complete/);
  });

  test('and replays with it', async () => {
    await expect(
      Worker.runReplayHistory(workerOptions(newRing), history as temporal.api.history.v1.History, workflowId),
    ).resolves.toBeUndefined();
  });

  test('a ring without the old key fails to replay, naming the key it lacks', async () => {
    const ring = path.join(dir, 'k2-only.json');
    writeFileSync(ring, JSON.stringify({ current: 'k2', keys: { k2: newKey() } }), { mode: 0o600 });
    const error = await Worker.runReplayHistory(
      workerOptions(ring),
      history as temporal.api.history.v1.History,
      workflowId,
    ).catch((err: unknown) => err as Error);
    expect(error).toBeInstanceOf(Error);
    // The replay error quotes the codec's message inside the workflow task failure.
    expect((error as Error).message).toMatch(/key \\"k1\\", which the key ring does not hold/);
  });

  test('a client without the old key gets the same clear error', async () => {
    const ring = path.join(dir, 'k2-only.json');
    const client = new Client({
      connection: plain.connection,
      dataConverter: workerOptions(ring).dataConverter,
    });
    const error = await client.workflow
      .getHandle(workflowId)
      .result()
      .catch((err: unknown) => err);
    expect(error).not.toBeInstanceOf(WorkflowFailedError);
    expect((error as Error).message).toMatch(/^A payload is encrypted with key "k1"/);
  });
});

/** Every payload a history's events carry: inputs and results of the workflow and activities. */
function payloadsOf(history: temporal.api.history.v1.IHistory): temporal.api.common.v1.IPayload[] {
  const out: temporal.api.common.v1.IPayload[] = [];
  for (const e of history.events ?? []) {
    out.push(
      ...(e.workflowExecutionStartedEventAttributes?.input?.payloads ?? []),
      ...(e.activityTaskScheduledEventAttributes?.input?.payloads ?? []),
      ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
      ...(e.workflowExecutionCompletedEventAttributes?.result?.payloads ?? []),
    );
  }
  return out;
}

describe('npm run codec-server', () => {
  test('without AUTH_* it says at start that it is open, and it refuses to listen beyond loopback', async () => {
    const port = await freePort();
    const open = new ScriptProcess('src/codec-server.js', [], {
      PAYLOAD_KEYS_FILE: newRing,
      CODEC_SERVER_URL: `http://127.0.0.1:${port}`,
      AUTH_JWKS_URL: undefined,
      AUTH_ISSUER: undefined,
      AUTH_AUDIENCE: undefined,
    });
    try {
      await open.waitFor('OPEN: no AUTH_JWKS_URL, so it decodes for anyone who can reach it.');
    } finally {
      open.child.kill('SIGTERM');
      await open.exited;
    }
    const wide = await runScript('src/codec-server.js', [], {
      PAYLOAD_KEYS_FILE: newRing,
      CODEC_SERVER_URL: `http://0.0.0.0:${port}`,
    });
    expect(wide.code).toBe(1);
    expect(wide.stderr).toContain(
      'on 0.0.0.0 it needs tokens. Set AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE',
    );
  });
});
