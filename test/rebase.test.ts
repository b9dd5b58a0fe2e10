/**
 * Rebase against the real crane and a real registry: the result's layers, diff_ids, history,
 * config and annotations equal `crane rebase`'s (where crane's choices differ — the manifest
 * media type and the dropped `created` — the test pins the difference), `umoci unpack` gives the
 * new base's tree with the app's files on top, no layer blob is uploaded (counted through a proxy),
 * multi-platform indexes, Buildpacks metadata, refusals, dry-run diffs, fleet mode, and a
 * signature the real cosign verifies.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildImage, buildIndex, type BuiltImage, type FileSpec } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { chainIds } from '../src/provenance/chain.js';
import { emptyCatalog, saveCatalog } from '../src/provenance/catalog.js';
import { generateKeyPair } from '../src/sign/keys.js';
import { openStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';
import { runPlinth } from './helpers/common.js';
import { startRegistry, startFaultProxy, type TestRegistry, type FaultProxy } from './helpers/registry.js';
import { peer, debianTool } from './helpers/peers.js';

const execFileP = promisify(execFile);
const env = { ...process.env, PLINTH_PASSWORD: 'pw', COSIGN_PASSWORD: 'pw' };
const plinth = (args: string[]) => runPlinth(args, { env });
const json = async (args: string[]) => {
  const r = await plinth(args);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};

const dpkg = (libc: string) => `Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${libc}\nSource: glibc\n\nPackage: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\n`;
const osRel = (v: string): FileSpec => ({ path: 'etc/os-release', content: `ID=debian\nVERSION_ID="${v}"\n` });

function base(version: string, libc: string, o: { os?: string; arch?: string; extraFile?: string } = {}): Promise<BuiltImage> {
  return buildImage({
    platform: { os: 'linux', architecture: o.arch ?? 'amd64' },
    layers: [[osRel(o.os ?? '12'), { path: 'var/lib/dpkg/status', content: dpkg(libc) }, { path: 'etc/base-version', content: version }], [{ path: 'etc/extra', content: o.extraFile ?? version }]],
    labels: { 'dev.plinth.golden.os': `debian ${o.os ?? '12'}` },
    created: '2024-01-01T00:00:00Z',
    history: [{ created_by: `ADD rootfs ${version}` }, { created_by: `RUN touch /etc/extra ${version}` }],
  });
}

/** An app on `b`: the base's two layers, an ENV (empty layer), two layers of its own. */
function appOn(b: BuiltImage, name: string, o: { arch?: string; labels?: Record<string, string> } = {}): Promise<BuiltImage> {
  const baseCfg = JSON.parse(b.config.toString());
  return buildImage({
    platform: { os: 'linux', architecture: o.arch ?? 'amd64' },
    // The base's exact layers come first (same files → same tar, same digests).
    layers: [...baseLayerSpecs.get(b)!, [{ path: `app/${name}`, content: name }], [{ path: `app/${name}.conf`, content: `conf ${name}` }]],
    created: '2024-06-01T00:00:00Z',
    entrypoint: [`/app/${name}`],
    labels: { 'org.opencontainers.image.authors': `${name}@example.com`, ...(o.labels ?? {}) },
    history: [...baseCfg.history, { created_by: 'ENV MODE=prod', empty_layer: true }, { created_by: `COPY ${name} /app/` }, { created_by: `COPY ${name}.conf /app/` }],
  });
}
const baseLayerSpecs = new Map<BuiltImage, FileSpec[][]>();
async function trackedBase(version: string, libc: string, o: { os?: string; arch?: string } = {}): Promise<BuiltImage> {
  const b = await base(version, libc, o);
  baseLayerSpecs.set(b, [[osRel(o.os ?? '12'), { path: 'var/lib/dpkg/status', content: dpkg(libc) }, { path: 'etc/base-version', content: version }], [{ path: 'etc/extra', content: version }]]);
  return b;
}

describe('rebase', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let host: string;
  let work: string;
  let v1: BuiltImage;
  let v2: BuiltImage;
  let catalog: string;
  let dbFile: string;

  before(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    host = proxy.host;
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-rebase-'));
    v1 = await trackedBase('v1', '2.36-9+deb12u3');
    v2 = await trackedBase('v2', '2.36-9+deb12u7');
    await copyImage(v1.source, await openDestination(`${host}/base/debian:12.1`));
    await copyImage(v2.source, await openDestination(`${host}/base/debian:12.2`));
    for (const n of ['shop', 'pay', 'cart']) await copyImage((await appOn(v1, n)).source, await openDestination(`${host}/team/${n}:1`));
    const cat = emptyCatalog();
    cat.bases.push({ name: `${host}/base/debian`, tag: '12.1', digest: v1.descriptor.digest, diffIds: v1.diffIds, chainIds: chainIds(v1.diffIds), status: 'superseded', line: 'debian-12', created: '2024-01-01T00:00:00Z' });
    cat.bases.push({ name: `${host}/base/debian`, tag: '12.2', digest: v2.descriptor.digest, diffIds: v2.diffIds, chainIds: chainIds(v2.diffIds), status: 'approved', line: 'debian-12', created: '2024-02-01T00:00:00Z' });
    catalog = path.join(work, 'catalog.yaml');
    await saveCatalog(catalog, cat);
    const adv = path.join(work, 'osv');
    await mkdir(adv);
    await writeFile(path.join(adv, 'a.json'), JSON.stringify({ id: 'DEBIAN-CVE-2024-2961', modified: '2024-05-01T00:00:00Z', summary: 'glibc', affected: [{ package: { ecosystem: 'Debian:12', name: 'glibc' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.36-9+deb12u7' }] }] }] }));
    dbFile = path.join(work, 'vuln.db');
    const s = openStore(dbFile);
    await importPaths(s, [adv]);
    s.close();
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('the same image as the real crane rebase (layers, diff_ids, history, config, annotations), no layer uploaded, umoci sees v2 plus the app', async () => {
    const before = proxy.requests.length;
    const r = await json(['rebase', `${host}/team/shop:1`, '--old-base', `${host}/base/debian:12.1`, '--new-base', `${host}/base/debian:12.2`, '--tag', `${host}/team/shop:plinth`, '--format', 'json']);
    const reqs = proxy.requests.slice(before);
    // Only configs and manifests are written: no layer blob is uploaded.
    const uploads = reqs.filter((q) => q.method === 'PUT' && /\/blobs\/uploads\//.test(q.path));
    const uploaded = uploads.map((q) => decodeURIComponent(/digest=([^&]+)/.exec(q.path)?.[1] ?? ''));
    assert.deepEqual(uploaded, [r.plan.platforms[0].result.config]);
    assert.equal(reqs.filter((q) => q.method === 'PATCH').length <= 1, true);
    assert.equal(r.pushed.uploaded, 1);
    await execFileP(peer('crane'), ['rebase', `${host}/team/shop:1`, '--old_base', `${host}/base/debian:12.1`, '--new_base', `${host}/base/debian:12.2`, '--tag', `${host}/team/shop:crane`, '--insecure']);
    const mine = { m: await json(['manifest', `${host}/team/shop:plinth`]), c: await json(['config', `${host}/team/shop:plinth`]) };
    const theirs = { m: await json(['manifest', `${host}/team/shop:crane`]), c: await json(['config', `${host}/team/shop:crane`]) };
    assert.deepEqual(mine.m.layers.map((l: any) => l.digest), theirs.m.layers.map((l: any) => l.digest));
    assert.deepEqual(mine.c.rootfs, theirs.c.rootfs);
    assert.deepEqual(mine.c.config, theirs.c.config);
    assert.equal(mine.c.os, theirs.c.os);
    assert.equal(mine.c.architecture, theirs.c.architecture);
    const hist = (h: any[]) => h.map((x) => `${x.created_by}${x.empty_layer ? ' (empty)' : ''}`);
    assert.deepEqual(hist(mine.c.history), hist(theirs.c.history));
    assert.deepEqual(hist(mine.c.history), ['ADD rootfs v2', 'RUN touch /etc/extra v2', 'ENV MODE=prod (empty)', 'COPY shop /app/', 'COPY shop.conf /app/']);
    assert.deepEqual(mine.m.annotations, theirs.m.annotations);
    // Where crane differs, on purpose: it rebuilds the image from go-containerregistry's empty
    // image, so an OCI image becomes a Docker schema 2 manifest (with OCI layers inside) and the
    // image's created time becomes Go's zero time. Plinth keeps the original media types and times.
    assert.equal(mine.m.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(theirs.m.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(mine.c.created, '2024-06-01T00:00:00Z');
    assert.equal(theirs.c.created, '0001-01-01T00:00:00Z');
    // umoci: the new base's files with the app's on top.
    const layout = path.join(work, 'layout');
    await plinth(['copy', `${host}/team/shop:plinth`, `oci:${layout}:x`]);
    const bundle = path.join(work, 'bundle');
    await execFileP(debianTool('umoci', 'umoci'), ['unpack', '--image', `${layout}:x`, bundle]);
    assert.equal(await readFile(path.join(bundle, 'rootfs/etc/base-version'), 'utf8'), 'v2');
    assert.equal(await readFile(path.join(bundle, 'rootfs/etc/extra'), 'utf8'), 'v2');
    assert.equal(await readFile(path.join(bundle, 'rootfs/app/shop'), 'utf8'), 'shop');
    assert.match(await readFile(path.join(bundle, 'rootfs/var/lib/dpkg/status'), 'utf8'), /2\.36-9\+deb12u7/);
  });

  test('defaults from provenance and the catalog, in place, signed (cosign verifies), dry-run diff of packages and findings', async () => {
    const kp = await generateKeyPair('pw');
    await writeFile(path.join(work, 'k.key'), kp.privateKeyPem);
    await writeFile(path.join(work, 'k.pub'), kp.publicKeyPem);
    const dry = await json(['rebase', `${host}/team/pay:1`, '--catalog', catalog, '--dry-run', '--db', dbFile, '--format', 'json']);
    assert.equal(dry.outcome, 'would rebase');
    assert.equal(dry.plan.oldBase, `${host}/base/debian@${v1.descriptor.digest}`);
    assert.equal(dry.plan.newBase, `${host}/base/debian:12.2@${v2.descriptor.digest}`);
    assert.deepEqual(dry.diff.packages.upgraded, ['libc6 2.36-9+deb12u3 -> 2.36-9+deb12u7']);
    assert.deepEqual(dry.diff.findings.fixed, ['DEBIAN-CVE-2024-2961 libc6']);
    assert.deepEqual(dry.diff.findings.introduced, []);
    const r = await json(['rebase', `${host}/team/pay:1`, '--catalog', catalog, '--in-place', '--key', path.join(work, 'k.key'), '--format', 'json']);
    assert.equal(r.outcome, 'rebased');
    assert.equal(r.pushed.reference, `${host}/team/pay:1`);
    assert.ok(r.signed >= 1);
    await execFileP(peer('cosign'), ['verify', '--key', path.join(work, 'k.pub'), '--insecure-ignore-tlog=true', '--allow-http-registry=true', `${host}/team/pay:1`], { env });
    const prov = await json(['provenance', `${host}/team/pay:1`, '--catalog', catalog, '--format', 'json']);
    assert.equal(prov.base.digest, v2.descriptor.digest);
    assert.equal(prov.upToDate.baseStatus, 'approved');
    // Rebasing again is a no-op: its base is already the newest.
    const again = await plinth(['rebase', `${host}/team/pay:1`, '--catalog', catalog, '--in-place', '--format', 'json']);
    assert.equal(JSON.parse(again.stdout).outcome, 'unchanged');
  });

  test('refusals: a base that is not a prefix, an OS release change (unless allowed), an only-declared base, no destination', async () => {
    const other = await trackedBase('other', '2.36-9+deb12u3');
    const otherImg = await buildImage({ layers: [[{ path: 'x', content: 'unrelated' }], [{ path: 'y', content: 'y' }]] });
    await copyImage(other.source, await openDestination(`${host}/base/other:1`));
    await copyImage(otherImg.source, await openDestination(`${host}/team/unrelated:1`));
    const np = await plinth(['rebase', `${host}/team/cart:1`, '--old-base', `${host}/base/other:1`, '--new-base', `${host}/base/debian:12.2`, '--tag', `${host}/team/cart:x`]);
    assert.equal(np.code, 2);
    assert.match(np.stderr, /is not based on .*base\/other:1: layer 0 is sha256:[a-f0-9]+ in the image and sha256:[a-f0-9]+ in the base/);
    const d11 = await trackedBase('v11', '2.31-13', { os: '11' });
    await copyImage(d11.source, await openDestination(`${host}/base/debian:11`));
    const osc = await plinth(['rebase', `${host}/team/cart:1`, '--old-base', `${host}/base/debian:12.1`, '--new-base', `${host}/base/debian:11`, '--tag', `${host}/team/cart:x`]);
    assert.equal(osc.code, 2);
    assert.match(osc.stderr, /changes the OS from debian 12 to debian 11/);
    const allowed = await plinth(['rebase', `${host}/team/cart:1`, '--old-base', `${host}/base/debian:12.1`, '--new-base', `${host}/base/debian:11`, '--tag', `${host}/team/cart:on11`, '--allow-os-change']);
    assert.equal(allowed.code, 0, allowed.stderr);
    const unknown = await plinth(['rebase', `${host}/team/unrelated:1`, '--catalog', catalog, '--tag', `${host}/team/unrelated:x`]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /its base is unknown; name it with --old-base/);
    const nowhere = await plinth(['rebase', `${host}/team/cart:1`, '--old-base', `${host}/base/debian:12.1`]);
    assert.equal(nowhere.code, 2);
    assert.match(nowhere.stderr, /--tag REF or --in-place/);
  });

  test('a two-platform index is rebased platform by platform; Buildpacks metadata is updated as pack rebase does', async () => {
    const b1 = [await trackedBase('m1', '1', { arch: 'amd64' }), await trackedBase('m1', '1', { arch: 'arm64' })];
    const b2 = [await trackedBase('m2', '2', { arch: 'amd64' }), await trackedBase('m2', '2', { arch: 'arm64' })];
    const i1 = buildIndex(b1);
    const i2 = buildIndex(b2);
    await copyImage(i1.source, await openDestination(`${host}/base/multi:1`));
    await copyImage(i2.source, await openDestination(`${host}/base/multi:2`));
    const bp = (b: BuiltImage) => JSON.stringify({ app: [{ sha: 'sha256:1' }], runImage: { topLayer: b.diffIds.at(-1), reference: `${host}/base/multi@${b.descriptor.digest}` }, stack: { runImage: { image: `${host}/base/multi:1` } } });
    const apps = [await appOn(b1[0]!, 'mx', { arch: 'amd64', labels: { 'io.buildpacks.lifecycle.metadata': bp(b1[0]!) } }), await appOn(b1[1]!, 'mx', { arch: 'arm64', labels: { 'io.buildpacks.lifecycle.metadata': bp(b1[1]!) } })];
    await copyImage(buildIndex(apps).source, await openDestination(`${host}/team/multi:1`));
    // A single-platform new base is not put under the other platform's entry.
    const amd = await plinth(['rebase', `${host}/team/multi:1`, '--old-base', `${host}/base/multi:1`, '--new-base', `${host}/base/multi@${b2[0]!.descriptor.digest}`, '--tag', `${host}/team/multi:bad`, '--allow-os-change']);
    assert.equal(amd.code, 1);
    assert.match(amd.stderr, /has no linux\/arm64 image \(it has linux\/amd64\)/);
    const r = await json(['rebase', `${host}/team/multi:1`, '--old-base', `${host}/base/multi:1`, '--new-base', `${host}/base/multi:2`, '--tag', `${host}/team/multi:2`, '--format', 'json']);
    assert.equal(r.plan.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(r.plan.platforms.map((p: any) => p.platform), ['linux/amd64', 'linux/arm64']);
    for (const [i, arch] of (['amd64', 'arm64'] as const).entries()) {
      const cfg = await json(['config', `${host}/team/multi:2`, '--platform', `linux/${arch}`]);
      assert.equal(cfg.architecture, arch);
      assert.deepEqual(cfg.rootfs.diff_ids.slice(0, 2), b2[i]!.diffIds);
      const md = JSON.parse(cfg.config.Labels['io.buildpacks.lifecycle.metadata']);
      assert.equal(md.runImage.topLayer, b2[i]!.diffIds.at(-1));
      assert.equal(md.runImage.reference, `${host}/base/multi@${b2[i]!.descriptor.digest}`);
      assert.deepEqual(md.app, [{ sha: 'sha256:1' }]);
    }
  });

  test('fleet: every consumer of a base, each tagged next to its original, reported per image', async () => {
    await copyImage((await appOn(v1, 'tote')).source, await openDestination(`${host}/team/tote:1`));
    const r = await json(['rebase', '--consumers-of', `${host}/base/debian:12.1`, '--new-base', `${host}/base/debian:12.2`, '--repos', `${host}/team/**`, '--catalog', catalog, '--format', 'json']);
    const byImage = Object.fromEntries(r.results.map((x: any) => [x.image.replace(`${host}/team/`, ''), x.outcome]));
    // Consumers of v1 in team/**: shop, cart, tote (and pay unless it was rebased in place already).
    assert.equal(byImage['cart:1'], 'rebased');
    assert.equal(byImage['shop:1'], 'rebased');
    assert.equal(byImage['tote:1'], 'rebased');
    // pay:1 is a consumer only when the earlier test has not rebased it in place yet.
    assert.ok(Object.keys(byImage).every((k) => ['cart:1', 'shop:1', 'tote:1', 'pay:1'].includes(k)), Object.keys(byImage).join());
    assert.ok(r.results.length >= 3);
    for (const n of ['cart', 'shop', 'tote']) {
      const cfg = await json(['config', `${host}/team/${n}:1-rebased`]);
      assert.deepEqual(cfg.rootfs.diff_ids.slice(0, 2), v2.diffIds);
    }
    // Rerun: every consumer's rebased tag exists already, the originals are still on v1: same results, same digests.
    const again = await json(['rebase', '--consumers-of', `${host}/base/debian:12.1`, '--new-base', `${host}/base/debian:12.2`, '--repos', `${host}/team/**`, '--catalog', catalog, '--format', 'json']);
    const d = (res: any) => Object.fromEntries(res.results.filter((x: any) => x.pushed).map((x: any) => [x.image, x.pushed.digest]));
    assert.deepEqual(d(again), d(r));
  });
});
