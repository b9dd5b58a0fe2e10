import { PlinthError, describeError } from '../util/errors.js';
import { parseImageReference, type ImageReference } from '../oci/reference.js';
import type { Catalog } from '../provenance/catalog.js';
import { resourceUri, type DecisionRecord, type ImageQuery, type ImageSummary, type MetaStore, type StoreSeverity, type TagEvent } from './store.js';

/**
 * The store's questions, shared by the CLI (`plinth history|consumers|…`) and the API, so both
 * give the same facts.
 */

function ref(s: string, what: string): ImageReference {
  try {
    return parseImageReference(s);
  } catch (e) {
    throw new PlinthError('USAGE', `${what} "${s}" is not an image reference: ${describeError(e)}`);
  }
}

export interface History {
  reference: string;
  repository: string;
  tag: string | null;
  digest: string | null;
  /** Every tag → digest observation (for a tag: its moves; for a digest: the tags it was seen under). */
  tags: TagEvent[];
  /** With `at`: what the tag pointed at then. */
  at: { time: string; digest: string | null } | null;
  images: ImageSummary[];
  deployments: Awaited<ReturnType<MetaStore['deployments']>>;
  decisions: Array<DecisionRecord & { id: number }>;
}

/** `plinth history REF [--at TIME]`: tags over time, the images, where they ran, the decisions. */
export async function history(store: MetaStore, reference: string, o: { at?: string; decisions?: number } = {}): Promise<History> {
  const r = ref(reference, 'image');
  let tags: TagEvent[];
  let digests: string[];
  if (r.digest) {
    tags = await store.tagHistory({ digest: r.digest });
    digests = [r.digest];
  } else {
    tags = await store.tagHistory({ repository: r.name, tag: r.tag! });
    digests = [...new Set(tags.map((t) => t.digest))];
  }
  let at: History['at'] = null;
  if (o.at) {
    const time = normaliseTime(o.at, '--at');
    if (r.digest) at = { time, digest: r.digest };
    else at = { time, digest: (await store.tagAt(r.name, r.tag!, time))?.digest ?? null };
  }
  const images: ImageSummary[] = [];
  for (const d of digests) for (const img of await store.images({ digest: d })) if (!images.some((x) => x.uri === img.uri)) images.push(img);
  const resources = new Set<string>([...images.map((i) => i.uri), ...digests.map((d) => resourceUri(r.name, d)), reference, r.string, r.familiar]);
  const deployments = await store.deployments([...resources]);
  const decisions: History['decisions'] = [];
  const seen = new Set<number>();
  const limit = o.decisions ?? 100;
  for (const q of [...digests.map((d) => ({ digest: d })), { image: reference }, { image: r.string }, { image: r.familiar }]) {
    for (const d of await store.decisions({ ...q, limit })) if (!seen.has(d.id)) seen.add(d.id), decisions.push(d);
  }
  decisions.sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : b.id - a.id));
  return { reference: r.string, repository: r.name, tag: r.digest ? null : r.tag ?? null, digest: r.digest ?? null, tags, at, images, deployments, decisions: decisions.slice(0, limit) };
}

export interface Consumers {
  base: { reference: string; name: string; tag: string | null; digests: string[] };
  images: ImageSummary[];
}

/**
 * `plinth consumers BASE`: the images whose base is BASE. A digest names one version (and, for an
 * index, each platform image the catalog or the store knows in it); a tag names the version it
 * points at now (tag history, catalog) plus images whose provenance names that tag; a bare
 * repository names every version of it.
 */
export async function consumers(store: MetaStore, base: string, o: { catalog?: Catalog } = {}): Promise<Consumers> {
  const b = await resolveBase(store, base, o);
  const images = (await store.images({ base: b.query })).filter((i) => !b.digests.includes(i.digest));
  return { base: { reference: b.reference, name: b.name, tag: b.tag, digests: b.digests }, images };
}

/** What a base reference stands for in the store: its digests, or its repository (and tag). */
export async function resolveBase(store: MetaStore, base: string, o: { catalog?: Catalog } = {}): Promise<{ reference: string; name: string; tag: string | null; digests: string[]; query: NonNullable<ImageQuery['base']> }> {
  const r = ref(base, 'base');
  const digests = new Set<string>();
  if (r.digest) digests.add(r.digest);
  else if (!r.tagDefaulted && r.tag) {
    const now = (await store.tagHistory({ repository: r.name, tag: r.tag })).at(-1);
    if (now) digests.add(now.digest);
    for (const e of o.catalog?.bases ?? []) if (e.name === r.name && e.tag === r.tag) digests.add(e.digest);
  }
  // An index digest stands for its platform images.
  for (const d of [...digests]) {
    for (const e of o.catalog?.bases ?? []) if (e.index === d) digests.add(e.digest);
    for (const img of await store.images({ digest: d })) digests.add(img.digest);
  }
  const tag = r.digest || r.tagDefaulted ? null : r.tag ?? null;
  const list = [...digests].sort();
  const query = r.digest ? { digests: list } : tag ? { name: r.name, tag, digests: list } : { name: r.name };
  return { reference: r.string, name: r.name, tag, digests: list, query };
}

export interface ImageFilter {
  base?: string;
  running?: boolean;
  vulnerable?: StoreSeverity;
  behind?: boolean;
  repository?: string;
}

/** `plinth images` and GET /v1/images: the stored images, filtered. */
export async function listImages(store: MetaStore, f: ImageFilter, o: { catalog?: Catalog } = {}): Promise<ImageSummary[]> {
  const b = f.base ? await resolveBase(store, f.base, o) : undefined;
  const images = await store.images({
    ...(b ? { base: b.query } : {}),
    ...(f.running ? { running: true } : {}),
    ...(f.vulnerable ? { vulnerable: f.vulnerable } : {}),
    ...(f.behind ? { behind: true } : {}),
    ...(f.repository ? { repository: f.repository } : {}),
  });
  return b ? images.filter((i) => !b.digests.includes(i.digest)) : images;
}

/** A date or time as the store keeps it (ISO-8601 UTC); `2026-11-02` means its start. */
export function normaliseTime(s: string, what: string): string {
  const t = /^\d{4}-\d{2}-\d{2}$/.test(s) ? Date.parse(`${s}T00:00:00Z`) : Date.parse(s);
  if (Number.isNaN(t)) throw new PlinthError('USAGE', `${what} must be a date (2026-11-02) or an ISO-8601 time, got "${s}"`);
  return new Date(t).toISOString();
}

/** Severity names as the CLI and API accept them. */
export function parseSeverity(s: string | undefined, what: string): StoreSeverity | undefined {
  if (s === undefined || s === '') return undefined;
  const u = s.toUpperCase();
  if (!['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'].includes(u)) throw new PlinthError('USAGE', `${what} must be LOW, MEDIUM, HIGH or CRITICAL, got "${s}"`);
  return u as StoreSeverity;
}
