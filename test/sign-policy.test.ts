/**
 * The `signatures` policy rule, enforced by `plinth check` and by the admission webhook, against
 * images signed by the real cosign and by Plinth on a real registry: signed by the right key →
 * allowed; unsigned, wrong key, a copied signature → denied with the reason; m-of-n; required
 * attestations; bad key files named at load time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import https from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { createCertificates } from '../src/admission/certs.js';
import { PolicyDecider } from '../src/admission/policydecider.js';
import { startServer } from '../src/admission/server.js';
import { parsePolicy } from '../src/policy/load.js';
import { generateKeyPair, openSigner } from '../src/sign/keys.js';
import { signImage } from '../src/sign/index.js';
import { buildImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { repoRoot, runPlinth } from './helpers/common.js';
import { peer } from './helpers/peers.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

const execFileP = promisify(execFile);

describe('signatures rule', () => {
  let reg: TestRegistry;
  let work: string;
  const env = { ...process.env, PLINTH_PASSWORD: 'pw', COSIGN_PASSWORD: 'pw' };
  const digests: Record<string, string> = {};
  const policy = (name: string, body: string) => {
    const file = path.join(work, `${name}.yaml`);
    return writeFile(file, `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: ${name}}\nspec:\n  rules:\n    - name: signed\n      mode: enforce\n      signatures:\n${body}`).then(() => file);
  };

  before(async () => {
    reg = await startRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-sigpol-'));
    for (const k of ['a', 'b']) {
      const pair = await generateKeyPair('pw');
      await writeFile(path.join(work, `${k}.key`), pair.privateKeyPem);
      await writeFile(path.join(work, `${k}.pub`), pair.publicKeyPem);
    }
    await execFileP(peer('cosign'), ['generate-key-pair', '--output-key-prefix', path.join(work, 'c')], { env });
    for (const name of ['by-a', 'by-a-and-b', 'by-cosign', 'unsigned', 'copied', 'attested']) {
      const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: `ID=${name}\n` }]] });
      await copyImage(img.source, await openDestination(`${reg.host}/team/${name}:1`));
      digests[name] = img.descriptor.digest;
    }
    const a = await openSigner(path.join(work, 'a.key'), async () => 'pw');
    const b = await openSigner(path.join(work, 'b.key'), async () => 'pw');
    await signImage(`${reg.host}/team/by-a:1`, a, { annotations: { env: 'prod' } });
    await signImage(`${reg.host}/team/by-a-and-b:1`, a);
    await signImage(`${reg.host}/team/by-a-and-b:1`, b, { format: 'legacy' });
    await execFileP(peer('cosign'), ['sign', '--key', path.join(work, 'c.key'), '--tlog-upload=false', '--use-signing-config=false', '--new-bundle-format=false', '--allow-http-registry=true', '-y', `${reg.host}/team/by-cosign@${digests['by-cosign']}`], { env });
    await signImage(`${reg.host}/team/attested:1`, a);
    await writeFile(path.join(work, 'sbom.json'), JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5' }));
    await execFileP(peer('cosign'), ['attest', '--key', path.join(work, 'c.key'), '--tlog-upload=false', '--use-signing-config=false', '--allow-http-registry=true', '-y', '--type', 'cyclonedx', '--predicate', path.join(work, 'sbom.json'), `${reg.host}/team/attested@${digests.attested}`], { env });
    // A signature copied from by-a onto copied: valid bytes, wrong digest.
    const { RegistryClient } = await import('../src/registry/client.js');
    const { cosignTag } = await import('../src/sign/image.js');
    await signImage(`${reg.host}/team/by-a:1`, a, { format: 'legacy' });
    const client = new RegistryClient(reg.host);
    try {
      const m = await client.getManifest('team/by-a', cosignTag(digests['by-a']!, 'sig'));
      const doc = JSON.parse(m.bytes.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
      for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) await client.mountBlob('team/copied', d, 'team/by-a');
      await client.putManifest('team/copied', cosignTag(digests.copied!, 'sig'), m.bytes, m.mediaType);
    } finally {
      client.close();
    }
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('plinth check: signed by the key passes; unsigned, another key, a copied signature fail with the reason', async () => {
    const pf = await policy('one-key', '        keys: [a.pub]\n');
    const check = (name: string) => runPlinth(['check', `${reg.host}/team/${name}:1`, '--policy', pf, '--format', 'json']);
    const ok = await check('by-a');
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const res = (JSON.parse(ok.stdout) as { decisions: Array<{ allowed: boolean; results: Array<{ outcome: string; reason: string }> }> }).decisions;
    assert.equal(res[0]!.allowed, true);
    assert.match(res[0]!.results[0]!.reason, /^signed by a\.pub \(sha256 /);
    for (const [name, why] of [
      ['unsigned', /signed by 0 of the required 1 signer\(s\) \(missing: a\.pub \(sha256 .*it has no signatures/],
      ['by-cosign', /signed by 0 of the required 1 signer\(s\).*does not verify with a\.pub/],
      ['copied', new RegExp(`the signature is for ${digests['by-a']}, not this image`)],
    ] as const) {
      const r = await check(name);
      assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
      const d = (JSON.parse(r.stdout) as { decisions: Array<{ allowed: boolean; results: Array<{ outcome: string; reason: string }> }> }).decisions;
      assert.equal(d[0]!.allowed, false);
      assert.equal(d[0]!.results[0]!.outcome, 'fail');
      assert.match(d[0]!.results[0]!.reason, why, name);
    }
    // cosign's key, inline PEM in the policy: the cosign-signed image passes.
    const { readFile } = await import('node:fs/promises');
    const inline = (await readFile(path.join(work, 'c.pub'), 'utf8')).trim().split('\n').map((l) => `            ${l}`).join('\n');
    const pf2 = await policy('inline', `        keys:\n          - |\n${inline}\n`);
    const r = await runPlinth(['check', `${reg.host}/team/by-cosign:1`, '--policy', pf2]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test('m-of-n, annotations and required attestations', async () => {
    const two = await policy('two', '        keys: [a.pub, b.pub]\n        count: 2\n');
    const both = await runPlinth(['check', `${reg.host}/team/by-a-and-b:1`, '--policy', two]);
    assert.equal(both.code, 0, both.stdout + both.stderr);
    const onlyA = await runPlinth(['check', `${reg.host}/team/by-a:1`, '--policy', two]);
    assert.equal(onlyA.code, 1);
    assert.match(onlyA.stdout, /signed by 1 of the required 2 signer\(s\) \(missing: b\.pub/);
    const ann = await policy('ann', '        keys: [a.pub]\n        annotations: {env: prod}\n');
    assert.equal((await runPlinth(['check', `${reg.host}/team/by-a:1`, '--policy', ann])).code, 0);
    assert.equal((await runPlinth(['check', `${reg.host}/team/by-a-and-b:1`, '--policy', ann])).code, 1);
    const att = await policy('att', `        keys: [a.pub]\n        attestations:\n          - type: cyclonedx\n            keys: [c.pub]\n`);
    const withAtt = await runPlinth(['check', `${reg.host}/team/attested:1`, '--policy', att]);
    assert.equal(withAtt.code, 0, withAtt.stdout + withAtt.stderr);
    const noAtt = await runPlinth(['check', `${reg.host}/team/by-a:1`, '--policy', att]);
    assert.equal(noAtt.code, 1);
    assert.match(noAtt.stdout, /no verified cyclonedx attestation/);
  });

  test('keyless: a certificate from a private Sigstore (CA, log, CT log key) for an identity and issuer; plinth verify and the policy rule', async () => {
    const { privateSigstore } = await import('./helpers/sigstore.js');
    const { pushBundleReferrer } = await import('../src/sign/bundle.js');
    const { RegistryClient } = await import('../src/registry/client.js');
    const ps = privateSigstore(path.join(work, 'sigstore'));
    const ID = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';
    const ISS = 'https://token.actions.githubusercontent.com';
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=keyless\n' }]] });
    const other = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=keyless-other\n' }]] });
    await copyImage(img.source, await openDestination(`${reg.host}/team/keyless:1`));
    await copyImage(other.source, await openDestination(`${reg.host}/team/keyless-other:1`));
    const statement = (d: string) => Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: d.slice(7) } }], predicateType: 'https://sigstore.dev/cosign/sign/v1', predicate: {} }));
    const client = new RegistryClient(reg.host);
    try {
      await pushBundleReferrer(client, 'team/keyless', img.descriptor, ps.keylessBundle(statement(img.descriptor.digest), ID, ISS), 'https://sigstore.dev/cosign/sign/v1');
      // A valid keyless signature of image A pushed as a referrer of image B.
      await pushBundleReferrer(client, 'team/keyless-other', other.descriptor, ps.keylessBundle(statement(img.descriptor.digest), ID, ISS), 'https://sigstore.dev/cosign/sign/v1');
    } finally {
      client.close();
    }
    const name = `${reg.host}/team/keyless:1`;
    const base = ['--trusted-root', ps.trustedRootFile];
    // The same root without its CT log: the leaf's SCT can no longer be checked.
    const noCt = path.join(work, 'root-no-ct.json');
    await writeFile(noCt, JSON.stringify({ ...ps.trustedRoot, ctlogs: [] }));
    const ok = await runPlinth(['verify', name, '--certificate-identity', ID, '--certificate-oidc-issuer', ISS, ...base, '--format', 'json']);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match((JSON.parse(ok.stdout) as { signatures: Array<{ reason: string }> }).signatures[0]!.reason, /keyless signature by https:\/\/github\.com\/acme\/app\/.* \(issuer https:\/\/token\.actions\.githubusercontent\.com\)/);
    const re = await runPlinth(['verify', name, '--certificate-identity-regexp', '^https://github\\.com/acme/', '--certificate-oidc-issuer-regexp', '^https://token\\.actions\\.githubusercontent\\.com$', ...base]);
    assert.equal(re.code, 0, re.stdout + re.stderr);
    for (const [args, why] of [
      [['--certificate-identity', 'https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main', '--certificate-oidc-issuer', ISS, ...base], /certificate identity error/],
      [['--certificate-identity', ID, '--certificate-oidc-issuer', 'https://accounts.google.com', ...base], /issuer https:\/\/token\.actions\.githubusercontent\.com does not match/],
      [['--certificate-identity', 'acme', '--certificate-oidc-issuer', ISS, ...base], /certificate identity error/],
      [['--certificate-identity', ID, '--certificate-oidc-issuer', ISS, '--trusted-root', noCt], /SCT verification failed/],
      [['--certificate-identity', ID, '--certificate-oidc-issuer', ISS], /certificate chain|no valid certificate|certificate/i],
      [['--key', path.join(work, 'a.pub')], /signed with a certificate \(keyless\)/],
    ] as const) {
      const r = await runPlinth(['verify', name, ...args]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, why, args.join(' '));
    }
    // --insecure-ignore-sct lowers the number of SCTs required, but an SCT that is there must
    // still verify: with its log missing from the root it fails either way (fail closed).
    const ignoreSct = await runPlinth(['verify', name, '--certificate-identity', ID, '--certificate-oidc-issuer', ISS, '--trusted-root', noCt, '--insecure-ignore-sct']);
    assert.equal(ignoreSct.code, 1);
    assert.match(ignoreSct.stdout, /SCT verification failed/);
    // The legacy format: a .sig layer with the certificate and the Rekor bundle in its annotations.
    const legacyImg = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=keyless-legacy\n' }]] });
    await copyImage(legacyImg.source, await openDestination(`${reg.host}/team/keyless-legacy:1`));
    const { appendCosignLayer, cosignTag } = await import('../src/sign/image.js');
    const { simpleSigningPayload, SIMPLE_SIGNING_MEDIA_TYPE } = await import('../src/sign/payload.js');
    const lc = new RegistryClient(reg.host);
    try {
      const payload = simpleSigningPayload(`${reg.host}/team/keyless-legacy`, legacyImg.descriptor.digest);
      await appendCosignLayer(lc, 'team/keyless-legacy', cosignTag(legacyImg.descriptor.digest, 'sig'), payload, SIMPLE_SIGNING_MEDIA_TYPE, ps.keylessLegacy(payload, ID, ISS));
    } finally {
      lc.close();
    }
    const legacyOk = await runPlinth(['verify', `${reg.host}/team/keyless-legacy:1`, '--certificate-identity', ID, '--certificate-oidc-issuer', ISS, ...base, '--format', 'json']);
    assert.equal(legacyOk.code, 0, legacyOk.stdout + legacyOk.stderr);
    assert.deepEqual((JSON.parse(legacyOk.stdout) as { signatures: Array<{ format: string; verified: boolean }> }).signatures.map((x) => [x.format, x.verified]), [['legacy', true]]);
    const legacyWrong = await runPlinth(['verify', `${reg.host}/team/keyless-legacy:1`, '--certificate-identity', `${ID}x`, '--certificate-oidc-issuer', ISS, ...base]);
    assert.equal(legacyWrong.code, 1);
    assert.match(legacyWrong.stdout, /certificate identity error/);
    const legacyNoCt = await runPlinth(['verify', `${reg.host}/team/keyless-legacy:1`, '--certificate-identity', ID, '--certificate-oidc-issuer', ISS, '--trusted-root', noCt]);
    assert.equal(legacyNoCt.code, 1);
    const copied = await runPlinth(['verify', `${reg.host}/team/keyless-other:1`, '--certificate-identity', ID, '--certificate-oidc-issuer', ISS, ...base]);
    assert.equal(copied.code, 1);
    assert.match(copied.stdout, new RegExp(`statement is about ${img.descriptor.digest}, not this image`));

    // The policy rule: identity and issuer, the trusted root relative to the policy file.
    const { copyFile } = await import('node:fs/promises');
    await copyFile(ps.trustedRootFile, path.join(work, 'test_root.json'));
    const pf = await policy('keyless', `        keyless:\n          - identity: ${ID}\n            issuer: ${ISS}\n        trustedRoot: test_root.json\n`);
    const pass = await runPlinth(['check', name, '--policy', pf]);
    assert.equal(pass.code, 0, pass.stdout + pass.stderr);
    assert.match(pass.stdout, /signed by https:\/\/github\.com\/acme\/app\//);
    const fail = await runPlinth(['check', `${reg.host}/team/keyless-other:1`, '--policy', pf]);
    assert.equal(fail.code, 1);
    const wrongId = await policy('keyless-wrong', `        keyless:\n          - identityRegExp: ^https://github\\.com/other/\n            issuer: ${ISS}\n        trustedRoot: test_root.json\n        ignoreSct: true\n`);
    const denied = await runPlinth(['check', name, '--policy', wrongId]);
    assert.equal(denied.code, 1);
    assert.match(denied.stdout, /missing: \/\^https:\/\/github\\\.com\/other\/\//);
    // Key and keyless signers together, 2-of-2: the keyless image has no key signature.
    const both = await policy('both', `        keys: [a.pub]\n        keyless:\n          - identity: ${ID}\n            issuer: ${ISS}\n        trustedRoot: test_root.json\n        ignoreSct: true\n        count: 2\n`);
    const half = await runPlinth(['check', name, '--policy', both]);
    assert.equal(half.code, 1);
    assert.match(half.stdout, /signed by 1 of the required 2 signer\(s\) \(missing: a\.pub/);
  });

  test('the library: evaluate() verifies a keyless rule on facts gathered elsewhere (read back from JSON), in a process that never gathered any', async () => {
    // Keyless verification loads on demand (src/sign/keyless.ts); the policy's rules must carry it.
    const script = `
      import { parsePolicy, evaluate, parseReference } from ${JSON.stringify(path.join(repoRoot(), 'dist', 'src', 'index.js'))};
      import { privateSigstore } from ${JSON.stringify(path.join(repoRoot(), 'dist', 'test', 'helpers', 'sigstore.js'))};
      import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
      import os from 'node:os';
      import path from 'node:path';
      const dir = mkdtempSync(path.join(os.tmpdir(), 'plinth-keyless-lib-'));
      try {
        const ps = privateSigstore(dir);
        writeFileSync(path.join(dir, 'root.json'), JSON.stringify(ps.trustedRoot));
        const ID = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main', ISS = 'https://token.actions.githubusercontent.com';
        const d = 'sha256:' + '1'.repeat(64);
        const st = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ digest: { sha256: d.slice(7) } }], predicateType: 'https://sigstore.dev/cosign/sign/v1', predicate: {} }));
        const rule = (id) => 'apiVersion: plinth.dev/v1alpha1\\nkind: ImagePolicy\\nmetadata: {name: x}\\nspec:\\n  rules:\\n    - name: signed\\n      mode: enforce\\n      signatures:\\n        keyless:\\n          - identity: ' + id + '\\n            issuer: ' + ISS + '\\n        trustedRoot: root.json\\n';
        const facts = JSON.parse(JSON.stringify({ image: 'reg.example/app:1', reference: parseReference('reg.example/app:1'), transport: 'registry', digest: d, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 100, platforms: [], needs: {}, scanDb: null, errors: [],
          signatures: [{ kind: 'bundle', source: 'reg.example/app@sha256:ref', bundle: ps.keylessBundle(st, ID, ISS), predicateType: 'https://sigstore.dev/cosign/sign/v1' }] }));
        for (const id of [ID, ID + 'x']) {
          const p = parsePolicy(rule(id), path.join(dir, 'p.yaml'));
          const r = evaluate(p.policy ?? p, facts).results[0];
          console.log(r.outcome + ' | ' + r.reason);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }`;
    const { stdout } = await execFileP(process.execPath, ['--input-type=module', '-e', script]);
    const [right, wrong] = stdout.trim().split('\n');
    assert.match(right!, /^pass \| signed by https:\/\/github\.com\/acme\/app\//);
    assert.match(wrong!, /^fail \| /);
    assert.doesNotMatch(wrong!, /not loaded/);
  });

  test('the webhook fetches an image\'s signatures once per digest: another tag or namespace of the same digest reuses them', async () => {
    const { startFaultProxy } = await import('./helpers/fault-proxy.js');
    const proxy = await startFaultProxy(reg.url, []);
    const pf = await policy('cache', '        keys: [a.pub]\n');
    const d = await PolicyDecider.create({ policyFile: pf, logger: pino({ level: 'silent' }), allowPrivateRegistries: ['127.0.0.1'] });
    try {
      const { RegistryClient } = await import('../src/registry/client.js');
      const client = new RegistryClient(proxy.host);
      try {
        const m = await client.getManifest('team/by-a', '1');
        await client.putManifest('team/by-a', 'also', m.bytes, m.mediaType);
      } finally {
        client.close();
      }
      const sigRequests = () => proxy.requests.filter((r) => /\/referrers\/|\/manifests\/sha256-[0-9a-f]{64}(\.sig|\.att)?$/.test(r.path)).length;
      const ctx = (ns: string) => ({ namespace: ns, labels: {}, annotations: {}, via: 'validate' as const });
      const first = await d.decide(`${proxy.host}/team/by-a:1`, ctx('prod'), new AbortController().signal);
      assert.equal(first.allowed, true, JSON.stringify(first));
      const fetched = sigRequests();
      assert.ok(fetched >= 3, 'referrers, the tag index, .sig and .att were looked up');
      const second = await d.decide(`${proxy.host}/team/by-a:also`, ctx('staging'), new AbortController().signal);
      assert.equal(second.allowed, true);
      assert.equal(sigRequests(), fetched, 'the second tag of the digest, in another namespace, fetched no signatures');
      // (A digest whose signatures did not satisfy the rules is kept only briefly: the webhook test
      // above signs a denied digest and sees it admitted after the short TTL.)
    } finally {
      d.close();
      await proxy.stop();
    }
  });

  test('bad key settings are named at load time', async () => {
    assert.throws(() => parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: s\n      mode: enforce\n      signatures: {keys: [missing.pub]}\n', path.join(work, 'p.yaml')), /signatures\.keys\[0\]: no such file or directory/);
    assert.throws(() => parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: s\n      mode: enforce\n      signatures: {keys: ["-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n"]}\n', 'p.yaml'), /keys\[0\]: the inline key: the public key does not parse/);
    assert.throws(() => parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: s\n      mode: enforce\n      signatures: {keys: [a.pub], count: 3}\n', path.join(work, 'p.yaml')), /count is 3, but only 1 signer/);
    assert.throws(() => parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: s\n      mode: enforce\n      signatures: {keyless: [{issuer: x}]}\n', path.join(work, 'p.yaml')), /set exactly one of identity and identityRegExp/);
    assert.throws(() => parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: s\n      mode: enforce\n      signatures: {keyless: [{identity: a, issuerRegExp: "("}]}\n', path.join(work, 'p.yaml')), /not a regular expression/);
    assert.throws(() => parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: s\n      mode: enforce\n      signatures: {keyless: [{identity: a, issuer: b}], trustedRoot: nope.json}\n', path.join(work, 'p.yaml')), /trustedRoot: no such file/);
    assert.throws(() => parsePolicy('apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: s\n      mode: enforce\n      signatures: {count: 1}\n', path.join(work, 'p.yaml')), /list keys and\/or keyless signers/);
  });

  test('the admission webhook allows the signed image and denies the unsigned one, saying which signer is missing', async () => {
    const certs = await createCertificates({ service: 'plinth', namespace: 'plinth-system', dir: path.join(work, 'certs'), ipAddresses: ['127.0.0.1'] });
    const pf = await policy('webhook', '        keys: [a.pub]\n');
    const logger = pino({ level: 'silent' });
    const d = await PolicyDecider.create({ policyFile: pf, logger, allowPrivateRegistries: ['127.0.0.1'], signatureFailureTtlMs: 300 });
    const { readFileSync } = await import('node:fs');
    const s = await startServer(d, { cert: readFileSync(certs.files.cert), key: readFileSync(certs.files.key), port: 0, host: '127.0.0.1', logger });
    const post = (images: string[]) =>
      new Promise<Record<string, any>>((resolve, reject) => {
        const body = {
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          request: {
            uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, requestKind: { group: '', version: 'v1', kind: 'Pod' }, requestResource: { group: '', version: 'v1', resource: 'pods' },
            name: 'web-0', namespace: 'prod', operation: 'CREATE', userInfo: { username: 'alice', groups: [] },
            object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace: 'prod' }, spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } }, oldObject: null, dryRun: false,
          },
        };
        const req = https.request(`${s.url}/validate`, { method: 'POST', ca: certs.caCert, servername: 'plinth.plinth-system.svc', headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => resolve(JSON.parse(text) as Record<string, any>));
        });
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
    try {
      const ok = await post([`${reg.host}/team/by-a:1`, `${reg.host}/team/by-a:1`]);
      assert.equal(ok.response.allowed, true, JSON.stringify(ok.response));
      const denied = await post([`${reg.host}/team/by-a:1`, `${reg.host}/team/unsigned:1`]);
      assert.equal(denied.response.allowed, false);
      assert.match(denied.response.status.message, /\[signed\].*team\/unsigned:1.*signed by 0 of the required 1 signer\(s\) \(missing: a\.pub/s);
      const copied = await post([`${reg.host}/team/copied:1`]);
      assert.equal(copied.response.allowed, false);
      assert.match(copied.response.status.message, /not this image/);
      // A denial for a missing signature is cached briefly: once the digest is signed, it is admitted.
      const pinned = `${reg.host}/team/unsigned@${digests.unsigned}`;
      assert.equal((await post([pinned])).response.allowed, false);
      await signImage(pinned, await openSigner(path.join(work, 'a.key'), async () => 'pw'));
      await new Promise((r) => setTimeout(r, 400));
      const fixed = await post([pinned]);
      assert.equal(fixed.response.allowed, true, JSON.stringify(fixed.response));
    } finally {
      await s.close();
      d.close();
    }
  });
});
