// The operators' routes: the transfers waiting for review, and the decisions on one. The
// operator recorded in the workflow is the token's subject, never a name from the body.
// Roles come from the token: `reviewer` retries, refunds elsewhere and proposes a manual
// resolution; `approver` approves or rejects one. The workflow's validators have the
// last word: a proposer cannot approve their own proposal, whatever their roles.
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type Client,
  type WorkflowHandle,
  type WorkflowUpdateHandle,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import {
  approveResolution,
  getStatus,
  NEEDS_REVIEW_QUERY,
  refundTo,
  rejectResolution,
  resolveManually,
  retryRefund,
  type TransferView,
} from '../contract';
import { runInput } from '../platform/history';
import { REVIEW_PAGE_SIZE, reviewPage } from '../platform/review-list';
import type { moneyTransfer } from '../workflows';
import { Problem } from './problems';
import {
  decisionHeadersSchema,
  noteSchema,
  refundToSchema,
  reviewQuerySchema,
  reviewSchema,
} from './schemas';
import { digest } from './digest';
import { withinBound } from './within-bound';

export const REVIEWER = 'reviewer';
export const APPROVER = 'approver';

type Temporal = <T>(fn: () => Promise<T>) => Promise<T>;

/** How long a decision's answer waits for it to be carried out (a refund round) before 202. */
const DECISION_WAIT_MS = 10_000;

/** One decision: the role it takes, its body, and the Update it sends as `operator`. */
interface Decision {
  role: string;
  body?: object;
  send: (
    handle: WorkflowHandle,
    operator: string,
    body: unknown,
    updateId: string | undefined,
  ) => Promise<WorkflowUpdateHandle<TransferView>>;
}

/** Returns once the workflow accepted the Update (its validator passed). */
function decision<A, B = unknown>(
  role: string,
  update: UpdateDefinition<TransferView, [A]>,
  args: (operator: string, body: B) => A,
  body?: object,
): Decision {
  return {
    role,
    body,
    send: (handle, operator, sent, updateId) =>
      handle.startUpdate(update, {
        args: [args(operator, sent as B)],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
        ...(updateId && { updateId }),
      }),
  };
}

const DECISIONS: Record<string, Decision> = {
  retry: decision(REVIEWER, retryRefund, (operator) => ({ operator })),
  'refund-to': decision(
    REVIEWER,
    refundTo,
    (operator, { account }: { account: string }) => ({ account, operator }),
    refundToSchema,
  ),
  propose: decision(
    REVIEWER,
    resolveManually,
    (operator, { note }: { note: string }) => ({ note, operator }),
    noteSchema,
  ),
  approve: decision(APPROVER, approveResolution, (operator) => ({ operator })),
  reject: decision(
    APPROVER,
    rejectResolution,
    (operator, { note }: { note: string }) => ({ operator, note }),
    noteSchema,
  ),
};

/**
 * The Update id of a decision sent with an Idempotency-Key: the same operator, key, decision
 * and body give the same id, so a POST sent again after a 503 attaches to the Update the first
 * one may have started, and answers its outcome, rather than making a second decision. Within
 * one run of the transfer: Temporal keeps the ids of the Updates it accepted there, not of
 * those a validator refused.
 */
export function decisionUpdateId(operator: string, key: string, path: string, body: unknown): string {
  return `decision-${digest(`${operator}\n${key}\n${path}\n${JSON.stringify(body ?? null)}`)}`;
}

export function registerReviewRoutes(app: FastifyInstance, client: Client, temporal: Temporal): void {
  const problems = { 401: { $ref: 'Problem#' }, 403: { $ref: 'Problem#' }, 503: { $ref: 'Problem#' } };

  app.get<{ Querystring: { pageSize?: string; pageToken?: string } }>(
    '/reviews',
    {
      config: { roles: [REVIEWER, APPROVER] },
      schema: {
        summary:
          'The transfers waiting for an operator, newest first, a page at a time, with what each needs',
        querystring: reviewQuerySchema,
        response: {
          200: {
            type: 'object',
            properties: {
              reviews: { type: 'array', items: reviewSchema },
              total: { type: 'integer', description: 'How many wait for review, on every page.' },
              nextPageToken: { type: 'string' },
            },
          },
          ...problems,
          400: { $ref: 'Problem#' },
        },
      },
    },
    async (request) => {
      const { pageSize, pageToken } = request.query;
      const [page, count] = await Promise.all([
        temporal(() => reviewPage(client, Number(pageSize ?? REVIEW_PAGE_SIZE), pageToken)),
        temporal(() =>
          client.workflowService.countWorkflowExecutions({
            namespace: client.options.namespace,
            query: NEEDS_REVIEW_QUERY,
          }),
        ),
      ]);
      // Side by side: each row is a query (a worker replays an evicted transfer) and a history read.
      const reviews = await Promise.all(
        page.transfers.map(async ({ workflowId, runId, startedAt }) => {
          const handle = client.workflow.getHandle<typeof moneyTransfer>(workflowId);
          // A worker that does not answer must not hide the others: the row says so.
          const [status, payment] = await Promise.all([
            client.connection
              .withDeadline(Date.now() + 2000, () => handle.query(getStatus))
              .catch(() => undefined),
            // The payment as it was started, from history: a worker need not answer for it.
            temporal(() => runInput(client, workflowId, runId)).catch(() => undefined),
          ]);
          return {
            id: workflowId,
            startedAt: startedAt.toISOString(),
            ...(payment ? { payment } : {}),
            ...(status ? { status } : { note: 'No worker answered within 2 s.' }),
          };
        }),
      );
      const total = Number(count.count ?? 0);
      return page.nextPageToken ? { reviews, total, nextPageToken: page.nextPageToken } : { reviews, total };
    },
  );

  for (const [path, decision] of Object.entries(DECISIONS)) {
    app.post<{ Params: { id: string }; Headers: { 'idempotency-key'?: string } }>(
      `/reviews/:id/${path}`,
      {
        config: { roles: [decision.role] },
        schema: {
          summary: `${path} a transfer in review, as the token's subject (role ${decision.role})`,
          params: { type: 'object', properties: { id: { type: 'string', maxLength: 300 } } },
          headers: decisionHeadersSchema,
          ...(decision.body ? { body: decision.body } : {}),
          response: {
            200: { type: 'object', additionalProperties: true },
            202: { type: 'object', additionalProperties: true },
            ...problems,
            404: { $ref: 'Problem#' },
            409: { $ref: 'Problem#' },
          },
        },
      },
      async (request, reply) => {
        const handle = client.workflow.getHandle<typeof moneyTransfer>(request.params.id);
        const operator = request.principal!.subject;
        const key = request.headers['idempotency-key'];
        try {
          // Accepted (the validator passed) within Temporal's deadline, or 503; then carried
          // out, which for a refund round can outlast an HTTP answer: past the bound, 202.
          const update = await temporal(() =>
            decision.send(
              handle,
              operator,
              request.body,
              // A decision without a body ignores one: it does not change the decision's id.
              key && decisionUpdateId(operator, key, path, decision.body ? request.body : null),
            ),
          );
          const status = await withinBound(DECISION_WAIT_MS, (signal) =>
            client.withAbortSignal(signal, () => update.result()),
          );
          if (status !== 'pending') return status;
          return reply.code(202).send({
            accepted: true,
            note: `The decision was accepted and is still being carried out after ${DECISION_WAIT_MS / 1000} s; GET /reviews shows where it went.`,
          });
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) {
            throw new Problem('not-found', `No running transfer ${request.params.id}.`);
          }
          // The workflow's validator said no: not in review, the proposer approving, ...
          if (err instanceof WorkflowUpdateFailedError) {
            throw new Problem('decision-refused', err.cause?.message ?? err.message);
          }
          throw err;
        }
      },
    );
  }
}
