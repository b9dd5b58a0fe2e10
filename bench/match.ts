/**
 * Benchmark: matching installed packages against a large advisory store.
 *
 *   node dist/bench/match.js                   # 1,000,000 advisories, 100,000 installed packages
 *   BENCH_ADVISORIES=200000 BENCH_PACKAGES=20000 node dist/bench/match.js
 *
 * Generates a synthetic Debian:12 store into a temp SQLite file (one transaction, through the
 * store's own write path), then times matchPackages() and, as the physical limit, a plain loop
 * of the same indexed SELECT over the same (ecosystem, source name) keys that does nothing with
 * the rows. Prints packages/s and the ratio match / plain SELECT. Not part of the test suite.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { matchPackages, type MatchPackage } from '../src/vuln/match.js';
import type { StoredAdvisory } from '../src/vuln/osv.js';
import { openStore } from '../src/vuln/store.js';
import { pragma, rawStatement } from '../src/util/sqlite.js';
import { mulberry32 } from '../test/helpers/common.js';

const ADVISORIES = Number(process.env.BENCH_ADVISORIES ?? 1_000_000);
const PACKAGES = Number(process.env.BENCH_PACKAGES ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Advisories per source package name: 20, as for a busy package (Debian's linux has thousands). */
const PER_SOURCE = 20;
const ECOSYSTEM = 'Debian:12';

/** A small deterministic PRNG (mulberry32) so runs are comparable. */
const rng = mulberry32;

const VECTORS = [
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
  'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N',
  'CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N',
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H',
];
const URGENCY = ['low', 'medium', 'high', 'unimportant', 'not yet assigned'];

/** The version installed of source package number s (all its binaries share it). */
function installedVersion(s: number): string {
  return `2.${20 + (s % 30)}.${s % 7}-1`;
}
/** A fix older than every installed version (most advisories: already fixed in the image). */
function older(r: () => number): string {
  return `${1 + Math.floor(r() * 2)}.${Math.floor(r() * 20)}.${Math.floor(r() * 10)}-${1 + Math.floor(r() * 3)}`;
}
/** A fix newer than every installed version (the image is vulnerable, a fix exists). */
function newer(r: () => number): string {
  return `2.${60 + Math.floor(r() * 20)}.${Math.floor(r() * 10)}-1`;
}

function mb(n: number): string {
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-bench-match-'));
  try {
    const path = join(dir, 'vuln.db');
    const store = openStore(path);
    const sources = Math.max(1, Math.ceil(ADVISORIES / PER_SOURCE));
    const r = rng(42);

    // ---- generate --------------------------------------------------------------------------
    let t0 = performance.now();
    store.transactionSync(() => {
      for (let i = 0; i < ADVISORIES; i++) {
        const src = `src${(i % sources).toString().padStart(6, '0')}`;
        // 80 % fixed before the installed version, 5 % fixed after it, 10 % unfixed, 5 % two
        // ranges (the second introduced after the installed version: not affected).
        const shape = r();
        const urgency = URGENCY[i % URGENCY.length]!;
        const rows: StoredAdvisory['rows'] =
          shape < 0.8
            ? [{ package: src, kind: 'range', introduced: '0', fixed: older(r), urgency }]
            : shape < 0.85
              ? [{ package: src, kind: 'range', introduced: '0', fixed: newer(r), urgency }]
              : shape < 0.95
                ? [{ package: src, kind: 'range', introduced: '0', urgency }]
                : [
                    { package: src, kind: 'range', introduced: '0', fixed: '1.5.0-1', urgency },
                    { package: src, kind: 'range', introduced: '3.0.0-1', fixed: '3.1.0-1', urgency },
                  ];
        store.putAdvisories([
          {
            id: `BENCH-${i}`,
            ecosystem: ECOSYSTEM,
            origin: 'osv',
            modified: '2024-01-01T00:00:00Z',
            published: '2023-06-01T00:00:00Z',
            withdrawn: null,
            aliases: [`CVE-2024-${100000 + i}`],
            related: [],
            summary: `synthetic advisory ${i} for ${src}`,
            details: null,
            severity: [{ type: 'CVSS_V3', score: VECTORS[i % VECTORS.length]! }],
            textSeverity: null,
            rows,
          },
        ]);
      }
    });
    const genMs = performance.now() - t0;
    pragma(store.db, 'wal_checkpoint(TRUNCATE)');
    store.db.exec('ANALYZE');

    // Installed: PACKAGES binaries, two per source package on average, spread over the sources.
    const installed: MatchPackage[] = [];
    const pr = rng(7);
    for (let i = 0; i < PACKAGES; i++) {
      const s = Math.floor(pr() * sources);
      installed.push({ name: `bin${i}`, version: installedVersion(s), source: `src${s.toString().padStart(6, '0')}`, type: 'deb' });
    }
    const keys = [...new Set(installed.map((p) => p.source!))];
    const t = store.totals();
    console.log(`store: ${t.advisories.toLocaleString()} advisories, ${t.affected.toLocaleString()} affected rows, ${mb(store.sizeBytes())} on disk; generated in ${(genMs / 1000).toFixed(1)} s (${Math.round(t.advisories / (genMs / 1000)).toLocaleString()} advisories/s, one transaction)`);
    console.log(`installed: ${installed.length.toLocaleString()} packages from ${keys.length.toLocaleString()} distinct source packages`);

    // ---- physical limit: the same indexed SELECT over the same keys, rows discarded ----------
    const select = rawStatement(store.db, 'SELECT advisory, kind, introduced, fixed, last_affected, lim, data, urgency FROM affected WHERE ecosystem = ? AND package = ? AND withdrawn = 0');
    const plain: number[] = [];
    let rowsRead = 0;
    for (let run = 0; run < RUNS; run++) {
      t0 = performance.now();
      rowsRead = 0;
      for (const k of keys) rowsRead += select.all(ECOSYSTEM, k).length;
      plain.push(performance.now() - t0);
    }

    // ---- match ---------------------------------------------------------------------------
    const times: number[] = [];
    let findings = 0;
    let fixed = 0;
    for (let run = 0; run < RUNS; run++) {
      t0 = performance.now();
      const f = matchPackages(store, ECOSYSTEM, installed);
      times.push(performance.now() - t0);
      findings = f.length;
      fixed = f.filter((x) => x.status === 'fixed').length;
    }
    const m = median(times);
    const p = median(plain);
    console.log(`plain indexed SELECT loop: ${p.toFixed(0)} ms for ${keys.length.toLocaleString()} keys, ${rowsRead.toLocaleString()} rows (median of ${RUNS})`);
    console.log(
      `matchPackages: ${m.toFixed(0)} ms (median of ${RUNS}: ${times.map((x) => x.toFixed(0)).join(', ')} ms) → ${Math.round(installed.length / (m / 1000)).toLocaleString()} packages/s, ${findings.toLocaleString()} findings (${fixed.toLocaleString()} fixed)`,
    );
    console.log(`ratio match / plain SELECT: ${(m / p).toFixed(2)}`);
    store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
