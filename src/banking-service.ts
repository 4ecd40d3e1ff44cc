import { setTimeout as sleep } from 'node:timers/promises';
import { customAlphabet } from 'nanoid';
import { MemoryStore, openStore, type BankStore } from './bank-store';
import { parseFaults, type BankOperation, type FaultPlan, type Injection } from './bank-faults';
import {
  AccountClosedError,
  type BankError,
  IdempotencyKeyReusedError,
  InsufficientFundsError,
  InvalidAccountError,
  InvalidPaymentDetailsError,
  ReferenceVoidedError,
} from './shared';

/** The seed's bank host. The mock makes no calls to it. */
export const BANK_HOSTNAME = 'bank-api.example.com';

const newId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', 10);

export interface BankOptions {
  /** Where balances and the ledger live. Default: memory, with the seed's accounts. */
  store?: BankStore;
  /** Each call waits this long first, like a slow bank: a number, or [min, max] drawn per call. */
  delayMs?: number | readonly [number, number];
  /** Faults to inject on purpose (BANK_FAULTS). None by default. */
  faults?: FaultPlan;
  /** Told of every injected fault, to log it. */
  onFault?: (op: BankOperation, reference: string, injection: Injection) => void;
}

/** What a settle found: the transaction posted under the reference, or a void. */
export type Settlement = { posted: true; transactionId: string; account: string } | { posted: false };

/**
 * A mock bank. It makes no network calls: the hostname only shows where a real client
 * would connect. Money really moves between its accounts, and every call is idempotent
 * on its reference: a repeated reference with the same account and amount returns the
 * first transaction id and moves nothing, which makes Temporal's at-least-once activity
 * retries safe. Each call takes an optional AbortSignal: a caller that gave up stops
 * the call before it posts (unless a `late` fault says otherwise).
 */
export class BankingService {
  readonly store: BankStore;
  private readonly options: BankOptions;

  constructor(
    readonly hostname: string,
    options: BankOptions = {},
  ) {
    this.store = options.store ?? new MemoryStore();
    this.options = options;
  }

  async withdraw(
    account: string,
    amount: number,
    referenceId: string,
    signal?: AbortSignal,
  ): Promise<string> {
    return this.call('withdraw', referenceId, signal, (rejection) =>
      this.post('W', account, -checkAmount(amount), referenceId, rejection),
    );
  }

  async deposit(account: string, amount: number, referenceId: string, signal?: AbortSignal): Promise<string> {
    return this.call('deposit', referenceId, signal, (rejection) =>
      this.post('D', account, checkAmount(amount), referenceId, rejection),
    );
  }

  /** A deposit back into the account money came from. */
  async refund(account: string, amount: number, referenceId: string, signal?: AbortSignal): Promise<string> {
    return this.call('refund', referenceId, signal, (rejection) =>
      this.post('D', account, checkAmount(amount), referenceId, rejection),
    );
  }

  /** Always fails with a plain Error, which Temporal treats as retryable. */
  async depositThatFails(_account: string, _amount: number, _referenceId: string): Promise<string> {
    throw new Error('This deposit has failed.');
  }

  /**
   * Settles a call whose outcome is unknown. In one transaction it looks the reference
   * up and, if nothing posted, voids it, so a call still in flight can never post
   * under it. Asking again gives the same answer.
   */
  async settle(referenceId: string, signal?: AbortSignal): Promise<Settlement> {
    return this.call('lookup', referenceId, signal, () =>
      this.store.transaction((tx): Settlement => {
        const entry = tx.entryFor(referenceId);
        if (entry) return { posted: true, transactionId: entry.transactionId, account: entry.account };
        tx.markVoided(referenceId);
        return { posted: false };
      }),
    );
  }

  balances(): Map<string, number> {
    return this.store.balances();
  }

  /** The open accounts, where a refund could go instead. A real bank would list the customer's own. */
  async openAccounts(): Promise<string[]> {
    const closed = new Set(this.store.closedAccounts());
    return [...this.store.balances().keys()].filter((account) => !closed.has(account));
  }

  /** Waits, injects the planned fault if any, and runs `action` unless the caller gave up. */
  private async call<T>(
    op: BankOperation,
    reference: string,
    signal: AbortSignal | undefined,
    action: (rejection?: BankError) => T,
  ): Promise<T> {
    const injection = this.options.faults?.next(op, reference);
    if (injection?.fault) this.options.onFault?.(op, reference, injection);
    const delayMs = injection?.delayMs || this.latency();
    if (injection?.fault === 'late') {
      await sleep(delayMs); // deaf to cancellation, like a request already in the bank's queue
    } else {
      if (delayMs > 0) await sleep(delayMs, undefined, { signal });
      signal?.throwIfAborted();
    }
    if (injection?.fault === 'fail')
      throw new Error(`Injected fault: ${op} ${reference} failed before posting.`);
    const result = action(
      injection?.fault === 'reject'
        ? new InvalidAccountError(`The account for ${reference} is invalid (injected fault).`)
        : undefined,
    );
    if (injection?.fault === 'post-then-fail') {
      throw new Error(`Injected fault: ${op} ${reference} posted, then its reply was lost.`);
    }
    return result;
  }

  private latency(): number {
    const delay = this.options.delayMs ?? 0;
    if (typeof delay === 'number') return delay;
    return Math.round(delay[0] + Math.random() * (delay[1] - delay[0]));
  }

  /**
   * Posts one movement under its reference. A definite "no" (an invalid account, too
   * little money) also voids the reference, in the same transaction: the answer is
   * final, so an earlier attempt of the same call still in flight cannot post later.
   */
  private post(
    prefix: 'W' | 'D',
    account: string,
    amount: number,
    reference: string,
    rejection?: BankError,
  ): string {
    const outcome = this.store.transaction((tx): { id: string } | { error: BankError } => {
      const earlier = tx.entryFor(reference);
      if (earlier !== undefined) {
        if (earlier.account === account && earlier.amount === amount) return { id: earlier.transactionId };
        return {
          error: new IdempotencyKeyReusedError(
            `The reference ${reference} was already used for ${earlier.amount} on ${earlier.account}; ` +
              `it cannot be used again for ${amount} on ${account}.`,
          ),
        };
      }
      if (tx.isVoided(reference)) {
        return {
          error: new ReferenceVoidedError(
            `The reference ${reference} was voided, so nothing was posted under it.`,
          ),
        };
      }
      const balance = tx.balance(account);
      const no =
        rejection ??
        (balance === undefined
          ? new InvalidAccountError(`The account number ${account} is invalid.`)
          : tx.isClosed(account)
            ? new AccountClosedError(`The account ${account} is closed.`)
            : balance + amount < 0
              ? new InsufficientFundsError(
                  `The account ${account} has insufficient funds to complete this transaction.`,
                )
              : undefined);
      if (no) {
        tx.markVoided(reference);
        return { error: no };
      }
      const transactionId = `${prefix}-${newId()}`;
      tx.post({ reference, transactionId, account, amount });
      return { id: transactionId };
    });
    if ('error' in outcome) throw outcome.error;
    return outcome.id;
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
 * (memory otherwise), BANK_DELAY_MS slows every call (N, or MIN-MAX drawn per call),
 * and BANK_FAULTS injects faults (see bank-faults.ts). Injected faults are logged.
 */
export function bankFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = (line) => console.warn(line),
): BankingService {
  return new BankingService(BANK_HOSTNAME, {
    delayMs: parseDelay(env.BANK_DELAY_MS),
    faults: parseFaults(env.BANK_FAULTS),
    onFault: (op, reference, { fault, delayMs }) =>
      log(
        `Bank fault injected: ${fault} on ${op} ${reference}${fault === 'late' ? ` after ${delayMs} ms` : ''}`,
      ),
    store: openStore(env),
  });
}

function parseDelay(text: string | undefined): number | [number, number] {
  const match = /^\s*(\d+)(?:\s*-\s*(\d+))?\s*$/.exec(text ?? '0');
  if (!match || (match[2] !== undefined && Number(match[2]) < Number(match[1]))) {
    throw new Error(
      `BANK_DELAY_MS must be a whole number of milliseconds, or a range like 4000-6000, got '${text}'`,
    );
  }
  return match[2] === undefined ? Number(match[1]) : [Number(match[1]), Number(match[2])];
}
