// A worker host that is lost while cut off from the bank's database, in the middle of a
// transaction: no FIN or RST ever reaches the database, so its session stays open, idle in
// its transaction, with the locks it took. The bank's sessions end such a transaction after
// IDLE_IN_TRANSACTION_TIMEOUT_MS, so the next transfer on that account waits that long, not
// the hours the kernel takes to find the connection dead. Needs root (test/support/hosts.ts).
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IDLE_IN_TRANSACTION_TIMEOUT_MS, OPENING_BALANCES, PgStore } from '../../src/bank/store';
import { startPostgres, type Postgres } from '../../tools/cluster/postgres';
import { CommandProcess, compiled } from '../../tools/processes';
import { createHosts, type Hosts } from '../support/hosts';

let dataDir: string | undefined;
let hosts: Hosts | undefined;
let postgres: Postgres | undefined;
let holder: CommandProcess | undefined;
let store: PgStore | undefined;

afterAll(async () => {
  try {
    holder?.child.kill('SIGKILL');
    await holder?.exited;
    // The database first: a transaction still waiting for the lock holds the pool's end.
    await postgres?.stop();
    await store?.close();
  } finally {
    hosts?.remove();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a worker host lost mid-transaction holds its account for IDLE_IN_TRANSACTION_TIMEOUT_MS, not until TCP gives up', async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'money-transfer-bank-host-'));
  chmodSync(dataDir, 0o711); // PostgreSQL runs as its own account, and enters it
  const h = (hosts = createHosts({ 'bank-db': ['bank'], 'worker-1': ['bank'] }));
  const db = h.get('bank-db');
  postgres = await startPostgres({
    dataDir,
    host: { address: db.address(), netns: db.netns, clients: [h.subnet('bank')] },
  });
  const url = await postgres.createDatabase('bank');
  store = new PgStore(url, undefined, { warn: () => {} });
  await store.ready();
  const [account] = [...OPENING_BALANCES.keys()];

  // The worker on worker-1 locks the account's row in a transaction that then waits.
  const worker = h.get('worker-1');
  const script = `
    const { PgStore } = require(${JSON.stringify(compiled('src/bank/store.js'))});
    new PgStore(process.env.BANK_DB).transaction(async (tx) => {
      await tx.balance(${JSON.stringify(account)});
      console.log('locked');
      await new Promise(() => {});
    });`;
  holder = new CommandProcess(
    'nsenter',
    [`--net=/run/netns/${worker.netns}`, '--', process.execPath, '-e', script],
    { BANK_DB: url },
  );
  await holder.waitFor('locked', 30_000);
  // The host is lost: its link goes first, so the end of its process never reaches the database.
  worker.cut();
  holder.child.kill('SIGKILL');
  await holder.exited;

  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'still locked'>(
    (resolve) => (timer = setTimeout(resolve, 60_000, 'still locked')),
  );
  const moved = store.transaction(async (tx) => tx.balance(account!));
  const balance = await Promise.race([moved, gaveUp]);
  clearTimeout(timer);
  expect(balance).toBe(OPENING_BALANCES.get(account!));
  const waited = Date.now() - started;
  console.log(`The lost host's lock held the next transaction on ${account} for ${waited} ms`);
  // It did wait for the lost session (the lock was held), and no longer than the bound allows.
  expect(waited).toBeGreaterThan(IDLE_IN_TRANSACTION_TIMEOUT_MS / 2);
  expect(waited).toBeLessThan(IDLE_IN_TRANSACTION_TIMEOUT_MS + 5000);
}, 120_000);
