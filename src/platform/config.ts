import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { DataConverter } from '@temporalio/common';
import { codecFromEnv } from './codec';
import { chainMessages, DEFAULT_TASK_QUEUE } from '../contract';
import { tracesExporterFromEnv, tracingClientInterceptors, type TracesExporter } from './telemetry';

export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_NAMESPACE = 'default';

/** Where and how to reach Temporal, read from Temporal's standard configuration. */
export interface Settings {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Base URL of the Web UI, for links to executions. */
  webUiUrl: string;
  /** Address, TLS, API key and gRPC metadata, ready for `Connection` or `NativeConnection`. */
  connection: ReturnType<typeof loadClientConnectConfig>['connectionOptions'] & { address: string };
  /** Payload encryption when PAYLOAD_KEYS_FILE names a key ring (docs/encryption.md); else none. */
  dataConverter?: DataConverter;
  /** Where traces go (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT; docs/tracing.md); else off. */
  tracing?: TracesExporter;
}

/**
 * Reads the TOML profile (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) and the TEMPORAL_*
 * variables through @temporalio/envconfig, then fills in the local dev server defaults.
 * TEMPORAL_TASK_QUEUE and TEMPORAL_UI_URL are this project's own additions.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  // envconfig quietly skips a missing file; a path someone set on purpose should exist.
  if (env.TEMPORAL_CONFIG_FILE && !existsSync(env.TEMPORAL_CONFIG_FILE)) {
    throw new StartupError(
      `TEMPORAL_CONFIG_FILE is set to ${env.TEMPORAL_CONFIG_FILE}, but there is no such file.`,
    );
  }
  const overrideEnvVars = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  let loaded: ReturnType<typeof loadClientConnectConfig>;
  try {
    loaded = loadClientConnectConfig({ overrideEnvVars });
  } catch (cause) {
    const file = env.TEMPORAL_CONFIG_FILE ?? 'the default temporal.toml';
    throw new StartupError(
      `Cannot load the Temporal client configuration (${file}): ${(cause as Error).message}`,
      { cause },
    );
  }
  const { connectionOptions, namespace } = loaded;
  if (connectionOptions.apiKey && typeof connectionOptions.apiKey === 'string') {
    secrets.add(connectionOptions.apiKey);
  }
  const address = connectionOptions.address ?? DEFAULT_ADDRESS;
  return {
    address,
    namespace: namespace ?? DEFAULT_NAMESPACE,
    taskQueue: env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    webUiUrl: (env.TEMPORAL_UI_URL || defaultWebUiUrl(address)).replace(/\/+$/, ''),
    connection: { ...connectionOptions, address },
    dataConverter: codecPayloads(env),
    tracing: tracesExporterFromEnv(env),
  };
}

function codecPayloads(env: NodeJS.ProcessEnv): DataConverter | undefined {
  const codec = codecFromEnv(env);
  return codec && { payloadCodecs: [codec] };
}

/** The port of a dev server's Web UI: its gRPC port + 1000 (7233 -> 8233), as `start-dev` picks it. */
export function webUiPort(grpcPort: number): number {
  return grpcPort + 1000;
}

function defaultWebUiUrl(address: string): string {
  const [host, port] = splitAddress(address);
  if (host.endsWith('.tmprl.cloud') || host.endsWith('.api.temporal.io')) return 'https://cloud.temporal.io';
  return `http://${host}:${webUiPort(port)}`;
}

export function splitAddress(address: string): [string, number] {
  const match = /^(.*?)(?::(\d+))?$/.exec(address);
  const host = match?.[1] || 'localhost';
  return [host, match?.[2] ? Number(match[2]) : 7233];
}

export function webUiLink(settings: Settings, workflowId: string, runId: string): string {
  const ns = encodeURIComponent(settings.namespace);
  return `${settings.webUiUrl}/namespaces/${ns}/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
}

/** A command line that makes no sense: the command prints the message and exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** An error whose message says what happened and what to do; `main` prints it alone. */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** Thrown when nothing accepts a connection at the configured address. */
export class ServerUnreachableError extends StartupError {
  override name = 'ServerUnreachableError';
  constructor(address: string, reason: string, options: { cause: unknown }) {
    super(
      `Cannot reach a Temporal server at ${address} (${reason}). ` +
        'Start a local dev server with `npm run server`, or point TEMPORAL_ADDRESS at yours.',
      options,
    );
  }
}

/** Thrown when something answers at the address, but the Temporal connection fails. */
export class ConnectionFailedError extends StartupError {
  override name = 'ConnectionFailedError';
}

/**
 * Why a connection failed, from what a plain TCP connection finds there: nothing (no
 * server), a web server, a TLS server, or a plaintext gRPC server. The SDK's own error
 * ("Failed to connect before the deadline") cannot tell these apart, so TLS and the
 * credentials are blamed only when the evidence points at them.
 */
export async function connectionError(settings: Settings, cause: unknown): Promise<StartupError> {
  const found = await probe(settings.address);
  const address = settings.address;
  const observed = redact(chainMessages(cause));
  if ('refused' in found) return new ServerUnreachableError(address, found.refused, { cause });
  if (found.speaks === 'http/1.1') {
    return new ConnectionFailedError(
      `A web server answers at ${address} (HTTP/1.1), not a Temporal frontend, which speaks gRPC: ` +
        "is it the Web UI's port? A dev server takes connections on 7233 and shows its Web UI on 8233; " +
        'point TEMPORAL_ADDRESS at the first.',
      { cause },
    );
  }
  const tls = Boolean(settings.connection.tls);
  if (found.speaks === 'tls' && !tls) {
    return new ConnectionFailedError(
      `The server at ${address} expects TLS, and TLS is off here: ${observed}. ` +
        'Set TEMPORAL_TLS=true (or the TLS settings of your profile).',
      { cause },
    );
  }
  if (found.speaks === 'h2c' && tls) {
    return new ConnectionFailedError(
      `The server at ${address} speaks plaintext gRPC, and TLS is on here: ${observed}. ` +
        'Unset TEMPORAL_TLS and the TLS settings of your profile for this server.',
      { cause },
    );
  }
  if (isRefusedCredential(cause)) {
    return new ConnectionFailedError(
      `The Temporal server at ${address} refused the credentials: ${observed}. ` +
        'Check TEMPORAL_API_KEY, the client certificate, or the profile.',
      { cause },
    );
  }
  const hint =
    found.speaks === 'h2c'
      ? 'It speaks gRPC without TLS, as this client does: it may still be starting, or be overloaded. Try again in a moment.'
      : 'A plain probe could not tell what it speaks: check that this address is a Temporal frontend.';
  return new ConnectionFailedError(
    `A server takes connections at ${address}, but the Temporal connection failed: ${observed}. ${hint}`,
    { cause },
  );
}

/** gRPC's status codes for a refused credential: PERMISSION_DENIED and UNAUTHENTICATED. */
const CREDENTIAL_REFUSED = new Set([7, 16]);

function isRefusedCredential(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (CREDENTIAL_REFUSED.has((e as { code?: unknown }).code as number)) return true;
  }
  return false;
}

type ProbeResult = { refused: string } | { speaks: 'http/1.1' | 'tls' | 'h2c' | 'unknown' };

/**
 * One plain TCP connection to the address and a plain HTTP/1.1 request: why it could not
 * open, or what the first bytes of the answer say. A web server answers in HTTP/1.1, a
 * gRPC server in HTTP/2 (a frame header, then a SETTINGS frame: type 4), and a TLS
 * server with a TLS record (an alert: 0x15, or a handshake: 0x16).
 */
function probe(address: string): Promise<ProbeResult> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    let connected = false;
    const socket = connect({ host, port, timeout: 3000 }, () => {
      connected = true;
      socket.write(`HEAD / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    const done = (found: ProbeResult) => {
      socket.destroy();
      resolve(found);
    };
    socket.once('data', (chunk) => done({ speaks: firstBytesSpeak(chunk) }));
    socket.once('timeout', () =>
      done(connected ? { speaks: 'unknown' } : { refused: 'no answer within 3 s' }),
    );
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(connected ? { speaks: 'unknown' } : { refused: err.code ?? err.message }),
    );
    socket.once('close', () => done({ speaks: 'unknown' }));
  });
}

function firstBytesSpeak(chunk: Buffer): 'http/1.1' | 'tls' | 'h2c' | 'unknown' {
  const text = chunk.toString('latin1');
  // Go's HTTPS servers answer a plain request with a 400 that says so.
  if (text.startsWith('HTTP/1.') && /HTTPS server/i.test(text)) return 'tls';
  if (text.startsWith('HTTP/1.')) return 'http/1.1';
  if (chunk[0] === 0x15 || chunk[0] === 0x16) return 'tls';
  if (chunk.length >= 9 && chunk[3] === 0x04) return 'h2c';
  return 'unknown';
}

/** API keys loadSettings has seen: never printed, whatever message carries them. */
const secrets = new Set<string>();

function redact(text: string): string {
  let out = text;
  for (const secret of secrets) out = out.replaceAll(secret, '<API key>');
  return out;
}

/** One line per link of the cause chain, with each ApplicationFailure's type. */
export function formatErrorChain(err: Error): string {
  const lines: string[] = [];
  let current: unknown = err;
  while (current instanceof Error) {
    const tag =
      current instanceof ApplicationFailure && current.type
        ? ` [${current.type}]`
        : current instanceof ActivityFailure
          ? ` [${current.activityType}]`
          : '';
    lines.push(`${current.name}${tag}: ${current.message}`);
    current = current.cause;
  }
  return redact(lines.join('\n    caused by '));
}

/**
 * What `main` prints for an error that stops it: the message of a StartupError or of an
 * error with no cause, and the whole cause chain of anything unexpected.
 */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return redact(String(err));
  if (err instanceof StartupError || err.cause === undefined) return redact(err.message);
  return formatErrorChain(err);
}

export interface ConnectOptions {
  /** How long to wait for the server; the server the project just started may need a moment. */
  timeoutMs?: number;
}

/**
 * Opens a client connection, or throws a StartupError that says what was found at the
 * address. A failed attempt is closed: gRPC would otherwise keep it reconnecting, with a
 * backoff that grows to 2 minutes. Each connection also keeps its own subchannels, so it
 * never waits out the backoff of an earlier probe of the same address.
 */
export async function openConnection(settings: Settings, options: ConnectOptions = {}): Promise<Connection> {
  const connection = Connection.lazy({
    ...settings.connection,
    connectTimeout: options.timeoutMs ?? 5000,
    channelArgs: { 'grpc.use_local_subchannel_pool': 1 },
  });
  try {
    await connection.ensureConnected();
    return connection;
  } catch (cause) {
    await connection.close();
    throw await connectionError(settings, cause);
  }
}

/** Whether a Temporal server answers at the configured address within `timeoutMs`. */
export async function temporalAnswers(settings: Settings, timeoutMs = 2000): Promise<boolean> {
  try {
    await (await openConnection(settings, { timeoutMs })).close();
    return true;
  } catch (err) {
    if (err instanceof StartupError) return false;
    throw err;
  }
}

export async function connectClient(settings: Settings, options: ConnectOptions = {}): Promise<Client> {
  return new Client({
    connection: await openConnection(settings, options),
    namespace: settings.namespace,
    dataConverter: settings.dataConverter,
    interceptors: tracingClientInterceptors(settings.tracing),
  });
}
