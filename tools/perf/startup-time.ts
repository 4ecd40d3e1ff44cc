// `npm run startup-time`: how long the tutorial's commands take to start, against a dev
// server of its own. Median of RUNS (default 5) each, the variants run side by side:
// - the worker, from process start to polling: `npm run worker` (development: the
//   launcher's bundle, lib/dev/workflow-bundle.js, rebuilt only when the workflow code
//   changed), `node lib/src/worker.js` in development (workflowsPath: webpack at start)
//   and in production (the bundle `npm run build` made);
// - the starter, one transfer from start to exit: `npm run starter` and
//   `node lib/src/starter.js`, with a worker polling.
import { spawnSync } from 'node:child_process';
import { startDevServer } from '../dev-server';
import { median, ROOT } from '../common';
import { compiled, startWorkerProcess } from '../processes';
import { installLogger } from '../../src/platform/worker-options';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Milliseconds a command takes from spawn to exit; it must exit with 0. */
function timeCommand(command: string, args: string[], env: Record<string, string>): number {
  const started = performance.now();
  const run = spawnSync(command, args, { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
  const elapsed = performance.now() - started;
  if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} failed:\n${run.stdout}${run.stderr}`);
  return elapsed;
}

function summary(label: string, times: number[]): string {
  const list = times.map((t) => Math.round(t)).join(', ');
  return `${label.padEnd(48)} median ${String(Math.round(median(times))).padStart(5)} ms  (${list})`;
}

async function main(): Promise<void> {
  installLogger('WARN');
  const runs = Number(process.env.RUNS ?? 5);
  const server = await startDevServer();
  try {
    const env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_TASK_QUEUE: 'startup-time', LOG_LEVEL: 'WARN' };
    const workers: Array<[string, Record<string, string>, [string, ...string[]] | undefined]> = [
      ['npm run worker (development)', { NODE_ENV: 'development' }, [NPM, 'run', '--silent', 'worker']],
      ['node lib/src/worker.js (development)', { NODE_ENV: 'development' }, undefined],
      ['NODE_ENV=production node lib/src/worker.js', { NODE_ENV: 'production' }, undefined],
    ];
    const workerTimes = workers.map((): number[] => []);
    // Not counted: the first start after an edit compiles and bundles what changed.
    await (await startWorkerProcess({ ...env, ...workers[0]![1] }, workers[0]![2])).worker.stop();
    for (let i = 0; i < runs; i++) {
      for (const [w, [, extra, command]] of workers.entries()) {
        const { worker, readyMs } = await startWorkerProcess({ ...env, ...extra }, command);
        workerTimes[w]!.push(readyMs);
        await worker.stop();
      }
    }
    console.log('Worker, start to polling:');
    for (const [w, [label]] of workers.entries()) console.log(`  ${summary(label, workerTimes[w]!)}`);

    // One worker serves the starters; each run is a new transfer with its own id.
    const { worker } = await startWorkerProcess({ ...env, NODE_ENV: 'production' });
    try {
      const starter = compiled('src/starter.js');
      const npmTimes: number[] = [];
      const nodeTimes: number[] = [];
      for (let i = 0; i < runs; i++) {
        const args = (variant: string) => [
          '--workflow-id',
          `startup-${variant}-${i}`,
          '--reference',
          `${variant}-${i}`,
          '--amount',
          '1',
        ];
        npmTimes.push(timeCommand(NPM, ['run', '--silent', 'starter', '--', ...args('npm')], env));
        nodeTimes.push(timeCommand(process.execPath, [starter, ...args('node')], env));
      }
      console.log('Starter, one transfer from start to exit:');
      console.log(`  ${summary('npm run starter', npmTimes)}`);
      console.log(`  ${summary('node lib/src/starter.js', nodeTimes)}`);
      console.log(
        `  npm run starter / node lib/src/starter.js: ${(median(npmTimes) / median(nodeTimes)).toFixed(2)}`,
      );
    } finally {
      await worker.stop();
    }
  } finally {
    await server.teardown();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
