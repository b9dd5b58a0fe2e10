/**
 * Match installed packages against the advisory store.
 *
 * As Trivy does for Debian, Ubuntu and Alpine, advisories are looked up by the SOURCE package
 * name (dpkg `Source:`, apk origin) and evaluated against the source version; findings are
 * reported on the binary package. Packages are grouped by source name and each distinct name is
 * one index seek (one prepared statement, reused), so the cost grows with the number of distinct
 * source names, not with the size of the store.
 *
 * Range evaluation follows OSV (ECOSYSTEM ranges, stored as intervals, see osv.ts): a version is
 * affected by an interval when introduced ≤ v ("0" = from the beginning) and v < fixed,
 * v ≤ last_affected, v < limit for whichever are set; or when it equals one of the explicit
 * `versions`. Withdrawn advisories are never read.
 *
 * Status:
 *   fixed         affected, and a fixed version exists (upgrade to `fixedVersion`)
 *   affected      affected, no fix known (`fixedVersion` null)
 *   will_not_fix  affected, no fix, and Debian's urgency is `end-of-life` (the package is no
 *                 longer supported in that release; Trivy reports these as end_of_life)
 *   not_affected  only with `includeNotAffected`: the source says this package is not affected
 *                 (Alpine secdb fixed version "0")
 * Debian `unimportant` is not a status: it is severity LOW (Trivy's mapping) and the finding is
 * `affected` or `fixed` like any other. Severity: see chooseSeverity() in severity.ts.
 */
import { hash } from 'node:crypto';
import { PlinthError } from '../util/errors.js';
import { parseEcosystem, type MatchKind } from './osv.js';
import { chooseSeverity, type CvssScore, type Severity, type SeveritySource, type SeverityResult } from './severity.js';
import type { AdvisoryDetail, CandidateRow, VulnStore } from './store.js';
import { compareVersions } from './version.js';

/** The fields of an inventory package that matching reads (src/packages' Package fits). */
export interface MatchPackage {
  name: string;
  version: string;
  /** Source package name (dpkg Source:, apk origin); defaults to `name`. */
  source?: string;
  /** Source version; defaults to the binary's full version. */
  sourceVersion?: string;
  type: string;
  epoch?: string | number;
  release?: string;
  purl?: string;
  layer?: unknown;
}

export interface MatchOptions {
  /** Drop findings without a fixed version (Trivy's --ignore-unfixed). */
  ignoreUnfixed?: boolean;
  /** Also report explicit "not affected" statements (status not_affected). */
  includeNotAffected?: boolean;
  /**
   * Report one finding per package and CVE when several advisories describe the same CVE (e.g.
   * DSA-5000-1 and DEBIAN-CVE-2024-1234); the other ids go into `aliases`. Default true.
   */
  dedupe?: boolean;
  /**
   * Share lookups and evaluations between calls (the day-2 worker matches a fleet whose images
   * mostly share packages): each (ecosystem, source) is read once and each (ecosystem, source,
   * source version) evaluated once for the whole fleet. Only valid while the advisory store does
   * not change.
   */
  cache?: MatchCache;
}

/** See MatchOptions.cache. */
export class MatchCache {
  /** Candidate rows by (ecosystem, source): the largest part; forgetRows() drops them (evaluations stay). */
  readonly rows = new Map<string, CandidateRow[]>();
  readonly hits = new Map<string, Hit[]>();
  readonly details = new Map<number, AdvisoryDetail>();
  readonly severities = new Map<string, SeverityResult>();
  readonly cves = new Map<number, string | undefined>();
  /** matchStamps(): advisories' detail stamps (null: not in the database), and each (ecosystem, source, version) group's. */
  readonly stamps = new Map<number, string | null>();
  readonly groupStamps = new Map<string, string>();
  lookups = 0;

  /**
   * Drop the candidate rows read so far, keeping what was evaluated from them: a caller that goes
   * through its packages by source name holds the rows of a few sources, not of the whole fleet.
   */
  forgetRows(): void {
    this.rows.clear();
  }
}

export type FindingStatus = 'fixed' | 'affected' | 'will_not_fix' | 'not_affected';

export interface Finding {
  id: string;
  aliases: string[];
  /** The binary package the finding is reported on. */
  package: string;
  /** The source package the advisory names. */
  source: string;
  installedVersion: string;
  /** The version compared (the source version). */
  sourceVersion: string;
  fixedVersion: string | null;
  status: FindingStatus;
  severity: Severity;
  severitySource: SeveritySource;
  cvss?: CvssScore;
  /** Debian urgency / Ubuntu priority as the vendor wrote it. */
  urgency?: string;
  title: string;
  published?: string;
  modified?: string;
  /** The ecosystem key matched (`Debian:12`, `Ubuntu:22.04`, `Alpine:v3.19`). */
  ecosystem: string;
  purl?: string;
  layer?: unknown;
}

/** The version a package manager compares: epoch and release folded in when given separately. */
export function fullVersion(pkg: Pick<MatchPackage, 'version' | 'epoch' | 'release'>): string {
  let v = pkg.version;
  if (pkg.release && !v.endsWith(`-${pkg.release}`)) v = `${v}-${pkg.release}`;
  const e = pkg.epoch;
  if (e !== undefined && e !== null && e !== '' && Number(e) !== 0 && !/^\d+:/.test(v)) v = `${e}:${v}`;
  return v;
}

/** One advisory that applies to one source version. */
export interface Hit {
  advisory: number;
  fixed: string | null;
  urgency: string | null;
  notAffected: boolean;
}

/** Evaluate the candidate rows of one source package against one version. */
export function evaluate(kind: MatchKind, rows: readonly CandidateRow[], v: string): Hit[] {
  const per = new Map<number, { affected: boolean; unfixed: boolean; fixed: string | null; listed: boolean; na: boolean; urgency: string | null; fixes: string[] }>();
  for (const r of rows) {
    let st = per.get(r.advisory);
    if (!st) {
      st = { affected: false, unfixed: false, fixed: null, listed: false, na: false, urgency: null, fixes: [] };
      per.set(r.advisory, st);
    }
    st.urgency ??= r.urgency;
    if (r.kind === 'range') {
      if (r.fixed !== null) st.fixes.push(r.fixed);
      if (r.introduced !== null && r.introduced !== '0' && compareVersions(kind, v, r.introduced) < 0) continue;
      if (r.fixed !== null && compareVersions(kind, v, r.fixed) >= 0) continue;
      if (r.lastAffected !== null && compareVersions(kind, v, r.lastAffected) > 0) continue;
      if (r.limit !== null && compareVersions(kind, v, r.limit) >= 0) continue;
      st.affected = true;
      if (r.fixed === null) st.unfixed = true;
      // Several intervals containing v: the vulnerability is gone only past the last of their fixes.
      else if (st.fixed === null || compareVersions(kind, r.fixed, st.fixed) > 0) st.fixed = r.fixed;
    } else if (r.kind === 'versions') {
      if (r.versions?.some((x) => compareVersions(kind, v, x) === 0)) {
        st.affected = true;
        st.listed = true;
      }
    } else if (r.kind === 'not_affected') {
      st.na = true;
    }
  }
  const out: Hit[] = [];
  for (const [advisory, st] of per) {
    if (st.affected) {
      let fixed = st.unfixed ? null : st.fixed;
      if (fixed === null && st.listed && !st.unfixed) {
        // Listed explicitly and in no interval: the nearest fix above v, if the ranges name one.
        for (const f of st.fixes) if (compareVersions(kind, f, v) > 0 && (fixed === null || compareVersions(kind, f, fixed) < 0)) fixed = f;
      }
      out.push({ advisory, fixed, urgency: st.urgency, notAffected: false });
    } else if (st.na) {
      out.push({ advisory, fixed: null, urgency: st.urgency, notAffected: true });
    }
  }
  return out;
}

function titleOf(d: AdvisoryDetail): string {
  const s = d.summary?.trim();
  if (s) return s;
  const line = d.detailsHead?.trim().split('\n')[0]?.trim();
  if (line) return line.length > 200 ? `${line.slice(0, 199)}…` : line;
  return d.id;
}

const CVE = /^CVE-\d{4}-\d+$/;

/** The one CVE an advisory is about: its id, or the only CVE among its aliases. */
function primaryCve(d: AdvisoryDetail): string | undefined {
  if (CVE.test(d.id)) return d.id;
  let found: string | undefined;
  for (const a of d.aliases) {
    if (!CVE.test(a)) continue;
    if (found !== undefined && found !== a) return undefined;
    found = a;
  }
  return found;
}

/** A matched advisory before it is reported on each binary package of the source. */
interface Proto {
  d: AdvisoryDetail;
  hit: Hit;
  aliases: string[];
  sev: SeverityResult;
  status: FindingStatus;
  cve: string | undefined;
}

function rank(p: Proto): number {
  return (p.sev.severity !== 'UNKNOWN' ? 4 : 0) + (p.hit.fixed !== null ? 2 : 0) + (p.aliases.length <= 1 ? 1 : 0);
}

/**
 * One proto per CVE: when several advisories describe the same CVE for the same package (DSA and
 * DEBIAN-CVE, ALPINE-CVE and a secdb entry), keep the most informative (known severity, a fixed
 * version, fewest aliases, then the smallest id) and list the others' ids among its aliases.
 */
function dedupe(protos: Proto[]): Proto[] {
  if (protos.length < 2) return protos;
  const byCve = new Map<string, Proto>();
  const out: Proto[] = [];
  for (const p of protos) {
    if (!p.cve) {
      out.push(p);
      continue;
    }
    const prev = byCve.get(p.cve);
    if (!prev) {
      byCve.set(p.cve, p);
      continue;
    }
    const [win, lose] = rank(p) > rank(prev) || (rank(p) === rank(prev) && p.d.id < prev.d.id) ? [p, prev] : [prev, p];
    const aliases = new Set([...win.aliases, lose.d.id, ...lose.aliases]);
    aliases.delete(win.d.id);
    byCve.set(p.cve, { ...win, aliases: [...aliases].sort() });
  }
  for (const p of byCve.values()) out.push(p);
  return out;
}

type EcosystemInfo = ReturnType<typeof parseEcosystem> & { kind: MatchKind };

const ecosystems = new Map<string, ReturnType<typeof parseEcosystem>>();

function matchableEcosystem(ecosystem: string): EcosystemInfo {
  let info = ecosystems.get(ecosystem);
  if (!info) {
    info = parseEcosystem(ecosystem);
    if (ecosystems.size < 1000) ecosystems.set(ecosystem, info);
  }
  if (!info.kind) {
    throw new PlinthError('UNSUPPORTED', `matching is not supported for ecosystem "${ecosystem}" (supported: Debian:<N>, Ubuntu:<X.Y>[:LTS], Alpine:v<X.Y>)`);
  }
  return info as EcosystemInfo;
}

/** The packages of one source package and source version, and the advisories that apply to it. */
interface Group {
  source: string;
  sv: string;
  pkgs: Array<{ pkg: MatchPackage; installed: string }>;
  hits: Hit[];
}

/**
 * Packages grouped by source name, then by source version (binaries of one source usually share
 * it); one index seek per distinct source name, each distinct source version evaluated once. Only
 * the groups with hits (as the options filter them), in the packages' order.
 */
function matchedGroups(store: VulnStore, info: EcosystemInfo, packages: readonly MatchPackage[], opts: MatchOptions): Group[] {
  const kind = info.kind;
  const groups = new Map<string, Map<string, Array<{ pkg: MatchPackage; installed: string }>>>();
  for (const pkg of packages) {
    if (pkg.type !== kind) continue;
    const installed = fullVersion(pkg);
    const source = pkg.source?.trim() || pkg.name;
    const sv = pkg.sourceVersion?.trim() || installed;
    let byVersion = groups.get(source);
    if (!byVersion) groups.set(source, (byVersion = new Map()));
    let list = byVersion.get(sv);
    if (!list) byVersion.set(sv, (list = []));
    list.push({ pkg, installed });
  }
  const matched: Group[] = [];
  const cache = opts.cache;
  for (const [source, byVersion] of groups) {
    // Looked up only when a version of it is not evaluated yet.
    let rows: CandidateRow[] | undefined;
    const candidates = (): CandidateRow[] => {
      if (rows) return rows;
      if (!cache) return (rows = store.lookup(info.key, source));
      const k = `${info.key}\u0000${source}`;
      rows = cache.rows.get(k);
      if (!rows) {
        cache.rows.set(k, (rows = store.lookup(info.key, source)));
        cache.lookups++;
      }
      return rows;
    };
    for (const [sv, pkgs] of byVersion) {
      let all: Hit[];
      if (cache) {
        const k = `${info.key}\u0000${source}\u0000${sv}`;
        const got = cache.hits.get(k);
        if (got) all = got;
        else cache.hits.set(k, (all = evaluate(kind, candidates(), sv)));
      } else all = evaluate(kind, candidates(), sv);
      const hits = all.filter((h) => (h.notAffected ? opts.includeNotAffected === true : !(opts.ignoreUnfixed && h.fixed === null)));
      if (hits.length) matched.push({ source, sv, pkgs, hits });
    }
  }
  return matched;
}

/**
 * A stamp of everything the findings of each unit's `packages` (with default options) are made
 * from but the packages themselves: per group with hits, its source, source version, each hit and
 * a stamp of its advisory's stored details (VulnStore.detailStamps, read for all units at once).
 * Equal packages and equal stamps on one Plinth, equal findings — and no finding is built, no
 * detail parsed, to know it: the day-2 re-match builds findings only for the units whose stamp
 * moved. Advisory keys are the database's row ids, so another database gives other stamps (a full
 * comparison, once). null: a unit that cannot be matched (an unsupported ecosystem).
 */
export function matchStamps(store: VulnStore, units: ReadonlyArray<{ ecosystem: string; packages: readonly MatchPackage[] }>, cache: MatchCache): Array<string | null> {
  const matched = units.map((u) => {
    let info: EcosystemInfo;
    try {
      info = matchableEcosystem(u.ecosystem);
    } catch {
      return null;
    }
    return { info, groups: matchedGroups(store, info, u.packages, { cache }) };
  });
  const missing = new Set<number>();
  for (const m of matched) if (m) for (const g of m.groups) for (const h of g.hits) if (!cache.stamps.has(h.advisory)) missing.add(h.advisory);
  if (missing.size) {
    const got = store.detailStamps(missing);
    for (const pk of missing) cache.stamps.set(pk, got.get(pk) ?? null);
  }
  return matched.map((m) => {
    if (!m) return null;
    const parts: string[] = [];
    for (const g of m.groups) {
      const k = `${m.info.key}\u0000${g.source}\u0000${g.sv}`;
      let s = cache.groupStamps.get(k);
      if (s === undefined) {
        const text = g.hits.map((h) => `${h.advisory}\u0001${h.fixed ?? '\u0002'}\u0001${h.urgency ?? '\u0002'}\u0001${h.notAffected ? 1 : 0}\u0001${cache.stamps.get(h.advisory) ?? '\u0002'}`).join('\u0003');
        s = hash('sha256', `${g.source}\u0000${g.sv}\u0000${text}`, 'base64');
        cache.groupStamps.set(k, s);
      }
      parts.push(s);
    }
    return parts.join(',');
  });
}

/**
 * Findings for `packages` installed on `ecosystem` (an OSV ecosystem string as OS detection gives
 * it: `Debian:12`, `Ubuntu:22.04:LTS`, `Alpine:v3.19`). Packages whose type does not fit the
 * ecosystem (an rpm on Debian) are ignored. Throws UNSUPPORTED for ecosystems that are not
 * matched (see isMatchableEcosystem). Findings are sorted by package, then id.
 */
export function matchPackages(store: VulnStore, ecosystem: string, packages: readonly MatchPackage[], opts: MatchOptions = {}): Finding[] {
  const info = matchableEcosystem(ecosystem);
  const vendorScale = info.base === 'Debian' ? 'debian-urgency' : info.base === 'Ubuntu' ? 'ubuntu-priority' : undefined;
  const cache = opts.cache;
  // 1. One index seek per distinct source name; evaluate each distinct source version.
  const matched = matchedGroups(store, info, packages, opts);
  const wanted = new Set<number>();
  for (const g of matched) for (const h of g.hits) wanted.add(h.advisory);

  // 2. The advisories that matched, fetched in batches.
  let details: Map<number, AdvisoryDetail>;
  if (cache) {
    const missing = [...wanted].filter((pk) => !cache.details.has(pk));
    if (missing.length) for (const [pk, d] of store.details(missing)) cache.details.set(pk, d);
    details = cache.details;
  } else details = store.details(wanted);
  const cves = cache?.cves ?? new Map<number, string | undefined>();
  // Keyed by the ecosystem's vendor scale too (a cache shared across ecosystems).
  const severities = cache?.severities ?? new Map<string, SeverityResult>();

  // 3. Findings: per source version, one proto per advisory (deduplicated), then per binary.
  const findings: Finding[] = [];
  for (const { source, sv, pkgs, hits } of matched) {
    let protos: Proto[] = [];
    for (const hit of hits) {
      const d = details.get(hit.advisory);
      if (!d) continue;
      const sevKey = `${hit.advisory}\u0000${hit.urgency ?? ''}\u0000${vendorScale ?? ''}`;
      let sev = severities.get(sevKey);
      if (!sev) {
        sev = chooseSeverity({ severity: d.severity, vendor: vendorScale ? { scale: vendorScale, value: hit.urgency } : undefined, text: d.textSeverity });
        severities.set(sevKey, sev);
      }
      let status: FindingStatus;
      if (hit.notAffected) status = 'not_affected';
      else if (hit.fixed !== null) status = 'fixed';
      else if (info.base === 'Debian' && hit.urgency?.toLowerCase() === 'end-of-life') status = 'will_not_fix';
      else status = 'affected';
      let cve = cves.get(d.pk);
      if (cve === undefined && !cves.has(d.pk)) cves.set(d.pk, (cve = primaryCve(d)));
      protos.push({ d, hit, aliases: d.aliases, sev, status, cve });
    }
    if (opts.dedupe !== false) protos = dedupe(protos);
    for (const p of protos) {
      const title = titleOf(p.d);
      for (const { pkg, installed } of pkgs) {
        const f: Finding = {
          id: p.d.id,
          aliases: p.aliases.slice(),
          package: pkg.name,
          source,
          installedVersion: installed,
          sourceVersion: sv,
          fixedVersion: p.hit.fixed,
          status: p.status,
          severity: p.sev.severity,
          severitySource: p.sev.severitySource,
          title,
          ecosystem: info.key,
        };
        if (p.sev.cvss) f.cvss = p.sev.cvss;
        if (p.hit.urgency) f.urgency = p.hit.urgency;
        if (p.d.published) f.published = p.d.published;
        if (p.d.modified) f.modified = p.d.modified;
        if (pkg.purl) f.purl = pkg.purl;
        if (pkg.layer !== undefined) f.layer = pkg.layer;
        findings.push(f);
      }
    }
  }
  const out = findings;
  return out.sort((a, b) => (a.package < b.package ? -1 : a.package > b.package ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
