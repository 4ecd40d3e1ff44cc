// `npm run histories`: runs one transfer of each kind on a fresh dev server and saves
// its history with `temporal workflow show --output json` into test/fixtures/histories/, where
// the replay test reads them. Rerun it after an intended change to the workflow;
// `npm run histories -- <name>...` records only the cases named.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import { BankingService, type CallOptions } from '../src/bank/banking-service';
import { startDevServer } from './dev-server';
import { installLogger } from '../src/platform/worker-options';
import { buildWorkflowBundle } from './bundle';
import {
  AccountClosedError,
  approveResolution,
  rejectResolution,
  getStatus,
  type PaymentDetails,
  resolveManually,
  referencesFor,
  retryRefund,
  type SettleRequest,
  transferStartOptions,
} from '../src/contract';
import { parseFaults, UnreliableBank } from '../src/bank/faults';
import { DEFAULT_TRANSFER } from '../src/starter';
import { resolveTemporalCli } from './temporal-cli';
import type { moneyTransfer } from '../src/workflows';
import { ROOT } from './common';

const OUT_DIR = path.join(ROOT, 'test', 'fixtures', 'histories');
const TASK_QUEUE = 'export-histories';

/** The tutorial's failure drill: every deposit into the target fails with a plain Error. */
class FailingDepositBank extends BankingService {
  override async deposit(
    account: string,
    amount: number,
    referenceId: string,
    call?: CallOptions,
  ): Promise<string> {
    if (referenceId.endsWith('-deposit')) return this.depositThatFails(account, amount, referenceId);
    return super.deposit(account, amount, referenceId, call);
  }
}

const faulty = (spec: string) => new UnreliableBank('bank', { faults: parseFaults(spec) });

/**
 * A fixture bank for the review histories and tests: the refund is refused once, as if the source account were briefly frozen: the transfer
 * waits for review.
 */
export class RefuseFirstRefundBank extends UnreliableBank {
  private refused = false;
  override async refund(
    account: string,
    amount: number,
    referenceId: string,
    call?: CallOptions,
  ): Promise<string> {
    if (this.refused) return super.refund(account, amount, referenceId, call);
    this.refused = true;
    throw new AccountClosedError(`The account ${account} is closed.`);
  }
}

type Handle = WorkflowHandle<typeof moneyTransfer>;
const details = DEFAULT_TRANSFER;

/** Before an operator's settling run: the stranded transfer's withdrawal posted under its id, then it was ended. */
const strandedWithdrawal = (bank: BankingService, workflowId: string) =>
  bank
    .withdraw(details.sourceAccount, details.amount, referencesFor(details.referenceId).withdrawal, {
      owner: workflowId,
    })
    .then(() => undefined);
const settleRequest: SettleRequest = { operator: 'carol', note: 'terminated by mistake' };

export const CASES: Array<{
  name: string;
  bank: BankingService;
  /** Default moneyTransfer. */
  workflowType?: 'settleStrandedTransfer';
  /** What the bank holds before the run starts. */
  before?: (bank: BankingService, workflowId: string) => Promise<void>;
  args: unknown[];
  operator?: (h: Handle) => Promise<void>;
  /** A module in place of src/workflows/limits.ts, as the test bundles have. */
  limits?: string;
}> = [
  { name: 'success', bank: new BankingService('bank'), args: [details] },
  { name: 'insufficient-funds', bank: new BankingService('bank'), args: [{ ...details, amount: 25000 }] },
  { name: 'failing-deposit-refund', bank: new FailingDepositBank('bank'), args: [details] },
  { name: 'bad-input', bank: new BankingService('bank'), args: [{ ...details, amount: -5 }] },
  // The settle paths of an unknown outcome.
  { name: 'settle-withdrawal-never-posted', bank: faulty('withdraw:fail'), args: [details] },
  { name: 'settle-withdrawal-posted-refunded', bank: faulty('withdraw:post-then-fail'), args: [details] },
  { name: 'settle-deposit-posted-after-all', bank: faulty('deposit:post-then-fail'), args: [details] },
  // A refund refused once: the transfer waits for review, and an operator retries it.
  {
    name: 'review-retry-refund',
    bank: new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') }),
    args: [details],
    operator: async (handle) => {
      while ((await handle.query(getStatus)).stage !== 'needs-review') await sleep(100);
      await handle.executeUpdate(retryRefund, { args: [{}] });
    },
  },
  // Four eyes: ana proposes a manual resolution, ben rejects it, ana proposes again, ben approves.
  {
    name: 'review-four-eyes',
    bank: new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') }),
    args: [details],
    operator: async (handle) => {
      while ((await handle.query(getStatus)).stage !== 'needs-review') await sleep(100);
      const propose = { note: 'paid back by cheque', operator: 'ana' };
      await handle.executeUpdate(resolveManually, { args: [propose] });
      await handle.executeUpdate(rejectResolution, {
        args: [{ operator: 'ben', note: 'no cheque on record' }],
      });
      await handle.executeUpdate(resolveManually, { args: [propose] });
      await handle.executeUpdate(approveResolution, { args: [{ operator: 'ben' }] });
    },
  },
  // Waiting long enough to continue as new, on the test limits: ana proposes in the first
  // run, ben approves in the second. One file per run (-run-1, -run-2).
  {
    name: 'review-continue-as-new',
    bank: new RefuseFirstRefundBank('bank', { faults: parseFaults('deposit:reject') }),
    args: [details, { remindEvery: 10 }],
    limits: path.join(ROOT, 'test', 'support', 'fast-limits.ts'),
    operator: async (handle) => {
      while ((await handle.query(getStatus)).stage !== 'needs-review') await sleep(100);
      await handle.executeUpdate(resolveManually, {
        args: [{ note: 'paid back by cheque', operator: 'ana' }],
      });
      const first = (await handle.describe()).runId;
      while ((await handle.describe()).runId === first) await sleep(200);
      await handle.executeUpdate(approveResolution, { args: [{ operator: 'ben' }] });
    },
  },
  // An operator's settling run (`review settle`) for a transfer ended after its withdrawal posted.
  {
    name: 'stranded-refunded',
    bank: new BankingService('bank'),
    workflowType: 'settleStrandedTransfer',
    before: strandedWithdrawal,
    args: [details, settleRequest],
  },
  // The same, its refund refused once: it waits for review on the transfer's policy, and alice retries it.
  {
    name: 'stranded-review-retry-refund',
    bank: new RefuseFirstRefundBank('bank'),
    workflowType: 'settleStrandedTransfer',
    before: strandedWithdrawal,
    args: [details, { ...settleRequest, policy: { reviewAfter: '2 hours', remindEvery: '1 day' } }],
    operator: async (handle) => {
      while ((await handle.query(getStatus)).stage !== 'needs-review') await sleep(100);
      await handle.executeUpdate(retryRefund, { args: [{ operator: 'alice' }] });
    },
  },
];

/** The run ids of a workflow, first to last, following its continue-as-new chain. */
async function runIds(client: Client, workflowId: string, firstRunId: string): Promise<string[]> {
  const ids = [firstRunId];
  for (;;) {
    const { events } = await client.workflow.getHandle(workflowId, ids.at(-1)).fetchHistory();
    const next = events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (!next) return ids;
    ids.push(next);
  }
}

async function main(names: string[]): Promise<void> {
  const unknown = names.filter((name) => !CASES.some((c) => c.name === name));
  if (unknown.length)
    throw new Error(
      `No case named ${unknown.join(', ')}. The cases: ${CASES.map((c) => c.name).join(', ')}.`,
    );
  const cases = names.length ? CASES.filter((c) => names.includes(c.name)) : CASES;
  installLogger('WARN');
  const cli = await resolveTemporalCli();
  if (!cli.path)
    throw new Error('Exporting histories needs the `temporal` CLI binary: set TEMPORAL_CLI_PATH.');
  const server = await startDevServer();
  const connection = await Connection.connect({ address: server.address });
  const workerConnection = await NativeConnection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    mkdirSync(OUT_DIR, { recursive: true });
    // Bundled here from src, so the histories always come from the code as it is now.
    const code = await buildWorkflowBundle();
    for (const { name, bank, workflowType, before, args, operator, limits } of cases) {
      const worker = await Worker.create({
        connection: workerConnection,
        taskQueue: TASK_QUEUE,
        workflowBundle: { code: limits ? await buildWorkflowBundle({ limits }) : code },
        activities: createActivities(bank),
      });
      const workflowId = `history-${name}`;
      await before?.(bank, workflowId);
      const firstRunId = await worker.runUntil(async () => {
        const handle = await client.workflow.start<typeof moneyTransfer>(workflowType ?? 'moneyTransfer', {
          taskQueue: TASK_QUEUE,
          workflowId,
          args: args as [PaymentDetails],
          ...transferStartOptions(),
        });
        await operator?.(handle);
        await handle.result().catch(() => undefined);
        return handle.firstExecutionRunId;
      });
      const runs = await runIds(client, workflowId, firstRunId);
      for (const [i, runId] of runs.entries()) {
        const json = execFileSync(
          cli.path,
          ['workflow', 'show', '--workflow-id', workflowId, '--run-id', runId].concat([
            '--address',
            server.address,
            '--output',
            'json',
          ]),
          { encoding: 'utf8' },
        );
        const file = runs.length === 1 ? `${name}.json` : `${name}-run-${i + 1}.json`;
        writeFileSync(path.join(OUT_DIR, file), json);
        console.log(`wrote test/fixtures/histories/${file}`);
      }
    }
  } finally {
    await workerConnection.close();
    await connection.close();
    await server.teardown();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
