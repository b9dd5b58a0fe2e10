/**
 * Image references: a TypeScript port of the behaviour of github.com/distribution/reference
 * (the parser used by docker, containerd and the distribution registry), plus the small helpers
 * the rest of Plinth needs (`parseImageReference`, `registryApiHost`, `isLoopbackRegistry`).
 *
 * Grammar (as in distribution):
 *
 *   reference        := name [ ":" tag ] [ "@" digest ]
 *   name             := [domain '/'] remote-name
 *   domain           := host [':' port-number]
 *   host             := domain-name | IPv4address | \[ IPv6address \]
 *   domain-name      := domain-component ['.' domain-component]*
 *   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
 *   port-number      := /[0-9]+/
 *   path-component   := alpha-numeric [separator alpha-numeric]*
 *   remote-name      := path-component ['/' path-component]*
 *   alpha-numeric    := /[a-z0-9]+/
 *   separator        := /[_.]|__|[-]+/
 *   tag              := /[\w][\w.-]{0,127}/
 *   digest           := algorithm ":" hex   (hex: at least 32 hex digits)
 *   identifier       := /[a-f0-9]{64}/
 *
 * A reference is plain data (`Reference`); the Go type distinctions (Named, Tagged, Canonical,
 * digest-only) follow from which fields are set. Errors are `ReferenceError` (code
 * REFERENCE_INVALID, `kind` = distribution's error variable name) or, for a digest that fails
 * go-digest validation inside a reference, `DigestError` with go-digest's kind.
 */
import { ALGORITHMS, DIGEST_GRAMMAR, DigestError, isDigest, parseDigest } from './digest.js';
import { PlinthError } from '../util/errors.js';

// ---------------------------------------------------------------------------------------------
// Grammar: a handful of named regular expressions, composed as in distribution's regexp.go.
// Go's RE2 and JavaScript agree on these patterns (no backreferences or lookaround; `$` without
// the m flag only matches at the very end in both; leftmost-first submatch semantics in both).
// ---------------------------------------------------------------------------------------------

const optional = (...res: string[]): string => `(?:${res.join('')})?`;
const anyTimes = (...res: string[]): string => `(?:${res.join('')})*`;
const capture = (...res: string[]): string => `(${res.join('')})`;
const namedCapture = (name: string, ...res: string[]): string => `(?<${name}>${res.join('')})`;
const anchored = (...res: string[]): string => `^${res.join('')}$`;

/** Lowercase letters and digits: the atom of path components. */
const alphanumeric = '[a-z0-9]+';
/** One period, one or two underscores, or any number of dashes. */
const separator = '(?:[._]|__|[-]+)';
/** One label of a registry host name. */
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const optionalPort = '(?::[0-9]+)?';
/** An IPv6 address in brackets (no zone identifier, no embedded IPv4). */
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = domainNameComponent + anyTimes('\\.', domainNameComponent);
const host = `(?:${domainName}|${ipv6address})`;

/** Source of a registry host with optional port: `example.com`, `localhost:5000`, `[::1]:5000`. */
export const domainAndPort = host + optionalPort;
/** Source of a tag. */
export const tagPattern = '[\\w][\\w.-]{0,127}';
/** Source of a digest as distribution accepts it syntactically (hex of at least 128 bits). */
export const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}';
/** Source of an image identifier: a bare sha256 hex string. */
export const identifierPattern = capture('[a-f0-9]{64}');

const pathComponent = alphanumeric + anyTimes(separator, alphanumeric);
/** Source of a repository path (`library/ubuntu`). */
export const remoteNamePattern = pathComponent + anyTimes('/', pathComponent);
/** Source of a full name: optional domain, then the repository path. */
export const namePattern = optional(domainAndPort, '/') + remoteNamePattern;

/** Matches a registry host[:port] anywhere in a string (distribution's DomainRegexp). */
export const domainRegexp = new RegExp(domainAndPort);
/** Matches exactly a registry host[:port]. */
export const anchoredDomainRegexp = new RegExp(anchored(domainAndPort));
/** Matches a name anywhere in a string (distribution's NameRegexp). */
export const nameRegexp = new RegExp(namePattern);
/** Matches exactly a name; captures `domain` (group 1, may not participate) and `path` (group 2). */
export const anchoredNameRegexp = new RegExp(
  anchored(optional(namedCapture('domain', domainAndPort), '/'), namedCapture('path', remoteNamePattern)),
);
/** Matches exactly a reference; captures `name` (1), `tag` (2) and `digest` (3). */
export const referenceRegexp = new RegExp(
  anchored(
    namedCapture('name', namePattern),
    optional(':', namedCapture('tag', tagPattern)),
    optional('@', namedCapture('digest', digestPattern)),
  ),
);
export const tagRegexp = new RegExp(tagPattern);
export const anchoredTagRegexp = new RegExp(anchored(tagPattern));
export const digestRegexp = new RegExp(digestPattern);
export const anchoredDigestRegexp = new RegExp(anchored(digestPattern));
export const identifierRegexp = new RegExp(identifierPattern);
export const anchoredIdentifierRegexp = new RegExp(anchored(identifierPattern));

// ---------------------------------------------------------------------------------------------
// Data types and errors
// ---------------------------------------------------------------------------------------------

/** Maximum length of a repository path (the name without its domain). */
export const RepositoryNameTotalLengthMax = 255;

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';
const LOCALHOST = 'localhost';

/**
 * A parsed reference. `domain` is '' when the name has no domain part; `path` is '' only for a
 * digest-only reference (what ParseAnyReference returns for an identifier or a bare digest).
 * `tag` / `digest` are absent when not present.
 */
export interface Reference {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

export type ReferenceErrorKind =
  | 'ErrReferenceInvalidFormat'
  | 'ErrTagInvalidFormat'
  | 'ErrDigestInvalidFormat'
  | 'ErrNameContainsUppercase'
  | 'ErrNameEmpty'
  | 'ErrNameTooLong'
  | 'ErrNameNotCanonical'
  /** ParseNormalizedNamed: the input is a 64-hex identifier. */
  | 'ErrNameIsIdentifier'
  /** ParseNormalizedNamed: the repository path has uppercase letters. */
  | 'ErrNameNotLowercase'
  /** A reference without a name where one is required. */
  | 'ErrNoName'
  /** FamiliarMatch: malformed pattern (Go's path.ErrBadPattern). */
  | 'ErrBadPattern';

export class ReferenceError extends PlinthError {
  readonly kind: ReferenceErrorKind;
  /** The string that was being parsed (reference, name, tag, digest or pattern). */
  readonly input: string;
  constructor(kind: ReferenceErrorKind, message: string, input: string) {
    super('REFERENCE_INVALID', message, { kind, input });
    this.kind = kind;
    this.input = input;
  }
}
/** Alias for code that would rather not shadow the global `ReferenceError`. */
export { ReferenceError as InvalidReferenceError };

export interface ParseOptions {
  /**
   * Digest algorithms treated as registered (go-digest's `Algorithm.Available()`), which decides
   * ErrDigestUnsupported. Defaults to every algorithm Plinth implements (sha256, sha384, sha512).
   */
  digestAlgorithms?: Iterable<string>;
}

/** Quote a value for a message (Go %q-like), shortening very long input. */
function q(s: string, max = 120): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

function fail(kind: ReferenceErrorKind, input: string, what: string): never {
  throw new ReferenceError(kind, `invalid reference ${q(input)}: ${what}`, input);
}

/**
 * strings.ToLower as Go does it: simple per-code-point case mapping. JavaScript's toLowerCase uses
 * the full mapping, which differs for U+0130 (İ → "i̇" instead of "i") and final sigma.
 */
function goToLower(s: string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return s.toLowerCase();
  let out = '';
  for (const ch of s) out += ch === '\u0130' ? 'i' : ch.toLowerCase();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Accessors (Name / String / Familiar forms)
// ---------------------------------------------------------------------------------------------

/** Name(): `domain/path`, or just `path` without a domain; '' for a digest-only reference. */
export function referenceName(r: Reference): string {
  return r.domain === '' ? r.path : `${r.domain}/${r.path}`;
}

/** String(): `name[:tag][@digest]`; a digest-only reference is just its digest. */
export function referenceString(r: Reference): string {
  const name = referenceName(r);
  if (name === '') return r.digest ?? '';
  return name + (r.tag ? `:${r.tag}` : '') + (r.digest ? `@${r.digest}` : '');
}

/** True if the reference has a name (everything except digest-only references). */
export function isNamed(r: Reference): boolean {
  return referenceName(r) !== '';
}

/** IsNameOnly: named, with neither tag nor digest. */
export function isNameOnly(r: Reference): boolean {
  return !r.tag && !r.digest;
}

/**
 * Familiar(): the form shown by the docker CLI, with the `docker.io/` domain and, for official
 * single-component images, the `library/` prefix removed.
 */
export function familiarize(r: Reference): Reference {
  const out = copy(r);
  if (!isNamed(r) || out.domain !== DEFAULT_DOMAIN) return out;
  out.domain = '';
  if (out.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = out.path.slice(OFFICIAL_REPO_PREFIX.length);
    if (!rest.includes('/')) out.path = rest;
  }
  return out;
}

/** FamiliarName: e.g. `ubuntu`, `dmcgowan/myapp`, `gcr.io/x/y`; '' for digest-only references. */
export function familiarName(r: Reference): string {
  return referenceName(familiarize(r));
}

/** FamiliarString: e.g. `ubuntu:22.04`, `redis@sha256:…`; a digest-only reference is its digest. */
export function familiarString(r: Reference): string {
  return referenceString(familiarize(r));
}

/**
 * FamiliarMatch: whether the familiar string (or, failing that, the familiar name) matches a shell
 * pattern with Go path.Match semantics. Throws ErrBadPattern for a malformed pattern.
 */
export function familiarMatch(pattern: string, r: Reference): boolean {
  let matched = false;
  let bad = false;
  try {
    matched = pathMatch(pattern, familiarString(r));
  } catch (e) {
    if (!(e instanceof ReferenceError)) throw e;
    bad = true;
  }
  if (!matched && isNamed(r)) {
    try {
      matched = pathMatch(pattern, familiarName(r));
    } catch {
      // Go ignores the second error; the first one (if any) is reported below.
    }
  }
  if (bad) throw new ReferenceError('ErrBadPattern', `invalid pattern ${q(pattern)}: syntax error in pattern`, pattern);
  return matched;
}

function copy(r: Reference): Reference {
  const out: Reference = { domain: r.domain, path: r.path };
  if (r.tag) out.tag = r.tag;
  if (r.digest) out.digest = r.digest;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

const DEFAULT_ALGORITHMS: ReadonlySet<string> = new Set(Object.keys(ALGORITHMS));

function algorithmSet(opts?: ParseOptions): ReadonlySet<string> {
  return opts?.digestAlgorithms ? new Set(opts.digestAlgorithms) : DEFAULT_ALGORITHMS;
}

/**
 * go-digest's Parse/Validate with a given set of registered algorithms. Errors are DigestError,
 * their message prefixed with the reference being parsed.
 */
function validateDigest(d: string, algorithms: ReadonlySet<string>, input: string): string {
  try {
    const i = d.indexOf(':');
    if (i > 0 && i + 1 < d.length && !algorithms.has(d.slice(0, i))) {
      // Not available: malformed input is still reported as a format error, as go-digest does.
      if (!DIGEST_GRAMMAR.test(d)) throw new DigestError('ErrDigestInvalidFormat', `invalid digest format: ${q(d)}`);
      throw new DigestError(
        'ErrDigestUnsupported',
        `unsupported digest algorithm ${q(d.slice(0, i))} (supported: ${[...algorithms].join(', ')})`,
      );
    }
    return parseDigest(d).digest;
  } catch (e) {
    if (e instanceof DigestError && input !== d) {
      throw new DigestError(e.kind, `invalid reference ${q(input)}: ${e.message}`);
    }
    throw e;
  }
}

function parseWith(s: string, opts: ParseOptions | undefined, shown: string): Reference {
  if (s === '') fail('ErrNameEmpty', shown, 'repository name must have at least one component');
  const m = referenceRegexp.exec(s);
  if (!m) {
    const lower = goToLower(s);
    if (lower !== s && referenceRegexp.test(lower)) fail('ErrNameContainsUppercase', shown, 'repository name must be lowercase');
    fail('ErrReferenceInvalidFormat', shown, 'invalid reference format (expected [host[:port]/]path[:tag][@digest])');
  }
  const name = m.groups?.['name'] ?? '';
  const nm = anchoredNameRegexp.exec(name);
  const ref: Reference = nm ? { domain: nm.groups?.['domain'] ?? '', path: nm.groups?.['path'] ?? '' } : { domain: '', path: name };
  if (ref.path.length > RepositoryNameTotalLengthMax) {
    fail('ErrNameTooLong', shown, `repository name must not be more than ${RepositoryNameTotalLengthMax} characters (it has ${ref.path.length})`);
  }
  const tag = m.groups?.['tag'];
  if (tag) ref.tag = tag;
  const digest = m.groups?.['digest'];
  if (digest) ref.digest = validateDigest(digest, algorithmSet(opts), shown);
  if (referenceName(ref) === '') {
    // Unreachable through the grammar, kept as distribution has it (getBestReferenceType).
    if (ref.digest) return { domain: '', path: '', digest: ref.digest };
    fail('ErrNameEmpty', shown, 'repository name must have at least one component');
  }
  return ref;
}

/** Parse: a syntactically valid reference, taken literally (no docker.io normalisation). */
export function parseReference(s: string, opts?: ParseOptions): Reference {
  return parseWith(s, opts, s);
}

/**
 * splitDockerDomain: split a familiar name into domain and remainder, defaulting to Docker Hub
 * (and `library/` for single-component Docker Hub names).
 */
function splitDockerDomain(name: string): [string, string] {
  const slash = name.indexOf('/');
  if (slash < 0) return [DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name];
  const maybeDomain = name.slice(0, slash);
  const maybeRemote = name.slice(slash + 1);
  let domain: string;
  let remote: string;
  if (maybeDomain === LOCALHOST) {
    [domain, remote] = [maybeDomain, maybeRemote];
  } else if (maybeDomain === LEGACY_DEFAULT_DOMAIN) {
    [domain, remote] = [DEFAULT_DOMAIN, maybeRemote];
  } else if (/[.:]/.test(maybeDomain)) {
    [domain, remote] = [maybeDomain, maybeRemote];
  } else if (goToLower(maybeDomain) !== maybeDomain) {
    // Namespaces are lowercase, so an uppercase first component is taken to be a host name.
    [domain, remote] = [maybeDomain, maybeRemote];
  } else {
    [domain, remote] = [DEFAULT_DOMAIN, name];
  }
  if (domain === DEFAULT_DOMAIN && !remote.includes('/')) remote = OFFICIAL_REPO_PREFIX + remote;
  return [domain, remote];
}

/**
 * ParseNormalizedNamed: parse what a docker user types (`ubuntu`, `user/app:1`, `ghcr.io/x/y@…`)
 * into a fully qualified named reference (`docker.io/library/ubuntu`).
 */
export function parseNormalizedNamed(s: string, opts?: ParseOptions): Reference {
  if (anchoredIdentifierRegexp.test(s)) {
    throw new ReferenceError(
      'ErrNameIsIdentifier',
      `invalid repository name ${q(s)}: cannot specify 64-byte hexadecimal strings (this looks like an image ID; use name@sha256:<hex> to refer to content)`,
      s,
    );
  }
  const [domain, remainder] = splitDockerDomain(s);
  const colon = remainder.indexOf(':');
  const remote = colon > -1 ? remainder.slice(0, colon) : remainder;
  if (goToLower(remote) !== remote) {
    fail('ErrNameNotLowercase', s, `invalid reference format: repository name ${q(remote)} must be lowercase`);
  }
  const ref = parseWith(`${domain}/${remainder}`, opts, s);
  if (!isNamed(ref)) fail('ErrNoName', s, `reference ${referenceString(ref)} has no name`);
  return ref;
}

/** ParseNamed: like ParseNormalizedNamed, but the input must already be in canonical form. */
export function parseNamed(s: string, opts?: ParseOptions): Reference {
  const named = parseNormalizedNamed(s, opts);
  const canonical = referenceString(named);
  if (canonical !== s) fail('ErrNameNotCanonical', s, `repository name must be canonical (did you mean ${q(canonical)}?)`);
  return named;
}

/**
 * ParseAnyReference: an identifier (64 hex → `sha256:` digest-only reference), a full digest
 * (digest-only reference), or a familiar name (as ParseNormalizedNamed).
 */
export function parseAnyReference(s: string, opts?: ParseOptions): Reference {
  if (anchoredIdentifierRegexp.test(s)) return { domain: '', path: '', digest: `sha256:${s}` };
  try {
    return { domain: '', path: '', digest: validateDigest(s, algorithmSet(opts), s) };
  } catch (e) {
    if (!(e instanceof DigestError)) throw e;
  }
  return parseNormalizedNamed(s, opts);
}

/**
 * ParseDockerRef: ParseNormalizedNamed, then either tag `latest` (name only) or, when both a tag
 * and a digest are given, drop the tag and keep the digest.
 */
export function parseDockerRef(s: string, opts?: ParseOptions): Reference {
  const named = parseNormalizedNamed(s, opts);
  if (named.tag && named.digest) return withDigest(withName(referenceName(named)), named.digest);
  return tagNameOnly(named);
}

/** WithName: a name-only reference from `[domain/]path` (no tag, no digest, no normalisation). */
export function withName(name: string): Reference {
  const m = anchoredNameRegexp.exec(name);
  if (!m) {
    throw new ReferenceError(
      'ErrReferenceInvalidFormat',
      `invalid repository name ${q(name)}: invalid reference format (expected [host[:port]/]path, without tag or digest)`,
      name,
    );
  }
  const path = m.groups?.['path'] ?? '';
  if (path.length > RepositoryNameTotalLengthMax) {
    throw new ReferenceError(
      'ErrNameTooLong',
      `invalid repository name ${q(name)}: repository name must not be more than ${RepositoryNameTotalLengthMax} characters (it has ${path.length})`,
      name,
    );
  }
  return { domain: m.groups?.['domain'] ?? '', path };
}

function requireNamed(r: Reference, what: string): void {
  if (!isNamed(r)) {
    throw new ReferenceError('ErrNoName', `cannot ${what}: reference ${q(referenceString(r))} has no name`, referenceString(r));
  }
}

/** WithTag: set (or replace) the tag; a digest already present is kept. */
export function withTag(r: Reference, tag: string): Reference {
  if (!anchoredTagRegexp.test(tag)) {
    throw new ReferenceError(
      'ErrTagInvalidFormat',
      `invalid tag ${q(tag)}: invalid tag format (1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-')`,
      tag,
    );
  }
  requireNamed(r, 'add a tag');
  const out: Reference = { domain: r.domain, path: r.path, tag };
  if (r.digest) out.digest = r.digest;
  return out;
}

/**
 * WithDigest: set (or replace) the digest; a tag already present is kept. Like distribution, this
 * checks the digest's syntax only (algorithm:hex with at least 32 hex digits), not its length.
 */
export function withDigest(r: Reference, digest: string): Reference {
  if (!anchoredDigestRegexp.test(digest)) {
    throw new ReferenceError(
      'ErrDigestInvalidFormat',
      `invalid digest ${q(digest)}: invalid digest format (expected algorithm:hex, e.g. sha256:<64 hex digits>)`,
      digest,
    );
  }
  requireNamed(r, 'add a digest');
  const out: Reference = { domain: r.domain, path: r.path };
  if (r.tag) out.tag = r.tag;
  out.digest = digest;
  return out;
}

/** TagNameOnly: add the default tag `latest` to a name-only reference. */
export function tagNameOnly(r: Reference): Reference {
  return isNamed(r) && isNameOnly(r) ? withTag(r, DEFAULT_TAG) : copy(r);
}

/** TrimNamed: drop tag and digest. */
export function trimNamed(r: Reference): Reference {
  requireNamed(r, 'trim');
  return { domain: r.domain, path: r.path };
}

// ---------------------------------------------------------------------------------------------
// Go path.Match (used by FamiliarMatch). Works on code points; Go works on UTF-8 bytes, which is
// the same for well-formed strings (and familiar references are ASCII).
// ---------------------------------------------------------------------------------------------

class BadPattern extends Error {}

/** Go's path.Match: `*` (no '/'), `?`, `[...]` / `[^...]` classes, `\` escapes. */
export function pathMatch(pattern: string, name: string): boolean {
  try {
    return matchPattern([...pattern], [...name]);
  } catch (e) {
    if (e instanceof BadPattern) {
      throw new ReferenceError('ErrBadPattern', `invalid pattern ${q(pattern)}: syntax error in pattern`, pattern);
    }
    throw e;
  }
}

function matchPattern(pattern: string[], name: string[]): boolean {
  outer: while (pattern.length > 0) {
    const [star, chunk, rest] = scanChunk(pattern);
    pattern = rest;
    if (star && chunk.length === 0) return !name.includes('/');
    const t = matchChunk(chunk, name);
    if (t !== null && (t.length === 0 || pattern.length > 0)) {
      name = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < name.length && name[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, name.slice(i + 1));
        if (t2 !== null) {
          if (pattern.length === 0 && t2.length > 0) continue;
          name = t2;
          continue outer;
        }
      }
    }
    // No match: still report a syntax error anywhere in the rest of the pattern.
    while (pattern.length > 0) {
      const [, c, r] = scanChunk(pattern);
      pattern = r;
      matchChunk(c, []);
    }
    return false;
  }
  return name.length === 0;
}

function scanChunk(pattern: string[]): [boolean, string[], string[]] {
  let star = false;
  while (pattern.length > 0 && pattern[0] === '*') {
    pattern = pattern.slice(1);
    star = true;
  }
  let inRange = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      if (i + 1 < pattern.length) i++;
    } else if (c === '[') {
      inRange = true;
    } else if (c === ']') {
      inRange = false;
    } else if (c === '*' && !inRange) {
      return [star, pattern.slice(0, i), pattern.slice(i)];
    }
  }
  return [star, pattern, []];
}

/** Match a star-free chunk at the start of s: the rest of s, or null. Throws BadPattern. */
function matchChunk(chunk: string[], s: string[]): string[] | null {
  let failed = false;
  let ci = 0;
  let si = 0;
  while (ci < chunk.length) {
    if (!failed && si >= s.length) failed = true;
    const c = chunk[ci];
    if (c === '[') {
      const r = failed ? undefined : (s[si++] as string).codePointAt(0);
      ci++;
      let negated = false;
      if (ci < chunk.length && chunk[ci] === '^') {
        negated = true;
        ci++;
      }
      let match = false;
      let nrange = 0;
      for (;;) {
        if (ci < chunk.length && chunk[ci] === ']' && nrange > 0) {
          ci++;
          break;
        }
        let lo: number;
        let hi: number;
        [lo, ci] = getEsc(chunk, ci);
        hi = lo;
        if (chunk[ci] === '-') [hi, ci] = getEsc(chunk, ci + 1);
        if (r !== undefined && lo <= r && r <= hi) match = true;
        nrange++;
      }
      if (match === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[si] === '/') failed = true;
        si++;
      }
      ci++;
    } else {
      if (c === '\\') {
        ci++;
        if (ci >= chunk.length) throw new BadPattern();
      }
      if (!failed) {
        if (chunk[ci] !== s[si]) failed = true;
        si++;
      }
      ci++;
    }
  }
  return failed ? null : s.slice(si);
}

function getEsc(chunk: string[], i: number): [number, number] {
  if (i >= chunk.length || chunk[i] === '-' || chunk[i] === ']') throw new BadPattern();
  if (chunk[i] === '\\') {
    i++;
    if (i >= chunk.length) throw new BadPattern();
  }
  const r = (chunk[i] as string).codePointAt(0) as number;
  i++;
  if (i >= chunk.length) throw new BadPattern();
  return [r, i];
}

// ---------------------------------------------------------------------------------------------
// Plinth-facing helpers
// ---------------------------------------------------------------------------------------------

export interface ImageReference {
  /** Registry host[:port], normalised: `docker.io`, `ghcr.io`, `localhost:5000`. */
  registry: string;
  /** Repository path within the registry: `library/alpine`. */
  repository: string;
  /** Tag; `latest` when the input had neither tag nor digest (see tagDefaulted). */
  tag?: string;
  digest?: string;
  /** True when the tag was not given and defaulted to `latest`. */
  tagDefaulted: boolean;
  /** `registry/repository`. */
  name: string;
  /** Canonical full form: `docker.io/library/alpine:3.19`, `ghcr.io/x/y@sha256:…`. */
  string: string;
  /** Familiar form as the docker CLI shows it: `alpine:3.19`. */
  familiar: string;
}

/**
 * Parse an image reference as docker/crane/skopeo users type it (ParseNormalizedNamed semantics):
 * `alpine`, `alpine:3.19`, `user/app`, `ghcr.io/x/y@sha256:…`, `localhost:5000/a/b:t`, or both a
 * tag and a digest. Without tag or digest the tag defaults to `latest`. A bare image ID (64 hex)
 * or a bare digest is rejected.
 */
export function parseImageReference(input: string): ImageReference {
  if (isDigest(input)) {
    throw new ReferenceError(
      'ErrReferenceInvalidFormat',
      `invalid reference ${q(input)}: a digest alone does not name an image; use <repository>@${input}`,
      input,
    );
  }
  const named = parseNormalizedNamed(input);
  const tagDefaulted = isNameOnly(named);
  const ref = tagDefaulted ? withTag(named, DEFAULT_TAG) : named;
  const out: ImageReference = {
    registry: ref.domain,
    repository: ref.path,
    tagDefaulted,
    name: referenceName(ref),
    string: referenceString(ref),
    familiar: familiarString(ref),
  };
  if (ref.tag) out.tag = ref.tag;
  if (ref.digest) out.digest = ref.digest;
  return out;
}

/** The host that serves the registry API: Docker Hub's is `registry-1.docker.io`. */
export function registryApiHost(registry: string): string {
  return registry === DEFAULT_DOMAIN ? 'registry-1.docker.io' : registry;
}

/**
 * Whether a registry host[:port] is on the loopback interface: `localhost`, 127.0.0.0/8 or
 * `[::1]` (also in other spellings the URL parser canonicalises to these, e.g. `[0:0::1]`,
 * `127.1`, and IPv4-mapped `[::ffff:7f00:1]`), with or without a port.
 */
export function isLoopbackRegistry(registry: string): boolean {
  if (!anchoredDomainRegexp.test(registry)) return false;
  const m = /^(\[[^\]]*\]|[^:]*)(?::[0-9]+)?$/.exec(registry);
  if (!m) return false;
  let hostname: string;
  try {
    hostname = new URL(`http://${m[1]}/`).hostname;
  } catch {
    return false;
  }
  if (hostname === LOCALHOST || hostname === '[::1]') return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)) return true;
  // IPv4-mapped 127.0.0.0/8: ::ffff:7fXX:XXXX
  return /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(hostname);
}
