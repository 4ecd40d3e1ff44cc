// Determinism: today's workflow code must replay the histories a real dev server
// recorded (test/fixtures/histories, refreshed by `npm run histories`), and a changed workflow must not.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { TEST_LIMITS_HISTORIES, testServer } from '../support/helpers';
import { bundleWorkflowSource, TRANSFER_FLOW } from '../support/versioning-drill';

const HISTORIES = path.join(__dirname, '..', 'fixtures', 'histories');
const load = (name: string): unknown => JSON.parse(readFileSync(path.join(HISTORIES, name), 'utf8'));

const HISTORY_FILES = [
  'success.json',
  'insufficient-funds.json',
  'failing-deposit-refund.json',
  'bad-input.json',
  'settle-withdrawal-never-posted.json',
  'settle-withdrawal-posted-refunded.json',
  'settle-deposit-posted-after-all.json',
  'review-retry-refund.json',
  'review-four-eyes.json',
  // Recorded before four eyes and notices in the background: they replay the old way.
  'review-retry-refund-before-four-eyes.json',
  'review-resolve-manually-before-four-eyes.json',
  // Recorded before the review policy's minimums, with a reminder every 200 ms: it replays.
  'review-short-reminders-before-minimums.json',
  // The second run of a transfer that continued as new: it resumes in review, and ben
  // approves ana's proposal from the first run. Short, so any bundle replays it.
  'review-continue-as-new-run-2.json',
  // An operator's settling run (`review settle`): refunded outright, and refused once, then
  // retried from review.
  'stranded-refunded.json',
  'stranded-review-retry-refund.json',
];
const FAST_HISTORY_FILES = TEST_LIMITS_HISTORIES;

test('the committed histories cover each kind of transfer, each settle path and the review path', () => {
  expect(readdirSync(HISTORIES).sort()).toEqual(
    [...new Set([...HISTORY_FILES, ...FAST_HISTORY_FILES])].sort(),
  );
});

test.each(HISTORY_FILES)('replays %s', async (file) => {
  await expect(
    Worker.runReplayHistory({ workflowBundle: { codePath: testServer().bundlePath } }, load(file)),
  ).resolves.toBeUndefined();
});

test.each(FAST_HISTORY_FILES)('the test bundle replays %s', async (file) => {
  await expect(
    Worker.runReplayHistory({ workflowBundle: { codePath: testServer().fastBundlePath } }, load(file)),
  ).resolves.toBeUndefined();
});

test('the first run continued as new at the bound, carrying the review; the second resumed it without moving money', () => {
  type Event = { eventType: string } & Record<string, { input?: { payloads?: Array<{ data: string }> } }>;
  const events = (file: string) => (load(file) as { events: Event[] }).events;
  const types = (file: string) => events(file).map((e) => e.eventType.replace('EVENT_TYPE_', ''));
  const first = types('review-continue-as-new-run-1.json');
  expect(first.at(-1)).toBe('WORKFLOW_EXECUTION_CONTINUED_AS_NEW');
  expect(first.length).toBeGreaterThanOrEqual(120); // fast-limits.ts
  const carried = events('review-continue-as-new-run-1.json')
    .at(-1)!
    .workflowExecutionContinuedAsNewEventAttributes!.input!.payloads!.map(
      (p) => JSON.parse(Buffer.from(p.data, 'base64').toString()) as unknown,
    );
  expect(carried[2]).toMatchObject({
    status: { stage: 'needs-review', owed: 250, review: { proposal: { operator: 'ana' } } },
    fourEyes: true,
    noticesInBackground: true,
    failedStep: 'deposit',
    stepFailure: { kind: 'activity', activityType: 'deposit', cause: { type: 'InvalidAccountError' } },
    round: 1,
    runs: 1,
  });
  const second = events('review-continue-as-new-run-2.json');
  const activities = second.flatMap((e) =>
    e.activityTaskScheduledEventAttributes ? [JSON.stringify(e.activityTaskScheduledEventAttributes)] : [],
  );
  expect(activities).toHaveLength(1);
  expect(activities[0]).toContain('notifyOperator');
  expect(second.at(-1)!.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_FAILED');
});

test('a workflow that schedules a different activity fails replay with a determinism error', async () => {
  // The same workflow, except that it deposits where it should withdraw.
  const changed = readFileSync(TRANSFER_FLOW, 'utf8').replace(
    'status.withdrawId = await withdraw.executeWithOptions(',
    'status.withdrawId = await deposit.executeWithOptions(',
  );
  expect(changed).toContain('status.withdrawId = await deposit.executeWithOptions('); // the edit took
  const code = await bundleWorkflowSource(changed, 'workflows-changed');

  await expect(
    Worker.runReplayHistory({ workflowBundle: { code } }, load('success.json')),
  ).rejects.toBeInstanceOf(DeterminismViolationError);
});
