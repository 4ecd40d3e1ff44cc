// The JSON Schemas that validate the API's requests and describe its answers; the
// OpenAPI document at /openapi.json is generated from these same objects.
import {
  MAX_ACCOUNT_LENGTH,
  MAX_REFERENCE_LENGTH,
  PAYMENT_FIELDS,
  PRINTABLE_PATTERN,
  type TransferStage,
} from '../contract';

/** The largest body the API reads: a payment is about 150 bytes. */
export const BODY_LIMIT_BYTES = 4096;

const text = (maxLength: number, description: string) =>
  ({ type: 'string', minLength: 1, maxLength, pattern: PRINTABLE_PATTERN, description }) as const;

export const paymentSchema = {
  $id: 'Payment',
  type: 'object',
  additionalProperties: false,
  required: [...PAYMENT_FIELDS],
  properties: {
    sourceAccount: text(MAX_ACCOUNT_LENGTH, 'The account the money leaves.'),
    targetAccount: text(MAX_ACCOUNT_LENGTH, 'The account the money goes to.'),
    amount: {
      type: 'integer',
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'Whole currency units, above 0.',
    },
    referenceId: text(MAX_REFERENCE_LENGTH, "The payment's reference: the bank's idempotency key."),
  },
} as const;

/** A caller's key, as the IETF Idempotency-Key draft and Stripe use it: unique per payment. */
export const IDEMPOTENCY_KEY_PATTERN = '^[A-Za-z0-9._:-]{1,128}$';

export const createHeadersSchema = {
  type: 'object',
  required: ['idempotency-key'],
  properties: {
    'idempotency-key': {
      type: 'string',
      pattern: IDEMPOTENCY_KEY_PATTERN,
      description: 'The same key with the same body gives back the same transfer, and never starts another.',
    },
  },
} as const;

export const decisionHeadersSchema = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      pattern: IDEMPOTENCY_KEY_PATTERN,
      description:
        'Optional. A decision sent again with the same key and body (after a 503, say) attaches to the one ' +
        'the first POST started, and answers its outcome, within the same run of the transfer.',
    },
  },
} as const;

export const STAGES: readonly TransferStage[] = [
  'validating',
  'withdrawing',
  'depositing',
  'refunding',
  'needs-review',
  'completed',
  'failed',
  'cancelled',
];

export const transferSchema = {
  $id: 'Transfer',
  type: 'object',
  required: ['id', 'execution', 'answeredFrom'],
  properties: {
    id: { type: 'string', description: 'The workflow id.' },
    execution: {
      type: 'string',
      description: 'The execution status: RUNNING, COMPLETED, FAILED, TERMINATED, ...',
    },
    stage: {
      type: 'string',
      enum: [...STAGES, 'settled'],
      description:
        '`settled`: an operator settled the transfer after it was ended from outside (docs/operations.md).',
    },
    status: {
      type: 'object',
      additionalProperties: true,
      description: 'The TransferView, while it runs or as the early return saw it.',
    },
    result: { type: 'string' },
    failure: {
      type: 'object',
      properties: { type: { type: 'string' }, message: { type: 'string' } },
    },
    startedBy: { type: 'string', description: 'The subject of the token that started it.' },
    answeredFrom: { type: 'string', enum: ['workflow', 'history'] },
    note: { type: 'string' },
  },
} as const;

export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  required: ['type', 'title', 'status'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
  },
  additionalProperties: true,
} as const;

export const listQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    stage: {
      type: 'string',
      enum: ['started', ...STAGES],
      description:
        'The TransferStatus search attribute: `started` until a refund begins, then its stage (needs-review, ...).',
    },
    execution: {
      type: 'string',
      enum: ['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'TimedOut'],
      description: 'The execution status.',
    },
    pageSize: { type: 'string', pattern: '^(100|[1-9][0-9]?)$', description: '1 to 100; default 20.' },
    pageToken: { type: 'string', maxLength: 4096, pattern: '^[A-Za-z0-9_-]*$' },
  },
} as const;

/** GET /reviews: a page of the transfers waiting for review. */
export const reviewQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    pageSize: { type: 'string', pattern: '^(100|[1-9][0-9]?)$', description: '1 to 100; default 50.' },
    pageToken: listQuerySchema.properties.pageToken,
  },
} as const;

export const listSchema = {
  type: 'object',
  required: ['transfers'],
  properties: {
    transfers: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          execution: { type: 'string' },
          stage: { type: 'string' },
          startedAt: { type: 'string' },
        },
      },
    },
    nextPageToken: { type: 'string' },
  },
} as const;

/** A note an operator writes: what was done outside the system, or why a proposal is rejected. */
export const noteSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['note'],
  properties: { note: { type: 'string', minLength: 1, maxLength: 500, pattern: PRINTABLE_PATTERN } },
} as const;

export const refundToSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['account'],
  properties: { account: { type: 'string', minLength: 1, maxLength: 64, pattern: PRINTABLE_PATTERN } },
} as const;

/** A transfer waiting for review: its status, or a note when no worker answered. */
export const reviewSchema = {
  type: 'object',
  required: ['id', 'startedAt'],
  properties: {
    id: { type: 'string' },
    startedAt: { type: 'string' },
    payment: { type: 'object', additionalProperties: true, description: 'The payment as it was started.' },
    status: { type: 'object', additionalProperties: true },
    note: { type: 'string' },
  },
} as const;
