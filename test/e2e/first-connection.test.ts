// The first command on a fresh machine: `npm run demo` probes for a server, finds none,
// builds the Temporal CLI for minutes, starts a dev server, then connects. A probe that
// left its gRPC channel reconnecting made that last connection wait out a backoff grown
// past the connect timeout, and blame TLS. And a starter that waits long must not leak
// abort listeners (Node's MaxListenersExceededWarning in the middle of its output).
import { setTimeout as sleep } from 'node:timers/promises';
import { connectClient, loadSettings, temporalAnswers } from '../../src/platform/config';
import { watchProgress } from '../../src/platform/progress-watch';
import { moneyTransfer } from '../../src/workflows';
import { startDevServer } from '../../tools/dev-server';
import { freeDevServerPort, TestTemporal, transferDetails, uniqueId } from '../support/helpers';

// gRPC's reconnect backoff starts at 1 s and grows 1.6 times an attempt (±20%): after
// about 30 s with no server, the next attempt is 10 to 20 s away, well past the 5 s
// a client gives a connection.
const NO_SERVER_FOR_MS = Number(process.env.NO_SERVER_FOR_MS ?? 30_000);

test(
  'a probe that finds no server, then a server that comes up after the backoff has grown: the next connection succeeds at once',
  async () => {
    const port = await freeDevServerPort();
    // As the demo: the default address names localhost, and the server listens on 127.0.0.1.
    // (Had the two used one name, the dev server's own start-up connection would have waited
    // out the backoff for the shared channel, and hidden the bug.)
    const settings = loadSettings({ TEMPORAL_ADDRESS: `localhost:${port}` });
    expect(await temporalAnswers(settings)).toBe(false);
    await sleep(NO_SERVER_FOR_MS);

    const server = await startDevServer({ ip: '127.0.0.1', port, ui: false });
    try {
      const started = Date.now();
      const client = await connectClient(settings);
      const tookMs = Date.now() - started;
      try {
        await client.workflowService.getSystemInfo({});
        expect(tookMs).toBeLessThan(2000);
      } finally {
        await client.connection.close();
      }
    } finally {
      await server.teardown();
    }
  },
  NO_SERVER_FOR_MS + 60_000,
);

test('a watch of 40 looks leaves no abort listener behind (Node warns at 11 on one signal)', async () => {
  const temporal = await TestTemporal.connect();
  // Abort listeners registered now, per signal, and the most any signal had at once.
  const listening = new Map<EventTarget, number>();
  let most = 0;
  const add = jest.spyOn(AbortSignal.prototype, 'addEventListener');
  const remove = jest.spyOn(AbortSignal.prototype, 'removeEventListener');
  add.mockImplementation(function (this: AbortSignal, ...args) {
    if (args[0] === 'abort') {
      listening.set(this, (listening.get(this) ?? 0) + 1);
      most = Math.max(most, listening.get(this)!);
    }
    return EventTarget.prototype.addEventListener.apply(this, args);
  });
  remove.mockImplementation(function (this: AbortSignal, ...args) {
    if (args[0] === 'abort') listening.set(this, (listening.get(this) ?? 1) - 1);
    return EventTarget.prototype.removeEventListener.apply(this, args);
  });
  try {
    // No worker polls this queue, so the transfer stays Running and the watch keeps looking.
    const taskQueue = uniqueId('unpolled');
    const handle = await temporal.client.workflow.start(moneyTransfer, {
      taskQueue,
      workflowId: uniqueId('watched'),
      args: [transferDetails()],
    });
    let looks = 0;
    const describe = handle.describe.bind(handle);
    handle.describe = () => {
      looks += 1;
      return describe();
    };
    const stop = watchProgress(
      temporal.client,
      { address: '', namespace: temporal.client.options.namespace, taskQueue },
      handle,
      () => {},
      { everyMs: 25, noWorkerMs: 60_000 },
    );
    while (looks < 40) await sleep(50);
    await stop();
    await handle.terminate('test done');
    expect(looks).toBeGreaterThanOrEqual(40);
    expect(most).toBeGreaterThan(0); // the spy saw the watch's listeners
    expect(most).toBeLessThan(5);
  } finally {
    add.mockRestore();
    remove.mockRestore();
    await temporal.close();
  }
});
