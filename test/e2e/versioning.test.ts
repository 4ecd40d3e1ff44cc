// Worker Versioning: the README's deploy drill with two worker processes of different
// workflow code, and the version a versioned worker's executions carry. v1 is the
// compiled app in lib/; v2 is a changed copy of src/ (test/support/versioning-drill.ts).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { isGrpcServiceError, type Client, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { moneyTransfer } from '../../src/workflows';
import { Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { parseFaults, UnreliableBank } from '../../src/bank/faults';
import { getStatus, transferStartOptions } from '../../src/contract';
import { LIMITS as FAST_LIMITS } from '../support/fast-limits';
import { startDevServer } from '../../tools/dev-server';
import type { CommandProcess } from '../../tools/processes';
import { resolveTemporalCli } from '../../tools/temporal-cli';
import { buildIdOf } from '../../tools/bundle';
import {
  freeDevServerPort,
  runScript,
  ScriptProcess,
  startWorkerProcess,
  testServer,
  transferDetails,
  uniqueId,
  useTestTemporal,
  sleep,
} from '../support/helpers';
import { PAGES, sample, samplePattern } from '../support/readme-samples';

/** The page with the whole drill; the README has its short form. */
const DRILL = PAGES.get('docs/versioning.md')!;
import {
  buildV2Release,
  V2_ACTIVITY,
  V2_ACTIVITY_IMPORT,
  V2_WORKFLOW_ANCHOR,
  V2_WORKFLOW_CALL,
  V2_WORKFLOW_FILE,
  V2_WORKFLOW_PROXY,
  type Release,
} from '../support/versioning-drill';

const { VersionDrainageStatus, VersioningBehavior } = temporal.api.enums.v1;

/** The workflow-task builds and the activities of one execution, in order, from its history. */
async function executionTrace(handle: WorkflowHandle): Promise<{ builds: string[]; activities: string[] }> {
  const { events } = await handle.fetchHistory();
  const builds: string[] = [];
  const activities: string[] = [];
  for (const event of events ?? []) {
    const completed = event.workflowTaskCompletedEventAttributes;
    if (completed) {
      const version = completed.deploymentVersion;
      builds.push(version ? `${version.deploymentName}.${version.buildId}` : 'unversioned');
    }
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled) activities.push(scheduled.activityType?.name ?? '?');
  }
  return { builds, activities };
}

/** The `sh` command shown just before a README sample. */
function commandBefore(name: string): string {
  const before = DRILL.slice(0, DRILL.indexOf(`<!-- sample: ${name} -->`));
  const command = [...before.matchAll(/```sh\n(.*)\n```/g)].at(-1)?.[1];
  if (!command) throw new Error(`docs/versioning.md shows no command before sample ${name}`);
  return command;
}

/** The README's worker deployment describe output, with times, identities and column widths let vary. */
function normalizeDescribe(text: string): string {
  return text
    .replace(/\b(\d+ (seconds?|minutes?|hours?) ago|now)\b/g, '<time>')
    .replace(/temporal-cli:\S+/g, '<identity>')
    .replace(/[ \t]+/g, ' ')
    .replace(/ $/gm, '')
    .trim();
}

describe('the deploy drill (README "Ship a change while transfers wait")', () => {
  let v2: Release | undefined;
  afterAll(() => v2?.remove());

  test('the README shows the v2 change the drill applies', () => {
    expect(DRILL).toContain(`\`\`\`ts\n${V2_ACTIVITY_IMPORT}\n\`\`\``);
    expect(DRILL).toContain(`\`\`\`ts\n${V2_ACTIVITY}\n\`\`\``);
    expect(DRILL).toContain(
      `In \`${V2_WORKFLOW_FILE}\`, add \`${V2_WORKFLOW_CALL}\` before \`${V2_WORKFLOW_ANCHOR}\``,
    );
    expect(DRILL).toContain(`\`\`\`ts\n${V2_WORKFLOW_PROXY}\n\`\`\``);
  });

  test('v1 keeps its parked transfer to the end while v2 runs new ones with the new activity; v1 drains', async () => {
    // A server of its own: the drill uses the default task queue and deployment name,
    // and drainage is checked every second here, not every 3 minutes.
    const port = await freeDevServerPort();
    const [server, release, cli] = await Promise.all([
      startDevServer({
        ip: '127.0.0.1',
        port,
        dynamicConfig: {
          'matching.wv.VersionDrainageStatusVisibilityGracePeriod': '"1s"',
          'matching.wv.VersionDrainageStatusRefreshInterval': '"1s"',
        },
      }),
      buildV2Release(),
      resolveTemporalCli(process.env, () => {}),
    ]);
    v2 = release;
    const env = { TEMPORAL_ADDRESS: `localhost:${port}`, TEMPORAL_UI_URL: 'http://localhost:8233' };
    /** Runs a README command as a reader would, with `temporal` being the CLI the tests use. */
    const shell = async (command: string) => {
      const { stdout } = await promisify(execFile)(
        'sh',
        ['-c', command.replace(/^temporal /, `'${cli.path}' `)],
        {
          env: { ...process.env, ...env },
        },
      );
      return stdout.replace(/[ \t]+$/gm, '').trimEnd();
    };
    const running: CommandProcess[] = [];
    try {
      // 1. Worker v1, the compiled app, with the bank that parks a transfer in review.
      const { worker: v1 } = await startWorkerProcess({
        ...env,
        ...workerEnv('v1'),
        DEV_WORKFLOW_BUNDLE: testServer().bundlePath,
      });
      running.push(v1);
      await v1.waitFor('once this version is current.');
      // The start lines before it are the tutorial's, which readme.test.ts checks.
      expect(v1.stdout.split('\n')).toContain(sample('versioning-worker-v1'));
      expect(await shell(commandBefore('versioning-set-current-v1'))).toBe(
        sample('versioning-set-current-v1'),
      );

      const parked = new ScriptProcess('src/starter.js', starterArgs('pay-invoice-706'), env);
      running.push(parked);
      await parked.waitFor('Web UI: ');
      const parkedHandle = server.client.workflow.getHandle<typeof moneyTransfer>('pay-invoice-706');
      await waitForStage(parkedHandle, 'needs-review');

      // 2-3. Worker v2, a process of the changed code, made current.
      const { worker: w2 } = await startWorkerProcess(
        { ...env, ...workerEnv('v2'), DEV_WORKFLOW_BUNDLE: release.bundlePath },
        [process.execPath, release.worker],
      );
      running.push(w2);
      await w2.waitFor('build id v2');
      expect(w2.stdout.split('\n')).toContain(
        sample('versioning-worker-v1').replace('build id v1', 'build id v2'),
      );
      // The server refuses a current version that does not poll every task queue v1 does.
      await waitForTaskQueues(server.client, 'v2');
      expect(await shell(commandBefore('versioning-set-current-v2'))).toBe(
        sample('versioning-set-current-v2'),
      );

      // 4. A new transfer runs on v2, the limit check first.
      const fresh = await runScript('src/starter.js', starterArgs('pay-invoice-707'), env);
      expect(fresh.stdout.trimEnd()).toMatch(samplePattern(sample('versioning-starter-v2')));
      expect(fresh.code).toBe(0);
      expect(await shell(commandBefore('versioning-history-v2'))).toBe(sample('versioning-history-v2'));
      const freshHandle = server.client.workflow.getHandle<typeof moneyTransfer>('pay-invoice-707');
      const freshTrace = await executionTrace(freshHandle);
      expect(freshTrace.activities).toEqual(['checkDailyLimit', 'withdraw', 'deposit']);
      expect(new Set(freshTrace.builds)).toEqual(new Set(['money-transfer.v2']));

      // 5. v1 drains: no new transfers, but pay-invoice-706 is pinned to it.
      expect(await waitForDescribe(shell, 'versioning-draining')).toBe(
        normalizeDescribe(sample('versioning-draining')),
      );
      expect(await drainage(server.client, 'v1')).toBe(
        VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINING,
      );

      // The operator resolves it; v1 runs the update and the end of the workflow.
      for (const args of reviewCommands()) {
        const review = await runScript('src/review-cli.js', args, env);
        expect({ args, code: review.code }).toEqual({ args, code: 0 }); // the status below holds the resolution
      }
      expect((await parked.exited).code).toBe(1);
      expect(parked.stdout.trimEnd()).toMatch(samplePattern(sample('versioning-starter-v1')));
      expect(await shell(commandBefore('versioning-history-v1'))).toBe(sample('versioning-history-v1'));
      const parkedTrace = await executionTrace(parkedHandle);
      expect(parkedTrace.activities).not.toContain('checkDailyLimit');
      expect(parkedTrace.activities.slice(0, 3)).toEqual(['withdraw', 'deposit', 'refund']);
      expect(new Set(parkedTrace.builds)).toEqual(new Set(['money-transfer.v1']));

      // The ledger of both: v2's moved the money; v1's withdrew, and the operator settled it outside.
      const freshStatus = await freshHandle.query(getStatus);
      expect(freshStatus).toMatchObject({ stage: 'completed' });
      expect(await freshHandle.result()).toBe(
        `Transfer complete (transaction IDs: ${freshStatus.withdrawId}, ${freshStatus.depositId})`,
      );
      const parkedStatus = await parkedHandle.query(getStatus);
      expect(parkedStatus).toMatchObject({ stage: 'failed', resolution: { action: 'resolveManually' } });
      expect(parkedStatus.withdrawId).toMatch(/^W-/);
      expect(parkedStatus.depositId).toBeUndefined();
      expect(parkedStatus.refundId).toBeUndefined();

      expect(await waitForDescribe(shell, 'versioning-drained')).toBe(
        normalizeDescribe(sample('versioning-drained')),
      );
      expect(await drainage(server.client, 'v1')).toBe(VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED);
      expect(await v1.stop()).toEqual({ code: 0, signal: null });
    } finally {
      const alive = running.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
      await Promise.all(alive.map((p) => p.stop()));
      await server.teardown();
    }
  }, 120_000);
});

/** The variables of the README's `... npm run worker` command for build `buildId`. */
function workerEnv(buildId: string): Record<string, string> {
  const match = new RegExp(`\`\`\`sh\n(WORKER_BUILD_ID=${buildId}\\b.*) npm run worker\n`).exec(DRILL);
  if (!match)
    throw new Error(`docs/versioning.md shows no \`WORKER_BUILD_ID=${buildId} ... npm run worker\``);
  return Object.fromEntries(match[1]!.split(' ').map((pair) => pair.split('=') as [string, string]));
}

/** The arguments of the README's `npm run starter -- --workflow-id <workflowId> ...` command. */
function starterArgs(workflowId: string): string[] {
  const match = new RegExp(`\`\`\`sh\nnpm run starter -- (--workflow-id ${workflowId} .*)\n\`\`\``).exec(
    DRILL,
  );
  if (!match)
    throw new Error(`docs/versioning.md shows no \`npm run starter -- --workflow-id ${workflowId} ...\``);
  return match[1]!.split(' ');
}

/** The drill's `npm run review -- ...` commands after v1 drains (resolve, approve), as arguments. */
function reviewCommands(): string[][] {
  const section = DRILL.slice(DRILL.indexOf('<!-- sample: versioning-draining -->'));
  const block = /```sh\n(npm run review -- resolve pay-invoice-706 [\s\S]*?)\n```/.exec(section);
  if (!block)
    throw new Error('the drill shows no `npm run review -- resolve pay-invoice-706` after v1 drains');
  return block[1]!.split('\n').map((line) => {
    const args = line.replace(/^npm run review -- /, '');
    return [...args.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
  });
}

async function waitForStage(handle: WorkflowHandle<typeof moneyTransfer>, stage: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await handle.query(getStatus)).stage !== stage) {
    if (Date.now() > deadline) throw new Error(`${handle.workflowId} did not reach ${stage} within 30 s`);
    await sleep(100);
  }
}

/** Runs the README's `worker deployment describe` until its output matches the sample, or 20 s pass. */
async function waitForDescribe(shell: (command: string) => Promise<string>, name: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const output = normalizeDescribe(await shell(commandBefore('versioning-draining')));
    if (output === normalizeDescribe(sample(name)) || Date.now() > deadline) return output;
    await sleep(250);
  }
}

/** Waits until the workers of a money-transfer version poll its workflow and activity task queues. */
async function waitForTaskQueues(client: Client, buildId: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { workerDeploymentVersionInfo } = await client.workflowService
      .describeWorkerDeploymentVersion({
        namespace: client.options.namespace,
        deploymentVersion: { deploymentName: 'money-transfer', buildId },
      })
      .catch((err: unknown) => {
        // NOT_FOUND (gRPC code 5) until the version's first poll reaches the server.
        if (isGrpcServiceError(err) && Number(err.code) === 5)
          return { workerDeploymentVersionInfo: undefined };
        throw err;
      });
    if ((workerDeploymentVersionInfo?.taskQueueInfos?.length ?? 0) >= 2) return;
    if (Date.now() > deadline)
      throw new Error(`money-transfer.${buildId} polls no workflow and activity queue`);
    await sleep(100);
  }
}

/** The drainage status of a money-transfer version, from the server's API rather than the CLI. */
async function drainage(client: Client, buildId: string) {
  const { workerDeploymentInfo } = await client.workflowService.describeWorkerDeployment({
    namespace: client.options.namespace,
    deploymentName: 'money-transfer',
  });
  return workerDeploymentInfo?.versionSummaries?.find((s) => s.deploymentVersion?.buildId === buildId)
    ?.drainageStatus;
}

describe('a versioned worker', () => {
  const temporal = useTestTemporal();

  test('its executions carry versioning behavior Pinned and the version money-transfer.<build id>', async () => {
    // The id of the bundle this worker runs, derived as `npm run build` derives it (that
    // one bundles lib/'s compiled code, so its id differs from this bundle's).
    const buildId = buildIdOf(readFileSync(testServer().bundlePath, 'utf8'));
    const taskQueue = uniqueId('versioned');
    const { address } = testServer();
    const { path: cli } = await resolveTemporalCli(process.env, () => {});
    const run = async (...args: string[]) =>
      (await promisify(execFile)(cli!, [...args, '--address', address, '--color', 'never'])).stdout;
    const { worker } = await startWorkerProcess({
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      WORKER_BUILD_ID: buildId,
      DEV_WORKFLOW_BUNDLE: testServer().bundlePath,
    });
    try {
      await worker.waitFor(`Worker Deployment money-transfer, build id ${buildId}:`);
      await run(
        'worker',
        'deployment',
        'set-current-version',
        '--deployment-name',
        'money-transfer',
        '--build-id',
        buildId,
        '--yes',
      );
      const handle = await temporal().start(taskQueue, transferDetails());
      await expect(handle.result()).resolves.toMatch(/^Transfer complete/);

      const text = await run('workflow', 'describe', '--workflow-id', handle.workflowId);
      expect(text).toMatch(
        new RegExp(
          `Versioning Info:\\s+Behavior +Pinned\\s+DeploymentName +money-transfer\\s+BuildId +${buildId}\\n`,
        ),
      );
      const json = JSON.parse(
        await run('workflow', 'describe', '--workflow-id', handle.workflowId, '--output', 'json'),
      ) as {
        workflowExecutionInfo: { versioningInfo?: { behavior?: string; version?: string } };
      };
      expect(json.workflowExecutionInfo.versioningInfo).toMatchObject({
        behavior: 'VERSIONING_BEHAVIOR_PINNED',
        version: `money-transfer.${buildId}`,
      });
      expect(new Set((await executionTrace(handle)).builds)).toEqual(new Set([`money-transfer.${buildId}`]));
    } finally {
      await worker.stop();
    }
  }, 60_000);

  test('a pinned transfer that continues as new in review stays on its build while a newer one is current', async () => {
    // Two builds of one deployment on one task queue, in this process, on the fast bundle
    // (a new run after 120 events). The server carries a Pinned run's version over to the
    // run it continues as new into, since the workflow sets no versioning option on it.
    const deploymentName = uniqueId('can-pinned').replace(/[.:]/g, '-');
    const taskQueue = uniqueId('can-pinned');
    const { client, workerConnection } = temporal();
    const bank = new UnreliableBank('bank', { faults: parseFaults('deposit:reject,refund:reject') });
    const worker = (buildId: string) =>
      Worker.create({
        connection: workerConnection,
        taskQueue,
        workflowBundle: { codePath: testServer().fastBundlePath },
        activities: createActivities(bank),
        workerDeploymentOptions: {
          useWorkerVersioning: true,
          version: { deploymentName, buildId },
          defaultVersioningBehavior: 'PINNED',
        },
      });
    const setCurrent = async (buildId: string) => {
      // The deployment exists once a worker of it has polled: ask again until it does.
      for (let tries = 0; ; tries++) {
        try {
          await client.workflowService.setWorkerDeploymentCurrentVersion({
            namespace: client.options.namespace,
            deploymentName,
            buildId,
          });
          return;
        } catch (err) {
          if (tries >= 50) throw err;
          await sleep(200);
        }
      }
    };
    const [a, b] = await Promise.all([worker('a'), worker('b')]);
    await a.runUntil(
      b.runUntil(async () => {
        await setCurrent('a');
        const handle = await client.workflow.start<typeof moneyTransfer>('moneyTransfer', {
          taskQueue,
          workflowId: uniqueId('can-pinned'),
          args: [transferDetails(), { remindEvery: FAST_LIMITS.reviewPolicyMinimums.remindEvery }],
          ...transferStartOptions(),
        });
        while ((await handle.query(getStatus)).stage !== 'needs-review') await sleep(100);
        await setCurrent('b');
        // Two runs later, once the latest has completed a workflow task: every run of the
        // chain was served by a alone, and the latest is still pinned to it.
        const runs: Array<{ runId: string; builds: string[] }> = [];
        for (;;) {
          runs.length = 0;
          for (let runId: string | undefined = handle.firstExecutionRunId; runId;) {
            const run: WorkflowHandle = client.workflow.getHandle(handle.workflowId, runId);
            const { events } = await run.fetchHistory();
            runs.push({ runId, builds: (await executionTrace(run)).builds });
            runId =
              events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
          }
          if (runs.length >= 3 && runs.at(-1)!.builds.length > 0) break;
          await sleep(500);
        }
        const latest = await client.workflow.getHandle(handle.workflowId, runs.at(-1)!.runId).describe();
        const versioning = latest.raw.workflowExecutionInfo?.versioningInfo;
        expect({
          behavior: versioning?.behavior,
          buildId: versioning?.deploymentVersion?.buildId,
        }).toEqual({
          behavior: VersioningBehavior.VERSIONING_BEHAVIOR_PINNED,
          buildId: 'a',
        });
        expect(new Set(runs.flatMap((run) => run.builds))).toEqual(new Set([`${deploymentName}.a`]));
        expect(await handle.query(getStatus)).toMatchObject({ stage: 'needs-review' });
        await handle.terminate('test over');
      }),
    );
  }, 120_000);

  test('a bad WORKER_DEPLOYMENT_NAME stops the worker with a message that says why', async () => {
    const run = await runScript('src/worker.js', [], {
      TEMPORAL_ADDRESS: testServer().address,
      TEMPORAL_TASK_QUEUE: uniqueId('unused'),
      WORKER_BUILD_ID: 'v1',
      WORKER_DEPLOYMENT_NAME: 'money.transfer',
      DEV_WORKFLOW_BUNDLE: testServer().bundlePath,
    });
    expect(run.stderr.trim()).toBe(
      "WORKER_DEPLOYMENT_NAME must be 1 to 255 characters without spaces, '.' or ':'; got 'money.transfer'",
    );
    expect(run.code).toBe(1);
  });
});
