import { PlinthError } from '../util/errors.js';
import type { Sql } from './sql.js';

/**
 * The store's schema, in versioned migrations applied in order on open. One schema for SQLite and
 * PostgreSQL: `{{id}}` is the only dialect-specific piece (an auto-numbered primary key).
 *
 * The model is Grafeas's: notes (an advisory, a base image version, a signer, a policy…) and
 * occurrences of them on a resource URI `REGISTRY/REPO@sha256:…`, with the kinds IMAGE, PACKAGE,
 * VULNERABILITY, BUILD, ATTESTATION, DEPLOYMENT, DISCOVERY. Beside it, what Grafeas lacks and the
 * queries need: `images` (one summary row per resource, written in the same transaction as its
 * occurrences, so a record is never partial), `tag_history` (every tag → digest with when it was
 * first and last seen), and `decisions` (the append-only audit log of check and admission).
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'grafeas model, images, tag history, decisions',
    sql: `
CREATE TABLE notes (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  short_description TEXT,
  data TEXT NOT NULL,
  create_time TEXT NOT NULL,
  update_time TEXT NOT NULL
);
CREATE INDEX notes_kind ON notes (kind);

CREATE TABLE occurrences (
  id TEXT PRIMARY KEY,
  resource_uri TEXT NOT NULL,
  note_name TEXT NOT NULL,
  kind TEXT NOT NULL,
  -- the fact's key for queries: base digest (IMAGE), package name (PACKAGE), advisory id
  -- (VULNERABILITY), cluster/namespace/workload (DEPLOYMENT), signer (ATTESTATION)
  subject TEXT,
  severity TEXT,
  data TEXT NOT NULL,
  -- what Plinth knows beyond the Grafeas body (layer, origin, cluster…); never in the API's Grafeas form
  extra TEXT,
  create_time TEXT NOT NULL,
  update_time TEXT NOT NULL,
  -- a finding no longer reported by the latest scan, a deployment no longer seen
  resolve_time TEXT
);
CREATE INDEX occurrences_resource ON occurrences (resource_uri, kind);
CREATE INDEX occurrences_note ON occurrences (note_name);
CREATE INDEX occurrences_kind_subject ON occurrences (kind, subject);
CREATE INDEX occurrences_kind_created ON occurrences (kind, create_time);

CREATE TABLE images (
  uri TEXT PRIMARY KEY,
  registry TEXT,
  repository TEXT NOT NULL,
  digest TEXT NOT NULL,
  media_type TEXT,
  platform TEXT,
  index_digest TEXT,
  os TEXT,
  created TEXT,
  size BIGINT,
  labels TEXT,
  base_name TEXT,
  base_tag TEXT,
  base_digest TEXT,
  base_confidence TEXT,
  base_status TEXT,
  base_line TEXT,
  newest_base TEXT,
  behind INTEGER,
  packages INTEGER,
  vulns TEXT,
  scanned_at TEXT,
  advisory_db TEXT,
  analysed_at TEXT,
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL
);
CREATE INDEX images_digest ON images (digest);
CREATE INDEX images_base ON images (base_digest);
CREATE INDEX images_repository ON images (repository);

CREATE TABLE tag_history (
  id {{id}},
  repository TEXT NOT NULL,
  tag TEXT NOT NULL,
  digest TEXT NOT NULL,
  first_seen TEXT NOT NULL,
  last_seen TEXT NOT NULL,
  source TEXT
);
CREATE INDEX tag_history_tag ON tag_history (repository, tag, first_seen);
CREATE INDEX tag_history_digest ON tag_history (digest);

CREATE TABLE decisions (
  id {{id}},
  time TEXT NOT NULL,
  source TEXT NOT NULL,
  image TEXT NOT NULL,
  digest TEXT,
  resource_uri TEXT,
  allowed INTEGER NOT NULL,
  mode TEXT,
  policy TEXT,
  policy_version TEXT,
  cluster TEXT,
  namespace TEXT,
  workload TEXT,
  messages TEXT NOT NULL,
  details TEXT,
  -- the webhook folds identical decisions of one batch (same image, workload, verdict, messages)
  -- into one row: how many, and the time of the last
  count INTEGER NOT NULL DEFAULT 1,
  last_time TEXT
);
CREATE INDEX decisions_time ON decisions (time);
CREATE INDEX decisions_digest ON decisions (digest);
CREATE INDEX decisions_image ON decisions (image);
`,
  },
  {
    version: 2,
    name: 'day 2: ecosystems, behind-by, watched tags, events and deliveries, worker state',
    sql: `
-- the advisory ecosystem key of the image's OS (Debian:12), so stored inventories can be re-matched
ALTER TABLE images ADD COLUMN ecosystem TEXT;
-- how many newer approved versions of its base's line exist, and since when its base is superseded or deprecated
ALTER TABLE images ADD COLUMN behind_versions INTEGER;
ALTER TABLE images ADD COLUMN behind_since TEXT;
-- the source package of a VULNERABILITY occurrence: an incremental re-match reads and replaces one source's findings
ALTER TABLE occurrences ADD COLUMN source_package TEXT;
UPDATE occurrences SET source_package = {{json_source}} WHERE kind = 'VULNERABILITY';
CREATE INDEX occurrences_source ON occurrences (source_package, resource_uri);
-- a hash of what a finding was made from: a re-match compares it instead of reading data and extra
ALTER TABLE occurrences ADD COLUMN fingerprint TEXT;
-- VULNERABILITY: "ORIGIN|FIXABLE" (base|image|none, 1|0), so an image's summary is an aggregate without JSON
ALTER TABLE occurrences ADD COLUMN facet TEXT;
UPDATE occurrences SET facet = {{json_facet}} WHERE kind = 'VULNERABILITY';
-- stored inventories by (ecosystem, source package): what a changed advisory can affect, and the
-- packages to re-match, without reading every PACKAGE occurrence
CREATE TABLE package_index (
  ecosystem TEXT NOT NULL,
  source TEXT NOT NULL,
  resource_uri TEXT NOT NULL,
  packages TEXT NOT NULL,
  -- the fingerprint of the findings last recorded for these packages (a re-match skips equal ones)
  findings TEXT,
  PRIMARY KEY (ecosystem, source, resource_uri)
);
CREATE INDEX package_index_uri ON package_index (resource_uri);
-- the worker's watermarks (advisory change log position, last runs)
CREATE TABLE watch_state (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated TEXT NOT NULL
);
-- tags resolved on every watch run besides the catalog's
CREATE TABLE watched_tags (
  repository TEXT NOT NULL,
  tag TEXT NOT NULL,
  added TEXT NOT NULL,
  PRIMARY KEY (repository, tag)
);
-- the outbox: one row per fact (its key makes it once, across runs and replicas)
CREATE TABLE events (
  key TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  repository TEXT,
  owner TEXT,
  data TEXT NOT NULL,
  text TEXT NOT NULL,
  created TEXT NOT NULL
);
CREATE INDEX events_created ON events (created);
-- what was delivered where (targets hashed: webhook URLs are secrets)
CREATE TABLE deliveries (
  event_key TEXT NOT NULL,
  target TEXT NOT NULL,
  delivered_at TEXT NOT NULL,
  PRIMARY KEY (event_key, target)
);
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
const MARK = 'plinth-store';

function dialectSql(sql: string, s: Sql): string {
  return sql
    .replaceAll('{{id}}', s.dialect === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY')
    .replaceAll('{{json_source}}', s.dialect === 'sqlite' ? "(CASE WHEN json_valid(extra) THEN json_extract(extra, '$.source') END)" : "(extra::json ->> 'source')")
    .replaceAll(
      '{{json_facet}}',
      s.dialect === 'sqlite'
        ? "(CASE WHEN json_valid(extra) THEN coalesce(json_extract(extra, '$.origin'), 'none') || '|' || (CASE WHEN json_extract(extra, '$.fixedVersion') IS NULL THEN '0' ELSE '1' END) ELSE 'none|0' END)"
        : "coalesce(extra::json ->> 'origin', 'none') || '|' || (CASE WHEN (extra::json ->> 'fixedVersion') IS NULL THEN '0' ELSE '1' END)",
    );
}

/** Existing tables, to tell an empty database from someone else's. */
async function tables(s: Sql): Promise<string[]> {
  const rows = s.dialect === 'sqlite'
    ? await s.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    : await s.all<{ name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()");
  return rows.map((r) => r.name);
}

/**
 * Bring the database to SCHEMA_VERSION: create it when empty, apply the missing migrations of an
 * older store (each in its own transaction), refuse a newer one and a database that is not a
 * Plinth store. On PostgreSQL an advisory lock makes replicas that start together migrate once.
 */
export async function migrate(s: Sql, o: { readonly?: boolean } = {}): Promise<{ from: number; to: number }> {
  const existing = await tables(s);
  const isStore = existing.includes('store_meta') && existing.includes('schema_migrations');
  if (!isStore && existing.length > 0) {
    throw new PlinthError('STORE', `${s.location} holds other tables (${existing.slice(0, 5).join(', ')}${existing.length > 5 ? '…' : ''}) and is not a Plinth store; refusing to use it`);
  }
  if (isStore) {
    const mark = await s.get<{ value: string }>("SELECT value FROM store_meta WHERE key = 'kind'");
    if (mark?.value !== MARK) throw new PlinthError('STORE', `${s.location} is not a Plinth store (store_meta kind is ${JSON.stringify(mark?.value ?? null)})`);
  }
  const current = async () => Number((await s.get<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations'))?.v ?? 0);
  if (!isStore) {
    if (o.readonly) throw new PlinthError('STORE', `${s.location} is not a Plinth store yet (nothing has been recorded in it)`);
    await s.transaction(async (tx) => {
      if (s.dialect === 'postgres') await tx.run('SELECT pg_advisory_xact_lock(7431201)');
      await tx.run('CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
      await tx.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
      await tx.run('INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', ['kind', MARK]);
      await tx.run('INSERT INTO store_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING', ['created', new Date().toISOString()]);
    });
  }
  const from = await current();
  if (from > SCHEMA_VERSION) {
    throw new PlinthError('STORE', `${s.location} has store schema version ${from}, written by a newer Plinth; this Plinth knows versions up to ${SCHEMA_VERSION}: upgrade Plinth (the store was left untouched)`);
  }
  if (from === SCHEMA_VERSION) return { from, to: from };
  if (o.readonly) throw new PlinthError('STORE', `${s.location} has store schema version ${from} and needs migrating to ${SCHEMA_VERSION}; run a command that writes to it first`);
  for (const m of MIGRATIONS) {
    await s.transaction(async (tx) => {
      if (s.dialect === 'postgres') await tx.run('SELECT pg_advisory_xact_lock(7431201)');
      // Another replica may have applied it while this one waited for the lock.
      const done = await tx.get('SELECT version FROM schema_migrations WHERE version = ?', [m.version]);
      if (done) return;
      for (const stmt of splitStatements(dialectSql(m.sql, s))) await tx.run(stmt);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, new Date().toISOString()]);
    });
  }
  return { from, to: SCHEMA_VERSION };
}

/** A migration script as single statements (no semicolons inside the store's statements; `--` comments dropped). */
function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((l) => !l.trim().startsWith('--'))
    .join('\n')
    .split(';')
    .map((x) => x.trim())
    .filter(Boolean);
}
