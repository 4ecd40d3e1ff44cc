// Long-running children of cluster.ts and postgres.ts: each in its own
// process group, its output appended to a log file, stopped by signal.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Heads each start's part of a log file, so an error quotes only the latest run. */
const START_MARK = '=== started';
const STOP_TIMEOUT_MS = 30_000;
const READY_TIMEOUT_MS = 90_000;

/** A long-running child in its own process group, with its output appended to a log file. */
export class ManagedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running = true;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    readonly options: {
      cwd: string;
      logFile: string;
      pidFile?: string;
      uid?: number;
      gid?: number;
      /** A network namespace under /run/netns to run in (a test host); nsenter execs, so the pid stays the command's. */
      netns?: string;
    },
  ) {
    const { netns, uid, gid } = options;
    const [file, argv] = netns
      ? [
          'nsenter',
          [
            `--net=/run/netns/${netns}`,
            ...(uid === undefined ? [] : [`--setuid=${uid}`, `--setgid=${gid}`]),
            '--',
            command,
            ...args,
          ],
        ]
      : [command, args];
    const out = openSync(options.logFile, 'a');
    writeSync(out, `${START_MARK} ${new Date().toISOString()}: ${path.basename(command)}\n`);
    try {
      this.child = spawn(file, argv, {
        cwd: options.cwd,
        stdio: ['ignore', out, out],
        // Its own group: Ctrl-C on `npm run cluster` reaches only node, which stops the
        // services first and PostgreSQL last, instead of everything at once.
        detached: true,
        uid: netns ? undefined : uid,
        gid: netns ? undefined : gid,
      });
    } finally {
      closeSync(out);
    }
    // A failed spawn (ENOENT, EACCES) also emits 'error'; the missing pid reports it.
    this.child.once('error', () => {});
    if (this.child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
    this.pid = this.child.pid;
    if (options.pidFile) writeFileSync(options.pidFile, String(this.pid));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.running = false;
        if (options.pidFile) rmSync(options.pidFile, { force: true });
        resolve({ code, signal });
      }),
    );
  }

  /** Sends `signal` to the process group, then SIGKILL if it has not exited after `graceMs`. */
  async stop(signal: NodeJS.Signals, graceMs = STOP_TIMEOUT_MS): Promise<void> {
    if (!this.running) return;
    signalGroup(this.pid, signal);
    const timer =
      signal === 'SIGKILL' ? undefined : setTimeout(() => signalGroup(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    signalGroup(this.pid, 'SIGKILL'); // anything it left behind in its group
  }

  /** An error that names the log file, with its last lines. */
  exitError(exit: { code: number | null; signal: NodeJS.Signals | null }, before: string): Error {
    const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
    return new Error(
      `${this.name} exited (${how}) before ${before}. Its log: ${this.options.logFile}\n${tail(this.options.logFile, 15)}`,
    );
  }
}

export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Polls `check` until true; fails early if `child` exits, and after READY_TIMEOUT_MS. */
export async function waitUntil(
  check: () => Promise<boolean>,
  child: ManagedProcess | undefined,
  what: string,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError: unknown;
  for (;;) {
    if (child && !child.running) throw child.exitError(await child.exited, what);
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const reason = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const where = child ? ` See ${child.options.logFile}` : '';
      throw new Error(`Timed out after ${READY_TIMEOUT_MS / 1000} s waiting until ${what}${reason}.${where}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function tail(file: string, lines: number): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text
      .slice(Math.max(0, text.lastIndexOf(START_MARK)))
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((line) => (line.length > 400 ? `${line.slice(0, 400)}…` : line)) // stack traces run long
      .join('\n');
  } catch {
    return '(no log)';
  }
}
