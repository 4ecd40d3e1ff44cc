// The npm scripts' launcher (tools/run.js) keeps the promises at its top: checked in a
// copy of the project, through what it leaves in lib/ and what the scripts it runs print.
import { execFile } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CommandProcess } from '../../tools/processes';
import { freePort, ROOT } from '../support/helpers';

jest.setTimeout(240_000);

let copy: string;
beforeAll(() => {
  // lib/ too, as the test setup built it, but not the dev bundle: the last test builds that.
  copy = mkdtempSync(path.join(tmpdir(), 'money-transfer-launcher-'));
  for (const name of ['src', 'tools', 'lib', 'tsconfig.json', 'package.json', 'package-lock.json']) {
    cpSync(path.join(ROOT, name), path.join(copy, name), {
      recursive: true,
      filter: (from) => !/[\\/]lib[\\/](dev|\.build-lock)/.test(from),
    });
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
});
afterAll(() => rmSync(copy, { recursive: true, force: true }));

const file = (rel: string) => path.join(copy, rel);
/** When the tsc build last wrote its stamp: it writes it after each build that succeeded, and only then. */
const built = () => statSync(file('lib/.build-stamp.json')).mtimeMs;

/** `node [...nodeArgs] tools/run.js ...args` in the copy, with DEV_WORKFLOW_BUNDLE unset. */
function launch(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []) {
  const inherited = { ...process.env };
  delete inherited.DEV_WORKFLOW_BUNDLE;
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      process.execPath,
      [...nodeArgs, file('tools/run.js'), ...args],
      { env: { ...inherited, ...env }, timeout: 180_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    ),
  );
}

test('a copy of a fresh build is fresh: the script runs and nothing compiles', async () => {
  const before = built();
  const { code, stdout } = await launch(['src/starter', '--help']);
  expect({ code, usage: stdout.split('\n')[0] }).toEqual({
    code: 0,
    usage: 'Usage: npm run starter -- [options]',
  });
  expect(built()).toBe(before);
});

test('an added file, and each edit of its content, compile before the script runs; a touch does not', async () => {
  writeFileSync(file('tools/hello.ts'), "console.log('v1');\n");
  expect((await launch(['tools/hello'])).stdout).toBe('v1\n');
  writeFileSync(file('tools/hello.ts'), "console.log('v2');\n");
  expect((await launch(['tools/hello'])).stdout).toBe('v2\n');
  const before = built();
  utimesSync(file('tools/hello.ts'), new Date(), new Date());
  expect((await launch(['tools/hello'])).stdout).toBe('v2\n');
  expect(built()).toBe(before);
});

test('a failed build runs nothing and leaves the last good output', async () => {
  const before = built();
  const good = readFileSync(file('lib/tools/hello.js'), 'utf8');
  writeFileSync(file('tools/hello.ts'), "const v: number = 'v3';\nconsole.log(v);\n");
  const failed = await launch(['tools/hello']);
  expect(failed.code).toBe(1);
  expect(failed.stdout).not.toMatch(/^v3$/m); // tsc's errors are there, not the script's line
  expect(readFileSync(file('lib/tools/hello.js'), 'utf8')).toBe(good);
  expect(built()).toBe(before);
  // Back to the content it was built from: fresh again, with nothing to compile.
  writeFileSync(file('tools/hello.ts'), "console.log('v2');\n");
  expect((await launch(['tools/hello'])).stdout).toBe('v2\n');
  expect(built()).toBe(before);
});

test('two launchers started together build once, and both run the new code', async () => {
  writeFileSync(file('tools/hello.ts'), "console.log('v4');\n");
  const runs = await Promise.all([launch(['tools/hello']), launch(['tools/hello'])]);
  expect(runs.map((r) => r.stdout)).toEqual(['v4\n', 'v4\n']);
  // Each build says so in one line: the launcher's own report is what is counted here.
  expect(runs.flatMap((r) => r.stderr.match(/^\(compiled /gm) ?? [])).toHaveLength(1);
});

test("the worker's bundle: made from the files webpack read, rebuilt when one changes, handed to the worker in development only", async () => {
  const bundle = file('lib/dev/workflow-bundle.js');
  const stampFile = file('lib/dev/workflow-bundle.stamp.json');
  // `ensureDevBundle` is what `npm run worker` calls; this runs it without a server.
  const ensureDevBundle = () =>
    launch([], {}, [
      '-e',
      `const r = require(${JSON.stringify(file('tools/run.js'))}); r.ensureBuilt(); process.stdout.write(r.ensureDevBundle());`,
    ]);
  expect((await ensureDevBundle()).stdout).toBe(bundle);
  const read = Object.keys(JSON.parse(readFileSync(stampFile, 'utf8')) as Record<string, string>);
  expect(read).toEqual(
    expect.arrayContaining(['lib/src/contract.js', 'package-lock.json', 'lib/dev/workflow-bundle.js']),
  );
  expect(read.filter((rel) => /^lib\/src\/workflows(\/index)?\.js$/.test(rel))).toHaveLength(1);
  // The workflow imports the activities as a type only, and node_modules has package-lock.json.
  expect(read.filter((rel) => rel.includes('activities') || rel.includes('node_modules'))).toEqual([]);

  const stamped = statSync(stampFile).mtimeMs;
  appendFileSync(file('src/activities.ts'), "export const launcherMark = 'activities edited';\n");
  await ensureDevBundle();
  expect(readFileSync(file('lib/src/activities.js'), 'utf8')).toContain('activities edited');
  expect(statSync(stampFile).mtimeMs).toBe(stamped); // compiled, not bundled

  appendFileSync(file('src/contract.ts'), "export const launcherMark = 'contract edited';\n");
  await ensureDevBundle();
  expect(readFileSync(bundle, 'utf8')).toContain('contract edited');

  writeFileSync(bundle, 'not the bundle the stamp names');
  await ensureDevBundle();
  expect(readFileSync(bundle, 'utf8')).toContain('contract edited');

  // What each entry finds in DEV_WORKFLOW_BUNDLE; the worker exits at once, finding no server.
  const report = file('dev-workflow-bundle.txt');
  writeFileSync(
    file('report.js'),
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(report)}, String(process.env.DEV_WORKFLOW_BUNDLE)));\n`,
  );
  const seen = async (args: string[], env: Record<string, string> = {}) => {
    await launch(args, { TEMPORAL_ADDRESS: `localhost:${await freePort()}`, ...env }, [
      '--require',
      file('report.js'),
    ]);
    return readFileSync(report, 'utf8');
  };
  expect({
    worker: await seen(['src/worker']),
    production: await seen(['src/worker'], { NODE_ENV: 'production' }),
    starter: await seen(['src/starter', '--help']),
  }).toEqual({ worker: bundle, production: 'undefined', starter: 'undefined' });
});

test('npm run worker:watch starts the script again however a file under src/ is rewritten, git checkout included', async () => {
  const { scripts } = JSON.parse(readFileSync(file('package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  expect(scripts['worker:watch']).toBe('node tools/run.js tools/watch src/worker');
  writeFileSync(file('src/hello.ts'), "console.log('v1');\n");
  const watcher = new CommandProcess(
    process.execPath,
    [file('tools/run.js'), 'tools/watch', 'src/hello'],
    {},
  );
  try {
    await watcher.waitFor('v1\nsrc/hello exited (code 0); it starts again when src/ changes.\n', 60_000);
    // As `git checkout` does it: the old file removed, a new one created.
    unlinkSync(file('src/hello.ts'));
    writeFileSync(file('src/hello.ts'), "console.log('v2');\n");
    await watcher.waitFor('Restarting src/hello: src/ changed.\n', 60_000);
    await watcher.waitFor('v2\n', 60_000);
    // As `sed -i` and many editors do it: a new file renamed over the old.
    writeFileSync(file('src/hello.ts.tmp'), "console.log('v3');\n");
    renameSync(file('src/hello.ts.tmp'), file('src/hello.ts'));
    await watcher.waitFor('v3\n', 60_000);
    // In place.
    writeFileSync(file('src/hello.ts'), "console.log('v4');\n");
    await watcher.waitFor('v4\n', 60_000);
    expect(await watcher.stop('SIGINT')).toEqual({ code: 0, signal: null });
    expect(watcher.stdout.match(/^Restarting /gm)).toHaveLength(3);
  } finally {
    watcher.child.kill('SIGKILL');
    rmSync(file('src/hello.ts'), { force: true });
  }
});
