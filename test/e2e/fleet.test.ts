// A fleet: 3 worker processes on one task queue, sharing one SQLite bank file, as the
// SQLite store says they can. The property generator's transfers run under random bank
// faults, SIGKILLs of a random worker, cancels, duplicate submissions and the review
// desk, and the money rule is checked as in the property test. No worker may report the
// file busy: the store's BEGIN IMMEDIATE and busy_timeout must absorb the contention.
// Size: FLEET_TRANSFERS (default 30) and FLEET_KILLS (default 3); FLEET_SEED repeats a
// run's plan and faults. CI runs 150 and 6.
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore } from '../../src/bank/store';
import { HAS_NODE_SQLITE, testServer } from '../support/helpers';
import { summary } from '../support/property';
import { propertyRun, propertySize, tempDirEach } from '../support/property-run';

jest.setTimeout(900_000);

const WORKERS = 3;
const size = propertySize('fleet', { transfers: 30, kills: 3 });

if (!HAS_NODE_SQLITE) {
  // Node 24 runs the fleet in CI; here, the store must say why it cannot.
  test('fleet needs node:sqlite: opening a SQLite bank says which Node it needs', () => {
    expect(() => openStore({ BANK_DB: path.join(tmpdir(), 'never-created.sqlite') })).toThrow(
      /The SQLite bank store needs Node\.js 22\.5 or newer/,
    );
  });
}

if (HAS_NODE_SQLITE) {
  const dir = tempDirEach('fleet');

  test(`fleet: ${WORKERS} workers share one SQLite bank: ${size.transfers} transfers under random faults, ${size.kills}+ SIGKILLs, cancels and closed accounts (FLEET_SEED=${size.seed})`, async () => {
    const result = await propertyRun(size, {
      address: testServer().address,
      bankDb: path.join(dir(), 'bank.sqlite'),
      workers: WORKERS,
      killGapMs: [2000, 8000],
      line: (run) =>
        `${WORKERS} workers on one SQLite file; ${summary(run.plans, run.result, run.report, run.balances)}; ` +
        `faults by worker ${run.result.faultsBySlot.join('/')}, ${run.result.busy} SQLITE_BUSY`,
    });
    // Every worker took part (each injected faults, so each ran bank calls), and none found the file busy.
    expect({ busy: result.busy, idle: result.faultsBySlot.filter((n) => n === 0).length }).toEqual({
      busy: 0,
      idle: 0,
    });
  });
}
