// Finds the Temporal CLI, which runs the local dev server. Used by the tests,
// `npm run server` and `npm run demo`. Run this file to resolve (and fetch) it.
// TEMPORAL_CLI_VERSION is the one place its version is pinned.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { DevServerConfig } from '@temporalio/testing';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
const EXE = process.platform === 'win32' ? 'temporal.exe' : 'temporal';

export type CliExecutable = NonNullable<DevServerConfig['executable']>;

export interface ResolvedCli {
  /** How it was found; `sdk-download` leaves it to the SDK, when the server starts. */
  source: 'env' | 'path' | 'cache' | 'download' | 'go' | 'sdk-download';
  executable: CliExecutable;
  /** Set for every source but `sdk-download`. */
  path?: string;
}

/** `name` in the project's per-user cache, outside the repo: tools built from source live there. */
export function userCacheDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME ||
    (process.platform === 'win32'
      ? env.LOCALAPPDATA || path.join(homedir(), 'AppData', 'Local')
      : process.platform === 'darwin'
        ? path.join(homedir(), 'Library', 'Caches')
        : path.join(homedir(), '.cache'));
  return path.join(base, 'money-transfer', name);
}

/** The per-user cache that holds a CLI built from source, outside the repo. */
export function cliCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return userCacheDir(`temporal-cli-${TEMPORAL_CLI_VERSION}`, env);
}

/**
 * Looks for the CLI in this order: TEMPORAL_CLI_PATH, `temporal` on PATH, the cache,
 * a download of the pinned release into the cache, a `go install` into the cache, and
 * last the SDK's own download (which picks its own version) when the server starts.
 * The download comes before Go: with internet it takes seconds, the build minutes.
 */
export async function resolveTemporalCli(
  env: NodeJS.ProcessEnv = process.env,
  report: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<ResolvedCli> {
  const existing = (source: ResolvedCli['source'], file: string): ResolvedCli => ({
    source,
    path: file,
    executable: { type: 'existing-path', path: file },
  });

  if (env.TEMPORAL_CLI_PATH) {
    if (!isExecutable(env.TEMPORAL_CLI_PATH)) {
      throw new Error(`TEMPORAL_CLI_PATH is set to ${env.TEMPORAL_CLI_PATH}, but no executable is there.`);
    }
    return existing('env', env.TEMPORAL_CLI_PATH);
  }

  const onPath = findOnPath(EXE, env.PATH);
  if (onPath) return existing('path', onPath);

  const cacheDir = cliCacheDir(env);
  const cached = path.join(cacheDir, EXE);
  if (isExecutable(cached)) return existing('cache', cached);

  const downloaded = await download(cacheDir, report);
  if (downloaded && isExecutable(cached)) return existing('download', cached);

  if (findOnPath(process.platform === 'win32' ? 'go.exe' : 'go', env.PATH)) {
    const built = await goInstall(
      {
        what: `the Temporal CLI ${TEMPORAL_CLI_VERSION}`,
        packages: [`${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`],
        gobin: cacheDir,
        produces: [EXE],
      },
      env,
      report,
    );
    if (built) return existing('go', cached);
    report('The Go build of the Temporal CLI failed; the SDK will try its own download.');
  }

  return {
    source: 'sdk-download',
    executable: { type: 'cached-download', downloadDir: path.dirname(cacheDir) },
  };
}

/** The release archive of the pinned version for this machine, from Temporal's download service. */
function downloadUrl(): string | undefined {
  const platform = { linux: 'linux', darwin: 'darwin' }[process.platform as string];
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch as string];
  if (!platform || !arch) return undefined; // elsewhere (Windows: a zip) the SDK's download does it
  return `https://temporal.download/cli/archive/${TEMPORAL_CLI_VERSION}?platform=${platform}&arch=${arch}`;
}

/** Downloads and unpacks the pinned CLI into `cacheDir`; false if that is not possible here. */
async function download(cacheDir: string, report: (line: string) => void): Promise<boolean> {
  const url = downloadUrl();
  if (!url) return false;
  report(`Downloading the Temporal CLI ${TEMPORAL_CLI_VERSION} into ${cacheDir}...`);
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const archive = Buffer.from(await response.arrayBuffer());
    mkdirSync(cacheDir, { recursive: true });
    const tar = spawnSync('tar', ['-xzf', '-', '-C', cacheDir, EXE], { input: archive });
    if (tar.status !== 0) throw new Error(`tar: ${tar.stderr.toString().trim()}`);
    report(`Downloaded the Temporal CLI: ${path.join(cacheDir, EXE)}`);
    return true;
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
    report(`The download failed (${err instanceof Error ? err.message : String(err)}${cause}).`);
    return false;
  }
}

/** What `goInstall` builds: Go packages at pinned versions, into `gobin`. */
export interface GoInstallTarget {
  /** For the progress lines, e.g. "the Temporal CLI v1.5.1". */
  what: string;
  /** `module/path@version` arguments to `go install`. */
  packages: string[];
  gobin: string;
  /** Executables `gobin` must hold afterwards for the build to count. */
  produces: string[];
}

/**
 * Runs `go install` of the target. Go prints every package it builds (over a
 * thousand); this shows them as one line that counts up instead.
 */
export async function goInstall(
  target: GoInstallTarget,
  env: NodeJS.ProcessEnv,
  report: (line: string) => void,
): Promise<boolean> {
  const { gobin } = target;
  report(`Building ${target.what} with Go into ${gobin}. This happens once and takes a few minutes.`);
  mkdirSync(gobin, { recursive: true });
  const started = Date.now();
  const go = spawn('go', ['install', '-v', ...target.packages], {
    env: { ...env, GOBIN: gobin },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const tty = process.stderr.isTTY;
  let packages = 0;
  let lastReport = 0;
  const other: string[] = []; // anything that is not a package name: errors, download notes
  let partial = '';
  go.stderr.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (/^[\w.-]+(\/[\w.@+-]+)*$/.test(line)) packages++;
      else if (line.trim()) other.push(line);
    }
    const elapsed = Math.round((Date.now() - started) / 1000);
    const progress = `  go install: ${packages} packages built, ${elapsed} s`;
    if (tty) process.stderr.write(`\r${progress}`);
    else if (elapsed - lastReport >= 15) {
      lastReport = elapsed;
      report(progress);
    }
  });
  const code = await new Promise<number | null>((resolve) => go.once('close', resolve));
  if (tty) process.stderr.write('\n');
  if (code === 0 && target.produces.every((exe) => isExecutable(path.join(gobin, exe)))) {
    report(
      `Built ${target.what} (${packages} packages) in ${Math.round((Date.now() - started) / 1000)} s: ` +
        target.produces.map((exe) => path.join(gobin, exe)).join(', '),
    );
    return true;
  }
  for (const line of other.slice(-20)) report(`  ${line}`);
  return false;
}

/** The message for when even the SDK download fails. */
export function cliMissingHelp(): string {
  return (
    'Could not get the Temporal CLI. Do one of these and try again:\n' +
    '  - install it (https://docs.temporal.io/cli) so `temporal` is on your PATH;\n' +
    '  - set TEMPORAL_CLI_PATH to a `temporal` binary;\n' +
    `  - install Go, so it can be built with \`go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\`.`
  );
}

export function findOnPath(name: string, searchPath = ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

if (require.main === module) {
  resolveTemporalCli().then(
    (cli) =>
      console.log(
        cli.path ??
          `(the SDK will download the CLI into ${path.dirname(cliCacheDir())} when a server starts)`,
      ),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
