// Every fault on every step, against the dev server: the exact end state of each
// transfer (its result or failure type, the balances, and the ledger per reference).
// The cases run at once, so the suite takes as long as the slowest (a late deposit
// whose first attempt posts 20 s in, about 25 s).
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure, CancelledFailure, TimeoutFailure } from '@temporalio/common';
import { createActivities } from '../../src/activities';
import {
  type BankOperation,
  type FaultPlan,
  type Injection,
  parseFaults,
  UnreliableBank,
} from '../../src/bank/faults';
import { BankingService } from '../../src/bank/banking-service';
import { getStatus, type PaymentDetails, type TransferView } from '../../src/contract';
import type { moneyTransfer } from '../../src/workflows';
import {
  activityRuns,
  type ActivityRun,
  useTestTemporal,
  transferDetails,
  uniqueId,
  sleep,
} from '../support/helpers';

jest.setTimeout(120_000);

const temporal = useTestTemporal();

interface Outcome {
  result?: string;
  error?: unknown;
  handle: WorkflowHandle;
  runs: Array<{ name: string } & ActivityRun>;
  status: TransferView;
  balances: Record<string, number>;
  /** Ledger entries by step: withdrawal, deposit, refund. */
  ledger: Record<string, number>;
  voided: string[];
}

/**
 * Runs one transfer of 250 from 85-150 to 43-812 on a fresh seed bank with these
 * faults. `during` runs once the workflow started (to cancel it, say). `settleMs`
 * waits after the end for late calls to land, so the ledger shows what they did.
 */
async function run(
  faults: string | FaultPlan,
  options: { during?: (h: WorkflowHandle) => Promise<void>; settleMs?: number } = {},
): Promise<Outcome> {
  const bank = new UnreliableBank('bank-api.example.com', {
    faults: typeof faults === 'string' ? parseFaults(faults) : faults,
  });
  const details = transferDetails();
  return temporal().withWorker(createActivities(bank), async (taskQueue) => {
    const handle = await temporal().start(taskQueue, details);
    await options.during?.(handle);
    const outcome = await handle.result().then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    await sleep(options.settleMs ?? 0);
    const ledger: Record<string, number> = {};
    for (const e of await bank.store.entries())
      ledger[e.reference.slice(details.referenceId.length + 1)] = e.amount;
    return {
      ...outcome,
      handle,
      runs: await activityRuns(handle),
      status: await handle.query(getStatus),
      balances: Object.fromEntries(await bank.balances()),
      ledger,
      voided: (await bank.store.voided()).map(({ reference: r }) => r.slice(details.referenceId.length + 1)),
    };
  });
}

const UNCHANGED = { '85-150': 2000, '43-812': 0 };
const MOVED = { '85-150': 1750, '43-812': 250 };

/** WorkflowFailedError -> ActivityFailure(activity) -> cause; returns the cause. */
function failureCause(outcome: Outcome, activity: string): unknown {
  expect(outcome.error).toBeInstanceOf(WorkflowFailedError);
  const activityFailure = (outcome.error as WorkflowFailedError).cause;
  expect(activityFailure).toBeInstanceOf(ActivityFailure);
  expect(activityFailure).toMatchObject({ activityType: activity });
  return activityFailure!.cause;
}

function expectApplicationFailure(outcome: Outcome, activity: string, type: string): void {
  const cause = failureCause(outcome, activity);
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause).toMatchObject({ type });
}

function expectTimeout(outcome: Outcome, activity: string): void {
  const cause = failureCause(outcome, activity);
  expect(cause).toBeInstanceOf(TimeoutFailure);
}

const W = (attempts: number, outcome: ActivityRun['outcome']) => ({ name: 'withdraw', attempts, outcome });
const D = (attempts: number, outcome: ActivityRun['outcome']) => ({ name: 'deposit', attempts, outcome });
const R = (attempts: number, outcome: ActivityRun['outcome']) => ({ name: 'refund', attempts, outcome });

// Each case starts at once; each test awaits its own.
const cases = new Map<string, Promise<Outcome>>();
function outcome(
  name: string,
  faults: string | FaultPlan,
  options?: Parameters<typeof run>[1],
): Promise<Outcome> {
  if (!cases.has(name)) cases.set(name, run(faults, options));
  return cases.get(name)!;
}
/** One injection per call of `op`, in order, then normal calls. */
function sequence(op: BankOperation, injections: Injection[]): FaultPlan {
  let n = 0;
  return { description: 'sequence', next: (o) => (o === op ? injections[n++] : undefined) };
}
const LATE_THEN_REJECTED = sequence('withdraw', [
  { fault: 'late', delayMs: 9000 }, // long after the retry has started, however slow the machine
  { fault: 'reject', delayMs: 0 },
]);

const DEFINITIONS: Array<[string, string | FaultPlan, Parameters<typeof run>[1]?]> = [
  ['withdraw fail', 'withdraw:fail'],
  ['withdraw post-then-fail', 'withdraw:post-then-fail'],
  ['withdraw late', 'withdraw:late'],
  ['withdraw late once', 'withdraw:late*1', { settleMs: 1500 }],
  ['withdraw reject', 'withdraw:reject'],
  ['withdraw late, then rejected', LATE_THEN_REJECTED, { settleMs: 4000 }],
  ['deposit fail', 'deposit:fail'],
  ['deposit post-then-fail', 'deposit:post-then-fail'],
  ['deposit late', 'deposit:late'],
  ['deposit later than settling', 'deposit:late=20000', { settleMs: 3000 }],
  ['deposit reject', 'deposit:reject'],
  ['refund fail 3 times', 'deposit:reject,refund:fail*3'],
  ['refund post-then-fail', 'deposit:reject,refund:post-then-fail*1'],
  ['refund late once', 'deposit:reject,refund:late=21000*1', { settleMs: 1000 }],
  ['lookup fail twice', 'deposit:reject,lookup:fail*2'],
  ['lookup post-then-fail', 'deposit:fail,lookup:post-then-fail*1'],
];
beforeAll(() => {
  for (const [name, faults, options] of DEFINITIONS) void outcome(name, faults, options);
});

describe('withdraw', () => {
  test('fail: 3 attempts, settled as never posted and voided, nothing refunded; fails with the error', async () => {
    const o = await outcome('withdraw fail', 'withdraw:fail');
    expectApplicationFailure(o, 'withdraw', 'Error');
    expect(o.runs).toEqual([W(3, 'failed'), R(1, 'completed')]);
    expect(o.status).toMatchObject({ stage: 'failed', settlement: 'nothing-to-refund' });
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({});
    expect(o.voided).toEqual(['withdrawal']);
  });

  test('post-then-fail: it posted, so it is refunded; fails with the error, net zero', async () => {
    const o = await outcome('withdraw post-then-fail', 'withdraw:post-then-fail');
    expectApplicationFailure(o, 'withdraw', 'Error');
    expect(o.runs).toEqual([W(3, 'failed'), R(1, 'completed')]);
    expect(o.status).toMatchObject({
      stage: 'failed',
      settlement: 'refunded',
      refundId: expect.stringMatching(/^D-/),
    });
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
  });

  test('late: 3 timeouts, the first attempt posted late, so it is refunded; fails with the timeout', async () => {
    const o = await outcome('withdraw late', 'withdraw:late');
    expectTimeout(o, 'withdraw');
    expect(o.runs).toEqual([W(3, 'timedOut'), R(1, 'completed')]);
    expect(o.status).toMatchObject({ stage: 'failed', settlement: 'refunded' });
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
  });

  test('late once: the retry posts, the late call finds it; the transfer completes with one debit', async () => {
    const o = await outcome('withdraw late once', 'withdraw:late*1');
    expect(o.result).toMatch(/^Transfer complete/);
    expect(o.runs).toEqual([W(2, 'completed'), D(1, 'completed')]);
    expect(o.balances).toEqual(MOVED);
    expect(o.ledger).toEqual({ withdrawal: -250, deposit: 250 });
  });

  test('reject: definite, so 1 attempt and no settling; the bank voided the reference as it said no', async () => {
    const o = await outcome('withdraw reject', 'withdraw:reject');
    expectApplicationFailure(o, 'withdraw', 'InvalidAccountError');
    expect(o.runs).toEqual([W(1, 'failed')]);
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({});
    expect(o.voided).toEqual(['withdrawal']);
  });
});

test('withdraw late, then rejected: the no voids the reference, so the late first attempt posts nothing', async () => {
  const o = await outcome('withdraw late, then rejected', LATE_THEN_REJECTED);
  expectApplicationFailure(o, 'withdraw', 'InvalidAccountError');
  expect(o.runs).toEqual([W(2, 'failed')]);
  expect(o.balances).toEqual(UNCHANGED);
  expect(o.ledger).toEqual({});
  expect(o.voided).toEqual(['withdrawal']);
});

describe('deposit', () => {
  test('fail: 3 attempts, voided, refunded; fails with the deposit error', async () => {
    const o = await outcome('deposit fail', 'deposit:fail');
    expectApplicationFailure(o, 'deposit', 'Error');
    expect(o.runs).toEqual([W(1, 'completed'), D(3, 'failed'), R(1, 'completed')]);
    expect(o.status).toMatchObject({ stage: 'failed', settlement: 'refunded' });
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
    expect(o.voided).toEqual(['deposit']);
  });

  test('post-then-fail: the deposit posted, so the transfer completes with the real ids', async () => {
    const o = await outcome('deposit post-then-fail', 'deposit:post-then-fail');
    expect(o.runs).toEqual([W(1, 'completed'), D(3, 'failed'), R(1, 'completed')]);
    expect(o.status).toMatchObject({ stage: 'completed', settlement: 'deposit-posted' });
    expect(o.result).toBe(
      `Transfer complete (transaction IDs: ${o.status.withdrawId}, ${o.status.depositId})`,
    );
    expect(o.status.depositId).toMatch(/^D-/);
    expect(o.balances).toEqual(MOVED);
    expect(o.ledger).toEqual({ withdrawal: -250, deposit: 250 });
  });

  test('late: 3 timeouts, the first attempt posted late, so the transfer completes', async () => {
    const o = await outcome('deposit late', 'deposit:late');
    expect(o.result).toMatch(/^Transfer complete/);
    expect(o.runs).toEqual([W(1, 'completed'), D(3, 'timedOut'), R(1, 'completed')]);
    expect(o.status).toMatchObject({ stage: 'completed', settlement: 'deposit-posted' });
    expect(o.balances).toEqual(MOVED);
    expect(o.ledger).toEqual({ withdrawal: -250, deposit: 250 });
  });

  test('later than settling: the void comes first, the refund runs, and the late deposits post nothing', async () => {
    const o = await outcome('deposit later than settling', 'deposit:late=20000');
    expectTimeout(o, 'deposit');
    expect(o.runs).toEqual([W(1, 'completed'), D(3, 'timedOut'), R(1, 'completed')]);
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
    expect(o.voided).toEqual(['deposit']);
  });

  test('reject: definite, 1 attempt, refunded; fails with InvalidAccountError', async () => {
    const o = await outcome('deposit reject', 'deposit:reject');
    expectApplicationFailure(o, 'deposit', 'InvalidAccountError');
    expect(o.runs).toEqual([W(1, 'completed'), D(1, 'failed'), R(1, 'completed')]);
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
  });
});

describe('refund (after a rejected deposit) and its lookup', () => {
  test('fail 3 times: the refund has no attempt cap, and the 4th attempt refunds', async () => {
    const o = await outcome('refund fail 3 times', 'deposit:reject,refund:fail*3');
    expectApplicationFailure(o, 'deposit', 'InvalidAccountError');
    expect(o.runs).toEqual([W(1, 'completed'), D(1, 'failed'), R(4, 'completed')]);
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
  });

  test('post-then-fail: the retry finds the refund it already made; refunded once', async () => {
    const o = await outcome('refund post-then-fail', 'deposit:reject,refund:post-then-fail*1');
    expect(o.runs).toEqual([W(1, 'completed'), D(1, 'failed'), R(2, 'completed')]);
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
  });

  test('late once: the first attempt times out, the second refunds, the late one finds it; refunded once', async () => {
    const o = await outcome('refund late once', 'deposit:reject,refund:late=21000*1');
    expect(o.runs).toEqual([W(1, 'completed'), D(1, 'failed'), R(2, 'completed')]);
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
  });

  test('lookup fails twice: retried, then settled and refunded', async () => {
    const o = await outcome('lookup fail twice', 'deposit:reject,lookup:fail*2');
    expect(o.runs).toEqual([W(1, 'completed'), D(1, 'failed'), R(3, 'completed')]);
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
  });

  test('lookup post-then-fail: the void stands, the retry sees it and refunds', async () => {
    const o = await outcome('lookup post-then-fail', 'deposit:fail,lookup:post-then-fail*1');
    expect(o.runs).toEqual([W(1, 'completed'), D(3, 'failed'), R(2, 'completed')]);
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
    expect(o.voided).toEqual(['deposit']);
  });

  test('reject: a definite refund failure parks the transfer in needs-review with the amount owed', async () => {
    const bank = new UnreliableBank('bank-api.example.com', {
      faults: parseFaults('deposit:reject,refund:reject'),
    });
    const details = transferDetails();
    await temporal().withWorker(createActivities(bank), async (taskQueue) => {
      const handle = await temporal().start(taskQueue, details);
      let status: TransferView;
      for (;;) {
        status = await handle.query(getStatus);
        if (status.stage === 'needs-review') break;
        await sleep(100);
      }
      expect(status).toMatchObject({
        stage: 'needs-review',
        owed: 250,
        references: {
          withdrawal: `${details.referenceId}-withdrawal`,
          deposit: `${details.referenceId}-deposit`,
          refund: `${details.referenceId}-refund`,
        },
        lastFailure: expect.stringMatching(/InvalidAccountError|invalid/),
      });
      expect((await handle.describe()).status.name).toBe('RUNNING');
      expect(Object.fromEntries(await bank.balances())).toEqual({ '85-150': 1750, '43-812': 0 });
      await handle.terminate('test over');
    });
  });
});

describe('cancellation', () => {
  async function until(handle: WorkflowHandle, stage: TransferView['stage']): Promise<void> {
    while ((await handle.query(getStatus)).stage !== stage) await sleep(50);
  }

  test('before the withdrawal: no activity runs, nothing moves, the workflow ends Cancelled', async () => {
    const bank = new BankingService('bank-api.example.com');
    const taskQueue = uniqueId('queue');
    // No worker yet: the cancel is in history before the first workflow task runs.
    const handle = await temporal().start(taskQueue, transferDetails());
    await handle.cancel();
    const error = await temporal().withWorker(
      createActivities(bank),
      () => handle.result().catch((err: unknown) => err),
      taskQueue,
    );
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(await activityRuns(handle)).toEqual([]);
    expect(await bank.store.entries()).toEqual([]);
  });

  test('during the withdrawal: settled and voided first, then Cancelled; the late withdrawal posts nothing', async () => {
    const o = await run('withdraw:late=3000', {
      during: async (handle) => {
        await until(handle, 'withdrawing');
        await handle.cancel();
      },
      settleMs: 3500,
    });
    expect(o.error).toBeInstanceOf(WorkflowFailedError);
    expect((o.error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(o.status).toMatchObject({
      stage: 'cancelled',
      cancelRequested: true,
      settlement: 'nothing-to-refund',
    });
    expect(o.runs.map((r) => r.name)).toEqual(['withdraw', 'refund']);
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({});
    expect(o.voided).toEqual(['withdrawal']);
  });

  test('during the deposit: the deposit is voided and the money refunded before it ends Cancelled', async () => {
    const o = await run('deposit:late=3000', {
      during: async (handle) => {
        await until(handle, 'depositing');
        await handle.cancel();
      },
      settleMs: 3500,
    });
    expect((o.error as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(o.status).toMatchObject({ stage: 'cancelled', settlement: 'refunded' });
    expect(o.balances).toEqual(UNCHANGED);
    expect(o.ledger).toEqual({ withdrawal: -250, refund: 250 });
    expect(o.voided).toEqual(['deposit']);
  });

  test('during the deposit, after it posted: the transfer completes, and the status says the cancel came late', async () => {
    const o = await run('deposit:post-then-fail*1', {
      during: async (handle) => {
        // The first attempt posts and fails; cancel during the retry backoff.
        await until(handle, 'depositing');
        await sleep(300);
        await handle.cancel();
      },
    });
    expect(o.result).toMatch(/^Transfer complete/);
    expect(o.status).toMatchObject({
      stage: 'completed',
      cancelRequested: true,
      settlement: 'deposit-posted',
    });
    expect(o.balances).toEqual(MOVED);
    expect(o.ledger).toEqual({ withdrawal: -250, deposit: 250 });
  });

  test('during the refund: the refund cannot be cancelled and completes', async () => {
    const o = await run('deposit:reject,refund:fail*2', {
      during: async (handle) => {
        await until(handle, 'refunding');
        await handle.cancel();
      },
    });
    expectApplicationFailure(o, 'deposit', 'InvalidAccountError');
    expect(o.runs).toEqual([W(1, 'completed'), D(1, 'failed'), R(3, 'completed')]);
    expect(o.status).toMatchObject({ stage: 'failed', cancelRequested: true, settlement: 'refunded' });
    expect(o.balances).toEqual(UNCHANGED);
  });
});

describe('key reuse', () => {
  /** Runs two transfers one after the other under one workflow id: one owner of the reference. */
  async function twoRuns(bank: BankingService, first: PaymentDetails, second: PaymentDetails) {
    const workflowId = uniqueId('reused');
    return temporal().withWorker(createActivities(bank), async (taskQueue) => {
      const start = (details: PaymentDetails) =>
        temporal().client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
          taskQueue,
          workflowId,
          args: [details],
        });
      const a = await start(first);
      const resultA = await a.result();
      const b = await start(second);
      return { resultA, b, resultB: await b.result().catch((err: unknown) => err) };
    });
  }

  test('a reference reused with another amount fails with IdempotencyKeyReusedError and moves nothing', async () => {
    const bank = new BankingService('bank-api.example.com');
    const referenceId = uniqueId('reused');
    const { resultA, b, resultB } = await twoRuns(
      bank,
      transferDetails({ referenceId, amount: 100 }),
      transferDetails({ referenceId, amount: 900 }),
    );
    expect(resultA).toMatch(/^Transfer complete/);
    expect(resultB).toBeInstanceOf(WorkflowFailedError);
    const cause = (resultB as WorkflowFailedError).cause?.cause;
    expect(cause).toMatchObject({ type: 'IdempotencyKeyReusedError' });
    expect((cause as Error).message).toContain(`${referenceId}-withdrawal`);
    expect(await activityRuns(b)).toEqual([W(1, 'failed')]);
    expect(Object.fromEntries(await bank.balances())).toEqual({ '85-150': 1900, '43-812': 100 });
  });

  test('a second run of one workflow id with the same details is the same payment: same ids, moved once', async () => {
    const bank = new BankingService('bank-api.example.com');
    const details = transferDetails({ referenceId: uniqueId('same') });
    const { resultA, resultB } = await twoRuns(bank, details, details);
    expect(resultB).toBe(resultA);
    expect(Object.fromEntries(await bank.balances())).toEqual(MOVED);
  });
});
