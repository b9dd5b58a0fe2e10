import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { MemorySource, makeLayerTar, type FileSpec } from '../src/source/memory.js';
import { digestOf } from '../src/oci/digest.js';
import { toNode, type ImageNode } from '../src/source/image.js';
import { readFinal, walkLayers, normalisePath } from '../src/layers/walk.js';
import { PlinthError } from '../src/util/errors.js';

/** An image whose layers are given as raw blobs (so tests can hand it broken or zstd layers). */
function imageOf(blobs: Buffer[], diffIds?: string[], mediaTypes?: string[]): { src: MemorySource; img: ImageNode } {
  const src = new MemorySource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) });
  const layers = blobs.map((b, i) => ({ mediaType: mediaTypes?.[i] ?? 'application/vnd.oci.image.layer.v1.tar+gzip', digest: src.add(b), size: b.length }));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds ?? blobs.map((b) => digestOf(b)) } }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: src.add(config), size: config.length }, layers }));
  const desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: src.add(manifest), size: manifest.length };
  src.root = { descriptor: desc, bytes: manifest };
  return { src, img: toNode(desc, manifest) as ImageNode };
}

const wanted = { name: 'test', wants: (p: string) => p.startsWith('etc/') || p.startsWith('var/lib/dpkg/') || p === 'usr/lib/os-release' };

describe('layer walk', () => {
  test('later layers override, whiteouts delete, opaque directories hide lower contents', async () => {
    const l0: FileSpec[] = [
      { path: 'etc/os-release', content: 'ID=one' },
      { path: 'etc/keep', content: 'keep' },
      { path: 'etc/gone', content: 'gone' },
      { path: 'var/lib/dpkg/status.d/a', content: 'a' },
      { path: 'var/lib/dpkg/status.d/b', content: 'b' },
      { path: 'home/user/ignored', content: 'not wanted' },
    ];
    const l1: FileSpec[] = [
      { path: 'etc/os-release', content: 'ID=two' },
      { path: 'etc/.wh.gone', content: '' },
      { path: 'var/lib/dpkg/status.d/.wh..wh..opq', content: '' },
      { path: 'var/lib/dpkg/status.d/c', content: 'c' },
    ];
    const raw = [await makeLayerTar(l0), await makeLayerTar(l1)];
    const { src, img } = imageOf(raw.map((r) => gzipSync(r)), raw.map((r) => digestOf(r)));
    const r = await walkLayers(src, img, [wanted], { diffIds: raw.map((x) => digestOf(x)) });
    assert.equal(r.files.get('etc/os-release')?.content.toString(), 'ID=two');
    assert.equal(r.files.get('etc/os-release')?.layer, 1);
    assert.equal(r.files.get('etc/keep')?.layer, 0);
    assert.equal(r.files.has('etc/gone'), false);
    assert.deepEqual([...r.files.keys()].filter((k) => k.includes('status.d')).sort(), ['var/lib/dpkg/status.d/c']);
    assert.equal(r.files.has('home/user/ignored'), false);
    assert.equal(r.versions.get('etc/os-release')?.length, 2);
    assert.equal(r.layers[1]!.diffId, digestOf(raw[1]!));
  });

  test('symlinks among wanted files are followed (etc/os-release -> ../usr/lib/os-release)', async () => {
    const raw = await makeLayerTar([
      { path: 'usr/lib/os-release', content: 'ID=debian' },
      { path: 'etc/os-release', type: 'symlink', linkname: '../usr/lib/os-release' },
    ]);
    const { src, img } = imageOf([gzipSync(raw)]);
    const r = await walkLayers(src, img, [wanted]);
    assert.equal(readFinal(r.files, 'etc/os-release')?.content.toString(), 'ID=debian');
  });

  test('zstd and uncompressed layers; codecs sniffed when the media type does not say', async () => {
    const raw = await makeLayerTar([{ path: 'etc/os-release', content: 'ID=zstd' }]);
    const zst = execFileSync('zstd', ['-q', '-c'], { input: raw });
    const plainRaw = await makeLayerTar([{ path: 'etc/plain', content: 'plain' }]);
    const { src, img } = imageOf([zst, plainRaw], [digestOf(raw), digestOf(plainRaw)], ['application/vnd.oci.image.layer.v1.tar+zstd', 'application/vnd.oci.image.layer.v1.tar']);
    const sniffed = imageOf([zst, gzipSync(plainRaw)], undefined, ['application/vnd.example.unknown', 'application/vnd.docker.image.rootfs.diff.tar']);
    const rs = await walkLayers(sniffed.src, sniffed.img, [wanted], { verifyDiffIds: false });
    assert.equal(rs.files.get('etc/os-release')?.content.toString(), 'ID=zstd');
    assert.equal(rs.files.get('etc/plain')?.content.toString(), 'plain');
    const r = await walkLayers(src, img, [wanted], { diffIds: [digestOf(raw), digestOf(plainRaw)] });
    assert.equal(r.files.get('etc/os-release')?.content.toString(), 'ID=zstd');
    assert.equal(r.files.get('etc/plain')?.content.toString(), 'plain');
  });

  test('a diff_id that does not match the layer content is refused', async () => {
    const raw = await makeLayerTar([{ path: 'etc/x', content: 'x' }]);
    const { src, img } = imageOf([gzipSync(raw)]);
    await assert.rejects(walkLayers(src, img, [wanted], { diffIds: [`sha256:${'0'.repeat(64)}`] }), (e: unknown) => e instanceof PlinthError && e.code === 'DIGEST_MISMATCH' && /diff_id/.test(e.message));
  });

  test('hostile layers: garbage, truncated gzip, corrupt zstd, oversized files give clear errors or findings', async () => {
    const raw = await makeLayerTar([{ path: 'etc/os-release', content: 'x'.repeat(5000) }]);
    const cases: Array<[string, Buffer]> = [
      ['garbage', Buffer.alloc(2048, 0x41)],
      ['truncated gzip', gzipSync(raw).subarray(0, 40)],
      ['corrupt zstd', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(64, 0xff)])],
      ['gzip declared, not gzip', Buffer.from(raw)],
      ['truncated tar', raw.subarray(0, 700)],
    ];
    for (const [name, blob] of cases) {
      const { src, img } = imageOf([blob], undefined, [name === 'corrupt zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : name === 'garbage' || name === 'truncated tar' ? 'application/vnd.oci.image.layer.v1.tar' : 'application/vnd.oci.image.layer.v1.tar+gzip']);
      await assert.rejects(walkLayers(src, img, [wanted], { verifyDiffIds: false }), (e: unknown) => e instanceof PlinthError && e.code === 'ARCHIVE_INVALID' && /layer 1/.test(e.message), name);
    }
    const { src, img } = imageOf([gzipSync(raw)]);
    const r = await walkLayers(src, img, [wanted], { maxFileSize: 1000 });
    assert.equal(r.files.size, 0);
    assert.match(r.findings[0]!.message, /more than the 1000-byte limit/);
  });

  test('what the walk keeps in memory is bounded across files and layers', async () => {
    const raw = await makeLayerTar(Array.from({ length: 8 }, (_, i) => ({ path: `var/lib/dpkg/status.d/p${i}`, content: 'x'.repeat(4000) })));
    const { src, img } = imageOf([gzipSync(raw)], [digestOf(raw)]);
    await assert.rejects(walkLayers(src, img, [wanted], { maxTotalSize: 10_000 }), (e: unknown) => e instanceof PlinthError && /add up to more than 10000 bytes/.test(e.message));
    const ok = await walkLayers(src, img, [wanted], { maxTotalSize: 100_000 });
    assert.equal(ok.files.size, 8);
  });

  test('paths are normalised and cannot climb out', () => {
    assert.equal(normalisePath('./etc/../../etc/passwd'), 'etc/passwd');
    assert.equal(normalisePath('/var//lib/./dpkg/'), 'var/lib/dpkg');
  });
});
