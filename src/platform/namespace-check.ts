// What the workflow needs from its namespace, checked when the worker starts. Without
// it a transfer does not fail: its workflow tasks do, again and again, and the client
// waiting on the result waits forever. So the worker stops here with the fix instead.
import type { NativeConnection } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { splitAddress, StartupError, type Settings } from './config';
import { TRANSFER_STATUS } from '../contract';

/** The search attributes the workflow sets, by name, with the type the `temporal` CLI calls it. */
export const REQUIRED_SEARCH_ATTRIBUTES: ReadonlyArray<{ name: string; type: CliType }> = [
  { name: TRANSFER_STATUS.name, type: 'Keyword' },
];

type CliType = (typeof CLI_TYPES)[number];
// The CLI's names for IndexedValueType 1 to 7, in the enum's order.
const CLI_TYPES = ['Text', 'Keyword', 'Int', 'Double', 'Bool', 'Datetime', 'KeywordList'] as const;

function cliType(type: temporal.api.enums.v1.IndexedValueType): string {
  return CLI_TYPES[type - 1] ?? `unknown type ${type}`;
}

function indexedValueType(type: CliType): temporal.api.enums.v1.IndexedValueType {
  return CLI_TYPES.indexOf(type) + 1;
}

export type ServerKind = 'local-dev-server' | 'temporal-cloud' | 'other';

/**
 * A local dev server is one on a loopback address whose persistence store is SQLite.
 * Neither alone will do: a self-hosted cluster on this machine (docker compose on
 * localhost:7233) answers on loopback but runs on PostgreSQL, MySQL or Cassandra, and
 * its search attributes are its operator's to register; a dev server someone shares on
 * another host is theirs. `temporal server start-dev` always runs on SQLite, which
 * Temporal supports for development only.
 */
export function classifyServer(address: string, persistenceStore: string | undefined): ServerKind {
  const host = splitAddress(address)[0]
    .replace(/^\[|\]$/g, '')
    .toLowerCase();
  if (host.endsWith('.tmprl.cloud') || host.endsWith('.api.temporal.io')) return 'temporal-cloud';
  const loopback = host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
  return loopback && persistenceStore === 'sqlite' ? 'local-dev-server' : 'other';
}

/** The commands that register the search attributes; the `tcld` ones too when the address is Temporal Cloud's. */
export function registerCommands(
  settings: Pick<Settings, 'address' | 'namespace'>,
  attributes: ReadonlyArray<{ name: string; type: CliType }> = REQUIRED_SEARCH_ATTRIBUTES,
): string[] {
  const commands = attributes.map(
    ({ name, type }) =>
      `temporal operator search-attribute create --namespace ${settings.namespace} --name ${name} --type ${type}`,
  );
  if (classifyServer(settings.address, undefined) === 'temporal-cloud') {
    // tcld names a Cloud namespace <ns>.<account>, as TEMPORAL_NAMESPACE does.
    for (const { name, type } of attributes) {
      commands.push(
        `tcld namespace search-attributes add --namespace ${settings.namespace} --search-attribute "${name}=${type}"`,
      );
    }
  }
  return commands;
}

const indented = (commands: string[]) => commands.map((command) => `  ${command}`).join('\n');

export class NamespaceNotFoundError extends StartupError {
  override name = 'NamespaceNotFoundError';
}

export class SearchAttributeMissingError extends StartupError {
  override name = 'SearchAttributeMissingError';
}

export class SearchAttributeWrongTypeError extends StartupError {
  override name = 'SearchAttributeWrongTypeError';
}

export class SearchAttributeRegistrationRefusedError extends StartupError {
  override name = 'SearchAttributeRegistrationRefusedError';
}

type Services = Pick<NativeConnection, 'workflowService' | 'operatorService'>;

const GRPC_NOT_FOUND = 5;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNIMPLEMENTED = 12;

const grpcCode = (err: unknown) => (err as { code?: number }).code;
const sentence = (text: string) => text.trim().replace(/[.\s]*$/, '.');

/**
 * Checks that the namespace exists and has the search attributes the workflow sets. On a
 * local dev server it registers those missing; anywhere else it throws an error that
 * names what is missing and the command to run. Returns a line for the worker to print
 * (what it registered, or that the server would not let it look), or undefined when all
 * was there.
 */
export async function ensureNamespaceReady(
  connection: Services,
  settings: Pick<Settings, 'address' | 'namespace'>,
): Promise<string | undefined> {
  const { namespace, address } = settings;
  try {
    await connection.workflowService.describeNamespace({ namespace });
  } catch (err) {
    if (grpcCode(err) !== GRPC_NOT_FOUND) throw err;
    throw new NamespaceNotFoundError(
      `Namespace ${namespace} does not exist on the server at ${address}. Create it, or set ` +
        'TEMPORAL_NAMESPACE to one that exists:\n' +
        `  temporal operator namespace create --namespace ${namespace}`,
    );
  }

  let customAttributes: Record<string, temporal.api.enums.v1.IndexedValueType>;
  try {
    ({ customAttributes } = await connection.operatorService.listSearchAttributes({ namespace }));
  } catch (err) {
    // Some servers let a worker's credentials run workflows but not read this.
    if (grpcCode(err) !== GRPC_PERMISSION_DENIED && grpcCode(err) !== GRPC_UNIMPLEMENTED) throw err;
    return (
      `Could not read the search attributes of namespace ${namespace} (${(err as Error).message}); ` +
      `if ${describeAll(REQUIRED_SEARCH_ATTRIBUTES)} is not registered there, no transfer can make progress.`
    );
  }
  const registered = new Map(Object.entries(customAttributes ?? {}));
  const wrongType = REQUIRED_SEARCH_ATTRIBUTES.filter(
    ({ name, type }) => registered.has(name) && registered.get(name) !== indexedValueType(type),
  );
  if (wrongType.length > 0) {
    const { name, type } = wrongType[0]!;
    throw new SearchAttributeWrongTypeError(
      `Search attribute ${name} is registered in namespace ${namespace} as ${cliType(registered.get(name)!)}, ` +
        `but the workflow sets it as ${type}. A type cannot be changed in place: remove it, then create it again:\n` +
        `  temporal operator search-attribute remove --namespace ${namespace} --name ${name}\n` +
        indented(registerCommands(settings, [{ name, type }])),
    );
  }
  const missing = REQUIRED_SEARCH_ATTRIBUTES.filter(({ name }) => !registered.has(name));
  if (missing.length === 0) return undefined;

  const { persistenceStore } = await connection.workflowService.getClusterInfo({});
  if (classifyServer(address, persistenceStore) !== 'local-dev-server') {
    throw new SearchAttributeMissingError(
      `Namespace ${namespace} at ${address} has no search attribute ${describeAll(missing)}. The workflow ` +
        'sets it, so without it no transfer can make progress. Register it, then start ' +
        `the worker again:\n${indented(registerCommands(settings, missing))}`,
    );
  }
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map(({ name, type }) => [name, indexedValueType(type)])),
    });
  } catch (err) {
    throw new SearchAttributeRegistrationRefusedError(
      `Namespace ${namespace} at ${address} has no search attribute ${describeAll(missing)}, and the dev ` +
        `server refused to register it: ${sentence((err as Error).message)} Make room as that says, then ` +
        `register it and start the worker again:\n${indented(registerCommands(settings, missing))}`,
      { cause: err },
    );
  }
  return `Registered search attribute ${describeAll(missing)} in namespace ${namespace}: ${address} is a local dev server.`;
}

function describeAll(attributes: ReadonlyArray<{ name: string; type: CliType }>): string {
  return attributes.map(({ name, type }) => `${name} (${type})`).join(', ');
}
