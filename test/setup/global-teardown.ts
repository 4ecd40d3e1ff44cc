import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { isAlive, ROOT } from '../../tools/common';

const DRILL_DIR = path.join(ROOT, 'test', '.drill');

export default async function globalTeardown(): Promise<void> {
  removeDrillCopies();
  const state = globalThis.__MONEY_TRANSFER_TEST__;
  if (!state) return; // torn down already, by another project's teardown
  globalThis.__MONEY_TRANSFER_TEST__ = undefined;
  await state.server.teardown();
  rmSync(state.dir, { recursive: true, force: true });
}

/**
 * Tests write changed copies of the sources to test/.drill/<name>-<pid>.ts, where jest
 * compiles them. Remove the ones whose process is gone (this run's workers have exited
 * by now); another jest run in the same tree may still need its own.
 */
function removeDrillCopies(): void {
  let files: string[];
  try {
    files = readdirSync(DRILL_DIR);
  } catch {
    return;
  }
  for (const file of files) {
    const pid = Number(/-(\d+)\.ts$/.exec(file)?.[1]);
    if (pid === process.pid || !isAlive(pid)) rmSync(path.join(DRILL_DIR, file), { force: true });
  }
  if (readdirSync(DRILL_DIR).length === 0) rmSync(DRILL_DIR, { recursive: true, force: true });
}
