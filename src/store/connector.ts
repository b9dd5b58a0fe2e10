import { PlinthError, describeError } from '../util/errors.js';
import { redactUrl } from './sql.js';
import { MetaStore } from './store.js';

/**
 * A store for a long-running server (`plinth serve --store`): opened when first needed and, when
 * its server is unreachable, tried again at most every `retryMs` — so a webhook starts and keeps
 * admitting while PostgreSQL is down, and records again once it is back (what it could not write
 * meanwhile is dropped and counted by the recorder).
 */
export class StoreConnector {
  private store: MetaStore | undefined;
  private opening: Promise<MetaStore> | undefined;
  private lastFail = 0;
  private lastError = '';

  constructor(
    readonly target: string,
    private readonly retryMs = 10_000,
  ) {}

  /** Adopt a store that is already open. */
  static of(store: MetaStore): StoreConnector {
    const c = new StoreConnector(store.location);
    c.store = store;
    return c;
  }

  get(): Promise<MetaStore> {
    if (this.store) return Promise.resolve(this.store);
    if (this.opening) return this.opening;
    if (Date.now() - this.lastFail < this.retryMs) {
      return Promise.reject(new PlinthError('STORE_UNAVAILABLE', `the store ${redactUrl(this.target)} is not open (${this.lastError}); it is tried again every ${Math.round(this.retryMs / 1000)} s`));
    }
    const p = MetaStore.open(this.target).then(
      (s) => (this.store = s),
      (e: unknown) => {
        this.lastFail = Date.now();
        this.lastError = describeError(e);
        throw e;
      },
    );
    this.opening = p;
    void p.finally(() => (this.opening = undefined)).catch(() => {});
    return p;
  }

  async close(): Promise<void> {
    await this.opening?.catch(() => {});
    await this.store?.close();
    this.store = undefined;
  }
}
