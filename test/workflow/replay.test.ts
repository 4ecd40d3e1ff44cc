// Determinism: today's workflow code must replay the histories a real dev server
// recorded (test/histories, refreshed by `npm run histories`), and a changed workflow must not.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { testServer } from '../helpers';

const HISTORIES = path.join(__dirname, '..', 'histories');
const load = (name: string): unknown => JSON.parse(readFileSync(path.join(HISTORIES, name), 'utf8'));

test('the committed histories cover the four kinds of transfer', () => {
  expect(readdirSync(HISTORIES).sort()).toEqual([
    'bad-input.json',
    'failing-deposit-refund.json',
    'insufficient-funds.json',
    'success.json',
  ]);
});

test.each(['success.json', 'insufficient-funds.json', 'failing-deposit-refund.json', 'bad-input.json'])(
  'replays %s',
  async (file) => {
    await expect(
      Worker.runReplayHistory({ workflowBundle: { codePath: testServer().bundlePath } }, load(file)),
    ).resolves.toBeUndefined();
  },
);

test('a workflow that schedules a different activity fails replay with a determinism error', async () => {
  // The same workflow, except that it refunds where it should withdraw.
  const source = readFileSync(path.join(__dirname, '..', '..', 'src', 'workflows.ts'), 'utf8');
  const changed = source
    .replace('status.withdrawId = await withdraw(details);', 'status.withdrawId = await refund(details);')
    .replaceAll("from './", "from '../../src/");
  expect(changed).toContain('status.withdrawId = await refund(details);'); // the edit took
  const dir = path.join(__dirname, '..', '.drill');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `workflows-changed-${process.pid}.ts`);
  writeFileSync(file, changed);
  const { code } = await bundleWorkflowCode({ workflowsPath: file, logger: new DefaultLogger('WARN') });

  await expect(
    Worker.runReplayHistory({ workflowBundle: { code } }, load('success.json')),
  ).rejects.toBeInstanceOf(DeterminismViolationError);
});
