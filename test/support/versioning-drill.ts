// The README's deploy drill, applied in code: v2 of the app checks a daily limit in a new
// activity before the withdrawal. src/ stays v1; the tests build v2 from a changed copy.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import type { createActivities } from '../../src/activities';
import { buildIdOf, buildWorkflowBundle } from '../../tools/bundle';
import { ROOT } from '../../tools/common';

const SRC = path.join(ROOT, 'src');
const DRILL_DIR = path.join(ROOT, 'test', '.drill');

/** What the README tells the reader to add to the object `createActivities` returns. */
export const V2_ACTIVITY = `async checkDailyLimit(details: PaymentDetails): Promise<string> {
  if (details.amount > 10_000) {
    throw ApplicationFailure.nonRetryable('Over the daily limit of 10000', 'DailyLimitExceeded');
  }
  return 'Within the daily limit';
},`;
/** ... and the import that activity needs, at the top of src/activities.ts. */
export const V2_ACTIVITY_IMPORT = "import { ApplicationFailure } from '@temporalio/common';";
/** The workflow module the drill edits, the transfer's flow, and the line it adds the call before. */
export const V2_WORKFLOW_FILE = 'src/workflows/transfer.ts';
export const V2_WORKFLOW_ANCHOR = "setStage(transfer, 'withdrawing');";
export const TRANSFER_FLOW = path.join(ROOT, V2_WORKFLOW_FILE);
/** What the README tells the reader to add there, before V2_WORKFLOW_ANCHOR. */
export const V2_WORKFLOW_CALL = 'await checkDailyLimit(details);';
/** ... and the proxy it calls, at the end of that file. */
export const V2_WORKFLOW_PROXY =
  "const { checkDailyLimit } = proxyActivities<Activities>({ startToCloseTimeout: '5 seconds' });";

function indent(text: string, spaces: number): string {
  return text
    .split('\n')
    .map((line) => ' '.repeat(spaces) + line)
    .join('\n');
}

/** The text with `anchor` replaced once; throws if the anchor is gone, so a drill never runs v1 by mistake. */
function edit(file: string, text: string, anchor: RegExp, replace: (match: string) => string): string {
  if (!anchor.test(text)) throw new Error(`${file} has lost the place the v2 drill edits: ${anchor}`);
  return text.replace(anchor, replace);
}

/** `source`, a module from `fromDir`, with its relative imports made to work from `toDir`. */
function moveImports(source: string, fromDir: string, toDir: string): string {
  return source.replace(/from '(\.{1,2}\/[^']*)'/g, (_match, spec: string) => {
    const target = path.relative(toDir, path.resolve(fromDir, spec));
    return `from '${target.startsWith('.') ? target : `./${target}`}'`;
  });
}

/**
 * Writes `source`, a changed src/workflows/transfer.ts, to `dir`/`name`.ts with its imports
 * pointing back at src/; returns its path, a workflow bundle's entry.
 */
export function writeFlowCopy(source: string, dir: string, name: string): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.ts`);
  writeFileSync(file, moveImports(source, path.dirname(TRANSFER_FLOW), dir));
  return file;
}

/** The same change behind a patch, for workers that move executions forward (docs/versioning.md). */
export const PATCHED_CALL = `if (patched('daily-limit')) {
  await checkDailyLimit(details);
}`;
/** ... and once no execution from before the patch is open. */
export const DEPRECATED_CALL = `deprecatePatch('daily-limit');
await checkDailyLimit(details);`;

/**
 * src/workflows/transfer.ts as v2: the limit check runs before the withdrawal, as it is
 * (`call` V2_WORKFLOW_CALL) or behind a patch (PATCHED_CALL, DEPRECATED_CALL).
 */
export function v2Workflows(source = readFileSync(TRANSFER_FLOW, 'utf8'), call = V2_WORKFLOW_CALL): string {
  const anchor = new RegExp(`\\n( *)${V2_WORKFLOW_ANCHOR.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`);
  const called = edit(V2_WORKFLOW_FILE, source, anchor, (match) => {
    const spaces = /^\n( *)/.exec(match)![1]!;
    return `\n${indent(call, spaces.length)}${match}`;
  });
  // The names the patched call needs that the flow does not import already.
  const missing = ['deprecatePatch', 'patched'].filter(
    (name) => !new RegExp(`import \\{[^}]*\\b${name}\\b[^}]*\\} from '@temporalio/workflow'`).test(source),
  );
  const imports =
    call === V2_WORKFLOW_CALL || missing.length === 0
      ? ''
      : `import { ${missing.join(', ')} } from '@temporalio/workflow';\n`;
  return `${imports}${called.trimEnd()}\n\n${V2_WORKFLOW_PROXY}\n`;
}

/** The workflow bundle of `source`, a changed src/workflows/transfer.ts, built from a copy in test/.drill. */
export async function bundleWorkflowSource(source: string, name: string, limits?: string): Promise<string> {
  const file = writeFlowCopy(source, DRILL_DIR, `${name}-${process.pid}`);
  try {
    return await buildWorkflowBundle({ workflowsPath: file, limits });
  } finally {
    rmSync(file, { force: true });
  }
}

/** createActivities of app v2, loaded from a changed copy of src/activities.ts. */
export function loadV2Activities(): typeof createActivities {
  mkdirSync(DRILL_DIR, { recursive: true });
  const file = path.join(DRILL_DIR, `activities-v2-${process.pid}.ts`);
  writeFileSync(file, moveImports(v2Activities(), SRC, DRILL_DIR));
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(file) as { createActivities: typeof createActivities }).createActivities;
  } finally {
    rmSync(file, { force: true });
  }
}

/** src/activities.ts as v2: createActivities also returns checkDailyLimit. */
export function v2Activities(source = readFileSync(path.join(SRC, 'activities.ts'), 'utf8')): string {
  const withActivity = edit(
    'src/activities.ts',
    source,
    /export function createActivities\([^)]*\)[^{]*\{\n *return \{\n/,
    (match) => `${match}${indent(V2_ACTIVITY, 4)}\n\n`,
  );
  return `${V2_ACTIVITY_IMPORT}\n${withActivity}`;
}

export interface Release {
  /** The compiled worker of this release, to run with node. */
  worker: string;
  /** Its workflow bundle, for the worker's DEV_WORKFLOW_BUNDLE. */
  bundlePath: string;
  /** buildIdOf the bundle, as `npm run build` computes it. */
  buildId: string;
  remove(): void;
}

function compilerOptions(): ts.CompilerOptions {
  const root = path.resolve(SRC, '..');
  const { config } = ts.readConfigFile(path.join(root, 'tsconfig.json'), ts.sys.readFile) as {
    config: { compilerOptions: unknown };
  };
  return ts.convertCompilerOptionsFromJson(config.compilerOptions, root).options;
}

/** Writes every .ts file of src/, with the v2 edits, into `src`; returns their paths. */
function writeV2Sources(src: string): string[] {
  const changed: Record<string, (source: string) => string> = {
    [path.join('workflows', 'transfer.ts')]: v2Workflows,
    'activities.ts': v2Activities,
  };
  return (readdirSync(SRC, { recursive: true }) as string[])
    .filter((name) => name.endsWith('.ts'))
    .map((name) => {
      const source = readFileSync(path.join(SRC, name), 'utf8');
      const file = path.join(src, name);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, changed[name]?.(source) ?? source);
      return file;
    });
}

/** The type errors of app v2, so the code the README shows is known to compile. */
export function v2TypeErrors(): string {
  const dir = path.join(DRILL_DIR, `v2-types-${process.pid}`);
  try {
    const files = writeV2Sources(path.join(dir, 'src'));
    const program = ts.createProgram(files, { ...compilerOptions(), noEmit: true, incremental: false });
    const host = {
      getCanonicalFileName: (f: string) => f,
      getCurrentDirectory: () => dir,
      getNewLine: () => '\n',
    };
    return ts.formatDiagnostics(ts.getPreEmitDiagnostics(program), host);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * App v2 as its own release: src/ with the v2 edits, compiled file by file with the
 * project's compiler options into test/.drill/v2-<pid>/src (inside the project, so
 * node_modules resolves), and its workflow bundle. Nothing under lib/ or src/ is written.
 */
export async function buildV2Release(): Promise<Release> {
  const dir = path.join(DRILL_DIR, `v2-${process.pid}`);
  const options = { ...compilerOptions(), sourceMap: false };
  for (const file of writeV2Sources(path.join(dir, 'src'))) {
    const { outputText } = ts.transpileModule(readFileSync(file, 'utf8'), {
      compilerOptions: options,
      fileName: file,
    });
    writeFileSync(file.replace(/\.ts$/, '.js'), outputText);
  }
  const bundle = await buildWorkflowBundle({
    workflowsPath: path.join(dir, 'src', 'workflows', 'index.ts'),
  });
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle);
  return {
    worker: path.join(dir, 'src', 'worker.js'),
    bundlePath,
    buildId: buildIdOf(bundle),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
