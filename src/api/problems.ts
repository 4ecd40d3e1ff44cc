// RFC 9457 problem details: every error the API returns, each kind with a stable `type`
// (a path under /problems/, listed in docs/api.md) and its HTTP status.

export const PROBLEMS = {
  'malformed-json': [400, 'The body is not valid JSON'],
  'missing-field': [400, 'A required field is missing'],
  'unknown-field': [400, 'The body has a field the API does not know'],
  'wrong-type': [400, 'A field has the wrong type'],
  'invalid-characters': [400, 'A field holds control or format characters'],
  'too-long': [400, 'A field is longer than allowed'],
  'invalid-amount': [400, 'The amount must be a whole number above 0'],
  'invalid-payment': [400, 'The payment details are invalid'],
  'invalid-query': [400, 'A query parameter is invalid'],
  'malformed-request': [400, 'The request is malformed'],
  'idempotency-key-missing': [400, 'The Idempotency-Key header is required'],
  'invalid-idempotency-key': [400, 'The Idempotency-Key header is malformed'],
  unauthorized: [401, 'A valid bearer token is required'],
  forbidden: [403, 'The token lacks the scope or role this route needs'],
  'not-found': [404, 'No such transfer'],
  'transfer-cancelled': [409, 'The transfer was cancelled before its withdrawal completed'],
  'decision-refused': [409, 'The transfer refused the decision'],
  'body-too-large': [413, 'The body is larger than allowed'],
  'unsupported-media-type': [415, 'The body must be application/json'],
  'idempotency-key-reused': [422, 'The Idempotency-Key was used for another payment'],
  'insufficient-funds': [422, 'The source account has insufficient funds'],
  'invalid-account': [422, 'The bank does not know an account'],
  'account-closed': [422, 'An account is closed'],
  'transfer-already-owned': [422, 'Another transfer owns this payment reference'],
  'payment-refused': [422, 'The bank refused the payment'],
  'internal-error': [500, 'Internal error'],
  'payment-failed': [502, "The bank's outcome was unknown; the payment was settled and did not go through"],
  'temporal-unavailable': [503, 'The Temporal service cannot be reached'],
  'auth-unavailable': [503, 'The token issuer cannot be reached'],
} as const satisfies Record<string, readonly [number, string]>;

export type ProblemKind = keyof typeof PROBLEMS;

/** An error that the API answers with a problem document. */
export class Problem extends Error {
  override name = 'Problem';
  constructor(
    readonly kind: ProblemKind,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
  }

  get status(): number {
    return PROBLEMS[this.kind][0];
  }

  body(instance: string): Record<string, unknown> {
    const [status, title] = PROBLEMS[this.kind];
    return { type: `/problems/${this.kind}`, title, status, detail: this.detail, instance, ...this.extra };
  }
}

/** The bank's definite "no", by failure type, as a problem kind. */
export function refusalKind(failureType: string | undefined): ProblemKind {
  switch (failureType) {
    case 'InsufficientFundsError':
      return 'insufficient-funds';
    case 'InvalidAccountError':
      return 'invalid-account';
    case 'AccountClosedError':
      return 'account-closed';
    case 'TransferAlreadyOwnedError':
      return 'transfer-already-owned';
    default:
      return 'payment-refused';
  }
}
