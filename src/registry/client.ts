import { finished, type Readable } from 'node:stream';
import { PlinthError, type ErrorCode } from '../util/errors.js';
import { CountingStream, digestOf, hasher, parseDigest, verifyBytes, VerifyingStream } from '../oci/digest.js';
import { HttpClient, type HttpOptions, type HttpRequest, type HttpResponse } from './http.js';
import { parseChallenges, TokenCache } from './auth.js';
import { resolveCredential, type Credential, type CredentialOptions } from './credentials.js';
import { isLoopbackRegistry, registryApiHost } from '../oci/reference.js';

/**
 * A client for the OCI distribution API of one registry: pull and push manifests and blobs,
 * cross-repository mounts, tag listing and the referrers API with the tag-schema fallback.
 * Every manifest and blob is verified against its digest; a mismatch is refused.
 */

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Manifests larger than this are refused (the distribution spec suggests 4 MiB). */
export const MANIFEST_LIMIT = 4 * 1024 * 1024;

export interface RegistryOptions extends HttpOptions, CredentialOptions {
  /** Allow plain HTTP and unverified TLS for this registry (skopeo's --tls-verify=false). */
  insecure?: boolean;
  /** Preloaded credential (skips config lookup). */
  credential?: Credential;
  /** Chunk size for chunked uploads; 0 = monolithic uploads. */
  chunkSize?: number;
  /**
   * Answers of GET /v2/ shared by the clients given the same map: one ping per registry for a short
   * task that opens several images of one registry (a rebase: the image, both bases, the
   * destination). Each client still resolves its own credentials and takes the challenge itself.
   * Not for long-lived processes: an answer is kept as long as the map.
   */
  pings?: Map<string, Promise<PingAnswer>>;
}

/** What GET /v2/ answered: the scheme that worked, and 200 or 401 with its challenge. */
export interface PingAnswer {
  scheme: string;
  status: 200 | 401;
  wwwAuthenticate: string | string[] | undefined;
}

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export interface BlobInfo {
  digest: string;
  size: number;
}

type Scope = string;

function pullScope(repo: string): Scope {
  return `repository:${repo}:pull`;
}
function pushScope(repo: string): Scope {
  return `repository:${repo}:pull,push`;
}

/** The tag a referrers index is stored under when the registry has no referrers API. */
export function referrersTag(digest: string): string {
  const i = digest.indexOf(':');
  const alg = digest.slice(0, i).slice(0, 32);
  const enc = digest.slice(i + 1).slice(0, 64);
  return `${alg}-${enc}`.replace(/[^a-zA-Z0-9_.-]/g, '-');
}

export class RegistryClient {
  readonly registry: string;
  readonly host: string;
  private readonly opts: RegistryOptions;
  readonly http: HttpClient;
  private base: string | undefined;
  private pinged: Promise<void> | undefined;
  private challenge: { scheme: 'bearer' | 'basic' | 'none'; realm?: string; service?: string } = { scheme: 'none' };
  private credential: Credential | undefined;
  private tokens: TokenCache | undefined;

  constructor(registry: string, opts: RegistryOptions = {}) {
    this.registry = registry;
    this.host = registryApiHost(registry);
    this.opts = opts;
    this.http = new HttpClient({ ...opts, insecureTls: opts.insecure === true || opts.insecureTls === true });
  }

  close(): void {
    this.http.close();
  }

  get plainHttpAllowed(): boolean {
    return this.opts.insecure === true || isLoopbackRegistry(this.host);
  }

  /** GET /v2/ once: pick the scheme (HTTPS, or plain HTTP where allowed) and learn the auth challenge. */
  ping(): Promise<void> {
    this.pinged ??= this.doPing().catch((e) => {
      this.pinged = undefined;
      throw e;
    });
    return this.pinged;
  }

  private async doPing(): Promise<void> {
    this.credential = this.opts.credential ?? (await resolveCredential(this.registry, this.opts));
    const schemes = this.plainHttpAllowed ? (isLoopbackRegistry(this.host) ? ['http', 'https'] : ['https', 'http']) : ['https'];
    const cache = this.opts.pings;
    let answer: Promise<PingAnswer>;
    if (cache) {
      // Everything the answer depends on (credentials are not sent on a ping).
      const key = JSON.stringify([this.host, schemes, this.opts.insecure === true || this.opts.insecureTls === true, String(this.opts.ca ?? ''), this.opts.network ?? null]);
      const known = cache.get(key);
      if (known) answer = known;
      else {
        cache.set(key, (answer = this.probe(schemes)));
        answer.catch(() => cache.delete(key));
      }
    } else answer = this.probe(schemes);
    const { scheme, status, wwwAuthenticate } = await answer;
    this.base = `${scheme}://${this.host}`;
    if (status === 200) {
      // No challenge: no credentials are sent until the registry asks for them (a 401 later).
      this.challenge = { scheme: 'none' };
      return;
    }
    if (!this.adoptChallenge(wwwAuthenticate, scheme === 'https')) {
      throw new PlinthError('UNAUTHORIZED', `${this.registry} requires an authentication scheme Plinth does not support (${String(wwwAuthenticate).slice(0, 100)})`);
    }
  }

  /** GET /v2/ by each scheme in turn until one answers 200 or 401. */
  private async probe(schemes: string[]): Promise<PingAnswer> {
    let lastErr: unknown;
    for (const scheme of schemes) {
      const url = `${scheme}://${this.host}/v2/`;
      let res: HttpResponse;
      try {
        res = await this.http.request({ method: 'GET', url, noRetry: schemes.length > 1 && scheme !== schemes[schemes.length - 1] });
      } catch (e) {
        lastErr = e;
        continue;
      }
      await res.discard();
      if (res.status === 200 || res.status === 401) return { scheme, status: res.status, wwwAuthenticate: res.headers['www-authenticate'] };
      if (res.status === 404) {
        throw new PlinthError('REGISTRY_ERROR', `${this.host} does not serve the registry API (GET /v2/ answered 404)`);
      }
      lastErr = new PlinthError('REGISTRY_ERROR', `${this.host} answered HTTP ${res.status} to GET /v2/`);
    }
    if (lastErr instanceof PlinthError && !this.plainHttpAllowed && lastErr.code === 'NETWORK' && /TLS handshake/.test(lastErr.message)) {
      throw new PlinthError('INSECURE_REFUSED', `${this.host} does not speak HTTPS; plain HTTP is only used for localhost or with --insecure`);
    }
    throw lastErr;
  }

  /**
   * Take the registry's WWW-Authenticate challenge (Bearer preferred, else Basic). Returns false
   * when it offers no scheme Plinth supports. A password never goes over plain HTTP unless plain
   * HTTP is allowed for this registry (loopback or --insecure).
   */
  private adoptChallenge(header: string | string[] | undefined, https: boolean): boolean {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      if (!bearer.params.realm) throw new PlinthError('UNAUTHORIZED', `${this.registry} sent a Bearer challenge without a realm`);
      this.challenge = { scheme: 'bearer', realm: bearer.params.realm, ...(bearer.params.service ? { service: bearer.params.service } : {}) };
      this.tokens = new TokenCache(this.http, this.credential, this.host, https);
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!https && !this.plainHttpAllowed) throw new PlinthError('INSECURE_REFUSED', `refusing to send a password to ${this.registry} over plain HTTP`);
      this.challenge = { scheme: 'basic' };
      return true;
    }
    return false;
  }

  private async authorization(scopes: Scope[]): Promise<string | undefined> {
    if (this.challenge.scheme === 'basic') {
      const c = this.credential;
      if (!c || c.username === undefined) return undefined;
      return `Basic ${Buffer.from(`${c.username}:${c.password ?? ''}`).toString('base64')}`;
    }
    if (this.challenge.scheme === 'bearer' && this.tokens) {
      const token = await this.tokens.get({ realm: this.challenge.realm!, ...(this.challenge.service ? { service: this.challenge.service } : {}), scopes });
      return `Bearer ${token}`;
    }
    return undefined;
  }

  /** One API call with authorization; retries once with a fresh token on 401. */
  private async call(req: Omit<HttpRequest, 'url'> & { path: string; url?: string }, scopes: Scope[]): Promise<HttpResponse> {
    await this.ping();
    const url = req.url ?? `${this.base}${req.path}`;
    const target = new URL(url);
    const base = new URL(this.base!);
    if (base.protocol === 'https:' && target.protocol === 'http:') {
      throw new PlinthError('INSECURE_REFUSED', `${this.registry} sent a plain-HTTP location (${target.origin}); refusing to downgrade from HTTPS`);
    }
    // Credentials only ever go to the registry's own origin (upload Locations may point elsewhere).
    const sameOrigin = target.origin === base.origin;
    for (let attempt = 0; ; attempt++) {
      const auth = sameOrigin ? await this.authorization(scopes) : undefined;
      const headers = { ...(req.headers ?? {}) };
      if (auth) headers.authorization = auth;
      const res = await this.http.request({ ...req, url, headers });
      if (res.status === 401 && attempt === 0 && sameOrigin && this.challenge.scheme === 'none') {
        // The registry answered /v2/ anonymously but wants credentials here: take its challenge.
        if (this.adoptChallenge(res.headers['www-authenticate'], base.protocol === 'https:') && ((this.challenge.scheme as string) === 'bearer' || this.credential?.username !== undefined)) {
          await res.discard();
          continue;
        }
      }
      if (res.status === 401 && attempt === 0 && this.challenge.scheme === 'bearer' && this.tokens) {
        await res.discard();
        // Expired or under-scoped token: forget it and ask again (the challenge may name a wider scope).
        const ch = parseChallenges(res.headers['www-authenticate']).find((c) => c.scheme === 'bearer');
        this.tokens.invalidate({ realm: this.challenge.realm!, ...(this.challenge.service ? { service: this.challenge.service } : {}), scopes });
        if (ch?.params.scope) {
          for (const s of ch.params.scope.split(' ')) if (!scopes.includes(s)) scopes = [...scopes, s];
        }
        continue;
      }
      return res;
    }
  }

  /** Turn an error response into a PlinthError with the registry's own code and message. */
  private async fail(res: HttpResponse, what: string): Promise<never> {
    let text = '';
    try {
      text = await res.text(64 * 1024);
    } catch {
      /* ignore */
    }
    let regCode = '';
    let regMsg = '';
    try {
      const doc = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> };
      const e = doc.errors?.[0];
      if (e) {
        regCode = String(e.code ?? '').slice(0, 64);
        regMsg = String(e.message ?? '').replace(/\s+/g, ' ').slice(0, 300);
      }
    } catch {
      regMsg = text.replace(/\s+/g, ' ').trim().slice(0, 200);
    }
    const map: Record<string, ErrorCode> = {
      MANIFEST_UNKNOWN: 'MANIFEST_UNKNOWN',
      NAME_UNKNOWN: 'NAME_UNKNOWN',
      BLOB_UNKNOWN: 'BLOB_UNKNOWN',
      UNAUTHORIZED: 'UNAUTHORIZED',
      DENIED: 'DENIED',
      MANIFEST_INVALID: 'MANIFEST_INVALID',
      MANIFEST_BLOB_UNKNOWN: 'BLOB_UNKNOWN',
      DIGEST_INVALID: 'DIGEST_MISMATCH',
      TOOMANYREQUESTS: 'REGISTRY_ERROR',
    };
    let code: ErrorCode = map[regCode] ?? 'REGISTRY_ERROR';
    if (res.status === 401) code = 'UNAUTHORIZED';
    else if (res.status === 403) code = 'DENIED';
    else if (res.status === 404 && code === 'REGISTRY_ERROR') code = 'MANIFEST_UNKNOWN';
    const detail = regMsg ? `: ${regMsg}` : '';
    let hint = '';
    if (code === 'UNAUTHORIZED') hint = this.credential ? ' (check the credentials)' : ' (log in with docker login, or pass --username/--password)';
    if (code === 'DENIED') hint = ' (the credentials are valid but not allowed to do this)';
    throw new PlinthError(code, `${what}: ${this.registry} answered ${res.status}${regCode ? ` ${regCode}` : ''}${detail}${hint}`, {
      status: res.status,
      registryCode: regCode,
    });
  }

  /** GET a manifest by tag or digest, verified (digest reference, Docker-Content-Digest, size limit). */
  async getManifest(repo: string, reference: string): Promise<FetchedManifest> {
    const what = `manifest ${this.registry}/${repo}${reference.includes(':') ? '@' : ':'}${reference}`;
    const res = await this.call(
      { method: 'GET', path: `/v2/${repo}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT } },
      [pullScope(repo)],
    );
    if (res.status !== 200) {
      if (res.status === 404) {
        const isDigest = reference.includes(':');
        try {
          await this.fail(res, what);
        } catch (e) {
          const pe = e as PlinthError;
          if (pe.code === 'NAME_UNKNOWN') throw new PlinthError('NAME_UNKNOWN', `repository ${this.registry}/${repo} does not exist`, pe.details);
          throw new PlinthError('MANIFEST_UNKNOWN', isDigest ? `${what} not found` : `tag "${reference}" not found in ${this.registry}/${repo}`, pe.details);
        }
      }
      return this.fail(res, `cannot get ${what}`);
    }
    const bytes = await res.bytes(MANIFEST_LIMIT);
    const mediaType = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
    let digest: string;
    if (reference.includes(':')) {
      verifyBytes(bytes, reference, what);
      digest = reference;
    } else {
      digest = digestOf(bytes);
    }
    const header = res.headers['docker-content-digest'];
    if (typeof header === 'string' && header) {
      let alg: string;
      try {
        alg = parseDigest(header).algorithm;
      } catch {
        throw new PlinthError('DIGEST_MISMATCH', `${this.registry} sent an invalid Docker-Content-Digest "${header.slice(0, 100)}" for ${what}`);
      }
      verifyBytes(bytes, header, `${what} (Docker-Content-Digest)`);
      if (alg !== 'sha256' && !reference.includes(':')) digest = header;
    }
    return { bytes, mediaType, digest };
  }

  /** HEAD a manifest: its descriptor, or undefined when it does not exist. */
  async headManifest(repo: string, reference: string): Promise<{ digest: string; size: number; mediaType: string } | undefined> {
    const res = await this.call(
      { method: 'HEAD', path: `/v2/${repo}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT } },
      [pullScope(repo)],
    );
    await res.discard();
    if (res.status === 404) return undefined;
    if (res.status !== 200) return this.fail(res, `cannot check manifest ${repo}:${reference}`);
    const digest = String(res.headers['docker-content-digest'] ?? '');
    if (!digest) return undefined;
    return { digest, size: Number(res.headers['content-length'] ?? 0), mediaType: String(res.headers['content-type'] ?? '').split(';')[0]!.trim() };
  }

  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const digest = digestOf(bytes);
    const res = await this.call(
      { method: 'PUT', path: `/v2/${repo}/manifests/${reference}`, headers: { 'content-type': mediaType }, body: () => bytes },
      [pushScope(repo)],
    );
    await (res.status === 201 || res.status === 200 || res.status === 202 ? res.discard() : this.fail(res, `cannot push manifest ${this.registry}/${repo}:${reference}`));
    const header = res.headers['docker-content-digest'];
    if (typeof header === 'string' && header && header !== digest && header.startsWith('sha256:')) {
      throw new PlinthError('DIGEST_MISMATCH', `${this.registry} stored manifest ${repo}:${reference} as ${header}, expected ${digest}`);
    }
    return digest;
  }

  async deleteManifest(repo: string, digest: string): Promise<void> {
    const res = await this.call({ method: 'DELETE', path: `/v2/${repo}/manifests/${digest}` }, [`repository:${repo}:delete`, pushScope(repo)]);
    if (res.status !== 202 && res.status !== 200) return this.fail(res, `cannot delete ${repo}@${digest}`);
    await res.discard();
  }

  /** HEAD a blob: its size, or undefined when the repository does not have it. */
  async blobExists(repo: string, digest: string, scopes?: Scope[]): Promise<number | undefined> {
    const res = await this.call({ method: 'HEAD', path: `/v2/${repo}/blobs/${digest}` }, scopes ?? [pullScope(repo)]);
    await res.discard();
    if (res.status === 200) return Number(res.headers['content-length'] ?? -1);
    if (res.status === 404) return undefined;
    return this.fail(res, `cannot check blob ${digest} in ${repo}`);
  }

  /** GET a blob as a stream that fails unless its bytes match the digest (and size when known). */
  async getBlob(repo: string, digest: string, size?: number): Promise<Readable> {
    const res = await this.blobResponse(repo, digest);
    const v = new VerifyingStream(digest, size, `blob ${digest} from ${this.registry}/${repo}`);
    res.body.on('error', (e) => v.destroy(e));
    return res.body.pipe(v);
  }

  private async blobResponse(repo: string, digest: string): Promise<HttpResponse> {
    const res = await this.call({ method: 'GET', path: `/v2/${repo}/blobs/${digest}` }, [pullScope(repo)]);
    if (res.status !== 200) {
      if (res.status === 404) {
        await res.discard();
        throw new PlinthError('BLOB_UNKNOWN', `blob ${digest} not found in ${this.registry}/${repo}`);
      }
      return this.fail(res, `cannot get blob ${digest}`);
    }
    return res;
  }

  /**
   * Small blobs (configs, signatures): read fully, verified. The checks and messages of getBlob's
   * VerifyingStream, made on the body's events (no stream pipeline and async iterator to set up:
   * cheaper in a short run).
   */
  async getBlobBytes(repo: string, digest: string, size?: number, limit = 64 * 1024 * 1024): Promise<Buffer> {
    if (size !== undefined && size > limit) {
      throw new PlinthError('MANIFEST_TOO_LARGE', `blob ${digest} is ${size} bytes, more than the ${limit}-byte limit for documents`);
    }
    const res = await this.blobResponse(repo, digest);
    const expected = parseDigest(digest);
    const what = `blob ${digest} from ${this.registry}/${repo}`;
    const hash = hasher(expected.algorithm);
    const body = res.body;
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let seen = 0;
      let settled = false;
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        body.destroy();
        reject(e);
      };
      body.on('data', (c: Buffer) => {
        if (settled) return;
        seen += c.length;
        if (size !== undefined && seen > size) return fail(new PlinthError('SIZE_MISMATCH', `${what} ${expected.digest}: more than the expected ${size} bytes`, { digest: expected.digest }));
        hash.update(c);
        if (seen > limit) return fail(new PlinthError('MANIFEST_TOO_LARGE', `blob ${digest} is more than the ${limit}-byte limit for documents`));
        chunks.push(c);
      });
      finished(body, (err) => {
        if (settled) return;
        if (err) return fail(err);
        if (size !== undefined && seen !== size) return fail(new PlinthError('SIZE_MISMATCH', `${what} ${expected.digest}: got ${seen} bytes, expected ${size}`, { digest: expected.digest }));
        const got = `${expected.algorithm}:${hash.digest('hex')}`;
        if (got !== expected.digest) return fail(new PlinthError('DIGEST_MISMATCH', `${what} content does not match its digest: expected ${expected.digest}, got ${got}`, { expected: expected.digest, actual: got }));
        settled = true;
        resolve(Buffer.concat(chunks));
      });
    });
  }

  /** Try a cross-repository mount; true when the registry mounted it. */
  async mountBlob(repo: string, digest: string, fromRepo: string): Promise<boolean> {
    const q = new URLSearchParams({ mount: digest, from: fromRepo });
    const res = await this.call({ method: 'POST', path: `/v2/${repo}/blobs/uploads/?${q}`, noRetry: false }, [pushScope(repo), pullScope(fromRepo)]);
    if (res.status === 201) {
      await res.discard();
      return true;
    }
    if (res.status === 202) {
      // Not mounted: the registry opened an upload session instead; cancel it.
      await res.discard();
      const loc = res.headers.location;
      if (loc) {
        const url = new URL(String(loc), this.base).toString();
        await this.call({ method: 'DELETE', path: '', url }, [pushScope(repo)]).then((r) => r.discard()).catch(() => {});
      }
      return false;
    }
    return this.fail(res, `cannot mount blob ${digest} from ${fromRepo}`);
  }

  /**
   * Upload a blob. `open` is called for each attempt (uploads restart from scratch after a failure).
   * Monolithic (POST + PUT) by default; chunked (POST + PATCH… + PUT) when chunkSize > 0.
   */
  async uploadBlob(repo: string, blob: BlobInfo, open: () => Promise<Readable>, onProgress?: (n: number) => void): Promise<void> {
    const attempts = 3;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.uploadOnce(repo, blob, open, onProgress);
        return;
      } catch (e) {
        const pe = e as PlinthError;
        const retryable = pe instanceof PlinthError && (pe.code === 'NETWORK' || pe.code === 'TIMEOUT' || (pe.code === 'REGISTRY_ERROR' && Number(pe.details?.status) >= 500));
        if (!retryable || attempt >= attempts) throw e;
      }
    }
  }

  private async startUpload(repo: string): Promise<string> {
    const res = await this.call({ method: 'POST', path: `/v2/${repo}/blobs/uploads/` }, [pushScope(repo)]);
    if (res.status !== 202) return this.fail(res, `cannot start a blob upload to ${this.registry}/${repo}`);
    await res.discard();
    const loc = res.headers.location;
    if (!loc) throw new PlinthError('REGISTRY_ERROR', `${this.registry} opened an upload without a Location`);
    return new URL(String(loc), this.base).toString();
  }

  private async uploadOnce(repo: string, blob: BlobInfo, open: () => Promise<Readable>, onProgress?: (n: number) => void): Promise<void> {
    let location = await this.startUpload(repo);
    const chunkSize = this.opts.chunkSize ?? 0;
    const src = await open();
    // The source stream verifies the digest itself (ImageSource contract), and the registry checks
    // ?digest= on completion; here bytes are only counted.
    const count = new CountingStream(onProgress);
    src.on('error', (e) => count.destroy(e));
    const counted = src.pipe(count);
    const finish = (loc: string) => {
      const u = new URL(loc);
      u.searchParams.set('digest', blob.digest);
      return u.toString();
    };
    if (chunkSize <= 0) {
      let used = false;
      const res = await this.call(
        {
          method: 'PUT',
          path: '',
          url: finish(location),
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
          body: () => {
            if (used) throw new PlinthError('NETWORK', 'upload body cannot be replayed');
            used = true;
            return counted;
          },
          noRetry: true,
        },
        [pushScope(repo)],
      );
      if (res.status !== 201) return this.fail(res, `cannot upload blob ${blob.digest}`);
      await res.discard();
      return;
    }
    // Chunked: PATCH each chunk with its Content-Range, then PUT ?digest= with no body.
    let offset = 0;
    let pending: Buffer[] = [];
    let pendingLen = 0;
    const sendChunk = async (data: Buffer) => {
      const res = await this.call(
        {
          method: 'PATCH',
          path: '',
          url: location,
          headers: {
            'content-type': 'application/octet-stream',
            'content-range': `${offset}-${offset + data.length - 1}`,
            'content-length': String(data.length),
          },
          body: () => data,
          noRetry: true,
        },
        [pushScope(repo)],
      );
      if (res.status !== 202) return this.fail(res, `chunk upload of ${blob.digest} failed at offset ${offset}`);
      await res.discard();
      offset += data.length;
      if (res.headers.location) location = new URL(String(res.headers.location), this.base).toString();
    };
    for await (const c of counted as AsyncIterable<Buffer>) {
      pending.push(c);
      pendingLen += c.length;
      while (pendingLen >= chunkSize) {
        const all = Buffer.concat(pending);
        await sendChunk(all.subarray(0, chunkSize));
        const rest = all.subarray(chunkSize);
        pending = rest.length ? [rest] : [];
        pendingLen = rest.length;
      }
    }
    if (pendingLen > 0) await sendChunk(Buffer.concat(pending));
    const res = await this.call({ method: 'PUT', path: '', url: finish(location), headers: { 'content-length': '0' }, noRetry: true }, [pushScope(repo)]);
    if (res.status !== 201) return this.fail(res, `cannot complete upload of ${blob.digest}`);
    await res.discard();
  }

  /** All tags of a repository (follows Link pagination). */
  async listTags(repo: string, pageSize = 1000): Promise<string[]> {
    return this.listPaged(`/v2/${repo}/tags/list?n=${pageSize}`, 'tags', [pullScope(repo)], `tags of ${this.registry}/${repo}`, `repository ${this.registry}/${repo} does not exist`);
  }

  /** Every repository the registry lists (`/v2/_catalog`, Link pagination; the token scope is registry:catalog:*). */
  async listRepositories(pageSize = 1000): Promise<string[]> {
    return this.listPaged(`/v2/_catalog?n=${pageSize}`, 'repositories', ['registry:catalog:*'], `repositories of ${this.registry}`, `${this.registry} does not list its repositories (no /v2/_catalog)`);
  }

  private async listPaged(first: string, field: 'tags' | 'repositories', scopes: Scope[], what: string, notFound: string): Promise<string[]> {
    const out: string[] = [];
    let path = first;
    for (let page = 0; page < 10_000; page++) {
      const res = await this.call({ method: 'GET', path }, scopes);
      if (res.status === 404) {
        await res.discard();
        throw new PlinthError('NAME_UNKNOWN', notFound);
      }
      if (res.status !== 200) return this.fail(res, `cannot list ${what}`);
      const doc = await res.json<Record<string, unknown>>(MANIFEST_LIMIT * 4);
      const list = doc[field];
      if (list != null && !Array.isArray(list)) throw new PlinthError('REGISTRY_ERROR', `${this.registry} answered a ${field} list that is not a list`);
      for (const t of (list as unknown[] | null) ?? []) if (typeof t === 'string') out.push(t);
      const link = String(res.headers.link ?? '');
      const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
      if (!m) break;
      const next = new URL(m[1]!, this.base);
      if (next.host !== new URL(this.base!).host) throw new PlinthError('REGISTRY_ERROR', `${this.registry} sent a pagination link to another host`);
      path = `${next.pathname}${next.search}`;
    }
    return out;
  }

  /**
   * The referrers of a manifest: the referrers API when the registry has it, else the
   * `<alg>-<hex>` tag-schema index. Returns an OCI index document (possibly empty).
   */
  async referrers(repo: string, digest: string, artifactType?: string): Promise<{ manifests: Array<Record<string, unknown>>; source: 'api' | 'tag-schema' }> {
    parseDigest(digest);
    const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const res = await this.call({ method: 'GET', path: `/v2/${repo}/referrers/${digest}${q}`, headers: { accept: 'application/vnd.oci.image.index.v1+json' } }, [pullScope(repo)]);
    if (res.status === 200 && String(res.headers['content-type'] ?? '').startsWith('application/vnd.oci.image.index.v1+json')) {
      const doc = await res.json<{ manifests?: unknown }>(MANIFEST_LIMIT);
      let manifests = (Array.isArray(doc?.manifests) ? (doc.manifests as unknown[]) : []).filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object' && !Array.isArray(m));
      if (artifactType && !res.headers['oci-filters-applied']) manifests = manifests.filter((m) => m.artifactType === artifactType);
      return { manifests, source: 'api' };
    }
    await res.discard();
    if (res.status !== 404 && res.status !== 200 && res.status !== 400) return this.fail(res, `cannot list referrers of ${digest}`);
    let fallback: FetchedManifest;
    try {
      fallback = await this.getManifest(repo, referrersTag(digest));
    } catch (e) {
      if (e instanceof PlinthError && (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN')) return { manifests: [], source: 'tag-schema' };
      throw e;
    }
    let doc: { manifests?: unknown };
    try {
      doc = JSON.parse(fallback.bytes.toString('utf8')) as { manifests?: unknown };
    } catch {
      throw new PlinthError('MANIFEST_INVALID', `referrers index ${repo}:${referrersTag(digest)} is not valid JSON`);
    }
    let manifests = (Array.isArray(doc?.manifests) ? (doc.manifests as unknown[]) : []).filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object' && !Array.isArray(m));
    if (artifactType) manifests = manifests.filter((m) => m.artifactType === artifactType);
    return { manifests, source: 'tag-schema' };
  }

  /**
   * After pushing a manifest with a `subject`, record it for registries without the referrers API:
   * add its descriptor to the `<alg>-<hex>` tag-schema index (read-modify-write).
   * Registries that process `subject` themselves answer with an OCI-Subject header, and nothing is needed.
   */
  async addReferrer(repo: string, subjectDigest: string, descriptor: Record<string, unknown>): Promise<void> {
    const tag = referrersTag(subjectDigest);
    let manifests: Array<Record<string, unknown>> = [];
    try {
      const cur = await this.getManifest(repo, tag);
      const doc = JSON.parse(cur.bytes.toString('utf8')) as { manifests?: unknown } | null;
      if (Array.isArray(doc?.manifests)) manifests = (doc.manifests as unknown[]).filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object' && !Array.isArray(m));
    } catch (e) {
      if (!(e instanceof PlinthError && (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN'))) throw e;
    }
    if (manifests.some((m) => m.digest === descriptor.digest)) return;
    manifests.push(descriptor);
    const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests };
    await this.putManifest(repo, tag, Buffer.from(JSON.stringify(index)), 'application/vnd.oci.image.index.v1+json');
  }
}
