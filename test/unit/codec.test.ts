// The encryption codec, its key ring file and the codec server, without a Temporal server.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  codecFromEnv,
  ENCRYPTED_ENCODING,
  EncryptionCodec,
  EncryptionError,
  KEY_ID_METADATA,
  newKey,
  readKeyRing,
  type KeyRing,
} from '../../src/platform/codec';
import { generateKeyPair } from 'jose';
import { jwksVerifier } from '../../src/api/auth';
import { startCodecServer, uiOrigins, type RunningCodecServer } from '../../src/codec-server';
import { signToken, startTokenIssuer, type TokenIssuer } from '../../tools/token-issuer';
import { DEFAULT_TRANSFER } from '../../src/starter';

// Test keys, generated here and never written outside a temporary directory.
const OLD_KEY = newKey();
const NEW_KEY = newKey();
const ring = (current: string, keys: Record<string, string>): KeyRing => ({
  current,
  keys: new Map(Object.entries(keys).map(([id, k]) => [id, Buffer.from(k, 'base64')])),
});
const text = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString();
const input = defaultPayloadConverter.toPayload(DEFAULT_TRANSFER);
const UI = 'http://localhost:8233';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-codec-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keyFile(name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

describe('EncryptionCodec', () => {
  const codec = new EncryptionCodec(ring('k2', { k1: OLD_KEY, k2: NEW_KEY }));

  test('encrypts with the current key, names it in the metadata, and decodes back to the same payload', async () => {
    const [encoded] = await codec.encode([input]);
    expect(text(encoded!.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
    expect(text(encoded!.metadata![KEY_ID_METADATA])).toBe('k2');
    const bytes = Buffer.from(encoded!.data!);
    for (const secret of ['85-150', '43-812', '250', 'json/plain'])
      expect(bytes.includes(secret)).toBe(false);
    const [decoded] = await codec.decode([encoded!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(DEFAULT_TRANSFER);
    expect(text(decoded!.metadata!.encoding)).toBe('json/plain');
  });

  test('each encoding of the same payload differs (a fresh nonce each time)', async () => {
    const [a, b] = await codec.encode([input, input]);
    expect(Buffer.from(a!.data!).equals(Buffer.from(b!.data!))).toBe(false);
  });

  test('rotation: a payload written with an old key still decodes while the ring holds that key', async () => {
    const [old] = await new EncryptionCodec(ring('k1', { k1: OLD_KEY })).encode([input]);
    const [decoded] = await codec.decode([old!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(DEFAULT_TRANSFER);
  });

  test('a payload that is not encrypted passes through decode unchanged', async () => {
    expect(await codec.decode([input])).toEqual([input]);
  });

  test('a missing key id gives an error naming it and the ids the ring holds, with no key material', async () => {
    const [old] = await new EncryptionCodec(ring('k0', { k0: newKey() })).encode([input]);
    const error = await codec.decode([old!]).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(EncryptionError);
    expect((error as Error).message).toBe(
      'A payload is encrypted with key "k0", which the key ring does not hold (it holds "k1", "k2"). ' +
        'Add that key to PAYLOAD_KEYS_FILE to read it.',
    );
  });

  test('a wrong key under the same id gives an error naming the id, with no key material', async () => {
    const wrong = newKey();
    const [encoded] = await new EncryptionCodec(ring('k2', { k2: wrong })).encode([input]);
    const error = (await codec.decode([encoded!]).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(EncryptionError);
    expect(error.message).toMatch(/^Cannot decrypt a payload with key "k2": /);
    for (const key of [wrong, NEW_KEY, OLD_KEY]) expect(error.message).not.toContain(key);
  });

  test('a payload relabelled with another key id fails to decrypt', async () => {
    const [encoded] = await codec.encode([input]);
    const relabelled: Payload = {
      ...encoded!,
      metadata: { ...encoded!.metadata, [KEY_ID_METADATA]: Buffer.from('k1') },
    };
    await expect(codec.decode([relabelled])).rejects.toThrow('Cannot decrypt a payload with key "k1"');
  });
});

describe('the key ring file (PAYLOAD_KEYS_FILE)', () => {
  test('unset: no codec, so the defaults stay as they were', () => {
    expect(codecFromEnv({})).toBeUndefined();
  });

  test('reads the current key id and every key', () => {
    const file = keyFile('ring.json', JSON.stringify({ current: 'b', keys: { a: OLD_KEY, b: NEW_KEY } }));
    const read = readKeyRing(file);
    expect(read.current).toBe('b');
    expect([...read.keys.keys()]).toEqual(['a', 'b']);
    expect(codecFromEnv({ PAYLOAD_KEYS_FILE: file })).toBeInstanceOf(EncryptionCodec);
  });

  test.each([
    ['not JSON', `{"current": "a", "keys": {"a": "${NEW_KEY}"`, /it is not valid JSON\.$/],
    ['no current key', JSON.stringify({ keys: { a: NEW_KEY } }), /must be JSON like/],
    ['a current key not in keys', JSON.stringify({ current: 'z', keys: { a: NEW_KEY } }), /"z" is not among/],
    [
      'a short key',
      JSON.stringify({ current: 'a', keys: { a: NEW_KEY.slice(0, 20) } }),
      /key "a" must be 32/,
    ],
  ])('%s: a clear error that never quotes the key', (_name, content, message) => {
    const file = keyFile('bad.json', content);
    let error: Error | undefined;
    try {
      readKeyRing(file);
    } catch (err) {
      error = err as Error;
    }
    expect(error).toBeInstanceOf(EncryptionError);
    expect(error!.message).toMatch(message);
    expect(error!.message).not.toContain(NEW_KEY.slice(0, 12));
  });

  test('a missing file names the path', () => {
    expect(() => readKeyRing(path.join(dir, 'nope.json'))).toThrow(
      /Cannot read the key ring .*nope\.json: ENOENT/,
    );
  });
});

describe('the codec server', () => {
  const codec = new EncryptionCodec(ring('k1', { k1: NEW_KEY }));
  let server: RunningCodecServer;
  beforeAll(async () => {
    server = await startCodecServer({ codec, origins: uiOrigins(UI) });
  });
  afterAll(() => server.close());

  const post = (route: string, body: unknown, origin = UI) =>
    fetch(`${server.url}${route}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', Origin: origin },
      body: JSON.stringify(body),
    });
  const json = (p: Payload) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(p.data!).toString('base64'),
  });

  test('binds 127.0.0.1 by default', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('/decode returns the payload as it was before encryption, with CORS for the UI origin', async () => {
    const [encoded] = await codec.encode([input]);
    const res = await post('/decode', { payloads: [json(encoded!)] });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI);
    const body = (await res.json()) as {
      payloads: Array<{ metadata: Record<string, string>; data: string }>;
    };
    expect(body.payloads).toEqual([json(input)]);
    expect(JSON.parse(Buffer.from(body.payloads[0]!.data, 'base64').toString())).toEqual(DEFAULT_TRANSFER);
  });

  test('/encode encrypts with the current key', async () => {
    const res = await post('/encode', { payloads: [json(input)] });
    const body = (await res.json()) as { payloads: Array<{ metadata: Record<string, string> }> };
    expect(Buffer.from(body.payloads[0]!.metadata[KEY_ID_METADATA]!, 'base64').toString()).toBe('k1');
  });

  test('the preflight allows the UI origin and the headers the UI sends', async () => {
    const res = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://127.0.0.1:8233', 'Access-Control-Request-Method': 'POST' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/);
  });

  test('another origin is refused, with no CORS header', async () => {
    const [encoded] = await codec.encode([input]);
    const res = await post('/decode', { payloads: [json(encoded!)] }, 'http://evil.example');
    expect(res.status).toBe(403);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  test('a payload with an unknown key id: 400 naming the id', async () => {
    const [other] = await new EncryptionCodec(ring('k9', { k9: newKey() })).encode([input]);
    const res = await post('/decode', { payloads: [json(other!)] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/key "k9", which the key ring/);
  });
});

describe('the codec server with tokens', () => {
  const codec = new EncryptionCodec(ring('k1', { k1: NEW_KEY }));
  let issuer: TokenIssuer;
  let server: RunningCodecServer;
  const refusals: string[] = [];
  beforeAll(async () => {
    issuer = await startTokenIssuer();
    server = await startCodecServer({
      codec,
      origins: uiOrigins(UI),
      verify: jwksVerifier(issuer),
      log: (line) => refusals.push(line),
    });
  });
  afterAll(async () => {
    await server.close();
    await issuer.close();
  });

  const decode = async (token?: string) => {
    const [encoded] = await codec.encode([input]);
    const data = Buffer.from(encoded!.data!).toString('base64');
    const res = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Origin: UI,
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ payloads: [{ metadata: {}, data }] }),
    });
    return { status: res.status, body: (await res.json()) as { message?: string }, data };
  };

  test.each([
    ['no token', async () => undefined, 401, 'a bearer token is required'],
    [
      'a token signed by a key the issuer never published',
      async () =>
        signToken((await generateKeyPair('ES256')).privateKey, 'test', issuer.issuer, {
          scope: 'payloads:decode',
        }),
      401,
      'The token is not a valid signed JWT from the expected issuer.',
    ],
    [
      'a token without payloads:decode',
      () => issuer.sign({ subject: 'ana', scope: 'transfers:read' }),
      403,
      'the token of ana lacks the scope payloads:decode',
    ],
  ])('%s: refused, and the refusal is logged without the payload', async (_, token, status, message) => {
    refusals.length = 0;
    const answer = await decode(await token());
    expect({ status: answer.status, message: answer.body.message }).toEqual({ status, message });
    expect(refusals).toEqual([`Codec server: refused /decode from ${UI}: ${message}`]);
    expect(refusals.join('\n')).not.toContain(answer.data);
  });

  test('a token with payloads:decode decodes', async () => {
    const [encoded] = await codec.encode([input]);
    const res = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Bearer ${await issuer.sign({ scope: 'payloads:decode' })}`,
      },
      body: JSON.stringify({
        payloads: [
          {
            metadata: Object.fromEntries(
              Object.entries(encoded!.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
            ),
            data: Buffer.from(encoded!.data!).toString('base64'),
          },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { payloads: Array<{ data: string }> };
    expect(JSON.parse(Buffer.from(body.payloads[0]!.data, 'base64').toString())).toEqual(DEFAULT_TRANSFER);
  });

  test('without tokens it will not listen beyond loopback', async () => {
    await expect(startCodecServer({ codec, origins: [], host: '0.0.0.0' })).rejects.toThrow(
      /on 0\.0\.0\.0 it needs tokens\. Set AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE/,
    );
  });
});
