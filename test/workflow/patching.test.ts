// Patching, the other path (docs/versioning.md): v2's limit check behind `patched()`
// replays every history recorded before it, the same change without the patch does not,
// and the `deprecatePatch()` step replays what the patched code recorded.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import type { temporal } from '@temporalio/proto';
import { BankingService } from '../../src/bank/banking-service';
import { TEST_LIMITS_HISTORIES, transferDetails, uniqueId, useTestTemporal } from '../support/helpers';
import {
  bundleWorkflowSource,
  DEPRECATED_CALL,
  loadV2Activities,
  PATCHED_CALL,
  v2Workflows,
} from '../support/versioning-drill';

const HISTORIES = path.join(__dirname, '..', 'fixtures', 'histories');
const load = (file: string): unknown => JSON.parse(readFileSync(path.join(HISTORIES, file), 'utf8'));
const workflowType = (file: string) =>
  (
    load(file) as {
      events: Array<{ workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }>;
    }
  ).events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
// v2 changes the transfer's flow; an operator's settling run is another workflow, which
// replay.test.ts replays.
const PRE_CHANGE = readdirSync(HISTORIES).filter(
  (file) => file.endsWith('.json') && workflowType(file) === 'moneyTransfer',
);
const DOCS = readFileSync(path.join(__dirname, '..', '..', 'docs', 'versioning.md'), 'utf8');

type Variant = 'patched' | 'unpatched' | 'deprecated' | 'patched-fast';
const bundles: Partial<Record<Variant, Promise<string>>> = {};
/** One bundle per variant of v2, built once for the file; `patched-fast` has the test limits. */
function bundle(variant: Variant): Promise<string> {
  const call = {
    patched: PATCHED_CALL,
    'patched-fast': PATCHED_CALL,
    deprecated: DEPRECATED_CALL,
    unpatched: undefined,
  }[variant];
  const limits = variant === 'patched-fast' ? require.resolve('../support/fast-limits') : undefined;
  return (bundles[variant] ??= bundleWorkflowSource(
    v2Workflows(undefined, call),
    `workflows-${variant}`,
    limits,
  ));
}

test('docs/versioning.md shows the patch and its deprecation the tests replay', () => {
  expect(DOCS).toContain(`\`\`\`ts\n${PATCHED_CALL}\n\`\`\``);
  expect(DOCS).toContain(`\`\`\`ts\n${DEPRECATED_CALL}\n\`\`\``);
});

test.each(PRE_CHANGE)(
  'the patched change replays %s, recorded before it',
  async (file) => {
    const code = await bundle(TEST_LIMITS_HISTORIES.includes(file) ? 'patched-fast' : 'patched');
    await expect(Worker.runReplayHistory({ workflowBundle: { code } }, load(file))).resolves.toBeUndefined();
  },
  60_000,
);

test('the same change without the patch fails the replay of a history recorded before it', async () => {
  const code = await bundle('unpatched');
  await expect(
    Worker.runReplayHistory({ workflowBundle: { code } }, load('success.json')),
  ).rejects.toBeInstanceOf(DeterminismViolationError);
}, 60_000);

describe('deprecatePatch()', () => {
  const temporal = useTestTemporal();
  let recorded: temporal.api.history.v1.IHistory;

  beforeAll(async () => {
    // A transfer that the patched code runs from its start, so that its history has the marker.
    const code = await bundle('patched');
    const taskQueue = uniqueId('patched');
    const worker = await Worker.create({
      connection: temporal().workerConnection,
      taskQueue,
      workflowBundle: { code },
      activities: loadV2Activities()(new BankingService('bank-api.example.com')),
    });
    recorded = await worker.runUntil(async () => {
      const handle = await temporal().start(taskQueue, transferDetails());
      await handle.result();
      return handle.fetchHistory();
    });
  }, 60_000);

  test('the patched code ran the limit check and recorded the patch marker', () => {
    const events = recorded.events ?? [];
    expect(events.some((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')).toBe(true);
    expect(
      events.map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean),
    ).toEqual(['checkDailyLimit', 'withdraw', 'deposit']);
  });

  test('the deprecated patch replays what the patched code recorded', async () => {
    const code = await bundle('deprecated');
    await expect(Worker.runReplayHistory({ workflowBundle: { code } }, recorded)).resolves.toBeUndefined();
  }, 60_000);

  test('the deprecated patch fails a history from before the patch: deprecate only once those closed', async () => {
    const code = await bundle('deprecated');
    await expect(
      Worker.runReplayHistory({ workflowBundle: { code } }, load('success.json')),
    ).rejects.toBeInstanceOf(DeterminismViolationError);
  }, 60_000);
});
