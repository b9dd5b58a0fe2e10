#!/usr/bin/env node
'use strict';
// Thin launcher (CommonJS: Node starts it faster than an ES module). Runs the bundled CLI
// (dist/plinth.cjs) through V8's code cache so start-up stays close to Node's own; falls back to
// the unbundled ES modules when the bundle is absent.
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

const bundle = path.join(__dirname, '..', 'dist', 'plinth.cjs');

function loadBundle() {
  const cacheFile = `${bundle}.cache`;
  const code = fs.readFileSync(bundle, 'utf8');
  let cached;
  try {
    cached = fs.readFileSync(cacheFile);
  } catch {}
  const script = new vm.Script(Module.wrap(code), { filename: bundle, cachedData: cached });
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, Module.createRequire(bundle), mod, bundle, path.dirname(bundle));
  if (!cached || script.cachedDataRejected) {
    process.once('exit', () => {
      try {
        const tmp = `${cacheFile}.${process.pid}`;
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, cacheFile);
      } catch {}
    });
  }
  return mod.exports;
}

const load = fs.existsSync(bundle) && !process.env.PLINTH_NO_BUNDLE
  ? Promise.resolve(loadBundle())
  : import('../dist/src/cli/main.js');
load.then(({ main }) => main(process.argv.slice(2))).then((code) => {
  process.exitCode = code;
});
