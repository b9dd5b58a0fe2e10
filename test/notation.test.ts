/**
 * Notary Project signatures: images in a real registry signed by the real `notation` (JWS and
 * COSE, a test certificate from `notation cert generate-test`), verified by Plinth with
 * notation's own trust policy and trust store files, and `notation verify` as the oracle on the
 * same files. Tampered, foreign, misdirected and expired signatures are refused by both; hostile
 * envelopes and policies are named errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { RegistryClient } from '../src/registry/client.js';
import { digestOf } from '../src/oci/digest.js';
import { putBlob } from '../src/sign/image.js';
import { parseCose, parseJws, parseTrustPolicy, verifyNotation, NOTATION_ARTIFACT_TYPE } from '../src/notation/index.js';
import { decodeCbor } from '../src/notation/cbor.js';
import { runPlinth, isCode, mulberry32 } from './helpers/common.js';
import { peer } from './helpers/peers.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';

const execFileP = promisify(execFile);

interface Desc {
  digest: string;
  size: number;
  mediaType: string;
}

/** Put a notation-shaped signature manifest (one envelope layer) referring to `subject`. */
export async function plantNotationSignature(client: RegistryClient, repo: string, subject: Desc, envelope: Buffer, mediaType: string): Promise<string> {
  const cfg = await putBlob(client, repo, Buffer.from('{}'));
  const layer = await putBlob(client, repo, envelope);
  const m = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: NOTATION_ARTIFACT_TYPE, digest: cfg.digest, size: cfg.size }, layers: [{ mediaType, digest: layer.digest, size: layer.size }], subject };
  const bytes = Buffer.from(JSON.stringify(m));
  const d = digestOf(bytes);
  await client.putManifest(repo, d, bytes, m.mediaType);
  await client.addReferrer(repo, subject.digest, { mediaType: m.mediaType, digest: d, size: bytes.length, artifactType: NOTATION_ARTIFACT_TYPE });
  return d;
}

describe('notation signatures with the real notation', () => {
  let reg: TestRegistry;
  let home: string;
  let conf: string;
  let env: NodeJS.ProcessEnv;
  let store: string;
  const imgs: Record<string, Desc & { name: string }> = {};
  const notation = (args: string[]) => execFileP(peer('notation'), args, { env });
  const policy = (statements: unknown[]) => ({ version: '1.0', trustPolicies: statements });
  const strict = (scope: string, extra: Record<string, unknown> = {}) => ({ name: 'p', registryScopes: [scope], signatureVerification: { level: 'strict' }, trustStores: ['ca:wabbit-networks.io'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=Notary'], ...extra });
  async function writePolicy(doc: unknown): Promise<string> {
    const f = path.join(conf, 'trustpolicy.json');
    await writeFile(f, JSON.stringify(doc));
    return f;
  }
  /** notation verify's answer (exit 0 or not) for the policy in place. */
  async function oracle(ref: string): Promise<boolean> {
    try {
      await notation(['verify', '--insecure-registry', ref]);
      return true;
    } catch {
      return false;
    }
  }

  before(async () => {
    reg = await startRegistry();
    home = await mkdtemp(path.join(os.tmpdir(), 'plinth-notation-'));
    conf = path.join(home, '.config', 'notation');
    env = { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config') };
    store = path.join(conf, 'truststore');
    for (const n of ['a', 'b', 'c', 'd']) {
      const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: `ID=${n}\n` }]] });
      const name = `${reg.host}/team/${n}`;
      await copyImage(img.source, await openDestination(`${name}:1`));
      imgs[n] = { name, digest: img.descriptor.digest, size: img.descriptor.size, mediaType: img.descriptor.mediaType };
    }
    await notation(['cert', 'generate-test', '--default', 'wabbit-networks.io']);
    await notation(['cert', 'generate-test', 'foreign.example']);
    const at = (n: string) => `${imgs[n]!.name}@${imgs[n]!.digest}`;
    await notation(['sign', '--insecure-registry', at('a')]);
    await notation(['sign', '--insecure-registry', '--signature-format', 'cose', at('a')]);
    await notation(['sign', '--insecure-registry', at('b')]);
    await notation(['sign', '--insecure-registry', '--key', 'foreign.example', at('c')]);
    await notation(['sign', '--insecure-registry', '--expiry', '1h', at('d')]);
  });
  after(async () => {
    await reg?.stop();
    await rm(home, { recursive: true, force: true });
  });

  test('JWS and COSE signatures made by notation verify with notation\'s trust policy and store (as notation verify)', async () => {
    const file = await writePolicy(policy([strict(imgs.a!.name)]));
    assert.equal(await oracle(`${imgs.a!.name}:1`), true);
    const r = await verifyNotation(`${imgs.a!.name}:1`, { policy: file, trustStore: store });
    assert.equal(r.verified, true);
    assert.equal(r.digest, imgs.a!.digest);
    assert.deepEqual(r.signatures.map((s) => [s.envelope, s.verified]).sort(), [['cose', true], ['jws', true]]);
    for (const s of r.signatures) {
      assert.equal(s.signedDigest, imgs.a!.digest);
      assert.match(s.signer!, /CN=wabbit-networks\.io/);
      assert.deepEqual(s.checks.map((c) => [c.check, c.ok]), [['integrity', true], ['authenticity', true], ['authenticTimestamp', true], ['expiry', true], ['revocation', true]]);
    }
    const cli = await runPlinth(['verify', `${imgs.a!.name}:1`, '--notation', '--trust-policy', file, '--trust-store', store, '--format', 'json']);
    assert.equal(cli.code, 0, cli.stderr);
    const out = JSON.parse(cli.stdout) as { verified: boolean; notation: { signatures: unknown[] } };
    assert.equal(out.verified, true);
    assert.equal(out.notation.signatures.length, 2);
    // --store records each verified signature as an ATTESTATION occurrence naming the signer.
    const db = path.join(home, 'store.db');
    const rec = await runPlinth(['verify', `${imgs.a!.name}:1`, '--notation', '--trust-policy', file, '--trust-store', store, '--store', db]);
    assert.equal(rec.code, 0, rec.stderr);
    const { MetaStore } = await import('../src/store/store.js');
    const m = await MetaStore.open(db);
    try {
      const occ = await m.listOccurrences({ resourceUri: `${imgs.a!.name}@${imgs.a!.digest}`, kind: 'ATTESTATION', limit: 10 });
      assert.equal(occ.length, 2);
      for (const o of occ) assert.match((o.data as { signatures: Array<{ publicKeyId: string }> }).signatures[0]!.publicKeyId, /^notation C=US, ST=WA, L=Seattle, O=Notary, CN=wabbit-networks\.io$/);
    } finally {
      await m.close();
    }
    // notation's default locations (XDG_CONFIG_HOME) serve Plinth too.
    const dflt = await runPlinth(['verify', `${imgs.a!.name}:1`, '--notation'], { env });
    assert.equal(dflt.code, 0, dflt.stderr);
    assert.match(dflt.stdout, /verified {2}notation jws/);
    assert.match(dflt.stdout, /verified {2}notation cose/);
  });

  test('a signature by a key outside the trust store, or of another identity, is refused; audit logs it; skip skips', async () => {
    await writePolicy(policy([strict(imgs.c!.name)]));
    assert.equal(await oracle(`${imgs.c!.name}:1`), false);
    const file = path.join(conf, 'trustpolicy.json');
    const r = await verifyNotation(`${imgs.c!.name}:1`, { policy: file, trustStore: store });
    assert.equal(r.verified, false);
    assert.match(r.signatures[0]!.reason, /authenticity: the certificate chain does not lead to a certificate of the trust stores ca:wabbit-networks\.io/);
    const cli = await runPlinth(['verify', `${imgs.c!.name}:1`, '--notation', '--trust-policy', file, '--trust-store', store]);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /none of its 1 notation signature\(s\) verified/);

    // The right store, a wrong identity.
    await writePolicy(policy([strict(imgs.a!.name, { trustedIdentities: ['x509.subject: C=US, ST=WA, O=Someone Else'] })]));
    assert.equal(await oracle(`${imgs.a!.name}:1`), false);
    const id = await verifyNotation(`${imgs.a!.name}:1`, { policy: file, trustStore: store });
    assert.equal(id.verified, false);
    assert.match(id.signatures[0]!.reason, /is not one of the trusted identities of "p"/);

    // audit: authenticity is logged, not enforced (notation verify succeeds too).
    await writePolicy(policy([strict(imgs.c!.name, { signatureVerification: { level: 'audit' } })]));
    assert.equal(await oracle(`${imgs.c!.name}:1`), true);
    const audit = await verifyNotation(`${imgs.c!.name}:1`, { policy: file, trustStore: store });
    assert.equal(audit.verified, true);
    assert.match(audit.signatures[0]!.reason, /logged: authenticity:/);

    // skip: nothing is verified, by policy.
    const skip = await verifyNotation(`${imgs.c!.name}:1`, { policy: parseTrustPolicy(policy([{ name: 's', registryScopes: ['*'], signatureVerification: { level: 'skip' } }])), trustStore: store });
    assert.equal(skip.skipped, true);
    assert.equal(skip.verified, true);
    // No statement for the repository.
    await assert.rejects(verifyNotation(`${imgs.c!.name}:1`, { policy: parseTrustPolicy(policy([strict(imgs.a!.name)])), trustStore: store }), isCode('SIGNATURE_INVALID', /is not in the registryScopes of any trust policy statement/));
  });

  test('an unsigned image, a signature copied from another digest, and a tampered envelope are refused', async () => {
    const file = await writePolicy(policy([{ ...strict('*'), registryScopes: ['*'] }]));
    const none = await runPlinth(['verify', `${imgs.d!.name}@${imgs.d!.digest}`, '--notation', '--trust-policy', file, '--trust-store', store]);
    assert.equal(none.code, 0, 'd is signed');
    const client = new RegistryClient(reg.host);
    try {
      const fresh = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=unsigned\n' }]] });
      await copyImage(fresh.source, await openDestination(`${reg.host}/team/e:1`));
      const unsigned = await verifyNotation(`${reg.host}/team/e:1`, { policy: file, trustStore: store });
      assert.equal(unsigned.verified, false);
      assert.equal(unsigned.signatures.length, 0);

      // b's real signature, planted as a referrer of e: its payload names b's digest.
      const { manifests } = await client.referrers('team/b', imgs.b!.digest);
      const sigManifest = JSON.parse((await client.getManifest('team/b', manifests[0]!.digest as string)).bytes.toString()) as { layers: Array<{ digest: string; size: number; mediaType: string }> };
      const envelope = await client.getBlobBytes('team/b', sigManifest.layers[0]!.digest, sigManifest.layers[0]!.size);
      await plantNotationSignature(client, 'team/e', fresh.descriptor, envelope, sigManifest.layers[0]!.mediaType);
      assert.equal(await oracle(`${reg.host}/team/e@${fresh.descriptor.digest}`), false);
      const copied = await verifyNotation(`${reg.host}/team/e:1`, { policy: file, trustStore: store });
      assert.equal(copied.verified, false);
      assert.match(copied.signatures[0]!.reason, new RegExp(`integrity: the signature is for ${imgs.b!.digest}, not this image \\(${fresh.descriptor.digest}\\)`));

      // b's envelope with its payload rewritten to name e: the signature no longer verifies.
      const jws = JSON.parse(envelope.toString()) as { payload: string };
      const payload = JSON.parse(Buffer.from(jws.payload, 'base64url').toString()) as { targetArtifact: Desc };
      payload.targetArtifact = { ...payload.targetArtifact, digest: fresh.descriptor.digest, size: fresh.descriptor.size };
      const tampered = Buffer.from(JSON.stringify({ ...jws, payload: Buffer.from(JSON.stringify(payload)).toString('base64url') }));
      await plantNotationSignature(client, 'team/e', fresh.descriptor, tampered, 'application/jose+json');
      assert.equal(await oracle(`${reg.host}/team/e@${fresh.descriptor.digest}`), false);
      const t = await verifyNotation(`${reg.host}/team/e:1`, { policy: file, trustStore: store });
      assert.equal(t.verified, false);
      assert.equal(t.signatures.length, 2);
      assert.ok(t.signatures.some((s) => /integrity: the PS256 signature does not verify/.test(s.reason)), JSON.stringify(t.signatures.map((s) => s.reason)));

      // A COSE envelope with one byte of the payload changed.
      const { manifests: am } = await client.referrers('team/a', imgs.a!.digest);
      for (const d of am) {
        const m = JSON.parse((await client.getManifest('team/a', d.digest as string)).bytes.toString()) as { layers: Array<{ digest: string; size: number; mediaType: string }> };
        if (m.layers[0]!.mediaType !== 'application/cose') continue;
        const cose = Buffer.from(await client.getBlobBytes('team/a', m.layers[0]!.digest, m.layers[0]!.size));
        const i = cose.indexOf(Buffer.from(imgs.a!.digest.slice(7, 20)));
        cose[i] = cose[i] === 0x61 ? 0x62 : 0x61;
        const x = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=cose\n' }]] });
        await copyImage(x.source, await openDestination(`${reg.host}/team/f:1`));
        await plantNotationSignature(client, 'team/f', x.descriptor, cose, 'application/cose');
        const c = await verifyNotation(`${reg.host}/team/f:1`, { policy: file, trustStore: store });
        assert.equal(c.verified, false);
        assert.match(c.signatures[0]!.reason, /integrity: the PS256 signature does not verify/);
      }

      // An envelope too large to be one, and a manifest that is not one.
      const bigCfg = await putBlob(client, 'team/e', Buffer.from('{}'));
      const big = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: NOTATION_ARTIFACT_TYPE, digest: bigCfg.digest, size: 2 }, layers: [{ mediaType: 'application/jose+json', digest: bigCfg.digest, size: 5 << 20 }], subject: fresh.descriptor };
      const bytes = Buffer.from(JSON.stringify(big));
      await client.putManifest('team/e', digestOf(bytes), bytes, big.mediaType);
      await client.addReferrer('team/e', fresh.descriptor.digest, { mediaType: big.mediaType, digest: digestOf(bytes), size: bytes.length, artifactType: NOTATION_ARTIFACT_TYPE });
      const b = await verifyNotation(`${reg.host}/team/e:1`, { policy: file, trustStore: store });
      assert.equal(b.verified, false);
      assert.ok(b.signatures.some((s) => /over the 1048576-byte limit/.test(s.reason)));
    } finally {
      client.close();
    }
  });

  test('expiry and certificate validity: enforced by strict, logged by permissive (checked at a later time)', async () => {
    const file = await writePolicy(policy([strict(imgs.d!.name)]));
    const r = await verifyNotation(`${imgs.d!.name}:1`, { policy: file, trustStore: store });
    assert.equal(r.verified, true, r.signatures[0]?.reason);
    const later = new Date(Date.now() + 2 * 3600_000);
    const exp = await verifyNotation(`${imgs.d!.name}:1`, { policy: file, trustStore: store, now: later });
    assert.equal(exp.verified, false);
    assert.match(exp.signatures[0]!.reason, /expiry: the signature expired at/);
    const days = new Date(Date.now() + 3 * 86400_000);
    const cert = await verifyNotation(`${imgs.a!.name}:1`, { policy: parseTrustPolicy(policy([strict(imgs.a!.name)])), trustStore: store, now: days });
    assert.equal(cert.verified, false);
    assert.match(cert.signatures[0]!.reason, /authenticTimestamp: certificate 0 .* expired at/);
    const permissive = await verifyNotation(`${imgs.d!.name}:1`, { policy: parseTrustPolicy(policy([strict(imgs.d!.name, { signatureVerification: { level: 'permissive' } })])), trustStore: store, now: later });
    assert.equal(permissive.verified, true);
    assert.match(permissive.signatures[0]!.reason, /logged: expiry: the signature expired/);
    // An override turns expiry back on.
    const over = await verifyNotation(`${imgs.d!.name}:1`, { policy: parseTrustPolicy(policy([strict(imgs.d!.name, { signatureVerification: { level: 'permissive', override: { expiry: 'enforce' } } })])), trustStore: store, now: later });
    assert.equal(over.verified, false);
  });

  test('a CA chain made with openssl (P-384 root, P-256 code-signing leaf) in notation\'s signingkeys.json: ES256 JWS and COSE verify against the root; a chain cut short is refused', async () => {
    const dir = path.join(home, 'chain');
    await mkdir(dir, { recursive: true });
    const ossl = (args: string[]) => execFileP('openssl', args, { cwd: dir });
    await ossl(['ecparam', '-genkey', '-name', 'secp384r1', '-noout', '-out', 'ca.key']);
    await ossl(['req', '-new', '-x509', '-key', 'ca.key', '-out', 'ca.crt', '-days', '30', '-subj', '/C=US/ST=WA/O=Acme/CN=Acme Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    await ossl(['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', 'leaf.key']);
    await ossl(['pkcs8', '-topk8', '-nocrypt', '-in', 'leaf.key', '-out', 'leaf8.key']);
    await ossl(['req', '-new', '-key', 'leaf.key', '-out', 'leaf.csr', '-subj', '/C=US/ST=WA/O=Acme/CN=Acme Signer']);
    await writeFile(path.join(dir, 'ext.cnf'), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n');
    await ossl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.crt', '-days', '10', '-extfile', 'ext.cnf']);
    const { readFile } = await import('node:fs/promises');
    await writeFile(path.join(dir, 'chain.pem'), (await readFile(path.join(dir, 'leaf.crt'), 'utf8')) + (await readFile(path.join(dir, 'ca.crt'), 'utf8')));
    const keysFile = path.join(conf, 'signingkeys.json');
    const keys = JSON.parse(await readFile(keysFile, 'utf8')) as { keys: unknown[] };
    keys.keys.push({ name: 'acme', keyPath: path.join(dir, 'leaf8.key'), certPath: path.join(dir, 'chain.pem') });
    await writeFile(keysFile, JSON.stringify(keys));
    await mkdir(path.join(store, 'x509', 'ca', 'acme'), { recursive: true });
    await copyFile(path.join(dir, 'ca.crt'), path.join(store, 'x509', 'ca', 'acme', 'ca.crt'));
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=acme\n' }]] });
    const name = `${reg.host}/team/acme`;
    await copyImage(img.source, await openDestination(`${name}:1`));
    await notation(['sign', '--insecure-registry', '--key', 'acme', `${name}@${img.descriptor.digest}`]);
    await notation(['sign', '--insecure-registry', '--key', 'acme', '--signature-format', 'cose', `${name}@${img.descriptor.digest}`]);
    const file = await writePolicy(policy([{ name: 'acme', registryScopes: [name], signatureVerification: { level: 'strict' }, trustStores: ['ca:acme'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=Acme, CN=Acme Signer'] }]));
    assert.equal(await oracle(`${name}:1`), true);
    const r = await verifyNotation(`${name}:1`, { policy: file, trustStore: store });
    assert.equal(r.verified, true);
    assert.deepEqual(r.signatures.map((x) => [x.envelope, x.verified]).sort(), [['cose', true], ['jws', true]]);
    // The wabbit-networks store does not lead to Acme's root.
    const other = await verifyNotation(`${name}:1`, { policy: parseTrustPolicy(policy([{ name: 'w', registryScopes: [name], signatureVerification: { level: 'strict' }, trustStores: ['ca:wabbit-networks.io'], trustedIdentities: ['*'] }])), trustStore: store });
    assert.equal(other.verified, false);
    // The same JWS with the root cut from its (unsigned) x5c header: the chain no longer ends in a root.
    const client = new RegistryClient(reg.host);
    try {
      const { manifests } = await client.referrers('team/acme', img.descriptor.digest);
      for (const d of manifests) {
        const m = JSON.parse((await client.getManifest('team/acme', d.digest as string)).bytes.toString()) as { layers: Array<{ digest: string; size: number; mediaType: string }> };
        if (m.layers[0]!.mediaType !== 'application/jose+json') continue;
        const jws = JSON.parse((await client.getBlobBytes('team/acme', m.layers[0]!.digest, m.layers[0]!.size)).toString()) as { header: { x5c: string[] } };
        assert.equal(jws.header.x5c.length, 2);
        jws.header.x5c = jws.header.x5c.slice(0, 1);
        await plantNotationSignature(client, 'team/acme', img.descriptor, Buffer.from(JSON.stringify(jws)), 'application/jose+json');
      }
    } finally {
      client.close();
    }
    const withCut = await verifyNotation(`${name}:1`, { policy: file, trustStore: store });
    const cutCheck = withCut.signatures.find((x) => /not a self-signed root/.test(x.reason));
    assert.ok(cutCheck, JSON.stringify(withCut.signatures.map((x) => x.reason)));
    assert.match(cutCheck.reason, /integrity: the last certificate of the chain \(C=US, ST=WA, O=Acme, CN=Acme Signer\) is not a self-signed root/);
  });

  test('random corruption of real JWS and COSE envelopes: never a crash, never verified when the signed bytes change', async () => {
    const { checkNotation, loadTrustStores } = await import('../src/notation/verify.js');
    const p = parseTrustPolicy(policy([strict(imgs.a!.name)]));
    const stores = loadTrustStores(p, store);
    const target = { name: imgs.a!.name, digest: imgs.a!.digest, size: imgs.a!.size };
    const client = new RegistryClient(reg.host);
    const envelopes: Array<{ mediaType: string; bytes: Buffer }> = [];
    try {
      const { manifests } = await client.referrers('team/a', imgs.a!.digest);
      for (const d of manifests) {
        const m = JSON.parse((await client.getManifest('team/a', d.digest as string)).bytes.toString()) as { layers: Array<{ digest: string; size: number; mediaType: string }> };
        envelopes.push({ mediaType: m.layers[0]!.mediaType, bytes: await client.getBlobBytes('team/a', m.layers[0]!.digest, m.layers[0]!.size) });
      }
    } finally {
      client.close();
    }
    assert.deepEqual(envelopes.map((e) => e.mediaType).sort(), ['application/cose', 'application/jose+json']);
    const rand = mulberry32(17);
    for (const e of envelopes) {
      const ok = checkNotation([{ source: 'x', mediaType: e.mediaType, envelope: e.bytes }], target, { policy: p, stores });
      assert.equal(ok.verified, true, 'the untouched envelope verifies');
      // Where the signed payload and the signature are in the envelope.
      const signed: Array<[number, number]> = [];
      if (e.mediaType === 'application/cose') {
        const payload = Buffer.from(JSON.stringify({ targetArtifact: { digest: imgs.a!.digest } }).slice(0, 30));
        const at = e.bytes.indexOf(payload.subarray(2, 20));
        signed.push([at, at + 18], [e.bytes.length - 200, e.bytes.length]);
      } else {
        const doc = JSON.parse(e.bytes.toString()) as { payload: string; signature: string };
        for (const part of [doc.payload, doc.signature]) {
          const at = e.bytes.indexOf(part);
          signed.push([at, at + part.length - 4]);
        }
      }
      for (let i = 0; i < 300; i++) {
        const b = Buffer.from(e.bytes);
        const inSigned = i % 2 === 0;
        const [lo, hi] = signed[i % signed.length]!;
        const pos = inSigned ? lo + Math.floor(rand() * (hi - lo)) : Math.floor(rand() * b.length);
        const old = b[pos]!;
        b[pos] = e.mediaType === 'application/cose' ? old ^ (1 + Math.floor(rand() * 255)) : old === 0x41 ? 0x42 : 0x41;
        if (b[pos] === old) continue;
        const r = checkNotation([{ source: 'x', mediaType: e.mediaType, envelope: b }], target, { policy: p, stores });
        assert.equal(typeof r.signatures[0]!.reason, 'string');
        if (inSigned) assert.equal(r.verified, false, `${e.mediaType}: byte ${pos} changed (${old} → ${b[pos]}) and it still verified`);
      }
    }
  });

  test('RFC 3161 timestamps (an OpenSSL TSA): a tsa trust store makes the countersignature required; it keeps a signature valid after the certificate expires; a foreign token is refused', async () => {
    const { startTsa } = await import('./helpers/tsa.js');
    const tsa = await startTsa();
    try {
      const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=stamped\n' }]] });
      const other = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=stamped-other\n' }]] });
      const name = `${reg.host}/team/stamped`;
      await copyImage(img.source, await openDestination(`${name}:1`));
      await copyImage(other.source, await openDestination(`${name}:2`));
      await notation(['sign', '--insecure-registry', '--timestamp-url', tsa.url, '--timestamp-root-cert', tsa.rootCert, `${name}@${img.descriptor.digest}`]);
      await notation(['sign', '--insecure-registry', '--signature-format', 'cose', '--timestamp-url', tsa.url, '--timestamp-root-cert', tsa.rootCert, `${name}@${img.descriptor.digest}`]);
      await notation(['sign', '--insecure-registry', `${name}@${img.descriptor.digest}`]);
      await notation(['sign', '--insecure-registry', '--timestamp-url', tsa.url, '--timestamp-root-cert', tsa.rootCert, `${name}@${other.descriptor.digest}`]);
      assert.ok(tsa.issued >= 3);
      await mkdir(path.join(store, 'x509', 'tsa', 'test-tsa'), { recursive: true });
      await copyFile(tsa.rootCert, path.join(store, 'x509', 'tsa', 'test-tsa', 'root.crt'));
      const withTsa = (extra: Record<string, unknown> = {}) => policy([strict(name, { trustStores: ['ca:wabbit-networks.io', 'tsa:test-tsa'], ...extra })]);
      const file = await writePolicy(withTsa());
      assert.equal(await oracle(`${name}@${img.descriptor.digest}`), true);
      const r = await verifyNotation(`${name}:1`, { policy: file, trustStore: store });
      assert.equal(r.verified, true);
      const stamped = r.signatures.filter((x) => x.verified);
      assert.deepEqual(stamped.map((x) => x.envelope).sort(), ['cose', 'jws']);
      for (const x of stamped) assert.match(x.checks.find((c) => c.check === 'authenticTimestamp')!.message, /^time stamped .* by C=US, ST=WA, O=TSA, CN=TSA Signer; the certificate chain was valid then$/);
      const plain = r.signatures.filter((x) => !x.verified);
      assert.equal(plain.length, 1);
      assert.match(plain[0]!.reason, /authenticTimestamp: no timestamp countersignature was found in the signature envelope/);

      // Two days later the test certificate (valid one day) has expired: the time stamp keeps the
      // stamped signatures valid; without a tsa store (or for the unstamped one) it does not.
      const later = new Date(Date.now() + 2 * 86400_000);
      const p2 = parseTrustPolicy(withTsa());
      const afterExpiry = await verifyNotation(`${name}:1`, { policy: p2, trustStore: store, now: later });
      assert.equal(afterExpiry.signatures.filter((x) => x.verified).length, 2);
      const noTsa = await verifyNotation(`${name}:1`, { policy: parseTrustPolicy(policy([strict(name)])), trustStore: store, now: later });
      assert.equal(noTsa.verified, false);
      assert.ok(noTsa.signatures.every((x) => /authenticTimestamp: certificate 0 .* expired at/.test(x.reason)));
      // verifyTimestamp afterCertExpiry: before expiry the stamp is not needed (the unstamped one passes too).
      const after = await verifyNotation(`${name}:1`, { policy: parseTrustPolicy(withTsa({ signatureVerification: { level: 'strict', verifyTimestamp: 'afterCertExpiry' } })), trustStore: store });
      assert.equal(after.signatures.filter((x) => x.verified).length, 3);
      assert.throws(() => parseTrustPolicy(withTsa({ signatureVerification: { level: 'strict', verifyTimestamp: 'sometimes' } })), isCode('USAGE', /verifyTimestamp "sometimes" is not always or afterCertExpiry/));

      // A TSA the tsa store does not vouch for.
      await mkdir(path.join(store, 'x509', 'tsa', 'wrong-tsa'), { recursive: true });
      await copyFile(path.join(store, 'x509', 'ca', 'wabbit-networks.io', (await readdir(path.join(store, 'x509', 'ca', 'wabbit-networks.io')))[0]!), path.join(store, 'x509', 'tsa', 'wrong-tsa', 'x.crt'));
      const wrong = await verifyNotation(`${name}:1`, { policy: parseTrustPolicy(policy([strict(name, { trustStores: ['ca:wabbit-networks.io', 'tsa:wrong-tsa'] })])), trustStore: store });
      assert.equal(wrong.verified, false);
      assert.ok(wrong.signatures.some((x) => /the TSA certificate chain \(C=US, ST=WA, O=TSA, CN=TSA Signer\) does not lead to a certificate of the tsa trust stores/.test(x.reason)), JSON.stringify(wrong.signatures.map((x) => x.reason)));

      // The time stamp of another signature, moved into this envelope's (unsigned) header.
      const client = new RegistryClient(reg.host);
      try {
        const jwsOf = async (digest: string) => {
          const { manifests } = await client.referrers('team/stamped', digest);
          for (const d of manifests) {
            const m = JSON.parse((await client.getManifest('team/stamped', d.digest as string)).bytes.toString()) as { layers: Array<{ digest: string; size: number; mediaType: string }> };
            if (m.layers[0]!.mediaType !== 'application/jose+json') continue;
            const j = JSON.parse((await client.getBlobBytes('team/stamped', m.layers[0]!.digest, m.layers[0]!.size)).toString()) as { header: Record<string, unknown> };
            if (j.header['io.cncf.notary.timestampSignature']) return j;
          }
          throw new Error('no time-stamped JWS');
        };
        const mine = await jwsOf(img.descriptor.digest);
        const theirs = await jwsOf(other.descriptor.digest);
        mine.header['io.cncf.notary.timestampSignature'] = theirs.header['io.cncf.notary.timestampSignature'];
        await plantNotationSignature(client, 'team/stamped', img.descriptor, Buffer.from(JSON.stringify(mine)), 'application/jose+json');
        const swapped = await verifyNotation(`${name}:1`, { policy: file, trustStore: store });
        assert.ok(swapped.signatures.some((x) => /authenticTimestamp: timestamp countersignature: its message imprint is not the hash of this signature/.test(x.reason)), JSON.stringify(swapped.signatures.map((x) => x.reason)));
        // Garbage in the header is named, not a crash.
        mine.header['io.cncf.notary.timestampSignature'] = Buffer.from('not a token').toString('base64');
        await plantNotationSignature(client, 'team/stamped', img.descriptor, Buffer.from(JSON.stringify(mine)), 'application/jose+json');
        const garbage = await verifyNotation(`${name}:1`, { policy: file, trustStore: store });
        assert.ok(garbage.signatures.some((x) => /timestamp countersignature: not an RFC 3161 time-stamp token/.test(x.reason)));
      } finally {
        client.close();
      }
    } finally {
      await tsa.stop();
    }
  });

  test('trust store layout: another store name, DER files, a missing store named', async () => {
    const alt = path.join(home, 'alt-store');
    const from = path.join(store, 'x509', 'ca', 'wabbit-networks.io');
    await mkdir(path.join(alt, 'x509', 'ca', 'mine'), { recursive: true });
    for (const f of await readdir(from)) {
      const { stdout } = await execFileP('openssl', ['x509', '-in', path.join(from, f), '-outform', 'DER', '-out', path.join(alt, 'x509', 'ca', 'mine', `${f}.der`)]);
      void stdout;
    }
    const p = parseTrustPolicy(policy([strict(imgs.a!.name, { trustStores: ['ca:mine'] })]));
    assert.equal((await verifyNotation(`${imgs.a!.name}:1`, { policy: p, trustStore: alt })).verified, true);
    const missing = await verifyNotation(`${imgs.a!.name}:1`, { policy: parseTrustPolicy(policy([strict(imgs.a!.name, { trustStores: ['ca:nothere'] })])), trustStore: alt });
    assert.equal(missing.verified, false);
    assert.match(missing.signatures[0]!.reason, /trust store ca:nothere: cannot read .*no such directory/);
    await copyFile(path.join(from, (await readdir(from))[0]!), path.join(alt, 'x509', 'ca', 'mine', 'again.pem'));
    assert.equal((await verifyNotation(`${imgs.a!.name}:1`, { policy: p, trustStore: alt })).verified, true);
  });
});

describe('notation trust policies and envelopes: hostile input', () => {
  const ok = { name: 'p', registryScopes: ['r.example/a'], signatureVerification: { level: 'strict' }, trustStores: ['ca:x'], trustedIdentities: ['*'] };
  test('trust policy validation as notation\'s', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ version: '2.0', trustPolicies: [ok] }, /version "2.0" is not supported/],
      [{ version: '1.0', trustPolicies: [] }, /trustPolicies is empty/],
      [{ version: '1.0', trustPolicies: [ok, ok] }, /same name "p"/],
      [{ version: '1.0', trustPolicies: [ok, { ...ok, name: 'q' }] }, /registry scope "r.example\/a" is in statements "p" and "q"/],
      [{ version: '1.0', trustPolicies: [{ ...ok, registryScopes: ['*', 'r.example/b'] }] }, /cannot be combined/],
      [{ version: '1.0', trustPolicies: [{ ...ok, signatureVerification: { level: 'lax' } }] }, /level "lax" is not strict/],
      [{ version: '1.0', trustPolicies: [{ ...ok, signatureVerification: { level: 'strict', override: { integrity: 'log' } } }] }, /integrity check cannot be overridden/],
      [{ version: '1.0', trustPolicies: [{ ...ok, trustStores: ['x509:foo'] }] }, /is not ca:NAME/],
      [{ version: '1.0', trustPolicies: [{ ...ok, trustedIdentities: ['x509.subject: CN=foo'] }] }, /must have at least the C, ST \(or S\) and O/],
      [{ version: '1.0', trustPolicies: [{ ...ok, trustedIdentities: ['email: a@b'] }] }, /is not "\*" or "x509.subject: DN"/],
      [{ version: '1.0', trustPolicies: [{ ...ok, signatureVerification: { level: 'skip' } }] }, /skip level takes no trustStores/],
      [null, /not a JSON object/],
    ];
    for (const [doc, re] of bad) assert.throws(() => parseTrustPolicy(doc), isCode('USAGE', re), JSON.stringify(doc));
    assert.equal(parseTrustPolicy({ version: '1.0', trustPolicies: [ok] }).statements[0]!.actions.revocation, 'enforce');
  });

  test('JWS: not JSON, unknown critical header, wrong content type, bad algorithm', () => {
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const prot = { alg: 'PS256', crit: ['io.cncf.notary.signingScheme'], cty: 'application/vnd.cncf.notary.payload.v1+json', 'io.cncf.notary.signingScheme': 'notary.x509', 'io.cncf.notary.signingTime': '2026-01-01T00:00:00Z' };
    const jws = (p: unknown, header: unknown = { x5c: [] }) => Buffer.from(JSON.stringify({ protected: b64(p), payload: b64({}), signature: 'AA', header }));
    assert.throws(() => parseJws(Buffer.from('{')), isCode('SIGNATURE_INVALID', /not JSON/));
    assert.throws(() => parseJws(jws({ ...prot, crit: [...prot.crit, 'x-mine'], 'x-mine': 1 })), isCode('SIGNATURE_INVALID', /unknown critical header "x-mine"/));
    assert.throws(() => parseJws(jws({ ...prot, cty: 'text/plain' })), isCode('SIGNATURE_INVALID', /content type is "text\/plain"/));
    assert.throws(() => parseJws(jws({ ...prot, alg: 'none' })), isCode('SIGNATURE_INVALID', /algorithm "none"/));
    assert.throws(() => parseJws(jws({ ...prot, crit: [] })), isCode('SIGNATURE_INVALID', /signingScheme is not marked critical/));
    assert.throws(() => parseJws(jws(prot)), isCode('SIGNATURE_INVALID', /no certificate chain/));
    assert.throws(() => parseJws(jws(prot, { x5c: ['AAAA'] })), isCode('SIGNATURE_INVALID', /certificate 0 of the chain is not a readable X.509 certificate/));
  });

  test('COSE/CBOR: truncated, indefinite, deep, oversized lengths, trailing bytes', () => {
    assert.throws(() => parseCose(Buffer.from([0xd2, 0x84, 0x40])), isCode('SIGNATURE_INVALID', /truncated/));
    assert.throws(() => decodeCbor(Buffer.from([0x9f, 0xff])), isCode('SIGNATURE_INVALID', /indefinite length/));
    assert.throws(() => decodeCbor(Buffer.alloc(100, 0x81)), isCode('SIGNATURE_INVALID', /nested deeper than 16/));
    assert.throws(() => decodeCbor(Buffer.from([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), isCode('SIGNATURE_INVALID', /truncated: length 18446744073709551615, 0 bytes left/));
    assert.throws(() => decodeCbor(Buffer.from([0x01, 0x02])), isCode('SIGNATURE_INVALID', /1 bytes after the item/));
    assert.throws(() => parseCose(Buffer.from([0xc1, 0x00])), isCode('SIGNATURE_INVALID', /CBOR tag 1 is not COSE_Sign1/));
    assert.throws(() => parseCose(Buffer.from([0x84, 0x40, 0xa0, 0x40, 0x40])), isCode('SIGNATURE_INVALID', /algorithm undefined/));
    const many = Buffer.concat([Buffer.from([0x9a, 0x00, 0x01, 0x00, 0x00]), Buffer.alloc(65536, 0x00)]);
    assert.throws(() => decodeCbor(many), isCode('SIGNATURE_INVALID', /more than 4096 items/));
  });
});
