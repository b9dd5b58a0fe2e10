import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { buildImage, MemorySource, type BuiltImage, type FileSpec } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination, openSource } from '../src/source/open.js';
import { digestOf } from '../src/oci/digest.js';
import { chainIds } from '../src/provenance/chain.js';
import { compareAge, emptyCatalog, loadCatalog, matchFingerprint, newestApproved, type Catalog, type CatalogEntry } from '../src/provenance/catalog.js';
import { dockerPurlToRef } from '../src/provenance/evidence.js';
import { provenance, type ProvenanceReport } from '../src/provenance/report.js';
import type { Descriptor } from '../src/oci/types.js';
import { PlinthError } from '../src/util/errors.js';

const AMD64 = { os: 'linux', architecture: 'amd64' };
const baseLayers = (v: string): FileSpec[][] => [
  [{ path: 'etc/', type: 'directory' }, { path: 'etc/os-release', content: `ID=debian\nVERSION_ID="12"\nBUILD=${v}\n` }],
  [{ path: 'usr/', type: 'directory' }, { path: 'usr/lib.so', content: `lib ${v}` }],
];
const appLayer: FileSpec[] = [{ path: 'app/', type: 'directory' }, { path: 'app/main', content: 'app' }];

function entry(img: BuiltImage, name: string, tag: string, status: CatalogEntry['status'], created: string, extra: Partial<CatalogEntry> = {}): CatalogEntry {
  return { name, tag, digest: img.descriptor.digest, platform: 'linux/amd64', diffIds: img.diffIds, chainIds: chainIds(img.diffIds), created, status, ...extra };
}

async function report(src: MemorySource | string, catalog: Catalog, extra: { checkRegistry?: boolean } = {}): Promise<ProvenanceReport> {
  const s = typeof src === 'string' ? await openSource(src) : src;
  try {
    const [r] = await provenance(s, AMD64, { catalog, ...extra, now: Date.parse('2025-01-01T00:00:00Z') });
    return r!;
  } finally {
    if (typeof src === 'string') await s.close();
  }
}

/** An index holding `img` and extra manifests/blobs (attestations), with optional entry annotations. */
function indexOf(img: BuiltImage, extras: Array<{ desc: Descriptor; blobs: Buffer[] }>, o: { entryAnnotations?: Record<string, string>; annotations?: Record<string, string> } = {}): MemorySource {
  const src = new MemorySource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) });
  for (const [d, b] of img.source.blobs) src.blobs.set(d, b);
  for (const e of extras) for (const b of e.blobs) src.add(b);
  const manifests = [{ ...img.descriptor, platform: AMD64, ...(o.entryAnnotations ? { annotations: o.entryAnnotations } : {}) }, ...extras.map((e) => e.desc)];
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests, ...(o.annotations ? { annotations: o.annotations } : {}) }));
  src.root = { descriptor: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: src.add(bytes), size: bytes.length }, bytes };
  return src;
}

function attestation(subject: BuiltImage, statement: unknown): { desc: Descriptor; blobs: Buffer[] } {
  const layer = Buffer.from(JSON.stringify(statement));
  const config = Buffer.from('{}');
  const pt = (statement as { predicateType: string }).predicateType;
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.in-toto+json', digest: digestOf(layer), size: layer.length, annotations: { 'in-toto.io/predicate-type': pt } }],
  }));
  return {
    desc: {
      mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digestOf(manifest), size: manifest.length,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': subject.descriptor.digest },
    },
    blobs: [layer, config, manifest],
  };
}

describe('provenance: base image detection', () => {
  let reg: TestRegistry;
  let work: string;
  let base1: BuiltImage;
  let base2: BuiltImage;
  let frontend: BuiltImage;
  let catalog: Catalog;
  let baseName: string;

  before(async () => {
    reg = await startRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-prov-'));
    base1 = await buildImage({ platform: AMD64, layers: baseLayers('1'), created: '2024-01-01T00:00:00Z' });
    base2 = await buildImage({ platform: AMD64, layers: baseLayers('2'), created: '2024-06-01T00:00:00Z' });
    frontend = await buildImage({ platform: AMD64, layers: [[{ path: 'bin/frontend', content: 'dockerfile frontend' }]] });
    baseName = `${reg.host}/base/debian`;
    await copyImage(base1.source, await openDestination(`${baseName}:12`));
    await copyImage(base2.source, await openDestination(`${baseName}:12.1`));
    await copyImage(frontend.source, await openDestination(`${reg.host}/docker/dockerfile:1`));
    catalog = emptyCatalog();
    catalog.bases.push(entry(base1, baseName, '12', 'approved', '2024-01-01T00:00:00Z'), entry(base2, baseName, '12.1', 'approved', '2024-06-01T00:00:00Z'));
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const derived = (o: Parameters<typeof buildImage>[0] extends infer T ? Partial<T> : never = {}) =>
    buildImage({ platform: AMD64, layers: [...baseLayers('1'), appLayer], created: '2024-03-01T00:00:00Z', ...o });

  test('ko-style annotations on the manifest, the index entry and the index, confirmed by the catalog', async () => {
    const img = await derived({ annotations: { 'org.opencontainers.image.base.name': `${baseName}:12`, 'org.opencontainers.image.base.digest': base1.descriptor.digest } });
    const r = await report(img.source, catalog);
    assert.equal(r.base?.name, baseName);
    assert.equal(r.base?.tag, '12');
    assert.equal(r.base?.digest, base1.descriptor.digest);
    assert.equal(r.base?.confidence, 'high');
    assert.deepEqual(r.base?.layers, { base: 2, image: 1, total: 3 });
    assert.equal(r.base?.evidence[0]?.kind, 'manifest-annotation');
    assert.equal(r.base?.evidence[0]?.confirmed, true);
    assert.deepEqual(r.base?.conflicts, []);
    assert.equal(r.upToDate.baseStatus, 'approved');
    assert.equal(r.upToDate.isNewestApproved, false);
    assert.equal(r.upToDate.newestApproved?.digest, base2.descriptor.digest);
    assert.equal(r.upToDate.imageAgeDays, 306);
    // The same facts on the index entry and on the index (ko writes both).
    const plain = await derived();
    const ann = { 'org.opencontainers.image.base.name': `${baseName}:12`, 'org.opencontainers.image.base.digest': base1.descriptor.digest };
    const r2 = await report(indexOf(plain, [], { entryAnnotations: ann }), catalog);
    assert.equal(r2.base?.evidence[0]?.kind, 'index-entry-annotation');
    assert.equal(r2.base?.confidence, 'high');
    const r3 = await report(indexOf(plain, [], { annotations: ann }), catalog);
    assert.equal(r3.base?.evidence[0]?.kind, 'index-annotation');
    assert.equal(r3.base?.digest, base1.descriptor.digest);
  });

  test('a base label that is not fully qualified is normalised; without a digest the confidence is low', async () => {
    const img = await derived({ labels: { 'org.opencontainers.image.base.name': 'ubuntu:jammy' } });
    const r = await report(img.source, emptyCatalog());
    assert.equal(r.base?.name, 'docker.io/library/ubuntu');
    assert.equal(r.base?.tag, 'jammy');
    assert.equal(r.base?.digest, null);
    assert.equal(r.base?.confidence, 'low');
    assert.equal(r.base?.evidence[0]?.kind, 'config-label');
    assert.ok(r.rebuild.missing.some((m) => /not pinned to a digest/.test(m)));
  });

  test('BuildKit build info: the source whose layers are a prefix of the image is the base', async () => {
    const info = {
      frontend: 'dockerfile.v0',
      sources: [
        { type: 'docker-image', ref: `${reg.host}/docker/dockerfile:1`, pin: frontend.descriptor.digest },
        { type: 'docker-image', ref: `${baseName}:12`, pin: base1.descriptor.digest },
        { type: 'git', ref: 'https://example.com/app.git#main', pin: '259a5aa5aa5bb3562d12cc631fe399f4788642c1' },
      ],
    };
    const b64 = Buffer.from(JSON.stringify(info)).toString('base64');
    for (const key of ['moby.buildkit.buildinfo.v1', 'moby.buildkit.buildinfo.v0']) {
      const img = await derived({ extraConfig: { [key]: b64 } });
      // Confirmed through the registry (the catalog is empty).
      const r = await report(img.source, emptyCatalog(), { checkRegistry: true });
      assert.equal(r.base?.name, baseName, key);
      assert.equal(r.base?.digest, base1.descriptor.digest);
      assert.equal(r.base?.confidence, 'high');
      assert.equal(r.where.builder, 'buildkit');
      assert.deepEqual(r.base?.candidates.map((c) => c.name), [`${reg.host}/docker/dockerfile`]);
      assert.ok(r.rebuild.materials[0]!.items.some((i) => i.type === 'git'));
    }
    // Offline and without a catalog: two images used, none confirmed → unknown, both listed.
    const img = await derived({ extraConfig: { 'moby.buildkit.buildinfo.v1': b64 } });
    const r = await report(img.source, emptyCatalog());
    assert.equal(r.base, null);
    assert.equal(r.baseCandidates.length, 2);
  });

  test('BuildKit attestation index with SLSA v0.2 and v1 provenance', async () => {
    const purl = `pkg:docker/${reg.host}/base/debian@12?platform=linux%2Famd64`;
    const fpurl = `pkg:docker/${reg.host}/docker/dockerfile@1?platform=linux%2Famd64`;
    const hex = (d: string) => d.slice('sha256:'.length);
    const img = await derived({ history: [{ created_by: 'RUN x' }], extraConfig: {} });
    const v02 = {
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: 'https://slsa.dev/provenance/v0.2',
      subject: [{ name: 'pkg:docker/app@latest', digest: { sha256: hex(img.descriptor.digest) } }],
      predicate: {
        builder: { id: 'https://example.com/ci/1' },
        buildType: 'https://mobyproject.org/buildkit@v1',
        materials: [
          { uri: fpurl, digest: { sha256: hex(frontend.descriptor.digest) } },
          { uri: purl, digest: { sha256: hex(base1.descriptor.digest) } },
          { uri: 'https://github.com/example/app.git#main', digest: { sha1: '4b220de5058abfd01ff619c9d2ff6b09a049bea0' } },
        ],
        invocation: { configSource: { uri: 'https://github.com/example/app.git#main', entryPoint: 'Dockerfile' } },
        metadata: { reproducible: false },
      },
    };
    const r1 = await report(indexOf(img, [attestation(img, v02)]), catalog);
    assert.equal(r1.base?.name, baseName);
    assert.equal(r1.base?.evidence.find((e) => e.confirmed)?.kind, 'slsa-provenance');
    assert.equal(r1.base?.confidence, 'high');
    assert.equal(r1.rebuild.materials[0]?.builderId, 'https://example.com/ci/1');
    assert.ok(r1.rebuild.missing.some((m) => /not reproducible/.test(m)));
    const v1 = {
      _type: 'https://in-toto.io/Statement/v1',
      predicateType: 'https://slsa.dev/provenance/v1',
      subject: v02.subject,
      predicate: {
        buildDefinition: { buildType: 'https://example.com/bt', externalParameters: { configSource: { uri: 'https://github.com/example/app.git', path: 'Dockerfile' } }, resolvedDependencies: v02.predicate.materials },
        runDetails: { builder: { id: 'https://example.com/ci/2' }, metadata: { buildkit_reproducible: true } },
      },
    };
    const r2 = await report(indexOf(img, [attestation(img, v1)]), catalog);
    assert.equal(r2.base?.digest, base1.descriptor.digest);
    assert.equal(r2.base?.layers.base, 2);
    assert.equal(r2.rebuild.materials[0]?.configSource?.entryPoint, 'Dockerfile');
    assert.equal(r2.where.builder, 'buildkit');
  });

  test('Cloud Native Buildpacks metadata: runImage.reference and topLayer, and the older stack key', async () => {
    const meta = {
      app: [{ sha: `sha256:${'1'.repeat(64)}` }],
      runImage: { topLayer: base1.diffIds[1], reference: `${baseName}@${base1.descriptor.digest}`, image: `${baseName}:12`, mirrors: [] },
      stack: { runImage: { image: `${baseName}:12` } },
    };
    const img = await derived({ labels: { 'io.buildpacks.lifecycle.metadata': JSON.stringify(meta) } });
    const r = await report(img.source, emptyCatalog());
    assert.equal(r.where.builder, 'buildpacks');
    assert.equal(r.base?.name, baseName);
    assert.equal(r.base?.digest, base1.descriptor.digest);
    assert.equal(r.base?.confidence, 'high');
    assert.deepEqual(r.base?.layers, { base: 2, image: 1, total: 3 });
    // topLayer only proves a layer boundary, not which image made it: not verified.
    assert.equal(r.base?.verified, false);
    const old = await derived({ labels: { 'io.buildpacks.lifecycle.metadata': JSON.stringify({ stack: { runImage: { image: 'cnbs/sample-stack-run:bionic' } } }) } });
    const r2 = await report(old.source, emptyCatalog());
    assert.equal(r2.base?.name, 'docker.io/cnbs/sample-stack-run');
    assert.equal(r2.base?.confidence, 'low');
  });

  test('no metadata: the base is found by layer fingerprint, approved first, ties reported', async () => {
    const img = await derived();
    const r = await report(img.source, catalog);
    assert.equal(r.base?.name, baseName);
    assert.equal(r.base?.digest, base1.descriptor.digest);
    assert.equal(r.base?.evidence[0]?.kind, 'fingerprint');
    assert.equal(r.base?.confidence, 'high');
    // A one-layer base that is also a prefix ranks below the approved two-layer one…
    const cat2 = structuredClone(catalog);
    cat2.bases.push({ name: 'example.com/tiny', digest: `sha256:${'3'.repeat(64)}`, diffIds: [base1.diffIds[0]!], status: 'approved', created: '2024-09-01T00:00:00Z' });
    assert.equal((await report(img.source, cat2)).base?.name, baseName);
    // …and an unknown-status base with more layers ranks below an approved one.
    const ranked = matchFingerprint({ ...cat2, bases: [...cat2.bases, { name: 'example.com/other', digest: `sha256:${'4'.repeat(64)}`, diffIds: img.diffIds.slice(0, 2), status: 'unknown' }] }, img.diffIds);
    assert.deepEqual(ranked.matches.map((m) => m.entry.name), [baseName, 'example.com/tiny', 'example.com/other']);
    // Two catalog entries with the same layers and status tie: both are reported.
    const cat3 = emptyCatalog();
    cat3.bases.push(entry(base1, baseName, '12', 'approved', '2024-01-01T00:00:00Z'), entry(base1, 'mirror.example.com/debian', '12', 'approved', '2024-01-01T00:00:00Z', { digest: `sha256:${'5'.repeat(64)}` }));
    const r3 = await report(img.source, cat3);
    assert.equal(r3.base?.confidence, 'medium');
    assert.equal(r3.base?.candidates.length, 1);
    assert.match(r3.base!.conflicts[0]!, /2 catalog bases match/);
  });

  test('an image whose base is not in the catalog is unknown, not a wrong guess', async () => {
    const other = await buildImage({ platform: AMD64, layers: [[{ path: 'x', content: 'unrelated' }], appLayer] });
    const r = await report(other.source, catalog);
    assert.equal(r.base, null);
    assert.deepEqual(r.baseCandidates, []);
    assert.ok(r.rebuild.missing.includes('the base image is unknown'));
    assert.equal(r.upToDate.baseStatus, null);
  });

  test('conflicting evidence is reported', async () => {
    // The annotation names base2, but the layers are base1's.
    const img = await derived({ annotations: { 'org.opencontainers.image.base.name': `${baseName}:12.1`, 'org.opencontainers.image.base.digest': base2.descriptor.digest } });
    const r = await report(img.source, catalog);
    assert.equal(r.base?.digest, base2.descriptor.digest);
    assert.equal(r.base?.confidence, 'low');
    assert.equal(r.base?.evidence[0]?.confirmed, false);
    assert.ok(r.base!.conflicts.some((c) => /does not match the image's layers/.test(c)));
    // Two declarations that disagree.
    const img2 = await derived({
      annotations: { 'org.opencontainers.image.base.name': `${baseName}:12`, 'org.opencontainers.image.base.digest': base1.descriptor.digest },
      labels: { 'org.opencontainers.image.base.name': 'docker.io/library/alpine:3.19' },
    });
    const r2 = await report(img2.source, catalog);
    assert.equal(r2.base?.name, baseName);
    assert.ok(r2.base!.conflicts.some((c) => /config label .* names docker.io\/library\/alpine/.test(c)), r2.base!.conflicts.join('\n'));
  });

  test('hostile or malformed metadata gives findings, never a crash', async () => {
    const bigLabel = 'x'.repeat(2 * 1024 * 1024);
    const img = await derived({
      labels: { 'io.buildpacks.lifecycle.metadata': '{not json', huge: bigLabel, 'org.opencontainers.image.base.name': 'NOT A REF!!' },
      extraConfig: { 'moby.buildkit.buildinfo.v1': '%%%not-base64%%%', 'moby.buildkit.buildinfo.v0': Buffer.from('[1,2').toString('base64') },
      annotations: { 'org.opencontainers.image.base.digest': 'sha256:short' },
    });
    const r = await report(img.source, emptyCatalog());
    const text = r.findings.map((f) => `${f.source}: ${f.message}`).join('\n');
    assert.match(text, /buildpacks.lifecycle.metadata: not valid JSON/);
    assert.match(text, /label huge: label value is 2097152 bytes/);
    assert.match(text, /not a valid image reference/);
    assert.match(text, /buildinfo.v1: build info is not valid base64/);
    assert.match(text, /buildinfo.v0: not valid JSON/);
    // Bad purls in SLSA materials.
    const st = { predicateType: 'https://slsa.dev/provenance/v0.2', predicate: { materials: [{ uri: 'pkg:docker/%ZZ@1', digest: {} }, { uri: 'pkg:docker/UPPER/Case@1' }] } };
    const r2 = await report(indexOf(img, [attestation(img, st)]), emptyCatalog());
    assert.ok(r2.findings.some((f) => /does not parse|not a valid image reference/.test(f.message)));
    assert.equal(dockerPurlToRef('pkg:docker/alpine@3.17?platform=linux%2Famd64')?.ref, 'alpine:3.17');
    assert.equal(dockerPurlToRef('pkg:docker/ghcr.io/org/img@sha256:abc')?.digest, 'sha256:abc');
    assert.equal(dockerPurlToRef('pkg:npm/x@1'), undefined);
  });

  test('works on every source: registry, OCI layout, oci-archive, docker-archive', async () => {
    const img = await derived({ annotations: { 'org.opencontainers.image.base.name': `${baseName}:12`, 'org.opencontainers.image.base.digest': base1.descriptor.digest } });
    const places = [`${reg.host}/app/derived:1`, `oci:${path.join(work, 'l')}:d`, `oci-archive:${path.join(work, 'd.tar')}:d`, `docker-archive:${path.join(work, 'dk.tar')}:app/derived:1`];
    for (const p of places) {
      await copyImage(img.source, await openDestination(p));
      const r = await report(p, catalog);
      assert.equal(r.base?.digest, base1.descriptor.digest, p);
      assert.equal(r.base?.confidence, 'high', p);
    }
  });

  test('multi-platform: one answer per platform', async () => {
    const arm = await buildImage({ platform: { os: 'linux', architecture: 'arm64' }, layers: [[{ path: 'arm', content: 'arm' }], appLayer] });
    const amd = await derived();
    const { buildIndex } = await import('../src/source/memory.js');
    const idx = buildIndex([amd, arm]);
    const reports = await provenance(idx.source, 'all', { catalog });
    assert.equal(reports.length, 2);
    assert.equal(reports[0]!.base?.name, baseName);
    assert.equal(reports[1]!.base, null);
    assert.equal(reports[1]!.image.platform, 'linux/arm64');
    assert.equal(reports[0]!.image.index, idx.descriptor.digest);
  });

  test('a base found in the catalog by digest carries the catalog name; a borrowed name or tag is a conflict, not an identity', async () => {
    // The image claims a trusted name for the digest of base1 (catalogued as base/debian:12).
    const img = await derived({ annotations: { 'org.opencontainers.image.base.name': 'cgr.dev/chainguard/static:latest', 'org.opencontainers.image.base.digest': base1.descriptor.digest } });
    const r = await report(img.source, catalog);
    assert.equal(r.base?.name, baseName);
    assert.equal(r.base?.verified, true);
    assert.ok(r.base?.conflicts.some((c) => /names cgr\.dev\/chainguard\/static:latest, but the catalog knows sha256:[0-9a-f]{12}… as .*base\/debian:12/.test(c)), JSON.stringify(r.base?.conflicts));
    // Same repository, another tag than the catalog records for that digest: the tag is not verified.
    const retagged = await derived({ annotations: { 'org.opencontainers.image.base.name': `${baseName}:13`, 'org.opencontainers.image.base.digest': base1.descriptor.digest } });
    const r2 = await report(retagged.source, catalog);
    assert.equal(r2.base?.tag, '13');
    assert.equal(r2.base?.tagVerified, false);
  });

  test('verifying a declared base in its registry: the digest proves the layers, the tag is checked', async () => {
    const { provenanceOf } = await import('../src/provenance/report.js');
    const { resolveRoot, selectImages } = await import('../src/source/image.js');
    const run = async (annotations: Record<string, string>) => {
      const img = await derived({ annotations });
      const root = await resolveRoot(img.source);
      const [node] = await selectImages(img.source, root, undefined);
      return provenanceOf(img.source, node!, undefined, { catalog: emptyCatalog(), verifyBase: true });
    };
    const good = await run({ 'org.opencontainers.image.base.name': `${baseName}:12`, 'org.opencontainers.image.base.digest': base1.descriptor.digest });
    assert.equal(good.base?.verified, true);
    assert.equal(good.base?.tagVerified, true);
    // 12.1 points at base2: the claimed tag is wrong for this digest.
    const wrongTag = await run({ 'org.opencontainers.image.base.name': `${baseName}:12.1`, 'org.opencontainers.image.base.digest': base1.descriptor.digest });
    assert.equal(wrongTag.base?.verified, true);
    assert.equal(wrongTag.base?.tagVerified, false);
    assert.ok(wrongTag.findings.some((f) => /12\.1 does not point at/.test(f.message)));
    // A name that looks like a local transport is still a registry reference (never a local path).
    const local = await run({ 'org.opencontainers.image.base.name': 'oci:5000/foo:1', 'org.opencontainers.image.base.digest': base1.descriptor.digest });
    assert.equal(local.base?.verified, false);
    assert.ok(local.findings.some((f) => f.lookupError && /could not look up base oci:5000\/foo/.test(f.message) && !/layout/.test(f.message)), JSON.stringify(local.findings));
  });

  test('--check-registry notices that the base tag has moved', async () => {
    await copyImage(base1.source, await openDestination(`${baseName}:moving`));
    const img = await derived({ annotations: { 'org.opencontainers.image.base.name': `${baseName}:moving`, 'org.opencontainers.image.base.digest': base1.descriptor.digest } });
    const still = await report(img.source, catalog, { checkRegistry: true });
    assert.equal(still.upToDate.baseTagMoved?.moved, false);
    await copyImage(base2.source, await openDestination(`${baseName}:moving`));
    const moved = await report(img.source, catalog, { checkRegistry: true });
    assert.equal(moved.upToDate.baseTagMoved?.moved, true);
    assert.equal(moved.upToDate.baseTagMoved?.now, base2.descriptor.digest);
  });

  test('catalog files: round trip, chain IDs, errors with line numbers', async () => {
    const file = path.join(work, 'catalog.yaml');
    const { saveCatalog } = await import('../src/provenance/catalog.js');
    await saveCatalog(file, catalog);
    const back = await loadCatalog(file);
    assert.equal(back.bases.length, 2);
    assert.deepEqual(back.bases[0]!.chainIds, chainIds(base1.diffIds));
    assert.equal(chainIds(['sha256:a', 'sha256:b'])[1], digestOf('sha256:a sha256:b'));
    await writeFile(file, 'apiVersion: plinth.dev/v1alpha1\nkind: BaseImageCatalog\nbases:\n  - name: x\n    digest: sha256:nothex\n    diffIds: []\n    status: great\n');
    await assert.rejects(loadCatalog(file), (e: unknown) => {
      assert.ok(e instanceof PlinthError);
      assert.match(e.message, /catalog.yaml:5:\d+: bases\[0\]\.digest/);
      assert.match(e.message, /status/);
      return true;
    });
    await writeFile(file, 'bases: [ {name: x\n');
    await assert.rejects(loadCatalog(file), /invalid YAML/);
    assert.equal((await readFile(file, 'utf8')).length > 0, true);
  });
});

describe('catalog: the newest version of a line', () => {
  const entry = (tag: string, o: Partial<CatalogEntry>): CatalogEntry => ({ name: 'golden/debian', tag, digest: `sha256:${tag.replace(/\D/g, '').padStart(64, '0')}`, diffIds: [`sha256:${'1'.repeat(64)}`], status: 'approved', line: 'debian-12', ...o });
  test('reproducible builds share one created time: when the catalog got them decides, then their order', () => {
    const cat = emptyCatalog();
    const fixed = '1970-01-01T00:00:00Z';
    cat.bases.push(entry('12.2', { created: fixed, addedAt: '2026-02-01T00:00:00Z' }), entry('12.1', { created: fixed, addedAt: '2026-01-01T00:00:00Z' }));
    assert.equal(newestApproved(cat, 'debian-12')?.tag, '12.2');
    assert.ok(compareAge(cat, cat.bases[1]!, cat.bases[0]!) < 0, '12.1 is older');
    // Neither says when: the later catalog entry is the newer one.
    const bare = emptyCatalog();
    bare.bases.push(entry('12.1', {}), entry('12.2', {}));
    assert.equal(newestApproved(bare, 'debian-12')?.tag, '12.2');
    // created still comes first.
    const dated = emptyCatalog();
    dated.bases.push(entry('12.3', { created: '2026-03-01T00:00:00Z', addedAt: '2026-01-01T00:00:00Z' }), entry('12.2', { created: '2026-02-01T00:00:00Z', addedAt: '2026-05-01T00:00:00Z' }));
    assert.equal(newestApproved(dated, 'debian-12')?.tag, '12.3');
    // One says when it was built, the later one does not: not "older than 1970", the later entry.
    const mixed = emptyCatalog();
    mixed.bases.push(entry('12.1', { created: '2026-01-01T00:00:00Z' }), entry('12.2', {}));
    assert.equal(newestApproved(mixed, 'debian-12')?.tag, '12.2');
  });
});
