import * as z from 'zod/mini';
import { described } from '../util/zod.js';
import { PlinthError, describeError } from '../util/errors.js';
import { parseYamlFile } from '../util/yamlfile.js';
import { globMatch } from '../policy/glob.js';
import { RegistryClient } from '../registry/client.js';
import { parseLocation, openSource, type OpenOptions } from '../source/open.js';
import { resolveRoot, selectImages, readConfig } from '../source/image.js';
import { isPrefix } from '../provenance/chain.js';
import type { Catalog, CatalogEntry } from '../provenance/catalog.js';
import type { PlinthEvent } from '../notify/notify.js';
import { ownerLabel, type MetaStore } from '../store/store.js';
import { consumers } from '../store/queries.js';

/**
 * `plinth golden consumers`: every image built on a base — found by layer prefix in the
 * repositories the globs name (tags walked, only manifests and configs read, never layers) and,
 * with a store, from what the store knows — with its owner: the image's
 * `org.opencontainers.image.authors` or `maintainer` label, else an owners file mapping repository
 * globs to contacts.
 */

const OwnersSchema = z.strictObject({
  apiVersion: z._default(z.literal('plinth.dev/v1alpha1'), 'plinth.dev/v1alpha1'),
  kind: z._default(z.literal('Owners'), 'Owners'),
  owners: z._default(
    z.array(
      z.strictObject({
        repositories: described(z._default(z.union([z.string(), z.array(z.string())]), []), 'repository globs this contact owns (REGISTRY/REPO-GLOB)'),
        contact: described(z.string().check(z.minLength(1)), 'who: a team, an e-mail; also matched against the images\' authors/maintainer labels'),
        notify: described(z.optional(z.array(z.string().check(z.minLength(1)))), 'plinth watch: where this contact\'s events are POSTed (default: --notify)'),
        format: described(z.optional(z.enum(['cloudevents', 'slack'])), 'plinth watch: the body those targets get (default: --notify-format)'),
      }),
    ),
    [],
  ),
});
export type Owners = z.infer<typeof OwnersSchema>;

export function parseOwners(text: string, file: string): Owners {
  return parseYamlFile(text, OwnersSchema, file);
}

export interface BaseVersion {
  name: string;
  digest: string;
  /** The index this platform image belongs to, when known (catalog). */
  index?: string | null;
  platform: string | null;
  diffIds: string[];
}

export interface Consumer {
  image: string;
  repository: string;
  tags: string[];
  digest: string;
  platform: string | null;
  base: { name: string; digest: string };
  owner: string | null;
  ownerFrom: 'label' | 'owners file' | null;
  foundBy: Array<'registry' | 'store'>;
}

/** The platform images of a base: from the catalog when it knows it, else from its registry. */
export async function baseVersions(ref: string, catalog: Catalog, registry: OpenOptions): Promise<BaseVersion[]> {
  const byCatalog = (match: (b: CatalogEntry) => boolean) => catalog.bases.filter(match).map((b) => ({ name: b.name, digest: b.digest, index: b.index ?? null, platform: b.platform ?? null, diffIds: b.diffIds }));
  if (/^sha256:[a-f0-9]{64}$/.test(ref)) {
    const found = byCatalog((b) => b.digest === ref || b.index === ref);
    if (!found.length) throw new PlinthError('USAGE', `no base in the catalog has digest ${ref}; name it as REGISTRY/REPO@${ref}`);
    return found;
  }
  const loc = parseLocation(ref);
  if (loc.transport === 'registry') {
    const d = loc.ref.digest;
    const tag = loc.ref.tagDefaulted ? undefined : loc.ref.tag;
    const found = byCatalog((b) => b.name === loc.ref.name && (d ? b.digest === d || b.index === d : !tag || b.tag === tag));
    if (found.length) return found;
  }
  const src = await openSource(loc, registry);
  try {
    const root = await resolveRoot(src);
    const out: BaseVersion[] = [];
    for (const img of await selectImages(src, root, 'all')) {
      const { config } = await readConfig(src, img);
      const diffIds = Array.isArray(config.rootfs?.diff_ids) ? config.rootfs!.diff_ids : [];
      out.push({ name: loc.transport === 'registry' ? loc.ref.name : src.description, digest: img.descriptor.digest, index: root.kind === 'index' ? root.descriptor.digest : null, platform: config.os && config.architecture ? `${config.os}/${config.architecture}${config.variant ? `/${config.variant}` : ''}` : null, diffIds });
    }
    return out;
  } finally {
    await src.close();
  }
}

function ownerOf(labels: Record<string, string>, repository: string, owners?: Owners): { owner: string | null; from: Consumer['ownerFrom'] } {
  const l = ownerLabel(labels);
  if (l) return { owner: l, from: 'label' };
  for (const o of owners?.owners ?? []) {
    const pats = Array.isArray(o.repositories) ? o.repositories : [o.repositories];
    if (pats.some((p) => globMatch(p, repository))) return { owner: o.contact, from: 'owners file' };
  }
  return { owner: null, from: null };
}

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

/**
 * Walk the registries the globs name (`REG/team/**`): list repositories, their tags, read each
 * tag's manifest (every platform of an index) and config, and keep those whose diff_ids start with
 * a base version's. Unreadable tags are reported, not fatal.
 */
export async function findConsumers(bases: BaseVersion[], globs: string[], o: { registry: OpenOptions; owners?: Owners; onWarning?: (m: string) => void; concurrency?: number }): Promise<Consumer[]> {
  const baseDigests = new Set(bases.map((b) => b.digest));
  const byRegistry = new Map<string, string[]>();
  for (const g of globs) {
    const slash = g.indexOf('/');
    if (slash <= 0) throw new PlinthError('USAGE', `--repos ${g}: give REGISTRY/REPOSITORY-GLOB, e.g. registry.example.com/team/**`);
    const reg = g.slice(0, slash);
    byRegistry.set(reg, [...(byRegistry.get(reg) ?? []), g]);
  }
  const found = new Map<string, Consumer>();
  for (const [registry, pats] of byRegistry) {
    const client = new RegistryClient(registry, o.registry);
    try {
      const repos = (await client.listRepositories()).filter((r) => pats.some((p) => globMatch(p, `${registry}/${r}`)));
      const jobs: Array<{ repo: string; tag: string }> = [];
      for (const repo of repos) {
        try {
          for (const tag of await client.listTags(repo)) if (!/^sha256-[a-f0-9]{64}(\.(sig|att|sbom))?$/.test(tag)) jobs.push({ repo, tag });
        } catch (e) {
          o.onWarning?.(`${registry}/${repo}: ${describeError(e)}`);
        }
      }
      await pool(jobs, o.concurrency ?? 8, async ({ repo, tag }) => {
        const name = `${registry}/${repo}`;
        try {
          const src = await openSource(`${name}:${tag}`, o.registry);
          try {
            const root = await resolveRoot(src);
            for (const img of await selectImages(src, root, 'all')) {
              if (baseDigests.has(img.descriptor.digest)) continue;
              const { config } = await readConfig(src, img);
              const diffIds = Array.isArray(config.rootfs?.diff_ids) ? config.rootfs!.diff_ids : [];
              const base = bases.find((b) => b.diffIds.length > 0 && b.diffIds.length < diffIds.length && isPrefix(b.diffIds, diffIds));
              if (!base) continue;
              const key = `${name}@${img.descriptor.digest}`;
              const prev = found.get(key);
              if (prev) {
                if (!prev.tags.includes(tag)) prev.tags.push(tag);
                continue;
              }
              const labels = (config.config?.Labels ?? {}) as Record<string, string>;
              const own = ownerOf(labels, name, o.owners);
              found.set(key, { image: `${name}:${tag}`, repository: name, tags: [tag], digest: img.descriptor.digest, platform: config.os ? `${config.os}/${config.architecture}${config.variant ? `/${config.variant}` : ''}` : null, base: { name: base.name, digest: base.digest }, owner: own.owner, ownerFrom: own.from, foundBy: ['registry'] });
            }
          } finally {
            await src.close();
          }
        } catch (e) {
          o.onWarning?.(`${name}:${tag}: ${describeError(e)}`);
        }
      });
    } finally {
      client.close();
    }
  }
  return [...found.values()].sort((a, b) => a.image.localeCompare(b.image));
}

/**
 * Every consumer of the base versions: the registry walk of `repos` (when given) and what `store`
 * knows (when given), merged by repository and digest — the tags either source knows, the sources
 * that found it. One function for golden consumers|deprecate and rebase --consumers-of.
 */
export async function gatherConsumers(bases: BaseVersion[], o: { repos?: string[]; store?: MetaStore; catalog: Catalog; registry: OpenOptions; owners?: Owners; onWarning?: (m: string) => void }): Promise<Consumer[]> {
  const list = o.repos?.length ? await findConsumers(bases, o.repos, { registry: o.registry, ...(o.owners ? { owners: o.owners } : {}), ...(o.onWarning ? { onWarning: o.onWarning } : {}) }) : [];
  if (o.store) {
    const byKey = new Map(list.map((c) => [`${c.repository}@${c.digest}`, c]));
    for (const b of bases) {
      for (const i of (await consumers(o.store, `${b.name}@${b.digest}`, { catalog: o.catalog })).images) {
        const prev = byKey.get(`${i.repository}@${i.digest}`);
        if (prev) {
          if (!prev.foundBy.includes('store')) prev.foundBy.push('store');
          for (const t of i.tags) if (!prev.tags.includes(t)) prev.tags.push(t);
          continue;
        }
        const own = i.owner ? { owner: i.owner, from: 'label' as const } : ownerOf({}, i.repository, o.owners);
        const c: Consumer = { image: `${i.repository}${i.tags[0] ? `:${i.tags[0]}` : `@${i.digest}`}`, repository: i.repository, tags: i.tags, digest: i.digest, platform: i.platform, base: { name: b.name, digest: b.digest }, owner: own.owner, ownerFrom: own.from, foundBy: ['store'] };
        list.push(c);
        byKey.set(`${i.repository}@${i.digest}`, c);
      }
    }
  }
  return list.sort((a, b) => a.image.localeCompare(b.image));
}

/** The event that tells an image's owner its base is deprecated. */
export function deprecationEvent(c: Consumer, o: { reason: string | null; successor: string | null; type?: string }): PlinthEvent {
  const type = o.type ?? 'dev.plinth.base.deprecated';
  return {
    type,
    subject: `${c.repository}@${c.digest}`,
    key: `${c.repository}@${c.digest}\u0000${c.base.digest}`,
    data: { image: { reference: c.image, repository: c.repository, tags: c.tags, digest: c.digest, platform: c.platform }, base: c.base, successor: o.successor, reason: o.reason, owner: c.owner, rebase: o.successor ? `plinth rebase ${c.image} --new-base ${o.successor}` : null },
    text: `${c.image} (${c.digest.slice(0, 19)}…) is built on ${c.base.name}@${c.base.digest.slice(0, 19)}…, which is ${type.endsWith('superseded') ? 'superseded' : 'deprecated'}${o.reason ? `: ${o.reason}` : ''}${o.successor ? `. Rebuild or rebase on ${o.successor}` : ''}${c.owner ? ` (owner: ${c.owner})` : ''}`,
  };
}
