import { Context, log } from '@temporalio/activity';
import type { BankingService, CallOptions } from './bank/banking-service';
import {
  InvalidAccountError,
  referencesFor,
  refundReference,
  type PaymentDetails,
  type RefundResult,
} from './contract';

/**
 * Builds the activities around one bank. The worker creates the bank once and passes
 * it in; tests pass a fake.
 */
export function createActivities(bank: BankingService, operators: OperatorOptions = {}) {
  return {
    async withdraw(details: PaymentDetails): Promise<string> {
      const refs = referencesFor(details.referenceId);
      return bankCall('Withdrawal failed', details, (call) =>
        bank.withdraw(details.sourceAccount, details.amount, refs.withdrawal, call),
      );
    },

    async deposit(details: PaymentDetails): Promise<string> {
      const refs = referencesFor(details.referenceId);
      return bankCall('Deposit failed', details, (call) => {
        // Failure drill: comment out line 28 and uncomment line 29 (see README).
        return bank.deposit(details.targetAccount, details.amount, refs.deposit, call);
        // return bank.depositThatFails(details.targetAccount, details.amount, refs.deposit);
      });
    },

    /**
     * Compensation: puts back what left the source account. It first settles the step
     * that failed: the bank looks that step's reference up and, if nothing posted, voids
     * it so that a late call cannot post. Then:
     * - the deposit posted after all: nothing to refund, the transfer is complete;
     * - the withdrawal never posted: nothing to refund;
     * - a refund of an earlier round posted after all: that is the refund;
     * - otherwise: a deposit into the source account (or the one an operator named).
     * Every part is idempotent, so a retry after a crash at any point is safe.
     * The template's name stays although it settles first: recorded histories and open
     * transfers schedule the activity type `refund`, and a renamed one fails their replay.
     */
    async refund(details: PaymentDetails, options: RefundOptions = {}): Promise<RefundResult> {
      const { failedStep = 'deposit', round = 1, account = details.sourceAccount } = options;
      const refs = referencesFor(details.referenceId);
      const context = Context.current();
      if (context.info.attempt > 1) {
        context.metricMeter
          .createCounter('money_transfer_refund_retries', 'attempts', 'Refund attempts after the first')
          .add(1);
      }
      return bankCall('Refund failed', details, async (call): Promise<RefundResult> => {
        const settled = await bank.settle(failedStep === 'deposit' ? refs.deposit : refs.withdrawal, call);
        if (failedStep === 'deposit' && settled.posted) {
          return { outcome: 'deposit-posted', transactionId: settled.transactionId };
        }
        if (failedStep === 'withdraw' && !settled.posted) return { outcome: 'nothing-to-refund' };
        for (let earlier = 1; earlier < round; earlier++) {
          const refunded = await bank.settle(refundReference(details.referenceId, earlier), call);
          if (refunded.posted) {
            return { outcome: 'refunded', transactionId: refunded.transactionId, account: refunded.account };
          }
        }
        const reference = refundReference(details.referenceId, round);
        const transactionId = await bank.refund(account, details.amount, reference, call);
        return { outcome: 'refunded', transactionId, account };
      });
    },

    /**
     * For a transfer whose workflow ended with its money unaccounted for (terminated, for
     * one): settles the withdrawal, then the deposit, so no call of the ended run still in
     * flight can post, and finds what is owed. The withdrawal comes first: another
     * execution's reference is refused (TransferAlreadyOwnedError) before this one touches
     * anything, and a withdrawal that never posted means the deposit was never asked for.
     * A deposit or a refund that posted means nothing is owed; otherwise a refund is, under
     * the first round no refund used yet.
     */
    async findWhatIsOwed(details: PaymentDetails): Promise<OwedResult> {
      const refs = referencesFor(details.referenceId);
      return bankCall('Settling a stranded transfer failed', details, async (call): Promise<OwedResult> => {
        if (!(await bank.settle(refs.withdrawal, call)).posted) return { outcome: 'nothing-to-refund' };
        const deposit = await bank.settle(refs.deposit, call);
        if (deposit.posted) return { outcome: 'deposit-posted', transactionId: deposit.transactionId };
        // A round's refund that was refused or settled is void; a refund of that round
        // still in flight posts under the same reference as this one's would: at most one does.
        for (let round = 1; ; round++) {
          const refund = await bank.referenceState(refundReference(details.referenceId, round), call);
          if (refund.state === 'posted') {
            return { outcome: 'refunded', transactionId: refund.transactionId, account: refund.account };
          }
          if (refund.state === 'unused') return { outcome: 'refund-owed', round };
        }
      });
    },

    /** The accounts a refund could go to instead, for the operator to choose from. */
    async refundAccounts(details: PaymentDetails): Promise<string[]> {
      const open = await bank.openAccounts();
      return open.filter((account) => account !== details.targetAccount);
    },

    /**
     * Tells an operator that a transfer waits for review: one error line in the worker's
     * log with the Web UI link, and a JSON POST to the webhook if one is configured.
     */
    async notifyOperator(notice: ReviewNotice): Promise<void> {
      const { workflowExecution, workflowNamespace } = Context.current().info;
      if (!workflowExecution) throw new Error('notifyOperator runs only as part of a workflow');
      const link = operators.webUiLink?.(workflowExecution.workflowId, workflowExecution.runId);
      const { details } = notice;
      log.error(
        `${notice.reminder > 0 ? `Reminder ${notice.reminder}: t` : 'T'}ransfer ${workflowExecution.workflowId} ` +
          `needs review: ${details.amount} is owed to ${details.sourceAccount} (reference ${details.referenceId}). ` +
          `${notice.reason}${link ? ` ${link}` : ''}`,
        { referenceId: details.referenceId },
      );
      if (!operators.webhookUrl) return;
      const response = await fetch(operators.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          event: 'transfer.needs-review',
          namespace: workflowNamespace,
          workflowId: workflowExecution.workflowId,
          runId: workflowExecution.runId,
          link,
          ...notice,
        }),
        signal: Context.current().cancellationSignal,
      });
      // A webhook that did not take the notice is retried, like any other failed call.
      if (!response.ok)
        throw new Error(`The review webhook answered ${response.status} ${response.statusText}`);
    },
  };
}

/**
 * Runs a bank call as this workflow execution, with the activity's cancellation signal,
 * heartbeating while it waits: the heartbeat is how a timed-out attempt learns it was
 * given up on, and the signal then stops the call before it posts. The workflow id is
 * the owner the bank binds each reference to. Failures are logged and rethrown.
 */
async function bankCall<T>(
  failure: string,
  details: PaymentDetails,
  request: (call: Required<CallOptions>) => Promise<T>,
): Promise<T> {
  const context = Context.current();
  const owner = context.info.workflowExecution?.workflowId;
  if (!owner)
    throw new Error('Bank activities run only as part of a workflow: the workflow id owns the payment');
  const timer = setInterval(() => context.heartbeat(), 500);
  try {
    return await request({ owner, signal: context.cancellationSignal });
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

/** Which step failed, which round of refunding this is, and where the money goes back to. */
export interface RefundOptions {
  failedStep?: 'withdraw' | 'deposit';
  /** 1 for the first refund; each operator retry or redirect is the next round. */
  round?: number;
  /** Default: the source account. An operator may name another account of the customer. */
  account?: string;
}

/** What `findWhatIsOwed` found for a stranded transfer: settled already, or a refund owed in this round. */
export type OwedResult = RefundResult | { outcome: 'refund-owed'; round: number };

/** What an operator is told when a transfer waits for review. */
export interface ReviewNotice {
  details: PaymentDetails;
  reason: string;
  /** 0 for the first notice, then 1, 2, ... for each reminder. */
  reminder: number;
}

export interface OperatorOptions {
  /** The Web UI page of a workflow execution, for the operator's message. */
  webUiLink?: (workflowId: string, runId: string) => string;
  /** REVIEW_WEBHOOK_URL: also POST each notice there as JSON. */
  webhookUrl?: string;
}
