// Bundles the CLI into one CommonJS file (dist/plinth.cjs): one file to parse instead of ~200
// modules, which with V8's code cache (see bin/plinth.js) cuts start-up time roughly in half.
import { build } from 'esbuild';
await build({
  entryPoints: ['dist/src/cli/main.js'],
  bundle: true,
  platform: 'node',
  target: 'node22.12',
  format: 'cjs',
  minify: true,
  sourcemap: true,
  outfile: 'dist/plinth.cjs',
  logLevel: 'warning',
  // Modules that use import.meta.url (createRequire) get the bundle's own URL.
  banner: { js: "const __plinthImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__plinthImportMetaUrl' },
});
