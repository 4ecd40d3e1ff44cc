// Human review: a refund that cannot complete parks the transfer in `needs-review`, and
// an operator's update (retryRefund, refundTo, resolveManually) decides what comes next.
import {
  CancellationScope,
  condition,
  log,
  metricMeter,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import {
  chainMessages,
  type OperatorDecision,
  refundTo,
  resolveManually,
  retryRefund,
  type TransferView,
} from '../contract';
import { isDefinite } from './failures';
import { setStage, type Activities, type Transfer } from './state';

const { refundAccounts, notifyOperator } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumInterval: '1 minute' },
});

/**
 * An operator's decision and how far it got: `pending` from its update until the workflow
 * takes it up, `taken` while the workflow carries it out, `done` once it has (the refund
 * made, or failed again, or the transfer ended). The update returns at `done`.
 */
export interface Decision {
  what: OperatorDecision;
  state: 'pending' | 'taken' | 'done';
}

/** Parks the transfer in `needs-review`, tells an operator, reminds them, and returns their decision. */
export async function waitForOperator(
  transfer: Transfer,
  failedAccount: string,
  failure: unknown,
): Promise<OperatorDecision> {
  const { details, status } = transfer;
  const reason = isDefinite(failure)
    ? `The refund to ${failedAccount} was refused: ${chainMessages(failure)}`
    : `The refund kept failing for ${String(transfer.policy.reviewAfter)}: ${chainMessages(failure)}`;
  const accounts = (await refundAccounts(details)).filter((account) => account !== failedAccount);
  status.review = { reason, failedAccount, accounts, reminders: 0 };
  setStage(transfer, 'needs-review');
  decisionCarriedOut(transfer); // an operator's retry that failed again is carried out too
  countReview();
  await notifyOperator({ details, reason, reminder: 0 });
  while (!(await condition(() => transfer.decision?.state === 'pending', transfer.policy.remindEvery))) {
    status.review.reminders++;
    await notifyOperator({ details, reason, reminder: status.review.reminders });
  }
  transfer.decision!.state = 'taken';
  const decision = transfer.decision!.what;
  status.resolution = decision;
  status.review = undefined;
  log.info(`Operator decision: ${JSON.stringify(decision)}`, { referenceId: details.referenceId });
  return decision;
}

/** The operator's updates, each with a validator: only a transfer in review takes one. */
export function setReviewHandlers(transfer: Transfer): void {
  const { status } = transfer;
  /** An update's validator: only a transfer waiting for review, with no decision under way. */
  const inReview = () => {
    if (status.stage !== 'needs-review' || (transfer.decision && transfer.decision.state !== 'done')) {
      throw new Error(`This transfer is not waiting for review (stage: ${status.stage}).`);
    }
  };
  /**
   * Records the decision, then returns the status once it was carried out: the refund
   * done, or failed again. A cancel of the workflow does not cut the wait short.
   */
  const decide = (what: OperatorDecision): Promise<TransferView> =>
    CancellationScope.nonCancellable(async () => {
      const decision: Decision = { what, state: 'pending' };
      transfer.decision = decision;
      await condition(() => decision.state === 'done');
      return status;
    });
  setHandler(retryRefund, () => decide({ action: 'retryRefund' }), { validator: inReview });
  setHandler(refundTo, ({ account }) => decide({ action: 'refundTo', account: account.trim() }), {
    // Clients send JSON: check what arrived, not only what the TypeScript signature says.
    validator: (input?: { account?: unknown }) => {
      inReview();
      const account = typeof input?.account === 'string' ? input.account.trim() : '';
      if (!account) throw new Error('refundTo needs an account.');
      if (account === status.review?.failedAccount) {
        throw new Error(`The refund just failed on ${account}: choose another account.`);
      }
      if (!status.review?.accounts.includes(account)) {
        throw new Error(
          `Unknown account ${account}. The refund can go to: ${status.review?.accounts.join(', ') || 'no other open account'}.`,
        );
      }
    },
  });
  setHandler(
    resolveManually,
    ({ note, operator }) =>
      decide({ action: 'resolveManually', note: note.trim(), operator: operator.trim() }),
    {
      validator: (input?: { note?: unknown; operator?: unknown }) => {
        inReview();
        const { note, operator } = input ?? {};
        if (typeof note !== 'string' || !note.trim()) {
          throw new Error('resolveManually needs a note saying what was done.');
        }
        if (typeof operator !== 'string' || !operator.trim()) {
          throw new Error('resolveManually needs the name of the operator.');
        }
      },
    },
  );
}

/** The one place a decision is marked carried out: when the transfer parks again, or ends. */
export function decisionCarriedOut(transfer: Transfer): void {
  if (transfer.decision?.state === 'taken') transfer.decision.state = 'done';
}

function countReview(): void {
  metricMeter
    .createCounter(
      'money_transfer_reviews',
      'reviews',
      'Times a transfer parked in needs-review for an operator: once per refund that could not complete',
    )
    .add(1);
}
