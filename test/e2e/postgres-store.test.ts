// The PostgreSQL bank store against a real PostgreSQL this file starts in a temp dir:
// the store contract the other stores pass, two stores (two workers) racing, and a
// worker process with BANK_DB=postgres://... moving money in the shared ledger.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PgStore, RECONNECT_WITHIN_MS, redactPassword } from '../../src/bank/store';
import { BankingService } from '../../src/bank/banking-service';
import {
  BankUnavailableError,
  InsufficientFundsError,
  STEP_ATTEMPT_TIMEOUT_MS,
  TransferAlreadyOwnedError,
} from '../../src/contract';
import { startPostgres, type Postgres } from '../../tools/cluster/postgres';
import { freePort, runScript, sleep, startWorkerProcess, testServer, uniqueId } from '../support/helpers';
import { storeContract } from '../support/store-contract';

let dataDir: string;
let postgres: Postgres;
let databases = 0;
const newDatabase = () => postgres.createDatabase(`bank_${++databases}`);

// No PostgreSQL on this machine fails every test here, with findPostgres's how-to-install.
beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'money-transfer-pg-'));
  postgres = await startPostgres({ dataDir });
}, 60_000);

afterAll(async () => {
  await postgres?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/**
 * Opens all of the pool's connections first. Each login takes a while (SCRAM), so on a
 * cold pool one transaction can finish before the next connects, and a race would not race.
 */
async function warm(store: PgStore): Promise<PgStore> {
  await Promise.all(Array.from({ length: 10 }, () => store.balances()));
  return store;
}

describe('PgStore', () => {
  storeContract(async () => warm(new PgStore(await newDatabase())));

  test('two stores on one database (two workers, two pools) racing on the same references and account move money once', async () => {
    const url = await newDatabase();
    const stores = [new PgStore(url), new PgStore(url)];
    const banks = stores.map((store) => new BankingService('bank', { store }));
    // Both create the schema at once: it is made and seeded once.
    await Promise.all(stores.map(warm));
    const ids = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        banks[i % 2]!.withdraw('85-150', 10, 'twin-withdrawal', { owner: 'wf-1' }),
      ),
    );
    expect(new Set(ids).size).toBe(1);
    // Settle and post racing on other references: each ends posted or voided, never both.
    const races = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        i % 2
          ? banks[0]!.withdraw('85-150', 10, `sp-${i >> 1}`, { owner: 'wf-2' })
          : banks[1]!.settle(`sp-${i >> 1}`, { owner: 'wf-2' }),
      ),
    );
    expect(races.filter((r) => r.status === 'rejected' && !/voided/.test(String(r.reason)))).toEqual([]);
    const posted = new Set((await stores[0]!.entries()).map((e) => e.reference));
    for (const { reference } of await stores[1]!.voided()) expect(posted.has(reference)).toBe(false);
    // The drain from both: exactly what the account holds goes, and no more.
    const drain = await Promise.allSettled(
      Array.from({ length: 250 }, (_, i) =>
        banks[i % 2]!.withdraw('85-150', 10, `drain-${i}`, { owner: `wf-drain-${i}` }),
      ),
    );
    const left = 2000 - 10 * posted.size;
    expect(drain.filter((r) => r.status === 'fulfilled')).toHaveLength(left / 10);
    // Each refusal is the bank's own answer, not a constraint the database tripped on.
    for (const r of drain)
      if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(InsufficientFundsError);
    expect((await stores[1]!.balances()).get('85-150')).toBe(0);
    // Another owner on a reference the other store posted is refused.
    await expect(
      banks[1]!.withdraw('85-150', 10, 'twin-withdrawal', { owner: 'wf-9' }),
    ).rejects.toBeInstanceOf(TransferAlreadyOwnedError);
    await Promise.all(stores.map((store) => store.close()));
  }, 60_000);

  test('balances and the ledger outlive the store that wrote them; a seed goes only into a new bank', async () => {
    const url = await newDatabase();
    const first = new BankingService('bank', { store: new PgStore(url) });
    const id = await first.withdraw('85-150', 300, 'p1-withdrawal');
    await first.store.close();
    const second = new BankingService('bank', { store: new PgStore(url, new Map([['99-999', 5]])) });
    expect(Object.fromEntries(await second.balances())).toEqual({ '85-150': 1700, '43-812': 0 });
    await expect(second.withdraw('85-150', 300, 'p1-withdrawal')).resolves.toBe(id);
    await second.store.close();
  });

  test('a wrong password is refused with the URL, and neither password is shown', async () => {
    const url = postgres.url('postgres').replace(`:${encodeURIComponent(postgres.password)}@`, ':wr0ng-pw@');
    const store = new PgStore(url);
    const failure = store.ready();
    await expect(failure).rejects.toThrow(
      `Cannot connect to the PostgreSQL bank ${redactPassword(url)}: password authentication failed`,
    );
    const message = await failure.catch((err: Error) => err.message);
    expect(message).not.toContain('wr0ng');
    expect(message).not.toContain(postgres.password);
    await store.close();
  });

  test('an unreachable database is refused with its URL, without the password', async () => {
    const url = `postgres://bank:s3cret-pw@127.0.0.1:${await freePort()}/nowhere`;
    const said: string[] = [];
    const store = new PgStore(url, undefined, { warn: (line) => said.push(line) });
    const failure = store.balances();
    await expect(failure).rejects.toThrow(
      `Cannot connect to the PostgreSQL bank ${redactPassword(url)}: connect ECONNREFUSED`,
    );
    await expect(failure).rejects.not.toThrow(/s3cret/);
    expect(said).toEqual([expect.stringContaining(`PostgreSQL bank ${redactPassword(url)}: unreachable`)]);
    expect(said.join('\n')).not.toContain('s3cret');
    await store.close();
  });
});

describe('PgStore when its database goes away', () => {
  // SIGSTOP on the postmaster and its backends: the kernel keeps the connections and takes
  // the bytes, and nothing answers, as with a host that hung or a link cut without a reset.
  let frozen: number[] = [];
  const freeze = () => {
    const children = execFileSync('pgrep', ['-P', String(postgres.process.pid)], { encoding: 'utf8' });
    frozen = [postgres.process.pid, ...children.split(/\s+/).filter(Boolean).map(Number)];
    frozen.forEach((pid) => process.kill(pid, 'SIGSTOP'));
  };
  const thaw = () => {
    frozen.forEach((pid) => process.kill(pid, 'SIGCONT'));
    frozen = [];
  };
  // A test that failed while the database was down leaves it up for the next.
  afterEach(async () => {
    thaw();
    if (!postgres.process.running) postgres = await postgres.restart();
  }, 60_000);
  /** A store that keeps what it says about its database, to count the lines. */
  async function watchedStore(url: string, reconnectWithinMs?: number, queryTimeoutMs?: number) {
    const said: string[] = [];
    const store = await warm(
      new PgStore(url, undefined, { warn: (line) => said.push(line), reconnectWithinMs, queryTimeoutMs }),
    );
    return { store, bank: new BankingService('bank', { store }), said };
  }
  const count = (said: string[], words: RegExp) => said.filter((line) => words.test(line)).length;

  test.each(['immediate', 'SIGKILL'] as const)(
    'a crash (%s) mid-transaction fails the call as BankUnavailableError, the process lives, and the pool serves again once it is back',
    async (how) => {
      const url = await newDatabase();
      const { store, bank, said } = await watchedStore(url);
      // A transaction checked out and busy when the server goes: the client the pool cannot watch.
      const busy = store.transaction((tx) =>
        (tx as unknown as { client: { query(sql: string): Promise<unknown> } }).client.query(
          'SELECT pg_sleep(30)',
        ),
      );
      await sleep(300);
      await postgres.crash(how);
      const started = Date.now();
      const failure = await busy.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(BankUnavailableError);
      expect((failure as Error).name).toBe('BankUnavailableError');
      // The driver's error, kept as the cause (an Error of Node's realm, not jest's).
      expect((failure as Error).cause).toHaveProperty('message', expect.any(String));
      // It waited for the database to come back before it gave up.
      expect(Date.now() - started).toBeGreaterThanOrEqual(RECONNECT_WITHIN_MS - 500);
      // Calls while it is down fail the same way, and it is said once.
      await expect(
        bank.withdraw('85-150', 10, `${how}-down-withdrawal`, { owner: 'wf-down' }),
      ).rejects.toBeInstanceOf(BankUnavailableError);
      expect(count(said, /unreachable/)).toBe(1);
      expect(said.join('\n')).not.toContain(postgres.password);

      postgres = await postgres.restart();
      await expect(
        bank.withdraw('85-150', 10, `${how}-back-withdrawal`, { owner: 'wf-back' }),
      ).resolves.toMatch(/^W-/);
      expect(count(said, /reachable again/)).toBe(1);
      expect(count(said, /unreachable/)).toBe(1);
      // Nothing the cut-off calls did stayed: only the call after the restart moved money.
      expect((await store.entries()).map((e) => e.reference)).toEqual([`${how}-back-withdrawal`]);
      await store.close();
    },
    90_000,
  );

  test('a database that stops answering, its connections open, fails the call as BankUnavailableError within an attempt, and serves again once it answers', async () => {
    const url = await newDatabase();
    const { store, bank, said } = await watchedStore(url, 1_000, 1_000);
    freeze();
    const started = Date.now();
    await expect(bank.withdraw('85-150', 10, 'hung-withdrawal', { owner: 'wf-hung' })).rejects.toBeInstanceOf(
      BankUnavailableError,
    );
    expect(Date.now() - started).toBeLessThan(STEP_ATTEMPT_TIMEOUT_MS);
    thaw();
    // The connections that got no answer were dropped, not given to the next call.
    const id = await bank.withdraw('85-150', 10, 'hung-withdrawal', { owner: 'wf-hung' });
    expect(id).toMatch(/^W-/);
    expect((await store.entries()).map((e) => [e.reference, e.amount])).toEqual([['hung-withdrawal', -10]]);
    expect(said).toEqual([
      expect.stringContaining(': unreachable (Query read timeout)'),
      expect.stringContaining(': reachable again'),
    ]);
    await store.close();
  }, 60_000);

  test('a call made while the database restarts waits for it and posts once', async () => {
    const url = await newDatabase();
    const { store, bank, said } = await watchedStore(url, 30_000);
    await postgres.crash('immediate');
    const call = bank.withdraw('85-150', 25, 'restart-withdrawal', { owner: 'wf-restart' });
    await sleep(1_000);
    postgres = await postgres.restart();
    const id = await call;
    expect(await bank.withdraw('85-150', 25, 'restart-withdrawal', { owner: 'wf-restart' })).toBe(id);
    expect(Object.fromEntries(await store.balances())).toEqual({ '85-150': 1975, '43-812': 0 });
    expect(said.map((line) => line.replace(/\(.*\)|[\d.]+ s/g, '…'))).toEqual([
      expect.stringMatching(/: unreachable …\. Bank calls wait up to … for it/),
      expect.stringMatching(/: reachable again, … after it was lost\.$/),
    ]);
    await store.close();
  }, 90_000);
});

describe('a worker with BANK_DB=postgres://...', () => {
  test('that cannot reach the database exits 1 at start, naming it without the password', async () => {
    const url = `postgres://bank:s3cret-pw@127.0.0.1:${await freePort()}/bank`;
    const run = await runScript('src/worker.js', [], { BANK_DB: url });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      new RegExp(
        `^Cannot connect to the PostgreSQL bank postgres://bank@127\\.0\\.0\\.1:\\d+/bank: connect ECONNREFUSED`,
      ),
    );
    expect(run.stdout + run.stderr).not.toContain('s3cret');
  });

  test('names PostgreSQL without the password; a transfer through it moves money in the ledger, which npm run balances and bank see', async () => {
    const url = await newDatabase();
    const taskQueue = uniqueId('pg-queue');
    const env = { BANK_DB: url, TEMPORAL_ADDRESS: testServer().address, TEMPORAL_TASK_QUEUE: taskQueue };
    const { worker } = await startWorkerProcess(env);
    try {
      await worker.waitFor('Bank: ');
      const password = new URL(url).password;
      expect(worker.stdout).toContain(`Bank: PostgreSQL ${redactPassword(url)}`);
      expect(worker.stdout + worker.stderr).not.toContain(password);
      const reference = uniqueId('pg-ref');
      const run = await runScript(
        'src/starter.js',
        ['--reference', reference, '--workflow-id', uniqueId('pg-transfer')],
        env,
      );
      expect(run.code).toBe(0); // completed; the ledger below shows what it moved
      const store = new PgStore(url);
      expect(Object.fromEntries(await store.balances())).toEqual({ '85-150': 1750, '43-812': 250 });
      expect((await store.entries()).map((e) => e.amount)).toEqual([-250, 250]);
      await store.close();
      // The operator's tools read and change the same ledger.
      const balances = await runScript('tools/balances.js', [], { BANK_DB: url });
      expect(balances.stdout.split('\n', 1)[0]).toBe(`Bank store: ${redactPassword(url)}`);
      expect(balances.stdout).toMatch(/\n43-812 +250\n85-150 +1750\n/);
      const closed = await runScript('tools/bank.js', ['close', '43-812'], { BANK_DB: url });
      expect(closed.stdout).toBe('43-812 is closed. Closed accounts: 43-812.\n');
      for (const run of [balances, closed]) expect(run.stdout + run.stderr).not.toContain(password);
    } finally {
      await worker.stop();
    }
  }, 60_000);
});
