// Settling a transfer whose workflow ended from outside (terminated, timed out) with its
// money unaccounted for. An operator starts this run under the transfer's own workflow id
// (`npm run review -- settle`), so the bank takes its calls as the transfer's: it settles
// the steps the ended run left open and refunds what is owed, with the review of
// ./review.ts if the refund cannot complete.
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  ContinueAsNew,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  DEFINITE_FAILURES,
  getStatus,
  type PaymentDetails,
  referencesFor,
  type RefundResult,
  type SettleRequest,
  STEP_ATTEMPT_TIMEOUT_MS,
  TRANSFER_STATUS,
  ReviewPolicyTooShortError,
  TransferAlreadyOwnedError,
  validateReviewPolicy,
  type ReviewPolicy,
} from '../contract';
import { failureType } from './failures';
import { decisionCarriedOut, setReviewHandlers } from './review';
import { settleFailedStep } from './settle';
import { LIMITS } from './limits';
import {
  continuesInReview,
  DEFAULT_REVIEW_POLICY,
  setStage,
  type Activities,
  type ResumedReview,
  type Transfer,
} from './state';

const { findWhatIsOwed } = proxyActivities<Activities>({
  startToCloseTimeout: STEP_ATTEMPT_TIMEOUT_MS * 2, // two settles and a read or more
  heartbeatTimeout: '2 seconds',
  // No cap on attempts: the money must be found.
  retry: { maximumInterval: '10 seconds', nonRetryableErrorTypes: [...DEFINITE_FAILURES] },
});

/**
 * `resume` is for the workflow itself: a settling run waiting for review continues as new
 * with its state there, as a transfer does (src/workflows/review.ts).
 */
export async function settleStrandedTransfer(
  details: PaymentDetails,
  request: SettleRequest,
  resume?: ResumedReview,
): Promise<string> {
  const operator = request?.operator?.trim();
  const note = request?.note?.trim();
  if (!operator || !note) {
    throw invalidRequest('Settling a transfer needs the name of the operator and a note saying why.');
  }
  const transfer: Transfer = {
    details,
    status: resume?.status ?? { stage: 'refunding', references: referencesFor(details.referenceId) },
    policyGiven: request.policy ?? {},
    // Checked once, by the first run; a resumed run keeps what it decided.
    policy: resume?.policy ?? settlingPolicy(request.policy),
    shown: workflowInfo().typedSearchAttributes.get(TRANSFER_STATUS),
    fourEyes: resume?.fourEyes,
    noticesInBackground: resume?.noticesInBackground,
    continueAsNew: continuesInReview<typeof settleStrandedTransfer>(resume?.runs, (next) => [
      details,
      request,
      next,
    ]),
  };
  setHandler(getStatus, () => transfer.status);
  setReviewHandlers(transfer);
  const settled = (result: RefundResult): string => {
    const { status } = transfer;
    status.settlement = result.outcome;
    if (result.outcome === 'deposit-posted') status.depositId = result.transactionId;
    if (result.outcome === 'refunded') status.refundId = result.transactionId;
    setStage(transfer, 'completed');
    return `Settled by ${operator} (${note}): ${describeSettlement(details, result)}`;
  };
  const meta = { referenceId: details.referenceId, operator };
  if (!resume) log.info(`Settling a stranded transfer for ${operator}: ${note}`, meta);
  try {
    return await CancellationScope.nonCancellable(async () => {
      if (resume)
        return settled(await settleFailedStep(transfer, 'deposit', undefined, resume.round, resume));
      setStage(transfer, 'refunding');
      let found;
      try {
        found = await findWhatIsOwed(details);
      } catch (err) {
        // A duplicate submission of a payment another execution owns: this one moved nothing.
        if (failureType(err) !== TransferAlreadyOwnedError.name) throw err;
        setStage(transfer, 'completed');
        return `Settled by ${operator} (${note}): another transfer owns this payment; this one moved nothing.`;
      }
      return settled(
        found.outcome === 'refund-owed'
          ? await settleFailedStep(transfer, 'deposit', undefined, found.round)
          : found,
      );
    });
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err; // waiting on in a new run, not failed
    setStage(transfer, 'failed');
    throw err;
  } finally {
    decisionCarriedOut(transfer);
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  }
}

/**
 * The review policy of the transfer being settled. One too short for today's minimums comes
 * from a transfer started before them: the settling run waits on the default instead of
 * refusing to put the money back.
 */
function settlingPolicy(policy: unknown): Required<ReviewPolicy> {
  try {
    validateReviewPolicy(policy, LIMITS.reviewPolicyMinimums);
  } catch (err) {
    if (!(err instanceof ReviewPolicyTooShortError)) {
      throw invalidRequest(`The settle request's review policy: ${(err as Error).message}`);
    }
    log.warn(
      `The transfer's review policy is under today's minimums; settling waits on the default. ${err.message}`,
    );
    return DEFAULT_REVIEW_POLICY;
  }
  return { ...DEFAULT_REVIEW_POLICY, ...policy };
}

function invalidRequest(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: 'InvalidSettleRequest', message, nonRetryable: true });
}

function describeSettlement(details: PaymentDetails, settled: RefundResult): string {
  switch (settled.outcome) {
    case 'refunded':
      return `${details.amount} is back in ${settled.account} (${settled.transactionId}).`;
    case 'deposit-posted':
      return `the deposit had posted (${settled.transactionId}): the money reached ${details.targetAccount}.`;
    case 'nothing-to-refund':
      return 'the withdrawal never posted: no money moved.';
  }
}
