import { existsSync, mkdirSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import path from 'node:path';
import { PlinthError, describeError } from '../util/errors.js';
import { openSqlite, type DatabaseSync } from '../util/sqlite.js';

/**
 * One small SQL interface over the two databases the store runs on: SQLite (node:sqlite, one
 * file, one writer) and PostgreSQL (`pg`, a pool, many replicas). The store's SQL is written once
 * in the subset both speak — `?` placeholders (numbered `$n` for PostgreSQL), `ON CONFLICT … DO
 * UPDATE`, `RETURNING`, TEXT timestamps in ISO-8601 UTC that sort as strings — and the few
 * dialect differences (identity columns, advisory locks) are named in `Dialect`.
 */
export type Row = Record<string, unknown>;
export type Param = string | number | bigint | null;

export interface Tx {
  all<T extends Row = Row>(sql: string, params?: readonly Param[]): Promise<T[]>;
  get<T extends Row = Row>(sql: string, params?: readonly Param[]): Promise<T | undefined>;
  run(sql: string, params?: readonly Param[]): Promise<number>;
}

export interface Sql extends Tx {
  readonly dialect: 'sqlite' | 'postgres';
  /** Where the data lives, without credentials (for messages). */
  readonly location: string;
  exec(script: string): Promise<void>;
  /** Run `fn` in one transaction: all of it is committed or none of it. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `postgres://…` or `postgresql://…` goes to PostgreSQL; anything else is an SQLite file path. */
export function isPostgresUrl(s: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(s);
}

/** A URL with its password removed, for messages and logs. */
export function redactUrl(s: string): string {
  try {
    const u = new URL(s);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return s.replace(/\/\/[^@/]*@/, '//***@');
  }
}

const SQLITE_MAGIC = 'SQLite format 3\u0000';

/**
 * PostgreSQL refuses NUL in text; SQLite takes it. Both get U+FFFD instead, so the same hostile
 * name (an apk package, a namespace) is stored the same way on both, and never fails a record.
 */
export function cleanParams(params: readonly Param[]): Param[] {
  return params.map((p) => (typeof p === 'string' && p.includes('\u0000') ? p.replaceAll('\u0000', '\uFFFD') : p));
}

/**
 * SQLite: a synchronous connection behind the async interface; transactions are serialised, and
 * a read outside them waits for the one in progress (it would otherwise see its uncommitted rows).
 * The connection never waits synchronously for another process's lock (busy timeout 0): a
 * transaction that finds the database locked retries asynchronously, so a webhook's event loop
 * is never frozen by a concurrent `plinth … --store` writer.
 */
class SqliteSql implements Sql {
  readonly dialect = 'sqlite';
  private chain: Promise<unknown> = Promise.resolve();
  private inTx = false;
  private readonly direct: Tx = {
    all: async <T extends Row>(sql: string, params: readonly Param[] = []) => this.wrap(() => this.prepare(sql).all(...cleanParams(params)) as T[]),
    get: async <T extends Row>(sql: string, params: readonly Param[] = []) => this.wrap(() => this.prepare(sql).get(...cleanParams(params)) as T | undefined),
    run: async (sql: string, params: readonly Param[] = []) => {
      const n = this.wrap(() => Number(this.prepare(sql).run(...cleanParams(params)).changes));
      if (!this.inTx) this.checkpointSoon();
      return n;
    },
  };
  private readonly stmts = new Map<string, ReturnType<DatabaseSync['prepare']>>();
  private checkpointTimer: NodeJS.Timeout | undefined;

  constructor(private readonly db: DatabaseSync, readonly location: string) {}

  private prepare(sql: string) {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      if (this.stmts.size > 500) this.stmts.clear();
      this.stmts.set(sql, s);
    }
    return s;
  }

  private wrap<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw sqliteError(e, this.location);
    }
  }

  async all<T extends Row>(sql: string, params: readonly Param[] = []): Promise<T[]> {
    if (this.inTx) await this.chain;
    return this.direct.all<T>(sql, params);
  }

  async get<T extends Row>(sql: string, params: readonly Param[] = []): Promise<T | undefined> {
    if (this.inTx) await this.chain;
    return this.direct.get<T>(sql, params);
  }

  async run(sql: string, params: readonly Param[] = []): Promise<number> {
    if (this.inTx) await this.chain;
    return this.direct.run(sql, params);
  }

  async exec(script: string): Promise<void> {
    this.wrap(() => this.db.exec(script));
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    // One connection: transactions must not interleave, so each waits for the one before it.
    const run = async () => {
      // Take the write lock, waiting (asynchronously) up to 15 s for another writer.
      for (let wait = 5, waited = 0; ; ) {
        try {
          this.db.exec('BEGIN IMMEDIATE');
          break;
        } catch (e) {
          if (!/locked|busy/i.test(describeError(e)) || waited >= 15_000) throw sqliteError(e, this.location);
          await new Promise((r) => setTimeout(r, wait));
          waited += wait;
          wait = Math.min(wait * 2, 250);
        }
      }
      this.inTx = true;
      try {
        const r = await fn(this.direct);
        this.wrap(() => this.db.exec('COMMIT'));
        this.checkpointSoon();
        return r;
      } catch (e) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw e;
      } finally {
        this.inTx = false;
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * Copy the WAL into the database once the work in progress yields (a timer: after the current
   * run's awaited statements, between a server's requests), not in a commit: SQLite's automatic
   * checkpoint runs inside the COMMIT that crosses its threshold, and a watch run that records a
   * few hundred findings would wait ~30–60 ms for it. The automatic one stays as a backstop for
   * long runs that never yield (wal_autocheckpoint, set at open). PASSIVE: never waits for readers.
   */
  private checkpointSoon(): void {
    if (this.checkpointTimer) return;
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      // A transaction in progress (between awaits): its commit schedules another.
      if (this.inTx || !this.db.isOpen) return;
      try {
        this.db.exec('PRAGMA wal_checkpoint(PASSIVE)');
      } catch {
        // Busy or locked: the next commit, or the backstop, checkpoints.
      }
    }, 0);
    this.checkpointTimer.unref();
  }

  async close(): Promise<void> {
    await this.chain;
    clearTimeout(this.checkpointTimer);
    this.checkpointTimer = undefined;
    this.stmts.clear();
    if (this.db.isOpen) this.db.close();
  }
}

function sqliteError(e: unknown, location: string): Error {
  if (e instanceof PlinthError) return e;
  const msg = describeError(e);
  if (/not a database|malformed|file is encrypted/i.test(msg)) return new PlinthError('STORE', `${location} is not a usable SQLite database (${msg}); it was left untouched`);
  if (/database is locked|SQLITE_BUSY/i.test(msg)) return new PlinthError('STORE', `${location} is locked by another writer (${msg})`);
  if (/readonly|read-only/i.test(msg)) return new PlinthError('STORE', `${location} cannot be written (${msg})`);
  return new PlinthError('STORE', `${location}: ${msg}`);
}

export interface OpenSqlOptions {
  readonly?: boolean;
  /** PostgreSQL pool size (default 4). */
  poolSize?: number;
  /** PostgreSQL: milliseconds to wait for a connection (default 5000). */
  connectTimeoutMs?: number;
}

/** Open an SQLite file (created when missing, its directory too) after checking it is SQLite at all. */
function openSqliteStore(file: string, o: OpenSqlOptions): Sql {
  const abs = path.resolve(file);
  if (existsSync(abs)) {
    const st = statSync(abs);
    if (!st.isFile()) throw new PlinthError('STORE', `${abs} is not a file`);
    if (st.size > 0) {
      // node:sqlite opens anything and fails on the first query; look at the header first so a
      // file that is not SQLite is refused before SQLite writes a journal next to it.
      const head = Buffer.alloc(16);
      const fd = openSync(abs, 'r');
      try {
        readSync(fd, head, 0, 16, 0);
      } finally {
        closeSync(fd);
      }
      if (head.toString('latin1') !== SQLITE_MAGIC) throw new PlinthError('STORE', `${abs} is not an SQLite database (its header is not "SQLite format 3"); refusing to use or overwrite it`);
    }
  } else if (o.readonly) {
    throw new PlinthError('STORE', `${abs} does not exist (a store is created by the first command that writes to it)`);
  } else {
    mkdirSync(path.dirname(abs), { recursive: true });
  }
  let db: DatabaseSync;
  try {
    db = openSqlite(abs, { readonly: o.readonly === true, timeout: 0 });
  } catch (e) {
    throw sqliteError(e, abs);
  }
  const s = new SqliteSql(db, abs);
  try {
    if (!o.readonly) {
      db.exec('PRAGMA journal_mode = WAL');
      // WAL with synchronous=NORMAL: a committed transaction survives the process being killed
      // (the WAL is in the OS's hands); only a power loss can drop the last ones.
      db.exec('PRAGMA synchronous = NORMAL');
      // Checkpoints run when the process yields (SqliteSql.checkpointSoon); inside a commit only
      // past 16,384 WAL pages (64 MB), for work that never yields.
      db.exec('PRAGMA wal_autocheckpoint = 16384');
    }
    db.exec('PRAGMA foreign_keys = ON');
    // 64 MB of page cache (SQLite's default is 2 MB): a fleet's findings live in a table with six
    // indexes keyed by hashes, so a large write touches pages all over them; with 2 MB most of those
    // reads go back to the file.
    db.exec('PRAGMA cache_size = -65536');
    // Reading the schema checks the whole header and first page.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
  } catch (e) {
    db.close();
    throw sqliteError(e, abs);
  }
  return s;
}

/** PostgreSQL through a `pg` pool. Errors name the server (never the password). */
class PostgresSql implements Sql {
  readonly dialect = 'postgres';
  constructor(private readonly pool: import('pg').Pool, readonly location: string) {}

  private error(e: unknown): Error {
    if (e instanceof PlinthError) return e;
    const code = (e as { code?: string }).code;
    const msg = describeError(e);
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ECONNRESET' || code === '57P01' || code === '57P03' || /timeout|Connection terminated|connect/i.test(msg)) {
      return new PlinthError('STORE_UNAVAILABLE', `PostgreSQL at ${this.location} is not reachable: ${msg}`);
    }
    return new PlinthError('STORE', `PostgreSQL at ${this.location}: ${msg}`);
  }

  private async q<T extends Row>(client: import('pg').Pool | import('pg').PoolClient, sql: string, params: readonly Param[]): Promise<import('pg').QueryResult<T>> {
    try {
      return await client.query<T>(numbered(sql), cleanParams(params) as unknown[]);
    } catch (e) {
      throw this.error(e);
    }
  }

  private tx(client: import('pg').Pool | import('pg').PoolClient): Tx {
    return {
      all: async <T extends Row>(sql: string, params: readonly Param[] = []) => (await this.q<T>(client, sql, params)).rows,
      get: async <T extends Row>(sql: string, params: readonly Param[] = []) => (await this.q<T>(client, sql, params)).rows[0],
      run: async (sql: string, params: readonly Param[] = []) => (await this.q(client, sql, params)).rowCount ?? 0,
    };
  }

  all<T extends Row>(sql: string, params: readonly Param[] = []): Promise<T[]> {
    return this.tx(this.pool).all<T>(sql, params);
  }

  get<T extends Row>(sql: string, params: readonly Param[] = []): Promise<T | undefined> {
    return this.tx(this.pool).get<T>(sql, params);
  }

  run(sql: string, params: readonly Param[] = []): Promise<number> {
    return this.tx(this.pool).run(sql, params);
  }

  async exec(script: string): Promise<void> {
    try {
      await this.pool.query(script);
    } catch (e) {
      throw this.error(e);
    }
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    let client: import('pg').PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.error(e);
    }
    let broken = false;
    // A checked-out client whose server goes away emits 'error' between queries; unheard, that
    // would end the process. The next query fails with the reason and the client is discarded.
    const onError = () => {
      broken = true;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const r = await fn(this.tx(client));
      await client.query('COMMIT');
      return r;
    } catch (e) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw this.error(e);
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** `?` placeholders → `$1, $2…` (the store's SQL never has `?` inside a string literal). */
export function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

async function openPostgres(url: string, o: OpenSqlOptions): Promise<Sql> {
  const { default: pg } = await import('pg');
  // BIGINT counts come back as strings by default; every number the store keeps fits a double.
  pg.types.setTypeParser(20, (v: string) => Number(v));
  const pool = new pg.Pool({
    connectionString: url,
    max: o.poolSize ?? 4,
    connectionTimeoutMillis: o.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    // A statement that hangs (a lock, a dead server behind a proxy) fails instead of holding the command.
    statement_timeout: 60_000,
    query_timeout: 65_000,
    application_name: 'plinth',
  });
  // An idle client whose server went away emits 'error' on the pool: not a crash, the next query reconnects.
  pool.on('error', () => {});
  const s = new PostgresSql(pool, redactUrl(url));
  try {
    await s.get('SELECT 1 AS ok');
  } catch (e) {
    await pool.end().catch(() => {});
    throw e;
  }
  return s;
}

export async function openSql(target: string, o: OpenSqlOptions = {}): Promise<Sql> {
  if (isPostgresUrl(target)) return openPostgres(target, o);
  return openSqliteStore(target, o);
}
