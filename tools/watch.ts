// `npm run worker:watch`: runs a script through the launcher and starts it again each
// time a file under src/ changes. Node's own --watch-path misses, on Node 20, a file
// replaced by unlink and create, which is how `git checkout` reverts the README's drill;
// a watch on each folder sees every way a file is written.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { ROOT } from './common';

const WATCHED = path.join(ROOT, 'src');
// Editors and git write a file in several steps: one restart for all of them.
const SETTLE_MS = 300;

function folders(dir: string): string[] {
  const children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [dir, ...children.flatMap((e) => folders(path.join(dir, e.name)))];
}

function main(): void {
  const [script, ...args] = process.argv.slice(2);
  if (!script) {
    console.error('watch: name the script to run, e.g. `node tools/run.js tools/watch src/worker`.');
    process.exitCode = 2;
    return;
  }
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;

  const start = () => {
    const running = spawn(process.execPath, [path.join(ROOT, 'tools', 'run.js'), script, ...args], {
      stdio: 'inherit',
    });
    child = running;
    exited = new Promise((resolve) =>
      running.once('exit', (code, signal) => {
        if (child === running && !stopping) {
          console.log(`${script} exited (${signal ?? `code ${code}`}); it starts again when src/ changes.`);
        }
        resolve();
      }),
    );
  };
  const stop = async (signal: NodeJS.Signals) => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  const restartNow = async () => {
    const old = child;
    child = undefined; // its exit is expected: say nothing of it
    if (old && old.exitCode === null && old.signalCode === null) {
      old.kill('SIGTERM'); // the worker lets its bank calls finish, then stops
      await exited;
    }
    if (stopping) return;
    console.log(`Restarting ${script}: src/ changed.`);
    start();
  };
  // One restart at a time: a change while the old script is still stopping queues another.
  let restarting = Promise.resolve();
  const restart = () => (restarting = restarting.then(restartNow));

  const watchers: FSWatcher[] = folders(WATCHED).map((dir) =>
    watch(dir, () => {
      clearTimeout(timer);
      timer = setTimeout(() => void restart(), SETTLE_MS);
    }),
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stopping = true;
      clearTimeout(timer);
      for (const w of watchers) w.close();
      // Ctrl-C reaches the child from the terminal too; SIGTERM may come to this process only.
      void stop(signal);
    });
  }
  start();
}

main();
