// One payment submitted under several workflow ids at once: a double-click, or a client
// that retries with a new id. The bank binds a reference to the execution that used it
// first, so whatever the faults, one twin at most moves the money, the others fail with
// TransferAlreadyOwnedError having moved nothing, and every twin's result agrees with
// the ledger. The pairs run at once, so the file takes as long as the slowest pair.
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../src/activities';
import { parseFaults, UnreliableBank } from '../../src/bank/faults';
import type { LedgerEntry } from '../../src/bank/store';
import { referencesFor, type PaymentDetails } from '../../src/contract';
import type { moneyTransfer } from '../../src/workflows';
import { transferDetails, uniqueId, useTestTemporal } from '../support/helpers';

jest.setTimeout(120_000);

const temporal = useTestTemporal();

interface Twin {
  workflowId: string;
  result?: string;
  error?: unknown;
}

/** Starts `count` executions of one payment at the same moment, on one bank, and waits for all. */
async function submitTwice(
  bankOptions: ConstructorParameters<typeof UnreliableBank>[1],
  options: { count?: number; cancelOne?: boolean } = {},
): Promise<{
  details: PaymentDetails;
  twins: Twin[];
  entries: LedgerEntry[];
  balances: Record<string, number>;
}> {
  const bank = new UnreliableBank('bank-api.example.com', bankOptions);
  const details = transferDetails();
  const count = options.count ?? 2;
  const twins = await temporal().withWorker(createActivities(bank), async (taskQueue) => {
    const handles: Array<WorkflowHandle<typeof moneyTransfer>> = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        temporal().client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
          taskQueue,
          workflowId: `${uniqueId('twin')}-${'abc'[i]}`,
          args: [details],
        }),
      ),
    );
    if (options.cancelOne) setTimeout(() => void handles[0]!.cancel(), 300);
    return Promise.all(
      handles.map((handle) =>
        handle.result().then(
          (result): Twin => ({ workflowId: handle.workflowId, result }),
          (error: unknown): Twin => ({ workflowId: handle.workflowId, error }),
        ),
      ),
    );
  });
  return {
    details,
    twins,
    entries: await bank.store.entries(),
    balances: Object.fromEntries(await bank.balances()),
  };
}

/** The failure type at the end of a twin's cause chain: WorkflowFailedError -> ActivityFailure -> ApplicationFailure. */
function failureType(twin: Twin): string | undefined {
  if (!(twin.error instanceof WorkflowFailedError)) return undefined;
  let cause: unknown = twin.error.cause;
  while (cause instanceof Error) {
    if (cause instanceof ApplicationFailure) return cause.type ?? undefined;
    if (!(cause instanceof ActivityFailure) && !(cause.cause instanceof Error)) return cause.name;
    cause = cause.cause;
  }
  return undefined;
}

function chainMessages(twin: Twin): string {
  const messages: string[] = [];
  for (let e: unknown = twin.error; e instanceof Error; e = e.cause) messages.push(e.message);
  return messages.join(': ');
}

/**
 * The money rule for one payment and its twins: the ledger holds one transfer's worth at
 * most (a debit and a credit of its amount, or net zero), all of it the owner's; the
 * twin that completed reports the ledger's ids; every other twin failed, and a twin that
 * is not the owner failed with TransferAlreadyOwnedError naming the owner.
 */
function expectOneOwner(run: Awaited<ReturnType<typeof submitTwice>>): string {
  const { details, twins, entries } = run;
  const refs = referencesFor(details.referenceId);
  const owners = new Set(entries.map((e) => e.owner));
  expect(owners.size).toBeLessThanOrEqual(1);
  const owner = [...owners][0];
  const net = (account: string) =>
    entries.filter((e) => e.account === account).reduce((sum, e) => sum + e.amount, 0);
  const completed = twins.filter((t) => t.result !== undefined);
  expect(completed.length).toBeLessThanOrEqual(1);
  if (completed.length === 1) {
    const [twin] = completed;
    const ids = (ref: string) => entries.find((e) => e.reference === ref)?.transactionId;
    expect(twin!.workflowId).toBe(owner);
    expect(twin!.result).toBe(
      `Transfer complete (transaction IDs: ${ids(refs.withdrawal)}, ${ids(refs.deposit)})`,
    );
    expect({ source: net(details.sourceAccount), target: net(details.targetAccount) }).toEqual({
      source: -details.amount,
      target: details.amount,
    });
  } else {
    expect({ source: net(details.sourceAccount), target: net(details.targetAccount) }).toEqual({
      source: 0,
      target: 0,
    });
  }
  for (const twin of twins) {
    if (twin.result !== undefined) continue;
    expect(twin.error).toBeInstanceOf(WorkflowFailedError);
    if (owner !== undefined && twin.workflowId !== owner) {
      expect({ twin: twin.workflowId, type: failureType(twin) }).toEqual({
        twin: twin.workflowId,
        type: 'TransferAlreadyOwnedError',
      });
      expect(chainMessages(twin)).toContain(`belongs to transfer ${owner}`);
    }
  }
  return twins.map((t) => `${t.workflowId.slice(-1)}: ${t.result ? 'completed' : failureType(t)}`).join(', ');
}

// The four banks of the report that found money created, with as many pairs as it ran, all at once.
const BANKS: Array<[string, ConstructorParameters<typeof UnreliableBank>[1], number]> = [
  ['withdraw:fail*5', { faults: parseFaults('withdraw:fail*5') }, 8],
  ['a slow bank, 3-7 s a call', { delayMs: [3000, 7000] }, 12],
  ['deposit:fail', { faults: parseFaults('deposit:fail') }, 6],
  ['a fast bank', {}, 6],
];
// All pairs start at once, once the connection is open; each test awaits its own.
const runs = new Map<string, Promise<Array<Awaited<ReturnType<typeof submitTwice>>>>>();
beforeAll(() => {
  for (const [name, options, pairs] of BANKS) {
    const run = Promise.all(Array.from({ length: pairs }, () => submitTwice(options)));
    run.catch(() => undefined); // each test reports its own failure
    runs.set(name, run);
  }
});

describe('a payment submitted twice under two workflow ids', () => {
  test.each(BANKS.map(([name]) => name))(
    '%s: one owner moves the money at most once; the twin moves nothing',
    async (name) => {
      const pairs = await runs.get(name)!;
      const summary = pairs.map(expectOneOwner);
      console.log(`duplicates, ${name}: ${summary.join('; ')}`);
    },
  );

  test('a fast bank: the owner completes and its twin fails with TransferAlreadyOwnedError', async () => {
    const pairs = await runs.get('a fast bank')!;
    for (const { twins } of pairs) {
      expect(twins.map((t) => (t.result ? 'completed' : failureType(t))).sort()).toEqual([
        'TransferAlreadyOwnedError',
        'completed',
      ]);
    }
  });
});

test('three submissions at once, on a bank that loses replies: one owner, the rest refused', async () => {
  const run = await submitTwice(
    { faults: parseFaults('withdraw:post-then-fail*2,deposit:fail*1') },
    { count: 3 },
  );
  expectOneOwner(run);
  expect(run.twins.filter((t) => failureType(t) === 'TransferAlreadyOwnedError')).toHaveLength(2);
});

test('one twin cancelled while both run on a slow bank: still one owner, and nothing created', async () => {
  expectOneOwner(await submitTwice({ delayMs: [500, 1500] }, { cancelOne: true }));
});
