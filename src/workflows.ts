import {
  getStatus,
  refundTo,
  resolveManually,
  retryRefund,
  type OperatorDecision,
  type TransferStage,
  type TransferStatus,
} from './messages';
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  log,
  metricMeter,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from './activities';
import {
  chainMessages,
  DEFINITE_FAILURES,
  describeTransfer,
  InvalidPaymentDetailsError,
  referencesFor,
  refundReference,
  TRANSFER_STATUS,
  TRANSFER_STATUS_AT_START,
  TransferAlreadyOwnedError,
  validatePaymentDetails,
  validateReviewPolicy,
  type PaymentDetails,
  type RefundResult,
  type ReviewPolicy,
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

const { refundAccounts, notifyOperator } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumInterval: '1 minute' },
});

/**
 * An operator's decision and how far it got: `pending` from its update until the workflow
 * takes it up, `taken` while the workflow carries it out, `done` once it has (the refund
 * made, or failed again, or the transfer ended). The update returns at `done`.
 */
interface Decision {
  what: OperatorDecision;
  state: 'pending' | 'taken' | 'done';
}

/** The workflow's own state: the status it reports and an operator's latest decision. */
interface Transfer {
  details: PaymentDetails;
  status: TransferStatus;
  /** The policy as the caller sent it, checked with the details; `policy` fills in the defaults. */
  policyGiven: unknown;
  policy: Required<ReviewPolicy>;
  decision?: Decision;
  /** The TransferStatus search attribute's value now. */
  shown?: string;
}

export async function moneyTransfer(details: PaymentDetails, policy: ReviewPolicy = {}): Promise<string> {
  const t: Transfer = {
    details,
    status: { stage: 'validating' },
    policyGiven: policy,
    policy: { reviewAfter: '1 hour', remindEvery: '4 hours', ...policy },
    shown: workflowInfo().typedSearchAttributes.get(TRANSFER_STATUS),
  };
  // The project's clients set it at start (transferStartOptions); a start from elsewhere,
  // such as the CLI or the Web UI, has not.
  if (t.shown === undefined) showStage(t, TRANSFER_STATUS_AT_START);
  setHandlers(t);
  CancellationScope.current().cancelRequested.catch(() => {
    t.status.cancelRequested = true;
    if (t.status.stage === 'refunding' || t.status.stage === 'needs-review') {
      log.warn(
        `Cancellation requested while ${details.amount} is owed to ${details.sourceAccount}: ignored. ` +
          'The refund finishes first, or an operator resolves the review.',
        { referenceId: details.referenceId },
      );
    } else {
      log.info('Cancellation requested', { stage: t.status.stage, referenceId: details.referenceId });
    }
  });
  try {
    const result = await transfer(t);
    setStage(t, 'completed');
    countTransfer('completed');
    return result;
  } catch (err) {
    setStage(t, isCancellation(err) ? 'cancelled' : 'failed');
    if (err instanceof Error) t.status.lastFailure = chainMessages(err);
    countTransfer(endOutcome(t));
    throw err;
  } finally {
    decisionCarriedOut(t);
    // Let an operator's update return the final status before the workflow closes.
    await CancellationScope.nonCancellable(() => condition(allHandlersFinished));
  }
}

async function transfer(t: Transfer): Promise<string> {
  const { details, status } = t;
  try {
    validatePaymentDetails(details);
    validateReviewPolicy(t.policyGiven);
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

  setStage(t, 'withdrawing');
  try {
    status.withdrawId = await withdraw.executeWithOptions(
      { summary: `Withdraw ${details.amount} from ${details.sourceAccount}` },
      [details],
    );
  } catch (err) {
    // The bank said no: nothing moved, so the failure ends the transfer.
    if (isDefinite(err)) throw err;
    // A timeout, a lost reply or a cancel: the withdrawal may have posted, or may still.
    log.warn(`Withdrawal outcome unknown, settling it: ${chainMessages(err)}`, meta);
    await settleFailedStep(t, 'withdraw', err);
    throw err;
  }

  setStage(t, 'depositing');
  try {
    status.depositId = await deposit.executeWithOptions(
      { summary: `Deposit ${details.amount} into ${details.targetAccount}` },
      [details],
    );
  } catch (err) {
    log.error(`Deposit failed: ${chainMessages(err)}`, meta);
    const settled = await settleFailedStep(t, 'deposit', err);
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
 * Settles the step that failed, then acts on what the bank says: a deposit that posted
 * after all completes the transfer; otherwise the money goes back, whatever it takes:
 * the refund retries without an attempt cap and cannot be cancelled. If it fails definitely, or
 * keeps failing past the review deadline, the transfer waits in `needs-review` for an
 * operator, reminding them, and never ends with the money unaccounted for.
 */
async function settleFailedStep(
  t: Transfer,
  failedStep: 'withdraw' | 'deposit',
  stepFailure: unknown,
): Promise<RefundResult> {
  const { details, status } = t;
  const meta = { referenceId: details.referenceId };
  // More time per attempt than the steps it undoes: it may make two bank calls (settle,
  // then refund), and a dead worker is still caught within the heartbeat timeout.
  const { refund } = proxyActivities<Activities>({
    startToCloseTimeout: '20 seconds',
    scheduleToCloseTimeout: t.policy.reviewAfter,
    heartbeatTimeout: '2 seconds',
    retry: { maximumInterval: '10 seconds', nonRetryableErrorTypes: [...DEFINITE_FAILURES] },
  });
  return CancellationScope.nonCancellable(async () => {
    status.owed = details.amount;
    let round = 1;
    let account = details.sourceAccount;
    for (;;) {
      // Each round refunds under its own reference (-refund, -refund-2, ...): show the one in use.
      if (status.references) status.references.refund = refundReference(details.referenceId, round);
      setStage(t, 'refunding');
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
          log.warn(`Another transfer owns this payment; this one moved nothing: ${chainMessages(err)}`, meta);
          throw err;
        }
        // A definite failure, or unknown ones past the review deadline.
        status.lastFailure = chainMessages(err);
        log.error(`Refund failed: ${status.lastFailure}`, meta);
        const decision = await waitForOperator(t, account, err);
        if (decision.action === 'resolveManually') {
          status.owed = undefined;
          throw ApplicationFailure.create({
            type: 'ResolvedManually',
            message: `Resolved manually by ${decision.operator}: ${decision.note}`,
            nonRetryable: true,
            cause: stepFailure instanceof Error ? stepFailure : undefined,
          });
        }
        round++;
        account = decision.action === 'refundTo' ? decision.account : details.sourceAccount;
      }
    }
  });
}

/** Parks the transfer in `needs-review`, tells an operator, reminds them, and returns their decision. */
async function waitForOperator(
  t: Transfer,
  failedAccount: string,
  failure: unknown,
): Promise<OperatorDecision> {
  const { details, status } = t;
  const reason = isDefinite(failure)
    ? `The refund to ${failedAccount} was refused: ${chainMessages(failure)}`
    : `The refund kept failing for ${String(t.policy.reviewAfter)}: ${chainMessages(failure)}`;
  const accounts = (await refundAccounts(details)).filter((account) => account !== failedAccount);
  status.review = { reason, failedAccount, accounts, reminders: 0 };
  setStage(t, 'needs-review');
  decisionCarriedOut(t); // an operator's retry that failed again is carried out too
  countReview();
  await notifyOperator({ details, reason, reminder: 0 });
  while (!(await condition(() => t.decision?.state === 'pending', t.policy.remindEvery))) {
    status.review.reminders++;
    await notifyOperator({ details, reason, reminder: status.review.reminders });
  }
  t.decision!.state = 'taken';
  const decision = t.decision!.what;
  status.resolution = decision;
  status.review = undefined;
  log.info(`Operator decision: ${JSON.stringify(decision)}`, { referenceId: details.referenceId });
  return decision;
}

function setHandlers(t: Transfer): void {
  const { status } = t;
  setHandler(getStatus, () => status);
  /** An update's validator: only a transfer waiting for review, with no decision under way. */
  const inReview = () => {
    if (status.stage !== 'needs-review' || (t.decision && t.decision.state !== 'done')) {
      throw new Error(`This transfer is not waiting for review (stage: ${status.stage}).`);
    }
  };
  /**
   * Records the decision, then returns the status once it was carried out: the refund
   * done, or failed again. A cancel of the workflow does not cut the wait short.
   */
  const decide = (what: OperatorDecision): Promise<TransferStatus> =>
    CancellationScope.nonCancellable(async () => {
      const decision: Decision = { what, state: 'pending' };
      t.decision = decision;
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
function decisionCarriedOut(t: Transfer): void {
  if (t.decision?.state === 'taken') t.decision.state = 'done';
}

/** The stages ExecutionStatus cannot tell: a running transfer that owes money. */
const OWING: readonly string[] = ['refunding', 'needs-review'];

/**
 * Moves to a stage; the current details say what the transfer waits for. The
 * TransferStatus search attribute follows it from `refunding` on, to the final stage, so
 * the Web UI's list and `review list` find those; before that it stays `started`. Each
 * write is a history event and a visibility write, so a plain transfer makes none.
 */
function setStage(t: Transfer, stage: TransferStage): void {
  const { details, status } = t;
  status.stage = stage;
  if (OWING.includes(stage) || OWING.includes(t.shown ?? '')) showStage(t, stage);
  // Before validation passed, the details may be anything.
  if (!status.references) return setCurrentDetails(`**${stage}**: the payment details were refused.`);
  const what = describeTransfer(details);
  const next: Partial<Record<TransferStage, string>> = {
    withdrawing: 'Waiting for the bank to withdraw the money.',
    depositing: 'Waiting for the bank to deposit the money.',
    refunding: `Putting ${details.amount} back: settling the failed step, then refunding. This retries until it is done.`,
    'needs-review':
      `**Needs review.** ${details.amount} is owed to ${details.sourceAccount}. ${status.review?.reason ?? ''}\n\n` +
      'An operator can: `retryRefund`, `refundTo` another account, or `resolveManually` with a note ' +
      '(see `npm run review -- --help`).',
  };
  setCurrentDetails(`**${stage}**: ${what}\n\n${next[stage] ?? ''}`);
}

function showStage(t: Transfer, value: string): void {
  if (t.shown === value) return;
  t.shown = value;
  upsertSearchAttributes([{ key: TRANSFER_STATUS, value }]);
}

// Counted through the SDK's meter, which skips replays, so nothing is counted twice.
// Made when used: the meter exists only inside a running workflow.
function countTransfer(outcome: TransferOutcome): void {
  metricMeter
    .createCounter(
      'money_transfer_transfers',
      'transfers',
      'Transfers as they end, by outcome: completed; failed (nothing moved); compensated (refunded); ' +
        'resolved-manually (by an operator, outside the system); cancelled',
    )
    .add(1, { outcome });
}

type TransferOutcome = 'completed' | 'failed' | 'compensated' | 'resolved-manually' | 'cancelled';

function endOutcome({ status }: Transfer): TransferOutcome {
  if (status.stage === 'cancelled') return 'cancelled';
  if (status.resolution?.action === 'resolveManually') return 'resolved-manually';
  return status.refundId ? 'compensated' : 'failed';
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

function countSettlement(path: RefundResult['outcome']): void {
  metricMeter
    .createCounter(
      'money_transfer_settlements',
      'settlements',
      'Steps with an unknown outcome, by how they settled: deposit-posted, refunded, nothing-to-refund',
    )
    .add(1, { path });
}

/** The bank said no: a non-retryable business error, so nothing moved. */
function isDefinite(err: unknown): boolean {
  return DEFINITE_FAILURES.includes(failureType(err) ?? '');
}

/** The type of the bank error an activity failed with, e.g. InsufficientFundsError. */
function failureType(err: unknown): string | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
    ? (err.cause.type ?? undefined)
    : undefined;
}
