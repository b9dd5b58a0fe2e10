import type { Command } from 'commander';
import { PlinthError } from '../util/errors.js';
import { defaultCatalogPath } from '../util/paths.js';
import type { CliHelpers } from './provenance.js';
import { readInput } from './input.js';

/** `plinth ui`: the store's read-only dashboard in a browser (docs/ui.md). */
export function registerUi(program: Command, h: CliHelpers): void {
  if (!h.want('ui')) return;
  program
    .command('ui')
    .description('serve a read-only dashboard of the metadata store: overview, images, image pages, bases, vulnerabilities, decisions (server-rendered HTML, no script, no CDN; docs/ui.md)')
    .option('--store <target>', 'metadata store: an SQLite file or postgres://… (default $PLINTH_STORE, else ~/.local/share/plinth/store.db)')
    .option('--port <n>', 'port', '8081')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--token <token>', 'require this access token: Authorization: Bearer …, or the sign-in form (default: $PLINTH_UI_TOKEN)')
    .option('--token-file <file>', 'read the access token from a file (a mounted Secret)')
    .option('--auth-header <name>', 'trust an authenticating proxy: every request must carry this header (e.g. X-Forwarded-User), shown as the user')
    .option('--catalog <file>', `catalog, to resolve base tags (default: ${defaultCatalogPath()})`)
    .action(async (o: { store?: string; port: string; host: string; token?: string; tokenFile?: string; authHeader?: string; catalog?: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new PlinthError('USAGE', `--port must be 0-65535, got "${o.port}"`);
      let token = o.token ?? process.env.PLINTH_UI_TOKEN;
      if (o.tokenFile) token = (await readInput(o.tokenFile, 'token file')).toString('utf8').trim();
      if (token !== undefined && token.length < 16) throw new PlinthError('USAGE', 'the access token must be at least 16 characters');
      if (token && o.authHeader) throw new PlinthError('USAGE', 'give --token/--token-file or --auth-header, not both');
      if (o.authHeader !== undefined && !/^[A-Za-z0-9-]{1,100}$/.test(o.authHeader)) throw new PlinthError('USAGE', `--auth-header must be a header name, got "${o.authHeader}"`);
      if (!token && !o.authHeader && !['127.0.0.1', '::1', 'localhost'].includes(o.host)) throw new PlinthError('USAGE', `serving the dashboard on ${o.host} without --token, --token-file or --auth-header would let anyone on the network read the store (or keep --host 127.0.0.1)`);
      const { loadCatalog } = await import('../provenance/catalog.js');
      const catalog = await loadCatalog(o.catalog ?? defaultCatalogPath(), { mustExist: o.catalog !== undefined });
      const { openForQuery } = await import('./store.js');
      const { startUi } = await import('../ui/server.js');
      const store = await openForQuery(o.store);
      let ui;
      try {
        ui = await startUi(store, { port, host: o.host, ...(token ? { token } : {}), ...(o.authHeader ? { authHeader: o.authHeader } : {}), catalog });
      } catch (e) {
        // A PostgreSQL pool left open would keep the process alive after the error.
        await store.close().catch(() => {});
        throw e;
      }
      h.out(`plinth dashboard on ${ui.url}/ (store ${store.location})`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await ui.close();
      await store.close();
    });
}
