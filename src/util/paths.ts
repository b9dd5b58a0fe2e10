/**
 * Default locations of Plinth's files. Kept apart from the modules that read them so the CLI can
 * name them in --help without loading those modules (start-up).
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** The catalog of known bases: $PLINTH_CATALOG, else $XDG_CONFIG_HOME/plinth/catalog.yaml. */
export function defaultCatalogPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PLINTH_CATALOG) return env.PLINTH_CATALOG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'plinth', 'catalog.yaml');
}

/** The advisory database: $PLINTH_DB, else $XDG_CACHE_HOME/plinth/vuln.db. */
export function defaultDbPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PLINTH_DB) return resolve(env.PLINTH_DB);
  const xdg = env.XDG_CACHE_HOME;
  const cache = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.cache');
  return join(cache, 'plinth', 'vuln.db');
}

/**
 * The metadata store (`--store`): $PLINTH_STORE, else $XDG_DATA_HOME/plinth/store.db
 * (~/.local/share/plinth/store.db). A postgres:// URL selects PostgreSQL.
 */
export function defaultStorePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PLINTH_STORE) return env.PLINTH_STORE;
  const xdg = env.XDG_DATA_HOME;
  const data = xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share');
  return join(data, 'plinth', 'store.db');
}
