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
// The engine (runScenario, reviewDesk, checkTheMoney) is test/support/property.ts; the
// property test's setup, shared with the fleet and cluster tests, test/support/property-run.ts.
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startDevServer } from '../../tools/dev-server';
import { freePort, HAS_NODE_SQLITE, runScript, testServer, uniqueId } from '../support/helpers';
import {
  checkTheMoney,
  count,
  createBank,
  OPENING,
  planTransfer,
  readBank,
  reason,
  runScenario,
  total,
  type Kind,
} from '../support/property';
import { propertyRun, propertySize, tempDirEach } from '../support/property-run';

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
  const dir = tempDirEach('chaos');

  const CHAOS_TRANSFERS = Number(process.env.CHAOS_TRANSFERS ?? 30);
  const CHAOS_KILLS = Number(process.env.CHAOS_KILLS ?? 4);

  test(`chaos: ${CHAOS_TRANSFERS} transfers on a bank at the timeout's edge, ${CHAOS_KILLS}+ SIGKILLs, 1 server restart`, async () => {
    const bankFile = path.join(dir(), 'bank.sqlite');
    await createBank(bankFile);
    const serverOptions = {
      ip: '127.0.0.1',
      port: await freePort(),
      dbFilename: path.join(dir(), 'temporal.sqlite'),
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

  const size = propertySize('property', { transfers: 40, kills: 3 });

  test(`property: ${size.transfers} transfers under random faults, kills, cancels and closed accounts (PROPERTY_SEED=${size.seed})`, async () => {
    await propertyRun(size, {
      address: testServer().address,
      bankDb: path.join(dir(), 'bank.sqlite'),
      killGapMs: [2000, 8000],
    });
  });
}
