/**
 * Blobs: every case of the Sigstore conformance vectors (../shared/vectors/sigstore) through
 * `plinth verify-blob`, keyless and with keys, offline; and sign-blob/verify-blob round trips with
 * the real cosign.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { runPlinth, sharedDir } from './helpers/common.js';
import { peer } from './helpers/peers.js';

const execFileP = promisify(execFile);
const VECTORS = sharedDir('vectors', 'sigstore');
const DEFAULT_IDENTITY = 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';
const DEFAULT_ISSUER = 'https://token.actions.githubusercontent.com';

describe('Sigstore conformance vectors through plinth verify-blob', () => {
  const cases = readdirSync(path.join(VECTORS, 'cases')).sort();
  test('all 14 cases are here', () => assert.equal(cases.length, 14));
  for (const c of cases) {
    test(c, async () => {
      const dir = path.join(VECTORS, 'cases', c);
      const has = (f: string) => existsSync(path.join(dir, f));
      const text = (f: string) => readFileSync(path.join(dir, f), 'utf8').trim();
      const args = ['verify-blob', has('artifact') ? path.join(dir, 'artifact') : path.join(VECTORS, 'a.txt'), '--bundle', path.join(dir, 'bundle.sigstore.json'), '--format', 'json'];
      if (has('key.pub')) args.push('--key', path.join(dir, 'key.pub'));
      else args.push('--certificate-identity', has('identity') ? text('identity') : DEFAULT_IDENTITY, '--certificate-oidc-issuer', has('issuer') ? text('issuer') : DEFAULT_ISSUER);
      if (has('trusted_root.json')) args.push('--trusted-root', path.join(dir, 'trusted_root.json'));
      const r = await runPlinth(args);
      if (c.endsWith('_fail')) {
        assert.equal(r.code, 1, `${c} must be refused: ${r.stdout}`);
        assert.match(r.stderr, /^plinth: \S/);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      } else {
        assert.equal(r.code, 0, `${c} must verify: ${r.stderr}`);
        const out = JSON.parse(r.stdout) as { verified: boolean; trustedRoot: string; signer: Record<string, string> };
        assert.equal(out.verified, true);
        assert.equal(out.trustedRoot, has('trusted_root.json') ? 'given' : 'public-good');
        if (!has('key.pub')) assert.equal(out.signer.identity, has('identity') ? text('identity') : DEFAULT_IDENTITY);
      }
    });
  }

  test('keyless identity and issuer must match (exact or regexp); a DSSE bundle verifies against a digest too', async () => {
    const v3 = path.join(VECTORS, 'cases', 'happy-path-v0.3', 'bundle.sigstore.json');
    const a = path.join(VECTORS, 'a.txt');
    const wrongId = await runPlinth(['verify-blob', a, '--bundle', v3, '--certificate-identity', 'https://example.com/other', '--certificate-oidc-issuer', DEFAULT_ISSUER]);
    assert.equal(wrongId.code, 1);
    assert.match(wrongId.stderr, /certificate identity error/);
    const wrongIssuer = await runPlinth(['verify-blob', a, '--bundle', v3, '--certificate-identity', DEFAULT_IDENTITY, '--certificate-oidc-issuer-regexp', '^https://accounts\\.google\\.com$']);
    assert.equal(wrongIssuer.code, 1);
    assert.match(wrongIssuer.stderr, /issuer https:\/\/token\.actions\.githubusercontent\.com does not match/);
    const re = await runPlinth(['verify-blob', a, '--bundle', v3, '--certificate-identity-regexp', '^https://github\\.com/sigstore-conformance/', '--certificate-oidc-issuer-regexp', 'githubusercontent']);
    assert.equal(re.code, 0, re.stderr);
    // Exact means exact: a substring, a regexp-like string or an empty identity is not a match.
    for (const id of ['sigstore-conformance', 'h.tps://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main']) {
      const sub = await runPlinth(['verify-blob', a, '--bundle', v3, '--certificate-identity', id, '--certificate-oidc-issuer', DEFAULT_ISSUER]);
      assert.equal(sub.code, 1, id);
      assert.match(sub.stderr, /certificate identity error/);
    }
    const empty = await runPlinth(['verify-blob', a, '--bundle', v3, '--certificate-identity', '', '--certificate-oidc-issuer', DEFAULT_ISSUER]);
    assert.notEqual(empty.code, 0);
    // A key does not verify a keyless bundle (its certificate would be checked instead of the key).
    const { generateKeyPair } = await import('../src/sign/keys.js');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-blobkey-'));
    try {
      await writeFile(path.join(dir, 'other.pub'), (await generateKeyPair('x')).publicKeyPem);
      const withKey = await runPlinth(['verify-blob', a, '--bundle', v3, '--key', path.join(dir, 'other.pub')]);
      assert.equal(withKey.code, 1);
      assert.match(withKey.stderr, /signed with a certificate \(keyless\), not a key/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const dsse = path.join(VECTORS, 'cases', 'happy-path-intoto-in-dsse-v3');
    const { createHash } = await import('node:crypto');
    const digest = `sha256:${createHash('sha256').update(readFileSync(existsSync(path.join(dsse, 'artifact')) ? path.join(dsse, 'artifact') : a)).digest('hex')}`;
    const byDigest = await runPlinth(['verify-blob', digest, '--bundle', path.join(dsse, 'bundle.sigstore.json'), '--certificate-identity', DEFAULT_IDENTITY, '--certificate-oidc-issuer', DEFAULT_ISSUER]);
    assert.equal(byDigest.code, 0, byDigest.stderr);
    const otherDigest = await runPlinth(['verify-blob', `sha256:${'0'.repeat(64)}`, '--bundle', path.join(dsse, 'bundle.sigstore.json'), '--certificate-identity', DEFAULT_IDENTITY, '--certificate-oidc-issuer', DEFAULT_ISSUER]);
    assert.equal(otherDigest.code, 1);
    assert.match(otherDigest.stderr, /subjects do not include the artifact/);
  });
});

describe('sign-blob and verify-blob with the real cosign', () => {
  test('plinth sign-blob → cosign verify-blob; cosign sign-blob → plinth verify-blob; tampering and a missing tlog are refused', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-blob-'));
    const env = { ...process.env, PLINTH_PASSWORD: 'pw', COSIGN_PASSWORD: 'pw' };
    try {
      await execFileP(peer('cosign'), ['generate-key-pair', '--output-key-prefix', path.join(work, 'c')], { env });
      const file = path.join(work, 'rootfs.tar');
      await writeFile(file, 'a vendor rootfs\n');
      const mine = await runPlinth(['sign-blob', file, '--key', path.join(work, 'c.key'), '--bundle', path.join(work, 'plinth.bundle')], { env });
      assert.equal(mine.code, 0, mine.stderr);
      const v = await execFileP(peer('cosign'), ['verify-blob', '--key', path.join(work, 'c.pub'), '--bundle', path.join(work, 'plinth.bundle'), '--insecure-ignore-tlog=true', file], { env });
      assert.match(v.stderr, /Verified OK/);
      await execFileP(peer('cosign'), ['sign-blob', '--key', path.join(work, 'c.key'), '--bundle', path.join(work, 'cosign.bundle'), '--tlog-upload=false', '--use-signing-config=false', '-y', file], { env });
      const ok = await runPlinth(['verify-blob', file, '--bundle', path.join(work, 'cosign.bundle'), '--key', path.join(work, 'c.pub'), '--insecure-ignore-tlog']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stderr, /^Verified OK: message signature by the key/);
      const noTlog = await runPlinth(['verify-blob', file, '--bundle', path.join(work, 'cosign.bundle'), '--key', path.join(work, 'c.pub')]);
      assert.equal(noTlog.code, 1);
      assert.match(noTlog.stderr, /no transparency-log entry.*--insecure-ignore-tlog/);
      await writeFile(file, 'a vendor rootfs, changed\n');
      const tampered = await runPlinth(['verify-blob', file, '--bundle', path.join(work, 'plinth.bundle'), '--key', path.join(work, 'c.pub'), '--insecure-ignore-tlog']);
      assert.equal(tampered.code, 1);
      await writeFile(path.join(work, 'junk.bundle'), '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}');
      const junk = await runPlinth(['verify-blob', file, '--bundle', path.join(work, 'junk.bundle'), '--key', path.join(work, 'c.pub')]);
      assert.equal(junk.code, 1);
      assert.match(junk.stderr, /not a valid Sigstore bundle/);
      const both = await runPlinth(['verify-blob', file, '--bundle', path.join(work, 'plinth.bundle'), '--key', path.join(work, 'c.pub'), '--certificate-identity', 'x', '--certificate-oidc-issuer', 'y']);
      assert.equal(both.code, 2);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
