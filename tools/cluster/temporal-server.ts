// Finds the Temporal server and its SQL schema tool, which `npm run cluster` runs.
// Run this file to resolve (and build) them. TEMPORAL_SERVER_VERSION is the one place
// their version is pinned: the dev server's, so the cluster runs the same server code.
import { execFile } from 'node:child_process';
import { existsSync, renameSync } from 'node:fs';
import path from 'node:path';
import { findOnPath, goInstall, isExecutable, userCacheDir } from '../temporal-cli';

export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
const SERVER_MODULE = 'go.temporal.io/server';

export interface ServerBinaries {
  /** `temporal-server`: runs one or more services from a config directory. */
  server: string;
  /** `temporal-sql-tool`: creates databases and applies the versioned schemas. */
  sqlTool: string;
  /** The module's schema/postgresql/v12 folder, with temporal/ and visibility/ in it. */
  postgresSchemaDir: string;
  source: 'env' | 'cache' | 'go';
}

/** Where the binaries are cached, per version, outside the repo. */
export function serverCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return userCacheDir(`temporal-server-${TEMPORAL_SERVER_VERSION}`, env);
}

/**
 * Looks for the binaries in this order: TEMPORAL_SERVER_PATH with TEMPORAL_SQL_TOOL_PATH,
 * the cache, and a `go install` of the pinned version into the cache. Temporal publishes
 * no download this project can rely on offline, and `go install` also puts the module,
 * whose schema files the SQL tool needs, into Go's module cache.
 */
export async function resolveTemporalServer(
  env: NodeJS.ProcessEnv = process.env,
  report: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<ServerBinaries> {
  if (!findOnPath('go', env.PATH)) throw new Error(serverMissingHelp('Go is not on PATH'));
  const schemaDir = await postgresSchemaDir(env);

  if (env.TEMPORAL_SERVER_PATH || env.TEMPORAL_SQL_TOOL_PATH) {
    for (const name of ['TEMPORAL_SERVER_PATH', 'TEMPORAL_SQL_TOOL_PATH'] as const) {
      if (!env[name] || !isExecutable(env[name])) {
        throw new Error(`${name} must name an executable (set both, or neither): got '${env[name] ?? ''}'.`);
      }
    }
    return {
      server: env.TEMPORAL_SERVER_PATH!,
      sqlTool: env.TEMPORAL_SQL_TOOL_PATH!,
      ...schemaDir,
      source: 'env',
    };
  }

  const cacheDir = serverCacheDir(env);
  const server = path.join(cacheDir, 'temporal-server');
  const sqlTool = path.join(cacheDir, 'temporal-sql-tool');
  // `go install` names each binary after its package folder: cmd/server, cmd/tools/sql.
  const builtNames: Array<[string, string]> = [
    [path.join(cacheDir, 'server'), server],
    [path.join(cacheDir, 'sql'), sqlTool],
  ];
  const adoptBuilt = () => {
    for (const [built, named] of builtNames) if (isExecutable(built)) renameSync(built, named);
  };
  adoptBuilt();
  if (isExecutable(server) && isExecutable(sqlTool))
    return { server, sqlTool, ...schemaDir, source: 'cache' };

  const ok = await goInstall(
    {
      what: `the Temporal server ${TEMPORAL_SERVER_VERSION} and its SQL tool`,
      packages: [
        `${SERVER_MODULE}/cmd/server@${TEMPORAL_SERVER_VERSION}`,
        `${SERVER_MODULE}/cmd/tools/sql@${TEMPORAL_SERVER_VERSION}`,
      ],
      gobin: cacheDir,
      produces: ['server', 'sql'],
    },
    env,
    report,
  );
  if (!ok) throw new Error(serverMissingHelp('the Go build failed (its last lines are above)'));
  adoptBuilt();
  return { server, sqlTool, ...(await postgresSchemaDir(env)), source: 'go' };
}

/** The schema folder inside the module, which `go mod download` fetches if it is missing. */
async function postgresSchemaDir(env: NodeJS.ProcessEnv): Promise<{ postgresSchemaDir: string }> {
  const moduleDir = await new Promise<string>((resolve, reject) =>
    execFile(
      'go',
      ['mod', 'download', '-json', `${SERVER_MODULE}@${TEMPORAL_SERVER_VERSION}`],
      // Outside any Go module, so no go.mod nearby changes what it resolves.
      { env, cwd: '/', maxBuffer: 1 << 20 },
      (err, stdout) => {
        if (err) return reject(new Error(`go mod download ${SERVER_MODULE}: ${err.message}`));
        resolve((JSON.parse(stdout) as { Dir: string }).Dir);
      },
    ),
  );
  const dir = path.join(moduleDir, 'schema', 'postgresql', 'v12');
  if (!existsSync(path.join(dir, 'temporal', 'versioned'))) {
    throw new Error(`${dir} has no temporal/versioned schema: is the Go module cache complete?`);
  }
  return { postgresSchemaDir: dir };
}

function serverMissingHelp(reason: string): string {
  return (
    `Could not get the Temporal server ${TEMPORAL_SERVER_VERSION}: ${reason}. Install Go ` +
    `(https://go.dev/dl/) so it can be built with \`go install ${SERVER_MODULE}/cmd/server@${TEMPORAL_SERVER_VERSION}\`, ` +
    'or set TEMPORAL_SERVER_PATH and TEMPORAL_SQL_TOOL_PATH to binaries of that version.'
  );
}

if (require.main === module) {
  resolveTemporalServer().then(
    (found) => console.log(`${found.server}\n${found.sqlTool}\n${found.postgresSchemaDir}`),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exitCode = 1;
    },
  );
}
