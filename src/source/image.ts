import { PlinthError } from '../util/errors.js';
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../oci/types.js';
import { formatPlatform, hostPlatform, platformMatches } from '../oci/types.js';
import { parseDocument, validateConfig } from '../oci/validate.js';
import type { ImageSource, RootDocument } from './types.js';

/**
 * The one image model every command uses, whatever the source: an index (with children) or a
 * single image (manifest + config + layers). Platform selection happens here, once.
 */
export interface ImageNode {
  kind: 'image';
  descriptor: Descriptor;
  bytes: Buffer;
  manifest: Manifest;
  /** The platform from the parent index entry, when there is one. */
  platform?: Platform;
}

export interface IndexNode {
  kind: 'index';
  descriptor: Descriptor;
  bytes: Buffer;
  index: Index;
}

export type Node = ImageNode | IndexNode;

export type PlatformChoice = Platform | 'all' | undefined;

export function toNode(desc: Descriptor, bytes: Buffer): Node {
  const parsed = parseDocument(bytes, desc.mediaType, { allowEmptyLayers: true });
  const descriptor: Descriptor = { ...desc, mediaType: parsed.mediaType || desc.mediaType };
  if (parsed.kind === 'index') return { kind: 'index', descriptor, bytes, index: parsed.doc as Index };
  return { kind: 'image', descriptor, bytes, manifest: parsed.doc as Manifest, ...(desc.platform ? { platform: desc.platform } : {}) };
}

export async function resolveRoot(source: ImageSource): Promise<Node> {
  const root: RootDocument = await source.resolve();
  return toNode(root.descriptor, root.bytes);
}

/** Attestation manifests (BuildKit) and other non-runnable entries are not platforms. */
export function isPlatformEntry(d: Descriptor): boolean {
  if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return false;
  if (d.platform?.os === 'unknown' || d.platform?.architecture === 'unknown') return false;
  return true;
}

export async function child(source: ImageSource, desc: Descriptor): Promise<Node> {
  const bytes = await source.fetchManifest(desc);
  return toNode(desc, bytes);
}

/**
 * The images a command works on: for an index, the entry matching the platform (default: the
 * host's), or every platform with 'all'; a single image is returned as is.
 */
/** Bounds on nested indexes: a hostile index must not fan out into millions of fetches. */
export const MAX_INDEX_DEPTH = 3;
export const MAX_MANIFESTS = 1000;

export async function selectImages(source: ImageSource, root: Node, choice: PlatformChoice, depth = 0, seen: Set<string> = new Set()): Promise<ImageNode[]> {
  if (root.kind === 'image') return [root];
  if (depth >= MAX_INDEX_DEPTH) throw new PlinthError('MANIFEST_INVALID', `${source.description}: indexes nested more than ${MAX_INDEX_DEPTH} deep`);
  seen.add(root.descriptor.digest);
  const entries = root.index.manifests;
  if (entries.length > MAX_MANIFESTS) throw new PlinthError('MANIFEST_INVALID', `${source.description}: an index with ${entries.length} entries (more than ${MAX_MANIFESTS})`);
  if (choice === 'all') {
    const out: ImageNode[] = [];
    for (const d of entries) {
      if (!isPlatformEntry(d) || seen.has(d.digest)) continue;
      seen.add(d.digest);
      if (seen.size > MAX_MANIFESTS) throw new PlinthError('MANIFEST_INVALID', `${source.description}: more than ${MAX_MANIFESTS} manifests under one index`);
      const n = await child(source, d);
      if (n.kind === 'image') out.push(n);
      else out.push(...(await selectImages(source, n, 'all', depth + 1, seen)));
    }
    return out;
  }
  const want = choice ?? hostPlatform();
  const match = entries.find((d) => isPlatformEntry(d) && d.platform && platformMatches(want, d.platform));
  if (!match) {
    // A nested index without platforms (rare) is searched too.
    for (const d of entries) {
      if (/index|list/.test(d.mediaType) && !d.platform && !seen.has(d.digest)) {
        seen.add(d.digest);
        const n = await child(source, d);
        const found = await selectImages(source, n, want, depth + 1, seen).catch(() => []);
        if (found.length) return found;
      }
    }
    const have = entries.filter(isPlatformEntry).map((d) => (d.platform ? formatPlatform(d.platform) : d.digest)).join(', ');
    throw new PlinthError('PLATFORM_NOT_FOUND', `no image for platform ${formatPlatform(want)} in ${source.description} (it has: ${have || 'none'}); choose one with --platform`);
  }
  const n = await child(source, match);
  if (n.kind !== 'image') return selectImages(source, n, want, depth + 1, seen);
  return [n];
}

/** Configs already read, per source: provenance, inventory and scan of one image read it once. */
const configs = new WeakMap<ImageSource, Map<string, Promise<{ config: ImageConfig; bytes: Buffer }>>>();

export function readConfig(source: ImageSource, image: ImageNode): Promise<{ config: ImageConfig; bytes: Buffer }> {
  let bySource = configs.get(source);
  if (!bySource) configs.set(source, (bySource = new Map()));
  const key = image.manifest.config.digest;
  let p = bySource.get(key);
  if (!p) {
    p = fetchConfig(source, image);
    bySource.set(key, p);
    p.catch(() => bySource!.delete(key));
  }
  return p;
}

async function fetchConfig(source: ImageSource, image: ImageNode): Promise<{ config: ImageConfig; bytes: Buffer }> {
  const desc = image.manifest.config;
  const bytes = await source.readBlob(desc, 16 * 1024 * 1024);
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new PlinthError('MANIFEST_INVALID', `image config ${desc.digest} is not valid JSON: ${(e as Error).message}`);
  }
  const isImageConfig = /image\.config|container\.image/.test(desc.mediaType);
  if (isImageConfig) validateConfig(doc);
  return { config: doc as ImageConfig, bytes };
}
