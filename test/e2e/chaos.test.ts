// Many transfers at once against the SQLite bank, in a worker process that is
// SIGKILLed at random moments. Whatever happens, every closed transfer must tell the
// truth about the money, and money is conserved.
//
// - chaos: planned transfers (ok, insufficient, invalid accounts) on a bank whose every
//   call takes 4-5.6 s, on both sides of the 5 s timeout, with one dev server restart.
//   Size: CHAOS_TRANSFERS (default 30) and CHAOS_KILLS (default 4); CI runs 100 and 10.
// - property: a random fault and latency on every bank call (BANK_FAULTS=random:SEED),
//   random kills and random cancels. PROPERTY_SEED repeats a run. Size: PROPERTY_TRANSFERS
//   (default 40) and PROPERTY_KILLS (default 3); CI runs 200 and 10.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  Client,
  Connection,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type WorkflowHandle,
} from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { prng } from '../../src/bank-faults';
import { SqliteStore, type LedgerEntry } from '../../src/bank-store';
import { referencesFor, type PaymentDetails } from '../../src/shared';
import { getStatus, type moneyTransfer } from '../../src/workflows';
import { startDevServer } from '../../tools/dev-server';
import { freePort, HAS_NODE_SQLITE, runScript, ScriptProcess, testServer, uniqueId } from '../helpers';

jest.setTimeout(900_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Kind = 'ok' | 'insufficient' | 'invalid-source' | 'invalid-target';
interface Plan {
  kind: Kind;
  details: PaymentDetails;
  /** Milliseconds after its start at which to cancel it, if at all. */
  cancelAfterMs?: number;
}
type End = 'completed' | 'failed' | 'cancelled' | 'open';
interface Closed extends Plan {
  end: End;
  stage: string;
  error?: unknown;
}

const FUNDED = ['C-1', 'C-2', 'C-3', 'C-4', 'C-5'];
const OPENING = new Map<string, number>([...FUNDED.map((a): [string, number] => [a, 100_000]), ['EMPTY', 0]]);
const total = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((sum, b) => sum + b, 0);

function planTransfer(kind: Kind, i: number, run: string, amount: number): PaymentDetails {
  const source = kind === 'insufficient' ? 'EMPTY' : kind === 'invalid-source' ? 'NOPE-1' : FUNDED[i % 5]!;
  const target = kind === 'invalid-target' ? 'NOPE-2' : FUNDED[(i + 1 + (i % 3)) % 5]!;
  return { sourceAccount: source, targetAccount: target, amount, referenceId: `${run}-${i}` };
}

interface Scenario {
  plans: Plan[];
  address: string;
  bankFile: string;
  taskQueue: string;
  workerEnv: Record<string, string>;
  kills: number;
  /** The pause before each kill is drawn from this range, in ms. */
  killGapMs: [number, number];
  /** Restarts the dev server once, halfway through starting the transfers. */
  restartServer?: () => Promise<void>;
  random: () => number;
  /** How long to wait for every transfer to close. */
  deadlineMs: number;
}

/** Runs the plans with a killer loop and cancels, and returns each transfer's end. */
async function runScenario(s: Scenario): Promise<{ closed: Closed[]; kills: number; faults: number }> {
  const connection = await Connection.connect({ address: s.address });
  const client = new Client({ connection });
  const env = {
    TEMPORAL_ADDRESS: s.address,
    TEMPORAL_TASK_QUEUE: s.taskQueue,
    BANK_DB: s.bankFile,
    NODE_ENV: 'production',
    ...s.workerEnv,
  };
  const workers: ScriptProcess[] = [];
  const startWorker = async () => {
    const worker = new ScriptProcess('src/worker.js', [], env);
    workers.push(worker);
    await worker.waitFor('Worker polling', 60_000);
    return worker;
  };
  let worker = await startWorker();
  let kills = 0;
  try {
    let starting = true;
    const killer = (async () => {
      while (starting || kills < s.kills) {
        await sleep(s.killGapMs[0] + s.random() * (s.killGapMs[1] - s.killGapMs[0]));
        worker.child.kill('SIGKILL');
        await worker.exited;
        kills++;
        worker = await startWorker();
      }
    })();
    const started: Array<Plan & { handle: WorkflowHandle<typeof moneyTransfer>; cancelled?: Promise<void> }> =
      [];
    for (const [i, plan] of s.plans.entries()) {
      if (i === Math.floor(s.plans.length / 2)) await s.restartServer?.();
      const handle = await client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
        taskQueue: s.taskQueue,
        workflowId: `${s.taskQueue}-${i}`,
        args: [plan.details],
      });
      // A cancel that comes after the end finds nothing to cancel.
      const cancelled =
        plan.cancelAfterMs === undefined
          ? undefined
          : sleep(plan.cancelAfterMs)
              .then(() => handle.cancel())
              .then(
                () => undefined,
                (err: unknown) => {
                  if (!(err instanceof WorkflowNotFoundError)) throw err;
                },
              );
      started.push({ ...plan, handle, cancelled });
      await sleep(50);
    }
    starting = false;
    await killer;

    // Whatever is still open at the deadline is reported with its stage, not waited for.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'open'>(
      (resolve) => (timer = setTimeout(() => resolve('open'), s.deadlineMs)),
    );
    const closed = await Promise.all(
      started.map(async ({ handle, cancelled, ...plan }): Promise<Closed> => {
        await cancelled;
        const outcome = await Promise.race([
          handle.result().then(
            () => ({ error: undefined }),
            (error: unknown) => ({ error }),
          ),
          deadline,
        ]);
        const stage = (await handle.query(getStatus)).stage;
        if (outcome === 'open') return { ...plan, end: 'open', stage };
        const { error } = outcome;
        const end: End =
          error === undefined
            ? 'completed'
            : error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure
              ? 'cancelled'
              : 'failed';
        return { ...plan, end, stage, error };
      }),
    );
    clearTimeout(timer);
    return {
      closed,
      kills,
      faults: workers.reduce((n, w) => n + (w.stderr.match(/^Bank fault injected:/gm)?.length ?? 0), 0),
    };
  } finally {
    worker.child.kill('SIGKILL');
    await worker.exited;
    await connection.close();
  }
}

/**
 * The money rule, checked against the ledger for every closed transfer: completed means
 * exactly one debit and one credit of its amount; failed or cancelled means net zero.
 * The status stage matches the end, no reference was both voided and posted, and money
 * is conserved over all accounts.
 */
function checkTheMoney(
  closed: Closed[],
  entries: LedgerEntry[],
  voided: string[],
  balances: Map<string, number>,
) {
  // No transfer may be left open, least of all without a visible stage.
  const open = closed.filter((t) => t.end === 'open').map((t) => `${t.details.referenceId}: ${t.stage}`);
  expect(open).toEqual([]);
  const byReference = new Map(entries.map((e) => [e.reference, e]));
  for (const t of closed) {
    const refs = referencesFor(t.details.referenceId);
    const mine = [refs.withdrawal, refs.deposit, refs.refund].flatMap((r) => byReference.get(r) ?? []);
    const net = (account: string) =>
      mine.filter((e) => e.account === account).reduce((s, e) => s + e.amount, 0);
    const seen = { ref: t.details.referenceId, end: t.end, stage: t.stage };
    expect(seen).toEqual({ ...seen, stage: t.end });
    if (t.end === 'completed') {
      expect({ ...seen, entries: mine.map((e) => [e.reference, e.account, e.amount]) }).toEqual({
        ...seen,
        entries: [
          [refs.withdrawal, t.details.sourceAccount, -t.details.amount],
          [refs.deposit, t.details.targetAccount, t.details.amount],
        ],
      });
    } else {
      expect({ ...seen, source: net(t.details.sourceAccount), target: net(t.details.targetAccount) }).toEqual(
        {
          ...seen,
          source: 0,
          target: 0,
        },
      );
    }
  }
  const postedAndVoided = voided.filter((r) => byReference.has(r));
  expect(postedAndVoided).toEqual([]);
  expect(total(balances)).toBe(total(OPENING));
}

function readBank(file: string) {
  const store = new SqliteStore(file);
  try {
    return { entries: store.entries(), voided: store.voided(), balances: store.balances() };
  } finally {
    store.close();
  }
}

/** Why a transfer failed: the activity and the failure type, e.g. withdraw TimeoutFailure. */
function reason(t: Closed): string {
  if (t.end !== 'failed') return t.end;
  const failure = (t.error as WorkflowFailedError).cause;
  const cause = failure?.cause as (Error & { type?: string }) | undefined;
  const activity = (failure as { activityType?: string } | undefined)?.activityType ?? '?';
  return `${activity} ${cause?.type ?? cause?.name ?? failure?.name}`;
}

function count<T extends string>(items: T[]): string {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
}

// The durable store is node:sqlite (Node 22.5+); on older Node, check the worker says so instead.
if (!HAS_NODE_SQLITE) {
  test('chaos and property tests need node:sqlite: a worker given BANK_DB says which Node it needs', async () => {
    const run = await runScript('src/worker.js', [], {
      BANK_DB: path.join(tmpdir(), 'never-created.sqlite'),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/The SQLite bank store needs Node\.js 22\.5 or newer \(this is v\d+/);
  });
}

if (HAS_NODE_SQLITE) {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-chaos-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const CHAOS_TRANSFERS = Number(process.env.CHAOS_TRANSFERS ?? 30);
  const CHAOS_KILLS = Number(process.env.CHAOS_KILLS ?? 4);

  test(`chaos: ${CHAOS_TRANSFERS} transfers on a bank at the timeout's edge, ${CHAOS_KILLS}+ SIGKILLs, 1 server restart`, async () => {
    const bankFile = path.join(dir, 'bank.sqlite');
    new SqliteStore(bankFile, OPENING).close();
    const serverOptions = {
      ip: '127.0.0.1',
      port: await freePort(),
      dbFilename: path.join(dir, 'temporal.sqlite'),
    };
    let server = await startDevServer(serverOptions);
    const taskQueue = uniqueId('chaos');
    const kinds: Kind[] = ['ok', 'ok', 'ok', 'insufficient', 'invalid-source', 'invalid-target'];
    const plans = Array.from({ length: CHAOS_TRANSFERS }, (_, i) => {
      const kind = kinds[i % kinds.length]!;
      return { kind, details: planTransfer(kind, i, taskQueue, 1 + ((i * 37) % 500)) };
    });
    let restarts = 0;
    try {
      const { closed, kills } = await runScenario({
        plans,
        address: server.address,
        bankFile,
        taskQueue,
        workerEnv: { BANK_DELAY_MS: '4000-5600' },
        kills: CHAOS_KILLS,
        // Longer than one bank call at times, so some attempts finish between kills.
        killGapMs: [3000, 8000],
        random: Math.random,
        deadlineMs: 600_000,
        restartServer: async () => {
          await server.teardown(); // workers and the client reconnect on their own
          server = await startDevServer(serverOptions);
          restarts++;
        },
      });
      const bank = readBank(bankFile);
      const okDone = closed.filter((t) => t.kind === 'ok' && t.end === 'completed').length;
      console.log(
        `chaos: ${closed.length} transfers: ${count(closed.map((t) => `${t.kind} ${reason(t)}`))}; ` +
          `${kills} worker SIGKILLs, ${restarts} server restart; ${bank.entries.length} ledger entries, ` +
          `${bank.voided.length} voided references; money before ${total(OPENING)}, after ${total(bank.balances)}`,
      );
      expect(kills).toBeGreaterThanOrEqual(CHAOS_KILLS);
      expect(restarts).toBe(1);
      // A transfer the bank must refuse never completes; one it can take may still time out.
      for (const t of closed)
        if (t.kind !== 'ok')
          expect({ ref: t.details.referenceId, end: t.end }).toEqual({
            ref: t.details.referenceId,
            end: 'failed',
          });
      expect(okDone).toBeGreaterThan(0);
      checkTheMoney(closed, bank.entries, bank.voided, bank.balances);
    } finally {
      await server.teardown();
    }
  });

  const PROPERTY_TRANSFERS = Number(process.env.PROPERTY_TRANSFERS ?? 40);
  const PROPERTY_KILLS = Number(process.env.PROPERTY_KILLS ?? 3);
  const seed = Number(process.env.PROPERTY_SEED ?? Date.now() % 1_000_000);

  test(`property: ${PROPERTY_TRANSFERS} transfers under random faults, kills and cancels (PROPERTY_SEED=${seed})`, async () => {
    const started = Date.now();
    const random = prng(`property ${seed}`);
    const bankFile = path.join(dir, 'bank.sqlite');
    new SqliteStore(bankFile, OPENING).close();
    const taskQueue = uniqueId('property');
    const plans: Plan[] = Array.from({ length: PROPERTY_TRANSFERS }, (_, i) => {
      const roll = random();
      const kind: Kind =
        roll < 0.8 ? 'ok' : roll < 0.87 ? 'insufficient' : roll < 0.94 ? 'invalid-target' : 'invalid-source';
      const details = planTransfer(kind, i, `p${seed}`, 1 + Math.floor(random() * 500));
      return { kind, details, cancelAfterMs: random() < 0.1 ? Math.floor(random() * 10_000) : undefined };
    });
    const { closed, kills, faults } = await runScenario({
      plans,
      address: testServer().address,
      bankFile,
      taskQueue,
      workerEnv: { BANK_FAULTS: `random:${seed}` },
      kills: PROPERTY_KILLS,
      killGapMs: [2000, 8000],
      random,
      deadlineMs: 600_000,
    });
    const bank = readBank(bankFile);
    console.log(
      `property: seed ${seed}; ${closed.length} transfers: ${count(closed.map(reason))}; ` +
        `${faults} faults injected, ${kills} SIGKILLs, ${plans.filter((p) => p.cancelAfterMs !== undefined).length} cancels; ` +
        `money before ${total(OPENING)}, after ${total(bank.balances)}; ${Math.round((Date.now() - started) / 1000)} s. ` +
        `Repeat with PROPERTY_SEED=${seed}`,
    );
    expect(kills).toBeGreaterThanOrEqual(PROPERTY_KILLS);
    expect(faults).toBeGreaterThan(0);
    for (const t of closed)
      if (t.kind !== 'ok')
        expect({ ref: t.details.referenceId, end: t.end }).not.toEqual({
          ref: t.details.referenceId,
          end: 'completed',
        });
    checkTheMoney(closed, bank.entries, bank.voided, bank.balances);
  });
}
