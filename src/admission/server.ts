import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import pino, { type Logger } from 'pino';
import { PlinthError, describeError } from '../util/errors.js';
import { FastCounter, FastHistogram } from './metrics.js';
import type { AdmissionEvent } from '../store/recorder.js';
import {
  admissionResponse,
  boundWarnings,
  extractImageReviewImages,
  extractImages,
  imageReviewResponse,
  parseAdmissionReviewBody,
  parseImageReviewBody,
  pinPatch,
  DEFAULT_MAX_REQUEST_BYTES,
  type CheckedWorkload,
  type ImageReviewImages,
} from './wire.js';

/**
 * The admission webhook: AdmissionReview v1 on /validate and /mutate, ImageReview on
 * /imagepolicy, health, readiness and Prometheus metrics. HTTPS only. The policy itself lives
 * behind the Decider interface; the server owns what is the same for every policy: body limits,
 * a deadline below the webhook timeout with a stated failure mode, decision and digest caches,
 * metrics and structured logs without secrets.
 */
export interface DecideContext {
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** What asked: the validating or mutating AdmissionReview endpoint, or ImageReview. */
  via: 'validate' | 'mutate' | 'imagereview';
  /** AdmissionReview: the object being admitted (Pod, Deployment…), for workloadSecurity rules. */
  object?: unknown;
}

export interface ImageVerdict {
  image: string;
  allowed: boolean;
  /** Failing enforce rules, each a sentence for the user. */
  denials: string[];
  /** warn (and audit) findings. */
  warnings: string[];
  /** The manifest digest the image resolved to (for pinning), when known. */
  digest?: string | null;
  /** Per-rule outcomes (for metrics). */
  results?: Array<{ rule: string; outcome: string; mode: string }>;
  /** Enforce failures, structured, so one denial message can group them by rule. */
  failures?: Array<{ rule: string; message: string; reason: string }>;
  /** Whether the verdict may be cached (false e.g. when a registry lookup failed). */
  cacheable?: boolean;
  /** Cache it at most this long (ms): a missing signature may appear any time, so such a denial is kept briefly. */
  maxTtlMs?: number;
}

export interface Decider {
  decide(image: string, ctx: DecideContext, signal: AbortSignal): Promise<ImageVerdict>;
  /** Changes whenever the policy or catalog changes (cache key). */
  version(): string;
  ready(): boolean;
  pinDigests(): boolean;
  failureMode(): 'closed' | 'open';
  /** ImageReview: annotations that turn denials into audited allows, when the policy allows it. */
  breakGlass(annotations: Record<string, string>): string | undefined;
  /** The part of the context a decision depends on (cache key); default: all of it. */
  cacheContext?(ctx: DecideContext): string;
}

interface Decided {
  verdicts: ImageVerdict[];
  /** `image: why` for images that could not be decided (the failure mode applied). */
  failed: string[];
}

export interface ServerOptions {
  cert: string | Buffer;
  key: string | Buffer;
  /** Require client certificates signed by this CA (the API server's). */
  clientCa?: string | Buffer;
  port?: number;
  host?: string;
  /** Budget for all work of one request; keep it below the webhook's timeoutSeconds. */
  deadlineMs?: number;
  /** How long decisions for digest references are cached (by digest, policy version and context). */
  decisionTtlMs?: number;
  /** How long decisions for tag references are cached (a tag can move; keep it short). */
  tagTtlMs?: number;
  maxCacheEntries?: number;
  maxBodyBytes?: number;
  logger?: Logger;
  /**
   * Called after each validating admission and ImageReview is decided (the store's recorder
   * queues it and returns at once; it must never throw or wait).
   */
  onAdmission?: (e: AdmissionEvent) => void;
  /** GET requests under /v1/ (the store's API with `plinth serve --api`). */
  apiHandler?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /**
   * The dashboard (`plinth serve --ui`, src/ui/server.ts uiHandler): every other GET/HEAD, and
   * POST /login, once the webhook endpoints, /healthz, /readyz, /metrics and /v1/ had their turn.
   */
  uiHandler?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
}

/** Budget for all work of one request (below Kubernetes' default webhook timeout of 10 s). */
export const DEFAULT_DEADLINE_MS = 8000;

/** Distinct images one request may carry (a Pod has a handful; this bounds the work a request can cause). */
export const MAX_IMAGES = 64;

/**
 * Entries expire after their TTL; when full, the least recently used goes (Map order; a hit moves
 * an entry to the end at most once a second, which keeps hits on hot keys to one lookup). An entry
 * past 80% of its TTL is `due`: the server refreshes it in the background while still answering
 * from it, so a busy key never expires into a burst of misses.
 */
export class TtlCache<V> {
  private readonly m = new Map<string, CacheEntry<V>>();
  constructor(private readonly ttl: number, private readonly max: number) {}
  get(k: string): CacheEntry<V> | undefined {
    const e = this.m.get(k);
    if (!e) return undefined;
    const now = Date.now();
    if (e.exp < now) {
      this.m.delete(k);
      return undefined;
    }
    if (now - e.used > 1000) {
      e.used = now;
      this.m.delete(k);
      this.m.set(k, e);
    }
    return e;
  }
  set(k: string, v: V, ttl = this.ttl): void {
    const now = Date.now();
    this.m.delete(k);
    if (this.m.size >= this.max) this.m.delete(this.m.keys().next().value as string);
    this.m.set(k, { v, exp: now + ttl, due: now + ttl * 0.8, used: now });
  }
  clear(): void {
    this.m.clear();
  }
  get size(): number {
    return this.m.size;
  }
}

interface CacheEntry<V> {
  v: V;
  exp: number;
  /** After this, a hit starts a background refresh. */
  due: number;
  used: number;
}

export interface RunningServer {
  url: string;
  port: number;
  metrics: Registry;
  close(): Promise<void>;
  /** Drop cached decisions (after a policy reload). */
  clearCache(): void;
}

/** Read a request body of at most `limit` bytes; calls back once, with an error or the body. */
function readBody(req: IncomingMessage, limit: number, cb: (err: Error | null, body?: Buffer) => void): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    cb(new PlinthError('REQUEST_INVALID', `request body is ${declared} bytes, more than the ${limit}-byte limit`));
    req.resume();
    return;
  }
  let chunks: Buffer[] | undefined = [];
  let n = 0;
  req.on('data', (c: Buffer) => {
    n += c.length;
    if (n > limit) {
      // Answer 400 (the body is drained, not kept); a sender that goes on far past the limit is cut off.
      if (chunks) {
        chunks = undefined;
        cb(new PlinthError('REQUEST_INVALID', `request body is more than the ${limit}-byte limit`));
      }
      if (n > 4 * limit) req.destroy();
      return;
    }
    chunks?.push(c);
  });
  req.on('end', () => {
    if (chunks) cb(null, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    chunks = undefined;
  });
  req.on('error', (e) => {
    if (chunks) cb(e);
    chunks = undefined;
  });
}

/**
 * The plain allow answer, serialized by template: the most common answer of a busy webhook. Kept
 * equal to `admissionResponse(uid, { allowed: true })` (test/webhook.test.ts compares them).
 */
export class AllowedAnswer {
  readonly response: { uid: string; allowed: true };
  constructor(readonly uid: string) {
    this.response = { uid, allowed: true };
  }
  toJSON(): unknown {
    return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: this.response };
  }
  serialize(): string {
    return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":${JSON.stringify(this.uid)},"allowed":true}}`;
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : body instanceof AllowedAnswer ? body.serialize() : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export type Endpoint = 'validate' | 'mutate' | 'imagepolicy';

export interface WebhookAnswer {
  /** 200 with an AdmissionReview or ImageReview answer; 400 for a malformed request, 500 if deciding failed. */
  status: number;
  /** A value for JSON.stringify: the plain allow answer is an AllowedAnswer (its toJSON is the AdmissionReview). */
  body: unknown;
}

/**
 * The webhook without its transport: answers request bodies for an endpoint, keeps the caches and
 * the metrics. `startServer` puts it behind HTTPS; it can also be driven directly (tests,
 * benchmarks, another server).
 */
export interface Webhook {
  /** Synchronous when every image of the request is cached (the warm path); a promise otherwise. */
  handle(endpoint: Endpoint, body: Buffer): WebhookAnswer | Promise<WebhookAnswer>;
  metrics: Registry;
  log: Logger;
  /** Drop cached decisions (after a policy reload). */
  clearCache(): void;
  /** The answer to a request refused before `handle` (e.g. a body over the limit); counted and logged. */
  refuse(endpoint: Endpoint, e: unknown): WebhookAnswer;
  /** Record a request's latency, transport included. */
  observe(endpoint: Endpoint, seconds: number): void;
}

export type WebhookOptions = Omit<ServerOptions, 'cert' | 'key' | 'clientCa' | 'port' | 'host'>;

/** The request body limit: `maxBodyBytes`, else 3 MiB (within the wire format's own limit). */
function maxBodyOf(o: WebhookOptions): number {
  return o.maxBodyBytes ?? Math.min(DEFAULT_MAX_REQUEST_BYTES, 3 * 1024 * 1024);
}

export function createWebhook(decider: Decider, o: WebhookOptions = {}): Webhook {
  const log = o.logger ?? pino({ base: { component: 'plinth-webhook' }, timestamp: pino.stdTimeFunctions.isoTime });
  const deadlineMs = o.deadlineMs ?? DEFAULT_DEADLINE_MS;
  const maxBody = maxBodyOf(o);
  const cache = new TtlCache<ImageVerdict>(o.decisionTtlMs ?? 10 * 60_000, o.maxCacheEntries ?? 10_000);
  const tagTtl = o.tagTtlMs ?? 30_000;

  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics, prefix: 'plinth_' });
  // Hot-path metrics are plain numbers that prom-client reads when scraped (see metrics.ts).
  const decisions = new FastCounter({ name: 'plinth_decisions_total', help: 'Admission decisions by endpoint and result', labelNames: ['endpoint', 'result'], registry: metrics });
  const ruleResults = new Counter({ name: 'plinth_rule_results_total', help: 'Rule outcomes by rule, mode and outcome', labelNames: ['rule', 'mode', 'outcome'], registers: [metrics] });
  const latency = new FastHistogram('plinth_request_duration_seconds', 'Webhook request latency', [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], metrics);
  const cacheHits = new FastCounter({ name: 'plinth_cache_hits_total', help: 'Decision cache hits and misses', labelNames: ['result'], registry: metrics });
  const errors = new Counter({ name: 'plinth_decision_errors_total', help: 'Images that could not be decided (registry errors, deadline)', labelNames: ['reason'], registers: [metrics] });
  const badRequests = new Counter({ name: 'plinth_bad_requests_total', help: 'Requests refused as malformed', registers: [metrics] });
  const refreshes = new Counter({ name: 'plinth_cache_refreshes_total', help: 'Cached decisions refreshed in the background before they expire', registers: [metrics] });
  const ENDPOINTS: Endpoint[] = ['validate', 'mutate', 'imagepolicy'];
  const allowCount = Object.fromEntries(ENDPOINTS.map((e) => [e, decisions.child({ endpoint: e, result: 'allow' })]));
  const denyCount = Object.fromEntries(ENDPOINTS.map((e) => [e, decisions.child({ endpoint: e, result: 'deny' })]));
  const latencyOf = Object.fromEntries(ENDPOINTS.map((e) => [e, latency.child({ endpoint: e })]));
  const cacheHit = cacheHits.child({ result: 'hit' });
  const cacheMiss = cacheHits.child({ result: 'miss' });
  const logInfo = log.isLevelEnabled('info');
  const onAdmission = o.onAdmission;

  /** The cache key of each image of a request (the context part is computed once per request). */
  // The policy version enters the keys as a small generation number (short keys hash faster).
  let lastVersion: string | undefined;
  let generation = 0;
  function cacheKeys(images: string[], ctx: DecideContext): string[] {
    let context: string;
    try {
      const version = decider.version();
      if (version !== lastVersion) {
        lastVersion = version;
        generation++;
      }
      context = `${generation}\u0000${decider.cacheContext ? decider.cacheContext(ctx) : `${ctx.namespace}\u0000${JSON.stringify(ctx.labels)}\u0000${JSON.stringify(ctx.annotations)}`}\u0000${ctx.via}\u0000`;
    } catch (e) {
      log.error({ error: describeError(e) }, 'cache key failed');
      return images.map(() => `uncacheable\u0000${Math.random()}`);
    }
    const keys: string[] = new Array(images.length);
    for (let i = 0; i < images.length; i++) keys[i] = context + images[i]!;
    return keys;
  }

  /**
   * Decide every image of a request. Cached verdicts are answered at once (the warm path, with no
   * timer and no promise); the rest run within the deadline, and the failure mode applies to
   * images that could not be decided.
   */
  function decideAll(images: string[], ctx: DecideContext): Decided | Promise<Decided> {
    const keys = cacheKeys(images, ctx);
    const verdicts: Array<ImageVerdict | undefined> = new Array(images.length);
    let misses = 0;
    for (let i = 0; i < images.length; i++) {
      const hit = cache.get(keys[i]!);
      if (hit) {
        verdicts[i] = hit.v;
        if (hit.due < Date.now() && !inflight.has(keys[i]!)) refresh(keys[i]!, images[i]!, ctx);
      } else misses++;
    }
    if (misses < images.length) cacheHit.inc(images.length - misses);
    if (misses === 0) return { verdicts: verdicts as ImageVerdict[], failed: [] };
    cacheMiss.inc(misses);
    return decideMisses(images, keys, verdicts, ctx);
  }

  /** Decisions being made, by cache key: concurrent requests for the same image and context share one. */
  const inflight = new Map<string, Promise<ImageVerdict>>();

  /** One decision, shared by every request that asks for the same key meanwhile; bounded by its own deadline. */
  function flight(key: string, image: string, ctx: DecideContext): Promise<ImageVerdict> {
    const running = inflight.get(key);
    if (running) return running;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), deadlineMs);
    // A decider that ignores the signal must not hold the key forever: the flight ends at its deadline.
    const expired = new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(new PlinthError('TIMEOUT', `no decision for ${image} within ${deadlineMs} ms`)), { once: true }));
    expired.catch(() => {});
    const p = (async () => {
      try {
        const v = await Promise.race([decider.decide(image, ctx, ac.signal), expired]);
        for (const r of v.results ?? []) ruleResults.inc({ rule: r.rule, mode: r.mode, outcome: r.outcome });
        if (v.cacheable !== false) {
          const ttl = image.includes('@') ? undefined : tagTtl;
          cache.set(key, v, v.maxTtlMs !== undefined ? Math.min(v.maxTtlMs, ttl ?? Infinity) : ttl);
        }
        return v;
      } finally {
        clearTimeout(timer);
        inflight.delete(key);
      }
    })();
    inflight.set(key, p);
    return p;
  }

  /** Refresh a cached verdict that is due, in the background; until it lands (or expires), the old one answers. */
  function refresh(key: string, image: string, ctx: DecideContext): void {
    refreshes.inc();
    flight(key, image, ctx).catch((e: unknown) => {
      errors.inc({ reason: 'refresh' });
      log.warn({ image, error: describeError(e) }, 'background refresh of a cached decision failed; the cached one stands until it expires');
    });
  }

  async function decideMisses(images: string[], keys: string[], verdicts: Array<ImageVerdict | undefined>, ctx: DecideContext): Promise<Decided> {
    // Every flight ends at its own deadline, which began no later than this request: that bounds
    // the request too, whether it started a flight or joined one.
    const failed: string[] = [];
    await Promise.all(
      images.map(async (image, i) => {
        if (verdicts[i]) return;
        try {
          verdicts[i] = await flight(keys[i]!, image, ctx);
        } catch (e) {
          const timeout = (e instanceof PlinthError && e.code === 'TIMEOUT') || (e instanceof Error && e.name === 'AbortError');
          const why = timeout ? `no decision for ${image} within ${deadlineMs} ms` : describeError(e);
          errors.inc({ reason: timeout ? 'deadline' : 'error' });
          failed.push(`${image}: ${why}`);
          const open = decider.failureMode() === 'open';
          verdicts[i] = {
            image,
            allowed: open,
            denials: open ? [] : [`image ${image} could not be checked (${why}); failure policy is closed, so it is denied`],
            warnings: open ? [`image ${image} could not be checked (${why}); failure policy is open, so it is allowed`] : [],
            cacheable: false,
          };
        }
      }),
    );
    return { verdicts: verdicts as ImageVerdict[], failed };
  }

  function handleAdmission(body: Buffer, mutate: boolean): unknown {
    const review = parseAdmissionReviewBody(body, { maxBytes: maxBody });
    const subject = extractImages(review);
    const uid = review.request.uid;
    if (!subject.checked) return admissionResponse(uid, { allowed: true });
    if (subject.images.length > MAX_IMAGES) {
      return admissionResponse(uid, { allowed: false, code: 400, message: `Plinth denied ${subject.workload} ${subject.name ?? ''}: it names ${subject.images.length} distinct images, more than the ${MAX_IMAGES} a request may carry` });
    }
    const obj = review.request.object;
    // The object with its kind (the API server sends TypeMeta; a bare object gets the request's).
    const object = obj && typeof obj === 'object' && !Array.isArray(obj) && typeof (obj as Record<string, unknown>)['kind'] !== 'string' ? { ...(obj as object), kind: subject.workload } : obj;
    const ctx: DecideContext = { namespace: subject.namespace ?? '', labels: subject.labels ?? {}, annotations: subject.annotations ?? {}, via: mutate ? 'mutate' : 'validate', object };
    const decided = decideAll(subject.images, ctx);
    return decided instanceof Promise ? decided.then((d) => admissionAnswer(subject, uid, mutate, d)) : admissionAnswer(subject, uid, mutate, decided);
  }

  function admissionAnswer(subject: CheckedWorkload, uid: string, mutate: boolean, { verdicts, failed }: Decided): unknown {
    let allowed = true;
    let denialCount = 0;
    const allWarnings: string[] = [];
    for (const v of verdicts) {
      if (!v.allowed) allowed = false;
      denialCount += v.denials.length;
      for (const w of v.warnings) allWarnings.push(w);
    }
    const warnings = allWarnings.length ? boundWarnings(allWarnings) : allWarnings;
    if (onAdmission && !mutate) {
      onAdmission({ time: Date.now(), endpoint: 'validate', namespace: subject.namespace, kind: subject.workload, name: subject.name || subject.generateName || '', containers: subject.containers, verdicts, policyVersion: decider.version(), admitted: allowed });
    }
    if (logInfo) log.info({ uid, endpoint: mutate ? 'mutate' : 'validate', kind: subject.workload, namespace: subject.namespace, name: subject.name, operation: subject.operation, images: subject.images, allowed, denials: denialCount, failed }, 'admission decision');
    if (mutate) {
      // The mutating webhook pins tags to the digests that were checked; it never denies (the validating one does).
      let patch;
      if (decider.pinDigests()) {
        const resolved = new Map<string, string>();
        for (const v of verdicts) if (v.digest) resolved.set(v.image, v.digest);
        patch = pinPatch(subject.containers, resolved);
      }
      return admissionResponse(uid, { allowed: true, ...(patch && patch.length ? { patch } : {}), ...(warnings.length ? { warnings } : {}) });
    }
    if (allowed) return warnings.length ? admissionResponse(uid, { allowed: true, warnings }) : new AllowedAnswer(uid);
    // Kyverno-style: each failing rule once, with its message, then the containers it failed for.
    const byRule = new Map<string, { message: string; lines: string[] }>();
    const other: string[] = [];
    for (const c of subject.containers) {
      const v = verdicts.find((x) => x.image === c.image)!;
      if (v.allowed) continue;
      const who = `${c.kind === 'container' ? 'container' : c.kind} ${JSON.stringify(c.name)} (${c.image})`;
      if (v.failures?.length) {
        for (const f of v.failures) {
          const g = byRule.get(f.rule) ?? { message: f.message, lines: [] };
          g.lines.push(`  - ${who}: ${f.reason}`);
          byRule.set(f.rule, g);
        }
      } else other.push(`${who}: ${v.denials.join('; ')}`);
    }
    const parts = [...byRule].map(([rule, g]) => `[${rule}] ${g.message}\n${g.lines.join('\n')}`);
    const message = `Plinth denied ${subject.workload} ${subject.namespace ? `${subject.namespace}/` : ''}${subject.name ?? subject.generateName ?? ''}:\n${[...parts, ...other].join('\n')}`;
    return admissionResponse(uid, { allowed: false, message, code: 403, maxMessageBytes: 4096, ...(warnings.length ? { warnings } : {}), ...(failed.length ? { auditAnnotations: { undecided: failed.join('; ').slice(0, 1000) } } : {}) });
  }

  function handleImageReview(body: Buffer): unknown {
    const review = parseImageReviewBody(body, { maxBytes: maxBody });
    const subject = extractImageReviewImages(review);
    if (subject.images.length > MAX_IMAGES) {
      return imageReviewResponse({ allowed: false, reason: `the request names ${subject.images.length} distinct images, more than the ${MAX_IMAGES} a request may carry` });
    }
    const ctx: DecideContext = { namespace: subject.namespace, labels: {}, annotations: subject.annotations, via: 'imagereview' };
    const decided = decideAll(subject.images, ctx);
    return decided instanceof Promise ? decided.then((d) => imageReviewAnswer(subject, d)) : imageReviewAnswer(subject, decided);
  }

  function imageReviewAnswer(subject: ImageReviewImages, { verdicts }: Decided): unknown {
    const allowed = verdicts.every((v) => v.allowed);
    const reasons = verdicts.filter((v) => !v.allowed).map((v) => `${v.image}: ${v.denials.join('; ')}`);
    if (!allowed) {
      const glass = decider.breakGlass(subject.annotations);
      if (glass) {
        log.warn({ endpoint: 'imagepolicy', namespace: subject.namespace, images: subject.images, breakGlass: glass }, 'break-glass: denial turned into an audited allow');
        return imageReviewResponse({ allowed: true, auditAnnotations: { 'break-glass': glass, 'would-deny': reasons.join('; ').slice(0, 1000) } });
      }
    }
    if (logInfo) log.info({ endpoint: 'imagepolicy', namespace: subject.namespace, images: subject.images, allowed }, 'image review decision');
    if (onAdmission) onAdmission({ time: Date.now(), endpoint: 'imagepolicy', namespace: subject.namespace, kind: 'Pod', name: '', containers: [], verdicts, policyVersion: decider.version(), admitted: allowed });
    return imageReviewResponse(allowed ? { allowed: true } : { allowed: false, reason: reasons.join('; ') });
  }

  function answered(endpoint: Endpoint, answer: unknown): WebhookAnswer {
    const resp = answer as { response?: { allowed: boolean }; status?: { allowed: boolean } };
    if ((resp.response ?? resp.status)!.allowed) allowCount[endpoint]!.inc();
    else denyCount[endpoint]!.inc();
    return { status: 200, body: answer };
  }

  function failed(endpoint: Endpoint, e: unknown): WebhookAnswer {
    const bad = e instanceof PlinthError && e.code === 'REQUEST_INVALID';
    if (bad) badRequests.inc();
    log.warn({ endpoint, error: describeError(e) }, bad ? 'bad request' : 'request failed');
    return { status: bad ? 400 : 500, body: { error: describeError(e) } };
  }

  return {
    metrics,
    log,
    clearCache: () => cache.clear(),
    observe: (endpoint: Endpoint, seconds: number) => latencyOf[endpoint]!(seconds),
    refuse: failed,
    handle(endpoint: Endpoint, body: Buffer): WebhookAnswer | Promise<WebhookAnswer> {
      let answer: unknown;
      try {
        answer = endpoint === 'imagepolicy' ? handleImageReview(body) : handleAdmission(body, endpoint === 'mutate');
        if (!(answer instanceof Promise)) return answered(endpoint, answer);
      } catch (e) {
        return failed(endpoint, e);
      }
      return answer.then(
        (a) => answered(endpoint, a),
        (e: unknown) => failed(endpoint, e),
      );
    },
  };
}

export async function startServer(decider: Decider, o: ServerOptions): Promise<RunningServer> {
  const hook = createWebhook(decider, o);
  const { log, metrics } = hook;
  const maxBody = maxBodyOf(o);
  const server = https.createServer(
    {
      cert: o.cert,
      key: o.key,
      minVersion: 'TLSv1.2',
      ...(o.clientCa ? { ca: o.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    },
    (req, res) => {
      const raw = req.url ?? '/';
      const q = raw.indexOf('?');
      const url = q < 0 ? raw : raw.slice(0, q);
      const endpoint: Endpoint | undefined = url === '/validate' ? 'validate' : url === '/mutate' ? 'mutate' : url === '/imagepolicy' ? 'imagepolicy' : undefined;
      const read = req.method === 'GET' || req.method === 'HEAD';
      if (read && url === '/healthz') return send(res, 200, 'ok');
      if (read && url === '/readyz') return decider.ready() ? send(res, 200, 'ok') : send(res, 503, 'policy not loaded');
      if (req.method === 'GET' && url === '/metrics') {
        metrics.metrics().then((t) => send(res, 200, t, { 'content-type': metrics.contentType }), () => send(res, 500, 'metrics unavailable'));
        return;
      }
      if (!endpoint && o.apiHandler && url.startsWith('/v1/')) {
        o.apiHandler(req, res).then(
          (handled) => void (handled || send(res, 404, { error: `no such endpoint ${req.method} ${url}` })),
          () => send(res, 500, { error: 'internal error' }),
        );
        return;
      }
      if (!endpoint && o.uiHandler && (req.method === 'GET' || req.method === 'HEAD' || (req.method === 'POST' && url === '/login'))) {
        o.uiHandler(req, res).then(
          (handled) => void (handled || send(res, 404, { error: `no such endpoint ${req.method} ${url}` })),
          () => void (res.headersSent ? res.end() : send(res, 500, { error: 'internal error' })),
        );
        return;
      }
      if (!endpoint) return send(res, 404, { error: `no such endpoint ${req.method} ${url}` });
      if (req.method !== 'POST') return send(res, 405, { error: `${url} takes POST` }, { allow: 'POST' });
      const started = performance.now();
      const reply = (a: WebhookAnswer): void => {
        if (!res.headersSent) send(res, a.status, a.body);
        hook.observe(endpoint, (performance.now() - started) / 1000);
      };
      readBody(req, maxBody, (err, body) => {
        if (err) return reply(hook.refuse(endpoint, err));
        const a = hook.handle(endpoint, body!);
        if (a instanceof Promise) a.then(reply, (e: unknown) => reply({ status: 500, body: { error: describeError(e) } }));
        else reply(a);
      });
    },
  );
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8443, o.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port, deadlineMs: o.deadlineMs ?? DEFAULT_DEADLINE_MS }, 'plinth webhook listening');
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    metrics,
    clearCache: hook.clearCache,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        // Requests in flight get their deadline to finish; a client that never finishes sending
        // one does not hold the shutdown up to the request timeout.
        setTimeout(() => server.closeAllConnections?.(), (o.deadlineMs ?? DEFAULT_DEADLINE_MS) + 1000).unref();
      }),
  };
}
