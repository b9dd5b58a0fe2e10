import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as z from 'zod/mini';
import { described } from '../util/zod.js';
import { PlinthError } from '../util/errors.js';
import { chainIds, isPrefix } from './chain.js';

/**
 * The catalog of known base images: a YAML (or JSON) file friendly to git review and to mounting
 * as a Kubernetes ConfigMap. One entry per platform image: its name, tag, digests, layer
 * fingerprints (diff_ids and chain IDs), creation time, status and notes.
 */
const digest = z.string().check(z.regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-f0-9]{32,}$/, 'expected a digest such as sha256:<64 hex>'));

export const CatalogEntrySchema = z.strictObject({
  name: described(z.string().check(z.minLength(1)), 'normalised repository, e.g. docker.io/library/debian'),
  tag: z.optional(z.string()),
  digest: described(digest, 'digest of the platform image manifest'),
  index: described(z.optional(digest), 'digest of the multi-platform index the image was taken from'),
  platform: described(z.optional(z.string()), 'os/arch[/variant]'),
  diffIds: z.array(digest).check(z.minLength(1)),
  chainIds: z.optional(z.array(digest)),
  created: z.optional(z.string()),
  status: described(z._default(z.enum(['approved', 'superseded', 'deprecated', 'unknown']), 'unknown'), 'approved: use it; superseded: a newer version of its line is approved (allowed for a grace period); deprecated: do not use it'),
  line: described(z.optional(z.string()), 'the version line this base belongs to (default: name); "newest approved" is judged within a line'),
  notes: z.optional(z.string()),
  addedAt: z.optional(z.string()),
  supersededAt: described(z.optional(z.string()), 'when a newer version of the line was approved'),
  deprecatedAt: z.optional(z.string()),
  reason: described(z.optional(z.string()), 'why it was deprecated'),
  successor: described(z.optional(z.string()), 'what to use instead (REPO:TAG@DIGEST)'),
});
export type CatalogEntry = z.infer<typeof CatalogEntrySchema>;
export type BaseStatus = CatalogEntry['status'];

export const CatalogSchema = z.strictObject({
  apiVersion: z._default(z.literal('plinth.dev/v1alpha1'), 'plinth.dev/v1alpha1'),
  kind: z._default(z.literal('BaseImageCatalog'), 'BaseImageCatalog'),
  bases: z._default(z.array(CatalogEntrySchema), []),
});
export type Catalog = z.infer<typeof CatalogSchema>;

export function emptyCatalog(): Catalog {
  return { apiVersion: 'plinth.dev/v1alpha1', kind: 'BaseImageCatalog', bases: [] };
}

/** `$PLINTH_CATALOG`, else `$XDG_CONFIG_HOME/plinth/catalog.yaml` (~/.config/plinth/catalog.yaml). */
import { defaultCatalogPath } from '../util/paths.js';
export { defaultCatalogPath };

/** JSON Schema of the catalog file (for editors and review). */
export function catalogJsonSchema(): unknown {
  return z.toJSONSchema(CatalogSchema, { io: 'input' });
}

export async function loadCatalog(file: string, opts: { mustExist?: boolean } = {}): Promise<Catalog> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !opts.mustExist) return emptyCatalog();
    throw new PlinthError('IO', (e as NodeJS.ErrnoException).code === 'ENOENT' ? `catalog ${file} does not exist` : `cannot read catalog ${file}: ${(e as Error).message}`);
  }
  if (text.length > 64 * 1024 * 1024) throw new PlinthError('USAGE', `catalog ${file} is larger than 64 MiB`);
  // The YAML parser loads only when there is a catalog to read (rebase and provenance without one skip it).
  const { parseYamlFile } = await import('../util/yamlfile.js');
  const cat = parseYamlFile(text, CatalogSchema, file);
  for (const b of cat.bases) {
    const expected = chainIds(b.diffIds);
    if (b.chainIds && b.chainIds.join() !== expected.join()) {
      throw new PlinthError('USAGE', `${file}: base ${b.name}@${b.digest}: chainIds do not follow from diffIds (remove them and they are recomputed)`);
    }
    b.chainIds = expected;
  }
  return cat;
}

export async function saveCatalog(file: string, cat: Catalog): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const body = file.endsWith('.json')
    ? `${JSON.stringify(cat, null, 2)}\n`
    : `# Plinth base image catalog (plinth catalog add/list/remove). One entry per platform image.\n${(await import('yaml')).stringify(cat, { lineWidth: 0 })}`;
  const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
  await writeFile(tmp, body);
  await rename(tmp, file);
}

/** Add or update entries (same digest = same entry: its fields are refreshed, status replaced). */
export function upsert(cat: Catalog, entries: CatalogEntry[]): { added: number; updated: number } {
  let added = 0;
  let updated = 0;
  for (const e of entries) {
    const i = cat.bases.findIndex((b) => b.digest === e.digest && b.name === e.name);
    if (i >= 0) {
      cat.bases[i] = { ...cat.bases[i]!, ...e, addedAt: cat.bases[i]!.addedAt ?? e.addedAt };
      updated++;
    } else {
      cat.bases.push(e);
      added++;
    }
  }
  return { added, updated };
}

/** Remove entries by digest (manifest or index), by name, or by name:tag. */
export function remove(cat: Catalog, what: string): number {
  const before = cat.bases.length;
  cat.bases = cat.bases.filter((b) => !(b.digest === what || b.index === what || b.name === what || `${b.name}:${b.tag}` === what || `${b.name}@${b.digest}` === what));
  return before - cat.bases.length;
}

export function lineOf(b: CatalogEntry): string {
  return b.line ?? b.name;
}

/** Find the entry for a digest (manifest digest, or index digest + platform). */
export function findByDigest(cat: Catalog, digest: string, platform?: string): CatalogEntry | undefined {
  return cat.bases.find((b) => b.digest === digest) ?? cat.bases.find((b) => b.index === digest && (!platform || !b.platform || b.platform === platform));
}

export interface FingerprintMatch {
  entry: CatalogEntry;
  layers: number;
}

const STATUS_RANK: Record<BaseStatus, number> = { approved: 0, superseded: 1, unknown: 2, deprecated: 3 };

/**
 * Bases whose diff_ids are a prefix of the image's, ranked: approved first, then most layers
 * matched, then newest. Returns every match in order, and how many tie for first place.
 */
export function matchFingerprint(cat: Catalog, imageDiffIds: string[], imageDigest?: string): { matches: FingerprintMatch[]; ties: number } {
  const matches = cat.bases
    .filter((b) => b.digest !== imageDigest && isPrefix(b.diffIds, imageDiffIds))
    .map((entry) => ({ entry, layers: entry.diffIds.length }));
  const key = (m: FingerprintMatch) => [STATUS_RANK[m.entry.status], -m.layers, -(Date.parse(m.entry.created ?? '') || 0)] as const;
  matches.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
    return 0;
  });
  let ties = matches.length ? 1 : 0;
  while (ties < matches.length && key(matches[ties]!).join() === key(matches[0]!).join()) ties++;
  return { matches, ties };
}

/**
 * Which of two entries of a line is newer: by `created` when both say it, then by when the
 * catalog got them (`addedAt`; reproducible builds share one `created`) when both say it, then
 * by position in the catalog. Negative when `a` is older.
 */
export function compareAge(cat: Catalog, a: CatalogEntry, b: CatalogEntry): number {
  const t = (x: string | undefined) => Date.parse(x ?? '') || 0;
  const by = (k: 'created' | 'addedAt') => (t(a[k]) && t(b[k]) ? t(a[k]) - t(b[k]) : 0);
  return by('created') || by('addedAt') || cat.bases.indexOf(a) - cat.bases.indexOf(b);
}

/** The newest approved entry of a line (same platform when given). */
export function newestApproved(cat: Catalog, line: string, platform?: string): CatalogEntry | undefined {
  return cat.bases
    .filter((b) => lineOf(b) === line && b.status === 'approved' && (!platform || !b.platform || b.platform === platform))
    .sort((a, b) => compareAge(cat, b, a))[0];
}
