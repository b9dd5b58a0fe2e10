/**
 * rpm's database of installed packages.
 *
 * Three on-disk formats exist: SQLite (`rpmdb.sqlite`, rpm ≥ 4.16: RHEL 9, Fedora ≥ 33, Rocky
 * and Alma 9, Amazon Linux 2023), NDB (`Packages.db`, SUSE) and BerkeleyDB (`Packages`, RHEL ≤ 8,
 * CentOS, Amazon Linux 2). Only SQLite is read; the other two give an {@link RpmUnsupported}.
 *
 * In every format each package is one rpm *header blob*. Its layout (all integers big-endian):
 *
 * ```
 *   il: int32            number of index entries
 *   dl: int32            number of bytes in the data store
 *   il × { tag: int32, type: uint32, offset: int32, count: uint32 }
 *   dl bytes of data     values, each aligned to its type's size
 * ```
 *
 * Usually the first entry is a region tag (63, HEADERIMMUTABLE; BIN; count 16) whose offset
 * points at a 16-byte trailer entry in the data store; the trailer's negated offset is the size
 * of the region's index (`16 × ril`). Entries after the region ("dribbles") replace region entries
 * with the same tag. {@link parseRpmHeader} checks all of it the way rpm's hdrblobInit does, so a
 * hostile blob gives an error value — never an exception, never an allocation beyond the blob's
 * own size.
 *
 * Reading the SQLite file is the caller's job ({@link SqliteReader}), so this module stays pure.
 */
import { PlinthError } from '../util/errors.js';
import { normalizeImagePath, type OsInfo } from './os.js';
import { FindingSink, packageUrl, type Package, type ParseResult } from './types.js';

export const RPM_PATHS: string[] = [
  'var/lib/rpm/rpmdb.sqlite',
  'var/lib/rpm/Packages.db',
  'var/lib/rpm/Packages',
  'usr/lib/sysimage/rpm/rpmdb.sqlite',
  'usr/lib/sysimage/rpm/Packages.db',
  'usr/lib/sysimage/rpm/Packages',
];
const RPM_PATH_SET = new Set(RPM_PATHS);

export function isRpmPath(path: string): boolean {
  return RPM_PATH_SET.has(normalizeImagePath(path));
}

export type RpmDbFormat = 'sqlite' | 'berkeleydb' | 'ndb';

/**
 * The database format: from the first bytes when given and recognisable (SQLite's
 * `SQLite format 3\0`, NDB's `RpmP`, a BerkeleyDB hash or btree magic at offset 12), otherwise
 * from the file name (`rpmdb.sqlite`, `Packages.db`, `Packages`).
 */
export function rpmDbFormat(path: string, head?: Buffer): RpmDbFormat | undefined {
  if (head && head.length >= 16) {
    if (head.subarray(0, 16).equals(Buffer.from('SQLite format 3\0', 'latin1'))) return 'sqlite';
    if (head.subarray(0, 4).toString('latin1') === 'RpmP') return 'ndb';
    const le = head.readUInt32LE(12);
    const be = head.readUInt32BE(12);
    for (const magic of [0x00061561, 0x00053162]) if (le === magic || be === magic) return 'berkeleydb';
  }
  const base = normalizeImagePath(path).split('/').pop();
  if (base === 'rpmdb.sqlite') return 'sqlite';
  if (base === 'Packages.db') return 'ndb';
  if (base === 'Packages') return 'berkeleydb';
  return undefined;
}

/**
 * Reads the SQLite rpm database `file` and returns the `blob` column of its `Packages` table
 * (`SELECT blob FROM Packages`), one header blob per installed package. May throw on a corrupt
 * file; {@link readRpmDb} turns that into a finding.
 */
export type SqliteReader = (file: string) => Array<Buffer>;

export interface RpmUnsupported {
  unsupported: 'berkeleydb' | 'ndb';
  path: string;
  message: string;
}

export function isRpmUnsupported(r: ParseResult | RpmUnsupported): r is RpmUnsupported {
  return 'unsupported' in r;
}

// ---------------------------------------------------------------------------------------------
// Header blobs
// ---------------------------------------------------------------------------------------------

export const RPM_TYPE = {
  NULL: 0,
  CHAR: 1,
  INT8: 2,
  INT16: 3,
  INT32: 4,
  INT64: 5,
  STRING: 6,
  BIN: 7,
  STRING_ARRAY: 8,
  I18NSTRING: 9,
} as const;

export const RPM_TAG = {
  HEADERSIGNATURES: 62,
  HEADERIMMUTABLE: 63,
  HEADERI18NTABLE: 100,
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  VENDOR: 1011,
  LICENSE: 1014,
  ARCH: 1022,
  SOURCERPM: 1044,
} as const;

/** rpm's own limits (HEADER_TAGS_MAX, HEADER_DATA_MAX). */
const HEADER_TAGS_MAX = 0xffff;
const HEADER_DATA_MAX = 0x0fffffff;
const REGION_TAG_COUNT = 16;
const TYPE_SIZE = [0, 1, 1, 2, 4, 8, -1, 1, -1, -1];
const TYPE_ALIGN = [1, 1, 1, 2, 4, 8, 1, 1, 1, 1];

export interface RpmIndexEntry {
  tag: number;
  type: number;
  /** Offset in the data store. */
  offset: number;
  count: number;
  /** Bytes the value occupies in the data store. */
  length: number;
}

/** A checked header: every entry's value lies inside the data store. */
export interface RpmHeaderIndex {
  /** By tag; a later entry (a dribble) replaces an earlier one. */
  entries: Map<number, RpmIndexEntry>;
  /** The data store. */
  data: Buffer;
  /** The region tag (63, or 62 for a signature header), 0 for a legacy header without one. */
  regionTag: number;
}

function invalid(message: string, details?: Record<string, unknown>): PlinthError {
  return new PlinthError('PACKAGE_DB_INVALID', `rpm header: ${message}`, details);
}

/** Bytes of a value of `type` × `count` at `offset`, or -1 when it runs past `end`. */
function dataLength(data: Buffer, type: number, count: number, offset: number, end: number): number {
  const size = TYPE_SIZE[type]!;
  if (size >= 0) {
    const len = size * count;
    return offset + len <= end ? len : -1;
  }
  // STRING (count 1), STRING_ARRAY, I18NSTRING: `count` NUL-terminated strings.
  let pos = offset;
  for (let i = 0; i < count; i++) {
    if (pos >= end) return -1;
    const nul = data.indexOf(0, pos);
    if (nul < 0 || nul >= end) return -1;
    pos = nul + 1;
  }
  return pos - offset;
}

/**
 * Check a header blob's structure and index it. Every check rpm's hdrblobInit /
 * hdrblobVerifyRegion / hdrblobVerifyInfo make is made here: exact blob size, tag and data
 * limits, the region tag and its trailer, each entry's tag, type, count, alignment and bounds,
 * and that values do not overlap.
 */
export function indexRpmHeader(blob: Buffer): RpmHeaderIndex | PlinthError {
  if (blob.length < 8) return invalid(`blob of ${blob.length} bytes is shorter than its 8-byte intro`);
  const il = blob.readUInt32BE(0);
  const dl = blob.readUInt32BE(4);
  if (il < 1 || il > HEADER_TAGS_MAX) return invalid(`index count ${il} out of range 1..${HEADER_TAGS_MAX}`, { il });
  if (dl > HEADER_DATA_MAX) return invalid(`data length ${dl} out of range (at most ${HEADER_DATA_MAX})`, { dl });
  const expected = 8 + il * 16 + dl;
  if (expected !== blob.length) {
    return invalid(`blob is ${blob.length} bytes but its intro says 8 + 16 × ${il} + ${dl} = ${expected}`, { il, dl, size: blob.length });
  }
  const dataStart = 8 + il * 16;
  const data = blob.subarray(dataStart);
  const entryAt = (i: number) => {
    const o = 8 + i * 16;
    return { tag: blob.readInt32BE(o), type: blob.readUInt32BE(o + 4), offset: blob.readInt32BE(o + 8), count: blob.readUInt32BE(o + 12) };
  };

  let first = 0;
  let regionTag = 0;
  const e0 = entryAt(0);
  if (e0.tag === RPM_TAG.HEADERIMMUTABLE || e0.tag === RPM_TAG.HEADERSIGNATURES) {
    if (e0.type !== RPM_TYPE.BIN || e0.count !== REGION_TAG_COUNT) {
      return invalid(`region tag ${e0.tag} has type ${e0.type} and count ${e0.count} (want BIN × 16)`);
    }
    if (e0.offset < 0 || e0.offset + REGION_TAG_COUNT > dl) return invalid(`region trailer offset ${e0.offset} outside the ${dl}-byte data store`);
    const t = {
      tag: data.readInt32BE(e0.offset),
      type: data.readUInt32BE(e0.offset + 4),
      offset: data.readInt32BE(e0.offset + 8),
      count: data.readUInt32BE(e0.offset + 12),
    };
    if (t.tag !== e0.tag || t.type !== RPM_TYPE.BIN || t.count !== REGION_TAG_COUNT) {
      return invalid(`region trailer is tag ${t.tag} type ${t.type} count ${t.count} (want ${e0.tag}, BIN, 16)`);
    }
    const regionIndexBytes = -t.offset;
    if (regionIndexBytes <= 0 || regionIndexBytes % 16 !== 0 || regionIndexBytes / 16 > il) {
      return invalid(`region trailer says the region has ${regionIndexBytes / 16} entries; the header has ${il}`);
    }
    regionTag = e0.tag;
    first = 1;
  }

  const entries = new Map<number, RpmIndexEntry>();
  let end = 0;
  for (let i = first; i < il; i++) {
    const e = entryAt(i);
    const at = `entry ${i} (tag ${e.tag})`;
    if (e.tag < RPM_TAG.HEADERI18NTABLE) return invalid(`${at}: tag number below ${RPM_TAG.HEADERI18NTABLE}`);
    if (e.type > RPM_TYPE.I18NSTRING) return invalid(`${at}: unknown type ${e.type}`);
    if (e.count < 1 || e.count > dl) return invalid(`${at}: count ${e.count} out of range 1..${dl}`);
    if (e.offset < 0 || e.offset > dl) return invalid(`${at}: offset ${e.offset} outside the ${dl}-byte data store`);
    if (e.offset % TYPE_ALIGN[e.type]! !== 0) return invalid(`${at}: offset ${e.offset} not aligned for type ${e.type}`);
    if ((e.type === RPM_TYPE.STRING || e.type === RPM_TYPE.NULL) && e.count !== 1) return invalid(`${at}: type ${e.type} with count ${e.count} (want 1)`);
    if (end > e.offset) return invalid(`${at}: value at ${e.offset} overlaps the previous one (ending at ${end})`);
    const length = dataLength(data, e.type, e.count, e.offset, dl);
    if (length < 0) return invalid(`${at}: value runs past the end of the data store`);
    end = e.offset + length;
    entries.set(e.tag, { ...e, length });
  }
  return { entries, data, regionTag };
}

function strings(h: RpmHeaderIndex, e: RpmIndexEntry): string[] {
  const out: string[] = [];
  let pos = e.offset;
  for (let i = 0; i < e.count; i++) {
    const nul = h.data.indexOf(0, pos);
    out.push(h.data.toString('utf8', pos, nul));
    pos = nul + 1;
  }
  return out;
}

/**
 * A string tag's value: STRING, or the first (C locale) string of an I18NSTRING / STRING_ARRAY.
 * Undefined when absent; a PlinthError when present with a non-string type.
 */
export function rpmHeaderString(h: RpmHeaderIndex, tag: number): string | undefined | PlinthError {
  const e = h.entries.get(tag);
  if (!e) return undefined;
  if (e.type !== RPM_TYPE.STRING && e.type !== RPM_TYPE.I18NSTRING && e.type !== RPM_TYPE.STRING_ARRAY) {
    return invalid(`tag ${tag} has type ${e.type}, not a string`);
  }
  return strings(h, e)[0];
}

/** An INT32 tag's first value (signed, as rpm declares EPOCH). */
export function rpmHeaderInt32(h: RpmHeaderIndex, tag: number): number | undefined | PlinthError {
  const e = h.entries.get(tag);
  if (!e) return undefined;
  if (e.type !== RPM_TYPE.INT32) return invalid(`tag ${tag} has type ${e.type}, not INT32`);
  return h.data.readInt32BE(e.offset);
}

export interface RpmHeader {
  name: string;
  version: string;
  release: string;
  epoch?: number;
  arch?: string;
  license?: string;
  vendor?: string;
  /** e.g. `bash-5.1.8-6.el9.src.rpm`. */
  sourceRpm?: string;
}

/** Read NAME, VERSION, RELEASE, EPOCH, ARCH, LICENSE, SOURCERPM and VENDOR from a header blob. */
export function parseRpmHeader(blob: Buffer): RpmHeader | PlinthError {
  const h = indexRpmHeader(blob);
  if (h instanceof PlinthError) return h;
  const str = (tag: number, what: string, required: boolean): string | undefined | PlinthError => {
    const v = rpmHeaderString(h, tag);
    if (v instanceof PlinthError) return v;
    if (v === undefined || v === '') return required ? invalid(`no ${what} (tag ${tag})`) : undefined;
    return v;
  };
  const name = str(RPM_TAG.NAME, 'NAME', true);
  if (name instanceof PlinthError) return name;
  const version = str(RPM_TAG.VERSION, 'VERSION', true);
  if (version instanceof PlinthError) return version;
  const release = str(RPM_TAG.RELEASE, 'RELEASE', true);
  if (release instanceof PlinthError) return release;
  const header: RpmHeader = { name: name!, version: version!, release: release! };
  const epoch = rpmHeaderInt32(h, RPM_TAG.EPOCH);
  if (epoch instanceof PlinthError) return epoch;
  if (epoch !== undefined) {
    if (epoch < 0) return invalid(`negative EPOCH ${epoch}`);
    header.epoch = epoch;
  }
  for (const [key, tag, what] of [
    ['arch', RPM_TAG.ARCH, 'ARCH'],
    ['license', RPM_TAG.LICENSE, 'LICENSE'],
    ['vendor', RPM_TAG.VENDOR, 'VENDOR'],
    ['sourceRpm', RPM_TAG.SOURCERPM, 'SOURCERPM'],
  ] as const) {
    const v = str(tag, what, false);
    if (v instanceof PlinthError) return v;
    if (v !== undefined) header[key] = v;
  }
  return header;
}

/** `bash-5.1.8-6.el9.src.rpm` → `{ name: 'bash', version: '5.1.8', release: '6.el9' }`. */
export function splitSourceRpm(file: string): { name: string; version: string; release: string } | undefined {
  let s = file.trim();
  if (!s.endsWith('.rpm')) return undefined;
  s = s.slice(0, -4);
  const dot = s.lastIndexOf('.');
  if (dot < 0) return undefined;
  s = s.slice(0, dot); // the arch: src / nosrc
  const r = s.lastIndexOf('-');
  if (r <= 0) return undefined;
  const v = s.lastIndexOf('-', r - 1);
  if (v <= 0) return undefined;
  const name = s.slice(0, v);
  const version = s.slice(v + 1, r);
  const release = s.slice(r + 1);
  if (!name || !version || !release) return undefined;
  return { name, version, release };
}

/**
 * Turn header blobs into packages. A blob that does not parse gives a finding; the public keys
 * rpm keeps in its database as pseudo-packages (`gpg-pubkey`) are left out.
 */
export function parseRpmBlobs(blobs: Iterable<Buffer>, path: string, os?: OsInfo): ParseResult {
  const evidence = normalizeImagePath(path);
  const sink = new FindingSink(evidence);
  const packages: Package[] = [];
  let i = 0;
  for (const blob of blobs) {
    i++;
    const h = parseRpmHeader(blob);
    if (h instanceof PlinthError) {
      sink.add(`package ${i}: ${h.message}`);
      continue;
    }
    if (h.name === 'gpg-pubkey') continue;
    const pkg: Omit<Package, 'purl'> = { name: h.name, version: h.version, release: h.release, type: 'rpm', evidence };
    if (h.epoch !== undefined) pkg.epoch = h.epoch;
    if (h.arch) pkg.arch = h.arch;
    if (h.license) pkg.license = h.license;
    if (h.vendor) pkg.vendor = h.vendor;
    if (h.sourceRpm && h.sourceRpm !== '(none)') {
      const src = splitSourceRpm(h.sourceRpm);
      if (src) {
        pkg.source = src.name;
        pkg.sourceVersion = `${src.version}-${src.release}`;
      } else {
        sink.add(`package ${i} (${h.name}): cannot split SOURCERPM ${JSON.stringify(h.sourceRpm.slice(0, 120))}`);
      }
    }
    packages.push({ ...pkg, purl: packageUrl(pkg, os) });
  }
  return { packages, findings: sink.done() };
}

export interface RpmDbSource {
  /** Reads the SQLite database; required for `rpmdb.sqlite`. */
  sqlite?: SqliteReader;
  /** What to hand the reader (e.g. a temporary copy on disk); default: `path`. */
  file?: string;
  /** The file's first bytes, to recognise its format by content. */
  head?: Buffer;
  os?: OsInfo;
}

/**
 * Read the rpm database at `path` (a path inside the image, see {@link RPM_PATHS}). SQLite
 * databases are read through `source.sqlite`; BerkeleyDB and NDB give an {@link RpmUnsupported}.
 * Never throws: a reader that fails gives a finding.
 */
export function readRpmDb(path: string, source: RpmDbSource): ParseResult | RpmUnsupported {
  const evidence = normalizeImagePath(path);
  const format = rpmDbFormat(evidence, source.head);
  if (format === 'berkeleydb' || format === 'ndb') {
    const what = format === 'berkeleydb' ? 'BerkeleyDB' : 'NDB';
    return {
      unsupported: format,
      path: evidence,
      message: `the rpm database ${evidence} is in the ${what} format, which Plinth cannot read yet; its packages are not listed`,
    };
  }
  if (format !== 'sqlite') return { packages: [], findings: [{ path: evidence, message: 'not a recognised rpm database' }] };
  if (!source.sqlite) return { packages: [], findings: [{ path: evidence, message: 'an SQLite rpm database, but no SQLite reader was supplied' }] };
  let blobs: Buffer[];
  try {
    blobs = source.sqlite(source.file ?? evidence);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return { packages: [], findings: [{ path: evidence, message: `cannot read the SQLite rpm database: ${msg}` }] };
  }
  return parseRpmBlobs(blobs, evidence, source.os);
}
