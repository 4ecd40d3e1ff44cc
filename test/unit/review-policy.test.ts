// The review policy's rule (src/contract.ts) and the failure a run continued as new ends
// with (src/workflows/failures.ts), without a server.
import { ActivityFailure, ApplicationFailure, TimeoutFailure } from '@temporalio/common';
import {
  InvalidPaymentDetailsError,
  REVIEW_POLICY_MINIMUMS,
  ReviewPolicyTooShortError,
  validateReviewPolicy,
} from '../../src/contract';
import { type FailureRecord, rebuildFailure, recordFailure } from '../../src/workflows/failures';

const thrown = (fn: () => void): unknown => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
};

describe('validateReviewPolicy', () => {
  test.each([
    [{ remindEvery: 200 }, 'remindEvery must be at least 15 minutes (got 200)'],
    [{ remindEvery: '14 minutes' }, 'remindEvery must be at least 15 minutes (got "14 minutes")'],
    [{ reviewAfter: '59 seconds' }, 'reviewAfter must be at least 1 minute (got "59 seconds")'],
  ])('%j is too short', (policy, start) => {
    const err = thrown(() => validateReviewPolicy(policy));
    expect(err).toBeInstanceOf(ReviewPolicyTooShortError);
    expect((err as Error).name).toBe('ReviewPolicyTooShortError');
    expect((err as Error).message.startsWith(start)).toBe(true);
    expect((err as Error).message).toContain('about 11 events');
  });

  test('the minimums, the defaults and no policy pass', () => {
    for (const policy of [
      undefined,
      {},
      { reviewAfter: '1 hour', remindEvery: '4 hours' },
      REVIEW_POLICY_MINIMUMS,
    ])
      expect(thrown(() => validateReviewPolicy(policy))).toBeUndefined();
  });

  test('a malformed policy is refused as before, with a short value named beside it', () => {
    const err = thrown(() => validateReviewPolicy({ reviewAfter: 'soon', remindEvery: 5 }));
    expect(err).toBeInstanceOf(InvalidPaymentDetailsError);
    expect(err).not.toBeInstanceOf(ReviewPolicyTooShortError);
    expect((err as Error).message).toBe(
      'reviewAfter must be a duration such as \'1 hour\' or a number of milliseconds (got "soon"); ' +
        'remindEvery must be at least 15 minutes (got 5)',
    );
  });

  test('other minimums, as a test bundle passes them', () => {
    expect(
      thrown(() => validateReviewPolicy({ remindEvery: 10 }, { reviewAfter: 1000, remindEvery: 10 })),
    ).toBe(undefined);
  });
});

describe('a failure carried to the next run', () => {
  test('an activity failure and its cause come back as the same chain, through JSON', () => {
    const original = new ActivityFailure(
      'Activity task failed',
      'deposit',
      '2',
      'NON_RETRYABLE_FAILURE',
      'worker-1',
      ApplicationFailure.create({ type: 'InvalidAccountError', message: 'closed', nonRetryable: true }),
    );
    const rebuilt = rebuildFailure(JSON.parse(JSON.stringify(recordFailure(original))) as FailureRecord);
    expect(rebuilt).toBeInstanceOf(ActivityFailure);
    expect(rebuilt).toMatchObject({
      activityType: 'deposit',
      activityId: '2',
      retryState: 'NON_RETRYABLE_FAILURE',
    });
    expect(rebuilt!.cause).toBeInstanceOf(ApplicationFailure);
    expect(rebuilt!.cause).toMatchObject({
      type: 'InvalidAccountError',
      message: 'closed',
      nonRetryable: true,
    });
  });

  test('a timeout stays a timeout; nothing stays nothing', () => {
    const rebuilt = rebuildFailure(
      recordFailure(new TimeoutFailure('timed out', undefined, 'START_TO_CLOSE')),
    );
    expect(rebuilt).toBeInstanceOf(TimeoutFailure);
    expect(rebuilt).toMatchObject({ timeoutType: 'START_TO_CLOSE' });
    expect(rebuildFailure(recordFailure(undefined))).toBeUndefined();
  });
});
