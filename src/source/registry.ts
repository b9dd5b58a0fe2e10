import type { Readable } from 'node:stream';
import { PlinthError } from '../util/errors.js';
import type { Descriptor } from '../oci/types.js';
import type { ImageReference } from '../oci/reference.js';
import { RegistryClient } from '../registry/client.js';
import type { ImageDestination, ImageSource, RootDocument } from './types.js';

function docMediaType(bytes: Buffer, header: string): string {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown; manifests?: unknown; schemaVersion?: unknown };
    if (typeof doc.mediaType === 'string' && doc.mediaType) return doc.mediaType;
    if (doc.schemaVersion === 1) return 'application/vnd.docker.distribution.manifest.v1+json';
    if (header && header !== 'application/json' && header !== 'text/plain') return header;
    return Array.isArray(doc.manifests) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json';
  } catch {
    return header;
  }
}

export class RegistrySource implements ImageSource {
  readonly transport = 'registry' as const;
  readonly description: string;
  constructor(
    readonly ref: ImageReference,
    readonly client: RegistryClient,
  ) {
    this.description = `docker://${ref.string}`;
  }

  get repository(): string {
    return this.ref.repository;
  }

  async resolve(): Promise<RootDocument> {
    const m = await this.client.getManifest(this.ref.repository, this.ref.digest ?? this.ref.tag ?? 'latest');
    return { descriptor: { mediaType: docMediaType(m.bytes, m.mediaType), digest: m.digest, size: m.bytes.length }, bytes: m.bytes };
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    const m = await this.client.getManifest(this.ref.repository, desc.digest);
    if (m.bytes.length !== desc.size) {
      throw new PlinthError('SIZE_MISMATCH', `manifest ${desc.digest} is ${m.bytes.length} bytes, its descriptor says ${desc.size}`);
    }
    return m.bytes;
  }

  openBlob(desc: Descriptor): Promise<Readable> {
    return this.client.getBlob(this.ref.repository, desc.digest, desc.size);
  }

  readBlob(desc: Descriptor, limit?: number): Promise<Buffer> {
    return this.client.getBlobBytes(this.ref.repository, desc.digest, desc.size, limit);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

export class RegistryDestination implements ImageDestination {
  readonly transport = 'registry' as const;
  readonly description: string;
  /** Tag to write the root under (none: push by digest only). */
  constructor(
    readonly ref: ImageReference,
    readonly client: RegistryClient,
  ) {
    this.description = `docker://${ref.string}`;
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    const size = await this.client.blobExists(this.ref.repository, desc.digest, [`repository:${this.ref.repository}:pull,push`]);
    return size !== undefined;
  }

  async mountBlob(desc: Descriptor, source: ImageSource): Promise<boolean> {
    // A composed image (a rebase) names the repository each blob comes from.
    const from = (source as { originOf?: (d: Descriptor) => ImageSource | undefined }).originOf?.(desc) ?? source;
    if (!(from instanceof RegistrySource)) return false;
    if (from.ref.registry !== this.ref.registry || from.ref.repository === this.ref.repository) return false;
    return this.client.mountBlob(this.ref.repository, desc.digest, from.ref.repository);
  }

  putBlob(desc: Descriptor, open: () => Promise<Readable>, onProgress?: (n: number) => void): Promise<void> {
    return this.client.uploadBlob(this.ref.repository, { digest: desc.digest, size: desc.size }, open, onProgress);
  }

  async hasManifest(desc: Descriptor): Promise<boolean> {
    const h = await this.client.headManifest(this.ref.repository, desc.digest);
    return h !== undefined;
  }

  async putManifest(desc: Descriptor, bytes: Buffer): Promise<void> {
    await this.client.putManifest(this.ref.repository, desc.digest, bytes, desc.mediaType);
  }

  async commit(root: Descriptor, bytes: Buffer): Promise<void> {
    if (this.ref.digest && this.ref.digest !== root.digest) {
      throw new PlinthError('DIGEST_MISMATCH', `destination names digest ${this.ref.digest} but the image's digest is ${root.digest}`);
    }
    const target = this.ref.tagDefaulted && this.ref.digest ? root.digest : (this.ref.tag ?? root.digest);
    await this.client.putManifest(this.ref.repository, target, bytes, root.mediaType);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
