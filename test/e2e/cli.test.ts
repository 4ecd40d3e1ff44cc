// The starter and the worker as people run them: separate processes, real flags,
// real exit codes, against the shared test server.
import { temporal as proto } from '@temporalio/proto';
import { NativeConnection } from '@temporalio/worker';
import { UsageError } from '../../src/platform/config';
import { DEFAULT_TRANSFER, parseStarterArgs } from '../../src/platform/starter-options';
import { moneyTransfer } from '../../src/workflows';
import {
  freePort,
  runScript,
  ScriptProcess,
  startWorkerProcess,
  testServer,
  TestTemporal,
  testWorker,
  transferDetails,
  uniqueId,
} from '../support/helpers';

let temporal: TestTemporal;
let connection: NativeConnection;
beforeAll(async () => {
  temporal = await TestTemporal.connect();
  connection = await NativeConnection.connect({ address: testServer().address });
});
afterAll(async () => {
  await connection.close();
  await temporal.close();
});

/** Environment for a child process that uses its own task queue on the test server. */
function childEnv(taskQueue: string): Record<string, string> {
  return { TEMPORAL_ADDRESS: testServer().address, TEMPORAL_TASK_QUEUE: taskQueue };
}

const newWorker = (taskQueue: string) => testWorker(connection, taskQueue);

describe('starter flags', () => {
  test("the template's values are the defaults", () => {
    expect(parseStarterArgs([])).toEqual({
      help: false,
      workflowId: 'pay-invoice-701',
      details: { sourceAccount: '85-150', targetAccount: '43-812', amount: 250, referenceId: '12345' },
    });
  });

  test('every flag sets its field', () => {
    const args = ['--from', 'A', '--to', 'B', '--amount', '7', '--reference', 'R', '--workflow-id', 'W'];
    expect(parseStarterArgs(args)).toEqual({
      help: false,
      workflowId: 'W',
      details: { sourceAccount: 'A', targetAccount: 'B', amount: 7, referenceId: 'R' },
    });
  });

  test.each([
    [['--bogus'], "Unknown option '--bogus'"],
    [['--amount', 'ten'], '--amount must be a whole number greater than 0 (got "ten")'],
    [['--amount=-5'], '--amount must be a whole number greater than 0 (got "-5")'],
    [['--amount', '0'], '--amount must be a whole number greater than 0 (got 0)'],
    [['--amount', '2.5'], '--amount must be a whole number greater than 0 (got "2.5")'],
    [
      ['--amount', '9007199254740993'],
      '--amount must be a whole number greater than 0 (got "9007199254740993")',
    ],
    [['--from', '43-812'], '--from and --to are the same (43-812)'],
    [['--from', ''], '--from must be a non-empty string (got "")'],
    [['--to', '  '], '--to must be a non-empty string (got "")'],
    [['--reference', ''], '--reference must be a non-empty string (got "")'],
    [['--workflow-id', ' '], '--workflow-id must not be empty'],
    [['--amount'], "Option '--amount <value>' argument missing"],
    [['extra'], "Unexpected argument 'extra'. This command does not take positional arguments"],
  ])('%j is a usage error: %s', (argv, message) => {
    expect(() => parseStarterArgs(argv)).toThrow(new UsageError(message));
  });

  test.each([
    [['--bogus'], "starter: Unknown option '--bogus'. Try --help.\n"],
    [
      ['--amount', '-3'],
      "starter: Option '--amount' argument is ambiguous (for a value starting with '-', write --amount=VALUE). Try --help.\n",
    ],
    [['--from', '85-150', '--to', '85-150'], 'starter: --from and --to are the same (85-150). Try --help.\n'],
  ])('%j exits 2 with a one-line reason and starts nothing', async (argv, stderr) => {
    const run = await runScript('src/starter.js', argv, childEnv(uniqueId('unused')));
    expect(run).toEqual({ code: 2, stdout: '', stderr });
  });

  test('--help prints the usage and exits 0', async () => {
    const run = await runScript('src/starter.js', ['--help'], {});
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: npm run starter -- \[options\]/);
    for (const flag of ['--from', '--to', '--amount', '--reference', '--workflow-id', '--help']) {
      expect(run.stdout).toContain(flag);
    }
  });
});

describe('starter against a server', () => {
  test('attaches to a run already going under the same id and waits for its result', async () => {
    const taskQueue = uniqueId('queue');
    const workflowId = uniqueId('running');
    // No worker yet, so this run stays Running. It is the payment the starter sends by default.
    await temporal.client.workflow.start(moneyTransfer, { taskQueue, workflowId, args: [DEFAULT_TRANSFER] });
    const starter = new ScriptProcess('src/starter.js', ['--workflow-id', workflowId], childEnv(taskQueue));
    await starter.waitFor("is already running; waiting for that run's result instead.");
    const worker = await newWorker(taskQueue);
    const exit = await worker.runUntil(starter.exited);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(starter.stdout).toMatch(
      /^Workflow running-\S+ is already running; waiting for that run's result instead\.\n/,
    );
    expect(starter.stdout).toMatch(/\nResult: Transfer complete \(transaction IDs: W-\w+, D-\w+\)\n$/);
  });

  test('another payment under an id that is running is refused: nothing started, exit 1', async () => {
    const taskQueue = uniqueId('queue');
    const workflowId = uniqueId('taken');
    const running = transferDetails();
    await temporal.client.workflow.start(moneyTransfer, { taskQueue, workflowId, args: [running] });
    const starter = await runScript(
      'src/starter.js',
      ['--workflow-id', workflowId, '--amount', '7'],
      childEnv(taskQueue),
    );
    expect(starter.code).toBe(1);
    expect(starter.stdout).toBe(
      `Workflow ${workflowId} is already taken by another transfer (250 from 85-150 to 43-812 (ref ${running.referenceId})); ` +
        'nothing was started. Give this transfer its own --workflow-id.\n',
    );
    // Still the one run, of the first payment.
    const runs = [];
    for await (const run of temporal.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
      runs.push(run);
    expect(runs).toHaveLength(1);
    await temporal.client.workflow.getHandle(workflowId).terminate('test over');
  });

  test('a closed id gets a new run, and the starter says so', async () => {
    const taskQueue = uniqueId('queue');
    const workflowId = uniqueId('closed');
    const worker = await newWorker(taskQueue);
    const [first, second] = await worker.runUntil(async () => [
      await runScript('src/starter.js', ['--workflow-id', workflowId], childEnv(taskQueue)),
      await runScript('src/starter.js', ['--workflow-id', workflowId], childEnv(taskQueue)),
    ]);
    expect(first.stdout).not.toContain('ran before');
    expect(second.stdout).toMatch(
      new RegExp(
        `^Workflow ${workflowId} ran before \\(COMPLETED\\); the id reuse policy allows another run, so this is a new one\\.\\n`,
      ),
    );
    expect([first.code, second.code]).toEqual([0, 0]);
  });

  test('Ctrl-C stops only the wait: exit 130, the transfer still running, and how to wait again', async () => {
    const taskQueue = uniqueId('queue');
    const workflowId = uniqueId('interrupted');
    const starter = new ScriptProcess('src/starter.js', ['--workflow-id', workflowId], childEnv(taskQueue));
    await starter.waitFor('Web UI: ');
    starter.child.kill('SIGINT');
    expect(await starter.exited).toEqual({ code: 130, signal: null });
    expect(starter.stdout).toMatch(
      new RegExp(
        `\\nStopped waiting for transfer ${workflowId}\\. Once started, it goes on without the starter; ` +
          'run the starter again with the same flags to wait for its result\\.\\n$',
      ),
    );
    const handle = temporal.client.workflow.getHandle(workflowId);
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await handle.terminate('test over');
  });

  test('exit code 1 and a readable cause chain when the transfer fails', async () => {
    const taskQueue = uniqueId('queue');
    const worker = await newWorker(taskQueue);
    const run = await worker.runUntil(
      runScript(
        'src/starter.js',
        ['--from', '85-151', '--workflow-id', uniqueId('invalid')],
        childEnv(taskQueue),
      ),
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(
      'Got expected exception: WorkflowFailedError: Workflow execution failed\n' +
        '    caused by ActivityFailure [withdraw]: Activity task failed\n' +
        '    caused by ApplicationFailure [InvalidAccountError]: The account number 85-151 is invalid.\n',
    );
  });
});

describe('worker process', () => {
  test('says which server it could not reach and how to start one, then exits 1', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const run = await runScript('src/worker.js', [], { TEMPORAL_ADDRESS: address });
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `Cannot reach a Temporal server at ${address} (ECONNREFUSED). ` +
        'Start a local dev server with `npm run server`, or point TEMPORAL_ADDRESS at yours.\n',
    });
  });

  test('--help prints the usage, and any other argument is refused with exit 2', async () => {
    const help = await runScript('src/worker.js', ['--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npm run worker\n\nRuns the transfer's workflows /);
    expect(help.stdout).toContain('docs/configuration.md');
    expect(await runScript('src/worker.js', ['--task-queue', 'q'], {})).toEqual({
      code: 2,
      stdout: '',
      stderr: "worker: it takes no arguments, got '--task-queue q'. Try --help.\n",
    });
  });

  test('Ctrl-C, even twice, lets a bank call in progress finish, not cancelled, before the worker stops', async () => {
    const taskQueue = uniqueId('queue');
    const { worker } = await startWorkerProcess({ ...childEnv(taskQueue), BANK_DELAY_MS: '2500' });
    const handle = await temporal.client.workflow.start(moneyTransfer, {
      taskQueue,
      workflowId: uniqueId('draining'),
      args: [transferDetails()],
    });
    // The withdrawal is in the bank's hands (its 2.5 s delay) when the worker is told to stop.
    for (let started = false; !started;) {
      const { raw } = await handle.describe();
      started =
        raw.pendingActivities?.some((a) => a.activityType?.name === 'withdraw' && a.lastStartedTime) ?? false;
      if (!started) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    worker.child.kill('SIGINT');
    // An impatient second Ctrl-C does not kill it mid-call either.
    await worker.waitFor('SIGINT received: finishing the tasks in progress, then stopping.\n');
    worker.child.kill('SIGINT');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(worker.stdout).toContain(
      'SIGINT received: still finishing the tasks in progress (SIGKILL stops at once).\n',
    );
    expect(worker.stderr).not.toContain('WORKER_SHUTDOWN');
    const { events } = await handle.fetchHistory();
    const types = (events ?? []).map((e) => e.eventType);
    const { EventType } = proto.api.enums.v1;
    expect({
      withdrawCompleted: types.includes(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED),
      failed: types.includes(EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED),
    }).toEqual({ withdrawCompleted: true, failed: false });
    const again = await startWorkerProcess(childEnv(taskQueue));
    try {
      await expect(handle.result()).resolves.toMatch(/^Transfer complete/);
    } finally {
      await again.worker.stop('SIGINT');
    }
  });

  test('stops gracefully on SIGTERM and exits 0', async () => {
    const { worker } = await startWorkerProcess(childEnv(uniqueId('queue')));
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(worker.stdout).toMatch(
      /SIGTERM received: finishing the tasks in progress, then stopping\.\nWorker stopped\.\n$/,
    );
    expect(worker.stderr).toBe('');
  });

  test.each(['{maxCachedWorkflows: 5}', 'null', '5', '[]', '"x"'])(
    'rejects WORKER_TUNING=%s, which is not a JSON object',
    async (tuning) => {
      expect(await runScript('src/worker.js', [], { WORKER_TUNING: tuning })).toEqual({
        code: 1,
        stdout: '',
        stderr: `WORKER_TUNING must be a JSON object such as '{"maxCachedWorkflows": 50}', got '${tuning}'\n`,
      });
    },
  );

  test('rejects WORKER_TUNING that names an unknown option', async () => {
    const unknown = await runScript('src/worker.js', [], { WORKER_TUNING: '{"maxPollers": 5}' });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      /^WORKER_TUNING: maxPollers is not one of maxConcurrentWorkflowTaskExecutions, /,
    );
  });

  test('rejects a bad BANK_DELAY_MS before connecting', async () => {
    const run = await runScript('src/worker.js', [], { BANK_DELAY_MS: 'soon' });
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr: expect.stringMatching(/^BANK_DELAY_MS must be a whole number of milliseconds.*, got 'soon'\n$/),
    });
  });
});
