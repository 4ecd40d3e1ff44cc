// Human in the loop: a refund that cannot complete parks the transfer in needs-review,
// tells an operator, reminds them, and waits for one of three Workflow Updates.
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { createActivities, type ReviewNotice } from '../../src/activities';
import { parseFaults, UnreliableBank } from '../../src/bank/faults';
import { RefuseFirstRefundBank } from '../../tools/export-histories';
import { MemoryStore } from '../../src/bank/store';
import { BankingService } from '../../src/bank/banking-service';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  approveResolution,
  getStatus,
  InvalidAccountError,
  type PaymentDetails,
  refundTo,
  rejectResolution,
  resolveManually,
  retryRefund,
  type ReviewPolicy,
  transferStartOptions,
  type TransferView,
} from '../../src/contract';
import type { moneyTransfer } from '../../src/workflows';
import {
  acceptedDecisions,
  activityRuns,
  logs,
  useTestTemporal,
  transferDetails,
  uniqueId,
  sleep,
} from '../support/helpers';

jest.setTimeout(60_000);

const temporal = useTestTemporal();

/** The template's accounts plus a savings account of the same customer. */
const accounts = () =>
  new Map([
    ['85-150', 2000],
    ['43-812', 0],
    ['85-999', 0],
  ]);

/** A bank where the deposit fails and, at that moment, the source account is closed. */
class ClosingBank extends BankingService {
  override async deposit(account: string): Promise<string> {
    await this.store.setClosed('85-150', true);
    throw new InvalidAccountError(`The account number ${account} is invalid.`);
  }
}

type Handle = WorkflowHandle<typeof moneyTransfer>;

/** The `reminder` number of each notice the workflow sent the operator, from its history. */
async function noticesSent(handle: Handle): Promise<number[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? [])
    .map((event) => event.activityTaskScheduledEventAttributes)
    .filter((scheduled) => scheduled?.activityType?.name === 'notifyOperator')
    .map(
      (scheduled) =>
        defaultPayloadConverter.fromPayload<ReviewNotice>(scheduled!.input!.payloads![0]!).reminder,
    );
}

/** Starts a transfer on `bank` and runs `fn` while a worker serves it. */
function withTransfer<T>(
  bank: BankingService,
  fn: (handle: Handle, details: PaymentDetails) => Promise<T>,
  policy: ReviewPolicy = {},
  startOptions: object = transferStartOptions(),
  bundle: 'plain' | 'fast' = 'plain',
): Promise<T> {
  return temporal().withTransfer(createActivities(bank), fn, { policy, startOptions, bundle });
}

async function until(handle: Handle, stage: TransferView['stage']): Promise<TransferView> {
  for (;;) {
    const status = await handle.query(getStatus);
    if (status.stage === stage) return status;
    await sleep(50);
  }
}

async function searchAttribute(handle: Handle): Promise<unknown> {
  return (await handle.describe()).searchAttributes.TransferStatus;
}

/** The TransferStatus values the workflow upserted, in order, read from its history. */
async function upsertedStages(handle: Handle): Promise<string[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? []).flatMap((e) => {
    const payload =
      e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields?.TransferStatus;
    return payload?.data ? [JSON.parse(Buffer.from(payload.data).toString()) as string] : [];
  });
}

async function updateEvents(handle: Handle): Promise<number> {
  const { events } = await handle.fetchHistory();
  return (events ?? []).filter(
    (e) =>
      e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionUpdateRejectedEventAttributes,
  ).length;
}

async function failure(handle: Handle): Promise<WorkflowFailedError> {
  const error = await handle.result().catch((err: unknown) => err);
  expect(error).toBeInstanceOf(WorkflowFailedError);
  return error as WorkflowFailedError;
}

describe('entering review', () => {
  test('a definite refund failure (source account closed) parks the transfer, visible and searchable', async () => {
    const bank = new ClosingBank('bank', { store: new MemoryStore(accounts()) });
    await withTransfer(bank, async (handle, details) => {
      const status = await until(handle, 'needs-review');
      expect(status).toMatchObject({
        owed: 250,
        references: {
          withdrawal: `${details.referenceId}-withdrawal`,
          deposit: `${details.referenceId}-deposit`,
          refund: `${details.referenceId}-refund`,
        },
        lastFailure: 'Activity task failed: The account 85-150 is closed.',
        review: {
          reason: 'The refund to 85-150 was refused: Activity task failed: The account 85-150 is closed.',
          failedAccount: '85-150',
          accounts: ['85-999'],
          reminders: 0,
        },
      });
      expect(await searchAttribute(handle)).toEqual(['needs-review']);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      expect((await activityRuns(handle)).map((r) => r.name)).toEqual([
        'withdraw',
        'deposit',
        'refund',
        'refundAccounts',
        'notifyOperator',
      ]);
      const notice = logs.find(
        (e) => e.meta?.workflowId === handle.workflowId && /needs review/.test(e.message),
      );
      expect(notice).toMatchObject({
        level: 'ERROR',
        message: `Transfer ${handle.workflowId} needs review: 250 is owed to 85-150 (reference ${details.referenceId}). ${status.review!.reason}`,
      });
      await handle.terminate('test over');
    });
  });

  test('a refund that keeps failing past the review deadline parks the transfer too', async () => {
    const bank = new UnreliableBank('bank', { faults: parseFaults('deposit:reject,refund:fail') });
    await withTransfer(
      bank,
      async (handle) => {
        const status = await until(handle, 'needs-review');
        expect(status.review?.reason).toMatch(/^The refund kept failing for 3 seconds: /);
        expect(status.owed).toBe(250);
        await handle.terminate('test over');
      },
      { reviewAfter: '3 seconds' },
      transferStartOptions(),
      'fast', // production refuses a review deadline under a minute
    );
  });

  test('reminders go out at the configured interval while the transfer waits', async () => {
    const bank = new UnreliableBank('bank', { faults: parseFaults('deposit:reject,refund:reject') });
    await withTransfer(
      bank,
      async (handle) => {
        await until(handle, 'needs-review');
        await sleep(2600);
        const status = await handle.query(getStatus);
        expect(status.review!.reminders).toBeGreaterThanOrEqual(2);
        // The first notice, then each reminder, numbered in order.
        expect(await noticesSent(handle)).toEqual(
          Array.from({ length: status.review!.reminders + 1 }, (_, i) => i),
        );
        await handle.terminate('test over');
      },
      { remindEvery: '1 second' },
      transferStartOptions(),
      'fast', // production refuses reminders more often than every 15 minutes
    );
  });

  test('a cancel during review is refused: the status records it, and the money still waits for an operator', async () => {
    const bank = new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') });
    await withTransfer(bank, async (handle) => {
      await until(handle, 'needs-review');
      await handle.cancel();
      await sleep(500);
      expect(await handle.query(getStatus)).toMatchObject({ stage: 'needs-review', cancelRequested: true });
      expect((await handle.describe()).status.name).toBe('RUNNING');
      await handle.executeUpdate(retryRefund, { args: [{}] });
      const error = await failure(handle);
      expect(error.cause).toMatchObject({ activityType: 'deposit' });
      expect(Object.fromEntries(await bank.balances())).toEqual({ '85-150': 2000, '43-812': 0 });
    });
  });
});

describe('operator updates', () => {
  test('retryRefund: a new round under -refund-2 refunds the source; returns the final status', async () => {
    const bank = new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') });
    await withTransfer(bank, async (handle, details) => {
      await until(handle, 'needs-review');
      const status = await handle.executeUpdate(retryRefund, { args: [{}] });
      expect(status).toMatchObject({
        stage: 'failed',
        settlement: 'refunded',
        resolution: { action: 'retryRefund' },
        refundId: expect.stringMatching(/^D-/),
      });
      expect(status.owed).toBeUndefined();
      const error = await failure(handle);
      expect(error.cause).toBeInstanceOf(ActivityFailure);
      expect(error.cause?.cause).toMatchObject({ type: 'InvalidAccountError' });
      expect((await bank.store.entries()).map((e) => [e.reference, e.account, e.amount])).toEqual([
        [`${details.referenceId}-withdrawal`, '85-150', -250],
        [`${details.referenceId}-refund-2`, '85-150', 250],
      ]);
      expect(await searchAttribute(handle)).toEqual(['failed']);
    });
  });

  test('refundTo: the money goes back to another account of the customer', async () => {
    const bank = new ClosingBank('bank', { store: new MemoryStore(accounts()) });
    await withTransfer(bank, async (handle, details) => {
      await until(handle, 'needs-review');
      const status = await handle.executeUpdate(refundTo, { args: [{ account: '85-999' }] });
      expect(status).toMatchObject({
        stage: 'failed',
        refundedTo: '85-999',
        resolution: { action: 'refundTo', account: '85-999' },
      });
      await failure(handle);
      expect(Object.fromEntries(await bank.balances())).toEqual({
        '85-150': 1750,
        '43-812': 0,
        '85-999': 250,
      });
      expect((await bank.store.entries()).map((e) => e.reference)).toEqual([
        `${details.referenceId}-withdrawal`,
        `${details.referenceId}-refund-2`,
      ]);
    });
  });

  test('four eyes: alice proposes, cannot approve herself, bob rejects, alice proposes again, bob approves; both names and times are in history', async () => {
    const bank = new ClosingBank('bank', { store: new MemoryStore(accounts()) });
    await withTransfer(bank, async (handle) => {
      await until(handle, 'needs-review');
      const proposed = await handle.executeUpdate(resolveManually, {
        args: [{ note: 'Refunded by cheque 1001', operator: 'alice' }],
      });
      expect(proposed).toMatchObject({
        stage: 'needs-review',
        review: { proposal: { note: 'Refunded by cheque 1001', operator: 'alice', at: expect.any(String) } },
      });
      await expect(
        handle.executeUpdate(approveResolution, { args: [{ operator: 'alice' }] }),
      ).rejects.toMatchObject({
        cause: { message: 'alice proposed this resolution: another operator must approve it.' },
      });
      await expect(
        handle.executeUpdate(resolveManually, { args: [{ note: 'another idea', operator: 'carol' }] }),
      ).rejects.toMatchObject({
        cause: { message: "alice's manual resolution waits for approval: approve or reject it first." },
      });
      const rejected = await handle.executeUpdate(rejectResolution, {
        args: [{ operator: 'bob', note: 'no cheque on record' }],
      });
      expect(rejected.stage).toBe('needs-review');
      expect(rejected.review).toMatchObject({
        rejected: {
          operator: 'alice',
          rejectedBy: 'bob',
          note: expect.stringContaining('no cheque on record'),
        },
      });
      expect(rejected.review!.proposal).toBeUndefined();
      await handle.executeUpdate(resolveManually, {
        args: [{ note: 'Refunded by cheque 1002', operator: 'alice' }],
      });
      const approved = await handle.executeUpdate(approveResolution, { args: [{ operator: 'bob' }] });
      expect(approved).toMatchObject({
        stage: 'failed',
        resolution: {
          action: 'resolveManually',
          note: 'Refunded by cheque 1002',
          operator: 'alice',
          approvedBy: 'bob',
          proposedAt: expect.any(String),
          approvedAt: expect.any(String),
        },
      });
      const error = await failure(handle);
      expect(error.cause).toBeInstanceOf(ApplicationFailure);
      expect(error.cause).toMatchObject({
        type: 'ResolvedManually',
        message: 'Resolved manually by alice, approved by bob: Refunded by cheque 1002',
      });
      expect(error.cause?.cause).toMatchObject({ activityType: 'deposit' });
      expect(Object.fromEntries(await bank.balances())).toEqual({ '85-150': 1750, '43-812': 0, '85-999': 0 });
      // History: who asked for what, in order (accepted updates only), and the four-eyes marker.
      const accepted = await acceptedDecisions(handle);
      console.log('Four eyes, from history:', accepted.join('; '));
      expect(accepted).toEqual([
        'resolveManually by alice',
        'rejectResolution by bob',
        'resolveManually by alice',
        'approveResolution by bob',
      ]);
      const { events } = await handle.fetchHistory();
      const markers = (events ?? []).flatMap((e) =>
        Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((payloads) =>
          (payloads.payloads ?? []).map((p) => Buffer.from(p.data ?? []).toString()),
        ),
      );
      console.log('Markers:', markers.join(' '));
      for (const patch of ['four-eyes', 'notices-in-background']) {
        expect(markers.some((m) => m.includes(`"${patch}"`))).toBe(true);
      }
    });
  });

  test('a webhook answering 503 throughout holds up no decision: the retry is carried out at once, and the failed notices are counted', async () => {
    let calls = 0;
    const webhook = createServer((_req, res) => {
      calls++;
      res.writeHead(503).end();
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/`;
    try {
      const bank = new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') });
      const details = transferDetails();
      await temporal().withWorker(createActivities(bank, { webhookUrl }), async (taskQueue) => {
        const handle = await temporal().client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
          taskQueue,
          workflowId: uniqueId('review-webhook'),
          args: [details],
          ...transferStartOptions(),
        });
        await until(handle, 'needs-review');
        while ((await handle.query(getStatus)).notices?.failed === undefined) await sleep(50);
        const decided = Date.now();
        const status = await handle.executeUpdate(retryRefund, { args: [{ operator: 'alice' }] });
        const tookMs = Date.now() - decided;
        const result = await handle.result().catch((err: unknown) => err);
        console.log(
          `Webhook 503 throughout: retryRefund carried out in ${tookMs} ms; ${calls} webhook calls, ` +
            `notices ${JSON.stringify(status.notices)}`,
        );
        expect(status).toMatchObject({ resolution: { action: 'retryRefund', operator: 'alice' } });
        expect(status.refundId).toEqual(expect.any(String));
        expect(tookMs).toBeLessThan(5000);
        expect(status.notices).toMatchObject({ sent: 0, failed: expect.any(Number) });
        expect(status.notices!.failed).toBeGreaterThanOrEqual(1);
        expect(result).toBeInstanceOf(WorkflowFailedError); // the deposit was refused; the money went back
        expect(Object.fromEntries(await bank.balances())).toMatchObject({ '85-150': 2000 });
      });
    } finally {
      await new Promise((resolve) => webhook.close(resolve));
    }
  });
});

describe('validators: rejected with a clear message, nothing written to history', () => {
  test.each([
    [
      'an empty note',
      () => [resolveManually, { note: '  ', operator: 'alice' }],
      'resolveManually needs a note saying what was done.',
    ],
    [
      'an empty operator',
      () => [resolveManually, { note: 'cheque', operator: '' }],
      'resolveManually needs the name of the operator.',
    ],
    [
      'an unknown account',
      () => [refundTo, { account: '99-999' }],
      'Unknown account 99-999. The refund can go to: 85-999.',
    ],
    [
      'the account that just failed',
      () => [refundTo, { account: '85-150' }],
      'The refund just failed on 85-150: choose another account.',
    ],
    ['no account at all', () => [refundTo, {}], 'refundTo needs an account.'],
    [
      'approving with no proposal',
      () => [approveResolution, { operator: 'bob' }],
      'No manual resolution waits to approve.',
    ],
    [
      'rejecting with no proposal',
      () => [rejectResolution, { operator: 'bob', note: 'no' }],
      'No manual resolution waits to reject.',
    ],
  ] as const)('%s', async (_, update, message) => {
    const bank = new ClosingBank('bank', { store: new MemoryStore(accounts()) });
    await withTransfer(bank, async (handle) => {
      await until(handle, 'needs-review');
      const [definition, arg] = update();
      const attempt = handle.executeUpdate(definition as typeof refundTo, {
        args: [arg as { account: string }],
      });
      await expect(attempt).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
      await expect(attempt).rejects.toMatchObject({ cause: { message } });
      expect(await updateEvents(handle)).toBe(0);
      expect((await handle.query(getStatus)).stage).toBe('needs-review');
      await handle.terminate('test over');
    });
  });

  test('a transfer that is not in review refuses every update', async () => {
    const bank = new UnreliableBank('bank', { delayMs: 1500 });
    await withTransfer(bank, async (handle) => {
      await until(handle, 'withdrawing');
      const message = 'This transfer is not waiting for review (stage: withdrawing).';
      await expect(handle.executeUpdate(retryRefund, { args: [{}] })).rejects.toMatchObject({
        cause: { message },
      });
      await expect(handle.executeUpdate(refundTo, { args: [{ account: '85-999' }] })).rejects.toMatchObject({
        cause: { message },
      });
      await expect(
        handle.executeUpdate(resolveManually, { args: [{ note: 'x', operator: 'y' }] }),
      ).rejects.toMatchObject({ cause: { message } });
      await expect(handle.result()).resolves.toMatch(/^Transfer complete/);
      expect(await updateEvents(handle)).toBe(0);
    });
  });
});

test('TransferStatus: started from the start options, then written only from refunding on', async () => {
  const ok = new BankingService('bank');
  const completed = await withTransfer(ok, async (handle) => {
    await handle.result();
    return { upserted: await upsertedStages(handle), shown: await searchAttribute(handle) };
  });
  // ExecutionStatus says completed; no upsert at all.
  expect(completed).toEqual({ upserted: [], shown: ['started'] });

  // Started without it (the CLI, the Web UI): the workflow sets it once itself.
  const plain = await withTransfer(
    ok,
    async (handle) => {
      await handle.result();
      return { upserted: await upsertedStages(handle), shown: await searchAttribute(handle) };
    },
    {},
    {},
  );
  expect(plain).toEqual({ upserted: ['started'], shown: ['started'] });

  const parked = new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') });
  const reviewed = await withTransfer(parked, async (handle) => {
    await until(handle, 'needs-review');
    await handle.executeUpdate(retryRefund, { args: [{}] });
    await handle.result().catch(() => undefined);
    return upsertedStages(handle);
  });
  expect(reviewed).toEqual(['refunding', 'needs-review', 'refunding', 'failed']);
});
