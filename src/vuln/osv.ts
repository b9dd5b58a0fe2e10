/**
 * OSV records (https://ossf.github.io/osv-schema/): validation, ecosystem names, and the
 * conversion into the rows the advisory store keeps.
 *
 * Validation is lenient about fields it does not know (OSV grows; unknown fields are kept out of
 * the way, never refused) and strict about what matching needs: `id`, `modified`, and for every
 * affected package its ecosystem, name, range types and events (each event exactly one of
 * introduced / fixed / last_affected / limit). Errors name the file and the record id.
 *
 * Ecosystems matched: `Debian:<N>`, `Ubuntu:<X.Y>[:LTS]` (and `Ubuntu:Pro:…`, which only matches a
 * query that is itself `Ubuntu:Pro:…`), `Alpine:v<X.Y>`. Any other ecosystem is stored (so
 * `status` can count it) but never matched.
 */
import * as z from 'zod/mini';
import '../util/zod.js';
import { PlinthError } from '../util/errors.js';
import { compareVersions } from './version.js';

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

function requiredString(what = 'a string') {
  return z.string({ error: (iss) => (iss.input === undefined ? 'is required' : `must be ${what}`) });
}
const nonEmpty = (what = 'a non-empty string') => requiredString(what).check(z.minLength(1, { error: 'must not be empty' }));

const timestamp = requiredString('an RFC 3339 timestamp').check(
  z.refine((s) => !Number.isNaN(Date.parse(s)), {
    error: 'must be an RFC 3339 timestamp (e.g. 2024-01-31T12:00:00Z)',
  }),
);

/** A list that may be absent or `null` (Go encoders write null); always an array after parsing. */
function list<T extends z.ZodMiniType>(item: T) {
  return z.pipe(
    z.nullish(z.array(item, { error: 'must be a list' })),
    z.transform((v: z.output<T>[] | null | undefined) => v ?? []),
  );
}

const anyObject = z.record(z.string(), z.unknown(), { error: 'must be an object' });

export const OSV_EVENT_KEYS = ['introduced', 'fixed', 'last_affected', 'limit'] as const;
export type OsvEventKey = (typeof OSV_EVENT_KEYS)[number];

const EventSchema = z
  .looseObject({
    introduced: z.optional(nonEmpty()),
    fixed: z.optional(nonEmpty()),
    last_affected: z.optional(nonEmpty()),
    limit: z.optional(nonEmpty()),
  })
  .check(z.superRefine((e, ctx) => {
    const present = OSV_EVENT_KEYS.filter((k) => e[k] !== undefined);
    if (present.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          present.length === 0
            ? 'an event needs one of introduced, fixed, last_affected, limit'
            : `an event has exactly one of introduced, fixed, last_affected, limit (found ${present.join(', ')})`,
      });
    }
  }));

const RangeSchema = z.looseObject({
  type: z.enum(['ECOSYSTEM', 'SEMVER', 'GIT'], { error: 'must be ECOSYSTEM, SEMVER or GIT' }),
  repo: z.optional(z.string()),
  events: z.array(EventSchema, { error: 'must be a list' }).check(z.minLength(1, { error: 'must not be empty' })),
  database_specific: z.optional(anyObject),
});

const SeveritySchema = z.looseObject({
  type: nonEmpty(),
  score: nonEmpty(),
});

const PackageSchema = z.looseObject({
  ecosystem: nonEmpty(),
  name: nonEmpty(),
  purl: z.optional(z.string()),
});

const AffectedSchema = z.looseObject({
  package: z.optional(PackageSchema),
  severity: list(SeveritySchema),
  ranges: list(RangeSchema),
  versions: list(nonEmpty()),
  ecosystem_specific: z.nullish(anyObject),
  database_specific: z.nullish(anyObject),
});

export const OsvRecordSchema = z.looseObject({
  schema_version: z.optional(z.string()),
  id: nonEmpty(),
  modified: timestamp,
  published: z.optional(timestamp),
  withdrawn: z.optional(timestamp),
  aliases: list(nonEmpty()),
  related: list(nonEmpty()),
  upstream: list(nonEmpty()),
  summary: z.nullish(z.string()),
  details: z.nullish(z.string()),
  severity: list(SeveritySchema),
  affected: list(AffectedSchema),
  database_specific: z.nullish(anyObject),
});

export type OsvRecord = z.infer<typeof OsvRecordSchema>;
export type OsvAffected = z.infer<typeof AffectedSchema>;
export type OsvRange = z.infer<typeof RangeSchema>;
export type OsvEvent = z.infer<typeof EventSchema>;
export interface OsvSeverity {
  type: string;
  score: string;
}

/** Where a record came from, for error messages: the file (or `zip!entry`) and its index in an array. */
export interface RecordLocation {
  file: string;
  index?: number;
}

function describeRecord(value: unknown, where: RecordLocation): string {
  const id = value && typeof value === 'object' && typeof (value as { id?: unknown }).id === 'string' ? (value as { id: string }).id : undefined;
  const idx = where.index !== undefined ? ` #${where.index}` : '';
  return id ? `record "${id}"${where.index !== undefined ? ` (#${where.index})` : ''}` : `record${idx} (no id)`;
}

function issuePath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : `${out ? '.' : ''}${String(k)}`;
  return out || '(top level)';
}

/**
 * Validate one OSV record without throwing: the record, or a message naming the record (its id,
 * else its position) and the fields that are wrong.
 */
export function checkOsvRecord(value: unknown, index?: number): { ok: true; record: OsvRecord } | { ok: false; message: string } {
  const where: RecordLocation = { file: '', ...(index !== undefined ? { index } : {}) };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, message: `${describeRecord(value, where)}: an OSV record must be a JSON object` };
  }
  const r = OsvRecordSchema.safeParse(value);
  if (r.success) return { ok: true, record: r.data };
  const issues = r.error.issues.slice(0, 3).map((i) => `${issuePath(i.path)} ${i.message}`);
  const more = r.error.issues.length > 3 ? ` (and ${r.error.issues.length - 3} more problems)` : '';
  return { ok: false, message: `${describeRecord(value, where)}: ${issues.join('; ')}${more}` };
}

/** Validate one OSV record; throws ADVISORY_INVALID naming the file, the record id and the fields. */
export function parseOsvRecord(value: unknown, where: RecordLocation): OsvRecord {
  const r = checkOsvRecord(value, where.index);
  if (r.ok) return r.record;
  throw new PlinthError('ADVISORY_INVALID', `${where.file}: ${r.message}`, { file: where.file });
}

// ---------------------------------------------------------------------------------------------
// Ecosystems
// ---------------------------------------------------------------------------------------------

export type MatchKind = 'deb' | 'apk';

export interface EcosystemInfo {
  /** As given. */
  input: string;
  /**
   * The key rows are stored and looked up under: `Debian:12`, `Ubuntu:22.04` (`:LTS` dropped, so
   * `Ubuntu:22.04:LTS` and `Ubuntu:22.04` are the same release), `Ubuntu:Pro:18.04`, `Alpine:v3.19`.
   * Other ecosystems keep their name.
   */
  key: string;
  /** The part before the first `:` — the directory name of OSV's per-ecosystem export. */
  base: string;
  /** Version ordering used to match, or null for ecosystems that are stored but never matched. */
  kind: MatchKind | null;
}

/** Parse an OSV ecosystem string (or an OS detection result in the same form). */
export function parseEcosystem(input: string): EcosystemInfo {
  const s = input.trim();
  const base = s.split(':')[0]!;
  const rest = s.slice(base.length + 1);
  if (/^debian$/i.test(base)) {
    const m = /^(\d+)(?:\.\d+)*$/.exec(rest);
    if (m) return { input, key: `Debian:${m[1]}`, base: 'Debian', kind: 'deb' };
    return { input, key: s, base: 'Debian', kind: null };
  }
  if (/^ubuntu$/i.test(base)) {
    const parts = rest.split(':').filter((p) => p !== '');
    const pro = parts[0]?.toLowerCase() === 'pro';
    const release = pro ? parts.slice(1) : parts;
    const lts = release.length > 0 && release[release.length - 1]!.toUpperCase() === 'LTS';
    const core = lts ? release.slice(0, -1) : release;
    if (core.length >= 1 && /^\d+\.\d+$/.test(core[core.length - 1]!)) {
      return { input, key: ['Ubuntu', ...(pro ? ['Pro'] : []), ...core].join(':'), base: 'Ubuntu', kind: 'deb' };
    }
    return { input, key: s, base: 'Ubuntu', kind: null };
  }
  if (/^alpine$/i.test(base)) {
    const m = /^v?(\d+)\.(\d+)(?:\.\d+)*$/.exec(rest);
    if (m) return { input, key: `Alpine:v${m[1]}.${m[2]}`, base: 'Alpine', kind: 'apk' };
    return { input, key: s, base: 'Alpine', kind: null };
  }
  return { input, key: s, base, kind: null };
}

export function isMatchableEcosystem(ecosystem: string): boolean {
  return parseEcosystem(ecosystem).kind !== null;
}

// ---------------------------------------------------------------------------------------------
// Conversion into stored rows
// ---------------------------------------------------------------------------------------------

/** One row of the `affected` table: an interval, an explicit version list, or a marker. */
export interface AffectedRow {
  package: string;
  /**
   * `range`: introduced ≤ v, and v < fixed / v ≤ last_affected / v < limit when set.
   * `versions`: v is one of `versions`. `not_affected`: the advisory says this package is not
   * affected (Alpine secdb fixed version "0"). `raw`: an ecosystem that is never matched; `data`
   * keeps its ranges as given.
   */
  kind: 'range' | 'versions' | 'not_affected' | 'raw';
  introduced?: string | null;
  fixed?: string | null;
  lastAffected?: string | null;
  limit?: string | null;
  versions?: string[];
  data?: unknown;
  /** Debian urgency / Ubuntu priority for this package, as the vendor wrote it. */
  urgency?: string | null;
}

/** An advisory as stored: one per (id, ecosystem key). */
export interface StoredAdvisory {
  id: string;
  ecosystem: string;
  /** `osv` replaces the whole (id, ecosystem); `alpine-secdb` replaces per package (see store.ts). */
  origin: 'osv' | 'alpine-secdb';
  modified: string | null;
  published: string | null;
  withdrawn: string | null;
  aliases: string[];
  related: string[];
  summary: string | null;
  details: string | null;
  severity: OsvSeverity[];
  /** A plain severity word from database_specific / ecosystem_specific (`HIGH`, `moderate`…). */
  textSeverity: string | null;
  rows: AffectedRow[];
}

/**
 * Turn the ECOSYSTEM ranges of one affected entry into intervals, following the OSV evaluation
 * algorithm: sort the events by version ("0" first), then walk them — `introduced` opens an
 * interval, `fixed` / `last_affected` / `limit` close the open one. A range without any
 * `introduced` event is read as starting at "0"; an interval still open at the end is unfixed.
 */
export function rangeIntervals(kind: MatchKind, events: readonly OsvEvent[]): Array<Pick<AffectedRow, 'introduced' | 'fixed' | 'lastAffected' | 'limit'>> {
  const evs = events.map((e, i) => {
    const key = OSV_EVENT_KEYS.find((k) => e[k] !== undefined)!;
    return { key, v: e[key] as string, i };
  });
  if (!evs.some((e) => e.key === 'introduced')) evs.unshift({ key: 'introduced', v: '0', i: -1 });
  evs.sort((a, b) => {
    const az = a.key === 'introduced' && a.v === '0';
    const bz = b.key === 'introduced' && b.v === '0';
    if (az || bz) return az && bz ? a.i - b.i : az ? -1 : 1;
    return compareVersions(kind, a.v, b.v) || a.i - b.i;
  });
  const out: Array<Pick<AffectedRow, 'introduced' | 'fixed' | 'lastAffected' | 'limit'>> = [];
  let open: string | null = null;
  for (const e of evs) {
    if (e.key === 'introduced') {
      if (open === null) open = e.v;
      continue;
    }
    if (open === null) continue;
    if (e.key === 'fixed') out.push({ introduced: open, fixed: e.v });
    else if (e.key === 'last_affected') out.push({ introduced: open, lastAffected: e.v });
    else out.push({ introduced: open, limit: e.v });
    open = null;
  }
  if (open !== null) out.push({ introduced: open });
  return out;
}

const SEVERITY_WORDS = /^(critical|high|important|moderate|medium|low|negligible|none|unknown)$/i;

function textSeverityOf(obj: Record<string, unknown> | null | undefined): string | null {
  const v = obj?.severity;
  return typeof v === 'string' && SEVERITY_WORDS.test(v.trim()) ? v.trim() : null;
}

function urgencyOf(base: string, a: OsvAffected, record: OsvRecord): string | null {
  if (base === 'Debian') {
    const u = a.ecosystem_specific?.urgency;
    return typeof u === 'string' && u.trim() ? u.trim() : null;
  }
  if (base === 'Ubuntu') {
    const s = a.severity.find((x) => x.type.toLowerCase() === 'ubuntu') ?? record.severity.find((x) => x.type.toLowerCase() === 'ubuntu');
    if (s) return s.score.trim();
    const p = a.ecosystem_specific?.priority ?? a.database_specific?.priority;
    return typeof p === 'string' && p.trim() ? p.trim() : null;
  }
  return null;
}

export interface ConvertOptions {
  /** Keep only affected entries whose ecosystem key passes (mirror updates of one release). */
  ecosystemFilter?: (info: EcosystemInfo) => boolean;
}

/**
 * Split an OSV record into one StoredAdvisory per ecosystem key it affects. Affected entries
 * without a package (e.g. GIT-only) are dropped; non-ECOSYSTEM ranges of matched ecosystems are
 * ignored (distribution records use ECOSYSTEM ranges). An entry with neither ranges nor versions
 * affects nothing we can evaluate and is dropped.
 */
export function toStoredAdvisories(record: OsvRecord, opts: ConvertOptions = {}): StoredAdvisory[] {
  const byKey = new Map<string, StoredAdvisory>();
  let text = textSeverityOf(record.database_specific);
  const extraSeverity: OsvSeverity[] = [];
  for (const a of record.affected) {
    if (!a.package) continue;
    const info = parseEcosystem(a.package.ecosystem);
    if (opts.ecosystemFilter && !opts.ecosystemFilter(info)) continue;
    let adv = byKey.get(info.key);
    if (!adv) {
      adv = {
        id: record.id,
        ecosystem: info.key,
        origin: 'osv',
        modified: record.modified,
        published: record.published ?? null,
        withdrawn: record.withdrawn ?? null,
        aliases: [...new Set([...record.aliases, ...record.upstream])],
        related: record.related,
        summary: record.summary ?? null,
        details: record.details ?? null,
        severity: record.severity.map((s) => ({ type: s.type, score: s.score })),
        textSeverity: null,
        rows: [],
      };
      byKey.set(info.key, adv);
    }
    for (const s of a.severity) {
      if (s.type.toLowerCase() !== 'ubuntu' && !adv.severity.some((x) => x.type === s.type) && !extraSeverity.some((x) => x.type === s.type)) {
        extraSeverity.push({ type: s.type, score: s.score });
      }
    }
    text ??= textSeverityOf(a.database_specific) ?? textSeverityOf(a.ecosystem_specific);
    const name = a.package.name;
    if (info.kind === null) {
      adv.rows.push({ package: name, kind: 'raw', data: { ranges: a.ranges, versions: a.versions } });
      continue;
    }
    const urgency = urgencyOf(info.base, a, record);
    for (const r of a.ranges) {
      if (r.type !== 'ECOSYSTEM') continue;
      for (const iv of rangeIntervals(info.kind, r.events)) adv.rows.push({ package: name, kind: 'range', ...iv, urgency });
    }
    if (a.versions.length) adv.rows.push({ package: name, kind: 'versions', versions: a.versions, urgency });
  }
  const out: StoredAdvisory[] = [];
  for (const adv of byKey.values()) {
    adv.textSeverity = text;
    for (const s of extraSeverity) if (!adv.severity.some((x) => x.type === s.type)) adv.severity.push(s);
    if (adv.rows.length) out.push(adv);
  }
  return out;
}
