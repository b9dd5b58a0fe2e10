/**
 * Benchmark: Plinth vs skopeo, measured in the same run on the same local registry.
 *   1. `plinth inspect` vs `skopeo inspect` of a ~100 MB Debian image (wall time, median of N)
 *   2. `plinth copy` vs `skopeo copy`, registry → registry (a fresh destination registry per run,
 *      so every byte moves) and registry → OCI layout directory
 * Prints each median and the ratio plinth/skopeo (below 1.0 = Plinth faster).
 *
 * The image is a real Debian rootfs (`debootstrap --variant=minbase bookworm`, cached in
 * .cache/rootfs-bookworm), made into one gzip layer with umoci. Needs root, debootstrap, umoci,
 * skopeo and docker-registry (./scripts/setup.sh installs them).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLocalRegistry, type LocalRegistry } from '../src/registry/local.js';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const plinth = path.join(root, 'bin', 'plinth.cjs');
const runs = Number(process.env.BENCH_RUNS ?? 5);

async function run(cmd: string, args: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.slice(-500)}`))));
  });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function ensureRootfs(): Promise<string> {
  const dir = path.join(root, '.cache', 'rootfs-bookworm');
  if (existsSync(path.join(dir, 'var/lib/dpkg/status'))) return dir;
  await mkdir(path.dirname(dir), { recursive: true });
  console.log('building the Debian rootfs with debootstrap (about 30 s, once)…');
  const mirror = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
  await execFileP('debootstrap', ['--variant=minbase', 'bookworm', dir, mirror], { maxBuffer: 64 << 20 });
  return dir;
}

async function main(): Promise<void> {
  const rootfs = await ensureRootfs();
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-bench-'));
  const regs: LocalRegistry[] = [];
  try {
    const layout = path.join(work, 'layout');
    await execFileP('umoci', ['init', '--layout', layout]);
    await execFileP('umoci', ['new', '--image', `${layout}:deb`]);
    await execFileP('umoci', ['insert', '--image', `${layout}:deb`, rootfs, '/'], { maxBuffer: 64 << 20 });
    const src = await startLocalRegistry({ dir: path.join(work, 'src-registry') });
    regs.push(src);
    await execFileP('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:deb`, `docker://${src.host}/bench/deb:1`]);
    const info = JSON.parse((await execFileP('node', [plinth, 'inspect', '--format', 'json', `${src.host}/bench/deb:1`])).stdout) as { images: Array<{ size: number; layers: unknown[] }> };
    const size = info.images[0]!.size;
    console.log(`image: ${src.host}/bench/deb:1, ${(size / 1e6).toFixed(1)} MB compressed, ${info.images[0]!.layers.length} layer(s); ${runs} runs each, medians`);

    // 1. inspect
    const pi: number[] = [];
    const si: number[] = [];
    for (let i = 0; i < runs; i++) {
      pi.push(await run('node', [plinth, 'inspect', '--format', 'json', `${src.host}/bench/deb:1`]));
      si.push(await run('skopeo', ['inspect', '--tls-verify=false', `docker://${src.host}/bench/deb:1`]));
    }
    // 2. copy registry → registry (fresh destination each run) and registry → OCI layout
    const pc: number[] = [];
    const sc: number[] = [];
    const pl: number[] = [];
    const sl: number[] = [];
    for (let i = 0; i < runs; i++) {
      const d1 = await startLocalRegistry({ dir: path.join(work, `dst-p-${i}`) });
      const d2 = await startLocalRegistry({ dir: path.join(work, `dst-s-${i}`) });
      regs.push(d1, d2);
      pc.push(await run('node', [plinth, 'copy', '-q', `${src.host}/bench/deb:1`, `${d1.host}/bench/deb:1`]));
      sc.push(await run('skopeo', ['copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src.host}/bench/deb:1`, `docker://${d2.host}/bench/deb:1`]));
      await d1.stop();
      await d2.stop();
      pl.push(await run('node', [plinth, 'copy', '-q', `${src.host}/bench/deb:1`, `oci:${path.join(work, `out-p-${i}`)}:deb`]));
      sl.push(await run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${src.host}/bench/deb:1`, `oci:${path.join(work, `out-s-${i}`)}:deb`]));
      await rm(path.join(work, `out-p-${i}`), { recursive: true, force: true });
      await rm(path.join(work, `out-s-${i}`), { recursive: true, force: true });
      await rm(path.join(work, `dst-p-${i}`), { recursive: true, force: true });
      await rm(path.join(work, `dst-s-${i}`), { recursive: true, force: true });
    }
    const row = (name: string, p: number[], s: number[]) =>
      console.log(`${name.padEnd(34)} plinth ${median(p).toFixed(0).padStart(6)} ms   skopeo ${median(s).toFixed(0).padStart(6)} ms   ratio plinth/skopeo ${(median(p) / median(s)).toFixed(2)}`);
    row('inspect (registry)', pi, si);
    row('copy registry → registry', pc, sc);
    row('copy registry → OCI layout', pl, sl);
    const mbps = (ms: number) => (size / 1e6 / (ms / 1000)).toFixed(0);
    console.log(`throughput: plinth ${mbps(median(pc))} MB/s, skopeo ${mbps(median(sc))} MB/s (registry → registry)`);
  } finally {
    for (const r of regs) await r.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
