// Jest global setup for the kinds that need no dev server: compile src/ and tools/ into
// lib/ if a source changed, as the npm scripts' launcher does.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ensureBuilt } = require('../../tools/run') as { ensureBuilt(): void };

export default function build(): void {
  ensureBuilt();
}
