// The workflow's limits on its own history, in one module of their own so that a test
// bundle can swap this module for test/support/fast-limits.ts (buildWorkflowBundle's
// `limits`): the tests then park transfers that remind every few milliseconds. Production
// bundles never take that option, so a caller cannot reach the test values.
import { REVIEW_POLICY_MINIMUMS } from '../contract';

export const LIMITS = {
  /** The shortest review policy the workflow accepts (validateReviewPolicy). */
  reviewPolicyMinimums: REVIEW_POLICY_MINIMUMS,
  /**
   * A transfer waiting for review continues as new once its run's history reaches this many
   * events (or the server suggests it sooner): about 180 reminders, a month at the default
   * policy. A parked transfer is usually out of the worker's cache when a reminder wakes it,
   * so each wake-up replays the whole run; 2,000 events keep that replay short and stay far
   * below the server's 10,240-event warning. See docs/design.md.
   */
  continueAsNewAtEvents: 2_000,
};
