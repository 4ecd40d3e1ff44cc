// `npm run bank -- close <account>` and `reopen <account>`: break the SQLite or
// PostgreSQL bank that BANK_DB names on purpose, so a refund into a closed account is
// refused for good.
import { openStore } from '../src/bank/store';

const USAGE = `Usage: BANK_DB=<file or postgres:// URL> npm run bank -- close <account> | reopen <account>

A closed account takes no money in or out: the bank refuses with AccountClosedError.
The worker must use the same BANK_DB.`;

async function main(argv: string[]): Promise<number> {
  const [command, account, ...extra] = argv;
  if (command === undefined || command === '--help' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if ((command !== 'close' && command !== 'reopen') || !account || extra.length > 0) {
    console.error(`bank: expected close <account> or reopen <account>. Try --help.`);
    return 2;
  }
  if (!process.env.BANK_DB) {
    console.error(
      'bank: set BANK_DB to the SQLite file or postgres:// URL the worker uses; the memory bank lives inside the worker.',
    );
    return 2;
  }
  const store = openStore();
  try {
    await store.setClosed(account, command === 'close');
    const closed = await store.closedAccounts();
    console.log(
      `${account} is ${command === 'close' ? 'closed' : 'open'}. Closed accounts: ${closed.join(', ') || 'none'}.`,
    );
    return 0;
  } finally {
    await store.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
