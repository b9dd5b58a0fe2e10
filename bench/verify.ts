/**
 * Benchmark: `plinth verify` against `cosign verify` of the same signed image, whole processes,
 * in one run (median of BENCH_RUNS, default 5, alternating), for both signature formats, and the
 * single-file executable when it has been built. Prints the ratios (below 1.0 = Plinth faster).
 *
 *   node dist/bench/verify.js
 *   BENCH_POLICY=signatures node dist/bench/webhook.js     # the webhook with a signatures rule, warm
 *
 * cosign comes from scripts/peers.sh; it verifies with --insecure-ignore-tlog (no Rekor here).
 * Then notation: `plinth verify --notation` against `notation verify` of the same JWS and COSE
 * signatures (made by the real notation, with its trust policy and store), and Docker Content
 * Trust: `plinth verify --dct` against `notary lookup` (the notary CLI's own TUF update and
 * verification) of a tag published to Debian's notary-server on loopback.
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

async function time(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  const t0 = process.hrtime.bigint();
  await execFileP(file, args, { maxBuffer: 16 << 20, ...(env ? { env } : {}) });
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
    await notationAndDct(work, reg.host);
  } finally {
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

type Cmd = [string, string, string[], NodeJS.ProcessEnv?];

async function compare(label: string, cmds: Cmd[], ours: string, peerName: string): Promise<void> {
  for (const [, f, a, e] of cmds) await time(f, a, e); // warm, and each must succeed
  const t = new Map<string, number[]>(cmds.map(([n]) => [n, []]));
  for (let i = 0; i < RUNS; i++) for (const [n, f, a, e] of cmds) t.get(n)!.push(await time(f, a, e));
  const m = new Map([...t].map(([k, v]) => [k, median(v)]));
  for (const [k, v] of m) console.log(`  ${label.padEnd(9)} ${k.padEnd(30)} ${v.toFixed(0).padStart(5)} ms`);
  const exe = [...m.keys()].find((k) => k.startsWith('plinth exe'));
  console.log(`  ${label.padEnd(9)} ratio ${ours}/${peerName} ${(m.get(ours)! / m.get(peerName)!).toFixed(2)}${exe ? `   exe/${peerName} ${(m.get(exe)! / m.get(peerName)!).toFixed(2)}` : ''}`);
}

async function notationAndDct(work: string, host: string): Promise<void> {
  const plinth = [path.join(repoRoot(), 'bin', 'plinth.cjs')];
  const exe = path.join(repoRoot(), 'dist', `plinth-linux-${process.arch}`);
  const withExe = (name: string, args: string[], env?: NodeJS.ProcessEnv): Cmd[] => (existsSync(exe) ? [[name, exe, args, env]] : []);
  // notation: JWS and COSE signatures on one image, verified with notation's own files.
  const home = path.join(work, 'home');
  const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') };
  const notation = peer('notation');
  const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=notation\n' }]] });
  const name = `${host}/bench/notation`;
  await copyImage(img.source, await openDestination(`${name}:1`));
  const ref = `${name}@${img.descriptor.digest}`;
  await execFileP(notation, ['cert', 'generate-test', '--default', 'bench.example'], { env });
  await execFileP(notation, ['sign', '--insecure-registry', ref], { env });
  await execFileP(notation, ['sign', '--insecure-registry', '--signature-format', 'cose', ref], { env });
  await writeFile(path.join(home, '.config', 'notation', 'trustpolicy.json'), JSON.stringify({ version: '1.0', trustPolicies: [{ name: 'bench', registryScopes: [name], signatureVerification: { level: 'strict' }, trustStores: ['ca:bench.example'], trustedIdentities: ['*'] }] }));
  await compare('notation', [
    ['plinth verify --notation', process.execPath, [...plinth, 'verify', ref, '--notation'], env],
    ['notation verify', notation, ['verify', '--insecure-registry', ref], env],
    ...withExe('plinth exe verify --notation', ['verify', ref, '--notation'], env),
  ], 'plinth verify --notation', 'notation verify');

  // Docker Content Trust: a tag published with the notary CLI to Debian's notary-server.
  const { startNotaryServer, notaryCli } = await import('../test/helpers/notary.js');
  const server = await startNotaryServer();
  try {
    const dimg = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=dct\n' }]] });
    const gun = `${host}/bench/dct`;
    await copyImage(dimg.source, await openDestination(`${gun}:1`));
    const notary = notaryCli(server.url, path.join(work, 'publisher'));
    await notary(['init', gun]);
    await notary(['addhash', gun, '1', String(dimg.descriptor.size), '--sha256', dimg.descriptor.digest.slice(7)]);
    await notary(['publish', gun]);
    const { debianTool } = await import('../test/helpers/peers.js');
    await compare('dct', [
      ['plinth verify --dct', process.execPath, [...plinth, 'verify', `${gun}:1`, '--dct', '--trust-server', server.url, '--trust-dir', path.join(work, 'plinth-trust')]],
      ['notary lookup', debianTool('notary', 'notary'), ['-s', server.url, '-d', path.join(work, 'lookup-trust'), 'lookup', gun, '1']],
      ...withExe('plinth exe verify --dct', ['verify', `${gun}:1`, '--dct', '--trust-server', server.url, '--trust-dir', path.join(work, 'plinth-trust-exe')]),
    ], 'plinth verify --dct', 'notary lookup');
  } finally {
    await server.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
