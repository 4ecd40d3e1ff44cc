// A fleet: 3 worker processes on one task queue, sharing one SQLite bank file, as the
// SQLite store says they can. The property generator's transfers run under random bank
// faults, SIGKILLs of a random worker, cancels, duplicate submissions and the review
// desk, and the money rule is checked as in the property test. No worker may report the
// file busy: the store's BEGIN IMMEDIATE and busy_timeout must absorb the contention.
// Size: FLEET_TRANSFERS (default 30) and FLEET_KILLS (default 3); FLEET_SEED repeats a
// run's plan and faults. CI runs 150 and 6.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prng } from '../../src/bank-faults';
import { openStore } from '../../src/bank-store';
import { HAS_NODE_SQLITE, testServer, uniqueId } from '../helpers';
import {
  checkTheRun,
  createBank,
  randomPlans,
  readBank,
  reviewDesk,
  runScenario,
  summary,
} from '../support/property';

jest.setTimeout(900_000);

const WORKERS = 3;
const FLEET_TRANSFERS = Number(process.env.FLEET_TRANSFERS ?? 30);
const FLEET_KILLS = Number(process.env.FLEET_KILLS ?? 3);
const seed = Number(process.env.FLEET_SEED ?? Date.now() % 1_000_000);

if (!HAS_NODE_SQLITE) {
  // Node 24 runs the fleet in CI; here, the store must say why it cannot.
  test('fleet needs node:sqlite: opening a SQLite bank says which Node it needs', () => {
    expect(() => openStore({ BANK_DB: path.join(tmpdir(), 'never-created.sqlite') })).toThrow(
      /The SQLite bank store needs Node\.js 22\.5 or newer/,
    );
  });
}

if (HAS_NODE_SQLITE) {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-fleet-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test(`fleet: ${WORKERS} workers share one SQLite bank: ${FLEET_TRANSFERS} transfers under random faults, ${FLEET_KILLS}+ SIGKILLs, cancels and closed accounts (FLEET_SEED=${seed})`, async () => {
    const started = Date.now();
    const random = prng(`fleet ${seed}`);
    const bankFile = path.join(dir, 'bank.sqlite');
    await createBank(bankFile);
    const taskQueue = uniqueId('fleet');
    const plans = randomPlans(random, FLEET_TRANSFERS, `f${seed}`);
    const desk = reviewDesk({
      bankDb: bankFile,
      plans,
      taskQueue,
      random: prng(`fleet ${seed} desk ${random()}`),
      parksWanted: Math.max(2, Math.round(FLEET_TRANSFERS / 40)),
    });
    const result = await runScenario({
      plans,
      address: testServer().address,
      bankDb: bankFile,
      taskQueue,
      workers: WORKERS,
      workerEnv: { BANK_FAULTS: `random:${seed}` },
      kills: FLEET_KILLS,
      killGapMs: [2000, 8000],
      random,
      deadlineMs: 600_000,
      alongside: desk.alongside,
    });
    const bank = await readBank(bankFile);
    console.log(
      `fleet: seed ${seed}; ${WORKERS} workers on one SQLite file; ${summary(plans, result, desk.report, bank.balances)}; ` +
        `faults by worker ${result.faultsBySlot.join('/')}, ${result.busy} SQLITE_BUSY; ${Math.round((Date.now() - started) / 1000)} s. Repeat with FLEET_SEED=${seed}`,
    );
    // Every worker took part (each injected faults, so each ran bank calls), and none found the file busy.
    expect({ busy: result.busy, idle: result.faultsBySlot.filter((n) => n === 0).length }).toEqual({
      busy: 0,
      idle: 0,
    });
    // At 40 transfers and up, transfers must park and both kinds of Update end a review.
    checkTheRun(result, desk.report, bank, { kills: FLEET_KILLS, mustPark: FLEET_TRANSFERS >= 40 });
  });
}
