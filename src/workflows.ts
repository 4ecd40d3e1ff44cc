import {
  ActivityFailure,
  ApplicationFailure,
  defineQuery,
  log,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { createActivities } from './activities';
import {
  InsufficientFundsError,
  InvalidAccountError,
  InvalidPaymentDetailsError,
  validatePaymentDetails,
  type PaymentDetails,
} from './shared';

const { withdraw, deposit, refund } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '5 seconds',
  retry: {
    maximumAttempts: 3,
    maximumInterval: '2 seconds',
    nonRetryableErrorTypes: [
      InvalidAccountError.name,
      InsufficientFundsError.name,
      InvalidPaymentDetailsError.name,
    ],
  },
});

export type TransferStage =
  'validating' | 'withdrawing' | 'depositing' | 'refunding' | 'completed' | 'failed';

export interface TransferStatus {
  stage: TransferStage;
  withdrawId?: string;
  depositId?: string;
  refundId?: string;
}

/** Where the transfer is, and the bank's transaction ids so far. */
export const getStatus = defineQuery<TransferStatus>('getStatus');

export async function moneyTransfer(details: PaymentDetails): Promise<string> {
  const status: TransferStatus = { stage: 'validating' };
  setHandler(getStatus, () => status);
  try {
    const result = await transfer(details, status);
    status.stage = 'completed';
    return result;
  } catch (err) {
    status.stage = 'failed';
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

  // If the withdrawal fails, no money has moved: let the failure end the workflow.
  status.stage = 'withdrawing';
  status.withdrawId = await withdraw(details);

  try {
    status.stage = 'depositing';
    status.depositId = await deposit(details);
  } catch (depositErr) {
    if (!(depositErr instanceof ActivityFailure)) throw depositErr;
    log.error(`Deposit failed: ${describe(depositErr)}`, { referenceId: details.referenceId });

    // The money left the source account, so put it back before failing.
    status.stage = 'refunding';
    try {
      status.refundId = await refund(details);
    } catch (refundErr) {
      if (refundErr instanceof ActivityFailure) {
        log.error(`Refund failed: ${describe(refundErr)}`, { referenceId: details.referenceId });
      }
      throw refundErr;
    }
    log.info(`Refund successful. Confirmation ID: ${status.refundId}`, { referenceId: details.referenceId });
    throw depositErr;
  }

  return `Transfer complete (transaction IDs: ${status.withdrawId}, ${status.depositId})`;
}

// "Activity task failed: This deposit has failed." — the activity failure and its cause.
function describe(err: ActivityFailure): string {
  return err.cause ? `${err.message}: ${err.cause.message}` : err.message;
}
