// `npm run codec-server`: decodes payloads for the Web UI and the `temporal` CLI with the
// key ring PAYLOAD_KEYS_FILE names. It speaks Temporal's codec server protocol: POST
// /encode and /decode, each taking and returning {"payloads": [...]} in protobuf JSON.
// See docs/encryption.md.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { authSettingsIfSet, jwksVerifier, type TokenVerifier } from './api/auth';
import { Problem } from './api/problems';
import { codecFromEnv, codecServerUrl } from './platform/codec';
import { describeError, loadSettings, StartupError } from './platform/config';

/** A payload as protobuf JSON carries it: metadata values and data in base64. */
interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024; // the server's default payload size limit is 2 MB

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Browser origins allowed to call it (CORS): the Web UI's. */
  origins: string[];
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /**
   * Checks each request's bearer token: /decode needs the scope `payloads:decode`, /encode
   * `payloads:encode`. Without it the server is open, which it allows on loopback only.
   */
  verify?: TokenVerifier;
  /** Where refusals are logged, without any payload. */
  log?: (line: string) => void;
}

/** The scope each route needs when tokens are checked. */
export const CODEC_SCOPES = { '/decode': 'payloads:decode', '/encode': 'payloads:encode' } as const;

export interface RunningCodecServer {
  url: string;
  close(): Promise<void>;
}

export async function startCodecServer(options: CodecServerOptions): Promise<RunningCodecServer> {
  const origins = new Set(options.origins.map((o) => o.replace(/\/+$/, '')));
  const host = options.host ?? '127.0.0.1';
  if (!options.verify && !isLoopback(host)) {
    throw new StartupError(
      `The codec server decrypts every payload for whoever calls it: on ${host} it needs tokens. ` +
        'Set AUTH_JWKS_URL, AUTH_ISSUER and AUTH_AUDIENCE (docs/encryption.md), or bind it to 127.0.0.1.',
    );
  }
  const log = options.log ?? ((line: string) => console.warn(line));
  const server: Server = createServer((req, res) => {
    handle(options, origins, log, req, res).catch((err: unknown) => {
      reply(res, 500, { message: describeError(err) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

async function handle(
  { codec, verify }: CodecServerOptions,
  origins: Set<string>,
  log: (line: string) => void,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  // Browsers send Origin; the `temporal` CLI does not. Only the UI's origin may call from a page.
  const origin = req.headers.origin;
  if (origin !== undefined) {
    if (!origins.has(origin)) return reply(res, 403, { message: `origin ${origin} is not allowed` });
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Vary', 'Origin');
  }
  if (req.method === 'OPTIONS') {
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
    res.setHeader('Access-Control-Max-Age', '600');
    res.writeHead(204).end();
    return;
  }
  const path = new URL(req.url ?? '/', 'http://codec').pathname.replace(/\/+$/, '');
  if (path !== '/encode' && path !== '/decode') return reply(res, 404, { message: 'use /encode or /decode' });
  if (req.method !== 'POST') return reply(res, 405, { message: 'use POST' });
  if (verify) {
    const refusal = await refused(verify, req.headers.authorization, CODEC_SCOPES[path]);
    if (refusal) {
      // Who asked and why it was refused; never the payloads, which are not even read.
      log(`Codec server: refused ${path} from ${origin ?? req.socket.remoteAddress}: ${refusal.message}`);
      return reply(res, refusal.status, { message: refusal.message });
    }
  }

  let body: { payloads?: JsonPayload[] };
  try {
    body = JSON.parse(await readBody(req)) as { payloads?: JsonPayload[] };
  } catch (err) {
    return reply(res, 400, {
      message: `the body must be JSON {"payloads": [...]}: ${(err as Error).message}`,
    });
  }
  if (!Array.isArray(body?.payloads)) return reply(res, 400, { message: 'the body has no "payloads" array' });
  const payloads = body.payloads.map(fromJson);
  try {
    const out = path === '/encode' ? await codec.encode(payloads) : await codec.decode(payloads);
    reply(res, 200, { payloads: out.map(toJson) });
  } catch (err) {
    // EncryptionError names the key id it lacks; it never carries key material.
    reply(res, 400, { message: (err as Error).message });
  }
}

/** Why a request may not use `scope`, or undefined when its token allows it. */
async function refused(
  verify: TokenVerifier,
  authorization: string | undefined,
  scope: string,
): Promise<{ status: number; message: string } | undefined> {
  const token = /^Bearer +(\S+)$/i.exec(authorization ?? '')?.[1];
  if (!token) return { status: 401, message: 'a bearer token is required' };
  try {
    const principal = await verify(token);
    if (!principal.scopes.has(scope)) {
      return { status: 403, message: `the token of ${principal.subject} lacks the scope ${scope}` };
    }
    return undefined;
  } catch (err) {
    if (err instanceof Problem) return { status: err.status, message: err.detail };
    throw err;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
}

function fromJson(p: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]),
    ),
    data: Buffer.from(p.data ?? '', 'base64'),
  };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? []).toString('base64'),
  };
}

/**
 * The origins a dev server's Web UI has: TEMPORAL_UI_URL's, with localhost and 127.0.0.1
 * both allowed, since a browser treats them as different origins.
 */
export function uiOrigins(webUiUrl: string): string[] {
  const url = new URL(webUiUrl);
  const origins = [url.origin];
  for (const [a, b] of [
    ['localhost', '127.0.0.1'],
    ['127.0.0.1', 'localhost'],
  ] as const) {
    if (url.hostname === a) origins.push(url.origin.replace(`//${a}`, `//${b}`));
  }
  return origins;
}

async function main(): Promise<void> {
  const codec = codecFromEnv();
  if (!codec) {
    throw new Error(
      'PAYLOAD_KEYS_FILE is not set: the codec server needs the key ring the worker and clients use.',
    );
  }
  const settings = loadSettings();
  const wanted = new URL(codecServerUrl());
  const origins = uiOrigins(settings.webUiUrl);
  const auth = authSettingsIfSet();
  const server = await startCodecServer({
    codec,
    origins,
    host: wanted.hostname.replace(/^\[|\]$/g, ''),
    port: Number(wanted.port || 80),
    verify: auth && jwksVerifier(auth),
  });
  console.log(
    `Codec server at ${server.url} (POST /encode, /decode), for the Web UI at ${origins.join(', ')}.`,
  );
  console.log(
    auth
      ? `Tokens from ${auth.issuer} for ${auth.audience}: /decode needs ${CODEC_SCOPES['/decode']}, /encode ${CODEC_SCOPES['/encode']}.`
      : 'OPEN: no AUTH_JWKS_URL, so it decodes for anyone who can reach it. Allowed on loopback, for development only.',
  );
  console.log(
    `Point the UI at it: \`npm run server\` does when PAYLOAD_KEYS_FILE is set, or start a dev server with ` +
      `--ui-codec-endpoint ${server.url}; the CLI takes --codec-endpoint ${server.url}. Press Ctrl-C to stop.`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof StartupError ? err.message : describeError(err));
    process.exit(1);
  });
}
