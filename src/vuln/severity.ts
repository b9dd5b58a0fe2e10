/**
 * Severity: CVSS base scores computed from vectors, and the vendor scales (Debian urgency, Ubuntu
 * priority) mapped onto UNKNOWN / LOW / MEDIUM / HIGH / CRITICAL.
 *
 * CVSS v3.0 / v3.1: the base score formula of the specification (section 7.1 of v3.1), with its
 * Roundup (v3.1 Appendix A, which also is what v3.0's "round up to one decimal" means, without
 * the floating-point errors of a naive ceil). CVSS v2: the v2 base equation. CVSS v4 is not
 * computed (its score comes from a MacroVector lookup table); see chooseSeverity().
 */

export type Severity = 'UNKNOWN' | 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';
export type SeveritySource = 'debian-urgency' | 'ubuntu-priority' | 'cvss_v3' | 'cvss_v2' | 'osv' | 'none';

export const SEVERITY_ORDER: readonly Severity[] = ['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

export interface CvssScore {
  version: '2.0' | '3.0' | '3.1' | '4.0';
  vector: string;
  /** null for CVSS v4 (not computed). */
  score: number | null;
}

/** CVSS v3.1 Roundup: the smallest number with one decimal that is ≥ the input. */
export function roundup(x: number): number {
  const i = Math.round(x * 100000);
  return i % 10000 === 0 ? i / 100000 : (Math.floor(i / 10000) + 1) / 10;
}

const V3 = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  UI: { N: 0.85, R: 0.62 },
  CIA: { H: 0.56, L: 0.22, N: 0 },
} as const;

function parseMetrics(parts: string[], required: readonly string[]): Map<string, string> | undefined {
  const m = new Map<string, string>();
  for (const p of parts) {
    const i = p.indexOf(':');
    if (i <= 0) return undefined;
    const k = p.slice(0, i);
    if (m.has(k)) return undefined;
    m.set(k, p.slice(i + 1));
  }
  for (const k of required) if (!m.has(k)) return undefined;
  return m;
}

/** Base score of a CVSS v3.0/v3.1 vector (`CVSS:3.1/AV:N/…`), or undefined when it is not valid. */
export function cvss3BaseScore(vector: string): { version: '3.0' | '3.1'; score: number } | undefined {
  const parts = vector.trim().split('/');
  const head = /^CVSS:(3\.[01])$/.exec(parts.shift() ?? '');
  if (!head) return undefined;
  const m = parseMetrics(parts, ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A']);
  if (!m) return undefined;
  const S = m.get('S');
  if (S !== 'U' && S !== 'C') return undefined;
  const av = V3.AV[m.get('AV') as keyof typeof V3.AV];
  const ac = V3.AC[m.get('AC') as keyof typeof V3.AC];
  const ui = V3.UI[m.get('UI') as keyof typeof V3.UI];
  const pr = { N: 0.85, L: S === 'C' ? 0.68 : 0.62, H: S === 'C' ? 0.5 : 0.27 }[m.get('PR') as 'N' | 'L' | 'H'];
  const c = V3.CIA[m.get('C') as keyof typeof V3.CIA];
  const i = V3.CIA[m.get('I') as keyof typeof V3.CIA];
  const a = V3.CIA[m.get('A') as keyof typeof V3.CIA];
  if ([av, ac, ui, pr, c, i, a].some((x) => x === undefined)) return undefined;
  const iss = 1 - (1 - c) * (1 - i) * (1 - a);
  const impact = S === 'U' ? 6.42 * iss : 7.52 * (iss - 0.029) - 3.25 * Math.pow(iss - 0.02, 15);
  const exploitability = 8.22 * av * ac * pr * ui;
  let score: number;
  if (impact <= 0) score = 0;
  else if (S === 'U') score = roundup(Math.min(impact + exploitability, 10));
  else score = roundup(Math.min(1.08 * (impact + exploitability), 10));
  return { version: head[1] as '3.0' | '3.1', score };
}

/** Base score of a CVSS v2 vector (`AV:N/AC:L/Au:N/C:P/I:P/A:P`, optionally `(…)`), or undefined. */
export function cvss2BaseScore(vector: string): number | undefined {
  const parts = vector.trim().replace(/^\(|\)$/g, '').replace(/^CVSS:2\.0\//, '').split('/');
  const m = parseMetrics(parts, ['AV', 'AC', 'Au', 'C', 'I', 'A']);
  if (!m) return undefined;
  const av = { L: 0.395, A: 0.646, N: 1.0 }[m.get('AV') as 'L'];
  const ac = { H: 0.35, M: 0.61, L: 0.71 }[m.get('AC') as 'H'];
  const au = { M: 0.45, S: 0.56, N: 0.704 }[m.get('Au') as 'M'];
  const cia = { N: 0, P: 0.275, C: 0.66 };
  const c = cia[m.get('C') as 'N'];
  const i = cia[m.get('I') as 'N'];
  const a = cia[m.get('A') as 'N'];
  if ([av, ac, au, c, i, a].some((x) => x === undefined)) return undefined;
  const impact = 10.41 * (1 - (1 - c) * (1 - i) * (1 - a));
  const exploitability = 20 * av * ac * au;
  const f = impact === 0 ? 0 : 1.176;
  return Math.round((0.6 * impact + 0.4 * exploitability - 1.5) * f * 10 + 1e-9) / 10;
}

/** CVSS v3/v4 qualitative rating (also used for v2 scores): 0 → UNKNOWN (no impact recorded). */
export function severityOfScore(score: number): Severity {
  if (score >= 9) return 'CRITICAL';
  if (score >= 7) return 'HIGH';
  if (score >= 4) return 'MEDIUM';
  if (score > 0) return 'LOW';
  return 'UNKNOWN';
}

/** CVSS v2 rating as NVD publishes it (no CRITICAL in v2). */
function severityOfV2(score: number): Severity {
  if (score >= 7) return 'HIGH';
  if (score >= 4) return 'MEDIUM';
  if (score > 0) return 'LOW';
  return 'UNKNOWN';
}

/**
 * Debian security tracker urgency, as Trivy maps it: unimportant / low → LOW, medium → MEDIUM,
 * high → HIGH (`*`/`**` suffixes ignored); "not yet assigned", "end-of-life" → UNKNOWN.
 */
export function severityOfDebianUrgency(urgency: string | null | undefined): Severity {
  const u = (urgency ?? '').trim().toLowerCase().replace(/\*+$/, '');
  if (u === 'unimportant' || u === 'low') return 'LOW';
  if (u === 'medium') return 'MEDIUM';
  if (u === 'high') return 'HIGH';
  return 'UNKNOWN';
}

/** Ubuntu priority: negligible / low → LOW, medium, high, critical; untriaged → UNKNOWN. */
export function severityOfUbuntuPriority(priority: string | null | undefined): Severity {
  const p = (priority ?? '').trim().toLowerCase();
  if (p === 'negligible' || p === 'low') return 'LOW';
  if (p === 'medium') return 'MEDIUM';
  if (p === 'high') return 'HIGH';
  if (p === 'critical') return 'CRITICAL';
  return 'UNKNOWN';
}

/** A plain severity word (GHSA's `MODERATE`, Red Hat's `important`…). */
export function severityOfWord(word: string | null | undefined): Severity {
  const w = (word ?? '').trim().toLowerCase();
  if (w === 'critical') return 'CRITICAL';
  if (w === 'high' || w === 'important') return 'HIGH';
  if (w === 'medium' || w === 'moderate') return 'MEDIUM';
  if (w === 'low' || w === 'negligible') return 'LOW';
  return 'UNKNOWN';
}

export interface SeverityInput {
  /** The record's severity list ({type, score}). */
  severity: ReadonlyArray<{ type: string; score: string }>;
  /** The vendor word for this package, and which scale it is on. */
  vendor?: { scale: 'debian-urgency' | 'ubuntu-priority'; value: string | null } | undefined;
  /** database_specific / ecosystem_specific severity word. */
  text?: string | null;
}

export interface SeverityResult {
  severity: Severity;
  severitySource: SeveritySource;
  cvss?: CvssScore;
}

const memo = new Map<string, { version: '3.0' | '3.1'; score: number } | null>();

function cvss3Memo(vector: string): { version: '3.0' | '3.1'; score: number } | undefined {
  let r = memo.get(vector);
  if (r === undefined) {
    r = cvss3BaseScore(vector) ?? null;
    if (memo.size > 10000) memo.clear();
    memo.set(vector, r);
  }
  return r ?? undefined;
}

/**
 * Choose a finding's severity, in this order (as Trivy prefers the distribution's own rating for
 * OS packages):
 *   1. the vendor's rating for this package (Debian urgency, Ubuntu priority) when it says more
 *      than "unknown";
 *   2. the CVSS v3.x base score computed from the record's vector (the highest if several);
 *   3. a severity word in database_specific / ecosystem_specific (`osv`) — this is how records
 *      that only carry a CVSS v4 vector get a rating, since v4 scores are not computed here;
 *   4. the CVSS v2 base score;
 *   5. UNKNOWN.
 * `cvss` reports the best vector regardless of which source won (v3 > v2 > v4).
 */
export function chooseSeverity(input: SeverityInput): SeverityResult {
  let v3: CvssScore | undefined;
  let v2: CvssScore | undefined;
  let v4: CvssScore | undefined;
  for (const s of input.severity) {
    const t = s.type.toUpperCase();
    if (t === 'CVSS_V3') {
      const r = cvss3Memo(s.score);
      if (r && (!v3 || (v3.score ?? 0) < r.score)) v3 = { version: r.version, vector: s.score, score: r.score };
    } else if (t === 'CVSS_V2') {
      const r = cvss2BaseScore(s.score);
      if (r !== undefined && (!v2 || (v2.score ?? 0) < r)) v2 = { version: '2.0', vector: s.score, score: r };
    } else if (t === 'CVSS_V4' && !v4 && /^CVSS:4\.0\//.test(s.score.trim())) {
      v4 = { version: '4.0', vector: s.score.trim(), score: null };
    }
  }
  const cvss = v3 ?? v2 ?? v4;
  const withCvss = (r: Omit<SeverityResult, 'cvss'>): SeverityResult => (cvss ? { ...r, cvss } : r);
  if (input.vendor) {
    const sev = input.vendor.scale === 'debian-urgency' ? severityOfDebianUrgency(input.vendor.value) : severityOfUbuntuPriority(input.vendor.value);
    if (sev !== 'UNKNOWN') return withCvss({ severity: sev, severitySource: input.vendor.scale });
  }
  if (v3 && v3.score !== null && v3.score > 0) return withCvss({ severity: severityOfScore(v3.score), severitySource: 'cvss_v3' });
  const word = severityOfWord(input.text);
  if (word !== 'UNKNOWN') return withCvss({ severity: word, severitySource: 'osv' });
  if (v2 && v2.score !== null && v2.score > 0) return withCvss({ severity: severityOfV2(v2.score), severitySource: 'cvss_v2' });
  return withCvss({ severity: 'UNKNOWN', severitySource: 'none' });
}
