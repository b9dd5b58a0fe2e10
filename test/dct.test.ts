/**
 * Docker Content Trust (Notary v1): Debian's real notary-server on loopback, the real `notary`
 * CLI publishing targets for images in a real registry (init, addhash, a targets/releases
 * delegation, key rotations), Plinth's TUF client verifying them; and the attacks, made by
 * replaying or editing real metadata through a proxy, each refused with a message naming it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { dctTargets, verifyDct, canonicalJson } from '../src/notary/index.js';
import { runPlinth, isCode } from './helpers/common.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { notaryCli, startMetadataProxy, startNotaryServer, type MetadataProxy, type NotaryServer } from './helpers/notary.js';

const execFileP = promisify(execFile);

interface Img {
  digest: string;
  size: number;
  hex: string;
}

describe('Docker Content Trust with the real notary-server and notary CLI', () => {
  let reg: TestRegistry;
  let server: NotaryServer;
  let proxy: MetadataProxy;
  let work: string;
  let notary: ReturnType<typeof notaryCli>;
  let G: string;
  let trust: string;
  const imgs: Record<string, Img> = {};
  const meta = async (role: string, gun = G) => Buffer.from(await (await fetch(`${server.url}/v2/${gun}/_trust/tuf/${role}.json`)).arrayBuffer());
  const verify = (tag: string, o: Parameters<typeof verifyDct>[1] = {}) => verifyDct(`${G}:${tag}`, { server: server.url, trustDir: trust, ...o });

  before(async () => {
    [reg, server] = await Promise.all([startRegistry(), startNotaryServer()]);
    proxy = await startMetadataProxy(server.url);
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-dct-'));
    notary = notaryCli(server.url, path.join(work, 'publisher'));
    trust = path.join(work, 'plinth-trust');
    G = `${reg.host}/team/a`;
    for (const [n, tags] of [['a1', ['1']], ['a2', ['2', '5']], ['a3', ['3']]] as const) {
      const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: `ID=${n}\n` }]] });
      for (const t of tags) await copyImage(img.source, await openDestination(`${G}:${t}`));
      imgs[n] = { digest: img.descriptor.digest, size: img.descriptor.size, hex: img.descriptor.digest.slice(7) };
    }
  });
  after(async () => {
    await proxy?.stop();
    await server?.stop();
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('init, addhash, publish → plinth verify --dct; a tag signed for other content and an unsigned tag are refused', async () => {
    await notary(['init', G]);
    await notary(['addhash', G, '1', String(imgs.a1!.size), '--sha256', imgs.a1!.hex]);
    // Tag 2 is signed with tag 1's content, but the registry serves other content under it.
    await notary(['addhash', G, '2', String(imgs.a1!.size), '--sha256', imgs.a1!.hex]);
    await notary(['publish', G]);
    const cli = await runPlinth(['verify', `${G}:1`, '--dct', '--trust-server', server.url, '--trust-dir', trust, '--format', 'json']);
    assert.equal(cli.code, 0, cli.stderr);
    const r = JSON.parse(cli.stdout) as { verified: boolean; dct: { firstUse: boolean; rootKeys: string[]; signatures: Array<{ role: string; signedDigest: string }> } };
    assert.equal(r.verified, true);
    assert.equal(r.dct.firstUse, true);
    assert.equal(r.dct.signatures[0]!.role, 'targets');
    assert.equal(r.dct.signatures[0]!.signedDigest, imgs.a1!.digest);
    const db = path.join(work, 'store.db');
    const rec = await runPlinth(['verify', `${G}:1`, '--dct', '--trust-server', server.url, '--trust-dir', trust, '--store', db]);
    assert.equal(rec.code, 0, rec.stderr);
    const { MetaStore } = await import('../src/store/store.js');
    const m = await MetaStore.open(db);
    try {
      const occ = await m.listOccurrences({ resourceUri: `${G}@${imgs.a1!.digest}`, kind: 'ATTESTATION', limit: 10 });
      assert.equal(occ.length, 1);
      assert.equal((occ[0]!.data as { signatures: Array<{ publicKeyId: string }> }).signatures[0]!.publicKeyId, `Docker Content Trust targets of ${G} (root key ${r.dct.rootKeys[0]})`);
    } finally {
      await m.close();
    }
    // The root key ID Plinth reports is the one the notary CLI shows.
    assert.match(await notary(['key', 'list']), new RegExp(`root\\s+${r.dct.rootKeys[0]}`));

    const two = await runPlinth(['verify', `${G}:2`, '--dct', '--trust-server', server.url, '--trust-dir', trust]);
    assert.equal(two.code, 1);
    assert.match(two.stdout, new RegExp(`the signed target 2 \\(targets\\) is ${imgs.a1!.digest}, the registry serves ${imgs.a2!.digest}`));
    const three = await verify('3');
    assert.equal(three.verified, false);
    assert.match(three.signatures[0]!.reason, /no signed target for tag 3/);
    // By digest: a tag signs that digest.
    assert.equal((await verifyDct(`${G}@${imgs.a1!.digest}`, { server: server.url, trustDir: trust })).verified, true);
    const u = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=unsigned\n' }]] });
    await copyImage(u.source, await openDestination(`${reg.host}/team/unsigned:1`));
    const none = await runPlinth(['verify', `${reg.host}/team/unsigned:1`, '--dct', '--trust-server', server.url, '--trust-dir', trust]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /has no trust data for .*team\/unsigned \(the repository is not signed\)/);

    const t = await runPlinth(['dct', 'targets', G, '--trust-server', server.url, '--trust-dir', trust, '--format', 'json']);
    assert.equal(t.code, 0, t.stderr);
    const targets = JSON.parse(t.stdout) as { signedTags: Array<{ tag: string; digest: string; size: number; signers: string[] }> };
    assert.deepEqual(targets.signedTags.map((s) => [s.tag, s.digest, s.size, s.signers]), [['1', imgs.a1!.digest, imgs.a1!.size, ['Repo Admin']], ['2', imgs.a1!.digest, imgs.a1!.size, ['Repo Admin']]]);
    // The same tags as the notary CLI lists.
    const listed = await notary(['list', G]);
    for (const s of targets.signedTags) assert.match(listed, new RegExp(`^${s.tag}\\s+${s.digest.slice(7)}\\s+${s.size}\\s+targets`, 'm'));
    assert.equal((await runPlinth(['dct', 'targets', `${G}:1`, '--trust-server', server.url])).code, 2);
  });

  test('a targets/releases delegation signs a tag; it is looked up first; --dct-role requires it', async () => {
    await execFileP('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', path.join(work, 'd.key')]);
    await execFileP('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', path.join(work, 'd.key'), '-out', path.join(work, 'd8.key')]);
    await execFileP('openssl', ['req', '-new', '-x509', '-key', path.join(work, 'd.key'), '-out', path.join(work, 'd.crt'), '-days', '30', '-subj', '/CN=releaser']);
    await notary(['delegation', 'add', G, 'targets/releases', path.join(work, 'd.crt'), '--all-paths']);
    await notary(['key', 'import', path.join(work, 'd8.key'), '--role', 'targets/releases']);
    await notary(['addhash', G, '3', String(imgs.a3!.size), '--sha256', imgs.a3!.hex, '--roles', 'targets/releases']);
    await notary(['addhash', G, '5', String(imgs.a2!.size), '--sha256', imgs.a2!.hex, '--roles', 'targets/releases']);
    await notary(['publish', G]);
    const r = await verify('3');
    assert.equal(r.verified, true, r.signatures[0]!.reason);
    assert.equal(r.signatures[0]!.role, 'targets/releases');
    assert.equal((await verify('3', { requiredRoles: ['targets/releases'] })).verified, true);
    const admin = await verify('1', { requiredRoles: ['targets/releases'] });
    assert.equal(admin.verified, false);
    assert.match(admin.signatures[0]!.reason, /1 is signed by targets, not by targets\/releases/);
    // A delegation of the delegation (targets/releases/qa), signed with the releases key.
    await execFileP('openssl', ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', path.join(work, 'q.key')]);
    await execFileP('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', path.join(work, 'q.key'), '-out', path.join(work, 'q8.key')]);
    await execFileP('openssl', ['req', '-new', '-x509', '-key', path.join(work, 'q.key'), '-out', path.join(work, 'q.crt'), '-days', '30', '-subj', '/CN=qa']);
    await notary(['delegation', 'add', G, 'targets/releases/qa', path.join(work, 'q.crt'), '--all-paths']);
    await notary(['key', 'import', path.join(work, 'q8.key'), '--role', 'targets/releases/qa']);
    await notary(['addhash', G, 'qa', String(imgs.a3!.size), '--sha256', imgs.a3!.hex, '--roles', 'targets/releases/qa']);
    await notary(['publish', G]);
    const nested = await verify('3');
    assert.equal(nested.signatures[0]!.role, 'targets/releases', 'tag 3 is still found in targets/releases first');
    const qa = await dctTargets(G, { server: server.url, trustDir: trust });
    assert.deepEqual(qa.signedTags.find((s) => s.tag === 'qa')!.signers, ['releases/qa']);
    assert.ok(qa.signers.some((s) => s.name === 'releases/qa'));
    const t = await dctTargets(G, { server: server.url, trustDir: trust });
    assert.deepEqual(t.signedTags.find((s) => s.tag === '3')!.signers, ['releases']);
    const text = await runPlinth(['dct', 'targets', G, '--trust-server', server.url, '--trust-dir', trust]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^3\\s+${imgs.a3!.digest}\\s+${imgs.a3!.size}\\s+releases$`, 'm'));
    assert.match(text.stdout, /Root Key:\s+[0-9a-f]{64}/);
    // Without --dct, the DCT flags are a usage error; without any verifier, too.
    assert.equal((await runPlinth(['verify', `${G}:3`, '--trust-server', server.url])).code, 2);
    const none = await runPlinth(['verify', `${G}:3`]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /or --dct, or --notation/);
  });

  test('key rotations (targets, server-managed snapshot, root): the trust directory follows the signed chain of roots; pins', async () => {
    await notary(['key', 'rotate', G, 'targets']);
    await notary(['key', 'rotate', G, 'snapshot', '-r']);
    await notary(['key', 'rotate', G, 'root'], 'yes\n');
    const r = await verify('3');
    assert.equal(r.verified, true, r.signatures[0]!.reason);
    assert.equal(r.firstUse, false);
    assert.ok(r.rootRotations.length >= 1, 'the root moved on');
    const keys = await notary(['key', 'list']);
    assert.match(keys, new RegExp(`root\\s+${r.rootKeys[0]}`));
    // A pin on the current root key passes; another is refused.
    assert.equal((await verify('3', { rootKeyPins: [`sha256:${r.rootKeys[0]}`] })).verified, true);
    await assert.rejects(verify('3', { rootKeyPins: ['0'.repeat(64)] }), isCode('SIGNATURE_INVALID', /not signed by a pinned root key/));
    await assert.rejects(verify('3', { rootKeyPins: ['xyz'] }), isCode('USAGE', /is not a key ID/));
  });

  test('attacks through a proxy: rollback of timestamp and snapshot, a targets file off its hash, threshold not met, expiry, endless and huge answers', async () => {
    const old = { timestamp: await meta('timestamp'), snapshot: await meta('snapshot'), targets: await meta('targets') };
    await notary(['addhash', G, '9', String(imgs.a1!.size), '--sha256', imgs.a1!.hex]);
    await notary(['publish', G]);
    assert.equal((await verify('1')).verified, true, 'the newer metadata is trusted now');
    const via = (o: Parameters<typeof verifyDct>[1] = {}) => verify('1', { server: proxy.url, ...o });
    const rule = (re: RegExp, answer: Buffer | 'endless') => proxy.rules.splice(0, proxy.rules.length, { match: re, answer });
    const TS = /\/_trust\/tuf\/timestamp\.json$/;
    const SNAP = /\/_trust\/tuf\/snapshot(\.[0-9a-f]{64})?\.json$/;
    const TARGETS = /\/_trust\/tuf\/targets(\.[0-9a-f]{64})?\.json$/;

    rule(TS, old.timestamp);
    await assert.rejects(via(), isCode('SIGNATURE_INVALID', /timestamp\.json version \d+ is older than the trusted version \d+ \(rollback\)/));

    // Without a trusted timestamp, the replayed snapshot is caught by its own version.
    const trust2 = path.join(work, 'plinth-trust-2');
    await cp(trust, trust2, { recursive: true });
    await rm(path.join(trust2, 'tuf', ...G.split('/'), 'metadata', 'timestamp.json'));
    proxy.rules.splice(0, proxy.rules.length, { match: TS, answer: old.timestamp }, { match: SNAP, answer: old.snapshot });
    await assert.rejects(via({ trustDir: trust2 }), isCode('SIGNATURE_INVALID', /snapshot\.json version \d+ is older than the trusted version \d+ \(rollback\)/));

    rule(TARGETS, old.targets);
    await assert.rejects(via(), isCode('SIGNATURE_INVALID', /targets\.json (is \d+ bytes, snapshot\.json says \d+|does not match the sha256 hash snapshot\.json lists)/));

    const ts = JSON.parse((await meta('timestamp')).toString()) as { signatures: Array<{ sig: string }> };
    rule(TS, Buffer.from(JSON.stringify({ ...ts, signatures: [] })));
    await assert.rejects(via(), isCode('SIGNATURE_INVALID', /timestamp\.json: 0 valid signatures from its keys, the threshold is 1 \(0 signatures present\)/));
    const flipped = ts.signatures.map((s) => ({ ...s, sig: Buffer.from(Buffer.from(s.sig, 'base64').map((b, i) => (i === 3 ? b ^ 1 : b))).toString('base64') }));
    rule(TS, Buffer.from(JSON.stringify({ ...ts, signatures: flipped })));
    await assert.rejects(via(), isCode('SIGNATURE_INVALID', /timestamp\.json: 0 valid signatures from its keys, the threshold is 1 \(1 signature present\)/));

    rule(TS, 'endless');
    await assert.rejects(via(), isCode('SIGNATURE_INVALID', /timestamp\.json from the trust server is larger than the 65536-byte limit/));
    rule(/\/_trust\/tuf\/root\.json$/, Buffer.alloc(600 * 1024, 0x20));
    await assert.rejects(via(), isCode('SIGNATURE_INVALID', /root\.json from the trust server is larger than the 524288-byte limit/));
    rule(/\/_trust\/tuf\/root\.json$/, Buffer.from('{"signed":'));
    await assert.rejects(via(), isCode('SIGNATURE_INVALID', /root\.json is not JSON/));
    proxy.rules.length = 0;

    // Real metadata, read 15 days later: the timestamp (valid 14 days) has expired.
    await assert.rejects(verify('1', { now: new Date(Date.now() + 15 * 86400_000), trustDir: false }), isCode('SIGNATURE_INVALID', /timestamp\.json expired at/));
    assert.equal((await via()).verified, true, 'through the proxy, untouched, it verifies');
  });

  test('a delegation signing outside its paths is not trusted', async () => {
    assert.equal((await verify('5')).signatures[0]!.role, 'targets/releases');
    await notary(['delegation', 'remove', G, 'targets/releases', '--all-paths', '-y']);
    await notary(['delegation', 'add', G, 'targets/releases', '--paths', 'other/']);
    await notary(['publish', G]);
    const r = await verify('5');
    assert.equal(r.verified, false);
    assert.match(r.signatures[0]!.reason, /targets\/releases signs "5" outside its paths \["other\/"\]: not trusted, and no other role signs 5/);
    // Tag 1 is still signed by targets itself.
    assert.equal((await verify('1')).verified, true);
    // targets/releases/qa may only narrow its parent's paths: with the parent at other/, its "" is dropped and qa is not trusted.
    const t = await dctTargets(G, { server: server.url, trustDir: trust });
    assert.equal(t.signedTags.find((x) => x.tag === 'qa'), undefined);
    assert.equal(t.signedTags.find((x) => x.tag === '5'), undefined);
  });

  test('a root swapped by someone without the old root key is refused, at the same version and at a higher one', async () => {
    const R = `${reg.host}/team/r`;
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=r\n' }]] });
    await copyImage(img.source, await openDestination(`${R}:1`));
    const hash = img.descriptor.digest.slice(7);
    await notary(['init', R]);
    await notary(['addhash', R, '1', String(img.descriptor.size), '--sha256', hash]);
    await notary(['publish', R]);
    const ok = await verifyDct(`${R}:1`, { server: server.url, trustDir: trust });
    assert.equal(ok.verified, true);
    // Someone else deletes the trust data and publishes their own (new root key, version 1 again).
    await notary(['delete', R, '--remote']);
    const other = notaryCli(server.url, path.join(work, 'attacker'));
    await other(['init', R]);
    await other(['addhash', R, '1', String(img.descriptor.size), '--sha256', hash]);
    await other(['publish', R]);
    await assert.rejects(verifyDct(`${R}:1`, { server: server.url, trustDir: trust }), isCode('SIGNATURE_INVALID', /root\.json differs from the trusted root of the same version 1/));
    await other(['key', 'rotate', R, 'root'], 'yes\n');
    await assert.rejects(verifyDct(`${R}:1`, { server: server.url, trustDir: trust }), isCode('SIGNATURE_INVALID', /root\.json version 2 is not signed by the trusted root \(version 1\)'s keys/));
    // A first-time user trusts it (trust on first use), unless the old root key is pinned.
    assert.equal((await verifyDct(`${R}:1`, { server: server.url, trustDir: false })).verified, true);
    await assert.rejects(verifyDct(`${R}:1`, { server: server.url, trustDir: false, rootKeyPins: ok.rootKeys }), isCode('SIGNATURE_INVALID', /not signed by a pinned root key/));
  });

  test('random corruption of real metadata: never a crash; a changed signed part never verifies', async () => {
    const { parseMetadata, verifyThreshold, checkRootCertificates } = await import('../src/notary/tuf.js');
    const { mulberry32 } = await import('./helpers/common.js');
    const { PlinthError } = await import('../src/util/errors.js');
    const rootRaw = await meta('root');
    const root = parseMetadata<import('../src/notary/tuf.js').RootMeta>(rootRaw, 'root');
    const rand = mulberry32(7);
    for (const role of ['root', 'timestamp', 'targets']) {
      const raw = await meta(role);
      const signedEnd = raw.indexOf(',"signatures":');
      assert.ok(signedEnd > 0);
      for (let i = 0; i < 300; i++) {
        const b = Buffer.from(raw);
        const pos = 10 + Math.floor(rand() * (signedEnd - 10));
        const old = b[pos]!;
        b[pos] = old === 0x30 ? 0x31 : old === 0x41 ? 0x42 : 0x30;
        try {
          const doc = parseMetadata(b, role);
          const spec = role === 'root' ? root.signed.roles.root! : role === 'timestamp' ? root.signed.roles.timestamp! : { keyids: Object.keys(root.signed.keys), threshold: 1 };
          verifyThreshold(doc, root.signed.keys, spec);
          if (role === 'root') checkRootCertificates(doc.signed as never, G, new Date());
          assert.fail(`${role}.json with byte ${pos} changed (${String.fromCharCode(old)} → ${String.fromCharCode(b[pos]!)}) still verified`);
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
          assert.ok(e instanceof PlinthError, `${role}: ${String(e)}`);
        }
      }
    }
  });

  test('canonical JSON is what notary signs: sorted keys, only " and \\ escaped, integers only', () => {
    assert.equal(canonicalJson({ b: 1, a: ['<&>', 'q"\\', null, true], é: 'ü\n' }).toString(), '{"a":["<&>","q\\"\\\\",null,true],"b":1,"é":"ü\n"}');
    assert.throws(() => canonicalJson({ x: 1.5 }), isCode('SIGNATURE_INVALID', /integers only/));
  });
});

describe('TUF signatures: key types, methods, thresholds (real crypto, signed here)', async () => {
  const { generateKeyPairSync, sign } = await import('node:crypto');
  const { keyId, verifyThreshold, parseMetadata, checkFileMeta, pathAllowed } = await import('../src/notary/tuf.js');
  type K = { keytype: 'ecdsa' | 'rsa' | 'ed25519'; keyval: { private: null; public: string } };
  const make = (type: 'ec' | 'rsa' | 'ed25519') => {
    const pair = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
    const spki = pair.publicKey.export({ format: 'der', type: 'spki' });
    const pub = type === 'ed25519' ? spki.subarray(spki.length - 32) : spki;
    const key: K = { keytype: type === 'ec' ? 'ecdsa' : type, keyval: { private: null, public: pub.toString('base64') } };
    const id = keyId(key);
    const method = type === 'ec' ? 'ecdsa' : type === 'rsa' ? 'rsapss' : 'eddsa';
    const sig = (msg: Buffer) =>
      type === 'ec' ? sign('sha256', msg, { key: pair.privateKey, dsaEncoding: 'ieee-p1363' }) : type === 'rsa' ? sign('sha256', msg, { key: pair.privateKey, padding: 6, saltLength: 32 }) : sign(null, msg, pair.privateKey);
    return { key, id, method, sig };
  };
  const signedDoc = (signed: unknown, signers: Array<ReturnType<typeof make>>, tweak?: (s: Array<{ keyid: string; method: string; sig: string }>) => void) => {
    const msg = canonicalJson(signed);
    const signatures = signers.map((k) => ({ keyid: k.id, method: k.method, sig: k.sig(msg).toString('base64') }));
    tweak?.(signatures);
    return parseMetadata(Buffer.from(JSON.stringify({ signed, signatures })), 'timestamp');
  };
  const ts = { _type: 'Timestamp', version: 3, expires: '2099-01-01T00:00:00Z', meta: { snapshot: { length: 1, hashes: { sha256: 'AA==' } } } };

  test('ecdsa, rsapss and eddsa signatures verify; a 2-of-3 threshold counts distinct keys', () => {
    const [a, b, c] = [make('ec'), make('rsa'), make('ed25519')];
    const keys = Object.fromEntries([a, b, c].map((k) => [k.id, k.key]));
    for (const k of [a, b, c]) assert.deepEqual(verifyThreshold(signedDoc(ts, [k]), keys, { keyids: [k.id], threshold: 1 }), [k.id], k.method);
    const spec = { keyids: [a.id, b.id, c.id], threshold: 2 };
    assert.equal(verifyThreshold(signedDoc(ts, [a, c]), keys, spec).length, 2);
    assert.throws(() => verifyThreshold(signedDoc(ts, [a]), keys, spec), isCode('SIGNATURE_INVALID', /1 valid signature from its keys, the threshold is 2/));
    // The same signature twice is one signer.
    assert.throws(() => verifyThreshold(signedDoc(ts, [a, a]), keys, spec), isCode('SIGNATURE_INVALID', /1 valid signature from its keys, the threshold is 2 \(2 signatures present\)/));
    // A signature with the wrong method for its key, or a key whose ID does not match its content, counts for nothing.
    assert.throws(() => verifyThreshold(signedDoc(ts, [a], (s) => (s[0]!.method = 'rsapss')), keys, { keyids: [a.id], threshold: 1 }), isCode('SIGNATURE_INVALID', /0 valid signatures/));
    assert.throws(() => verifyThreshold(signedDoc(ts, [a]), { [a.id]: b.key }, { keyids: [a.id], threshold: 1 }), isCode('SIGNATURE_INVALID', /0 valid signatures/));
    // A signature by a key the role does not list counts for nothing.
    assert.throws(() => verifyThreshold(signedDoc(ts, [c]), keys, { keyids: [a.id], threshold: 1 }), isCode('SIGNATURE_INVALID', /0 valid signatures/));
    // Editing what is signed breaks every signature.
    const doc = signedDoc(ts, [a, b]);
    (doc.signed as { version: number }).version = 4;
    assert.throws(() => verifyThreshold(doc, keys, { keyids: [a.id, b.id], threshold: 1 }), isCode('SIGNATURE_INVALID', /0 valid signatures/));
  });

  test('rsa-x509 and ecdsa-x509 keys (certificates made by openssl): rsapss and ecdsa signatures; the certificate key and its bare key count once', async () => {
    const { mkdtemp: mk, readFile: rf } = await import('node:fs/promises');
    const { createPrivateKey } = await import('node:crypto');
    const { canonicalKeyId } = await import('../src/notary/tuf.js');
    const dir = await mk(path.join(os.tmpdir(), 'plinth-tuf-x509-'));
    try {
      const made = [];
      for (const [kind, alg] of [['rsa', ['-newkey', 'rsa:2048']], ['ecdsa', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']]] as const) {
        await execFileP('openssl', ['req', '-x509', ...alg, '-nodes', '-keyout', path.join(dir, `${kind}.key`), '-out', path.join(dir, `${kind}.crt`), '-days', '2', '-subj', '/CN=example.com\\/app']);
        const pem = await rf(path.join(dir, `${kind}.crt`), 'utf8');
        const priv = createPrivateKey(await rf(path.join(dir, `${kind}.key`), 'utf8'));
        const key = { keytype: `${kind}-x509` as 'ecdsa', keyval: { private: null, public: Buffer.from(pem).toString('base64') } };
        const id = keyId(key);
        const sig = (msg: Buffer) => (kind === 'rsa' ? sign('sha256', msg, { key: priv, padding: 6, saltLength: 32 }) : sign('sha256', msg, { key: priv, dsaEncoding: 'ieee-p1363' }));
        made.push({ key, id, method: kind === 'rsa' ? 'rsapss' : 'ecdsa', sig });
      }
      const keys = Object.fromEntries(made.map((k) => [k.id, k.key]));
      assert.equal(verifyThreshold(signedDoc(ts, made as never), keys, { keyids: made.map((k) => k.id), threshold: 2 }).length, 2);
      // The same ecdsa key, listed a second time as a bare key: one key, one vote.
      const cert = made[1]!;
      const { createPublicKey } = await import('node:crypto');
      const spki = createPublicKey(Buffer.from(cert.key.keyval.public, 'base64').toString()).export({ format: 'der', type: 'spki' });
      const bare = { keytype: 'ecdsa' as const, keyval: { private: null, public: spki.toString('base64') } };
      const bareId = keyId(bare);
      assert.equal(canonicalKeyId(cert.key), bareId);
      const both = { ...keys, [bareId]: bare };
      const doc = signedDoc(ts, [cert, { ...cert, id: bareId }] as never);
      assert.throws(() => verifyThreshold(doc, both, { keyids: [cert.id, bareId], threshold: 2 }), isCode('SIGNATURE_INVALID', /1 valid signature from its keys, the threshold is 2 \(2 signatures present\)/));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('hostile metadata is named: wrong type, bad version, too many signatures, bad hashes; path prefixes', () => {
    const p = (o: unknown, role = 'timestamp') => parseMetadata(Buffer.from(JSON.stringify(o)), role);
    assert.throws(() => p({ signed: { ...ts, _type: 'Root' }, signatures: [] }), isCode('SIGNATURE_INVALID', /_type "Root", not Timestamp/));
    assert.throws(() => p({ signed: { ...ts, version: -1 }, signatures: [] }), isCode('SIGNATURE_INVALID', /version is not a number/));
    assert.throws(() => p({ signed: ts, signatures: Array.from({ length: 65 }, () => ({ keyid: 'a', method: 'ecdsa', sig: '' })) }), isCode('SIGNATURE_INVALID', /more than 64 signatures/));
    assert.throws(() => p({ signed: { ...ts, meta: { snapshot: { length: 1, hashes: { sha256: '!!' } } } }, signatures: [] }), isCode('SIGNATURE_INVALID', /hash sha256 is not base64/));
    assert.throws(() => p({ signed: { _type: 'Targets', version: 1, expires: '2099-01-01T00:00:00Z', targets: {}, delegations: { keys: {}, roles: [{ name: 'targets/x', keyids: [], threshold: 0 }] } }, signatures: [] }, 'targets'), isCode('SIGNATURE_INVALID', /threshold 0 is below 1/));
    assert.throws(() => checkFileMeta('snapshot', Buffer.from('abc'), { length: 3, hashes: {} }, 'timestamp.json'), isCode('SIGNATURE_INVALID', /lists no sha256 or sha512 hash/));
    assert.ok(pathAllowed({ name: 'targets/r', keyids: [], threshold: 1, paths: [''] }, 'anything'));
    assert.ok(!pathAllowed({ name: 'targets/r', keyids: [], threshold: 1, paths: ['other/'] }, 'v1'));
    assert.ok(!pathAllowed({ name: 'targets/r', keyids: [], threshold: 1 }, 'v1'));
  });
});

describe('Docker Content Trust: a trust server behind token auth (notary-server with the Docker token protocol)', () => {
  test('anonymous pull tokens and credentials are fetched from the realm the server names; a wrong password is named', async () => {
    const { startTokenServer } = await import('./helpers/token-server.js');
    const { mkdtemp: mk } = await import('node:fs/promises');
    const dir = await mk(path.join(os.tmpdir(), 'plinth-dct-token-'));
    const tokens = await startTokenServer({ dir, service: 'notary-test', username: 'alice', password: 'secret', anonymousPull: true });
    const reg = await startRegistry();
    const server = await startNotaryServer({ token: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, certPath: tokens.certPath } });
    try {
      const G = `${reg.host}/team/t`;
      const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=token\n' }]] });
      await copyImage(img.source, await openDestination(`${G}:1`));
      const notary = notaryCli(server.url, path.join(dir, 'publisher'), { username: 'alice', password: 'secret' });
      await notary(['init', G]);
      await notary(['addhash', G, '1', String(img.descriptor.size), '--sha256', img.descriptor.digest.slice(7)]);
      await notary(['publish', G]);
      const raw = await fetch(`${server.url}/v2/${G}/_trust/tuf/root.json`);
      assert.equal(raw.status, 401, 'the server asks for a token');
      tokens.requests.length = 0;
      const r = await verifyDct(`${G}:1`, { server: server.url, trustDir: false });
      assert.equal(r.verified, true, r.signatures[0]!.reason);
      assert.ok(tokens.requests.length >= 1 && tokens.requests.every((q) => q.user === undefined), 'anonymous tokens');
      assert.ok(tokens.requests.some((q) => q.scopes.includes(`repository:${G}:pull`)));
      const withUser = await verifyDct(`${G}:1`, { server: server.url, trustDir: false, credential: { username: 'alice', password: 'secret' } });
      assert.equal(withUser.verified, true);
      await assert.rejects(verifyDct(`${G}:1`, { server: server.url, trustDir: false, credential: { username: 'alice', password: 'wrong' } }), isCode('UNAUTHORIZED', /rejected the credentials/));
    } finally {
      await server.stop();
      await reg.stop();
      await tokens.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
