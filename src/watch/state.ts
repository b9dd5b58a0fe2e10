import { createHash } from 'node:crypto';
import { json, type MetaStore } from '../store/store.js';
import type { Tx } from '../store/sql.js';

/**
 * The worker's rows in the store: watermarks (watch_state), watched tags, and the outbox of facts
 * to tell (events) with what was delivered where (deliveries). Facts are keyed: inserting the
 * same fact twice — a re-run, a retried job, two replicas — keeps one row, so each is told once.
 */

export interface WatchEvent {
  /** CloudEvents type: dev.plinth.finding.new, dev.plinth.base.superseded, dev.plinth.tag.moved… */
  type: string;
  /** The fact's identity (type + digest + what). */
  key: string;
  /** The image's resource URI (REPOSITORY@sha256:…), or REPOSITORY:TAG for a tag. */
  subject: string;
  repository: string | null;
  /** The owner named by the image's labels (authors/maintainer), if any. */
  owner: string | null;
  data: Record<string, unknown>;
  text: string;
}

export interface StoredEvent extends WatchEvent {
  created: string;
}

export async function getState<T>(store: MetaStore | Tx, key: string): Promise<T | undefined> {
  const sql = 'sql' in store ? store.sql : store;
  const r = await sql.get<{ value: string }>('SELECT value FROM watch_state WHERE key = ?', [key]);
  if (!r) return undefined;
  try {
    return JSON.parse(r.value) as T;
  } catch {
    return undefined;
  }
}

export async function setState(store: MetaStore | Tx, key: string, value: unknown): Promise<void> {
  const sql = 'sql' in store ? store.sql : store;
  await sql.run('INSERT INTO watch_state (key, value, updated) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated = excluded.updated', [key, json(value), new Date().toISOString()]);
}

/** Add facts to the outbox; returns how many were new (a fact already there is not added again). */
export async function addEvents(tx: Tx, events: WatchEvent[], at: string): Promise<number> {
  let n = 0;
  for (const e of events) {
    n += await tx.run('INSERT INTO events (key, type, subject, repository, owner, data, text, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING', [eventKey(e.key), e.type, e.subject, e.repository, e.owner, json(e.data), e.text, at]);
  }
  return n;
}

/**
 * Drop the facts created before `before` and what was delivered of them: the outbox's retention
 * (plinth watch --event-retention). A fact dropped is no longer remembered as told: the same fact
 * recorded again later is told again. In transactions of 5,000 facts. Returns the facts dropped.
 */
export async function pruneEvents(store: MetaStore, before: string): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await store.sql.transaction(async (tx) => {
      const keys = (await tx.all<{ key: string }>('SELECT key FROM events WHERE created < ? ORDER BY created LIMIT 5000', [before])).map((r) => r.key);
      for (let i = 0; i < keys.length; i += 500) {
        const chunk = keys.slice(i, i + 500);
        const marks = chunk.map(() => '?').join(', ');
        await tx.run(`DELETE FROM deliveries WHERE event_key IN (${marks})`, chunk);
        await tx.run(`DELETE FROM events WHERE key IN (${marks})`, chunk);
      }
      return keys.length;
    });
    total += n;
    if (n < 5000) return total;
  }
}

/** Fact keys are long (URIs, ids): the row key is their hash. */
export function eventKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export function targetKey(target: string): string {
  return createHash('sha256').update(target).digest('hex').slice(0, 32);
}

/** Events not yet settled for a target, oldest first: a page of `limit` after `after` (created, key). */
export async function undelivered(store: MetaStore, target: string, limit = 10_000, after?: { created: string; key: string }): Promise<StoredEvent[]> {
  const rows = await store.sql.all<{ key: string; type: string; subject: string; repository: string | null; owner: string | null; data: string; text: string; created: string }>(
    `SELECT key, type, subject, repository, owner, data, text, created FROM events e
     WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_key = e.key AND d.target = ?) ${after ? 'AND (created > ? OR (created = ? AND key > ?))' : ''}
     ORDER BY created, key LIMIT ?`,
    [targetKey(target), ...(after ? [after.created, after.created, after.key] : []), limit],
  );
  return rows.map((r) => ({ key: r.key, type: r.type, subject: r.subject, repository: r.repository, owner: r.owner, data: safeJson(r.data), text: r.text, created: r.created }));
}

function safeJson(s: string): Record<string, unknown> {
  try {
    const v = JSON.parse(s) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * Settle events for a target: delivered (its time), or `not routed` — the event goes elsewhere, so
 * this target never reads it again (the outbox is not re-read in full on every run).
 */
export async function markDelivered(store: MetaStore, keys: string[], target: string, at = new Date().toISOString(), o: { notRouted?: boolean } = {}): Promise<void> {
  if (!keys.length) return;
  const value = o.notRouted ? `not routed (${at})` : at;
  await store.sql.transaction(async (tx) => {
    for (let i = 0; i < keys.length; i += 200) {
      const chunk = keys.slice(i, i + 200);
      await tx.run(`INSERT INTO deliveries (event_key, target, delivered_at) VALUES ${chunk.map(() => '(?, ?, ?)').join(', ')} ON CONFLICT (event_key, target) DO NOTHING`, chunk.flatMap((k) => [k, targetKey(target), value]));
    }
  });
}

/** Tags resolved on every run besides the catalog's. */
export async function watchedTags(store: MetaStore): Promise<Array<{ repository: string; tag: string }>> {
  return store.sql.all<{ repository: string; tag: string }>('SELECT repository, tag FROM watched_tags ORDER BY repository, tag');
}

export async function addWatchedTags(store: MetaStore, tags: Array<{ repository: string; tag: string }>): Promise<void> {
  if (!tags.length) return;
  const at = new Date().toISOString();
  await store.sql.transaction(async (tx) => {
    for (const t of tags) await tx.run('INSERT INTO watched_tags (repository, tag, added) VALUES (?, ?, ?) ON CONFLICT (repository, tag) DO NOTHING', [t.repository, t.tag, at]);
  });
}

/**
 * Of these images, those worth telling about: running (an open DEPLOYMENT occurrence) or in a
 * watched repository.
 */
export async function notifiable(store: MetaStore, uris: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  const want = new Set(uris);
  if (uris.length > 2000) {
    for (const r of await store.sql.all<{ resource_uri: string }>("SELECT DISTINCT resource_uri FROM occurrences WHERE kind = 'DEPLOYMENT' AND resolve_time IS NULL")) {
      if (want.has(r.resource_uri)) out.add(r.resource_uri);
    }
  } else {
    for (let i = 0; i < uris.length; i += 400) {
      const chunk = uris.slice(i, i + 400);
      for (const r of await store.sql.all<{ resource_uri: string }>(`SELECT DISTINCT resource_uri FROM occurrences WHERE resource_uri IN (${chunk.map(() => '?').join(', ')}) AND kind = 'DEPLOYMENT' AND resolve_time IS NULL`, chunk)) out.add(r.resource_uri);
    }
  }
  const repos = new Set((await watchedTags(store)).map((t) => t.repository));
  if (repos.size) {
    for (const u of uris) {
      const at = u.lastIndexOf('@');
      if (at > 0 && repos.has(u.slice(0, at))) out.add(u);
    }
  }
  return out;
}
