import { TestWorkflowEnvironment, type DevServerConfig } from '@temporalio/testing';
import { TRANSFER_STATUS } from '../src/contract';
import { cliMissingHelp, resolveTemporalCli } from './temporal-cli';

export interface DevServerOptions extends Omit<DevServerConfig, 'type' | 'executable'> {
  /** Dynamic config on top of (or replacing) DEV_SERVER_DYNAMIC_CONFIG's values. */
  dynamicConfig?: Record<string, string>;
}

/**
 * Dynamic config every dev server here starts with, for latency (docs/dev-server.md has
 * the numbers and what each setting does):
 * - Eager activity execution hands an activity to the worker in the reply to the
 *   workflow task that scheduled it, skipping a trip through the task queue.
 * - The dev server's single history shard loads transfer and timer tasks through rate
 *   limiters of 20 reads a second. A transfer needs several loads in a row, and once
 *   the burst is spent each waits up to 50 ms: most of a 150 ms transfer. A production
 *   cluster spreads that load over many shards and keeps the limit, to protect its
 *   database; one laptop has nothing to protect it from.
 */
export const DEV_SERVER_DYNAMIC_CONFIG: Record<string, string> = {
  'system.enableActivityEagerExecution': 'true',
  'history.transferProcessorMaxPollRPS': '1000',
  'history.timerProcessorMaxPollRPS': '1000',
};

/**
 * Starts a Temporal dev server with the CLI that `resolveTemporalCli` finds.
 * Call `teardown()` on the result to stop it.
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<TestWorkflowEnvironment> {
  const { dynamicConfig, ...server } = options;
  const cli = await resolveTemporalCli();
  try {
    const extraArgs = [
      ...Object.entries({ ...DEV_SERVER_DYNAMIC_CONFIG, ...dynamicConfig }).flatMap(([key, value]) => [
        '--dynamic-config-value',
        `${key}=${value}`,
      ]),
      ...(server.extraArgs ?? []),
    ];
    return await TestWorkflowEnvironment.createLocal({
      server: {
        ...server,
        // Transfers set it at start and from refunding on; a server without it refuses them.
        searchAttributes: [TRANSFER_STATUS, ...(server.searchAttributes ?? [])],
        extraArgs,
        executable: cli.executable,
      },
    });
  } catch (cause) {
    if (cli.source === 'sdk-download') throw new Error(cliMissingHelp(), { cause });
    throw cause;
  }
}
