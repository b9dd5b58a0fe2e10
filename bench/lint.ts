/**
 * Benchmark: 1,000 Kubernetes manifests through `plinth lint --format kubesec` and through the
 * real `kubesec scan` (v2.14.2, scripts/peers.sh), in the same run, on the same files.
 *
 *   node dist/bench/lint.js                 # 1,000 manifests, 5 runs each
 *   BENCH_MANIFESTS=5000 BENCH_RUNS=3 node dist/bench/lint.js
 *
 * Two shapes, both wall time of whole processes (start-up included), medians:
 *   - one multi-document file with every manifest: one `kubesec scan FILE` against one
 *     `plinth lint --format kubesec --kubesec-rules 2.14 FILE` (the headline ratio; goal <= 0.5);
 *   - one file per manifest: kubesec scans one file per process, so 1,000 `kubesec scan` runs
 *     against one `plinth lint DIR`.
 * kubesec validates against local permissive schemas (--schema-location), as in the oracle test;
 * the outputs are compared (same reports) before timing. Not part of the test suite.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isDeepStrictEqual } from 'node:util';
import { stringify } from 'yaml';
import { plinthCommand } from '../test/helpers/common.js';
import { KINDS, generateManifest } from '../test/helpers/manifests.js';
import { peer } from '../test/helpers/peers.js';

const run = promisify(execFile);
const N = Number(process.env.BENCH_MANIFESTS ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Run a command; kubesec exits 2 and plinth 1 when a score fails: the output is still the report. */
async function exec(file: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): Promise<string> {
  try {
    return (await run(file, args, { cwd, maxBuffer: 1 << 30, ...(env ? { env } : {}) })).stdout;
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    if ((x.code === 1 || x.code === 2) && x.stdout) return x.stdout;
    throw new Error(`${file} ${args.join(' ')}: exit ${x.code}: ${x.stderr}`);
  }
}

async function time(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const kubesec = peer('kubesec');
  const dir = await mkdtemp(join(tmpdir(), 'plinth-bench-lint-'));
  try {
    await mkdir(join(dir, 'schemas'));
    for (const k of KINDS) await writeFile(join(dir, 'schemas', `${k.schema}.json`), '{"type": "object"}');
    const schema = `${dir}/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json`;
    const docs = Array.from({ length: N }, (_, i) => stringify(generateManifest(i, 3)));
    await writeFile(join(dir, 'all.yaml'), docs.join('---\n'));
    await mkdir(join(dir, 'each'));
    await Promise.all(docs.map((d, i) => writeFile(join(dir, 'each', `m${String(i).padStart(5, '0')}.yaml`), d)));
    const p = plinthCommand(['lint', '--format', 'kubesec', '--kubesec-rules', '2.14', 'all.yaml']);
    const plinthAll = () => exec(p.file, p.args, dir, p.env);
    const kubesecAll = () => exec(kubesec, ['scan', '--schema-location', schema, 'all.yaml'], dir);

    // Same answers first.
    const [a, b] = [JSON.parse(await plinthAll()) as unknown[], JSON.parse(await kubesecAll()) as unknown[]];
    if (a.length !== N || !isDeepStrictEqual(a, b)) throw new Error('plinth and kubesec disagree on the corpus: run the oracle test');
    console.log(`${N} manifests (${(docs.join('---\n').length / 1024 / 1024).toFixed(1)} MB), ${RUNS} runs each, identical reports`);

    const ps: number[] = [];
    const ks: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      ps.push(await time(plinthAll));
      ks.push(await time(kubesecAll));
    }
    const pm = median(ps);
    const km = median(ks);
    console.log(`one file:   plinth lint ${pm.toFixed(0)} ms, kubesec scan ${km.toFixed(0)} ms, ratio plinth/kubesec ${(pm / km).toFixed(2)} (goal <= 0.50)`);

    // One file per manifest: kubesec needs one process per file, plinth lints the directory.
    const pd = plinthCommand(['lint', '--format', 'kubesec', '--kubesec-rules', '2.14', 'each']);
    const perFileRuns = Math.max(1, Math.min(RUNS, 3));
    const pds: number[] = [];
    const kds: number[] = [];
    for (let i = 0; i < perFileRuns; i++) {
      pds.push(await time(() => exec(pd.file, pd.args, dir, pd.env)));
      kds.push(await time(async () => {
        // Two at a time (the machine's cores), as a CI script with xargs -P2 would.
        let next = 0;
        const worker = async () => {
          while (next < N) {
            const j = next++;
            await exec(kubesec, ['scan', '--schema-location', schema, join('each', `m${String(j).padStart(5, '0')}.yaml`)], dir);
          }
        };
        await Promise.all([worker(), worker()]);
      }));
    }
    const pdm = median(pds);
    const kdm = median(kds);
    console.log(`per file:   plinth lint DIR ${pdm.toFixed(0)} ms, ${N} x kubesec scan ${kdm.toFixed(0)} ms, ratio ${(pdm / kdm).toFixed(3)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
