import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir, chmod, stat } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startRegistry, startFaultProxy, type TestRegistry } from './helpers/registry.js';
import { buildImage, buildIndex, type BuiltImage } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination, openSource, parseLocation } from '../src/source/open.js';
import { inspect } from '../src/inspect/inspect.js';
import { RegistryClient, referrersTag } from '../src/registry/client.js';
import { PlinthError } from '../src/util/errors.js';
import { digestOf } from '../src/oci/digest.js';
import { resolveRoot, selectImages } from '../src/source/image.js';
import { sharedDir, isCode } from './helpers/common.js';

const execFileP = promisify(execFile);
const sh = async (cmd: string, args: string[], env?: NodeJS.ProcessEnv) => (await execFileP(cmd, args, { maxBuffer: 64 << 20, env: env ?? process.env })).stdout;

async function tmp(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `plinth-test-${prefix}-`));
}

async function sample(arch = 'amd64', text = 'hello'): Promise<BuiltImage> {
  return buildImage({
    platform: { os: 'linux', architecture: arch, ...(arch === 'arm64' ? { variant: 'v8' } : {}) },
    layers: [
      [{ path: 'etc/', type: 'directory' }, { path: 'etc/os-release', content: 'ID=test\n' }],
      [{ path: 'app/', type: 'directory' }, { path: 'app/data.txt', content: `${text} ${arch}\n` }],
    ],
    labels: { 'org.opencontainers.image.title': 'sample' },
    annotations: { 'org.opencontainers.image.base.name': 'scratch' },
  });
}

describe('image sources and copy', () => {
  let reg: TestRegistry;
  let work: string;
  before(async () => {
    reg = await startRegistry();
    work = await tmp('src');
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('OCI layout written by Plinth is read back by skopeo and umoci with the same digests', async () => {
    const img = await sample();
    const dir = path.join(work, 'layout1');
    const dst = await openDestination(`oci:${dir}:v1`);
    const r = await copyImage(img.source, dst);
    assert.equal(r.digest, img.descriptor.digest);
    const src = await openSource(`oci:${dir}:v1`);
    const info = await inspect(src, undefined);
    await src.close();
    assert.equal(info.digest, img.descriptor.digest);
    assert.equal(info.images[0]!.layers.length, 2);
    assert.deepEqual(info.images[0]!.layers.map((l) => l.diffId), img.diffIds);
    const sk = JSON.parse(await sh('skopeo', ['inspect', `oci:${dir}:v1`])) as { Digest: string; Layers: string[] };
    assert.equal(sk.Digest, img.descriptor.digest);
    const um = await sh('umoci', ['stat', '--image', `${dir}:v1`, '--json']);
    assert.ok(JSON.parse(um).history.length === 2);
    // A second image in the same layout keeps the first.
    const img2 = await sample('amd64', 'second');
    await copyImage(img2.source, await openDestination(`oci:${dir}:v2`));
    const idx = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, string> }> };
    assert.deepEqual(idx.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']).sort(), ['v1', 'v2']);
    await assert.rejects(openSource(`oci:${dir}`).then((s) => s.resolve()), isCode('USAGE', /holds 2 images/));
    await assert.rejects(openSource(`oci:${dir}:nope`).then((s) => s.resolve()), isCode('MANIFEST_UNKNOWN', /no image named "nope"/));
  });

  test('umoci-built images are read by Plinth with the digests umoci and skopeo report', async () => {
    const dir = path.join(work, 'umoci');
    await sh('umoci', ['init', '--layout', dir]);
    await sh('umoci', ['new', '--image', `${dir}:base`]);
    await sh('umoci', ['config', '--image', `${dir}:base`, '--config.cmd', '/bin/true', '--config.label', 'made.by=umoci', '--tag', 'cfg']);
    const sk = JSON.parse(await sh('skopeo', ['inspect', `oci:${dir}:cfg`])) as { Digest: string; Labels: Record<string, string> };
    const src = await openSource(`oci:${dir}:cfg`);
    const info = await inspect(src, undefined);
    await src.close();
    assert.equal(info.digest, sk.Digest);
    assert.equal(info.images[0]!.labels['made.by'], 'umoci');
    assert.deepEqual(info.images[0]!.cmd, ['/bin/true']);
  });

  test('push to a registry keeps digests; skopeo inspect agrees; a re-push skips every blob', async () => {
    const img = await sample();
    const dst = await openDestination(`${reg.host}/team/app:1`);
    const r = await copyImage(img.source, dst);
    await dst.close();
    assert.equal(r.digest, img.descriptor.digest);
    assert.equal(r.blobs.copied, 3);
    const sk = JSON.parse(await sh('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/team/app:1`])) as { Digest: string; Layers: string[] };
    assert.equal(sk.Digest, img.descriptor.digest);
    const src = await openSource(`docker://${reg.host}/team/app:1`);
    const info = await inspect(src, undefined);
    await src.close();
    assert.equal(info.digest, sk.Digest);
    assert.deepEqual(info.images[0]!.layers.map((l) => l.digest), sk.Layers);
    const again = await copyImage(img.source, await openDestination(`${reg.host}/team/app:1`));
    assert.equal(again.blobs.copied, 0);
    assert.equal(again.blobs.skipped, 3);
  });

  test('copy between repositories of one registry mounts blobs instead of transferring them', async () => {
    const img = await sample('amd64', 'mount');
    await copyImage(img.source, await openDestination(`${reg.host}/mount/src:1`));
    const src = await openSource(`${reg.host}/mount/src:1`);
    const r = await copyImage(src, await openDestination(`${reg.host}/mount/dst:1`));
    await src.close();
    assert.equal(r.blobs.mounted, 3);
    assert.equal(r.bytesCopied, 0);
    assert.equal(r.digest, img.descriptor.digest);
  });

  test('multi-platform index: platform selection, all, and a clear error for a missing platform', async () => {
    const idx = buildIndex([await sample('amd64'), await sample('arm64')]);
    const r = await copyImage(idx.source, await openDestination(`${reg.host}/multi/app:1`));
    assert.equal(r.digest, idx.descriptor.digest);
    assert.equal(r.manifests, 3);
    const raw = await sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/multi/app:1`]);
    assert.equal(digestOf(Buffer.from(raw)), idx.descriptor.digest);
    const src = await openSource(`${reg.host}/multi/app:1`);
    const arm = await inspect(src, { os: 'linux', architecture: 'arm64' });
    assert.equal(arm.digest, idx.descriptor.digest);
    assert.deepEqual(arm.platforms, ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(arm.images.length, 1);
    assert.equal(arm.images[0]!.architecture, 'arm64');
    const all = await inspect(src, 'all');
    assert.equal(all.images.length, 2);
    await assert.rejects(inspect(src, { os: 'linux', architecture: 's390x' }), isCode('PLATFORM_NOT_FOUND', /linux\/s390x.*linux\/amd64, linux\/arm64\/v8/));
    // One platform copied alone becomes a single image with that manifest's digest.
    const one = await copyImage(src, await openDestination(`oci:${path.join(work, 'one')}:arm`), { platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(one.digest, arm.images[0]!.digest);
    await src.close();
  });

  test('docker manifest lists and schema2 images are read and copied', async () => {
    const a = await buildImage({ format: 'docker', platform: { os: 'linux', architecture: 'amd64' }, layers: [[{ path: 'x', content: 'x' }]] });
    const b = await buildImage({ format: 'docker', platform: { os: 'linux', architecture: 'arm64' }, layers: [[{ path: 'y', content: 'y' }]] });
    const list = buildIndex([a, b], { format: 'docker' });
    await copyImage(list.source, await openDestination(`${reg.host}/docker/list:1`));
    const src = await openSource(`${reg.host}/docker/list:1`);
    const info = await inspect(src, { os: 'linux', architecture: 'amd64' });
    await src.close();
    assert.equal(info.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.equal(info.images[0]!.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(info.images[0]!.digest, a.descriptor.digest);
  });

  test('oci-archive and docker-archive round trips, and skopeo-written archives', async () => {
    const img = await sample('amd64', 'archive');
    await copyImage(img.source, await openDestination(`${reg.host}/arch/app:1`));
    const src = await openSource(`${reg.host}/arch/app:1`);
    const ociTar = path.join(work, 'app-oci.tar');
    const dockerTar = path.join(work, 'app-docker.tar');
    assert.equal((await copyImage(src, await openDestination(`oci-archive:${ociTar}:app`))).digest, img.descriptor.digest);
    assert.equal((await copyImage(src, await openDestination(`docker-archive:${dockerTar}:example.com/arch/app:1`))).digest, img.descriptor.digest);
    await src.close();
    // Plinth reads both back with the same digest.
    for (const name of [`oci-archive:${ociTar}:app`, `docker-archive:${dockerTar}`, `docker-archive:${dockerTar}:example.com/arch/app:1`]) {
      const s = await openSource(name);
      const info = await inspect(s, undefined);
      await s.close();
      assert.equal(info.digest, img.descriptor.digest, name);
    }
    // skopeo reads Plinth's archives.
    const skOci = JSON.parse(await sh('skopeo', ['inspect', `oci-archive:${ociTar}:app`])) as { Digest: string };
    assert.equal(skOci.Digest, img.descriptor.digest);
    const skDocker = JSON.parse(await sh('skopeo', ['inspect', `docker-archive:${dockerTar}`])) as { Layers: string[]; RepoTags: string[] };
    assert.equal(skDocker.Layers.length, 2);
    // A skopeo-written docker archive (uncompressed layers, no OCI layout inside), plain and gzip'd.
    const skTar = path.join(work, 'skopeo-docker.tar');
    await sh('skopeo', ['copy', '-q', `oci-archive:${ociTar}:app`, `docker-archive:${skTar}:sk/app:2`]);
    for (const file of [skTar, `${skTar}.gz`]) {
      if (file.endsWith('.gz')) await pipeline(createReadStream(skTar), createGzip(), createWriteStream(file));
      const s = await openSource(`docker-archive:${file}:sk/app:2`);
      const info = await inspect(s, undefined);
      assert.deepEqual(info.images[0]!.layers.map((l) => l.diffId), img.diffIds);
      assert.equal(info.images[0]!.config.digest, JSON.parse((await sh('skopeo', ['inspect', '--raw', `docker-archive:${skTar}`]))).config.digest);
      // …and it can be pushed to a registry and read back by skopeo.
      const r = await copyImage(s, await openDestination(`${reg.host}/from-archive/app:1`));
      await s.close();
      const back = JSON.parse(await sh('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/from-archive/app:1`])) as { Digest: string };
      assert.equal(back.Digest, r.digest);
    }
  });

  test('a docker-archive cannot hold a whole index: the error says to pick a platform', async () => {
    const idx = buildIndex([await sample('amd64'), await sample('arm64')]);
    await assert.rejects(copyImage(idx.source, await openDestination(`docker-archive:${path.join(work, 'x.tar')}`), { platform: 'all' }), isCode('USAGE', /--platform/));
  });

  test('chunked uploads, tag listing with pagination, the referrers tag-schema fallback', async () => {
    const client = new RegistryClient(reg.host, { chunkSize: 1000 });
    const blob = Buffer.alloc(4500, 7);
    const d = digestOf(blob);
    const { Readable } = await import('node:stream');
    await client.uploadBlob('chunk/app', { digest: d, size: blob.length }, async () => Readable.from([blob.subarray(0, 1234), blob.subarray(1234)]));
    assert.equal(await client.blobExists('chunk/app', d), blob.length);
    const img = await sample('amd64', 'tags');
    for (const t of ['a', 'b', 'c', 'd', 'e']) await copyImage(img.source, await openDestination(`${reg.host}/tags/app:${t}`));
    assert.deepEqual((await client.listTags('tags/app', 2)).sort(), ['a', 'b', 'c', 'd', 'e']);
    await assert.rejects(client.listTags('tags/none'), isCode('NAME_UNKNOWN'));
    // An artifact that refers to the image, recorded under the sha256-<hex> tag.
    const empty = Buffer.from('{}');
    await client.uploadBlob('tags/app', { digest: digestOf(empty), size: 2 }, async () => Readable.from([empty]));
    const artifact = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.example.sig',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(empty), size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(empty), size: 2 }],
      subject: { mediaType: img.descriptor.mediaType, digest: img.descriptor.digest, size: img.descriptor.size },
    }));
    const ad = await client.putManifest('tags/app', digestOf(artifact), artifact, 'application/vnd.oci.image.manifest.v1+json');
    await client.addReferrer('tags/app', img.descriptor.digest, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: ad, size: artifact.length, artifactType: 'application/vnd.example.sig' });
    const refs = await client.referrers('tags/app', img.descriptor.digest);
    assert.equal(refs.source, 'tag-schema');
    assert.deepEqual(refs.manifests.map((m) => m.digest), [ad]);
    assert.equal((await client.referrers('tags/app', img.descriptor.digest, 'application/vnd.other')).manifests.length, 0);
    assert.ok((await client.listTags('tags/app')).includes(referrersTag(img.descriptor.digest)));
    client.close();
  });

  test('the referrers tag schema matches the distribution-spec vectors', async () => {
    const vec = JSON.parse(await readFile(path.join(sharedDir(), 'vectors/provenance/tag-schema-vectors.json'), 'utf8')) as { referrers_tag_schema: { vectors: Array<{ digest: string; tag: string }> } };
    for (const v of vec.referrers_tag_schema.vectors) assert.equal(referrersTag(v.digest), v.tag);
  });

  test('unknown tags, repositories and blobs give named errors', async () => {
    const img = await sample('amd64', 'errors');
    await copyImage(img.source, await openDestination(`${reg.host}/err/app:1`));
    await assert.rejects(openSource(`${reg.host}/err/app:nope`).then((s) => s.resolve()), isCode('MANIFEST_UNKNOWN', /tag "nope" not found/));
    await assert.rejects(openSource(`${reg.host}/err/app@sha256:${'0'.repeat(64)}`).then((s) => s.resolve()), isCode('MANIFEST_UNKNOWN'));
    assert.throws(() => parseLocation('Bad/UPPER:tag'), (e: unknown) => e instanceof PlinthError && /lowercase/.test(e.message));
    assert.throws(() => parseLocation('ftp://x/y'), isCode('TRANSPORT_INVALID'));
    await assert.rejects(openSource('127.0.0.1:1/none/app:1').then((s) => s.resolve()), isCode('NETWORK', /connection refused/));
  });
});


describe('digest verification and retries through a faulty proxy', () => {
  let reg: TestRegistry;
  let work: string;
  let img: BuiltImage;
  before(async () => {
    reg = await startRegistry();
    work = await tmp('fault');
    img = await sample('amd64', 'fault');
    await copyImage(img.source, await openDestination(`${reg.host}/f/app:1`));
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('a corrupted blob is refused and nothing partial is left in the destination', async () => {
    const layer = JSON.parse(img.manifest.toString()).layers[1].digest as string;
    const proxy = await startFaultProxy(reg.url, [{ match: new RegExp(`/blobs/${layer}`), method: 'GET', action: { corrupt: 'body' } }]);
    try {
      const dir = path.join(work, 'corrupt');
      const src = await openSource(`${proxy.host}/f/app:1`);
      await assert.rejects(copyImage(src, await openDestination(`oci:${dir}:x`)), isCode('DIGEST_MISMATCH', new RegExp(`expected ${layer}`)));
      await src.close();
      const files = await readdir(path.join(dir, 'blobs', 'sha256'));
      assert.ok(!files.some((f) => f.includes('.tmp-')), 'no temporary files left');
      assert.ok(!files.includes(layer.slice(7)), 'the corrupt blob was not stored');
      await assert.rejects(stat(path.join(dir, 'index.json')), /ENOENT/);
    } finally {
      await proxy.stop();
    }
  });

  test('a manifest whose bytes do not match Docker-Content-Digest is refused', async () => {
    const proxy = await startFaultProxy(reg.url, [{ match: /\/manifests\/1$/, method: 'GET', action: { corrupt: 'body' } }]);
    try {
      const src = await openSource(`${proxy.host}/f/app:1`);
      await assert.rejects(src.resolve(), isCode('DIGEST_MISMATCH'));
      await src.close();
    } finally {
      await proxy.stop();
    }
  });

  test('429 and 503 answers are retried, honouring Retry-After', async () => {
    const proxy = await startFaultProxy(reg.url, [
      { match: /\/manifests\/1$/, method: 'GET', times: 2, action: { status: 503, retryAfter: '1' } },
      { match: /\/blobs\//, method: 'GET', times: 1, action: { status: 429, retryAfter: '0' } },
    ]);
    try {
      const src = await openSource(`${proxy.host}/f/app:1`);
      const t0 = Date.now();
      const r = await copyImage(src, await openDestination(`oci:${path.join(work, 'retry')}:x`));
      await src.close();
      assert.equal(r.digest, img.descriptor.digest);
      assert.equal(proxy.fired(0), 2);
      assert.equal(proxy.fired(1), 1);
      // Retry-After: 1 twice means the client waited (not a timing assertion on speed, just on obeying the header).
      assert.ok(Date.now() - t0 >= 1900, 'Retry-After was honoured');
    } finally {
      await proxy.stop();
    }
  });

  test('persistent 5xx gives up with a clear error', async () => {
    const proxy = await startFaultProxy(reg.url, [{ match: /\/manifests\//, action: { status: 500, retryAfter: '0' } }]);
    try {
      const src = await openSource(`${proxy.host}/f/app:1`, { retries: 2, backoffMs: 10 });
      await assert.rejects(src.resolve(), isCode('REGISTRY_ERROR', /answered 500/));
      await src.close();
    } finally {
      await proxy.stop();
    }
  });

  test('a truncated blob transfer fails as a size mismatch or a network error, never silently', async () => {
    const layer = JSON.parse(img.manifest.toString()).layers[0].digest as string;
    const proxy = await startFaultProxy(reg.url, [{ match: new RegExp(`/blobs/${layer}`), method: 'GET', action: { truncate: 10 } }]);
    try {
      const src = await openSource(`${proxy.host}/f/app:1`);
      await assert.rejects(copyImage(src, await openDestination(`oci:${path.join(work, 'trunc')}:x`)), (e: unknown) => e instanceof Error && /SIZE|aborted|NETWORK|bytes|closed|reset/i.test(`${(e as PlinthError).code} ${e.message}`));
      await src.close();
    } finally {
      await proxy.stop();
    }
  });
});

describe('authentication', () => {
  const cleanup: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  test('basic auth: refused without credentials, works with flags, config.json auths and a credential helper', async () => {
    const reg = await startRegistry({ auth: 'basic' });
    cleanup.push(() => reg.stop());
    const img = await sample('amd64', 'basic');
    await assert.rejects(copyImage(img.source, await openDestination(`${reg.host}/b/app:1`, { noConfig: true })), isCode('UNAUTHORIZED'));
    const r = await copyImage(img.source, await openDestination(`${reg.host}/b/app:1`, { username: reg.username!, password: reg.password! }));
    assert.equal(r.digest, img.descriptor.digest);
    await assert.rejects(
      openSource(`${reg.host}/b/app:1`, { username: reg.username!, password: 'wrong' }).then((s) => s.resolve()),
      isCode('UNAUTHORIZED'),
    );
    // config.json with auths
    const cfgDir = await tmp('dockercfg');
    cleanup.push(() => rm(cfgDir, { recursive: true, force: true }));
    await writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } }));
    const s1 = await openSource(`${reg.host}/b/app:1`, { authFile: path.join(cfgDir, 'config.json') });
    assert.equal((await s1.resolve()).descriptor.digest, img.descriptor.digest);
    await s1.close();
    // credHelpers through a docker-credential-* program on PATH, found via DOCKER_CONFIG.
    const helperDir = path.join(cfgDir, 'bin');
    await mkdir(helperDir);
    const helper = path.join(helperDir, 'docker-credential-plinthtest');
    await writeFile(helper, `#!/bin/sh\nread server\n[ "$1" = get ] || exit 1\n[ "$server" = "${reg.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\necho '{"ServerURL":"${reg.host}","Username":"${reg.username}","Secret":"${reg.password}"}'\n`);
    await chmod(helper, 0o755);
    await writeFile(path.join(cfgDir, 'helper.json'), JSON.stringify({ credHelpers: { [reg.host]: 'plinthtest' } }));
    const oldPath = process.env.PATH;
    process.env.PATH = `${helperDir}:${oldPath}`;
    try {
      const s2 = await openSource(`${reg.host}/b/app:1`, { authFile: path.join(cfgDir, 'helper.json') });
      assert.equal((await s2.resolve()).descriptor.digest, img.descriptor.digest);
      await s2.close();
      await writeFile(path.join(cfgDir, 'store.json'), JSON.stringify({ auths: { [reg.host]: {} }, credsStore: 'plinthtest' }));
      const s3 = await openSource(`${reg.host}/b/app:1`, { authFile: path.join(cfgDir, 'store.json') });
      assert.equal((await s3.resolve()).descriptor.digest, img.descriptor.digest);
      await s3.close();
    } finally {
      process.env.PATH = oldPath;
    }
  });

  test('bearer tokens: anonymous pull, authenticated push with the right scopes, mount scopes, expiry', async () => {
    const reg = await startRegistry({ auth: 'token', anonymousPull: true });
    cleanup.push(() => reg.stop());
    const img = await sample('amd64', 'token');
    await assert.rejects(copyImage(img.source, await openDestination(`${reg.host}/t/app:1`, { noConfig: true })), (e: unknown) => e instanceof PlinthError && (e.code === 'UNAUTHORIZED' || e.code === 'DENIED'));
    const creds = { username: reg.username!, password: reg.password! };
    const r = await copyImage(img.source, await openDestination(`${reg.host}/t/app:1`, creds));
    assert.equal(r.digest, img.descriptor.digest);
    assert.ok(reg.tokenRequests.some((t) => t.scopes.includes('repository:t/app:pull,push') && t.user === reg.username));
    // Anonymous pull works (the token server grants pull to anyone).
    const anon = await openSource(`${reg.host}/t/app:1`, { noConfig: true });
    assert.equal((await inspect(anon, undefined)).digest, img.descriptor.digest);
    await anon.close();
    assert.ok(reg.tokenRequests.some((t) => t.scopes.includes('repository:t/app:pull') && !t.user));
    // A cross-repository mount asks for pull on the source repository too.
    const src = await openSource(`${reg.host}/t/app:1`, creds);
    const m = await copyImage(src, await openDestination(`${reg.host}/t/other:1`, creds));
    await src.close();
    assert.equal(m.blobs.mounted, 3);
    assert.ok(reg.tokenRequests.some((t) => t.scopes.includes('repository:t/other:pull,push') && t.scopes.includes('repository:t/app:pull')));
    // skopeo can read what Plinth pushed through the token server.
    const sk = JSON.parse(await sh('skopeo', ['inspect', '--tls-verify=false', '--creds', `${reg.username}:${reg.password}`, `docker://${reg.host}/t/other:1`])) as { Digest: string };
    assert.equal(sk.Digest, img.descriptor.digest);
  });

  test('an identity token (OAuth2 refresh token) from config.json is exchanged with a POST grant', async () => {
    const reg = await startRegistry({ auth: 'token', anonymousPull: false });
    cleanup.push(() => reg.stop());
    const creds = { username: reg.username!, password: reg.password! };
    const img = await sample('amd64', 'identity');
    await copyImage(img.source, await openDestination(`${reg.host}/i/app:1`, creds));
    const ts = reg.tokenServer!;
    const u = new URL(ts.realm);
    u.searchParams.set('service', ts.service);
    u.searchParams.set('scope', 'repository:i/app:pull');
    u.searchParams.set('offline_token', 'true');
    const res = await fetch(u, { headers: { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` } });
    const refresh = ((await res.json()) as { refresh_token: string }).refresh_token;
    assert.ok(refresh, 'token server issued a refresh token');
    const cfgDir = await tmp('identity');
    cleanup.push(() => rm(cfgDir, { recursive: true, force: true }));
    await writeFile(path.join(cfgDir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { identitytoken: refresh } } }));
    const src = await openSource(`${reg.host}/i/app:1`, { authFile: path.join(cfgDir, 'config.json') });
    assert.equal((await src.resolve()).descriptor.digest, img.descriptor.digest);
    await src.close();
    assert.ok(reg.tokenRequests.some((t) => t.method === 'POST' && t.grantType === 'refresh_token' && t.scopes.includes('repository:i/app:pull')));
  });

  test('an expired token is refreshed', async () => {
    const reg = await startRegistry({ auth: 'token', tokenExpiresIn: 2 });
    cleanup.push(() => reg.stop());
    const creds = { username: reg.username!, password: reg.password! };
    const img = await sample('amd64', 'expiry');
    await copyImage(img.source, await openDestination(`${reg.host}/e/app:1`, creds));
    const src = await openSource(`${reg.host}/e/app:1`, creds);
    await src.resolve();
    const before = reg.tokenRequests.length;
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal((await src.resolve()).descriptor.digest, img.descriptor.digest);
    assert.ok(reg.tokenRequests.length > before, 'a new token was requested');
    await src.close();
  });

  test('a token realm on another host over plain HTTP is refused before any credential is sent', async () => {
    const http = await import('node:http');
    let hits = 0;
    const fake = http.createServer((req, res) => {
      hits++;
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://evil.example.invalid/token",service="x"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}');
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => fake.close(() => r())));
    const port = (fake.address() as { port: number }).port;
    const src = await openSource(`127.0.0.1:${port}/x/y:1`, { username: 'u', password: 'p' });
    await assert.rejects(src.resolve(), isCode('INSECURE_REFUSED', /must use HTTPS/));
    await src.close();
    assert.ok(hits >= 1);
  });
});

describe('hostile and broken local files', () => {
  let work: string;
  before(async () => {
    work = await tmp('hostile');
  });
  after(async () => rm(work, { recursive: true, force: true }));

  const open = async (name: string) => {
    const s = await openSource(name);
    try {
      return await inspect(s, undefined);
    } finally {
      await s.close();
    }
  };

  test('not a tar, truncated tar, truncated gzip, missing members, bad JSON, diff_id mismatch', async () => {
    const img = await sample('amd64', 'hostile');
    const good = path.join(work, 'good.tar');
    await copyImage(img.source, await openDestination(`docker-archive:${good}:h/app:1`));
    const bytes = await readFile(good);
    const junk = path.join(work, 'junk.tar');
    await writeFile(junk, Buffer.alloc(4096, 0x41));
    await assert.rejects(open(`docker-archive:${junk}`), isCode('ARCHIVE_INVALID', /not a tar archive/));
    const trunc = path.join(work, 'trunc.tar');
    await writeFile(trunc, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await assert.rejects(open(`docker-archive:${trunc}`), isCode('ARCHIVE_INVALID', /truncated|incomplete|no manifest/));
    const gz = path.join(work, 'trunc.tar.gz');
    await pipeline(createReadStream(good), createGzip(), createWriteStream(gz));
    await writeFile(gz, (await readFile(gz)).subarray(0, 200));
    await assert.rejects(open(`docker-archive:${gz}`), isCode('ARCHIVE_INVALID', /gzip/));
    await assert.rejects(open(`docker-archive:${path.join(work, 'missing.tar')}`), isCode('IO', /does not exist/));
    // Plinth's docker archives carry an OCI layout too (as Docker 25+ writes them), so they open as oci-archive.
    assert.equal((await open(`oci-archive:${good}`)).digest, img.descriptor.digest);
    await assert.rejects(open(`oci-archive:${junk}`), isCode('ARCHIVE_INVALID', /not a tar archive/));
    const onlyDocker = path.join(work, 'only-docker.tar');
    await writeFile(onlyDocker, await (await import('../src/source/memory.js')).makeLayerTar([{ path: 'manifest.json', content: '[]' }]));
    await assert.rejects(open(`oci-archive:${onlyDocker}`), isCode('ARCHIVE_INVALID', /use docker-archive:/));

    // Hand-made docker archives with broken contents.
    const { makeLayerTar } = await import('../src/source/memory.js');
    const layer = await makeLayerTar([{ path: 'a', content: 'a' }]);
    const config = (diff: string) => Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diff] } }));
    const cases: Array<[string, Array<{ path: string; content: string | Buffer }>, RegExp]> = [
      ['badjson', [{ path: 'manifest.json', content: '{not json' }], /not valid JSON/],
      ['empty', [{ path: 'manifest.json', content: '[]' }], /lists no images/],
      ['nolayer', [{ path: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', Layers: ['l.tar'] }]) }, { path: 'c.json', content: config(digestOf(layer)) }], /no such file|incomplete/],
      ['mismatch', [{ path: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', Layers: ['l.tar'] }]) }, { path: 'c.json', content: config(`sha256:${'1'.repeat(64)}`) }, { path: 'l.tar', content: layer }], /diff_id/],
      ['escape', [{ path: 'manifest.json', content: JSON.stringify([{ Config: '../../etc/passwd', Layers: [] }]) }], /outside|incomplete/],
      ['count', [{ path: 'manifest.json', content: JSON.stringify([{ Config: 'c.json', Layers: [] }]) }, { path: 'c.json', content: config(digestOf(layer)) }], /diff_ids/],
    ];
    for (const [name, files, re] of cases) {
      const file = path.join(work, `${name}.tar`);
      await writeFile(file, await makeLayerTar(files));
      await assert.rejects(open(`docker-archive:${file}`), isCode('ARCHIVE_INVALID', re), name);
    }
  });

  test('broken OCI layouts: bad index.json, missing blob, tampered blob, oversized manifest', async () => {
    const img = await sample('amd64', 'layout');
    const dir = path.join(work, 'layout');
    await copyImage(img.source, await openDestination(`oci:${dir}:x`));
    await assert.rejects(open(`oci:${path.join(work, 'nolayout')}`), isCode('LAYOUT_INVALID', /not an OCI image layout/));
    const layerHex = JSON.parse(img.manifest.toString()).layers[0].digest.slice(7) as string;
    const configHex = JSON.parse(img.manifest.toString()).config.digest.slice(7) as string;
    // Tampered config blob: refused by digest.
    const cfgPath = path.join(dir, 'blobs/sha256', configHex);
    const cfg = await readFile(cfgPath);
    const tampered = Buffer.from(cfg);
    tampered[tampered.length - 2] = 0x20;
    await writeFile(cfgPath, tampered);
    await assert.rejects(open(`oci:${dir}:x`), isCode('DIGEST_MISMATCH'));
    await writeFile(cfgPath, cfg);
    // Missing layer blob: copy fails naming it.
    await rm(path.join(dir, 'blobs/sha256', layerHex));
    await assert.rejects(copyImage(await openSource(`oci:${dir}:x`), await openDestination(`oci:${path.join(work, 'out')}:x`)), isCode('BLOB_UNKNOWN', new RegExp(layerHex)));
    // Bad index.json: a clear error, and a copy into that layout refuses to overwrite it.
    await writeFile(path.join(dir, 'index.json'), '{"schemaVersion": 2, "manifests": [{"digest": 5}]}');
    await assert.rejects(open(`oci:${dir}:x`), isCode('LAYOUT_INVALID', /index.json/));
    await writeFile(path.join(dir, 'index.json'), 'garbage');
    await assert.rejects(copyImage(img.source, await openDestination(`oci:${dir}:y`)), isCode('LAYOUT_INVALID', /not overwriting/));
    assert.equal(await readFile(path.join(dir, 'index.json'), 'utf8'), 'garbage');
    // A descriptor claiming a 5 MiB manifest is refused before reading it.
    const big = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'2'.repeat(64)}`, size: 5 * 1024 * 1024 }] };
    await writeFile(path.join(dir, 'index.json'), JSON.stringify(big));
    await writeFile(path.join(dir, 'blobs/sha256', '2'.repeat(64)), Buffer.alloc(5 * 1024 * 1024, 0x20));
    await assert.rejects(open(`oci:${dir}`), isCode('MANIFEST_TOO_LARGE'));
  });
});

describe('source selection details', () => {
  test('an index root and its selected image are both reachable through the one interface', async () => {
    const idx = buildIndex([await sample('amd64'), await sample('arm64')]);
    const root = await resolveRoot(idx.source);
    assert.equal(root.kind, 'index');
    const imgs = await selectImages(idx.source, root, 'all');
    assert.equal(imgs.length, 2);
  });
});
