/**
 * Benchmark: `plinth golden import` of the debootstrap bookworm rootfs (setup builds it in
 * .cache/rootfs-bookworm) packed as a tarball, against the same tree through `tar -c | gzip -6`
 * (the physical floor of making one gzip layer) and through `umoci insert` (a peer that builds an
 * OCI image from a directory), in the same run, alternating, medians of BENCH_ROUNDS (default 3).
 * Prints wall time, peak RSS of plinth, and the ratios (goal: ≤ 1.2× the gzip pipeline).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const rootfs = path.join(root, '.cache', 'rootfs-bookworm');
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);

/** Wall seconds and peak RSS (KiB, from GNU time when present) of a shell command. */
async function timed(cmd: string): Promise<{ s: number; rssKiB: number | null }> {
  const useTime = existsSync('/usr/bin/time');
  const t = process.hrtime.bigint();
  const { stderr } = await execFileP(useTime ? '/usr/bin/time' : 'sh', useTime ? ['-f', 'RSS %M', 'sh', '-c', cmd] : ['-c', cmd], { maxBuffer: 1 << 24 });
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  const m = /RSS (\d+)/.exec(stderr);
  return { s, rssKiB: m ? Number(m[1]) : null };
}

async function main(): Promise<void> {
  if (!existsSync(path.join(rootfs, 'var/lib/dpkg/status'))) {
    console.log('bench golden: no .cache/rootfs-bookworm (run ./scripts/setup.sh as root); skipped');
    return;
  }
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-bench-golden-'));
  try {
    const tarball = path.join(work, 'bookworm.tar');
    await execFileP('tar', ['-C', rootfs, '-cf', tarball, '.']);
    const { stdout: du } = await execFileP('du', ['-sb', tarball]);
    const plinth = `${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(root, 'bin', 'plinth.cjs'))}`;
    const runs = {
      plinth: (i: number) => `SOURCE_DATE_EPOCH= ${plinth} golden import ${tarball} --name bench/debian --version 12 --output oci:${work}/p${i}:12 --format json > /dev/null`,
      gzip: (i: number) => `tar -C ${rootfs} -cf - . | gzip -6 > ${work}/g${i}.tar.gz`,
      umoci: (i: number) => `umoci init --layout ${work}/u${i} && umoci new --image ${work}/u${i}:x && umoci insert --image ${work}/u${i}:x ${rootfs} / > /dev/null`,
    };
    const have = { umoci: existsSync('/usr/bin/umoci') || existsSync('/usr/sbin/umoci') };
    const res: Record<string, Array<{ s: number; rssKiB: number | null }>> = { plinth: [], gzip: [], umoci: [] };
    for (let i = 0; i < rounds; i++) {
      for (const k of ['plinth', 'gzip', 'umoci'] as const) {
        if (k === 'umoci' && !have.umoci) continue;
        res[k]!.push(await timed(runs[k](i)));
        await rm(path.join(work, `${k[0]}${i}`), { recursive: true, force: true });
        await rm(path.join(work, `g${i}.tar.gz`), { force: true });
      }
    }
    const med = (xs: Array<{ s: number }>) => xs.map((x) => x.s).sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    const p = med(res.plinth!);
    const g = med(res.gzip!);
    const u = med(res.umoci!);
    const rss = Math.max(...res.plinth!.map((r) => r.rssKiB ?? 0));
    console.log(`golden import of the debootstrap bookworm rootfs (${(Number(du.split('\t')[0]) / 1e6).toFixed(0)} MB tarball), ${rounds} alternating rounds, medians`);
    console.log(`  plinth golden import        ${p.toFixed(2)} s  (peak RSS ${(rss / 1024).toFixed(0)} MiB; rounds ${res.plinth!.map((r) => r.s.toFixed(2)).join(', ')})`);
    console.log(`  tar -c | gzip -6            ${g.toFixed(2)} s  (rounds ${res.gzip!.map((r) => r.s.toFixed(2)).join(', ')})`);
    if (have.umoci) console.log(`  umoci insert (directory)    ${u.toFixed(2)} s  (rounds ${res.umoci!.map((r) => r.s.toFixed(2)).join(', ')})`);
    console.log(`  ratio plinth / gzip pipeline ${(p / g).toFixed(2)} (goal ≤ 1.2)${have.umoci ? `; plinth / umoci ${(p / u).toFixed(2)}` : ''}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
