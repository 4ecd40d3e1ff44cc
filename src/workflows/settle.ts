// After a step failed with an unknown outcome: settle it at the bank, then put the money
// back, whatever it takes.
import {
  ApplicationFailure,
  CancellationScope,
  log,
  metricMeter,
  proxyActivities,
} from '@temporalio/workflow';
import {
  chainMessages,
  DEFINITE_FAILURES,
  REFUND_ATTEMPT_TIMEOUT_MS,
  refundReference,
  type RefundResult,
  TransferAlreadyOwnedError,
} from '../contract';
import { failureType, recordFailure } from './failures';
import { waitForOperator } from './review';
import { setStage, type Activities, type ResumedReview, type Transfer } from './state';

/**
 * Settles the step that failed, then acts on what the bank says: a deposit that posted
 * after all completes the transfer; otherwise the money goes back, whatever it takes:
 * the refund retries without an attempt cap and cannot be cancelled. If it fails definitely, or
 * keeps failing past the review deadline, the transfer waits in `needs-review` for an
 * operator, reminding them, and never ends with the money unaccounted for.
 */
export async function settleFailedStep(
  transfer: Transfer,
  failedStep: 'withdraw' | 'deposit',
  stepFailure: unknown,
  firstRound = 1,
  resumed?: ResumedReview,
): Promise<RefundResult> {
  const { details, status } = transfer;
  const meta = { referenceId: details.referenceId };
  // More time per attempt than the steps it undoes: it may make two bank calls (settle,
  // then refund), and a dead worker is still caught within the heartbeat timeout.
  const { refund } = proxyActivities<Activities>({
    startToCloseTimeout: REFUND_ATTEMPT_TIMEOUT_MS,
    scheduleToCloseTimeout: transfer.policy.reviewAfter,
    heartbeatTimeout: '2 seconds',
    retry: { maximumInterval: '10 seconds', nonRetryableErrorTypes: [...DEFINITE_FAILURES] },
  });
  return CancellationScope.nonCancellable(async () => {
    status.owed = details.amount;
    let round = resumed?.round ?? firstRound;
    let account = resumed?.account ?? details.sourceAccount;
    // A run continued as new begins where the last one was: waiting for review.
    let inReview = resumed;
    for (;;) {
      let failure: unknown;
      if (!inReview) {
        // Each round refunds under its own reference (-refund, -refund-2, ...): show the one in use.
        if (status.references) status.references.refund = refundReference(details.referenceId, round);
        setStage(transfer, 'refunding');
        try {
          const result = await refund.executeWithOptions(
            {
              summary:
                failedStep === 'deposit' ? `Refund ${details.amount} to ${account}` : 'Settle the withdrawal',
            },
            [details, { failedStep, round, account }],
          );
          status.settlement = result.outcome;
          status.owed = undefined;
          countSettlement(result.outcome);
          if (result.outcome === 'refunded') {
            status.refundId = result.transactionId;
            if (result.account !== details.sourceAccount) status.refundedTo = result.account;
            log.info(`Refund successful. Confirmation ID: ${result.transactionId}`, meta);
          } else if (result.outcome === 'nothing-to-refund') {
            log.info('The withdrawal never posted, and its reference is now void: nothing to refund', meta);
          }
          return result;
        } catch (err) {
          // Another execution owns this payment's reference: nothing of this one's posted,
          // or ever can, so there is nothing to put back.
          if (failedStep === 'withdraw' && failureType(err) === TransferAlreadyOwnedError.name) {
            status.owed = undefined;
            status.settlement = 'nothing-to-refund';
            log.warn(
              `Another transfer owns this payment; this one moved nothing: ${chainMessages(err)}`,
              meta,
            );
            throw err;
          }
          // A definite failure, or unknown ones past the review deadline.
          status.lastFailure = chainMessages(err);
          log.error(`Refund failed: ${status.lastFailure}`, meta);
          failure = err;
        }
      }
      const handover = { failedStep, stepFailure: recordFailure(stepFailure), round, account };
      const decision = await waitForOperator(transfer, account, failure, handover, inReview);
      inReview = undefined;
      if (decision.action === 'resolveManually') {
        status.owed = undefined;
        throw ApplicationFailure.create({
          type: 'ResolvedManually',
          message: `Resolved manually by ${decision.operator}${decision.approvedBy ? `, approved by ${decision.approvedBy}` : ''}: ${decision.note}`,
          nonRetryable: true,
          cause: stepFailure instanceof Error ? stepFailure : undefined,
        });
      }
      round++;
      account = decision.action === 'refundTo' ? decision.account : details.sourceAccount;
    }
  });
}

function countSettlement(path: RefundResult['outcome']): void {
  metricMeter
    .createCounter(
      'money_transfer_settlements',
      'settlements',
      'Steps with an unknown outcome, by how they settled: deposit-posted, refunded, nothing-to-refund',
    )
    .add(1, { path });
}
