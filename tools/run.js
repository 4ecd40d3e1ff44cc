#!/usr/bin/env node
// The npm scripts' launcher: `node tools/run.js src/starter --amount 10` runs
// lib/src/starter.js, compiling first only if a .ts file changed since the last build.
//
// Plain JavaScript, so it runs before anything is compiled. It costs a few
// milliseconds of hashing when nothing changed, and an incremental `tsc` (about 2 s) after an edit, so no script
// ever runs stale code. The entry point runs in this same process: no second Node start.
//
// For the entries that run a development worker (src/worker, tools/demo) it also keeps
// one workflow bundle, lib/dev/workflow-bundle.js, built from the compiled workflow code
// and rebuilt only when that code changed, and tells the worker through
// DEV_WORKFLOW_BUNDLE that it matches. The worker then skips webpack at start.
'use strict';
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const LIB = path.join(ROOT, 'lib');
const STAMP = path.join(LIB, '.build-stamp.json');
const LOCK = path.join(LIB, '.build-lock'); // holds the building process's pid
// What tsc compiles (tsconfig.json's "include"), plus the files that steer it.
const SOURCE_DIRS = ['src', 'tools'];
const CONFIG_FILES = ['tsconfig.json', 'package.json'];

/**
 * Every input file and a hash of its content. A changed, added or deleted file changes
 * this; a copy, a checkout or a `touch` that keeps the content does not. Hashing the
 * 30 small files takes a few milliseconds, mtimes would not be much faster, and they
 * do not survive `cp` or `COPY` into an image.
 */
function sourceState() {
  const state = {};
  const add = (rel) => {
    state[rel] = createHash('sha1')
      .update(fs.readFileSync(path.join(ROOT, rel)))
      .digest('hex');
  };
  const visit = (dir) => {
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) visit(rel);
      else if (entry.name.endsWith('.ts')) add(rel);
    }
  };
  SOURCE_DIRS.forEach(visit);
  CONFIG_FILES.forEach(add);
  return state;
}

function upToDate(state) {
  try {
    return JSON.stringify(JSON.parse(fs.readFileSync(STAMP, 'utf8'))) === JSON.stringify(state);
  } catch {
    return false;
  }
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** One build at a time: a worker and a starter started together must not both write lib/. */
function withLock(fn) {
  fs.mkdirSync(LIB, { recursive: true });
  for (;;) {
    try {
      fs.writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      if (holderGone()) fs.rmSync(LOCK, { force: true });
      else sleep(100);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(LOCK, { force: true });
  }
}

/** True if the process that took the lock has exited without removing it. */
function holderGone() {
  try {
    process.kill(Number(fs.readFileSync(LOCK, 'utf8')), 0);
    return false;
  } catch (err) {
    return err.code !== 'EPERM';
  }
}

/**
 * Deletes what tsc compiled from a .ts file that is gone, which tsc never does: a stale
 * lib/src/workflows.js would shadow lib/src/workflows/index.js for require('./workflows').
 * tsc writes a .js.map beside each .js it compiles; the workflow bundles have none.
 */
function removeOrphanedOutputs() {
  const visit = (rel) => {
    if (!fs.existsSync(path.join(LIB, rel))) return;
    for (const entry of fs.readdirSync(path.join(LIB, rel), { withFileTypes: true })) {
      const out = path.join(rel, entry.name);
      if (entry.isDirectory()) visit(out);
      else if (
        out.endsWith('.js') &&
        fs.existsSync(path.join(LIB, `${out}.map`)) &&
        !fs.existsSync(path.join(ROOT, out.replace(/\.js$/, '.ts')))
      ) {
        fs.rmSync(path.join(LIB, out));
        fs.rmSync(path.join(LIB, `${out}.map`));
      }
    }
  };
  SOURCE_DIRS.forEach(visit);
}

/** Runs tsc; returns false if it failed. */
function build() {
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
  } catch {
    // A production install (npm ci --omit=dev) has no tsc: see docs/production.md.
    console.error(
      'lib/ does not match the TypeScript sources, and typescript is not installed here. ' +
        'Build with the dev dependencies (npm ci && npm run build), then `npm prune --omit=dev`.',
    );
    return false;
  }
  const state = sourceState(); // before tsc reads the files, so an edit during the build counts
  const started = Date.now();
  const result = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.json')], {
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    console.error('tsc found errors (above); fix them and run the command again.');
    return false;
  }
  removeOrphanedOutputs();
  fs.writeFileSync(STAMP, JSON.stringify(state));
  console.error(`(compiled the changed sources in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return true;
}

/** Compiles src/ and tools/ into lib/ if any input changed since the last build. */
function ensureBuilt() {
  if (upToDate(sourceState())) return;
  // Another launcher may have built it while this one waited for the lock.
  const built = withLock(() => upToDate(sourceState()) || build());
  if (!built) process.exit(1);
}

/** The development workflow bundle, and the record of what it was built from. */
const DEV_BUNDLE = path.join(LIB, 'dev', 'workflow-bundle.js');
const DEV_BUNDLE_STAMP = path.join(LIB, 'dev', 'workflow-bundle.stamp.json');
/** The entries that run a worker with the development workflow code. */
const DEV_WORKER_ENTRIES = ['src/worker', 'tools/demo'];

function hashFile(file) {
  return createHash('sha1').update(fs.readFileSync(file)).digest('hex');
}

/**
 * What the workflow bundle is made of: lib/src/workflows/index.js and the compiled modules it
 * requires, transitively (tsc drops `import type`, so activities.ts is not among them),
 * and package-lock.json for the SDK inside it. An edit to the activities or the worker
 * does not rebuild it; an edit to the workflow or shared.ts does.
 */
function bundleInputs() {
  const state = { 'package-lock.json': hashFile(path.join(ROOT, 'package-lock.json')) };
  const visit = (file) => {
    const rel = path.relative(ROOT, file);
    if (rel in state) return;
    const code = fs.readFileSync(file, 'utf8');
    state[rel] = createHash('sha1').update(code).digest('hex');
    for (const [, spec] of code.matchAll(/\brequire\("(\.{1,2}\/[^"]+)"\)/g)) {
      const base = path.resolve(path.dirname(file), spec);
      const found = [base, `${base}.js`, path.join(base, 'index.js')].find((f) =>
        fs.statSync(f, { throwIfNoEntry: false })?.isFile(),
      );
      if (!found) throw new Error(`${rel} requires ${spec}, which is not in lib/`);
      visit(found);
    }
  };
  visit(path.join(LIB, 'src', 'workflows', 'index.js'));
  return state;
}

/** True if the bundle exists, is the one the stamp recorded, and was built from these inputs. */
function devBundleFresh(inputs) {
  try {
    const stamp = JSON.parse(fs.readFileSync(DEV_BUNDLE_STAMP, 'utf8'));
    return JSON.stringify(stamp.inputs) === JSON.stringify(inputs) && stamp.bundle === hashFile(DEV_BUNDLE);
  } catch {
    return false;
  }
}

/** Bundles the compiled workflow code (webpack, about 1.5 s) with the options `npm run build` uses. */
function buildDevBundle(inputs) {
  const started = Date.now();
  const partial = `${DEV_BUNDLE}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(DEV_BUNDLE), { recursive: true });
  const script =
    "require(process.argv[1]).buildWorkflowBundle().then((code) => require('node:fs').writeFileSync(process.argv[2], code))";
  const result = spawnSync(process.execPath, ['-e', script, path.join(LIB, 'tools', 'bundle.js'), partial], {
    stdio: 'inherit',
  });
  if (result.status !== 0) {
    fs.rmSync(partial, { force: true });
    console.error('Bundling the workflow code failed (above).');
    return false;
  }
  fs.renameSync(partial, DEV_BUNDLE); // a reader sees the old bundle or the new one, whole
  fs.writeFileSync(DEV_BUNDLE_STAMP, JSON.stringify({ inputs, bundle: hashFile(DEV_BUNDLE) }));
  console.error(`(bundled the changed workflow code in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return true;
}

/** Makes lib/dev/workflow-bundle.js match the compiled workflow code; returns its path. */
function ensureDevBundle() {
  const fresh = () => devBundleFresh(bundleInputs());
  if (!fresh() && !withLock(() => fresh() || buildDevBundle(bundleInputs()))) process.exit(1);
  return DEV_BUNDLE;
}

module.exports = { ensureBuilt, ensureDevBundle };

if (require.main === module) {
  const [entry, ...args] = process.argv.slice(2);
  if (!entry) {
    console.error('Usage: node tools/run.js <src/worker|src/starter|tools/...> [args...]');
    process.exit(2);
  }
  ensureBuilt();
  const name = entry.replace(/\.(ts|js)$/, '');
  if (DEV_WORKER_ENTRIES.includes(name) && process.env.NODE_ENV !== 'production') {
    // Read by src/worker.ts; set only here, after checking the bundle matches lib/.
    process.env.DEV_WORKFLOW_BUNDLE = ensureDevBundle();
  }
  const file = path.join(LIB, entry.replace(/\.(ts|js)$/, '') + '.js');
  // Run it as the main module, exactly as `node lib/src/starter.js` would: its
  // `require.main === module` check holds and process.argv looks the same.
  process.argv = [process.argv[0], file, ...args];
  require('node:module').runMain(file);
}
