import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/types.js';

/**
 * Where images come from. Every source (registry, OCI layout, docker-archive, oci-archive)
 * implements this one read interface; images, indexes, copy, inspect and everything above are
 * written once against it (go-containerregistry's `partial` idea).
 */
export type Transport = 'registry' | 'oci' | 'docker-archive' | 'oci-archive';

export interface RootDocument {
  /** The descriptor of the document the reference names (digest, size, media type). */
  descriptor: Descriptor;
  /** Its exact bytes (already verified against descriptor.digest). */
  bytes: Buffer;
}

export interface ImageSource {
  readonly transport: Transport;
  /** What the user named, normalised (`docker://reg/repo:tag`, `oci:/dir:ref`…). */
  readonly description: string;
  /** The document the reference points at (a manifest or an index). */
  resolve(): Promise<RootDocument>;
  /** A manifest or index by descriptor, verified. */
  fetchManifest(desc: Descriptor): Promise<Buffer>;
  /** A blob as a stream that fails unless its bytes match desc.digest and desc.size. */
  openBlob(desc: Descriptor): Promise<Readable>;
  /** A small blob read whole (configs), verified. */
  readBlob(desc: Descriptor, limit?: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Where images go. */
export interface ImageDestination {
  readonly transport: Transport;
  readonly description: string;
  /** True when the destination already has this blob (it is skipped). */
  hasBlob(desc: Descriptor): Promise<boolean>;
  /** Try to get the blob without transferring it (cross-repository mount). */
  mountBlob?(desc: Descriptor, from: ImageSource): Promise<boolean>;
  putBlob(desc: Descriptor, open: () => Promise<Readable>, onProgress?: (bytes: number) => void): Promise<void>;
  hasManifest?(desc: Descriptor): Promise<boolean>;
  /** Store a manifest or index that is not the root (a child of an index). */
  putManifest(desc: Descriptor, bytes: Buffer): Promise<void>;
  /** Store the root document and name it (tag, ref.name, RepoTags…); finishes the write. */
  commit(root: Descriptor, bytes: Buffer): Promise<void>;
  close(): Promise<void>;
}
