import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken, sameSecret, serveHttp, type RunningHttp } from '../util/http.js';
import { PlinthError, describeError } from '../util/errors.js';
import type { Catalog } from '../provenance/catalog.js';
import { OCCURRENCE_KINDS, type MetaStore, type StoredNote, type StoredOccurrence } from './store.js';
import type { StoreConnector } from './connector.js';
import { consumers, history, listImages, normaliseTime, parseSeverity } from './queries.js';

/**
 * The store's read-only JSON API (`plinth api`, `plinth serve --api`): Plinth's own queries under
 * /v1/images, /v1/history, /v1/consumers, /v1/findings, /v1/decisions, and a Grafeas v1 read subset
 * under /v1/projects/{project}/… in proto3 JSON with pageSize/pageToken, so Grafeas REST clients
 * can read Plinth. Errors are Google API errors: {"error": {"code", "message", "status"}}.
 * Documented in docs/api.md and docs/openapi.yaml.
 */

export interface ApiOptions {
  /** Bearer token every request must carry (none: open, for loopback use). */
  token?: string;
  /** The Grafeas project name served (default "plinth"). */
  project?: string;
  catalog?: Catalog;
}

const STATUS: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 404: 'NOT_FOUND', 405: 'UNIMPLEMENTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
  res.end(text);
}

function tokenOk(header: string | undefined, token: string): boolean {
  const given = bearerToken(header);
  return given !== undefined && sameSecret(given, token);
}

function pageSize(v: string | null): number {
  if (v === null || v === '') return DEFAULT_PAGE;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new HttpError(400, `pageSize must be a non-negative integer, got "${v}"`);
  return n === 0 ? DEFAULT_PAGE : Math.min(n, MAX_PAGE);
}

/** Page tokens are the last id of the previous page, opaque to clients. */
function decodeToken(v: string | null): string | undefined {
  if (!v) return undefined;
  const s = Buffer.from(v, 'base64url').toString('utf8');
  if (!s.startsWith('after:') || s.length > 600) throw new HttpError(400, 'pageToken is not one this server issued');
  return s.slice('after:'.length);
}

function encodeToken(last: string): string {
  return Buffer.from(`after:${last}`).toString('base64url');
}

/**
 * The Grafeas filter subset: `field = "value"` terms joined by AND, for resourceUrl (also
 * resource_url), kind and noteName. Anything else is refused rather than ignored.
 */
export function parseFilter(filter: string | null): { resourceUri?: string; kind?: string; note?: string } {
  const out: { resourceUri?: string; kind?: string; note?: string } = {};
  if (!filter || !filter.trim()) return out;
  if (filter.length > 4096) throw new HttpError(400, 'filter is longer than 4096 characters');
  const term = /^\s*([A-Za-z_.]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:AND\s+|$)/;
  let rest = filter;
  while (rest.trim()) {
    const m = term.exec(rest);
    if (!m) throw new HttpError(400, `filter "${filter}" is not supported: use terms like resourceUrl="…", kind="VULNERABILITY" or noteName="…" joined by AND`);
    const value = m[2]!.replace(/\\(.)/g, '$1');
    const field = m[1]!;
    if (field === 'resourceUrl' || field === 'resource_url' || field === 'resourceUri' || field === 'resource.uri') out.resourceUri = value;
    else if (field === 'kind') {
      if (!(OCCURRENCE_KINDS as readonly string[]).includes(value)) throw new HttpError(400, `kind "${value}" is not one of ${OCCURRENCE_KINDS.join(', ')}`);
      out.kind = value;
    } else if (field === 'noteName' || field === 'note_name') out.note = value;
    else throw new HttpError(400, `filter field "${field}" is not supported (resourceUrl, kind, noteName)`);
    rest = rest.slice(m[0].length);
  }
  return out;
}

const KIND_FIELD: Record<string, string> = { IMAGE: 'image', PACKAGE: 'package', VULNERABILITY: 'vulnerability', BUILD: 'build', ATTESTATION: 'attestation', DEPLOYMENT: 'deployment', DISCOVERY: 'discovery', COMPLIANCE: 'compliance' };

/** An occurrence in Grafeas v1 proto3 JSON. */
export function grafeasOccurrence(project: string, o: StoredOccurrence): Record<string, unknown> {
  return {
    name: `projects/${project}/occurrences/${o.id}`,
    resourceUri: o.resourceUri,
    noteName: `projects/${project}/notes/${o.noteName}`,
    kind: o.kind,
    createTime: o.createTime,
    updateTime: o.updateTime,
    [KIND_FIELD[o.kind] ?? 'details']: o.data,
  };
}

export function grafeasNote(project: string, n: StoredNote): Record<string, unknown> {
  const data = (n.data ?? {}) as Record<string, unknown>;
  return { name: `projects/${project}/notes/${n.id}`, kind: n.kind, ...(n.shortDescription ? { shortDescription: n.shortDescription } : {}), createTime: n.createTime, updateTime: n.updateTime, ...data };
}

/** One page of a list fetched with limit size + 1: the extra row says whether a next page exists. */
function page<T extends { id: string }>(rows: T[], size: number, key: string, render: (x: T) => unknown): Record<string, unknown> {
  const items = rows.slice(0, size);
  return { [key]: items.map(render), nextPageToken: rows.length > size ? encodeToken(items.at(-1)!.id) : '' };
}

function bool(v: string | null): boolean {
  return v === 'true' || v === '1' || v === '';
}

/** The request handler (also mounted by `plinth serve --api`). Returns false when the path is not the API's. */
export function apiHandler(source: MetaStore | StoreConnector, o: ApiOptions = {}): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const project = o.project ?? 'plinth';
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://plinth.invalid');
    const p = url.pathname;
    if (!p.startsWith('/v1/') && p !== '/v1') return false;
    try {
      if (o.token !== undefined && !tokenOk(req.headers.authorization, o.token)) {
        send(res, 401, { error: { code: 401, message: 'a valid bearer token is required (Authorization: Bearer …)', status: STATUS[401] } }, { 'www-authenticate': 'Bearer realm="plinth"' });
        return true;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `${req.method} is not supported: the API is read-only`);
      const store = 'get' in source ? await source.get() : source;
      const q = url.searchParams;
      let seg: string[];
      try {
        seg = p.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
      } catch {
        throw new HttpError(400, `${p} is not a valid URL path (bad percent-encoding)`);
      }
      // Plinth's own queries.
      if (seg.length === 2 && seg[1] === 'images') {
        const vulnerable = parseSeverity(q.get('vulnerable') ?? undefined, 'vulnerable');
        const images = await listImages(store, {
          ...(q.get('base') ? { base: q.get('base')! } : {}),
          ...(q.get('repository') ? { repository: q.get('repository')! } : {}),
          ...(q.has('running') && bool(q.get('running')) ? { running: true } : {}),
          ...(q.has('behind') && bool(q.get('behind')) ? { behind: true } : {}),
          ...(vulnerable ? { vulnerable } : {}),
        }, o.catalog ? { catalog: o.catalog } : {});
        return void send(res, 200, { images }), true;
      }
      if (seg.length === 3 && seg[1] === 'images') {
        const d = seg[2]!;
        if (!/^sha256:[a-f0-9]{64}$/.test(d)) throw new HttpError(400, `"${d}" is not a sha256 digest`);
        const images = await store.images({ digest: d });
        if (!images.length) throw new HttpError(404, `no image with digest ${d} is in the store`);
        const findings = (await Promise.all(images.map((i) => store.findings({ uri: i.uri })))).flat();
        const deployments = await store.deployments(images.map((i) => i.uri));
        const tags = await store.tagHistory({ digest: d });
        const decisions = await store.decisions({ digest: d, limit: 100 });
        return void send(res, 200, { images, findings, tags, deployments, decisions }), true;
      }
      if (seg.length === 2 && seg[1] === 'history') {
        const r = q.get('ref');
        if (!r) throw new HttpError(400, 'ref is required: /v1/history?ref=REGISTRY/REPO:TAG or @sha256:…');
        return void send(res, 200, await history(store, r, q.get('at') ? { at: q.get('at')! } : {})), true;
      }
      if (seg.length === 2 && seg[1] === 'consumers') {
        const b = q.get('base');
        if (!b) throw new HttpError(400, 'base is required: /v1/consumers?base=REGISTRY/REPO[:TAG|@DIGEST]');
        return void send(res, 200, await consumers(store, b, o.catalog ? { catalog: o.catalog } : {})), true;
      }
      if (seg.length === 2 && seg[1] === 'findings') {
        const since = q.get('newSince');
        const sev = parseSeverity(q.get('severity') ?? undefined, 'severity');
        return void send(res, 200, { findings: await store.findings({ ...(since ? { newSince: normaliseTime(since, 'newSince') } : {}), ...(sev ? { severity: sev } : {}) }) }), true;
      }
      if (seg.length === 2 && seg[1] === 'decisions') {
        const since = q.get('since');
        const limit = q.get('limit') ? Number(q.get('limit')) : 100;
        if (!Number.isInteger(limit) || limit < 1) throw new HttpError(400, `limit must be a positive integer, got "${q.get('limit')}"`);
        const allowed = q.get('allowed');
        return void send(res, 200, { decisions: await store.decisions({ limit, ...(since ? { since: normaliseTime(since, 'since') } : {}), ...(allowed !== null ? { allowed: bool(allowed) } : {}) }) }), true;
      }
      if (seg.length === 2 && seg[1] === 'stats') return void send(res, 200, await store.stats()), true;
      // Grafeas v1 read subset.
      if (seg[1] === 'projects' && seg.length >= 4) {
        if (seg[2] !== project) throw new HttpError(404, `project "${seg[2]}" does not exist (this store serves "${project}")`);
        const size = pageSize(q.get('pageSize'));
        const after = decodeToken(q.get('pageToken'));
        if (seg.length === 4 && seg[3] === 'occurrences') {
          const f = parseFilter(q.get('filter'));
          const rows = await store.listOccurrences({ ...f, ...(after !== undefined ? { after } : {}), limit: size + 1 });
          return void send(res, 200, page(rows, size, 'occurrences', (x) => grafeasOccurrence(project, x))), true;
        }
        if (seg.length === 5 && seg[3] === 'occurrences') {
          const occ = await store.getOccurrence(seg[4]!);
          if (!occ) throw new HttpError(404, `occurrence ${seg[4]} does not exist`);
          return void send(res, 200, grafeasOccurrence(project, occ)), true;
        }
        if (seg.length === 6 && seg[3] === 'occurrences' && seg[5] === 'notes') {
          const occ = await store.getOccurrence(seg[4]!);
          if (!occ) throw new HttpError(404, `occurrence ${seg[4]} does not exist`);
          const note = await store.getNote(occ.noteName);
          if (!note) throw new HttpError(404, `note ${occ.noteName} does not exist`);
          return void send(res, 200, grafeasNote(project, note)), true;
        }
        if (seg.length === 4 && seg[3] === 'notes') {
          const f = parseFilter(q.get('filter'));
          if (f.resourceUri !== undefined || f.note !== undefined) throw new HttpError(400, 'notes can be filtered by kind only');
          const rows = await store.listNotes({ ...(f.kind ? { kind: f.kind } : {}), ...(after !== undefined ? { after } : {}), limit: size + 1 });
          return void send(res, 200, page(rows, size, 'notes', (n) => grafeasNote(project, n))), true;
        }
        if (seg.length === 5 && seg[3] === 'notes') {
          const note = await store.getNote(seg[4]!);
          if (!note) throw new HttpError(404, `note ${seg[4]} does not exist`);
          return void send(res, 200, grafeasNote(project, note)), true;
        }
        if (seg.length === 6 && seg[3] === 'notes' && seg[5] === 'occurrences') {
          const note = await store.getNote(seg[4]!);
          if (!note) throw new HttpError(404, `note ${seg[4]} does not exist`);
          const f = parseFilter(q.get('filter'));
          const rows = await store.listOccurrences({ ...f, note: note.id, ...(after !== undefined ? { after } : {}), limit: size + 1 });
          return void send(res, 200, page(rows, size, 'occurrences', (x) => grafeasOccurrence(project, x))), true;
        }
      }
      throw new HttpError(404, `${p} is not an API path (see docs/api.md)`);
    } catch (e) {
      const status = e instanceof HttpError ? e.status : e instanceof PlinthError && e.code === 'USAGE' ? 400 : e instanceof PlinthError && e.code === 'STORE_UNAVAILABLE' ? 503 : 500;
      send(res, status, { error: { code: status, message: describeError(e), status: STATUS[status] ?? 'UNKNOWN' } });
      return true;
    }
  };
}

export type RunningApi = RunningHttp;

/** `plinth api`: the API on its own HTTP server (put TLS in front of it, or keep it on loopback). */
export async function startApi(store: MetaStore, o: ApiOptions & { port?: number; host?: string } = {}): Promise<RunningApi> {
  const handle = apiHandler(store, o);
  return serveHttp((req, res) => {
    handle(req, res).then(
      (handled) => {
        if (!handled) send(res, 404, { error: { code: 404, message: `${req.url} is not an API path (see docs/api.md)`, status: 'NOT_FOUND' } });
      },
      () => send(res, 500, { error: { code: 500, message: 'internal error', status: 'INTERNAL' } }),
    );
  }, { ...(o.port !== undefined ? { port: o.port } : {}), ...(o.host !== undefined ? { host: o.host } : {}) });
}
