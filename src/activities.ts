import { log } from '@temporalio/activity';
import type { BankingService } from './banking-service';
import { InvalidAccountError, type PaymentDetails } from './shared';

/**
 * Builds the activities around one bank. The worker creates the bank once and passes
 * it in; tests pass a fake.
 */
export function createActivities(bank: BankingService) {
  return {
    async withdraw(details: PaymentDetails): Promise<string> {
      const referenceId = `${details.referenceId}-withdrawal`;
      try {
        return await bank.withdraw(details.sourceAccount, details.amount, referenceId);
      } catch (err) {
        logUnlessInvalidAccount('Withdrawal failed', err, details);
        throw err;
      }
    },

    async deposit(details: PaymentDetails): Promise<string> {
      const referenceId = `${details.referenceId}-deposit`;
      try {
        // Failure drill: comment out line 25 and uncomment line 26 (see README).
        return await bank.deposit(details.targetAccount, details.amount, referenceId);
        // return await bank.depositThatFails(details.targetAccount, details.amount, referenceId);
      } catch (err) {
        logUnlessInvalidAccount('Deposit failed', err, details);
        throw err;
      }
    },

    /** A refund is a deposit back into the source account. */
    async refund(details: PaymentDetails): Promise<string> {
      const referenceId = `${details.referenceId}-refund`;
      try {
        return await bank.deposit(details.sourceAccount, details.amount, referenceId);
      } catch (err) {
        logUnlessInvalidAccount('Refund failed', err, details);
        throw err;
      }
    },
  };
}

// An invalid account is the caller's mistake, not an incident: it goes back as it is.
// The activity logger adds the workflow id; the reference ties the line to the payment.
function logUnlessInvalidAccount(message: string, err: unknown, details: PaymentDetails): void {
  if (!(err instanceof InvalidAccountError)) {
    log.error(message, { error: err, referenceId: details.referenceId });
  }
}
