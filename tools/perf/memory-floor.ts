// `npm run memory-floor`: how much memory a worker process holds before it runs a single
// transfer, stage by stage, against a dev server of its own. Each stage is a fresh
// process that goes that far and reads /proc/self/status: Node alone; with the SDK's
// worker package loaded; connected; and the production worker (NODE_ENV=production, the
// bundle `npm run build` made) polling for 5 s, its workflows in the SDK's worker thread
// as shipped, or on the main thread (the SDK's debugMode). Medians of RUNS (default 3).
// Linux only. docs/benchmark.md compares the figures with the Python template's.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
// Nothing else at the top: a probe's first stage measures Node alone.

const STAGES = {
  node: 'Node alone',
  sdk: '+ @temporalio/worker loaded',
  connected: '+ connected to the server',
  worker: '+ the production worker polling, workflow thread',
  'main-thread': '+ the same, workflows on the main thread',
} as const;
type Stage = keyof typeof STAGES;

interface Memory {
  rss: number;
  peak: number;
  anonymous: number;
  files: number;
}

/** This process's memory in MB, from /proc/self/status. */
function memory(): Memory {
  const status = readFileSync('/proc/self/status', 'utf8');
  const mb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024;
  return { rss: mb('VmRSS'), peak: mb('VmHWM'), anonymous: mb('RssAnon'), files: mb('RssFile') };
}

/** Goes as far as `stage`, then prints its memory as JSON. Run in a process of its own. */
async function probe(stage: Stage): Promise<void> {
  if (stage === 'node') return void console.log(JSON.stringify(memory()));
  await import('@temporalio/worker');
  if (stage === 'sdk') return void console.log(JSON.stringify(memory()));
  const { bankFromEnv } = await import('../../src/bank/from-env');
  const { loadSettings } = await import('../../src/platform/config');
  const { connectWorker, installLogger } = await import('../../src/platform/worker-options');
  const { createWorker } = await import('../../src/worker');
  installLogger('WARN');
  const settings = loadSettings();
  const connection = await connectWorker(settings); // as the production worker connects
  try {
    if (stage === 'connected') return void console.log(JSON.stringify(memory()));
    const bank = bankFromEnv();
    const worker = await createWorker(connection, settings, bank);
    await worker.runUntil(sleep(5000));
    console.log(JSON.stringify(memory()));
  } finally {
    await connection.close();
  }
}

async function main(): Promise<void> {
  const { startDevServer } = await import('../dev-server');
  const { median } = await import('../common');
  const runs = Number(process.env.RUNS ?? 3);
  const server = await startDevServer();
  try {
    const env = {
      ...process.env,
      NODE_ENV: 'production',
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: `memory-floor-${Date.now().toString(36)}`,
    };
    const results = new Map<Stage, Memory[]>();
    for (let i = 0; i < runs; i++) {
      for (const stage of Object.keys(STAGES) as Stage[]) {
        // The SDK's debugMode, which TEMPORAL_DEBUG turns on, runs the workflows on the main thread.
        const stageEnv = stage === 'main-thread' ? { ...env, TEMPORAL_DEBUG: '1' } : env;
        const run = spawnSync(process.execPath, [__filename, '--probe', stage], {
          env: stageEnv,
          encoding: 'utf8',
        });
        const last = run.stdout.trim().split('\n').at(-1) ?? '';
        if (run.status !== 0 || !last.startsWith('{'))
          throw new Error(`stage ${stage} failed (exit ${run.status}):\n${run.stdout}${run.stderr}`);
        results.set(stage, [...(results.get(stage) ?? []), JSON.parse(last) as Memory]);
      }
    }
    console.log(`Memory before the first transfer, MB, median of ${runs} (peak is VmHWM):`);
    console.log(`  ${'stage'.padEnd(50)} ${'RSS'.padStart(5)} ${'peak'.padStart(5)} anonymous files`);
    for (const [stage, label] of Object.entries(STAGES) as Array<[Stage, string]>) {
      const all = results.get(stage)!;
      const m = (key: keyof Memory): string => String(Math.round(median(all.map((r) => r[key]))));
      console.log(
        `  ${label.padEnd(50)} ${m('rss').padStart(5)} ${m('peak').padStart(5)} ${m('anonymous').padStart(9)} ${m('files').padStart(5)}`,
      );
    }
  } finally {
    await server.teardown();
  }
}

if (process.argv[2] === '--probe') {
  probe(process.argv[3] as Stage).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
