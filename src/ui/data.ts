import { compareAge, type Catalog, type CatalogEntry } from '../provenance/catalog.js';
import type { DecisionRecord, FindingRow, ImageSummary, MetaStore } from '../store/store.js';
import { listImages } from '../store/queries.js';

/**
 * What the dashboard's pages show, computed with the same store queries the JSON API answers
 * with (listImages for /v1/images, store.findings for /v1/findings, store.decisions for
 * /v1/decisions), so a page and the API never disagree about a number.
 */

export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'] as const;

export interface Overview {
  images: number;
  running: number;
  scanned: number;
  withBase: number;
  onNewestBase: number;
  behind: number;
  decisions: { total: number; allowed: number; denied: number; warned: number };
  findings: { total: number; base: number; app: number; fixable: number; bySeverity: Record<string, { base: number; app: number }> };
  /** Open findings at the end of each of the last TREND_DAYS days (UTC), today last. */
  trend: Array<{ day: string; open: number }>;
}

export const TREND_DAYS = 30;

/** How many findings were open at the end of each day: first seen before it, not resolved by then. */
export function findingTrend(all: FindingRow[], now: Date = new Date(), days = TREND_DAYS): Overview['trend'] {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const out: Overview['trend'] = [];
  for (let d = days - 1; d >= 0; d--) {
    const start = today - d * 86_400_000;
    // Today counts up to now (what is open at this moment), earlier days up to their end.
    const end = d === 0 ? now.toISOString() : new Date(start + 86_400_000).toISOString();
    let open = 0;
    for (const f of all) if (f.firstSeen <= end && (f.resolved === null || f.resolved > end)) open++;
    out.push({ day: new Date(start).toISOString().slice(0, 10), open });
  }
  return out;
}

/** The decisions the overview counts (the newest, at most this many: the store's own limit). */
export const DECISION_WINDOW = 10_000;

export function findingCounts(findings: FindingRow[]): Overview['findings'] {
  const bySeverity: Overview['findings']['bySeverity'] = {};
  for (const s of SEVERITIES) bySeverity[s] = { base: 0, app: 0 };
  let base = 0;
  let fixable = 0;
  for (const f of findings) {
    const s = (SEVERITIES as readonly string[]).includes(f.severity) ? f.severity : 'UNKNOWN';
    if (f.origin === 'base') bySeverity[s]!.base++, base++;
    else bySeverity[s]!.app++;
    if (f.fixedVersion) fixable++;
  }
  return { total: findings.length, base, app: findings.length - base, fixable, bySeverity };
}

export async function overview(store: MetaStore, o: { catalog?: Catalog } = {}): Promise<Overview> {
  const images = await listImages(store, {}, o);
  // What listImages({ running: true }) keeps (store.images' running filter), without a second read.
  const running = images.filter((i) => i.running.length > 0);
  const all = await store.findings({ includeResolved: true });
  const findings = all.filter((f) => f.resolved === null);
  const decisions = await store.decisions({ limit: DECISION_WINDOW });
  const withBase = images.filter((i) => i.base);
  return {
    images: images.length,
    running: running.length,
    scanned: images.filter((i) => i.scannedAt).length,
    withBase: withBase.length,
    onNewestBase: withBase.filter((i) => i.base!.behind === false).length,
    behind: withBase.filter((i) => i.base!.behind === true).length,
    decisions: {
      total: decisions.length,
      allowed: decisions.filter((d) => d.allowed).length,
      denied: decisions.filter((d) => !d.allowed).length,
      warned: decisions.filter((d) => d.allowed && d.messages.length > 0).length,
    },
    findings: findingCounts(findings),
    trend: findingTrend(all),
  };
}

export interface ImageTableQuery {
  repository?: string;
  cve?: string;
  package?: string;
  base?: string;
  namespace?: string;
  owner?: string;
  sort?: string;
  dir?: 'asc' | 'desc';
  page?: number;
  size?: number;
}

export const SORTS = ['repository', 'vulnerabilities', 'critical', 'size', 'lastSeen', 'base'] as const;
export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;

function includes(hay: string | null | undefined, needle: string): boolean {
  return (hay ?? '').toLowerCase().includes(needle.toLowerCase());
}

function baseName(i: ImageSummary): string {
  return i.base ? `${i.base.name ?? ''}${i.base.tag ? `:${i.base.tag}` : ''}${i.base.digest ? `@${i.base.digest}` : ''}` : '';
}

function sortKey(i: ImageSummary, sort: string): string | number {
  switch (sort) {
    case 'vulnerabilities':
      return i.vulnerabilities?.total ?? -1;
    case 'critical':
      return i.vulnerabilities?.bySeverity.CRITICAL ?? -1;
    case 'size':
      return i.size ?? -1;
    case 'lastSeen':
      return i.lastSeen;
    case 'base':
      return baseName(i);
    default:
      return `${i.repository}@${i.digest}`;
  }
}

/** The images table: filtered, sorted and paged on the server. */
export async function imageTable(store: MetaStore, q: ImageTableQuery, o: { catalog?: Catalog } = {}): Promise<{ rows: ImageSummary[]; total: number; page: number; pages: number; size: number }> {
  let images = await listImages(store, {}, o);
  if (q.repository) images = images.filter((i) => includes(i.repository, q.repository!));
  if (q.base) images = images.filter((i) => includes(baseName(i), q.base!) || (i.base !== null && baseRef(i.base) === q.base));
  if (q.owner) images = images.filter((i) => includes(i.owner, q.owner!));
  if (q.namespace) images = images.filter((i) => i.running.some((r) => r.namespace === q.namespace || `${r.cluster}/${r.namespace}` === q.namespace));
  if (q.cve) {
    const uris = new Set((await store.findings({ id: q.cve })).map((x) => x.uri));
    images = images.filter((i) => uris.has(i.uri));
  }
  if (q.package) {
    // Installed (a PACKAGE occurrence), or named by an open finding (a package the inventory was not stored for).
    const uris = await store.resourcesWith('PACKAGE', { subject: q.package });
    for (const f of await store.findings({})) if (f.package === q.package) uris.add(f.uri);
    images = images.filter((i) => uris.has(i.uri));
  }
  const sort = (SORTS as readonly string[]).includes(q.sort ?? '') ? q.sort! : 'repository';
  const dir = q.dir === 'desc' ? -1 : 1;
  images = images
    .map((i, n) => ({ i, n, k: sortKey(i, sort) }))
    .sort((a, b) => (a.k < b.k ? -dir : a.k > b.k ? dir : a.n - b.n))
    .map((x) => x.i);
  const size = Math.min(Math.max(q.size ?? DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
  const pages = Math.max(1, Math.ceil(images.length / size));
  const page = Math.min(Math.max(q.page ?? 1, 1), pages);
  return { rows: images.slice((page - 1) * size, page * size), total: images.length, page, pages, size };
}

export interface BaseLine {
  key: string;
  name: string | null;
  tag: string | null;
  digest: string | null;
  status: string | null;
  line: string | null;
  newest: string | null;
  consumers: ImageSummary[];
}

/** The bases the images are built on (from their base columns), grouped by line, newest first. */
export async function baseLines(store: MetaStore, o: { catalog?: Catalog } = {}): Promise<BaseLine[]> {
  const images = await listImages(store, {}, o);
  const m = new Map<string, BaseLine>();
  for (const i of images) {
    if (!i.base) continue;
    const key = baseRef(i.base) ?? '';
    const b = m.get(key) ?? { key, name: i.base.name, tag: i.base.tag, digest: i.base.digest, status: i.base.status, line: i.base.line, newest: i.base.newest, consumers: [] };
    b.consumers.push(i);
    m.set(key, b);
  }
  return [...m.values()].sort((a, b) => `${a.line ?? ''} ${a.name ?? ''} ${a.tag ?? ''}`.localeCompare(`${b.line ?? ''} ${b.name ?? ''} ${b.tag ?? ''}`));
}

/** A base as a reference consumers() takes: NAME@DIGEST, else NAME:TAG, else NAME. */
export function baseRef(b: { name: string | null; tag: string | null; digest: string | null }): string | null {
  if (!b.name) return null;
  if (b.digest) return `${b.name}@${b.digest}`;
  return b.tag ? `${b.name}:${b.tag}` : b.name;
}

export type Verdict = DecisionRecord & { id: number; count: number };

/**
 * The last policy decision about each image on a page: by digest, else (a decision made on a
 * reference only, when the policy needed no pull) by one of its current tags; among the newest
 * DECISION_WINDOW decisions.
 */
export async function lastVerdicts(store: MetaStore, images: ImageSummary[]): Promise<Map<string, Verdict>> {
  const out = new Map<string, Verdict>();
  if (!images.length) return out;
  const byKey = new Map<string, Verdict>();
  // Newest first: the first seen for a key is its last decision.
  for (const d of await store.decisions({ limit: DECISION_WINDOW })) {
    for (const k of [d.digest ? `@${d.digest}` : null, d.image]) if (k && !byKey.has(k)) byKey.set(k, d);
  }
  for (const i of images) {
    const found = [byKey.get(`@${i.digest}`), byKey.get(i.uri), ...i.tags.map((t) => byKey.get(`${i.repository}:${t}`))].filter((d): d is Verdict => d !== undefined);
    found.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : b.id - a.id));
    if (found[0]) out.set(i.uri, found[0]);
  }
  return out;
}

/** The image page's evidence: what the store's IMAGE, BUILD, PACKAGE and ATTESTATION occurrences say. */
export interface ImageDetails {
  evidence: Array<{ kind: string; source: string; confirmed: boolean | null }>;
  baseVerified: boolean | null;
  builder: string | null;
  distribution: string | null;
  /** Installed packages as provenance counted them (null when it did not read the layers). */
  packageCount: number | null;
  rebuild: { reproducible: boolean; missing: string[]; materials: number } | null;
  layers: Array<{ index: number; digest: string; size: number; createdBy: string | null; origin: 'base' | 'image' | null; packages: number }>;
  packages: Array<{ name: string; version: string; type: string; layerIndex: number | null; origin: string | null; license: string | null }>;
  /** viaIndex: made on the multi-platform index this image belongs to. */
  signatures: Array<{ signer: string; format: string; source: string; verifiedAt: string | null; signedDigest: string | null; viaIndex: boolean }>;
}

/** Packages read per image page (an image with more lists the first ones and says so). */
export const MAX_PACKAGES = 20_000;

const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const int = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) ? v : null);

/** The resource a platform image's index has in the store (signatures made on the index name it). */
export function indexUri(i: { repository: string; indexDigest: string | null }): string | null {
  return i.indexDigest ? `${i.repository}@${i.indexDigest}` : null;
}

export async function imageDetails(store: MetaStore, uri: string, o: { indexUri?: string | null } = {}): Promise<ImageDetails> {
  const [images, builds, packages, own] = await Promise.all(
    (['IMAGE', 'BUILD', 'PACKAGE', 'ATTESTATION'] as const).map((kind) => store.listOccurrences({ resourceUri: uri, kind, limit: kind === 'PACKAGE' ? MAX_PACKAGES : 100 })),
  );
  const viaIndex = o.indexUri ? await store.listOccurrences({ resourceUri: o.indexUri, kind: 'ATTESTATION', limit: 100 }) : [];
  const attestations = [...own!.map((a) => ({ a, index: false })), ...viaIndex.map((a) => ({ a, index: true }))];
  // The newest of each (an image re-analysed keeps one occurrence per note; a changed base or builder adds one).
  const newest = <T extends { updateTime: string }>(xs: T[]): T | undefined => [...xs].sort((a, b) => (a.updateTime < b.updateTime ? 1 : -1))[0];
  const img = obj(newest(images!)?.extra);
  const build = obj(newest(builds!)?.extra);
  const pkgs = packages!.map((p) => {
    const d = obj(p.data);
    const x = obj(p.extra);
    const v = obj(d.version);
    return { name: str(d.name) ?? '?', version: str(v.fullName) ?? str(v.name) ?? '', type: str(d.packageType) ?? '', layerIndex: int(x.layerIndex), origin: str(x.origin), license: str(obj(d.license).expression) };
  }).sort((a, b) => (a.layerIndex ?? -1) - (b.layerIndex ?? -1) || a.name.localeCompare(b.name));
  const perLayer = new Map<number, number>();
  for (const p of pkgs) if (p.layerIndex !== null) perLayer.set(p.layerIndex, (perLayer.get(p.layerIndex) ?? 0) + 1);
  const layers = (Array.isArray(build.layers) ? build.layers : []).map((l) => obj(l)).filter((l) => int(l.index) !== null && str(l.digest)).map((l) => ({
    index: int(l.index)!,
    digest: str(l.digest)!,
    size: int(l.size) ?? 0,
    createdBy: str(l.createdBy),
    origin: l.origin === 'base' ? ('base' as const) : l.origin === 'image' ? ('image' as const) : null,
    // What provenance counted when it read the layers; else the stored PACKAGE occurrences.
    packages: int(l.packages) ?? perLayer.get(int(l.index)!) ?? 0,
  }));
  const dist = obj(build.distribution);
  const rebuild = obj(build.rebuild);
  return {
    evidence: (Array.isArray(img.evidence) ? img.evidence : []).map((e) => obj(e)).map((e) => ({ kind: str(e.kind) ?? '?', source: str(e.source) ?? '', confirmed: typeof e.confirmed === 'boolean' ? e.confirmed : null })),
    baseVerified: typeof img.verified === 'boolean' ? img.verified : null,
    builder: str(obj(build.where).builder),
    packageCount: int(build.packages),
    distribution: str(dist.prettyName) ?? (str(dist.name) ? `${str(dist.name)} ${str(dist.versionId) ?? str(dist.version) ?? ''}`.trim() : null),
    rebuild: typeof rebuild.reproducible === 'boolean' ? { reproducible: rebuild.reproducible, missing: (Array.isArray(rebuild.missing) ? rebuild.missing : []).filter((m): m is string => typeof m === 'string'), materials: Array.isArray(rebuild.materials) ? rebuild.materials.length : 0 } : null,
    layers,
    packages: pkgs,
    signatures: attestations.filter(({ a }) => !a.resolveTime).map(({ a, index }) => {
      const x = obj(a.extra);
      const sig = obj((Array.isArray(obj(a.data).signatures) ? (obj(a.data).signatures as unknown[]) : [])[0]);
      return { signer: str(sig.publicKeyId) ?? '?', format: str(x.format) ?? '?', source: str(x.source) ?? '', verifiedAt: str(x.verifiedAt), signedDigest: str(x.signedDigest), viaIndex: index };
    }),
  };
}

/** One version of a catalog line, with the images built on it. */
export interface LineVersion {
  name: string;
  tag: string | null;
  digest: string;
  platform: string | null;
  status: string;
  created: string | null;
  addedAt: string | null;
  supersededAt: string | null;
  deprecatedAt: string | null;
  reason: string | null;
  successor: string | null;
  consumers: number;
}

/** The catalog's lines, each with its versions oldest first (by created, else catalog order). */
export function catalogLines(catalog: Catalog | undefined, images: ImageSummary[]): Array<{ line: string; versions: LineVersion[] }> {
  if (!catalog) return [];
  const byDigest = new Map<string, number>();
  for (const i of images) if (i.base?.digest) byDigest.set(i.base.digest, (byDigest.get(i.base.digest) ?? 0) + 1);
  const lines = new Map<string, Array<LineVersion & { entry: CatalogEntry }>>();
  catalog.bases.forEach((b) => {
    const line = b.line ?? b.name;
    const v = {
      name: b.name, tag: b.tag ?? null, digest: b.digest, platform: b.platform ?? null, status: b.status, created: b.created ?? null, addedAt: b.addedAt ?? null,
      supersededAt: b.supersededAt ?? null, deprecatedAt: b.deprecatedAt ?? null, reason: b.reason ?? null, successor: b.successor ?? null,
      consumers: (byDigest.get(b.digest) ?? 0) + (b.index ? byDigest.get(b.index) ?? 0 : 0), entry: b,
    };
    lines.set(line, [...(lines.get(line) ?? []), v]);
  });
  return [...lines].sort(([a], [b]) => a.localeCompare(b)).map(([line, vs]) => ({ line, versions: vs.sort((a, b) => compareAge(catalog, a.entry, b.entry)).map(({ entry: _e, ...v }) => v) }));
}
