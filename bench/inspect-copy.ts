/**
 * Benchmark: Plinth vs skopeo and crane, measured in the same run on the same local registry.
 *   1. `plinth inspect` vs `skopeo inspect` (and `crane config`) of a ~100 MB Debian image
 *   2. `plinth copy` vs `skopeo copy` and `crane copy`, registry → registry (a fresh destination
 *      registry per run, so every byte moves) and registry → OCI layout directory (crane pull
 *      --format oci)
 * Prints each median and the ratios plinth/skopeo and plinth/crane (below 1.0 = Plinth faster).
 * crane comes from scripts/peers.sh ($PLINTH_PEERS_DIR/bin); the order of the three tools rotates
 * from run to run.
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
import { peer } from '../test/helpers/peers.js';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const plinth = path.join(root, 'bin', 'plinth.cjs');
const runs = Number(process.env.BENCH_RUNS ?? 5);
const node = process.execPath;

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
    const info = JSON.parse((await execFileP(node, [plinth, 'inspect', '--format', 'json', `${src.host}/bench/deb:1`])).stdout) as { images: Array<{ size: number; layers: unknown[] }> };
    const size = info.images[0]!.size;
    console.log(`image: ${src.host}/bench/deb:1, ${(size / 1e6).toFixed(1)} MB compressed, ${info.images[0]!.layers.length} layer(s); ${runs} runs each, medians`);

    const crane = peer('crane');
    // 1. inspect
    const pi: number[] = [];
    const si: number[] = [];
    const ci: number[] = [];
    for (let i = 0; i < runs; i++) {
      pi.push(await run(node, [plinth, 'inspect', '--format', 'json', `${src.host}/bench/deb:1`]));
      si.push(await run('skopeo', ['inspect', '--tls-verify=false', `docker://${src.host}/bench/deb:1`]));
      ci.push(await run(crane, ['config', '--insecure', `${src.host}/bench/deb:1`]));
    }
    // 2. copy registry → registry (fresh destination each run) and registry → OCI layout
    const pc: number[] = [];
    const sc: number[] = [];
    const cc: number[] = [];
    const pl: number[] = [];
    const sl: number[] = [];
    const cl: number[] = [];
    for (let i = 0; i < runs; i++) {
      const jobs: Array<() => Promise<void>> = [
        async () => {
          const d = await startLocalRegistry({ dir: path.join(work, `dst-p-${i}`) });
          regs.push(d);
          pc.push(await run(node, [plinth, 'copy', '-q', `${src.host}/bench/deb:1`, `${d.host}/bench/deb:1`]));
          await d.stop();
          pl.push(await run(node, [plinth, 'copy', '-q', `${src.host}/bench/deb:1`, `oci:${path.join(work, `out-p-${i}`)}:deb`]));
        },
        async () => {
          const d = await startLocalRegistry({ dir: path.join(work, `dst-s-${i}`) });
          regs.push(d);
          sc.push(await run('skopeo', ['copy', '-q', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src.host}/bench/deb:1`, `docker://${d.host}/bench/deb:1`]));
          await d.stop();
          sl.push(await run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${src.host}/bench/deb:1`, `oci:${path.join(work, `out-s-${i}`)}:deb`]));
        },
        async () => {
          const d = await startLocalRegistry({ dir: path.join(work, `dst-c-${i}`) });
          regs.push(d);
          cc.push(await run(crane, ['copy', '--insecure', `${src.host}/bench/deb:1`, `${d.host}/bench/deb:1`]));
          await d.stop();
          cl.push(await run(crane, ['pull', '--insecure', '--format', 'oci', `${src.host}/bench/deb:1`, path.join(work, `out-c-${i}`)]));
        },
      ];
      for (let k = 0; k < jobs.length; k++) await jobs[(i + k) % jobs.length]!();
      for (const d of ['out-p', 'out-s', 'out-c', 'dst-p', 'dst-s', 'dst-c']) await rm(path.join(work, `${d}-${i}`), { recursive: true, force: true });
    }
    const row = (name: string, p: number[], s: number[], c: number[]) =>
      console.log(
        `${name.padEnd(28)} plinth ${median(p).toFixed(0).padStart(6)} ms   skopeo ${median(s).toFixed(0).padStart(6)} ms   crane ${median(c).toFixed(0).padStart(6)} ms   ` +
          `plinth/skopeo ${(median(p) / median(s)).toFixed(2)}   plinth/crane ${(median(p) / median(c)).toFixed(2)}`,
      );
    row('inspect (registry)', pi, si, ci);
    row('copy registry → registry', pc, sc, cc);
    row('copy registry → OCI layout', pl, sl, cl);
    const mbps = (ms: number) => (size / 1e6 / (ms / 1000)).toFixed(0);
    console.log(`throughput: plinth ${mbps(median(pc))} MB/s, skopeo ${mbps(median(sc))} MB/s, crane ${mbps(median(cc))} MB/s (registry → registry)`);
  } finally {
    for (const r of regs) await r.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
