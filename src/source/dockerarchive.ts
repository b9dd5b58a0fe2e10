import type { Readable } from 'node:stream';
import { PlinthError } from '../util/errors.js';
import { digestOf, hasher, parseDigest, verifyBytes, VerifyingStream } from '../oci/digest.js';
import type { Descriptor } from '../oci/types.js';
import { normaliseMemberName, openTar, type TarFile } from '../util/tarindex.js';
import { LayoutSource, blobPath } from './layout.js';
import { TarStore } from './store.js';
import type { ImageSource, RootDocument } from './types.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';

interface ArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/**
 * A `docker save` archive (plain or gzip-compressed) as an image source. The archive has no
 * registry manifest, so one is made as skopeo does: a Docker schema2 manifest over the config
 * file and the layer files (uncompressed layers keep their digest = diff_id). Archives written by
 * Docker 25+ also carry an OCI layout; then the real manifest inside it is used and digests are
 * exactly those of the original image.
 */
export class DockerArchiveSource implements ImageSource {
  readonly transport = 'docker-archive' as const;
  private blobs = new Map<string, { member: string; size: number }>();
  private constructor(
    private readonly tar: TarFile,
    private readonly ref: string | undefined,
    readonly description: string,
  ) {}

  static async open(file: string, ref: string | undefined): Promise<DockerArchiveSource> {
    const tar = await openTar(file, 'docker-archive');
    return new DockerArchiveSource(tar, ref, `docker-archive:${file}${ref ? `:${ref}` : ''}`);
  }

  private async entries(): Promise<ArchiveEntry[]> {
    if (!this.tar.has('manifest.json')) {
      throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path} is not a docker save archive (no manifest.json)${this.tar.has('index.json') ? '; it looks like an OCI archive: use oci-archive:' : ''}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse((await this.tar.read('manifest.json', 16 * 1024 * 1024)).toString('utf8'));
    } catch (e) {
      throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path}: manifest.json is not valid JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(doc) || doc.length === 0) throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path}: manifest.json lists no images`);
    for (const [i, e] of (doc as unknown[]).entries()) {
      const en = e as Partial<ArchiveEntry> | null;
      if (!en || typeof en.Config !== 'string' || !Array.isArray(en.Layers) || !en.Layers.every((l) => typeof l === 'string')) {
        throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path}: manifest.json entry ${i} needs a Config path and a Layers list`);
      }
      if (en.RepoTags != null && (!Array.isArray(en.RepoTags) || !en.RepoTags.every((t) => typeof t === 'string'))) {
        throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path}: manifest.json entry ${i} has invalid RepoTags`);
      }
    }
    return doc as ArchiveEntry[];
  }

  private async choose(): Promise<ArchiveEntry> {
    const entries = await this.entries();
    const all = () => entries.map((e, i) => (e.RepoTags?.length ? e.RepoTags.join(', ') : `@${i}`)).join('; ');
    if (!this.ref) {
      if (entries.length > 1) throw new PlinthError('USAGE', `${this.tar.path} holds ${entries.length} images; name one (docker-archive:FILE:NAME:TAG or :@N) — it has: ${all()}`);
      return entries[0]!;
    }
    if (/^@\d+$/.test(this.ref)) {
      const e = entries[Number(this.ref.slice(1))];
      if (!e) throw new PlinthError('MANIFEST_UNKNOWN', `${this.tar.path} has no image ${this.ref} (it has ${entries.length})`);
      return e;
    }
    const want = this.ref;
    const norm = (t: string) => t.replace(/^docker\.io\/(library\/)?/, '');
    const e = entries.find((x) => x.RepoTags?.some((t) => t === want || norm(t) === norm(want) || norm(t) === `${norm(want)}:latest`));
    if (!e) throw new PlinthError('MANIFEST_UNKNOWN', `${this.tar.path} has no image tagged "${want}" (it has: ${all()})`);
    return e;
  }

  private member(p: string): string {
    const n = normaliseMemberName(p);
    if (n.split('/').includes('..')) throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path}: refusing path outside the archive: ${p}`);
    if (!this.tar.has(n)) throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path} is incomplete: manifest.json names "${p}" but the archive has no such file`);
    return n;
  }

  /** Digest and media type of a layer file: from its blobs/ name when it has one, else by reading it. */
  private async describeLayer(member: string): Promise<Descriptor> {
    const size = this.tar.members.get(member)!.size;
    const head = await this.peek(member, 4);
    let mediaType = DOCKER_LAYER;
    if (head[0] === 0x1f && head[1] === 0x8b) mediaType = DOCKER_LAYER_GZIP;
    else if (head.readUInt32LE(0) === 0xfd2fb528) mediaType = OCI_LAYER_ZSTD;
    const m = /^blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(member);
    let digest: string;
    if (m) {
      digest = `${m[1]}:${m[2]}`;
      parseDigest(digest); // verified when streamed
    } else {
      const h = hasher('sha256');
      for await (const c of this.tar.open(member) as AsyncIterable<Buffer>) h.update(c);
      digest = `sha256:${h.digest('hex')}`;
    }
    this.blobs.set(digest, { member, size });
    return { mediaType, digest, size };
  }

  private async peek(member: string, n: number): Promise<Buffer> {
    const m = this.tar.members.get(member)!;
    if (m.size < n) return Buffer.alloc(n);
    const s = this.tar.open(member);
    const chunks: Buffer[] = [];
    let got = 0;
    for await (const c of s as AsyncIterable<Buffer>) {
      chunks.push(c);
      got += c.length;
      if (got >= n) break;
    }
    s.destroy();
    return Buffer.concat(chunks).subarray(0, n);
  }

  async resolve(): Promise<RootDocument> {
    const entry = await this.choose();
    const configMember = this.member(entry.Config);
    const configBytes = await this.tar.read(configMember, 16 * 1024 * 1024);
    const configDigest = digestOf(configBytes);
    let config: { rootfs?: { diff_ids?: unknown } };
    try {
      config = JSON.parse(configBytes.toString('utf8')) as typeof config;
    } catch (e) {
      throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path}: image config ${entry.Config} is not valid JSON: ${(e as Error).message}`);
    }
    const diffIds = Array.isArray(config?.rootfs?.diff_ids) ? (config.rootfs!.diff_ids as unknown[]) : undefined;
    if (!diffIds || diffIds.length !== entry.Layers.length) {
      throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path}: the image config lists ${diffIds?.length ?? 0} layer diff_ids but manifest.json lists ${entry.Layers.length} layers`);
    }
    // Docker 25+: an OCI layout inside the archive holds the image's real manifest.
    const oci = await this.ociManifestFor(configDigest);
    if (oci) return oci;
    const layers: Descriptor[] = [];
    for (const [i, l] of entry.Layers.entries()) {
      const d = await this.describeLayer(this.member(l));
      if (d.mediaType === DOCKER_LAYER && d.digest !== diffIds[i]) {
        throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path}: layer ${i} (${l}) has digest ${d.digest} but the config's diff_id is ${String(diffIds[i])}`);
      }
      layers.push(d);
    }
    this.blobs.set(configDigest, { member: configMember, size: configBytes.length });
    const manifest = {
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: { mediaType: DOCKER_CONFIG, size: configBytes.length, digest: configDigest },
      layers,
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    return { descriptor: { mediaType: DOCKER_MANIFEST, digest: digestOf(bytes), size: bytes.length }, bytes };
  }

  private async ociManifestFor(configDigest: string): Promise<RootDocument | undefined> {
    if (!this.tar.has('index.json') || !this.tar.has(blobPath(configDigest))) return undefined;
    const layout = new LayoutSource('docker-archive', new TarStore(this.tar), undefined, this.description);
    let manifests: Descriptor[];
    try {
      manifests = (await layout.readIndex()).manifests;
    } catch {
      return undefined;
    }
    for (const d of manifests) {
      if (!/manifest/.test(d.mediaType) || /list|index/.test(d.mediaType)) continue;
      try {
        const bytes = await layout.fetchManifest(d);
        const doc = JSON.parse(bytes.toString('utf8')) as { config?: { digest?: string }; layers?: Descriptor[] };
        if (doc.config?.digest !== configDigest) continue;
        for (const b of [doc.config as Descriptor, ...(doc.layers ?? [])]) {
          this.blobs.set(b.digest, { member: blobPath(b.digest), size: b.size });
        }
        return { descriptor: d, bytes };
      } catch {
        continue;
      }
    }
    return undefined;
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    throw new PlinthError('MANIFEST_UNKNOWN', `${this.tar.path} has no manifest ${desc.digest} (docker archives hold single images)`);
  }

  async openBlob(desc: Descriptor): Promise<Readable> {
    const b = this.blobs.get(desc.digest);
    if (!b) throw new PlinthError('BLOB_UNKNOWN', `${this.tar.path} has no blob ${desc.digest}`);
    const s = this.tar.open(b.member);
    const v = new VerifyingStream(desc.digest, desc.size, `${this.tar.path} ${b.member}`);
    s.on('error', (e) => v.destroy(e));
    return s.pipe(v);
  }

  async readBlob(desc: Descriptor, limit = 64 * 1024 * 1024): Promise<Buffer> {
    const b = this.blobs.get(desc.digest);
    if (!b) throw new PlinthError('BLOB_UNKNOWN', `${this.tar.path} has no blob ${desc.digest}`);
    const bytes = await this.tar.read(b.member, limit);
    verifyBytes(bytes, desc.digest, `${this.tar.path} ${b.member}`);
    return bytes;
  }

  async close(): Promise<void> {
    await this.tar.close();
  }
}
