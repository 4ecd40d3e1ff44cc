// The checks every bank store must pass, run by each store's tests (unit for memory and
// SQLite, e2e for PostgreSQL, which needs a server).
import type { BankStore } from '../../src/bank/store';
import { BankingService } from '../../src/bank/banking-service';

/** The checks every store must pass, whatever keeps its state. */
export function storeContract(open: () => Promise<BankStore> | BankStore) {
  const entry = (reference: string, amount: number) => ({
    reference,
    transactionId: `W-${reference}`,
    account: '85-150',
    amount,
    owner: 'wf-1',
  });

  test('a transaction that throws keeps none of its writes', async () => {
    const store = await open();
    await expect(
      store.transaction(async (tx) => {
        await tx.post(entry('x1', -100));
        await tx.markVoided({ reference: 'x1-void', owner: 'wf-1' });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect((await store.balances()).get('85-150')).toBe(2000);
    expect(await store.entries()).toEqual([]);
    expect(await store.voided()).toEqual([]);
    await store.close();
  });

  test('a transaction sees its own writes, and the entry keeps its owner', async () => {
    const store = await open();
    await store.transaction(async (tx) => {
      await tx.post(entry('x2', -100));
      expect(await tx.balance('85-150')).toBe(1900);
      expect(await tx.entryFor('x2')).toEqual(entry('x2', -100));
    });
    expect((await store.balances()).get('85-150')).toBe(1900);
    expect(await store.entries()).toEqual([entry('x2', -100)]);
    await store.close();
  });

  test('a void keeps its owner and the refusal, and is kept only if the transaction commits', async () => {
    const store = await open();
    await expect(
      store.transaction(async (tx) => {
        await tx.markVoided({ reference: 'v1', owner: 'wf-1' });
        expect(await tx.voidFor('v1')).toEqual({ reference: 'v1', owner: 'wf-1' });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await store.voided()).toEqual([]);
    const refusal = { type: 'InsufficientFundsError', message: 'no money' };
    await store.transaction((tx) => tx.markVoided({ reference: 'v2', owner: 'wf-2', refusal }));
    await store.transaction((tx) => tx.markVoided({ reference: 'v3', owner: 'wf-3' }));
    expect(await store.voided()).toEqual([
      { reference: 'v2', owner: 'wf-2', refusal },
      { reference: 'v3', owner: 'wf-3' },
    ]);
    expect(await store.transaction((tx) => tx.voidFor('v2'))).toEqual({
      reference: 'v2',
      owner: 'wf-2',
      refusal,
    });
    expect(await store.transaction((tx) => tx.voidFor('v4'))).toBeUndefined();
    await store.close();
  });

  test('closing and reopening an account is kept; an unknown account is refused', async () => {
    const store = await open();
    await store.setClosed('43-812', true);
    expect(await store.closedAccounts()).toEqual(['43-812']);
    expect(await store.transaction((tx) => tx.isClosed('43-812'))).toBe(true);
    await store.setClosed('43-812', false);
    expect(await store.closedAccounts()).toEqual([]);
    await expect(store.setClosed('99-999', true)).rejects.toThrow('No account 99-999 in this bank.');
    await store.close();
  });

  test('concurrent transactions do not interleave: 50 racing posts of one reference move money once', async () => {
    const store = await open();
    const bank = new BankingService('bank', { store });
    const ids = await Promise.all(
      Array.from({ length: 50 }, () => bank.withdraw('85-150', 10, 'race-withdrawal', { owner: 'wf-1' })),
    );
    expect(new Set(ids).size).toBe(1);
    // And 50 different references from one account, more than it holds: exactly what it holds goes.
    const results = await Promise.allSettled(
      Array.from({ length: 250 }, (_, i) => bank.withdraw('85-150', 10, `drain-${i}`, { owner: `wf-${i}` })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(199);
    expect((await store.balances()).get('85-150')).toBe(0);
    await store.close();
  });
}
