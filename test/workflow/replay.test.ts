// Determinism: today's workflow code must replay the histories a real dev server
// recorded (test/fixtures/histories, refreshed by `npm run histories`), and a changed workflow must not.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { testServer } from '../support/helpers';
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
];

test('the committed histories cover each kind of transfer, each settle path and the review path', () => {
  expect(readdirSync(HISTORIES).sort()).toEqual([...HISTORY_FILES].sort());
});

test.each(HISTORY_FILES)('replays %s', async (file) => {
  await expect(
    Worker.runReplayHistory({ workflowBundle: { codePath: testServer().bundlePath } }, load(file)),
  ).resolves.toBeUndefined();
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
