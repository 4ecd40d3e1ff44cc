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
  TransferAlreadyOwnedError,
} from '../contract';
import { failureType } from './failures';
import { decisionCarriedOut, setReviewHandlers } from './review';
import { settleFailedStep } from './settle';
import { DEFAULT_REVIEW_POLICY, setStage, type Activities, type Transfer } from './state';

const { findWhatIsOwed } = proxyActivities<Activities>({
  startToCloseTimeout: STEP_ATTEMPT_TIMEOUT_MS * 2, // two settles and a read or more
  heartbeatTimeout: '2 seconds',
  // No cap on attempts: the money must be found.
  retry: { maximumInterval: '10 seconds', nonRetryableErrorTypes: [...DEFINITE_FAILURES] },
});

export async function settleStrandedTransfer(
  details: PaymentDetails,
  request: SettleRequest,
): Promise<string> {
  const operator = request?.operator?.trim();
  const note = request?.note?.trim();
  if (!operator || !note) {
    throw ApplicationFailure.create({
      type: 'InvalidSettleRequest',
      message: 'Settling a transfer needs the name of the operator and a note saying why.',
      nonRetryable: true,
    });
  }
  const transfer: Transfer = {
    details,
    status: { stage: 'refunding', references: referencesFor(details.referenceId) },
    policyGiven: {},
    policy: DEFAULT_REVIEW_POLICY,
    shown: workflowInfo().typedSearchAttributes.get(TRANSFER_STATUS),
  };
  setHandler(getStatus, () => transfer.status);
  setReviewHandlers(transfer);
  const meta = { referenceId: details.referenceId, operator };
  log.info(`Settling a stranded transfer for ${operator}: ${note}`, meta);
  try {
    return await CancellationScope.nonCancellable(async () => {
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
      const settled: RefundResult =
        found.outcome === 'refund-owed'
          ? await settleFailedStep(transfer, 'deposit', undefined, found.round)
          : found;
      const { status } = transfer;
      status.settlement = settled.outcome;
      if (settled.outcome === 'deposit-posted') status.depositId = settled.transactionId;
      if (settled.outcome === 'refunded') status.refundId = settled.transactionId;
      setStage(transfer, 'completed');
      return `Settled by ${operator} (${note}): ${describeSettlement(details, settled)}`;
    });
  } catch (err) {
    setStage(transfer, 'failed');
    throw err;
  } finally {
    decisionCarriedOut(transfer);
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  }
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
