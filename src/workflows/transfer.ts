// The transfer's flow: check the input, withdraw, deposit; settle a step whose outcome is
// unknown (./settle.ts), and let an operator decide a refund that cannot complete (./review.ts).
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  ContinueAsNew,
  isCancellation,
  log,
  metricMeter,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  chainMessages,
  DEFINITE_FAILURES,
  getStatus,
  InvalidPaymentDetailsError,
  type PaymentDetails,
  referencesFor,
  type ReviewPolicy,
  ReviewPolicyTooShortError,
  STEP_ATTEMPT_TIMEOUT_MS,
  TRANSFER_STATUS,
  TRANSFER_STATUS_AT_START,
  validatePaymentDetails,
  validateReviewPolicy,
} from '../contract';
import { setEarlyReturnHandler } from './early-return';
import { endingType, isDefinite, rebuildFailure } from './failures';
import { LIMITS } from './limits';
import { decisionCarriedOut, setReviewHandlers } from './review';
import { settleFailedStep } from './settle';
import {
  continuesInReview,
  DEFAULT_REVIEW_POLICY,
  isOwing,
  type ResumedReview,
  setStage,
  showStage,
  type Activities,
  type Transfer,
} from './state';

/** Transfers started from this change on: a review policy shorter than the minimums is refused. */
export const REVIEW_POLICY_MINIMUMS = 'review-policy-minimums';

const { withdraw, deposit } = proxyActivities<Activities>({
  startToCloseTimeout: STEP_ATTEMPT_TIMEOUT_MS,
  // Activities heartbeat while the bank works; a missed heartbeat means the worker died.
  heartbeatTimeout: '2 seconds',
  retry: {
    maximumAttempts: 3,
    maximumInterval: '2 seconds',
    nonRetryableErrorTypes: [...DEFINITE_FAILURES],
  },
});

/**
 * `resume` is for the workflow itself: a run waiting for review continues as new with its
 * state there (src/workflows/review.ts). Callers pass the details and the policy only.
 */
export async function moneyTransfer(
  details: PaymentDetails,
  policy: ReviewPolicy = {},
  resume?: ResumedReview,
): Promise<string> {
  const transfer: Transfer = {
    details,
    status: resume?.status ?? { stage: 'validating' },
    policyGiven: policy,
    policy: resume?.policy ?? { ...DEFAULT_REVIEW_POLICY, ...policy },
    shown: workflowInfo().typedSearchAttributes.get(TRANSFER_STATUS),
    fourEyes: resume?.fourEyes,
    noticesInBackground: resume?.noticesInBackground,
    continueAsNew: continuesInReview<typeof moneyTransfer>(resume?.runs, (next) => [details, policy, next]),
  };
  // The project's clients set it at start (transferStartOptions); a start from elsewhere,
  // such as the CLI or the Web UI, has not.
  if (transfer.shown === undefined) showStage(transfer, TRANSFER_STATUS_AT_START);
  setHandler(getStatus, () => transfer.status);
  setReviewHandlers(transfer);
  setEarlyReturnHandler(transfer);
  CancellationScope.current().cancelRequested.catch(() => {
    transfer.status.cancelRequested = true;
    if (isOwing(transfer.status.stage)) {
      log.warn(
        `Cancellation requested while ${details.amount} is owed to ${details.sourceAccount}: ignored. ` +
          'The refund finishes first, or an operator resolves the review.',
        { referenceId: details.referenceId },
      );
    } else {
      log.info('Cancellation requested', { stage: transfer.status.stage, referenceId: details.referenceId });
    }
  });
  try {
    const result = resume ? await stillInReview(transfer, resume) : await moveMoney(transfer);
    setStage(transfer, 'completed');
    countTransfer('completed');
    return result;
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    setStage(transfer, isCancellation(err) ? 'cancelled' : 'failed');
    if (err instanceof Error) transfer.status.lastFailure = chainMessages(err);
    transfer.status.failureType = endingType(err);
    countTransfer(endOutcome(transfer));
    throw err;
  } finally {
    decisionCarriedOut(transfer);
    // Let an operator's update return the final status before the workflow closes.
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  }
}

/** Checks the input, then withdraws and deposits, settling a step that failed. */
async function moveMoney(transfer: Transfer): Promise<string> {
  const { details, status } = transfer;
  try {
    validatePaymentDetails(details);
    validatePolicy(transfer.policyGiven);
  } catch (err) {
    // Bad input will not get better on retry: fail the workflow now, before money moves.
    if (err instanceof InvalidPaymentDetailsError) {
      throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
    }
    throw err;
  }
  status.references = referencesFor(details.referenceId);
  const meta = { referenceId: details.referenceId };
  if (CancellationScope.current().consideredCancelled) {
    log.info('Cancelled before the withdrawal: no money moved', meta);
    throw new CancelledFailure('Cancelled before the withdrawal');
  }

  setStage(transfer, 'withdrawing');
  try {
    status.withdrawId = await withdraw.executeWithOptions(
      { summary: `Withdraw ${details.amount} from ${details.sourceAccount}` },
      [details],
    );
  } catch (err) {
    // The bank said no: nothing moved, so the failure ends the transfer.
    if (isDefinite(err)) throw err;
    // A timeout, a lost reply or a cancel: the withdrawal may have posted, or may still.
    log.warn(`Withdrawal outcome unknown, settling it: ${chainMessages(err)}`, meta);
    return settleThenEnd(transfer, 'withdraw', err);
  }

  setStage(transfer, 'depositing');
  try {
    status.depositId = await deposit.executeWithOptions(
      { summary: `Deposit ${details.amount} into ${details.targetAccount}` },
      [details],
    );
  } catch (err) {
    log.error(`Deposit failed: ${chainMessages(err)}`, meta);
    return settleThenEnd(transfer, 'deposit', err);
  }
  return completed(transfer);
}

/** A run continued as new while it waited for review: it waits on, and ends as the first would have. */
function stillInReview(transfer: Transfer, resume: ResumedReview): Promise<string> {
  return settleThenEnd(transfer, resume.failedStep, rebuildFailure(resume.stepFailure), resume);
}

/**
 * Settles a failed step, then ends with the step's failure: the money went back, or an
 * operator resolved it. Only a deposit that posted after all completes the transfer.
 */
async function settleThenEnd(
  transfer: Transfer,
  step: 'withdraw' | 'deposit',
  err: unknown,
  resume?: ResumedReview,
): Promise<string> {
  const settled = await settleFailedStep(transfer, step, err, 1, resume);
  if (step === 'withdraw' || settled.outcome !== 'deposit-posted') throw err;
  // The deposit's reply was lost, but the bank has it: the money arrived.
  transfer.status.depositId = settled.transactionId;
  log.info(`The deposit posted after all (${settled.transactionId}): the transfer is complete`, {
    referenceId: transfer.details.referenceId,
  });
  return completed(transfer);
}

function completed({ details, status }: Transfer): string {
  if (status.cancelRequested)
    log.info('Cancellation came after the money moved: the transfer completed', {
      referenceId: details.referenceId,
    });
  return `Transfer complete (transaction IDs: ${status.withdrawId}, ${status.depositId})`;
}

/**
 * The review policy's rule, with the minimums of this bundle. A transfer that started before
 * the minimums existed (no `review-policy-minimums` marker) keeps the policy it was given.
 */
function validatePolicy(policy: unknown): void {
  try {
    validateReviewPolicy(policy, LIMITS.reviewPolicyMinimums);
  } catch (err) {
    // patched() only here, where old and new code differ, so other histories get no marker.
    if (err instanceof ReviewPolicyTooShortError && !patched(REVIEW_POLICY_MINIMUMS)) return;
    throw err;
  }
}

// The workflow's counters (here, in settle.ts and in review.ts) go through the SDK's meter,
// which skips replays, so nothing is counted twice. Each is made when used: the meter
// exists only inside a running workflow.
function countTransfer(outcome: TransferOutcome): void {
  metricMeter
    .createCounter(
      'money_transfer_transfers',
      'transfers',
      'Transfers as they end, by outcome: completed; failed (nothing moved); compensated (refunded); ' +
        'resolved-manually (by an operator, outside the system); cancelled',
    )
    .add(1, { outcome });
}

type TransferOutcome = 'completed' | 'failed' | 'compensated' | 'resolved-manually' | 'cancelled';

function endOutcome({ status }: Transfer): TransferOutcome {
  if (status.stage === 'cancelled') return 'cancelled';
  if (status.resolution?.action === 'resolveManually') return 'resolved-manually';
  return status.refundId ? 'compensated' : 'failed';
}
