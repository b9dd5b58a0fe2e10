import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { PlinthError } from '../util/errors.js';
import { digestOf, VerifyingStream } from '../oci/digest.js';
import type { Descriptor, Platform } from '../oci/types.js';
import type { ImageSource, RootDocument } from './types.js';

/**
 * Images made in memory: an image source over a map of blobs. Used to build small images
 * (the demo, tests, artifacts such as signatures later) and to write them anywhere with copyImage.
 */
export class MemorySource implements ImageSource {
  readonly transport = 'oci' as const;
  readonly blobs = new Map<string, Buffer>();
  constructor(
    public root: RootDocument,
    readonly description = 'memory',
  ) {}

  add(data: Buffer): string {
    const d = digestOf(data);
    this.blobs.set(d, data);
    return d;
  }

  async resolve(): Promise<RootDocument> {
    return this.root;
  }
  private get(desc: Descriptor): Buffer {
    const b = this.blobs.get(desc.digest);
    if (!b) throw new PlinthError('BLOB_UNKNOWN', `no blob ${desc.digest} in ${this.description}`);
    return b;
  }
  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    return this.get(desc);
  }
  async openBlob(desc: Descriptor): Promise<Readable> {
    const v = new VerifyingStream(desc.digest, desc.size, `${this.description} blob ${desc.digest}`);
    return Readable.from([this.get(desc)]).pipe(v);
  }
  async readBlob(desc: Descriptor): Promise<Buffer> {
    return this.get(desc);
  }
  async close(): Promise<void> {}
}

export interface FileSpec {
  path: string;
  content?: string | Buffer;
  mode?: number;
  type?: 'file' | 'directory' | 'symlink';
  linkname?: string;
}

/** A deterministic layer tar (mtime 0, sorted order as given). */
export async function makeLayerTar(files: FileSpec[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const f of files) {
    const type = f.type ?? 'file';
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: f.path.replace(/^\/+/, ''),
        mode: f.mode ?? (type === 'directory' ? 0o755 : 0o644),
        mtime: new Date(0),
        type,
        uid: 0,
        gid: 0,
        ...(f.linkname ? { linkname: f.linkname } : {}),
      };
      if (type === 'file') pack.entry(header, f.content ?? '', (e) => (e ? reject(e) : resolve()));
      else pack.entry(header, (e) => (e ? reject(e) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface BuildImageOptions {
  layers: FileSpec[][];
  platform?: Platform;
  /** OCI (default) or Docker schema2 media types. */
  format?: 'oci' | 'docker';
  compression?: 'gzip' | 'none';
  created?: string;
  labels?: Record<string, string>;
  env?: string[];
  cmd?: string[];
  entrypoint?: string[];
  annotations?: Record<string, string>;
  history?: Array<{ created_by: string; empty_layer?: boolean }>;
  /** Extra top-level config fields (e.g. moby.buildkit.buildinfo.v1). */
  extraConfig?: Record<string, unknown>;
}

export interface BuiltImage {
  source: MemorySource;
  descriptor: Descriptor;
  manifest: Buffer;
  config: Buffer;
  diffIds: string[];
}

/** Build a small image in memory from file lists. Deterministic: same input, same digests. */
export async function buildImage(o: BuildImageOptions): Promise<BuiltImage> {
  const docker = o.format === 'docker';
  const gzip = (o.compression ?? 'gzip') === 'gzip';
  const platform = o.platform ?? { os: 'linux', architecture: 'amd64' };
  const src = new MemorySource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) });
  const layers: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const files of o.layers) {
    const raw = await makeLayerTar(files);
    diffIds.push(digestOf(raw));
    const blob = gzip ? gzipSync(raw, { level: 6 }) : raw;
    const mediaType = docker
      ? gzip ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.docker.image.rootfs.diff.tar'
      : gzip ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar';
    layers.push({ mediaType, digest: src.add(blob), size: blob.length });
  }
  const created = o.created ?? '1970-01-01T00:00:00Z';
  const config = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: {
      Env: o.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...(o.cmd ? { Cmd: o.cmd } : {}),
      ...(o.entrypoint ? { Entrypoint: o.entrypoint } : {}),
      ...(o.labels ? { Labels: o.labels } : {}),
    },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: o.history ?? o.layers.map((_, i) => ({ created, created_by: `plinth build layer ${i + 1}` })),
    ...(o.extraConfig ?? {}),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDesc: Descriptor = {
    mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json',
    digest: src.add(configBytes),
    size: configBytes.length,
  };
  const manifestMT = docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
  const manifest = {
    schemaVersion: 2,
    mediaType: manifestMT,
    config: configDesc,
    layers,
    ...(o.annotations ? { annotations: o.annotations } : {}),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const descriptor: Descriptor = { mediaType: manifestMT, digest: src.add(manifestBytes), size: manifestBytes.length };
  src.root = { descriptor, bytes: manifestBytes };
  return { source: src, descriptor, manifest: manifestBytes, config: configBytes, diffIds };
}

/** Combine built images into one multi-platform index (OCI or Docker manifest list). */
export function buildIndex(images: BuiltImage[], o: { format?: 'oci' | 'docker'; annotations?: Record<string, string> } = {}): { source: MemorySource; descriptor: Descriptor; bytes: Buffer } {
  const docker = o.format === 'docker';
  const src = new MemorySource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) });
  const manifests: Descriptor[] = [];
  for (const img of images) {
    for (const [d, b] of img.source.blobs) src.blobs.set(d, b);
    const cfg = JSON.parse(img.config.toString('utf8')) as { os: string; architecture: string; variant?: string };
    manifests.push({ ...img.descriptor, platform: { os: cfg.os, architecture: cfg.architecture, ...(cfg.variant ? { variant: cfg.variant } : {}) } });
  }
  const mediaType = docker ? 'application/vnd.docker.distribution.manifest.list.v2+json' : 'application/vnd.oci.image.index.v1+json';
  const index = { schemaVersion: 2, mediaType, manifests, ...(o.annotations ? { annotations: o.annotations } : {}) };
  const bytes = Buffer.from(JSON.stringify(index));
  const descriptor: Descriptor = { mediaType, digest: src.add(bytes), size: bytes.length };
  src.root = { descriptor, bytes };
  return { source: src, descriptor, bytes };
}
