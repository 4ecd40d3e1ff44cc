// The workflow's own state, and the one place its stage changes: the query's status, the
// TransferStatus search attribute and the Web UI's current details follow it.
import {
  makeContinueAsNewFunc,
  setCurrentDetails,
  upsertSearchAttributes,
  workflowInfo,
  type Workflow,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import {
  describeTransfer,
  type PaymentDetails,
  type ReviewPolicy,
  TRANSFER_STATUS,
  type TransferStage,
  type TransferView,
} from '../contract';
import type { FailureRecord } from './failures';
import type { Decision } from './review';

export type Activities = ReturnType<typeof createActivities>;

/** When a refund that cannot complete asks for an operator, and how often it reminds, unless the caller says. */
export const DEFAULT_REVIEW_POLICY: Required<ReviewPolicy> = {
  reviewAfter: '1 hour',
  remindEvery: '4 hours',
};

/** The workflow's own state: the status it reports and an operator's latest decision. */
export interface Transfer {
  details: PaymentDetails;
  status: TransferView;
  /** The policy as the caller sent it, checked with the details; `policy` fills in the defaults. */
  policyGiven: unknown;
  policy: Required<ReviewPolicy>;
  decision?: Decision;
  /** Set when it parks: true from the `four-eyes` patch on, so a manual resolution needs two operators. */
  fourEyes?: boolean;
  /** Set when it parks: the `notices-in-background` patch. */
  noticesInBackground?: boolean;
  /** How a run waiting for review hands over to the next one (`continuesInReview`). */
  continueAsNew?: (review: Omit<ResumedReview, 'runs'>) => Promise<never>;
  /** The TransferStatus search attribute's value now. */
  shown?: string;
}

/**
 * A run's hand-over, waiting for review, to a new run of the same workflow with `args` and
 * its state. On the same deployment version: a pinned transfer stays on its build
 * (docs/versioning.md). The memo (who started it, which the API checks) and TransferStatus
 * go along explicitly.
 */
export function continuesInReview<W extends Workflow>(
  runsBefore: number | undefined,
  args: (resume: ResumedReview) => Parameters<W>,
): NonNullable<Transfer['continueAsNew']> {
  return (review) =>
    makeContinueAsNewFunc<W>({
      memo: workflowInfo().memo,
      typedSearchAttributes: workflowInfo().typedSearchAttributes,
    })(...args({ ...review, runs: (runsBefore ?? 0) + 1 }));
}

/** The stages ExecutionStatus cannot tell: a running transfer that owes money. */
const OWING: readonly string[] = ['refunding', 'needs-review'];

/** True in a stage where money is owed to the source: a cancel must not stop the refund. */
export const isOwing = (stage: string | undefined): boolean => OWING.includes(stage ?? '');

/**
 * Moves to a stage; the current details say what the transfer waits for. The
 * TransferStatus search attribute follows it from `refunding` on, to the final stage, so
 * the Web UI's list and `review list` find those; before that it stays `started`. Each
 * write is a history event and a visibility write, so a plain transfer makes none.
 */
export function setStage(transfer: Transfer, stage: TransferStage): void {
  const { details, status } = transfer;
  status.stage = stage;
  if (isOwing(stage) || isOwing(transfer.shown)) showStage(transfer, stage);
  // Before validation passed, the details may be anything.
  if (!status.references) return setCurrentDetails(`**${stage}**: the payment details were refused.`);
  const what = describeTransfer(details);
  const next: Partial<Record<TransferStage, string>> = {
    withdrawing: 'Waiting for the bank to withdraw the money.',
    depositing: 'Waiting for the bank to deposit the money.',
    refunding: `Putting ${details.amount} back: settling the failed step, then refunding. This retries until it is done.`,
    'needs-review':
      `**Needs review.** ${details.amount} is owed to ${details.sourceAccount}. ${status.review?.reason ?? ''}\n\n` +
      'An operator can: `retryRefund`, `refundTo` another account, or propose `resolveManually` with a ' +
      'note, which a second operator approves (see `npm run review -- --help`).',
  };
  setCurrentDetails(`**${stage}**: ${what}\n\n${next[stage] ?? ''}`);
}

export function showStage(transfer: Transfer, value: string): void {
  if (transfer.shown === value) return;
  transfer.shown = value;
  upsertSearchAttributes([{ key: TRANSFER_STATUS, value }]);
}

/**
 * What a run waiting for review hands to the next (moneyTransfer's third argument): the
 * whole state, so that the new run waits in review at once and never withdraws again.
 */
export interface ResumedReview {
  /** The status as it was, its review (reminders, proposal, rejection) and notices included. */
  status: TransferView;
  policy: Required<ReviewPolicy>;
  /** The patches decided when the transfer parked. */
  fourEyes: boolean;
  noticesInBackground: boolean;
  /** The step whose failure led here, and that failure, to end with if the money goes back. */
  failedStep: 'withdraw' | 'deposit';
  stepFailure?: FailureRecord;
  /** The refund round that failed, on which account. */
  round: number;
  account: string;
  /** Runs before this one. */
  runs: number;
}
