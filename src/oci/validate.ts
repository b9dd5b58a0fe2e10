/**
 * Validation of OCI image-spec v1.1 documents (and Docker schema 2 ones) against the rules of the
 * image-spec JSON schemas (schema/*.json) plus the extra checks of image-spec's Go validator
 * (schema/validator.go: Env entries must be KEY=VALUE; descriptor digests of registered algorithms
 * must have the right length and lowercase hex; `data` must be padded standard base64).
 *
 * Every function here throws only PlinthError('MANIFEST_INVALID'), whose message names the JSON
 * path and what is wrong, e.g.
 *   manifest is invalid: layers[0].size: expected a non-negative integer, got string
 * Validated documents are returned as given (not copied): unknown fields are kept, as the spec
 * requires consumers to ignore rather than reject them.
 */
// zod/mini (not zod classic): a fraction of the start-up cost; the messages are all our own (errorMap).
import * as z from 'zod/mini';
import { ALGORITHMS, DIGEST_GRAMMAR, digestOf } from './digest.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  OCI_INDEX,
  OCI_MANIFEST,
  baseMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSchema1MediaType,
} from './mediatypes.js';
import type { Descriptor, ImageConfig, Index, Manifest, OciLayout, ParsedDocument, Platform } from './types.js';
import { PlinthError } from '../util/errors.js';

// ---------------------------------------------------------------------------------------------
// Grammars
// ---------------------------------------------------------------------------------------------

/**
 * RFC 6838 §4.2 media type (type "/" subtype, each a restricted-name: an alphanumeric followed by
 * at most 126 of `A-Za-z0-9!#$&^_.+-`), as in image-spec's defs-descriptor.json. No parameters.
 */
export const MEDIA_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

/** RFC 3986 absolute URI (scheme ":" hier-part [ "?" query ] [ "#" fragment ]), ASCII only. */
const URI_PATTERN = /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;

/** Standard base64 alphabet with `=` padding (what Go's encoding/json expects for []byte). */
const BASE64_PADDED = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** RFC 3339 date-time (JSON Schema `format: date-time`); ranges are checked separately. */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * Env entries: image-spec's validator.go requires `^[^=]+=.*$`. We let the value span newlines
 * (Go's `.` would not), since a value may legitimately contain one.
 */
const ENV_ENTRY = /^[^=]+=[\s\S]*$/;

export function isValidMediaType(s: unknown): s is string {
  return typeof s === 'string' && MEDIA_TYPE_PATTERN.test(s);
}

/**
 * Why a descriptor digest is invalid, or undefined when it is valid: the image-spec grammar
 * `algorithm:encoded`, plus, for registered algorithms Plinth knows (sha256, sha384, sha512), the
 * exact length of lowercase hex. Other well-formed algorithms (e.g. `sha256+b64u:…`,
 * `multihash+base58:…`) are valid descriptors, merely not verifiable by Plinth.
 */
export function digestProblem(s: string): string | undefined {
  const i = s.indexOf(':');
  const algorithm = i === -1 ? s : s.slice(0, i);
  const encoded = i === -1 ? '' : s.slice(i + 1);
  if (!DIGEST_GRAMMAR.test(s)) {
    let why = '';
    if (i > 0 && encoded !== '') {
      if (!/^[a-z0-9]+(?:[+._-][a-z0-9]+)*$/.test(algorithm)) why = ' (the algorithm must be lowercase letters and digits, with single + . _ - separators)';
      else why = ' (the encoded part may only contain A-Z a-z 0-9 = _ -)';
    }
    return `expected a digest of the form algorithm:encoded (e.g. sha256:<64 hex>)${why}, got ${show(s)}`;
  }
  const alg = ALGORITHMS[algorithm];
  if (alg && !(encoded.length === alg.hexLength && /^[a-f0-9]+$/.test(encoded))) {
    return `a ${algorithm} digest must be ${alg.hexLength} lowercase hex characters, got ${show(s)}`;
  }
  return undefined;
}

function dateTimeOk(s: string): boolean {
  const m = DATE_TIME.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60) return false;
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d > daysInMonth) return false;
  if (m[7] !== undefined && (Number(m[8]) > 23 || Number(m[9]) > 59)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Message helpers
// ---------------------------------------------------------------------------------------------

type JsonType = 'null' | 'array' | 'object' | 'string' | 'number' | 'boolean';

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v === undefined) return 'nothing';
  return typeof v;
}

function clip(s: string, n = 72): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/** A short rendering of a value for messages: strings quoted and clipped, numbers as is, else the type. */
function show(v: unknown): string {
  if (typeof v === 'string') return clip(JSON.stringify(v));
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return jsonType(v);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const MISSING = 'missing required field';

/**
 * A leaf value: must have JSON type `base`, then pass `check` (true = fine, false = generic
 * "expected <what>, got <value>", string = that message). A missing value is "missing required field";
 * wrap in z.optional() for optional fields.
 */
function leaf<T>(what: string, base: JsonType, check: (v: never) => boolean | string = () => true): z.ZodMiniType<T> {
  return z.unknown().check(z.superRefine((v, ctx) => {
    if (v === undefined) {
      ctx.addIssue({ code: 'custom', message: MISSING });
      return;
    }
    if (jsonType(v) !== base) {
      ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${jsonType(v)}` });
      return;
    }
    const r = check(v as never);
    if (r === true) return;
    ctx.addIssue({ code: 'custom', message: typeof r === 'string' ? r : `expected ${what}, got ${show(v)}` });
  })) as unknown as z.ZodMiniType<T>;
}

/** Messages for zod's own issues (objects, arrays, records), shaped like the leaf messages. */
function errorMap(iss: z.core.$ZodRawIssue): string {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return MISSING;
      return `expected ${article(iss.expected)}, got ${jsonType(iss.input)}`;
    case 'too_small':
      if (iss.origin === 'array') {
        const n = Number(iss.minimum);
        return `expected at least ${n} ${n === 1 ? 'entry' : 'entries'}, got ${Array.isArray(iss.input) && iss.input.length > 0 ? iss.input.length : 'none'}`;
      }
      return `too small (minimum ${String(iss.minimum)})`;
    case 'invalid_value':
      return `expected ${iss.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${show(iss.input)}`;
    default:
      return iss.message ?? 'invalid value';
  }
}

function article(expected: string): string {
  switch (expected) {
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    default:
      return expected;
  }
}

/** `layers[0].size`, `annotations["org.opencontainers.image.ref.name"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(clip(key, 60))}]`;
    }
  }
  return out;
}

export interface ValidationIssue {
  path: string;
  message: string;
}

function invalid(what: string, issues: ValidationIssue[]): PlinthError {
  const shown = issues.slice(0, 3).map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
  const more = issues.length > 3 ? ` (and ${issues.length - 3} more problem${issues.length - 3 === 1 ? '' : 's'})` : '';
  return new PlinthError('MANIFEST_INVALID', `${what} is invalid: ${shown.join('; ')}${more}`, { document: what, issues });
}

function run<T>(what: string, schema: z.ZodMiniType, doc: unknown): T {
  let result: ReturnType<z.ZodMiniType['safeParse']>;
  try {
    result = schema.safeParse(doc, { reportInput: true, error: errorMap });
  } catch (e) {
    // Not expected for JSON input; never let anything but a PlinthError escape.
    throw new PlinthError('MANIFEST_INVALID', `${what} is invalid: it could not be validated (${e instanceof Error ? e.message : String(e)})`, { document: what }, { cause: e });
  }
  if (!result.success) {
    throw invalid(what, result.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })));
  }
  return doc as T;
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

const str = () => leaf<string>('a string', 'string');
const bool = () => leaf<boolean>('a boolean', 'boolean');
const stringArray = () => z.array(str());
const nullable = <T>(s: z.ZodMiniType<T>, base: 'array' | 'object'): z.ZodMiniType<T | null> =>
  // A plain union would report "invalid input"; decide on the JSON type instead.
  z.unknown().check(z.superRefine((v, ctx) => {
    if (v === null) return;
    if (v !== undefined && jsonType(v) !== base) {
      ctx.addIssue({ code: 'custom', message: `expected ${article(base)} or null, got ${jsonType(v)}` });
      return;
    }
    const r = s.safeParse(v, { reportInput: true, error: errorMap });
    if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: 'custom', message: i.message, path: i.path as PropertyKey[] });
  })) as unknown as z.ZodMiniType<T | null>;

export const MediaTypeSchema = leaf<string>(
  'a media type (type/subtype, RFC 6838)',
  'string',
  (s: string) => MEDIA_TYPE_PATTERN.test(s) || `expected a media type like type/subtype (RFC 6838, each part at most 127 characters), got ${show(s)}`,
);

export const DigestSchema = leaf<string>('a digest string', 'string', (s: string) => digestProblem(s) ?? true);

/** Sizes are int64 in the spec; here they must also be exactly representable (≤ 2^53-1). */
export const SizeSchema = leaf<number>('a non-negative integer', 'number', (n: number) => {
  if (!Number.isInteger(n) || n < 0) return false;
  return Number.isSafeInteger(n) || `expected a non-negative integer no larger than ${Number.MAX_SAFE_INTEGER}, got ${n}`;
});

const UrlSchema = leaf<string>('a URI', 'string', (s: string) => URI_PATTERN.test(s) || `expected an absolute URI (RFC 3986, e.g. https://example.com/blob), got ${show(s)}`);

const Base64Schema = leaf<string>('base64 data', 'string', (s: string) => BASE64_PADDED.test(s) || `expected standard base64 with padding, got ${show(s)}`);

const DateTimeSchema = leaf<string>('a date-time', 'string', (s: string) => dateTimeOk(s) || `expected an RFC 3339 date-time (e.g. 2015-10-31T22:22:56.015925234Z), got ${show(s)}`);

export const AnnotationsSchema = z.record(z.string(), str()) as unknown as z.ZodMiniType<Record<string, string>>;

/** JSON Schema mapStringObject: values are objects (for ExposedPorts / Volumes they are `{}`). */
const MapStringObject = z.record(z.string(), leaf<Record<string, unknown>>('an object', 'object')) as unknown as z.ZodMiniType<Record<string, Record<string, unknown>>>;

export const PlatformSchema = z.looseObject({
  architecture: str(),
  os: str(),
  'os.version': z.optional(str()),
  'os.features': z.optional(stringArray()),
  variant: z.optional(str()),
  features: z.optional(stringArray()),
}) as unknown as z.ZodMiniType<Platform>;

export const DescriptorSchema = z
  .looseObject({
    mediaType: MediaTypeSchema,
    digest: DigestSchema,
    size: SizeSchema,
    urls: z.optional(z.array(UrlSchema)),
    annotations: z.optional(AnnotationsSchema),
    data: z.optional(Base64Schema),
    artifactType: z.optional(MediaTypeSchema),
    platform: z.optional(PlatformSchema),
  })
  .check(z.superRefine((d, ctx) => {
    // Embedded data must be the referenced content (descriptor.md). Refinements also run when other
    // fields have issues, so every field is re-checked before use.
    if (!isPlainObject(d) || typeof d.data !== 'string' || !BASE64_PADDED.test(d.data)) return;
    const bytes = Buffer.from(d.data, 'base64');
    if (Number.isSafeInteger(d.size) && bytes.length !== d.size) {
      ctx.addIssue({ code: 'custom', path: ['data'], message: `decoded data is ${bytes.length} bytes, but size is ${d.size}` });
      return;
    }
    if (typeof d.digest !== 'string' || digestProblem(d.digest) !== undefined) return;
    const algorithm = d.digest.slice(0, d.digest.indexOf(':'));
    if (!ALGORITHMS[algorithm]) return;
    const actual = digestOf(bytes, algorithm);
    if (actual !== d.digest) {
      ctx.addIssue({ code: 'custom', path: ['data'], message: `decoded data has digest ${actual}, but digest is ${d.digest}` });
    }
  })) as unknown as z.ZodMiniType<Descriptor>;

const schemaVersion2 = leaf<2>('the integer 2', 'number', (n: number) =>
  n === 2 || (n === 1 ? 'schemaVersion 1 (Docker schema 1) is not supported; only schemaVersion 2 (OCI / Docker schema 2)' : false),
);

const oneOf = (what: string, allowed: readonly string[]) =>
  leaf<string>(what, 'string', (s: string) => allowed.includes(s) || `expected ${allowed.map((a) => JSON.stringify(a)).join(' or ')}, got ${show(s)}`);

const manifestShape = (layers: z.ZodMiniType) => z.looseObject({
  schemaVersion: schemaVersion2,
  // OCI: when present it MUST be the OCI manifest type; Docker schema 2 uses its own.
  mediaType: z.optional(oneOf('a manifest media type', [OCI_MANIFEST, DOCKER_MANIFEST])),
  artifactType: z.optional(MediaTypeSchema),
  config: DescriptorSchema,
  // The image-spec schema at the vectors' commit (13cff54) has "minItems": 1, and the vector
  // "expected failure: empty layer, expected at least one" relies on it, although manifest.md
  // (v1.1) only says layers SHOULD have at least one entry. We follow the schema/vector.
  layers,
  subject: z.optional(DescriptorSchema),
  annotations: z.optional(AnnotationsSchema),
}) as unknown as z.ZodMiniType<Manifest>;

export const ManifestSchema = manifestShape(z.array(DescriptorSchema).check(z.minLength(1)));
/**
 * Real images with no layers exist (umoci new, config-only images, artifacts): manifest.md v1.1
 * only says layers SHOULD be non-empty, so reading an image accepts them (allowEmptyLayers).
 */
export const ManifestSchemaAllowEmpty = manifestShape(z.array(DescriptorSchema));

export const IndexSchema = z.looseObject({
  schemaVersion: schemaVersion2,
  mediaType: z.optional(oneOf('an index media type', [OCI_INDEX, DOCKER_MANIFEST_LIST])),
  artifactType: z.optional(MediaTypeSchema),
  // Entries may reference any media type matching the pattern (image-spec: unknown types are ignored, not rejected).
  manifests: z.array(DescriptorSchema),
  subject: z.optional(DescriptorSchema),
  annotations: z.optional(AnnotationsSchema),
}) as unknown as z.ZodMiniType<Index>;

const EnvEntry = leaf<string>('a KEY=VALUE string', 'string', (s: string) => ENV_ENTRY.test(s) || `expected a KEY=VALUE string, got ${show(s)}`);
const NanoSeconds = leaf<number>('an integer (nanoseconds)', 'number', (n: number) => Number.isInteger(n));

const HealthcheckSchema = z.looseObject({
  Test: z.optional(nullable(stringArray(), 'array')),
  Interval: z.optional(NanoSeconds),
  Timeout: z.optional(NanoSeconds),
  StartPeriod: z.optional(NanoSeconds),
  StartInterval: z.optional(NanoSeconds),
  Retries: z.optional(leaf<number>('an integer', 'number', (n: number) => Number.isInteger(n))),
});

export const ContainerConfigSchema = z.looseObject({
  User: z.optional(str()),
  // The OCI schema does not allow null for ExposedPorts and Env; Docker writes `"Env": null` for an
  // empty list (Go nil slice without omitempty), so null is tolerated for both.
  ExposedPorts: z.optional(nullable(MapStringObject, 'object')),
  Env: z.optional(nullable(z.array(EnvEntry), 'array')),
  Entrypoint: z.optional(nullable(stringArray(), 'array')),
  Cmd: z.optional(nullable(stringArray(), 'array')),
  Volumes: z.optional(nullable(MapStringObject, 'object')),
  WorkingDir: z.optional(str()),
  Labels: z.optional(nullable(AnnotationsSchema, 'object')),
  StopSignal: z.optional(str()),
  ArgsEscaped: z.optional(bool()),
  // Docker extensions:
  Healthcheck: z.optional(nullable(HealthcheckSchema, 'object')),
  OnBuild: z.optional(nullable(stringArray(), 'array')),
  Shell: z.optional(nullable(stringArray(), 'array')),
});

export const HistorySchema = z.looseObject({
  created: z.optional(DateTimeSchema),
  author: z.optional(str()),
  created_by: z.optional(str()),
  comment: z.optional(str()),
  empty_layer: z.optional(bool()),
});

export const ImageConfigSchema = z.looseObject({
  created: z.optional(DateTimeSchema),
  author: z.optional(str()),
  architecture: str(),
  os: str(),
  'os.version': z.optional(str()),
  'os.features': z.optional(stringArray()),
  variant: z.optional(str()),
  config: z.optional(ContainerConfigSchema),
  rootfs: z.looseObject({
    type: oneOf('"layers"', ['layers']),
    diff_ids: z.array(DigestSchema),
  }),
  history: z.optional(z.array(HistorySchema)),
}) as unknown as z.ZodMiniType<ImageConfig>;

export const OciLayoutSchema = z.looseObject({
  imageLayoutVersion: oneOf('"1.0.0"', ['1.0.0']),
}) as unknown as z.ZodMiniType<OciLayout>;

// ---------------------------------------------------------------------------------------------
// Public validators
// ---------------------------------------------------------------------------------------------

/** Validate an (already JSON-parsed) OCI image manifest or Docker schema 2 manifest. */
export interface ValidateOptions {
  /** Accept a manifest with zero layers (valid per manifest.md v1.1, refused by the strict schema). */
  allowEmptyLayers?: boolean;
}

export function validateManifest(doc: unknown, opts: ValidateOptions = {}): Manifest {
  const m = run<Manifest>('manifest', opts.allowEmptyLayers ? ManifestSchemaAllowEmpty : ManifestSchema, doc);
  if (Object.hasOwn(m, 'manifests')) {
    throw invalid('manifest', [{ path: 'manifests', message: 'a manifest must not have a "manifests" field (ambiguous manifest/index document)' }]);
  }
  return m;
}

/** Validate an (already JSON-parsed) OCI image index or Docker manifest list. */
export function validateIndex(doc: unknown): Index {
  const ix = run<Index>('index', IndexSchema, doc);
  for (const field of ['config', 'layers'] as const) {
    if (Object.hasOwn(ix, field)) {
      throw invalid('index', [{ path: field, message: `an index must not have a "${field}" field (ambiguous manifest/index document)` }]);
    }
  }
  return ix;
}

/** Validate an (already JSON-parsed) OCI / Docker image configuration. */
export function validateConfig(doc: unknown): ImageConfig {
  return run<ImageConfig>('config', ImageConfigSchema, doc);
}

/** Validate a single content descriptor. */
export function validateDescriptor(doc: unknown): Descriptor {
  return run<Descriptor>('descriptor', DescriptorSchema, doc);
}

/** Validate the `oci-layout` header of an OCI image layout. */
export function validateLayout(doc: unknown): OciLayout {
  return run<OciLayout>('oci-layout', OciLayoutSchema, doc);
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/**
 * Decode UTF-8 and JSON-parse `input`, throwing PlinthError('MANIFEST_INVALID') with a clear
 * message ("manifest is not valid JSON: …") instead of a SyntaxError. `what` names the document.
 */
export function parseJson(input: Uint8Array | string, what = 'document'): unknown {
  let text: string;
  if (typeof input === 'string') text = input;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      throw new PlinthError('MANIFEST_INVALID', `${what} is not valid JSON: it is not valid UTF-8`, { document: what });
    }
  }
  if (text.trim() === '') throw new PlinthError('MANIFEST_INVALID', `${what} is not valid JSON: it is empty`, { document: what });
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new PlinthError('MANIFEST_INVALID', `${what} is not valid JSON: ${clip(reason, 160)}`, { document: what });
  }
}

/** Content types that say nothing about which document this is (some registries send them). */
const GENERIC_MEDIA_TYPES = new Set(['', 'application/json', 'application/octet-stream', 'text/plain', 'binary/octet-stream']);

function schema1Error(where: string): PlinthError {
  return new PlinthError(
    'MANIFEST_INVALID',
    `${where} is a Docker schema 1 manifest, which Plinth does not support (schema 1 is deprecated and unsigned-by-content); re-push the image with a current Docker, buildx, crane or skopeo to get a schema 2 / OCI manifest`,
    { document: 'manifest', reason: 'schema1' },
  );
}

/**
 * Parse and validate a manifest or index from its bytes.
 *
 * The kind comes from the document's `mediaType`, else from `expectedMediaType` (the descriptor's
 * media type or the registry's Content-Type), else from its structure (`manifests` → index;
 * `config` + `layers` → manifest). When both the document and `expectedMediaType` name a
 * manifest/index type they must agree. Docker schema 1 is refused. Generic content types
 * (application/json, application/octet-stream, …) in `expectedMediaType` are ignored.
 *
 * Returns the kind, the effective media type (the document's, else the expected one, else the
 * OCI default for the kind) and the validated document.
 */
export function parseDocument(bytes: Uint8Array, expectedMediaType?: string, opts: ValidateOptions = {}): ParsedDocument {
  let expected: string | undefined;
  let expectedKind: 'manifest' | 'index' | undefined;
  if (expectedMediaType !== undefined) {
    if (typeof expectedMediaType !== 'string') {
      throw new PlinthError('MANIFEST_INVALID', `expected media type must be a string, got ${jsonType(expectedMediaType)}`);
    }
    const base = baseMediaType(expectedMediaType);
    if (isSchema1MediaType(base)) throw schema1Error(`the document (${base})`);
    if (isIndexMediaType(base)) expectedKind = 'index';
    else if (isManifestMediaType(base)) expectedKind = 'manifest';
    else if (!GENERIC_MEDIA_TYPES.has(base.toLowerCase())) {
      throw new PlinthError(
        'MANIFEST_INVALID',
        `expected a manifest or index, but the media type is ${show(base)} (supported: ${[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(', ')})`,
        { mediaType: base },
      );
    }
    if (expectedKind) expected = base;
  }
  const label = expectedKind ?? 'manifest';

  const doc = parseJson(bytes, label);
  if (!isPlainObject(doc)) {
    throw invalid(label, [{ path: '', message: `expected a JSON object, got ${jsonType(doc)}` }]);
  }
  if (doc['schemaVersion'] === 1) throw schema1Error('the document');

  let kind: 'manifest' | 'index' | undefined;
  const docMediaType = doc['mediaType'];
  if (docMediaType !== undefined) {
    if (typeof docMediaType !== 'string') {
      throw invalid(label, [{ path: 'mediaType', message: `expected a media type string, got ${jsonType(docMediaType)}` }]);
    }
    if (isSchema1MediaType(docMediaType)) throw schema1Error('the document');
    if (isIndexMediaType(docMediaType) && docMediaType === baseMediaType(docMediaType)) kind = 'index';
    else if (isManifestMediaType(docMediaType) && docMediaType === baseMediaType(docMediaType)) kind = 'manifest';
    else {
      throw invalid(label, [
        {
          path: 'mediaType',
          message: `${show(docMediaType)} is not a manifest or index media type Plinth supports (expected one of ${[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(', ')})`,
        },
      ]);
    }
    if (expected !== undefined && expected !== docMediaType) {
      throw invalid(kind, [{ path: 'mediaType', message: `the document says ${show(docMediaType)}, but it was expected to be ${show(expected)}` }]);
    }
  } else if (expectedKind) {
    kind = expectedKind;
  } else if (Object.hasOwn(doc, 'manifests')) {
    kind = 'index';
  } else if (Object.hasOwn(doc, 'config') && Object.hasOwn(doc, 'layers')) {
    kind = 'manifest';
  } else {
    throw invalid('manifest', [
      { path: '', message: 'cannot tell whether this is a manifest or an index: it has no mediaType, and neither "manifests" nor "config" and "layers"' },
    ]);
  }

  if (kind === 'index') {
    const ix = validateIndex(doc);
    return { kind, mediaType: ix.mediaType ?? expected ?? OCI_INDEX, doc: ix };
  }
  const m = validateManifest(doc, opts);
  return { kind, mediaType: m.mediaType ?? expected ?? OCI_MANIFEST, doc: m };
}
