// Chaos: transfers against the SQLite bank while the worker process is SIGKILLed at
// random moments and the dev server restarts once. Money must move exactly once.
// Size: CHAOS_TRANSFERS (default 30) and CHAOS_KILLS (default 4); CI runs 100 and 10.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { SqliteStore } from '../../src/bank-store';
import { startDevServer } from '../../tools/dev-server';
import type { PaymentDetails } from '../../src/shared';
import type { moneyTransfer } from '../../src/workflows';
import { activityRuns, freePort, HAS_NODE_SQLITE, runScript, ScriptProcess, uniqueId } from '../helpers';

const TRANSFERS = Number(process.env.CHAOS_TRANSFERS ?? 30);
const KILLS = Number(process.env.CHAOS_KILLS ?? 4);

jest.setTimeout(600_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FUNDED = ['C-1', 'C-2', 'C-3', 'C-4', 'C-5'];
const SEED = new Map<string, number>([...FUNDED.map((a): [string, number] => [a, 100_000]), ['EMPTY', 0]]);

type Kind = 'ok' | 'insufficient' | 'invalid-source' | 'invalid-target';
const KINDS: Kind[] = ['ok', 'ok', 'ok', 'insufficient', 'invalid-source', 'invalid-target'];

function plan(i: number, run: string): { kind: Kind; details: PaymentDetails } {
  const kind = KINDS[i % KINDS.length]!;
  const source = kind === 'insufficient' ? 'EMPTY' : kind === 'invalid-source' ? 'NOPE-1' : FUNDED[i % 5]!;
  const target = kind === 'invalid-target' ? 'NOPE-2' : FUNDED[(i + 1 + (i % 3)) % 5]!;
  return {
    kind,
    details: {
      sourceAccount: source,
      targetAccount: target,
      amount: 1 + ((i * 37) % 500),
      referenceId: `${run}-${i}`,
    },
  };
}

// The durable store is node:sqlite (Node 22.5+); on older Node, check the worker says so instead.
if (!HAS_NODE_SQLITE) {
  test('chaos needs node:sqlite: a worker given BANK_DB on this Node says which Node it needs', async () => {
    const run = await runScript('src/worker.js', [], {
      BANK_DB: path.join(tmpdir(), 'never-created.sqlite'),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^The SQLite bank store needs Node\.js 22\.5 or newer \(this is v\d+/);
  });
}

if (HAS_NODE_SQLITE)
  describe('chaos', () => {
    test(`${TRANSFERS} transfers, ${KILLS}+ worker SIGKILLs, 1 server restart: money moves exactly once`, async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-chaos-'));
      const bankFile = path.join(dir, 'bank.sqlite');
      new SqliteStore(bankFile, SEED).close();
      const serverOptions = {
        ip: '127.0.0.1',
        port: await freePort(),
        dbFilename: path.join(dir, 'temporal.sqlite'),
      };
      let server = await startDevServer(serverOptions);
      const connection = await Connection.connect({ address: server.address });
      const client = new Client({ connection });
      const taskQueue = uniqueId('chaos');
      const workerEnv = {
        TEMPORAL_ADDRESS: server.address,
        TEMPORAL_TASK_QUEUE: taskQueue,
        BANK_DB: bankFile,
        BANK_DELAY_MS: '60',
        NODE_ENV: 'production',
      };
      const startWorker = async () => {
        const worker = new ScriptProcess('src/worker.js', [], workerEnv);
        await worker.waitFor('Press Ctrl-C to stop.', 60_000);
        return worker;
      };

      let worker = await startWorker();
      let kills = 0;
      let restarts = 0;
      const started: Array<{
        kind: Kind;
        details: PaymentDetails;
        handle: WorkflowHandle<typeof moneyTransfer>;
      }> = [];
      try {
        // Transfers start at a steady pace while a second loop kills the worker at random.
        let starting = true;
        const killer = (async () => {
          while (starting || kills < KILLS) {
            await sleep(300 + Math.random() * 900);
            worker.child.kill('SIGKILL');
            await worker.exited;
            kills++;
            worker = await startWorker();
          }
        })();
        for (let i = 0; i < TRANSFERS; i++) {
          if (i === Math.floor(TRANSFERS / 2)) {
            await server.teardown(); // workers and the client reconnect on their own
            server = await startDevServer(serverOptions);
            restarts++;
          }
          const { kind, details } = plan(i, taskQueue);
          const handle = await client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
            taskQueue,
            workflowId: `${taskQueue}-${i}`,
            args: [details],
          });
          started.push({ kind, details, handle });
          await sleep(100);
        }
        starting = false;
        await killer;

        const outcomes = await Promise.all(
          started.map(async (t) => {
            const error = await t.handle.result().then(
              () => undefined,
              (err: unknown) => err,
            );
            return { ...t, completed: error === undefined, error, runs: await activityRuns(t.handle) };
          }),
        );

        // 1. Every transfer ended as its input dictates.
        for (const o of outcomes) {
          expect({ ref: o.details.referenceId, kind: o.kind, completed: o.completed }).toEqual({
            ref: o.details.referenceId,
            kind: o.kind,
            completed: o.kind === 'ok',
          });
          if (!o.completed) expect(o.error).toBeInstanceOf(WorkflowFailedError);
        }

        // 2. The ledger holds each movement once, and balances agree with it and with the outcomes.
        const store = new SqliteStore(bankFile);
        const entries = store.entries();
        const balances = store.balances();
        store.close();
        let doubleDebits = 0;
        let doubleCredits = 0;
        const expected = new Map(SEED);
        for (const o of outcomes) {
          const ref = o.details.referenceId;
          const mine = entries.filter((e) => e.reference.startsWith(`${ref}-`));
          doubleDebits += Math.max(0, mine.filter((e) => e.amount < 0).length - 1);
          doubleCredits += Math.max(0, mine.filter((e) => e.amount > 0).length - 1);
          if (o.completed) {
            expected.set(o.details.sourceAccount, expected.get(o.details.sourceAccount)! - o.details.amount);
            expected.set(o.details.targetAccount, expected.get(o.details.targetAccount)! + o.details.amount);
          }
        }
        const total = (m: Map<string, number>) => [...m.values()].reduce((sum, b) => sum + b, 0);
        const retried = outcomes.flatMap((o) => o.runs).filter((r) => r.attempts > 1).length;

        console.log(
          [
            `chaos: ${outcomes.length} transfers (${outcomes.filter((o) => o.completed).length} completed, ` +
              `${outcomes.filter((o) => !o.completed).length} failed as planned)`,
            `chaos: ${kills} worker SIGKILLs, ${restarts} dev server restart, ${retried} activities retried`,
            `chaos: ${entries.length} ledger entries, ${doubleDebits} double debits, ${doubleCredits} double credits`,
            `chaos: money before ${total(SEED)}, after ${total(balances)}`,
          ].join('\n'),
        );
        expect(kills).toBeGreaterThanOrEqual(KILLS);
        expect(restarts).toBe(1);
        expect(doubleDebits).toBe(0);
        expect(doubleCredits).toBe(0);
        expect(Object.fromEntries(balances)).toEqual(Object.fromEntries(expected));
        expect(total(balances)).toBe(total(SEED));
      } finally {
        worker.child.kill('SIGKILL');
        await worker.exited;
        await connection.close();
        await server.teardown();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
