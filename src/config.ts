import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { DataConverter } from '@temporalio/common';
import { codecFromEnv } from './codec';
import { chainMessages, DEFAULT_TASK_QUEUE } from './shared';
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
 * Why a connection failed. The SDK's own errors do not tell a missing server from a
 * failed TLS handshake or a rejected credential, so this tries a plain TCP connection:
 * if nothing accepts it, no server is there; if a web server answers, it is not Temporal.
 */
export async function connectionError(settings: Settings, cause: unknown): Promise<StartupError> {
  const found = await probe(settings.address);
  if ('refused' in found) return new ServerUnreachableError(settings.address, found.refused, { cause });
  if (found.webServer) {
    return new ConnectionFailedError(
      `A web server answers at ${settings.address} (HTTP/1.1), not a Temporal frontend, which speaks gRPC: ` +
        "is it the Web UI's port? A dev server takes connections on 7233 and shows its Web UI on 8233; " +
        'point TEMPORAL_ADDRESS at the first.',
      { cause },
    );
  }
  return new ConnectionFailedError(
    `A server answers at ${settings.address}, but the Temporal connection failed: ` +
      `${redact(chainMessages(cause))}. Check that TLS and the credentials (TEMPORAL_TLS*, ` +
      'TEMPORAL_API_KEY or the profile) match what that server expects.',
    { cause },
  );
}

/**
 * One plain TCP connection to the address: why it could not open, or whether what
 * answers is a web server (a plain HTTP/1.1 request gets an HTTP/1.1 reply; gRPC
 * answers in HTTP/2).
 */
function probe(address: string): Promise<{ refused: string } | { webServer: boolean }> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    let connected = false;
    const socket = connect({ host, port, timeout: 3000 }, () => {
      connected = true;
      socket.write(`HEAD / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    const done = (found: { refused: string } | { webServer: boolean }) => {
      socket.destroy();
      resolve(found);
    };
    socket.once('data', (chunk) => done({ webServer: chunk.toString('latin1').startsWith('HTTP/1.') }));
    socket.once('timeout', () =>
      done(connected ? { webServer: false } : { refused: 'no answer within 3 s' }),
    );
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(connected ? { webServer: false } : { refused: err.code ?? err.message }),
    );
    socket.once('close', () => done({ webServer: false }));
  });
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

export async function connectClient(settings: Settings): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...settings.connection, connectTimeout: '5 seconds' });
  } catch (cause) {
    throw await connectionError(settings, cause);
  }
  return new Client({
    connection,
    namespace: settings.namespace,
    dataConverter: settings.dataConverter,
    interceptors: tracingClientInterceptors(settings.tracing),
  });
}
