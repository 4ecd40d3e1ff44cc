// The transfers waiting for review, a page at a time, for `npm run review -- list` and the
// API's GET /reviews: thousands can wait at once, and an operator reads the first page.
import type { Client } from '@temporalio/client';
import { NEEDS_REVIEW_QUERY } from '../contract';
import { transferStart } from './history';

export interface ParkedTransfer {
  workflowId: string;
  runId: string;
  startedAt: Date;
}

export interface ReviewPage {
  transfers: ParkedTransfer[];
  /** Present when there are more; passed back, it gives the next page. */
  nextPageToken?: string;
}

export const REVIEW_PAGE_SIZE = 50;
/** The most one page may hold. */
export const MAX_REVIEW_PAGE_SIZE = 1000;

/** One page of the transfers in review from visibility, newest first. */
export async function reviewPage(
  client: Client,
  pageSize = REVIEW_PAGE_SIZE,
  pageToken?: string,
): Promise<ReviewPage> {
  const page = await client.workflowService.listWorkflowExecutions({
    namespace: client.options.namespace,
    query: NEEDS_REVIEW_QUERY,
    pageSize,
    nextPageToken: pageToken ? Buffer.from(pageToken, 'base64url') : undefined,
  });
  const transfers = await Promise.all(
    (page.executions ?? []).map(async (e) => {
      const workflowId = e.execution?.workflowId ?? '';
      const runId = e.execution?.runId ?? '';
      const startTime = new Date(
        Number(e.startTime?.seconds ?? 0) * 1000 + Math.floor((e.startTime?.nanos ?? 0) / 1e6),
      );
      // A transfer that continued as new began with the first run of its chain.
      const startedAt = await transferStart(client, workflowId, {
        runId,
        startTime,
        firstRunId: e.firstRunId,
      });
      return { workflowId, runId, startedAt };
    }),
  );
  const next = page.nextPageToken?.length ? Buffer.from(page.nextPageToken).toString('base64url') : undefined;
  return next ? { transfers, nextPageToken: next } : { transfers };
}
