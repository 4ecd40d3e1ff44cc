// Telling the bank's definite "no" (nothing moved) from an unknown outcome.
import { ActivityFailure, ApplicationFailure, CancelledFailure, TimeoutFailure } from '@temporalio/workflow';
import type { RetryState, TimeoutType } from '@temporalio/common';
import { DEFINITE_FAILURES } from '../contract';

/** The bank said no: a non-retryable business error, so nothing moved. */
export function isDefinite(err: unknown): boolean {
  return DEFINITE_FAILURES.includes(failureType(err) ?? '');
}

/** The type of the bank error an activity failed with, e.g. InsufficientFundsError. */
export function failureType(err: unknown): string | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
    ? (err.cause.type ?? undefined)
    : undefined;
}

/** The type of the failure a transfer ends with: a bank error's, or the workflow's own (e.g. ResolvedManually). */
export function endingType(err: unknown): string | undefined {
  if (err instanceof ApplicationFailure) return err.type ?? undefined;
  return failureType(err);
}

/**
 * A failure as plain data, so that a run continued as new can end with the same failure
 * chain (e.g. ActivityFailure [deposit] caused by ApplicationFailure [InvalidAccountError])
 * as the run that parked.
 */
export interface FailureRecord {
  kind: 'activity' | 'timeout' | 'cancelled' | 'application';
  message: string;
  type?: string;
  nonRetryable?: boolean;
  activityType?: string;
  activityId?: string;
  retryState?: RetryState;
  identity?: string;
  timeoutType?: TimeoutType;
  cause?: FailureRecord;
}

export function recordFailure(err: unknown): FailureRecord | undefined {
  if (!(err instanceof Error)) return undefined;
  const cause = recordFailure(err.cause);
  const base = { message: err.message, ...(cause ? { cause } : {}) };
  if (err instanceof ActivityFailure) {
    const { activityType, activityId, retryState, identity } = err;
    return { kind: 'activity', ...base, activityType, activityId, retryState, identity };
  }
  if (err instanceof TimeoutFailure) return { kind: 'timeout', ...base, timeoutType: err.timeoutType };
  if (err instanceof CancelledFailure) return { kind: 'cancelled', ...base };
  const type = err instanceof ApplicationFailure ? (err.type ?? undefined) : err.name;
  const nonRetryable = err instanceof ApplicationFailure ? (err.nonRetryable ?? undefined) : undefined;
  return { kind: 'application', ...base, type, nonRetryable };
}

export function rebuildFailure(record: FailureRecord | undefined): Error | undefined {
  if (!record) return undefined;
  const cause = rebuildFailure(record.cause);
  switch (record.kind) {
    case 'activity':
      return new ActivityFailure(
        record.message,
        record.activityType ?? '',
        record.activityId,
        record.retryState,
        record.identity,
        cause,
      );
    case 'timeout':
      return new TimeoutFailure(record.message, undefined, record.timeoutType);
    case 'cancelled':
      return new CancelledFailure(record.message, [], cause);
    case 'application':
      return ApplicationFailure.create({
        message: record.message,
        type: record.type,
        nonRetryable: record.nonRetryable,
        cause,
      });
  }
}
