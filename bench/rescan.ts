/**
 * Benchmark: the day-2 re-match of a stored fleet after an advisory update, on both stores.
 *
 *   node dist/bench/rescan.js                  # 1,000 images, 100,000 packages, 1,000,000 advisories
 *   BENCH_ADVISORIES=200000 BENCH_IMAGES=200 node dist/bench/rescan.js
 *   BENCH_STORES=sqlite node dist/bench/rescan.js      # skip PostgreSQL
 *   BENCH_PARALLEL_SEED=1 node dist/bench/rescan.js    # the first full re-match shared with workers too
 *
 * A synthetic Debian:12 advisory database (as bench/match.ts makes it) and a fleet as fleets are:
 * images share a few bases (60 packages each) and add 40 packages of their own. For each store
 * (an SQLite file; a real PostgreSQL started on loopback from Debian's binaries, as the tests do):
 *
 *   seed         the first full re-match (every finding is new: writes them all)
 *   full         a full re-match with nothing changed (reads, matches, compares; writes nothing)
 *   incremental  100 new advisories imported, then the incremental re-match
 *   plain SELECT the physical limit in the same run: the indexed SELECT of bench/match.ts over the
 *                fleet's distinct (ecosystem, source) keys, rows discarded
 *
 *   shared       the full re-match again, shared with worker processes as plinth watch does by default
 *
 * Goals (issue 14): full ≤ 2 s, incremental ≤ 100 ms. Prints each beside the plain SELECT loop.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoredAdvisory } from '../src/vuln/osv.js';
import { openStore, type VulnStore } from '../src/vuln/store.js';
import { pragma, rawStatement } from '../src/util/sqlite.js';
import { MetaStore, type PackageIndexEntry } from '../src/store/store.js';
import { rematch } from '../src/watch/rematch.js';
import { mulberry32 } from '../test/helpers/common.js';
import { startPostgres } from '../test/helpers/postgres.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ADVISORIES = Number(process.env.BENCH_ADVISORIES ?? 1_000_000);
const IMAGES = Number(process.env.BENCH_IMAGES ?? 1000);
const BASES = 10;
const BASE_PKGS = 60;
const OWN_PKGS = 40;
const PER_SOURCE = 20;
const ECOSYSTEM = 'Debian:12';
const STORES = (process.env.BENCH_STORES ?? 'sqlite,postgres').split(',');

function installedVersion(s: number): string {
  return `2.${20 + (s % 30)}.${s % 7}-1`;
}

function advisory(i: number, src: string, r: () => number): StoredAdvisory {
  const shape = r();
  const rows: StoredAdvisory['rows'] =
    shape < 0.8
      ? [{ package: src, kind: 'range', introduced: '0', fixed: `${1 + Math.floor(r() * 2)}.${Math.floor(r() * 20)}.${Math.floor(r() * 10)}-1`, urgency: 'low' }]
      : shape < 0.85
        ? [{ package: src, kind: 'range', introduced: '0', fixed: `2.${60 + Math.floor(r() * 20)}.0-1`, urgency: 'medium' }]
        : [{ package: src, kind: 'range', introduced: '0', urgency: 'high' }];
  return { id: `BENCH-${i}`, ecosystem: ECOSYSTEM, origin: 'osv', modified: '2024-01-01T00:00:00Z', published: '2023-06-01T00:00:00Z', withdrawn: null, aliases: [`CVE-2024-${100000 + i}`], related: [], summary: `synthetic advisory ${i}`, details: null, severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }], textSeverity: null, rows };
}

const src = (s: number) => `src${s.toString().padStart(6, '0')}`;

async function seedFleet(store: MetaStore, sources: number): Promise<{ packages: number; keys: string[] }> {
  const r = mulberry32(7);
  const bases: number[][] = Array.from({ length: BASES }, () => Array.from({ length: BASE_PKGS }, () => Math.floor(r() * sources)));
  let packages = 0;
  const keys = new Set<string>();
  for (let i = 0; i < IMAGES; i++) {
    const own = Array.from({ length: OWN_PKGS }, () => Math.floor(r() * sources));
    const all = [...bases[i % BASES]!, ...own];
    const bySource = new Map<string, PackageIndexEntry>();
    all.forEach((s, k) => {
      const name = src(s);
      keys.add(name);
      const e = bySource.get(name) ?? { ecosystem: ECOSYSTEM, source: name, packages: [] };
      e.packages.push({ name: `bin-${s}-${k}`, version: installedVersion(s), type: 'deb', source: name, origin: k < BASE_PKGS ? 'base' : 'image', layerIndex: k < BASE_PKGS ? 0 : 1 });
      bySource.set(name, e);
    });
    packages += all.length;
    const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
    await store.recordImage({ image: { repository: `registry.example/fleet/app-${i}`, registry: 'registry.example', tag: null, digest }, source: 'bench', ecosystem: ECOSYSTEM, packageCount: all.length, packageIndex: [...bySource.values()] });
  }
  return { packages, keys: [...keys] };
}

function plainSelect(db: VulnStore, keys: string[]): number {
  const select = rawStatement(db.db, 'SELECT advisory, kind, introduced, fixed, last_affected, lim, data, urgency FROM affected WHERE ecosystem = ? AND package = ? AND withdrawn = 0');
  const t0 = performance.now();
  for (const k of keys) select.all(ECOSYSTEM, k);
  return performance.now() - t0;
}

/** `fn` alone under the CPU profiler when BENCH_PROFILE is set: PREFIX-NAME.cpuprofile. */
async function profiled<T>(name: string, fn: () => Promise<T>): Promise<T> {
  if (!process.env.BENCH_PROFILE) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(`${process.env.BENCH_PROFILE}-${name}.cpuprofile`, JSON.stringify(profile));
    session.disconnect();
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-bench-rescan-'));
  const pg = STORES.includes('postgres') ? await startPostgres() : undefined;
  try {
    const dbPath = join(dir, 'vuln.db');
    const db = openStore(dbPath);
    const sources = Math.max(1, Math.ceil(ADVISORIES / PER_SOURCE));
    const r = mulberry32(42);
    let t0 = performance.now();
    db.transactionSync(() => {
      for (let i = 0; i < ADVISORIES; i++) db.putAdvisories([advisory(i, src(i % sources), r)]);
    });
    pragma(db.db, 'wal_checkpoint(TRUNCATE)');
    db.db.exec('ANALYZE');
    console.log(`advisories: ${ADVISORIES.toLocaleString()} in ${((performance.now() - t0) / 1000).toFixed(1)} s; fleet: ${IMAGES.toLocaleString()} images × ${BASE_PKGS + OWN_PKGS} packages (${BASES} shared bases)`);
    let extra = ADVISORIES;
    for (const kind of STORES) {
      const target = kind === 'postgres' ? await pg!.createDatabase() : join(dir, `store-${kind}.db`);
      const store = await MetaStore.open(target);
      try {
        t0 = performance.now();
        const fleet = await seedFleet(store, sources);
        const seedStore = performance.now() - t0;
        const workers = Math.min(7, Math.max(1, availableParallelism() - 1));
        const parallel = { command: [process.execPath, join(ROOT, 'bin', 'plinth.cjs')], workers };
        // BENCH_PARALLEL_SEED=1: the first full re-match shared with workers too (every unit's findings come back).
        const seed = await profiled(`${kind}-seed`, () => rematch(store, db, { mode: 'full', ...(process.env.BENCH_PARALLEL_SEED ? { parallel } : {}) }));
        // BENCH_PROFILE=prefix: CPU profiles of the seed, the full and the incremental re-match (chrome://inspect, speedscope).
        const full = await profiled(`${kind}`, () => rematch(store, db, { mode: 'full' }));
        // What plinth watch does by default: the full re-match shared with one fewer worker
        // processes than the CPUs (plinth __match-units), this process matching its share too.
        const shared = await rematch(store, db, { mode: 'full', parallel });
        const plain = plainSelect(db, fleet.keys);
        // 100 new advisories on packages the fleet has.
        const fr = mulberry32(99);
        db.transactionSync(() => {
          for (let i = 0; i < 100; i++) db.putAdvisories([{ ...advisory(extra + i, fleet.keys[Math.floor(fr() * fleet.keys.length)]!, fr), rows: [{ package: fleet.keys[Math.floor(fr() * fleet.keys.length)]!, kind: 'range', introduced: '0', urgency: 'high' }] }]);
        });
        extra += 100;
        const inc = await profiled(`${kind}-incremental`, () => rematch(store, db, {}));
        console.log(`\n[${kind}] fleet stored in ${(seedStore / 1000).toFixed(1)} s: ${fleet.packages.toLocaleString()} packages, ${fleet.keys.length.toLocaleString()} distinct source packages`);
        console.log(`  seed (first full re-match, ${seed.newFindings.toLocaleString()} findings written): ${seed.ms.toFixed(0)} ms`);
        console.log(`  full re-match, nothing changed: ${full.ms.toFixed(0)} ms (${full.images} images, ${full.units.toLocaleString()} units, ${full.lookups.toLocaleString()} lookups) — goal ≤ 2000 ms; phases ${JSON.stringify(full.phases)}`);
        console.log(`  full re-match, nothing changed, shared with ${workers} worker process(es) (${shared.parallel ?? 1} answered; plinth watch's default): ${shared.ms.toFixed(0)} ms — goal ≤ 2000 ms; phases ${JSON.stringify(shared.phases)}`);
        console.log(`  plain indexed SELECT loop over the same keys: ${plain.toFixed(0)} ms → ratio full / plain SELECT: ${(full.ms / plain).toFixed(2)}`);
        console.log(`  incremental after 100 new advisories: ${inc.ms.toFixed(0)} ms (${inc.mode}, ${inc.images} images, ${inc.newFindings} new findings) — goal ≤ 100 ms; phases ${JSON.stringify(inc.phases)}`);
      } finally {
        await store.close();
      }
    }
    db.close();
  } finally {
    await pg?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
