// The build id `npm run build` writes beside the workflow bundle: derived from the
// workflow code, so the same code keeps its Worker Deployment Version and changed code
// gets a new one. Bundles go to a temp dir; lib/ is left alone.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildIdPath, writeWorkflowBundles } from '../../tools/bundle';
import { StartupError } from '../../src/platform/config';
import { deploymentFromEnv } from '../../src/platform/worker-options';
import { v2TypeErrors, v2Workflows, V2_WORKFLOW_CALL, writeFlowCopy } from '../support/versioning-drill';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'money-transfer-build-id-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const readBuildId = (bundlePath: string) => readFileSync(buildIdPath(bundlePath), 'utf8').trim();

test('two builds of the same workflow code get the same build id; v2 of the workflow gets another', async () => {
  const first = path.join(dir, 'first', 'workflow-bundle.js');
  const second = path.join(dir, 'second', 'workflow-bundle.js');
  mkdirSync(path.dirname(first));
  mkdirSync(path.dirname(second));
  // v2 next to the test, so that its imports of src/ resolve as they do from src/.
  const v2Dir = path.join(__dirname, '..', '.drill', `build-id-${process.pid}`);
  const v2Source = writeFlowCopy(v2Workflows(), v2Dir, 'transfer');
  const v2Bundle = path.join(v2Dir, 'workflow-bundle.js');
  try {
    const ids = await Promise.all([
      writeWorkflowBundles(first, { tracing: false }),
      writeWorkflowBundles(second, { tracing: false }),
      writeWorkflowBundles(v2Bundle, { workflowsPath: v2Source, tracing: false }),
    ]);
    expect(readFileSync(v2Bundle, 'utf8')).toContain(V2_WORKFLOW_CALL.replace(';', '')); // the edit took
    expect(ids[0]).toMatch(/^[0-9a-f]{12}$/);
    expect([readBuildId(first), readBuildId(second), readBuildId(v2Bundle)]).toEqual(ids);
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).not.toBe(ids[0]);
  } finally {
    rmSync(v2Dir, { recursive: true, force: true });
  }
}, 60_000);

test("the v2 code the README's deploy drill shows compiles", () => {
  expect(v2TypeErrors()).toBe('');
}, 60_000);

describe('deploymentFromEnv', () => {
  test('no build id: an unversioned worker', () => {
    expect(deploymentFromEnv({})).toBeUndefined();
    expect(deploymentFromEnv({ WORKER_BUILD_ID: '' })).toBeUndefined();
  });

  test('a build id joins the deployment money-transfer, or WORKER_DEPLOYMENT_NAME', () => {
    expect(deploymentFromEnv({ WORKER_BUILD_ID: '8efe48079861' })).toEqual({
      deploymentName: 'money-transfer',
      buildId: '8efe48079861',
    });
    expect(deploymentFromEnv({ WORKER_BUILD_ID: 'v2', WORKER_DEPLOYMENT_NAME: 'payments' })).toEqual({
      deploymentName: 'payments',
      buildId: 'v2',
    });
  });

  test.each([
    [
      'a deployment name alone',
      { WORKER_DEPLOYMENT_NAME: 'payments' },
      "WORKER_DEPLOYMENT_NAME is set to 'payments', but WORKER_BUILD_ID is not",
    ],
    [
      'a build id with a space',
      { WORKER_BUILD_ID: 'v 2' },
      'WORKER_BUILD_ID must be 1 to 255 characters without spaces',
    ],
    [
      'a build id of 256 characters',
      { WORKER_BUILD_ID: 'x'.repeat(256) },
      'WORKER_BUILD_ID must be 1 to 255 characters',
    ],
    ["the server's name for unversioned", { WORKER_BUILD_ID: '__unversioned__' }, 'WORKER_BUILD_ID must be'],
    [
      "a deployment name with '.'",
      { WORKER_BUILD_ID: 'v2', WORKER_DEPLOYMENT_NAME: 'money.transfer' },
      "without spaces, '.' or ':'",
    ],
    [
      "a deployment name with ':'",
      { WORKER_BUILD_ID: 'v2', WORKER_DEPLOYMENT_NAME: 'a:b' },
      "without spaces, '.' or ':'",
    ],
  ])('%s is refused with a StartupError', (_label, env, message) => {
    const thrown = (() => {
      try {
        deploymentFromEnv(env);
      } catch (err) {
        return err;
      }
      throw new Error(`deploymentFromEnv(${JSON.stringify(env)}) accepted it`);
    })();
    expect(thrown).toBeInstanceOf(StartupError);
    expect((thrown as Error).message).toContain(message);
  });
});
