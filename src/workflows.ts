import { ActivityFailure, log, proxyActivities } from '@temporalio/workflow';
import type { createActivities } from './activities';
import { InsufficientFundsError, InvalidAccountError, type PaymentDetails } from './shared';

const { withdraw, deposit, refund } = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '5 seconds',
  retry: {
    maximumAttempts: 3,
    maximumInterval: '2 seconds',
    nonRetryableErrorTypes: [InvalidAccountError.name, InsufficientFundsError.name],
  },
});

export async function moneyTransfer(details: PaymentDetails): Promise<string> {
  // If the withdrawal fails, no money has moved: let the failure end the workflow.
  const withdrawId = await withdraw(details);

  let depositId: string;
  try {
    depositId = await deposit(details);
  } catch (depositErr) {
    if (!(depositErr instanceof ActivityFailure)) throw depositErr;
    log.error(`Deposit failed: ${describe(depositErr)}`);

    // The money left the source account, so put it back before failing.
    let refundId: string;
    try {
      refundId = await refund(details);
    } catch (refundErr) {
      if (refundErr instanceof ActivityFailure) {
        log.error(`Refund failed: ${describe(refundErr)}`);
      }
      throw refundErr;
    }
    log.info(`Refund successful. Confirmation ID: ${refundId}`);
    throw depositErr;
  }

  return `Transfer complete (transaction IDs: ${withdrawId}, ${depositId})`;
}

// "Activity task failed: This deposit has failed." — the activity failure and its cause.
function describe(err: ActivityFailure): string {
  return err.cause ? `${err.message}: ${err.cause.message}` : err.message;
}
