// A transfer parked in review for a long time keeps its history bounded: each run continues
// as new before it grows past the bound, with the whole review carried over. The dev server
// cannot skip time, so these run on the test bundle (test/support/fast-limits.ts): a 10 ms
// reminder, which the server fires about once a second, and a new run after 120 events.
import {
  WorkflowFailedError,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { ActivityFailure, defaultPayloadConverter } from '@temporalio/common';
import type { temporal as proto } from '@temporalio/proto';
import { createActivities, type ReviewNotice } from '../../src/activities';
import { parseFaults, UnreliableBank } from '../../src/bank/faults';
import type { BankingService } from '../../src/bank/banking-service';
import {
  approveResolution,
  getStatus,
  NEEDS_REVIEW_QUERY,
  resolveManually,
  referencesFor,
  retryRefund,
  transferStartOptions,
  type PaymentDetails,
  type SettleRequest,
  type TransferView,
} from '../../src/contract';
import { runInput, transferStart } from '../../src/platform/history';
import type { moneyTransfer, settleStrandedTransfer } from '../../src/workflows';
import { LIMITS } from '../support/fast-limits';
import { RefuseFirstRefundBank } from '../../tools/export-histories';
import { acceptedDecisions, sleep, transferDetails, uniqueId, useTestTemporal } from '../support/helpers';

jest.setTimeout(Number(process.env.CAN_REMINDERS ?? 60) * 1500 + 120_000);

const temporal = useTestTemporal();

type Handle = WorkflowHandleWithFirstExecutionRunId<typeof moneyTransfer>;
type HistoryEvent = proto.api.history.v1.IHistoryEvent;

/** A run can pass the bound by at most the reminder cycle in which it crossed it. */
const RUN_BOUND = LIMITS.continueAsNewAtEvents + 20;

/** Every run of the workflow, first to latest, each with its history, following ContinuedAsNew. */
async function runsOf(handle: Handle): Promise<Array<{ runId: string; events: HistoryEvent[] }>> {
  const runs = [];
  let runId: string | undefined = handle.firstExecutionRunId;
  while (runId) {
    const { events } = await temporal().client.workflow.getHandle(handle.workflowId, runId).fetchHistory();
    runs.push({ runId, events: events ?? [] });
    runId =
      runs.at(-1)!.events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ??
      undefined;
  }
  return runs;
}

const activities = (events: HistoryEvent[]) =>
  events.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);

const reminders = (events: HistoryEvent[]) =>
  events.flatMap((e) => {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name !== 'notifyOperator') return [];
    return [defaultPayloadConverter.fromPayload<ReviewNotice>(scheduled.input!.payloads![0]!).reminder];
  });

/** Starts a transfer that parks in review at once, on the fast bundle, and runs `fn` while it is served. */
function parked<T>(
  bank: BankingService,
  fn: (handle: Handle, details: PaymentDetails) => Promise<T>,
): Promise<T> {
  return temporal().withTransfer(createActivities(bank), fn, {
    policy: { remindEvery: LIMITS.reviewPolicyMinimums.remindEvery },
    startOptions: { memo: { startedBy: 'tester' }, ...transferStartOptions() },
    bundle: 'fast',
    prefix: 'review-can',
  });
}

async function untilReminders(handle: Handle, atLeast: number): Promise<TransferView> {
  for (;;) {
    const status = await handle.query(getStatus);
    if ((status.review?.reminders ?? -1) >= atLeast) return status;
    await sleep(200);
  }
}

/** One a second: CAN_REMINDERS=1500 makes the long run (about 25 minutes). */
const REMINDERS = Number(process.env.CAN_REMINDERS ?? 60);

test(`${REMINDERS} reminders: each run stays under ${RUN_BOUND} events, the review carries over, and retryRefund ends it once`, async () => {
  const bank = new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') });
  await parked(bank, async (handle, details) => {
    const started = Date.now();
    const before = await untilReminders(handle, REMINDERS);
    // The API and the review CLI read the payment and the owner from the latest run.
    const latest = await handle.describe();
    expect(latest.runId).not.toBe(handle.firstExecutionRunId);
    expect(latest.memo).toEqual({ startedBy: 'tester' });
    expect(latest.searchAttributes.TransferStatus).toEqual(['needs-review']);
    expect(await runInput(temporal().client, handle.workflowId, latest.runId)).toEqual(details);
    // `review list`, reconcile and GET /reviews list the newest run, and date it from the first.
    const listed = [];
    const query = `${NEEDS_REVIEW_QUERY} AND WorkflowId = '${handle.workflowId}'`;
    for await (const execution of temporal().client.workflow.list({ query })) listed.push(execution);
    expect(listed.map((execution) => execution.runId)).toEqual([latest.runId]);
    const first = await client(handle, handle.firstExecutionRunId).describe();
    expect(listed[0]!.startTime.getTime()).toBeGreaterThan(first.startTime.getTime());
    expect(
      await transferStart(temporal().client, handle.workflowId, {
        ...listed[0]!,
        firstRunId: listed[0]!.raw.firstRunId,
      }),
    ).toEqual(first.startTime);
    expect(before).toMatchObject({
      stage: 'needs-review',
      owed: 250,
      review: { failedAccount: '85-150', reason: expect.stringMatching(/^The refund to 85-150 was refused/) },
    });

    const status = await handle.executeUpdate(retryRefund, { args: [{ operator: 'alice' }] });
    expect(status).toMatchObject({
      stage: 'failed',
      resolution: { action: 'retryRefund', operator: 'alice' },
    });
    const error = await handle.result().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    // The last run ends with the deposit's failure, as the first would have.
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(ActivityFailure);
    expect((error as WorkflowFailedError).cause).toMatchObject({
      activityType: 'deposit',
      cause: { type: 'InvalidAccountError' },
    });

    const runs = await runsOf(handle);
    const lengths = runs.map((run) => run.events.length);
    const sent = runs.flatMap((run) => reminders(run.events));
    console.log(
      `${sent.length - 1} reminders in ${Math.round((Date.now() - started) / 1000)} s: ${runs.length} runs, ` +
        `history lengths ${Math.min(...lengths)}-${Math.max(...lengths)}`,
    );
    expect(runs.length).toBeGreaterThanOrEqual(Math.floor(REMINDERS / (LIMITS.continueAsNewAtEvents / 8)));
    expect(
      runs.slice(0, -1).every((run) => run.events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes),
    ).toBe(true);
    for (const length of lengths) expect(length).toBeLessThanOrEqual(RUN_BOUND);
    // Only the first run moved money before review; the others waited, and the last refunded.
    expect(activities(runs[0]!.events).slice(0, 4)).toEqual([
      'withdraw',
      'deposit',
      'refund',
      'refundAccounts',
    ]);
    for (const run of runs.slice(1)) {
      expect(activities(run.events).filter((name) => name !== 'notifyOperator')).toEqual(
        run === runs.at(-1) ? ['refund'] : [],
      );
    }
    // Each reminder once, numbered on across the runs.
    expect(sent).toEqual(Array.from({ length: sent.length }, (_, i) => i));
    expect(sent.length).toBeGreaterThan(REMINDERS);
    expect(await acceptedDecisions(client(handle, runs.at(-1)!.runId))).toEqual(['retryRefund by alice']);
    expect((await bank.store.entries()).map((e) => [e.reference, e.amount])).toEqual([
      [`${details.referenceId}-withdrawal`, -250],
      [`${details.referenceId}-refund-2`, 250],
    ]);
  });
});

function client(handle: Handle, runId: string): WorkflowHandle {
  return temporal().client.workflow.getHandle(handle.workflowId, runId);
}

test('four eyes across runs: alice proposes in one run, bob approves in a later one', async () => {
  const bank = new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') });
  await parked(bank, async (handle) => {
    await untilReminders(handle, 0);
    await handle.executeUpdate(resolveManually, { args: [{ note: 'cheque 7', operator: 'alice' }] });
    const proposedIn = (await handle.describe()).runId;
    // Wait for at least two more runs, so the proposal was carried twice.
    for (;;) {
      const runs = await runsOf(handle);
      if (runs.length - runs.findIndex((run) => run.runId === proposedIn) >= 3) break;
      await sleep(200);
    }
    const carried = await handle.query(getStatus);
    expect(carried.review?.proposal).toMatchObject({ note: 'cheque 7', operator: 'alice' });
    await expect(
      handle.executeUpdate(approveResolution, { args: [{ operator: 'alice' }] }),
    ).rejects.toMatchObject({
      cause: { message: 'alice proposed this resolution: another operator must approve it.' },
    });
    const approved = await handle.executeUpdate(approveResolution, { args: [{ operator: 'bob' }] });
    expect(approved.resolution).toMatchObject({
      action: 'resolveManually',
      operator: 'alice',
      approvedBy: 'bob',
    });
    const error = await handle.result().catch((err: unknown) => err);
    expect((error as WorkflowFailedError).cause).toMatchObject({ type: 'ResolvedManually' });
    expect(Object.fromEntries(await bank.balances())).toMatchObject({ '85-150': 1750 });
  });
});

test('an update sent as the run continues as new is carried out once, by one run', async () => {
  // Several transfers, each sent its update when its run is a few events short of the bound:
  // the update reaches the run that is closing, or the next one, never both.
  const offsets = [12, 8, 5, 3, 1, 0];
  const landings = await Promise.all(
    offsets.map(async (offset) => {
      const bank = new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') });
      return parked(bank, async (handle, details) => {
        await untilReminders(handle, 0);
        let sentTo: string;
        for (;;) {
          const run = await handle.describe();
          if ((run.historyLength ?? 0) >= LIMITS.continueAsNewAtEvents - offset) {
            sentTo = run.runId;
            break;
          }
          await sleep(20);
        }
        const status = await handle.executeUpdate(retryRefund, { args: [{ operator: `op-${offset}` }] });
        expect(status.resolution).toEqual({ action: 'retryRefund', operator: `op-${offset}` });
        await handle.result().catch(() => undefined);
        const runs = await runsOf(handle);
        const accepted = await Promise.all(runs.map((run) => acceptedDecisions(client(handle, run.runId))));
        expect(accepted.flat()).toEqual([`retryRefund by op-${offset}`]);
        expect((await bank.store.entries()).map((e) => [e.reference, e.amount])).toEqual([
          [`${details.referenceId}-withdrawal`, -250],
          [`${details.referenceId}-refund-2`, 250],
        ]);
        const acceptedBy = runs[accepted.findIndex((names) => names.length > 0)]!.runId;
        return acceptedBy === sentTo ? 'the run it was sent to' : 'a later run';
      });
    }),
  );
  console.log(`Updates sent near the bound were carried out by: ${landings.join(', ')}`);
});

test("a settling run that parks for review continues as new too, on the transfer's policy, and one decision ends it", async () => {
  const bank = new RefuseFirstRefundBank('bank');
  const details = transferDetails();
  const workflowId = uniqueId('settle-can');
  // The stranded transfer's withdrawal posted under its workflow id before its run was ended from outside.
  await bank.withdraw(details.sourceAccount, details.amount, referencesFor(details.referenceId).withdrawal, {
    owner: workflowId,
  });
  const request = {
    operator: 'carol',
    note: 'terminated by mistake',
    policy: { remindEvery: LIMITS.reviewPolicyMinimums.remindEvery },
  };
  await temporal().withWorker(
    createActivities(bank),
    async (taskQueue) => {
      const start = (id: string, settle: SettleRequest) =>
        temporal().client.workflow.start<typeof settleStrandedTransfer>('settleStrandedTransfer', {
          taskQueue,
          workflowId: id,
          args: [details, settle],
          memo: { startedBy: 'tester' },
          ...transferStartOptions(),
        });
      const handle = await start(workflowId, request);
      const waiting = await untilReminders(handle, 25);
      expect(waiting).toMatchObject({ stage: 'needs-review', owed: 250 });
      const status = await handle.executeUpdate(retryRefund, { args: [{ operator: 'alice' }] });
      expect(status.resolution).toEqual({ action: 'retryRefund', operator: 'alice' });
      await expect(handle.result()).resolves.toBe(
        `Settled by carol (terminated by mistake): 250 is back in ${details.sourceAccount} (${status.refundId}).`,
      );
      const runs = await runsOf(handle);
      expect(runs.length).toBeGreaterThanOrEqual(3);
      for (const run of runs) expect(run.events.length).toBeLessThanOrEqual(RUN_BOUND);
      // A run that handed over closed waiting, not failed: visibility says so of each.
      for (const run of runs.slice(0, -1)) {
        const closed = await client(handle, run.runId).describe();
        expect(closed.searchAttributes.TransferStatus).toEqual(['needs-review']);
      }
      expect(
        runs.slice(0, -1).every((run) => run.events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes),
      ).toBe(true);
      const sent = runs.flatMap((run) => reminders(run.events));
      expect(sent).toEqual(Array.from({ length: sent.length }, (_, i) => i));
      expect((await bank.store.entries()).map((e) => [e.reference, e.amount])).toEqual([
        [`${details.referenceId}-withdrawal`, -250],
        [`${details.referenceId}-refund-2`, 250],
      ]);
    },
    undefined,
    'fast',
  );
});

test("a settling run's policy: one under today's minimums waits on the default instead of refusing to settle; a malformed one is refused", async () => {
  const bank = new UnreliableBank('bank', { faults: parseFaults('refund:reject') });
  await temporal().withWorker(
    createActivities(bank),
    async (taskQueue) => {
      const settle = async (policy: unknown) => {
        const details = transferDetails();
        const workflowId = uniqueId('settle-policy');
        await bank.withdraw(
          details.sourceAccount,
          details.amount,
          referencesFor(details.referenceId).withdrawal,
          {
            owner: workflowId,
          },
        );
        return temporal().client.workflow.start<typeof settleStrandedTransfer>('settleStrandedTransfer', {
          taskQueue,
          workflowId,
          args: [details, { operator: 'carol', note: 'old transfer', policy } as SettleRequest],
          ...transferStartOptions(),
        });
      };
      // A transfer started before the minimums may carry a 1 ms reminder.
      const old = await settle({ remindEvery: 1 });
      while ((await old.query(getStatus)).stage !== 'needs-review') await sleep(100);
      const { events } = await old.fetchHistory();
      const timers = events!.flatMap((e) => e.timerStartedEventAttributes?.startToFireTimeout?.seconds ?? []);
      expect(timers.map(Number)).toContain(4 * 3600); // the default, 4 hours
      await old.terminate('test over');

      const malformed = await settle({ remindEvery: 'soon' });
      await expect(malformed.result()).rejects.toMatchObject({
        cause: {
          type: 'InvalidSettleRequest',
          message: expect.stringMatching(/^The settle request's review policy: /),
        },
      });
    },
    undefined,
    'fast',
  );
});
