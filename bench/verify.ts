/**
 * Benchmark: `plinth verify` against `cosign verify` of the same signed image, whole processes,
 * in one run (median of BENCH_RUNS, default 5, alternating), for both signature formats, and the
 * single-file executable when it has been built. Prints the ratios (below 1.0 = Plinth faster).
 *
 *   node dist/bench/verify.js
 *   BENCH_POLICY=signatures node dist/bench/webhook.js     # the webhook with a signatures rule, warm
 *
 * cosign comes from scripts/peers.sh; it verifies with --insecure-ignore-tlog (no Rekor here).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startLocalRegistry } from '../src/registry/local.js';
import { generateKeyPair, openSigner } from '../src/sign/keys.js';
import { signImage } from '../src/sign/index.js';
import { buildImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { repoRoot } from '../test/helpers/common.js';
import { peer } from '../test/helpers/peers.js';

const execFileP = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

async function time(file: string, args: string[]): Promise<number> {
  const t0 = process.hrtime.bigint();
  await execFileP(file, args, { maxBuffer: 16 << 20 });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-bench-verify-'));
  const reg = await startLocalRegistry({ dir: path.join(work, 'registry') });
  try {
    const pair = await generateKeyPair('bench');
    await writeFile(path.join(work, 'k.key'), pair.privateKeyPem);
    await writeFile(path.join(work, 'k.pub'), pair.publicKeyPem);
    const signer = await openSigner(path.join(work, 'k.key'), async () => 'bench');
    const exe = path.join(repoRoot(), 'dist', `plinth-linux-${process.arch}`);
    const cosign = peer('cosign');
    console.log(`Node ${process.version}; ${RUNS} runs each, alternating; medians of whole-process wall time`);
    for (const format of ['bundle', 'legacy'] as const) {
      const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: `ID=${format}\n` }], [{ path: 'app', content: 'app' }]] });
      const name = `${reg.host}/bench/${format}:1`;
      await copyImage(img.source, await openDestination(name));
      await signImage(name, signer, { format });
      const ref = `${reg.host}/bench/${format}@${img.descriptor.digest}`;
      const cmds: Array<[string, string, string[]]> = [
        ['plinth verify', process.execPath, [path.join(repoRoot(), 'bin', 'plinth.cjs'), 'verify', ref, '--key', path.join(work, 'k.pub')]],
        ['cosign verify', cosign, ['verify', '--key', path.join(work, 'k.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', ...(format === 'legacy' ? ['--new-bundle-format=false'] : []), ref]],
        ...(existsSync(exe) ? [['plinth exe verify', exe, ['verify', ref, '--key', path.join(work, 'k.pub')]] as [string, string, string[]]] : []),
      ];
      for (const [, f, a] of cmds) await time(f, a); // warm
      const t = new Map<string, number[]>(cmds.map(([n]) => [n, []]));
      for (let i = 0; i < RUNS; i++) for (const [n, f, a] of cmds) t.get(n)!.push(await time(f, a));
      const m = new Map([...t].map(([k, v]) => [k, median(v)]));
      for (const [k, v] of m) console.log(`  ${format.padEnd(7)} ${k.padEnd(18)} ${v.toFixed(0).padStart(5)} ms`);
      console.log(`  ${format.padEnd(7)} ratio plinth/cosign ${(m.get('plinth verify')! / m.get('cosign verify')!).toFixed(2)}${m.has('plinth exe verify') ? `   exe/cosign ${(m.get('plinth exe verify')! / m.get('cosign verify')!).toFixed(2)}` : ''}`);
    }
  } finally {
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
