// The transfer's contract: what the workflow, its activities and its clients (the
// starter, the review CLI, tests) agree on. The payment and its rules, the bank's failure
// types, the search attribute and task queue, and the workflow's query, updates and
// status. Clients import this file, never the workflow's flow, as Temporal's early-return
// sample keeps its shared.ts. Workflow code imports it too, so it holds no Node built-ins
// and no I/O.
import {
  defineSearchAttributeKey,
  SearchAttributeType,
  type Duration,
  type SearchAttributePair,
} from '@temporalio/common';
// Internal to the SDK (lib/): package.json pins the SDK to one exact version, so it cannot
// move under this import without a deliberate upgrade, which the tests then check.
import { msToNumber } from '@temporalio/common/lib/time';
import { defineQuery, defineUpdate } from '@temporalio/workflow';

export const DEFAULT_TASK_QUEUE = 'TRANSFER_MONEY_TASK_QUEUE';

/** The longest one attempt of `withdraw` or `deposit` may take (their StartToClose timeout). */
export const STEP_ATTEMPT_TIMEOUT_MS = 5_000;
/**
 * The longest one attempt of `refund` may take: more than the steps it undoes, since it may
 * make two bank calls (settle, then refund). It is the longest attempt of any activity.
 */
export const REFUND_ATTEMPT_TIMEOUT_MS = 20_000;

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
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
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
 * The bank could not reach its ledger (its database is down, restarting or cut off), so
 * the call may or may not have posted. Retryable: the same reference settles it.
 */
export class BankUnavailableError extends BankError {}

/**
 * The bank's ledger refused a statement for a reason other than reachability: a bug or a
 * broken database. Retryable, like any unknown outcome; the driver's error is its cause.
 */
export class BankLedgerError extends BankError {}

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

/** Who settles a stranded transfer, and why: the settling run records both. */
export interface SettleRequest {
  operator: string;
  note: string;
  /** How the settling run waits if it parks for review: `review settle` passes the transfer's own. */
  policy?: ReviewPolicy;
}

/** The Keyword search attribute that carries a transfer's stage, for the Web UI and `review list`. */
export const TRANSFER_STATUS = defineSearchAttributeKey('TransferStatus', SearchAttributeType.KEYWORD);

/** The workflow types that move a transfer's money: its own run, and an operator's settling run. */
export const TRANSFER_WORKFLOW_TYPES: readonly string[] = ['moneyTransfer', 'settleStrandedTransfer'];

/** The visibility query for running transfers parked for an operator (`review list`, reconcile). */
export const NEEDS_REVIEW_QUERY =
  `WorkflowType IN (${TRANSFER_WORKFLOW_TYPES.map((t) => `'${t}'`).join(', ')}) ` +
  `AND ExecutionStatus = 'Running' AND ${TRANSFER_STATUS.name} = 'needs-review'`;

/**
 * TransferStatus from the start until a refund begins: ExecutionStatus tells running,
 * completed and failed apart, so the workflow writes it only from `refunding` on.
 */
export const TRANSFER_STATUS_AT_START = 'started';

/** Start options for a transfer: TransferStatus set in the start request, not by an upsert. */
export function transferStartOptions(): { typedSearchAttributes: SearchAttributePair[] } {
  return { typedSearchAttributes: [{ key: TRANSFER_STATUS, value: TRANSFER_STATUS_AT_START }] };
}

export const PAYMENT_FIELDS = ['sourceAccount', 'targetAccount', 'amount', 'referenceId'] as const;
const FIELDS = PAYMENT_FIELDS;

/**
 * How a payment someone sent differs from this one, a phrase per field, e.g.
 * `amount is 250, not 300`; empty when they are the same payment.
 */
export function paymentDifferences(
  mine: PaymentDetails,
  sent: Partial<PaymentDetails> | undefined,
): string[] {
  return FIELDS.filter((field) => sent?.[field] !== mine[field]).map(
    (field) => `${field} is ${JSON.stringify(mine[field])}, not ${JSON.stringify(sent?.[field])}`,
  );
}

/** The amount rule, for the workflow and the bank alike: a whole number of units above 0. */
export function isValidAmount(amount: unknown): amount is number {
  return typeof amount === 'number' && Number.isSafeInteger(amount) && amount > 0;
}

/** An error and its causes in one line: "Activity task failed: This deposit has failed." */
export function chainMessages(err: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) messages.push(e.message);
  return messages.join(': ') || String(err);
}

/** A transfer in one line, as the logs, the Web UI and the starter show it. */
export function describeTransfer(d: PaymentDetails): string {
  return `${d.amount} from ${d.sourceAccount} to ${d.targetAccount} (ref ${d.referenceId})`;
}

/**
 * The longest account number (an IBAN has at most 34 characters) and reference a
 * transfer takes. Every step copies them into history, logs and the Web UI, so a
 * megabyte string must stop here, not travel to the bank.
 */
export const MAX_ACCOUNT_LENGTH = 34;
export const MAX_REFERENCE_LENGTH = 64;

/** Control and format characters (NUL, bidi overrides, zero-width joiners): invisible or misleading in logs and UIs. */
const UNPRINTABLE_CLASSES = '\\p{Cc}\\p{Cf}';
const UNPRINTABLE = new RegExp(`[${UNPRINTABLE_CLASSES}]`, 'u');
/** The same rule as a JSON Schema pattern (Unicode mode), for the HTTP API's schemas. */
export const PRINTABLE_PATTERN = `^[^${UNPRINTABLE_CLASSES}]*$`;

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
    const max = field === 'referenceId' ? MAX_REFERENCE_LENGTH : MAX_ACCOUNT_LENGTH;
    if (typeof value !== 'string' || value.trim() === '') {
      problems.push(`${field} must be a non-empty string (got ${describe(value)})`);
    } else if (value.length > max) {
      problems.push(`${field} must be at most ${max} characters (got ${value.length})`);
    } else if (UNPRINTABLE.test(value)) {
      problems.push(`${field} must not contain control or format characters (got ${describe(value)})`);
    }
  }
  const amount = details.amount;
  if (!isValidAmount(amount)) {
    problems.push(`amount must be a whole number greater than 0 (got ${describe(amount)})`);
  }
  if (typeof details.sourceAccount === 'string' && details.sourceAccount === details.targetAccount) {
    problems.push(`sourceAccount and targetAccount are the same (${details.sourceAccount})`);
  }
  if (problems.length > 0) throw new InvalidPaymentDetailsError(problems.join('; '));
}

/** When a transfer whose refund cannot complete asks for an operator, and how often it reminds. */
export interface ReviewPolicy {
  /** How long the refund may keep failing with unknown outcomes first. Default 1 hour. */
  reviewAfter?: Duration;
  /** How often a transfer waiting for review reminds the operator. Default 4 hours. */
  remindEvery?: Duration;
}

/**
 * The shortest times a review policy may set. Each reminder adds about 11 events to the
 * transfer's history and pages an operator, so a reminder more often than every 15 minutes
 * floods both; a review deadline under a minute sends a bank's passing slowness (one refund
 * attempt has 20 s) to a person instead of to the refund's own retries. See docs/design.md.
 */
export const REVIEW_POLICY_MINIMUMS: Readonly<Record<keyof ReviewPolicy, number>> = {
  reviewAfter: 60_000,
  remindEvery: 15 * 60_000,
};

/** A review policy that is well formed but shorter than its minimum. */
export class ReviewPolicyTooShortError extends InvalidPaymentDetailsError {}

/**
 * Checks the workflow's second argument, with the details, before any money moves.
 * `minimums` are the production ones; only a test bundle's workflow passes others
 * (src/workflows/limits.ts).
 */
export function validateReviewPolicy(
  input: unknown,
  minimums: Readonly<Record<keyof ReviewPolicy, number>> = REVIEW_POLICY_MINIMUMS,
): asserts input is ReviewPolicy | undefined {
  if (input === undefined || input === null) return;
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new InvalidPaymentDetailsError(`the review policy must be an object (got ${describe(input)})`);
  }
  const problems: string[] = [];
  const tooShort: string[] = [];
  for (const [key, value] of Object.entries(input)) {
    if (key !== 'reviewAfter' && key !== 'remindEvery') {
      problems.push(`unknown review policy field: ${key}`);
      continue;
    }
    let ms: number | undefined;
    try {
      ms = typeof value === 'string' || typeof value === 'number' ? msToNumber(value as Duration) : undefined;
    } catch {
      ms = undefined;
    }
    if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
      problems.push(
        `${key} must be a duration such as '1 hour' or a number of milliseconds (got ${describe(value)})`,
      );
    } else if (ms < minimums[key]) {
      tooShort.push(`${key} must be at least ${formatMs(minimums[key])} (got ${describe(value)})`);
    }
  }
  if (problems.length > 0) throw new InvalidPaymentDetailsError([...problems, ...tooShort].join('; '));
  if (tooShort.length > 0) {
    throw new ReviewPolicyTooShortError(
      `${tooShort.join('; ')}: each reminder pages the operators and adds about 11 events to the ` +
        "transfer's history, and a shorter review deadline sends a slow bank to a person",
    );
  }
}

/** 900000 as "15 minutes", 60000 as "1 minute", 1500 as "1500 ms". */
function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} minute${ms === 60_000 ? '' : 's'}`;
  if (ms % 1000 === 0) return `${ms / 1000} second${ms === 1000 ? '' : 's'}`;
  return `${ms} ms`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  // Quoted and escaped, so control characters show; cut short, so a huge value does not fill the log.
  if (typeof value === 'string')
    return value.length > 40 ? `${JSON.stringify(value.slice(0, 40))}...` : JSON.stringify(value);
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  return `a ${typeof value}`;
}

// --- The workflow's messages: its query, its updates and the status they return ---
export type TransferStage =
  | 'validating'
  | 'withdrawing'
  | 'depositing'
  | 'refunding'
  | 'needs-review'
  | 'completed'
  | 'failed'
  | 'cancelled';

/**
 * The whole of a transfer's progress, as `getStatus` and the updates return it. The
 * TransferStatus search attribute holds only its stage.
 */
export interface TransferView {
  stage: TransferStage;
  /** The bank reference of each step. */
  references?: { withdrawal: string; deposit: string; refund: string };
  withdrawId?: string;
  depositId?: string;
  refundId?: string;
  /** Where the refund went, when an operator sent it somewhere other than the source. */
  refundedTo?: string;
  /** Money that left (or may have left) the source account and is not back yet. */
  owed?: number;
  /** How a step with an unknown outcome was settled, once it was. */
  settlement?: RefundResult['outcome'];
  /** The failure that stopped the transfer, or that keeps the refund from completing. */
  lastFailure?: string;
  /** Once the transfer failed: the type of that failure, e.g. InsufficientFundsError. */
  failureType?: string;
  cancelRequested?: boolean;
  /** While the transfer waits for an operator: why, and what they can do. */
  review?: {
    reason: string;
    /** The account the refund failed on. */
    failedAccount: string;
    /** Where `refundTo` may send the money instead. */
    accounts: string[];
    reminders: number;
    /** When it parked (workflow time, ISO 8601). */
    since?: string;
    /** Four eyes: a manual resolution one operator proposed, waiting for another to approve it. */
    proposal?: Proposal;
    /** The last proposal an approver rejected, and who rejected it. */
    rejected?: Proposal & { rejectedBy: string; rejectedAt: string };
  };
  /** Notices to operators that this transfer needs review: sent, and attempts that failed. */
  notices?: { sent: number; failed: number };
  /** An operator's decision, once made. */
  resolution?:
    | { action: 'retryRefund'; operator?: string }
    | { action: 'refundTo'; account: string; operator?: string }
    | ManualResolution;
}

/** A manual resolution as proposed: what was done outside the system, by whom, when. */
export interface Proposal {
  note: string;
  operator: string;
  /** Workflow time, ISO 8601. */
  at: string;
}

export interface ManualResolution {
  action: 'resolveManually';
  note: string;
  /** Who proposed it (or, before four eyes, who resolved it alone). */
  operator: string;
  /** Four eyes: when it was proposed, and the second operator who approved it, when. */
  proposedAt?: string;
  approvedBy?: string;
  approvedAt?: string;
}

/** Where the transfer is, and the bank's transaction ids so far. */
export const getStatus = defineQuery<TransferView>('getStatus');

/**
 * Operator actions for a transfer in `needs-review`. Each returns the new status. The
 * operator is who acts: the desk sends the signed-in person's token subject.
 */
export const retryRefund = defineUpdate<TransferView, [{ operator?: string }]>('retryRefund');
export const refundTo = defineUpdate<TransferView, [{ account: string; operator?: string }]>('refundTo');
/**
 * Writes the owed money off as settled outside the system. Four eyes: on transfers that
 * parked since the change (patch `four-eyes`), this only proposes it; another operator
 * must `approveResolution`. Earlier transfers resolve at once, as they always did.
 */
export const resolveManually = defineUpdate<TransferView, [{ note: string; operator: string }]>(
  'resolveManually',
);
/** Four eyes: a second operator, never the proposer, approves the proposal; the transfer ends. */
export const approveResolution = defineUpdate<TransferView, [{ operator: string }]>('approveResolution');
/** Four eyes: the proposal is turned down, with a reason; the transfer waits in review again. */
export const rejectResolution = defineUpdate<TransferView, [{ operator: string; note: string }]>(
  'rejectResolution',
);

/**
 * Returns the status once the withdrawal's outcome is known: posted, or the transfer
 * ended. Its argument is the payment as the caller sent it: the validator refuses one
 * that differs from the transfer's own, so a reused idempotency key cannot attach a
 * different payment. The HTTP API sends it with update-with-start.
 */
export const withdrawalOutcome = defineUpdate<TransferView, [PaymentDetails]>('withdrawalOutcome');

/** The failure type with which `withdrawalOutcome` refuses a payment that is not the transfer's. */
export const PAYMENT_MISMATCH = 'PaymentMismatch';

/** What an operator decided for a transfer in review. */
export type OperatorDecision = NonNullable<TransferView['resolution']>;
