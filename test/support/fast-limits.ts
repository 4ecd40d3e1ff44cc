// Test bundles only (MONEY_TRANSFER_TEST_FAST_BUNDLE): src/workflows/limits.ts with
// limits small enough for a dev server that cannot skip time. The server fires no timer
// sooner than about a second (history.timerProcessorMaxTimeShift), so a 10 ms reminder
// comes every second; a run continues as new after 120 events, about 10 reminders.
import type { LIMITS as PRODUCTION } from '../../src/workflows/limits';

export const LIMITS: typeof PRODUCTION = {
  reviewPolicyMinimums: { reviewAfter: 1000, remindEvery: 10 },
  continueAsNewAtEvents: 120,
};
