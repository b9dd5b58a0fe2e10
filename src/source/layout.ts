import type { Readable } from 'node:stream';
import { PlinthError } from '../util/errors.js';
import { parseDigest, verifyBytes, VerifyingStream } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import { validateIndex } from '../oci/validate.js';
import type { FileStore } from './store.js';
import type { ImageSource, RootDocument, Transport } from './types.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
const DOC_LIMIT = 4 * 1024 * 1024;

export function blobPath(digest: string): string {
  const d = parseDigest(digest);
  return `blobs/${d.algorithm}/${d.hex}`;
}

/**
 * An OCI image layout (a directory, or an oci-archive's members) as an image source.
 * REF picks the index.json entry whose `org.opencontainers.image.ref.name` is REF, or a digest,
 * or `@N` (the Nth entry); with no REF the layout must hold exactly one entry.
 */
export class LayoutSource implements ImageSource {
  constructor(
    readonly transport: Transport,
    private readonly store: FileStore,
    private readonly ref: string | undefined,
    readonly description: string,
  ) {}

  static async checkLayout(store: FileStore, what: string): Promise<void> {
    if (!(await store.exists('oci-layout'))) {
      if (!(await store.exists('index.json'))) {
        throw new PlinthError('LAYOUT_INVALID', `${store.where} is not an OCI image layout (no oci-layout or index.json) — ${what}`);
      }
      return;
    }
    let layout: unknown;
    try {
      layout = JSON.parse((await store.read('oci-layout', 64 * 1024)).toString('utf8'));
    } catch {
      throw new PlinthError('LAYOUT_INVALID', `${store.where}/oci-layout is not valid JSON`);
    }
    const v = (layout as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
    if (typeof v !== 'string' || !/^1\.\d+\.\d+$/.test(v)) {
      throw new PlinthError('LAYOUT_INVALID', `${store.where}/oci-layout has an unsupported imageLayoutVersion ${JSON.stringify(v)} (expected 1.x.y)`);
    }
  }

  async readIndex(): Promise<{ manifests: Descriptor[]; raw: Buffer }> {
    await LayoutSource.checkLayout(this.store, this.description);
    const raw = await this.store.read('index.json', DOC_LIMIT);
    let doc: unknown;
    try {
      doc = JSON.parse(raw.toString('utf8'));
    } catch (e) {
      throw new PlinthError('LAYOUT_INVALID', `${this.store.where}/index.json is not valid JSON: ${(e as Error).message}`);
    }
    try {
      validateIndex(doc);
    } catch (e) {
      throw new PlinthError('LAYOUT_INVALID', `${this.store.where}/index.json: ${(e as Error).message}`);
    }
    return { manifests: (doc as { manifests: Descriptor[] }).manifests, raw };
  }

  async resolve(): Promise<RootDocument> {
    const { manifests } = await this.readIndex();
    let chosen: Descriptor | undefined;
    const names = () => manifests.map((m, i) => m.annotations?.[REF_NAME] ?? `@${i}`).join(', ');
    if (this.ref === undefined || this.ref === '') {
      if (manifests.length === 1) chosen = manifests[0];
      else if (manifests.length === 0) throw new PlinthError('MANIFEST_UNKNOWN', `${this.store.where} holds no images`);
      else throw new PlinthError('USAGE', `${this.store.where} holds ${manifests.length} images; name one (${this.transport}:${this.store.where}:REF) — it has: ${names()}`);
    } else if (/^@\d+$/.test(this.ref)) {
      chosen = manifests[Number(this.ref.slice(1))];
      if (!chosen) throw new PlinthError('MANIFEST_UNKNOWN', `${this.store.where} has no image ${this.ref} (it has ${manifests.length})`);
    } else if (/^[a-z0-9]+:[a-f0-9]{32,}$/.test(this.ref)) {
      chosen = manifests.find((m) => m.digest === this.ref);
      if (!chosen) throw new PlinthError('MANIFEST_UNKNOWN', `${this.store.where} has no image with digest ${this.ref}`);
    } else {
      const hits = manifests.filter((m) => m.annotations?.[REF_NAME] === this.ref);
      if (hits.length === 0) throw new PlinthError('MANIFEST_UNKNOWN', `${this.store.where} has no image named "${this.ref}" (it has: ${names() || 'none'})`);
      chosen = hits[0];
    }
    const bytes = await this.fetchManifest(chosen!);
    return { descriptor: chosen!, bytes };
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    const rel = blobPath(desc.digest);
    if (!(await this.store.exists(rel))) {
      throw new PlinthError('MANIFEST_UNKNOWN', `${this.store.where} is missing ${desc.mediaType} ${desc.digest} (${rel})`);
    }
    if (desc.size > DOC_LIMIT) throw new PlinthError('MANIFEST_TOO_LARGE', `manifest ${desc.digest} is ${desc.size} bytes, more than the 4 MiB limit`);
    const bytes = await this.store.read(rel, DOC_LIMIT);
    if (bytes.length !== desc.size) {
      throw new PlinthError('SIZE_MISMATCH', `${this.store.where}: ${desc.digest} is ${bytes.length} bytes, its descriptor says ${desc.size}`);
    }
    verifyBytes(bytes, desc.digest, `${this.store.where} ${rel}`);
    return bytes;
  }

  async openBlob(desc: Descriptor): Promise<Readable> {
    const rel = blobPath(desc.digest);
    const size = await this.store.size(rel);
    if (size === undefined) throw new PlinthError('BLOB_UNKNOWN', `${this.store.where} is missing blob ${desc.digest} (${rel})`);
    if (size !== desc.size) {
      throw new PlinthError('SIZE_MISMATCH', `${this.store.where}: blob ${desc.digest} is ${size} bytes, its descriptor says ${desc.size}`);
    }
    const s = this.store.open(rel);
    const v = new VerifyingStream(desc.digest, desc.size, `${this.store.where} blob ${desc.digest}`);
    s.on('error', (e) => v.destroy(e));
    return s.pipe(v);
  }

  async readBlob(desc: Descriptor, limit = 64 * 1024 * 1024): Promise<Buffer> {
    if (desc.size > limit) throw new PlinthError('MANIFEST_TOO_LARGE', `blob ${desc.digest} is ${desc.size} bytes, more than the ${limit}-byte limit`);
    const rel = blobPath(desc.digest);
    if (!(await this.store.exists(rel))) throw new PlinthError('BLOB_UNKNOWN', `${this.store.where} is missing blob ${desc.digest} (${rel})`);
    const bytes = await this.store.read(rel, limit);
    if (bytes.length !== desc.size) throw new PlinthError('SIZE_MISMATCH', `${this.store.where}: blob ${desc.digest} is ${bytes.length} bytes, its descriptor says ${desc.size}`);
    verifyBytes(bytes, desc.digest, `${this.store.where} blob`);
    return bytes;
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
