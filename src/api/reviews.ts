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
import { runInput, transferStart } from '../platform/history';
import type { moneyTransfer } from '../workflows';
import { Problem } from './problems';
import { noteSchema, refundToSchema, reviewSchema } from './schemas';
import { withinBound } from './within-bound';

export const REVIEWER = 'reviewer';
export const APPROVER = 'approver';

type Temporal = <T>(fn: () => Promise<T>) => Promise<T>;
type Handle = WorkflowHandle<typeof moneyTransfer>;

/** How long a decision's answer waits for it to be carried out (a refund round) before 202. */
const DECISION_WAIT_MS = 10_000;

/** One decision: its path, the role it takes, and the Update it starts as `operator`. */
interface Decision {
  role: string;
  body?: object;
  start: (h: Handle, operator: string, body: never) => Promise<WorkflowUpdateHandle<TransferView>>;
}

/** Returns once the workflow accepted the Update: its validator passed. */
const accepted = { waitForStage: WorkflowUpdateStage.ACCEPTED } as const;

const DECISIONS: Record<string, Decision> = {
  retry: {
    role: REVIEWER,
    start: (h, operator) => h.startUpdate(retryRefund, { args: [{ operator }], ...accepted }),
  },
  'refund-to': {
    role: REVIEWER,
    body: refundToSchema,
    start: (h, operator, { account }: { account: string }) =>
      h.startUpdate(refundTo, { args: [{ account, operator }], ...accepted }),
  },
  propose: {
    role: REVIEWER,
    body: noteSchema,
    start: (h, operator, { note }: { note: string }) =>
      h.startUpdate(resolveManually, { args: [{ note, operator }], ...accepted }),
  },
  approve: {
    role: APPROVER,
    start: (h, operator) => h.startUpdate(approveResolution, { args: [{ operator }], ...accepted }),
  },
  reject: {
    role: APPROVER,
    body: noteSchema,
    start: (h, operator, { note }: { note: string }) =>
      h.startUpdate(rejectResolution, { args: [{ operator, note }], ...accepted }),
  },
};

export function registerReviewRoutes(app: FastifyInstance, client: Client, temporal: Temporal): void {
  const problems = { 401: { $ref: 'Problem#' }, 403: { $ref: 'Problem#' }, 503: { $ref: 'Problem#' } };

  app.get(
    '/reviews',
    {
      config: { roles: [REVIEWER, APPROVER] },
      schema: {
        summary: 'The transfers waiting for an operator, with what each needs',
        response: {
          200: { type: 'object', properties: { reviews: { type: 'array', items: reviewSchema } } },
          ...problems,
        },
      },
    },
    async () => {
      const reviews = [];
      for await (const execution of client.workflow.list({ query: NEEDS_REVIEW_QUERY })) {
        const handle = client.workflow.getHandle<typeof moneyTransfer>(execution.workflowId);
        // A worker that does not answer must not hide the others: the row says so.
        const [status, payment, started] = await Promise.all([
          client.connection
            .withDeadline(Date.now() + 2000, () => handle.query(getStatus))
            .catch(() => undefined),
          // The payment as it was started, from history: a worker need not answer for it.
          temporal(() => runInput(client, execution.workflowId, execution.runId)).catch(() => undefined),
          // A transfer that continued as new began with its first run.
          temporal(() =>
            transferStart(client, execution.workflowId, {
              ...execution,
              firstRunId: execution.raw.firstRunId,
            }),
          ).catch(() => execution.startTime),
        ]);
        reviews.push({
          id: execution.workflowId,
          startedAt: started.toISOString(),
          ...(payment ? { payment } : {}),
          ...(status ? { status } : { note: 'No worker answered within 2 s.' }),
        });
        if (reviews.length >= 200) break;
      }
      return { reviews };
    },
  );

  for (const [path, decision] of Object.entries(DECISIONS)) {
    app.post<{ Params: { id: string } }>(
      `/reviews/:id/${path}`,
      {
        config: { roles: [decision.role] },
        schema: {
          summary: `${path} a transfer in review, as the token's subject (role ${decision.role})`,
          params: { type: 'object', properties: { id: { type: 'string', maxLength: 300 } } },
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
        try {
          // Accepted (the validator passed) within Temporal's deadline, or 503; then carried
          // out, which for a refund round can outlast an HTTP answer: past the bound, 202.
          const update = await temporal(() => decision.start(handle, operator, request.body as never));
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
