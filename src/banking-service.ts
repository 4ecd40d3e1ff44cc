import { setTimeout as sleep } from 'node:timers/promises';
import { customAlphabet } from 'nanoid';
import { MemoryStore, openStore, type BankStore } from './bank-store';
import { InsufficientFundsError, InvalidAccountError, InvalidPaymentDetailsError } from './shared';

/** The seed's bank host. The mock makes no calls to it. */
export const BANK_HOSTNAME = 'bank-api.example.com';

const newId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', 10);

export interface BankOptions {
  /** Where balances and the ledger live. Default: memory, with the seed's accounts. */
  store?: BankStore;
  /** Each call waits this long first, like a slow bank. Off (0) by default. */
  delayMs?: number;
}

/**
 * A mock bank. It makes no network calls: the hostname only shows where a real client
 * would connect. Money really moves between its accounts, and every call is idempotent
 * on its reference: a repeated reference returns the first transaction id and moves
 * nothing, which makes Temporal's at-least-once activity retries safe.
 */
export class BankingService {
  readonly store: BankStore;
  private readonly delayMs: number;

  constructor(
    readonly hostname: string,
    options: BankOptions = {},
  ) {
    this.store = options.store ?? new MemoryStore();
    this.delayMs = options.delayMs ?? 0;
  }

  async withdraw(account: string, amount: number, referenceId: string): Promise<string> {
    await this.delay();
    return this.post('W', account, -checkAmount(amount), referenceId);
  }

  async deposit(account: string, amount: number, referenceId: string): Promise<string> {
    await this.delay();
    return this.post('D', account, checkAmount(amount), referenceId);
  }

  /** Always fails with a plain Error, which Temporal treats as retryable. */
  async depositThatFails(_account: string, _amount: number, _referenceId: string): Promise<string> {
    throw new Error('This deposit has failed.');
  }

  balances(): Map<string, number> {
    return this.store.balances();
  }

  private post(prefix: 'W' | 'D', account: string, amount: number, reference: string): string {
    return this.store.transaction((tx) => {
      const earlier = tx.transactionFor(reference);
      if (earlier !== undefined) return earlier;
      const balance = tx.balance(account);
      if (balance === undefined) throw new InvalidAccountError(`The account number ${account} is invalid.`);
      if (balance + amount < 0) {
        throw new InsufficientFundsError(
          `The account ${account} has insufficient funds to complete this transaction.`,
        );
      }
      const transactionId = `${prefix}-${newId()}`;
      tx.post({ reference, transactionId, account, amount });
      return transactionId;
    });
  }

  private async delay(): Promise<void> {
    if (this.delayMs > 0) await sleep(this.delayMs);
  }
}

function checkAmount(amount: number): number {
  if (!Number.isSafeInteger(amount) || amount <= 0) {
    throw new InvalidPaymentDetailsError(`amount must be a whole number greater than 0 (got ${amount})`);
  }
  return amount;
}

/**
 * The bank the environment asks for: BANK_DB names a SQLite file to keep balances in
 * (memory otherwise), and BANK_DELAY_MS slows every call, to leave time to stop a
 * worker mid-transfer.
 */
export function bankFromEnv(env: NodeJS.ProcessEnv = process.env): BankingService {
  const delayMs = Number(env.BANK_DELAY_MS ?? 0);
  if (!Number.isInteger(delayMs) || delayMs < 0) {
    throw new Error(`BANK_DELAY_MS must be a whole number of milliseconds, got '${env.BANK_DELAY_MS}'`);
  }
  return new BankingService(BANK_HOSTNAME, { delayMs, store: openStore(env) });
}
