import type { ImageConfig } from '../oci/types.js';
import { formatPlatform, parsePlatform } from '../oci/types.js';
import { openSource, registryLocation, type OpenOptions } from '../source/open.js';
import { readConfig, resolveRoot, selectImages } from '../source/image.js';
import { isPrefix } from './chain.js';
import { findByDigest, lineOf, matchFingerprint, type Catalog, type CatalogEntry } from './catalog.js';
import type { BaseClaim, Evidence, Finding } from './evidence.js';
import { shortDigest } from '../oci/digest.js';

/**
 * Decide an image's base from the collected evidence, the catalog and (optionally) the registry:
 * declared bases first, confirmed by layers where the base's diff_ids can be had; then images the
 * build used whose layers are a prefix of the image's; then layer fingerprints against the catalog.
 * Never a name without evidence: otherwise the base is unknown (null).
 */
export type Confidence = 'high' | 'medium' | 'low';

export interface EvidenceItem {
  kind: BaseClaim['kind'];
  source: string;
  name: string | null;
  digest: string | null;
  /** true: the base's layers are a prefix of the image's; false: they are not; null: not checked. */
  confirmed: boolean | null;
}

export interface BaseReport {
  name: string | null;
  tag: string | null;
  digest: string | null;
  evidence: EvidenceItem[];
  confidence: Confidence;
  layers: { base: number | null; image: number | null; total: number };
  catalog: { status: CatalogEntry['status']; line: string; digest: string; platform: string | null; created: string | null; notes: string | null; supersededAt?: string; deprecatedAt?: string; reason?: string; successor?: string } | null;
  /** Other candidates: every fingerprint match that ties with the chosen one, or unconfirmed build materials. */
  candidates: Array<{ name: string; tag: string | null; digest: string | null; layers: number | null; status: CatalogEntry['status'] | null; kind: BaseClaim['kind'] }>;
  conflicts: string[];
  /**
   * The base's identity is confirmed by its own layers: its diff_ids (from the catalog or its
   * registry) are the image's first layers, or a catalog fingerprint matched. False for a base
   * known only from metadata (a declared name or digest, a buildpacks topLayer), which whoever
   * builds the image can write.
   */
  verified: boolean;
  /** Whether `tag` points at `digest`: true (the catalog says so, or the registry does now), false (it does not), null (not checked). */
  tagVerified: boolean | null;
}

export interface BaseOptions {
  catalog: Catalog;
  /** Look bases up in their registries to confirm layers (and check tags). */
  checkRegistry?: boolean;
  registryOptions?: OpenOptions;
  /** Which base names may be looked up in their registries (default: any). */
  lookupAllowed?: (name: string) => boolean;
  findings: Finding[];
}

interface Resolved {
  /** false: the claimed tag does not point at the claimed digest (moved, or never did); undefined: not checked. */
  tagOk?: boolean;
  diffIds: string[];
  created?: string;
  digest?: string;
  via: 'catalog' | 'registry';
  entry?: CatalogEntry;
}

async function lookupBase(claim: BaseClaim, platform: string | undefined, o: BaseOptions, cache: Map<string, Resolved | undefined>): Promise<Resolved | undefined> {
  if (claim.digest) {
    const e = findByDigest(o.catalog, claim.digest, platform);
    if (e) return { diffIds: e.diffIds, ...(e.created ? { created: e.created } : {}), digest: e.digest, via: 'catalog', entry: e };
  }
  if (!o.checkRegistry || !claim.name) return undefined;
  const ref = claim.digest ? `${claim.name}@${claim.digest}` : claim.tag ? `${claim.name}:${claim.tag}` : undefined;
  if (!ref) return undefined;
  if (cache.has(ref)) return cache.get(ref);
  if (o.lookupAllowed && !o.lookupAllowed(claim.name)) {
    // The name comes from the image (an annotation or label): only registries the policy allows are contacted.
    o.findings.push({ severity: 'warning', source: claim.source, message: `base ${ref} was not looked up: its registry is not one the policy allows` });
    cache.set(ref, undefined);
    return undefined;
  }
  let out: Resolved | undefined;
  try {
    // A registry reference only: a name such as "oci:5000/x" must not open a local layout.
    const src = await openSource(registryLocation(ref), o.registryOptions ?? {});
    try {
      const root = await resolveRoot(src);
      const [img] = await selectImages(src, root, platform ? parsePlatform(platform) : undefined);
      const { config } = await readConfig(src, img!);
      const diffIds = Array.isArray(config.rootfs?.diff_ids) ? config.rootfs!.diff_ids : [];
      out = { diffIds, ...(config.created ? { created: config.created } : {}), digest: img!.descriptor.digest, via: 'registry' };
    } finally {
      await src.close();
    }
    if (claim.digest && claim.tag && out) {
      // The digest proves the layers; the tag is only claimed. Does it point there?
      const tagged = await openSource(registryLocation(`${claim.name}:${claim.tag}`), o.registryOptions ?? {});
      try {
        const root = await resolveRoot(tagged);
        out.tagOk = root.descriptor.digest === claim.digest || (root.kind === 'index' && root.index.manifests.some((d) => d.digest === claim.digest));
      } finally {
        await tagged.close();
      }
      if (!out.tagOk) o.findings.push({ severity: 'warning', source: claim.source, message: `${claim.name}:${claim.tag} does not point at ${claim.digest} (the tag moved, or never pointed there)` });
    }
  } catch (e) {
    o.findings.push({ severity: 'warning', source: claim.source, message: `could not look up base ${ref}: ${(e as Error).message}`, lookupError: true });
  }
  cache.set(ref, out);
  return out;
}

function catalogInfo(e: CatalogEntry | undefined): BaseReport['catalog'] {
  if (!e) return null;
  return { status: e.status, line: lineOf(e), digest: e.digest, platform: e.platform ?? null, created: e.created ?? null, notes: e.notes ?? null, ...(e.supersededAt ? { supersededAt: e.supersededAt } : {}), ...(e.deprecatedAt ? { deprecatedAt: e.deprecatedAt } : {}), ...(e.reason ? { reason: e.reason } : {}), ...(e.successor ? { successor: e.successor } : {}) };
}

export async function determineBase(ev: Evidence, config: ImageConfig, imageDigest: string, o: BaseOptions): Promise<{ base: BaseReport | null; candidates: BaseReport['candidates'] }> {
  const diffIds = Array.isArray(config.rootfs?.diff_ids) ? config.rootfs!.diff_ids : [];
  const total = diffIds.length;
  const platform = config.os && config.architecture ? formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }) : undefined;
  const cache = new Map<string, Resolved | undefined>();
  const items: EvidenceItem[] = [];
  const resolved = new Map<BaseClaim, Resolved | undefined>();
  for (const c of ev.claims) {
    const r = await lookupBase(c, platform, o, cache);
    resolved.set(c, r);
    let confirmed: boolean | null = null;
    if (r) confirmed = isPrefix(r.diffIds, diffIds);
    else if (c.topLayer) confirmed = diffIds.includes(c.topLayer);
    items.push({ kind: c.kind, source: c.source, name: c.name ?? null, digest: c.digest ?? null, confirmed });
  }
  const conflicts: string[] = [];
  const declared = ev.claims.filter((c) => c.role === 'base' && (c.name || c.digest || c.topLayer));
  const materials = ev.claims.filter((c) => c.role === 'material');
  const confirmedMaterials = materials.filter((c) => resolved.get(c) && isPrefix(resolved.get(c)!.diffIds, diffIds));
  confirmedMaterials.sort((a, b) => resolved.get(b)!.diffIds.length - resolved.get(a)!.diffIds.length);
  const fp = matchFingerprint(o.catalog, diffIds, imageDigest);

  let chosen: BaseClaim | undefined;
  let chosenResolved: Resolved | undefined;
  let confidence: Confidence = 'low';
  let verified = false;
  let baseLayers: number | null = null;
  let entry: CatalogEntry | undefined;
  const candidates: BaseReport['candidates'] = [];

  const declaredWithName = declared.filter((c) => c.name);
  if (declaredWithName.length || declared.length) {
    // Prefer a declaration whose layers were confirmed, then one with a digest, then any.
    const ranked = [...(declaredWithName.length ? declaredWithName : declared)].sort((a, b) => score(b) - score(a));
    function score(c: BaseClaim): number {
      const r = resolved.get(c);
      return (r && isPrefix(r.diffIds, diffIds) ? 4 : 0) + (c.digest ? 2 : 0) + (c.topLayer && diffIds.includes(c.topLayer) ? 1 : 0);
    }
    chosen = ranked[0]!;
    chosenResolved = resolved.get(chosen);
    if (chosenResolved) {
      if (isPrefix(chosenResolved.diffIds, diffIds)) {
        confidence = 'high';
        verified = true;
        baseLayers = chosenResolved.diffIds.length;
      } else {
        confidence = 'low';
        conflicts.push(`declared base ${chosen.name ?? ''}${chosen.digest ? `@${chosen.digest}` : ''} (${chosen.source}) does not match the image's layers: its ${chosenResolved.diffIds.length} layer(s) are not the first layers of the image`);
      }
    } else if (chosen.topLayer && diffIds.includes(chosen.topLayer)) {
      confidence = 'high';
      baseLayers = diffIds.indexOf(chosen.topLayer) + 1;
    } else if (chosen.topLayer) {
      confidence = 'low';
      conflicts.push(`buildpacks runImage.topLayer ${chosen.topLayer} is not one of the image's layers`);
    } else {
      confidence = chosen.digest ? 'medium' : 'low';
    }
    entry = chosenResolved?.entry ?? (chosen.digest ? findByDigest(o.catalog, chosen.digest, platform) : undefined);
  } else if (confirmedMaterials.length) {
    chosen = confirmedMaterials[0]!;
    chosenResolved = resolved.get(chosen);
    confidence = 'high';
    verified = true;
    baseLayers = chosenResolved!.diffIds.length;
    entry = chosenResolved!.entry;
  } else if (fp.matches.length) {
    const top = fp.matches[0]!;
    entry = top.entry;
    chosen = { kind: 'fingerprint', source: `catalog: diff_ids of ${top.entry.name}@${top.entry.digest} are the image's first ${top.layers} layer(s)`, name: top.entry.name, digest: top.entry.digest, role: 'base', ...(top.entry.tag ? { tag: top.entry.tag } : {}) };
    items.push({ kind: 'fingerprint', source: chosen.source, name: top.entry.name, digest: top.entry.digest, confirmed: true });
    confidence = fp.ties > 1 ? 'medium' : 'high';
    verified = true;
    baseLayers = top.layers;
    for (const m of fp.matches.slice(1, fp.ties)) {
      candidates.push({ name: m.entry.name, tag: m.entry.tag ?? null, digest: m.entry.digest, layers: m.layers, status: m.entry.status, kind: 'fingerprint' });
    }
    if (fp.ties > 1) conflicts.push(`${fp.ties} catalog bases match the image's layers equally well; reporting all of them`);
  } else {
    const imageMaterials = materials.filter((c) => c.name);
    const unique = new Map(imageMaterials.map((c) => [`${c.name}@${c.digest ?? ''}`, c]));
    if (unique.size === 1) {
      // The build used exactly one image: in all likelihood its base, but not confirmed by layers.
      chosen = [...unique.values()][0]!;
      confidence = 'low';
    } else {
      for (const c of unique.values()) candidates.push({ name: c.name!, tag: c.tag ?? null, digest: c.digest ?? null, layers: null, status: null, kind: c.kind });
      return { base: null, candidates };
    }
  }
  if (!chosen) return { base: null, candidates };

  // Other evidence that disagrees with the choice.
  const sameBase = (c: BaseClaim): boolean => {
    if (c.name && chosen!.name && c.name !== chosen!.name) return false;
    if (c.digest && chosen!.digest && c.digest !== chosen!.digest) {
      const e1 = findByDigest(o.catalog, c.digest, platform);
      const e2 = findByDigest(o.catalog, chosen!.digest, platform);
      return !!e1 && e1 === e2;
    }
    return true;
  };
  for (const c of declared) {
    if (c !== chosen && !sameBase(c)) conflicts.push(`${c.source} names ${c.name ?? ''}${c.digest ? `@${c.digest}` : ''}, but the base is ${chosen.name ?? ''}${chosen.digest ? `@${chosen.digest}` : ''}`);
  }
  for (const c of confirmedMaterials) {
    if (c !== chosen && !sameBase(c) && resolved.get(c)!.diffIds.length >= (baseLayers ?? 0)) {
      conflicts.push(`${c.source}: ${c.name}@${c.digest ?? ''} also matches the image's layers`);
    }
  }
  if (chosen.kind !== 'fingerprint' && fp.matches.length && baseLayers !== null) {
    const top = fp.matches[0]!;
    if (top.layers > baseLayers) {
      conflicts.push(`catalog base ${top.entry.name}@${top.entry.digest} covers ${top.layers} of the image's layers, more than the declared base (${baseLayers})`);
    }
  }
  if (chosen.kind !== 'fingerprint' && !entry && fp.matches.length) {
    const same = fp.matches.find((m) => m.entry.name === chosen!.name && (baseLayers === null || m.layers === baseLayers));
    if (same) entry = same.entry;
  }
  for (const c of materials) {
    if (c === chosen || confirmedMaterials.includes(c)) continue;
    if (!candidates.some((x) => x.name === c.name && x.digest === (c.digest ?? null)) && !(c.name === chosen.name && c.digest === chosen.digest)) {
      candidates.push({ name: c.name!, tag: c.tag ?? null, digest: c.digest ?? null, layers: resolved.get(c)?.diffIds.length ?? null, status: null, kind: c.kind });
    }
  }
  // A base found in the catalog by its digest is the catalog's: its name and tag are reported,
  // not the ones the image claims (a claim can borrow a trusted name for another digest).
  const byCatalog = chosenResolved?.via === 'catalog' && chosenResolved.entry ? chosenResolved.entry : undefined;
  if (byCatalog && chosen.name && byCatalog.name !== chosen.name) {
    conflicts.push(`${chosen.source} names ${chosen.name}${chosen.tag ? `:${chosen.tag}` : ''}, but the catalog knows ${shortDigest(byCatalog.digest)} as ${byCatalog.name}${byCatalog.tag ? `:${byCatalog.tag}` : ''}`);
  }
  // The tag stays the one the image was built from (baseTagMoved checks it); it counts as verified
  // only when the catalog records that tag for this digest, or the registry still points it there.
  const tag = chosen.tag ?? entry?.tag ?? null;
  const tagVerified = byCatalog ? !chosen.tag || chosen.tag === byCatalog.tag : (chosenResolved?.tagOk ?? null);
  const base: BaseReport = {
    name: byCatalog ? byCatalog.name : (chosen.name ?? entry?.name ?? null),
    tag,
    digest: chosen.digest ?? chosenResolved?.digest ?? entry?.digest ?? null,
    evidence: items,
    confidence,
    layers: { base: baseLayers, image: baseLayers === null ? null : total - baseLayers, total },
    catalog: catalogInfo(entry),
    candidates,
    conflicts,
    verified,
    tagVerified,
  };
  return { base, candidates };
}
