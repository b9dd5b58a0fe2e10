/**
 * The `signatures` rule's notaryV1 (Docker Content Trust) and notation verifiers, in
 * `plinth check` and in the admission webhook: images signed with the real notary CLI (against
 * Debian's notary-server) and the real notation are allowed, unsigned or foreign ones denied with
 * the reason; trust data and notation signatures are cached per repository / digest; the
 * request's deadline stops a trust server that does not answer; bad settings are named at load.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { PolicyDecider } from '../src/admission/policydecider.js';
import { parsePolicy } from '../src/policy/load.js';
import { buildImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { runPlinth } from './helpers/common.js';
import { peer } from './helpers/peers.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { notaryCli, startMetadataProxy, startNotaryServer, type MetadataProxy, type NotaryServer } from './helpers/notary.js';

const execFileP = promisify(execFile);

describe('signatures rule: notaryV1 and notation verifiers', () => {
  let reg: TestRegistry;
  let server: NotaryServer;
  let proxy: MetadataProxy;
  let work: string;
  const imgs: Record<string, { digest: string; size: number }> = {};
  const policy = async (name: string, body: string) => {
    const file = path.join(work, `${name}.yaml`);
    await writeFile(file, `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: ${name}}\nspec:\n  rules:\n    - name: signed\n      mode: enforce\n      signatures:\n${body}`);
    return file;
  };
  const check = (image: string, pf: string) => runPlinth(['check', image, '--policy', pf, '--format', 'json']);
  const result = (stdout: string) => (JSON.parse(stdout) as { decisions: Array<{ allowed: boolean; results: Array<{ outcome: string; reason: string }> }> }).decisions[0]!;

  before(async () => {
    [reg, server] = await Promise.all([startRegistry(), startNotaryServer()]);
    proxy = await startMetadataProxy(server.url);
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-notary-policy-'));
    for (const n of ['dct', 'notation', 'both', 'unsigned']) {
      const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: `ID=${n}\n` }]] });
      await copyImage(img.source, await openDestination(`${reg.host}/team/${n}:1`));
      await copyImage(img.source, await openDestination(`${reg.host}/team/${n}:also`));
      imgs[n] = { digest: img.descriptor.digest, size: img.descriptor.size };
    }
    const notary = notaryCli(server.url, path.join(work, 'publisher'));
    for (const n of ['dct', 'both']) {
      const G = `${reg.host}/team/${n}`;
      await notary(['init', G]);
      for (const tag of ['1', 'also']) await notary(['addhash', G, tag, String(imgs[n]!.size), '--sha256', imgs[n]!.digest.slice(7)]);
      await notary(['publish', G]);
    }
    const home = path.join(work, 'home');
    const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') };
    const notation = (args: string[]) => execFileP(peer('notation'), args, { env });
    await notation(['cert', 'generate-test', '--default', 'wabbit-networks.io']);
    for (const n of ['notation', 'both']) await notation(['sign', '--insecure-registry', `${reg.host}/team/${n}@${imgs[n]!.digest}`]);
    await cp(path.join(home, '.config', 'notation', 'truststore'), path.join(work, 'truststore'), { recursive: true });
    await writeFile(path.join(work, 'trustpolicy.json'), JSON.stringify({ version: '1.0', trustPolicies: [{ name: 'team', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:wabbit-networks.io'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=Notary'] }] }));
  });
  after(async () => {
    await proxy?.stop();
    await server?.stop();
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('plinth check with notaryV1: a signed tag passes; an unsigned repository and a wrong required role fail with the reason', async () => {
    const pf = await policy('dct', `        notaryV1:\n          server: ${server.url}\n`);
    const ok = await check(`${reg.host}/team/dct:1`, pf);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(result(ok.stdout).results[0]!.reason, /^signed by Docker Content Trust/);
    const no = await check(`${reg.host}/team/unsigned:1`, pf);
    assert.equal(no.code, 1, no.stdout + no.stderr);
    assert.equal(result(no.stdout).results[0]!.outcome, 'fail');
    assert.match(result(no.stdout).results[0]!.reason, /signed by 0 of the required 1 signer\(s\) \(missing: Docker Content Trust\).*has no trust data for .*team\/unsigned/);
    const role = await policy('dct-role', `        notaryV1:\n          server: ${server.url}\n          roles: [targets/releases]\n`);
    const r = await check(`${reg.host}/team/dct:1`, role);
    assert.equal(r.code, 1);
    assert.match(result(r.stdout).results[0]!.reason, /1 is signed by targets, not by targets\/releases/);
    const pinned = await policy('dct-pin', `        notaryV1:\n          server: ${server.url}\n          rootKeys: ["${'0'.repeat(64)}"]\n`);
    const p = await check(`${reg.host}/team/dct:1`, pinned);
    assert.equal(p.code, 1);
    assert.match(result(p.stdout).results[0]!.reason, /not signed by a pinned root key/);
  });

  test('plinth check with notation, and both verifiers 2-of-2', async () => {
    const pf = await policy('notation', '        notation:\n          trustPolicy: trustpolicy.json\n          trustStore: truststore\n');
    const ok = await check(`${reg.host}/team/notation:1`, pf);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(result(ok.stdout).results[0]!.reason, /^signed by notation/);
    for (const n of ['unsigned', 'dct']) {
      const no = await check(`${reg.host}/team/${n}:1`, pf);
      assert.equal(no.code, 1, no.stdout);
      assert.match(result(no.stdout).results[0]!.reason, /signed by 0 of the required 1 signer\(s\) \(missing: notation\); it has no signatures/);
    }
    const both = await policy('both', `        notaryV1: {server: "${server.url}"}\n        notation: {trustPolicy: trustpolicy.json, trustStore: truststore}\n        count: 2\n`);
    assert.equal((await check(`${reg.host}/team/both:1`, both)).code, 0);
    const half = await check(`${reg.host}/team/notation:1`, both);
    assert.equal(half.code, 1);
    assert.match(result(half.stdout).results[0]!.reason, /signed by 1 of the required 2 signer\(s\) \(missing: Docker Content Trust\)/);
  });

  test('bad notaryV1 and notation settings are named at load time', () => {
    const doc = (sig: string) => `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: s\n      mode: enforce\n      signatures: ${sig}\n`;
    const f = path.join(work, 'p.yaml');
    assert.throws(() => parsePolicy(doc('{notation: {trustPolicy: nope.json, trustStore: truststore}}'), f), /notation\.trustPolicy: no such file or directory/);
    assert.throws(() => parsePolicy(doc('{notation: {trustPolicy: trustpolicy.json, trustStore: elsewhere}}'), f), /notation\.trustStore: trust store ca:wabbit-networks\.io: cannot read .*no such directory/);
    assert.throws(() => parsePolicy(doc('{notation: {trustPolicy: p.yaml, trustStore: truststore}}'), f), /p\.yaml is not JSON|no such file/);
    assert.throws(() => parsePolicy(doc('{notaryV1: {rootKeys: [abc]}}'), f), /a root key ID is 64 hex digits/);
    assert.throws(() => parsePolicy(doc('{notaryV1: {roles: [releases]}}'), f), /a role is targets or targets\/NAME/);
    assert.throws(() => parsePolicy(doc('{notaryV1: {server: "ftp://x"}}'), f), /server/);
    assert.match(parsePolicy(doc('{notaryV1: {server: "https://notary.example.com"}}'), f).warnings.join('\n'), /notaryV1: without rootKeys or trustDir each check trusts the repository's root on first use/);
    assert.deepEqual(parsePolicy(doc(`{notaryV1: {rootKeys: ["${'a'.repeat(64)}"]}}`), f).warnings, []);
  });

  test('admission: allowed and denied as plinth check; trust data and notation signatures fetched once; the deadline stops a silent trust server', async () => {
    const { startFaultProxy } = await import('./helpers/fault-proxy.js');
    const regProxy = await startFaultProxy(reg.url, []);
    const pf = await policy('webhook', `        notaryV1: {server: "${proxy.url}"}\n        notation: {trustPolicy: trustpolicy.json, trustStore: truststore}\n        count: 2\n`);
    const d = await PolicyDecider.create({ policyFile: pf, logger: pino({ level: 'silent' }), allowPrivateRegistries: ['127.0.0.1'] });
    const ctx = (ns: string) => ({ namespace: ns, labels: {}, annotations: {}, via: 'validate' as const });
    const signal = () => new AbortController().signal;
    try {
      const ok = await d.decide(`${regProxy.host}/team/both:1`, ctx('prod'), signal());
      // The GUN is the registry name as the image names it: the proxy's host has no trust data.
      assert.equal(ok.allowed, false, 'the trust data is for the registry name the image was signed under');
      const first = await d.decide(`${reg.host}/team/both:1`, ctx('prod'), signal());
      assert.equal(first.allowed, true, JSON.stringify(first));
      const trustRequests = proxy.requests.length;
      const again = await d.decide(`${reg.host}/team/both:also`, ctx('staging'), signal());
      assert.equal(again.allowed, true, JSON.stringify(again));
      assert.equal(proxy.requests.length, trustRequests, 'another tag of the repository, in another namespace, asked the trust server nothing');
      const denied = await d.decide(`${reg.host}/team/notation:1`, ctx('prod'), signal());
      assert.equal(denied.allowed, false);
      assert.match(denied.denials.join('\n'), /signed by 1 of the required 2 signer\(s\) \(missing: Docker Content Trust\)/);

      // Notation signatures are fetched once per digest.
      const sigRequests = () => regProxy.requests.filter((r) => /\/referrers\/|\/manifests\/sha256-[0-9a-f]{64}$/.test(r.path)).length;
      const n1 = await d.decide(`${regProxy.host}/team/notation:1`, ctx('prod'), signal());
      const fetched = sigRequests();
      assert.ok(fetched >= 1);
      const n2 = await d.decide(`${regProxy.host}/team/notation:also`, ctx('dev'), signal());
      assert.equal(sigRequests(), fetched, 'the second tag of the digest fetched no notation signatures');
      assert.equal(n1.allowed, n2.allowed);

      // A trust server that never answers: the request's deadline ends the wait, and the rule errors.
      proxy.rules.push({ match: /team\/unsigned\/_trust\//, answer: 'hang' });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 500);
      const hung = await d.decide(`${reg.host}/team/unsigned:1`, ctx('prod'), ac.signal);
      assert.equal(hung.allowed, false);
      assert.equal(hung.results?.[0]?.outcome, 'error');
      assert.match(hung.denials.join('\n'), /Docker Content Trust: .*deadline exceeded before Plinth finished reading the Docker Content Trust data/);
      assert.equal(hung.cacheable, false, 'an error is not cached');
    } finally {
      d.close();
      await regProxy.stop();
      proxy.rules.length = 0;
    }
  });
});
