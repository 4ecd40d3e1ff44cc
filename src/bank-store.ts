// Where the mock bank keeps its money: in memory (the default), or in a SQLite file
// that outlives the worker process.
import { existsSync } from 'node:fs';
import type * as sqlite from 'node:sqlite';

/** One movement of money. `amount` is signed: negative for a withdrawal. */
export interface LedgerEntry {
  reference: string;
  transactionId: string;
  account: string;
  amount: number;
}

/** What a transaction may read and write. */
export interface LedgerTransaction {
  /** The entry already recorded under this reference, if any. */
  entryFor(reference: string): LedgerEntry | undefined;
  /** True once the reference is voided: nothing may ever post under it. */
  isVoided(reference: string): boolean;
  markVoided(reference: string): void;
  balance(account: string): number | undefined;
  /** A closed account takes no money in or out. */
  isClosed(account: string): boolean;
  /** Records the entry and moves its amount. */
  post(entry: LedgerEntry): void;
}

export interface BankStore {
  /** Runs `fn` atomically: all of its writes are kept, or none if it throws. */
  transaction<T>(fn: (tx: LedgerTransaction) => T): T;
  balances(): Map<string, number>;
  entries(): LedgerEntry[];
  /** The voided references, in the order they were voided. */
  voided(): string[];
  /** Closes or reopens an account; throws for an unknown one. */
  setClosed(account: string, closed: boolean): void;
  closedAccounts(): string[];
  close(): void;
}

/** The seed's accounts and opening balances. */
export const SEED_ACCOUNTS: ReadonlyMap<string, number> = new Map([
  ['85-150', 2000],
  ['43-812', 0],
]);

export class MemoryStore implements BankStore {
  private readonly accounts: Map<string, number>;
  private readonly ledger = new Map<string, LedgerEntry>();
  private readonly voids = new Set<string>();
  private readonly closed = new Set<string>();

  constructor(accounts: ReadonlyMap<string, number> = SEED_ACCOUNTS) {
    this.accounts = new Map(accounts);
  }

  transaction<T>(fn: (tx: LedgerTransaction) => T): T {
    // Writes are staged and applied only once fn returns.
    const staged: LedgerEntry[] = [];
    const stagedVoids = new Set<string>();
    const result = fn({
      entryFor: (reference) => this.ledger.get(reference) ?? staged.find((e) => e.reference === reference),
      isVoided: (reference) => this.voids.has(reference) || stagedVoids.has(reference),
      markVoided: (reference) => void stagedVoids.add(reference),
      isClosed: (account) => this.closed.has(account),
      balance: (account) => {
        const opening = this.accounts.get(account);
        if (opening === undefined) return undefined;
        return staged.filter((e) => e.account === account).reduce((sum, e) => sum + e.amount, opening);
      },
      post: (entry) => void staged.push(entry),
    });
    for (const entry of staged) {
      this.ledger.set(entry.reference, entry);
      this.accounts.set(entry.account, this.accounts.get(entry.account)! + entry.amount);
    }
    for (const reference of stagedVoids) this.voids.add(reference);
    return result;
  }

  balances(): Map<string, number> {
    return new Map(this.accounts);
  }

  entries(): LedgerEntry[] {
    return [...this.ledger.values()];
  }

  voided(): string[] {
    return [...this.voids];
  }

  setClosed(account: string, closed: boolean): void {
    if (!this.accounts.has(account)) throw new Error(`No account ${account} in this bank.`);
    if (closed) this.closed.add(account);
    else this.closed.delete(account);
  }

  closedAccounts(): string[] {
    return [...this.closed];
  }

  close(): void {}
}

/**
 * A SQLite file, through Node's built-in `node:sqlite` (Node 22.5 and newer). Each
 * transaction takes the write lock up front (BEGIN IMMEDIATE), so several processes
 * can share the file, and WAL with synchronous=FULL means a killed process leaves
 * either the whole transaction or none of it.
 */
export class SqliteStore implements BankStore {
  private readonly db: sqlite.DatabaseSync;

  constructor(
    readonly file: string,
    seed: ReadonlyMap<string, number> = SEED_ACCOUNTS,
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
        amount INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS voided (reference TEXT PRIMARY KEY);
      CREATE TABLE IF NOT EXISTS closed_accounts (id TEXT PRIMARY KEY REFERENCES accounts (id));
    `);
    if (isNew) {
      this.transaction(() => {
        const insert = this.db.prepare('INSERT OR IGNORE INTO accounts (id, balance) VALUES (?, ?)');
        for (const [id, balance] of seed) insert.run(id, balance);
      });
    }
  }

  transaction<T>(fn: (tx: LedgerTransaction) => T): T {
    const findEntry = this.db.prepare(
      'SELECT reference, transaction_id, account, amount FROM ledger WHERE reference = ?',
    );
    const findVoid = this.db.prepare('SELECT 1 FROM voided WHERE reference = ?');
    const addVoid = this.db.prepare('INSERT OR IGNORE INTO voided (reference) VALUES (?)');
    const findClosed = this.db.prepare('SELECT 1 FROM closed_accounts WHERE id = ?');
    const findBalance = this.db.prepare('SELECT balance FROM accounts WHERE id = ?');
    const insert = this.db.prepare(
      'INSERT INTO ledger (reference, transaction_id, account, amount) VALUES (?, ?, ?, ?)',
    );
    const move = this.db.prepare('UPDATE accounts SET balance = balance + ? WHERE id = ?');
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn({
        entryFor: (reference) => {
          const row = findEntry.get(reference) as LedgerRow | undefined;
          return row && fromRow(row);
        },
        isVoided: (reference) => findVoid.get(reference) !== undefined,
        markVoided: (reference) => void addVoid.run(reference),
        isClosed: (account) => findClosed.get(account) !== undefined,
        balance: (account) => (findBalance.get(account) as { balance: number } | undefined)?.balance,
        post: (entry) => {
          insert.run(entry.reference, entry.transactionId, entry.account, entry.amount);
          move.run(entry.amount, entry.account);
        },
      });
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  balances(): Map<string, number> {
    const rows = this.db.prepare('SELECT id, balance FROM accounts ORDER BY id').all() as Array<{
      id: string;
      balance: number;
    }>;
    return new Map(rows.map((row) => [row.id, row.balance]));
  }

  entries(): LedgerEntry[] {
    const rows = this.db
      .prepare('SELECT reference, transaction_id, account, amount FROM ledger ORDER BY rowid')
      .all() as unknown as LedgerRow[];
    return rows.map(fromRow);
  }

  setClosed(account: string, closed: boolean): void {
    this.transaction((tx) => {
      if (tx.balance(account) === undefined) throw new Error(`No account ${account} in this bank.`);
      this.db
        .prepare(
          closed
            ? 'INSERT OR IGNORE INTO closed_accounts (id) VALUES (?)'
            : 'DELETE FROM closed_accounts WHERE id = ?',
        )
        .run(account);
    });
  }

  closedAccounts(): string[] {
    const rows = this.db.prepare('SELECT id FROM closed_accounts ORDER BY id').all() as Array<{ id: string }>;
    return rows.map((row) => row.id);
  }

  voided(): string[] {
    const rows = this.db.prepare('SELECT reference FROM voided ORDER BY rowid').all() as Array<{
      reference: string;
    }>;
    return rows.map((row) => row.reference);
  }

  close(): void {
    this.db.close();
  }
}

interface LedgerRow {
  reference: string;
  transaction_id: string;
  account: string;
  amount: number;
}

function fromRow(row: LedgerRow): LedgerEntry {
  return {
    reference: row.reference,
    transactionId: row.transaction_id,
    account: row.account,
    amount: row.amount,
  };
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

/** The store BANK_DB names: a SQLite file, or memory when it is unset. */
export function openStore(env: NodeJS.ProcessEnv = process.env): BankStore {
  return env.BANK_DB ? new SqliteStore(env.BANK_DB) : new MemoryStore();
}
