// Connection settings come from Temporal's standard configuration (@temporalio/envconfig),
// reach every process, and never leak an API key.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadSettings } from '../../src/platform/config';
import {
  freePort,
  runScript,
  startWorkerProcess,
  TEST_NAMESPACE,
  testServer,
  uniqueId,
} from '../support/helpers';

const dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-config-'));
const TOML = path.join(dir, 'temporal.toml');
writeFileSync(
  TOML,
  `[profile.default]
address = "profile-host:7233"
namespace = "profile-ns"

[profile.staging]
address = "staging.example.com:7233"
namespace = "staging"
`,
);
// No file: so that a developer's own ~/.config/temporalio/temporal.toml cannot change the results.
const NO_FILE = { TEMPORAL_CONFIG_FILE: TOML, TEMPORAL_PROFILE: 'staging' };
const API_KEY = 'sk-test-NEVER-PRINT-THIS-9f3c2a';

describe('loadSettings', () => {
  test("the defaults are the template's values: localhost:7233, default, TRANSFER_MONEY_TASK_QUEUE", () => {
    // A config directory with no temporal.toml in it, as on a fresh machine.
    const home = mkdtempSync(path.join(tmpdir(), 'money-transfer-home-'));
    expect(loadSettings({ HOME: home, XDG_CONFIG_HOME: home })).toMatchObject({
      address: 'localhost:7233',
      namespace: 'default',
      taskQueue: 'TRANSFER_MONEY_TASK_QUEUE',
      webUiUrl: 'http://localhost:8233',
    });
  });

  test('reads the default profile of the TOML file', () => {
    expect(loadSettings({ TEMPORAL_CONFIG_FILE: TOML })).toMatchObject({
      address: 'profile-host:7233',
      namespace: 'profile-ns',
    });
  });

  test('TEMPORAL_PROFILE picks another profile', () => {
    expect(loadSettings(NO_FILE)).toMatchObject({
      address: 'staging.example.com:7233',
      namespace: 'staging',
    });
  });

  test('environment variables override the profile', () => {
    const settings = loadSettings({
      TEMPORAL_CONFIG_FILE: TOML,
      TEMPORAL_ADDRESS: 'env-host:1234',
      TEMPORAL_NAMESPACE: 'env-ns',
      TEMPORAL_TASK_QUEUE: 'env-queue',
    });
    expect(settings).toMatchObject({
      address: 'env-host:1234',
      namespace: 'env-ns',
      taskQueue: 'env-queue',
      webUiUrl: 'http://env-host:2234',
    });
    expect(settings.connection.address).toBe('env-host:1234');
  });

  test('an API key turns TLS on; without one TLS stays off unless asked for', () => {
    expect(loadSettings({ ...NO_FILE, TEMPORAL_API_KEY: API_KEY }).connection).toMatchObject({
      apiKey: API_KEY,
      tls: true,
    });
    expect(loadSettings(NO_FILE).connection.tls).toBeUndefined();
    expect(loadSettings({ ...NO_FILE, TEMPORAL_TLS: 'true' }).connection.tls).toBeTruthy();
  });

  test('the Web UI link base follows the address, Temporal Cloud, or TEMPORAL_UI_URL', () => {
    expect(loadSettings({ ...NO_FILE, TEMPORAL_ADDRESS: 'ns.abc12.tmprl.cloud:7233' }).webUiUrl).toBe(
      'https://cloud.temporal.io',
    );
    expect(
      loadSettings({ ...NO_FILE, TEMPORAL_ADDRESS: 'us-east-1.aws.api.temporal.io:7233' }).webUiUrl,
    ).toBe('https://cloud.temporal.io');
    expect(loadSettings({ ...NO_FILE, TEMPORAL_UI_URL: 'https://temporal.example.com/' }).webUiUrl).toBe(
      'https://temporal.example.com',
    );
  });

  test('a TEMPORAL_CONFIG_FILE that does not exist is an error, not silently skipped', () => {
    expect(() => loadSettings({ TEMPORAL_CONFIG_FILE: path.join(dir, 'missing.toml') })).toThrow(
      `TEMPORAL_CONFIG_FILE is set to ${path.join(dir, 'missing.toml')}, but there is no such file.`,
    );
  });

  test('an unknown TEMPORAL_PROFILE is an error that names the file', () => {
    expect(() => loadSettings({ TEMPORAL_CONFIG_FILE: TOML, TEMPORAL_PROFILE: 'nope' })).toThrow(
      `Cannot load the Temporal client configuration (${TOML}): Profile 'nope' not found in config data`,
    );
  });

  test('an empty config file is an error that names the file, not a crash inside envconfig', () => {
    const empty = path.join(dir, 'empty.toml');
    writeFileSync(empty, '');
    expect(() => loadSettings({ TEMPORAL_CONFIG_FILE: empty })).toThrow(
      `Cannot load the Temporal client configuration (${empty}): `,
    );
  });
});

describe('processes', () => {
  test('TEMPORAL_NAMESPACE reaches both the worker and the starter', async () => {
    const taskQueue = uniqueId('ns');
    const workflowId = uniqueId('ns');
    const env = {
      TEMPORAL_ADDRESS: testServer().address,
      TEMPORAL_NAMESPACE: TEST_NAMESPACE,
      TEMPORAL_TASK_QUEUE: taskQueue,
    };
    const { worker } = await startWorkerProcess(env);
    try {
      await worker.waitFor('Press Ctrl-C to stop.');
      const run = await runScript('src/starter.js', ['--workflow-id', workflowId], env);
      expect(run.code).toBe(0);
    } finally {
      worker.child.kill('SIGINT');
      await worker.exited;
    }
    // The starter put the execution in that namespace, and not in default, and the
    // worker, polling there, ran it to the end.
    const connection = await Connection.connect({ address: testServer().address });
    try {
      const inNamespace = new Client({ connection, namespace: TEST_NAMESPACE }).workflow.getHandle(
        workflowId,
      );
      const { status, taskQueue: ranOn } = await inNamespace.describe();
      expect({ status: status.name, ranOn }).toEqual({ status: 'COMPLETED', ranOn: taskQueue });
      const inDefault = new Client({ connection }).workflow.getHandle(workflowId);
      await expect(inDefault.describe()).rejects.toThrow(/not found/i);
    } finally {
      await connection.close();
    }
  });

  test("pointed at a web server, such as the Web UI's port, the worker and the starter say so", async () => {
    const web = createServer((_, response) => response.end('<html>Temporal Web UI</html>'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
    const address = `127.0.0.1:${(web.address() as AddressInfo).port}`;
    try {
      for (const script of ['src/worker.js', 'src/starter.js']) {
        expect(await runScript(script, [], { TEMPORAL_ADDRESS: address })).toEqual({
          code: 1,
          stdout: '',
          stderr:
            `A web server answers at ${address} (HTTP/1.1), not a Temporal frontend, which speaks gRPC: ` +
            "is it the Web UI's port? A dev server takes connections on 7233 and shows its Web UI on 8233; " +
            'point TEMPORAL_ADDRESS at the first.\n',
        });
      }
    } finally {
      await new Promise((resolve) => web.close(resolve));
    }
  });

  test('a missing server and TLS against a plaintext server get different messages, neither with the API key', async () => {
    const refused = `127.0.0.1:${await freePort()}`;
    const plaintext = testServer().address; // it speaks no TLS, so the handshake fails
    const outputs: string[] = [];
    for (const [address, expected] of [
      [refused, `Cannot reach a Temporal server at ${refused} (ECONNREFUSED). Start a local dev server`],
      [plaintext, `The server at ${plaintext} speaks plaintext gRPC, and TLS is on here: `],
    ] as const) {
      const env = { TEMPORAL_ADDRESS: address, TEMPORAL_API_KEY: API_KEY, LOG_LEVEL: 'TRACE' };
      for (const script of ['src/worker.js', 'src/starter.js']) {
        const run = await runScript(script, [], env);
        expect(run.code).toBe(1);
        expect(run.stderr).toContain(expected);
        outputs.push(run.stdout + run.stderr);
      }
    }
    for (const output of outputs) expect(output).not.toContain(API_KEY);
  });
});

test('NativeConnection and Connection accept the settings as they are', async () => {
  const settings = loadSettings({ ...NO_FILE, TEMPORAL_ADDRESS: testServer().address });
  const native = await NativeConnection.connect(settings.connection);
  const connection = await Connection.connect(settings.connection);
  await native.close();
  await connection.close();
});
