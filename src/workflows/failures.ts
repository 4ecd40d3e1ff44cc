// Telling the bank's definite "no" (nothing moved) from an unknown outcome.
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
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
