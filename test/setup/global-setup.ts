// Starts one dev server and builds the workflow bundle once for the whole jest run,
// however many of the projects that use it run. Test files find both through
// environment variables, which jest's workers inherit.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Runtime } from '@temporalio/worker';
import { buildWorkflowBundle } from '../../tools/bundle';
import { startDevServer } from '../../tools/dev-server';
import build from './build';

/** A namespace the test server has besides `default`. */
export const TEST_NAMESPACE = 'money-transfer-test';

export default async function globalSetup(): Promise<void> {
  build();
  if (globalThis.__MONEY_TRANSFER_TEST__) return; // another project's setup started them
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const started = Date.now();
  const [server, bundle, fastBundle] = await Promise.all([
    // A second namespace, to check that TEMPORAL_NAMESPACE reaches both client and worker.
    startDevServer({ extraArgs: ['--namespace', TEST_NAMESPACE] }),
    bundleWorkflowCode({
      workflowsPath: require.resolve('../../src/workflows'),
      logger: new DefaultLogger('WARN'),
    }),
    // The dev server cannot skip time: tests of reminders and continue-as-new use this one.
    buildWorkflowBundle({ limits: require.resolve('../support/fast-limits') }),
  ]);
  const dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-test-'));
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  const fastBundlePath = path.join(dir, 'workflow-bundle-fast.js');
  writeFileSync(fastBundlePath, fastBundle);
  // Worker processes the tests start get it through DEV_WORKFLOW_BUNDLE; lib/'s release
  // bundle is `npm run build`'s alone, and no test writes it.

  globalThis.__MONEY_TRANSFER_TEST__ = { server, dir };
  process.env.MONEY_TRANSFER_TEST_ADDRESS = server.address;
  process.env.MONEY_TRANSFER_TEST_BUNDLE = bundlePath;
  process.env.MONEY_TRANSFER_TEST_FAST_BUNDLE = fastBundlePath;
  process.stderr.write(
    `\nDev server at ${server.address}; workflow bundle built (${Math.round((Date.now() - started) / 100) / 10} s)\n`,
  );
}
