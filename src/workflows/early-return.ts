// The early return: a caller that started the transfer learns the withdrawal's outcome
// and goes on, while the deposit runs after it has its answer.
import { ApplicationFailure, CancellationScope, condition, patched, setHandler } from '@temporalio/workflow';
import { PAYMENT_MISMATCH, type PaymentDetails, paymentDifferences, withdrawalOutcome } from '../contract';
import type { Transfer } from './state';

export const EARLY_RETURN_OUTLIVES_CANCEL = 'early-return-outlives-cancel';

export function setEarlyReturnHandler(transfer: Transfer): void {
  const { details, status } = transfer;
  const known = () =>
    status.withdrawId !== undefined || ['completed', 'failed', 'cancelled'].includes(status.stage);
  setHandler(
    withdrawalOutcome,
    async () => {
      // A cancel must not fail the caller's answer: the withdrawal is settled, then answered.
      // Runs that began before this change keep their old, cancellable wait.
      if (patched(EARLY_RETURN_OUTLIVES_CANCEL))
        await CancellationScope.nonCancellable(() => condition(known));
      else await condition(known);
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
