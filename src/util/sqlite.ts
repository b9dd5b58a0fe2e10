/**
 * SQLite through Node's built-in `node:sqlite` (SQLite 3.5x compiled into Node): no native addon
 * to build at install time, nothing to unpack next to the single-file executable. This module is
 * the one place that opens a database; the rest of the code uses DatabaseSync and StatementSync
 * directly, plus the two helpers below for what better-sqlite3 used to offer (pragma values and
 * synchronous transactions).
 *
 * `node:sqlite` is loaded on first use (process.getBuiltinModule), so commands that never open a
 * database do not pay for it at start-up.
 */
import { existsSync } from 'node:fs';
import type { DatabaseSync, StatementSync } from 'node:sqlite';

export type { DatabaseSync, StatementSync };

export interface OpenSqliteOptions {
  /** Open read-only (the file must exist). */
  readonly?: boolean;
  /** Refuse to create the file when it does not exist. */
  mustExist?: boolean;
  /** Milliseconds to wait for another connection's lock (default 5000, as better-sqlite3). */
  timeout?: number;
}

let sqlite: typeof import('node:sqlite') | undefined;

/** Open `file`. Throws the SQLite error (its message names the problem) when it cannot. */
export function openSqlite(file: string, opts: OpenSqliteOptions = {}): DatabaseSync {
  sqlite ??= process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
  const readOnly = opts.readonly === true;
  if ((readOnly || opts.mustExist) && !existsSync(file)) throw new Error(`unable to open database file: ${file} does not exist`);
  return new sqlite.DatabaseSync(file, { readOnly, timeout: opts.timeout ?? 5000 });
}

/** Run a PRAGMA and return the first column of its first row (undefined when it returns none). */
export function pragma(db: DatabaseSync, statement: string): unknown {
  const stmt = db.prepare(`PRAGMA ${statement}`);
  stmt.setReturnArrays(true);
  const row = stmt.get() as unknown[] | undefined;
  return row?.[0];
}

/** Run `fn` inside BEGIN … COMMIT (ROLLBACK when it throws). `fn` must be synchronous. */
export function transactionSync<T>(db: DatabaseSync, fn: () => T, begin = 'BEGIN'): T {
  db.exec(begin);
  try {
    const r = fn();
    db.exec('COMMIT');
    return r;
  } catch (e) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/** A statement that returns rows as arrays (better-sqlite3's `.raw(true)`). */
export function rawStatement(db: DatabaseSync, sql: string): StatementSync {
  const s = db.prepare(sql);
  s.setReturnArrays(true);
  return s;
}
