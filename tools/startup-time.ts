// `npm run startup-time`: how long the worker takes from process start to polling,
// with the prebuilt bundle (NODE_ENV=production) and without it (webpack at start).
// Median of RUNS (default 5) each, against a dev server of its own.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startDevServer } from './dev-server';
import { installLogger } from '../src/worker';

const WORKER = path.join(__dirname, '..', 'src', 'worker.js');

/** Milliseconds from spawning lib/src/worker.js until it says it is polling. */
export function timeToPolling(env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [WORKER], { env: { ...process.env, LOG_LEVEL: 'WARN', ...env } });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('Worker polling')) {
        const elapsed = performance.now() - started;
        child.kill('SIGINT');
        child.once('exit', () => resolve(elapsed));
      }
    });
    child.once('exit', (code) => {
      if (!out.includes('Worker polling'))
        reject(new Error(`worker exited (${code}) before polling:\n${out}`));
    });
  });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  installLogger('WARN');
  const runs = Number(process.env.RUNS ?? 5);
  const server = await startDevServer();
  try {
    const env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_TASK_QUEUE: 'startup-time' };
    for (const [label, mode] of [
      ['prebuilt bundle (NODE_ENV=production)', 'production'],
      ['bundled at start (development)', 'development'],
    ] as const) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) times.push(await timeToPolling({ ...env, NODE_ENV: mode }));
      const list = times.map((t) => Math.round(t)).join(', ');
      console.log(`${label}: median ${Math.round(median(times))} ms over ${runs} runs (${list})`);
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
