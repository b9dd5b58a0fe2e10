import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import { PlinthError } from './errors.js';

/**
 * The small HTTP servers Plinth runs besides the webhook (`plinth api`, `plinth ui`): bounded
 * headers and request times, GET /healthz, and one way to say a port cannot be used.
 */

/** Whether a secret the caller sent equals the expected one: digests compared in constant time, whatever their lengths. */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());
}

/** The token of an `Authorization: Bearer …` header, if it has one. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
}

/** Why `what` cannot listen on host:port, as a usage error the user can act on. */
export function listenError(what: string, host: string, port: number, e: NodeJS.ErrnoException): PlinthError {
  const why = e.code === 'EADDRINUSE' ? 'the port is in use' : e.code === 'EACCES' ? 'permission denied' : e.message;
  return new PlinthError('USAGE', `${what} cannot listen on ${host}:${port} (${why}): give another --port, or --port 0 for any free one`);
}

export interface RunningHttp {
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * Listen with `handle` for every request but GET /healthz. `onListenError` turns a failure to
 * listen into the error thrown (default: the system's own).
 */
export async function serveHttp(handle: (req: IncomingMessage, res: ServerResponse) => void, o: { port?: number; host?: string; onListenError?: (e: NodeJS.ErrnoException, host: string, port: number) => Error } = {}): Promise<RunningHttp> {
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end('ok');
    }
    handle(req, res);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxHeadersCount = 100;
  const host = o.host ?? '127.0.0.1';
  const want = o.port ?? 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(o.onListenError ? o.onListenError(e, host, want) : e));
    server.listen(want, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
