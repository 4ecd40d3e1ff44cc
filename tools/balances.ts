// `npm run balances`: the accounts and balances of the bank store BANK_DB names.
import { isPostgresUrl, openStore, redactPassword } from '../src/bank/store';

async function main(): Promise<void> {
  const db = process.env.BANK_DB;
  const store = openStore();
  try {
    console.log(
      !db
        ? 'Bank store: memory. Each worker process starts from these balances and keeps its own; ' +
            'set BANK_DB=<file> or BANK_DB=postgres://... to keep and share them.'
        : `Bank store: ${isPostgresUrl(db) ? redactPassword(db) : db}`,
    );
    const balances = await store.balances();
    const width = Math.max(7, ...[...balances.keys()].map((id) => id.length));
    console.log(`${'account'.padEnd(width)}  balance`);
    for (const [account, balance] of balances) {
      console.log(`${account.padEnd(width)}  ${String(balance).padStart(7)}`);
    }
    const total = [...balances.values()].reduce((sum, b) => sum + b, 0);
    console.log(`${'total'.padEnd(width)}  ${String(total).padStart(7)}`);
    console.log(`${(await store.entries()).length} ledger entries`);
  } finally {
    await store.close();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
