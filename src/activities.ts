import { Context, log } from '@temporalio/activity';
import type { BankingService } from './banking-service';
import { InvalidAccountError, referencesFor, type PaymentDetails, type RefundResult } from './shared';

/**
 * Builds the activities around one bank. The worker creates the bank once and passes
 * it in; tests pass a fake.
 */
export function createActivities(bank: BankingService) {
  return {
    async withdraw(details: PaymentDetails): Promise<string> {
      const refs = referencesFor(details.referenceId);
      return bankCall('Withdrawal failed', details, (signal) =>
        bank.withdraw(details.sourceAccount, details.amount, refs.withdrawal, signal),
      );
    },

    async deposit(details: PaymentDetails): Promise<string> {
      const refs = referencesFor(details.referenceId);
      return bankCall('Deposit failed', details, (signal) => {
        // Failure drill: comment out line 22 and uncomment line 23 (see README).
        return bank.deposit(details.targetAccount, details.amount, refs.deposit, signal);
        // return bank.depositThatFails(details.targetAccount, details.amount, refs.deposit);
      });
    },

    /**
     * Compensation: puts back what left the source account. It first settles the step
     * that failed: the bank looks that step's reference up and, if nothing posted, voids
     * it so that a late call cannot post. Then:
     * - the deposit posted after all: nothing to refund, the transfer is complete;
     * - the withdrawal never posted: nothing to refund;
     * - otherwise: a deposit back into the source account.
     * Every part is idempotent, so a retry after a crash at any point is safe.
     */
    async refund(
      details: PaymentDetails,
      failedStep: 'withdraw' | 'deposit' = 'deposit',
    ): Promise<RefundResult> {
      const refs = referencesFor(details.referenceId);
      const context = Context.current();
      if (context.info.attempt > 1) {
        context.metricMeter
          .createCounter('money_transfer_refund_retries', 'attempts', 'Refund attempts after the first')
          .add(1);
      }
      return bankCall('Refund failed', details, async (signal): Promise<RefundResult> => {
        const settled = await bank.settle(failedStep === 'deposit' ? refs.deposit : refs.withdrawal, signal);
        if (failedStep === 'deposit' && settled.posted) {
          return { outcome: 'deposit-posted', transactionId: settled.transactionId };
        }
        if (failedStep === 'withdraw' && !settled.posted) return { outcome: 'nothing-to-refund' };
        const transactionId = await bank.refund(details.sourceAccount, details.amount, refs.refund, signal);
        return { outcome: 'refunded', transactionId };
      });
    },
  };
}

/**
 * Runs a bank call with the activity's cancellation signal, heartbeating while it
 * waits: the heartbeat is how a timed-out attempt learns it was given up on, and the
 * signal then stops the call before it posts. Failures are logged and rethrown.
 */
async function bankCall<T>(
  failure: string,
  details: PaymentDetails,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(), 500);
  try {
    return await call(context.cancellationSignal);
  } catch (err) {
    logUnlessInvalidAccount(failure, err, details);
    throw err;
  } finally {
    clearInterval(timer);
  }
}

// An invalid account is the caller's mistake, not an incident: it goes back as it is.
// The activity logger adds the workflow id; the reference ties the line to the payment.
function logUnlessInvalidAccount(message: string, err: unknown, details: PaymentDetails): void {
  if (!(err instanceof InvalidAccountError)) {
    log.error(message, { error: err, referenceId: details.referenceId });
  }
}
