import { customAlphabet } from 'nanoid';
import { MemoryStore, type BankStore, type LedgerTransaction } from './store';
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
} from '../contract';

/** The template's bank host. The mock makes no calls to it. */
export const BANK_HOSTNAME = 'bank-api.example.com';

const newId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', 10);

export interface BankOptions {
  /** Where balances and the ledger live. Default: memory, at the opening balances. */
  store?: BankStore;
}

/** What a settle found: the transaction posted under the reference, or a void. */
export type Settlement = { posted: true; transactionId: string; account: string } | { posted: false };

/** What a reference holds, as `referenceState` reads it without changing it. */
export type ReferenceState =
  { state: 'posted'; transactionId: string; account: string } | { state: 'voided' } | { state: 'unused' };

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
 * nothing. A call whose AbortSignal has fired is refused before it posts. Latency and
 * faults on purpose are not here: bank-faults.ts adds them around this bank.
 */
export class BankingService {
  readonly store: BankStore;

  constructor(
    readonly hostname: string,
    options: BankOptions = {},
  ) {
    this.store = options.store ?? new MemoryStore();
  }

  async withdraw(
    account: string,
    amount: number,
    referenceId: string,
    call: CallOptions = {},
  ): Promise<string> {
    return this.post('W', account, -checkAmount(amount), referenceId, call);
  }

  async deposit(
    account: string,
    amount: number,
    referenceId: string,
    call: CallOptions = {},
  ): Promise<string> {
    return this.post('D', account, checkAmount(amount), referenceId, call);
  }

  /** A deposit back into the account money came from. */
  async refund(
    account: string,
    amount: number,
    referenceId: string,
    call: CallOptions = {},
  ): Promise<string> {
    return this.post('D', account, checkAmount(amount), referenceId, call);
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
    call.signal?.throwIfAborted();
    return this.store.transaction(async (tx): Promise<Settlement> => {
      const found = await stateOf(tx, referenceId, owner);
      if (found.state === 'posted') {
        return { posted: true, transactionId: found.transactionId, account: found.account };
      }
      if (found.state === 'unused') await tx.markVoided({ reference: referenceId, owner });
      return { posted: false };
    });
  }

  /**
   * Reads what a reference holds and changes nothing: a real bank's "status by
   * idempotency key". Another owner's reference is refused, as for every call.
   */
  async referenceState(referenceId: string, call: CallOptions = {}): Promise<ReferenceState> {
    const owner = call.owner ?? NO_OWNER;
    call.signal?.throwIfAborted();
    return this.store.transaction((tx) => stateOf(tx, referenceId, owner));
  }

  balances(): Promise<Map<string, number>> {
    return this.store.balances();
  }

  /** The open accounts, where a refund could go instead. A real bank would list the customer's own. */
  async openAccounts(): Promise<string[]> {
    const closed = new Set(await this.store.closedAccounts());
    return [...(await this.store.balances()).keys()].filter((account) => !closed.has(account));
  }

  /**
   * A definite "no" to give this call before the bank's own checks; none here. A bank with
   * faults on purpose (bank-faults.ts) overrides it to refuse a call as a real bank would.
   */
  protected refusalFor(_reference: string, _call: CallOptions): BankError | undefined {
    return undefined;
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
    call: CallOptions,
  ): Promise<string> {
    const owner = call.owner ?? NO_OWNER;
    call.signal?.throwIfAborted(); // a caller that gave up before the bank took the call
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
          this.refusalFor(reference, call) ??
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

/** What a reference holds, for its owner; another caller is refused. */
async function stateOf(tx: LedgerTransaction, reference: string, owner: string): Promise<ReferenceState> {
  const entry = await tx.entryFor(reference);
  const voided = entry ? undefined : await tx.voidFor(reference);
  const holder = entry?.owner ?? voided?.owner;
  if (holder !== undefined && holder !== owner) throw ownedBy(reference, holder, owner);
  if (entry) return { state: 'posted', transactionId: entry.transactionId, account: entry.account };
  return voided ? { state: 'voided' } : { state: 'unused' };
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
