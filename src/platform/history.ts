// What a client reads of a run from its history, rather than from the workflow's own
// query, which needs a worker.
import type { Client } from '@temporalio/client';
// The SDK's own payload decoding, so a key ring (PAYLOAD_KEYS_FILE) is honoured too. It is
// internal (lib/), not public API: package.json pins the SDK to one exact version, so it
// cannot move under this import without a deliberate upgrade, which the tests then check.
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import type { PaymentDetails, ReviewPolicy, SettleRequest } from '../contract';

/** The payment details a run was started with, read from its first history event. */
export async function runInput(
  client: Client,
  workflowId: string,
  runId: string,
): Promise<PaymentDetails | undefined> {
  return (await runStart(client, workflowId, { runId, type: 'moneyTransfer' })).details;
}

/**
 * What a run was started with, from one read of its first history event: the payment, and
 * the review policy (a transfer's second argument, or the one in a settling run's request).
 */
export async function runStart(
  client: Client,
  workflowId: string,
  run: { runId: string; type: string },
): Promise<{ details?: PaymentDetails; reviewPolicy?: ReviewPolicy }> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId: run.runId },
    maximumPageSize: 1,
  });
  const payloads = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
  const converter = client.options.loadedDataConverter;
  const details = await decodeFromPayloadsAtIndex<PaymentDetails>(converter, 0, payloads);
  if ((payloads?.length ?? 0) < 2) return { details };
  const second = await decodeFromPayloadsAtIndex<ReviewPolicy | SettleRequest>(converter, 1, payloads);
  const reviewPolicy =
    run.type === 'settleStrandedTransfer'
      ? (second as SettleRequest | undefined)?.policy
      : (second as ReviewPolicy);
  return { details, reviewPolicy };
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
