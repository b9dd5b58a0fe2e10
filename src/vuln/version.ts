/**
 * Package version ordering for the three ecosystems Plinth scans: Debian (dpkg), RPM and Alpine (apk).
 *
 * Each comparator reproduces the ordering of its reference implementation, written from the
 * published algorithms (not translated text):
 *
 * - `deb`: dpkg's `parseversion()` + `dpkg_version_compare()`/`verrevcmp()` (lib/dpkg), as used by
 *   `dpkg --compare-versions`.
 * - `rpm`: rpm ≥ 4.15 `rpmvercmp()` (with `~` pre-release and `^` post-release) applied to the
 *   epoch, version and release of an `[epoch:]version[-release]` string split as `rpmverParse()` does,
 *   and ordered as `rpmverCmp()` (what rpm's Lua `rpm.vercmp()` uses).
 * - `apk`: apk-tools 3 `apk_version_compare()` / `apk_version_validate()` (src/version.c), including the
 *   `~<hash>` commit-hash component and apk's fuzzy (prefix) match used by the `~` dependency operator.
 *
 * Comparators never throw for any string input; how each treats invalid versions is documented on
 * it and is deterministic. `parseVersion` is where invalid input is reported, as a result value.
 *
 * All three references are C and see strings as NUL-terminated byte strings, so every function here
 * first cuts its inputs at the first U+0000 (what the reference would see).
 * Numeric components of any length are compared exactly (as digit strings, never as JS numbers).
 */
import { PlinthError } from '../util/errors.js';

export type VersionKind = 'deb' | 'rpm' | 'apk';
export type Ordering = -1 | 0 | 1;

/** A Debian version: `[epoch:]upstream[-revision]`. `revision` is '' when absent. */
export interface DebVersion {
  kind: 'deb';
  epoch: number;
  upstream: string;
  revision: string;
}

/** An RPM EVR as `rpmverParse()` splits it. `epoch`/`release` are null when absent. */
export interface RpmVersion {
  kind: 'rpm';
  epoch: number | null;
  version: string;
  release: string | null;
}

export type ApkSuffixName = 'alpha' | 'beta' | 'pre' | 'rc' | 'cvs' | 'svn' | 'git' | 'hg' | 'p';

/** An apk version: `digit{.digit}...{letter}{_suf{#}}...{~hash}{-r#}`. Numbers are kept as written. */
export interface ApkVersion {
  kind: 'apk';
  /** The dot-separated numbers, at least one. */
  numbers: string[];
  letter: string | null;
  suffixes: Array<{ name: ApkSuffixName; number: string | null }>;
  commitHash: string | null;
  revision: string | null;
}

export type ParsedVersion = DebVersion | RpmVersion | ApkVersion;

/** Result of `parseVersion`: the structured version, or why the string is not a valid version. */
export type ParseResult<T extends ParsedVersion = ParsedVersion> =
  | { ok: true; version: T }
  | { ok: false; reason: string };

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/** What a C implementation sees: the string up to its first NUL. */
function cString(s: string): string {
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}

const isDigitCode = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isLowerCode = (c: number): boolean => c >= 0x61 && c <= 0x7a;
const isAlphaCode = (c: number): boolean => isLowerCode(c) || (c >= 0x41 && c <= 0x5a);
const isAlnumCode = (c: number): boolean => isDigitCode(c) || isAlphaCode(c);

function sign(n: number): Ordering {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/** Numeric order of two non-empty ASCII digit strings of any length. */
function compareDigitStrings(a: string, b: string): Ordering {
  let i = 0;
  let j = 0;
  while (i < a.length - 1 && a.charCodeAt(i) === 0x30) i++;
  while (j < b.length - 1 && b.charCodeAt(j) === 0x30) j++;
  const la = a.length - i;
  const lb = b.length - j;
  if (la !== lb) return la < lb ? -1 : 1;
  for (; i < a.length; i++, j++) {
    const d = a.charCodeAt(i) - b.charCodeAt(j);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** Byte-wise (memcmp, then length) order of two ASCII strings. */
function compareAscii(a: string, b: string): Ordering {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A short, printable rendering of (possibly hostile) input for error messages. */
function preview(s: string): string {
  const cut = s.length > 64 ? `${s.slice(0, 64)}…` : s;
  return JSON.stringify(cut);
}

// ---------------------------------------------------------------------------------------------
// Debian
// ---------------------------------------------------------------------------------------------

const isBlank = (c: number): boolean => c === 0x20 || c === 0x09;
/** C isspace() in the C locale, which strtol() skips. */
const isCSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const DEB_UPSTREAM_EXTRA = '.-+~:';
const DEB_REVISION_EXTRA = '.+~';
const INT_MAX_DIGITS = '2147483647';

type DebParse =
  | { status: 'ok'; v: DebVersion }
  /** dpkg warns but still fills in (and compares) the fields. */
  | { status: 'warning'; v: DebVersion; reason: string }
  /** dpkg refuses the string. */
  | { status: 'error'; reason: string };

/** dpkg's parseversion(): blank trimming, strtol epoch, last-hyphen revision, character checks. */
function parseDeb(input: string): DebParse {
  const s = cString(input);
  let start = 0;
  while (start < s.length && isBlank(s.charCodeAt(start))) start++;
  if (start === s.length) return { status: 'error', reason: 'version string is empty' };
  let end = start;
  while (end < s.length && !isBlank(s.charCodeAt(end))) end++;
  for (let p = end; p < s.length; p++) {
    if (!isBlank(s.charCodeAt(p))) return { status: 'error', reason: 'version string has embedded spaces' };
  }
  const body = s.slice(start, end);

  let epoch = 0;
  let rest = body;
  const colon = body.indexOf(':');
  if (colon >= 0) {
    // strtol(body, &endp, 10): optional C whitespace, optional sign, digits.
    let p = 0;
    while (p < body.length && isCSpace(body.charCodeAt(p))) p++;
    let negative = false;
    const sc = body.charCodeAt(p);
    if (sc === 0x2b || sc === 0x2d) {
      negative = sc === 0x2d;
      p++;
    }
    const digitsStart = p;
    while (p < body.length && isDigitCode(body.charCodeAt(p))) p++;
    if (p === digitsStart) return { status: 'error', reason: 'epoch in version is empty' };
    if (p !== colon) return { status: 'error', reason: 'epoch in version is not number' };
    const digits = body.slice(digitsStart, p);
    if (negative && compareDigitStrings(digits, '0') !== 0) return { status: 'error', reason: 'epoch in version is negative' };
    if (compareDigitStrings(digits, INT_MAX_DIGITS) > 0) return { status: 'error', reason: 'epoch in version is too big' };
    if (colon + 1 === body.length) return { status: 'error', reason: 'nothing after colon in version number' };
    epoch = Number(digits);
    rest = body.slice(colon + 1);
  }

  let upstream = rest;
  let revision = '';
  const hyphen = rest.lastIndexOf('-');
  if (hyphen >= 0) {
    upstream = rest.slice(0, hyphen);
    revision = rest.slice(hyphen + 1);
    if (revision === '') return { status: 'error', reason: 'revision number is empty' };
  }
  if (upstream === '') return { status: 'error', reason: 'version number is empty' };

  const v: DebVersion = { kind: 'deb', epoch, upstream, revision };
  if (!isDigitCode(upstream.charCodeAt(0))) {
    return { status: 'warning', v, reason: 'version number does not start with digit' };
  }
  for (let i = 1; i < upstream.length; i++) {
    const c = upstream.charCodeAt(i);
    if (!isAlnumCode(c) && !DEB_UPSTREAM_EXTRA.includes(upstream[i]!)) {
      return { status: 'warning', v, reason: `invalid character ${preview(upstream[i]!)} in version number` };
    }
  }
  for (let i = 0; i < revision.length; i++) {
    const c = revision.charCodeAt(i);
    if (!isAlnumCode(c) && !DEB_REVISION_EXTRA.includes(revision[i]!)) {
      return { status: 'warning', v, reason: `invalid character ${preview(revision[i]!)} in revision number` };
    }
  }
  return { status: 'ok', v };
}

const utf8 = new TextEncoder();

/** The bytes dpkg would see. ASCII strings (the normal case) skip the encoder. */
function debBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return utf8.encode(s);
    out[i] = c;
  }
  return out;
}

/**
 * dpkg's character weight: digits (and the end) 0, `~` -1, letters their ASCII code, anything else
 * after all letters. Bytes ≥ 0x80 weigh as dpkg built with a signed `char` (amd64, i386) weighs them.
 */
function debOrder(c: number): number {
  if (isDigitCode(c)) return 0;
  if (isAlphaCode(c)) return c;
  if (c === 0x7e) return -1;
  if (c === 0) return 0;
  return c >= 0x80 ? c : c + 256;
}

function verrevcmp(a: Uint8Array, b: Uint8Array): Ordering {
  const at = (x: Uint8Array, i: number): number => (i < x.length ? x[i]! : 0);
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigitCode(a[i]!)) || (j < b.length && !isDigitCode(b[j]!))) {
      const ac = debOrder(at(a, i));
      const bc = debOrder(at(b, j));
      if (ac !== bc) return sign(ac - bc);
      i++;
      j++;
    }
    while (at(a, i) === 0x30) i++;
    while (at(b, j) === 0x30) j++;
    while (isDigitCode(at(a, i)) && isDigitCode(at(b, j))) {
      if (firstDiff === 0) firstDiff = a[i]! - b[j]!;
      i++;
      j++;
    }
    if (isDigitCode(at(a, i))) return 1;
    if (isDigitCode(at(b, j))) return -1;
    if (firstDiff !== 0) return sign(firstDiff);
  }
  return 0;
}

/** The fields `compareDeb` orders by, for any input (see compareDeb for invalid input). */
function debFields(input: string): DebVersion {
  const parsed = parseDeb(input);
  if (parsed.status !== 'error') return parsed.v;
  let raw = cString(input);
  let s = 0;
  let e = raw.length;
  while (s < e && isBlank(raw.charCodeAt(s))) s++;
  while (e > s && isBlank(raw.charCodeAt(e - 1))) e--;
  raw = raw.slice(s, e);
  return { kind: 'deb', epoch: 0, upstream: raw, revision: '' };
}

/**
 * Order two Debian versions exactly as `dpkg --compare-versions` does.
 *
 * Invalid input (deterministic, never throws):
 * - Versions dpkg only *warns* about (upstream not starting with a digit, characters outside the
 *   allowed sets) are compared on their parsed epoch/upstream/revision, as dpkg does.
 * - The empty string is the blank version (lowest of all), as `dpkg --compare-versions` treats ''.
 * - Versions dpkg *rejects* (bad/negative/too-big epoch, embedded blanks, empty upstream or revision,
 *   blank-only) are compared by their raw text trimmed of blanks, as an upstream version with epoch
 *   0 and no revision — i.e. dpkg's verrevcmp on the raw string. (dpkg itself would abort.)
 */
export function compareDeb(a: string, b: string): Ordering {
  if (a === b) return 0;
  const va = debCompared(a);
  const vb = debCompared(b);
  if (va.epoch !== vb.epoch) return va.epoch < vb.epoch ? -1 : 1;
  const r = va.upstream === vb.upstream ? 0 : verrevcmp(va.up, vb.up);
  if (r !== 0) return r;
  return va.revision === vb.revision ? 0 : verrevcmp(va.rev, vb.rev);
}

/** debFields() with the bytes verrevcmp reads. */
interface DebCompared extends DebVersion {
  up: Uint8Array;
  rev: Uint8Array;
}

/**
 * Versions compared recently, parsed: matching compares a few distinct versions (installed ones,
 * advisories' fixes) again and again. Bounded: emptied when full.
 */
const debMemo = new Map<string, DebCompared>();

function debCompared(s: string): DebCompared {
  let v = debMemo.get(s);
  if (!v) {
    const f = debFields(s);
    v = { ...f, up: debBytes(f.upstream), rev: debBytes(f.revision) };
    if (debMemo.size >= 50_000) debMemo.clear();
    debMemo.set(s, v);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// RPM
// ---------------------------------------------------------------------------------------------

const TILDE = 0x7e;
const CARET = 0x5e;

/**
 * rpm's `rpmvercmp()` on one version OR release string (no epoch/release splitting): alphanumeric
 * segments, numeric segments compared as numbers of any length and newer than alphabetic ones,
 * everything else a separator; `~` sorts before anything (even the end), `^` after the end but before
 * anything else. Only ASCII letters and digits form segments; any other character is a separator.
 * Total for all strings; never throws.
 */
export function rpmvercmp(a: string, b: string): Ordering {
  const one = cString(a);
  const two = cString(b);
  if (one === two) return 0;
  const la = one.length;
  const lb = two.length;
  let i = 0;
  let j = 0;
  while (i < la || j < lb) {
    while (i < la && !isAlnumCode(one.charCodeAt(i)) && one.charCodeAt(i) !== TILDE && one.charCodeAt(i) !== CARET) i++;
    while (j < lb && !isAlnumCode(two.charCodeAt(j)) && two.charCodeAt(j) !== TILDE && two.charCodeAt(j) !== CARET) j++;
    const ca = i < la ? one.charCodeAt(i) : 0;
    const cb = j < lb ? two.charCodeAt(j) : 0;

    if (ca === TILDE || cb === TILDE) {
      if (ca !== TILDE) return 1;
      if (cb !== TILDE) return -1;
      i++;
      j++;
      continue;
    }
    if (ca === CARET || cb === CARET) {
      if (i >= la) return -1;
      if (j >= lb) return 1;
      if (ca !== CARET) return 1;
      if (cb !== CARET) return -1;
      i++;
      j++;
      continue;
    }
    if (i >= la || j >= lb) break;

    let e1 = i;
    let e2 = j;
    let isNum: boolean;
    if (isDigitCode(ca)) {
      while (e1 < la && isDigitCode(one.charCodeAt(e1))) e1++;
      while (e2 < lb && isDigitCode(two.charCodeAt(e2))) e2++;
      isNum = true;
    } else {
      while (e1 < la && isAlphaCode(one.charCodeAt(e1))) e1++;
      while (e2 < lb && isAlphaCode(two.charCodeAt(e2))) e2++;
      isNum = false;
    }
    if (e1 === i) return -1; // unreachable: `one` has a segment here
    if (e2 === j) return isNum ? 1 : -1; // segment types differ: numeric is newer

    const segA = one.slice(i, e1);
    const segB = two.slice(j, e2);
    const rc = isNum ? compareDigitStrings(segA, segB) : compareAscii(segA, segB);
    if (rc !== 0) return rc;
    i = e1;
    j = e2;
  }
  if (i >= la && j >= lb) return 0;
  return i >= la ? -1 : 1;
}

interface RpmEvr {
  epoch: string | null;
  version: string;
  release: string | null;
}

/** `rpmverParse()`'s split: leading digits + ':' are the epoch, the last '-' starts the release. */
function splitEvr(input: string): RpmEvr {
  const s = cString(input);
  let k = 0;
  while (k < s.length && isDigitCode(s.charCodeAt(k))) k++;
  const dash = s.lastIndexOf('-'); // never inside the all-digit epoch prefix
  let epoch: string | null = null;
  let vStart = 0;
  if (s.charCodeAt(k) === 0x3a) {
    epoch = k === 0 ? '0' : s.slice(0, k);
    vStart = k + 1;
  }
  if (dash >= vStart) return { epoch, version: s.slice(vStart, dash), release: s.slice(dash + 1) };
  return { epoch, version: s.slice(vStart), release: null };
}

/**
 * Order two RPM `[epoch:]version[-release]` strings as rpm's `rpmverCmp()` (`rpm.vercmp()`):
 * epochs (missing = 0) then versions then releases, each with `rpmvercmp`; a missing release sorts
 * before any present one (`1.0` < `1.0-1`). The epoch is the all-digit prefix before the first ':'
 * (an empty one is 0); otherwise the ':' is part of the version. The release is after the last '-'.
 *
 * Invalid input never throws: every string splits, and `rpmvercmp` is total. rpm refuses only ''
 * (rpmverParse returns NULL); here '' is epoch 0, empty version, no release — equal to `0:`, above
 * versions starting with `~`, below everything else.
 */
export function compareRpmEvr(a: string, b: string): Ordering {
  const va = splitEvr(a);
  const vb = splitEvr(b);
  let rc = rpmvercmp(va.epoch ?? '0', vb.epoch ?? '0');
  if (rc !== 0) return rc;
  rc = rpmvercmp(va.version, vb.version);
  if (rc !== 0) return rc;
  if (va.release === null || vb.release === null) {
    if (va.release === vb.release) return 0;
    return va.release === null ? -1 : 1;
  }
  return rpmvercmp(va.release, vb.release);
}

/** rpmbuild's allowed characters in Version and Release besides ASCII alphanumerics. */
const RPM_VERREL_EXTRA = '._+%{}~^';
const UINT32_MAX_DIGITS = '4294967295';

function checkRpmField(field: string, what: 'version' | 'release'): string | null {
  if (field === '') return `${what} is empty`;
  for (let i = 0; i < field.length; i++) {
    const c = field.charCodeAt(i);
    if (!isAlnumCode(c) && !RPM_VERREL_EXTRA.includes(field[i]!)) {
      return `invalid character ${preview(field[i]!)} in ${what}`;
    }
  }
  if (field.includes('..')) return `illegal sequence ".." in ${what}`;
  return null;
}

function parseRpm(input: string): ParseResult<RpmVersion> {
  if (input.includes('\0')) return { ok: false, reason: 'version contains a NUL character' };
  if (input === '') return { ok: false, reason: 'version string is empty' };
  const evr = splitEvr(input);
  let epoch: number | null = null;
  if (evr.epoch !== null) {
    if (input.startsWith(':')) return { ok: false, reason: 'epoch is empty' };
    if (compareDigitStrings(evr.epoch, UINT32_MAX_DIGITS) > 0) return { ok: false, reason: 'epoch is too big' };
    epoch = Number(evr.epoch);
  }
  const vErr = checkRpmField(evr.version, 'version');
  if (vErr) return { ok: false, reason: vErr };
  if (evr.release !== null) {
    const rErr = checkRpmField(evr.release, 'release');
    if (rErr) return { ok: false, reason: rErr };
  }
  return { ok: true, version: { kind: 'rpm', epoch, version: evr.version, release: evr.release } };
}

// ---------------------------------------------------------------------------------------------
// APK
// ---------------------------------------------------------------------------------------------

// Token kinds, in the order apk requires them to appear (their order matters for comparison).
const T_INITIAL_DIGIT = 0;
const T_DIGIT = 1;
const T_LETTER = 2;
const T_SUFFIX = 3;
const T_SUFFIX_NO = 4;
const T_COMMIT_HASH = 5;
const T_REVISION_NO = 6;
const T_END = 7;
const T_INVALID = 8;

const SUFFIX_NONE = 5;
/** Pre-release suffixes sort below "no suffix" (5), post-release ones above. */
const APK_SUFFIXES = new Map<string, number>([
  ['alpha', 1],
  ['beta', 2],
  ['pre', 3],
  ['rc', 4],
  ['cvs', 6],
  ['svn', 7],
  ['git', 8],
  ['hg', 9],
  ['p', 10],
]);

const isHexLowerCode = (c: number): boolean => isDigitCode(c) || (c >= 0x61 && c <= 0x66);

/** apk-tools' version tokenizer (struct token_state + token_first/token_next). */
class ApkTokens {
  token = T_INITIAL_DIGIT;
  suffix = 0;
  value = '';
  /** Why the version became invalid (only set when token is T_INVALID). */
  why = '';
  private pos = 0;

  constructor(private readonly s: string) {
    this.digits();
    if (this.token === T_INVALID) this.why = 'version must start with a digit';
  }

  private digits(): void {
    const start = this.pos;
    while (this.pos < this.s.length && isDigitCode(this.s.charCodeAt(this.pos))) this.pos++;
    this.value = this.s.slice(start, this.pos);
    if (this.value === '') this.token = T_INVALID;
  }

  private invalid(why: string): void {
    this.token = T_INVALID;
    this.why = `${why} at offset ${this.pos}`;
  }

  next(): void {
    const s = this.s;
    if (this.pos >= s.length) {
      this.token = T_END;
      return;
    }
    const c = s.charCodeAt(this.pos);
    if (isLowerCode(c)) {
      if (this.token > T_DIGIT) return this.invalid('a letter may only follow a number');
      this.value = s[this.pos]!;
      this.token = T_LETTER;
      this.pos++;
      return;
    }
    if (c === 0x2e || isDigitCode(c)) {
      if (c === 0x2e) {
        if (this.token > T_DIGIT) return this.invalid("'.' may only follow a number");
        this.pos++;
      }
      if (this.token === T_INITIAL_DIGIT || this.token === T_DIGIT) this.token = T_DIGIT;
      else if (this.token === T_SUFFIX) this.token = T_SUFFIX_NO;
      else return this.invalid('unexpected digit');
      this.digits();
      if (this.token === T_INVALID) this.why = `missing number at offset ${this.pos}`;
      return;
    }
    if (c === 0x5f) {
      if (this.token > T_SUFFIX_NO) return this.invalid("'_' suffix not allowed here");
      const at = this.pos;
      this.pos++;
      const start = this.pos;
      while (this.pos < s.length && isLowerCode(s.charCodeAt(this.pos))) this.pos++;
      this.value = s.slice(start, this.pos);
      this.suffix = APK_SUFFIXES.get(this.value) ?? 0;
      if (this.suffix === 0) {
        this.token = T_INVALID;
        this.why = `unknown suffix ${preview('_' + this.value)} at offset ${at}`;
        return;
      }
      this.token = T_SUFFIX;
      return;
    }
    if (c === TILDE) {
      if (this.token >= T_COMMIT_HASH) return this.invalid("'~' commit hash not allowed here");
      this.pos++;
      const start = this.pos;
      while (this.pos < s.length && isHexLowerCode(s.charCodeAt(this.pos))) this.pos++;
      this.value = s.slice(start, this.pos);
      if (this.value === '') return this.invalid("'~' must be followed by a lowercase hex commit hash");
      this.token = T_COMMIT_HASH;
      return;
    }
    if (c === 0x2d) {
      if (this.token >= T_REVISION_NO) return this.invalid("'-r' revision not allowed here");
      if (s.charCodeAt(this.pos + 1) !== 0x72) return this.invalid("'-' must start a '-r<number>' revision");
      this.pos += 2;
      this.token = T_REVISION_NO;
      this.digits();
      if (this.token === T_INVALID) this.why = `missing revision number at offset ${this.pos}`;
      return;
    }
    this.invalid(`unexpected character ${preview(s[this.pos]!)}`);
  }
}

function apkTokenCmp(ta: ApkTokens, tb: ApkTokens): Ordering {
  switch (ta.token) {
    case T_DIGIT:
      // A leading zero in either makes it a string comparison ("1.01" < "1.1"), as Gentoo does.
      if (ta.value.charCodeAt(0) === 0x30 || tb.value.charCodeAt(0) === 0x30) return compareAscii(ta.value, tb.value);
      return compareDigitStrings(ta.value, tb.value);
    case T_INITIAL_DIGIT:
    case T_SUFFIX_NO:
    case T_REVISION_NO:
      return compareDigitStrings(ta.value, tb.value);
    case T_LETTER:
      return compareAscii(ta.value, tb.value);
    case T_SUFFIX:
      return sign(ta.suffix - tb.suffix);
    default:
      return compareAscii(ta.value, tb.value);
  }
}

function apkCompare(a: string, b: string, fuzzy: boolean): Ordering {
  const ta = new ApkTokens(cString(a));
  const tb = new ApkTokens(cString(b));
  while (ta.token === tb.token && ta.token < T_END) {
    const r = apkTokenCmp(ta, tb);
    if (r !== 0) return r;
    ta.next();
    tb.next();
  }
  if (ta.token === tb.token) return 0;
  if (tb.token === T_END && fuzzy) return 0;
  // Equal so far: the longer one is newer, unless what it has next is a pre-release suffix.
  if (ta.token === T_SUFFIX && ta.suffix < SUFFIX_NONE) return -1;
  if (tb.token === T_SUFFIX && tb.suffix < SUFFIX_NONE) return 1;
  if (ta.token > tb.token) return -1;
  if (tb.token > ta.token) return 1;
  return 0;
}

/**
 * Order two apk versions exactly as apk-tools' `apk_version_compare()`.
 *
 * Invalid input is compared as apk compares it (never throws): tokens are compared left to right
 * until the first invalid token; two versions that become invalid at the same point after equal
 * tokens are equal (`1.0bc` = `1.0bd`), and a version that becomes invalid where the other has a
 * valid token or ends sorts lower (`1.0 ` < `1.0`, '' < `0`). No trimming is done.
 * The one deliberate difference: apk reads numbers into a fixed-width integer that wraps; here
 * numbers of any length compare exactly.
 */
export function compareApk(a: string, b: string): Ordering {
  return apkCompare(a, b, false);
}

/**
 * apk's fuzzy comparison (`apk_version_compare_fuzzy(..., true)`): as `compareApk`, except that
 * when `b` runs out while all of its tokens equalled `a`'s, the result is 0 — so `3.6.9 ~ 3.6` and
 * `3.6_pre1 ~ 3.6`. Used by the `~`, `<~`, `>~` dependency operators.
 */
export function compareApkFuzzy(a: string, b: string): Ordering {
  return apkCompare(a, b, true);
}

export type ApkOperator = '<' | '<=' | '=' | '>=' | '>' | '~' | '<~' | '>~' | `!${'<' | '<=' | '=' | '>=' | '>' | '~' | '<~' | '>~'}`;

const APK_EQUAL = 1;
const APK_LESS = 2;
const APK_GREATER = 4;
const APK_FUZZY = 8;

/**
 * apk's `apk_version_match(a, op, b)`: does `a op b` hold? `op` is built from `<`, `>`, `=`, `~`
 * (`~` means fuzzy-equal), optionally prefixed with `!` to negate (apk's conflict flag). `<=>`-style
 * masks covering every outcome always match, as in apk. Throws PlinthError('USAGE') on an operator
 * apk would not parse (a programming error, not a data error).
 */
export function matchApkVersion(a: string, op: ApkOperator | string, b: string): boolean {
  let negate = false;
  let ops = op;
  if (ops.startsWith('!')) {
    negate = true;
    ops = ops.slice(1);
  }
  let mask = 0;
  for (const ch of ops) {
    if (ch === '<') mask |= APK_LESS;
    else if (ch === '>') mask |= APK_GREATER;
    else if (ch === '=') mask |= APK_EQUAL;
    else if (ch === '~') mask |= APK_FUZZY | APK_EQUAL;
    else mask = -1;
    if (mask < 0) break;
  }
  if (mask <= 0) throw new PlinthError('USAGE', `invalid apk version operator ${preview(op)}`);
  let ok: boolean;
  if ((mask & (APK_EQUAL | APK_LESS | APK_GREATER)) === (APK_EQUAL | APK_LESS | APK_GREATER)) {
    ok = true;
  } else {
    const r = apkCompare(a, b, (mask & APK_FUZZY) !== 0);
    const flag = r < 0 ? APK_LESS : r > 0 ? APK_GREATER : APK_EQUAL;
    ok = (flag & mask) !== 0;
  }
  return negate ? !ok : ok;
}

function parseApk(input: string): ParseResult<ApkVersion> {
  if (input.includes('\0')) return { ok: false, reason: 'version contains a NUL character' };
  if (input === '') return { ok: false, reason: 'version string is empty' };
  const t = new ApkTokens(input);
  const v: ApkVersion = { kind: 'apk', numbers: [], letter: null, suffixes: [], commitHash: null, revision: null };
  while (t.token < T_END) {
    switch (t.token) {
      case T_INITIAL_DIGIT:
      case T_DIGIT:
        v.numbers.push(t.value);
        break;
      case T_LETTER:
        v.letter = t.value;
        break;
      case T_SUFFIX:
        v.suffixes.push({ name: t.value as ApkSuffixName, number: null });
        break;
      case T_SUFFIX_NO:
        v.suffixes[v.suffixes.length - 1]!.number = t.value;
        break;
      case T_COMMIT_HASH:
        v.commitHash = t.value;
        break;
      case T_REVISION_NO:
        v.revision = t.value;
        break;
    }
    t.next();
  }
  if (t.token === T_INVALID) return { ok: false, reason: t.why };
  return { ok: true, version: v };
}

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

function badKind(kind: unknown): never {
  throw new PlinthError('USAGE', `unknown version kind ${preview(String(kind))} (expected deb, rpm or apk)`);
}

/**
 * Order two versions of one ecosystem: -1 if `a` is older than `b`, 0 if equal, 1 if newer.
 *
 * Never throws for any version strings (non-string values are coerced with String(), null/undefined
 * to ''); invalid versions get the deterministic treatment documented on `compareDeb`,
 * `compareRpmEvr` (rpm) and `compareApk`. Use `parseVersion`/`isValidVersion` to detect them.
 * Throws PlinthError('USAGE') only for an unknown `kind`.
 */
export function compareVersions(kind: VersionKind, a: string, b: string): Ordering {
  const sa = typeof a === 'string' ? a : String(a ?? '');
  const sb = typeof b === 'string' ? b : String(b ?? '');
  switch (kind) {
    case 'deb':
      return compareDeb(sa, sb);
    case 'rpm':
      return compareRpmEvr(sa, sb);
    case 'apk':
      return compareApk(sa, sb);
    default:
      return badKind(kind);
  }
}

/**
 * Parse a version into its structured form, or say why it is not valid (never throws for any string):
 * - deb: dpkg's parseversion(); leading/trailing blanks are ignored; anything dpkg reports as an error
 *   or a warning is invalid (e.g. '', `1.0-` "revision number is empty", `a1` "does not start with digit").
 * - rpm: `[epoch:]version[-release]`; epoch digits ≤ 2^32-1, version and release non-empty and made of
 *   what rpmbuild accepts (ASCII alphanumerics and `._+%{}~^`, no `..`).
 * - apk: apk-tools' `apk_version_validate()` grammar.
 * Throws PlinthError('USAGE') only for an unknown `kind`.
 */
export function parseVersion(kind: 'deb', s: string): ParseResult<DebVersion>;
export function parseVersion(kind: 'rpm', s: string): ParseResult<RpmVersion>;
export function parseVersion(kind: 'apk', s: string): ParseResult<ApkVersion>;
export function parseVersion(kind: VersionKind, s: string): ParseResult;
export function parseVersion(kind: VersionKind, s: string): ParseResult {
  if (typeof s !== 'string') return { ok: false, reason: 'version is not a string' };
  switch (kind) {
    case 'deb': {
      if (s.includes('\0')) return { ok: false, reason: 'version contains a NUL character' };
      const r = parseDeb(s);
      return r.status === 'ok' ? { ok: true, version: r.v } : { ok: false, reason: r.reason };
    }
    case 'rpm':
      return parseRpm(s);
    case 'apk':
      return parseApk(s);
    default:
      return badKind(kind);
  }
}

/** Whether `s` is a valid version of `kind` (see `parseVersion`). */
export function isValidVersion(kind: VersionKind, s: string): boolean {
  return parseVersion(kind, s).ok;
}

/** `parseVersion`, throwing PlinthError('USAGE') with the reason when the version is invalid. */
export function requireVersion(kind: 'deb', s: string): DebVersion;
export function requireVersion(kind: 'rpm', s: string): RpmVersion;
export function requireVersion(kind: 'apk', s: string): ApkVersion;
export function requireVersion(kind: VersionKind, s: string): ParsedVersion;
export function requireVersion(kind: VersionKind, s: string): ParsedVersion {
  const r = parseVersion(kind, s);
  if (!r.ok) {
    throw new PlinthError('USAGE', `invalid ${kind} version ${preview(String(s))}: ${r.reason}`, { kind, reason: r.reason });
  }
  return r.version;
}
