// `npm run cluster`, and `startCluster` for the tests: a production-shaped Temporal
// cluster on this machine. PostgreSQL holds persistence and visibility; frontend, history,
// matching and worker run as separate `temporal-server` processes with the server's own
// defaults. docs/cluster.md describes it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { grpc } from '@temporalio/proto';
import { TRANSFER_STATUS } from '../../src/contract';
import { isAlive } from '../common';
import { ManagedProcess, signalGroup, waitUntil } from './managed-process';
import {
  checkDatabaseName,
  findPostgres,
  startPostgres,
  type Postgres,
  type PostgresBinaries,
} from './postgres';
import { ROOT } from '../common';
import { cliMissingHelp, resolveTemporalCli } from '../temporal-cli';
import { resolveTemporalServer, TEMPORAL_SERVER_VERSION, type ServerBinaries } from './temporal-server';

export type ServiceName = 'frontend' | 'history' | 'matching' | 'worker';
/** The four services, each its own process. History starts first (see startCluster). */
export const SERVICES: readonly ServiceName[] = ['history', 'matching', 'frontend', 'worker'];
/** One process of the cluster: a service's, or on test hosts one of the history hosts ('history-2'). */
export type MemberName = ServiceName | `history-${number}`;
export const CLUSTER_NAMESPACE = 'default';

/** Where a process runs on test hosts (test/support/hosts.ts): the host's address and network namespace. */
export interface Placement {
  address: string;
  netns: string;
}

/** The cluster spread over test hosts: each service on its own, history on several that share the shards. */
export interface ClusterHosts {
  /** `clients`: the CIDRs PostgreSQL lets in. */
  postgres: Placement & { clients: string[] };
  frontend: Placement;
  matching: Placement;
  worker: Placement;
  history: Placement[];
}

export interface ClusterOptions {
  /** Holds PostgreSQL's data, the generated config and the logs; kept between runs. */
  dataDir: string;
  /** Wipe dataDir first. */
  fresh?: boolean;
  /** Fixed when the schema is first set up; a reused dataDir must ask for the same number. */
  historyShards?: number;
  /** Progress lines; quiet by default. */
  log?: (line: string) => void;
  /** Run on these test hosts instead of 127.0.0.1; history then runs as history-1, history-2, .... */
  hosts?: ClusterHosts;
}

/** The cluster's PostgreSQL as its users see it; the password is generated per data dir. */
export type PostgresInfo = Pick<Postgres, 'host' | 'port' | 'user' | 'password' | 'createDatabase'>;

export interface Cluster {
  /** The frontend's gRPC host:port, for TEMPORAL_ADDRESS. */
  address: string;
  namespace: string;
  historyShards: number;
  dataDir: string;
  logDir: string;
  /** True if this start set up a new PostgreSQL and schema; false if it reused dataDir's. */
  created: boolean;
  postgres: PostgresInfo;
  /** The processes, history first. */
  members: readonly MemberName[];
  /** Each process's pid; a service that is not running has none. */
  pids(): Partial<Record<MemberName | 'postgres', number>>;
  /** Where each service's output goes. */
  logFile(member: MemberName | 'postgres'): string;
  /** Sends `signal` to the process and waits until it has exited. */
  kill(member: MemberName, signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again with the same config and ports (stopping it first if it runs); waits until healthy. */
  restart(member: MemberName): Promise<void>;
  /** Crashes PostgreSQL (see Postgres.crash), then starts it again on its port; the services reconnect. */
  crashPostgres(how: 'immediate' | 'SIGKILL'): Promise<void>;
  /** Stops the services gracefully, then PostgreSQL. */
  stop(): Promise<void>;
}

/** What a data dir remembers between runs. */
interface ClusterState {
  serverVersion: string;
  historyShards: number;
  /** The PostgreSQL password of the `temporal` role. The file is readable by its owner only. */
  password: string;
  /** True once the databases and schemas are complete; a run killed before that starts over. */
  setUp: boolean;
  ports: Ports;
}

interface Ports {
  postgres: number;
  /** gRPC and membership (ringpop) port of each service. */
  services: Record<ServiceName, { grpc: number; membership: number }>;
}

const HOST = '127.0.0.1';
const PG_USER = 'temporal';
const DATABASES = { temporal: 'temporal', visibility: 'temporal_visibility' } as const;
const CONFIG_ENV = 'cluster'; // temporal-server loads config/<env>.yaml
/** Each service's gRPC health-check name; the worker service serves no gRPC of its own. */
const HEALTH_SERVICE: Partial<Record<ServiceName, string>> = {
  frontend: 'temporal.api.workflowservice.v1.WorkflowService',
  history: 'temporal.api.workflowservice.v1.HistoryService', // SERVING once it owns its first shards
  matching: 'temporal.api.workflowservice.v1.MatchingService',
};
const MAX_PORT = 32_767;

/** Starts (or resumes) a cluster in `options.dataDir` and resolves once every service is healthy. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const log = options.log ?? (() => {});
  const dataDir = path.resolve(options.dataDir);
  const historyShards = options.historyShards ?? 4;
  if (!Number.isInteger(historyShards) || historyShards < 1) {
    throw new Error(`historyShards must be a whole number of at least 1, got ${historyShards}`);
  }
  const { hosts } = options;
  // Each process's service and address; on 127.0.0.1 one process per service.
  const members = new Map<MemberName, { service: ServiceName; at?: Placement }>(
    hosts
      ? [
          ...hosts.history.map(
            (at, i) => [`history-${i + 1}` as MemberName, { service: 'history', at }] as const,
          ),
          ...(['matching', 'frontend', 'worker'] as const).map(
            (service) => [service, { service, at: hosts[service] }] as const,
          ),
        ]
      : SERVICES.map((service) => [service, { service }] as const),
  );
  const addressOf = (member: MemberName) => members.get(member)?.at?.address ?? HOST;
  const pgHost = hosts?.postgres.address ?? HOST;
  const binaries = await resolveTemporalServer(process.env, log);
  const pg = findPostgres();

  const owner = path.join(dataDir, 'run', 'owner.pid');
  const ownerPid = existsSync(owner) ? Number(readFileSync(owner, 'utf8')) : 0;
  if (ownerPid > 0 && ownerPid !== process.pid && isAlive(ownerPid)) {
    throw new Error(
      `A cluster already runs from ${dataDir}, started by process ${ownerPid}: stop it (Ctrl-C there) first. ` +
        `(If that process is something else, delete ${owner}.)`,
    );
  }
  stopLeftovers(dataDir, log);
  if (options.fresh) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const dirs = {
    pgdata: path.join(dataDir, 'postgres'),
    config: path.join(dataDir, 'config'),
    logs: path.join(dataDir, 'logs'),
    run: path.join(dataDir, 'run'),
  };
  for (const dir of [dirs.config, dirs.logs, dirs.run]) mkdirSync(dir, { recursive: true });
  writeFileSync(owner, String(process.pid));

  const statePath = path.join(dirs.config, 'state.json');
  const previous = readState(statePath);
  const reusable = previous?.setUp === true && existsSync(path.join(dirs.pgdata, 'PG_VERSION'));
  const created = !reusable;
  if (reusable && previous.historyShards !== historyShards) {
    throw new Error(
      `${dataDir} was set up with ${previous.historyShards} history shards, and a cluster cannot change ` +
        `that number: ask for ${previous.historyShards}, or start over with --fresh (fresh: true).`,
    );
  }
  if (created) rmSync(dirs.pgdata, { recursive: true, force: true });
  const state: ClusterState = {
    serverVersion: TEMPORAL_SERVER_VERSION,
    historyShards,
    password: reusable ? previous.password : randomBytes(18).toString('base64url'),
    setUp: reusable,
    ports: await pickPorts(reusable ? previous.ports : undefined),
  };
  const saveState = () => writeFileSync(statePath, JSON.stringify(state, null, 2), { mode: 0o600 });
  saveState();

  const running = new Map<MemberName | 'postgres', ManagedProcess>();
  const logFile = (name: MemberName | 'postgres') => path.join(dirs.logs, `${name}.log`);
  const stopAll = async () => {
    await Promise.all([...members.keys()].map(async (name) => running.get(name)?.stop('SIGTERM')));
    await running.get('postgres')?.stop('SIGINT'); // PostgreSQL's "fast" shutdown
    rmSync(owner, { force: true });
  };

  try {
    const pgStarted = Date.now();
    let postgres = await startPostgres({
      dataDir,
      port: state.ports.postgres,
      user: PG_USER,
      password: state.password,
      // Four services with two pools of up to 20 connections each, plus the schema tool
      // and the bank ledger: more than the default 100.
      maxConnections: 200,
      binaries: pg,
      log,
      host: hosts?.postgres,
    });
    running.set('postgres', postgres.process);
    log(`PostgreSQL ready on ${pgHost}:${state.ports.postgres} (${secondsSince(pgStarted)} s)`);

    const sql = sqlTool(binaries, state, pgHost);
    if (created) {
      const schemaStarted = Date.now();
      await sql.createDatabase(DATABASES.temporal);
      await sql.createDatabase(DATABASES.visibility);
      await sql.setupSchema(
        DATABASES.temporal,
        path.join(binaries.postgresSchemaDir, 'temporal', 'versioned'),
      );
      await sql.setupSchema(
        DATABASES.visibility,
        path.join(binaries.postgresSchemaDir, 'visibility', 'versioned'),
      );
      state.setUp = true;
      saveState();
      log(`Schemas set up (${secondsSince(schemaStarted)} s)`);
    }

    if (!created) await forgetStoppedMembers(pg, state, pgHost);
    const address = `${addressOf('frontend')}:${state.ports.services.frontend.grpc}`;
    // On test hosts each process has a config of its own, which binds it to its host's address.
    const configOf = (name: MemberName) => (hosts ? path.join('config', name) : 'config');
    for (const name of hosts ? members.keys() : (['history'] as const)) {
      const at = members.get(name)?.at;
      writeServerConfig(path.join(dataDir, configOf(name)), state, {
        postgres: `${pgHost}:${state.ports.postgres}`,
        frontend: address,
        bindOn: at?.address,
        dynamicConfig: path.join(dirs.config, 'dynamicconfig.yaml'),
      });
    }
    const startMember = (name: MemberName) => {
      const { service, at } = members.get(name)!;
      const child = new ManagedProcess(
        name,
        binaries.server,
        [
          '--root',
          dataDir,
          '--config',
          configOf(name),
          '--env',
          CONFIG_ENV,
          '--allow-no-auth',
          'start',
          '--service',
          service,
        ],
        {
          cwd: dataDir,
          logFile: logFile(name),
          pidFile: path.join(dirs.run, `${name}.pid`),
          netns: at?.netns,
        },
      );
      running.set(name, child);
      return child;
    };
    const ready = (name: MemberName, child: ManagedProcess) =>
      waitServiceReady(members.get(name)!.service, addressOf(name), child, state);
    const servicesStarted = Date.now();
    // Each process writes the cluster metadata at start if the config changed it (a new
    // frontend address, say), and two at once fail on the version check: history first.
    const [firstHistory, ...others] = [...members.keys()];
    await ready(firstHistory!, startMember(firstHistory!));
    await Promise.all(others.map((name) => ready(name, startMember(name))));
    log(`Services healthy (${secondsSince(servicesStarted)} s)`);

    await registerNamespaceAndSearchAttribute(address, dataDir, log, () => running.get('frontend'));
    await waitHistoryServesAllShards(address, running.get(firstHistory!)!);

    return {
      address,
      namespace: CLUSTER_NAMESPACE,
      historyShards,
      dataDir,
      logDir: dirs.logs,
      created,
      members: [...members.keys()],
      postgres: {
        host: pgHost,
        port: state.ports.postgres,
        user: PG_USER,
        password: state.password,
        createDatabase: async (name) => {
          checkDatabaseName(name); // the SQL tool puts it into CREATE DATABASE as it is
          await sql.createDatabase(name);
          return postgres.url(name);
        },
      },
      pids: () =>
        Object.fromEntries(
          [...running].flatMap(([name, child]) => (child.running ? [[name, child.pid]] : [])),
        ),
      logFile,
      kill: async (member, signal = 'SIGKILL') => {
        await running.get(member)?.stop(signal);
      },
      restart: async (member) => {
        if (!members.has(member)) throw new Error(`no cluster process named ${member}`);
        await running.get(member)?.stop('SIGTERM');
        const child = startMember(member);
        await ready(member, child);
        if (members.get(member)!.service === 'history') await waitHistoryServesAllShards(address, child);
      },
      crashPostgres: async (how) => {
        await postgres.crash(how);
        postgres = await postgres.restart();
        running.set('postgres', postgres.process);
        log(`PostgreSQL crashed (${how}) and started again on ${pgHost}:${state.ports.postgres}`);
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

// --- PostgreSQL ---

/**
 * Deletes the membership rows of the previous run's services, all stopped by now. A
 * starting service takes every member that heartbeated in the last 20 s as a seed of its
 * ring, and waits for the dead ones up to maxJoinDuration (30 s): a restart soon after a
 * stop would take that long.
 */
async function forgetStoppedMembers(pg: PostgresBinaries, state: ClusterState, host: string): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    execFile(
      pg.psql,
      [
        '--no-psqlrc',
        '--quiet',
        '--set=ON_ERROR_STOP=1',
        `--host=${host}`,
        `--port=${state.ports.postgres}`,
        `--username=${PG_USER}`,
        `--dbname=${DATABASES.temporal}`,
        '--command=DELETE FROM cluster_membership',
      ],
      { env: { ...process.env, PGPASSWORD: state.password }, timeout: 30_000 },
      (err, _stdout, stderr) =>
        err
          ? reject(new Error(`psql: clearing cluster_membership failed: ${stderr || err.message}`))
          : resolve(),
    ),
  );
}

/** temporal-sql-tool against this PostgreSQL; the password goes through its environment, not argv. */
function sqlTool(binaries: ServerBinaries, state: ClusterState, host: string) {
  const run = (database: string, args: string[]) =>
    new Promise<void>((resolve, reject) =>
      execFile(
        binaries.sqlTool,
        [
          '--plugin',
          'postgres12',
          '--endpoint',
          host,
          '--port',
          String(state.ports.postgres),
          '--user',
          PG_USER,
          '--database',
          database,
          ...args,
        ],
        { env: { ...process.env, SQL_PASSWORD: state.password }, timeout: 120_000 },
        (err, stdout, stderr) => {
          if (!err) return resolve();
          reject(new Error(`temporal-sql-tool ${args.join(' ')} (${database}) failed:\n${stderr || stdout}`));
        },
      ),
    );
  return {
    async createDatabase(name: string): Promise<void> {
      try {
        await run(name, ['create-database']);
      } catch (err) {
        if (!/already exists/.test((err as Error).message)) throw err;
      }
    },
    async setupSchema(database: string, versionedDir: string): Promise<void> {
      await run(database, ['setup-schema', '-v', '0.0']);
      await run(database, ['update-schema', '-d', versionedDir]);
    },
  };
}

// --- temporal-server ---

/**
 * The config every service reads. Besides addresses and ports it sets only what a
 * multi-process cluster on PostgreSQL needs; the dynamic config file is empty, so every
 * knob keeps the server's default.
 */
function writeServerConfig(
  configDir: string,
  state: ClusterState,
  at: { postgres: string; frontend: string; bindOn?: string; dynamicConfig: string },
): void {
  const { ports } = state;
  const { frontend, dynamicConfig } = at;
  mkdirSync(configDir, { recursive: true });
  const store = (database: string, maxConns: number) => `
      sql:
        pluginName: postgres12
        databaseName: ${database}
        connectAddr: "${at.postgres}"
        connectProtocol: tcp
        user: ${PG_USER}
        password: "${state.password}"
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const service = (name: ServiceName) => `
  ${name}:
    rpc:
      grpcPort: ${ports.services[name].grpc}
      membershipPort: ${ports.services[name].membership}
      ${at.bindOn ? `bindOnIP: "${at.bindOn}"` : 'bindOnLocalHost: true'}`;
  const yaml = `# Written by tools/cluster/cluster.ts at each start; edits are overwritten.
log:
  stdout: true
  level: info

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: ${state.historyShards}
  datastores:
    postgres-default:${store(DATABASES.temporal, 20)}
    postgres-visibility:${store(DATABASES.visibility, 20)}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "${at.bindOn ?? HOST}"

services:${SERVICES.map(service).join('')}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "${frontend}"

dcRedirectionPolicy:
  policy: noop

publicClient:
  hostPort: "${frontend}"

dynamicConfigClient:
  filepath: "${dynamicConfig}"
  pollInterval: 10s
`;
  writeFileSync(path.join(configDir, `${CONFIG_ENV}.yaml`), yaml, { mode: 0o600 });
  if (!existsSync(dynamicConfig)) {
    writeFileSync(
      dynamicConfig,
      '# Dynamic config of the cluster. Empty on purpose: every value is the server default.\n' +
        '# A key added here is read within 10 s, without a restart. Kept across runs.\n',
    );
  }
}

/** Resolves once the service answers its health check (the worker service: its membership port). */
async function waitServiceReady(
  name: ServiceName,
  host: string,
  child: ManagedProcess,
  state: ClusterState,
): Promise<void> {
  const ports = state.ports.services[name];
  const healthName = HEALTH_SERVICE[name];
  if (!healthName) {
    await waitUntil(
      () => tcpAccepts(host, ports.membership),
      child,
      `${child.name} joined the membership ring`,
    );
    return;
  }
  const connection = Connection.lazy({ address: `${host}:${ports.grpc}` });
  try {
    await waitUntil(
      async () => {
        const { status } = await connection.withDeadline(Date.now() + 2000, () =>
          connection.healthService.check({ service: healthName }),
        );
        return status === grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING;
      },
      child,
      `${name} answered its health check`,
    );
    if (name === 'frontend') {
      await connection.withDeadline(Date.now() + 5000, () => connection.workflowService.getSystemInfo({}));
    }
  } finally {
    await connection.close();
  }
}

/**
 * A history host serves once it owns its shards. Describing workflows that do not exist
 * touches the shard of each id: 32 random ids reach all 4 shards but with odds of 1 in 2,500.
 */
async function waitHistoryServesAllShards(address: string, history: ManagedProcess): Promise<void> {
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: CLUSTER_NAMESPACE });
  try {
    await waitUntil(
      async () => {
        const probes = Array.from({ length: 32 }, () =>
          client.workflow
            .getHandle(`history-probe-${randomBytes(6).toString('hex')}`)
            .describe()
            .then(
              () => true,
              (err: unknown) => err instanceof WorkflowNotFoundError,
            ),
        );
        return (await Promise.all(probes)).every(Boolean);
      },
      history,
      'history served every shard',
    );
  } finally {
    await connection.close();
  }
}

/**
 * Registers the namespace and TransferStatus with the Temporal CLI, as an operator would
 * (`temporal operator ...`), skipping what a reused data dir already has.
 */
async function registerNamespaceAndSearchAttribute(
  address: string,
  dataDir: string,
  log: (line: string) => void,
  frontend: () => ManagedProcess | undefined,
): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    const namespaceExists = await connection.workflowService
      .describeNamespace({ namespace: CLUSTER_NAMESPACE })
      .then(
        () => true,
        (err: unknown) => {
          if ((err as { code?: number }).code === 5) return false; // NOT_FOUND
          throw err;
        },
      );
    const cli = await temporalCli(address, dataDir);
    if (!namespaceExists) {
      log(`Registering namespace ${CLUSTER_NAMESPACE}`);
      await cli(['operator', 'namespace', 'create', '--namespace', CLUSTER_NAMESPACE]);
    }
    // A new namespace reaches the frontend's namespace cache within a refresh or two.
    let registered: Record<string, unknown> = {};
    await waitUntil(
      async () => {
        const listed = await connection.operatorService.listSearchAttributes({
          namespace: CLUSTER_NAMESPACE,
        });
        registered = listed.customAttributes ?? {};
        return true;
      },
      frontend(),
      `the frontend knew namespace ${CLUSTER_NAMESPACE}`,
    );
    if (!(TRANSFER_STATUS.name in registered)) {
      log(`Registering search attribute ${TRANSFER_STATUS.name} (Keyword)`);
      await cli([
        'operator',
        'search-attribute',
        'create',
        '--namespace',
        CLUSTER_NAMESPACE,
        '--name',
        TRANSFER_STATUS.name,
        '--type',
        'Keyword',
      ]);
      // Each service reads namespaces, and with them the search attribute aliases, from a
      // cache it refreshes every 2 s (system.namespaceCacheRefreshInterval). Once the
      // frontend accepts a query on the attribute, wait one more period for history,
      // which has no probe of its own: until then an upsert fails the workflow task.
      await waitUntil(
        () =>
          connection.workflowService
            .countWorkflowExecutions({
              namespace: CLUSTER_NAMESPACE,
              query: `${TRANSFER_STATUS.name} = 'probe'`,
            })
            .then(
              () => true,
              () => false,
            ),
        frontend(),
        `the frontend accepted a query on ${TRANSFER_STATUS.name}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 2500));
    }
  } finally {
    await connection.close();
  }
}

/** Runs `temporal <args>` against the cluster alone: no TEMPORAL_* variable or profile of the caller's. */
async function temporalCli(address: string, dataDir: string): Promise<(args: string[]) => Promise<void>> {
  const cli = await resolveTemporalCli();
  if (!cli.path) throw new Error(cliMissingHelp());
  const emptyProfile = path.join(dataDir, 'config', 'temporal-cli.toml');
  writeFileSync(emptyProfile, '');
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('TEMPORAL_')));
  env.TEMPORAL_CONFIG_FILE = emptyProfile;
  return (args) =>
    new Promise((resolve, reject) =>
      execFile(cli.path!, [...args, '--address', address], { env, timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`temporal ${args.join(' ')} failed:\n${stderr || stdout}`)) : resolve(),
      ),
    );
}

// --- Ports, state, leftovers ---

/**
 * The previous run's ports where they are still free (a stable TEMPORAL_ADDRESS), else
 * new free ones. All below 32768: the PostgreSQL schema keeps a member's port in a
 * smallint (cluster_membership.rpc_port), and the kernel's ephemeral ports lie above it.
 */
async function pickPorts(previous?: Ports): Promise<Ports> {
  const taken = new Set<number>();
  const pick = async (wanted?: number): Promise<number> => {
    if (wanted && wanted <= MAX_PORT && !taken.has(wanted) && (await portFree(wanted))) {
      taken.add(wanted);
      return wanted;
    }
    for (;;) {
      const port = 10_000 + Math.floor(Math.random() * (MAX_PORT - 10_000));
      if (!taken.has(port) && (await portFree(port))) {
        taken.add(port);
        return port;
      }
    }
  };
  const services = {} as Ports['services'];
  const postgres = await pick(previous?.postgres);
  for (const name of SERVICES) {
    services[name] = {
      grpc: await pick(previous?.services[name].grpc),
      membership: await pick(previous?.services[name].membership),
    };
  }
  return { postgres, services };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

function tcpAccepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function readState(file: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterState;
  } catch {
    return undefined;
  }
}

/**
 * Stops processes an earlier run left behind when its node process died without
 * stopping them (SIGKILL, a crash): they hold the ports and PostgreSQL's data directory.
 * A pid counts only if that process's command line still names this data dir.
 */
function stopLeftovers(dataDir: string, log: (line: string) => void): void {
  const runDir = path.join(dataDir, 'run');
  if (!existsSync(runDir)) return;
  for (const file of readdirSync(runDir).filter((f) => f.endsWith('.pid') && f !== 'owner.pid')) {
    const pid = Number(readFileSync(path.join(runDir, file), 'utf8'));
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      // gone already
    }
    if (pid > 0 && cmdline.includes(dataDir)) {
      log(`Stopping ${file.replace(/\.pid$/, '')} (pid ${pid}), left running by an earlier run`);
      signalGroup(pid, 'SIGKILL');
      for (const deadline = Date.now() + 10_000; existsSync(`/proc/${pid}`) && Date.now() < deadline;) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      }
    }
    rmSync(path.join(runDir, file), { force: true });
  }
  // A SIGKILLed postmaster leaves its pid file; PostgreSQL itself checks that the pid is gone.
}

function secondsSince(start: number): string {
  return ((Date.now() - start) / 1000).toFixed(1);
}

// --- npm run cluster ---

const DEFAULT_DATA_DIR = path.join(ROOT, '.temporal', 'cluster');

async function main(argv: string[]): Promise<void> {
  const usage = 'Usage: npm run cluster [-- --fresh] [--history-shards N]';
  let fresh = false;
  let historyShards: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--fresh') fresh = true;
    else if (arg === '--history-shards') {
      historyShards = Number(argv[++i]);
      if (!Number.isInteger(historyShards) || historyShards < 1)
        throw new Error(`${usage}\n(N: a whole number ≥ 1)`);
    } else if (arg === '--help' || arg === '-h') {
      console.log(usage);
      return;
    } else throw new Error(`Unknown argument ${arg}\n${usage}`);
  }
  const started = Date.now();
  const cluster = await startCluster({
    dataDir: DEFAULT_DATA_DIR,
    fresh,
    historyShards,
    log: (line) => console.log(`  ${line}`),
  });
  const relative = (p: string) => path.relative(process.cwd(), p) || '.';
  const pids = cluster.pids();
  console.log(
    [
      '',
      `Temporal cluster ready in ${secondsSince(started)} s: server ${TEMPORAL_SERVER_VERSION}, ` +
        `${cluster.historyShards} history shards, PostgreSQL on ${cluster.postgres.host}:${cluster.postgres.port}.`,
      ...SERVICES.map((name) => `  ${name.padEnd(9)} pid ${pids[name]}`),
      `Frontend: ${cluster.address}, namespace ${cluster.namespace}. Connect with:`,
      `  TEMPORAL_ADDRESS=${cluster.address} npm run worker`,
      `  TEMPORAL_ADDRESS=${cluster.address} npm run starter`,
      `Data: ${relative(cluster.dataDir)} (${cluster.created ? 'new' : 'reused'}; --fresh starts over). ` +
        `Logs: ${relative(cluster.logDir)}/`,
      'Press Ctrl-C to stop.',
    ].join('\n'),
  );

  // Signal listeners alone do not keep Node running; the timer does.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(keepAlive);
  console.log('Stopping the services, then PostgreSQL...');
  await cluster.stop();
  console.log('Stopped.');
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}

/** Exposed for the test's orphan check: true while any process of group `pid` is alive. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}
