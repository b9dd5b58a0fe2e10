import http from 'node:http';
import type https from 'node:https';
import { finished, type Readable } from 'node:stream';
import { PlinthError } from '../util/errors.js';
import { NetworkGuard, type NetworkPolicy } from './netguard.js';

/**
 * The HTTP layer under the registry client: keep-alive agents, bounded redirects, timeouts and
 * retries with backoff on 429/5xx that honour Retry-After. Bodies are streamed both ways.
 */

export interface HttpOptions {
  /** Accept TLS certificates that do not verify (skopeo's --tls-verify=false). */
  insecureTls?: boolean;
  /** Extra CA certificates (PEM) to trust. */
  ca?: string | Buffer;
  /** Time to wait for response headers, and for each stretch of body silence (ms). */
  timeoutMs?: number;
  /** How many times a retryable failure is retried. */
  retries?: number;
  /** First backoff (ms); doubles each time, capped by maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  maxRedirects?: number;
  userAgent?: string;
  /** Aborts every request of this client (a caller's deadline); retries stop too. */
  signal?: AbortSignal;
  /** Which addresses may be connected to (the webhook refuses private networks by default). */
  network?: NetworkPolicy;
}

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** A body factory: called again on each retry so streams can be recreated. */
  body?: () => Buffer | Readable | string;
  /** Statuses that are answers, not failures (others throw). Default: all statuses are returned. */
  /** Do not retry this request (non-idempotent with a one-shot body). */
  noRetry?: boolean;
  /** Do not follow redirects (return the 3xx response). */
  noRedirect?: boolean;
  /** Strip Authorization when a redirect leaves the original host (always done), plus these. */
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  url: string;
  body: Readable;
  /** Read the whole body into memory, refusing more than `limit` bytes. */
  bytes(limit?: number): Promise<Buffer>;
  text(limit?: number): Promise<string>;
  json<T = unknown>(limit?: number): Promise<T>;
  /** Drain and discard the body (keeps the connection reusable). */
  discard(): Promise<void>;
}

const DEFAULTS = {
  timeoutMs: 60_000,
  retries: 4,
  backoffMs: 200,
  maxBackoffMs: 10_000,
  maxRedirects: 5,
};

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);

let httpsMod: typeof https | undefined;
/** node:https on first use: a plain-HTTP registry (loopback, --insecure) never loads TLS. */
function httpsModule(): typeof https {
  return (httpsMod ??= process.getBuiltinModule('node:https') as typeof https);
}

export class HttpClient {
  private readonly opts: Required<Omit<HttpOptions, "ca" | "insecureTls" | "userAgent" | "signal" | "network">> & HttpOptions;
  private readonly httpAgent: http.Agent;
  /** Made (and node:https, with TLS, loaded: ~6 ms) on the first HTTPS request only. */
  private httpsAgentMade: https.Agent | undefined;
  /** Called before each retry wait; lets callers report progress. */
  onRetry?: (info: { url: string; attempt: number; waitMs: number; reason: string }) => void;

  private readonly guard: NetworkGuard | undefined;

  constructor(opts: HttpOptions = {}) {
    this.opts = { ...DEFAULTS, ...opts };
    this.guard = opts.network?.denyPrivate ? NetworkGuard.for(opts.network) : undefined;
    const lookup = this.guard ? { lookup: this.guard.lookup() } : {};
    this.lookup = lookup;
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16, ...lookup });
  }

  private readonly lookup: { lookup?: import('node:net').LookupFunction };

  private get httpsAgent(): https.Agent {
    return (this.httpsAgentMade ??= new (httpsModule().Agent)({
      keepAlive: true,
      maxSockets: 16,
      ...this.lookup,
      rejectUnauthorized: !this.opts.insecureTls,
      ...(this.opts.ca ? { ca: this.opts.ca } : {}),
    }));
  }

  close(): void {
    this.closed = true;
    // Ends the retry waits too (a request in flight ends with its socket).
    this.closer.abort();
    this.httpAgent.destroy();
    this.httpsAgentMade?.destroy();
  }

  private closed = false;
  private readonly closer = new AbortController();

  /** Wait before a retry; a close() meanwhile ends the wait and the request. */
  private async retryWait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    try {
      await sleep(ms, signal ? AbortSignal.any([signal, this.closer.signal]) : this.closer.signal);
    } catch (e) {
      if (this.closed) throw new PlinthError('NETWORK', 'the registry client was closed');
      throw e;
    }
  }

  async request(req0: HttpRequest): Promise<HttpResponse> {
    if (this.closed) throw new PlinthError('NETWORK', 'the registry client was closed');
    const signal = req0.signal && this.opts.signal ? AbortSignal.any([req0.signal, this.opts.signal]) : (req0.signal ?? this.opts.signal);
    const req: HttpRequest = { ...req0, ...(signal ? { signal } : {}) };
    if (signal?.aborted) throw new PlinthError('TIMEOUT', `request to ${new URL(req.url).host} cancelled (deadline passed)`);
    let attempt = 0;
    for (;;) {
      let res: HttpResponse;
      try {
        res = await this.followRedirects(req);
      } catch (e) {
        if (req.noRetry || attempt >= this.opts.retries || !isRetryableNetworkError(e) || req.signal?.aborted || this.closed) throw e;
        const wait = this.backoff(attempt);
        this.onRetry?.({ url: req.url, attempt: attempt + 1, waitMs: wait, reason: (e as Error).message });
        await this.retryWait(wait, req.signal);
        attempt++;
        continue;
      }
      if (!RETRY_STATUS.has(res.status) || req.noRetry || attempt >= this.opts.retries || req.signal?.aborted || this.closed) return res;
      const retryAfter = parseRetryAfter(res.headers['retry-after']);
      await res.discard();
      const wait = Math.min(retryAfter ?? this.backoff(attempt), 60_000);
      this.onRetry?.({ url: req.url, attempt: attempt + 1, waitMs: wait, reason: `HTTP ${res.status}` });
      await this.retryWait(wait, req.signal);
      attempt++;
    }
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.opts.backoffMs * 2 ** attempt, this.opts.maxBackoffMs);
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  private async followRedirects(req: HttpRequest): Promise<HttpResponse> {
    let url = req.url;
    let method = req.method;
    let headers = { ...(req.headers ?? {}) };
    let body = req.body;
    const origin = new URL(url);
    for (let hop = 0; ; hop++) {
      const res = await this.once(method, url, headers, body, req.signal);
      if (req.noRedirect || ![301, 302, 303, 307, 308].includes(res.status) || !res.headers.location) return res;
      await res.discard();
      if (hop >= this.opts.maxRedirects) {
        throw new PlinthError('NETWORK', `too many redirects (more than ${this.opts.maxRedirects}) starting at ${req.url}`);
      }
      const next = new URL(res.headers.location, url);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new PlinthError('NETWORK', `refusing redirect to ${next.protocol} URL from ${url}`);
      }
      if (new URL(url).protocol === 'https:' && next.protocol === 'http:') {
        throw new PlinthError('INSECURE_REFUSED', `refusing redirect from HTTPS to plain HTTP (${next.origin})`);
      }
      if (next.host !== origin.host) {
        // Credentials never follow a redirect to another host (blob storage redirects, CDNs).
        const { authorization: _a, Authorization: _b, ...rest } = headers as Record<string, string>;
        headers = rest;
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
      url = next.toString();
    }
  }

  private once(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: HttpRequest['body'],
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    const u = new URL(url);
    // Names are checked when they resolve (the agents' lookup); addresses here.
    this.guard?.checkLiteral(u.hostname);
    const isHttps = u.protocol === 'https:';
    const mod = isHttps ? httpsModule() : http;
    const payload = body?.();
    if (process.env.PLINTH_DEBUG_HTTP) process.stderr.write(`http: ${method} ${url} ${JSON.stringify({ ...headers, ...(headers.authorization ? { authorization: '(redacted)' } : {}) })}\n`);
    const h: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'plinth/0.1', ...headers };
    if (typeof payload === 'string' || Buffer.isBuffer(payload)) {
      h['content-length'] = String(Buffer.byteLength(payload));
    }
    return new Promise<HttpResponse>((resolve, reject) => {
      const r = mod.request(
        u,
        {
          method,
          headers: h,
          agent: isHttps ? this.httpsAgent : this.httpAgent,
          ...(signal ? { signal } : {}),
        },
        (res) => {
          clearTimeout(headerTimer);
          if (process.env.PLINTH_DEBUG_HTTP) process.stderr.write(`http: ${res.statusCode} ${method} ${url} port=${res.socket?.localPort} cl=${res.headers['content-length']} te=${res.headers['transfer-encoding']}\n`);
          res.setTimeout(this.opts.timeoutMs, () => {
            res.destroy(new PlinthError('TIMEOUT', `no data from ${u.host} for ${Math.round(this.opts.timeoutMs / 1000)} s while reading ${method} ${u.pathname}`));
          });
          resolve(wrapResponse(res, url));
        },
      );
      // The answer is awaited from when the request body has been sent (an upload may take long);
      // while it is being sent, only silence on the socket counts.
      let headerTimer: NodeJS.Timeout | undefined;
      const startHeaderTimer = () => {
        headerTimer = setTimeout(() => {
          r.destroy(new PlinthError('TIMEOUT', `${u.host} did not answer ${method} ${u.pathname} within ${Math.round(this.opts.timeoutMs / 1000)} s`));
        }, this.opts.timeoutMs);
      };
      const streaming = payload !== undefined && typeof payload !== 'string' && !Buffer.isBuffer(payload);
      if (streaming) {
        r.setTimeout(this.opts.timeoutMs, () => r.destroy(new PlinthError('TIMEOUT', `no progress sending ${method} ${u.pathname} to ${u.host} for ${Math.round(this.opts.timeoutMs / 1000)} s`)));
        r.once('finish', startHeaderTimer);
      } else startHeaderTimer();
      r.on('error', (e) => {
        clearTimeout(headerTimer);
        reject(e instanceof PlinthError ? e : networkError(e, u));
      });
      if (payload === undefined) r.end();
      else if (typeof payload === 'string' || Buffer.isBuffer(payload)) r.end(payload);
      else {
        payload.on('error', (e) => r.destroy(e));
        payload.pipe(r);
      }
    });
  }
}

function wrapResponse(res: http.IncomingMessage, url: string): HttpResponse {
  const bytes = async (limit = 16 * 1024 * 1024): Promise<Buffer> => {
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      res.destroy();
      throw new PlinthError('MANIFEST_TOO_LARGE', `response from ${new URL(url).host} is ${declared} bytes, more than the ${limit}-byte limit`);
    }
    // On the body's events (no async iterator to set up: cheaper in a short run).
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let n = 0;
      let settled = false;
      res.on('data', (c: Buffer) => {
        if (settled) return;
        n += c.length;
        if (n > limit) {
          settled = true;
          res.destroy();
          reject(new PlinthError('MANIFEST_TOO_LARGE', `response from ${new URL(url).host} is more than the ${limit}-byte limit`));
          return;
        }
        chunks.push(c);
      });
      finished(res, (err) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve(Buffer.concat(chunks));
      });
    });
  };
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    url,
    body: res,
    bytes,
    text: async (limit) => (await bytes(limit)).toString('utf8'),
    json: async <T>(limit?: number) => {
      const b = await bytes(limit);
      try {
        return JSON.parse(b.toString('utf8')) as T;
      } catch {
        throw new PlinthError('REGISTRY_ERROR', `${new URL(url).host} answered with invalid JSON`);
      }
    },
    discard: async () => {
      if (res.destroyed || res.readableEnded) return;
      // Small bodies are drained so the connection goes back to the pool; large ones are cut off.
      const len = Number(res.headers['content-length'] ?? NaN);
      if (!Number.isFinite(len) || len > 64 * 1024) {
        // Unknown or large: not worth keeping the connection for (and an endless body never ends).
        res.destroy();
        return;
      }
      await new Promise<void>((resolve) => {
        res.once('end', resolve);
        res.once('close', resolve);
        res.once('error', () => resolve());
        res.resume();
      });
    },
  };
}

function isRetryableNetworkError(e: unknown): boolean {
  if (e instanceof PlinthError) return e.code === 'NETWORK' || e.code === 'TIMEOUT';
  return false;
}

function networkError(e: Error, u: URL): PlinthError {
  const code = (e as NodeJS.ErrnoException).code;
  if (e.name === 'AbortError') return new PlinthError('TIMEOUT', `request to ${u.host} was cancelled`);
  if (code === 'ECONNREFUSED') return new PlinthError('NETWORK', `cannot connect to ${u.host}: connection refused`, undefined, { cause: e });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new PlinthError('NETWORK', `cannot resolve host ${u.hostname}`, undefined, { cause: e });
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'UND_ERR_SOCKET')
    return new PlinthError('NETWORK', `connection to ${u.host} failed: ${code}`, undefined, { cause: e });
  if (code && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO/.test(code))
    return new PlinthError('NETWORK', `TLS error talking to ${u.host}: ${e.message} (use --insecure only for a registry you trust)`, undefined, { cause: e });
  if (e.message.includes('wrong version number') || code === 'EPROTO')
    return new PlinthError('NETWORK', `TLS handshake with ${u.host} failed: is it a plain-HTTP registry?`, undefined, { cause: e });
  return new PlinthError('NETWORK', `request to ${u.host} failed: ${e.message}`, undefined, { cause: e });
}

/** Retry-After: delta-seconds or an HTTP date. Returns ms, or undefined. */
export function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  if (v === undefined) return undefined;
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - Date.now());
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new PlinthError('TIMEOUT', 'cancelled'));
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(new PlinthError('TIMEOUT', 'cancelled'));
    }, { once: true });
  });
}
