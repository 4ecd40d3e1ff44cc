// The README's "Over HTTP": `npm run oidc` and `npm run api` as processes, the README's
// own curl commands run by bash against them (ports, the cache folder and the key made
// unique), their output matched with the samples, and the API stopped with SIGTERM.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createActivities } from '../../src/activities';
import { BankingService } from '../../src/bank/banking-service';
import {
  freePort,
  ScriptProcess,
  testServer,
  testWorker,
  uniqueId,
  useTestTemporal,
} from '../support/helpers';
import { commands, sample, samplePattern } from '../support/readme-samples';

jest.setTimeout(90_000);

const temporal = useTestTemporal();

test("the README's curl commands print its samples against npm run oidc and npm run api; SIGTERM stops the API cleanly", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-oidc-'));
  const [oidcPort, apiPort] = [await freePort(), await freePort()];
  const taskQueue = uniqueId('over-http');
  const oidc = new ScriptProcess('tools/oidc.js', [], { OIDC_PORT: String(oidcPort), OIDC_DIR: dir });
  let api: ScriptProcess | undefined;
  try {
    await oidc.waitFor("The desk's people");
    const issuer = `http://127.0.0.1:${oidcPort}`;
    expect(oidc.stdout.trimEnd()).toMatch(
      samplePattern(sample('oidc-start').replaceAll('http://127.0.0.1:9000', issuer), [
        ['/root/\\.cache/money-transfer/oidc', dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')],
      ]),
    );
    const auth = /For npm run api: (.*)$/m.exec(oidc.stdout)![1]!;
    const env = Object.fromEntries(auth.split(' ').map((pair) => pair.split('=') as [string, string]));
    api = new ScriptProcess('src/api.js', [], {
      ...env,
      API_PORT: String(apiPort),
      TEMPORAL_ADDRESS: testServer().address,
      TEMPORAL_TASK_QUEUE: taskQueue,
    });
    await api.waitFor('API listening on ');
    const key = uniqueId('invoice');
    const script = commands('over-http')
      .replaceAll('127.0.0.1:9000', `127.0.0.1:${oidcPort}`)
      .replaceAll('127.0.0.1:8080', `127.0.0.1:${apiPort}`)
      .replaceAll('~/.cache/money-transfer/oidc', dir)
      .replaceAll('invoice-801', key);
    const worker = await testWorker(
      temporal().workerConnection,
      taskQueue,
      createActivities(new BankingService('bank')),
    );
    const { stdout } = await worker.runUntil(
      promisify(execFile)('bash', ['-c', script], { timeout: 30_000 }),
    );
    console.log(`The README's curl commands:\n${stdout}`);
    expect(stdout.trimEnd()).toMatch(
      samplePattern(sample('over-http').replaceAll('invoice-801', key), [
        ['pay-oQwBlGLh0Rw4RxSP_80jch', 'pay-[\\w-]{22}'],
      ]),
    );
    api.child.kill('SIGTERM');
    expect(await api.exited).toEqual({ code: 0, signal: null });
    expect(api.stdout).toContain(
      'SIGTERM received: finishing the requests in flight, then stopping.\nAPI stopped.\n',
    );
    const secret = (await promisify(execFile)('cat', [path.join(dir, 'client-secret')])).stdout.trim();
    expect(secret.length).toBeGreaterThan(20);
    expect(oidc.stdout + oidc.stderr + api.stdout + api.stderr + stdout).not.toContain(secret);
  } finally {
    api?.child.kill('SIGKILL');
    oidc.child.kill('SIGKILL');
    await Promise.all([api?.exited, oidc.exited]);
    rmSync(dir, { recursive: true, force: true });
  }
});
