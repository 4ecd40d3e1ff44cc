import { TestWorkflowEnvironment, type DevServerConfig } from '@temporalio/testing';
import { cliMissingHelp, resolveTemporalCli } from './temporal-cli';

export type DevServerOptions = Omit<DevServerConfig, 'type' | 'executable'>;

/**
 * Starts a Temporal dev server with the CLI that `resolveTemporalCli` finds.
 * Call `teardown()` on the result to stop it.
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<TestWorkflowEnvironment> {
  const cli = resolveTemporalCli();
  try {
    return await TestWorkflowEnvironment.createLocal({ server: { ...options, executable: cli.executable } });
  } catch (cause) {
    if (cli.source === 'download') throw new Error(cliMissingHelp(), { cause });
    throw cause;
  }
}
