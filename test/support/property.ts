// The scenario engine behind the chaos, property, fleet and cluster tests: plans of
// transfers, a run of them with worker processes SIGKILLed at random and timed
// disruptions of the infrastructure, the bank's clerk and an operator alongside, and the
// money rule checked against the ledger at the end.
import {
  Client,
  Connection,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type WorkflowHandle,
} from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import {
  isPostgresUrl,
  openStore,
  PgStore,
  SqliteStore,
  type BankStore,
  type LedgerEntry,
  type VoidRecord,
} from '../../src/bank/store';
import { FAULT_KINDS } from '../../src/bank/faults';
import {
  BankUnavailableError,
  getStatus,
  type PaymentDetails,
  referencesFor,
  refundTo,
  retryRefund,
  type TransferView,
} from '../../src/contract';
import type { Finding, Reconciliation } from '../../src/reconcile';
import type { moneyTransfer } from '../../src/workflows';
import type { ApiDoor, ApiFacts } from './api-door';
import { ScriptProcess, sleep, voidedReferences } from './helpers';

export type Kind = 'ok' | 'insufficient' | 'invalid-source' | 'invalid-target';
export interface Plan {
  kind: Kind;
  details: PaymentDetails;
  /** Milliseconds after its start at which to cancel it, if at all. */
  cancelAfterMs?: number;
  /** Milliseconds after its start at which the same payment is submitted again, under another workflow id. */
  duplicatesAfterMs?: number[];
  /**
   * Milliseconds after its start at which an operator terminates it, if at all, and then
   * settles it with `npm run review -- settle`, as docs/operations.md says.
   */
  terminateAfterMs?: number;
  /**
   * Sent through the HTTP API, when the run has it: POSTed again after each of
   * `retriesAfterMs`, as a client retries, and the first POST given up on after
   * `firstTimeoutMs`, as a client that timed out.
   */
  viaApi?: { retriesAfterMs: number[]; firstTimeoutMs?: number };
}
/** `terminated`: terminated, then settled by an operator's run; its result is the settling run's. */
type End = 'completed' | 'failed' | 'cancelled' | 'terminated' | 'open';
export interface Closed extends Plan {
  workflowId: string;
  /** 0 for the first submission of the payment, 1 and 2 for its duplicates. */
  copy: number;
  result?: string;
  end: End;
  stage: string;
  error?: unknown;
}

export const FUNDED = ['C-1', 'C-2', 'C-3', 'C-4', 'C-5'];
export const OPENING = new Map<string, number>([
  ...FUNDED.map((a): [string, number] => [a, 100_000]),
  ['EMPTY', 0],
]);
export const total = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((sum, b) => sum + b, 0);

export function planTransfer(kind: Kind, i: number, run: string, amount: number): PaymentDetails {
  const source = kind === 'insufficient' ? 'EMPTY' : kind === 'invalid-source' ? 'NOPE-1' : FUNDED[i % 5]!;
  const target = kind === 'invalid-target' ? 'NOPE-2' : FUNDED[(i + 1 + (i % 3)) % 5]!;
  // More than the whole bank holds: refused even after an operator's refund-to put money
  // into EMPTY, which the review offers like any other open account.
  const asked = kind === 'insufficient' ? total(OPENING) + amount : amount;
  return { sourceAccount: source, targetAccount: target, amount: asked, referenceId: `${run}-${i}` };
}

/**
 * The property generator: mostly transfers the bank can take, some it must refuse, about
 * one in ten cancelled at a random moment, about one in seven submitted again under
 * other workflow ids, and a few terminated (one in 25 at once, one in 30 at a random
 * moment). About one in three goes through the HTTP API, with retried POSTs. The same
 * `random` stream gives the same plans.
 */
export function randomPlans(random: () => number, size: number, run: string): Plan[] {
  return Array.from({ length: size }, (_, i) => {
    const roll = random();
    const kind: Kind =
      roll < 0.8 ? 'ok' : roll < 0.87 ? 'insufficient' : roll < 0.94 ? 'invalid-target' : 'invalid-source';
    const details = planTransfer(kind, i, run, 1 + Math.floor(random() * 500));
    const cancelAfterMs = random() < 0.1 ? Math.floor(random() * 10_000) : undefined;
    // Some payments are submitted again under other workflow ids, once or twice, at random moments.
    const copies = random() < 0.15 ? 1 + Math.floor(random() * 2) : 0;
    const duplicatesAfterMs = Array.from({ length: copies }, () => Math.floor(random() * 6000));
    // One in 25 is terminated as soon as it starts, so that a run always has one to settle.
    const drawn = random() < 1 / 30 ? Math.floor(random() * 8000) : undefined;
    const terminateAfterMs = i % 25 === 12 ? 0 : drawn;
    const viaApi =
      random() < 0.35
        ? {
            retriesAfterMs: Array.from({ length: 1 + Math.floor(random() * 2) }, () =>
              Math.floor(random() * 5000),
            ),
            firstTimeoutMs: random() < 0.5 ? 50 + Math.floor(random() * 1500) : undefined,
          }
        : undefined;
    return { kind, details, cancelAfterMs, duplicatesAfterMs, terminateAfterMs, viaApi };
  });
}

/** A disruption of the infrastructure, run once the share `atFraction` of the plans has started. */
export interface Disruption {
  atFraction: number;
  /** Counts it in the result, e.g. 'history'. */
  name: string;
  run: () => Promise<void>;
}

export interface Scenario {
  plans: Plan[];
  address: string;
  /** The bank every worker shares: a SQLite file, or a PostgreSQL url. */
  bankDb: string;
  taskQueue: string;
  workerEnv: Record<string, string>;
  /** Worker processes polling the task queue at once (1 unless given). */
  workers?: number;
  /** The network namespace (test host) of each worker slot's processes; this one's when none. */
  workerNetns?: (slot: number) => string | undefined;
  kills: number;
  /** The pause before each kill is drawn from this range, in ms. */
  killGapMs: [number, number];
  /**
   * Run in turn while the transfers start; starting waits while one runs, so nothing is
   * started into a service that is down on purpose.
   */
  infrastructure?: Disruption[];
  random: () => number;
  /** How long to wait for every transfer to close. */
  deadlineMs: number;
  /** Runs alongside the transfers from the first start until all closed; its failure ends the run. */
  alongside?: (run: Run) => Promise<void>;
  /** The HTTP API, for the plans with `viaApi`; restarted once halfway through the starts. */
  api?: ApiDoor;
}

export interface ScenarioResult {
  closed: Closed[];
  kills: number;
  /** Bank faults the workers injected, from their output. */
  faults: number;
  /** The same, by kind: fail, post-then-fail, late, reject. */
  faultsByKind: Map<string, number>;
  /** The same, by worker slot (a slot's processes before and after each kill): a slot with none did no bank work. */
  faultsBySlot: number[];
  /** Lines of the workers' stderr that report a busy SQLite database. */
  busy: number;
  /** How many times each disruption ran, by name. */
  disruptions: Map<string, number>;
  /** Worker processes that exited without being killed on purpose, with the end of their stderr. */
  unplannedExits: string[];
  /** What the POSTs met, when the run had the API. */
  api?: ApiFacts;
}

type Started = Plan & {
  copy: number;
  handle: WorkflowHandle<typeof moneyTransfer>;
  cancelled?: Promise<void>;
  /** Resolves once it was terminated and the settling run began (true), or it ended first (false). */
  terminated?: Promise<boolean>;
};

/** What a scenario's `alongside` sees: the transfers started so far, and whether all closed. */
export interface Run {
  client: Client;
  started: readonly Started[];
  over: () => boolean;
}

/** A worker just killed, or a service restarting, answers no query for a while: ask again. */
async function stageOf(handle: WorkflowHandle<typeof moneyTransfer>): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await handle.query(getStatus)).stage;
    } catch (err) {
      if (attempt >= 10) return `unknown (query failed: ${(err as Error).message})`;
      await sleep(2000);
    }
  }
}

/**
 * A call that may land while a service restarts, beyond the client's own retries: tried
 * again for about a minute. `settled` turns an error that means it already happened
 * (its first answer lost) into its result; any other error is tried again.
 */
async function persist<T>(call: () => Promise<T>, settled: (err: unknown) => T | undefined): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      const result = settled(err);
      if (result !== undefined) return result;
      if (attempt >= 12) throw err;
      await sleep(5000);
    }
  }
}

/**
 * Terminates a transfer as an operator would, then settles it the documented way, with
 * `npm run review -- settle` (which waits for the settling run, or for it to park for
 * review, where the desk's operator finds it). False if the transfer ended first. Tried
 * again while a service restarts.
 */
async function terminateAndSettle(client: Client, s: Scenario, workflowId: string): Promise<boolean> {
  const handle = client.workflow.getHandle(workflowId);
  await persist(
    () => handle.terminate('the property test terminates it').then(() => true),
    (err) => (err instanceof WorkflowNotFoundError ? true : undefined),
  );
  // Terminated by this call, or by an earlier try whose answer was lost; or it had ended.
  const run = await persist(
    () => handle.describe(),
    () => undefined,
  );
  if (run.status.name !== 'TERMINATED') return false;
  for (let attempt = 1; ; attempt++) {
    const cli = new ScriptProcess(
      'src/review-cli.js',
      ['settle', workflowId, '--operator', 'property-test', '--note', 'terminated at a random moment'],
      { TEMPORAL_ADDRESS: s.address, TEMPORAL_TASK_QUEUE: s.taskQueue },
    );
    const { code } = await cli.exited;
    // An earlier try's settling run may be going on, or done, with its answer lost.
    if (code === 0 || /waits for review|Nothing to settle|puts back its own money/.test(cli.stderr))
      return true;
    if (attempt >= 12) {
      throw new Error(`npm run review -- settle ${workflowId} failed (${code}): ${cli.stderr.slice(-600)}`);
    }
    await sleep(5000);
  }
}

/** Runs the plans with W workers, a killer loop, disruptions and cancels, and returns each transfer's end. */
export async function runScenario(s: Scenario): Promise<ScenarioResult> {
  for (const d of s.infrastructure ?? [])
    if (!(d.atFraction >= 0 && d.atFraction < 1))
      throw new Error(`disruption ${d.name}: atFraction must be in [0, 1), got ${d.atFraction}`);
  const connection = await Connection.connect({ address: s.address });
  const client = new Client({ connection });
  const env = {
    TEMPORAL_ADDRESS: s.address,
    TEMPORAL_TASK_QUEUE: s.taskQueue,
    BANK_DB: s.bankDb,
    // The workflow bundle the test setup built from src/, never lib/'s release bundle.
    DEV_WORKFLOW_BUNDLE: process.env.MONEY_TRANSFER_TEST_BUNDLE,
    ...s.workerEnv,
  };
  const everyProcess: Array<{ slot: number; worker: ScriptProcess }> = [];
  // The processes this run killed on purpose; any other that exits died by itself.
  const killedOnPurpose = new Set<ScriptProcess>();
  // A worker may fail to start while a service restarts: it says why and exits; try again.
  const startWorker = async (slot: number) => {
    for (let attempt = 1; ; attempt++) {
      const worker = new ScriptProcess('src/worker.js', [], env, s.workerNetns?.(slot));
      everyProcess.push({ slot, worker });
      try {
        await worker.waitFor('Worker polling', 60_000);
        return worker;
      } catch (err) {
        killedOnPurpose.add(worker);
        worker.child.kill('SIGKILL');
        await worker.exited;
        if (attempt >= 5) throw err;
        await sleep(2000);
      }
    }
  };
  const workers = await Promise.all(Array.from({ length: s.workers ?? 1 }, (_, slot) => startWorker(slot)));
  let kills = 0;
  let over = false;
  const disruptions = new Map<string, number>();
  const started: Started[] = [];
  const alongside = s.alongside?.({ client, started, over: () => over });
  // Fails the run as soon as `alongside` fails, rather than at the deadline.
  const alongsideFailed = new Promise<never>((_, reject) => void alongside?.catch(reject));
  alongsideFailed.catch(() => undefined);
  try {
    let starting = true;
    const killer = (async () => {
      while (starting || kills < s.kills) {
        await sleep(s.killGapMs[0] + s.random() * (s.killGapMs[1] - s.killGapMs[0]));
        // One worker draws nothing, so a one-worker run's kill gaps are the draws they always were.
        const i = workers.length === 1 ? 0 : Math.floor(s.random() * workers.length);
        killedOnPurpose.add(workers[i]!);
        workers[i]!.child.kill('SIGKILL');
        await workers[i]!.exited;
        kills++;
        workers[i] = await startWorker(i);
      }
    })();
    // Cancels and duplicates run on timers of their own, so they may meet a restart.
    const startOnce = (workflowId: string, details: PaymentDetails) =>
      persist(
        () =>
          client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
            taskQueue: s.taskQueue,
            workflowId,
            args: [details],
          }),
        (err) =>
          err instanceof WorkflowExecutionAlreadyStartedError
            ? client.workflow.getHandle<typeof moneyTransfer>(workflowId)
            : undefined,
      );
    // The first submission: started by the client, or POSTed to the API and POSTed again.
    const startFirst = async (i: number, plan: Plan) => {
      const { api } = s;
      if (!plan.viaApi || !api) return startOnce(`${s.taskQueue}-${i}`, plan.details);
      const key = `${s.taskQueue}-${i}`;
      api.facts.payments++;
      for (const ms of plan.viaApi.retriesAfterMs) {
        following.push(sleep(ms).then(() => api.post(plan.details, key)));
      }
      await api.post(plan.details, key, plan.viaApi.firstTimeoutMs);
      return client.workflow.getHandle<typeof moneyTransfer>(api.transferId(key));
    };
    const pending = [...(s.infrastructure ?? [])].sort((a, b) => a.atFraction - b.atFraction);
    const duplicates: Array<Promise<void>> = [];
    const following: Array<Promise<void>> = [];
    for (const [i, plan] of s.plans.entries()) {
      while (pending.length > 0 && i >= Math.floor(pending[0]!.atFraction * s.plans.length)) {
        const disruption = pending.shift()!;
        await disruption.run();
        disruptions.set(disruption.name, (disruptions.get(disruption.name) ?? 0) + 1);
      }
      if (s.api && i === Math.floor(s.plans.length / 2)) await s.api.restart();
      const first = startFirst(i, plan);
      // A payment through the API is followed once its first POST has its answer.
      const follow = first.then((handle) => {
        // A cancel that comes after the end finds nothing to cancel.
        const cancelled =
          plan.cancelAfterMs === undefined
            ? undefined
            : sleep(plan.cancelAfterMs).then(() =>
                persist(
                  () => handle.cancel().then(() => true),
                  (err) => (err instanceof WorkflowNotFoundError ? true : undefined),
                ).then(() => undefined),
              );
        const terminated =
          plan.terminateAfterMs === undefined
            ? undefined
            : sleep(plan.terminateAfterMs).then(() => terminateAndSettle(client, s, handle.workflowId));
        started.push({ ...plan, copy: 0, handle, cancelled, terminated });
      });
      if (plan.viaApi && s.api) following.push(follow);
      else await follow;
      // A duplicate submission: the same payment under another workflow id, as a client
      // that retries with a new id would send it.
      for (const [k, delayMs] of (plan.duplicatesAfterMs ?? []).entries()) {
        duplicates.push(
          sleep(delayMs).then(async () => {
            const twin = await startOnce(`${s.taskQueue}-${i}-dup${k + 1}`, plan.details);
            started.push({ ...plan, copy: k + 1, handle: twin });
          }),
        );
      }
      await sleep(50);
    }
    await Promise.all(duplicates);
    // Retries may be pushed while their first POSTs go on: wait until none is added.
    for (let n = 0; n < following.length; n = following.length) await Promise.all(following);
    starting = false;
    await killer;

    // Whatever is still open at the deadline is reported with its stage, not waited for.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'open'>(
      (resolve) => (timer = setTimeout(() => resolve('open'), s.deadlineMs)),
    );
    const everyEnd = Promise.all(
      started.map(async ({ handle, cancelled, terminated, ...plan }): Promise<Closed> => {
        await cancelled;
        // A terminated transfer ends with its settling run: the newest under its id.
        const settling = await terminated;
        const ending = settling ? client.workflow.getHandle<typeof moneyTransfer>(handle.workflowId) : handle;
        const outcome = await Promise.race([
          ending.result().then(
            (result) => ({ result, error: undefined }),
            (error: unknown) => ({ result: undefined, error }),
          ),
          deadline,
        ]);
        const stage = await stageOf(handle);
        const { workflowId } = handle;
        if (outcome === 'open') return { ...plan, workflowId, end: 'open', stage };
        const { result, error } = outcome;
        const end: End = settling
          ? 'terminated'
          : error === undefined
            ? 'completed'
            : error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure
              ? 'cancelled'
              : 'failed';
        return { ...plan, workflowId, result, end, stage, error };
      }),
    );
    const closed = await Promise.race([everyEnd, alongsideFailed]);
    clearTimeout(timer);
    over = true;
    await alongside;
    const lines = (pattern: RegExp, slot?: number) =>
      everyProcess
        .filter((p) => slot === undefined || p.slot === slot)
        .reduce((n, p) => n + (p.worker.stderr.match(pattern)?.length ?? 0), 0);
    const faultLine = /^Bank fault injected:/gm;
    return {
      closed,
      kills,
      faults: lines(faultLine),
      faultsByKind: tally(
        everyProcess.flatMap((p) =>
          [...p.worker.stderr.matchAll(/^Bank fault injected: (\S+) on /gm)].map((m) => m[1]!),
        ),
      ),
      faultsBySlot: workers.map((_, slot) => lines(faultLine, slot)),
      busy: lines(/^.*(?:SQLITE_BUSY|database is locked).*$/gm),
      disruptions,
      unplannedExits: everyProcess
        .filter(
          ({ worker }) =>
            !killedOnPurpose.has(worker) &&
            (worker.child.exitCode !== null || worker.child.signalCode !== null),
        )
        .map(
          ({ slot, worker }) =>
            `worker ${slot} exited ${worker.child.exitCode}: ${worker.stderr.slice(-600)}`,
        ),
      api: s.api?.facts,
    };
  } finally {
    over = true;
    await alongside?.catch(() => undefined);
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await connection.close();
  }
}

/**
 * The money rule, checked against the ledger for every payment and every execution of it.
 * A payment may run under several workflow ids (duplicate submissions); the ledger's
 * entries and voids of its references all belong to one owner, one of them. Completed
 * means exactly one debit of its amount from the source (withdrawal reference) and one
 * credit to the target (deposit reference), by the one execution that completed and
 * reports those ids. Otherwise, net zero over all of its references: nothing, or the
 * withdrawal and one refund round (`-refund`, `-refund-2`, ...) into the source or an
 * account an operator named with `refundTo`, never the target. Every execution that is
 * not the owner failed with TransferAlreadyOwnedError, or was cancelled before it reached
 * the bank. Every ledger entry belongs to a payment, each stage matches its end, no
 * reference was both voided and posted, and money is conserved over all accounts.
 */
export function checkTheMoney(
  closed: Closed[],
  entries: LedgerEntry[],
  voided: VoidRecord[],
  balances: Map<string, number>,
  /** The accounts an operator sent each transfer's refund to, by reference id. */
  refundedTo: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
) {
  // No transfer may be left open, least of all without a visible stage.
  const open = closed.filter((t) => t.end === 'open').map((t) => `${t.workflowId}: ${t.stage}`);
  expect(open).toEqual([]);
  // A payment's references: its id, then -withdrawal, -deposit, -refund or -refund-N.
  // Parsed whole, so that p1-1's entries never include p1-10's.
  const idOf = (reference: string) =>
    /^(.+)-(?:withdrawal|deposit|refund(?:-[2-9]|-[1-9]\d+)?)$/.exec(reference)?.[1];
  const executions = new Map<string, Closed[]>();
  for (const t of closed)
    executions.set(t.details.referenceId, [...(executions.get(t.details.referenceId) ?? []), t]);
  const byPayment = new Map<string, LedgerEntry[]>();
  const strays: string[] = [];
  for (const e of entries) {
    const id = idOf(e.reference);
    if (id === undefined || !executions.has(id)) strays.push(e.reference);
    else byPayment.set(id, [...(byPayment.get(id) ?? []), e]);
  }
  expect(strays).toEqual([]);
  const voidOwners = new Map<string, Set<string>>();
  for (const v of voided) {
    const id = idOf(v.reference);
    if (id !== undefined) voidOwners.set(id, new Set([...(voidOwners.get(id) ?? []), v.owner]));
  }
  for (const [referenceId, twins] of executions) {
    const { sourceAccount, targetAccount, amount } = twins[0]!.details;
    const refs = referencesFor(referenceId);
    const mine = byPayment.get(referenceId) ?? [];
    const owners = [...new Set([...mine.map((e) => e.owner), ...(voidOwners.get(referenceId) ?? [])])];
    const seen = {
      ref: referenceId,
      ends: twins.map((t) => [t.workflowId, t.end, t.stage, t.end === 'failed' ? failureType(t) : '']),
      owners,
      entries: mine.map((e) => [e.reference, e.account, e.amount]),
    };
    // One owner at most, and it is one of the payment's executions.
    expect({
      ...seen,
      owners: owners.length <= 1 && owners.every((o) => twins.some((t) => t.workflowId === o)),
    }).toEqual({
      ...seen,
      owners: true,
    });
    for (const t of twins) {
      // A terminated transfer's stage is its settling run's, which completes.
      const stage = t.end === 'terminated' ? 'completed' : t.end;
      expect({ ...seen, stage: [t.workflowId, t.stage] }).toEqual({ ...seen, stage: [t.workflowId, stage] });
      if (owners[0] !== undefined && t.workflowId !== owners[0] && t.end === 'terminated') {
        expect({ ...seen, twin: [t.workflowId, t.result] }).toEqual({
          ...seen,
          twin: [t.workflowId, expect.stringMatching(/another transfer owns this payment|no money moved/)],
        });
      } else if (owners[0] !== undefined && t.workflowId !== owners[0] && t.end !== 'cancelled') {
        expect({ ...seen, twin: [t.workflowId, failureType(t)] }).toEqual({
          ...seen,
          twin: [t.workflowId, 'TransferAlreadyOwnedError'],
        });
      }
    }
    const completed = twins.filter((t) => t.end === 'completed');
    // A settling run that found the deposit posted: the transfer's money moved in full.
    const delivered = twins.filter(
      (t) => t.end === 'terminated' && /the deposit had posted/.test(t.result ?? ''),
    );
    expect({ ...seen, completed: completed.length + delivered.length <= 1 }).toEqual({
      ...seen,
      completed: true,
    });
    // Exactly one debit of the amount from the source, and one credit to the target.
    const movedInFull = () =>
      expect(seen).toEqual({
        ...seen,
        entries: [
          [refs.withdrawal, sourceAccount, -amount],
          [refs.deposit, targetAccount, amount],
        ],
      });
    if (delivered.length === 1) {
      movedInFull();
      const deposit = mine.find((e) => e.reference === refs.deposit)!.transactionId;
      expect({ ...seen, result: delivered[0]!.result }).toEqual({
        ...seen,
        result: expect.stringContaining(`the deposit had posted (${deposit})`),
      });
      continue;
    }
    if (completed.length === 1) {
      movedInFull();
      // The result tells the truth: the ledger's own transaction ids, reported by their owner.
      const id = (reference: string) => mine.find((e) => e.reference === reference)!.transactionId;
      expect({ ...seen, result: [completed[0]!.workflowId, completed[0]!.result] }).toEqual({
        ...seen,
        result: [
          owners[0],
          `Transfer complete (transaction IDs: ${id(refs.withdrawal)}, ${id(refs.deposit)})`,
        ],
      });
      continue;
    }
    const sum = (list: LedgerEntry[]) => list.reduce((total, e) => total + e.amount, 0);
    expect({ ...seen, net: sum(mine), target: sum(mine.filter((e) => e.account === targetAccount)) }).toEqual(
      {
        ...seen,
        net: 0,
        target: 0,
      },
    );
    if (mine.length === 0) continue;
    // Money left: it came back in one refund round, to the source or where an operator said.
    const allowed = new Set([sourceAccount, ...(refundedTo.get(referenceId) ?? [])]);
    const shape = mine.map((e) =>
      e.reference === refs.withdrawal
        ? `withdrawal from ${e.account === sourceAccount ? 'the source' : e.account}`
        : `${e.reference.slice(referenceId.length + 1).replace(/-\d+$/, '')} to ${allowed.has(e.account) ? 'the source or a chosen account' : e.account}`,
    );
    expect({ ...seen, shape }).toEqual({
      ...seen,
      shape: ['withdrawal from the source', 'refund to the source or a chosen account'],
    });
  }
  const byReference = new Set(entries.map((e) => e.reference));
  const postedAndVoided = voided.filter((v) => byReference.has(v.reference)).map((v) => v.reference);
  expect(postedAndVoided).toEqual([]);
  // Each account holds its opening balance moved by its own ledger entries, and no more.
  const fromLedger = new Map(OPENING);
  for (const e of entries) fromLedger.set(e.account, (fromLedger.get(e.account) ?? 0) + e.amount);
  expect(Object.fromEntries(balances)).toEqual(Object.fromEntries(fromLedger));
  expect(total(balances)).toBe(total(OPENING));
}

/** The failure type at the end of a failed execution's chain, e.g. TimeoutFailure or InsufficientFundsError. */
function failureType(t: Closed): string | undefined {
  let cause: unknown = (t.error as WorkflowFailedError | undefined)?.cause;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return cause instanceof Error ? ((cause as Error & { type?: string }).type ?? cause.name) : undefined;
}

/** What the clerk and the operator of the property test did. */
export interface DeskReport {
  closings: number;
  reopenings: number;
  /** Transfers the clerk closed accounts under, and how many of them parked. */
  baits: number;
  baitsParked: number;
  /** Reference ids of the transfers seen parked in `needs-review`. */
  parked: Set<string>;
  /** Updates sent, and those after which the review was over, by kind. */
  sent: { refundTo: number; retryRefund: number };
  resolved: { refundTo: number; retryRefund: number };
  /** Updates after which the transfer parked again (the refund was refused again). */
  parkedAgain: number;
  /** Updates the validator refused because the transfer was no longer in review. */
  raced: number;
  queryFailures: number;
  /** With the review CLI: `list` runs that failed, and decisions whose run failed (a service down on purpose). */
  listFailures: number;
  lostAnswers: number;
  /** Decisions sent through the API's review routes with a reviewer's token. */
  throughApi: number;
  /** Where operators sent each transfer's refund, and the last decision that ended a review. */
  refundedTo: Map<string, Set<string>>;
  endedBy: Map<string, { action: 'refundTo' | 'retryRefund'; account: string }>;
}

export interface DeskOptions {
  /** The bank the workers share (BANK_DB): a SQLite file or a PostgreSQL url. */
  bankDb: string;
  plans: readonly Plan[];
  taskQueue: string;
  random: () => number;
  parksWanted: number;
  /**
   * The operator lists and resolves through `npm run review` (lib/src/review-cli.js) as a
   * process against this server, as an operator would; otherwise through the client.
   */
  reviewCli?: { address: string };
  /** Every other decision goes through the API's review routes, as a reviewer with a token. */
  api?: ApiDoor;
}

/** An Update's answer, whichever way the operator sent it; 'lost' when the CLI failed to get one. */
type Decision = { stage: string; refundedTo?: string } | 'raced' | 'lost';

/**
 * The status once an operator's refund round is over: parked again, or ended. A query
 * that fails (a worker just killed) is asked again.
 */
async function roundOver(handle: WorkflowHandle<typeof moneyTransfer>): Promise<Decision> {
  for (const deadline = Date.now() + 300_000; Date.now() < deadline;) {
    const status = await handle.query(getStatus).catch(() => undefined);
    if (status && status.stage !== 'refunding') return status;
    await sleep(500);
  }
  return 'lost';
}

/**
 * `npm run review -- <args>` as a process (lib/src/review-cli.js). No time limit of its own:
 * an Update's answer waits for the refund round, which retries through faults and kills.
 */
async function review(address: string, args: string[]) {
  const cli = new ScriptProcess('src/review-cli.js', args, { TEMPORAL_ADDRESS: address });
  const { code } = await cli.exited;
  return { code, stdout: cli.stdout, stderr: cli.stderr };
}

/** `review retry` or `review refund-to`; its output is the status the Update left. */
async function decideWithCli(
  address: string,
  workflowId: string,
  action: 'refundTo' | 'retryRefund',
  account: string,
): Promise<Decision> {
  const run = await review(
    address,
    action === 'refundTo' ? ['refund-to', workflowId, account] : ['retry', workflowId],
  );
  if (run.code === 1 && /^Refused: This transfer is not waiting for review/m.test(run.stderr)) return 'raced';
  const stage = /^Stage: (\S+)$/m.exec(run.stdout)?.[1];
  // A service down on purpose can cost the answer; a later round sees whether it is still in review.
  if (run.code !== 0 || stage === undefined) return 'lost';
  return { stage, refundedTo: /^Refunded to: (\S+)$/m.exec(run.stdout)?.[1] };
}

/** The workflow ids `review list` prints, page after page; undefined if one failed. */
async function listWithCli(address: string): Promise<string[] | undefined> {
  const ids: string[] = [];
  for (let args = ['list']; ;) {
    const run = await review(address, args);
    if (run.code !== 0) return undefined;
    ids.push(...[...run.stdout.matchAll(/^ {2}(\S+) {2}started /gm)].map((m) => m[1]!));
    const more = /^More: npm run review -- (list .+)$/m.exec(run.stdout);
    if (!more) return ids;
    args = more[1]!.split(' ');
  }
}

/**
 * The bank's clerk and an operator, alongside the property test's transfers.
 *
 * The clerk closes one target account early, at a random moment: deposits into it are
 * refused, so its transfers go on to refund their source. It watches the ledger, and
 * when a withdrawal posts (into that target first), it closes the transfer's source too
 * (and its target, if still open): the refund is refused, and the transfer parks in
 * `needs-review`. It keeps a source closed for the operator once its transfer parked,
 * reopens every other account once no bait needs it, and stops at `parksWanted` parks.
 *
 * Every 1-2 s the operator lists the transfers in review and resolves each by an Update,
 * alternating: `refundTo` an open account from `status.review.accounts`, or `retryRefund`
 * after reopening the source, the account the first refund failed on. With `reviewCli`
 * it lists and decides through the review CLI every 2-3 s instead.
 *
 * The bank is reached through `openStore`, as the workers reach it.
 */
export function reviewDesk(options: DeskOptions): {
  report: DeskReport;
  alongside: (run: Run) => Promise<void>;
} {
  const { bankDb, plans, taskQueue, random, parksWanted, reviewCli, api } = options;
  const report: DeskReport = {
    closings: 0,
    reopenings: 0,
    baits: 0,
    baitsParked: 0,
    parked: new Set(),
    sent: { refundTo: 0, retryRefund: 0 },
    resolved: { refundTo: 0, retryRefund: 0 },
    parkedAgain: 0,
    raced: 0,
    queryFailures: 0,
    listFailures: 0,
    lostAnswers: 0,
    throughApi: 0,
    refundedTo: new Map(),
    endedBy: new Map(),
  };
  const closedNow = new Set<string>();
  /** The accounts the clerk keeps closed for the transfers it is parking. */
  const baitAccounts = new Set<string>();
  const setClosed = async (account: string, closed: boolean) => {
    const store = openStore({ BANK_DB: bankDb });
    try {
      await whileBankAway(() => store.setClosed(account, closed));
    } finally {
      await store.close();
    }
    if (closed) closedNow.add(account);
    else closedNow.delete(account);
    report[closed ? 'closings' : 'reopenings']++;
  };

  const clerk = async (run: Run) => {
    const watcher = openStore({ BANK_DB: bankDb });
    try {
      await watch(run, watcher);
    } finally {
      await watcher.close();
    }
  };

  const watch = async (run: Run, bank: BankStore) => {
    const seen = new Set<string>(); // transfers whose withdrawal the clerk saw posted
    const baits = new Map<string, { details: PaymentDetails; since: number }>();
    const mine = new Set<string>(); // accounts the clerk closed and still answers for
    let hold: { account: string; until: number } | undefined;
    const close = async (account: string) => {
      if (closedNow.has(account)) return;
      await setClosed(account, true);
      mine.add(account);
    };
    // At a random moment while the transfers start, one target closes: deposits into it
    // are refused, so its transfers go on to refund their source. It is the one that
    // most of the transfers yet to start go to.
    const moment = Math.floor(plans.length * (0.25 + 0.35 * random()));
    while (run.started.length < moment && !run.over()) await sleep(20);
    const waiting = (account: string) =>
      plans.filter((p, i) => i >= moment && p.kind === 'ok' && p.details.targetAccount === account).length;
    const most = Math.max(...FUNDED.map(waiting));
    const targets = FUNDED.filter((a) => waiting(a) === most);
    const target = targets[Math.floor(random() * targets.length)]!;
    await close(target);
    hold = { account: target, until: Date.now() + 30_000 };
    while (!run.over()) {
      await sleep(20);
      const posted = new Set((await whileBankAway(() => bank.entries())).map((e) => e.reference));
      const voided = new Set(await whileBankAway(() => voidedReferences(bank)));
      for (const [referenceId, bait] of baits) {
        const refs = referencesFor(referenceId);
        // Only a closed source refuses a refund; otherwise the refund or deposit won the race.
        const parked = voided.has(refs.refund);
        const missed = posted.has(refs.deposit) || posted.has(refs.refund);
        if (!parked && !missed && Date.now() - bait.since < 120_000) continue;
        baits.delete(referenceId);
        if (parked) {
          report.baitsParked++;
          mine.delete(bait.details.sourceAccount); // the operator decides when to reopen it
        }
      }
      const enough = Math.max(report.baitsParked, report.parked.size) >= parksWanted;
      if (hold && (enough || report.baitsParked + baits.size >= parksWanted || Date.now() > hold.until)) {
        hold = undefined; // the baits hold what they need
      }
      // Reopen what no bait needs closed any more: a source until its transfer parked,
      // a target until its deposit was refused.
      const needed = new Set(hold ? [hold.account] : []);
      for (const [referenceId, { details }] of baits) {
        const refs = referencesFor(referenceId);
        needed.add(details.sourceAccount);
        if (!voided.has(refs.deposit) && !posted.has(refs.deposit)) needed.add(details.targetAccount);
      }
      baitAccounts.clear();
      for (const account of needed) baitAccounts.add(account);
      for (const account of mine) {
        if (needed.has(account)) continue;
        mine.delete(account);
        if (closedNow.has(account)) await setClosed(account, false);
      }
      // New baits: transfers whose withdrawal just posted, into the closed target first.
      const fresh = plans.filter(
        (p) =>
          p.kind === 'ok' &&
          !seen.has(p.details.referenceId) &&
          posted.has(referencesFor(p.details.referenceId).withdrawal),
      );
      for (const p of fresh) seen.add(p.details.referenceId);
      const candidates = fresh
        .filter(({ details }) => {
          const refs = referencesFor(details.referenceId);
          return !posted.has(refs.deposit) && !posted.has(refs.refund);
        })
        .sort(
          (a, b) =>
            Number(closedNow.has(b.details.targetAccount)) - Number(closedNow.has(a.details.targetAccount)),
        );
      for (const { details } of candidates) {
        if (report.baitsParked + baits.size >= parksWanted) break;
        await close(details.targetAccount);
        await close(details.sourceAccount);
        baits.set(details.referenceId, { details, since: Date.now() });
        report.baits++;
      }
    }
  };

  /** Resolves one parked transfer; ignores only an Update that came after the review was over. */
  const resolve = async (
    handle: WorkflowHandle<typeof moneyTransfer>,
    { referenceId, sourceAccount }: PaymentDetails,
    review: NonNullable<TransferView['review']>,
  ) => {
    report.parked.add(referenceId);
    const open = review.accounts.filter((a) => !closedNow.has(a));
    const action =
      report.sent.refundTo <= report.sent.retryRefund && open.length > 0 ? 'refundTo' : 'retryRefund';
    // A retry refunds the source, which is the account it failed on unless a refundTo did.
    const account = action === 'refundTo' ? open[Math.floor(random() * open.length)]! : sourceAccount;
    if (action === 'refundTo') {
      // Recorded first: the money may move even if the Update's answer is lost.
      report.refundedTo.set(referenceId, new Set([...(report.refundedTo.get(referenceId) ?? []), account]));
    } else if (closedNow.has(account)) {
      await setClosed(account, false);
    }
    report.sent[action]++;
    let after: Decision;
    // Every other decision goes through the API's review routes, as a reviewer with a token.
    if (api && (report.sent.refundTo + report.sent.retryRefund) % 2 === 0) {
      report.throughApi++;
      const answer = await api.decide(
        handle.workflowId,
        action === 'refundTo' ? 'refund-to' : 'retry',
        action === 'refundTo' ? account : undefined,
      );
      // Taken, and the refund round goes on past the API's wait: follow it to its end.
      after = answer === 'accepted' ? await roundOver(handle) : answer;
    } else if (reviewCli) {
      after = await decideWithCli(reviewCli.address, handle.workflowId, action, account);
    } else {
      try {
        after =
          action === 'refundTo'
            ? await handle.executeUpdate(refundTo, { args: [{ account }] })
            : await handle.executeUpdate(retryRefund, { args: [{}] });
      } catch (err) {
        if (
          err instanceof WorkflowUpdateFailedError &&
          err.cause?.message.startsWith('This transfer is not waiting for review')
        ) {
          after = 'raced';
        } else {
          throw err;
        }
      }
    }
    if (after === 'raced') {
      report.raced++;
      return;
    }
    if (after === 'lost') {
      report.lostAnswers++;
      return;
    }
    if (after.stage === 'needs-review') {
      report.parkedAgain++;
      return;
    }
    // The review is over: the money went back where the operator said. A transfer ends
    // failed or cancelled then; a settling run (of a terminated one) completes.
    const terminated = plans.some(
      (p) => p.details.referenceId === referenceId && p.terminateAfterMs !== undefined,
    );
    expect({
      referenceId,
      action,
      stage: after.stage,
      refundedTo: after.refundedTo ?? sourceAccount,
    }).toEqual({
      referenceId,
      action,
      stage: expect.stringMatching(
        terminated ? /^(failed|cancelled|completed)$/ : /^(failed|cancelled)$/,
      ) as unknown,
      refundedTo: account,
    });
    report.resolved[action]++;
    report.endedBy.set(referenceId, { action, account });
    // The money is elsewhere now: the account may take transfers again, unless a bait needs it.
    if (closedNow.has(review.failedAccount) && !baitAccounts.has(review.failedAccount)) {
      await setClosed(review.failedAccount, false);
    }
  };

  /** The workflow ids the operator finds in review this round; SQL visibility lags, so later rounds catch up. */
  const inReview = async (run: Run): Promise<string[]> => {
    if (reviewCli) {
      const ids = await listWithCli(reviewCli.address);
      if (ids === undefined) report.listFailures++;
      return ids ?? [];
    }
    const query = `TransferStatus = 'needs-review' AND TaskQueue = '${taskQueue}'`;
    const ids: string[] = [];
    for await (const { workflowId } of run.client.workflow.list({ query })) ids.push(workflowId);
    return ids;
  };

  const operator = async (run: Run) => {
    const working = new Map<string, Promise<void>>();
    const failures: unknown[] = [];
    try {
      while (!run.over() && failures.length === 0) {
        await sleep(reviewCli ? 2000 + random() * 1000 : 1000 + random() * 1000);
        for (const workflowId of await inReview(run)) {
          if (working.has(workflowId)) continue;
          // `review list` shows the whole namespace: only this run's transfers are ours.
          const transfer = run.started.find((t) => t.handle.workflowId === workflowId);
          if (!transfer) continue;
          const handle = run.client.workflow.getHandle<typeof moneyTransfer>(workflowId);
          let status: TransferView;
          try {
            status = await handle.query(getStatus);
          } catch {
            report.queryFailures++; // a worker just killed: the next round asks again
            continue;
          }
          if (status.stage !== 'needs-review' || !status.review) continue; // the list lags behind
          working.set(
            workflowId,
            resolve(handle, transfer.details, status.review)
              .catch((err: unknown) => void failures.push(err))
              .finally(() => working.delete(workflowId)),
          );
        }
      }
    } finally {
      await Promise.all(working.values());
    }
    if (failures.length > 0) throw failures[0];
  };

  return {
    report,
    alongside: async (run) => void (await Promise.all([clerk(run), operator(run)])),
  };
}

/** Creates the bank at `bankDb` (a SQLite file or a PostgreSQL url) with the OPENING accounts. */
export async function createBank(bankDb: string): Promise<void> {
  if (isPostgresUrl(bankDb)) {
    const store = new PgStore(bankDb, OPENING);
    try {
      await store.ready(); // the schema and the opening balances are laid once the store is ready
    } finally {
      await store.close();
    }
    return;
  }
  await new SqliteStore(bankDb, OPENING).close();
}

/**
 * Runs a read or write of the clerk's again while the bank's database is away (a
 * disruption crashed it), as the workers' calls do, for up to a minute.
 */
async function whileBankAway<T>(fn: () => Promise<T>): Promise<T> {
  const giveUpAt = Date.now() + 60_000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof BankUnavailableError) || Date.now() > giveUpAt) throw err;
      await sleep(500);
    }
  }
}

/** `npm run reconcile -- --json` on the run's bank and server, as an operator runs it. */
export async function reconcileWithCli(address: string, bankDb: string): Promise<Reconciliation> {
  const cli = new ScriptProcess('src/reconcile.js', ['--json'], {
    TEMPORAL_ADDRESS: address,
    BANK_DB: bankDb,
  });
  const { code } = await cli.exited;
  if (code !== 0 && code !== 1)
    throw new Error(`npm run reconcile failed (${code}): ${cli.stderr.slice(-600)}`);
  return JSON.parse(cli.stdout) as Reconciliation;
}

/** The ledger, the voids and the balances, read through `openStore` as the workers read them. */
export async function readBank(bankDb: string) {
  const store = openStore({ BANK_DB: bankDb });
  try {
    return { entries: await store.entries(), voided: await store.voided(), balances: await store.balances() };
  } finally {
    await store.close();
  }
}

/** Why a transfer failed: the activity and the failure type, e.g. withdraw TimeoutFailure. */
export function reason(t: Closed): string {
  if (t.end !== 'failed') return t.end;
  const failure = (t.error as WorkflowFailedError).cause;
  const cause = failure?.cause as (Error & { type?: string }) | undefined;
  const activity = (failure as { activityType?: string } | undefined)?.activityType ?? '?';
  return `${activity} ${cause?.type ?? cause?.name ?? failure?.name}`;
}

function tally<T extends string>(items: T[]): Map<T, number> {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

export function count<T extends string>(items: T[]): string {
  return [...tally(items)].map(([k, n]) => `${n} ${k}`).join(', ');
}

/**
 * The middle of a property run's line: executions and their ends, faults, kills and
 * cancels, what the desk did, and the money.
 */
export function summary(
  plans: readonly Plan[],
  { closed, kills, faults, api }: ScenarioResult,
  report: DeskReport,
  balances: ReadonlyMap<string, number>,
): string {
  return (
    `${plans.length} payments, ${closed.length} executions ` +
    `(${closed.length - plans.length} duplicate submissions, ${closed.filter((t) => t.copy > 0 && t.end === 'completed').length} of them completed in place of the first): ` +
    `${count(closed.map(reason))}; ` +
    `${faults} faults injected, ${kills} SIGKILLs, ${plans.filter((p) => p.cancelAfterMs !== undefined).length} cancels; ` +
    (api ? `${apiLine(api)}; ` : '') +
    `accounts closed ${report.closings} times, reopened ${report.reopenings} (${report.baitsParked} of ${report.baits} baits parked); ` +
    `${report.parked.size} transfers parked, resolved by refundTo ${report.resolved.refundTo}, retryRefund ${report.resolved.retryRefund}` +
    `, ${report.throughApi} decisions through the API's review routes` +
    ` (${report.parkedAgain} parked again, ${report.raced} updates too late, ${report.queryFailures} queries failed); ` +
    `money before ${total(OPENING)}, after ${total(balances)}`
  );
}

/** What the POSTs through the API met, for a run's line. */
export function apiLine(api: ApiFacts): string {
  const answers = [...api.answers]
    .sort()
    .map(([answer, n]) => `${n} × ${answer}`)
    .join(', ');
  return `${api.payments} through the HTTP API in ${api.posts} POSTs (${answers}), the API SIGKILLed ${api.restarts} time(s)`;
}

/**
 * What a property run must show: the kills happened, faults were injected, nothing the
 * bank must refuse or that parked completed, the money rule, and each review ended where
 * its Update said. A `large` run must also have met each kind of fault that leaves the
 * outcome unknown or failed, parked transfers, and had both kinds of Update end one.
 */
export function checkTheRun(
  result: ScenarioResult,
  report: DeskReport,
  bank: Awaited<ReturnType<typeof readBank>>,
  books: Reconciliation,
  wanted: { kills: number; large: boolean },
): void {
  expect(result.kills).toBeGreaterThanOrEqual(wanted.kills);
  expect(result.faults).toBeGreaterThan(0);
  // No worker died by itself: not of a bank fault, nor of its database going away.
  expect(result.unplannedExits).toEqual([]);
  // Every POST of a payment named its one transfer; retries never made a second.
  expect(result.api?.wrong ?? []).toEqual([]);
  // A customer sees the bank's reasons, never the database driver's class.
  const driverTypes = result.closed
    .flatMap((t) => failureTypes(t.error))
    .filter((t) => /DatabaseError/.test(t));
  expect(driverTypes).toEqual([]);
  if (wanted.large && result.api) {
    // Payments went through the API, with retried POSTs, across a restart of the API.
    expect(result.api.payments).toBeGreaterThan(0);
    expect(result.api.posts).toBeGreaterThan(result.api.payments);
    expect(result.api.restarts).toBeGreaterThanOrEqual(1);
    expect(report.throughApi).toBeGreaterThan(0);
  }
  if (wanted.large) {
    // Each way a bank call goes wrong, beyond a refusal, came up: failed before posting,
    // posted with its reply lost, and posted after the activity had timed out.
    const kinds = FAULT_KINDS.filter((k) => k !== 'reject');
    expect(kinds.filter((k) => !result.faultsByKind.has(k))).toEqual([]);
  }
  checkTheMoney(result.closed, bank.entries, bank.voided, bank.balances, report.refundedTo);
  // The books agree, as `npm run reconcile` sees them: every transfer closed, and each
  // terminated one settled.
  const ours = new Set(result.closed.map((t) => t.workflowId));
  const mine = (group: Finding[]) => group.filter((f) => ours.has(f.workflowId));
  expect({
    stranded: books.stranded,
    orphans: books.orphans,
    inFlight: books.inFlight,
    reviews: mine(books.reviews),
  }).toEqual({ stranded: [], orphans: [], inFlight: [], reviews: [] });
  const terminated = result.closed.filter((t) => t.end === 'terminated').map((t) => t.workflowId);
  if (result.closed.filter((t) => t.copy === 0).length > 12) expect(terminated.length).toBeGreaterThan(0);
  // Reconcile walks the ledger's owners: a terminated transfer that posted nothing has no line.
  const owners = new Set(bank.entries.map((e) => e.owner));
  expect(
    mine(books.settled)
      .map((f) => f.workflowId)
      .sort(),
  ).toEqual(terminated.filter((id) => owners.has(id)).sort());
  for (const t of result.closed)
    if (t.kind !== 'ok' || report.parked.has(t.details.referenceId))
      expect({ ref: t.details.referenceId, end: t.end }).not.toEqual({
        ref: t.details.referenceId,
        end: 'completed',
      });
  // Each review that an Update ended put the money where that Update said: the refund
  // into the named account, or a new refund round into the source.
  for (const [referenceId, { action, account }] of report.endedBy) {
    const refund = bank.entries.find((e) => e.reference.startsWith(`${referenceId}-refund`));
    expect({ referenceId, action, refund: refund && [refund.reference, refund.account] }).toEqual({
      referenceId,
      action,
      refund: [expect.stringMatching(new RegExp(`^${referenceId}-refund-\\d+$`)), account],
    });
  }
  // The test must be able to fail: transfers did park, and both kinds of Update resolved one.
  if (wanted.large) {
    expect({
      parked: report.parked.size > 0,
      refundTo: report.resolved.refundTo > 0,
      retryRefund: report.resolved.retryRefund > 0,
    }).toEqual({ parked: true, refundTo: true, retryRefund: true });
  }
}

/** The `type` of every ApplicationFailure in an error's cause chain. */
function failureTypes(err: unknown): string[] {
  const types: string[] = [];
  for (let e = err as { type?: unknown; cause?: unknown } | undefined; e; e = e.cause as typeof e)
    if (typeof e.type === 'string') types.push(e.type);
  return types;
}
