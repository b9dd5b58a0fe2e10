import { formatPlatform } from '../oci/types.js';
import type { ImageConfig } from '../oci/types.js';
import { parseImageReference } from '../oci/reference.js';
import { readConfig, resolveRoot, selectImages, type ImageNode, type IndexNode, type PlatformChoice } from '../source/image.js';
import type { ImageSource } from '../source/types.js';
import { openSource, registryLocation, type OpenOptions } from '../source/open.js';
import { determineBase, type BaseReport } from './base.js';
import { lineOf, newestApproved, type Catalog } from './catalog.js';
import { collectEvidence, type Finding, type Materials } from './evidence.js';

/**
 * The five questions for one platform image. The JSON form is a stable contract: fields are only
 * added, never renamed. `base` is null when the base is unknown.
 */
export interface ProvenanceReport {
  image: { reference: string; digest: string; index: string | null; platform: string | null };
  base: BaseReport | null;
  /** When the base is unknown: images the build used, none confirmed as the base. */
  baseCandidates: BaseReport['candidates'];
  what: {
    title: string | null; description: string | null; version: string | null; vendor: string | null;
    licenses: string | null; authors: string | null; url: string | null; documentation: string | null;
    os: string | null; architecture: string | null; variant: string | null; size: number; layers: number; created: string | null;
    /** The OS release read from the image's files (null when not read, or none found). */
    distribution: { id: string; name: string; version: string; versionId: string; codename: string | null; prettyName: string | null } | null;
    /** Installed OS packages (null when the layers were not read). */
    packages: number | null;
  };
  /** Each layer, bottom first: its size, the history entry that created it, and whether the base brought it. */
  layers: ProvenanceLayer[];
  where: { source: string | null; revision: string | null; created: string | null; builder: 'ko' | 'buildkit' | 'buildpacks' | 'unknown'; builderEvidence: string[]; base: string | null };
  rebuild: {
    source: string | null; revision: string | null; baseDigest: string | null;
    materials: Materials[];
    reproducible: boolean;
    /** What is missing for a reproducible rebuild. */
    missing: string[];
  };
  upToDate: {
    baseStatus: 'approved' | 'superseded' | 'deprecated' | 'unknown' | 'not-in-catalog' | null;
    line: string | null;
    newestApproved: { name: string; tag: string | null; digest: string; created: string | null } | null;
    isNewestApproved: boolean | null;
    baseTagMoved: { tag: string; now: string; was: string; moved: boolean } | null;
    imageAgeDays: number | null;
    baseAgeDays: number | null;
  };
  /** Filled by a scan (plinth provenance --db, or plinth scan): counts split by origin. */
  vulnerabilities:
    | { status: 'not-scanned'; base: null; image: null }
    | { status: 'scanned'; total: number; base: number; image: number; unknownOrigin: number; fixable: number; bySeverity: Record<string, number>; db: string };
  findings: Finding[];
}

const ANN = 'org.opencontainers.image.';

export interface ProvenanceLayer {
  index: number;
  digest: string;
  diffId: string | null;
  mediaType: string;
  size: number;
  /** The history entry's created_by (the Dockerfile instruction), when the history lines up with the layers. */
  createdBy: string | null;
  created: string | null;
  /** base: the base image brought it; image: the image added it; null: the base is unknown. */
  origin: 'base' | 'image' | null;
  /** Packages this layer installed (their version), once the layers were read. */
  packages: number | null;
}

/** The manifest's layers with their history entries (the non-empty ones, in order) and origin. */
export function layersOf(manifest: { layers?: Array<{ digest: string; mediaType: string; size: number }> }, config: ImageConfig, baseLayers: number | null): ProvenanceLayer[] {
  const layers = manifest.layers ?? [];
  const diffIds = Array.isArray(config.rootfs?.diff_ids) ? config.rootfs!.diff_ids : [];
  const history = (Array.isArray(config.history) ? config.history : []).filter((h) => h && typeof h === 'object' && !h.empty_layer);
  // A history that does not line up with the layers (squashed, hand-made) is not attributed.
  const aligned = history.length === layers.length;
  const text = (v: unknown, max: number) => (typeof v === 'string' ? v.replace(/\s+/g, ' ').trim().slice(0, max) || null : null);
  return layers.map((l, i) => ({
    index: i,
    digest: l.digest,
    diffId: typeof diffIds[i] === 'string' ? diffIds[i]! : null,
    mediaType: l.mediaType,
    size: l.size,
    createdBy: aligned ? text(history[i]!.created_by, 2000) : null,
    created: aligned ? text(history[i]!.created, 64) : null,
    origin: baseLayers === null ? null : i < baseLayers ? 'base' : 'image',
    packages: null,
  }));
}

/**
 * Add what reading the layers found (OS release, package count, packages per layer) to a
 * report: `plinth provenance` (unless --metadata-only) and `plinth scan` answer "what is it?" the same.
 */
export function addContents(r: ProvenanceReport, inv: { os: { id: string; name: string; version: string; versionId: string; codename?: string; prettyName?: string } | null; packages: Array<{ layerIndex?: number }> }): ProvenanceReport {
  r.what.distribution = inv.os ? { id: inv.os.id, name: inv.os.name, version: inv.os.version, versionId: inv.os.versionId, codename: inv.os.codename ?? null, prettyName: inv.os.prettyName ?? null } : null;
  r.what.packages = inv.packages.length;
  const per = new Map<number, number>();
  for (const p of inv.packages) if (p.layerIndex !== undefined) per.set(p.layerIndex, (per.get(p.layerIndex) ?? 0) + 1);
  for (const l of r.layers) l.packages = per.get(l.index) ?? 0;
  return r;
}

/** "Debian GNU/Linux 12 (bookworm), 88 packages" — the one-line answer. */
export function describeContents(w: ProvenanceReport['what']): string | null {
  const d = w.distribution;
  const os = d ? d.prettyName ?? `${d.name} ${d.versionId || d.version}`.trim() : null;
  if (os === null && w.packages === null) return null;
  const pk = w.packages === null ? null : `${w.packages} package${w.packages === 1 ? '' : 's'}`;
  return [os ?? 'no OS release file', pk].filter(Boolean).join(', ');
}

function days(iso: string | null | undefined, now: number): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  if (Number.isNaN(t) || t <= 0) return null;
  return Math.floor((now - t) / 86_400_000);
}

export interface ProvenanceOptions {
  catalog: Catalog;
  checkRegistry?: boolean;
  /** Fetch a declared base that is not in the catalog from its registry, to check its layers (checkRegistry implies it). */
  verifyBase?: boolean;
  registryOptions?: OpenOptions;
  /** Which base names may be looked up in their registries (default: any). The webhook passes its registry allowlist. */
  baseLookupAllowed?: (name: string) => boolean;
  now?: number;
}

export async function provenanceOf(source: ImageSource, image: ImageNode, index: IndexNode | undefined, o: ProvenanceOptions): Promise<ProvenanceReport> {
  const now = o.now ?? Date.now();
  const { config } = await readConfig(source, image);
  const ev = await collectEvidence(source, image, config, index);
  const findings = ev.findings;
  const { base, candidates } = await determineBase(ev, config, image.descriptor.digest, {
    catalog: o.catalog,
    findings,
    ...(o.checkRegistry || o.verifyBase ? { checkRegistry: true } : {}),
    ...(o.registryOptions ? { registryOptions: o.registryOptions } : {}),
    ...(o.baseLookupAllowed ? { lookupAllowed: o.baseLookupAllowed } : {}),
  });
  const c: ImageConfig = config;
  const labels = (c.config?.Labels ?? {}) as Record<string, string>;
  const ann = { ...(index?.index.annotations ?? {}), ...(image.descriptor.annotations ?? {}), ...(image.manifest.annotations ?? {}) } as Record<string, string>;
  const meta = (k: string): string | null => {
    const v = ann[ANN + k] ?? labels[ANN + k];
    return typeof v === 'string' && v.length <= 4096 ? v : null;
  };
  const platform = c.os && c.architecture ? formatPlatform({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }) : null;
  const size = image.bytes.length + image.manifest.config.size + (image.manifest.layers ?? []).reduce((a, l) => a + l.size, 0);
  const builders = [...new Set(ev.builderHints.map((h) => h.builder))];
  const builder = builders.includes('buildpacks') ? 'buildpacks' : builders.includes('ko') ? 'ko' : builders.includes('buildkit') ? 'buildkit' : 'unknown';

  const source_ = meta('source');
  const revision = meta('revision');
  const missing: string[] = [];
  if (!source_) missing.push(`no source repository (${ANN}source)`);
  if (!revision) missing.push(`no source revision (${ANN}revision)`);
  if (!base) missing.push('the base image is unknown');
  else if (!base.digest) missing.push(`the base ${base.name}${base.tag ? `:${base.tag}` : ''} is not pinned to a digest`);
  const created = c.created ?? null;
  const fixedTime = created === null || Date.parse(created) === 0;
  const historyTimes = new Set((c.history ?? []).map((h) => h.created).filter(Boolean));
  if (!fixedTime) missing.push(`timestamps are not normalised (created ${created}; builds with SOURCE_DATE_EPOCH or a fixed time are reproducible)`);
  else if (historyTimes.size > 1) missing.push('history timestamps differ between layers');
  if (ev.materials.some((m) => m.reproducible === false)) missing.push('the builder reported the build as not reproducible');

  let baseStatus: ProvenanceReport['upToDate']['baseStatus'] = null;
  let line: string | null = null;
  let newest: ProvenanceReport['upToDate']['newestApproved'] = null;
  let isNewest: boolean | null = null;
  if (base) {
    baseStatus = base.catalog?.status ?? 'not-in-catalog';
    line = base.catalog?.line ?? base.name;
    if (line) {
      const n = newestApproved(o.catalog, line, platform ?? undefined);
      if (n) {
        newest = { name: n.name, tag: n.tag ?? null, digest: n.digest, created: n.created ?? null };
        isNewest = base.catalog ? n.digest === base.catalog.digest : base.digest === n.digest || base.digest === n.index;
      }
    }
  }
  let baseTagMoved: ProvenanceReport['upToDate']['baseTagMoved'] = null;
  if (o.checkRegistry && base?.name && base.tag && base.digest && (o.baseLookupAllowed?.(base.name) ?? true)) {
    try {
      const src = await openSource(registryLocation(`${base.name}:${base.tag}`), o.registryOptions ?? {});
      try {
        const now = (await src.resolve()).descriptor.digest;
        // The tag may point at an index whose entry is the base manifest: both count as "not moved".
        let moved = now !== base.digest;
        if (moved) {
          const root = await resolveRoot(src);
          if (root.kind === 'index') moved = !root.index.manifests.some((d) => d.digest === base.digest);
        }
        baseTagMoved = { tag: `${base.name}:${base.tag}`, now, was: base.digest, moved };
      } finally {
        await src.close();
      }
    } catch (e) {
      findings.push({ severity: 'warning', source: 'registry check', message: `could not check tag ${base.name}:${base.tag}: ${(e as Error).message}` });
    }
  }
  const baseCreated = base?.catalog?.created ?? null;
  return {
    image: { reference: source.description, digest: image.descriptor.digest, index: index?.descriptor.digest ?? null, platform },
    base,
    baseCandidates: base ? [] : candidates,
    what: {
      title: meta('title'), description: meta('description'), version: meta('version'), vendor: meta('vendor'),
      licenses: meta('licenses'), authors: meta('authors') ?? (typeof c.author === 'string' ? c.author : null), url: meta('url'), documentation: meta('documentation'),
      os: c.os ?? null, architecture: c.architecture ?? null, variant: c.variant ?? null, size, layers: (image.manifest.layers ?? []).length, created,
      distribution: null, packages: null,
    },
    layers: layersOf(image.manifest, c, base?.layers.base ?? null),
    where: {
      source: source_, revision, created: meta('created') ?? created, builder, builderEvidence: ev.builderHints.map((h) => `${h.builder}: ${h.source}`),
      base: base ? `${base.name ?? '?'}${base.tag ? `:${base.tag}` : ''}${base.digest ? `@${base.digest}` : ''}` : null,
    },
    rebuild: { source: source_, revision, baseDigest: base?.digest ?? null, materials: ev.materials, reproducible: missing.length === 0, missing },
    upToDate: { baseStatus, line, newestApproved: newest, isNewestApproved: isNewest, baseTagMoved, imageAgeDays: days(created, now), baseAgeDays: days(baseCreated, now) },
    vulnerabilities: { status: 'not-scanned', base: null, image: null },
    findings,
  };
}

/** Provenance for every selected platform image of a source. */
export async function provenance(source: ImageSource, platform: PlatformChoice, o: ProvenanceOptions): Promise<ProvenanceReport[]> {
  const root = await resolveRoot(source);
  const images = await selectImages(source, root, platform);
  const index = root.kind === 'index' ? root : undefined;
  const out: ProvenanceReport[] = [];
  for (const img of images) out.push(await provenanceOf(source, img, index, o));
  return out;
}

/** Catalog entries for every platform image of a source (for `plinth catalog add`). */
export async function describeForCatalog(source: ImageSource, ref: string | undefined): Promise<Array<{ name: string; tag?: string; digest: string; index?: string; platform?: string; diffIds: string[]; created?: string }>> {
  const root = await resolveRoot(source);
  const images = await selectImages(source, root, 'all');
  let name = source.description;
  let tag: string | undefined;
  if (ref) {
    try {
      const r = parseImageReference(ref);
      name = r.name;
      if (!r.tagDefaulted && r.tag) tag = r.tag;
    } catch {
      /* local sources keep their description */
    }
  }
  const out = [];
  for (const img of images) {
    const { config } = await readConfig(source, img);
    const diffIds = Array.isArray(config.rootfs?.diff_ids) ? config.rootfs!.diff_ids : [];
    out.push({
      name,
      ...(tag ? { tag } : {}),
      digest: img.descriptor.digest,
      ...(root.kind === 'index' ? { index: root.descriptor.digest } : {}),
      ...(config.os && config.architecture ? { platform: formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }) } : {}),
      diffIds,
      ...(config.created ? { created: config.created } : {}),
    });
  }
  return out;
}

export { lineOf };
