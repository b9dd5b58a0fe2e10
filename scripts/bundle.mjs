// Bundles the CLI into one CommonJS file (dist/plinth.cjs): one file to parse instead of ~200
// modules; with V8's code cache (bin/plinth.cjs) and modules initialised only when a command
// needs them (esbuild keeps dynamically imported modules lazy), start-up stays near Node's own.
// The same file is the main script of the single-file executable (scripts/build-exe.mjs).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { build } from 'esbuild';

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
const closureWrapped = {
  name: 'closure-wrapped',
  setup(b) {
    const names = Object.keys(CLOSURE_WRAPPED).map((n) => n.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&'));
    b.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => (args.namespace === 'file' ? { path: args.path, namespace: 'plinth-cjs' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'plinth-cjs' }, async (args) => {
      const r = await build({
        entryPoints: [args.path],
        bundle: true,
        platform: 'node',
        target: 'node22.22',
        format: 'cjs',
        write: false,
        logLevel: 'warning',
        external: CLOSURE_WRAPPED[args.path],
      });
      return { contents: r.outputFiles[0].text, loader: 'js', resolveDir: process.cwd() };
    });
  },
};

await build({
  entryPoints: ['dist/src/cli/main.js'],
  bundle: true,
  platform: 'node',
  target: 'node22.22',
  format: 'cjs',
  minify: true,
  sourcemap: true,
  outfile: 'dist/plinth.cjs',
  logLevel: 'warning',
  plugins: [lazyChildProcessForCommander, closureWrapped],
  // Modules that use import.meta.url (createRequire) get the bundle's own URL.
  banner: { js: "const __plinthImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__plinthImportMetaUrl' },
});

// The launcher runs the bundle with vm.Script, which has no dynamic import(): a builtin loaded with
// `await import('node:…')` would fail at run time ("A dynamic import callback was not specified").
const text = readFileSync('dist/plinth.cjs', 'utf8');
const dynamicBuiltin = /\bimport\(["']node:[a-z_/]+["']\)/.exec(text);
if (dynamicBuiltin) {
  console.error(`bundle: ${dynamicBuiltin[0]} in dist/plinth.cjs: import builtins statically or with process.getBuiltinModule()`);
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
  console.error(`bundle: non-ASCII character U+${nonAscii[0].charCodeAt(0).toString(16).padStart(4, '0')} at dist/plinth.cjs:${line}:${col}${where(line - 1, col - 1)}: write it as \\u${nonAscii[0].charCodeAt(0).toString(16).padStart(4, '0')} (or an HTML entity) in the source`);
  refuse();
}

// The launcher's code caches (bin/plinth.cjs) belong to the bundle they were made from; V8 checks
// little more than the source's length, so a new bundle starts without them.
for (const f of readdirSync('dist')) if (/^plinth\.cjs\..+\.cache(-1)?$/.test(f)) rmSync(`dist/${f}`, { force: true });

/** A refused bundle is removed (the launcher then runs the unbundled modules), and the build fails. */
function refuse() {
  rmSync('dist/plinth.cjs', { force: true });
  rmSync('dist/plinth.cjs.map', { force: true });
  process.exit(1);
}

/** " (from SOURCE:LINE)" for a 0-based position in dist/plinth.cjs, through its source map. */
function where(line, col) {
  try {
    const map = JSON.parse(readFileSync('dist/plinth.cjs.map', 'utf8'));
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
