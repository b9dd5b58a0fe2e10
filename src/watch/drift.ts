import { describeError } from '../util/errors.js';
import { RegistryClient } from '../registry/client.js';
import type { OpenOptions } from '../source/open.js';
import { compareAge, lineOf, newestApproved, type Catalog, type CatalogEntry } from '../provenance/catalog.js';
import { ownerLabel, recordTag, type MetaStore } from '../store/store.js';
import { addEvents, getState, notifiable, setState, watchedTags, type WatchEvent } from './state.js';

/**
 * Drift: what moved under the fleet since the last run.
 *
 *   tags    every catalog line's tags and every watched tag are resolved (one HEAD each); a tag
 *           that points elsewhere than last time is a new row of the tag history and, for a
 *           watched tag or a catalog tag now pointing at a digest the catalog does not know (a new
 *           base version to review), an event.
 *   behind  every stored image on a catalogued base gets the base's status from the catalog, how
 *           many newer approved versions of its line exist ("behind by N") and since when its base
 *           is superseded or deprecated ("D days"); images that run or are watched on a superseded
 *           or deprecated base become events carrying the rebase command.
 */

export interface DriftOptions {
  registry: OpenOptions;
  at?: string;
  onWarning?: (m: string) => void;
}

export interface DriftReport {
  tags: number;
  moved: Array<{ repository: string; tag: string; from: string | null; to: string }>;
  unresolved: number;
  behind: number;
  updatedImages: number;
  events: number;
}

function split(name: string): { registry: string; repo: string } | null {
  const i = name.indexOf('/');
  if (i <= 0) return null;
  return { registry: name.slice(0, i), repo: name.slice(i + 1) };
}

async function resolveTags(store: MetaStore, tags: Array<{ repository: string; tag: string; watched: boolean; catalog: boolean }>, catalog: Catalog, o: DriftOptions, at: string, report: DriftReport): Promise<void> {
  const clients = new Map<string, RegistryClient>();
  const known = new Set(catalog.bases.flatMap((b) => [b.digest, b.index].filter((d): d is string => !!d)));
  try {
    for (const t of tags) {
      const where = split(t.repository);
      if (!where) continue;
      let client = clients.get(where.registry);
      if (!client) clients.set(where.registry, (client = new RegistryClient(where.registry, o.registry)));
      let digest: string | undefined;
      try {
        digest = (await client.headManifest(where.repo, t.tag))?.digest;
      } catch (e) {
        o.onWarning?.(`${t.repository}:${t.tag}: ${describeError(e)}`);
      }
      report.tags++;
      if (!digest) {
        report.unresolved++;
        continue;
      }
      // "Moved" is judged against what drift itself saw last (watch_state), not against the tag
      // history that any writer (a scan, an admission) extends; the first time, the history is the
      // baseline. The new observation, the history row and the event commit together.
      const ref = `${t.repository}:${t.tag}`;
      const stateKey = `tag\u0000${ref}`;
      const seen = await getState<{ digest: string }>(store, stateKey);
      const last = seen ?? (await store.sql.get<{ digest: string }>('SELECT digest FROM tag_history WHERE repository = ? AND tag = ? ORDER BY first_seen DESC, id DESC LIMIT 1', [t.repository, t.tag]));
      const moved = !!last && last.digest !== digest;
      const tagEvents: WatchEvent[] = [];
      if (moved && t.watched) {
        tagEvents.push({
          type: 'dev.plinth.tag.moved',
          key: `tag\u0000${ref}\u0000${digest}`,
          subject: ref,
          repository: t.repository,
          owner: null,
          data: { repository: t.repository, tag: t.tag, from: last!.digest, to: digest },
          text: `${ref} moved from ${last!.digest.slice(0, 19)}… to ${digest.slice(0, 19)}…`,
        });
      }
      if (moved && t.catalog && !known.has(digest)) {
        tagEvents.push({
          type: 'dev.plinth.base.new-version',
          key: `base-version\u0000${ref}\u0000${digest}`,
          subject: ref,
          repository: t.repository,
          owner: null,
          data: { repository: t.repository, tag: t.tag, from: last!.digest, to: digest, review: `plinth golden gate ${t.repository}@${digest}` },
          text: `base ${ref} has a new version ${digest.slice(0, 19)}… that the catalog does not know yet (review and approve it)`,
        });
      }
      const d = digest;
      await store.sql.transaction(async (tx) => {
        await recordTag(tx, t.repository, t.tag, d, at, 'watch');
        if (!seen || seen.digest !== d) await setState(tx, stateKey, { digest: d });
        if (tagEvents.length) report.events += await addEvents(tx, tagEvents, at);
      });
      if (!last || moved) report.moved.push({ repository: t.repository, tag: t.tag, from: last?.digest ?? null, to: digest });
    }
  } finally {
    for (const c of clients.values()) c.close();
  }
}

/** Newer approved versions of an entry's line (same platform), and the newest. */
function behindBy(catalog: Catalog, b: CatalogEntry): { versions: number; newest: CatalogEntry | undefined } {
  const line = lineOf(b);
  const newer = catalog.bases.filter((x) => x !== b && lineOf(x) === line && x.status === 'approved' && (!b.platform || !x.platform || x.platform === b.platform) && compareAge(catalog, x, b) > 0);
  return { versions: newer.length, newest: newestApproved(catalog, line, b.platform) };
}

export async function drift(store: MetaStore, catalog: Catalog, o: DriftOptions): Promise<DriftReport> {
  const at = o.at ?? new Date().toISOString();
  const report: DriftReport = { tags: 0, moved: [], unresolved: 0, behind: 0, updatedImages: 0, events: 0 };

  // 1. Tags: the catalog's lines and the watched ones.
  const tags = new Map<string, { repository: string; tag: string; watched: boolean; catalog: boolean }>();
  for (const b of catalog.bases) if (b.tag) tags.set(`${b.name}:${b.tag}`, { repository: b.name, tag: b.tag, watched: false, catalog: true });
  for (const w of await watchedTags(store)) {
    const k = `${w.repository}:${w.tag}`;
    tags.set(k, { ...(tags.get(k) ?? { repository: w.repository, tag: w.tag, catalog: false }), watched: true });
  }
  await resolveTags(store, [...tags.values()], catalog, o, at, report);
  const events: WatchEvent[] = [];

  // 2. Images on catalogued bases: status, behind by N versions / since D.
  const byDigest = new Map(catalog.bases.map((b) => [b.digest, b]));
  const rows = await store.sql.all<{ uri: string; repository: string; digest: string; labels: string | null; base_digest: string; base_status: string | null; behind: number | null; behind_versions: number | null; behind_since: string | null; newest_base: string | null }>(
    'SELECT uri, repository, digest, labels, base_digest, base_status, behind, behind_versions, behind_since, newest_base FROM images WHERE base_digest IS NOT NULL',
  );
  const running = await notifiable(store, rows.map((r) => r.uri));
  const tagsOf = await currentTags(store);
  const updates: Array<[string | null, number, number, string | null, string | null, string]> = [];
  for (const r of rows) {
    const b = byDigest.get(r.base_digest);
    if (!b) continue;
    const { versions, newest } = behindBy(catalog, b);
    const status = b.status;
    const isBehind = status === 'deprecated' || status === 'superseded' || versions > 0;
    const since = status === 'deprecated' ? (b.deprecatedAt ?? b.supersededAt ?? null) : status === 'superseded' ? (b.supersededAt ?? null) : null;
    const newestRef = newest && newest.digest !== b.digest ? `${newest.name}${newest.tag ? `:${newest.tag}` : ''}@${newest.digest}` : null;
    if (isBehind) report.behind++;
    if (r.base_status !== status || (r.behind === 1) !== isBehind || r.behind_versions !== versions || r.behind_since !== since || r.newest_base !== newestRef) {
      updates.push([status, isBehind ? 1 : 0, versions, since, newestRef, r.uri]);
    }
    if ((status === 'superseded' || status === 'deprecated') && running.has(r.uri)) {
      let labels: Record<string, string> = {};
      try {
        labels = JSON.parse(r.labels ?? '{}') as Record<string, string>;
      } catch {
        /* none */
      }
      const tag = tagsOf.get(r.uri)?.[0];
      const ref = tag ? `${r.repository}:${tag}` : `${r.repository}@${r.digest}`;
      const successor = b.successor ?? newestRef;
      const days = since ? Math.max(0, Math.floor((Date.parse(at) - Date.parse(since)) / 86_400_000)) : null;
      const rebase = successor ? `plinth rebase ${ref} --new-base ${successor}${tag ? ' --in-place' : ` --tag ${r.repository}:rebased`}` : null;
      events.push({
        type: `dev.plinth.base.${status}`,
        key: `base\u0000${r.uri}\u0000${b.digest}\u0000${status}`,
        subject: r.uri,
        repository: r.repository,
        owner: ownerLabel(labels),
        data: { image: { uri: r.uri, reference: ref, repository: r.repository, digest: r.digest }, base: { name: b.name, tag: b.tag ?? null, digest: b.digest, status, since, reason: b.reason ?? null }, behind: { versions, days }, successor, rebase },
        text: `${ref} is built on ${b.name}${b.tag ? `:${b.tag}` : ''}@${b.digest.slice(0, 19)}…, ${status}${since ? ` since ${since.slice(0, 10)}` : ''}${versions ? `, ${versions} version(s) behind` : ''}${b.reason ? ` (${b.reason})` : ''}${rebase ? `. Rebase: ${rebase}` : ''}`,
      });
    }
  }
  if (updates.length || events.length) {
    await store.sql.transaction(async (tx) => {
      for (const u of updates) await tx.run('UPDATE images SET base_status = ?, behind = ?, behind_versions = ?, behind_since = ?, newest_base = ? WHERE uri = ?', u);
      if (events.length) report.events += await addEvents(tx, events, at);
    });
  }
  report.updatedImages = updates.length;
  return report;
}

/** Tags that currently point at each image (by its digest or its index's). */
async function currentTags(store: MetaStore): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const rows = await store.sql.all<{ uri: string; tag: string }>(
    `SELECT i.uri AS uri, t.tag AS tag FROM images i JOIN tag_history t ON t.repository = i.repository AND (t.digest = i.digest OR t.digest = i.index_digest)
     WHERE t.id = (SELECT t2.id FROM tag_history t2 WHERE t2.repository = t.repository AND t2.tag = t.tag ORDER BY t2.first_seen DESC, t2.id DESC LIMIT 1)`,
  );
  for (const r of rows) out.set(r.uri, [...(out.get(r.uri) ?? []), r.tag].sort());
  return out;
}

