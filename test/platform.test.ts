/**
 * The platform: the runtime Plinth runs on, its version everywhere it is printed, the launcher on
 * an old Node, and the real peer tools the other tests use as oracles.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot, runPlinth } from './helpers/common.js';
import { debianTool, peer, peerPins } from './helpers/peers.js';
import { VERSION } from '../src/version.js';

const root = repoRoot();
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string; engines: { node: string } };

describe('runtime', () => {
  test('the suite runs on Node 24 LTS or newer, and package.json states the floor', () => {
    assert.ok(Number(process.versions.node.split('.')[0]) >= 24, `tests run on Node ${process.version}; ./scripts/setup.sh installs Node 24`);
    assert.equal(pkg.engines.node, '^22.22.2 || >=24.15.0');
    assert.equal(typeof process.versions.sqlite, 'string', 'node:sqlite is built in');
  });

  test('one version everywhere: package.json, the library, --version, plinth version', async () => {
    assert.equal(VERSION, pkg.version);
    const short = await runPlinth(['--version']);
    assert.equal(short.code, 0, short.stderr);
    assert.equal(short.stdout.trim(), pkg.version);
    const verbose = await runPlinth(['--version', '--verbose']);
    assert.equal(verbose.code, 0, verbose.stderr);
    assert.match(verbose.stdout, new RegExp(`^plinth +${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(verbose.stdout, new RegExp(`^node +${process.version.replace(/\./g, '\\.')} `, 'm'));
    const json = await runPlinth(['version', '--format', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const v = JSON.parse(json.stdout) as Record<string, string>;
    assert.equal(v.plinth, pkg.version);
    assert.equal(v.node, process.version);
    assert.equal(v.sqlite, process.versions.sqlite);
    assert.equal(v.runtime, process.env.PLINTH_TEST_BIN ? 'single-file' : 'node');
  });

  test('on a Node older than the floor the launcher re-executes on .cache/node, or says what to install', (t) => {
    const old = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => {
      if (!existsSync(p)) return false;
      const [maj, min] = execFileSync(p, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim().split('.').map(Number);
      return maj! < 22 || (maj === 22 && min! < 22) || maj === 23 || (maj === 24 && min! < 15);
    });
    if (!old) return t.skip('this machine has no Node older than the floor to try');
    const launcher = path.join(root, 'bin', 'plinth.cjs');
    if (existsSync(path.join(root, '.cache', 'node', 'bin', 'node'))) {
      const r = spawnSync(old, [launcher, 'version', '--format', 'json'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(JSON.parse(r.stdout).node, /^v2[4-9]\./);
    }
    // PLINTH_REEXEC marks a run that already re-executed: it must not loop, and says what to do.
    const r = spawnSync(old, [launcher, 'inspect', 'oci:/nonexistent'], { encoding: 'utf8', env: { ...process.env, PLINTH_REEXEC: '1' } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /needs Node\.js 22\.22\.2 \(or 24\.15\) or newer/);
    assert.match(r.stderr, /scripts\/setup\.sh/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });
});

/** Run `fn` with a copy of the launcher in DIR/bin and an empty DIR/dist, removed afterwards. */
function withLauncher(fn: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'plinth-launcher-'));
  try {
    mkdirSync(path.join(dir, 'bin'));
    mkdirSync(path.join(dir, 'dist'));
    copyFileSync(path.join(root, 'bin', 'plinth.cjs'), path.join(dir, 'bin', 'plinth.cjs'));
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('launcher code cache', () => {
  test('a cache made from one bundle is never used for another, even of the same length; runs that exit 1 leave one too', () => {
    withLauncher((dir) => {
      // A stand-in bundle: main() prints a word and exits with the code its argument names.
      const bundle = (word: string) => `'use strict';module.exports.main = async (argv) => { process.stdout.write(${JSON.stringify(word)} + '\\n'); return Number(argv[1] ?? 0); };\n`;
      const run = (code: number) => spawnSync(process.execPath, [path.join(dir, 'bin', 'plinth.cjs'), 'say', String(code)], { encoding: 'utf8' });
      const caches = () => readdirSync(path.join(dir, 'dist')).filter((f) => f.includes('.cache')).sort();
      writeFileSync(path.join(dir, 'dist', 'plinth.cjs'), bundle('alpha'));
      assert.equal(run(0).stdout, 'alpha\n');
      assert.deepEqual(caches(), ['plinth.cjs.say.cache']);
      assert.equal(run(0).stdout, 'alpha\n', 'the cache serves its own bundle');
      // Rebuilt to the same length (V8 alone would take the old cache and run the old code).
      writeFileSync(path.join(dir, 'dist', 'plinth.cjs'), bundle('omega'));
      assert.equal(run(0).stdout, 'omega\n');
      assert.equal(run(0).stdout, 'omega\n');
      // A run that exits 1 with no usable cache leaves a partial one, which a success replaces.
      rmSync(path.join(dir, 'dist', 'plinth.cjs.say.cache'));
      assert.equal(run(1).status, 1);
      assert.deepEqual(caches(), ['plinth.cjs.say.cache-1']);
      writeFileSync(path.join(dir, 'dist', 'plinth.cjs'), bundle('gamma'));
      assert.equal(run(0).stdout, 'gamma\n', 'a partial cache of another bundle is not used either');
      assert.deepEqual(caches(), ['plinth.cjs.say.cache']);
    });
  });
});

describe('launcher command bundles', () => {
  test('a command runs from the bundle the table names for it; help, other words, a bad or missing table or bundle: the full bundle', () => {
    withLauncher((dir) => {
      // Stand-in bundles: main() prints which bundle it is and the words it was given.
      const bundle = (word: string) => `'use strict';module.exports.main = async (argv) => { process.stdout.write(${JSON.stringify(word)} + ' ' + argv.join(' ') + '\\n'); return 0; };\n`;
      writeFileSync(path.join(dir, 'dist', 'plinth.cjs'), bundle('full'));
      writeFileSync(path.join(dir, 'dist', 'plinth-talk.cjs'), bundle('talk'));
      const table = (t: unknown) => writeFileSync(path.join(dir, 'dist', 'plinth-bundles.json'), typeof t === 'string' ? t : JSON.stringify(t));
      const run = (...argv: string[]) => {
        const r = spawnSync(process.execPath, [path.join(dir, 'bin', 'plinth.cjs'), ...argv], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.trim();
      };
      // No table yet: everything from the full bundle.
      assert.equal(run('say', 'hi'), 'full say hi');
      table({ say: 'plinth-talk.cjs', shout: 'plinth-talk.cjs', escape: '../bin/plinth.cjs', gone: 'plinth-gone.cjs', odd: 42 });
      assert.equal(run('say', 'hi'), 'talk say hi');
      assert.equal(run('--debug', 'shout'), 'talk --debug shout');
      assert.equal(run('whisper'), 'full whisper', 'a command the table does not name');
      assert.equal(run('say', '--help'), 'full say --help', 'help lists every command');
      assert.equal(run('escape'), 'full escape', 'a path, not a bundle name');
      assert.equal(run('gone'), 'full gone', 'a bundle that is not there');
      assert.equal(run('odd'), 'full odd');
      assert.equal(run('constructor'), 'full constructor', 'only the table\'s own keys');
      // Each bundle keeps its own code cache.
      assert.deepEqual(readdirSync(path.join(dir, 'dist')).filter((f) => f.includes('.cache') && f.startsWith('plinth-talk.cjs')).sort(), ['plinth-talk.cjs.say.cache', 'plinth-talk.cjs.shout.cache']);
      table('{ not json');
      assert.equal(run('say'), 'full say');
      // A table naming a directory, or a file that is not a CLI (stale or damaged): the full bundle, no stack trace.
      mkdirSync(path.join(dir, 'dist', 'plinth-dir.cjs'));
      writeFileSync(path.join(dir, 'dist', 'plinth-empty.cjs'), '');
      writeFileSync(path.join(dir, 'dist', 'plinth-broken.cjs'), 'throw new Error("half a bundle");');
      table({ dir: 'plinth-dir.cjs', empty: 'plinth-empty.cjs', broken: 'plinth-broken.cjs' });
      assert.equal(run('dir'), 'full dir');
      assert.equal(run('empty'), 'full empty');
      assert.equal(run('broken'), 'full broken');
      // Without the full bundle, no command bundle is used either (a build that failed half-way).
      table({ say: 'plinth-talk.cjs' });
      rmSync(path.join(dir, 'dist', 'plinth.cjs'));
      const r = spawnSync(process.execPath, [path.join(dir, 'bin', 'plinth.cjs'), 'say'], { encoding: 'utf8' });
      assert.doesNotMatch(r.stdout, /talk/);
    });
  });
});

describe('peer tools (oracles and benchmark baselines; Plinth never calls them)', () => {
  // What each prints for its version, and how to ask.
  const versionArgs: Record<string, string[]> = {
    cosign: ['version'],
    crane: ['version'],
    notation: ['version'],
    kubesec: ['version'],
    regctl: ['version', '--format', '{{.VCSTag}}'],
    helm: ['version', '--short'],
  };
  const pins = peerPins();

  test('scripts/peers.sh pins every tool the tests use', () => {
    assert.deepEqual(pins.map((p) => p.name).sort(), Object.keys(versionArgs).sort());
    for (const p of pins) assert.match(p.version, /^v\d+\.\d+\.\d+$/, p.name);
  });

  for (const p of pins) {
    test(`${p.name} ${p.version} runs`, () => {
      const r = spawnSync(peer(p.name), versionArgs[p.name]!, { encoding: 'utf8', env: { ...process.env, HOME: process.env.HOME ?? '/root' } });
      assert.equal(r.status, 0, `${p.name}: ${r.stderr}`);
      const out = `${r.stdout}${r.stderr}`;
      // helm's short version carries major.minor unless built with its ldflags; kubesec's needs
      // ldflags to know its version at all; the others report the module version.
      if (p.name === 'helm') assert.match(out, new RegExp(`^${p.version.split('.').slice(0, 2).join('\\.')}`));
      else if (p.name === 'kubesec') assert.match(out, /version/);
      else assert.ok(out.includes(p.version), `${p.name} printed ${out.slice(0, 200)}`);
    });
  }

  test('notary and notary-server (Debian) run', () => {
    const client = spawnSync(debianTool('notary', 'notary'), ['version'], { encoding: 'utf8' });
    assert.equal(client.status, 0, client.stderr);
    assert.match(client.stdout, /notary/);
    const server = spawnSync(debianTool('notary-server', 'notary'), ['--version'], { encoding: 'utf8' });
    assert.equal(server.status, 0, server.stderr);
    assert.match(`${server.stdout}${server.stderr}`, /notary-server/);
  });
});
