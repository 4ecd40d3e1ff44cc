// `npm run review` as an operator runs it: lib/src/review-cli.js against the test server,
// with transfers parked in needs-review by a worker in this process.
import type { WorkflowHandle } from '@temporalio/client';
import { createActivities } from '../../src/activities';
import { parseFaults, UnreliableBank } from '../../src/bank/faults';
import { BankingService } from '../../src/bank/banking-service';
import type { moneyTransfer } from '../../src/workflows';
import { getStatus } from '../../src/contract';
import {
  runScript,
  useTestTemporal,
  testServer,
  testWorker,
  transferDetails,
  uniqueId,
  sleep,
} from '../support/helpers';

jest.setTimeout(90_000);

const temporal = useTestTemporal();

const review = (...args: string[]) =>
  runScript('src/review-cli.js', args, { TEMPORAL_ADDRESS: testServer().address });

test('usage: help exits 0, a bad command exits 2 with a hint', async () => {
  const help = await runScript('src/review-cli.js', ['--help'], {});
  expect(help.code).toBe(0);
  expect(help.stdout).toContain('Usage: npm run review -- <command>');
  const bad = await runScript('src/review-cli.js', ['frobnicate'], {});
  expect(bad).toMatchObject({ code: 2, stderr: "review: unknown command 'frobnicate'. Try --help.\n" });
  const missing = await runScript('src/review-cli.js', ['resolve', 'x', '--note', 'n'], {});
  expect(missing).toMatchObject({
    code: 2,
    stderr: 'review: resolve needs --note TEXT and --operator NAME. Try --help.\n',
  });
});

test('list finds exactly the parked transfers; show, retry, refund-to and resolve act on one', async () => {
  // Every refund is refused: the transfers that reach a refund park for review.
  const bank = new UnreliableBank('bank', { faults: parseFaults('deposit:reject,refund:reject') });
  const ok = new BankingService('bank');
  const prefix = uniqueId('review-cli');
  const taskQueue = uniqueId('queue');
  const okQueue = uniqueId('queue');
  const worker = await testWorker(temporal().workerConnection, taskQueue, createActivities(bank));
  const okWorker = await testWorker(temporal().workerConnection, okQueue, createActivities(ok));
  const start = (id: string, queue: string): Promise<WorkflowHandle<typeof moneyTransfer>> =>
    temporal().client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
      taskQueue: queue,
      workflowId: `${prefix}-${id}`,
      args: [transferDetails()],
    });

  await worker.runUntil(async () => {
    const parked = await Promise.all([start('a', taskQueue), start('b', taskQueue)]);
    const done = await start('done', okQueue);
    await okWorker.runUntil(done.result());
    for (const handle of parked) {
      while ((await handle.query(getStatus)).stage !== 'needs-review') await sleep(100);
    }
    const [a, b] = parked as [WorkflowHandle, WorkflowHandle];

    const list = await review('list');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(`/workflows/${a.workflowId}/`);
    // A page at a time, one a page: each page says how to get the next, until both are seen.
    const listed: string[] = [];
    for (let args = ['list', '--page-size', '1']; ;) {
      const page = await review(...args);
      expect(page.code).toBe(0);
      const ids = [...page.stdout.matchAll(/^ {2}(\S+) {2}started /gm)].map((m) => m[1]!);
      expect(ids.length).toBeLessThanOrEqual(1);
      listed.push(...ids);
      const more = /^More: npm run review -- (list .+)$/m.exec(page.stdout);
      if (!more || (listed.includes(a.workflowId) && listed.includes(b.workflowId))) break;
      args = more[1]!.split(' ');
    }
    expect(listed.filter((id) => id.startsWith(prefix)).sort()).toEqual([a.workflowId, b.workflowId].sort());
    expect(new Set(listed).size).toBe(listed.length);
    expect(await review('list', '--page', 'bm90LWEtdG9rZW4')).toMatchObject({
      code: 1,
      stderr: '--page bm90LWEtdG9rZW4 is not a page of this list.\n',
    });
    expect(await review('list', '--page-size', '0')).toMatchObject({
      code: 2,
      stderr: 'review: --page-size takes a whole number from 1 to 1000. Try --help.\n',
    });

    const show = await review('show', a.workflowId);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(
      /^Execution: RUNNING \(moneyTransfer, run [0-9a-f-]{36}\)\nStage: needs-review\nOwed: 250\nReview: The refund to 85-150 was refused: /,
    );

    // The bank still refuses: the retry is carried out and the transfer parks again.
    const retry = await review('retry', a.workflowId);
    expect(retry.code).toBe(0);
    expect(retry.stdout).toMatch(/^Stage: needs-review\n/);
    expect(retry.stdout).toContain('Resolution: {"action":"retryRefund"}');

    const unknownAccount = await review('refund-to', a.workflowId, '99-999');
    expect(unknownAccount.code).toBe(1);
    expect(unknownAccount.stderr).toBe(
      'Refused: Unknown account 99-999. The refund can go to: no other open account.\n',
    );

    const emptyNote = await review('resolve', a.workflowId, '--note', ' ', '--operator', 'bob');
    expect(emptyNote).toMatchObject({
      code: 1,
      stderr: 'Refused: resolveManually needs a note saying what was done.\n',
    });

    for (const handle of [a, b]) {
      const proposed = await review(
        'resolve',
        handle.workflowId,
        '--note',
        'Paid back by cheque 1001',
        '--operator',
        'bob',
      );
      expect(proposed.code).toBe(0);
      expect(proposed.stdout).toMatch(/^Stage: needs-review\n/);
      expect(proposed.stdout).toMatch(
        /\nProposed by bob at \S+: resolve manually \(Paid back by cheque 1001\)/,
      );
      expect(await review('approve', handle.workflowId, '--operator', 'bob')).toMatchObject({
        code: 1,
        stderr: 'Refused: bob proposed this resolution: another operator must approve it.\n',
      });
      const approved = await review('approve', handle.workflowId, '--operator', 'carol');
      expect(approved.code).toBe(0);
      expect(approved.stdout).toMatch(/^Stage: failed\n/);
      expect(approved.stdout).toMatch(
        /Resolution: \{"action":"resolveManually","note":"Paid back by cheque 1001","operator":"bob","proposedAt":"[^"]+","approvedBy":"carol","approvedAt":"[^"]+"\}/,
      );
    }

    const after = await review('list');
    expect(after.stdout).not.toContain(prefix);

    const notInReview = await review('retry', a.workflowId);
    expect(notInReview).toMatchObject({
      code: 1,
      stderr: `Transfer ${a.workflowId} is not running (FAILED): only a running transfer in review takes a decision.\n`,
    });
  });

  const unknown = await review('show', `${prefix}-nope`);
  expect(unknown).toMatchObject({
    code: 1,
    stderr: `No transfer with workflow id ${prefix}-nope.\n`,
  });
});
