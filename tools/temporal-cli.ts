// Finds the Temporal CLI, which runs the local dev server. Used by the tests,
// `npm run server` and `npm run demo`. Run this file to resolve (and build) it.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { DevServerConfig } from '@temporalio/testing';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
const EXE = process.platform === 'win32' ? 'temporal.exe' : 'temporal';

export type CliExecutable = NonNullable<DevServerConfig['executable']>;

export interface ResolvedCli {
  /** How it was found: env | path | cache | go | download. */
  source: 'env' | 'path' | 'cache' | 'go' | 'download';
  executable: CliExecutable;
  /** Set for every source but `download`, where the SDK fetches the binary itself. */
  path?: string;
}

/** The per-user cache that holds a CLI built from source, outside the repo. */
export function cliCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.XDG_CACHE_HOME ||
    (process.platform === 'win32'
      ? env.LOCALAPPDATA || path.join(homedir(), 'AppData', 'Local')
      : process.platform === 'darwin'
        ? path.join(homedir(), 'Library', 'Caches')
        : path.join(homedir(), '.cache'));
  return path.join(base, 'money-transfer', `temporal-cli-${TEMPORAL_CLI_VERSION}`);
}

/**
 * Looks for the CLI in this order: TEMPORAL_CLI_PATH, `temporal` on PATH, the cache,
 * a fresh `go install` into the cache, and last the SDK's own download.
 */
export function resolveTemporalCli(
  env: NodeJS.ProcessEnv = process.env,
  report: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): ResolvedCli {
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

  if (findOnPath(process.platform === 'win32' ? 'go.exe' : 'go', env.PATH)) {
    report(
      `Building the Temporal CLI ${TEMPORAL_CLI_VERSION} with Go into ${cacheDir}. ` +
        'This happens once and takes a few minutes.',
    );
    mkdirSync(cacheDir, { recursive: true });
    const started = Date.now();
    const build = spawnSync('go', ['install', '-v', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
      env: { ...env, GOBIN: cacheDir },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (build.status === 0 && isExecutable(cached)) {
      report(`Built the Temporal CLI in ${Math.round((Date.now() - started) / 1000)} s: ${cached}`);
      return existing('go', cached);
    }
    report('The Go build of the Temporal CLI failed; falling back to the SDK download.');
  }

  return {
    source: 'download',
    executable: { type: 'cached-download', downloadDir: path.dirname(cacheDir) },
  };
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

function findOnPath(name: string, searchPath = ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

if (require.main === module) {
  try {
    const cli = resolveTemporalCli();
    console.log(cli.path ?? `(the SDK will download the CLI into ${cliCacheDir()}/..)`);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
