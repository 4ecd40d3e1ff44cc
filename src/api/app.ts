// The HTTP API's routes (Fastify): POST /transfers starts a payment idempotently with
// update-with-start and answers once the withdrawal's outcome is known; GET reads one
// transfer, or a page of them from visibility. docs/api.md is its reference.
import { digest } from './digest';
import swagger from '@fastify/swagger';
import {
  ServiceError,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure, TerminatedFailure } from '@temporalio/common';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import {
  DEFINITE_FAILURES,
  describeTransfer,
  getStatus,
  InvalidPaymentDetailsError,
  PAYMENT_FIELDS,
  PAYMENT_MISMATCH,
  type PaymentDetails,
  paymentDifferences,
  TRANSFER_STATUS,
  TRANSFER_WORKFLOW_TYPES,
  transferStartOptions,
  type TransferView,
  validatePaymentDetails,
  withdrawalOutcome,
} from '../contract';
import { runInput } from '../platform/history';
import type { Settings } from '../platform/config';
import type { moneyTransfer } from '../workflows';
import type { Principal, TokenVerifier } from './auth';
import { Problem, refusalKind } from './problems';
import { registerReviewRoutes } from './reviews';
import { withinBound } from './within-bound';
import { type DeskSettings, registerDesk } from './desk';
import {
  BODY_LIMIT_BYTES,
  createHeadersSchema,
  listQuerySchema,
  listSchema,
  paymentSchema,
  problemSchema,
  transferSchema,
} from './schemas';

export interface ApiOptions {
  client: Client;
  settings: Pick<Settings, 'taskQueue'>;
  verify: TokenVerifier;
  /** How long POST waits for the withdrawal's outcome before it answers 202. Default 3 s. */
  earlyReturnMs?: number;
  /** Each Temporal call's deadline: an unreachable server is a 503, not a hang. Default 10 s. */
  temporalDeadlineMs?: number;
  /** The operators' desk at /desk, signing people in at this OpenID provider. Off unless given. */
  desk?: DeskSettings;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** The scope a route needs; none for the health checks. */
    scope?: string;
    /** The roles that may use an operator's route: any one of them. */
    roles?: string[];
  }
}

type Transfer = Record<string, unknown> & {
  id: string;
  execution: string;
  answeredFrom: 'workflow' | 'history';
};

export async function buildApi(options: ApiOptions): Promise<FastifyInstance> {
  const { client, settings, verify } = options;
  const earlyReturnMs = options.earlyReturnMs ?? 3000;
  const deadline = options.temporalDeadlineMs ?? 10_000;
  const temporal = <T>(fn: () => Promise<T>) => client.connection.withDeadline(Date.now() + deadline, fn);

  const app = Fastify({
    bodyLimit: BODY_LIMIT_BYTES,
    // Validation must refuse, never repair: no dropped fields, no "250" turned into 250.
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
    return503OnClosing: true,
  });
  // A payment is JSON: a text/plain body is refused (415), not parsed as a string.
  app.removeContentTypeParser('text/plain');
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'money-transfer',
        version: '1.0.0',
        description: 'Payments through Temporal: docs/api.md.',
      },
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearer: [] }],
    },
    // Shared schemas keep their names (Payment, Transfer, Problem) in the document.
    refResolver: {
      buildLocalReference: (json, _base, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
  });
  const deskSession = options.desk ? registerDesk(app, options.desk) : undefined;
  app.addSchema(paymentSchema);
  app.addSchema(transferSchema);
  app.addSchema(problemSchema);

  app.addHook('onRequest', async (request) => {
    const { scope, roles } = request.routeOptions.config;
    if (!scope && !roles) return;
    const header = request.headers.authorization;
    const token = /^bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header ?? '')?.[1];
    // A person at the desk: their session cookie stands for a token.
    const person = header === undefined ? deskSession?.(request) : undefined;
    if (!token && !person)
      throw new Problem('unauthorized', 'Send a bearer token: Authorization: Bearer <JWT>.');
    request.principal = person ?? (await verify(token!));
    if (scope && !request.principal.scopes.has(scope)) {
      throw new Problem('forbidden', `This route needs the scope ${scope}.`, { scope });
    }
    if (roles && !roles.some((role) => request.principal!.roles.has(role))) {
      throw new Problem('forbidden', `This route needs the role ${roles.join(' or ')}.`, { roles });
    }
  });
  app.setErrorHandler((err: FastifyError | Problem, request, reply) => {
    const problem = err instanceof Problem ? err : asProblem(err, request);
    void reply
      .code(problem.status)
      .type('application/problem+json')
      .send(problem.body(request.url.split('?')[0]!));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .type('application/problem+json')
      .send(new Problem('not-found', `No route ${request.method} ${request.url}.`).body(request.url));
  });

  const problems = { 400: { $ref: 'Problem#' }, 401: { $ref: 'Problem#' }, 403: { $ref: 'Problem#' } };

  app.post<{ Body: PaymentDetails; Headers: { 'idempotency-key': string } }>(
    '/transfers',
    {
      config: { scope: 'transfers:create' },
      schema: {
        summary: 'Start a payment, or get back the one this Idempotency-Key started',
        headers: createHeadersSchema,
        body: { $ref: 'Payment#' },
        response: {
          201: { $ref: 'Transfer#' },
          202: { $ref: 'Transfer#' },
          200: { $ref: 'Transfer#' },
          ...problems,
          422: { $ref: 'Problem#' },
          503: { $ref: 'Problem#' },
        },
      },
    },
    async (request, reply) => {
      const details = request.body;
      try {
        validatePaymentDetails(details); // the workflow's own rules, beyond the schema's
      } catch (err) {
        if (err instanceof InvalidPaymentDetailsError) throw new Problem('invalid-payment', err.message);
        throw err;
      }
      const subject = request.principal!.subject;
      const id = transferId(subject, request.headers['idempotency-key']);
      const location = `/transfers/${encodeURIComponent(id)}`;
      const startWorkflowOperation = new WithStartWorkflowOperation<typeof moneyTransfer>('moneyTransfer', {
        workflowId: id,
        taskQueue: settings.taskQueue,
        args: [details],
        // A running transfer under this key is attached to; a closed one is never run again.
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        memo: { startedBy: subject },
        staticSummary: describeTransfer(details),
        staticDetails: `Started through the HTTP API by \`${subject}\`.`,
        ...transferStartOptions(),
      });
      let view: TransferView | 'pending';
      try {
        // Answered within the bound, or 202 and the call is abandoned (the transfer goes on).
        // One call: the server holds it until the update completes, with no second poll.
        // One update id per key and body: a retried POST asks the same update again, so
        // retries never pile up updates on the transfer (the server caps them), and a
        // different body gets one of its own, which the validator refuses.
        view = await withinBound(earlyReturnMs, (signal) =>
          client.withAbortSignal(signal, () =>
            temporal(() =>
              client.workflow.executeUpdateWithStart(withdrawalOutcome, {
                args: [details],
                updateId: `${id}-${digest(JSON.stringify(PAYMENT_FIELDS.map((f) => details[f])))}`,
                startWorkflowOperation,
              }),
            ),
          ),
        );
        if (view === 'pending') {
          // No answer yet, often because no worker has taken the update: the transfer must exist.
          try {
            await temporal(() => client.workflow.getHandle(id).describe());
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
            throw new Problem(
              'temporal-unavailable',
              'The transfer did not start in time: retry with the same key.',
            );
          }
        }
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) {
          const cause = err.cause;
          if (cause instanceof ApplicationFailure && cause.type === PAYMENT_MISMATCH) {
            throw new Problem('idempotency-key-reused', idempotencyDetail(cause.message), {
              transfer: location,
            });
          }
          // Not a running transfer that takes it (a settling run holds the id, or it just
          // ended): the key's transfer as it is now.
          void reply.header('location', location).code(200);
          return (await readTransfer(id, subject)).transfer;
        }
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        // The transfer under this key has closed: the same payment gets its end back.
        const closed = await readTransfer(id, subject);
        const sent = await temporal(() => runInput(client, id, closed.runId!));
        const differences = sent ? paymentDifferences(sent, details) : ['its payment cannot be read'];
        if (differences.length > 0) {
          throw new Problem('idempotency-key-reused', idempotencyDetail(differences.join('; ')), {
            transfer: location,
          });
        }
        void reply.header('location', location).code(200);
        return closed.transfer;
      }
      void reply.header('location', location);
      if (view === 'pending') {
        return reply.code(202).send({
          id,
          execution: 'RUNNING',
          answeredFrom: 'workflow',
          note: `The withdrawal's outcome is not known after ${earlyReturnMs} ms; GET ${location} follows it.`,
        });
      }
      if (view.withdrawId === undefined) {
        if (view.stage === 'cancelled') {
          // Cancelled while the withdrawal was at the bank: settled first, so say how.
          const refunded = view.settlement === 'refunded';
          throw new Problem(
            'transfer-cancelled',
            refunded
              ? `The transfer was cancelled during its withdrawal, which had posted and was refunded (${view.refundId}).`
              : 'The transfer was cancelled before its withdrawal posted: nothing moved.',
            {
              transfer: location,
              ...(view.settlement ? { settlement: view.settlement } : {}),
              ...(view.refundId ? { refundId: view.refundId } : {}),
            },
          );
        }
        // The bank's definite "no": nothing moved. Anything else (an outcome that was
        // unknown, then settled) may have moved money and put it back: say so.
        const refused = DEFINITE_FAILURES.includes(view.failureType ?? '') && view.settlement === undefined;
        throw refused
          ? new Problem(refusalKind(view.failureType), view.lastFailure ?? 'The bank refused the payment.', {
              transfer: location,
            })
          : new Problem('payment-failed', view.lastFailure ?? 'The payment failed.', {
              transfer: location,
              settlement: view.settlement,
              ...(view.refundId ? { refundId: view.refundId } : {}),
            });
      }
      return reply
        .code(201)
        .send({ id, execution: 'RUNNING', stage: view.stage, status: view, answeredFrom: 'workflow' });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/transfers/:id',
    {
      config: { scope: 'transfers:read' },
      schema: {
        summary: "A transfer's status while it runs, and its result or failure once it has closed",
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 300 } } },
        response: {
          200: { $ref: 'Transfer#' },
          ...problems,
          404: { $ref: 'Problem#' },
          503: { $ref: 'Problem#' },
        },
      },
    },
    async (request) => (await readTransfer(request.params.id, request.principal!.subject)).transfer,
  );

  app.get<{ Querystring: { stage?: string; execution?: string; pageSize?: string; pageToken?: string } }>(
    '/transfers',
    {
      // Every caller's transfers: an operator's view, with a scope of its own.
      config: { scope: 'transfers:list' },
      schema: {
        summary: "Every caller's transfers from visibility, newest first, a page at a time",
        querystring: listQuerySchema,
        response: { 200: listSchema, ...problems, 503: { $ref: 'Problem#' } },
      },
    },
    async (request) => {
      const { stage, execution, pageSize, pageToken } = request.query;
      const types = TRANSFER_WORKFLOW_TYPES.map((t) => `'${t}'`).join(', ');
      // Both values passed the schema's enums: nothing from the caller reaches the query unchecked.
      const query =
        `WorkflowType IN (${types})` +
        (stage ? ` AND ${TRANSFER_STATUS.name} = '${stage}'` : '') +
        (execution ? ` AND ExecutionStatus = '${execution}'` : '');
      const page = await temporal(() =>
        client.workflowService.listWorkflowExecutions({
          namespace: client.options.namespace,
          query,
          pageSize: Number(pageSize ?? 20),
          nextPageToken: pageToken ? Buffer.from(pageToken, 'base64url') : undefined,
        }),
      );
      const transfers = (page.executions ?? []).map((e) => ({
        id: e.execution?.workflowId ?? '',
        execution: statusName(e.status),
        stage: stage ?? keyword(e.searchAttributes?.indexedFields?.[TRANSFER_STATUS.name]?.data),
        startedAt: e.startTime?.seconds
          ? new Date(Number(e.startTime.seconds) * 1000).toISOString()
          : undefined,
      }));
      const next = page.nextPageToken?.length
        ? Buffer.from(page.nextPageToken).toString('base64url')
        : undefined;
      return next ? { transfers, nextPageToken: next } : { transfers };
    },
  );

  registerReviewRoutes(app, client, temporal);

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    try {
      await client.connection.withDeadline(Date.now() + 2000, () => client.workflowService.getSystemInfo({}));
      return { status: 'ready' };
    } catch {
      return reply.code(503).send({ status: 'Temporal does not answer' });
    }
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  /** One transfer, from the workflow while a worker answers, else from history. */
  async function readTransfer(id: string, subject: string): Promise<{ runId?: string; transfer: Transfer }> {
    const handle = client.workflow.getHandle<typeof moneyTransfer>(id);
    let run;
    try {
      run = await temporal(() => handle.describe());
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw new Problem('not-found', `No transfer ${id}.`);
      throw err;
    }
    const startedBy = typeof run.memo?.startedBy === 'string' ? run.memo.startedBy : undefined;
    // A caller reads its own transfers: another's, or any other workflow, is not found.
    if (!TRANSFER_WORKFLOW_TYPES.includes(run.type) || startedBy !== subject) {
      throw new Problem('not-found', `No transfer ${id}.`);
    }
    const base = { id, execution: run.status.name, startedBy };
    if (run.status.name === 'RUNNING') {
      try {
        const status = await client.connection.withDeadline(Date.now() + 2000, () => handle.query(getStatus));
        return {
          runId: run.runId,
          transfer: { ...base, stage: status.stage, status, answeredFrom: 'workflow' },
        };
      } catch {
        return {
          runId: run.runId,
          transfer: {
            ...base,
            answeredFrom: 'history',
            note: 'No worker answered within 2 s, so the stage is unknown: this comes from history.',
          },
        };
      }
    }
    try {
      const result: unknown = await temporal(() => client.workflow.getHandle(id, run.runId).result());
      // An operator's settling run completes whether the money arrived or went back.
      const stage = run.type === 'settleStrandedTransfer' ? 'settled' : 'completed';
      return {
        runId: run.runId,
        transfer: { ...base, stage, result: String(result), answeredFrom: 'history' },
      };
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      const cause = err.cause;
      const type =
        cause instanceof ApplicationFailure
          ? (cause.type ?? 'Error')
          : cause instanceof TerminatedFailure
            ? 'Terminated'
            : ((cause?.cause instanceof ApplicationFailure ? cause.cause.type : undefined) ??
              cause?.name ??
              'Error');
      return {
        runId: run.runId,
        transfer: {
          ...base,
          ...(run.status.name === 'FAILED' ? { stage: 'failed' } : {}),
          failure: {
            type,
            message: (cause?.cause instanceof Error ? cause.cause.message : cause?.message) ?? err.message,
          },
          answeredFrom: 'history',
        },
      };
    }
  }

  return app;
}

/**
 * The workflow id for a caller's key: a key is the caller's own, so two callers' equal
 * keys are two transfers. Hashed, so the id is short, URL-safe and reveals neither.
 */
export function transferId(subject: string, idempotencyKey: string): string {
  return `pay-${digest(`${subject}\n${idempotencyKey}`)}`;
}

function idempotencyDetail(why: string): string {
  return `This Idempotency-Key already started a different payment (${why.replace(/^This transfer is another payment: /, '').replace(/\.$/, '')}). Use a new key for a new payment.`;
}

/** A framework or Temporal error as a problem: validation, body size, or an unreachable server. */
function asProblem(err: FastifyError, request: FastifyRequest): Problem {
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new Problem('body-too-large', `The body may be at most ${BODY_LIMIT_BYTES} bytes.`);
  }
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return new Problem('unsupported-media-type', 'Send the body as application/json.');
  }
  if (
    err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ||
    err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ||
    (err instanceof SyntaxError && err.statusCode === 400)
  ) {
    return new Problem('malformed-json', err.message);
  }
  if (err.validation) {
    const v = err.validation[0]!;
    const field =
      (v.instancePath.replace(/^\//, '') ||
        [v.params.missingProperty, v.params.additionalProperty].find((p) => typeof p === 'string')) ??
      '';
    if (err.validationContext === 'headers') {
      return v.keyword === 'required'
        ? new Problem(
            'idempotency-key-missing',
            'Send an Idempotency-Key header: a key of your own for this payment.',
          )
        : new Problem(
            'invalid-idempotency-key',
            'The Idempotency-Key must be 1 to 128 characters of A-Z a-z 0-9 . _ : -.',
          );
    }
    if (err.validationContext === 'querystring')
      return new Problem('invalid-query', `${field}: ${v.message}.`);
    if (v.instancePath === '' && v.keyword === 'type') {
      return new Problem('wrong-type', 'The body must be a JSON object: the payment.');
    }
    if (v.keyword === 'required') return new Problem('missing-field', `The body needs ${field}.`, { field });
    if (v.keyword === 'additionalProperties') {
      return new Problem('unknown-field', `The body has a field the API does not know: ${field}.`, { field });
    }
    if (field === 'amount') {
      return new Problem('invalid-amount', 'amount must be a whole number above 0.', { field });
    }
    if (v.keyword === 'type') return new Problem('wrong-type', `${field} ${v.message}.`, { field });
    if (v.keyword === 'pattern') {
      return new Problem('invalid-characters', `${field} must not contain control or format characters.`, {
        field,
      });
    }
    if (v.keyword === 'maxLength') return new Problem('too-long', `${field} ${v.message}.`, { field });
    if (v.keyword === 'minLength')
      return new Problem('missing-field', `${field} must not be empty.`, { field });
    return new Problem('wrong-type', `${field} ${v.message}.`, { field });
  }
  const code = grpcCode(err);
  if (code !== undefined && TRANSIENT_GRPC_CODES.has(code)) {
    if (code === 13) console.error(`API: ${request.method} ${request.url}: Temporal answered INTERNAL:`, err);
    return new Problem('temporal-unavailable', 'The Temporal service did not answer; try again shortly.');
  }
  // A page token from another listing: INVALID_ARGUMENT, or UNKNOWN from the dev server's SQLite.
  const listing =
    ['/transfers', '/reviews'].includes(request.routeOptions.url ?? '') && request.method === 'GET';
  if (listing && (code === 3 || (code === 2 && (request.query as { pageToken?: string }).pageToken))) {
    return new Problem('invalid-query', 'The server refused the query: a page token from another listing?');
  }
  // A framework error about the request itself (a 4xx), such as a bad header.
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    return new Problem('malformed-request', err.message);
  }
  console.error(`API: ${request.method} ${request.url} failed:`, err);
  return new Problem('internal-error', 'The request failed; the server log has the details.');
}

/**
 * The gRPC codes of a Temporal that is failing over, not of a wrong request: 1 CANCELLED (by
 * the server, a host going away mid-call), 4 DEADLINE_EXCEEDED, 8 RESOURCE_EXHAUSTED, 10
 * ABORTED (an update-with-start's other half failed), 13 INTERNAL, 14 UNAVAILABLE. What the
 * call did is unknown, so the answer is 503: the same POST again, with its key, is safe and
 * learns the outcome, where a 500 would read as a failure that may not be one.
 */
export const TRANSIENT_GRPC_CODES: ReadonlySet<number> = new Set([1, 4, 8, 10, 13, 14]);

/** The gRPC status code in an error's cause chain. */
function grpcCode(err: unknown): number | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
    if (e instanceof ServiceError && e.cause === undefined) return 14; // the client gave up on the server
  }
  return undefined;
}

const STATUS_NAMES = [
  'UNSPECIFIED',
  'RUNNING',
  'COMPLETED',
  'FAILED',
  'CANCELED',
  'TERMINATED',
  'CONTINUED_AS_NEW',
  'TIMED_OUT',
];

function statusName(status: number | null | undefined): string {
  return STATUS_NAMES[status ?? 0] ?? 'UNSPECIFIED';
}

/** A Keyword search attribute's value, JSON in its payload. */
function keyword(data: Uint8Array | null | undefined): string | undefined {
  if (!data) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(data).toString('utf8'));
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
