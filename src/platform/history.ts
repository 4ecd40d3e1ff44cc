// What a client reads of a run from its history, rather than from the workflow's own
// query, which needs a worker.
import type { Client } from '@temporalio/client';
// The SDK's own payload decoding, so a key ring (PAYLOAD_KEYS_FILE) is honoured too. It is
// internal (lib/), not public API: package.json pins the SDK to one exact version, so it
// cannot move under this import without a deliberate upgrade, which the tests then check.
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import type { PaymentDetails, ReviewPolicy, SettleRequest } from '../contract';

/** The payment details a run was started with, read from its first history event. */
export function runInput(
  client: Client,
  workflowId: string,
  runId: string,
): Promise<PaymentDetails | undefined> {
  return startArgument<PaymentDetails>(client, workflowId, runId, 0);
}

/**
 * The review policy a run was started with: a transfer's second argument, or the one in a
 * settling run's request.
 */
export async function runReviewPolicy(
  client: Client,
  workflowId: string,
  run: { runId: string; type: string },
): Promise<ReviewPolicy | undefined> {
  if (run.type === 'settleStrandedTransfer') {
    return (await startArgument<SettleRequest>(client, workflowId, run.runId, 1))?.policy;
  }
  return startArgument<ReviewPolicy>(client, workflowId, run.runId, 1);
}

async function startArgument<T>(
  client: Client,
  workflowId: string,
  runId: string,
  index: number,
): Promise<T | undefined> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const payloads = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
  if ((payloads?.length ?? 0) <= index) return undefined;
  return decodeFromPayloadsAtIndex<T>(client.options.loadedDataConverter, index, payloads);
}

/**
 * When a transfer began: the start of the first run of its chain. A transfer waiting for
 * review continues as new about once a month, and each new run has its own start time.
 */
export async function transferStart(
  client: Client,
  workflowId: string,
  run: { runId: string; startTime: Date; firstRunId?: string | null },
): Promise<Date> {
  // A visibility list leaves the first run out; the run's own description has it.
  const firstRunId =
    run.firstRunId ||
    (await client.workflow.getHandle(workflowId, run.runId).describe()).raw.workflowExecutionInfo?.firstRunId;
  if (!firstRunId || firstRunId === run.runId) return run.startTime;
  return (await client.workflow.getHandle(workflowId, firstRunId).describe()).startTime;
}
