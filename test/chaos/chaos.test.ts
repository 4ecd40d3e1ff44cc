// Many transfers at once against the SQLite bank, in a worker process that is
// SIGKILLed at random moments. Whatever happens, every closed transfer must tell the
// truth about the money, and money is conserved.
//
// - chaos: planned transfers (ok, insufficient, invalid accounts) on a bank whose every
//   call takes 4-5.6 s, on both sides of the 5 s timeout, with one dev server restart.
//   Size: CHAOS_TRANSFERS (default 30) and CHAOS_KILLS (default 4); CI runs 100 and 10.
// - property: a random fault and latency on every bank call (BANK_FAULTS=random:SEED),
//   random kills and random cancels. A clerk closes accounts under transfers in flight,
//   so refunds are refused and transfers park in `needs-review`; an operator resolves
//   each by an Update (`refundTo` another account, or `retryRefund` once the account is
//   open again). PROPERTY_SEED repeats a run's plan and the bank's faults; the moments of
//   kills, closings and decisions still depend on timing. Size: PROPERTY_TRANSFERS
//   (default 40) and PROPERTY_KILLS (default 3); CI runs 200 and 10.
//
// The engine (runScenario, reviewDesk, checkTheMoney) is test/support/property.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prng } from '../../src/bank-faults';
import { startDevServer } from '../../tools/dev-server';
import { freePort, HAS_NODE_SQLITE, runScript, testServer, uniqueId } from '../helpers';
import {
  checkTheMoney,
  checkTheRun,
  count,
  createBank,
  OPENING,
  planTransfer,
  randomPlans,
  readBank,
  reason,
  reviewDesk,
  runScenario,
  summary,
  total,
  type Kind,
} from '../support/property';

jest.setTimeout(900_000);

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
    await createBank(bankFile);
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
        bankDb: bankFile,
        taskQueue,
        workerEnv: { BANK_DELAY_MS: '4000-5600' },
        kills: CHAOS_KILLS,
        // Longer than two bank calls, so most attempts finish between kills (3-8 s left none at times).
        killGapMs: [8000, 14000],
        random: Math.random,
        deadlineMs: 600_000,
        infrastructure: [
          {
            atFraction: 0.5,
            name: 'server',
            run: async () => {
              await server.teardown(); // workers and the client reconnect on their own
              server = await startDevServer(serverOptions);
              restarts++;
            },
          },
        ],
      });
      const bank = await readBank(bankFile);
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

  test(`property: ${PROPERTY_TRANSFERS} transfers under random faults, kills, cancels and closed accounts (PROPERTY_SEED=${seed})`, async () => {
    const started = Date.now();
    const random = prng(`property ${seed}`);
    const bankFile = path.join(dir, 'bank.sqlite');
    await createBank(bankFile);
    const taskQueue = uniqueId('property');
    const plans = randomPlans(random, PROPERTY_TRANSFERS, `p${seed}`);
    // The clerk and the operator draw from a stream of their own, seeded from the same one,
    // so that the killer's draws and theirs do not shift each other.
    const desk = reviewDesk({
      bankDb: bankFile,
      plans,
      taskQueue,
      random: prng(`property ${seed} desk ${random()}`),
      parksWanted: Math.max(2, Math.round(PROPERTY_TRANSFERS / 40)),
    });
    const result = await runScenario({
      plans,
      address: testServer().address,
      bankDb: bankFile,
      taskQueue,
      workerEnv: { BANK_FAULTS: `random:${seed}` },
      kills: PROPERTY_KILLS,
      killGapMs: [2000, 8000],
      random,
      deadlineMs: 600_000,
      alongside: desk.alongside,
    });
    const bank = await readBank(bankFile);
    console.log(
      `property: seed ${seed}; ${summary(plans, result, desk.report, bank.balances)}; ` +
        `${Math.round((Date.now() - started) / 1000)} s. Repeat with PROPERTY_SEED=${seed}`,
    );
    // At the default size and up, transfers must park and both kinds of Update end a review.
    checkTheRun(result, desk.report, bank, { kills: PROPERTY_KILLS, mustPark: PROPERTY_TRANSFERS >= 40 });
  });
}
