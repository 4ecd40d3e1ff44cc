import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryStore, SEED_ACCOUNTS, SqliteStore, type BankStore } from '../../src/bank-store';
import { BankingService } from '../../src/banking-service';
import { InsufficientFundsError, InvalidAccountError, InvalidPaymentDetailsError } from '../../src/shared';
import { HAS_NODE_SQLITE, ROOT } from '../helpers';

const balances = (bank: BankingService) => Object.fromEntries(bank.balances());

describe('BankingService', () => {
  let bank: BankingService;
  beforeEach(() => {
    bank = new BankingService('bank-api.example.com');
  });

  test('starts with the seed accounts: 85-150 holds 2000, 43-812 holds 0', () => {
    expect(balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  test('withdraw debits and deposit credits', async () => {
    await expect(bank.withdraw('85-150', 250, 'r1-withdrawal')).resolves.toMatch(/^W-[A-Z0-9]{10}$/);
    await expect(bank.deposit('43-812', 250, 'r1-deposit')).resolves.toMatch(/^D-[A-Z0-9]{10}$/);
    expect(balances(bank)).toEqual({ '85-150': 1750, '43-812': 250 });
  });

  test('a repeated reference returns the first transaction id and moves no money', async () => {
    const first = await bank.withdraw('85-150', 100, 'r2-withdrawal');
    await expect(bank.withdraw('85-150', 100, 'r2-withdrawal')).resolves.toBe(first);
    const deposit = await bank.deposit('43-812', 100, 'r2-deposit');
    await expect(bank.deposit('43-812', 100, 'r2-deposit')).resolves.toBe(deposit);
    expect(balances(bank)).toEqual({ '85-150': 1900, '43-812': 100 });
    expect(bank.store.entries()).toHaveLength(2);
  });

  test('the whole balance can go, and not one unit more', async () => {
    await expect(bank.withdraw('85-150', 2001, 'r3a')).rejects.toThrow(
      new InsufficientFundsError('The account 85-150 has insufficient funds to complete this transaction.'),
    );
    await expect(bank.withdraw('85-150', 2000, 'r3b')).resolves.toMatch(/^W-/);
    await expect(bank.withdraw('43-812', 1, 'r3c')).rejects.toBeInstanceOf(InsufficientFundsError);
    expect(balances(bank)).toEqual({ '85-150': 0, '43-812': 0 });
  });

  test('an unknown account is InvalidAccountError and moves nothing', async () => {
    await expect(bank.withdraw('85-151', 1, 'r4a')).rejects.toThrow(
      new InvalidAccountError('The account number 85-151 is invalid.'),
    );
    await expect(bank.deposit('43-813', 1, 'r4b')).rejects.toBeInstanceOf(InvalidAccountError);
    expect(balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
    expect(bank.store.entries()).toEqual([]);
  });

  test.each([0, -5, 2.5, NaN, Infinity, Number.MAX_SAFE_INTEGER + 2])(
    'refuses amount %p with InvalidPaymentDetailsError',
    async (amount) => {
      await expect(bank.withdraw('85-150', amount, 'r5')).rejects.toBeInstanceOf(InvalidPaymentDetailsError);
      await expect(bank.deposit('43-812', amount, 'r5')).rejects.toBeInstanceOf(InvalidPaymentDetailsError);
      expect(balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
    },
  );

  test('a failed call records nothing, so its retry is judged afresh', async () => {
    const store = new MemoryStore(
      new Map([
        ['A', 0],
        ['B', 500],
      ]),
    );
    const small = new BankingService('bank', { store });
    await expect(small.withdraw('A', 100, 'r6-withdrawal')).rejects.toBeInstanceOf(InsufficientFundsError);
    await small.deposit('A', 100, 'r6-topup');
    await expect(small.withdraw('A', 100, 'r6-withdrawal')).resolves.toMatch(/^W-/);
  });

  test('depositThatFails throws a plain Error, which Temporal retries, and moves nothing', async () => {
    const failure = bank.depositThatFails('43-812', 1, 'r7');
    await expect(failure).rejects.toThrow('This deposit has failed.');
    await expect(failure).rejects.toHaveProperty('name', 'Error');
    expect(balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  test('delayMs makes each call wait', async () => {
    const slow = new BankingService('bank', { delayMs: 200 });
    const started = Date.now();
    await slow.deposit('43-812', 1, 'r8');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  test('bank errors carry their class name as their name, which becomes the failure type', () => {
    expect(new InvalidAccountError('x').name).toBe('InvalidAccountError');
    expect(new InsufficientFundsError('x').name).toBe('InsufficientFundsError');
    expect(new InvalidPaymentDetailsError('x').name).toBe('InvalidPaymentDetailsError');
  });
});

/** The checks every store must pass, whatever keeps its state. */
function storeContract(open: () => BankStore) {
  test('a transaction that throws keeps none of its writes', () => {
    const store = open();
    expect(() =>
      store.transaction((tx) => {
        tx.post({ reference: 'x1', transactionId: 'W-1', account: '85-150', amount: -100 });
        throw new Error('changed my mind');
      }),
    ).toThrow('changed my mind');
    expect(store.balances().get('85-150')).toBe(2000);
    expect(store.entries()).toEqual([]);
    store.close();
  });

  test('a transaction sees its own writes', () => {
    const store = open();
    store.transaction((tx) => {
      tx.post({ reference: 'x2', transactionId: 'W-2', account: '85-150', amount: -100 });
      expect(tx.balance('85-150')).toBe(1900);
      expect(tx.transactionFor('x2')).toBe('W-2');
    });
    expect(store.balances().get('85-150')).toBe(1900);
    store.close();
  });
}

describe('MemoryStore', () => {
  storeContract(() => new MemoryStore());
});

// node:sqlite exists from Node 22.5; on older Node the store's error message is what we can test.
if (HAS_NODE_SQLITE) {
  describe('SqliteStore', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-bank-'));
    });
    afterEach(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    storeContract(() => new SqliteStore(path.join(dir, 'bank.sqlite')));

    test('balances and the ledger outlive the process that wrote them', async () => {
      const file = path.join(dir, 'bank.sqlite');
      const first = new BankingService('bank', { store: new SqliteStore(file) });
      const id = await first.withdraw('85-150', 300, 'p1-withdrawal');
      first.store.close();

      const second = new BankingService('bank', { store: new SqliteStore(file) });
      expect(balances(second)).toEqual({ '85-150': 1700, '43-812': 0 });
      await expect(second.withdraw('85-150', 300, 'p1-withdrawal')).resolves.toBe(id);
      expect(balances(second)).toEqual({ '85-150': 1700, '43-812': 0 });
      second.store.close();
    });

    test('nothing is half-written when the writing process is killed with SIGKILL', async () => {
      const file = path.join(dir, 'bank.sqlite');
      const seed = new Map(
        Array.from({ length: 10 }, (_, i) => [`acct-${i}`, 1_000_000] as [string, number]),
      );
      new SqliteStore(file, seed).close();
      // A child that moves money between random accounts as fast as it can.
      const script = path.join(dir, 'writer.js');
      writeFileSync(
        script,
        `const { SqliteStore } = require(${JSON.stringify(path.join(ROOT, 'lib', 'src', 'bank-store.js'))});
       const { BankingService } = require(${JSON.stringify(path.join(ROOT, 'lib', 'src', 'banking-service.js'))});
       const bank = new BankingService('bank', { store: new SqliteStore(process.argv[2]) });
       let n = 0;
       process.send('ready');
       (async () => { for (;;) {
         const from = 'acct-' + (n % 10), to = 'acct-' + ((n * 7 + 3) % 10);
         await bank.withdraw(from, 1 + (n % 50), 'k' + n + '-w');
         await bank.deposit(to, 1 + (n % 50), 'k' + n + '-d');
         n++;
       } })();`,
      );
      for (let kill = 0; kill < 5; kill++) {
        const child = fork(script, [file], { stdio: 'ignore' });
        await new Promise((resolve) => child.once('message', resolve));
        await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
      }

      const store = new SqliteStore(file);
      const entries = store.entries();
      expect(entries.length).toBeGreaterThan(10); // the children did write
      for (const [account, balance] of store.balances()) {
        const moved = entries.filter((e) => e.account === account).reduce((sum, e) => sum + e.amount, 0);
        expect(balance).toBe(seed.get(account)! + moved);
      }
      store.close();
    });
  });
} else {
  test('SqliteStore, on a Node without node:sqlite, says which Node version it needs', () => {
    expect(() => new SqliteStore(path.join(tmpdir(), 'never-created.sqlite'))).toThrow(
      /needs Node\.js 22\.5 or newer \(this is v\d+/,
    );
  });
}

test('SEED_ACCOUNTS holds the seed balances', () => {
  expect(Object.fromEntries(SEED_ACCOUNTS)).toEqual({ '85-150': 2000, '43-812': 0 });
});
