// `npm run count-tasks`: what one transfer of each kind costs the server, counted from
// the dev server's own Prometheus counters: history events, visibility writes, and the
// history service's transfer, timer and visibility tasks. Each kind runs alone on a
// fresh dev server (the same flags as every dev server here), and the count waits until
// the activity and workflow task timers have fired, as they do for every transfer.
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { transferStartOptions, type PaymentDetails } from '../../src/contract';
import { installLogger } from '../../src/platform/worker-options';
import type { moneyTransfer } from '../../src/workflows';
import { buildWorkflowBundle } from '../bundle';
import { freePort } from '../common';
import { startDevServer } from '../dev-server';
import { CASES } from '../export-histories';

const KINDS = ['success', 'insufficient-funds', 'failing-deposit-refund'];
/** Longer than every timer a transfer leaves behind: workflow task timeouts are 10 s. */
const TIMERS_SETTLE_MS = 15_000;

/** The namespace's counters, as `metric operation` → value. */
async function counters(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(
    /^(task_requests|visibility_persistence_requests|persistence_requests)\{([^}]*)\} (\S+)$/gm,
  )) {
    // Visibility's counters carry no namespace; this server runs nothing else.
    if (m[1] !== 'visibility_persistence_requests' && !m[2]!.includes('namespace="default"')) continue;
    const op = /operation="([^"]+)"/.exec(m[2]!)?.[1];
    if (!op) continue;
    const key = `${m[1]} ${op}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

async function count(name: string, code: string): Promise<Record<string, number>> {
  const c = CASES.find((k) => k.name === name)!;
  const port = await freePort();
  const server = await startDevServer({ extraArgs: ['--metrics-port', String(port)] });
  const connection = await Connection.connect({ address: server.address });
  const workerConnection = await NativeConnection.connect({ address: server.address });
  try {
    const client = new Client({ connection });
    const worker = await Worker.create({
      connection: workerConnection,
      taskQueue: 'count-tasks',
      workflowBundle: { code },
      activities: createActivities(c.bank),
    });
    const before = await counters(port);
    let events = 0;
    let upserts = 0;
    await worker.runUntil(async () => {
      const handle = await client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
        taskQueue: 'count-tasks',
        workflowId: `count-${name}`,
        args: c.args as [PaymentDetails],
        ...transferStartOptions(),
      });
      await handle.result().catch(() => undefined);
      const history = (await handle.fetchHistory()).events ?? [];
      events = history.length;
      upserts = history.filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).length;
      await sleep(TIMERS_SETTLE_MS);
    });
    const after = await counters(port);
    const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
    const sum = (prefix: string) =>
      [...after.keys()].filter((k) => k.startsWith(prefix)).reduce((n, k) => n + delta(k), 0);
    const row: Record<string, number> = { 'history events': events, UpsertWorkflowSearchAttributes: upserts };
    for (const key of [...after.keys()].sort()) {
      if (key.startsWith('visibility_persistence_requests ') && delta(key) > 0)
        row[`visibility ${key.split(' ')[1]}`] = delta(key);
    }
    row['visibility writes, all'] = sum('visibility_persistence_requests ');
    for (const key of [...after.keys()].sort()) {
      if (key.startsWith('task_requests ') && delta(key) > 0)
        row[key.slice('task_requests '.length)] = delta(key);
    }
    row['tasks, all'] = sum('task_requests ');
    row['persistence UpdateWorkflowExecution'] = delta('persistence_requests UpdateWorkflowExecution');
    return row;
  } finally {
    await workerConnection.close();
    await connection.close();
    await server.teardown();
  }
}

async function main(): Promise<void> {
  installLogger('WARN');
  const code = await buildWorkflowBundle();
  const rows = new Map<string, Record<string, number>>();
  for (const kind of KINDS) rows.set(kind, await count(kind, code));
  const figures = [...new Set([...rows.values()].flatMap((r) => Object.keys(r)))];
  console.log(`| per transfer | ${KINDS.join(' | ')} |`);
  console.log(`|---|${KINDS.map(() => '---').join('|')}|`);
  for (const f of figures) console.log(`| ${f} | ${KINDS.map((k) => rows.get(k)![f] ?? 0).join(' | ')} |`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
