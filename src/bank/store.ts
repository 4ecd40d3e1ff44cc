// Where the mock bank keeps its money: in memory (the default), in a SQLite file that
// outlives the worker process, or in PostgreSQL, which workers on many machines share.
import { existsSync } from 'node:fs';
import type * as sqlite from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as pg from 'pg';
import { BankLedgerError, BankUnavailableError, STEP_ATTEMPT_TIMEOUT_MS } from '../contract';

/** One movement of money. `amount` is signed: negative for a withdrawal. */
export interface LedgerEntry {
  reference: string;
  transactionId: string;
  account: string;
  amount: number;
  /** The execution (workflow id) the reference belongs to: the first that used it. */
  owner: string;
}

/** A reference on which nothing may ever post, and why. */
export interface VoidRecord {
  reference: string;
  owner: string;
  /** The bank's definite "no" that voided it, kept so a retry gets the same answer; none for a settle. */
  refusal?: { type: string; message: string };
}

/** What a transaction may read and write. */
export interface LedgerTransaction {
  /** The entry already recorded under this reference, if any. */
  entryFor(reference: string): Promise<LedgerEntry | undefined>;
  /** The void of this reference, if it was voided. */
  voidFor(reference: string): Promise<VoidRecord | undefined>;
  markVoided(record: VoidRecord): Promise<void>;
  balance(account: string): Promise<number | undefined>;
  /** A closed account takes no money in or out. */
  isClosed(account: string): Promise<boolean>;
  /** Records the entry and moves its amount. */
  post(entry: LedgerEntry): Promise<void>;
}

/**
 * Where the bank keeps its state. Every method is async, so a store can live in another
 * process (PostgreSQL) as well as in this one.
 */
export interface BankStore {
  /** Runs `fn` atomically and isolated from other transactions: all of its writes are kept, or none if it throws. */
  transaction<T>(fn: (tx: LedgerTransaction) => Promise<T>): Promise<T>;
  balances(): Promise<Map<string, number>>;
  entries(): Promise<LedgerEntry[]>;
  /** The voided references, in the order they were voided. */
  voided(): Promise<VoidRecord[]>;
  /** Closes or reopens an account; throws for an unknown one. */
  setClosed(account: string, closed: boolean): Promise<void>;
  closedAccounts(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * Runs async sections one at a time. A store with one connection needs it: two
 * activities in one worker must not interleave their transactions on it.
 */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** The template's accounts and their opening balances. */
export const OPENING_BALANCES: ReadonlyMap<string, number> = new Map([
  ['85-150', 2000],
  ['43-812', 0],
]);

export class MemoryStore implements BankStore {
  private readonly accounts: Map<string, number>;
  private readonly ledger = new Map<string, LedgerEntry>();
  private readonly voids = new Map<string, VoidRecord>();
  private readonly closed = new Set<string>();
  private readonly serial = new Serial();

  constructor(accounts: ReadonlyMap<string, number> = OPENING_BALANCES) {
    this.accounts = new Map(accounts);
  }

  transaction<T>(fn: (tx: LedgerTransaction) => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      // Writes are staged and applied only once fn returns.
      const staged: LedgerEntry[] = [];
      const stagedVoids = new Map<string, VoidRecord>();
      const result = await fn({
        entryFor: async (reference) =>
          this.ledger.get(reference) ?? staged.find((e) => e.reference === reference),
        voidFor: async (reference) => this.voids.get(reference) ?? stagedVoids.get(reference),
        markVoided: async (record) => void stagedVoids.set(record.reference, record),
        isClosed: async (account) => this.closed.has(account),
        balance: async (account) => {
          const opening = this.accounts.get(account);
          if (opening === undefined) return undefined;
          return staged.filter((e) => e.account === account).reduce((sum, e) => sum + e.amount, opening);
        },
        post: async (entry) => void staged.push(entry),
      });
      for (const entry of staged) {
        this.ledger.set(entry.reference, entry);
        this.accounts.set(entry.account, this.accounts.get(entry.account)! + entry.amount);
      }
      for (const [reference, record] of stagedVoids)
        if (!this.voids.has(reference)) this.voids.set(reference, record);
      return result;
    });
  }

  async balances(): Promise<Map<string, number>> {
    return new Map(this.accounts);
  }

  async entries(): Promise<LedgerEntry[]> {
    return [...this.ledger.values()];
  }

  async voided(): Promise<VoidRecord[]> {
    return [...this.voids.values()];
  }

  async setClosed(account: string, closed: boolean): Promise<void> {
    if (!this.accounts.has(account)) throw new Error(`No account ${account} in this bank.`);
    if (closed) this.closed.add(account);
    else this.closed.delete(account);
  }

  async closedAccounts(): Promise<string[]> {
    return [...this.closed];
  }

  async close(): Promise<void> {}
}

/**
 * A SQLite file, through Node's built-in `node:sqlite` (Node 22.5 and newer). Each
 * transaction takes the write lock up front (BEGIN IMMEDIATE), so several processes
 * can share the file, and WAL with synchronous=FULL means a killed process leaves
 * either the whole transaction or none of it. Within one process the transactions run
 * one at a time on the one connection.
 */
export class SqliteStore implements BankStore {
  private readonly db: sqlite.DatabaseSync;
  private readonly serial = new Serial();

  constructor(
    readonly file: string,
    openingBalances: ReadonlyMap<string, number> = OPENING_BALANCES,
  ) {
    const isNew = !existsSync(file);
    this.db = new (loadSqlite().DatabaseSync)(file);
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS accounts (
        id TEXT PRIMARY KEY,
        balance INTEGER NOT NULL CHECK (balance >= 0)
      );
      CREATE TABLE IF NOT EXISTS ledger (
        reference TEXT PRIMARY KEY,
        transaction_id TEXT NOT NULL,
        account TEXT NOT NULL REFERENCES accounts (id),
        amount INTEGER NOT NULL,
        owner TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS voided (
        reference TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        refusal_type TEXT,
        refusal_message TEXT
      );
      CREATE TABLE IF NOT EXISTS closed_accounts (id TEXT PRIMARY KEY REFERENCES accounts (id));
    `);
    const columns = this.db.prepare('PRAGMA table_info(ledger)').all() as Array<{ name: string }>;
    if (!columns.some((column) => column.name === 'owner')) {
      this.db.close();
      throw new Error(
        `${file} was made by an older version of this bank, whose ledger has no owners. ` +
          'Remove it (its balances start again from the opening balances), or point BANK_DB at a new file.',
      );
    }
    if (isNew) {
      this.db.exec('BEGIN IMMEDIATE');
      const insert = this.db.prepare('INSERT OR IGNORE INTO accounts (id, balance) VALUES (?, ?)');
      for (const [id, balance] of openingBalances) insert.run(id, balance);
      this.db.exec('COMMIT');
    }
  }

  transaction<T>(fn: (tx: LedgerTransaction) => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      const findEntry = this.db.prepare(
        'SELECT reference, transaction_id, account, amount, owner FROM ledger WHERE reference = ?',
      );
      const findVoid = this.db.prepare(
        'SELECT reference, owner, refusal_type, refusal_message FROM voided WHERE reference = ?',
      );
      const addVoid = this.db.prepare(
        'INSERT OR IGNORE INTO voided (reference, owner, refusal_type, refusal_message) VALUES (?, ?, ?, ?)',
      );
      const findClosed = this.db.prepare('SELECT 1 FROM closed_accounts WHERE id = ?');
      const findBalance = this.db.prepare('SELECT balance FROM accounts WHERE id = ?');
      const insert = this.db.prepare(
        'INSERT INTO ledger (reference, transaction_id, account, amount, owner) VALUES (?, ?, ?, ?, ?)',
      );
      const move = this.db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn({
          entryFor: async (reference) => {
            const row = findEntry.get(reference) as LedgerRow | undefined;
            return row && fromRow(row);
          },
          voidFor: async (reference) => {
            const row = findVoid.get(reference) as VoidRow | undefined;
            return row && fromVoidRow(row);
          },
          markVoided: async ({ reference, owner, refusal }) =>
            void addVoid.run(reference, owner, refusal?.type ?? null, refusal?.message ?? null),
          isClosed: async (account) => findClosed.get(account) !== undefined,
          balance: async (account) => (findBalance.get(account) as { balance: number } | undefined)?.balance,
          post: async (entry) => {
            insert.run(entry.reference, entry.transactionId, entry.account, entry.amount, entry.owner);
            move.run(entry.amount, entry.account);
          },
        });
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async balances(): Promise<Map<string, number>> {
    const rows = this.db.prepare('SELECT id, balance FROM accounts ORDER BY id').all() as Array<{
      id: string;
      balance: number;
    }>;
    return new Map(rows.map((row) => [row.id, row.balance]));
  }

  async entries(): Promise<LedgerEntry[]> {
    const rows = this.db
      .prepare('SELECT reference, transaction_id, account, amount, owner FROM ledger ORDER BY rowid')
      .all() as unknown as LedgerRow[];
    return rows.map(fromRow);
  }

  async setClosed(account: string, closed: boolean): Promise<void> {
    await this.transaction(async (tx) => {
      if ((await tx.balance(account)) === undefined) throw new Error(`No account ${account} in this bank.`);
      this.db
        .prepare(
          closed
            ? 'INSERT OR IGNORE INTO closed_accounts (id) VALUES (?)'
            : 'DELETE FROM closed_accounts WHERE id = ?',
        )
        .run(account);
    });
  }

  async closedAccounts(): Promise<string[]> {
    const rows = this.db.prepare('SELECT id FROM closed_accounts ORDER BY id').all() as Array<{ id: string }>;
    return rows.map((row) => row.id);
  }

  async voided(): Promise<VoidRecord[]> {
    const rows = this.db
      .prepare('SELECT reference, owner, refusal_type, refusal_message FROM voided ORDER BY rowid')
      .all() as unknown as VoidRow[];
    return rows.map(fromVoidRow);
  }

  async close(): Promise<void> {
    await this.serial.run(async () => this.db.close());
  }
}

interface LedgerRow {
  reference: string;
  transaction_id: string;
  account: string;
  amount: number;
  owner: string;
}

function fromRow(row: LedgerRow): LedgerEntry {
  return {
    reference: row.reference,
    transactionId: row.transaction_id,
    account: row.account,
    amount: row.amount,
    owner: row.owner,
  };
}

interface VoidRow {
  reference: string;
  owner: string;
  refusal_type: string | null;
  refusal_message: string | null;
}

function fromVoidRow(row: VoidRow): VoidRecord {
  const { reference, owner, refusal_type: type, refusal_message: message } = row;
  return type === null
    ? { reference, owner }
    : { reference, owner, refusal: { type, message: message ?? '' } };
}

function loadSqlite(): typeof sqlite {
  try {
    // Loaded on demand: Node 20 has no node:sqlite, and the memory store needs none.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('node:sqlite') as typeof sqlite;
  } catch (cause) {
    throw new Error(
      `The SQLite bank store needs Node.js 22.5 or newer (this is ${process.version}). ` +
        'Use Node 24 (see .nvmrc), or unset BANK_DB to keep the bank in memory.',
      { cause },
    );
  }
}

/**
 * A PostgreSQL database, through node-postgres. Workers on several machines can share it.
 *
 * Isolation: READ COMMITTED with strict two-phase locking on what a transaction touches,
 * every lock held until COMMIT or ROLLBACK:
 * - a reference is locked (pg_advisory_xact_lock on its hash) before it is read or
 *   voided, so two transactions on one reference run one after the other, even while
 *   it has no row yet;
 * - an account row is locked (SELECT ... FOR UPDATE) before its balance or closed flag
 *   is read, and before money moves on it.
 * Each read comes after its lock, so it sees the latest commit; no transaction acts on
 * a value another may change before it commits: as strict as SQLite's one writer at a
 * time, but transactions on other references and accounts run side by side. Waiting on
 * a lock queues instead of failing, which SERIALIZABLE would do (40001) to all but one
 * of the withdrawals racing on a busy account. Deadlocks (40P01) cannot arise from the
 * bank's order (reference, then account), but a transaction that meets one, or a
 * serialization failure, runs again, a few times, after a random pause.
 */
export class PgStore implements BankStore {
  private readonly pool: pg.Pool;
  private readonly reachability: Reachability;
  private readonly reconnectWithinMs: number;
  private schema?: Promise<void>;

  constructor(
    readonly url: string,
    private readonly openingBalances: ReadonlyMap<string, number> = OPENING_BALANCES,
    options: PgStoreOptions = {},
  ) {
    this.pool = new (loadPg().Pool)({
      connectionString: url,
      max: 10,
      // A connect that hangs (a host that drops packets) fails after 10 s instead of never.
      connectionTimeoutMillis: 10_000,
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
      query_timeout: options.queryTimeoutMs ?? QUERY_TIMEOUT_MS,
      // An idle connection to a database that was cut off is found dead, not kept for hours.
      keepAlive: true,
    });
    this.reconnectWithinMs = options.reconnectWithinMs ?? RECONNECT_WITHIN_MS;
    this.reachability = new Reachability(
      `PostgreSQL bank ${redactPassword(url)}`,
      this.reconnectWithinMs,
      options.warn,
    );
    // A client whose server goes away emits 'error', idle or checked out; unheard, that
    // error would end the process. The pool drops a broken client and connects anew.
    this.pool.on('error', (err) => this.reachability.lost(err));
    this.pool.on('connect', (client) => client.on('error', (err) => this.reachability.lost(err)));
    this.ensureSchema().catch(() => undefined); // reported by the first call that needs it
  }

  /** Resolves once the schema exists, or rejects saying why the database cannot be used. */
  ready(): Promise<void> {
    return this.ensureSchema();
  }

  /** Sets the schema up once; after a failure (the database was down), the next call tries again. */
  private ensureSchema(): Promise<void> {
    this.schema ??= this.createSchema().catch((err: unknown) => {
      this.schema = undefined;
      throw err;
    });
    return this.schema;
  }

  private async createSchema(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (cause) {
      throw new BankUnavailableError(
        `Cannot connect to the PostgreSQL bank ${redactPassword(this.url)}: ${(cause as Error).message}`,
        { cause },
      );
    }
    try {
      await client.query('BEGIN');
      // Workers starting at once take turns here, so one creates and funds the accounts, the others find it done.
      await client.query('SELECT pg_advisory_xact_lock($1, 0)', [SCHEMA_LOCK]);
      const found = await client.query<{ exists: boolean }>(
        "SELECT to_regclass('accounts') IS NOT NULL AS exists",
      );
      await client.query(`
        CREATE TABLE IF NOT EXISTS accounts (
          id TEXT PRIMARY KEY,
          balance BIGINT NOT NULL CHECK (balance >= 0)
        );
        CREATE TABLE IF NOT EXISTS ledger (
          id BIGSERIAL NOT NULL UNIQUE,
          reference TEXT PRIMARY KEY,
          transaction_id TEXT NOT NULL,
          account TEXT NOT NULL REFERENCES accounts (id),
          amount BIGINT NOT NULL,
          owner TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS voided (
          id BIGSERIAL NOT NULL UNIQUE,
          reference TEXT PRIMARY KEY,
          owner TEXT NOT NULL,
          refusal_type TEXT,
          refusal_message TEXT
        );
        CREATE TABLE IF NOT EXISTS closed_accounts (id TEXT PRIMARY KEY REFERENCES accounts (id));
      `);
      if (!found.rows[0]!.exists) {
        for (const [id, balance] of this.openingBalances)
          await client.query('INSERT INTO accounts (id, balance) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
            id,
            balance,
          ]);
      }
      await client.query('COMMIT');
      client.release();
    } catch (cause) {
      client.release(true); // its transaction may still be open: do not reuse it
      const message = `The PostgreSQL bank ${redactPassword(this.url)} could not set up its tables: ${(cause as Error).message}`;
      throw isUnreachable(cause)
        ? new BankUnavailableError(message, { cause })
        : new Error(message, { cause });
    }
  }

  /**
   * Runs `fn` in one database transaction. A database that is unreachable, or goes away
   * before COMMIT was sent, gets another try until `reconnectWithinMs` has passed (the
   * server rolls back what a lost connection had not committed), then BankUnavailableError.
   * A connection lost during COMMIT is an unknown outcome: BankUnavailableError at once,
   * and the transfer settles its reference as after any other unknown outcome.
   */
  async transaction<T>(fn: (tx: LedgerTransaction) => Promise<T>): Promise<T> {
    const giveUpAt = Date.now() + this.reconnectWithinMs;
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient | undefined;
      let committing = false;
      let broken = false;
      try {
        await this.ensureSchema();
        client = await this.pool.connect();
        await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
        const result = await fn(lockingTransaction(client));
        committing = true;
        // A statement that failed inside fn, caught there, aborts the transaction: COMMIT then rolls back.
        const commit = await client.query('COMMIT');
        if (commit.command === 'ROLLBACK')
          throw new Error('The bank transaction was rolled back by an error.');
        this.reachability.reached();
        return result;
      } catch (err) {
        // A statement that got no answer still holds its connection: a ROLLBACK would queue behind it.
        const unanswered = isUnanswered(err);
        if (client && !committing && !unanswered)
          await client.query('ROLLBACK').catch(() => {
            broken = true;
          });
        if (committing || unanswered) broken = true;
        const code = (err as { code?: string }).code;
        if ((code === '40001' || code === '40P01') && attempt < MAX_ATTEMPTS) {
          await sleep(Math.random() * 20 * attempt);
          continue;
        }
        if (!isUnreachable(err)) throw asBankError(err);
        this.reachability.lost(err as Error);
        if (committing) {
          throw new BankUnavailableError(
            `The bank lost its ledger database while committing, so whether this call posted is unknown ` +
              `until its reference is settled: ${(err as Error).message}`,
            { cause: err },
          );
        }
        if (Date.now() < giveUpAt) {
          await sleep(RECONNECT_PAUSE_MS);
          continue;
        }
        throw unavailable(err);
      } finally {
        client?.release(broken);
      }
    }
  }

  /** One read outside a transaction, with the bank's own errors. */
  private async read<R extends pg.QueryResultRow>(sql: string): Promise<R[]> {
    try {
      await this.ensureSchema();
      const { rows } = await this.pool.query<R>(sql);
      this.reachability.reached();
      return rows;
    } catch (err) {
      if (!isUnreachable(err)) throw asBankError(err);
      this.reachability.lost(err as Error);
      throw unavailable(err);
    }
  }

  async balances(): Promise<Map<string, number>> {
    const rows = await this.read<{ id: string; balance: string }>(
      'SELECT id, balance FROM accounts ORDER BY id',
    );
    return new Map(rows.map((row) => [row.id, Number(row.balance)]));
  }

  async entries(): Promise<LedgerEntry[]> {
    const rows = await this.read<PgLedgerRow>(
      'SELECT reference, transaction_id, account, amount, owner FROM ledger ORDER BY id',
    );
    return rows.map(fromPgRow);
  }

  async voided(): Promise<VoidRecord[]> {
    const rows = await this.read<VoidRow>(
      'SELECT reference, owner, refusal_type, refusal_message FROM voided ORDER BY id',
    );
    return rows.map(fromVoidRow);
  }

  async setClosed(account: string, closed: boolean): Promise<void> {
    await this.transaction(async (tx) => {
      if ((await tx.balance(account)) === undefined) throw new Error(`No account ${account} in this bank.`);
      await (tx as PgLedgerTransaction).client.query(
        closed
          ? 'INSERT INTO closed_accounts (id) VALUES ($1) ON CONFLICT DO NOTHING'
          : 'DELETE FROM closed_accounts WHERE id = $1',
        [account],
      );
    });
  }

  async closedAccounts(): Promise<string[]> {
    const rows = await this.read<{ id: string }>('SELECT id FROM closed_accounts ORDER BY id');
    return rows.map((row) => row.id);
  }

  async close(): Promise<void> {
    await this.schema?.catch(() => undefined);
    await this.pool.end();
  }
}

export interface PgStoreOptions {
  /** How long one call waits for the database to come back. Default: RECONNECT_WITHIN_MS. */
  reconnectWithinMs?: number;
  /** How long one statement waits for its answer. Default: QUERY_TIMEOUT_MS. */
  queryTimeoutMs?: number;
  /** Where the store says that its database went away and came back. Default: console.warn. */
  warn?: (line: string) => void;
}

/**
 * How long one bank call waits for its database to come back: a restart takes a second
 * or two. It leaves a step's 5 s attempt time to do its work, and the step's three
 * attempts ride out about 12 s in all (docs/bank.md, "When the database goes away").
 */
export const RECONNECT_WITHIN_MS = STEP_ATTEMPT_TIMEOUT_MS - 2_000;
const RECONNECT_PAUSE_MS = 250;
/**
 * How long the database keeps a bank session that is idle inside its transaction: longer
 * than any bank transaction pauses between statements. A worker host lost mid-transaction
 * (power gone, or cut off and then killed) never closes its connection, and its session
 * would keep its locks on the reference and the account for as long as the kernel takes to
 * find it dead (two hours by default). Ended here, its transaction rolls back, as after a crash.
 */
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000;
/**
 * How long one statement waits for its answer. A database that stops answering without
 * closing the connection (its host hung or lost, a link cut without a reset) would
 * otherwise hold the connection, and its pool slot, until the kernel gives up on it:
 * minutes with data unacknowledged, two hours waiting on an answer. Longer than a lost
 * host's session can hold a lock, so a statement queued behind one gets its answer.
 */
export const QUERY_TIMEOUT_MS = IDLE_IN_TRANSACTION_TIMEOUT_MS + STEP_ATTEMPT_TIMEOUT_MS;

/** Says once that the database went away, and once that it is back, however many calls notice. */
class Reachability {
  private lostAt: number | undefined;

  constructor(
    private readonly name: string,
    private readonly waitMs: number,
    private readonly warn: (line: string) => void = (line) => console.warn(line),
  ) {}

  lost(err: Error): void {
    if (this.lostAt !== undefined) return;
    this.lostAt = Date.now();
    this.warn(
      `${this.name}: unreachable (${err.message}). Bank calls wait up to ${this.waitMs / 1000} s ` +
        'for it, then fail as BankUnavailableError and the transfers retry; said once until it is back.',
    );
  }

  reached(): void {
    if (this.lostAt === undefined) return;
    const seconds = ((Date.now() - this.lostAt) / 1000).toFixed(1);
    this.lostAt = undefined;
    this.warn(`${this.name}: reachable again, ${seconds} s after it was lost.`);
  }
}

/**
 * SQLSTATE classes of a database that cannot serve now: 08 connection, 53 resources, 57P
 * shutdown, and 25P03, a session the database ended after IDLE_IN_TRANSACTION_TIMEOUT_MS
 * because its client went quiet (cut off): its transaction was rolled back, as after a crash.
 */
const UNAVAILABLE_STATES = /^(08|53|57P|25P03)/;
/** Node's socket errors, and the driver's own words for a connection that went away. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const LOST_CONNECTION =
  /Connection terminated|not queryable|timeout exceeded when trying to connect|connection timeout|Query read timeout/i;

/** The driver's error for a statement that got no answer within QUERY_TIMEOUT_MS. */
function isUnanswered(err: unknown): boolean {
  return (err as { message?: unknown } | undefined)?.message === 'Query read timeout';
}

function isUnreachable(err: unknown): boolean {
  if (err instanceof BankUnavailableError) return true;
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_STATES.test(code) || SOCKET_CODES.has(code))) return true;
  return typeof message === 'string' && LOST_CONNECTION.test(message);
}

function unavailable(err: unknown): BankUnavailableError {
  if (err instanceof BankUnavailableError) return err;
  return new BankUnavailableError(`The bank's ledger database is unreachable: ${(err as Error).message}`, {
    cause: err,
  });
}

/** A statement the database refused is the bank's failure to the caller, not the driver's class. */
function asBankError(err: unknown): unknown {
  if (!(err instanceof loadPg().DatabaseError)) return err;
  return new BankLedgerError(`The bank's ledger refused a statement (${err.code}): ${err.message}`, {
    cause: err,
  });
}

/** Advisory lock key spaces (the first of two int4 keys), so the bank's locks meet no one else's. */
const SCHEMA_LOCK = 0x62616e6b; // "bank"
const REFERENCE_LOCK = 0x62616e72; // "banr"
/** Tries of one transaction that meets a deadlock or serialization failure. */
const MAX_ATTEMPTS = 5;

interface PgLedgerTransaction extends LedgerTransaction {
  readonly client: pg.PoolClient;
}

/** The ledger operations on one client in a transaction, each taking its lock before it reads. */
function lockingTransaction(client: pg.PoolClient): PgLedgerTransaction {
  const lockedReferences = new Set<string>();
  const lockReference = async (reference: string) => {
    if (lockedReferences.has(reference)) return;
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [REFERENCE_LOCK, reference]);
    lockedReferences.add(reference);
  };
  // FOR UPDATE waits for the row and returns its latest committed balance, or ours.
  const lockAccount = async (account: string) => {
    const { rows } = await client.query<{ balance: string }>(
      'SELECT balance FROM accounts WHERE id = $1 FOR UPDATE',
      [account],
    );
    return rows[0] && Number(rows[0].balance);
  };
  return {
    client,
    entryFor: async (reference) => {
      await lockReference(reference);
      const { rows } = await client.query<PgLedgerRow>(
        'SELECT reference, transaction_id, account, amount, owner FROM ledger WHERE reference = $1',
        [reference],
      );
      return rows[0] && fromPgRow(rows[0]);
    },
    voidFor: async (reference) => {
      await lockReference(reference);
      const { rows } = await client.query<VoidRow>(
        'SELECT reference, owner, refusal_type, refusal_message FROM voided WHERE reference = $1',
        [reference],
      );
      return rows[0] && fromVoidRow(rows[0]);
    },
    markVoided: async ({ reference, owner, refusal }) => {
      await lockReference(reference);
      await client.query(
        'INSERT INTO voided (reference, owner, refusal_type, refusal_message) VALUES ($1, $2, $3, $4) ' +
          'ON CONFLICT (reference) DO NOTHING',
        [reference, owner, refusal?.type ?? null, refusal?.message ?? null],
      );
    },
    balance: lockAccount,
    isClosed: async (account) => {
      await lockAccount(account);
      const { rowCount } = await client.query('SELECT 1 FROM closed_accounts WHERE id = $1', [account]);
      return (rowCount ?? 0) > 0;
    },
    post: async (entry) => {
      await lockReference(entry.reference);
      // The account first: the insert's foreign key check alone would take a weaker lock,
      // and two of those upgraded at once deadlock.
      await lockAccount(entry.account);
      await client.query(
        'INSERT INTO ledger (reference, transaction_id, account, amount, owner) VALUES ($1, $2, $3, $4, $5)',
        [entry.reference, entry.transactionId, entry.account, entry.amount, entry.owner],
      );
      await client.query('UPDATE accounts SET balance = balance + $1 WHERE id = $2', [
        entry.amount,
        entry.account,
      ]);
    },
  };
}

/** BIGINT columns come back as strings, so no large value is silently rounded. */
interface PgLedgerRow extends Omit<LedgerRow, 'amount'> {
  amount: string;
}

function fromPgRow(row: PgLedgerRow): LedgerEntry {
  return fromRow({ ...row, amount: Number(row.amount) });
}

function loadPg(): typeof pg {
  try {
    // Loaded on demand: the memory and SQLite stores need no PostgreSQL client.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('pg') as typeof pg;
  } catch (cause) {
    throw new Error(
      'The PostgreSQL bank store needs the `pg` package: run `npm install` (it is a dependency of this project).',
      { cause },
    );
  }
}

/** A postgres:// or postgresql:// URL, which BANK_DB gives to select PostgreSQL. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/** The URL without its password (in the user info or a `password` parameter), fit for logs. */
export function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.searchParams.delete('password');
    return parsed.toString();
  } catch {
    return `${url.split('://')[0]}://(a URL that does not parse)`;
  }
}

/** The store BANK_DB names: a postgres:// URL, a SQLite file, or memory when it is unset. */
export function openStore(env: NodeJS.ProcessEnv = process.env): BankStore {
  const db = env.BANK_DB;
  if (!db) return new MemoryStore();
  return isPostgresUrl(db) ? new PgStore(db) : new SqliteStore(db);
}
