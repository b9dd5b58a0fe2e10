// Bundles the CLI into one CommonJS file (dist/plinth.cjs): one file to parse instead of ~200
// modules; with V8's code cache (bin/plinth.cjs) and modules initialised only when a command
// needs them (esbuild keeps dynamically imported modules lazy), start-up stays near Node's own.
// The same file is the main script of the single-file executable (scripts/build-exe.mjs).
import { readFileSync } from 'node:fs';
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
  plugins: [lazyChildProcessForCommander],
  // Modules that use import.meta.url (createRequire) get the bundle's own URL.
  banner: { js: "const __plinthImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__plinthImportMetaUrl' },
});

// The launcher runs the bundle with vm.Script, which has no dynamic import(): a builtin loaded with
// `await import('node:…')` would fail at run time ("A dynamic import callback was not specified").
const dynamicBuiltin = /\bimport\(["']node:[a-z_/]+["']\)/.exec(readFileSync('dist/plinth.cjs', 'utf8'));
if (dynamicBuiltin) {
  console.error(`bundle: ${dynamicBuiltin[0]} in dist/plinth.cjs: import builtins statically or with process.getBuiltinModule()`);
  process.exit(1);
}
