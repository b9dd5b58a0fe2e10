#!/usr/bin/env node
'use strict';
// Thin launcher (CommonJS and old-Node syntax: it must run, and say what is wrong, on any Node).
// 1. Plinth needs Node 22.22.2+ or 24.15+ (Node 24 LTS is what it is tested on). On an older Node it
//    re-executes itself on the Node 24 that ./scripts/setup.sh put in .cache/node, or says exactly
//    what to install.
// 2. It runs the bundled CLI through V8's code cache, one cache per command (a cache holds the
//    functions a run compiled, and `inspect` compiles other functions than `scan`), so start-up
//    stays close to Node's own. A command runs from its group's bundle (dist/plinth-GROUP.cjs, as
//    dist/plinth-bundles.json names it: only what that group's commands reach), anything else
//    from dist/plinth.cjs (every command). Falls back to the unbundled ES modules when there is
//    no bundle.
const fs = require('node:fs');
const path = require('node:path');

// The floor (package.json engines): node:sqlite's setReturnArrays/isTransaction (22.16) and
// @sigstore/bundle (^22.22.2 || >=24.15.0).
const MIN = '22.22.2 (or 24.15)';
const have = process.versions.node.split('.').map(Number);
const atLeast = (a, b, c) => have[0] > a || (have[0] === a && (have[1] > b || (have[1] === b && have[2] >= c)));
const supported = have[0] === 22 ? atLeast(22, 22, 2) : atLeast(24, 15, 0);
if (!supported) {
  const local = path.join(__dirname, '..', '.cache', 'node', 'bin', 'node');
  if (fs.existsSync(local) && !process.env.PLINTH_REEXEC) {
    const env = Object.assign({}, process.env, { PLINTH_REEXEC: '1' });
    const r = require('node:child_process').spawnSync(local, [__filename].concat(process.argv.slice(2)), { stdio: 'inherit', env: env });
    if (!r.error) {
      if (r.signal) process.kill(process.pid, r.signal);
      process.exit(r.status === null ? 1 : r.status);
    }
    process.stderr.write('plinth: cannot run ' + local + ': ' + r.error.message + '\n');
  }
  process.stderr.write(
    'plinth: needs Node.js ' + MIN + ' or newer (Node 24 LTS recommended); this is Node ' + process.version + ' (' + process.execPath + ').\n' +
      '  In a clone of Plinth, run ./scripts/setup.sh: it installs Node 24 LTS into .cache/node and plinth uses it.\n' +
      '  Otherwise install Node 24 LTS (https://nodejs.org/en/download, or your distribution\'s nodejs package), or use the\n' +
      '  single-file executable (npm run build:exe), which needs no Node at all.\n',
  );
  process.exit(1);
}

const dist = path.join(__dirname, '..', 'dist');
const fullBundle = path.join(dist, 'plinth.cjs');

// `plinth --version` alone needs no CLI: answer from package.json (`plinth version` and
// `--version --verbose` go through the CLI and name the runtime too).
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  try {
    process.stdout.write(`${JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version}\n`);
    return;
  } catch {}
}

/** The command a run starts, to pick its code cache: the first word that is not a flag. */
function commandKey(argv) {
  if (argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') return 'help';
  for (const a of argv) {
    if (a === '--') break;
    if (!a.startsWith('-')) return /^[a-z][a-z-]{0,19}$/.test(a) ? a : 'other';
  }
  return 'root';
}

const key = commandKey(args);

/**
 * The bundle a command runs from: its group's, when the table written with the bundles names one
 * that exists (a name, never a path), else the one with every command.
 */
function bundleFor(command) {
  if (command === 'help' || command === 'root' || command === 'other') return fullBundle;
  try {
    const table = JSON.parse(fs.readFileSync(path.join(dist, 'plinth-bundles.json'), 'latin1'));
    const file = Object.prototype.hasOwnProperty.call(table, command) ? table[command] : undefined;
    if (typeof file === 'string' && /^plinth-[a-z-]{1,40}\.cjs$/.test(file) && fs.statSync(path.join(dist, file)).isFile()) return path.join(dist, file);
  } catch {}
  return fullBundle;
}

const bundle = bundleFor(key);

const IDENTITY_BYTES = 64;

/** The bundle file's identity (size, modification time, inode), padded to IDENTITY_BYTES. */
function bundleIdentity(bundle) {
  const st = fs.statSync(bundle, { bigint: true });
  return `plinth-code-cache ${st.size} ${st.mtimeNs} ${st.ino}`.padEnd(IDENTITY_BYTES, ' ').slice(0, IDENTITY_BYTES);
}

function loadBundle(bundle) {
  const vm = require('node:vm');
  const Module = require('node:module');
  const cacheFile = `${bundle}.${key}.cache`;
  // latin1: the bundle is pure ASCII (scripts/bundle.mjs refuses anything else), and a one-byte
  // string is read faster than through the UTF-8 decoder.
  const code = fs.readFileSync(bundle, 'latin1');
  // The cache of a run that exited 1 (a policy or verification failure, an unreachable registry:
  // most of the command ran) stands in until a run succeeds; usage errors (2) compile too little.
  const partialFile = `${cacheFile}-1`;
  // A cache starts with the identity of the bundle it was made from (V8 itself checks only the
  // source's length: a rebuild of the same length would run the old code), and is written only
  // if the bundle is still the one this run loaded (a run that began before a rebuild ends after).
  const identity = bundleIdentity(bundle);
  const ours = (buf) => (buf.length > IDENTITY_BYTES && buf.toString('latin1', 0, IDENTITY_BYTES) === identity ? buf.subarray(IDENTITY_BYTES) : undefined);
  let cached;
  let partial = false;
  try {
    cached = ours(fs.readFileSync(cacheFile));
  } catch {}
  if (!cached) {
    try {
      cached = ours(fs.readFileSync(partialFile));
      partial = cached !== undefined;
    } catch {}
  }
  const script = new vm.Script(Module.wrap(code), { filename: bundle, cachedData: cached });
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, Module.createRequire(bundle), mod, bundle, path.dirname(bundle));
  const usable = cached !== undefined && !script.cachedDataRejected;
  if (!usable || partial) {
    // Written at exit, so the cache holds what this command compiled (not only the top level).
    process.once('exit', (code) => {
      if (code !== 0 && !(code === 1 && !usable)) return;
      try {
        if (bundleIdentity(bundle) !== identity) return;
        const file = code === 0 ? cacheFile : partialFile;
        const tmp = `${file}.${process.pid}`;
        fs.writeFileSync(tmp, Buffer.concat([Buffer.from(identity, 'latin1'), script.createCachedData()]));
        fs.renameSync(tmp, file);
        // A success's cache replaces any partial one (this bundle's or an older one's).
        if (code === 0) fs.rmSync(partialFile, { force: true });
      } catch {}
    });
  }
  return mod.exports;
}

/** The command's bundle; the full one if that is not a CLI (a table that names the wrong file). */
function loadCli() {
  if (bundle !== fullBundle) {
    try {
      const cli = loadBundle(bundle);
      if (typeof cli.main === 'function') return cli;
    } catch {}
  }
  return loadBundle(fullBundle);
}

// (A command's own bundle was found a file by bundleFor; loadCli falls back if it is gone since.)
const load = fs.existsSync(fullBundle) && !process.env.PLINTH_NO_BUNDLE
  ? Promise.resolve(loadCli())
  : import('../dist/src/cli/main.js');
load.then(({ main }) => main(process.argv.slice(2))).then((code) => {
  process.exitCode = code;
});
