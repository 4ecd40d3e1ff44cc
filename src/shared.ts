// Names, types and rules shared by the workflow, the activities, the worker and the
// starter. Workflow code imports this file, so it must stay free of Node built-ins and I/O.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const DEFAULT_TASK_QUEUE = 'TRANSFER_MONEY_TASK_QUEUE';

export interface PaymentDetails {
  sourceAccount: string;
  targetAccount: string;
  /** A whole number of currency units. */
  amount: number;
  referenceId: string;
}

/**
 * Base class for the bank's business errors. Temporal uses an error's `name` as the
 * `ApplicationFailure.type`, so each subclass's class name is its failure type.
 */
export class BankError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class InvalidAccountError extends BankError {}

export class InsufficientFundsError extends BankError {}

export class InvalidPaymentDetailsError extends BankError {}

/** The account exists but is closed: it takes no money in or out. */
export class AccountClosedError extends BankError {}

/** A reference already used for a different account or amount. Nothing moved. */
export class IdempotencyKeyReusedError extends BankError {}

/**
 * The reference was voided while the workflow settled an unknown outcome, so this call
 * can never post. A late attempt that arrives after the void gets this.
 */
export class ReferenceVoidedError extends BankError {}

/**
 * The reference belongs to another transfer: the execution that first used it. A
 * duplicate submission under another workflow id gets this, and nothing moves.
 */
export class TransferAlreadyOwnedError extends BankError {}

/**
 * Definite failures: the bank said no and nothing moved, so retrying or settling is
 * pointless. Every other failure (a timeout, a plain error, a crashed worker) is an
 * unknown outcome: the call may have posted, or may still post.
 */
export const DEFINITE_FAILURES: readonly string[] = [
  InvalidAccountError.name,
  InsufficientFundsError.name,
  InvalidPaymentDetailsError.name,
  AccountClosedError.name,
  IdempotencyKeyReusedError.name,
  ReferenceVoidedError.name,
  TransferAlreadyOwnedError.name,
];

/** The bank reference of each step of a transfer: one payment, three idempotency keys. */
export function referencesFor(referenceId: string): { withdrawal: string; deposit: string; refund: string } {
  return {
    withdrawal: `${referenceId}-withdrawal`,
    deposit: `${referenceId}-deposit`,
    refund: refundReference(referenceId, 1),
  };
}

/**
 * Each round of refunding gets its own reference (-refund, -refund-2, ...): a definite
 * "no" voids a reference for good, so an operator's retry needs a fresh one.
 */
export function refundReference(referenceId: string, round: number): string {
  return round === 1 ? `${referenceId}-refund` : `${referenceId}-refund-${round}`;
}

/** What the compensating `refund` activity found and did. */
export type RefundResult =
  | { outcome: 'refunded'; transactionId: string; account: string }
  | { outcome: 'deposit-posted'; transactionId: string }
  | { outcome: 'nothing-to-refund' };

/** The Keyword search attribute that carries a transfer's stage, for the Web UI and `review list`. */
export const TRANSFER_STATUS = defineSearchAttributeKey('TransferStatus', SearchAttributeType.KEYWORD);

const FIELDS = ['sourceAccount', 'targetAccount', 'amount', 'referenceId'] as const;

/**
 * Checks a transfer request before any money moves. Unknown fields are rejected, not
 * ignored: in a payment, a misspelt field is a mistake to surface, not to drop.
 */
export function validatePaymentDetails(input: unknown): asserts input is PaymentDetails {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidPaymentDetailsError(`payment details must be an object (got ${describe(input)})`);
  }
  const details = input as Record<string, unknown>;
  const problems: string[] = [];
  const unknown = Object.keys(details).filter((key) => !(FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0) problems.push(`unknown field(s): ${unknown.join(', ')}`);
  for (const field of ['sourceAccount', 'targetAccount', 'referenceId'] as const) {
    const value = details[field];
    if (typeof value !== 'string' || value.trim() === '') {
      problems.push(`${field} must be a non-empty string (got ${describe(value)})`);
    }
  }
  const amount = details.amount;
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) {
    problems.push(`amount must be a whole number greater than 0 (got ${describe(amount)})`);
  }
  if (typeof details.sourceAccount === 'string' && details.sourceAccount === details.targetAccount) {
    problems.push(`sourceAccount and targetAccount are the same (${details.sourceAccount})`);
  }
  if (problems.length > 0) throw new InvalidPaymentDetailsError(problems.join('; '));
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return `a ${typeof value}`;
}
