import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  isPostgresUrl,
  MemoryStore,
  redactPassword,
  OPENING_BALANCES,
  SqliteStore,
} from '../../src/bank/store';
import { BankFaultsError, parseFaults, randomFaults, UnreliableBank } from '../../src/bank/faults';
import { bankFromEnv } from '../../src/bank/from-env';
import { BankingService } from '../../src/bank/banking-service';
import {
  AccountClosedError,
  IdempotencyKeyReusedError,
  InsufficientFundsError,
  InvalidAccountError,
  InvalidPaymentDetailsError,
  ReferenceVoidedError,
  TransferAlreadyOwnedError,
} from '../../src/contract';
import { HAS_NODE_SQLITE, ROOT, voidedReferences } from '../support/helpers';
import { storeContract } from '../support/store-contract';

const balances = async (bank: BankingService) => Object.fromEntries(await bank.balances());

describe('BankingService', () => {
  let bank: BankingService;
  beforeEach(() => {
    bank = new BankingService('bank-api.example.com');
  });

  test("starts with the template's accounts: 85-150 holds 2000, 43-812 holds 0", async () => {
    expect(await balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  test('withdraw debits and deposit credits', async () => {
    await expect(bank.withdraw('85-150', 250, 'r1-withdrawal')).resolves.toMatch(/^W-[A-Z0-9]{10}$/);
    await expect(bank.deposit('43-812', 250, 'r1-deposit')).resolves.toMatch(/^D-[A-Z0-9]{10}$/);
    expect(await balances(bank)).toEqual({ '85-150': 1750, '43-812': 250 });
  });

  test('a repeated reference returns the first transaction id and moves no money', async () => {
    const first = await bank.withdraw('85-150', 100, 'r2-withdrawal');
    await expect(bank.withdraw('85-150', 100, 'r2-withdrawal')).resolves.toBe(first);
    const deposit = await bank.deposit('43-812', 100, 'r2-deposit');
    await expect(bank.deposit('43-812', 100, 'r2-deposit')).resolves.toBe(deposit);
    expect(await balances(bank)).toEqual({ '85-150': 1900, '43-812': 100 });
    expect(await bank.store.entries()).toHaveLength(2);
  });

  test('the whole balance can go, and not one unit more', async () => {
    await expect(bank.withdraw('85-150', 2001, 'r3a')).rejects.toThrow(
      new InsufficientFundsError('The account 85-150 has insufficient funds to complete this transaction.'),
    );
    await expect(bank.withdraw('85-150', 2000, 'r3b')).resolves.toMatch(/^W-/);
    await expect(bank.withdraw('43-812', 1, 'r3c')).rejects.toBeInstanceOf(InsufficientFundsError);
    expect(await balances(bank)).toEqual({ '85-150': 0, '43-812': 0 });
  });

  test('an unknown account is InvalidAccountError and moves nothing', async () => {
    await expect(bank.withdraw('85-151', 1, 'r4a')).rejects.toThrow(
      new InvalidAccountError('The account number 85-151 is invalid.'),
    );
    await expect(bank.deposit('43-813', 1, 'r4b')).rejects.toBeInstanceOf(InvalidAccountError);
    expect(await balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
    expect(await bank.store.entries()).toEqual([]);
  });

  test.each([0, -5, 2.5, NaN, Infinity, Number.MAX_SAFE_INTEGER + 2])(
    'refuses amount %p with InvalidPaymentDetailsError',
    async (amount) => {
      await expect(bank.withdraw('85-150', amount, 'r5')).rejects.toBeInstanceOf(InvalidPaymentDetailsError);
      await expect(bank.deposit('43-812', amount, 'r5')).rejects.toBeInstanceOf(InvalidPaymentDetailsError);
      expect(await balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
    },
  );

  test('a definite no is final: it voids the reference, so the same call cannot post later', async () => {
    const store = new MemoryStore(
      new Map([
        ['A', 0],
        ['B', 500],
      ]),
    );
    const small = new BankingService('bank', { store });
    await expect(small.withdraw('A', 100, 'r6-withdrawal')).rejects.toBeInstanceOf(InsufficientFundsError);
    await expect(small.deposit('NOPE', 100, 'r6-deposit')).rejects.toBeInstanceOf(InvalidAccountError);
    expect(await voidedReferences(store)).toEqual(['r6-withdrawal', 'r6-deposit']);
    expect(await store.entries()).toEqual([]);
    await small.deposit('A', 100, 'r6-topup');
    // An attempt of the refused call that was still in flight finds the reference void,
    // and gets the bank's answer again, not a bare "voided".
    await expect(small.withdraw('A', 100, 'r6-withdrawal')).rejects.toThrow(
      new InsufficientFundsError('The account A has insufficient funds to complete this transaction.'),
    );
    await expect(small.deposit('NOPE', 100, 'r6-deposit')).rejects.toThrow(
      new InvalidAccountError('The account number NOPE is invalid.'),
    );
    expect(await small.balances()).toEqual(
      new Map([
        ['A', 100],
        ['B', 500],
      ]),
    );
    // A new payment, under a new reference, is judged afresh.
    await expect(small.withdraw('A', 100, 'r7-withdrawal')).resolves.toMatch(/^W-/);
  });

  test('depositThatFails throws a plain Error, which Temporal retries, and moves nothing', async () => {
    const failure = bank.depositThatFails('43-812', 1, 'r7');
    await expect(failure).rejects.toThrow('This deposit has failed.');
    await expect(failure).rejects.toHaveProperty('name', 'Error');
    expect(await balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  test('delayMs makes each call wait', async () => {
    const slow = new UnreliableBank('bank', { delayMs: 200 });
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

describe('unknown outcomes: key reuse, settle and void, cancellation', () => {
  let bank: BankingService;
  beforeEach(() => {
    bank = new BankingService('bank-api.example.com');
  });

  test.each([
    ['another amount', '85-150', 900],
    ['another account', '43-812', 100],
  ])(
    'a reference reused for %s is IdempotencyKeyReusedError naming it, and moves nothing',
    async (_, account, amount) => {
      await bank.deposit('43-812', 500, 'seed-funds');
      await bank.withdraw('85-150', 100, 'r-withdrawal');
      const before = await balances(bank);
      const reuse = bank.withdraw(account, amount, 'r-withdrawal');
      await expect(reuse).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
      await expect(reuse).rejects.toThrow(/The reference r-withdrawal was already used for -100 on 85-150/);
      expect(await balances(bank)).toEqual(before);
    },
  );

  test('settle finds a posted transaction and leaves it alone', async () => {
    const id = await bank.withdraw('85-150', 100, 's1-withdrawal');
    await expect(bank.settle('s1-withdrawal')).resolves.toEqual({
      posted: true,
      transactionId: id,
      account: '85-150',
    });
    expect(await voidedReferences(bank.store)).toEqual([]);
    await expect(bank.withdraw('85-150', 100, 's1-withdrawal')).resolves.toBe(id);
  });

  test('settle voids a reference that never posted, so a late call under it cannot post', async () => {
    await expect(bank.settle('s2-deposit')).resolves.toEqual({ posted: false });
    await expect(bank.settle('s2-deposit')).resolves.toEqual({ posted: false });
    const late = bank.deposit('43-812', 100, 's2-deposit');
    await expect(late).rejects.toBeInstanceOf(ReferenceVoidedError);
    await expect(late).rejects.toThrow(
      'The reference s2-deposit was voided, so nothing was posted under it.',
    );
    expect(await balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
    expect(await voidedReferences(bank.store)).toEqual(['s2-deposit']);
  });

  test('an aborted call does not post, even after its delay', async () => {
    const slow = new UnreliableBank('bank', { delayMs: 300 });
    const controller = new AbortController();
    const call = slow.withdraw('85-150', 100, 'c1-withdrawal', { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(call).rejects.toThrow(/abort/i);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await balances(slow)).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  test('a late fault ignores the abort and posts after its delay', async () => {
    const late = new UnreliableBank('bank', { faults: parseFaults('withdraw:late=200') });
    const controller = new AbortController();
    controller.abort();
    await expect(
      late.withdraw('85-150', 100, 'c2-withdrawal', { signal: controller.signal }),
    ).resolves.toMatch(/^W-/);
    expect((await balances(late))['85-150']).toBe(1900);
  });

  test('a late call that arrives after the void posts nothing', async () => {
    const late = new UnreliableBank('bank', { faults: parseFaults('deposit:late=200') });
    const call = late.deposit('43-812', 100, 'c3-deposit');
    await expect(late.settle('c3-deposit')).resolves.toEqual({ posted: false });
    await expect(call).rejects.toBeInstanceOf(ReferenceVoidedError);
    expect((await balances(late))['43-812']).toBe(0);
  });
});

describe('one owner per reference', () => {
  let bank: BankingService;
  beforeEach(() => {
    bank = new BankingService('bank-api.example.com');
  });
  const a = { owner: 'pay-a' };
  const b = { owner: 'pay-b' };

  test('another owner cannot post under a reference: TransferAlreadyOwnedError names the owner, nothing moves', async () => {
    const id = await bank.withdraw('85-150', 10, 'o1-withdrawal', a);
    const twin = bank.withdraw('85-150', 10, 'o1-withdrawal', b);
    await expect(twin).rejects.toBeInstanceOf(TransferAlreadyOwnedError);
    await expect(twin).rejects.toThrow(
      'The reference o1-withdrawal belongs to transfer pay-a; nothing was moved for pay-b.',
    );
    await expect(bank.withdraw('85-150', 10, 'o1-withdrawal', a)).resolves.toBe(id);
    expect(await balances(bank)).toEqual({ '85-150': 1990, '43-812': 0 });
  });

  test('another owner cannot settle a reference: not a posted one, and not one voided by its owner', async () => {
    await bank.withdraw('85-150', 10, 'o2-withdrawal', a);
    await expect(bank.settle('o2-withdrawal', b)).rejects.toBeInstanceOf(TransferAlreadyOwnedError);
    await expect(bank.settle('o2-deposit', a)).resolves.toEqual({ posted: false });
    await expect(bank.settle('o2-deposit', b)).rejects.toThrow(/belongs to transfer pay-a/);
    await expect(bank.deposit('43-812', 10, 'o2-deposit', b)).rejects.toBeInstanceOf(
      TransferAlreadyOwnedError,
    );
    expect(await voidedReferences(bank.store)).toEqual(['o2-deposit']);
  });

  test('a settle binds an unused reference to its caller, so a twin that comes later cannot post under it', async () => {
    await expect(bank.settle('o3-withdrawal', a)).resolves.toEqual({ posted: false });
    await expect(bank.withdraw('85-150', 10, 'o3-withdrawal', b)).rejects.toBeInstanceOf(
      TransferAlreadyOwnedError,
    );
    await expect(bank.withdraw('85-150', 10, 'o3-withdrawal', a)).rejects.toBeInstanceOf(
      ReferenceVoidedError,
    );
    expect(await balances(bank)).toEqual({ '85-150': 2000, '43-812': 0 });
  });

  test('a refusal binds the reference too, and its owner gets the same answer on a retry', async () => {
    await expect(bank.withdraw('85-150', 5000, 'o4-withdrawal', a)).rejects.toBeInstanceOf(
      InsufficientFundsError,
    );
    await expect(bank.withdraw('85-150', 5000, 'o4-withdrawal', a)).rejects.toBeInstanceOf(
      InsufficientFundsError,
    );
    await expect(bank.withdraw('85-150', 5000, 'o4-withdrawal', b)).rejects.toBeInstanceOf(
      TransferAlreadyOwnedError,
    );
  });

  test("referenceState reads a reference (unused, posted, voided) and changes nothing; another owner's is refused", async () => {
    await expect(bank.referenceState('o6-withdrawal', a)).resolves.toEqual({ state: 'unused' });
    // Read, not bound: another owner may still use it.
    const id = await bank.withdraw('85-150', 10, 'o6-withdrawal', b);
    await expect(bank.referenceState('o6-withdrawal', b)).resolves.toEqual({
      state: 'posted',
      transactionId: id,
      account: '85-150',
    });
    await expect(bank.referenceState('o6-withdrawal', a)).rejects.toBeInstanceOf(TransferAlreadyOwnedError);
    await bank.settle('o6-deposit', b);
    await expect(bank.referenceState('o6-deposit', b)).resolves.toEqual({ state: 'voided' });
    expect(await voidedReferences(bank.store)).toEqual(['o6-deposit']);
  });

  test('twins racing on one reference: exactly one posts, the others are refused', async () => {
    const twins = await Promise.allSettled(
      ['pay-1', 'pay-2', 'pay-3'].map((owner) => bank.withdraw('85-150', 10, 'o5-withdrawal', { owner })),
    );
    expect(twins.filter((t) => t.status === 'fulfilled')).toHaveLength(1);
    for (const t of twins.filter((t) => t.status === 'rejected'))
      expect(t.reason).toBeInstanceOf(TransferAlreadyOwnedError);
    expect(await balances(bank)).toEqual({ '85-150': 1990, '43-812': 0 });
  });
});

describe('closed accounts', () => {
  test('a closed account takes no money in or out (AccountClosedError, reference voided); reopened, it does', async () => {
    const bank = new BankingService('bank');
    await bank.store.setClosed('85-150', true);
    expect(await bank.store.closedAccounts()).toEqual(['85-150']);
    await expect(bank.withdraw('85-150', 1, 'k1')).rejects.toThrow(
      new AccountClosedError('The account 85-150 is closed.'),
    );
    await expect(bank.refund('85-150', 1, 'k2')).rejects.toBeInstanceOf(AccountClosedError);
    expect(await voidedReferences(bank.store)).toEqual(['k1', 'k2']);
    await expect(bank.openAccounts()).resolves.toEqual(['43-812']);
    await bank.store.setClosed('85-150', false);
    await expect(bank.withdraw('85-150', 1, 'k3')).resolves.toMatch(/^W-/);
    await expect(bank.store.setClosed('99-999', true)).rejects.toThrow('No account 99-999 in this bank.');
  });
});

describe('BANK_FAULTS', () => {
  test('fail: a plain error, nothing posted', async () => {
    const bank = new UnreliableBank('bank', { faults: parseFaults('withdraw:fail') });
    const call = bank.withdraw('85-150', 100, 'f1-withdrawal');
    await expect(call).rejects.toThrow('Injected fault: withdraw f1-withdrawal failed before posting.');
    await expect(call).rejects.toHaveProperty('name', 'Error');
    expect(await bank.store.entries()).toEqual([]);
  });

  test('post-then-fail: the money moves, then a plain error; the retry finds the same transaction', async () => {
    const bank = new UnreliableBank('bank', { faults: parseFaults('deposit:post-then-fail*1') });
    await expect(bank.deposit('43-812', 100, 'f2-deposit')).rejects.toThrow(
      'Injected fault: deposit f2-deposit posted, then its reply was lost.',
    );
    expect((await balances(bank))['43-812']).toBe(100);
    const [entry] = await bank.store.entries();
    await expect(bank.deposit('43-812', 100, 'f2-deposit')).resolves.toBe(entry!.transactionId);
    expect((await balances(bank))['43-812']).toBe(100);
  });

  test('reject: a definite InvalidAccountError that voids the reference; nothing posted', async () => {
    const bank = new UnreliableBank('bank', { faults: parseFaults('refund:reject') });
    await expect(bank.refund('85-150', 100, 'f3-refund')).rejects.toBeInstanceOf(InvalidAccountError);
    expect(await bank.store.entries()).toEqual([]);
    expect(await voidedReferences(bank.store)).toEqual(['f3-refund']);
  });

  test('reject after an earlier attempt posted returns that transaction, as a real bank would', async () => {
    const bank = new UnreliableBank('bank', { faults: parseFaults('withdraw:reject') });
    const first = await new BankingService('bank', { store: bank.store }).withdraw(
      '85-150',
      100,
      'f4-withdrawal',
    );
    await expect(bank.withdraw('85-150', 100, 'f4-withdrawal')).resolves.toBe(first);
    expect(await voidedReferences(bank.store)).toEqual([]);
  });

  test('*TIMES limits a fault to the first calls of each reference, and each op has its own rule', async () => {
    const bank = new UnreliableBank('bank', { faults: parseFaults('deposit:fail*2, lookup:fail*1') });
    await expect(bank.deposit('43-812', 1, 'a')).rejects.toThrow(/Injected/);
    await expect(bank.deposit('43-812', 1, 'b')).rejects.toThrow(/Injected/);
    await expect(bank.deposit('43-812', 1, 'a')).rejects.toThrow(/Injected/);
    await expect(bank.deposit('43-812', 1, 'a')).resolves.toMatch(/^D-/);
    await expect(bank.withdraw('85-150', 1, 'c')).resolves.toMatch(/^W-/);
    await expect(bank.settle('d')).rejects.toThrow('Injected fault: lookup d failed before posting.');
    expect(await voidedReferences(bank.store)).toEqual([]);
    await expect(bank.settle('d')).resolves.toEqual({ posted: false });
  });

  test.each([
    ['deposit', /cannot read 'deposit'/],
    ['transfer:fail', /unknown operation 'transfer'/],
    ['deposit:explode', /cannot read 'deposit:explode'/],
    ['deposit:fail=100', /only 'late' takes a delay/],
    ['lookup:reject', /a lookup cannot be rejected/],
    ['deposit:fail*0', /\*TIMES must be at least 1/],
    ['deposit:fail,deposit:late', /'deposit' is given twice/],
  ])('BANK_FAULTS=%s is refused with a clear message', (spec, message) => {
    expect(() => parseFaults(spec)).toThrow(BankFaultsError);
    expect(() => parseFaults(spec)).toThrow(message);
    expect(() => bankFromEnv({ BANK_FAULTS: spec })).toThrow(message);
  });

  test('bankFromEnv adds latency and faults only when BANK_DELAY_MS or BANK_FAULTS asks for them', async () => {
    const plain = bankFromEnv({});
    expect(plain).toBeInstanceOf(BankingService);
    expect(plain).not.toBeInstanceOf(UnreliableBank);
    expect(bankFromEnv({ BANK_FAULTS: 'deposit:fail' })).toBeInstanceOf(UnreliableBank);
    expect(bankFromEnv({ BANK_DELAY_MS: '5' })).toBeInstanceOf(UnreliableBank);
    await plain.store.close();
  });

  test('an empty BANK_FAULTS means no faults', () => {
    expect(parseFaults(undefined)).toBeUndefined();
    expect(parseFaults('  ')).toBeUndefined();
  });

  test('random:SEED draws the same faults for the same seed, and latencies on both sides of 5 s', () => {
    const draw = (seed: number) => {
      const plan = randomFaults(seed);
      return Array.from({ length: 400 }, (_, i) => plan.next(i % 2 ? 'deposit' : 'refund', `r${i >> 2}`));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
    const draws = draw(7);
    const kinds = new Set(draws.map((d) => d?.fault ?? 'none'));
    expect([...kinds].sort()).toEqual(['fail', 'late', 'none', 'post-then-fail', 'reject']);
    expect(draws.some((d) => !d?.fault && d!.delayMs > 5000)).toBe(true);
    expect(draws.some((d) => d?.fault === 'late' && d.delayMs > 5000)).toBe(true);
    // Refunds are never rejected: a definite refund failure would wait for an operator.
    expect(draws.filter((_, i) => i % 2 === 0).some((d) => d?.fault === 'reject')).toBe(false);
  });

  test('bankFromEnv logs each injected fault', async () => {
    const lines: string[] = [];
    const bank = bankFromEnv({ BANK_FAULTS: 'withdraw:fail' }, (line) => lines.push(line));
    await expect(bank.withdraw('85-150', 1, 'l1-withdrawal')).rejects.toThrow(/Injected/);
    expect(lines).toEqual(['Bank fault injected: fail on withdraw l1-withdrawal']);
  });

  test.each(['soon', '-5', '6000-4000', '1.5'])('BANK_DELAY_MS=%s is refused', (value) => {
    expect(() => bankFromEnv({ BANK_DELAY_MS: value })).toThrow(
      `BANK_DELAY_MS must be a whole number of milliseconds, or a range like 4000-6000, got '${value}'`,
    );
  });

  test('BANK_DELAY_MS=MIN-MAX draws the delay of each call from the range', async () => {
    const bank = bankFromEnv({ BANK_DELAY_MS: '100-200' });
    const started = Date.now();
    await bank.deposit('43-812', 1, 'd1');
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(95);
    expect(took).toBeLessThan(1000);
  });
});

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
      await first.store.close();

      const second = new BankingService('bank', { store: new SqliteStore(file) });
      expect(await balances(second)).toEqual({ '85-150': 1700, '43-812': 0 });
      await expect(second.withdraw('85-150', 300, 'p1-withdrawal')).resolves.toBe(id);
      expect(await balances(second)).toEqual({ '85-150': 1700, '43-812': 0 });
      await second.store.close();
    });

    test('nothing is half-written when the writing process is killed with SIGKILL', async () => {
      const file = path.join(dir, 'bank.sqlite');
      const seed = new Map(
        Array.from({ length: 10 }, (_, i) => [`acct-${i}`, 1_000_000] as [string, number]),
      );
      await new SqliteStore(file, seed).close();
      // A child that moves money between random accounts as fast as it can.
      const script = path.join(dir, 'writer.js');
      writeFileSync(
        script,
        `const { SqliteStore } = require(${JSON.stringify(path.join(ROOT, 'lib', 'src', 'bank', 'store.js'))});
       const { BankingService } = require(${JSON.stringify(path.join(ROOT, 'lib', 'src', 'bank', 'banking-service.js'))});
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
      const entries = await store.entries();
      expect(entries.length).toBeGreaterThan(10); // the children did write
      for (const [account, balance] of await store.balances()) {
        const moved = entries.filter((e) => e.account === account).reduce((sum, e) => sum + e.amount, 0);
        expect(balance).toBe(seed.get(account)! + moved);
      }
      await store.close();
    });
  });
} else {
  test('SqliteStore, on a Node without node:sqlite, says which Node version it needs', () => {
    expect(() => new SqliteStore(path.join(tmpdir(), 'never-created.sqlite'))).toThrow(
      /needs Node\.js 22\.5 or newer \(this is v\d+/,
    );
  });
}

test("OPENING_BALANCES holds the template's balances", () => {
  expect(Object.fromEntries(OPENING_BALANCES)).toEqual({ '85-150': 2000, '43-812': 0 });
});

describe('BANK_DB', () => {
  test('a postgres:// or postgresql:// URL selects PostgreSQL; anything else is a SQLite file', () => {
    expect(isPostgresUrl('postgres://bank:pw@db:5432/bank')).toBe(true);
    expect(isPostgresUrl('postgresql://db/bank')).toBe(true);
    expect(isPostgresUrl('.temporal/bank.sqlite')).toBe(false);
    expect(isPostgresUrl('postgres.sqlite')).toBe(false);
  });

  test('redactPassword drops the password, in the user info or a parameter, and keeps the rest', () => {
    expect(redactPassword('postgres://bank:s3cret@db:5432/bank?sslmode=require&password=s3cret')).toBe(
      'postgres://bank@db:5432/bank?sslmode=require',
    );
    expect(redactPassword('postgresql://db/bank')).toBe('postgresql://db/bank');
    expect(redactPassword('postgres://bank:s3cret@[bad')).toBe('postgres://(a URL that does not parse)');
  });

  test('openStore loads pg only for PostgreSQL, so memory and SQLite need no PostgreSQL client', () => {
    // A child process of its own: its require cache shows what the store loaded.
    const loads = (bankDb: string | undefined) =>
      execFileSync(
        process.execPath,
        [
          '-e',
          `const { openStore } = require(${JSON.stringify(path.join(ROOT, 'lib', 'src', 'bank', 'store.js'))});
           const pgLoaded = () => Object.keys(require.cache).some((file) => file.includes('/node_modules/pg/'));
           (async () => {
             try {
               const store = openStore(process.env);
               await store.close();
               console.log(store.constructor.name, pgLoaded());
             } catch (err) {
               console.log(err.message, pgLoaded()); // SQLite on a Node without node:sqlite
             }
           })();`,
        ],
        { env: { ...process.env, BANK_DB: bankDb }, encoding: 'utf8' },
      ).trim();
    expect(loads(undefined)).toBe('MemoryStore false');
    // Port 1 refuses at once; the store reports that on use, and still closes.
    expect(loads('postgres://bank:pw@127.0.0.1:1/bank')).toBe('PgStore true');
    const dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-bank-'));
    try {
      expect(loads(path.join(dir, 'bank.sqlite'))).toMatch(
        HAS_NODE_SQLITE ? /^SqliteStore false$/ : /needs Node\.js 22\.5 or newer.* false$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
