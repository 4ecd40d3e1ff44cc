#!/usr/bin/env node
// The npm scripts' launcher: `node tools/run.js src/starter --amount 10` runs
// lib/src/starter.js, compiling first only if a .ts file changed since the last build.
//
// Plain JavaScript, so it runs before anything is compiled. It costs a few
// milliseconds of hashing when nothing changed, and an incremental `tsc` (about 2 s) after an edit, so no script
// ever runs stale code. The entry point runs in this same process: no second Node start.
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

/** Runs tsc; returns false if it failed. */
function build() {
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
  } catch {
    // A production install (npm ci --omit=dev) has no tsc: see README "A production worker".
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

module.exports = { ensureBuilt };

if (require.main === module) {
  const [entry, ...args] = process.argv.slice(2);
  if (!entry) {
    console.error('Usage: node tools/run.js <src/worker|src/starter|tools/...> [args...]');
    process.exit(2);
  }
  ensureBuilt();
  const file = path.join(LIB, entry.replace(/\.(ts|js)$/, '') + '.js');
  // Run it as the main module, exactly as `node lib/src/starter.js` would: its
  // `require.main === module` check holds and process.argv looks the same.
  process.argv = [process.argv[0], file, ...args];
  require('node:module').runMain(file);
}
