import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  defineQuery,
  isCancellation,
  log,
  metricMeter,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { createActivities } from './activities';
import {
  DEFINITE_FAILURES,
  InvalidPaymentDetailsError,
  referencesFor,
  validatePaymentDetails,
  type PaymentDetails,
  type RefundResult,
} from './shared';

type Activities = ReturnType<typeof createActivities>;

const { withdraw, deposit } = proxyActivities<Activities>({
  startToCloseTimeout: '5 seconds',
  // Activities heartbeat while the bank works; a missed heartbeat means the worker died.
  heartbeatTimeout: '2 seconds',
  retry: {
    maximumAttempts: 3,
    maximumInterval: '2 seconds',
    nonRetryableErrorTypes: [...DEFINITE_FAILURES],
  },
});

// Compensation never gives up on an unknown outcome: no attempt cap, and more time per
// attempt than the steps it undoes, so a bank that is merely slow still gets there.
const { refund } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  heartbeatTimeout: '2 seconds',
  retry: {
    maximumInterval: '10 seconds',
    nonRetryableErrorTypes: [...DEFINITE_FAILURES],
  },
});

// Counted through the SDK's meter, which skips replays, so nothing is counted twice.
// Made when used: the meter exists only inside a running workflow.
function countTransfer(outcome: string): void {
  metricMeter
    .createCounter(
      'money_transfer_transfers',
      'transfers',
      'Transfers by outcome: completed, failed (nothing moved), compensated, cancelled, needs-review',
    )
    .add(1, { outcome });
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

export type TransferStage =
  | 'validating'
  | 'withdrawing'
  | 'depositing'
  | 'refunding'
  | 'needs-review'
  | 'completed'
  | 'failed'
  | 'cancelled';

export interface TransferStatus {
  stage: TransferStage;
  /** The bank reference of each step. */
  references?: { withdrawal: string; deposit: string; refund: string };
  withdrawId?: string;
  depositId?: string;
  refundId?: string;
  /** Money that left (or may have left) the source account and is not back yet. */
  owed?: number;
  /** How a step with an unknown outcome was settled, once it was. */
  settlement?: RefundResult['outcome'];
  /** The failure that stopped the transfer, or that keeps the refund from completing. */
  lastFailure?: string;
  cancelRequested?: boolean;
}

/** Where the transfer is, and the bank's transaction ids so far. */
export const getStatus = defineQuery<TransferStatus>('getStatus');

export async function moneyTransfer(details: PaymentDetails): Promise<string> {
  const status: TransferStatus = { stage: 'validating' };
  setHandler(getStatus, () => status);
  CancellationScope.current().cancelRequested.catch(() => {
    status.cancelRequested = true;
    log.info('Cancellation requested', { stage: status.stage });
  });
  try {
    const result = await transfer(details, status);
    status.stage = 'completed';
    countTransfer('completed');
    return result;
  } catch (err) {
    status.stage = isCancellation(err) ? 'cancelled' : 'failed';
    if (err instanceof Error) status.lastFailure = describe(err);
    const outcome =
      status.stage === 'failed' && status.settlement === 'refunded' ? 'compensated' : status.stage;
    countTransfer(outcome);
    throw err;
  }
}

async function transfer(details: PaymentDetails, status: TransferStatus): Promise<string> {
  try {
    validatePaymentDetails(details);
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

  status.stage = 'withdrawing';
  try {
    status.withdrawId = await withdraw(details);
  } catch (err) {
    // The bank said no: nothing moved, so the failure ends the transfer.
    if (isDefinite(err)) throw err;
    // A timeout, a lost reply or a cancel: the withdrawal may have posted, or may still.
    log.warn(`Withdrawal outcome unknown, settling it: ${describe(err)}`, meta);
    await compensate(details, status, 'withdraw');
    throw err;
  }

  status.stage = 'depositing';
  try {
    status.depositId = await deposit(details);
  } catch (err) {
    log.error(`Deposit failed: ${describe(err)}`, meta);
    const settled = await compensate(details, status, 'deposit');
    if (settled.outcome !== 'deposit-posted') throw err;
    // The deposit's reply was lost, but the bank has it: the money arrived.
    status.depositId = settled.transactionId;
    log.info(`The deposit posted after all (${settled.transactionId}): the transfer is complete`, meta);
  }
  if (status.cancelRequested)
    log.info('Cancellation came after the money moved: the transfer completed', meta);
  return `Transfer complete (transaction IDs: ${status.withdrawId}, ${status.depositId})`;
}

/**
 * Settles the step that failed and puts the money back, whatever it takes: the refund
 * retries without limit and cannot be cancelled. A definite refund failure parks the
 * transfer in `needs-review`, with the owed amount in getStatus, instead of ending.
 */
async function compensate(
  details: PaymentDetails,
  status: TransferStatus,
  failedStep: 'withdraw' | 'deposit',
): Promise<RefundResult> {
  const meta = { referenceId: details.referenceId };
  return CancellationScope.nonCancellable(async () => {
    status.stage = 'refunding';
    status.owed = details.amount;
    for (;;) {
      try {
        const result = await refund(details, failedStep);
        status.settlement = result.outcome;
        countSettlement(result.outcome);
        status.owed = undefined;
        status.lastFailure = undefined;
        if (result.outcome === 'refunded') {
          status.refundId = result.transactionId;
          log.info(`Refund successful. Confirmation ID: ${result.transactionId}`, meta);
        } else if (result.outcome === 'nothing-to-refund') {
          log.info('The withdrawal never posted, and its reference is now void: nothing to refund', meta);
        }
        return result;
      } catch (err) {
        // Only a definite failure gets here; unknown ones are retried without limit.
        status.lastFailure = describe(err);
        log.error(`Refund failed: ${status.lastFailure}`, meta);
        status.stage = 'needs-review';
        countTransfer('needs-review');
        log.error(`Transfer needs review: ${details.amount} is owed to ${details.sourceAccount}`, meta);
        await condition(() => status.stage !== 'needs-review');
      }
    }
  });
}

/** The bank said no: a non-retryable business error, so nothing moved. */
function isDefinite(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof ApplicationFailure &&
    DEFINITE_FAILURES.includes(err.cause.type ?? '')
  );
}

// "Activity task failed: This deposit has failed." — the failure and its causes.
function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) parts.push(e.message);
  return parts.join(': ') || String(err);
}
