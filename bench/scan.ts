/**
 * Benchmark: scanning the debootstrap image (one ~95 MB gzip layer) against the physical limit of
 * reading it — `gzip -dc` of its layer blobs to /dev/null — measured in the same run.
 * Prints both medians and the ratio (goal: ≤ 1.5). Needs .cache/deb-layout (./scripts/setup.sh).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const layout = path.join(root, '.cache', 'deb-layout');
const runs = Number(process.env.BENCH_RUNS ?? 5);

function time(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (!existsSync(path.join(layout, 'index.json'))) throw new Error(`${layout} is missing: run ./scripts/setup.sh`);
  const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse(readFileSync(path.join(layout, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: Array<{ digest: string; size: number }> };
  const blobs = manifest.layers.map((l) => path.join(layout, 'blobs/sha256', l.digest.slice(7)));
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-bench-scan-'));
  try {
    // A database with advisories for every source package of the image (so matching does real work).
    const srcs = execFileSync('dpkg-query', ['-W', '-f=${source:Package}\n', `--admindir=${path.join(root, '.cache/rootfs-bookworm/var/lib/dpkg')}`], { encoding: 'utf8' }).trim().split('\n');
    const dir = path.join(work, 'osv');
    await (await import('node:fs/promises')).mkdir(dir);
    let n = 0;
    for (const s of new Set(srcs)) {
      for (let i = 0; i < 20; i++) {
        const id = `BENCH-${s}-${i}`;
        await writeFile(path.join(dir, `${n++}.json`), JSON.stringify({ id, modified: '2024-01-01T00:00:00Z', affected: [{ package: { ecosystem: 'Debian:12', name: s }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: i % 2 ? '0.1' : '99:1' }] }] }] }));
      }
    }
    const db = path.join(work, 'vuln.db');
    const store = openStore(db);
    await importPaths(store, [dir]);
    store.close();
    const plinth = path.join(root, 'bin', 'plinth.cjs');
    const scanT: number[] = [];
    const gzipT: number[] = [];
    let findings = 0;
    for (let i = 0; i < runs; i++) {
      gzipT.push(time(() => { for (const b of blobs) spawnSync('sh', ['-c', `gzip -dc '${b}' > /dev/null`]); }));
      scanT.push(time(() => {
        const r = spawnSync(process.execPath, [plinth, 'scan', `oci:${layout}:deb`, '--db', db, '--format', 'json'], { maxBuffer: 256 << 20 });
        if (r.status !== 0) throw new Error(`plinth scan failed: ${r.stderr}`);
        findings = (JSON.parse(r.stdout.toString()) as { summary: { total: number } }).summary.total;
      }));
    }
    const size = manifest.layers.reduce((a, l) => a + l.size, 0);
    console.log(`image: oci:${layout}:deb, ${(size / 1e6).toFixed(1)} MB compressed in ${blobs.length} layer(s); db: ${n} advisories; ${findings} findings; ${runs} runs, medians`);
    console.log(`plinth scan (whole CLI run)   ${median(scanT).toFixed(0).padStart(6)} ms`);
    console.log(`gzip -dc of the layers        ${median(gzipT).toFixed(0).padStart(6)} ms`);
    console.log(`ratio scan / gzip -dc         ${(median(scanT) / median(gzipT)).toFixed(2)}   (goal ≤ 1.5)`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
