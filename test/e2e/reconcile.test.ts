// The books agree: transfers terminated at each stage, `npm run reconcile` finding exactly
// those that left money out, `npm run review -- settle` putting it back, and the starter
// following a transfer across a reset. A PostgreSQL bank this file starts, shared by the
// worker in this process and the commands, as in production.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { createActivities } from '../../src/activities';
import { BankingService, type CallOptions } from '../../src/bank/banking-service';
import { MemoryStore, PgStore } from '../../src/bank/store';
import {
  getStatus,
  InvalidAccountError,
  type PaymentDetails,
  transferStartOptions,
} from '../../src/contract';
import { booksAgree, reconcile, type Reconciliation } from '../../src/reconcile';
import type { moneyTransfer } from '../../src/workflows';
import { startPostgres, type Postgres } from '../../tools/cluster/postgres';
import { sample, samplePattern } from '../support/readme-samples';
import { runScript, sleep, testServer, testWorker, uniqueId, useTestTemporal } from '../support/helpers';

jest.setTimeout(180_000);

const temporal = useTestTemporal();

const OPENING = new Map([
  ['A-1', 10_000], // the source of most transfers
  ['B-1', 0], // their target
  ['R-1', 1000], // a source closed under its transfer, which parks for review
  ['R-2', 1000], // another, resolved manually
]);

/** What a bank call does instead of posting plainly: `post` posts it. */
type Hook = (post: () => Promise<string>, call: CallOptions) => Promise<string>;

/**
 * A bank whose calls under chosen references run a hook (hang, fail, close an account)
 * when a transfer's own run makes them; an operator's settling run gets the plain bank.
 */
class ScriptedBank extends BankingService {
  readonly hooks = new Map<string, Hook>();
  /** The references whose hook a call has reached. */
  readonly reached = new Set<string>();

  override withdraw(account: string, amount: number, reference: string, call: CallOptions = {}) {
    return this.run(reference, call, () => super.withdraw(account, amount, reference, call));
  }

  override deposit(account: string, amount: number, reference: string, call: CallOptions = {}) {
    return this.run(reference, call, () => super.deposit(account, amount, reference, call));
  }

  override refund(account: string, amount: number, reference: string, call: CallOptions = {}) {
    return this.run(reference, call, () => super.refund(account, amount, reference, call));
  }

  private run(reference: string, call: CallOptions, post: () => Promise<string>): Promise<string> {
    const hook = this.hooks.get(reference);
    if (!hook || Context.current().info.workflowType === 'settleStrandedTransfer') return post();
    this.reached.add(reference);
    return hook(post, call);
  }
}

/** Waits until the activity is given up on (its run was terminated), then fails the call. */
const hang = (call: CallOptions): Promise<never> =>
  new Promise((_, reject) => call.signal?.addEventListener('abort', () => reject(new Error('given up'))));
const hangBefore: Hook = (_post, call) => hang(call);
const hangAfter: Hook = async (post, call) => {
  await post();
  return hang(call);
};

let dataDir: string;
let postgres: Postgres;
let bankDb: string;
let store: PgStore;
let bank: ScriptedBank;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'money-transfer-reconcile-'));
  postgres = await startPostgres({ dataDir });
  bankDb = await postgres.createDatabase('reconcile');
  store = new PgStore(bankDb, OPENING);
  bank = new ScriptedBank('bank', { store });
}, 60_000);

afterAll(async () => {
  await store?.close();
  await postgres?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const env = (taskQueue: string) => ({
  TEMPORAL_ADDRESS: testServer().address,
  TEMPORAL_TASK_QUEUE: taskQueue,
  BANK_DB: bankDb,
});

/** A transfer of 100 under its own reference and workflow id, named after its scenario. */
function payment(name: string, overrides: Partial<PaymentDetails> = {}) {
  const referenceId = uniqueId(name);
  return {
    workflowId: `wf-${referenceId}`,
    details: { sourceAccount: 'A-1', targetAccount: 'B-1', amount: 100, referenceId, ...overrides },
  };
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * A sample of docs/operations.md as a pattern: the scenarios' ids, times, ports, run ids
 * and transaction ids vary from run to run.
 */
function docSample(name: string): RegExp {
  const source = samplePattern(sample(name))
    .source.replace(
      /\b(validating|withdrawing|withdrawn|depositing|deposited|refunding|review|resolved)-[\w-]{10}/g,
      '$1-[\\w-]{10}',
    )
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\\\.\d{3}Z/g, '\\S+')
    .replace(/127\\\.0\\\.0\\\.1:\d+/g, '127\\.0\\.0\\.1:\\d+');
  return new RegExp(source);
}

const ids = (group: Reconciliation['stranded']) => group.map((f) => f.workflowId).sort();

test('terminated at each stage: reconcile finds exactly those that left money out, and settling each makes the books agree', async () => {
  const taskQueue = uniqueId('reconcile');
  const { client, workerConnection } = temporal();
  const worker = await testWorker(workerConnection, taskQueue, createActivities(bank));
  const start = (
    p: ReturnType<typeof payment>,
    queue = taskQueue,
  ): Promise<WorkflowHandle<typeof moneyTransfer>> =>
    client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
      taskQueue: queue,
      workflowId: p.workflowId,
      args: [p.details],
      ...transferStartOptions(),
    });
  const refs = (p: ReturnType<typeof payment>) => ({
    withdrawal: `${p.details.referenceId}-withdrawal`,
    deposit: `${p.details.referenceId}-deposit`,
    refund: `${p.details.referenceId}-refund`,
  });
  const refuseDeposit =
    (closeSource?: string): Hook =>
    async () => {
      if (closeSource) await store.setClosed(closeSource, true);
      throw new InvalidAccountError('The account number B-1 is invalid (this test says so).');
    };

  const s = {
    validating: payment('validating'),
    withdrawing: payment('withdrawing'),
    withdrawn: payment('withdrawn'), // the withdrawal posted; its reply never came back
    depositing: payment('depositing'),
    deposited: payment('deposited'), // the deposit posted; its reply never came back
    refunding: payment('refunding'),
    review: payment('review', { sourceAccount: 'R-1' }),
    resolved: payment('resolved', { sourceAccount: 'R-2' }),
    completed: payment('completed'),
  };
  bank.hooks.set(refs(s.withdrawing).withdrawal, hangBefore);
  bank.hooks.set(refs(s.withdrawn).withdrawal, hangAfter);
  bank.hooks.set(refs(s.depositing).deposit, hangBefore);
  bank.hooks.set(refs(s.deposited).deposit, hangAfter);
  bank.hooks.set(refs(s.refunding).deposit, refuseDeposit());
  bank.hooks.set(refs(s.refunding).refund, hangBefore);
  bank.hooks.set(refs(s.review).deposit, refuseDeposit('R-1'));
  bank.hooks.set(refs(s.resolved).deposit, refuseDeposit('R-2'));

  await worker.runUntil(async () => {
    // No worker polls this queue: the transfer stays in validating.
    const handles = {
      validating: await start(s.validating, uniqueId('nobody')),
      withdrawing: await start(s.withdrawing),
      withdrawn: await start(s.withdrawn),
      depositing: await start(s.depositing),
      deposited: await start(s.deposited),
      refunding: await start(s.refunding),
      review: await start(s.review),
      resolved: await start(s.resolved),
    };
    await start(s.completed).then((h) => h.result());
    for (const name of ['withdrawing', 'withdrawn', 'depositing', 'deposited'] as const) {
      const ref = name.startsWith('withdraw') ? refs(s[name]).withdrawal : refs(s[name]).deposit;
      await until(`${name} to reach the bank`, () => bank.reached.has(ref));
    }
    await until('refunding to reach its refund', () => bank.reached.has(refs(s.refunding).refund));
    for (const name of ['review', 'resolved'] as const) {
      await until(
        `${name} to park`,
        async () => (await handles[name].query(getStatus)).stage === 'needs-review',
      );
    }

    // Running: money out is in flight or waiting for review, and nothing is stranded.
    const running = await reconcile(store, client);
    expect(ids(running.inFlight)).toEqual(
      expect.arrayContaining([s.depositing.workflowId, s.refunding.workflowId]),
    );
    expect(running.inFlight.find((f) => f.workflowId === s.refunding.workflowId)).toMatchObject({
      stage: 'refunding',
      net: -100,
    });
    expect(ids(running.reviews)).toEqual(
      expect.arrayContaining([s.review.workflowId, s.resolved.workflowId]),
    );
    expect(running.stranded).toEqual([]);

    const stranding = ['withdrawn', 'depositing', 'refunding', 'review'] as const;
    for (const name of ['validating', 'withdrawing', 'deposited', ...stranding] as const) {
      await handles[name].terminate(`stranded on purpose: ${name}`);
    }
    const resolve = await runScript(
      'src/review-cli.js',
      ['resolve', s.resolved.workflowId, '--note', 'paid by cheque 118', '--operator', 'ana'],
      env(taskQueue),
    );
    expect(resolve.code).toBe(0);
    const approve = await runScript(
      'src/review-cli.js',
      ['approve', s.resolved.workflowId, '--operator', 'ben'],
      env(taskQueue),
    );
    expect(approve.code).toBe(0);
    await handles.resolved.result().catch(() => undefined);

    // The command an operator runs: exactly the four that left money out, and exit 1.
    const found = await runScript('src/reconcile.js', [], env(taskQueue));
    expect(found.code).toBe(1);
    console.log(`npm run reconcile after the terminates:\n${found.stdout}`);
    expect(found.stdout.trimEnd()).toMatch(docSample('reconcile-stranded'));
    expect(found.stdout).toContain('Stranded (closed, 400 out): 4');
    for (const name of stranding) {
      expect(found.stdout).toContain(`  ${s[name].workflowId}  TERMINATED`);
    }
    expect(found.stdout).toContain(
      `  ${s.resolved.workflowId}  -100  Resolved manually by ana, approved by ben: paid by cheque 118`,
    );
    expect(found.stdout).toContain('The books do not agree: 4 stranded, 0 orphaned.');
    const json = await runScript('src/reconcile.js', ['--json'], env(taskQueue));
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as Reconciliation;
    expect(ids(report.stranded)).toEqual(stranding.map((name) => s[name].workflowId).sort());
    expect(report.stranded.every((f) => f.net === -100 && f.status === 'TERMINATED')).toBe(true);
    expect(report.totals.stranded).toBe(400);
    expect(report.orphans).toEqual([]);

    // The operator's other views say so too.
    const show = await runScript('src/review-cli.js', ['show', s.depositing.workflowId], env(taskQueue));
    expect(show.stdout).toMatch(
      /^Execution: TERMINATED at \S+ \(moneyTransfer, run \S+\)\nThis run ended from outside/,
    );
    expect(show.stdout).toContain('Stage: depositing');
    const list = await runScript('src/review-cli.js', ['list'], env(taskQueue));
    expect(list.stdout).toContain('Closed transfers that still owe money (settle each with `settle`):');
    for (const name of stranding) expect(list.stdout).toContain(`  ${s[name].workflowId}  TERMINATED at`);
    const retry = await runScript('src/review-cli.js', ['retry', s.review.workflowId], env(taskQueue));
    expect(retry).toMatchObject({ code: 1 });
    expect(retry.stderr).toContain(`Transfer ${s.review.workflowId} is not running (TERMINATED)`);

    // Settle every terminated transfer: those that left nothing out are safe to settle too.
    await store.setClosed('R-1', false);
    const settle = (name: keyof typeof s) =>
      runScript(
        'src/review-cli.js',
        ['settle', s[name].workflowId, '--operator', 'ana', '--note', `ticket ${name}`],
        env(taskQueue),
      );
    const settled: Record<string, string> = {};
    for (const name of ['validating', 'withdrawing', 'deposited', ...stranding] as const) {
      const run = await settle(name);
      expect({ name, code: run.code, stderr: run.stderr }).toEqual({ name, code: 0, stderr: '' });
      settled[name] = run.stdout.trim().split('\n').at(-1)!;
      if (name === 'depositing') {
        console.log(`npm run review -- settle ${s[name].workflowId}:\n${run.stdout}`);
        expect(run.stdout.trimEnd()).toMatch(docSample('review-settle'));
      }
    }
    console.log(`npm run review -- settle, one line each:\n${Object.values(settled).join('\n')}`);
    expect(settled.validating).toBe(
      'Settled by ana (ticket validating): the withdrawal never posted: no money moved.',
    );
    expect(settled.withdrawing).toBe(
      'Settled by ana (ticket withdrawing): the withdrawal never posted: no money moved.',
    );
    expect(settled.deposited).toMatch(
      /^Settled by ana \(ticket deposited\): the deposit had posted \(D-\w+\): the money reached B-1\.$/,
    );
    for (const name of ['withdrawn', 'depositing', 'refunding'] as const) {
      expect(settled[name]).toMatch(
        new RegExp(`^Settled by ana \\(ticket ${name}\\): 100 is back in A-1 \\(D-\\w+\\)\\.$`),
      );
    }
    expect(settled.review).toMatch(/^Settled by ana \(ticket review\): 100 is back in R-1 \(D-\w+\)\.$/);
    // A transfer settled, completed or resolved manually is not settled again.
    const again = await settle('withdrawn');
    expect(again.stderr).toContain(`Transfer ${s.withdrawn.workflowId} was settled already (run `);
    const twice = await runScript(
      'src/review-cli.js',
      ['settle', s.resolved.workflowId, '--operator', 'ana', '--note', 'again'],
      env(taskQueue),
    );
    expect(twice.stderr).toContain('settling it would pay twice');

    const clean = await runScript('src/reconcile.js', [], env(taskQueue));
    console.log(`npm run reconcile after settling:\n${clean.stdout}`);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('Stranded (closed, 0 out): 0');
    expect(clean.stdout).toContain('The books agree');
  });

  // Each payment's postings net to zero but for the one resolved outside the bank, and the
  // money is all there: what left A-1 reached B-1 or came back.
  const entries = await store.entries();
  const net = (referenceId: string) =>
    entries.filter((e) => e.reference.startsWith(`${referenceId}-`)).reduce((sum, e) => sum + e.amount, 0);
  for (const [name, p] of Object.entries(s))
    expect({ name, net: net(p.details.referenceId) }).toEqual({ name, net: name === 'resolved' ? -100 : 0 });
  const balances = await store.balances();
  expect(Object.fromEntries(balances)).toEqual({ 'A-1': 9800, 'B-1': 200, 'R-1': 1000, 'R-2': 900 });
});

test('a posting no workflow owns is an orphan, and reconcile exits 1', async () => {
  const owner = uniqueId('ghost');
  await bank.withdraw('A-1', 5, `${owner}-withdrawal`, { owner });
  const run = await runScript('src/reconcile.js', ['--json'], env(uniqueId('unused')));
  expect(run.code).toBe(1);
  const report = JSON.parse(run.stdout) as Reconciliation;
  expect(report.orphans).toEqual([
    expect.objectContaining({
      workflowId: owner,
      net: -5,
      note: expect.stringContaining('no workflow with this id'),
    }),
  ]);
  expect(booksAgree(report)).toBe(false);
});

test('after a reset past the withdrawal, the starter follows the new run and reports the transfer completed', async () => {
  const taskQueue = uniqueId('reset');
  const p = payment('reset');
  const deposit = `${p.details.referenceId}-deposit`;
  // The first run's deposit hangs; the reset's run deposits.
  bank.hooks.set(deposit, (post, call) => {
    bank.hooks.delete(deposit);
    return hang(call);
  });
  const { client, workerConnection } = temporal();
  const worker = await testWorker(workerConnection, taskQueue, createActivities(bank));
  const run = await worker.runUntil(async () => {
    const starter = runScript(
      'src/starter.js',
      [
        '--workflow-id',
        p.workflowId,
        '--from',
        'A-1',
        '--to',
        'B-1',
        '--amount',
        '100',
        '--reference',
        p.details.referenceId,
      ],
      env(taskQueue),
    );
    await until('the deposit to hang', () => bank.reached.has(deposit));
    const { events } = await client.workflow.getHandle(p.workflowId).fetchHistory();
    const firstTask = events!.find((e) => e.workflowTaskCompletedEventAttributes)!;
    const execution = await client.workflow.getHandle(p.workflowId).describe();
    await client.workflowService.resetWorkflowExecution({
      namespace: client.options.namespace,
      workflowExecution: { workflowId: p.workflowId, runId: execution.runId },
      reason: 'reset after the withdrawal',
      workflowTaskFinishEventId: firstTask.eventId,
      requestId: randomUUID(),
    });
    return starter;
  });
  console.log(`The starter after a reset:\n${run.stdout}`);
  expect(run.stdout).toMatch(
    /The run was terminated \(reset after the withdrawal\); run \S+ \(moneyTransfer\) carries the transfer on, so the starter follows it\.\nResult: Transfer complete \(transaction IDs: W-\w+, D-\w+\)\n$/,
  );
  expect(run.code).toBe(0);
  const entries = (await store.entries()).filter((e) => e.owner === p.workflowId);
  expect(entries.map((e) => [e.reference.replace(p.details.referenceId, 'R'), e.amount]).sort()).toEqual([
    ['R-deposit', 100],
    ['R-withdrawal', -100],
  ]);
});

test('a settling run whose refund is refused parks for review, where `review list` finds it and `refund-to` ends it', async () => {
  const taskQueue = uniqueId('settle-review');
  const bank = new BankingService('bank', {
    store: new MemoryStore(
      new Map([
        ['85-150', 2000],
        ['43-812', 0],
        ['85-999', 0],
      ]),
    ),
  });
  const { client, workerConnection } = temporal();
  const p = payment('parked', { sourceAccount: '85-150', targetAccount: '43-812', amount: 250 });
  // Terminated before a worker took it, as its withdrawal posted: money out, and the source closed since.
  const policy = { remindEvery: '1 day' } as const;
  const handle = await client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
    taskQueue: uniqueId('nobody'),
    workflowId: p.workflowId,
    args: [p.details, policy],
    ...transferStartOptions(),
  });
  await handle.terminate('stranded on purpose');
  await bank.withdraw('85-150', 250, `${p.details.referenceId}-withdrawal`, { owner: p.workflowId });
  await bank.store.setClosed('85-150', true);
  const cliEnv = { TEMPORAL_ADDRESS: testServer().address, TEMPORAL_TASK_QUEUE: taskQueue };
  const worker = await testWorker(workerConnection, taskQueue, createActivities(bank));
  await worker.runUntil(async () => {
    const settle = await runScript(
      'src/review-cli.js',
      ['settle', p.workflowId, '--operator', 'ana', '--note', 'source closed since'],
      cliEnv,
    );
    expect(settle.code).toBe(1);
    expect(settle.stdout).toContain('Stage: needs-review');
    expect(settle.stdout).toContain('Refund can go to: 85-999');
    expect(settle.stderr).toContain('The settling run waits for review');
    // It waits on the transfer's own review policy, which the command passed on.
    const { events } = await client.workflow.getHandle(p.workflowId).fetchHistory();
    const sent = events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![1]!;
    expect(defaultPayloadConverter.fromPayload(sent)).toEqual({
      operator: 'ana',
      note: 'source closed since',
      policy,
    });
    await until('review list to show it', async () => {
      const list = await runScript('src/review-cli.js', ['list'], cliEnv);
      return list.stdout.includes(`  ${p.workflowId}  started `);
    });
    const decided = await runScript('src/review-cli.js', ['refund-to', p.workflowId, '85-999'], cliEnv);
    expect(decided.code).toBe(0);
    expect(decided.stdout).toMatch(/^Stage: completed$/m);
    expect(decided.stdout).toContain('Refunded to: 85-999');
    await expect(client.workflow.getHandle(p.workflowId).result()).resolves.toMatch(
      /^Settled by ana \(source closed since\): 250 is back in 85-999 \(D-\w+\)\.$/,
    );
  });
  expect(Object.fromEntries(await bank.balances())).toEqual({ '85-150': 1750, '43-812': 0, '85-999': 250 });
});

test('a starter waiting on a transfer that is terminated exits 1, saying how to reconcile and settle it', async () => {
  const taskQueue = uniqueId('terminated');
  const p = payment('terminated');
  const deposit = `${p.details.referenceId}-deposit`;
  bank.hooks.set(deposit, hangBefore);
  const { client, workerConnection } = temporal();
  const worker = await testWorker(workerConnection, taskQueue, createActivities(bank));
  const run = await worker.runUntil(async () => {
    const starter = runScript(
      'src/starter.js',
      [
        '--workflow-id',
        p.workflowId,
        '--from',
        'A-1',
        '--to',
        'B-1',
        '--amount',
        '100',
        '--reference',
        p.details.referenceId,
      ],
      env(taskQueue),
    );
    await until('the deposit to hang', () => bank.reached.has(deposit));
    await client.workflow.getHandle(p.workflowId).terminate('stopped by an operator');
    return starter;
  });
  expect(run.code).toBe(1);
  expect(run.stdout).toContain('caused by TerminatedFailure: stopped by an operator');
  expect(run.stdout).toContain(
    `Transfer ${p.workflowId} was terminated, so no run of it will put back money it withdrew. ` +
      `\`npm run reconcile\` shows whether money is out; \`npm run review -- settle ${p.workflowId} --operator NAME --note TEXT\` settles it (docs/operations.md).`,
  );
});
