// `npm run review`: the operator's side of a transfer that waits for review. It lists
// the parked transfers through the TransferStatus search attribute and acts on one
// through the workflow's Updates, whose validators reject what makes no sense.
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  connectClient,
  describeError,
  formatErrorChain,
  loadSettings,
  UsageError,
  webUiLink,
  type Settings,
} from './platform/config';
import {
  approveResolution,
  getStatus,
  refundTo,
  rejectResolution,
  resolveManually,
  retryRefund,
  describeTransfer,
  transferStartOptions,
  validateReviewPolicy,
  type ReviewPolicy,
  type TransferView,
} from './contract';
import { openStore } from './bank/store';
import { runStart } from './platform/history';
import { MAX_REVIEW_PAGE_SIZE, REVIEW_PAGE_SIZE, reviewPage, type ReviewPage } from './platform/review-list';
import { watchProgress } from './platform/progress-watch';
import { reconcile, settleCommand } from './reconcile';
import type { moneyTransfer, settleStrandedTransfer } from './workflows';

const USAGE = `Usage: npm run review -- <command>

Commands:
  list [--page-size N] [--page TOKEN]         transfers waiting for review, newest first,
                                              N a page (50); the first page also lists the
                                              closed ones that still owe money (with BANK_DB)
  show <workflow-id>                          a transfer's execution status and stage
  retry <workflow-id> [--operator NAME]       try the refund again now
  refund-to <workflow-id> <account> [--operator NAME]
                                              refund to another account of the customer
  resolve <workflow-id> --note TEXT --operator NAME
                                              propose that a fix made outside the system
                                              settles it; a second operator approves
  approve <workflow-id> --operator NAME       approve another operator's proposal: the
                                              transfer ends ResolvedManually
  reject <workflow-id> --operator NAME --note TEXT
                                              turn a proposal down; it waits for review again
  settle <workflow-id> --note TEXT --operator NAME
                                              settle a transfer that was terminated or
                                              timed out: put back what it owes

Exit codes: 0 done, 1 refused or failed (unknown id, not in review, rejected), 2 usage error.`;

/** A refusal the operator should read: exit code 1, no stack. */
class ReviewError extends Error {}

async function main(argv: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`review: ${err.message}. Try --help.`);
    return 2;
  }
  if (command.name === 'help') {
    console.log(USAGE);
    return 0;
  }
  const settings = loadSettings();
  const client = await connectClient(settings);
  try {
    await run(client, settings, command);
    return 0;
  } catch (err) {
    if (!(err instanceof ReviewError)) throw err;
    console.error(err.message);
    return 1;
  } finally {
    await client.connection.close();
  }
}

type Command =
  | { name: 'help' }
  | { name: 'list'; pageSize: number; page?: string }
  | { name: 'show'; workflowId: string }
  | { name: 'retry' | 'approve'; workflowId: string; operator?: string }
  | { name: 'refund-to'; workflowId: string; account: string; operator?: string }
  | { name: 'resolve' | 'reject' | 'settle'; workflowId: string; note: string; operator: string };

function parseCommand(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        note: { type: 'string' },
        operator: { type: 'string' },
        'page-size': { type: 'string' },
        page: { type: 'string' },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] ?? 'bad arguments');
  }
  const { values, positionals } = parsed;
  const [name, workflowId, account, ...extra] = positionals;
  if (values.help || name === 'help' || name === undefined) return { name: 'help' };
  const expect = (count: number, what: string) => {
    if (positionals.length !== count) throw new UsageError(`${name} takes ${what}`);
  };
  switch (name) {
    case 'list': {
      expect(1, 'no arguments but --page-size and --page');
      const pageSize = Number(values['page-size'] ?? REVIEW_PAGE_SIZE);
      if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_REVIEW_PAGE_SIZE)
        throw new UsageError(`--page-size takes a whole number from 1 to ${MAX_REVIEW_PAGE_SIZE}`);
      return { name, pageSize, page: values.page };
    }
    case 'show':
      expect(2, 'a workflow id');
      return { name, workflowId: workflowId! };
    case 'retry':
      expect(2, 'a workflow id');
      return { name, workflowId: workflowId!, operator: values.operator };
    case 'approve':
      expect(2, 'a workflow id and --operator');
      if (values.operator === undefined) throw new UsageError('approve needs --operator NAME');
      return { name, workflowId: workflowId!, operator: values.operator };
    case 'refund-to':
      expect(3, 'a workflow id and an account');
      return { name, workflowId: workflowId!, account: account!, operator: values.operator };
    case 'resolve':
    case 'reject':
    case 'settle':
      expect(2, 'a workflow id, --note and --operator');
      // Empty notes and operators go through: the workflow refuses them.
      if (values.note === undefined || values.operator === undefined) {
        throw new UsageError(`${name} needs --note TEXT and --operator NAME`);
      }
      return { name, workflowId: workflowId!, note: values.note, operator: values.operator };
    default:
      throw new UsageError(`unknown command '${[name, ...extra].join(' ')}'`);
  }
}

async function run(
  client: Client,
  settings: Settings,
  command: Exclude<Command, { name: 'help' }>,
): Promise<void> {
  if (command.name === 'list') return list(client, settings, command);
  if (command.name === 'show') return show(client, command.workflowId);
  if (command.name === 'settle') return settle(client, settings, command);
  const handle = client.workflow.getHandle<typeof moneyTransfer>(command.workflowId);
  let status: TransferView;
  try {
    switch (command.name) {
      case 'retry':
        status = await handle.executeUpdate(retryRefund, { args: [{ operator: command.operator }] });
        break;
      case 'refund-to':
        status = await handle.executeUpdate(refundTo, {
          args: [{ account: command.account, operator: command.operator }],
        });
        break;
      case 'resolve':
        status = await handle.executeUpdate(resolveManually, {
          args: [{ note: command.note, operator: command.operator }],
        });
        break;
      case 'approve':
        status = await handle.executeUpdate(approveResolution, { args: [{ operator: command.operator! }] });
        break;
      case 'reject':
        status = await handle.executeUpdate(rejectResolution, {
          args: [{ operator: command.operator, note: command.note }],
        });
        break;
    }
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw await notRunning(client, command.workflowId);
    if (err instanceof WorkflowUpdateFailedError) {
      throw new ReviewError(`Refused: ${err.cause?.message ?? err.message}`);
    }
    throw err;
  }
  console.log(formatStatus(status));
}

async function list(
  client: Client,
  settings: Settings,
  { pageSize, page }: { pageSize: number; page?: string },
): Promise<void> {
  let found: ReviewPage;
  try {
    found = await reviewPage(client, pageSize, page);
  } catch (err) {
    // A token from another listing, or cut short: INVALID_ARGUMENT, or UNKNOWN from the dev server's SQLite.
    if (page && [2, 3].includes((err as { code?: number }).code ?? 0))
      throw new ReviewError(`--page ${page} is not a page of this list.`);
    throw err;
  }
  const { transfers, nextPageToken } = found;
  if (transfers.length > 0) console.log('Transfers waiting for review:');
  else console.log(page ? 'No more transfers wait for review.' : 'No transfer is waiting for review.');
  for (const t of transfers) {
    console.log(`  ${t.workflowId}  started ${t.startedAt.toISOString()}`);
    console.log(`    ${webUiLink(settings, t.workflowId, t.runId)}`);
  }
  if (nextPageToken)
    console.log(`More: npm run review -- list --page-size ${pageSize} --page ${nextPageToken}`);
  if (page) return;
  // What a closed transfer still owes is in the ledger alone.
  if (!process.env.BANK_DB) {
    console.log(
      'Closed transfers that still owe money: set BANK_DB to the bank the workers use to see them ' +
        '(the memory bank lives inside each worker).',
    );
    return;
  }
  const store = openStore();
  try {
    const { stranded } = await reconcile(store, client);
    if (stranded.length === 0) console.log('No closed transfer owes money.');
    else console.log('Closed transfers that still owe money (settle each with `settle`):');
    for (const f of stranded) {
      console.log(`  ${f.workflowId}  ${f.status} at ${f.closedAt}  ${-f.net} owed`);
      console.log(`    ${webUiLink(settings, f.workflowId, f.runId!)}`);
    }
  } finally {
    await store.close();
  }
}

/** The run's execution status, then the workflow's own status, which a closed run gives only to a worker's replay. */
async function show(client: Client, workflowId: string): Promise<void> {
  const handle = client.workflow.getHandle<typeof moneyTransfer>(workflowId);
  const run = await describe(client, workflowId);
  const closed = run.closeTime ? ` at ${run.closeTime.toISOString()}` : '';
  console.log(`Execution: ${run.status.name}${closed} (${run.type}, run ${run.runId})`);
  if (run.status.name === 'TERMINATED' || run.status.name === 'TIMED_OUT') {
    console.log(
      'This run ended from outside: what it withdrew and did not put back is still out. ' +
        `\`npm run reconcile\` shows it; \`${settleCommand(workflowId)}\` settles it.`,
    );
  }
  try {
    // A closed run answers only through a worker's replay: do not wait for one for long.
    const status = await client.connection.withDeadline(Date.now() + 5000, () => handle.query(getStatus));
    console.log(formatStatus(status));
  } catch (err) {
    if (run.status.name === 'RUNNING') throw err;
    console.log(
      `Stage: unknown (the closed run's status needs a worker to replay it: ${(err as Error).message})`,
    );
  }
}

/**
 * Starts a settling run under the transfer's own workflow id, so the bank takes its calls
 * as the transfer's, and waits until it has settled, or parks for review.
 */
async function settle(
  client: Client,
  settings: Settings,
  command: { workflowId: string; note: string; operator: string },
): Promise<void> {
  const { workflowId } = command;
  const run = await describe(client, workflowId);
  const ended = `Transfer ${workflowId} ${run.status.name.toLowerCase().replace('_', ' ')}`;
  if (run.status.name === 'RUNNING') {
    throw new ReviewError(
      `${ended}: it puts back its own money. When it waits for review, decide with retry, refund-to or resolve.`,
    );
  }
  if (run.status.name === 'COMPLETED') {
    throw new ReviewError(
      run.type === 'settleStrandedTransfer'
        ? `Transfer ${workflowId} was settled already (run ${run.runId}). Nothing to settle.`
        : `${ended}: its money is where its result says. Nothing to settle.`,
    );
  }
  if (run.status.name === 'FAILED') {
    const failure = await client.workflow
      .getHandle(workflowId)
      .result()
      .then(
        () => undefined,
        (err: unknown) => (err instanceof WorkflowFailedError ? err.cause : undefined),
      );
    if (failure instanceof ApplicationFailure && failure.type === 'ResolvedManually') {
      throw new ReviewError(
        `${ended}, resolved manually (${failure.message}): the money was handled outside the bank, and settling it would pay twice.`,
      );
    }
  }
  const { details, reviewPolicy } = await runStart(client, workflowId, run);
  if (!details) throw new ReviewError(`Cannot read the payment details of ${workflowId}'s run ${run.runId}.`);
  // If it parks for review, it waits as the transfer would have; a policy that today's rules
  // refuse (a transfer started before them) leaves the default.
  const policy = isValidReviewPolicy(reviewPolicy) ? reviewPolicy : undefined;
  const handle = await client.workflow.start<typeof settleStrandedTransfer>('settleStrandedTransfer', {
    taskQueue: settings.taskQueue,
    workflowId,
    args: [details, { operator: command.operator, note: command.note, ...(policy && { policy }) }],
    staticSummary: `Settle ${describeTransfer(details)}`,
    staticDetails: `Started by \`npm run review -- settle\` for ${command.operator}: ${command.note}`,
    // Whoever started the transfer (the HTTP API's caller) still owns it.
    memo: run.memo,
    ...transferStartOptions(),
  });
  console.log(`${ended}; settling it in run ${handle.firstExecutionRunId}: ${describeTransfer(details)}`);
  console.log(`  ${webUiLink(settings, workflowId, handle.firstExecutionRunId)}`);
  const stopWatching = watchProgress(client, settings, handle, console.log);
  const done = new AbortController();
  const result = handle.result();
  result.catch(() => undefined); // when it parks for review, the wait ends without a result
  const parked = (async () => {
    while (!done.signal.aborted) {
      await sleep(1000);
      const status = await handle.query(getStatus).catch(() => undefined);
      if (status?.stage === 'needs-review') return status;
    }
    return undefined;
  })();
  try {
    const outcome = await Promise.race([result, parked]);
    if (typeof outcome === 'string') return console.log(outcome);
    if (outcome) console.log(formatStatus(outcome));
    throw new ReviewError(
      'The settling run waits for review: decide with retry, refund-to or resolve, as for any transfer.',
    );
  } catch (err) {
    if (err instanceof WorkflowFailedError)
      throw new ReviewError(`Settling failed: ${formatErrorChain(err)}`);
    throw err;
  } finally {
    done.abort();
    await parked;
    await stopWatching();
  }
}

async function describe(client: Client, workflowId: string): Promise<WorkflowExecutionDescription> {
  try {
    return await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new ReviewError(`No transfer with workflow id ${workflowId}.`);
    throw err;
  }
}

/** Why an update found no running transfer: none with that id, or the run is closed. */
async function notRunning(client: Client, workflowId: string): Promise<ReviewError> {
  const run = await describe(client, workflowId);
  const fromOutside = run.status.name === 'TERMINATED' || run.status.name === 'TIMED_OUT';
  return new ReviewError(
    `Transfer ${workflowId} is not running (${run.status.name}): only a running transfer in review takes a decision.` +
      (fromOutside ? ` \`npm run reconcile\` shows whether it owes money; \`settle\` settles it.` : ''),
  );
}

/** A status as an operator reads it. */
export function formatStatus(status: TransferView): string {
  const lines = [`Stage: ${status.stage}`];
  if (status.owed !== undefined) lines.push(`Owed: ${status.owed}`);
  if (status.review) {
    lines.push(`Review: ${status.review.reason}`);
    lines.push(`Refund can go to: ${status.review.accounts.join(', ') || 'no other open account'}`);
    if (status.review.reminders > 0) lines.push(`Reminders sent: ${status.review.reminders}`);
    const { proposal, rejected } = status.review;
    if (proposal) {
      lines.push(
        `Proposed by ${proposal.operator} at ${proposal.at}: resolve manually (${proposal.note}). ` +
          'It waits for a second operator: `approve` or `reject`.',
      );
    }
    if (rejected)
      lines.push(`Rejected by ${rejected.rejectedBy} at ${rejected.rejectedAt}: ${rejected.note}`);
  }
  if (status.notices?.failed) {
    lines.push(`Notices to operators: ${status.notices.sent} sent, ${status.notices.failed} tries failed`);
  }
  if (status.references) {
    const { withdrawal, deposit, refund } = status.references;
    lines.push(`References: ${withdrawal}, ${deposit}, ${refund}`);
  }
  const ids = [status.withdrawId, status.depositId, status.refundId].filter(Boolean);
  if (ids.length > 0) lines.push(`Transactions: ${ids.join(', ')}`);
  if (status.refundedTo) lines.push(`Refunded to: ${status.refundedTo}`);
  if (status.resolution) lines.push(`Resolution: ${JSON.stringify(status.resolution)}`);
  if (status.lastFailure) lines.push(`Last failure: ${status.lastFailure}`);
  return lines.join('\n');
}

function isValidReviewPolicy(policy: unknown): policy is ReviewPolicy {
  try {
    validateReviewPolicy(policy);
    return policy !== undefined && policy !== null;
  } catch {
    return false;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(describeError(err));
      process.exitCode = 1;
    },
  );
}
