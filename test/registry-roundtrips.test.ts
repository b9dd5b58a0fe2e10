/**
 * Round trips the registry client saves, on a real registry with token auth: one GET /v2/ for the
 * clients that share a ping map (a rebase's image, bases and destination; a copy's source and
 * destination), one token request for requests made at once, and a verification by digest that
 * looks the signatures up while the manifest is fetched still reports a missing image as such;
 * small blobs read whole (getBlobBytes) are checked exactly as the verifying stream (getBlob) does.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryClient, type PingAnswer } from '../src/registry/client.js';
import { verifyImage } from '../src/sign/index.js';
import { generateKeyPair, parsePublicKey, verifierOf } from '../src/sign/keys.js';
import { PlinthError } from '../src/util/errors.js';
import { makeTestImage, pushImage, sleep, startFaultProxy, startRegistry, type FaultAction, type TestImage, type TestRegistry } from './helpers/registry.js';

/** The registry's access-log lines for requests Plinth made (its user agent), once `want` of them matching `until` are in. */
async function plinthRequests(reg: TestRegistry, until: RegExp, want: number): Promise<string[]> {
  for (let i = 0; ; i++) {
    const lines = reg.logs().split('\n').filter((l) => l.includes('"plinth/'));
    if (lines.filter((l) => until.test(l)).length >= want || i >= 100) return lines;
    await sleep(50);
  }
}

describe('registry round trips', () => {
  let reg: TestRegistry;
  let image: TestImage;
  before(async () => {
    reg = await startRegistry({ auth: 'token', logLevel: 'info', configure: (c) => void (c.log.accesslog = { disabled: false }) });
    image = await makeTestImage('round trips');
    await pushImage(reg, 'team/app', '1', image);
    await pushImage(reg, 'team/base', '1', image);
  });
  after(() => reg?.stop());

  test('clients sharing a ping map ask GET /v2/ once; each still authenticates as itself', async () => {
    const pings = new Map<string, Promise<PingAnswer>>();
    const a = new RegistryClient(reg.host, { username: reg.username!, password: reg.password!, pings });
    const b = new RegistryClient(reg.host, { pings });
    const c = new RegistryClient(reg.host, {});
    try {
      const got = await Promise.all([a.getManifest('team/app', '1'), b.getManifest('team/base', '1')]);
      await c.getManifest('team/app', image.manifest.digest);
      for (const m of got) assert.equal(m.digest, image.manifest.digest);
      const lines = await plinthRequests(reg, /"GET \/v2\/team\/[a-z]+\/manifests\//, 3);
      const v2 = lines.filter((l) => /"GET \/v2\/ HTTP/.test(l));
      assert.equal(v2.length, 2, `one ping for the two sharing clients, one for the third:\n${lines.join('\n')}`);
      // a asked for a token with its credentials, b anonymously.
      const users = reg.tokenRequests.filter((r) => r.scopes.some((s) => s.startsWith('repository:team/'))).map((r) => `${r.scopes.join(' ')} ${r.user ?? '(anonymous)'}`);
      assert.ok(users.includes(`repository:team/app:pull ${reg.username}`), users.join('\n'));
      assert.ok(users.includes('repository:team/base:pull (anonymous)'), users.join('\n'));
    } finally {
      a.close();
      b.close();
      c.close();
    }
  });

  test('requests made at once share one token request', async () => {
    const client = new RegistryClient(reg.host, { username: reg.username!, password: reg.password! });
    try {
      await client.ping();
      const before = reg.tokenRequests.length;
      const got = await Promise.all([client.getManifest('team/app', '1'), client.getManifest('team/app', image.manifest.digest), client.getBlobBytes('team/app', image.config.digest, image.config.size)]);
      assert.equal(got[0].digest, image.manifest.digest);
      assert.deepEqual(got[2], image.config.data);
      assert.deepEqual(reg.tokenRequests.slice(before).map((r) => r.scopes), [['repository:team/app:pull']]);
    } finally {
      client.close();
    }
  });

  test('verify by digest: a missing image is reported as missing, not as unsigned', async () => {
    const pair = await generateKeyPair('round trips');
    const verifier = verifierOf(parsePublicKey(pair.publicKeyPem), 'k.pub');
    const missing = `${reg.host}/team/app@sha256:${'0'.repeat(64)}`;
    await assert.rejects(verifyImage(missing, [verifier], { registry: {} }), (e: unknown) => e instanceof PlinthError && e.code === 'MANIFEST_UNKNOWN');
    const unsigned = await verifyImage(`${reg.host}/team/app@${image.manifest.digest}`, [verifier], { registry: {} });
    assert.equal(unsigned.digest, image.manifest.digest);
    assert.deepEqual([unsigned.verified, unsigned.signatures.length], [false, 0]);
  });

  test('verify by digest: a missing image fails as soon as the manifest says so, while the signature lookup waits out a 429 (closing the client ends the wait; nothing is asked after it)', async () => {
    const pair = await generateKeyPair('round trips');
    const verifier = verifierOf(parsePublicKey(pair.publicKeyPem), 'k.pub');
    const proxy = await startFaultProxy(reg.url, [{ match: /\/referrers\/|\.sig$/, action: { status: 429, retryAfter: '5' } }]);
    try {
      const missing = `${proxy.host}/team/app@sha256:${'0'.repeat(64)}`;
      await assert.rejects(verifyImage(missing, [verifier], { registry: {} }), (e: unknown) => e instanceof PlinthError && e.code === 'MANIFEST_UNKNOWN');
      // Each lookup asked once and was told to come back in 5 s; the verification did not wait for that.
      assert.deepEqual([proxy.requests.filter((r) => r.path.includes('/referrers/')).length, proxy.requests.filter((r) => r.path.endsWith('.sig')).length], [1, 1]);
    } finally {
      await proxy.stop();
    }
  });

  test('getBlobBytes refuses what getBlob refuses, with the same error: tampered, truncated, other size, over the limit', async () => {
    const proxy = await startFaultProxy(reg.url, []);
    const client = new RegistryClient(proxy.host, { username: reg.username!, password: reg.password! });
    const { digest, size, data } = image.config;
    const streamed = async (sz: number | undefined): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      for await (const c of await client.getBlob('team/app', digest, sz)) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    };
    const outcome = async (p: Promise<Buffer>): Promise<string> => p.then((b) => `ok ${b.length}`, (e: Error & { code?: string }) => `${e.code} ${e.message}`);
    try {
      const cases: Array<[string, FaultAction | undefined, number | undefined, string]> = [
        ['as it is', undefined, size, `ok ${size}`],
        ['tampered', { corrupt: 'body' }, size, 'DIGEST_MISMATCH'],
        ['tampered, size unknown', { corrupt: 'body' }, undefined, 'DIGEST_MISMATCH'],
        ['another size expected', undefined, size - 1, 'SIZE_MISMATCH'],
        ['a larger size expected', undefined, size + 1, 'SIZE_MISMATCH'],
        ['truncated', { truncate: 5 }, size, ''],
      ];
      for (const [name, action, sz, want] of cases) {
        const plan = action ? [{ match: /\/blobs\/sha256:/, method: 'GET', times: 1, action }] : [];
        proxy.setFaults(plan);
        const bytes = await outcome(client.getBlobBytes('team/app', digest, sz));
        proxy.setFaults(plan);
        const stream = await outcome(streamed(sz));
        assert.equal(bytes, stream, name);
        assert.ok(bytes.startsWith(want), `${name}: ${bytes}`);
        if (want.startsWith('ok')) assert.deepEqual(await client.getBlobBytes('team/app', digest, sz), data);
      }
      await assert.rejects(client.getBlobBytes('team/app', digest, undefined, size - 1), (e: unknown) => e instanceof PlinthError && e.code === 'MANIFEST_TOO_LARGE' && /more than the \d+-byte limit/.test(e.message));
    } finally {
      client.close();
      await proxy.stop();
    }
  });
});
