// Bundles the CLI into one CommonJS file (dist/plinth.cjs): one file to parse instead of ~200
// modules; with V8's code cache (bin/plinth.cjs) and modules initialised only when a command
// needs them (esbuild keeps dynamically imported modules lazy), start-up stays near Node's own.
// The same file is the main script of the single-file executable (scripts/build-exe.mjs).
// Then one smaller bundle per command group (dist/plinth-GROUP.cjs, and dist/plinth-bundles.json
// naming each command's): the launcher runs a command from its group's bundle, which holds only
// what that group's commands can reach (see "Command bundles" below).
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';

/** Remove the files of dist/ that `pick` names. */
function removeFromDist(pick) {
  for (const f of readdirSync('dist')) if (pick(f)) rmSync(`dist/${f}`, { force: true });
}

// A build starts by removing the command bundles and their table: a build that fails half-way
// leaves the launcher on dist/plinth.cjs alone, never on command bundles of another build.
removeFromDist((f) => f === 'plinth-bundles.json' || /^plinth-[a-z-]+\.cjs(\.map)?$/.test(f));

/**
 * commander requires node:child_process at load time for external subcommands, which Plinth
 * does not use; give it a lazy stand-in so every start does not load child_process (~3 ms).
 */
const lazyChildProcessForCommander = {
  name: 'lazy-child-process',
  setup(b) {
    b.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: 'lazy-child-process', namespace: 'plinth-lazy' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'plinth-lazy' }, () => ({
      contents: "let m; module.exports = new Proxy({}, { get: (_, k) => (m ??= require('node:child_process'))[k] });",
      loader: 'js',
    }));
  },
};

/**
 * ES-module packages that only a few commands use, pre-bundled as CommonJS: pg-boss with what it
 * brings (the PostgreSQL work queue of `plinth watch`), dockerfile-ast with the language-server
 * types it uses (lint). esbuild hoists an ES module's functions to the bundle's top level, where
 * V8 makes a record for each at every start (the code cache carries them all: ~2 ms for pg-boss
 * alone); a CommonJS module stays inside one closure that V8 compiles only when the module is
 * first required. Packages the rest of Plinth shares (pg, prom-client, @opentelemetry/api) stay
 * outside, bundled once. (Plinth validates with zod/mini, src/util/zod.ts: zod classic, ~450 KB
 * with its locales, is not in the bundle.)
 */
const CLOSURE_WRAPPED = { 'pg-boss': ['pg', 'prom-client', '@opentelemetry/api'], 'dockerfile-ast': [] };
/** Each package pre-bundled once, however many bundles include it. */
const preBundled = new Map();
const closureWrapped = {
  name: 'closure-wrapped',
  setup(b) {
    const names = Object.keys(CLOSURE_WRAPPED).map((n) => n.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'));
    b.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => (args.namespace === 'file' ? { path: args.path, namespace: 'plinth-cjs' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'plinth-cjs' }, async (args) => {
      if (!preBundled.has(args.path)) preBundled.set(args.path, preBundle(args.path));
      return preBundled.get(args.path);
    });
    const preBundle = async (name) => {
      const r = await build({
        entryPoints: [name],
        bundle: true,
        platform: 'node',
        target: 'node22.22',
        format: 'cjs',
        write: false,
        logLevel: 'warning',
        external: CLOSURE_WRAPPED[name],
      });
      return { contents: r.outputFiles[0].text, loader: 'js', resolveDir: process.cwd() };
    };
  },
};

/** One bundle of the CLI: `dist/plinth.cjs`, or a command group's with `plugins`. */
async function bundle(outfile, plugins = []) {
  await build({
    entryPoints: ['dist/src/cli/main.js'],
    bundle: true,
    platform: 'node',
    target: 'node22.22',
    format: 'cjs',
    minify: true,
    sourcemap: true,
    outfile,
    logLevel: 'warning',
    plugins: [...plugins, lazyChildProcessForCommander, closureWrapped],
    // Modules that use import.meta.url (createRequire) get the bundle's own URL.
    banner: { js: "const __plinthImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__plinthImportMetaUrl' },
  });
  check(outfile);
}

/** What the launcher needs of a bundle, or the build fails. */
function check(file) {
  // The launcher runs the bundle with vm.Script, which has no dynamic import(): a builtin loaded with
  // `await import('node:…')` would fail at run time ("A dynamic import callback was not specified").
  const text = readFileSync(file, 'utf8');
  const dynamicBuiltin = /\bimport\(["']node:[a-z_/]+["']\)/.exec(text);
  if (dynamicBuiltin) {
    console.error(`bundle: ${dynamicBuiltin[0]} in ${file}: import builtins statically or with process.getBuiltinModule()`);
    refuse();
  }
  // The bundle must be pure ASCII: the launcher reads it as latin1, a one-byte string (as UTF-8 with
  // one non-ASCII character V8 makes a two-byte string of all 2.5 MB, ~4 ms more at every start).
  // esbuild escapes non-ASCII characters itself except in tagged templates (String.raw would see the
  // escape), so write those as \uXXXX in the source (html`` uses the cooked strings: same page).
  const nonAscii = /[^\x00-\x7f]/.exec(text);
  if (nonAscii) {
    const line = text.slice(0, nonAscii.index).split('\n').length;
    const col = nonAscii.index - text.lastIndexOf('\n', nonAscii.index - 1);
    console.error(`bundle: non-ASCII character U+${nonAscii[0].charCodeAt(0).toString(16).padStart(4, '0')} at ${file}:${line}:${col}${where(`${file}.map`, line - 1, col - 1)}: write it as \\u${nonAscii[0].charCodeAt(0).toString(16).padStart(4, '0')} (or an HTML entity) in the source`);
    refuse();
  }
}

await bundle('dist/plinth.cjs');

// Command bundles. Every command pays at each start for what its bundle holds (reading it, V8's
// record of each top-level function, the code cache), and dist/plinth.cjs holds every command
// (2.2 MB). A command group's bundle is built from the same entry with main's imports of the other
// groups' modules replaced by stand-ins: the register functions of the other groups define
// nothing, and the demo and the match worker, which reach every part, throw. Only main's own
// import edges are replaced, so whatever a group's modules import stays whole. The groups are the
// register modules main imports, plus "image": main's own commands (inspect, copy, tags…).
// The table dist/plinth-bundles.json (command or alias -> bundle) is read off the bundles
// themselves: a command is listed for the bundle whose parser defines it and the image bundle's
// does not. `plinth --help`, `demo` and anything not listed run dist/plinth.cjs.
const FULL_ONLY = new Set(['demo']);
const mainJs = readFileSync('dist/src/cli/main.js', 'utf8');
const registers = [...mainJs.matchAll(/^import \{ (register\w+) \} from '\.\/([a-z-]+)\.js';$/gm)].map((m) => ({ fn: m[1], module: m[2] }));
if (registers.length < 10) {
  console.error(`bundle: found ${registers.length} register imports in dist/src/cli/main.js; the command bundles need them`);
  refuse();
}
const groupStubs = (keep) => ({
  name: 'command-group',
  setup(b) {
    // main's imports that become stand-ins: the other groups' register modules, the demo, the
    // match worker, and (but in the sign group) the signing modules only warm() imports (the
    // single-file executable's snapshot, made from dist/plinth.cjs).
    const stubbed = new Set([
      ...registers.filter((r) => r.module !== keep).map((r) => `./${r.module}.js`),
      './demo.js',
      '../watch/rematch.js',
      ...(keep === 'sign' ? [] : ['../sign/index.js', '../sign/keys.js']),
    ]);
    b.onResolve({ filter: /^\.\.?\// }, (args) =>
      stubbed.has(args.path) && /[\\/]dist[\\/]src[\\/]cli[\\/]main\.js$/.test(args.importer) ? { path: args.path, namespace: 'plinth-stub' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'plinth-stub' }, (args) => ({
      contents: [
        ...registers.map((r) => `export function ${r.fn}() {}`),
        `const absent = (what) => () => { throw new Error(what + ' is not in this command bundle (${keep}); run it with PLINTH_NO_BUNDLE=1 and report this'); };`,
        `export const runDemo = absent('the demo');`,
        `export const matchUnitsWorker = absent('the match worker');`,
      ].join('\n'),
      loader: 'js',
      resolveDir: path.resolve('dist/src/cli'),
    }));
  },
});
const groups = ['image', ...registers.map((r) => r.module)];
await Promise.all(groups.map((g) => bundle(`dist/plinth-${g}.cjs`, [groupStubs(g)])));
const requireBundle = createRequire(import.meta.url);
/** command or alias -> command, as the bundle's full parser defines them. */
const definedBy = (file) => {
  const { buildProgram } = requireBundle(path.resolve(file));
  const out = new Map();
  for (const c of buildProgram().commands) for (const n of [c.name(), ...c.aliases()]) out.set(n, c.name());
  return out;
};
const { COMMANDS } = requireBundle(path.resolve('dist/plinth.cjs'));
const own = definedBy('dist/plinth-image.cjs');
const table = {};
for (const [n, c] of own) if (!FULL_ONLY.has(c)) table[n] = 'plinth-image.cjs';
for (const g of groups.slice(1)) {
  for (const [n, c] of definedBy(`dist/plinth-${g}.cjs`)) {
    if (own.has(n) || FULL_ONLY.has(c)) continue;
    if (table[n]) {
      console.error(`bundle: ${n} is defined by two command groups (${table[n]}, plinth-${g}.cjs)`);
      refuse();
    }
    table[n] = `plinth-${g}.cjs`;
  }
}
const missing = Object.keys(COMMANDS).filter((n) => !table[n] && !FULL_ONLY.has(COMMANDS[n]));
if (missing.length) {
  console.error(`bundle: no command bundle defines ${missing.join(', ')}`);
  refuse();
}
writeFileSync('dist/plinth-bundles.json', `${JSON.stringify(table, null, 1)}\n`);

// The launcher's code caches (bin/plinth.cjs) belong to the bundle they were made from; V8 checks
// little more than the source's length, so a new bundle starts without them.
removeFromDist((f) => /^plinth(-[a-z-]+)?\.cjs\..+\.cache(-1)?$/.test(f));

/** A refused bundle is removed (the launcher then runs the unbundled modules), and the build fails. */
function refuse() {
  removeFromDist((f) => f === 'plinth-bundles.json' || /^plinth(-[a-z-]+)?\.cjs(\.map)?$/.test(f));
  process.exit(1);
}

/** " (from SOURCE:LINE)" for a 0-based position in a bundle, through its source map. */
function where(mapFile, line, col) {
  try {
    const map = JSON.parse(readFileSync(mapFile, 'utf8'));
    const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    let src = 0;
    let srcLine = 0;
    let found;
    const lines = map.mappings.split(';');
    for (let l = 0; l <= line && l < lines.length; l++) {
      let c = 0;
      for (const seg of lines[l] ? lines[l].split(',') : []) {
        const v = [];
        let shift = 0;
        let acc = 0;
        for (const ch of seg) {
          const d = B64.indexOf(ch);
          acc += (d & 31) << shift;
          if (d & 32) shift += 5;
          else {
            v.push(acc & 1 ? -(acc >>> 1) : acc >>> 1);
            acc = 0;
            shift = 0;
          }
        }
        c += v[0];
        if (v.length > 1) {
          src += v[1];
          srcLine += v[2];
        }
        if (l === line && c <= col && v.length > 1) found = `${map.sources[src]}:${srcLine + 1}`;
      }
    }
    return found ? ` (from ${found.replace(/^(\.\.\/)+/, '')})` : '';
  } catch {
    return '';
  }
}
