// A PostgreSQL server of its own in a data directory, on 127.0.0.1: tools/cluster/cluster.ts
// keeps Temporal's persistence in it, and the PostgreSQL bank store's tests their ledgers.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { freePort } from '../common';
import { ManagedProcess, waitUntil } from './managed-process';
import { findOnPath, isExecutable } from '../temporal-cli';

const HOST = '127.0.0.1';

export interface StartPostgresOptions {
  /**
   * Holds the server's data (`postgres/`), its pid files (`run/`) and its log
   * (`logs/postgres.log`). A new one is set up (initdb) when `postgres/` holds none; an
   * existing one is started again with the password it was set up with.
   */
  dataDir: string;
  /** Default: a free port. */
  port?: number;
  /** The superuser's name. Default: `postgres`. */
  user?: string;
  /** The superuser's password, for a new data directory. Default: a random one. */
  password?: string;
  /** max_connections, if the default 100 is not enough. */
  maxConnections?: number;
  /** Default: found with findPostgres. */
  binaries?: PostgresBinaries;
  /** Progress lines; quiet by default. */
  log?: (line: string) => void;
  /**
   * A test host to run on (test/support/hosts.ts): PostgreSQL listens on its address alone
   * and lets in clients from `clients` (CIDRs) with a password. Default: 127.0.0.1.
   */
  host?: { address: string; netns: string; clients: string[] };
}

/** CREATE DATABASE takes no parameters: a name goes into the statement as it is, so only plain ones. */
export function checkDatabaseName(name: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new Error(`createDatabase: '${name}' is not a plain lower-case PostgreSQL name`);
  }
}

export interface Postgres {
  host: string;
  port: number;
  user: string;
  /** Keep it out of logs. */
  password: string;
  /** The postmaster. */
  process: ManagedProcess;
  /** The postgres:// URL of a database, with the password. */
  url(database: string): string;
  /** Creates database `name` if it is missing; returns its url. */
  createDatabase(name: string): Promise<string>;
  /** PostgreSQL's "fast" shutdown: open transactions are rolled back. */
  stop(): Promise<void>;
  /**
   * A crash, for fault tests: `immediate` is `pg_ctl stop -m immediate` (SIGQUIT: every
   * process quits at once, and the next start recovers from the WAL); `SIGKILL` kills the
   * postmaster alone, and its backends notice and exit.
   */
  crash(how: 'immediate' | 'SIGKILL'): Promise<void>;
  /** Starts it again in the same directory, on the same port, once the old processes are gone. */
  restart(): Promise<Postgres>;
}

/** Starts PostgreSQL in `options.dataDir` and resolves once it accepts connections. */
export async function startPostgres(options: StartPostgresOptions): Promise<Postgres> {
  const log = options.log ?? (() => {});
  const pg = options.binaries ?? findPostgres();
  const dataDir = path.resolve(options.dataDir);
  const pgdata = path.join(dataDir, 'postgres');
  const runDir = path.join(dataDir, 'run');
  const logDir = path.join(dataDir, 'logs');
  for (const dir of [runDir, logDir]) mkdirSync(dir, { recursive: true });
  const logFile = path.join(logDir, 'postgres.log');
  const listenOn = options.host?.address ?? HOST;
  const user = options.user ?? 'postgres';
  const password = options.password ?? randomBytes(18).toString('base64url');
  const port = options.port ?? (await freePort());
  const account = postgresAccount(log);
  if (account) checkReachable(pgdata, account.uid);
  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
    rmSync(pgdata, { recursive: true, force: true }); // an initdb that did not finish
    mkdirSync(pgdata, { recursive: true, mode: 0o700 });
    const pwfile = path.join(runDir, 'initdb-password');
    writeFileSync(pwfile, password, { mode: 0o600 });
    try {
      if (account) {
        chownSync(pgdata, account.uid, account.gid);
        chownSync(pwfile, account.uid, account.gid);
      }
      const initdb = new ManagedProcess(
        'initdb',
        pg.initdb,
        [
          '--pgdata',
          pgdata,
          '--username',
          user,
          `--pwfile=${pwfile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C',
        ],
        { cwd: pgdata, logFile, ...account },
      );
      const exit = await initdb.exited;
      if (exit.code !== 0) throw initdb.exitError(exit, 'it set up the data directory');
    } finally {
      rmSync(pwfile, { force: true });
    }
  }
  if (options.host) allowClients(pgdata, options.host.clients);
  const postgres = new ManagedProcess(
    'postgres',
    pg.postgres,
    [
      '-D',
      pgdata,
      '-c',
      `listen_addresses=${listenOn}`,
      '-p',
      String(port),
      '-c',
      `unix_socket_directories=${pgdata}`,
      ...(options.maxConnections ? ['-c', `max_connections=${options.maxConnections}`] : []),
    ],
    {
      cwd: pgdata,
      logFile,
      pidFile: path.join(runDir, 'postgres.pid'),
      ...account,
      netns: options.host?.netns,
    },
  );
  // postmaster.pid's eighth line turns to "ready" once it accepts connections. Its first
  // line, the pid, tells this run's file from one a killed postmaster left.
  const pidFile = path.join(pgdata, 'postmaster.pid');
  try {
    await waitUntil(
      async () => {
        const lines = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').split('\n') : [];
        return lines[0]?.trim() === String(postgres.pid) && lines[7]?.trim() === 'ready';
      },
      postgres,
      'PostgreSQL accepted connections',
    );
  } catch (err) {
    await postgres.stop('SIGKILL');
    throw err;
  }
  const url = (database: string) =>
    `postgres://${user}:${encodeURIComponent(password)}@${listenOn}:${port}/${database}`;
  return {
    host: listenOn,
    port,
    user,
    password,
    process: postgres,
    url,
    createDatabase: async (name) => {
      checkDatabaseName(name);
      const client = new Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } catch (err) {
        if ((err as { code?: string }).code !== '42P04') throw err; // 42P04: it exists already
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop: () => postgres.stop('SIGINT'),
    crash: async (how) => {
      if (how === 'immediate') return postgres.stop('SIGQUIT');
      process.kill(postgres.pid, 'SIGKILL');
      await postgres.exited;
    },
    restart: async () => {
      // Until the killed postmaster's backends have exited, a new one refuses the data directory.
      for (let tries = 1; ; tries++) {
        try {
          return await startPostgres({ ...options, dataDir, port, user, password, binaries: pg });
        } catch (err) {
          if (tries >= 20) throw err;
          log(
            `PostgreSQL did not start again yet (${(err as Error).message.split('\n', 1)[0]}); trying again`,
          );
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
    },
  };
}

/** Lets clients from each CIDR in with a password (initdb's pg_hba.conf lets in loopback only). */
function allowClients(pgdata: string, cidrs: string[]): void {
  const hba = path.join(pgdata, 'pg_hba.conf');
  const text = readFileSync(hba, 'utf8');
  const missing = cidrs
    .map((cidr) => `host all all ${cidr} scram-sha-256`)
    .filter((line) => !text.includes(line));
  if (missing.length > 0) appendFileSync(hba, `${missing.join('\n')}\n`);
}

export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  psql: string;
}

/** The machine's PostgreSQL: on PATH, else Debian's newest under /usr/lib/postgresql. */
export function findPostgres(env: NodeJS.ProcessEnv = process.env): PostgresBinaries {
  const initdb = findOnPath('initdb', env.PATH);
  const postgres = findOnPath('postgres', env.PATH);
  const psql = findOnPath('psql', env.PATH);
  if (initdb && postgres && psql) return { initdb, postgres, psql };
  const debian = '/usr/lib/postgresql';
  const versions = existsSync(debian)
    ? readdirSync(debian)
        .filter((v) => isExecutable(path.join(debian, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0]) {
    const bin = path.join(debian, versions[0], 'bin');
    return {
      initdb: path.join(bin, 'initdb'),
      postgres: path.join(bin, 'postgres'),
      psql: path.join(bin, 'psql'),
    };
  }
  throw new Error(
    'PostgreSQL is not installed: neither initdb, postgres and psql on PATH nor /usr/lib/postgresql/*/bin. ' +
      'Install it (Debian: apt-get install postgresql) and try again.',
  );
}

/**
 * PostgreSQL refuses to run as root, and CI and containers run as root. Then it runs as
 * the `postgres` account (Debian's package creates it; else it is created here), and owns
 * only its own data directory.
 */
function postgresAccount(log: (line: string) => void): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = () => readFileSync('/etc/passwd', 'utf8').match(/^postgres:[^:]*:(\d+):(\d+):/m);
  if (!lookup()) {
    log('Creating the system account `postgres` to run PostgreSQL, which refuses to run as root');
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
  }
  const found = lookup();
  if (!found) throw new Error('useradd postgres ran, but /etc/passwd has no postgres account');
  return { uid: Number(found[1]), gid: Number(found[2]) };
}

/** The postgres account needs to pass through every folder above its data directory. */
function checkReachable(pgdata: string, uid: number): void {
  const parent = path.dirname(pgdata);
  if (statSync(parent).uid === 0) chmodSync(parent, statSync(parent).mode | 0o005); // mkdtemp makes it 0700
  for (let dir = path.dirname(parent); ; dir = path.dirname(dir)) {
    const { mode, uid: owner } = statSync(dir);
    if (owner !== uid && (mode & 0o001) === 0) {
      throw new Error(
        `PostgreSQL runs as the postgres account here, which cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}). ` +
          'Put the data directory elsewhere, or allow it with `chmod o+x`.',
      );
    }
    if (dir === path.dirname(dir)) break;
  }
}
