// While a client waits for a transfer's result, this watches the execution. A workflow
// task that keeps failing, or one no worker picks up, never fails the workflow: the
// server retries it forever and the result never comes. So say once why, and the fix.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { Settings } from './config';
import { registerCommands } from './namespace-check';

const { PendingWorkflowTaskState, TaskQueueKind, TaskQueueType, WorkflowTaskFailedCause } =
  temporal.api.enums.v1;

export interface WatchTimes {
  /** How often to look at the execution. */
  everyMs: number;
  /** How long a workflow task may wait with no worker polling before that is reported. */
  noWorkerMs: number;
}

const DEFAULT_TIMES: WatchTimes = { everyMs: 2000, noWorkerMs: 10_000 };

/**
 * Watches `handle` until the returned function is called or the execution closes, and
 * prints one line for each of: its workflow task keeps failing (with the failure from
 * history and the fix), and no worker has polled its task queue for `noWorkerMs`. The
 * returned function resolves once no call of the watch is left, so the client's
 * connection may close.
 */
export function watchProgress(
  client: Client,
  settings: Pick<Settings, 'address' | 'namespace' | 'taskQueue'>,
  handle: WorkflowHandle,
  print: (line: string) => void,
  times: WatchTimes = DEFAULT_TIMES,
): () => Promise<void> {
  const stop = new AbortController();
  const started = Date.now();
  let saidFailing = false;
  let saidNoWorker = false;

  async function look(): Promise<boolean> {
    const { status, raw } = await handle.describe();
    if (status.name !== 'RUNNING') return false;
    const task = raw.pendingWorkflowTask;
    if (!saidFailing && task && (task.attempt ?? 1) >= 2) {
      const failed = await lastWorkflowTaskFailure(handle);
      if (failed) {
        saidFailing = true;
        print(stuckLine(settings, handle.workflowId, task.attempt ?? 2, failed));
      }
    }
    if (
      !saidNoWorker &&
      task?.state === PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED &&
      Date.now() - started >= times.noWorkerMs &&
      !(await workerPolledWithin(client, settings, times.noWorkerMs))
    ) {
      saidNoWorker = true;
      print(
        `No worker has polled task queue ${settings.taskQueue} (namespace ${settings.namespace}) for ` +
          `${Math.round(times.noWorkerMs / 1000)} s, so transfer ${handle.workflowId} waits. Start one with ` +
          '`npm run worker` and the same TEMPORAL_* settings; the transfer then continues by itself.',
      );
    }
    return !(saidFailing && saidNoWorker);
  }

  const watching = (async () => {
    try {
      for (;;) {
        await sleep(times.everyMs, undefined, { signal: stop.signal });
        // A failed look (the server briefly away) is no news: the result wait reports real
        // errors. The signal ends a look still retrying its calls.
        const more = await abortable(stop.signal, (signal) => client.withAbortSignal(signal, look)).catch(
          () => !stop.signal.aborted,
        );
        if (!more) return;
      }
    } catch {
      // aborted: the result came
    }
  })();
  return async () => {
    stop.abort();
    await watching;
  };
}

/**
 * Runs `fn` with a signal of its own that `outer` aborts. The SDK adds an abort listener
 * for each call made under a signal and never removes it; on the watch's one long-lived
 * signal they would pile up (Node warns at 11), so each look gets a fresh one.
 */
async function abortable<T>(outer: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const inner = new AbortController();
  const abort = () => inner.abort();
  outer.addEventListener('abort', abort, { once: true });
  try {
    return await fn(inner.signal);
  } finally {
    outer.removeEventListener('abort', abort);
  }
}

interface WorkflowTaskFailure {
  cause: temporal.api.enums.v1.WorkflowTaskFailedCause;
  message: string;
}

/**
 * The last WorkflowTaskFailed event's cause and message. History keeps the first failure
 * of a run of failed attempts (the later ones are transient), and that one says why.
 */
async function lastWorkflowTaskFailure(handle: WorkflowHandle): Promise<WorkflowTaskFailure | undefined> {
  const { events } = await handle.fetchHistory();
  const attributes = (events ?? [])
    .map((event) => event.workflowTaskFailedEventAttributes)
    .filter((failed) => failed)
    .at(-1);
  if (!attributes) return undefined;
  return {
    cause: attributes.cause ?? WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNSPECIFIED,
    message: attributes.failure?.message ?? 'no message',
  };
}

function stuckLine(
  settings: Pick<Settings, 'address' | 'namespace'>,
  workflowId: string,
  attempt: number,
  failure: WorkflowTaskFailure,
): string {
  const message = failure.message.trim().replace(/[.\s]*$/, '.');
  const why = `Transfer ${workflowId} cannot make progress: its workflow task failed (attempt ${attempt}): ${message}`;
  if (failure.cause === WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES) {
    const [create, cloud] = registerCommands(settings);
    return (
      `${why} Register the search attribute with \`${create}\`${cloud ? ` (Temporal Cloud: \`${cloud}\`)` : ''}, ` +
      'or restart `npm run worker`, which registers it on a local dev server; the transfer then continues by itself.'
    );
  }
  return `${why} The worker's log has the details; once that is fixed, the transfer continues by itself.`;
}

/** Whether any worker polled the task queue's workflow tasks within the last `ms`. */
async function workerPolledWithin(
  client: Client,
  settings: Pick<Settings, 'namespace' | 'taskQueue'>,
  ms: number,
): Promise<boolean> {
  const { pollers } = await client.workflowService.describeTaskQueue({
    namespace: settings.namespace,
    taskQueue: { name: settings.taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  // The server lists a stopped worker for minutes after its last poll.
  return pollers.some((poller) => Date.now() - Number(poller.lastAccessTime?.seconds ?? 0) * 1000 < ms);
}
