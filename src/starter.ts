// `npm run starter`: starts one money transfer and waits for its result. Its flags are in
// src/platform/starter-options.ts.
import {
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { TerminatedFailure } from '@temporalio/common';
import { describeTransfer, paymentDifferences, transferStartOptions, type PaymentDetails } from './contract';
import {
  connectClient,
  describeError,
  formatErrorChain,
  loadSettings,
  UsageError,
  webUiLink,
  type Settings,
} from './platform/config';
import { runInput } from './platform/history';
import { watchProgress } from './platform/progress-watch';
import { parseStarterArgs, USAGE, type StarterArgs } from './platform/starter-options';
import { shutdownTracing } from './platform/telemetry';
// Only the type: the starter names the workflow, and never loads workflow code.
import type { moneyTransfer } from './workflows';

export { DEFAULT_TRANSFER, DEFAULT_WORKFLOW_ID } from './platform/starter-options';

async function main(): Promise<number> {
  let args: StarterArgs;
  try {
    args = parseStarterArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`starter: ${err.message}. Try --help.`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const settings = loadSettings();
  const client = await connectClient(settings);
  // The transfer does not need the starter: stopping it only stops the wait.
  process.once('SIGINT', () => {
    console.log(
      `\nStopped waiting for transfer ${args.workflowId}. Once started, it goes on without the starter; ` +
        'run the starter again with the same flags to wait for its result.',
    );
    process.exit(130);
  });
  try {
    return (await runTransfer(client, settings, args.details, args.workflowId)) ? 0 : 1;
  } finally {
    await client.connection.close();
    await shutdownTracing(); // sends the spans still buffered
  }
}

/**
 * Starts the transfer (or attaches to a run already going under that id), prints
 * where to watch it, and waits, saying so if the transfer cannot make progress.
 * Returns true if the transfer completed.
 */
export async function runTransfer(
  client: Client,
  settings: Settings,
  details: PaymentDetails,
  workflowId: string,
  print: (line: string) => void = console.log,
): Promise<boolean> {
  const earlier = await describeIfExists(client, workflowId);
  let handle: WorkflowHandle<typeof moneyTransfer>;
  let runId: string;
  try {
    const options = {
      taskQueue: settings.taskQueue,
      workflowId,
      args: [details] as [PaymentDetails],
      // What the Web UI shows for this execution (its User Metadata).
      staticSummary: describeTransfer(details),
      staticDetails:
        `Money transfer of **${details.amount}** from \`${details.sourceAccount}\` to \`${details.targetAccount}\`, ` +
        `reference \`${details.referenceId}\`, started by \`npm run starter\`. ` +
        "The workflow's current details say what it waits for.",
    };
    const started = await client.workflow
      .start<typeof moneyTransfer>('moneyTransfer', { ...options, ...transferStartOptions() })
      .catch((err: unknown) => {
        // A namespace without TransferStatus refuses the start. Start it plainly: the
        // workflow then sets it itself, and the watch below says why that cannot go on.
        if (!/no mapping defined for search attribute/.test(String((err as Error).cause))) throw err;
        return client.workflow.start<typeof moneyTransfer>('moneyTransfer', options);
      });
    handle = started;
    runId = started.firstExecutionRunId;
    if (earlier) {
      print(
        `Workflow ${workflowId} ran before (${earlier}); the id reuse policy allows another run, so this is a new one.`,
      );
    }
    print(`Started transfer ${workflowId}: ${describeTransfer(details)}`);
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    handle = client.workflow.getHandle<typeof moneyTransfer>(workflowId);
    const current = await handle.describe();
    runId = current.runId;
    // Waiting on that run is right only if it is this payment; its result says nothing of another.
    const running = await runInput(client, workflowId, runId);
    if (!running || paymentDifferences(running, details).length > 0) {
      print(
        `Workflow ${workflowId} is already taken by another transfer (${running ? describeTransfer(running) : 'input unreadable'}); ` +
          'nothing was started. Give this transfer its own --workflow-id.',
      );
      return false;
    }
    print(
      current.status.name === 'RUNNING'
        ? `Workflow ${workflowId} is already running; waiting for that run's result instead.`
        : `Workflow ${workflowId} already ran (${current.status.name}) and the id reuse policy forbids another run; showing that run's result.`,
    );
  }
  print(`Web UI: ${webUiLink(settings, workflowId, runId)}`);

  const stopWatching = watchProgress(client, settings, handle, print);
  try {
    const { result, completed } = await transferResult(client, handle, details, print);
    print(`Result: ${result}`);
    return completed;
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      print(`Got expected exception: ${formatErrorChain(err)}`);
      if (err.cause instanceof TerminatedFailure) {
        print(
          `Transfer ${workflowId} was terminated, so no run of it will put back money it withdrew. ` +
            `\`npm run reconcile\` shows whether money is out; \`npm run review -- settle ${workflowId} ` +
            '--operator NAME --note TEXT` settles it (docs/operations.md).',
        );
      }
      return false;
    }
    if (err instanceof WorkflowNotFoundError) {
      throw new ResultUnknownError(
        `The server no longer has transfer ${workflowId} (run ${runId}); a dev server started without ` +
          `--db-filename forgets every workflow when it restarts. The bank may already have moved money ` +
          `under reference ${details.referenceId}: check it before sending the payment again.`,
        { cause: err },
      );
    }
    if (!(err instanceof ServiceError)) throw err;
    throw new ResultUnknownError(
      `Lost the Temporal server at ${settings.address} while waiting for transfer ${workflowId}. It goes on ` +
        'on the server: run the starter again with the same flags to wait for its result.',
      { cause: err },
    );
  } finally {
    await stopWatching();
  }
}

/**
 * The transfer's result, whichever run ends it. The SDK follows a continue-as-new; a
 * reset terminates the run it replaces and starts another under the same id, which is
 * followed here, as is an operator's settling run after a termination.
 */
async function transferResult(
  client: Client,
  first: WorkflowHandle<typeof moneyTransfer>,
  details: PaymentDetails,
  print: (line: string) => void,
): Promise<{ result: string; completed: boolean }> {
  let handle: WorkflowHandle = first;
  let settling = false;
  for (;;) {
    try {
      const result = String(await handle.result());
      // A settling run puts the money back unless the deposit had posted.
      return { result, completed: !settling || /the deposit had posted/.test(result) };
    } catch (err) {
      if (!(err instanceof WorkflowFailedError && err.cause instanceof TerminatedFailure)) throw err;
      const latest = await client.workflow.getHandle(first.workflowId).describe();
      // The newest run is the terminated one, or another payment under a reused id:
      // nothing carries this transfer on.
      if (latest.status.name === 'TERMINATED') throw err;
      const input = await runInput(client, first.workflowId, latest.runId);
      if (!input || paymentDifferences(input, details).length > 0) throw err;
      settling = latest.type === 'settleStrandedTransfer';
      print(
        `The run was terminated (${err.cause.message}); run ${latest.runId} (${latest.type}) carries ` +
          'the transfer on, so the starter follows it.',
      );
      handle = client.workflow.getHandle(first.workflowId, latest.runId);
    }
  }
}

/** The wait for a transfer's result ended without one: its outcome is unknown here. */
export class ResultUnknownError extends Error {
  override name = 'ResultUnknownError';
}

/** The status of the latest run under this id, or undefined if there is none. */
async function describeIfExists(client: Client, workflowId: string): Promise<string | undefined> {
  try {
    return (await client.workflow.getHandle(workflowId).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(describeError(err));
      process.exitCode = 1;
    },
  );
}
