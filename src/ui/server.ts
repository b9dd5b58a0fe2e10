import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken, listenError, sameSecret, serveHttp, type RunningHttp } from '../util/http.js';
import { PlinthError, describeError } from '../util/errors.js';
import type { Catalog } from '../provenance/catalog.js';
import type { MetaStore } from '../store/store.js';
import type { StoreConnector } from '../store/connector.js';
import { basePage, basesPage, decisionsPage, errorPage, imagePage, imagesPage, loginPage, overviewPage, parseTableQuery, vulnerabilityPage } from './pages.js';
import { CSS } from './style.js';

/**
 * `plinth ui`: the store's read-only dashboard, server-rendered HTML (docs/ui.md). Auth is a
 * bearer token (header, or a cookie set by the /login form), or a header an authenticating proxy
 * sets (--auth-header X-Forwarded-User); with neither, it serves loopback only (the CLI checks).
 */

export interface UiOptions {
  token?: string;
  /** A request header that must be present and non-empty (set by the proxy in front). */
  authHeader?: string;
  /** The catalog that resolves base tags, or a function giving the current one (a reloaded catalog). */
  catalog?: Catalog | (() => Catalog | undefined);
  /** Mark the sign-in cookie `Secure` (the dashboard is served over HTTPS, e.g. on `plinth serve`). */
  secureCookie?: boolean;
}

const COOKIE = 'plinth_ui_token';
const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // No script at all; styles from this server only.
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
};

function sendHtml(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS, ...headers });
  res.end(body);
}


function cookieToken(h: string | undefined): string | undefined {
  for (const part of (h ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === COOKIE) {
      try {
        return decodeURIComponent(v.join('='));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Who the request is, or null when it is not allowed in. */
function authenticate(req: IncomingMessage, o: UiOptions): { ok: boolean; user?: string } {
  if (o.authHeader) {
    const v = req.headers[o.authHeader.toLowerCase()];
    const user = Array.isArray(v) ? v[0] : v;
    if (!user || !user.trim()) return { ok: false };
    return { ok: true, user: user.trim().slice(0, 200) };
  }
  if (o.token !== undefined) {
    const given = bearerToken(req.headers.authorization) ?? cookieToken(req.headers.cookie);
    return { ok: given !== undefined && sameSecret(given, o.token) };
  }
  return { ok: true };
}

async function readForm(req: IncomingMessage, max = 4096): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > max) throw new PlinthError('REQUEST_INVALID', 'the form is too large');
    chunks.push(c as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function segment(p: string, prefix: string): string | null {
  if (!p.startsWith(prefix)) return null;
  try {
    return decodeURIComponent(p.slice(prefix.length));
  } catch {
    return null;
  }
}

/** Whether a Host header names the loopback interface (127.0.0.1, localhost, [::1]), with any port. */
export function loopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const m = /^(\[[^\]]*\]|[^:]*)(?::\d{1,5})?$/.exec(host.trim().toLowerCase());
  return !!m && ['127.0.0.1', 'localhost', '[::1]'].includes(m[1]!);
}

/** The request handler (mountable beside the API). Returns false when the path is not the dashboard's. */
export function uiHandler(source: MetaStore | StoreConnector, o: UiOptions = {}): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const secure = o.secureCookie ? '; Secure' : '';
  return async (req, res) => {
    try {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://plinth.invalid');
      } catch {
        throw new PlinthError('REQUEST_INVALID', 'the request target is not a valid URL');
      }
      const p = url.pathname;
      // Without a token or a proxy, only loopback serves the pages (the CLI checks the address):
      // a page on another site whose name resolves to 127.0.0.1 (DNS rebinding) sends its own
      // Host, and gets nothing.
      if (o.token === undefined && !o.authHeader && !loopbackHost(req.headers.host)) {
        return void sendHtml(res, 421, errorPage(421, 'Wrong host', 'This dashboard answers only requests addressed to 127.0.0.1, localhost or [::1]; give it a token (--token) to serve it under another name.')), true;
      }
      if (p === '/static/plinth.css') {
        res.writeHead(200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'max-age=3600', 'x-content-type-options': 'nosniff' });
        return void res.end(CSS), true;
      }
      if (p === '/login' && o.token !== undefined && !o.authHeader) {
        if (req.method === 'POST') {
          const token = (await readForm(req)).get('token') ?? '';
          if (!token || !sameSecret(token, o.token)) return void sendHtml(res, 401, loginPage('That token is not valid.')), true;
          return void sendHtml(res, 303, '', { location: '/', 'set-cookie': `${COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${secure}` }), true;
        }
        return void sendHtml(res, 200, loginPage()), true;
      }
      const who = authenticate(req, o);
      if (!who.ok) {
        const msg = o.authHeader ? `This dashboard is served behind a proxy that names the user in ${o.authHeader}; the request did not carry it.` : 'A valid access token is required (Authorization: Bearer \u2026, or sign in).';
        const body = o.authHeader ? errorPage(401, 'Not signed in', msg) : loginPage(msg);
        return void sendHtml(res, 401, body, o.authHeader ? {} : { 'www-authenticate': 'Bearer realm="plinth"' }), true;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') return void sendHtml(res, 405, errorPage(405, 'Not allowed', `${req.method} is not supported: the dashboard is read-only.`), { allow: 'GET, HEAD' }), true;
      const catalog = typeof o.catalog === 'function' ? o.catalog() : o.catalog;
      const ctx = { ...(who.user ? { user: who.user } : {}), ...(catalog ? { catalog } : {}) };
      // A connector (plinth serve) opens the store on first use and again after it was unreachable.
      const store = 'get' in source ? await source.get() : source;
      if (p === '/' || p === '/overview') return void sendHtml(res, 200, await overviewPage(store, ctx)), true;
      if (p === '/images') return void sendHtml(res, 200, await imagesPage(store, parseTableQuery(url.searchParams), ctx)), true;
      const img = segment(p, '/images/');
      if (img !== null) {
        const page = img.length <= 1000 ? await imagePage(store, img, ctx) : null;
        if (!page) return void sendHtml(res, 404, errorPage(404, 'Image not found', `No image ${img.slice(0, 300)} is in the store. Image pages are /images/REGISTRY/REPO@sha256:\u2026.`)), true;
        return void sendHtml(res, 200, page), true;
      }
      if (p === '/vulnerabilities' || p === '/vulnerabilities/') {
        const id = url.searchParams.get('id')?.trim();
        if (id) return void sendHtml(res, 303, '', { location: `/vulnerabilities/${encodeURIComponent(id.slice(0, 200))}` }), true;
        return void sendHtml(res, 200, errorPage(200, 'Vulnerabilities', 'Name an advisory: /vulnerabilities/CVE-\u2026')), true;
      }
      const vid = segment(p, '/vulnerabilities/');
      if (vid !== null && vid.length > 0 && vid.length <= 200) return void sendHtml(res, 200, await vulnerabilityPage(store, vid, ctx)), true;
      if (p === '/bases' || p === '/bases/') return void sendHtml(res, 200, await basesPage(store, ctx)), true;
      const base = segment(p, '/bases/');
      if (base !== null && base.length <= 1000) {
        let page: string | null = null;
        try {
          page = await basePage(store, base, ctx);
        } catch (e) {
          if (!(e instanceof PlinthError && e.code === 'USAGE')) throw e;
        }
        if (!page) return void sendHtml(res, 404, errorPage(404, 'Base not found', `No image in the store is built on ${base.slice(0, 300)}.`)), true;
        return void sendHtml(res, 200, page), true;
      }
      if (p === '/decisions') return void sendHtml(res, 200, await decisionsPage(store, url.searchParams, ctx)), true;
      return void sendHtml(res, 404, errorPage(404, 'Page not found', `${p.slice(0, 300)} is not a page of this dashboard.`)), true;
    } catch (e) {
      const unavailable = e instanceof PlinthError && e.code === 'STORE_UNAVAILABLE';
      const status = unavailable ? 503 : e instanceof PlinthError && (e.code === 'USAGE' || e.code === 'REQUEST_INVALID') ? 400 : 500;
      // The message only (describeError): never a stack trace.
      if (!res.headersSent) sendHtml(res, status, errorPage(status, status === 400 ? 'Bad request' : 'Something went wrong', describeError(e)));
      else res.end();
      return true;
    }
  };
}

export type RunningUi = RunningHttp;

export async function startUi(store: MetaStore, o: UiOptions & { port?: number; host?: string } = {}): Promise<RunningUi> {
  const handle = uiHandler(store, o);
  return serveHttp((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendHtml(res, 500, errorPage(500, 'Something went wrong', 'internal error'));
    });
  }, { ...(o.port !== undefined ? { port: o.port } : {}), ...(o.host !== undefined ? { host: o.host } : {}), onListenError: (e, host, port) => listenError('the dashboard', host, port, e) });
}
