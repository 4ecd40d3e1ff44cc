import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  const state = globalThis.__MONEY_TRANSFER_TEST__;
  if (!state) return;
  await state.server.teardown();
  rmSync(state.dir, { recursive: true, force: true });
}
