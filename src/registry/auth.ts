import { PlinthError } from '../util/errors.js';
import type { Credential } from './credentials.js';
import type { HttpClient } from './http.js';

/**
 * WWW-Authenticate challenges and the Docker token protocol (anonymous or with credentials,
 * GET with basic auth, or POST OAuth2 with a refresh token), tokens cached per scope set until
 * they expire.
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse a WWW-Authenticate header (RFC 7235): one or more challenges with auth-params. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  let i = 0;
  const n = text.length;
  const skipWs = () => {
    while (i < n && /[\s,]/.test(text[i]!)) i++;
  };
  while (i < n) {
    skipWs();
    const m = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(text.slice(i));
    if (!m) break;
    const scheme = m[0];
    i += scheme.length;
    const params: Record<string, string> = {};
    for (;;) {
      while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
      const save = i;
      const km = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*/.exec(text.slice(i));
      if (!km) {
        i = save;
        break;
      }
      // Distinguish "param=value" from the next scheme's token68 / name.
      i += km[0].length;
      let value = '';
      if (text[i] === '"') {
        i++;
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++;
          value += text[i];
          i++;
        }
        i++; // closing quote
      } else {
        const vm = /^[^\s,]*/.exec(text.slice(i))!;
        value = vm[0];
        i += value.length;
      }
      params[km[1]!.toLowerCase()] = value;
      while (i < n && /\s/.test(text[i]!)) i++;
      if (text[i] === ',') {
        i++;
        // Peek: if the next thing is "name=" it is another param, else a new challenge.
        const rest = text.slice(i);
        if (!/^\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+\s*=/.test(rest)) break;
      } else break;
    }
    out.push({ scheme: scheme.toLowerCase(), params });
  }
  return out;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export interface TokenRequest {
  realm: string;
  service?: string;
  scopes: string[];
}

export class TokenCache {
  private readonly cache = new Map<string, CachedToken>();
  private refreshToken: string | undefined;

  constructor(
    private readonly http: HttpClient,
    private readonly credential: Credential | undefined,
    /** The registry's host (host:port), to judge where a realm may live. */
    private readonly registryHost: string,
    private readonly registryIsHttps: boolean,
  ) {
    this.refreshToken = credential?.identityToken;
  }

  private key(req: TokenRequest): string {
    return `${req.realm}|${req.service ?? ''}|${[...req.scopes].sort().join(' ')}`;
  }

  /** Token requests under way: requests made at once (a signature lookup's) share one. */
  private readonly pending = new Map<string, Promise<CachedToken>>();

  invalidate(req: TokenRequest): void {
    this.cache.delete(this.key(req));
    this.pending.delete(this.key(req));
  }

  async get(req: TokenRequest): Promise<string> {
    const k = this.key(req);
    const hit = this.cache.get(k);
    if (hit && hit.expiresAt > Date.now()) return hit.token;
    let p = this.pending.get(k);
    if (!p) {
      const started = (p = this.fetch(req).finally(() => {
        if (this.pending.get(k) === started) this.pending.delete(k);
      }));
      this.pending.set(k, p);
    }
    const t = await p;
    this.cache.set(k, t);
    return t.token;
  }

  private checkRealm(realm: string): URL {
    let u: URL;
    try {
      u = new URL(realm);
    } catch {
      throw new PlinthError('UNAUTHORIZED', `registry ${this.registryHost} sent an invalid token realm "${realm.slice(0, 200)}"`);
    }
    if (u.protocol === 'https:') return u;
    if (u.protocol !== 'http:') throw new PlinthError('UNAUTHORIZED', `token realm must be an http(s) URL, got ${u.protocol}`);
    // Plain-HTTP realms are only acceptable on the registry's own host, and only when the registry
    // itself is reached over plain HTTP (loopback or --insecure): credentials never cross hosts in clear text.
    const regHostname = new URL(`http://${this.registryHost}`).hostname;
    if (u.hostname !== regHostname || this.registryIsHttps) {
      throw new PlinthError(
        'INSECURE_REFUSED',
        `refusing token realm ${u.origin}: a token server on another host than the registry (${this.registryHost}) must use HTTPS`,
      );
    }
    return u;
  }

  private async fetch(req: TokenRequest): Promise<CachedToken> {
    const realm = this.checkRealm(req.realm);
    const cred = this.credential;
    if (cred?.registryToken) return { token: cred.registryToken, expiresAt: Date.now() + 3600_000 };
    let res;
    if (this.refreshToken || (cred?.username && cred.password !== undefined && cred.identityToken)) {
      // OAuth2: refresh-token grant (docker's identitytoken).
      const form = new URLSearchParams();
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', this.refreshToken!);
      form.set('client_id', 'plinth');
      if (req.service) form.set('service', req.service);
      form.set('scope', req.scopes.join(' '));
      res = await this.http.request({
        method: 'POST',
        url: realm.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: () => form.toString(),
      });
    } else {
      const u = new URL(realm);
      if (req.service) u.searchParams.set('service', req.service);
      for (const s of req.scopes) u.searchParams.append('scope', s);
      const headers: Record<string, string> = {};
      if (cred?.username !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password ?? ''}`).toString('base64')}`;
      }
      res = await this.http.request({ method: 'GET', url: u.toString(), headers });
    }
    if (res.status === 401 || res.status === 403) {
      const text = (await res.text(64 * 1024).catch(() => '')).slice(0, 300);
      throw new PlinthError(
        'UNAUTHORIZED',
        cred
          ? `authentication to ${this.registryHost} failed: the token server ${realm.host} rejected the credentials${text ? ` (${oneLine(text)})` : ''}`
          : `${this.registryHost} requires authentication: log in (docker login / --username) and retry`,
      );
    }
    if (res.status !== 200) {
      const text = (await res.text(64 * 1024).catch(() => '')).slice(0, 300);
      throw new PlinthError('UNAUTHORIZED', `token server ${realm.host} answered HTTP ${res.status}${text ? `: ${oneLine(text)}` : ''}`);
    }
    const doc = await res.json<Record<string, unknown>>(1 << 20);
    const token = typeof doc.token === 'string' && doc.token ? doc.token : typeof doc.access_token === 'string' ? doc.access_token : '';
    if (!token) throw new PlinthError('UNAUTHORIZED', `token server ${realm.host} answered without a token`);
    if (typeof doc.refresh_token === 'string' && doc.refresh_token) this.refreshToken = doc.refresh_token;
    // Spec: default 60 s; expire a little early so a token never dies mid-request.
    let ttl = typeof doc.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
    ttl = Math.max(ttl - Math.min(10, ttl / 5), 1);
    return { token, expiresAt: Date.now() + ttl * 1000 };
  }
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
