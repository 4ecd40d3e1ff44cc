// `npm run review`: the operator's side of a transfer that waits for review. It lists
// the parked transfers through the TransferStatus search attribute and acts on one
// through the workflow's Updates, whose validators reject what makes no sense.
import { parseArgs } from 'node:util';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import {
  connectClient,
  describeError,
  loadSettings,
  UsageError,
  webUiLink,
  type Settings,
} from './platform/config';
import {
  getStatus,
  refundTo,
  resolveManually,
  retryRefund,
  TRANSFER_STATUS,
  type TransferView,
} from './contract';
import type { moneyTransfer } from './workflows';

const USAGE = `Usage: npm run review -- <command>

Commands:
  list                                        transfers waiting for review
  show <workflow-id>                          a transfer's status
  retry <workflow-id>                         try the refund again now
  refund-to <workflow-id> <account>           refund to another account of the customer
  resolve <workflow-id> --note TEXT --operator NAME
                                              record a fix made outside the system

Exit codes: 0 done, 1 refused or failed (unknown id, not in review, rejected), 2 usage error.`;

/** The visibility query behind `list`: running transfers parked for an operator. */
export const NEEDS_REVIEW_QUERY = `WorkflowType = 'moneyTransfer' AND ExecutionStatus = 'Running' AND ${TRANSFER_STATUS.name} = 'needs-review'`;

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
  | { name: 'list' }
  | { name: 'show' | 'retry'; workflowId: string }
  | { name: 'refund-to'; workflowId: string; account: string }
  | { name: 'resolve'; workflowId: string; note: string; operator: string };

function parseCommand(argv: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { note: { type: 'string' }, operator: { type: 'string' }, help: { type: 'boolean' } },
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
    case 'list':
      expect(1, 'no arguments');
      return { name };
    case 'show':
    case 'retry':
      expect(2, 'a workflow id');
      return { name, workflowId: workflowId! };
    case 'refund-to':
      expect(3, 'a workflow id and an account');
      return { name, workflowId: workflowId!, account: account! };
    case 'resolve':
      expect(2, 'a workflow id, --note and --operator');
      // Empty notes and operators go through: the workflow's validator refuses them.
      if (values.note === undefined || values.operator === undefined) {
        throw new UsageError('resolve needs --note TEXT and --operator NAME');
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
  if (command.name === 'list') {
    let count = 0;
    for await (const execution of client.workflow.list({ query: NEEDS_REVIEW_QUERY })) {
      if (count++ === 0) console.log('Transfers waiting for review:');
      console.log(`  ${execution.workflowId}  started ${execution.startTime.toISOString()}`);
      console.log(`    ${webUiLink(settings, execution.workflowId, execution.runId)}`);
    }
    if (count === 0) console.log('No transfer is waiting for review.');
    return;
  }
  const handle = client.workflow.getHandle<typeof moneyTransfer>(command.workflowId);
  let status: TransferView;
  try {
    switch (command.name) {
      case 'show':
        status = await handle.query(getStatus);
        break;
      case 'retry':
        status = await handle.executeUpdate(retryRefund);
        break;
      case 'refund-to':
        status = await handle.executeUpdate(refundTo, { args: [{ account: command.account }] });
        break;
      case 'resolve':
        status = await handle.executeUpdate(resolveManually, {
          args: [{ note: command.note, operator: command.operator }],
        });
        break;
    }
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new ReviewError(`No running transfer with workflow id ${command.workflowId}.`);
    }
    if (err instanceof WorkflowUpdateFailedError) {
      throw new ReviewError(`Refused: ${err.cause?.message ?? err.message}`);
    }
    throw err;
  }
  console.log(formatStatus(status));
}

/** A status as an operator reads it. */
export function formatStatus(status: TransferView): string {
  const lines = [`Stage: ${status.stage}`];
  if (status.owed !== undefined) lines.push(`Owed: ${status.owed}`);
  if (status.review) {
    lines.push(`Review: ${status.review.reason}`);
    lines.push(`Refund can go to: ${status.review.accounts.join(', ') || 'no other open account'}`);
    if (status.review.reminders > 0) lines.push(`Reminders sent: ${status.review.reminders}`);
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
