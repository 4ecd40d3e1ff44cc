// Human review: a refund that cannot complete parks the transfer in `needs-review`, and
// an operator's update (retryRefund, refundTo, or a manual resolution that a second
// operator approves) decides what comes next.
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  isCancellation,
  log,
  metricMeter,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import {
  approveResolution,
  chainMessages,
  type OperatorDecision,
  refundTo,
  rejectResolution,
  resolveManually,
  retryRefund,
  type TransferView,
} from '../contract';
import type { ReviewNotice } from '../activities';
import { isDefinite } from './failures';
import { LIMITS } from './limits';
import { setStage, type Activities, type ResumedReview, type Transfer } from './state';

/** Transfers that park from this change on: a manual resolution needs a second operator. */
export const FOUR_EYES = 'four-eyes';
/** The same: notices to operators are sent beside the wait for a decision, never before it. */
export const NOTICES_IN_BACKGROUND = 'notices-in-background';
/** Runs that wait for review long enough continue as new, so their history stays bounded. */
export const REVIEW_CONTINUES_AS_NEW = 'review-continues-as-new';

const activityOptions = { startToCloseTimeout: '10 seconds' } as const;
const { refundAccounts, notifyOperator } = proxyActivities<Activities>({
  ...activityOptions,
  retry: { maximumInterval: '1 minute' },
});
// One attempt each: the workflow retries a notice itself, so that it can count the failures.
const { notifyOperator: notifyOnce } = proxyActivities<Activities>({
  ...activityOptions,
  retry: { maximumAttempts: 1 },
});
/** The longest pause between two tries of a notice that keeps failing. */
const NOTICE_BACKOFF_CAP_MS = 5 * 60_000;

/**
 * An operator's decision and how far it got: `pending` from its update until the workflow
 * takes it up, `taken` while the workflow carries it out, `done` once it has (the refund
 * made, or failed again, or the transfer ended). The update returns at `done`.
 */
export interface Decision {
  what: OperatorDecision;
  state: 'pending' | 'taken' | 'done';
}

/** What settleFailedStep knows that a continued run needs: the step, its failure, the round. */
export type Handover = Pick<ResumedReview, 'failedStep' | 'stepFailure' | 'round' | 'account'>;

/**
 * Parks the transfer in `needs-review` (or, `resumed`, stays there in a run continued as
 * new), tells an operator, reminds them, and returns their decision.
 */
export async function waitForOperator(
  transfer: Transfer,
  failedAccount: string,
  failure: unknown,
  handover: Handover,
  resumed?: ResumedReview,
): Promise<OperatorDecision> {
  const { details, status } = transfer;
  if (resumed) {
    setStage(transfer, 'needs-review'); // the current details are the run's own
  } else {
    const reason = isDefinite(failure)
      ? `The refund to ${failedAccount} was refused: ${chainMessages(failure)}`
      : `The refund kept failing for ${String(transfer.policy.reviewAfter)}: ${chainMessages(failure)}`;
    const accounts = (await refundAccounts(details)).filter((account) => account !== failedAccount);
    // Decided here, before the stage shows review, so that the validators see it.
    transfer.fourEyes = patched(FOUR_EYES);
    transfer.noticesInBackground = patched(NOTICES_IN_BACKGROUND);
    status.review = { reason, failedAccount, accounts, reminders: 0, since: new Date().toISOString() };
    setStage(transfer, 'needs-review');
    decisionCarriedOut(transfer); // an operator's retry that failed again is carried out too
    countReview();
  }
  const review = status.review!;
  const pending = () => transfer.decision?.state === 'pending';
  let notices: CancellationScope | undefined;
  const notify = async () => {
    const notice = { details, reason: review.reason, reminder: review.reminders };
    if (transfer.noticesInBackground) {
      notices?.cancel(); // the reminder replaces a notice still being retried
      notices = sendNotice(transfer, notice);
    } else {
      // Before the change: each notice had to go through before a decision was taken up.
      await notifyOperator(notice);
    }
  };
  await notify();
  while (!(await condition(pending, transfer.policy.remindEvery))) {
    if (await continueAsNewIfLong(transfer, handover, pending, () => notices?.cancel())) break;
    review.reminders++;
    await notify();
  }
  notices?.cancel();
  transfer.decision!.state = 'taken';
  const decision = transfer.decision!.what;
  status.resolution = decision;
  status.review = undefined;
  log.info(`Operator decision: ${JSON.stringify(decision)}`, { referenceId: details.referenceId });
  return decision;
}

/**
 * At a reminder, once the run's history is long: continues as new, carrying the whole
 * review, as soon as no update handler runs. Returns true if a decision came first.
 * Updates that reach the closing run before it saw them are retried by the client on the
 * new run (the server aborts them as "workflow is closing"); one it has accepted must
 * finish here, hence the wait.
 */
async function continueAsNewIfLong(
  transfer: Transfer,
  handover: Handover,
  pending: () => boolean,
  stopNotices: () => void,
): Promise<boolean> {
  const info = workflowInfo();
  const long = info.continueAsNewSuggested || info.historyLength >= LIMITS.continueAsNewAtEvents;
  if (!transfer.continueAsNew || !long) return false;
  await condition(() => pending() || allHandlersFinished());
  if (pending()) return true;
  // Decided here, when it first matters: histories that never got this long replay unchanged.
  if (!patched(REVIEW_CONTINUES_AS_NEW)) return false;
  stopNotices();
  const { status } = transfer;
  status.review!.reminders++; // this reminder is the next run's first notice
  log.info(`Waiting for review continues as new after ${info.historyLength} events`, {
    referenceId: transfer.details.referenceId,
  });
  return transfer.continueAsNew({
    status,
    policy: transfer.policy,
    fourEyes: transfer.fourEyes ?? false,
    noticesInBackground: transfer.noticesInBackground ?? false,
    ...handover,
  });
}

/**
 * Sends a notice beside the wait, trying again with backoff until it goes through or the
 * returned scope is cancelled; each failed try is counted in the status and a metric.
 */
function sendNotice(transfer: Transfer, notice: ReviewNotice): CancellationScope {
  const notices = (transfer.status.notices ??= { sent: 0, failed: 0 });
  const scope = new CancellationScope();
  const trying = scope.run(async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        await notifyOnce(notice);
        notices.sent++;
        return;
      } catch (err) {
        if (isCancellation(err)) return;
        notices.failed++;
        countFailedNotice();
        log.warn(`Notice to operators failed (try ${attempt}), trying again: ${chainMessages(err)}`, {
          referenceId: notice.details.referenceId,
        });
      }
      await sleep(Math.min(1000 * 2 ** attempt, NOTICE_BACKOFF_CAP_MS));
    }
  });
  trying.catch(() => undefined); // cancelled while it waited to try again
  return scope;
}

/** The operator's updates, each with a validator: only a transfer in review takes one. */
export function setReviewHandlers(transfer: Transfer): void {
  const { status } = transfer;
  /** An update's validator: only a transfer waiting for review, with no decision under way. */
  const inReview = () => {
    if (status.stage !== 'needs-review' || (transfer.decision && transfer.decision.state !== 'done')) {
      throw new Error(`This transfer is not waiting for review (stage: ${status.stage}).`);
    }
  };
  /**
   * Records the decision, then returns the status once it was carried out: the refund
   * done, or failed again. A cancel of the workflow does not cut the wait short.
   */
  const decide = (what: OperatorDecision): Promise<TransferView> =>
    CancellationScope.nonCancellable(async () => {
      const decision: Decision = { what, state: 'pending' };
      transfer.decision = decision;
      await condition(() => decision.state === 'done');
      return status;
    });
  const who = (operator: unknown) =>
    typeof operator === 'string' && operator.trim() ? operator.trim() : undefined;
  setHandler(
    retryRefund,
    // Histories from before the operator was named send no argument at all.
    (input: { operator?: string } | undefined) =>
      decide({ action: 'retryRefund', ...named(who(input?.operator)) }),
    { validator: (_input: { operator?: string } | undefined) => inReview() },
  );
  setHandler(
    refundTo,
    ({ account, operator }) =>
      decide({ action: 'refundTo', account: account.trim(), ...named(who(operator)) }),
    {
      // Clients send JSON: check what arrived, not only what the TypeScript signature says.
      validator: (input?: { account?: unknown }) => {
        inReview();
        const account = typeof input?.account === 'string' ? input.account.trim() : '';
        if (!account) throw new Error('refundTo needs an account.');
        if (account === status.review?.failedAccount) {
          throw new Error(`The refund just failed on ${account}: choose another account.`);
        }
        if (!status.review?.accounts.includes(account)) {
          throw new Error(
            `Unknown account ${account}. The refund can go to: ${status.review?.accounts.join(', ') || 'no other open account'}.`,
          );
        }
      },
    },
  );
  setHandler(
    resolveManually,
    ({ note, operator }) => {
      const proposal = { note: note.trim(), operator: operator.trim() };
      if (!transfer.fourEyes) return decide({ action: 'resolveManually', ...proposal });
      status.review!.proposal = { ...proposal, at: new Date().toISOString() };
      log.info(`${proposal.operator} proposes a manual resolution: ${proposal.note}`);
      return Promise.resolve(status);
    },
    {
      validator: (input?: { note?: unknown; operator?: unknown }) => {
        inReview();
        const { note, operator } = input ?? {};
        if (typeof note !== 'string' || !note.trim()) {
          throw new Error('resolveManually needs a note saying what was done.');
        }
        if (!who(operator)) throw new Error('resolveManually needs the name of the operator.');
        const waiting = status.review?.proposal;
        if (waiting) {
          throw new Error(
            `${waiting.operator}'s manual resolution waits for approval: approve or reject it first.`,
          );
        }
      },
    },
  );
  /** A second operator's validator: a proposal waits, and they name themselves. */
  const proposalWaits = (operator: unknown, verb: string) => {
    inReview();
    if (!transfer.fourEyes) {
      throw new Error(
        `This transfer parked before four eyes: resolveManually acts alone, with nothing to ${verb}.`,
      );
    }
    if (!status.review?.proposal) throw new Error(`No manual resolution waits to ${verb}.`);
    if (!who(operator)) throw new Error(`${verb} needs the name of the operator.`);
  };
  setHandler(
    approveResolution,
    ({ operator }) => {
      const proposal = status.review!.proposal!;
      return decide({
        action: 'resolveManually',
        note: proposal.note,
        operator: proposal.operator,
        proposedAt: proposal.at,
        approvedBy: operator.trim(),
        approvedAt: new Date().toISOString(),
      });
    },
    {
      validator: (input?: { operator?: unknown }) => {
        proposalWaits(input?.operator, 'approve');
        const proposer = status.review!.proposal!.operator;
        if (who(input?.operator) === proposer) {
          throw new Error(`${proposer} proposed this resolution: another operator must approve it.`);
        }
      },
    },
  );
  setHandler(
    rejectResolution,
    ({ operator, note }) => {
      const review = status.review!;
      review.rejected = {
        ...review.proposal!,
        rejectedBy: operator.trim(),
        rejectedAt: new Date().toISOString(),
        note: `${review.proposal!.note} (rejected: ${note.trim()})`,
      };
      review.proposal = undefined;
      log.info(`${operator.trim()} rejects the manual resolution: ${note.trim()}`);
      return Promise.resolve(status);
    },
    {
      validator: (input?: { operator?: unknown; note?: unknown }) => {
        proposalWaits(input?.operator, 'reject');
        if (typeof input?.note !== 'string' || !input.note.trim()) {
          throw new Error('rejectResolution needs a note saying why.');
        }
      },
    },
  );
}

/** `{ operator }` when one was named: old clients name none. */
function named(operator: string | undefined): { operator?: string } {
  return operator ? { operator } : {};
}

/** The one place a decision is marked carried out: when the transfer parks again, or ends. */
export function decisionCarriedOut(transfer: Transfer): void {
  if (transfer.decision?.state === 'taken') transfer.decision.state = 'done';
}

function countFailedNotice(): void {
  metricMeter
    .createCounter(
      'money_transfer_notices_failed',
      'notices',
      'Tries of a notice to operators that failed; each is tried again beside the wait for a decision',
    )
    .add(1);
}

function countReview(): void {
  metricMeter
    .createCounter(
      'money_transfer_reviews',
      'reviews',
      'Times a transfer parked in needs-review for an operator: once per refund that could not complete',
    )
    .add(1);
}
