// The bank a worker gets from its environment: the store BANK_DB names, and latency and
// faults only when BANK_DELAY_MS or BANK_FAULTS ask for them.
import { parseFaults, UnreliableBank } from './faults';
import { StartupError } from '../platform/config';
import { isPostgresUrl, openStore, PgStore, redactPassword } from './store';
import { BANK_HOSTNAME, BankingService } from './banking-service';

/**
 * BANK_DB names the store (memory when unset), BANK_DELAY_MS slows every call (N, or
 * MIN-MAX drawn per call), and BANK_FAULTS injects faults (see bank-faults.ts), each
 * logged. Without the last two the bank is the plain one.
 */
export function bankFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  log: (line: string) => void = (line) => console.warn(line),
): BankingService {
  const delayMs = parseDelay(env.BANK_DELAY_MS);
  const faults = parseFaults(env.BANK_FAULTS);
  const store = openStore(env);
  if (!faults && delayMs === 0) return new BankingService(BANK_HOSTNAME, { store });
  return new UnreliableBank(BANK_HOSTNAME, {
    store,
    delayMs,
    faults,
    onFault: (op, reference, { fault, delayMs: ms }) =>
      log(`Bank fault injected: ${fault} on ${op} ${reference}${fault === 'late' ? ` after ${ms} ms` : ''}`),
  });
}

function parseDelay(text: string | undefined): number | [number, number] {
  const match = /^\s*(\d+)(?:\s*-\s*(\d+))?\s*$/.exec(text ?? '0');
  if (!match || (match[2] !== undefined && Number(match[2]) < Number(match[1]))) {
    throw new Error(
      `BANK_DELAY_MS must be a whole number of milliseconds, or a range like 4000-6000, got '${text}'`,
    );
  }
  return match[2] === undefined ? Number(match[1]) : [Number(match[1]), Number(match[2])];
}

/** Where this worker's bank keeps its balances, and who shares them. */
export function bankLine(env: NodeJS.ProcessEnv = process.env): string {
  const db = env.BANK_DB;
  if (db && isPostgresUrl(db)) return `Bank: PostgreSQL ${redactPassword(db)}`;
  if (db) return `Bank: SQLite file ${db}.`;
  return (
    'Bank: in memory, starting from the opening balances. Each worker process has its own: several workers ' +
    'do not share them (BANK_DB=<file> or BANK_DB=postgres://... does).'
  );
}

/** Fails the start when the bank's PostgreSQL cannot be used, rather than every transfer later. */
export async function ensureBankReady(bank: BankingService): Promise<void> {
  if (!(bank.store instanceof PgStore)) return;
  try {
    await bank.store.ready();
  } catch (err) {
    await bank.store.close();
    throw new StartupError((err as Error).message);
  }
}
