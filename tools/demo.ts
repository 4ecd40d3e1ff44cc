// `npm run demo`: one transfer end to end. It uses the dev server at the configured
// address, or starts one there if none answers, runs a worker in this process (after the
// worker's namespace check), starts the transfer, prints its result, and stops whatever
// it started.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import {
  connectClient,
  loadSettings,
  splitAddress,
  temporalAnswers,
  webUiPort,
} from '../src/platform/config';
import { startDevServer } from './dev-server';
import { ensureNamespaceReady } from '../src/platform/namespace-check';
import { DEFAULT_TRANSFER, DEFAULT_WORKFLOW_ID, runTransfer } from '../src/starter';
import { shutdownTracing } from '../src/platform/telemetry';
import { bankFromEnv } from '../src/bank/from-env';
import { connectWorker, installLogger } from '../src/platform/worker-options';
import { createWorker } from '../src/worker';

async function main(): Promise<number> {
  installLogger('WARN');
  const settings = loadSettings();
  let server: TestWorkflowEnvironment | undefined;
  if (await temporalAnswers(settings)) {
    console.log(`Using the Temporal server at ${settings.address}.`);
  } else {
    const [host, port] = splitAddress(settings.address);
    if (!['localhost', '127.0.0.1'].includes(host)) {
      console.error(`Nothing answers at ${settings.address}, and the demo only starts servers on localhost.`);
      return 1;
    }
    console.log(`No Temporal server at ${settings.address}; starting a dev server there...`);
    server = await startDevServer({
      ip: '127.0.0.1',
      port,
      ui: true,
      uiPort: webUiPort(port),
      namespace: settings.namespace,
    });
  }

  // The same bank a worker would have: BANK_DB, BANK_DELAY_MS and BANK_FAULTS apply here too.
  const bank = bankFromEnv();
  try {
    const connection = await connectWorker(settings);
    // A server this demo just started may take a moment before it answers.
    const client = await connectClient(settings, { timeoutMs: server ? 30_000 : undefined });
    try {
      const registered = await ensureNamespaceReady(connection, settings);
      if (registered) console.log(registered);
      const worker = await createWorker(connection, settings, bank);
      return (await worker.runUntil(runTransfer(client, settings, DEFAULT_TRANSFER, DEFAULT_WORKFLOW_ID)))
        ? 0
        : 1;
    } finally {
      await client.connection.close();
      await connection.close();
      await bank.store.close();
      await shutdownTracing();
    }
  } finally {
    if (server) {
      await server.teardown();
      console.log(
        'Stopped the dev server the demo started, so its Web UI is gone too. `npm run server` keeps one up.',
      );
    }
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
