/**
 * Keys and image signatures, cosign-compatible: the shared vectors (encrypted keys, password
 * `hello`; legacy signatures from containers/image fixtures) and round trips with the real cosign
 * on a real registry, in both directions, plus the bad inputs that must never verify.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { decryptPrivateKey, generateKeyPair, openSigner, openVerifier, parsePublicKey, publicKeyPem, verifierOf, type Verifier } from '../src/sign/keys.js';
import { checkSimpleSigning, cosignTag } from '../src/sign/image.js';
import { signImage, verifyImage } from '../src/sign/index.js';
import { buildImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { RegistryClient } from '../src/registry/client.js';
import { runPlinth, sharedDir, isCode } from './helpers/common.js';
import { peer } from './helpers/peers.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

const execFileP = promisify(execFile);
const VECTORS = sharedDir('vectors', 'cosign');

describe('cosign keys', () => {
  test('every encrypted key vector decrypts with "hello"; public keys match; a wrong password is refused', async () => {
    const v = JSON.parse(await readFile(path.join(VECTORS, 'cosign-encrypted-key-vectors.json'), 'utf8')) as { password: string; keys: Array<{ name: string; pem: string; pemType: string; decrypted: boolean; publicKeyPem?: string }> };
    assert.equal(v.keys.length, 3);
    for (const k of v.keys) {
      const key = await decryptPrivateKey(k.pem, v.password, k.name);
      assert.equal(k.decrypted, true);
      assert.equal(key.asymmetricKeyType, 'ec', k.name);
      if (k.publicKeyPem) assert.equal(publicKeyPem(createPublicKey(key)), k.publicKeyPem, k.name);
      await assert.rejects(decryptPrivateKey(k.pem, 'not-hello', k.name), isCode('KEY_INVALID', /wrong password/));
    }
  });

  test('malformed keys are named, never crash', async () => {
    await assert.rejects(decryptPrivateKey('hello', 'x', 'k1'), isCode('KEY_INVALID', /no PEM block/));
    const pub = (await generateKeyPair('x')).publicKeyPem;
    await assert.rejects(decryptPrivateKey(pub, 'x', 'k2'), isCode('KEY_INVALID', /holds PUBLIC KEY/));
    const bogus = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from('{"kdf":{"name":"argon2"}}').toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
    await assert.rejects(decryptPrivateKey(bogus, 'x', 'k3'), isCode('KEY_INVALID', /unsupported key derivation/));
    const huge = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(JSON.stringify({ kdf: { name: 'scrypt', params: { N: 2 ** 30, r: 8, p: 1 }, salt: 'AAAA' }, cipher: { name: 'nacl/secretbox', nonce: 'AAAA' }, ciphertext: 'AAAA' })).toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
    await assert.rejects(decryptPrivateKey(huge, 'x', 'k4'), isCode('KEY_INVALID', /out of the accepted range/));
    // 128·N·r would be 4 GiB: refused before scrypt runs.
    const big = huge.replace(/^(-----BEGIN[^\n]*\n)([^\n]*)/, (_m, h: string) => h + Buffer.from(JSON.stringify({ kdf: { name: 'scrypt', params: { N: 2 ** 20, r: 32, p: 1 }, salt: 'AAAA' }, cipher: { name: 'nacl/secretbox', nonce: 'AAAA' }, ciphertext: 'AAAA' })).toString('base64'));
    await assert.rejects(decryptPrivateKey(big, 'x', 'k5'), isCode('KEY_INVALID', /out of the accepted range/));
    assert.throws(() => parsePublicKey('nothing', 'p1'), isCode('KEY_INVALID', /not a public key/));
    await assert.rejects(openSigner('gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k'), isCode('UNSUPPORTED', /not supported yet/));
    await assert.rejects(openVerifier('hashivault://transit/key'), isCode('UNSUPPORTED', /not supported yet/));
  });

  test('Plinth keys work in cosign and cosign keys work in Plinth', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-keys-'));
    try {
      const env = { ...process.env, PLINTH_PASSWORD: 'pw1', COSIGN_PASSWORD: 'pw1' };
      const gen = await runPlinth(['key', 'generate', '--output-key-prefix', path.join(dir, 'p')], { env });
      assert.equal(gen.code, 0, gen.stderr);
      assert.match(await readFile(path.join(dir, 'p.key'), 'utf8'), /^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----/);
      const again = await runPlinth(['key', 'generate', '--output-key-prefix', path.join(dir, 'p')], { env });
      assert.equal(again.code, 2);
      assert.match(again.stderr, /exists; use --force/);
      const { stdout } = await execFileP(peer('cosign'), ['public-key', '--key', path.join(dir, 'p.key')], { env });
      assert.equal(stdout, await readFile(path.join(dir, 'p.pub'), 'utf8'));

      await execFileP(peer('cosign'), ['generate-key-pair', '--output-key-prefix', path.join(dir, 'c')], { env });
      const pub = await runPlinth(['key', 'public', '--key', path.join(dir, 'c.key')], { env });
      assert.equal(pub.code, 0, pub.stderr);
      assert.equal(pub.stdout, await readFile(path.join(dir, 'c.pub'), 'utf8'));
      const wrong = await runPlinth(['key', 'public', '--key', path.join(dir, 'c.key')], { env: { ...env, PLINTH_PASSWORD: 'nope' } });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /wrong password/);
      assert.doesNotMatch(wrong.stderr, /\n\s+at /);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('legacy signature vectors (containers/image fixtures signed by cosign)', async () => {
  const v = JSON.parse(await readFile(path.join(VECTORS, 'cosign-legacy-signature-vectors.json'), 'utf8')) as {
    public_keys: Record<string, string>;
    vectors: Array<{ fixture: string; mimeType: string; payload_b64: string; signature_b64: string; manifest_digest?: string; claimed_digest?: string; digest_matches_manifest?: boolean; verifies_with: string[] }>;
  };
  const verifiers: Verifier[] = Object.entries(v.public_keys).map(([name, pem]) => verifierOf(parsePublicKey(pem, name), name));
  for (const vec of v.vectors) {
    test(vec.fixture, () => {
      const payload = Buffer.from(vec.payload_b64, 'base64');
      const sig = Buffer.from(vec.signature_b64, 'base64');
      const digest = vec.manifest_digest ?? vec.claimed_digest ?? 'sha256:' + '0'.repeat(64);
      const r = checkSimpleSigning(payload, sig, digest, verifiers, {}, vec.fixture);
      const keyOk = vec.verifies_with.length > 0;
      if (!keyOk) {
        assert.equal(r.verified, false);
        assert.equal(r.key, undefined, 'no key verifies it');
        return;
      }
      assert.equal(r.key, vec.verifies_with[0]);
      if (vec.mimeType !== 'application/vnd.dev.cosign.simplesigning.v1+json') return assert.equal(r.verified, false);
      assert.equal(r.verified, vec.digest_matches_manifest !== false, r.reason);
      if (vec.digest_matches_manifest === false) assert.match(r.reason, /is for sha256:.*not this image/);
    });
  }
});

describe('image signatures on a registry, with the real cosign', () => {
  let reg: TestRegistry;
  let work: string;
  let imgA: string;
  let imgB: string;
  const env = { ...process.env, PLINTH_PASSWORD: 'pw', COSIGN_PASSWORD: 'pw' };
  const cosign = (args: string[]) => execFileP(peer('cosign'), args, { env });

  before(async () => {
    reg = await startRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-sign-'));
    const a = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=debian\n' }]] });
    const b = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=alpine\n' }]] });
    await copyImage(a.source, await openDestination(`${reg.host}/team/a:1`));
    await copyImage(b.source, await openDestination(`${reg.host}/team/b:1`));
    imgA = `${reg.host}/team/a:1`;
    imgB = `${reg.host}/team/b:1`;
    await execFileP(peer('cosign'), ['generate-key-pair', '--output-key-prefix', path.join(work, 'cosign')], { env });
    const pk = await generateKeyPair('pw');
    await writeFile(path.join(work, 'plinth.key'), pk.privateKeyPem);
    await writeFile(path.join(work, 'plinth.pub'), pk.publicKeyPem);
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('plinth sign → cosign verify --key (legacy .sig), with annotations', async () => {
    const r = await runPlinth(['sign', imgA, '--key', path.join(work, 'plinth.key'), '-a', 'team=platform', '--format', 'legacy', '--output', 'json'], { env });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { signed: Array<{ digest: string; location: string }> };
    const digest = (await runPlinth(['digest', imgA])).stdout.trim();
    assert.equal(out.signed[0]!.digest, digest, 'the digest the tag named is what was signed');
    assert.ok(out.signed[0]!.location.endsWith(cosignTag(digest, 'sig')));
    const v = await cosign(['verify', '--key', path.join(work, 'plinth.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', '-a', 'team=platform', imgA]);
    const payloads = JSON.parse(v.stdout) as Array<{ critical: { image: { 'docker-manifest-digest': string } }; optional: Record<string, string> }>;
    assert.equal(payloads[0]!.critical.image['docker-manifest-digest'], digest);
    assert.equal(payloads[0]!.optional.team, 'platform');
    // And cosign refuses it with another key, so the check above means something.
    await assert.rejects(cosign(['verify', '--key', path.join(work, 'cosign.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', imgA]));
    // Signing the same payload again with the same key adds nothing (as cosign).
    const again = await runPlinth(['sign', imgA, '--key', path.join(work, 'plinth.key'), '-a', 'team=platform', '--format', 'legacy'], { env });
    assert.equal(again.code, 0, again.stderr);
    const client = new RegistryClient(reg.host);
    try {
      const m = JSON.parse((await client.getManifest('team/a', cosignTag(digest, 'sig'))).bytes.toString()) as { layers: unknown[] };
      assert.equal(m.layers.length, 1);
    } finally {
      client.close();
    }
  });

  test('plinth sign (bundle, the default) → cosign verify; cosign sign (bundle) → plinth verify; both in the tag-schema index', async () => {
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=bundle\n' }]] });
    const name = `${reg.host}/team/c:1`;
    await copyImage(img.source, await openDestination(name));
    const digest = img.descriptor.digest;
    const r = await runPlinth(['sign', name, '--key', path.join(work, 'plinth.key'), '-a', 'env=prod'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Signed ${digest} \\(bundle, ${reg.host}/team/c@sha256:`));
    const v = await cosign(['verify', '--key', path.join(work, 'plinth.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', '-a', 'env=prod', name]);
    const claims = JSON.parse(v.stdout) as Array<{ critical: { image: { 'docker-manifest-digest': string }; type: string } }>;
    assert.equal(claims[0]!.critical.image['docker-manifest-digest'], digest);
    assert.equal(claims[0]!.critical.type, 'https://sigstore.dev/cosign/sign/v1');
    await assert.rejects(cosign(['verify', '--key', path.join(work, 'cosign.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', name]));

    await cosign(['sign', '--key', path.join(work, 'cosign.key'), '--tlog-upload=false', '--use-signing-config=false', '--allow-http-registry=true', '-a', 'by=cosign', '-y', `${reg.host}/team/c@${digest}`]);
    const res = await verifyImage(name, [await openVerifier(path.join(work, 'cosign.pub'))], { annotations: { by: 'cosign' } });
    assert.equal(res.verified, true);
    assert.deepEqual(res.signatures.map((s) => [s.format, s.verified]).sort(), [['bundle', false], ['bundle', true]]);
    const client = new RegistryClient(reg.host);
    try {
      const { manifests, source } = await client.referrers('team/c', digest);
      assert.equal(source, 'tag-schema', 'Debian\'s registry has no referrers API');
      assert.equal(manifests.length, 2);
      for (const m of manifests) assert.equal(m.artifactType, 'application/vnd.dev.sigstore.bundle.v0.3+json');
    } finally {
      client.close();
    }
    const cli = await runPlinth(['verify', name, '--key', path.join(work, 'plinth.pub'), '--key', path.join(work, 'cosign.pub'), '--format', 'json']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual((JSON.parse(cli.stdout) as { signatures: Array<{ verified: boolean }> }).signatures.map((s) => s.verified), [true, true]);
  });

  test('a bundle referrer copied onto another image is refused (its statement names the other digest)', async () => {
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=victim\n' }]] });
    const name = `${reg.host}/team/c2:1`;
    await copyImage(img.source, await openDestination(name));
    const client = new RegistryClient(reg.host);
    try {
      const src = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=bundle\n' }]] });
      const { manifests } = await client.referrers('team/c', src.descriptor.digest);
      const m = await client.getManifest('team/c', manifests[0]!.digest as string);
      const doc = JSON.parse(m.bytes.toString()) as { config: { digest: string }; layers: Array<{ digest: string }>; subject: Record<string, unknown> };
      for (const d of [doc.config.digest, doc.layers[0]!.digest]) await client.mountBlob('team/c2', d, 'team/c');
      doc.subject = { ...img.descriptor };
      const bytes = Buffer.from(JSON.stringify(doc));
      const { digestOf } = await import('../src/oci/digest.js');
      await client.putManifest('team/c2', digestOf(bytes), bytes, m.mediaType);
      await client.addReferrer('team/c2', img.descriptor.digest, { mediaType: m.mediaType, size: bytes.length, digest: digestOf(bytes), artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' });
      const r = await verifyImage(name, [await openVerifier(path.join(work, 'plinth.pub')), await openVerifier(path.join(work, 'cosign.pub'))]);
      assert.equal(r.verified, false);
      assert.equal(r.signatures.length, 1);
      assert.ok(r.signatures[0]!.key, 'the signature itself verifies');
      assert.match(r.signatures[0]!.reason, new RegExp(`statement is about ${src.descriptor.digest}, not this image`));
      await assert.rejects(cosign(['verify', '--key', r.signatures[0]!.key!, '--insecure-ignore-tlog=true', '--allow-http-registry=true', name]));
    } finally {
      client.close();
    }
  });

  test('cosign sign --key (legacy) → plinth verify; both signatures listed, appended to one .sig manifest', async () => {
    await cosign(['sign', '--key', path.join(work, 'cosign.key'), '--tlog-upload=false', '--use-signing-config=false', '--new-bundle-format=false', '--allow-http-registry=true', '-a', 'by=cosign', '-y', imgA]);
    const r = await runPlinth(['verify', imgA, '--key', path.join(work, 'cosign.pub'), '-a', 'by=cosign', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { verified: boolean; signatures: Array<{ verified: boolean; key?: string; reason: string }> };
    assert.equal(res.verified, true);
    assert.equal(res.signatures.length, 2, 'Plinth\'s and cosign\'s signatures in one .sig manifest');
    assert.deepEqual(res.signatures.map((s) => s.verified), [false, true]);
    // Both keys at once: both verify (no annotation asked).
    const both = await verifyImage(imgA, [await openVerifier(path.join(work, 'cosign.pub')), await openVerifier(path.join(work, 'plinth.pub'))]);
    assert.deepEqual(both.signatures.map((s) => s.verified), [true, true]);
  });

  test('refused: wrong key, missing annotation, unsigned image, a signature copied from another image', async () => {
    const wrong = await runPlinth(['verify', imgA, '--key', path.join(work, 'plinth.pub'), '-a', 'team=other']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /none of its 2 signature\(s\) verified/);
    assert.match(wrong.stdout, /annotation team is "platform", not "other"/);
    // Annotations are the payload's own string values: nothing from the prototype, no coercion.
    const proto = await runPlinth(['verify', imgA, '--key', path.join(work, 'plinth.pub'), '-a', 'constructor=function Object() { [native code] }']);
    assert.equal(proto.code, 1);
    const unsigned = await runPlinth(['verify', imgB, '--key', path.join(work, 'plinth.pub')]);
    assert.equal(unsigned.code, 1);
    assert.match(unsigned.stderr, /it has no signatures/);

    // Copy A's .sig manifest (and its blobs) to B's .sig tag: valid signatures, wrong digest.
    const client = new RegistryClient(reg.host);
    try {
      const dA = (await runPlinth(['digest', imgA])).stdout.trim();
      const dB = (await runPlinth(['digest', imgB])).stdout.trim();
      const m = await client.getManifest('team/a', cosignTag(dA, 'sig'));
      const doc = JSON.parse(m.bytes.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
      for (const d of [doc.config.digest, ...doc.layers.map((l) => l.digest)]) await client.mountBlob('team/b', d, 'team/a');
      await client.putManifest('team/b', cosignTag(dB, 'sig'), m.bytes, m.mediaType);
      const r = await verifyImage(imgB, [await openVerifier(path.join(work, 'plinth.pub')), await openVerifier(path.join(work, 'cosign.pub'))]);
      assert.equal(r.verified, false);
      assert.equal(r.signatures.length, 2);
      for (const s of r.signatures) assert.match(s.reason, new RegExp(`is for ${dA}, not this image \\(${dB}\\)`));
      // cosign agrees.
      await assert.rejects(cosign(['verify', '--key', path.join(work, 'plinth.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', imgB]));
    } finally {
      client.close();
    }
  });

  test('a tampered payload or a garbage signature manifest is refused, not a crash', async () => {
    const client = new RegistryClient(reg.host);
    try {
      const img = await buildImage({ layers: [[{ path: 'x', content: 'tamper' }]] });
      await copyImage(img.source, await openDestination(`${reg.host}/team/t:1`));
      const signed = await signImage(`${reg.host}/team/t:1`, await openSigner(path.join(work, 'plinth.key'), async () => 'pw'), { format: 'legacy' });
      const d = signed[0]!.digest;
      const m = await client.getManifest('team/t', cosignTag(d, 'sig'));
      const doc = JSON.parse(m.bytes.toString()) as { layers: Array<{ digest: string; size: number; annotations: Record<string, string> }> };
      // Same signature annotation, a different payload blob (claims the same digest, one byte differs).
      const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': `${reg.host}/team/t` }, image: { 'docker-manifest-digest': d }, type: 'cosign container image signature' }, optional: { x: 1 } }));
      const { digestOf } = await import('../src/oci/digest.js');
      const { Readable } = await import('node:stream');
      await client.uploadBlob('team/t', { digest: digestOf(payload), size: payload.length }, async () => Readable.from([payload]));
      doc.layers[0] = { ...doc.layers[0]!, digest: digestOf(payload), size: payload.length };
      await client.putManifest('team/t', cosignTag(d, 'sig'), Buffer.from(JSON.stringify(doc)), m.mediaType);
      const r = await verifyImage(`${reg.host}/team/t:1`, [await openVerifier(path.join(work, 'plinth.pub'))]);
      assert.equal(r.verified, false);
      assert.match(r.signatures[0]!.reason, /does not verify with/);

      // A layer that is not a simple-signing payload (what containers/image calls another attachment).
      doc.layers[0] = { ...doc.layers[0]!, mediaType: 'text/plain' } as never;
      await client.putManifest('team/t', cosignTag(d, 'sig'), Buffer.from(JSON.stringify(doc)), m.mediaType);
      const other = await verifyImage(`${reg.host}/team/t:1`, [await openVerifier(path.join(work, 'plinth.pub'))]);
      assert.equal(other.verified, false);
      assert.match(other.signatures[0]!.reason, /text\/plain is not a simple-signing payload/);
      const cli = await runPlinth(['verify', `${reg.host}/team/t:1`, '--key', path.join(work, 'plinth.pub')]);
      assert.equal(cli.code, 1);
      assert.doesNotMatch(cli.stderr, /\n\s+at /);
    } finally {
      client.close();
    }
  });

  test('attestations both ways: plinth attest (bundle and legacy .att) → cosign verify-attestation; cosign attest → plinth verify-attestation', async () => {
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=attest\n' }]] });
    const name = `${reg.host}/team/att:1`;
    await copyImage(img.source, await openDestination(name));
    const digest = img.descriptor.digest;
    const predicate = path.join(work, 'slsa.json');
    await writeFile(predicate, JSON.stringify({ buildType: 'https://example.com/build/v1', builder: { id: 'https://ci.example.com' } }));
    for (const format of ['bundle', 'legacy']) {
      const r = await runPlinth(['attest', name, '--predicate', predicate, '--type', 'slsaprovenance', '--key', path.join(work, 'plinth.key'), '--format', format], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`Attested https://slsa.dev/provenance/v0.2 about ${digest} \\(${format}`));
    }
    for (const nbf of ['true', 'false']) {
      const v = await cosign(['verify-attestation', `--new-bundle-format=${nbf}`, '--key', path.join(work, 'plinth.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--type', 'slsaprovenance', `${reg.host}/team/att@${digest}`]);
      const env0 = JSON.parse(v.stdout.trim().split('\n')[0]!) as { payload: string };
      const st = JSON.parse(Buffer.from(env0.payload, 'base64').toString()) as { predicateType: string; predicate: { builder: { id: string } } };
      assert.equal(st.predicateType, 'https://slsa.dev/provenance/v0.2');
      assert.equal(st.predicate.builder.id, 'https://ci.example.com');
    }
    await cosign(['attest', '--key', path.join(work, 'cosign.key'), '--tlog-upload=false', '--use-signing-config=false', '--allow-http-registry=true', '-y', '--type', 'cyclonedx', '--predicate', predicate, `${reg.host}/team/att@${digest}`]);
    const ok = await runPlinth(['verify-attestation', name, '--key', path.join(work, 'cosign.pub'), '--type', 'cyclonedx']);
    assert.equal(ok.code, 0, ok.stderr);
    const st = JSON.parse(ok.stdout.trim().split('\n')[0]!) as { predicateType: string; subject: Array<{ digest: { sha256: string } }> };
    assert.equal(st.predicateType, 'https://cyclonedx.org/bom');
    assert.equal(`sha256:${st.subject[0]!.digest.sha256}`, digest);
    const both = await runPlinth(['verify-attestation', name, '--key', path.join(work, 'plinth.pub'), '--type', 'slsaprovenance', '--format', 'json']);
    assert.equal(both.code, 0, both.stderr);
    assert.deepEqual((JSON.parse(both.stdout) as { attestations: Array<{ format: string; verified: boolean }> }).attestations.map((a) => [a.format, a.verified]).sort(), [['bundle', true], ['legacy', true]]);
    const none = await runPlinth(['verify-attestation', name, '--key', path.join(work, 'plinth.pub'), '--type', 'spdxjson']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /it has no https:\/\/spdx.dev\/Document attestations/);
    const wrongKey = await runPlinth(['verify-attestation', name, '--key', path.join(work, 'cosign.pub'), '--type', 'slsaprovenance']);
    assert.equal(wrongKey.code, 1);
    // An image signature is not an attestation, and an attestation is not an image signature.
    const sigOnly = await runPlinth(['verify', name, '--key', path.join(work, 'plinth.pub')]);
    assert.equal(sigOnly.code, 1);
  });

  test('triangulate names the same locations as cosign triangulate, and lists the bundle referrers', async () => {
    const name = `${reg.host}/team/att:1`;
    for (const type of ['signature', 'attestation', 'sbom']) {
      const mine = await runPlinth(['triangulate', name, '--type', type]);
      assert.equal(mine.code, 0, mine.stderr);
      const theirs = await cosign(['triangulate', '--allow-http-registry=true', '--type', type, name]);
      assert.equal(mine.stdout.trim(), theirs.stdout.trim(), type);
    }
    const all = JSON.parse((await runPlinth(['triangulate', name, '--format', 'json'])).stdout) as { attestation: { exists: boolean }; signature: { exists: boolean }; bundles: unknown[]; referrersSource: string };
    assert.equal(all.attestation.exists, true);
    assert.equal(all.signature.exists, false);
    assert.equal(all.bundles.length, 2, 'the slsaprovenance bundle from plinth and the cyclonedx one from cosign');
    assert.equal(all.referrersSource, 'tag-schema');
  });

  test('sbom --attest and scan --attest attach Plinth\'s SBOM (CycloneDX) and scan result (cosign\'s vuln predicate), verified by cosign', async () => {
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=debian\nVERSION_ID="12"\n' }, { path: 'var/lib/dpkg/status', content: 'Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u1\nArchitecture: amd64\nSource: openssl\n\n' }]] });
    const name = `${reg.host}/team/sbom:1`;
    await copyImage(img.source, await openDestination(name));
    const sb = await runPlinth(['sbom', name, '--format', 'cyclonedx', '--attest', '--key', path.join(work, 'plinth.key'), '-o', path.join(work, 'sbom.json')], { env });
    assert.equal(sb.code, 0, sb.stderr);
    assert.match(sb.stderr, /Attested https:\/\/cyclonedx.org\/bom about sha256:/);
    const v = await cosign(['verify-attestation', '--key', path.join(work, 'plinth.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--type', 'cyclonedx', name]);
    const st = JSON.parse(Buffer.from((JSON.parse(v.stdout.trim().split('\n')[0]!) as { payload: string }).payload, 'base64').toString()) as { predicate: { components: Array<{ name: string }> } };
    assert.ok(st.predicate.components.some((c) => c.name === 'libssl3'), 'the attested SBOM lists the image\'s packages');
    const noKey = await runPlinth(['sbom', name, '--format', 'cyclonedx', '--attest']);
    assert.equal(noKey.code, 2);

    const osv = path.join(work, 'osv');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(osv, { recursive: true });
    await writeFile(path.join(osv, 'DEBIAN-CVE-2024-0727.json'), JSON.stringify({ id: 'DEBIAN-CVE-2024-0727', modified: '2024-02-01T00:00:00Z', affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.13-1~deb12u1' }] }] }] }));
    const db = path.join(work, 'vuln.db');
    assert.equal((await runPlinth(['db', 'import', osv, '--db', db])).code, 0);
    const sc = await runPlinth(['scan', name, '--db', db, '--format', 'json', '--attest', '--key', path.join(work, 'plinth.key')], { env });
    assert.equal(sc.code, 0, sc.stderr);
    const att = await runPlinth(['verify-attestation', name, '--key', path.join(work, 'plinth.pub'), '--type', 'vuln']);
    assert.equal(att.code, 0, att.stderr);
    const vuln = JSON.parse(att.stdout.trim().split('\n')[0]!) as { predicate: { scanner: { result: { vulnerabilities: Array<{ id: string }> } } } };
    assert.deepEqual(vuln.predicate.scanner.result.vulnerabilities.map((x) => x.id), ['DEBIAN-CVE-2024-0727']);
    await cosign(['verify-attestation', '--key', path.join(work, 'plinth.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--type', 'vuln', name]);
  });

  test('--recursive signs an index and every platform manifest; local sources are refused with a reason', async () => {
    const { buildIndex } = await import('../src/source/memory.js');
    const amd = await buildImage({ layers: [[{ path: 'a', content: 'amd' }]], platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await buildImage({ layers: [[{ path: 'a', content: 'arm' }]], platform: { os: 'linux', architecture: 'arm64' } });
    const ix = buildIndex([amd, arm]);
    await copyImage(ix.source, await openDestination(`${reg.host}/team/multi:1`));
    const signer = await openSigner(path.join(work, 'plinth.key'), async () => 'pw');
    const signed = await signImage(`${reg.host}/team/multi:1`, signer, { recursive: true });
    assert.equal(signed.length, 3);
    assert.deepEqual(signed.slice(1).map((s) => s.digest).sort(), [amd.descriptor.digest, arm.descriptor.digest].sort());
    await cosign(['verify', '--key', path.join(work, 'plinth.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', `${reg.host}/team/multi@${arm.descriptor.digest}`]);
    const local = await runPlinth(['sign', `oci:${work}/nothing:x`, '--key', path.join(work, 'plinth.key')], { env });
    assert.equal(local.code, 2);
    assert.match(local.stderr, /signatures live next to images in a registry/);
  });
});
