#!/usr/bin/env node
// The npm scripts' launcher: `node tools/run.js src/starter --amount 10` brings lib/ up
// to date, then runs lib/src/starter.js in this same process (no second Node start).
//
// It guarantees:
// - No script runs code older than the sources. lib/ is recompiled (incremental tsc)
//   after any change, and the worker gets the dev workflow bundle only while it is fresh.
// - Launchers started together build once: one builds, holding lib/.build-lock; the
//   others wait, then find the build fresh.
// - A failed build runs nothing and leaves the last good output and its stamp, so the
//   next launch tries again.
//
// One rule, for the tsc build and the workflow bundle alike: a build is fresh when every
// file it read still has the content it had. Each build leaves a stamp that lists those
// files with a hash of each; checking one takes a few milliseconds. Content, not mtimes:
// a checkout or a `cp` that keeps the content keeps the build fresh.
//
// Plain JavaScript, so that it runs before anything is compiled.
'use strict';
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const LIB = path.join(ROOT, 'lib');
const LOCK = path.join(LIB, '.build-lock'); // holds the building process's pid
const BUILD_STAMP = path.join(LIB, '.build-stamp.json');
const DEV_BUNDLE = path.join(LIB, 'dev', 'workflow-bundle.js');
const DEV_BUNDLE_STAMP = path.join(LIB, 'dev', 'workflow-bundle.stamp.json');
/** The entries that run a worker with the development workflow code. */
const DEV_WORKER_ENTRIES = ['src/worker', 'tools/demo'];

/** A file's content hash; for a folder (`src/`), of the names of its folders and .ts files. */
function hash(rel) {
  const file = path.join(ROOT, rel);
  const content = rel.endsWith('/')
    ? fs
        .readdirSync(file, { withFileTypes: true })
        .filter((e) => e.isDirectory() || e.name.endsWith('.ts'))
        .map((e) => e.name)
        .join('\n')
    : fs.readFileSync(file);
  return createHash('sha1').update(content).digest('hex');
}

/** The rule: every file in the stamp still hashes as it did. */
function fresh(stampFile) {
  try {
    return Object.entries(JSON.parse(fs.readFileSync(stampFile, 'utf8'))).every(
      ([rel, h]) => hash(rel) === h,
    );
  } catch {
    return false; // no stamp, a half-written one, or a file that is gone
  }
}

/**
 * What tsc reads: tsconfig.json, the folders it includes and every .ts file in them, and
 * the types in node_modules, for which package-lock.json stands. The folders count, so
 * that an added file rebuilds.
 */
function tscInputs() {
  const inputs = ['tsconfig.json', 'package-lock.json'];
  const visit = (dir) => {
    inputs.push(`${dir}/`);
    for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) visit(rel);
      else if (entry.name.endsWith('.ts')) inputs.push(rel);
    }
  };
  ['src', 'tools'].forEach(visit); // tsconfig.json's "include"
  return inputs;
}

/** A stamp: each of these files with its hash now. */
const stampOf = (files) => Object.fromEntries(files.map((rel) => [rel, hash(rel)]));

function compile() {
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
  const stamp = stampOf(tscInputs()); // before tsc reads the files, so that an edit during the build counts
  if (!node([tsc, '-p', path.join(ROOT, 'tsconfig.json')], 'compiled the changed sources')) return false;
  removeOrphanedOutputs();
  fs.writeFileSync(BUILD_STAMP, JSON.stringify(stamp));
  return true;
}

/**
 * Deletes what tsc compiled from a .ts file that is gone, which tsc never does: a stale
 * lib/src/workflows.js would shadow lib/src/workflows/index.js. tsc writes a .js.map
 * beside each .js it compiles; the workflow bundles have none, so they stay.
 */
function removeOrphanedOutputs() {
  const visit = (rel) => {
    for (const entry of fs.readdirSync(path.join(LIB, rel), { withFileTypes: true })) {
      const out = `${rel}/${entry.name}`;
      if (entry.isDirectory()) visit(out);
      else if (out.endsWith('.js.map') && !fs.existsSync(path.join(ROOT, out.replace(/\.js\.map$/, '.ts')))) {
        fs.rmSync(path.join(LIB, out));
        fs.rmSync(path.join(LIB, out.replace(/\.map$/, '')), { force: true });
      }
    }
  };
  ['src', 'tools'].filter((dir) => fs.existsSync(path.join(LIB, dir))).forEach(visit);
}

/**
 * Bundles the compiled workflow code with webpack (about 1.5 s), then stamps the files
 * webpack read, package-lock.json for node_modules, and the bundle. They are hashed after
 * the build: the compiled code it read changes only under the lock this build holds.
 */
function bundle() {
  const filesRead = `${DEV_BUNDLE_STAMP}.${process.pid}.tmp`;
  const args = [path.join(LIB, 'tools', 'bundle.js'), '--dev', DEV_BUNDLE, filesRead];
  if (!node(args, 'bundled the workflow code')) return false;
  const read = JSON.parse(fs.readFileSync(filesRead, 'utf8'));
  fs.rmSync(filesRead);
  const stamp = stampOf([...read, 'package-lock.json', path.relative(ROOT, DEV_BUNDLE)]);
  fs.writeFileSync(DEV_BUNDLE_STAMP, JSON.stringify(stamp));
  return true;
}

/** Runs `node ...args`; says how long it took, or that it failed. */
function node(args, done) {
  const started = Date.now();
  const { status } = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (status !== 0) console.error('The build failed (above); fix it and run the command again.');
  else console.error(`(${done} in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return status === 0;
}

/** Builds unless the stamp says the build is fresh, and exits if the build fails. */
function ensure(stampFile, build) {
  // Another launcher may have built it while this one waited for the lock.
  if (!fresh(stampFile) && !withLock(() => fresh(stampFile) || build())) process.exit(1);
}

const ensureBuilt = () => ensure(BUILD_STAMP, compile);

/** Makes lib/dev/workflow-bundle.js fresh; returns its path. */
function ensureDevBundle() {
  ensure(DEV_BUNDLE_STAMP, bundle);
  return DEV_BUNDLE;
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
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100); // sleep 100 ms
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

module.exports = { ensureBuilt, ensureDevBundle };

if (require.main === module) {
  const [entry, ...args] = process.argv.slice(2);
  if (!entry) {
    console.error('Usage: node tools/run.js <src/worker|src/starter|tools/...> [args...]');
    process.exit(2);
  }
  const name = entry.replace(/\.(ts|js)$/, '');
  ensureBuilt();
  if (DEV_WORKER_ENTRIES.includes(name) && process.env.NODE_ENV !== 'production') {
    // Read by src/worker.ts, which then skips webpack at start; set only once the bundle is fresh.
    process.env.DEV_WORKFLOW_BUNDLE = ensureDevBundle();
  }
  const file = path.join(LIB, `${name}.js`);
  // Run it as the main module, as `node lib/src/starter.js` would: its
  // `require.main === module` check holds and process.argv looks the same.
  process.argv = [process.argv[0], file, ...args];
  require('node:module').runMain(file);
}
