/**
 * An HTTP reverse proxy on 127.0.0.1 that forwards everything to a target (streaming both
 * ways, keeping headers) and injects faults on requests whose path matches a regex.
 *
 *   const proxy = await startFaultProxy(reg.url, [
 *     { match: /\/blobs\/uploads\/$/, method: 'POST', times: 2, action: { status: 503, retryAfter: '1' } },
 *     { match: /\/blobs\/sha256:/, method: 'GET', times: 1, action: { corrupt: 'body' } },
 *   ]);
 *
 * `Location` headers and `WWW-Authenticate` realms that point at the target are rewritten
 * to the proxy, so a client talking to the proxy stays on the proxy.
 *
 * Fault semantics:
 * - `match` is tested against the request target (path plus query string).
 * - `method` (optional) must equal the request method (case-insensitive).
 * - `times` (optional) caps how often the fault fires; afterwards requests pass through.
 * - The first fault in the plan that matches and still has firings left wins.
 * - `status`: answer immediately with that status (upstream is not contacted), a registry
 *   style JSON error body and `Retry-After` when given.
 * - `delayMs`: wait, then forward normally.
 * - `corrupt` / `truncate` only act on responses that have a body: they never match HEAD
 *   (unless `method: 'HEAD'` is given explicitly) and only fire when the upstream status is
 *   2xx; other responses pass through without using up a firing.
 *   `corrupt: 'body'` flips one byte (at `offset`, default the middle when Content-Length is
 *   known, else the first byte) and keeps all headers, including Content-Length and
 *   Docker-Content-Digest. `truncate: N` sends the headers and the first N body bytes, then
 *   destroys the connection.
 */
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { sleep } from './util.js';
import { listenOnLoopback } from './common.js';

export type FaultAction =
  | { status: 429 | 500 | 502 | 503; retryAfter?: string }
  | { corrupt: 'body'; offset?: number }
  | { truncate: number }
  | { delayMs: number };

export interface Fault {
  match: RegExp;
  method?: string;
  times?: number;
  action: FaultAction;
}

export type FaultPlan = Fault[];

export interface ProxiedRequest {
  method: string;
  /** Path plus query string, as received. */
  path: string;
  /** Index in the fault plan of the fault that fired on this request, if any. */
  fault?: number;
  /** Status sent to the client (undefined while in flight or if the connection died first). */
  status?: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `127.0.0.1:PORT` */
  host: string;
  /** Every request received, in order of arrival. */
  requests: ProxiedRequest[];
  /** How many times fault `index` of the current plan has fired. */
  fired(index: number): number;
  /** Replace the fault plan (firing counts start again from zero). */
  setFaults(plan: FaultPlan): void;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const STATUS_CODES: Record<number, string> = {
  429: 'TOOMANYREQUESTS',
  500: 'UNKNOWN',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
};

function isBodyFault(a: FaultAction): a is { corrupt: 'body'; offset?: number } | { truncate: number } {
  return 'corrupt' in a || 'truncate' in a;
}

function describe(a: FaultAction): string {
  return JSON.stringify(a);
}

export async function startFaultProxy(target: string, faults: FaultPlan = []): Promise<FaultProxy> {
  const t = new URL(target);
  if (t.protocol !== 'http:') throw new Error(`startFaultProxy: only http targets are supported, got ${target}`);
  const targetHost = t.host; // host[:port]
  const targetOrigin = t.origin;
  const agent = new Agent({ keepAlive: true });
  const requests: ProxiedRequest[] = [];
  let plan: FaultPlan = faults;
  let counts: number[] = plan.map(() => 0);
  let proxyOrigin = '';

  function matches(f: Fault, method: string, path: string): boolean {
    if (f.method !== undefined && f.method.toUpperCase() !== method) return false;
    if (isBodyFault(f.action) && method === 'HEAD' && f.method?.toUpperCase() !== 'HEAD') return false;
    f.match.lastIndex = 0;
    return f.match.test(path);
  }

  function hasLeft(i: number): boolean {
    const f = plan[i]!;
    return f.times === undefined || counts[i]! < f.times;
  }

  function pick(method: string, path: string): number | undefined {
    for (let i = 0; i < plan.length; i++) if (hasLeft(i) && matches(plan[i]!, method, path)) return i;
    return undefined;
  }

  function rewriteOrigin(value: string): string {
    return value.split(targetOrigin).join(proxyOrigin);
  }

  function responseHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(h)) {
      if (v === undefined || HOP_BY_HOP.has(k)) continue;
      if (k === 'location' && typeof v === 'string') {
        try {
          const loc = new URL(v, targetOrigin);
          out[k] = /^[a-z][a-z0-9+.-]*:/i.test(v) && loc.host === targetHost ? rewriteOrigin(v) : v;
        } catch {
          out[k] = v;
        }
      } else if (k === 'www-authenticate') {
        out[k] = Array.isArray(v) ? v.map(rewriteOrigin) : rewriteOrigin(v);
      } else {
        out[k] = v;
      }
    }
    return out;
  }

  function requestHeaders(h: IncomingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(h)) {
      // `expect`: this server already answered any 100-continue itself.
      if (v === undefined || HOP_BY_HOP.has(k) || k === 'host' || k === 'expect') continue;
      out[k] = v;
    }
    out.host = targetHost;
    return out;
  }

  function sendFaultStatus(res: ServerResponse, status: number, retryAfter: string | undefined): void {
    const body = JSON.stringify({ errors: [{ code: STATUS_CODES[status] ?? 'UNKNOWN', message: `injected fault: ${status}`, detail: null }] });
    const headers: OutgoingHttpHeaders = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
    res.writeHead(status, headers);
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, rec: ProxiedRequest): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = req.url ?? '/';
    let bodyFault: number | undefined;
    const i = pick(method, path);
    if (i !== undefined) {
      const action = plan[i]!.action;
      if ('status' in action) {
        counts[i]!++;
        rec.fault = i;
        req.resume(); // drain the request body
        rec.status = action.status;
        sendFaultStatus(res, action.status, action.retryAfter);
        return;
      }
      if ('delayMs' in action) {
        counts[i]!++;
        rec.fault = i;
        await sleep(action.delayMs);
      } else {
        bodyFault = i;
      }
    }

    const upstream = httpRequest({
      protocol: 'http:',
      hostname: t.hostname,
      port: t.port || 80,
      method,
      path,
      headers: requestHeaders(req.headers),
      agent,
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.on('error', (e) => {
      if (!res.headersSent) {
        const body = JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `fault proxy: upstream error: ${e.message}` }] });
        res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else {
        res.destroy();
      }
    });
    upstream.on('response', (ur) => {
      const status = ur.statusCode ?? 502;
      const headers = responseHeaders(ur.headers);
      let action: FaultAction | undefined;
      // A body fault is decided now: it fires only on a 2xx response and if it has firings left
      // (another concurrent request may have used them up in the meantime).
      if (bodyFault !== undefined && status >= 200 && status < 300 && hasLeft(bodyFault)) {
        counts[bodyFault]!++;
        rec.fault = bodyFault;
        action = plan[bodyFault]!.action;
      }
      rec.status = status;
      res.writeHead(status, ur.statusMessage, headers);

      if (action && 'truncate' in action) {
        const limit = Math.max(0, action.truncate);
        let sent = 0;
        res.flushHeaders();
        const cut = (): void => {
          ur.destroy();
          res.destroy();
        };
        if (limit === 0) {
          // Let the headers reach the socket before the connection dies.
          res.write(Buffer.alloc(0), () => setImmediate(cut));
          return;
        }
        ur.on('data', (chunk: Buffer) => {
          if (sent >= limit) return;
          const part = sent + chunk.length > limit ? chunk.subarray(0, limit - sent) : chunk;
          sent += part.length;
          if (sent >= limit) {
            ur.pause();
            res.write(part, () => cut());
          } else if (!res.write(part)) {
            ur.pause();
            res.once('drain', () => ur.resume());
          }
        });
        ur.on('end', () => res.end());
        return;
      }

      if (action && 'corrupt' in action) {
        const len = Number(ur.headers['content-length']);
        const at = action.offset ?? (Number.isFinite(len) && len > 0 ? Math.floor(len / 2) : 0);
        let pos = 0;
        ur.on('data', (chunk: Buffer) => {
          let out = chunk;
          if (at >= pos && at < pos + chunk.length) {
            out = Buffer.from(chunk);
            out[at - pos] = out[at - pos]! ^ 0xff;
          }
          pos += chunk.length;
          if (!res.write(out)) {
            ur.pause();
            res.once('drain', () => ur.resume());
          }
        });
        ur.on('end', () => res.end());
        return;
      }

      ur.pipe(res);
    });
    req.pipe(upstream);
  }

  const server = createServer((req, res) => {
    const rec: ProxiedRequest = { method: (req.method ?? 'GET').toUpperCase(), path: req.url ?? '/' };
    requests.push(rec);
    res.on('finish', () => {
      rec.status = res.statusCode;
    });
    handle(req, res, rec).catch(() => res.destroy());
  });
  const listening = await listenOnLoopback(server);
  const host = `127.0.0.1:${listening.port}`;
  proxyOrigin = `http://${host}`;

  let stopping: Promise<void> | undefined;
  return {
    url: proxyOrigin,
    host,
    requests,
    fired: (index) => counts[index] ?? 0,
    setFaults(next) {
      plan = next;
      counts = next.map(() => 0);
    },
    stop() {
      return (stopping ??= listening.stop().then(() => agent.destroy()));
    },
  };
}
