// `npm run reconcile`: the daily proof that the books agree. The bank's ledger knows each
// posting's owner (the workflow id that made it); Temporal knows how each workflow ended.
// Owner by owner, this puts the two side by side and reports the money that no workflow
// accounts for. docs/operations.md says how to read it and how to settle what it finds.
import { parseArgs } from 'node:util';
import {
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { openStore, type BankStore, type LedgerEntry } from './bank/store';
import { bankLine } from './bank/from-env';
import { NEEDS_REVIEW_QUERY, TRANSFER_STATUS, TRANSFER_WORKFLOW_TYPES } from './contract';
import { connectClient, describeError, loadSettings, UsageError } from './platform/config';
import { transferStart } from './platform/history';

/** The operator's command that settles a stranded transfer (docs/operations.md). */
export const settleCommand = (workflowId: string): string =>
  `npm run review -- settle ${workflowId} --operator NAME --note TEXT`;

/** One owner whose money the report shows. `net` is what its postings add up to: negative is money out. */
export interface Finding {
  workflowId: string;
  net: number;
  /** The owner's newest run, if the server knows it. */
  runId?: string;
  workflowType?: string;
  /** ExecutionStatus of that run: RUNNING, TERMINATED, ... */
  status?: string;
  /** For a running transfer: the stage its TransferStatus shows, or the ledger's guess. */
  stage?: string;
  startedAt?: string;
  closedAt?: string;
  /** Seconds since the run started. */
  ageSeconds?: number;
  /** What else there is to know: an operator's note, a settlement, why it is an orphan. */
  note?: string;
  references: string[];
}

export interface Reconciliation {
  checkedAt: string;
  /** False for the memory bank: its ledger lives inside each worker, and reconcile cannot read it. */
  ledgerRead: boolean;
  owners: number;
  entries: number;
  /** Closed transfers whose postings do not net to zero, and that no operator resolved. */
  stranded: Finding[];
  /** Running transfers with money out, not waiting for review. */
  inFlight: Finding[];
  /** Running transfers waiting for an operator's decision, oldest first. */
  reviews: Finding[];
  /** Closed transfers an operator resolved manually: their money was handled outside the bank. */
  resolvedManually: Finding[];
  /** Transfers an operator settled with `npm run review -- settle`. */
  settled: Finding[];
  /** Postings whose owner no transfer workflow is known as. */
  orphans: Finding[];
  /** Owners whose postings net to zero and whose history is past the namespace's retention. */
  archived: number;
  /** The money out in each group (a positive number). */
  totals: { stranded: number; inFlight: number; reviews: number; orphans: number };
}

/**
 * Compares the ledger with the workflows. Every owner in the ledger is described (the
 * newest run under its workflow id); transfers waiting for review are also found through
 * visibility, so one with nothing posted yet shows too.
 */
export async function reconcile(
  store: BankStore | undefined,
  client: Client,
  now: Date = new Date(),
): Promise<Reconciliation> {
  const entries = store ? await store.entries() : [];
  const byOwner = new Map<string, LedgerEntry[]>();
  for (const entry of entries) byOwner.set(entry.owner, [...(byOwner.get(entry.owner) ?? []), entry]);

  const report: Reconciliation = {
    checkedAt: now.toISOString(),
    ledgerRead: store !== undefined,
    owners: byOwner.size,
    entries: entries.length,
    stranded: [],
    inFlight: [],
    reviews: [],
    resolvedManually: [],
    settled: [],
    orphans: [],
    archived: 0,
    totals: { stranded: 0, inFlight: 0, reviews: 0, orphans: 0 },
  };
  await eachLimited([...byOwner], 16, async ([owner, postings]) => {
    const finding: Finding = {
      workflowId: owner,
      net: postings.reduce((sum, e) => sum + e.amount, 0),
      references: postings.map((e) => `${e.reference} ${e.amount > 0 ? '+' : ''}${e.amount} ${e.account}`),
    };
    let run: WorkflowExecutionDescription;
    try {
      run = await client.workflow.getHandle(owner).describe();
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      // Balanced postings whose history passed the namespace's retention: nothing to find.
      if (finding.net === 0) return void report.archived++;
      finding.note = 'no workflow with this id: never one, or past the retention period';
      return void report.orphans.push(finding);
    }
    const started = await transferStart(client, owner, {
      ...run,
      firstRunId: run.raw.workflowExecutionInfo?.firstRunId,
    });
    describeRun(finding, run, started, now);
    if (!TRANSFER_WORKFLOW_TYPES.includes(run.type)) {
      finding.note = `the workflow with this id is a ${run.type}, not a transfer`;
      return void report.orphans.push(finding);
    }
    if (run.status.name === 'RUNNING') {
      if (finding.net === 0) return;
      if (finding.stage === 'needs-review') return void report.reviews.push(finding);
      finding.stage ??= guessStage(postings);
      return void report.inFlight.push(finding);
    }
    // Only what the ledger alone cannot tell needs the run's ending: one more call each.
    const settling = run.type === 'settleStrandedTransfer' && run.status.name === 'COMPLETED';
    const refunded = postings.some((e) => /-refund(-\d+)?$/.test(e.reference));
    const failed = run.status.name === 'FAILED' && (finding.net !== 0 || refunded);
    const ending = settling || failed ? await endingOf(client, owner, run.runId) : {};
    if (ending.type === 'ResolvedManually') {
      finding.note = ending.message;
      // Handled outside the bank, and put back inside it too: the customer may be paid twice.
      if (finding.net >= 0) {
        finding.note = `${ending.message}; but its refund posted as well: paid twice?`;
        return void report.stranded.push(finding);
      }
      return void report.resolvedManually.push(finding);
    }
    if (finding.net !== 0) return void report.stranded.push(finding);
    if (settling) {
      finding.note = ending.result;
      report.settled.push(finding);
    }
  });
  // The ledger was read before the runs were described: a transfer that posted since may
  // have closed in between. Only what is still out, read again now, is stranded.
  if (report.stranded.length > 0 && store) {
    const now = new Map<string, number>();
    for (const e of await store.entries()) now.set(e.owner, (now.get(e.owner) ?? 0) + e.amount);
    report.stranded = report.stranded.filter(
      (f) => f.note?.endsWith('paid twice?') || (now.get(f.workflowId) ?? 0) !== 0,
    );
  }
  // A review whose refund never got as far as posting has no ledger entry: visibility finds it.
  const listed = new Set(report.reviews.map((f) => f.workflowId));
  for await (const execution of client.workflow.list({ query: NEEDS_REVIEW_QUERY })) {
    if (listed.has(execution.workflowId)) continue;
    const finding: Finding = { workflowId: execution.workflowId, net: 0, references: [] };
    const started = await transferStart(client, execution.workflowId, {
      ...execution,
      firstRunId: execution.raw.firstRunId,
    });
    describeRun(finding, execution, started, now);
    report.reviews.push(finding);
  }
  const byId = (a: Finding, b: Finding) => a.workflowId.localeCompare(b.workflowId);
  for (const group of [
    report.stranded,
    report.inFlight,
    report.resolvedManually,
    report.settled,
    report.orphans,
  ])
    group.sort(byId);
  report.reviews.sort((a, b) => (b.ageSeconds ?? 0) - (a.ageSeconds ?? 0));
  const out = (group: Finding[]) => -group.reduce((sum, f) => sum + f.net, 0);
  report.totals = {
    stranded: out(report.stranded),
    inFlight: out(report.inFlight),
    reviews: out(report.reviews),
    orphans: out(report.orphans),
  };
  return report;
}

/** True when nothing is stranded or orphaned: the command's exit code 0. */
export function booksAgree(report: Reconciliation): boolean {
  return report.stranded.length === 0 && report.orphans.length === 0;
}

function describeRun(
  finding: Finding,
  run: Pick<
    WorkflowExecutionDescription,
    'runId' | 'type' | 'status' | 'closeTime' | 'typedSearchAttributes'
  >,
  /** When the transfer began: its first run's start (transferStart). */
  started: Date,
  now: Date,
): void {
  finding.runId = run.runId;
  finding.workflowType = run.type;
  finding.status = run.status.name;
  finding.startedAt = started.toISOString();
  if (run.closeTime) finding.closedAt = run.closeTime.toISOString();
  finding.ageSeconds = Math.max(0, Math.round((now.getTime() - started.getTime()) / 1000));
  const shown = run.typedSearchAttributes.get(TRANSFER_STATUS);
  if (shown === 'refunding' || shown === 'needs-review') finding.stage = shown;
}

/** Before its refund, a transfer's TransferStatus says only `started`: the ledger tells more. */
function guessStage(postings: LedgerEntry[]): string {
  const posted = (suffix: string) => postings.some((e) => e.reference.endsWith(suffix));
  if (posted('-withdrawal') && !posted('-deposit')) return 'depositing';
  return 'running';
}

/** How a closed run ended: its result, or the type and message of its failure. */
async function endingOf(
  client: Client,
  workflowId: string,
  runId: string,
): Promise<{ result?: string; type?: string; message?: string }> {
  try {
    // This run's own end, never a newer run's wait.
    return {
      result: String(await client.workflow.getHandle(workflowId, runId).result()),
    };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause;
    return cause instanceof ApplicationFailure
      ? { type: cause.type ?? undefined, message: cause.message }
      : {};
  }
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** The report as an operator reads it: a summary, then one line per finding. */
export function formatReconciliation(report: Reconciliation): string {
  const lines: string[] = [];
  const age = (f: Finding) => (f.ageSeconds === undefined ? '' : `started ${formatAge(f.ageSeconds)} ago`);
  const section = (title: string, group: Finding[], line: (f: Finding) => string) => {
    lines.push(`${title}: ${group.length}`);
    for (const f of group) lines.push(`  ${f.workflowId}  ${line(f)}`);
  };
  if (!report.ledgerRead) {
    lines.push(
      'The bank is in memory inside each worker process, so reconcile cannot read its ledger: it shows ' +
        'the transfers waiting for review only. Set BANK_DB to the SQLite file or postgres:// URL the ' +
        'workers use to reconcile the money.',
    );
  } else {
    lines.push(
      `Checked ${report.entries} ledger entries of ${report.owners} owners against their workflows` +
        (report.archived > 0 ? ` (${report.archived} balanced, past the retention period).` : '.'),
    );
    section(
      `Stranded (closed, ${report.totals.stranded} out)`,
      report.stranded,
      (f) =>
        `${f.status} ${f.closedAt ?? ''}  ${f.net} out of the books  settle: ${settleCommand(f.workflowId)}`,
    );
    section(
      `In flight (${report.totals.inFlight} out)`,
      report.inFlight,
      (f) => `${f.stage}  ${f.net}  ${age(f)}`,
    );
  }
  const oldest = report.reviews[0];
  section(
    `Waiting for review${oldest ? ` (${report.totals.reviews} out, oldest ${formatAge(oldest.ageSeconds ?? 0)})` : ''}`,
    report.reviews,
    (f) => `${report.ledgerRead ? `${f.net}  ` : ''}${age(f)}`,
  );
  if (report.ledgerRead) {
    section('Resolved manually', report.resolvedManually, (f) => `${f.net}  ${f.note}`);
    section('Settled by an operator', report.settled, (f) => `${f.note}`);
    section(`Orphans (${report.totals.orphans} out)`, report.orphans, (f) => `${f.net}  ${f.note}`);
    lines.push(
      booksAgree(report)
        ? 'The books agree: every posting belongs to a transfer that accounts for it.'
        : `The books do not agree: ${report.stranded.length} stranded, ${report.orphans.length} orphaned.`,
    );
  }
  return lines.join('\n');
}

function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}

const USAGE = `Usage: npm run reconcile -- [--json]

Compares the bank's ledger (BANK_DB) with the transfers' workflows, owner by owner, and
reports the money that is stranded (a closed transfer that left it out), in flight,
waiting for review, resolved manually, settled, or orphaned (no workflow owns it).

Exit codes: 0 the books agree, 1 something is stranded or orphaned, 2 usage error.`;

async function main(argv: string[]): Promise<number> {
  let json = false;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { json: { type: 'boolean' }, help: { type: 'boolean' } },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    json = values.json ?? false;
  } catch (err) {
    console.error(`reconcile: ${(err as Error).message.split('\n')[0]}. Try --help.`);
    return 2;
  }
  const settings = loadSettings();
  const store = process.env.BANK_DB ? openStore() : undefined;
  try {
    const client = await connectClient(settings);
    try {
      const report = await reconcile(store, client);
      if (json) console.log(JSON.stringify(report, null, 2));
      else {
        console.log(`${bankLine()}\nTemporal: ${settings.address}, namespace ${settings.namespace}`);
        console.log(formatReconciliation(report));
      }
      return booksAgree(report) ? 0 : 1;
    } finally {
      await client.connection.close();
    }
  } finally {
    await store?.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(describeError(err instanceof UsageError ? err.message : err));
      process.exitCode = 1;
    },
  );
}
