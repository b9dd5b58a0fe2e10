/**
 * The offline advisory store: one SQLite file (node:sqlite, WAL).
 *
 *   advisories  one row per (id, ecosystem key): aliases, summary, details, severity list,
 *               published / modified / withdrawn, where it came from
 *   affected    one row per interval (introduced / fixed / last_affected / limit), explicit
 *               version list or marker, per (ecosystem, package, advisory). WITHOUT ROWID with
 *               the primary key (ecosystem, package, advisory, seq): a lookup by ecosystem and
 *               package name is one index seek that reads the rows it needs and nothing else.
 *   sources     what was imported from where, with counts and timestamps (and the HTTP
 *               validators of mirror downloads)
 *   meta        schema version, creation time
 *
 * Replacement rules: an OSV record replaces what the store has for the same (id, ecosystem)
 * unless the stored copy has a newer `modified` (then it is skipped). Alpine secdb entries carry
 * no timestamps and one branch is split over several files (main, community), so they replace
 * per (id, ecosystem, package) instead. Withdrawn records are stored (status counts them) and
 * never matched.
 *
 * Nothing here reads a whole table into memory: lookups are index seeks and the counts in
 * status() are aggregate queries.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PlinthError } from '../util/errors.js';
import { openSqlite, pragma, rawStatement, transactionSync, type DatabaseSync, type StatementSync } from '../util/sqlite.js';
import type { SQLInputValue } from 'node:sqlite';
import type { AffectedRow, StoredAdvisory } from './osv.js';

export const SCHEMA_VERSION = 1;
/** Rows of the change log kept (see VulnStore.pruneChangeLog). */
export const CHANGE_LOG_KEEP = 500_000;
/** PRAGMA application_id of a Plinth vulnerability database ("PlnV"). */
export const APPLICATION_ID = 0x506c6e56;

const SCHEMA = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE sources (
  name          TEXT PRIMARY KEY,
  kind          TEXT NOT NULL,
  imported_at   TEXT NOT NULL,
  files         INTEGER NOT NULL DEFAULT 0,
  records       INTEGER NOT NULL DEFAULT 0,
  skipped       INTEGER NOT NULL DEFAULT 0,
  errors        INTEGER NOT NULL DEFAULT 0,
  etag          TEXT,
  last_modified TEXT
);
CREATE TABLE advisories (
  pk            INTEGER PRIMARY KEY,
  id            TEXT NOT NULL,
  ecosystem     TEXT NOT NULL,
  origin        TEXT NOT NULL,
  modified      TEXT,
  published     TEXT,
  withdrawn     TEXT,
  aliases       TEXT NOT NULL DEFAULT '[]',
  related       TEXT NOT NULL DEFAULT '[]',
  summary       TEXT,
  details       TEXT,
  severity      TEXT NOT NULL DEFAULT '[]',
  text_severity TEXT,
  source        TEXT,
  UNIQUE (ecosystem, id)
);
CREATE TABLE affected (
  ecosystem     TEXT NOT NULL,
  package       TEXT NOT NULL,
  advisory      INTEGER NOT NULL,
  seq           INTEGER NOT NULL,
  kind          TEXT NOT NULL,
  introduced    TEXT,
  fixed         TEXT,
  last_affected TEXT,
  lim           TEXT,
  data          TEXT,
  urgency       TEXT,
  withdrawn     INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (ecosystem, package, advisory, seq)
) WITHOUT ROWID;
CREATE INDEX affected_by_advisory ON affected (advisory);
`;

/**
 * The change log the day-2 worker reads (plinth watch): one row per advisory written, and for an
 * advisory replaced, one row per (ecosystem, package) it named before (a package it no longer
 * names must be re-matched too). Additive to schema version 1: created on every writable open,
 * ignored by older Plinths; a database without it (read-only, older) makes the watcher fall back
 * to a full re-match.
 */
const CHANGES = `
CREATE TABLE IF NOT EXISTS changes (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  advisory  INTEGER NOT NULL,
  ecosystem TEXT,
  package   TEXT
)`;

/** What changed since a point of the change log: the (ecosystem, package) pairs to re-match. */
export interface AdvisoryChanges {
  /** The log's last sequence number (the next watermark). */
  seq: number;
  /** Advisories written since (new, modified, withdrawn). */
  advisories: number;
  /** Distinct (ecosystem key, package) pairs they name now or named before. */
  packages: Array<{ ecosystem: string; package: string }>;
}

export interface StoreOptions {
  /** Open read-only; the file must exist. */
  readonly?: boolean;
}

/** `$PLINTH_DB`, else `$XDG_CACHE_HOME/plinth/vuln.db`, else `~/.cache/plinth/vuln.db`. */
import { defaultDbPath } from '../util/paths.js';
export { defaultDbPath };

export interface SourceInfo {
  name: string;
  kind: string;
  importedAt: string;
  files: number;
  records: number;
  skipped: number;
  errors: number;
  etag?: string;
  lastModified?: string;
}

/** A candidate row for matching, as read by lookup(). */
export interface CandidateRow {
  advisory: number;
  kind: AffectedRow['kind'];
  introduced: string | null;
  fixed: string | null;
  lastAffected: string | null;
  limit: string | null;
  versions: string[] | null;
  urgency: string | null;
}

export interface AdvisoryDetail {
  pk: number;
  id: string;
  ecosystem: string;
  origin: string;
  aliases: string[];
  summary: string | null;
  /** The first 300 characters of details (for a title when there is no summary). */
  detailsHead: string | null;
  severity: Array<{ type: string; score: string }>;
  textSeverity: string | null;
  published: string | null;
  modified: string | null;
}

function sqliteMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function newer(a: string | null, b: string | null): boolean {
  if (!a || !b) return false;
  const ta = Date.parse(a);
  const tb = Date.parse(b);
  if (Number.isNaN(ta) || Number.isNaN(tb)) return a > b;
  return ta > tb;
}

type Row = Record<string, unknown>;

export class VulnStore {
  readonly path: string;
  readonly readonly: boolean;
  /** The connection (for tools and benchmarks; use the methods for anything that writes). */
  readonly db: DatabaseSync;
  private stmts: ReturnType<VulnStore['prepare']> | undefined;
  private txDepth = 0;

  /** Use openStore(). */
  constructor(path: string, db: DatabaseSync, readonly: boolean) {
    this.path = path;
    this.db = db;
    this.readonly = readonly;
  }

  private prepare() {
    const db = this.db;
    return {
      lookup: rawStatement(db, 'SELECT advisory, kind, introduced, fixed, last_affected, lim, data, urgency FROM affected WHERE ecosystem = ? AND package = ? AND withdrawn = 0'),
      detail: rawStatement(db, `SELECT ${DETAIL_COLUMNS} FROM advisories WHERE pk = ?`),
      details: rawStatement(db, `SELECT ${DETAIL_COLUMNS} FROM advisories WHERE pk IN (SELECT value FROM json_each(?))`),
      stamps: rawStatement(db, `SELECT pk, ${STAMP_EXPR} FROM advisories WHERE pk IN (SELECT value FROM json_each(?))`),
      ...(this.readonly
        ? undefined
        : {
            find: db.prepare('SELECT pk, origin, modified, aliases FROM advisories WHERE id = ? AND ecosystem = ?'),
            insertAdv: db.prepare(
              `INSERT INTO advisories (id, ecosystem, origin, modified, published, withdrawn, aliases, related, summary, details, severity, text_severity, source)
               VALUES (@id, @ecosystem, @origin, @modified, @published, @withdrawn, @aliases, @related, @summary, @details, @severity, @text_severity, @source)`,
            ),
            updateAdv: db.prepare(
              `UPDATE advisories SET origin = @origin, modified = @modified, published = @published, withdrawn = @withdrawn, aliases = @aliases,
               related = @related, summary = @summary, details = @details, severity = @severity, text_severity = @text_severity, source = @source
               WHERE pk = @pk AND id = @id AND ecosystem = @ecosystem`,
            ),
            setAliases: db.prepare('UPDATE advisories SET aliases = ? WHERE pk = ?'),
            deleteRows: db.prepare('DELETE FROM affected WHERE advisory = ?'),
            deletePkgRows: db.prepare('DELETE FROM affected WHERE advisory = ? AND ecosystem = ? AND package = ?'),
            insertRow: db.prepare(
              `INSERT INTO affected (ecosystem, package, advisory, seq, kind, introduced, fixed, last_affected, lim, data, urgency, withdrawn)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            ),
            putSource: db.prepare(
              `INSERT INTO sources (name, kind, imported_at, files, records, skipped, errors, etag, last_modified)
               VALUES (@name, @kind, @importedAt, @files, @records, @skipped, @errors, @etag, @lastModified)
               ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, imported_at = excluded.imported_at, files = excluded.files,
               records = excluded.records, skipped = excluded.skipped, errors = excluded.errors, etag = excluded.etag, last_modified = excluded.last_modified`,
            ),
            setMeta: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
            logNew: db.prepare('INSERT INTO changes (advisory) VALUES (?)'),
            logOld: db.prepare('INSERT INTO changes (advisory, ecosystem, package) SELECT DISTINCT advisory, ecosystem, package FROM affected WHERE advisory = ?'),
            logOldPkg: db.prepare('INSERT INTO changes (advisory, ecosystem, package) VALUES (?, ?, ?)'),
          }),
    };
  }

  private get s() {
    this.stmts ??= this.prepare();
    return this.stmts;
  }

  private writable() {
    if (this.readonly) throw new PlinthError('USAGE', `the vulnerability database ${this.path} is open read-only`);
    return this.s as Required<ReturnType<VulnStore['prepare']>>;
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  meta(key: string): string | undefined {
    const r = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value;
  }

  setMeta(key: string, value: string): void {
    this.writable().setMeta.run(key, value);
  }

  get schemaVersion(): number {
    return Number(this.meta('schema_version') ?? 0);
  }

  // ---- transactions --------------------------------------------------------------------------

  /**
   * Run `fn` in a transaction (a savepoint when one is already open). `fn` may be async: the
   * transaction stays open across awaits, so nothing else may use this store meanwhile.
   * Rolled back if `fn` throws.
   */
  async transaction<T>(fn: () => T | Promise<T>): Promise<T> {
    this.writable();
    const name = `sp${this.txDepth}`;
    const outer = this.txDepth === 0;
    this.db.exec(outer ? 'BEGIN IMMEDIATE' : `SAVEPOINT ${name}`);
    this.txDepth++;
    try {
      const r = await fn();
      this.txDepth--;
      this.db.exec(outer ? 'COMMIT' : `RELEASE ${name}`);
      return r;
    } catch (e) {
      this.txDepth--;
      if (this.db.isTransaction) {
        if (outer) this.db.exec('ROLLBACK');
        else this.db.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
      }
      throw e;
    }
  }

  /** Synchronous variant of transaction() for callers that are synchronous. */
  transactionSync<T>(fn: () => T): T {
    this.writable();
    return transactionSync(this.db, fn);
  }

  // ---- writing -------------------------------------------------------------------------------

  /**
   * Store the advisories of one record (one per ecosystem key). Returns 'written' when at least
   * one was stored, 'skipped' when the store already had newer copies of all of them.
   */
  putAdvisories(advisories: readonly StoredAdvisory[], source: string | null = null): 'written' | 'skipped' {
    const s = this.writable();
    let wrote = false;
    for (const adv of advisories) {
      const existing = s.find.get(adv.id, adv.ecosystem) as { pk: number; origin: string; modified: string | null; aliases: string } | undefined;
      const withdrawn = adv.withdrawn ? 1 : 0;
      let pk: number;
      if (adv.origin === 'alpine-secdb') {
        if (existing) {
          pk = existing.pk;
          if (adv.aliases.length) {
            const aliases = new Set<string>(JSON.parse(existing.aliases) as string[]);
            const before = aliases.size;
            for (const a of adv.aliases) aliases.add(a);
            if (aliases.size !== before) s.setAliases.run(JSON.stringify([...aliases]), pk);
          }
        } else {
          pk = Number(s.insertAdv.run(this.advParams(adv, source)).lastInsertRowid);
        }
        const seen = new Set<string>();
        for (const r of adv.rows) if (!seen.has(r.package)) (seen.add(r.package), s.deletePkgRows.run(pk, adv.ecosystem, r.package));
        s.logNew.run(pk);
      } else {
        if (existing && existing.origin === 'osv' && newer(existing.modified, adv.modified)) continue;
        if (existing) {
          pk = existing.pk;
          s.logOld.run(pk);
          s.deleteRows.run(pk);
          s.updateAdv.run({ ...this.advParams(adv, source), pk });
        } else {
          pk = Number(s.insertAdv.run(this.advParams(adv, source)).lastInsertRowid);
        }
        s.logNew.run(pk);
      }
      const seq = new Map<string, number>();
      for (const r of adv.rows) {
        const n = seq.get(r.package) ?? 0;
        seq.set(r.package, n + 1);
        const data = r.kind === 'versions' ? JSON.stringify(r.versions ?? []) : r.kind === 'raw' ? JSON.stringify(r.data ?? null) : null;
        s.insertRow.run(adv.ecosystem, r.package, pk, n, r.kind, r.introduced ?? null, r.fixed ?? null, r.lastAffected ?? null, r.limit ?? null, data, r.urgency ?? null, withdrawn);
      }
      wrote = true;
    }
    return wrote ? 'written' : 'skipped';
  }

  private advParams(adv: StoredAdvisory, source: string | null): Record<string, SQLInputValue> {
    return {
      id: adv.id,
      ecosystem: adv.ecosystem,
      origin: adv.origin,
      modified: adv.modified,
      published: adv.published,
      withdrawn: adv.withdrawn,
      aliases: JSON.stringify(adv.aliases),
      related: JSON.stringify(adv.related),
      summary: adv.summary,
      details: adv.details,
      severity: JSON.stringify(adv.severity),
      text_severity: adv.textSeverity,
      source,
    };
  }

  recordSource(info: SourceInfo): void {
    const s = this.writable();
    s.putSource.run({ etag: null, lastModified: null, ...info });
    s.setMeta.run('last_import', info.importedAt);
    this.pruneChangeLog();
  }

  /**
   * Keep the newest `keep` rows of the change log (CHANGE_LOG_KEEP): a watcher further behind
   * would re-match everything anyway (it is past its incremental limit), and a mirror refreshed
   * for months must not grow without bound. What was dropped is recorded (`changes_floor`): a
   * watcher whose last run is below it re-matches in full. Returns the rows dropped.
   */
  pruneChangeLog(keep = CHANGE_LOG_KEEP): number {
    if (this.readonly || !this.hasChangeLog()) return 0;
    const floor = this.changeSeq() - keep;
    if (floor <= this.changeLogFloor()) return 0;
    const prune = () => {
      const n = Number(this.db.prepare('DELETE FROM changes WHERE seq <= ?').run(floor).changes);
      this.setMeta('changes_floor', String(floor));
      return n;
    };
    return this.db.isTransaction ? prune() : this.transactionSync(prune);
  }

  /** The last sequence number the change log no longer holds (0: it holds everything). */
  changeLogFloor(): number {
    const n = Number(this.meta('changes_floor') ?? 0);
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  }

  source(name: string): SourceInfo | undefined {
    const r = this.db.prepare('SELECT * FROM sources WHERE name = ?').get(name) as Row | undefined;
    return r ? sourceFromRow(r) : undefined;
  }

  // ---- reading -------------------------------------------------------------------------------

  /** The non-withdrawn rows for one (ecosystem key, package name): one index seek. */
  lookup(ecosystem: string, pkg: string): CandidateRow[] {
    const rows = this.s.lookup.all(ecosystem, pkg) as unknown as unknown[][];
    return rows.map((r) => candidateRow(r, 0));
  }

  detail(pk: number): AdvisoryDetail | undefined {
    const r = this.s.detail.get(pk) as unknown[] | undefined;
    return r ? detailFromRow(r) : undefined;
  }

  /** Details of many advisories, fetched in batches (one statement per 1000). */
  details(pks: Iterable<number>): Map<number, AdvisoryDetail> {
    const out = new Map<number, AdvisoryDetail>();
    for (const r of this.byPks(this.s.details, pks)) {
      const d = detailFromRow(r);
      out.set(d.pk, d);
    }
    return out;
  }

  /** The rows `stmt` (… WHERE pk IN (SELECT value FROM json_each(?))) gives for `pks`, in batches of 1,000, by pk. */
  private *byPks(stmt: StatementSync, pks: Iterable<number>): Generator<unknown[]> {
    const all = [...pks].sort((a, b) => a - b);
    for (let i = 0; i < all.length; i += 1000) yield* stmt.all(JSON.stringify(all.slice(i, i + 1000))) as unknown as unknown[][];
  }

  /**
   * A stamp of each advisory's content as matching reads it (the fields details() reads, joined as
   * they are stored, nothing parsed): equal stamps, equal details. An advisory that is not there
   * has none.
   */
  detailStamps(pks: Iterable<number>): Map<number, string> {
    const out = new Map<number, string>();
    for (const r of this.byPks(this.s.stamps, pks)) out.set(r[0] as number, r[1] as string);
    return out;
  }

  /** Whether this database keeps the change log (see CHANGES). */
  hasChangeLog(): boolean {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'changes'").get() as { n: number }).n === 1;
  }

  /** The change log's last sequence number (0 when empty or absent). */
  changeSeq(): number {
    if (!this.hasChangeLog()) return 0;
    const max = Number((this.db.prepare('SELECT MAX(seq) AS s FROM changes').get() as { s: number | null }).s ?? 0);
    return Math.max(max, this.changeLogFloor());
  }

  /**
   * The (ecosystem, package) pairs to re-match after `since`: those the advisories written since
   * name now, and those they named before they were replaced. `limit` bounds the advisories read:
   * past it, null (a full re-match is cheaper than an incremental one).
   */
  changesSince(since: number, limit = 50_000): AdvisoryChanges | null {
    if (!this.hasChangeLog()) return null;
    const seq = this.changeSeq();
    const n = (this.db.prepare('SELECT COUNT(DISTINCT advisory) AS n FROM changes WHERE seq > ?').get(since) as { n: number }).n;
    if (n > limit) return null;
    const rows = this.db
      .prepare(
        `SELECT ecosystem, package FROM changes WHERE seq > ? AND package IS NOT NULL
         UNION SELECT a.ecosystem, a.package FROM affected a WHERE a.advisory IN (SELECT advisory FROM changes WHERE seq > ?)`,
      )
      .all(since, since) as Array<{ ecosystem: string; package: string }>;
    return { seq, advisories: n, packages: rows.map((r) => ({ ecosystem: r.ecosystem, package: r.package })) };
  }

  /** Counts per ecosystem key (aggregate queries; nothing is loaded row by row). */
  ecosystemCounts(): Array<{ ecosystem: string; advisories: number; withdrawn: number; packages: number; matchable: boolean }> {
    const adv = this.db
      .prepare('SELECT ecosystem, COUNT(*) AS n, COUNT(withdrawn) AS w FROM advisories GROUP BY ecosystem ORDER BY ecosystem')
      .all() as Array<{ ecosystem: string; n: number; w: number }>;
    const pk = this.db.prepare('SELECT COUNT(DISTINCT package) AS p, MAX(kind <> \'raw\') AS m FROM affected WHERE ecosystem = ?');
    return adv.map((a) => {
      const r = pk.get(a.ecosystem) as { p: number; m: number | null };
      return { ecosystem: a.ecosystem, advisories: a.n, withdrawn: a.w, packages: r.p, matchable: r.m === 1 };
    });
  }

  sources(): SourceInfo[] {
    return (this.db.prepare('SELECT * FROM sources ORDER BY name').all() as Row[]).map(sourceFromRow);
  }

  totals(): { advisories: number; affected: number } {
    const a = this.db.prepare('SELECT COUNT(*) AS n FROM advisories').get() as { n: number };
    const r = this.db.prepare('SELECT COUNT(*) AS n FROM affected').get() as { n: number };
    return { advisories: a.n, affected: r.n };
  }

  /** Bytes on disk: the database file plus its WAL. */
  sizeBytes(): number {
    let n = 0;
    for (const p of [this.path, `${this.path}-wal`]) {
      try {
        n += statSync(p).size;
      } catch {
        /* absent */
      }
    }
    return n;
  }
}

/** A candidate row from `advisory, kind, introduced, fixed, last_affected, lim, data, urgency` starting at column `o`. */
function candidateRow(r: unknown[], o = 0): CandidateRow {
  return {
    advisory: r[o] as number,
    kind: r[o + 1] as AffectedRow['kind'],
    introduced: r[o + 2] as string | null,
    fixed: r[o + 3] as string | null,
    lastAffected: r[o + 4] as string | null,
    limit: r[o + 5] as string | null,
    versions: r[o + 1] === 'versions' && r[o + 6] ? (JSON.parse(r[o + 6] as string) as string[]) : null,
    urgency: r[o + 7] as string | null,
  };
}

/** What matching reads of an advisory (detailFromRow), after its pk. */
const DETAIL_FIELDS = ['id', 'ecosystem', 'origin', 'aliases', 'summary', 'substr(details, 1, 300)', 'severity', 'text_severity', 'published', 'modified'];
const DETAIL_COLUMNS = ['pk', ...DETAIL_FIELDS].join(', ');
/** The same fields as one string (a NULL is char(2), unlike any stored text): detailStamps(). */
const STAMP_EXPR = DETAIL_FIELDS.map((c) => `ifnull(${c}, char(2))`).join(' || char(1) || ');

function detailFromRow(r: unknown[]): AdvisoryDetail {
  return {
    pk: r[0] as number,
    id: r[1] as string,
    ecosystem: r[2] as string,
    origin: r[3] as string,
    aliases: JSON.parse(r[4] as string) as string[],
    summary: (r[5] as string | null) ?? null,
    detailsHead: (r[6] as string | null) ?? null,
    severity: JSON.parse(r[7] as string) as Array<{ type: string; score: string }>,
    textSeverity: (r[8] as string | null) ?? null,
    published: (r[9] as string | null) ?? null,
    modified: (r[10] as string | null) ?? null,
  };
}

function sourceFromRow(r: Row): SourceInfo {
  return {
    name: r.name as string,
    kind: r.kind as string,
    importedAt: r.imported_at as string,
    files: r.files as number,
    records: r.records as number,
    skipped: r.skipped as number,
    errors: r.errors as number,
    ...(r.etag ? { etag: r.etag as string } : {}),
    ...(r.last_modified ? { lastModified: r.last_modified as string } : {}),
  };
}

/**
 * Check that an open connection holds a Plinth vulnerability database of this schema version;
 * create the schema in an empty, writable one. Throws PlinthError naming the file.
 */
export function checkSchema(db: DatabaseSync, path: string, create: boolean): void {
  const tables = (db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
  if (tables === 0) {
    if (!create) throw new PlinthError('IO', `${path} is an empty database, not a Plinth vulnerability database`);
    transactionSync(db, () => {
      db.exec(SCHEMA);
      db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
      db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
      const now = new Date().toISOString();
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema_version', String(SCHEMA_VERSION));
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('created', now);
    });
    return;
  }
  const appId = pragma(db, 'application_id') as number;
  const hasMeta = (db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() as { n: number }).n === 1;
  if (appId !== APPLICATION_ID || !hasMeta) {
    throw new PlinthError('IO', `${path} is a SQLite database but not a Plinth vulnerability database`);
  }
  const v = Number((db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined)?.value ?? NaN);
  if (v !== SCHEMA_VERSION) {
    const hint = v > SCHEMA_VERSION ? 'it was written by a newer Plinth; upgrade Plinth' : 'rebuild it (import the advisories again, or pull a current database)';
    throw new PlinthError('UNSUPPORTED', `${path} has vulnerability database schema version ${Number.isNaN(v) ? 'unknown' : v}, this Plinth uses version ${SCHEMA_VERSION}: ${hint}`);
  }
}

/**
 * Open (creating when needed, unless readonly) the advisory store at `path`, default
 * defaultDbPath(). Throws PlinthError (IO, UNSUPPORTED) with the path in the message.
 */
export function openStore(path: string = defaultDbPath(), opts: StoreOptions = {}): VulnStore {
  const file = resolve(path);
  const readonly = opts.readonly === true;
  if (readonly && !existsSync(file)) {
    throw new PlinthError('IO', `no vulnerability database at ${file} (import advisories, update from a mirror or pull one first)`);
  }
  let db: DatabaseSync;
  try {
    if (!readonly) mkdirSync(dirname(file), { recursive: true });
    db = openSqlite(file, { readonly });
  } catch (e) {
    throw new PlinthError('IO', `cannot open vulnerability database ${file}: ${sqliteMessage(e)}`, undefined, { cause: e });
  }
  try {
    if (!readonly) {
      pragma(db, 'journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
    }
    db.exec('PRAGMA cache_size = -32768');
    pragma(db, 'mmap_size = 268435456');
    checkSchema(db, file, !readonly);
    if (!readonly) db.exec(CHANGES);
  } catch (e) {
    db.close();
    if (e instanceof PlinthError) throw e;
    const msg = sqliteMessage(e);
    if (/not a database|malformed|file is encrypted/i.test(msg)) {
      throw new PlinthError('IO', `${file} is not a Plinth vulnerability database (${msg})`, undefined, { cause: e });
    }
    throw new PlinthError('IO', `cannot open vulnerability database ${file}: ${msg}`, undefined, { cause: e });
  }
  return new VulnStore(file, db, readonly);
}
