/**
 * Benchmark: start-up, whole processes, in the same run.
 *   - `plinth --version` and `plinth inspect --format json oci:LAYOUT` against the same Node's
 *     `node -e 0` (the floor: nothing can start faster on this Node);
 *   - `plinth inspect` of a registry image against `skopeo inspect` of the same image;
 *   - the floor for `inspect oci:`: a plain Node script that does the same irreducible work (load
 *     node:crypto and node:fs, read index.json, the manifest and the config, hash and parse them,
 *     print JSON), so what Plinth adds on top of Node itself shows;
 * for the npm launcher (`node bin/plinth.cjs`, what `npx plinth` runs) and, when it has been
 * built (`npm run build:exe`), the single-file executable dist/plinth-linux-x64.
 *
 *   node dist/bench/startup.js            # BENCH_RUNS=30 rounds; commands alternate within a round
 *
 * Prints the median wall time of each command and the ratios (1.00 = as fast as the baseline).
 * Needs skopeo and docker-registry (./scripts/setup.sh installs them).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startLocalRegistry, type LocalRegistry } from '../src/registry/local.js';
import { buildImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { repoRoot } from '../test/helpers/common.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const node = process.execPath;
const launcher = path.join(repoRoot(), 'bin', 'plinth.cjs');
const exe = path.join(repoRoot(), 'dist', 'plinth-linux-x64');

interface Cmd {
  name: string;
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

function once(c: Cmd): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c.file, c.args, { stdio: ['ignore', 'ignore', 'pipe'], env: c.env ?? process.env });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${c.name}: ${c.file} ${c.args.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr).slice(-400)}`);
  return ms;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Run every command RUNS times, alternating within each round (so drift hits all alike); medians. */
function measure(cmds: Cmd[]): Map<string, number> {
  for (const c of cmds) once(c); // warm: page cache, V8 code cache, compile cache
  const times = new Map<string, number[]>(cmds.map((c) => [c.name, []]));
  for (let i = 0; i < RUNS; i++) for (const c of cmds) times.get(c.name)!.push(once(c));
  return new Map([...times].map(([k, v]) => [k, median(v)]));
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-bench-startup-'));
  let reg: LocalRegistry | undefined;
  try {
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }], [{ path: 'app/run', content: 'echo hi\n' }]] });
    const layout = `oci:${path.join(work, 'layout')}:app`;
    await copyImage(img.source, await openDestination(layout));
    reg = await startLocalRegistry({ dir: path.join(work, 'registry') });
    const remote = `${reg.host}/bench/app:1`;
    await copyImage(img.source, await openDestination(remote));

    // The floor: the same files read, verified and parsed by a plain script (no CLI, no validation).
    const floor = path.join(work, 'floor.cjs');
    await writeFile(
      floor,
      `const { createHash } = require('node:crypto'); const fs = require('node:fs'); const p = require('node:path');
const dir = ${JSON.stringify(path.join(work, 'layout'))};
const blob = (d) => { const b = fs.readFileSync(p.join(dir, 'blobs', ...d.split(':'))); if ('sha256:' + createHash('sha256').update(b).digest('hex') !== d) throw new Error(d); return JSON.parse(b); };
const index = JSON.parse(fs.readFileSync(p.join(dir, 'index.json')));
const m = blob(index.manifests[0].digest); const c = blob(m.config.digest);
process.stdout.write(JSON.stringify({ manifest: m, config: c }, null, 2));`,
    );
    const haveExe = existsSync(exe);
    const noNodeEnv = { ...process.env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin'.split(':').filter((d) => !existsSync(path.join(d, 'node'))).join(':') };
    const cmds: Cmd[] = [
      { name: 'node -e 0', file: node, args: ['-e', '0'] },
      { name: 'floor inspect oci', file: node, args: [floor] },
      { name: 'launcher --version', file: node, args: [launcher, '--version'] },
      { name: 'launcher inspect oci', file: node, args: [launcher, 'inspect', '--format', 'json', layout] },
      { name: 'launcher inspect registry', file: node, args: [launcher, 'inspect', '--format', 'json', remote] },
      { name: 'skopeo inspect registry', file: 'skopeo', args: ['inspect', '--tls-verify=false', `docker://${remote}`] },
      { name: 'skopeo inspect oci', file: 'skopeo', args: ['inspect', layout] },
      ...(haveExe
        ? [
            { name: 'exe --version', file: exe, args: ['--version'], env: noNodeEnv },
            { name: 'exe inspect oci', file: exe, args: ['inspect', '--format', 'json', layout], env: noNodeEnv },
            { name: 'exe inspect registry', file: exe, args: ['inspect', '--format', 'json', remote], env: noNodeEnv },
          ]
        : []),
    ];
    console.log(`Node ${process.version}; ${RUNS} rounds, commands alternating; medians of whole-process wall time`);
    const m = measure(cmds);
    for (const [k, v] of m) console.log(`  ${k.padEnd(28)} ${v.toFixed(1).padStart(7)} ms`);
    const ratio = (a: string, b: string) => {
      const x = m.get(a);
      const y = m.get(b);
      if (x !== undefined && y !== undefined) console.log(`ratio ${a} / ${b}: ${(x / y).toFixed(2)}`);
    };
    ratio('launcher --version', 'node -e 0');
    ratio('launcher inspect oci', 'node -e 0');
    ratio('floor inspect oci', 'node -e 0');
    ratio('launcher inspect oci', 'floor inspect oci');
    ratio('launcher inspect registry', 'skopeo inspect registry');
    ratio('launcher inspect oci', 'skopeo inspect oci');
    if (haveExe) {
      ratio('exe --version', 'node -e 0');
      ratio('exe inspect oci', 'node -e 0');
      ratio('exe inspect oci', 'floor inspect oci');
      ratio('exe inspect registry', 'skopeo inspect registry');
    } else {
      console.log('(no dist/plinth-linux-x64: run `npm run build:exe` to measure the single-file executable too)');
    }
  } finally {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
