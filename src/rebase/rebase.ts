import { Readable } from 'node:stream';
import { PlinthError } from '../util/errors.js';
import { digestOf } from '../oci/digest.js';
import { formatPlatform, type Descriptor, type ImageConfig, type Platform } from '../oci/types.js';
import { openSource, parseLocation, type OpenOptions } from '../source/open.js';
import { resolveRoot, selectImages, readConfig, type ImageNode, type Node } from '../source/image.js';
import type { ImageSource, RootDocument } from '../source/types.js';
import { newestApproved, type Catalog } from '../provenance/catalog.js';

/**
 * Rebase, as `crane rebase` and `pack rebase` do it: the layers above the old base are put on the
 * new base, and nothing heavy moves — the result is a new config and manifest (per platform, and
 * an index when the image is one) whose layers already exist in the registry. The config is the
 * image's own (env, entrypoint, cmd, user, labels, created…, unknown fields kept), with the new
 * base's os/architecture/os.version, `rootfs.diff_ids` and `history` spliced the way
 * go-containerregistry's mutate.Rebase does (the base's history replaced, the image's own entries
 * kept, empty layers accounted for), `org.opencontainers.image.base.name`/`.digest` updated, and a
 * Buildpacks image's `io.buildpacks.lifecycle.metadata` runImage updated as `pack rebase` does.
 */

const ANN_BASE_NAME = 'org.opencontainers.image.base.name';
const ANN_BASE_DIGEST = 'org.opencontainers.image.base.digest';
const BUILDPACKS_LABEL = 'io.buildpacks.lifecycle.metadata';

export interface OpenedImage {
  ref: string;
  source: ImageSource;
  root: Node;
  images: ImageNode[];
}

async function openImage(ref: string, registry: OpenOptions): Promise<OpenedImage> {
  const source = await openSource(ref, registry);
  try {
    const root = await resolveRoot(source);
    const images = await selectImages(source, root, 'all');
    return { ref, source, root, images };
  } catch (e) {
    await source.close();
    throw e;
  }
}

function platformOf(img: ImageNode, cfg: ImageConfig): Platform {
  return img.platform ?? { os: cfg.os ?? 'linux', architecture: cfg.architecture ?? 'amd64', ...(cfg.variant ? { variant: cfg.variant } : {}) };
}

function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

const configsOf = new WeakMap<OpenedImage, Promise<Array<{ img: ImageNode; config: ImageConfig; bytes: Buffer }>>>();

/** Each base's platform configs, read once (from when the base is open) however many platforms ask. */
function configsFor(base: OpenedImage): Promise<Array<{ img: ImageNode; config: ImageConfig; bytes: Buffer }>> {
  let read = configsOf.get(base);
  if (!read) configsOf.set(base, (read = Promise.all(base.images.map(async (img) => ({ img, ...(await readConfig(base.source, img)) })))));
  return read;
}

/** The image of `base` for a platform: the only one, or the index entry that matches. */
async function basePlatform(base: OpenedImage, p: Platform): Promise<{ img: ImageNode; cfg: ImageConfig; bytes: Buffer }> {
  const withCfg = await configsFor(base);
  // Even a single-platform base must be of the image's platform: amd64 layers under an arm64 entry would be a broken image.
  const hit = withCfg.find((x) => samePlatform(platformOf(x.img, x.config), p));
  if (!hit) throw new PlinthError('PLATFORM_NOT_FOUND', `${base.ref} has no ${formatPlatform(p)} image (it has ${withCfg.map((x) => formatPlatform(platformOf(x.img, x.config))).join(', ') || 'none'})`);
  return { img: hit.img, cfg: hit.config, bytes: hit.bytes };
}

interface History {
  created?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
  [k: string]: unknown;
}

/**
 * go-containerregistry's createAddendums: walk history and layers together (empty-layer history
 * entries have no layer) and keep what lies from `startHistory` or from layer `startLayer` on.
 */
function addendums(startHistory: number, startLayer: number, history: History[], layers: number): Array<{ history: History | null; layer: number | null }> {
  const out: Array<{ history: History | null; layer: number | null }> = [];
  let layerIndex = 0;
  for (let h = 0; h < history.length; h++) {
    let layer: number | null = null;
    if (!history[h]!.empty_layer) {
      if (layerIndex >= layers) throw new PlinthError('MANIFEST_INVALID', `malformed image: config history references at least ${layerIndex + 1} non-empty layer(s), but only ${layers} layer(s) are present`);
      layer = layerIndex++;
    }
    if (h >= startHistory || layerIndex >= startLayer) out.push({ history: history[h]!, layer });
  }
  for (let i = layerIndex; i < layers; i++) if (i >= startLayer) out.push({ history: null, layer: i });
  return out;
}

export interface OsRelease {
  id: string;
  version: string;
}

/** The release a rebase must not leave: debian 11 → 12, ubuntu 22.04 → 24.04, alpine 3.19 → 3.20, or another distribution. */
export function releaseKey(os: OsRelease): string {
  const v = os.version;
  if (os.id === 'ubuntu') return `ubuntu ${v}`;
  if (os.id === 'alpine') return `alpine ${v.split('.').slice(0, 2).join('.')}`;
  return `${os.id} ${v.split('.')[0]}`;
}

export interface PlatformPlan {
  platform: string;
  original: { digest: string; layers: number };
  oldBase: { digest: string; layers: number; os: OsRelease | null };
  newBase: { digest: string; layers: number; os: OsRelease | null };
  keptLayers: Array<{ digest: string; size: number }>;
  result: { digest: string; config: string; layers: number };
}

export interface RebasePlan {
  image: string;
  original: string;
  oldBase: string;
  newBase: string;
  newBaseDigest: string;
  result: string;
  mediaType: string;
  platforms: PlatformPlan[];
  noop: boolean;
}

/** Blobs from the registries they live in; manifests and configs from memory. Mount-friendly. */
export class ComposedSource implements ImageSource {
  readonly transport = 'registry' as const;
  private readonly docs = new Map<string, Buffer>();
  private readonly origins = new Map<string, ImageSource>();
  constructor(public root: RootDocument, readonly description: string) {}
  putDocument(bytes: Buffer): string {
    const d = digestOf(bytes);
    this.docs.set(d, bytes);
    return d;
  }
  putOrigin(digest: string, from: ImageSource): void {
    if (!this.origins.has(digest)) this.origins.set(digest, from);
  }
  /** Where a blob lives (the registry destination mounts it from there). */
  originOf(desc: Descriptor): ImageSource | undefined {
    return this.origins.get(desc.digest);
  }
  async resolve(): Promise<RootDocument> {
    return this.root;
  }
  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    const b = this.docs.get(desc.digest);
    if (b) return b;
    const o = this.origins.get(desc.digest);
    if (o) return o.fetchManifest(desc);
    throw new PlinthError('MANIFEST_UNKNOWN', `no manifest ${desc.digest} in the rebased image`);
  }
  async openBlob(desc: Descriptor): Promise<Readable> {
    const b = this.docs.get(desc.digest);
    if (b) return Readable.from([b]);
    const o = this.origins.get(desc.digest);
    if (!o) throw new PlinthError('BLOB_UNKNOWN', `no blob ${desc.digest} in the rebased image`);
    return o.openBlob(desc);
  }
  async readBlob(desc: Descriptor, limit?: number): Promise<Buffer> {
    const b = this.docs.get(desc.digest);
    if (b) return b;
    const o = this.origins.get(desc.digest);
    if (!o) throw new PlinthError('BLOB_UNKNOWN', `no blob ${desc.digest} in the rebased image`);
    return o.readBlob(desc, limit);
  }
  async close(): Promise<void> {}
}

export interface RebaseOptions {
  oldBase?: string;
  newBase?: string;
  catalog: Catalog;
  registry: OpenOptions;
  allowOsChange?: boolean;
  /** The release of a base image (from its labels or its layers); null when unknown. */
  osOf?: (source: ImageSource, img: ImageNode, cfg: ImageConfig) => Promise<OsRelease | null>;
}

export interface Rebased {
  plan: RebasePlan;
  source: ComposedSource;
  close(): Promise<void>;
}

/** Compute the rebased image (nothing is written). */
export async function rebase(image: string, o: RebaseOptions): Promise<Rebased> {
  const loc = parseLocation(image);
  if (loc.transport !== 'registry') throw new PlinthError('USAGE', `${image}: rebase works on registry images (their layers stay where they are)`);
  const opened: OpenedImage[] = [];
  const open = async (ref: string) => {
    const x = await openImage(ref, o.registry);
    opened.push(x);
    return x;
  };
  let early: Promise<unknown> | undefined;
  const closeAll = async () => {
    for (const x of opened) await x.source.close().catch(() => {});
  };
  try {
    // Both bases named: open all three at once (a rebase is mostly round trips).
    const both = o.oldBase && o.newBase ? Promise.all([open(o.oldBase), open(o.newBase)]) : undefined;
    early = both;
    // Their configs too, as soon as they are open (basePlatform takes them from there; a failure
    // surfaces where it did, when basePlatform awaits it).
    both?.then((bases) => bases.forEach((b) => void configsFor(b).catch(() => {})), () => {});
    const orig = await open(image);
    const origConfigs = await Promise.all(orig.images.map(async (img) => ({ img, ...(await readConfig(orig.source, img)) })));
    // The old base: given, or found by provenance — and then it must be confirmed by its layers.
    let oldRef = o.oldBase;
    let line: string | null = null;
    if (!oldRef || !o.newBase) {
      const first = origConfigs[0]!;
      // Provenance (base detection, evidence) loads only when a base must be found.
      const { provenanceOf } = await import('../provenance/report.js');
      const prov = await provenanceOf(orig.source, first.img, orig.root.kind === 'index' ? orig.root : undefined, { catalog: o.catalog, verifyBase: true, registryOptions: o.registry });
      const b = prov.base;
      line = prov.upToDate.line;
      if (!oldRef) {
        if (!b || !b.name || !(b.catalog?.digest ?? b.digest)) throw new PlinthError('USAGE', `${image}: its base is unknown; name it with --old-base`);
        if (!b.verified) throw new PlinthError('USAGE', `${image}: its base ${b.name}${b.digest ? `@${b.digest}` : ''} is only declared, not confirmed by its layers; name the old base with --old-base if you are sure`);
        const e = b.catalog ? o.catalog.bases.find((x) => x.digest === b.catalog!.digest) : undefined;
        oldRef = `${b.name}@${e?.index ?? b.catalog?.digest ?? b.digest}`;
      }
    }
    let newRef = o.newBase;
    if (!newRef) {
      const n = line ? newestApproved(o.catalog, line) : undefined;
      if (!n) throw new PlinthError('USAGE', `${image}: no newer approved base in the catalog line ${line ?? '(unknown)'}; name one with --new-base`);
      newRef = `${n.name}${n.tag ? `:${n.tag}` : ''}@${n.index ?? n.digest}`;
    }
    const [oldBase, newBase] = both ? await both : [await open(oldRef), await open(newRef!)];
    const newBaseDigest = newBase.root.descriptor.digest;
    const newLoc = parseLocation(newRef!);
    const newName = newLoc.transport === 'registry' ? newLoc.ref.name : newRef!;
    const src = new ComposedSource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) }, `rebased ${image}`);
    const platforms: PlatformPlan[] = [];
    const newManifests = new Map<string, Descriptor>();
    for (const { img, config, bytes: cfgBytes } of origConfigs) {
      const p = platformOf(img, config);
      const old = await basePlatform(oldBase, p);
      const nb = await basePlatform(newBase, p);
      const origDiff = config.rootfs?.diff_ids ?? [];
      const oldDiff = old.cfg.rootfs?.diff_ids ?? [];
      const newDiff = nb.cfg.rootfs?.diff_ids ?? [];
      if (oldDiff.length > origDiff.length) throw new PlinthError('USAGE', `${image} (${formatPlatform(p)}) is not based on ${oldRef}: it has ${origDiff.length} layer(s), the base ${oldDiff.length}`);
      const mismatch = oldDiff.findIndex((d, i) => origDiff[i] !== d);
      if (mismatch >= 0) throw new PlinthError('USAGE', `${image} (${formatPlatform(p)}) is not based on ${oldRef}: layer ${mismatch} is ${origDiff[mismatch]} in the image and ${oldDiff[mismatch]} in the base`);
      if ((img.manifest.layers ?? []).length !== origDiff.length) throw new PlinthError('MANIFEST_INVALID', `${image} (${formatPlatform(p)}): ${(img.manifest.layers ?? []).length} layers in the manifest, ${origDiff.length} diff_ids in the config`);
      const [oldOs, newOs] = o.osOf && !o.allowOsChange ? await Promise.all([o.osOf(oldBase.source, old.img, old.cfg), o.osOf(newBase.source, nb.img, nb.cfg)]) : [null, null];
      if (!o.allowOsChange && o.osOf) {
        if (!oldOs || !newOs) throw new PlinthError('USAGE', `cannot tell the OS release of the ${!oldOs ? `old base ${oldRef}` : `new base ${newRef}`}; check it yourself and pass --allow-os-change`);
        if (releaseKey(oldOs) !== releaseKey(newOs)) throw new PlinthError('USAGE', `the new base changes the OS from ${oldOs.id} ${oldOs.version} to ${newOs.id} ${newOs.version}: packages the image added may not work on it; rebuild, or pass --allow-os-change`);
      }
      // The config: the image's own, every field kept, with the new base's os/arch and the spliced layers and history.
      const cfg = JSON.parse(cfgBytes.toString('utf8')) as Record<string, unknown> & { config?: Record<string, unknown>; history?: History[]; rootfs?: { type: string; diff_ids: string[] } };
      for (const k of ['architecture', 'os', 'os.version'] as const) {
        const v = (nb.cfg as unknown as Record<string, unknown>)[k];
        if (v !== undefined) cfg[k] = v;
        else delete cfg[k];
      }
      const layers = img.manifest.layers ?? [];
      const origHistory = (cfg.history ?? []) as History[];
      const oldHistory = ((old.cfg.history ?? []) as History[]);
      const newHistory = ((nb.cfg.history ?? []) as History[]);
      const newAdds = addendums(0, 0, newHistory, newDiff.length);
      const origAdds = addendums(oldHistory.length, oldDiff.length + 1, origHistory, layers.length);
      const history: History[] = [];
      for (const a of [...newAdds, ...origAdds]) if (a.history) history.push(a.history);
      if (origHistory.length || newHistory.length) cfg.history = history;
      cfg.rootfs = { type: 'layers', diff_ids: [...newDiff, ...origDiff.slice(oldDiff.length)] };
      // pack rebase: the run image's top layer and reference.
      const labels = (cfg.config?.Labels ?? null) as Record<string, string> | null;
      if (labels?.[BUILDPACKS_LABEL]) {
        try {
          const md = JSON.parse(labels[BUILDPACKS_LABEL]!) as Record<string, unknown> & { runImage?: Record<string, unknown> };
          md.runImage = { ...(md.runImage ?? {}), topLayer: newDiff[newDiff.length - 1], reference: `${newName}@${nb.img.descriptor.digest}` };
          labels[BUILDPACKS_LABEL] = JSON.stringify(md);
        } catch {
          throw new PlinthError('MANIFEST_INVALID', `${image}: its ${BUILDPACKS_LABEL} label is not JSON`);
        }
      }
      const newCfgBytes = Buffer.from(JSON.stringify(cfg));
      const cfgDigest = src.putDocument(newCfgBytes);
      const kept = layers.slice(oldDiff.length);
      const nbLayers = nb.img.manifest.layers ?? [];
      for (const l of nbLayers) src.putOrigin(l.digest, newBase.source);
      for (const l of kept) src.putOrigin(l.digest, orig.source);
      const manifest = JSON.parse(img.bytes.toString('utf8')) as Record<string, unknown> & { config: Descriptor; layers: Descriptor[]; annotations?: Record<string, string> };
      manifest.config = { ...manifest.config, digest: cfgDigest, size: newCfgBytes.length };
      manifest.layers = [...nbLayers, ...kept];
      manifest.annotations = { ...(manifest.annotations ?? {}), [ANN_BASE_NAME]: newRef, [ANN_BASE_DIGEST]: newBaseDigest };
      const mBytes = Buffer.from(JSON.stringify(manifest));
      const mDigest = src.putDocument(mBytes);
      const mDesc: Descriptor = { mediaType: img.descriptor.mediaType, digest: mDigest, size: mBytes.length };
      newManifests.set(img.descriptor.digest, mDesc);
      platforms.push({
        platform: formatPlatform(p),
        original: { digest: img.descriptor.digest, layers: layers.length },
        oldBase: { digest: old.img.descriptor.digest, layers: oldDiff.length, os: oldOs },
        newBase: { digest: nb.img.descriptor.digest, layers: newDiff.length, os: newOs },
        keptLayers: kept.map((l) => ({ digest: l.digest, size: l.size })),
        result: { digest: mDigest, config: cfgDigest, layers: nbLayers.length + kept.length },
      });
      if (orig.root.kind === 'image') src.root = { descriptor: mDesc, bytes: mBytes };
    }
    if (orig.root.kind === 'index') {
      // Platform by platform: every entry the image had is replaced by its rebased manifest.
      const index = JSON.parse(orig.root.bytes.toString('utf8')) as Record<string, unknown> & { manifests: Descriptor[] };
      index.manifests = index.manifests.map((d) => {
        const n = newManifests.get(d.digest);
        return n ? { ...d, digest: n.digest, size: n.size } : d;
      });
      for (const d of index.manifests) if (!newManifests.has(d.digest) && ![...newManifests.values()].some((n) => n.digest === d.digest)) src.putOrigin(d.digest, orig.source);
      const iBytes = Buffer.from(JSON.stringify(index));
      src.root = { descriptor: { mediaType: orig.root.descriptor.mediaType, digest: src.putDocument(iBytes), size: iBytes.length }, bytes: iBytes };
    }
    const plan: RebasePlan = {
      image,
      original: orig.root.descriptor.digest,
      oldBase: oldRef,
      newBase: newRef,
      newBaseDigest,
      result: src.root.descriptor.digest,
      mediaType: src.root.descriptor.mediaType,
      platforms,
      noop: src.root.descriptor.digest === orig.root.descriptor.digest,
    };
    return { plan, source: src, close: closeAll };
  } catch (e) {
    // Bases opened concurrently may still be arriving: wait for them, then close everything.
    await early?.catch(() => {});
    await closeAll();
    throw e;
  }
}
