// `npm run server`: a local Temporal dev server with its Web UI, kept in a file so
// executions survive a restart.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { codecServerUrl } from '../src/platform/codec';
import { loadSettings, splitAddress, webUiPort } from '../src/platform/config';
import { startDevServer } from './dev-server';
import { ROOT } from './common';

const DB_FILE = path.join(ROOT, '.temporal', 'dev-server.sqlite');

async function main(): Promise<void> {
  const settings = loadSettings();
  const [host, port] = splitAddress(settings.address);
  mkdirSync(path.dirname(DB_FILE), { recursive: true });
  const server = await startDevServer({
    ip: host === 'localhost' ? '127.0.0.1' : host,
    port,
    ui: true,
    uiPort: webUiPort(port),
    namespace: settings.namespace,
    dbFilename: DB_FILE,
    // With a key ring (PAYLOAD_KEYS_FILE), the Web UI decodes payloads through `npm run codec-server`.
    extraArgs: settings.dataConverter ? ['--ui-codec-endpoint', codecServerUrl()] : [],
  });
  console.log(`Temporal dev server listening on ${settings.address}, namespace ${settings.namespace}.`);
  console.log(`Web UI: ${settings.webUiUrl}`);
  if (settings.dataConverter) {
    console.log(
      `Payloads are encrypted; the Web UI decodes them through ${codecServerUrl()} (npm run codec-server).`,
    );
  }
  console.log(`Data: ${path.relative(process.cwd(), DB_FILE)}. Press Ctrl-C to stop.`);

  // Signal listeners alone do not keep Node running; the timer does.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(keepAlive);
  console.log('Stopping the dev server...');
  await server.teardown();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
