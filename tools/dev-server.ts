import { TestWorkflowEnvironment, type DevServerConfig } from '@temporalio/testing';
import { cliMissingHelp, resolveTemporalCli } from './temporal-cli';

export type DevServerOptions = Omit<DevServerConfig, 'type' | 'executable'>;

/**
 * Dynamic config every dev server here starts with. Eager activity execution hands an
 * activity to the worker in the reply to the workflow task that scheduled it, skipping
 * a trip through the task queue: `npm run bench` measured a low-load transfer at about
 * 150 ms with it and 250 ms without it on this project's 2-core machine.
 */
export const DEV_SERVER_DYNAMIC_CONFIG = ['system.enableActivityEagerExecution=true'];

/**
 * Starts a Temporal dev server with the CLI that `resolveTemporalCli` finds.
 * Call `teardown()` on the result to stop it.
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<TestWorkflowEnvironment> {
  const cli = resolveTemporalCli();
  try {
    const extraArgs = [
      ...DEV_SERVER_DYNAMIC_CONFIG.flatMap((value) => ['--dynamic-config-value', value]),
      ...(options.extraArgs ?? []),
    ];
    return await TestWorkflowEnvironment.createLocal({
      server: { ...options, extraArgs, executable: cli.executable },
    });
  } catch (cause) {
    if (cli.source === 'download') throw new Error(cliMissingHelp(), { cause });
    throw cause;
  }
}
