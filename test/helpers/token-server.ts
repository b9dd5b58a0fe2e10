/**
 * A tiny bearer-token server speaking the Docker registry token protocol
 * (https://distribution.github.io/distribution/spec/auth/token/ and .../oauth/),
 * good enough for distribution 2.8 and for real clients such as skopeo.
 *
 *   GET  /token?service=S&scope=repository:NAME:pull,push&scope=...[&offline_token=true]
 *        optional HTTP Basic credentials
 *   POST /token   (application/x-www-form-urlencoded)
 *        grant_type=password&username=U&password=P&service=S&scope=A B&client_id=C[&access_type=offline]
 *        grant_type=refresh_token&refresh_token=R&service=S&scope=A B
 *
 * Tokens are JWTs signed with a key whose self-signed certificate is written to
 * `certPath`; the header carries `x5c: [DER cert]`, which distribution 2.8 verifies
 * against its `auth.token.rootcertbundle`.
 */
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { listenOnLoopback } from './common.js';

const execFileP = promisify(execFile);

/** Requests carrying this header are served but not recorded in `requests` (helpers' own token fetches). */
export const UNRECORDED_HEADER = 'x-plinth-test-unrecorded';

/** distribution 2.8 accepts tokens up to this many seconds after `exp` (and before `nbf`). */
export const DISTRIBUTION_TOKEN_LEEWAY_SECONDS = 60;

export interface TokenServerOptions {
  /** Directory for key.pem / cert.pem (must exist). */
  dir: string;
  /** Expected `service`; also the token's `aud` when the client does not send one. Default 'plinth-test'. */
  service?: string;
  /** `iss` claim. Default 'plinth-test-issuer'. */
  issuer?: string;
  username?: string;
  password?: string;
  /** Anonymous requests get pull access (true, default) or a token with no access at all (false). */
  anonymousPull?: boolean;
  /** Lifetime in seconds reported as `expires_in` and enforced by the registry. Default 300. */
  tokenExpiresIn?: number;
  /**
   * distribution 2.8 adds a fixed 60 s leeway to `exp`. By default the `exp` claim is moved back
   * by that much so that a token really stops working after `tokenExpiresIn` seconds (which is
   * what makes short lifetimes useful for refresh tests). Set false for a plain `exp = iat + expires_in`.
   */
  compensateLeeway?: boolean;
  /** Signature algorithm. Default 'ES256'. */
  alg?: 'ES256' | 'RS256';
}

export interface TokenRequest {
  method: 'GET' | 'POST';
  /** Every requested scope, as sent (`repository:test/a:pull,push`). */
  scopes: string[];
  /** Authenticated user name; undefined for anonymous requests and rejected credentials. */
  user?: string;
  service?: string;
  /** POST only: `password` or `refresh_token`. */
  grantType?: string;
  /** A refresh token was asked for (GET offline_token=true, POST access_type=offline). */
  offline: boolean;
  /** HTTP status the token server answered. */
  status: number;
}

export interface GrantedAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** `http://127.0.0.1:PORT/token`, the registry's `auth.token.realm`. */
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificate for `auth.token.rootcertbundle`. */
  certPath: string;
  tokenExpiresIn: number;
  /** Every request to /token, in order. Tests may clear it (`requests.length = 0`). */
  requests: TokenRequest[];
  /** Mint a token directly (no HTTP), e.g. for a test that wants to hand-craft access. */
  mint(user: string | undefined, access: GrantedAccess[], expiresIn?: number): string;
  stop(): Promise<void>;
}

interface ParsedScope {
  type: string;
  name: string;
  actions: string[];
}

/** `type:name:actions`; the name may itself contain colons (`repository:host:5000/x:pull`). */
export function parseScope(scope: string): ParsedScope | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  const type = scope.slice(0, first);
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a.length > 0);
  return { type, name, actions };
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

function splitScopes(values: string[]): string[] {
  return values.flatMap((v) => v.split(' ')).filter((s) => s.length > 0);
}

function readBody(req: IncomingMessage, limit = 64 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBasic(header: string | undefined): { user: string; pass: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+(\S+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), pass: decoded.slice(colon + 1) };
}

function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(text);
}

/** Create a key and self-signed certificate with openssl (the registry trusts the cert). */
async function makeSigningCert(dir: string, alg: 'ES256' | 'RS256'): Promise<{ keyPath: string; certPath: string }> {
  const keyPath = join(dir, 'token-key.pem');
  const certPath = join(dir, 'token-cert.pem');
  const keyArgs = alg === 'ES256' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
  try {
    await execFileP(
      'openssl',
      ['req', '-x509', ...keyArgs, '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '7', '-subj', '/CN=plinth-test-token-issuer'],
      { timeout: 60_000 },
    );
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new Error('token server: `openssl` not found on PATH (apt-get install openssl)');
    throw new Error(`token server: openssl req -x509 failed: ${err.stderr ?? err.message}`);
  }
  return { keyPath, certPath };
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const service = opts.service ?? 'plinth-test';
  const issuer = opts.issuer ?? 'plinth-test-issuer';
  const anonymousPull = opts.anonymousPull ?? true;
  const tokenExpiresIn = opts.tokenExpiresIn ?? 300;
  const compensate = opts.compensateLeeway ?? true;
  const alg = opts.alg ?? 'ES256';

  const { keyPath, certPath } = await makeSigningCert(opts.dir, alg);
  const certPem = await readFile(certPath, 'utf8');
  const key: KeyObject = createPrivateKey(await readFile(keyPath, 'utf8'));
  const x5c = [new X509Certificate(certPem).raw.toString('base64')];

  const requests: TokenRequest[] = [];
  const refreshTokens = new Map<string, string>(); // refresh token -> user

  function mint(user: string | undefined, access: GrantedAccess[], expiresIn = tokenExpiresIn, aud = service): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg, x5c };
    const claims = {
      iss: issuer,
      sub: user ?? '',
      aud,
      exp: now + expiresIn - (compensate ? DISTRIBUTION_TOKEN_LEEWAY_SECONDS : 0),
      nbf: now - 1,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig =
      alg === 'ES256'
        ? sign('sha256', Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' })
        : sign('sha256', Buffer.from(signingInput), key);
    return `${signingInput}.${b64url(sig)}`;
  }

  function grant(user: string | undefined, scopes: string[]): GrantedAccess[] {
    const out: GrantedAccess[] = [];
    for (const s of scopes) {
      const p = parseScope(s);
      if (!p) continue;
      let actions: string[];
      if (user !== undefined) actions = p.actions;
      else if (anonymousPull && p.type === 'repository') actions = p.actions.filter((a) => a === 'pull');
      else actions = [];
      if (actions.length > 0) out.push({ type: p.type, name: p.name, actions: [...new Set(actions)] });
    }
    return out;
  }

  function checkCreds(user: string, pass: string): boolean {
    return opts.username !== undefined && user === opts.username && pass === (opts.password ?? '');
  }

  function newRefreshToken(user: string): string {
    const t = `plinth-refresh-${randomBytes(18).toString('base64url')}`;
    refreshTokens.set(t, user);
    return t;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/token') {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    const issuedAt = new Date().toISOString();

    if (req.method === 'GET') {
      const scopes = splitScopes(url.searchParams.getAll('scope'));
      const reqService = url.searchParams.get('service') ?? undefined;
      const offline = url.searchParams.get('offline_token') === 'true';
      const record: TokenRequest = { method: 'GET', scopes, service: reqService, offline, status: 200 };
      if (req.headers[UNRECORDED_HEADER] === undefined) requests.push(record);
      let user: string | undefined;
      const basic = parseBasic(req.headers.authorization);
      if (req.headers.authorization !== undefined) {
        if (!basic || !checkCreds(basic.user, basic.pass)) {
          record.status = 401;
          sendJson(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }, {
            'WWW-Authenticate': 'Basic realm="plinth-test-token"',
          });
          return;
        }
        user = basic.user;
        record.user = user;
      }
      const token = mint(user, grant(user, scopes), tokenExpiresIn, reqService ?? service);
      const body: Record<string, unknown> = { token, access_token: token, expires_in: tokenExpiresIn, issued_at: issuedAt };
      if (offline && user !== undefined) body.refresh_token = newRefreshToken(user);
      sendJson(res, 200, body);
      return;
    }

    if (req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      const grantType = form.get('grant_type') ?? undefined;
      const scopes = splitScopes(form.getAll('scope'));
      const reqService = form.get('service') ?? undefined;
      const offline = form.get('access_type') === 'offline';
      const record: TokenRequest = { method: 'POST', scopes, service: reqService, grantType, offline, status: 200 };
      if (req.headers[UNRECORDED_HEADER] === undefined) requests.push(record);
      let user: string;
      let refresh: string | undefined;
      if (grantType === 'password') {
        const u = form.get('username') ?? '';
        const p = form.get('password') ?? '';
        if (!checkCreds(u, p)) {
          record.status = 401;
          sendJson(res, 401, { error: 'invalid_grant', error_description: 'invalid username or password' });
          return;
        }
        user = u;
        if (offline) refresh = newRefreshToken(user);
      } else if (grantType === 'refresh_token') {
        const r = form.get('refresh_token') ?? '';
        const owner = refreshTokens.get(r);
        if (owner === undefined) {
          record.status = 401;
          sendJson(res, 401, { error: 'invalid_grant', error_description: 'unknown refresh token' });
          return;
        }
        user = owner;
        refresh = r;
      } else {
        record.status = 400;
        sendJson(res, 400, { error: 'unsupported_grant_type' });
        return;
      }
      record.user = user;
      const token = mint(user, grant(user, scopes), tokenExpiresIn, reqService ?? service);
      const body: Record<string, unknown> = {
        access_token: token,
        expires_in: tokenExpiresIn,
        issued_at: issuedAt,
        scope: scopes.join(' '),
      };
      if (refresh !== undefined) body.refresh_token = refresh;
      sendJson(res, 200, body);
      return;
    }

    sendJson(res, 405, { error: 'method_not_allowed' }, { Allow: 'GET, POST' });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(e) });
      else res.destroy();
    });
  });
  // Unref'd: a forgotten stop() must not keep the test process alive.
  const listening = await listenOnLoopback(server);
  const url = `http://127.0.0.1:${listening.port}`;

  return {
    url,
    realm: `${url}/token`,
    service,
    issuer,
    certPath,
    tokenExpiresIn,
    requests,
    mint: (user, access, expiresIn) => mint(user, access, expiresIn),
    stop: listening.stop,
  };
}
