/**
 * The single-file executable (npm run build:exe, which `npm test` runs first):
 * dist/plinth-linux-<arch> works with no Node anywhere on PATH, and passes the CLI tests.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './helpers/common.js';
import { buildImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';

const exe = path.join(repoRoot(), 'dist', `plinth-linux-${process.arch}`);
if (!existsSync(exe)) throw new Error(`${exe} is missing: run \`npm run build:exe\` (npm test runs it first)`);

test('the executable inspects an OCI layout with no Node on PATH and an empty environment', async () => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-exe-'));
  try {
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }]] });
    const layout = `oci:${path.join(work, 'layout')}:app`;
    await copyImage(img.source, await openDestination(layout));
    const r = spawnSync(exe, ['inspect', '--format', 'json', layout], { encoding: 'utf8', env: { PATH: '/nonexistent' }, cwd: work });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).digest, img.descriptor.digest);
    const v = spawnSync(exe, ['version', '--format', 'json'], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(JSON.parse(v.stdout).runtime, 'single-file');
    assert.equal(JSON.parse(v.stdout).node, process.version, 'built on the Node that runs the tests');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

process.env.PLINTH_TEST_BIN = exe;
await import('./cli.test.js');
await import('./platform.test.js');
