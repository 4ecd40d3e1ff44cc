// What a client reads of a run from its history, rather than from the workflow's own
// query, which needs a worker.
import type { Client } from '@temporalio/client';
// The SDK's own payload decoding, so a key ring (PAYLOAD_KEYS_FILE) is honoured too. It is
// internal (lib/), not public API: package.json pins the SDK to one exact version, so it
// cannot move under this import without a deliberate upgrade, which the tests then check.
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import type { PaymentDetails } from '../contract';

/** The payment details a run was started with, read from its first history event. */
export async function runInput(
  client: Client,
  workflowId: string,
  runId: string,
): Promise<PaymentDetails | undefined> {
  const { history } = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const payloads = history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads;
  return decodeFromPayloadsAtIndex<PaymentDetails>(client.options.loadedDataConverter, 0, payloads);
}
