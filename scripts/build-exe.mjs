// npm run build:exe: dist/plinth-linux-<arch>, a Node single executable application (SEA) of the
// bundled CLI (dist/plinth.cjs) on the Node that runs this script (Node 24 LTS after setup), with
// V8's code cache built in. Nothing native to unpack: SQLite is node:sqlite, inside Node.
//   node scripts/build-exe.mjs            (after `npm run build`)
// Steps as Node's SEA documentation gives them: write the main script and a config, let
// `node --experimental-sea-config` prepare the blob, copy the node binary, inject the blob with
// postject. Prints the size and the time taken.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const t0 = Date.now();
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dist = path.join(root, 'dist');
const bundle = path.join(dist, 'plinth.cjs');
if (!existsSync(bundle)) {
  console.error('build-exe: dist/plinth.cjs is missing; run `npm run build` first');
  process.exit(1);
}
if (process.platform !== 'linux') {
  console.error(`build-exe: builds Linux executables; this is ${process.platform}`);
  process.exit(1);
}
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  console.error(`build-exe: needs Node >= 22 (this is ${process.version}); run it through npm after ./scripts/setup.sh`);
  process.exit(1);
}
const arch = { x64: 'x64', arm64: 'arm64' }[process.arch] ?? process.arch;
const out = path.join(dist, `plinth-linux-${arch}`);
const work = path.join(dist, 'sea');
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// The main script: the bundle, then a call of its main() (in a SEA the arguments start at argv[2]).
// By default the executable carries a V8 start-up snapshot: the script runs at build time, loads
// the modules of the image, provenance, policy and SBOM commands (warm()) and names main() as what
// starts a run, so a run begins with them initialised. PLINTH_EXE_SNAPSHOT=0 builds it with a
// code cache instead (the bench compares the two).
const snapshot = process.env.PLINTH_EXE_SNAPSHOT !== '0';
const main = path.join(work, 'main.cjs');
// The bundle runs in a function that gives it the CommonJS module variables (a snapshot's main
// script has none of its own).
const start = snapshot
  ? `m.warm(); require('node:v8').startupSnapshot.setDeserializeMainFunction(() => { m.main(process.argv.slice(2)).then((c) => { process.exitCode = c; }); });\n`
  : `m.main(process.argv.slice(2)).then((c) => { process.exitCode = c; });\n`;
writeFileSync(
  main,
  `const m = (() => { const module = { exports: {} }; (function (module, exports, __filename, __dirname) {\n${readFileSync(bundle, 'utf8')}\n})(module, module.exports, process.execPath, require('node:path').dirname(process.execPath)); return module.exports; })();\n${start}`,
);
const blob = path.join(work, 'sea.blob');
const config = path.join(work, 'sea-config.json');
writeFileSync(config, JSON.stringify({ main, output: blob, disableExperimentalSEAWarning: true, useCodeCache: !snapshot, useSnapshot: snapshot }, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: ['ignore', 'ignore', 'pipe'] });

rmSync(out, { force: true });
copyFileSync(process.execPath, out);
chmodSync(out, 0o755);
const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
const inj = spawnSync(process.execPath, [postject, out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { encoding: 'utf8' });
// postject warns about ELF note names it does not know (harmless on Linux); anything else is shown.
const warnings = (inj.stderr ?? '').split('\n').filter((l) => l.trim() && !/Can't find string offset for section name/.test(l));
if (warnings.length) console.error(warnings.join('\n'));
if (inj.status !== 0) {
  console.error(`build-exe: postject failed (${inj.status ?? inj.signal})`);
  process.exit(1);
}
rmSync(work, { recursive: true, force: true });

const version = execFileSync(out, ['--version'], { encoding: 'utf8', env: { PATH: '/nonexistent' } }).trim();
console.log(`build-exe: ${path.relative(root, out)} (${(statSync(out).size / 1e6).toFixed(1)} MB, Plinth ${version}, Node ${process.version}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
