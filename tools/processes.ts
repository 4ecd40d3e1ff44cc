// Runs the compiled scripts as their own processes, as people run them: the tests, the
// benchmark and startup-time all start workers this way.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './common';

/** lib/<script>, e.g. lib/src/worker.js. */
export function compiled(script: string): string {
  const file = path.join(ROOT, 'lib', script);
  if (!existsSync(file))
    throw new Error(`${file} is missing: run \`npm run build\` (npm test builds it too)`);
  return file;
}

/** A running command, with its output collected as it comes. LOG_LEVEL is WARN unless env says otherwise. */
export class CommandProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly started = performance.now();
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(command: string, args: string[], env: Record<string, string | undefined>) {
    this.child = spawn(command, args, {
      cwd: ROOT,
      env: withoutUndefined({ ...process.env, LOG_LEVEL: 'WARN', ...env }),
      // npm passes a signal on to its whole process group, which would stop a dev
      // server this process started too: give anything but node a group of its own.
      detached: command !== process.execPath,
    });
    this.child.stdout.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** Resolves once stdout contains `text`; fails if the process exits first. */
  async waitFor(text: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes(text)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`process exited before printing '${text}':\n${this.stdout}\n${this.stderr}`);
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for '${text}':\n${this.stdout}\n${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** Sends `signal` and waits for the exit. */
  async stop(
    signal: NodeJS.Signals = 'SIGINT',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    // To its whole group, as Ctrl-C in a terminal does, so npm's script gets it too.
    if (this.child.spawnargs[0] === process.execPath) this.child.kill(signal);
    else process.kill(-this.child.pid!, signal);
    return this.exited;
  }
}

/** A compiled script of lib/ (src/starter.js, ...) run with this Node. */
export class ScriptProcess extends CommandProcess {
  /** `netns`: a network namespace under /run/netns to run in (a test host). */
  constructor(script: string, args: string[], env: Record<string, string | undefined>, netns?: string) {
    if (netns)
      super('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, compiled(script), ...args], env);
    else super(process.execPath, [compiled(script), ...args], env);
  }
}

/**
 * Starts the worker and resolves once it polls, with the milliseconds from spawn to its
 * `Worker polling` line. By default it runs lib/src/worker.js; `command` runs it another
 * way, such as `npm run worker`. The caller stops it.
 */
export async function startWorkerProcess(
  env: Record<string, string | undefined>,
  command?: [string, ...string[]],
): Promise<{ worker: CommandProcess; readyMs: number }> {
  const worker = command
    ? new CommandProcess(command[0], command.slice(1), env)
    : new ScriptProcess('src/worker.js', [], env);
  try {
    await worker.waitFor('Worker polling');
  } catch (err) {
    worker.child.kill('SIGKILL');
    await worker.exited;
    throw err;
  }
  return { worker, readyMs: performance.now() - worker.started };
}

function withoutUndefined(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}
