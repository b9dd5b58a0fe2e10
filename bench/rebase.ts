/**
 * Benchmark: `plinth rebase` against the real `crane rebase` on the same inputs in the same run:
 * the debootstrap bookworm rootfs imported as a golden base twice (two versions: the second with
 * another SOURCE_DATE_EPOCH, so another layer), an app of two layers on the first, all in a local
 * registry. Alternating rounds, medians; prints the ratio (goal ≤ 1.0). Without the debootstrap
 * tree (setup builds it as root), small synthetic bases are used and the run says so.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLocalRegistry } from '../src/registry/local.js';
import { importRootfs } from '../src/golden/import.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination, openSource } from '../src/source/open.js';
import { resolveRoot, selectImages, readConfig } from '../src/source/image.js';
import { MemorySource, makeLayerTar } from '../src/source/memory.js';
import { digestOf } from '../src/oci/digest.js';
import { gzipSync } from 'node:zlib';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const rootfs = path.join(root, '.cache', 'rootfs-bookworm');
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const crane = path.join(process.env.PLINTH_PEERS_DIR ?? path.join(os.homedir(), '.cache', 'plinth', 'peers'), 'bin', 'crane');

async function main(): Promise<void> {
  if (!existsSync(crane)) throw new Error(`crane is not installed (${crane}): run scripts/peers.sh`);
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-bench-rebase-'));
  const reg = await startLocalRegistry({ dir: path.join(work, 'registry') });
  try {
    const real = existsSync(path.join(rootfs, 'var/lib/dpkg/status'));
    const input = real ? path.join(work, 'bookworm.tar') : path.join(work, 'tiny');
    if (real) await execFileP('tar', ['-C', rootfs, '-cf', input, '.']);
    else {
      await execFileP('mkdir', ['-p', path.join(input, 'etc')]);
      await execFileP('sh', ['-c', `printf 'ID=debian\\nVERSION_ID="12"\\n' > ${input}/etc/os-release`]);
    }
    const p = { os: 'linux', architecture: 'amd64' };
    const v1 = await importRootfs([{ platform: p, file: input }], { name: `${reg.host}/base/debian`, version: '12.1' });
    const v2 = await importRootfs([{ platform: p, file: input }], { name: `${reg.host}/base/debian`, version: '12.2', sourceDateEpoch: 315532800 });
    await copyImage(v1.source, await openDestination(`${reg.host}/base/debian:12.1`));
    await copyImage(v2.source, await openDestination(`${reg.host}/base/debian:12.2`));
    // The app: the base's layer plus two of its own.
    const src = await openSource(`${reg.host}/base/debian:12.1`);
    const r0 = await resolveRoot(src);
    const [img] = await selectImages(src, r0, 'all');
    const { config } = await readConfig(src, img!);
    const m = new MemorySource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) });
    const layers = [...img!.manifest.layers];
    const diffIds = [...config.rootfs!.diff_ids];
    for (const [i, files] of [[{ path: 'app/server', content: Buffer.alloc(1 << 20, 7) }], [{ path: 'app/config.yaml', content: 'port: 8080\n' }]].entries()) {
      const raw = await makeLayerTar(files);
      const gz = gzipSync(raw);
      layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: m.add(gz), size: gz.length });
      diffIds.push(digestOf(raw));
      void i;
    }
    const cfg = Buffer.from(JSON.stringify({ ...config, config: { ...config.config, Entrypoint: ['/app/server'] }, rootfs: { type: 'layers', diff_ids: diffIds }, history: [...(config.history ?? []), { created_by: 'COPY server' }, { created_by: 'COPY config.yaml' }] }));
    const mf = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: m.add(cfg), size: cfg.length }, layers }));
    m.root = { descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.add(mf), size: mf.length }, bytes: mf };
    // The base layer is already in base/debian; mount it into team/app.
    const { RegistryClient } = await import('../src/registry/client.js');
    const c = new RegistryClient(reg.host, {});
    await c.mountBlob('team/app', img!.manifest.layers[0]!.digest, 'base/debian');
    c.close();
    await src.close();
    await copyImage(m, await openDestination(`${reg.host}/team/app:1`));

    // BENCH_BIN=dist/plinth-linux-x64: the single-file executable (V8 snapshot) instead of node bin/plinth.cjs.
    const bin = process.env.BENCH_BIN ? [path.resolve(root, process.env.BENCH_BIN)] : [process.execPath, path.join(root, 'bin', 'plinth.cjs')];
    const plinthCmd = [...bin, 'rebase', `${reg.host}/team/app:1`, '--old-base', `${reg.host}/base/debian:12.1`, '--new-base', `${reg.host}/base/debian:12.2`];
    const craneCmd = [crane, 'rebase', `${reg.host}/team/app:1`, '--old_base', `${reg.host}/base/debian:12.1`, '--new_base', `${reg.host}/base/debian:12.2`, '--insecure'];
    const time = async (cmd: string[]) => {
      const t = process.hrtime.bigint();
      await execFileP(cmd[0]!, cmd.slice(1));
      return Number(process.hrtime.bigint() - t) / 1e6;
    };
    // The Node floor: a plain Node script making the same requests, nothing checked (bench/floor/rebase.cjs).
    const floorCmd = [process.execPath, path.join(root, 'bench', 'floor', 'rebase.cjs'), `${reg.host}/team/app:1`, `${reg.host}/base/debian:12.1`, `${reg.host}/base/debian:12.2`];
    const ps: number[] = [];
    const cs: number[] = [];
    const fs: number[] = [];
    const ns: number[] = [];
    await time([...plinthCmd, '--tag', `${reg.host}/team/app:warm`]);
    await time([...floorCmd, 'floor-warm']);
    for (let i = 0; i < rounds; i++) {
      ps.push(await time([...plinthCmd, '--tag', `${reg.host}/team/app:p${i}`]));
      cs.push(await time([...craneCmd, '--tag', `${reg.host}/team/app:c${i}`]));
      fs.push(await time([...floorCmd, `f${i}`]));
      ns.push(await time([process.execPath, '-e', '0']));
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    if (process.env.BENCH_BIN) console.log(`plinth = ${process.env.BENCH_BIN}`);
    console.log(`rebase of an app (${real ? 'the debootstrap bookworm base' : 'a tiny synthetic base: no .cache/rootfs-bookworm'} + 2 layers) onto a new base version, local registry, ${rounds} alternating rounds, medians`);
    console.log(`  plinth rebase   ${med(ps).toFixed(0)} ms  (rounds ${ps.map((x) => x.toFixed(0)).join(', ')})`);
    console.log(`  crane rebase    ${med(cs).toFixed(0)} ms  (rounds ${cs.map((x) => x.toFixed(0)).join(', ')})`);
    console.log(`  node floor      ${med(fs).toFixed(0)} ms  (rounds ${fs.map((x) => x.toFixed(0)).join(', ')}; bench/floor/rebase.cjs: plain Node, the same requests, nothing checked)`);
    console.log(`  node -e 0       ${med(ns).toFixed(0)} ms  (the runtime's own start, a floor no Node CLI goes under)`);
    console.log(`  ratio plinth/crane ${(med(ps) / med(cs)).toFixed(2)} (goal ≤ 1.0); node floor/crane ${(med(fs) / med(cs)).toFixed(2)}; plinth/node floor ${(med(ps) / med(fs)).toFixed(2)}; plinth minus node's start ${(med(ps) - med(ns)).toFixed(0)} ms vs crane ${med(cs).toFixed(0)} ms`);
  } finally {
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
