// The early return: a caller that started the transfer learns the withdrawal's outcome
// and goes on, while the deposit runs after it has its answer.
import { ApplicationFailure, condition, setHandler } from '@temporalio/workflow';
import { PAYMENT_MISMATCH, type PaymentDetails, paymentDifferences, withdrawalOutcome } from '../contract';
import type { Transfer } from './state';

export function setEarlyReturnHandler(transfer: Transfer): void {
  const { details, status } = transfer;
  const known = () =>
    status.withdrawId !== undefined || ['completed', 'failed', 'cancelled'].includes(status.stage);
  setHandler(
    withdrawalOutcome,
    async () => {
      await condition(known);
      return status;
    },
    {
      validator: (sent?: Partial<PaymentDetails>) => {
        const differences = paymentDifferences(details, sent);
        if (differences.length > 0) {
          throw ApplicationFailure.create({
            type: PAYMENT_MISMATCH,
            message: `This transfer is another payment: ${differences.join('; ')}.`,
            nonRetryable: true,
          });
        }
      },
    },
  );
}
