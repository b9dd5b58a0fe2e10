/**
 * Benchmark: `plinth verify` against `cosign verify` of the same signed image, whole processes,
 * in one run (median of BENCH_RUNS, default 5, alternating), for both signature formats, and the
 * single-file executable when it has been built. Prints the ratios (below 1.0 = Plinth faster).
 * Beside them, the Node floor (bench/floor/verify.cjs): a plain Node script making the same
 * requests and the same signature check and nothing else, with node:http and with plain sockets;
 * floor/cosign is what no Node CLI goes under, plinth/floor what Plinth itself adds.
 *
 *   node dist/bench/verify.js
 *   BENCH_POLICY=signatures node dist/bench/webhook.js     # the webhook with a signatures rule, warm
 *
 * cosign comes from scripts/peers.sh; it verifies with --insecure-ignore-tlog (no Rekor here).
 * Then notation: `plinth verify --notation` against `notation verify` of the same JWS and COSE
 * signatures (made by the real notation, with its trust policy and store), and Docker Content
 * Trust: `plinth verify --dct` against `notary lookup` (the notary CLI's own TUF update and
 * verification) of a tag published to Debian's notary-server on loopback.
 * Also the webhook with a signatures rule, warm: `plinth serve` admitting images it has not seen
 * (each signature looked up and verified) against `cosign verify` of the same images.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, startLocalRegistry } from '../src/registry/local.js';
import { createCertificates } from '../src/admission/certs.js';
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
        // The Node floor: a plain Node script making the same requests and the same signature check, nothing else.
        ['node floor', process.execPath, [path.join(repoRoot(), 'bench', 'floor', 'verify.cjs'), format, ref, path.join(work, 'k.pub')]],
        // …and the same without node:http (requests written on plain sockets).
        ['node floor, raw socket', process.execPath, [path.join(repoRoot(), 'bench', 'floor', 'verify.cjs'), '--raw', format, ref, path.join(work, 'k.pub')]],
      ];
      for (const [, f, a] of cmds) await time(f, a); // warm
      const t = new Map<string, number[]>(cmds.map(([n]) => [n, []]));
      for (let i = 0; i < RUNS; i++) for (const [n, f, a] of cmds) t.get(n)!.push(await time(f, a));
      const m = new Map([...t].map(([k, v]) => [k, median(v)]));
      for (const [k, v] of m) console.log(`  ${format.padEnd(7)} ${k.padEnd(22)} ${v.toFixed(0).padStart(5)} ms`);
      console.log(`  ${format.padEnd(7)} ratio plinth/cosign ${(m.get('plinth verify')! / m.get('cosign verify')!).toFixed(2)}${m.has('plinth exe verify') ? `   exe/cosign ${(m.get('plinth exe verify')! / m.get('cosign verify')!).toFixed(2)}` : ''}   node floor/cosign ${(m.get('node floor')! / m.get('cosign verify')!).toFixed(2)} (raw socket ${(m.get('node floor, raw socket')! / m.get('cosign verify')!).toFixed(2)})   plinth/node floor ${(m.get('plinth verify')! / m.get('node floor')!).toFixed(2)}`);
    }
    await warmWebhook(work, reg.host, signer, cosign);
    await notationAndDct(work, reg.host);
  } finally {
    await reg.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The webhook with a signatures rule, warm: a running `plinth serve` (started, JIT warmed on one
 * image) admits Pods of images it has not seen (each a decision-cache miss: the signature is looked
 * up in the registry and verified), one request at a time; against `cosign verify` of the same
 * images, whole processes. Medians over BENCH_RUNS images.
 */
async function warmWebhook(work: string, host: string, signer: Awaited<ReturnType<typeof openSigner>>, cosign: string): Promise<void> {
  const refs: string[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: `ID=hook\n` }], [{ path: 'app', content: `app ${i}` }]] });
    await copyImage(img.source, await openDestination(`${host}/bench/hook-${i}:1`));
    await signImage(`${host}/bench/hook-${i}:1`, signer, { format: 'bundle' });
    refs.push(`${host}/bench/hook-${i}@${img.descriptor.digest}`);
  }
  const dir = path.join(work, 'hook');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'policy.yaml'), 'apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: signed\nspec:\n  rules:\n    - name: signed\n      mode: enforce\n      signatures:\n        keys: [k.pub]\n');
  await copyFile(path.join(work, 'k.pub'), path.join(dir, 'k.pub'));
  const certs = await createCertificates({ service: 'plinth', namespace: 'plinth-system', dir: path.join(dir, 'certs'), ipAddresses: ['127.0.0.1'] });
  const port = await freePort();
  const server = spawn(process.execPath, [path.join(repoRoot(), 'bin', 'plinth.cjs'), 'serve', '--policy', path.join(dir, 'policy.yaml'), '--tls-cert', certs.files.cert, '--tls-key', certs.files.key, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn', '--allow-private-registry', '127.0.0.1'], { stdio: 'ignore' });
  const agent = new https.Agent({ ca: certs.caCert, keepAlive: true });
  const post = (image: string) =>
    new Promise<{ ms: number; allowed: boolean }>((resolve, reject) => {
      const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: `u-${image.slice(-12)}`, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'prod', operation: 'CREATE', userInfo: { username: 'bench' }, object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'prod' }, spec: { containers: [{ name: 'app', image }] } } } });
      const t0 = process.hrtime.bigint();
      const req = https.request({ host: '127.0.0.1', port, path: '/validate', method: 'POST', agent, servername: 'plinth.plinth-system.svc', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          try {
            resolve({ ms, allowed: (JSON.parse(Buffer.concat(chunks).toString()) as { response?: { allowed?: boolean } }).response?.allowed === true });
          } catch (e) {
            reject(e);
          }
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  try {
    for (let i = 0; ; i++) {
      try {
        await post(refs[0]!); // up, and warm: the first image is admitted once (its verification compiles the path)
        break;
      } catch (e) {
        if (i > 200) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const hook: number[] = [];
    const cos: number[] = [];
    for (const ref of refs.slice(1)) {
      const r = await post(ref);
      if (!r.allowed) throw new Error(`the webhook denied ${ref}`);
      hook.push(r.ms);
      cos.push(await time(cosign, ['verify', '--key', path.join(work, 'k.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', ref]));
    }
    const [h, c] = [median(hook), median(cos)];
    console.log(`  webhook  plinth serve, signatures rule, warm (an image not seen before)  ${h.toFixed(1).padStart(5)} ms`);
    console.log(`  webhook  cosign verify of the same images                                 ${c.toFixed(0).padStart(5)} ms`);
    console.log(`  webhook  ratio plinth serve/cosign verify ${(h / c).toFixed(2)}`);
  } finally {
    agent.destroy();
    server.kill('SIGTERM');
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
