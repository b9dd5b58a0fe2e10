import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openSource } from '../src/source/open.js';
import { MemorySource, buildImage, makeLayerTar } from '../src/source/memory.js';
import { resolveRoot, selectImages } from '../src/source/image.js';
import { digestOf } from '../src/oci/digest.js';
import { openTar } from '../src/util/tarindex.js';
import { PlinthError } from '../src/util/errors.js';
import { PolicyDecider } from '../src/admission/policydecider.js';

/** A registry-shaped HTTP server that records the Authorization header of every request. */
async function recorder(): Promise<{ host: string; auths: Array<string | undefined>; close(): Promise<void> }> {
  const auths: Array<string | undefined> = [];
  const srv = http.createServer((req, res) => {
    auths.push(req.headers.authorization);
    if (req.url === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(srv.address() as { port: number }).port}`, auths, close: () => new Promise((r) => srv.close(() => r())) };
}

describe('hardening', () => {
  test('explicit credentials go only to their registry, and only when it asks', async () => {
    const other = await recorder();
    try {
      // Scoped to another registry: never sent here.
      const s1 = await openSource(`${other.host}/x/y:1`, { username: 'alice', password: 's3cret', credentialsFor: 'registry.example.com' });
      await assert.rejects(s1.resolve(), (e: unknown) => e instanceof PlinthError && e.code === 'MANIFEST_UNKNOWN');
      await s1.close();
      // Scoped to this registry, but it answers /v2/ without a challenge: still not sent.
      const s2 = await openSource(`${other.host}/x/y:1`, { username: 'alice', password: 's3cret', credentialsFor: other.host });
      await assert.rejects(s2.resolve());
      await s2.close();
      assert.ok(other.auths.length >= 4);
      assert.deepEqual(other.auths.filter(Boolean), []);
    } finally {
      await other.close();
    }
  });

  test('nested indexes cannot fan out: depth and count are bounded', async () => {
    const img = await buildImage({ layers: [[{ path: 'a', content: 'a' }]] });
    const src = new MemorySource(img.source.root);
    for (const [d, b] of img.source.blobs) src.blobs.set(d, b);
    let child = { mediaType: img.descriptor.mediaType, digest: img.descriptor.digest, size: img.descriptor.size, platform: { os: 'linux', architecture: 'amd64' } } as Record<string, unknown>;
    for (let level = 0; level < 5; level++) {
      const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: Array.from({ length: 30 }, () => child) }));
      const d = src.add(idx);
      child = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: d, size: idx.length };
      src.root = { descriptor: child as never, bytes: idx };
    }
    const root = await resolveRoot(src);
    await assert.rejects(selectImages(src, root, 'all'), (e: unknown) => e instanceof PlinthError && /nested more than/.test(e.message));
  });

  test('tar members of size zero and pax sizes are read correctly', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-hard-'));
    try {
      const tarBytes = await makeLayerTar([{ path: 'empty', content: '' }, { path: 'full', content: 'x'.repeat(700) }]);
      const file = path.join(dir, 't.tar');
      await writeFile(file, tarBytes);
      const t = await openTar(file, 'test');
      const chunks: Buffer[] = [];
      for await (const c of t.open('empty') as AsyncIterable<Buffer>) chunks.push(c);
      assert.equal(Buffer.concat(chunks).length, 0);
      assert.equal((await t.read('full')).length, 700);
      assert.equal(digestOf(await t.read('empty')), digestOf(Buffer.alloc(0)));
      await t.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the webhook decider refuses local transports without opening anything', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-hard-'));
    try {
      const policy = path.join(dir, 'p.yaml');
      await writeFile(policy, 'apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: t}\nspec:\n  rules:\n    - name: base\n      mode: enforce\n      requireBaseImage: {}\n');
      const d = await PolicyDecider.create({ policyFile: policy });
      try {
        for (const image of ['oci-archive:/etc/shadow', 'docker-archive:/dev/zero', 'oci:/etc', 'docker://127.0.0.1:1/x:1']) {
          const v = await d.decide(image, { namespace: 'n', labels: {}, annotations: {}, via: 'validate' }, new AbortController().signal);
          assert.equal(v.allowed, false, image);
          assert.match(v.denials[0]!, /not a registry image reference/, image);
        }
      } finally {
        d.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('concurrent copies into one OCI layout keep every entry of index.json', async () => {
    const { copyImage } = await import('../src/source/copy.js');
    const { openDestination } = await import('../src/source/open.js');
    const { readFile } = await import('node:fs/promises');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-hard-'));
    try {
      const imgs = await Promise.all(Array.from({ length: 12 }, (_, i) => buildImage({ layers: [[{ path: 'f', content: `image ${i}` }]] })));
      await Promise.all(imgs.map(async (img, i) => copyImage(img.source, await openDestination(`oci:${dir}:t${i}`))));
      const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, string> }> };
      assert.equal(index.manifests.length, 12);
      assert.deepEqual(new Set(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name'])).size, 12);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
