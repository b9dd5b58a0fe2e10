/**
 * Kubernetes image admission wire formats: the requests the API server sends to `plinth serve`
 * and the responses it expects back. Pure functions, no I/O.
 *
 * - AdmissionReview `admission.k8s.io/v1` (ValidatingAdmissionWebhook / MutatingAdmissionWebhook):
 *   `parseAdmissionReview` checks the envelope, `extractImages` lists every container image of a
 *   Pod or of a workload that creates Pods, `admissionResponse` answers, `pinPatch` builds the
 *   JSON Patch that pins tags to digests.
 * - ImageReview `imagepolicy.k8s.io/v1alpha1` (the ImagePolicyWebhook admission plugin):
 *   `parseImageReview`, `extractImageReviewImages`, `imageReviewResponse`.
 *
 * Sources: kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/
 * (request and response), .../admission-controllers/#imagepolicywebhook, the Go types in
 * k8s.io/api/admission/v1 and k8s.io/api/imagepolicy/v1alpha1, and the API server code cited
 * where a limit comes from. The exact JSON shapes are in shared/docs/kubernetes-wire-formats.md.
 *
 * Every parser and extractor here throws only PlinthError('REQUEST_INVALID') for any JSON value
 * (or body) it is given; the message names the field (`request.object.spec.containers[0].image`)
 * and what is wrong. The response builders throw PlinthError('USAGE') on a programming error (a
 * denial with a patch, a malformed JSON Patch operation, an audit annotation key the API server
 * would drop).
 */
import * as z from 'zod/mini';
import '../util/zod.js';
import { parseDigest } from '../oci/digest.js';
import { parseImageReference } from '../oci/reference.js';
import { isUtf8 } from 'node:buffer';
import { PlinthError } from '../util/errors.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
export const IMAGE_REVIEW_API_VERSION = 'imagepolicy.k8s.io/v1alpha1';

/**
 * Default largest request body accepted. The API server accepts objects of up to 3 MiB (its
 * request body limit; etcd's default is 1.5 MiB) and an AdmissionReview of an UPDATE carries two
 * of them, base64 of nothing, so 8 MiB leaves room without inviting memory exhaustion.
 */
export const DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Limits of the response, from the API server
// ---------------------------------------------------------------------------------------------

/**
 * Warnings. kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/
 * #response: "Limit warnings to 120 characters if possible" and "Individual warning messages over
 * 256 characters may be truncated by the API server before being returned to clients. If more
 * than 4096 characters of warning messages are added (from all sources), additional warning
 * messages are ignored." The API server's recorder (k8s.io/apiserver/pkg/endpoints/filters/
 * warning.go: truncateItemRunes = 256, truncateAtTotalRunes = 4 * 1024) counts runes (Unicode
 * code points), and k8s.io/apimachinery/pkg/util/net.NewWarningHeader drops, silently, any
 * warning that is not valid UTF-8 or contains a control character (unicode.IsControl: Cc).
 * `boundWarnings` makes each warning fit all of these so that none is cut or lost by the server
 * (other webhooks' warnings share the 4096 budget; that part no webhook controls).
 */
export const WARNING_MAX_CODE_POINTS = 256;
export const WARNINGS_TOTAL_MAX_CODE_POINTS = 4096;
/** What the Kubernetes docs advise per warning; not enforced. */
export const WARNING_ADVISED_CODE_POINTS = 120;

/**
 * Denial messages (status.message, ImageReview status.reason). The API server passes them on
 * without a limit, but a controller that cannot create a Pod (ReplicaSet, Job, DaemonSet) records
 * the denial as an Event, whose note is limited to 1 KiB (k8s.io/kubernetes/pkg/apis/core/
 * validation: NoteLengthLimit = 1024 bytes); the scheduler truncates its own notes to that too.
 * So a message is cut, on a code point boundary, to at most this many UTF-8 bytes by default.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionRequest {
  uid: string;
  /** Kind of the object as the webhook receives it (after conversion to the version its rule names). */
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  /** Kind of the original request, when it differs (matchPolicy: Equivalent). */
  requestKind?: GroupVersionKind;
  requestResource?: GroupVersionResource;
  requestSubResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: UserInfo;
  /** The object as admitted (absent for DELETE). Validated by `extractImages`, not here. */
  object?: unknown;
  oldObject?: unknown;
  dryRun: boolean;
  options?: unknown;
}

export interface AdmissionReview {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  request: AdmissionRequest;
}

export interface ImageReviewContainer {
  image: string;
}

export interface ImageReview {
  apiVersion: typeof IMAGE_REVIEW_API_VERSION;
  kind: 'ImageReview';
  spec: {
    containers: ImageReviewContainer[];
    annotations: Record<string, string>;
    namespace: string;
  };
}

export type ContainerKind = 'container' | 'initContainer' | 'ephemeralContainer';

export interface ContainerImage {
  kind: ContainerKind;
  /** Container name ('' if the object has none; the API server's validation rejects that later). */
  name: string;
  /** The image exactly as written ('' when absent; validation rejects that later too). */
  image: string;
  /** JSON pointer to the image field, e.g. `/spec/template/spec/containers/0/image`. */
  path: string;
  /**
   * False only on UPDATE when the old object already ran this exact image string (in any of its
   * containers): a policy may skip re-checking it. True on CREATE, and on UPDATE without an old
   * object.
   */
  isNew: boolean;
}

/** The kinds `extractImages` reads containers from. */
export type WorkloadKind =
  | 'Pod'
  | 'Deployment'
  | 'ReplicaSet'
  | 'StatefulSet'
  | 'DaemonSet'
  | 'Job'
  | 'CronJob'
  | 'ReplicationController'
  /** The pods/ephemeralcontainers body of Kubernetes 1.16–1.22 (since 1.22 the body is a Pod). */
  | 'EphemeralContainers';

/** What every extraction result says about the request, checked or not. */
export interface AdmissionSubject {
  uid: string;
  operation: Operation;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  /** request.namespace, else the object's metadata.namespace, else '' (cluster-scoped). */
  namespace: string;
  /** request.name, else metadata.name, else '' (e.g. a CREATE with generateName). */
  name: string;
  generateName?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  userInfo: UserInfo;
  dryRun: boolean;
}

export interface CheckedWorkload extends AdmissionSubject {
  checked: true;
  workload: WorkloadKind;
  /** JSON pointer to the pod spec (`/spec/template/spec`; '' for the legacy EphemeralContainers body). */
  podSpecPath: string;
  /** Every container of every kind, in order: containers, initContainers, ephemeralContainers. */
  containers: ContainerImage[];
  /** Distinct images, in order of first appearance. */
  images: string[];
  /** Distinct images with `isNew` (all of `images` on CREATE). */
  newImages: string[];
}

export interface NotChecked extends AdmissionSubject {
  checked: false;
  /** Why Plinth has nothing to check; the server allows such requests. */
  reason: string;
}

export type AdmissionImages = CheckedWorkload | NotChecked;

export interface ImageReviewImages {
  namespace: string;
  /** Every container's image, in order (containers, initContainers, ephemeralContainers as the server sent them). */
  containers: Array<{ index: number; image: string }>;
  /** Distinct images, in order of first appearance. */
  images: string[];
  /** Only the annotations whose key matches `*.image-policy.k8s.io/*`. */
  annotations: Record<string, string>;
}

export type JsonPatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

export interface AdmissionDecision {
  allowed: boolean;
  /** Why a request is denied (status.message). Ignored when allowed. Bounded to `maxMessageBytes`. */
  message?: string;
  /** HTTP status code of a denial, 400–599 (default 403). Ignored when allowed. */
  code?: number;
  /** Sent with allowed or denied responses; bounded by `boundWarnings`. */
  warnings?: string[];
  /** Mutation (allowed responses only); an empty list sends no patch. */
  patch?: JsonPatchOp[];
  /** The API server prefixes each key with `<webhook name>/`; keys must be valid label names. */
  auditAnnotations?: Record<string, string>;
  /** Bound for `message` in UTF-8 bytes (default DEFAULT_MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    status?: { code: number; message: string };
    warnings?: string[];
    patchType?: 'JSONPatch';
    patch?: string;
    auditAnnotations?: Record<string, string>;
  };
}

export interface ImageReviewDecision {
  allowed: boolean;
  /** Shown to the user after "image policy webhook backend denied one or more images: ". */
  reason?: string;
  /** The API server prefixes each key with `imagepolicywebhook.image-policy.k8s.io/`. */
  auditAnnotations?: Record<string, string>;
  maxMessageBytes?: number;
}

export interface ImageReviewResponse {
  apiVersion: typeof IMAGE_REVIEW_API_VERSION;
  kind: 'ImageReview';
  status: { allowed: boolean; reason?: string; auditAnnotations?: Record<string, string> };
}

// ---------------------------------------------------------------------------------------------
// Errors and small helpers
// ---------------------------------------------------------------------------------------------

function invalid(what: string, message: string, details?: Record<string, unknown>): PlinthError {
  return new PlinthError('REQUEST_INVALID', `invalid ${what}: ${message}`, details);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON type of a value, for messages. */
function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return typeof v;
}

/** A value quoted for a message, cut short. */
function show(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

/**
 * An own property. The hot path reads JSON.parse output directly instead (`obj.kind`): JSON gives
 * only own data properties, and the names read there are not on Object.prototype, so a direct read
 * is the same, and each read site stays monomorphic (a shared helper goes megamorphic).
 */
function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

/** `request.object.spec.containers[0].image` from a base and a path. */
function dotted(base: string, path: ReadonlyArray<PropertyKey>): string {
  let out = base;
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out || '(top level)';
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = root;
  for (const k of path) {
    if (Array.isArray(cur) && typeof k === 'number') cur = cur[k];
    else if (isPlainObject(cur) && typeof k === 'string') cur = own(cur, k);
    else return undefined;
  }
  return cur;
}

/** Run a zod schema; on failure throw REQUEST_INVALID naming the first problems. */
function check<T>(schema: z.ZodMiniType<T>, value: unknown, what: string, base: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const lines = r.error.issues.slice(0, 3).map((issue) => {
    const where = dotted(base, issue.path);
    if (issue.code === 'invalid_type') {
      const actual = valueAt(value, issue.path);
      if (actual === undefined) return `${where} is missing`;
      return `${where}: expected ${article(issue.expected)}, got ${jsonType(actual)}`;
    }
    if (issue.code === 'invalid_value' && 'values' in issue) {
      const actual = valueAt(value, issue.path);
      return `${where}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${show(actual)}`;
    }
    return `${where}: ${issue.message}`;
  });
  const more = r.error.issues.length > 3 ? ` (and ${r.error.issues.length - 3} more problems)` : '';
  throw invalid(what, lines.join('; ') + more);
}

function article(t: string): string {
  if (t === 'object') return 'an object';
  if (t === 'array') return 'an array';
  if (t === 'record') return 'an object';
  return `a ${t}`;
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

export interface BodyOptions {
  /** Largest accepted body in bytes (default DEFAULT_MAX_REQUEST_BYTES). */
  maxBytes?: number;
}

/**
 * Decode a request body (UTF-8 JSON) into a JSON value, refusing bodies larger than `maxBytes`,
 * invalid UTF-8 and invalid JSON with REQUEST_INVALID.
 */
export function parseJsonBody(body: string | Uint8Array, what: string, opts: BodyOptions = {}): unknown {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  let text: string;
  if (typeof body === 'string') {
    const size = Buffer.byteLength(body, 'utf8');
    if (size > maxBytes) throw invalid(what, `the body is ${size} bytes, more than the limit of ${maxBytes}`, { size, maxBytes });
    text = body;
  } else if (body instanceof Uint8Array) {
    if (body.byteLength > maxBytes) {
      throw invalid(what, `the body is ${body.byteLength} bytes, more than the limit of ${maxBytes}`, { size: body.byteLength, maxBytes });
    }
    text = Buffer.isBuffer(body) ? body.toString('utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
    // Decoding replaces invalid sequences with U+FFFD, so only a text containing one needs the
    // exact check (for an all-ASCII body, V8 answers `includes` without scanning).
    if (text.includes('\uFFFD') && !isUtf8(body)) throw invalid(what, 'the body is not valid UTF-8');
    // A byte-order mark is accepted (and dropped), as a UTF-8 decoder does.
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  } else {
    throw invalid(what, `expected a request body (string or bytes), got ${jsonType(body)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    if (text.trim() === '') throw invalid(what, 'the body is empty');
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw invalid(what, `the body is not valid JSON (${why})`);
  }
}

/** `parseJsonBody` then `parseAdmissionReview`. */
export function parseAdmissionReviewBody(body: string | Uint8Array, opts: BodyOptions = {}): AdmissionReview {
  return parseAdmissionReview(parseJsonBody(body, 'AdmissionReview', opts));
}

/** `parseJsonBody` then `parseImageReview`. */
export function parseImageReviewBody(body: string | Uint8Array, opts: BodyOptions = {}): ImageReview {
  return parseImageReview(parseJsonBody(body, 'ImageReview', opts));
}

// ---------------------------------------------------------------------------------------------
// AdmissionReview
// ---------------------------------------------------------------------------------------------

/** `schema`, with null and absent read as `fallback()` (zod classic's .nullish().transform()). */
function orElse<S extends z.ZodMiniType, D>(schema: S, fallback: () => D) {
  return z.pipe(z.nullish(schema), z.transform((v: z.output<S> | null | undefined) => v ?? fallback()));
}

const GvkSchema = z.looseObject({
  group: z._default(z.string(), ''),
  version: z._default(z.string(), ''),
  kind: z.string().check(z.minLength(1, 'must not be empty')),
});
const GvrSchema = z.looseObject({
  group: z._default(z.string(), ''),
  version: z._default(z.string(), ''),
  resource: z.string().check(z.minLength(1, 'must not be empty')),
});
const StringMap = z.record(z.string(), z.string());
const UserInfoSchema = z.looseObject({
  username: z._default(z.string(), ''),
  uid: z.optional(z.string()),
  groups: orElse(z.array(z.string()), () => []),
  extra: orElse(z.record(z.string(), orElse(z.array(z.string()), () => [])), () => ({})),
});

const AdmissionRequestSchema = z.looseObject({
  uid: z.string().check(z.minLength(1, 'is empty (the response must echo the request uid)')),
  kind: GvkSchema,
  resource: GvrSchema,
  subResource: z.optional(z.string()),
  requestKind: z.nullish(GvkSchema),
  requestResource: z.nullish(GvrSchema),
  requestSubResource: z.optional(z.string()),
  name: z.optional(z.string()),
  namespace: z.optional(z.string()),
  operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
  userInfo: orElse(UserInfoSchema, () => ({ username: '', groups: [] as string[], extra: {} as Record<string, string[]> })),
  object: z.optional(z.unknown()),
  oldObject: z.optional(z.unknown()),
  dryRun: orElse(z.boolean(), () => false),
  options: z.optional(z.unknown()),
});

/**
 * Check an AdmissionReview request (a parsed JSON value) and return it typed. Objects inside
 * (`object`, `oldObject`) are checked by `extractImages`.
 */
export function parseAdmissionReview(value: unknown): AdmissionReview {
  const what = 'AdmissionReview';
  if (!isPlainObject(value)) throw invalid(what, `expected a JSON object, got ${jsonType(value)}`);
  const kind = value.kind;
  const apiVersion = value.apiVersion;
  if (kind !== 'AdmissionReview') {
    if (kind === 'ImageReview') {
      throw invalid(what, 'got an ImageReview (ImagePolicyWebhook); it belongs at the image review endpoint, not the admission webhook');
    }
    throw invalid(what, kind === undefined ? 'kind is missing (expected "AdmissionReview")' : `kind: expected "AdmissionReview", got ${show(kind)}`);
  }
  if (apiVersion !== ADMISSION_API_VERSION) {
    if (apiVersion === 'admission.k8s.io/v1beta1') {
      throw invalid(what, `apiVersion admission.k8s.io/v1beta1 is not supported; list only v1 in the webhook's admissionReviewVersions`);
    }
    throw invalid(
      what,
      apiVersion === undefined ? `apiVersion is missing (expected "${ADMISSION_API_VERSION}")` : `apiVersion: expected "${ADMISSION_API_VERSION}", got ${show(apiVersion)}`,
    );
  }
  const request = value.request;
  if (request === undefined || request === null) {
    throw invalid(what, value.response !== undefined ? 'it has a response but no request' : 'request is missing');
  }
  if (!isPlainObject(request)) throw invalid(what, `request: expected an object, got ${jsonType(request)}`);
  const uid = request.uid;
  if (uid === undefined || uid === null) throw invalid(what, 'request.uid is missing (the response must echo it)');
  const rk = request.kind;
  if (rk === undefined || rk === null) throw invalid(what, 'request.kind is missing (expected {group, version, kind} of the object)');
  // The common, well-formed request is checked by hand (webhook hot path); anything it does not
  // accept goes through the schema, which accepts it the same way or names what is wrong.
  const out = fastRequest(request) ?? requestFrom(check(AdmissionRequestSchema, request, what, 'request'));
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', request: out };
}

// Hand-written twins of the schemas above for well-formed input: each returns exactly what the
// schema's parse would (after the copying done by its caller), or undefined to let the schema decide.
// test/wire-fast.test.ts checks them against the schemas.

const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

function optString(v: unknown): boolean {
  return v === undefined || typeof v === 'string';
}
function nullishString(v: unknown): boolean {
  return v === undefined || v === null || typeof v === 'string';
}

/** An object as JSON.parse makes them (plain prototype); anything else goes to the schema. */
function isJsonObject(v: unknown): v is Record<string, unknown> {
  if (!isPlainObject(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function fastGvk(v: unknown): GroupVersionKind | undefined {
  if (!isJsonObject(v)) return undefined;
  const { group, version, kind } = v;
  if (!optString(group) || !optString(version) || typeof kind !== 'string' || kind === '') return undefined;
  return { group: (group as string | undefined) ?? '', version: (version as string | undefined) ?? '', kind };
}
function fastGvr(v: unknown): GroupVersionResource | undefined {
  if (!isJsonObject(v)) return undefined;
  const { group, version, resource } = v;
  if (!optString(group) || !optString(version) || typeof resource !== 'string' || resource === '') return undefined;
  return { group: (group as string | undefined) ?? '', version: (version as string | undefined) ?? '', resource };
}

/** A JSON object whose own values are all strings (no `__proto__` key), copied; undefined otherwise. */
function fastStringMap(v: unknown): Record<string, string> | undefined {
  if (!isJsonObject(v)) return undefined;
  const out: Record<string, string> = {};
  // Object.entries: no per-key property lookups (labels objects all have different shapes).
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' || k === '__proto__') return undefined;
    out[k] = x;
  }
  return out;
}

function fastStringArray(v: unknown): string[] | undefined {
  if (!Array.isArray(v)) return undefined;
  for (const x of v) if (typeof x !== 'string') return undefined;
  return v as string[];
}

function fastUserInfo(v: unknown): UserInfo | undefined {
  if (v === undefined || v === null) return { username: '', groups: [], extra: {} };
  if (!isJsonObject(v)) return undefined;
  const { username, uid, groups, extra } = v;
  if (!optString(username) || !optString(uid)) return undefined;
  const g = groups === undefined || groups === null ? [] : fastStringArray(groups);
  if (!g) return undefined;
  const e: Record<string, string[]> = {};
  if (extra !== undefined && extra !== null) {
    if (!isJsonObject(extra)) return undefined;
    for (const [k, x] of Object.entries(extra)) {
      if (k === '__proto__') return undefined;
      const list = x === undefined || x === null ? [] : fastStringArray(x);
      if (!list) return undefined;
      e[k] = list;
    }
  }
  const out: UserInfo = { username: (username as string | undefined) ?? '', groups: g, extra: e };
  if (uid !== undefined) out.uid = uid as string;
  return out;
}

function fastRequest(r: Record<string, unknown>): AdmissionRequest | undefined {
  const { uid, operation, subResource, requestSubResource, name, namespace, dryRun } = r;
  if (typeof uid !== 'string' || uid === '' || typeof operation !== 'string' || !OPERATIONS.has(operation)) return undefined;
  if (!optString(subResource) || !optString(requestSubResource) || !optString(name) || !optString(namespace)) return undefined;
  if (dryRun !== undefined && dryRun !== null && typeof dryRun !== 'boolean') return undefined;
  const kind = fastGvk(r.kind);
  const resource = fastGvr(r.resource);
  const userInfo = fastUserInfo(r.userInfo);
  if (!kind || !resource || !userInfo) return undefined;
  let requestKind: GroupVersionKind | undefined;
  let requestResource: GroupVersionResource | undefined;
  if (r.requestKind !== undefined && r.requestKind !== null && !(requestKind = fastGvk(r.requestKind))) return undefined;
  if (r.requestResource !== undefined && r.requestResource !== null && !(requestResource = fastGvr(r.requestResource))) return undefined;
  const out: AdmissionRequest = { uid, kind, resource, operation: operation as Operation, userInfo, dryRun: dryRun === true };
  if (subResource !== undefined) out.subResource = subResource as string;
  if (requestKind) out.requestKind = requestKind;
  if (requestResource) out.requestResource = requestResource;
  if (requestSubResource !== undefined) out.requestSubResource = requestSubResource as string;
  if (name !== undefined) out.name = name as string;
  if (namespace !== undefined) out.namespace = namespace as string;
  if (r.object !== undefined) out.object = r.object;
  if (r.oldObject !== undefined) out.oldObject = r.oldObject;
  if (r.options !== undefined) out.options = r.options;
  return out;
}

function requestFrom(parsed: z.infer<typeof AdmissionRequestSchema>): AdmissionRequest {
  const out: AdmissionRequest = {
    uid: parsed.uid,
    kind: gvk(parsed.kind),
    resource: gvr(parsed.resource),
    operation: parsed.operation,
    userInfo: userInfo(parsed.userInfo),
    dryRun: parsed.dryRun,
  };
  if (parsed.subResource !== undefined) out.subResource = parsed.subResource;
  if (parsed.requestKind) out.requestKind = gvk(parsed.requestKind);
  if (parsed.requestResource) out.requestResource = gvr(parsed.requestResource);
  if (parsed.requestSubResource !== undefined) out.requestSubResource = parsed.requestSubResource;
  if (parsed.name !== undefined) out.name = parsed.name;
  if (parsed.namespace !== undefined) out.namespace = parsed.namespace;
  if (parsed.object !== undefined) out.object = parsed.object;
  if (parsed.oldObject !== undefined) out.oldObject = parsed.oldObject;
  if (parsed.options !== undefined) out.options = parsed.options;
  return out;
}

function gvk(v: { group: string; version: string; kind: string }): GroupVersionKind {
  return { group: v.group, version: v.version, kind: v.kind };
}
function gvr(v: { group: string; version: string; resource: string }): GroupVersionResource {
  return { group: v.group, version: v.version, resource: v.resource };
}
function userInfo(v: z.infer<typeof UserInfoSchema>): UserInfo {
  const out: UserInfo = { username: v.username, groups: [...v.groups], extra: { ...v.extra } };
  if (v.uid !== undefined) out.uid = v.uid;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Workloads and their containers
// ---------------------------------------------------------------------------------------------

type ListName = 'containers' | 'initContainers' | 'ephemeralContainers';
const LIST_KIND: Record<ListName, ContainerKind> = {
  containers: 'container',
  initContainers: 'initContainer',
  ephemeralContainers: 'ephemeralContainer',
};
const ALL_LISTS: ListName[] = ['containers', 'initContainers', 'ephemeralContainers'];

interface WorkloadShape {
  workload: WorkloadKind;
  /** Path from the object to its pod spec. */
  podSpec: string[];
  lists: ListName[];
  /** `podSpec` as a JSON pointer. */
  pointer: string;
}

const TEMPLATE = ['spec', 'template', 'spec'];
/**
 * Kinds by `group/kind` (any version: the pod template sits at the same place in apps/v1,
 * apps/v1beta1/2, extensions/v1beta1, batch/v1 and batch/v1beta1).
 */
const WORKLOADS: Record<string, WorkloadShape> = {
  '/Pod': shapeFor('Pod', ['spec'], ALL_LISTS),
  '/ReplicationController': shapeFor('ReplicationController', TEMPLATE, ALL_LISTS),
  '/EphemeralContainers': shapeFor('EphemeralContainers', [], ['ephemeralContainers']),
  'apps/Deployment': shapeFor('Deployment', TEMPLATE, ALL_LISTS),
  'apps/ReplicaSet': shapeFor('ReplicaSet', TEMPLATE, ALL_LISTS),
  'apps/StatefulSet': shapeFor('StatefulSet', TEMPLATE, ALL_LISTS),
  'apps/DaemonSet': shapeFor('DaemonSet', TEMPLATE, ALL_LISTS),
  'extensions/Deployment': shapeFor('Deployment', TEMPLATE, ALL_LISTS),
  'extensions/ReplicaSet': shapeFor('ReplicaSet', TEMPLATE, ALL_LISTS),
  'extensions/DaemonSet': shapeFor('DaemonSet', TEMPLATE, ALL_LISTS),
  'batch/Job': shapeFor('Job', TEMPLATE, ALL_LISTS),
  'batch/CronJob': shapeFor('CronJob', ['spec', 'jobTemplate', 'spec', 'template', 'spec'], ALL_LISTS),
};

function shapeFor(workload: WorkloadKind, podSpec: string[], lists: ListName[]): WorkloadShape {
  return { workload, podSpec, lists, pointer: podSpec.map((t) => `/${escapeJsonPointerToken(t)}`).join('') };
}

/** The kinds Plinth checks, as `group/kind` ('' group for core): for documentation and manifests. */
export const CHECKED_KINDS: ReadonlyArray<string> = Object.keys(WORKLOADS).map((k) => (k.startsWith('/') ? k.slice(1) : k));

const ContainerSchema = z.looseObject({
  name: z.nullish(z.string()),
  image: z.nullish(z.string()),
});
const ContainerListSchema = z.nullish(z.array(ContainerSchema));
const PodSpecSchema = z.looseObject({
  containers: ContainerListSchema,
  initContainers: ContainerListSchema,
  ephemeralContainers: ContainerListSchema,
});
const MetadataSchema = z.looseObject({
  name: z.nullish(z.string()),
  generateName: z.nullish(z.string()),
  namespace: z.nullish(z.string()),
  labels: z.nullish(StringMap),
  annotations: z.nullish(StringMap),
});

type ParsedMetadata = z.infer<typeof MetadataSchema>;
function fastMetadata(v: unknown): ParsedMetadata | undefined {
  if (!isJsonObject(v)) return undefined;
  const { name, generateName, namespace, labels, annotations } = v;
  if (!nullishString(name) || !nullishString(generateName) || !nullishString(namespace)) return undefined;
  const l = labels === undefined || labels === null ? labels : fastStringMap(labels);
  const a = annotations === undefined || annotations === null ? annotations : fastStringMap(annotations);
  if (l === undefined && labels != null) return undefined;
  if (a === undefined && annotations != null) return undefined;
  return { name, generateName, namespace, labels: l, annotations: a } as ParsedMetadata;
}

type ParsedPodSpec = z.infer<typeof PodSpecSchema>;
function fastContainerList(v: unknown): Array<{ name?: string | null; image?: string | null }> | null | undefined | false {
  if (v === undefined || v === null) return v;
  if (!Array.isArray(v)) return false;
  for (const c of v) if (!isJsonObject(c) || !nullishString(c.name) || !nullishString(c.image)) return false;
  return v as Array<{ name?: string | null; image?: string | null }>;
}
function fastPodSpec(v: Record<string, unknown>): ParsedPodSpec | undefined {
  const containers = fastContainerList(v.containers);
  const initContainers = fastContainerList(v.initContainers);
  const ephemeralContainers = fastContainerList(v.ephemeralContainers);
  if (containers === false || initContainers === false || ephemeralContainers === false) return undefined;
  return { containers, initContainers, ephemeralContainers } as ParsedPodSpec;
}

interface Metadata {
  name?: string;
  generateName?: string;
  namespace?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

function readMetadata(obj: Record<string, unknown>, base: string): Metadata {
  const raw = obj.metadata;
  if (raw === undefined || raw === null) return { labels: {}, annotations: {} };
  const fast = fastMetadata(raw);
  const m = fast ?? check(MetadataSchema, raw, 'AdmissionReview', `${base}.metadata`);
  // fastMetadata's maps are already copies.
  const copy = (x: Record<string, string> | null | undefined) => (x ? (fast ? x : { ...x }) : {});
  const out: Metadata = { labels: copy(m.labels), annotations: copy(m.annotations) };
  if (m.name) out.name = m.name;
  if (m.generateName) out.generateName = m.generateName;
  if (m.namespace) out.namespace = m.namespace;
  return out;
}

/** Containers of an object of a known shape; throws REQUEST_INVALID on a malformed object. */
function readContainers(obj: Record<string, unknown>, shape: WorkloadShape, base: string): Array<Omit<ContainerImage, 'isNew'>> {
  let cur: Record<string, unknown> = obj;
  const walked: string[] = [];
  for (const token of shape.podSpec) {
    const next = cur[token];
    walked.push(token);
    // A missing template is not ours to reject: the API server's validation does that after admission.
    if (next === undefined || next === null) return [];
    if (!isPlainObject(next)) throw invalid('AdmissionReview', `${dotted(base, walked)}: expected an object, got ${jsonType(next)}`);
    cur = next;
  }
  const spec = fastPodSpec(cur) ?? check(PodSpecSchema, cur, 'AdmissionReview', dotted(base, shape.podSpec));
  const prefix = shape.pointer;
  const out: Array<Omit<ContainerImage, 'isNew'>> = [];
  for (const list of shape.lists) {
    const items = spec[list];
    if (!items) continue;
    const kind = LIST_KIND[list];
    for (let i = 0; i < items.length; i++) {
      const c = items[i]!;
      out.push({ kind, name: c.name ?? '', image: c.image ?? '', path: `${prefix}/${list}/${i}/image` });
    }
  }
  return out;
}

/** WORKLOADS by group, then kind. */
const WORKLOADS_BY_GROUP = new Map<string, Map<string, WorkloadShape>>();
for (const [k, shape] of Object.entries(WORKLOADS)) {
  const [group, kind] = k.split('/') as [string, string];
  if (!WORKLOADS_BY_GROUP.has(group)) WORKLOADS_BY_GROUP.set(group, new Map());
  WORKLOADS_BY_GROUP.get(group)!.set(kind, shape);
}

function shapeOf(kind: GroupVersionKind): WorkloadShape | undefined {
  return WORKLOADS_BY_GROUP.get(kind.group)?.get(kind.kind);
}

function fmtKind(k: GroupVersionKind): string {
  return `${k.group ? `${k.group}/` : ''}${k.version}${k.version ? ' ' : ''}${k.kind}`;
}

/**
 * The container images of an admission request: for a Pod (also through its `ephemeralcontainers`
 * subresource) or a workload that creates Pods, every container of every kind with the JSON
 * pointer to its image; for anything else (another kind, another subresource, DELETE or CONNECT)
 * a `checked: false` result saying why, which the server allows.
 *
 * Throws REQUEST_INVALID when the object (or, on UPDATE, the old object) of a checked kind is
 * malformed: not an object, `kind` different from request.kind, containers not a list, an image
 * that is not a string, labels that are not strings.
 */
export function extractImages(review: AdmissionReview): AdmissionImages {
  const what = 'AdmissionReview';
  const req = review.request;
  const object = req.object;
  const shape = shapeOf(req.kind);
  if (!shape) {
    return notChecked(req, `${fmtKind(req.kind)} is not a workload Plinth checks (it checks Pods and the workloads that create them)`);
  }
  const sub = req.subResource ?? '';
  if (sub !== '' && !(shape.workload === 'Pod' && sub === 'ephemeralcontainers') && shape.workload !== 'EphemeralContainers') {
    return notChecked(req, `the ${req.resource.resource}/${sub} subresource has no container images to check`);
  }
  if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') {
    return notChecked(req, `${req.operation} requests run no new images`);
  }
  if (object === undefined || object === null) throw invalid(what, `request.object is missing for ${req.operation} of a ${req.kind.kind}`);
  if (!isPlainObject(object)) throw invalid(what, `request.object: expected an object, got ${jsonType(object)}`);
  checkObjectKind(object, req.kind, 'request.object');

  const meta = readMetadata(object, 'request.object');
  const current = readContainers(object, shape, 'request.object');
  let oldImages: Set<string> | undefined;
  const old = req.oldObject;
  if (req.operation === 'UPDATE' && old !== undefined && old !== null) {
    if (!isPlainObject(old)) throw invalid(what, `request.oldObject: expected an object, got ${jsonType(old)}`);
    checkObjectKind(old, req.kind, 'request.oldObject');
    oldImages = new Set(readContainers(old, shape, 'request.oldObject').map((c) => c.image));
  }
  const containers: ContainerImage[] = [];
  const images: string[] = [];
  const newImages: string[] = [];
  // Pods have a handful of containers: a list scan beats a Set until there are many.
  const many = current.length > 16;
  const seen = many ? new Set<string>() : undefined;
  const seenNew = many ? new Set<string>() : undefined;
  for (const c of current) {
    const isNew = !oldImages || !oldImages.has(c.image);
    containers.push({ kind: c.kind, name: c.name, image: c.image, path: c.path, isNew });
    if (seen ? !seen.has(c.image) : !images.includes(c.image)) {
      seen?.add(c.image);
      images.push(c.image);
    }
    if (isNew && (seenNew ? !seenNew.has(c.image) : !newImages.includes(c.image))) {
      seenNew?.add(c.image);
      newImages.push(c.image);
    }
  }
  const out: CheckedWorkload = {
    uid: req.uid,
    operation: req.operation,
    kind: req.kind,
    resource: req.resource,
    namespace: req.namespace || meta.namespace || '',
    name: req.name || meta.name || '',
    labels: meta.labels,
    annotations: meta.annotations,
    userInfo: req.userInfo,
    dryRun: req.dryRun,
    checked: true,
    workload: shape.workload,
    podSpecPath: shape.pointer,
    containers,
    images,
    newImages,
  };
  if (req.subResource) out.subResource = req.subResource;
  if (meta.generateName) out.generateName = meta.generateName;
  return out;
}

/** The answer for a request Plinth has nothing to check; name, labels and annotations are best effort (informative only). */
function notChecked(req: AdmissionRequest, reason: string): NotChecked {
  const out: NotChecked = {
    uid: req.uid,
    operation: req.operation,
    kind: req.kind,
    resource: req.resource,
    namespace: req.namespace ?? '',
    name: req.name ?? '',
    labels: {},
    annotations: {},
    userInfo: req.userInfo,
    dryRun: req.dryRun,
    checked: false,
    reason,
  };
  if (req.subResource) out.subResource = req.subResource;
  const source = isPlainObject(req.object) ? req.object : isPlainObject(req.oldObject) ? req.oldObject : undefined;
  if (source) {
    const m = MetadataSchema.safeParse(own(source, 'metadata'));
    if (m.success) {
      if (m.data.labels) out.labels = { ...m.data.labels };
      if (m.data.annotations) out.annotations = { ...m.data.annotations };
      if (!out.name && m.data.name) out.name = m.data.name;
      if (m.data.generateName) out.generateName = m.data.generateName;
      if (!out.namespace && m.data.namespace) out.namespace = m.data.namespace;
    }
  }
  return out;
}

function checkObjectKind(obj: Record<string, unknown>, kind: GroupVersionKind, base: string): void {
  const k = obj.kind;
  if (k === undefined || k === null) return;
  if (typeof k !== 'string') throw invalid('AdmissionReview', `${base}.kind: expected a string, got ${jsonType(k)}`);
  if (k !== kind.kind) {
    throw invalid('AdmissionReview', `${base}.kind is ${show(k)} but request.kind.kind is ${show(kind.kind)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// ImageReview
// ---------------------------------------------------------------------------------------------

const ImageReviewSpecSchema = z.looseObject({
  containers: orElse(z.array(z.looseObject({ image: z.nullish(z.string()) })), () => []),
  annotations: orElse(StringMap, () => ({})),
  namespace: orElse(z.string(), () => ''),
});

function fastImageReviewSpec(v: Record<string, unknown>): z.infer<typeof ImageReviewSpecSchema> | undefined {
  const { containers, annotations, namespace } = v;
  const list = fastContainerList(containers);
  if (list === false || !nullishString(namespace)) return undefined;
  const a = annotations === undefined || annotations === null ? {} : fastStringMap(annotations);
  if (!a) return undefined;
  return { containers: list ?? [], annotations: a, namespace: (namespace as string | null | undefined) ?? '' };
}

/** Check an ImageReview request (a parsed JSON value) and return it typed. */
export function parseImageReview(value: unknown): ImageReview {
  const what = 'ImageReview';
  if (!isPlainObject(value)) throw invalid(what, `expected a JSON object, got ${jsonType(value)}`);
  const kind = value.kind;
  const apiVersion = value.apiVersion;
  if (kind !== 'ImageReview') {
    if (kind === 'AdmissionReview') {
      throw invalid(what, 'got an AdmissionReview; it belongs at the admission webhook endpoints (/validate, /mutate)');
    }
    throw invalid(what, kind === undefined ? 'kind is missing (expected "ImageReview")' : `kind: expected "ImageReview", got ${show(kind)}`);
  }
  if (apiVersion !== IMAGE_REVIEW_API_VERSION) {
    throw invalid(
      what,
      apiVersion === undefined
        ? `apiVersion is missing (expected "${IMAGE_REVIEW_API_VERSION}")`
        : `apiVersion: expected "${IMAGE_REVIEW_API_VERSION}", got ${show(apiVersion)}`,
    );
  }
  const spec = value.spec;
  if (spec === undefined || spec === null) throw invalid(what, 'spec is missing');
  if (!isPlainObject(spec)) throw invalid(what, `spec: expected an object, got ${jsonType(spec)}`);
  const parsed = fastImageReviewSpec(spec) ?? check(ImageReviewSpecSchema, spec, what, 'spec');
  return {
    apiVersion: IMAGE_REVIEW_API_VERSION,
    kind: 'ImageReview',
    spec: {
      containers: parsed.containers.map((c) => ({ image: c.image ?? '' })),
      annotations: { ...parsed.annotations },
      namespace: parsed.namespace,
    },
  };
}

/** True for the annotation keys the ImagePolicyWebhook plugin forwards (`*.image-policy.k8s.io/*`). */
export function isImagePolicyAnnotation(key: string): boolean {
  // k8s.io/kubernetes plugin/pkg/admission/imagepolicy: filterAnnotations keeps keys that contain
  // ".image-policy.k8s.io/"; the same test here, so a hand-made request is read like a real one.
  return key.includes('.image-policy.k8s.io/');
}

export function extractImageReviewImages(review: ImageReview): ImageReviewImages {
  const containers = review.spec.containers.map((c, index) => ({ index, image: c.image }));
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(review.spec.annotations)) {
    if (isImagePolicyAnnotation(k)) annotations[k] = v;
  }
  return {
    namespace: review.spec.namespace,
    containers,
    images: [...new Set(containers.map((c) => c.image))],
    annotations,
  };
}

// ---------------------------------------------------------------------------------------------
// Text bounds
// ---------------------------------------------------------------------------------------------

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
// Go's unicode.IsControl: the Cc category (U+0000–U+001F, U+007F–U+009F).
const CONTROL = /\p{Cc}/gu;

/** Replace lone surrogates (which would not survive UTF-8) with U+FFFD. */
export function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

/** Number of Unicode code points (Go runes) of a well-formed string. */
export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Cut to at most `max` code points, ending with "…" when cut. Never splits a surrogate pair. */
export function truncateCodePoints(s: string, max: number): string {
  const cps = Array.from(s);
  if (cps.length <= max) return s;
  if (max <= 0) return '';
  return `${cps.slice(0, max - 1).join('')}…`;
}

/** Cut to at most `maxBytes` bytes of UTF-8, on a code point boundary, ending with "…" when cut. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s, 'utf8') <= maxBytes) return s;
  const ellipsis = '…'; // 3 bytes
  const budget = maxBytes - 3;
  if (budget < 0) return '';
  let used = 0;
  let out = '';
  for (const cp of s) {
    const n = Buffer.byteLength(cp, 'utf8');
    if (used + n > budget) break;
    used += n;
    out += cp;
  }
  return out + ellipsis;
}

/**
 * Make warnings that the API server passes on whole: well-formed, without control characters
 * (replaced by spaces; the server would drop the warning), trimmed, non-empty, distinct, each at
 * most WARNING_MAX_CODE_POINTS code points and together at most WARNINGS_TOTAL_MAX_CODE_POINTS;
 * when some do not fit, the last one kept says how many were left out.
 */
export function boundWarnings(warnings: ReadonlyArray<string>): string[] {
  const cleaned: string[] = [];
  const seen = new Set<string>();
  for (const w of warnings) {
    if (typeof w !== 'string') continue;
    const c = truncateCodePoints(wellFormed(w).replace(CONTROL, ' ').trim(), WARNING_MAX_CODE_POINTS);
    if (c === '' || seen.has(c)) continue;
    seen.add(c);
    cleaned.push(c);
  }
  const kept: string[] = [];
  let total = 0;
  let i = 0;
  for (; i < cleaned.length; i++) {
    const n = codePointLength(cleaned[i]!);
    if (total + n > WARNINGS_TOTAL_MAX_CODE_POINTS) break;
    kept.push(cleaned[i]!);
    total += n;
  }
  if (i === cleaned.length) return kept;
  // Make room for a note saying how many were left out.
  for (;;) {
    const omitted = cleaned.length - kept.length;
    const note = `(${omitted} more warning${omitted === 1 ? '' : 's'} not shown)`;
    const n = codePointLength(note);
    if (total + n <= WARNINGS_TOTAL_MAX_CODE_POINTS || kept.length === 0) {
      kept.push(note);
      return kept;
    }
    total -= codePointLength(kept.pop()!);
  }
}

function boundMessage(s: string, maxBytes: number): string {
  return truncateUtf8(wellFormed(s), maxBytes);
}

// ---------------------------------------------------------------------------------------------
// JSON Pointer and JSON Patch
// ---------------------------------------------------------------------------------------------

/** RFC 6901 §3: `~` is written `~0` and `/` is written `~1` (in that order). */
export function escapeJsonPointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function unescapeJsonPointerToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** A JSON pointer from its reference tokens: `['metadata', 'annotations', 'a/b']` → `/metadata/annotations/a~1b`. */
export function jsonPointer(tokens: ReadonlyArray<string | number>): string {
  return tokens.map((t) => `/${escapeJsonPointerToken(t)}`).join('');
}

/** The reference tokens of a JSON pointer; throws USAGE when it is not one (RFC 6901 §3). */
export function parseJsonPointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PlinthError('USAGE', `invalid JSON pointer ${show(pointer)}: it must be empty or start with "/"`);
  const tokens = pointer.slice(1).split('/');
  for (const t of tokens) {
    if (/~(?![01])/.test(t)) throw new PlinthError('USAGE', `invalid JSON pointer ${show(pointer)}: "~" must be followed by 0 or 1`);
  }
  return tokens.map(unescapeJsonPointerToken);
}

function checkPatch(ops: ReadonlyArray<JsonPatchOp>): JsonPatchOp[] {
  return ops.map((op, i) => {
    if (!isPlainObject(op)) throw new PlinthError('USAGE', `patch[${i}]: expected an operation object`);
    const o = op as Record<string, unknown>;
    const kind = o.op;
    if (typeof o.path !== 'string') throw new PlinthError('USAGE', `patch[${i}].path: expected a JSON pointer string`);
    parseJsonPointer(o.path);
    switch (kind) {
      case 'add':
      case 'replace':
      case 'test':
        if (!('value' in o) || o.value === undefined) throw new PlinthError('USAGE', `patch[${i}]: "${kind}" needs a value`);
        return { op: kind, path: o.path, value: o.value };
      case 'remove':
        return { op: kind, path: o.path };
      case 'move':
      case 'copy':
        if (typeof o.from !== 'string') throw new PlinthError('USAGE', `patch[${i}]: "${kind}" needs "from"`);
        parseJsonPointer(o.from);
        return { op: kind, from: o.from, path: o.path };
      default:
        throw new PlinthError('USAGE', `patch[${i}].op: expected add, remove, replace, move, copy or test, got ${show(kind)}`);
    }
  });
}

/** The base64 `patch` field of an AdmissionResponse: standard base64 of the JSON Patch document. */
export function encodePatch(ops: ReadonlyArray<JsonPatchOp>): string {
  if (!Array.isArray(ops)) throw new PlinthError('USAGE', 'a JSON Patch is a list of operations');
  let json: string;
  try {
    json = JSON.stringify(checkPatch(ops));
  } catch (e) {
    if (e instanceof PlinthError) throw e;
    throw new PlinthError('USAGE', `the patch cannot be written as JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  return Buffer.from(json, 'utf8').toString('base64');
}

/**
 * JSON Patch operations that pin each image that has no digest to the digest `resolved` gives it.
 *
 * The tag is kept: `registry.example.com/team/app:1.4.2` becomes
 * `registry.example.com/team/app:1.4.2@sha256:…` — the reference as written, then `@digest`
 * (what k8s-digester writes and what the wire-format doc shows). A container runtime pulls by the
 * digest and ignores the tag, so this is as immutable as `name@digest`, while people and tools
 * still see which tag was deployed. A name without a tag (`nginx`) becomes `nginx@sha256:…`.
 *
 * Images that already carry a digest, and images `resolved` does not name, are left alone (so
 * a reinvoked mutating webhook produces no new operations). Throws DIGEST_INVALID for a digest
 * that is not `algorithm:hex` of a known algorithm, REFERENCE_INVALID for an image to pin that is
 * not a valid reference, and USAGE for a path that is not a JSON pointer.
 */
export function pinPatch(images: ReadonlyArray<Pick<ContainerImage, 'image' | 'path'>>, resolved: ReadonlyMap<string, string>): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  for (const { image, path } of images) {
    const digest = resolved.get(image);
    if (digest === undefined) continue;
    parseDigest(digest);
    const ref = parseImageReference(image);
    if (ref.digest) continue;
    parseJsonPointer(path);
    ops.push({ op: 'replace', path, value: `${image}@${digest}` });
  }
  return ops;
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/**
 * An audit annotation key as the API server accepts it: it prefixes `<webhook name>/` (or
 * `imagepolicywebhook.image-policy.k8s.io/`) and requires the result to be a qualified name
 * (k8s.io/apiserver/pkg/admission: checkKeyFormat), so the key is a name part: at most 63
 * characters, alphanumerics with `-`, `_`, `.` inside. Others would be dropped with a log line.
 */
const AUDIT_KEY = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

function checkAuditAnnotations(a: Record<string, string> | undefined): Record<string, string> | undefined {
  if (a === undefined) return undefined;
  if (!isPlainObject(a)) throw new PlinthError('USAGE', 'auditAnnotations must be an object of strings');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(a)) {
    if (!AUDIT_KEY.test(k)) {
      throw new PlinthError('USAGE', `audit annotation key ${show(k)} is not a valid name (at most 63 of A-Z a-z 0-9 - _ ., starting and ending alphanumeric)`);
    }
    if (typeof v !== 'string') throw new PlinthError('USAGE', `audit annotation ${k}: expected a string value`);
    out[k] = wellFormed(v);
  }
  return Object.keys(out).length ? out : undefined;
}

function maxBytesOf(n: number | undefined): number {
  const m = n ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!Number.isInteger(m) || m < 16) throw new PlinthError('USAGE', `maxMessageBytes must be an integer of at least 16, got ${m}`);
  return m;
}

export const DEFAULT_DENIAL_MESSAGE = "the request was denied by Plinth's image policy";

/**
 * The AdmissionReview v1 response for a request's uid: `{apiVersion, kind, response: {uid,
 * allowed, status?, warnings?, patchType?, patch?, auditAnnotations?}}`. A denial carries
 * `status: {code, message}` (code 403 unless given; the API server turns codes under 400 into
 * 400, so they are refused here); a mutation carries `patchType: "JSONPatch"` and the base64
 * patch. Warnings go through `boundWarnings`, the message through `truncateUtf8`.
 */
export function admissionResponse(uid: string, decision: AdmissionDecision): AdmissionReviewResponse {
  if (typeof uid !== 'string' || uid === '') throw new PlinthError('USAGE', 'admissionResponse needs the request uid');
  if (typeof decision?.allowed !== 'boolean') throw new PlinthError('USAGE', 'admissionResponse needs allowed: true or false');
  const response: AdmissionReviewResponse['response'] = { uid, allowed: decision.allowed };
  if (!decision.allowed) {
    const code = decision.code ?? 403;
    if (!Number.isInteger(code) || code < 400 || code > 599) throw new PlinthError('USAGE', `a denial's code must be an HTTP status 400–599, got ${code}`);
    const message = decision.message !== undefined && decision.message.trim() !== '' ? decision.message : DEFAULT_DENIAL_MESSAGE;
    response.status = { code, message: boundMessage(message, maxBytesOf(decision.maxMessageBytes)) };
  }
  if (decision.warnings !== undefined) {
    if (!Array.isArray(decision.warnings)) throw new PlinthError('USAGE', 'warnings must be a list of strings');
    const w = boundWarnings(decision.warnings);
    if (w.length) response.warnings = w;
  }
  if (decision.patch !== undefined && decision.patch.length > 0) {
    if (!decision.allowed) throw new PlinthError('USAGE', 'a denied request cannot be patched');
    response.patchType = 'JSONPatch';
    response.patch = encodePatch(decision.patch);
  }
  const audit = checkAuditAnnotations(decision.auditAnnotations);
  if (audit) response.auditAnnotations = audit;
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/**
 * The ImageReview response: `{apiVersion, kind, status: {allowed, reason?, auditAnnotations?}}`.
 * The user sees `pods "x" is forbidden: image policy webhook backend denied one or more images:
 * <reason>`.
 */
export function imageReviewResponse(decision: ImageReviewDecision): ImageReviewResponse {
  if (typeof decision?.allowed !== 'boolean') throw new PlinthError('USAGE', 'imageReviewResponse needs allowed: true or false');
  const status: ImageReviewResponse['status'] = { allowed: decision.allowed };
  if (decision.reason !== undefined && decision.reason.trim() !== '') status.reason = boundMessage(decision.reason, maxBytesOf(decision.maxMessageBytes));
  const audit = checkAuditAnnotations(decision.auditAnnotations);
  if (audit) status.auditAnnotations = audit;
  return { apiVersion: IMAGE_REVIEW_API_VERSION, kind: 'ImageReview', status };
}

/**
 * @internal For test/wire-fast.test.ts: the hand-written checks of the hot path and the schemas
 * they must agree with.
 */
export const __fastPaths = {
  request: fastRequest,
  requestFrom,
  requestSchema: AdmissionRequestSchema,
  metadata: fastMetadata,
  metadataSchema: MetadataSchema,
  podSpec: fastPodSpec,
  podSpecSchema: PodSpecSchema,
  imageReviewSpec: fastImageReviewSpec,
  imageReviewSpecSchema: ImageReviewSpecSchema,
};
