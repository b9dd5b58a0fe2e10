import { PlinthError } from '../util/errors.js';
import type { Descriptor } from '../oci/types.js';
import { child, resolveRoot, selectImages, type ImageNode, type Node, type PlatformChoice } from './image.js';
import type { ImageDestination, ImageSource } from './types.js';

/**
 * Copy an image or index between any two locations, written once against the source and
 * destination interfaces. Manifests are copied byte for byte, so digests stay identical; blobs the
 * destination already has are skipped, blobs in another repository of the same registry are
 * mounted, the rest are streamed (verified on the way).
 */
export type CopyEvent =
  | { type: 'blob-start'; digest: string; size: number }
  | { type: 'blob-progress'; digest: string; bytes: number }
  | { type: 'blob-done'; digest: string; size: number; how: 'copied' | 'skipped' | 'mounted' | 'foreign' }
  | { type: 'manifest'; digest: string; mediaType: string };

export interface CopyOptions {
  /** An index is copied whole ('all', the default for destinations that hold indexes) or one platform. */
  platform?: PlatformChoice;
  /** Blobs copied at once (default 4; archives are written one entry at a time anyway). */
  concurrency?: number;
  onEvent?: (e: CopyEvent) => void;
}

export interface CopyResult {
  digest: string;
  mediaType: string;
  size: number;
  manifests: number;
  blobs: { copied: number; skipped: number; mounted: number; foreign: number };
  bytesCopied: number;
}

const FOREIGN = /foreign|nondistributable/;

export async function copyImage(src: ImageSource, dst: ImageDestination, opts: CopyOptions = {}): Promise<CopyResult> {
  const emit = opts.onEvent ?? (() => {});
  const result: CopyResult = { digest: '', mediaType: '', size: 0, manifests: 0, blobs: { copied: 0, skipped: 0, mounted: 0, foreign: 0 }, bytesCopied: 0 };
  const concurrency = Math.max(1, opts.concurrency ?? 4);
  const done = new Map<string, Promise<void>>();

  const copyBlob = (d: Descriptor): Promise<void> => {
    const existing = done.get(d.digest);
    if (existing) return existing;
    const p = (async () => {
      if (FOREIGN.test(d.mediaType) && d.urls?.length) {
        result.blobs.foreign++;
        emit({ type: 'blob-done', digest: d.digest, size: d.size, how: 'foreign' });
        return;
      }
      emit({ type: 'blob-start', digest: d.digest, size: d.size });
      if (await dst.hasBlob(d)) {
        result.blobs.skipped++;
        emit({ type: 'blob-done', digest: d.digest, size: d.size, how: 'skipped' });
        return;
      }
      if (dst.mountBlob && (await dst.mountBlob(d, src))) {
        result.blobs.mounted++;
        emit({ type: 'blob-done', digest: d.digest, size: d.size, how: 'mounted' });
        return;
      }
      await dst.putBlob(d, () => src.openBlob(d), (n) => {
        result.bytesCopied += n;
        emit({ type: 'blob-progress', digest: d.digest, bytes: n });
      });
      result.blobs.copied++;
      emit({ type: 'blob-done', digest: d.digest, size: d.size, how: 'copied' });
    })();
    done.set(d.digest, p);
    return p;
  };

  const copyBlobs = async (blobs: Descriptor[]): Promise<void> => {
    const queue = [...blobs];
    let failed = false;
    const workers = Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      while (queue.length && !failed) {
        try {
          await copyBlob(queue.shift()!);
        } catch (e) {
          failed = true;
          throw e;
        }
      }
    });
    // Let every transfer in flight finish or clean up before reporting the first failure.
    const settled = await Promise.allSettled(workers);
    const bad = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (bad) throw bad.reason;
  };

  const copyImageNode = async (img: ImageNode): Promise<void> => {
    await copyBlobs([img.manifest.config, ...(img.manifest.layers ?? [])]);
  };

  const visited = new Set<string>();
  const copyTree = async (node: Node, depth = 0): Promise<void> => {
    if (node.kind === 'image') {
      await copyImageNode(node);
      return;
    }
    if (depth >= 3) throw new PlinthError('MANIFEST_INVALID', `${src.description}: indexes nested more than 3 deep`);
    for (const d of node.index.manifests) {
      if (visited.has(d.digest)) continue;
      visited.add(d.digest);
      if (visited.size > 1000) throw new PlinthError('MANIFEST_INVALID', `${src.description}: more than 1000 manifests under one index`);
      if (dst.hasManifest && (await dst.hasManifest(d))) {
        // Already there (e.g. a re-run): its blobs are there too, as registries only accept a manifest whose blobs exist.
        if (dst.transport === 'registry') continue;
      }
      const c = await child(src, d);
      await copyTree(c, depth + 1);
      await dst.putManifest(c.descriptor, c.bytes);
      result.manifests++;
      emit({ type: 'manifest', digest: c.descriptor.digest, mediaType: c.descriptor.mediaType });
    }
  };

  const root = await resolveRoot(src);
  let top: Node = root;
  let choice = opts.platform;
  if (choice === undefined) choice = dst.transport === 'docker-archive' ? undefined : 'all';
  if (root.kind === 'index' && choice !== 'all') {
    const [img] = await selectImages(src, root, choice);
    top = img!;
  } else if (root.kind === 'index' && dst.transport === 'docker-archive') {
    throw new PlinthError('USAGE', `${src.description} is a multi-platform index; a docker-archive holds one image: choose it with --platform`);
  }
  await copyTree(top);
  const rootDesc: Descriptor = { mediaType: top.descriptor.mediaType, digest: top.descriptor.digest, size: top.bytes.length };
  if (top.kind === 'image' && top.platform) rootDesc.platform = top.platform;
  await dst.commit(rootDesc, top.bytes);
  result.manifests++;
  emit({ type: 'manifest', digest: rootDesc.digest, mediaType: rootDesc.mediaType });
  result.digest = rootDesc.digest;
  result.mediaType = rootDesc.mediaType;
  result.size = rootDesc.size;
  return result;
}
