// A server the project did not start: a plain `temporal server start-dev`, with none of
// the project's tuning and no search attribute registered, as the Python tutorial's
// reader runs it. Each case has a namespace of its own on that one server.
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { BankingService } from '../../src/bank/banking-service';
import { ensureNamespaceReady, SearchAttributeMissingError } from '../../src/platform/namespace-check';
import { CommandProcess } from '../../tools/processes';
import { resolveTemporalCli } from '../../tools/temporal-cli';
import { sample } from '../support/readme-samples';
import {
  freeDevServerPort,
  runScript,
  ScriptProcess,
  startWorkerProcess,
  testServer,
  uniqueId,
} from '../support/helpers';

jest.setTimeout(60_000);

const { IndexedValueType, WorkflowTaskFailedCause } = temporal.api.enums.v1;
// The cases' namespaces; `default` is the tutorial's.
const NAMESPACES = ['demo', 'stuck', 'full', 'texttype', 'cluster', 'idle'];

/** A sample as this server prints it: each `from` of the tutorial's setup replaced by `to`. */
function readmeSample(name: string, replace: Array<[string, string]>): string {
  return replace.reduce((text, [from, to]) => text.replaceAll(from, to), sample(name));
}

let server: CommandProcess;
let address: string;
let connection: NativeConnection;

/** `temporal server start-dev` as a reader runs it: in memory, nothing of the project's. */
async function plainDevServer(port: number): Promise<CommandProcess> {
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path) throw new Error('no Temporal CLI found: see docs/dev-server.md#the-temporal-cli');
  return new CommandProcess(
    cli.path,
    [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(port),
      '--headless',
      '--log-level',
      'error',
    ].concat(NAMESPACES.flatMap((namespace) => ['--namespace', namespace])),
    {},
  );
}

beforeAll(async () => {
  const port = await freeDevServerPort();
  address = `127.0.0.1:${port}`;
  server = await plainDevServer(port);
  connection = await connectWhenUp(address, server);
});

afterAll(async () => {
  await connection?.close();
  if (server && server.child.exitCode === null) await server.stop('SIGTERM');
});

async function connectWhenUp(to: string, process: CommandProcess): Promise<NativeConnection> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    let native: NativeConnection | undefined;
    try {
      native = await NativeConnection.connect({ address: to });
      await native.workflowService.describeNamespace({ namespace: NAMESPACES.at(-1)! });
      return native;
    } catch (err) {
      await native?.close();
      if (process.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`the plain dev server did not come up: ${String(err)}\n${process.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function customAttributes(namespace: string) {
  return (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes;
}

const env = (namespace: string, taskQueue = uniqueId('queue')) => ({
  TEMPORAL_ADDRESS: address,
  TEMPORAL_NAMESPACE: namespace,
  TEMPORAL_TASK_QUEUE: taskQueue,
});

test('plain start-dev: the worker registers TransferStatus, says so in one line, and the starter completes a transfer', async () => {
  expect(await customAttributes('default')).toEqual({});
  const childEnv = env('default', 'TRANSFER_MONEY_TASK_QUEUE');
  const { worker } = await startWorkerProcess(childEnv);
  try {
    await worker.waitFor('Bank: ');
    expect(worker.stdout.split('\n').slice(0, 3).join('\n')).toBe(
      readmeSample('worker-registers', [['localhost:7233', address]]),
    );
    expect(await customAttributes('default')).toEqual({
      TransferStatus: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    });
    const workflowId = uniqueId('plain');
    const run = await runScript('src/starter.js', ['--workflow-id', workflowId], childEnv);
    expect(run.code).toBe(0);
    const client = new Client({ connection: await Connection.connect({ address }) });
    try {
      const handle = client.workflow.getHandle(workflowId);
      expect((await handle.describe()).status.name).toBe('COMPLETED');
      const { events } = await handle.fetchHistory();
      expect(events?.filter((event) => event.workflowTaskFailedEventAttributes)).toEqual([]);
    } finally {
      await client.connection.close();
    }
  } finally {
    await worker.stop('SIGTERM');
  }
  // Registered once: a second worker has nothing to say about it.
  const { worker: again } = await startWorkerProcess(childEnv);
  await again.stop('SIGTERM');
  expect(again.stdout).toMatch(/^Worker polling /);
});

test('`npm run demo` on a plain start-dev it finds: registers TransferStatus and completes the transfer', async () => {
  const run = await runScript('tools/demo.js', [], { TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'demo' });
  const lines = run.stdout.trimEnd().split('\n');
  expect(lines.slice(0, 3)).toEqual([
    `Using the Temporal server at ${address}.`,
    `Registered search attribute TransferStatus (Keyword) in namespace demo: ${address} is a local dev server.`,
    'Started transfer pay-invoice-701: 250 from 85-150 to 43-812 (ref 12345)',
  ]);
  expect(run.code).toBe(0);
  const client = new Client({ connection: await Connection.connect({ address }), namespace: 'demo' });
  try {
    expect((await client.workflow.getHandle('pay-invoice-701').describe()).status.name).toBe('COMPLETED');
  } finally {
    await client.connection.close();
  }
});

test('registration refused: with every Keyword slot of SQLite visibility taken, the worker exits 1 with the reason and the command', async () => {
  // The dev server's SQLite visibility has 10 columns for custom Keyword attributes.
  await connection.operatorService.addSearchAttributes({
    namespace: 'full',
    searchAttributes: Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [`Filler${i}`, IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
    ),
  });
  const run = await runScript('src/worker.js', [], env('full'));
  expect(run).toEqual({
    code: 1,
    stdout: '',
    stderr: `${readmeSample('worker-refused', [
      ['localhost:7233', address],
      ['default', 'full'],
    ])}\n`,
  });
  expect(await customAttributes('full')).not.toHaveProperty('TransferStatus');
});

test('TransferStatus registered as Text: the worker exits 1 naming the type, and changes nothing', async () => {
  await connection.operatorService.addSearchAttributes({
    namespace: 'texttype',
    searchAttributes: { TransferStatus: IndexedValueType.INDEXED_VALUE_TYPE_TEXT },
  });
  const run = await runScript('src/worker.js', [], env('texttype'));
  expect(run).toEqual({
    code: 1,
    stdout: '',
    stderr:
      'Search attribute TransferStatus is registered in namespace texttype as Text, but the workflow sets ' +
      'it as Keyword. A type cannot be changed in place: remove it, then create it again:\n' +
      '  temporal operator search-attribute remove --namespace texttype --name TransferStatus\n' +
      '  temporal operator search-attribute create --namespace texttype --name TransferStatus --type Keyword\n',
  });
  expect(await customAttributes('texttype')).toEqual({
    TransferStatus: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  });
});

test('a server that is not a dev server (this one, reporting PostgreSQL): the command, and nothing registered', async () => {
  // Only the server's answer about its store is changed; every other call is real.
  const workflowService = new Proxy(connection.workflowService, {
    get(target, property, receiver): unknown {
      if (property !== 'getClusterInfo') return Reflect.get(target, property, receiver) as unknown;
      return async () => ({ ...(await target.getClusterInfo({})), persistenceStore: 'postgres12' });
    },
  });
  const check = ensureNamespaceReady(
    { workflowService, operatorService: connection.operatorService },
    { address, namespace: 'cluster' },
  );
  const refusal: unknown = await check.catch((err: unknown) => err);
  expect(refusal).toBeInstanceOf(SearchAttributeMissingError);
  expect((refusal as Error).message).toBe(
    readmeSample('worker-missing', [
      ['temporal.example.com:7233', address],
      ['default', 'cluster'],
    ]),
  );
  expect(await customAttributes('cluster')).toEqual({});
});

test('a worker that does not check: the starter says why the transfer is stuck and how to fix it, history shows the failed workflow task, and the fix unsticks it', async () => {
  const taskQueue = uniqueId('stuck');
  const workflowId = uniqueId('stuck');
  // An old worker, or one started some other way: it runs the workflow on a namespace
  // without TransferStatus.
  const worker = await Worker.create({
    connection,
    namespace: 'stuck',
    taskQueue,
    workflowBundle: { codePath: testServer().bundlePath },
    activities: createActivities(new BankingService('bank-api.example.com')),
  });
  const starter = new ScriptProcess('src/starter.js', ['--workflow-id', workflowId], env('stuck', taskQueue));
  const client = new Client({ connection: await Connection.connect({ address }), namespace: 'stuck' });
  const handle = client.workflow.getHandle(workflowId);
  try {
    await worker.runUntil(async () => {
      await starter.waitFor('cannot make progress', 20_000);
      // The line's fix: register it, and the same run goes on.
      await connection.operatorService.addSearchAttributes({
        namespace: 'stuck',
        searchAttributes: { TransferStatus: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD },
      });
      // About 8 s here: the worker backs off between failed workflow tasks.
      expect(await handle.result()).toMatch(/^Transfer complete /);
      expect(await starter.exited).toEqual({ code: 0, signal: null });
    });
    const { events } = await handle.fetchHistory();
    const failed = events?.map((event) => event.workflowTaskFailedEventAttributes).filter((a) => a) ?? [];
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]?.cause).toBe(WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_SEARCH_ATTRIBUTES);
    expect(failed[0]?.failure?.message).toContain('no mapping defined for search attribute TransferStatus');
  } finally {
    starter.child.kill('SIGKILL');
    await starter.exited;
    await client.connection.close();
  }
  const webUi = `127.0.0.1:${Number(address.split(':')[1]) + 1000}`;
  const expected = readmeSample('starter-stuck', [
    ['localhost:8233', webUi],
    ['pay-invoice-701', workflowId],
    ['default', 'stuck'],
  ])
    .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, '[0-9a-f-]{36}')
    .replace('attempt 2', 'attempt \\d+');
  expect(starter.stdout.split('\n').slice(0, 3).join('\n')).toMatch(new RegExp(`^${expected}$`));
  expect(starter.stdout.match(/cannot make progress/g)).toHaveLength(1);
});

test('no worker at all: the starter says so once, after about 10 s, instead of waiting silently', async () => {
  const starter = new ScriptProcess('src/starter.js', ['--workflow-id', uniqueId('idle')], env('idle'));
  const started = Date.now();
  try {
    await starter.waitFor('No worker has polled', 25_000);
  } finally {
    starter.child.kill('SIGKILL');
    await starter.exited;
  }
  expect(Date.now() - started).toBeGreaterThanOrEqual(10_000);
  expect(starter.stdout.split('\n')[2]).toMatch(
    /^No worker has polled task queue queue-\S+ \(namespace idle\) for 10 s, so transfer idle-\S+ waits\. Start one with `npm run worker` and the same TEMPORAL_\* settings; the transfer then continues by itself\.$/,
  );
});

test('an in-memory dev server restarted under a waiting starter: it says the transfer is gone and what that means for the money', async () => {
  const port = await freeDevServerPort();
  const at = `127.0.0.1:${port}`;
  let forgetful = await plainDevServer(port);
  try {
    await (await connectWhenUp(at, forgetful)).close();
    const workflowId = uniqueId('forgotten');
    const reference = uniqueId('ref');
    // No worker: the transfer stays open while the server restarts.
    const starter = new ScriptProcess(
      'src/starter.js',
      ['--workflow-id', workflowId, '--reference', reference],
      {
        TEMPORAL_ADDRESS: at,
        TEMPORAL_TASK_QUEUE: uniqueId('queue'),
      },
    );
    await starter.waitFor('Web UI: ');
    await forgetful.stop('SIGTERM');
    forgetful = await plainDevServer(port);
    await (await connectWhenUp(at, forgetful)).close();
    expect(await starter.exited).toEqual({ code: 1, signal: null });
    expect(starter.stderr).toMatch(
      new RegExp(
        `^ResultUnknownError: The server no longer has transfer ${workflowId} \\(run [\\w-]+\\); a dev server started without ` +
          '--db-filename forgets every workflow when it restarts\\. The bank may already have moved money ' +
          `under reference ${reference}: check it before sending the payment again\\.\\n    caused by WorkflowNotFoundError: `,
      ),
    );
  } finally {
    await forgetful.stop('SIGTERM');
  }
});
