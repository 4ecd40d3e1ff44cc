import { existsSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { DEFAULT_TASK_QUEUE } from './shared';

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
}

/**
 * Reads the TOML profile (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) and the TEMPORAL_*
 * variables through @temporalio/envconfig, then fills in the local dev server defaults.
 * TEMPORAL_TASK_QUEUE and TEMPORAL_UI_URL are this project's own additions.
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  // envconfig quietly skips a missing file; a path someone set on purpose should exist.
  if (env.TEMPORAL_CONFIG_FILE && !existsSync(env.TEMPORAL_CONFIG_FILE)) {
    throw new Error(`TEMPORAL_CONFIG_FILE is set to ${env.TEMPORAL_CONFIG_FILE}, but there is no such file.`);
  }
  const overrideEnvVars = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
  let loaded: ReturnType<typeof loadClientConnectConfig>;
  try {
    loaded = loadClientConnectConfig({ overrideEnvVars });
  } catch (cause) {
    const file = env.TEMPORAL_CONFIG_FILE ?? 'the default temporal.toml';
    throw new Error(`Cannot load the Temporal client configuration (${file}): ${(cause as Error).message}`, {
      cause,
    });
  }
  const { connectionOptions, namespace } = loaded;
  const address = connectionOptions.address ?? DEFAULT_ADDRESS;
  return {
    address,
    namespace: namespace ?? DEFAULT_NAMESPACE,
    taskQueue: env.TEMPORAL_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    webUiUrl: (env.TEMPORAL_UI_URL || defaultWebUiUrl(address)).replace(/\/+$/, ''),
    connection: { ...connectionOptions, address },
  };
}

// A dev server serves its Web UI on its gRPC port + 1000 (7233 -> 8233).
function defaultWebUiUrl(address: string): string {
  const [host, port] = splitAddress(address);
  if (host.endsWith('.tmprl.cloud') || host.endsWith('.api.temporal.io')) return 'https://cloud.temporal.io';
  return `http://${host}:${port + 1000}`;
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

/** Thrown when nothing answers at the configured address. */
export class ServerUnreachableError extends Error {
  constructor(address: string, options: { cause: unknown }) {
    super(
      `Cannot reach a Temporal server at ${address}. ` +
        'Start a local dev server with `npm run server`, or point TEMPORAL_ADDRESS at yours.',
      options,
    );
    this.name = 'ServerUnreachableError';
  }
}

export async function connectClient(settings: Settings): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...settings.connection, connectTimeout: '5 seconds' });
  } catch (cause) {
    throw new ServerUnreachableError(settings.address, { cause });
  }
  return new Client({ connection, namespace: settings.namespace });
}
