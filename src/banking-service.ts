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
  isValidAmount,
  ReferenceVoidedError,
  TransferAlreadyOwnedError,
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

/** Who makes a call, and how to stop it. */
export interface CallOptions {
  /**
   * The execution (workflow id) making the call. A reference belongs to the first owner
   * that uses it; another owner is refused with TransferAlreadyOwnedError. Calls that
   * name no owner share one.
   */
  owner?: string;
  /** A caller that gave up aborts it, and the call stops before it posts. */
  signal?: AbortSignal;
}

const NO_OWNER = '(no owner)';

/** The bank's definite answers, by name, to give a retry the answer its reference was voided with. */
const REFUSALS: Record<string, new (message: string) => BankError> = {
  InvalidAccountError,
  InsufficientFundsError,
  AccountClosedError,
};

/**
 * A mock bank. It makes no network calls: the hostname only shows where a real client
 * would connect. Money really moves between its accounts, and every call is idempotent
 * on its reference: a repeated reference with the same owner, account and amount
 * returns the first transaction id and moves nothing, which makes Temporal's
 * at-least-once activity retries safe. A reference belongs to the execution that first
 * used it, so a duplicate submission of a payment under another workflow id moves
 * nothing. Each call takes an optional AbortSignal: a caller that gave up stops the call
 * before it posts (unless a `late` fault says otherwise).
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
    call: CallOptions = {},
  ): Promise<string> {
    return this.call('withdraw', referenceId, call.signal, (rejection) =>
      this.post('W', account, -checkAmount(amount), referenceId, call.owner ?? NO_OWNER, rejection),
    );
  }

  async deposit(
    account: string,
    amount: number,
    referenceId: string,
    call: CallOptions = {},
  ): Promise<string> {
    return this.call('deposit', referenceId, call.signal, (rejection) =>
      this.post('D', account, checkAmount(amount), referenceId, call.owner ?? NO_OWNER, rejection),
    );
  }

  /** A deposit back into the account money came from. */
  async refund(
    account: string,
    amount: number,
    referenceId: string,
    call: CallOptions = {},
  ): Promise<string> {
    return this.call('refund', referenceId, call.signal, (rejection) =>
      this.post('D', account, checkAmount(amount), referenceId, call.owner ?? NO_OWNER, rejection),
    );
  }

  /** Always fails with a plain Error, which Temporal treats as retryable. */
  async depositThatFails(_account: string, _amount: number, _referenceId: string): Promise<string> {
    throw new Error('This deposit has failed.');
  }

  /**
   * Settles a call whose outcome is unknown. In one transaction it looks the reference
   * up and, if nothing posted, voids it, so a call still in flight can never post
   * under it. Asking again gives the same answer. Another owner's reference is refused.
   */
  async settle(referenceId: string, call: CallOptions = {}): Promise<Settlement> {
    const owner = call.owner ?? NO_OWNER;
    return this.call('lookup', referenceId, call.signal, () =>
      this.store.transaction(async (tx): Promise<Settlement> => {
        const entry = await tx.entryFor(referenceId);
        const voided = entry ? undefined : await tx.voidFor(referenceId);
        const holder = entry?.owner ?? voided?.owner;
        if (holder !== undefined && holder !== owner) throw ownedBy(referenceId, holder, owner);
        if (entry) return { posted: true, transactionId: entry.transactionId, account: entry.account };
        if (!voided) await tx.markVoided({ reference: referenceId, owner });
        return { posted: false };
      }),
    );
  }

  balances(): Promise<Map<string, number>> {
    return this.store.balances();
  }

  /** The open accounts, where a refund could go instead. A real bank would list the customer's own. */
  async openAccounts(): Promise<string[]> {
    const closed = new Set(await this.store.closedAccounts());
    return [...(await this.store.balances()).keys()].filter((account) => !closed.has(account));
  }

  /** Waits, injects the planned fault if any, and runs `action` unless the caller gave up. */
  private async call<T>(
    op: BankOperation,
    reference: string,
    signal: AbortSignal | undefined,
    action: (rejection?: BankError) => Promise<T>,
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
    const result = await action(
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
   * Posts one movement under its reference, in one transaction:
   * - another owner's reference is refused (TransferAlreadyOwnedError);
   * - the same call again returns the first transaction id;
   * - a voided reference gives the answer it was voided with: the bank's "no" again,
   *   or ReferenceVoidedError after a settle;
   * - a definite "no" (an invalid account, too little money) also voids the reference,
   *   so an earlier attempt of the same call still in flight cannot post later.
   */
  private async post(
    prefix: 'W' | 'D',
    account: string,
    amount: number,
    reference: string,
    owner: string,
    rejection?: BankError,
  ): Promise<string> {
    const outcome = await this.store.transaction(
      async (tx): Promise<{ id: string } | { error: BankError }> => {
        const earlier = await tx.entryFor(reference);
        if (earlier !== undefined) {
          if (earlier.owner !== owner) return { error: ownedBy(reference, earlier.owner, owner) };
          if (earlier.account === account && earlier.amount === amount) return { id: earlier.transactionId };
          return {
            error: new IdempotencyKeyReusedError(
              `The reference ${reference} was already used for ${earlier.amount} on ${earlier.account}; ` +
                `it cannot be used again for ${amount} on ${account}.`,
            ),
          };
        }
        const voided = await tx.voidFor(reference);
        if (voided) {
          if (voided.owner !== owner) return { error: ownedBy(reference, voided.owner, owner) };
          const Refusal = voided.refusal && REFUSALS[voided.refusal.type];
          if (Refusal) return { error: new Refusal(voided.refusal!.message) };
          return {
            error: new ReferenceVoidedError(
              `The reference ${reference} was voided, so nothing was posted under it.`,
            ),
          };
        }
        const balance = await tx.balance(account);
        const no =
          rejection ??
          (balance === undefined
            ? new InvalidAccountError(`The account number ${account} is invalid.`)
            : (await tx.isClosed(account))
              ? new AccountClosedError(`The account ${account} is closed.`)
              : balance + amount < 0
                ? new InsufficientFundsError(
                    `The account ${account} has insufficient funds to complete this transaction.`,
                  )
                : undefined);
        if (no) {
          await tx.markVoided({ reference, owner, refusal: { type: no.name, message: no.message } });
          return { error: no };
        }
        const transactionId = `${prefix}-${newId()}`;
        await tx.post({ reference, transactionId, account, amount, owner });
        return { id: transactionId };
      },
    );
    if ('error' in outcome) throw outcome.error;
    return outcome.id;
  }
}

function ownedBy(reference: string, owner: string, caller: string): TransferAlreadyOwnedError {
  return new TransferAlreadyOwnedError(
    `The reference ${reference} belongs to transfer ${owner}; nothing was moved for ${caller}.`,
  );
}

function checkAmount(amount: number): number {
  if (!isValidAmount(amount)) {
    throw new InvalidPaymentDetailsError(
      `amount must be a whole number greater than 0 (got ${String(amount)})`,
    );
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
