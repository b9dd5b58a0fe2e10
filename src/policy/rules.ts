import type { BaseReport } from '../provenance/base.js';
import type { ScanVulnerability } from '../vuln/scan.js';
import { globMatch, baseReference, imagePatternMatches } from './glob.js';
import { expiryTime } from './load.js';
import { imageMatches, type PolicyContext } from './match.js';
import type { FactError, FactNeeds, ImageFacts, PlatformFacts } from './facts.js';
import { SEVERITIES, type RuleKind, type RuleMode, type RuleSettings } from './schema.js';
import { shortDigest } from '../oci/digest.js';
import { keyHint } from '../sign/bundle.js';
import { checkAttestations, checkSignatures } from '../sign/discover.js';
import { parsePublicKey, verifierOf, type Verifier } from '../sign/keys.js';
import { predicateType } from '../sign/payload.js';
import type { KeylessOptions } from '../sign/keyless.js';
// A signatures rule may verify keyless, synchronously, with facts gathered anywhere: load it with the rules.
import '../sign/keyless-verify.js';
import { evaluateWorkload } from '../lint/workload.js';
import { X509Certificate } from 'node:crypto';
import { describeError } from '../util/errors.js';
import { checkNotation, type TrustStores } from '../notation/verify.js';
import { parseTrustPolicy, type TrustPolicy } from '../notation/trustpolicy.js';
import { checkDct } from '../notary/check.js';

/**
 * One entry per rule kind: the facts it needs, its default message and its evaluation. Adding a
 * kind (signatures) is adding an entry here and its schema in schema.ts; `RULES` is typed so the
 * compiler insists on both.
 */
export type Outcome = 'pass' | 'fail' | 'skip' | 'error';

export interface RuleEval {
  outcome: Outcome;
  /** Specific: which base, which CVEs, which platform. */
  reason: string;
  evidence: Record<string, unknown>;
  /** A milder mode for this result than the rule's (allowedBaseImages `deprecated: warn`). */
  mode?: RuleMode;
  /** The platforms that failed (multi-platform images). */
  platforms?: string[];
}

export interface EvalEnv {
  now: number;
  context: PolicyContext;
}

export interface RuleDefinition<K extends RuleKind> {
  needs(s: NonNullable<RuleSettings<K>>): Partial<FactNeeds>;
  message(s: NonNullable<RuleSettings<K>>): string;
  evaluate(s: NonNullable<RuleSettings<K>>, facts: ImageFacts, env: EvalEnv): RuleEval;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const CONFIDENCE_RANK = { low: 0, medium: 1, high: 2 } as const;
const MODE_RANK: Record<RuleMode, number> = { audit: 0, warn: 1, enforce: 2 };

export function milderMode(a: RuleMode, b: RuleMode): RuleMode {
  return MODE_RANK[a] <= MODE_RANK[b] ? a : b;
}


export function describeBase(b: Pick<BaseReport, 'name' | 'tag' | 'digest'>): string {
  return `${b.name ?? '(unnamed)'}${b.tag ? `:${b.tag}` : ''}${b.digest ? `@${shortDigest(b.digest)}` : ''}`;
}

function platformName(p: PlatformFacts): string {
  return p.platform ?? p.digest;
}

function fatal(facts: ImageFacts): FactError | undefined {
  return facts.errors.find((e) => e.fact === 'reference' || (e.fact === 'image' && !e.platform) || (e.fact === 'deadline' && facts.platforms.length === 0));
}

function errorFor(facts: ImageFacts, fact: FactError['fact'], platform: string | null): FactError | undefined {
  return (
    facts.errors.find((e) => e.fact === fact && (!e.platform || e.platform === platform)) ??
    facts.errors.find((e) => e.fact === 'deadline') ??
    facts.errors.find((e) => e.fact === 'image' && (!e.platform || e.platform === platform))
  );
}

function joinReasons(parts: string[]): string {
  return parts.join('; ');
}

/**
 * Run a check on every platform; the rule fails if any platform fails (saying which), errors if
 * none fails but one could not be checked, and passes otherwise.
 */
function perPlatform(facts: ImageFacts, fact: 'provenance' | 'scan' | 'labels', check: (p: PlatformFacts) => RuleEval): RuleEval {
  const f = fatal(facts);
  if (f) return { outcome: 'error', reason: f.message, evidence: { error: f } };
  if (!facts.platforms.length) {
    const e = facts.errors[0];
    return { outcome: 'error', reason: e ? e.message : `no facts were gathered for ${facts.image}`, evidence: {} };
  }
  const multi = facts.platforms.length > 1;
  const evals: Array<{ p: PlatformFacts; r: RuleEval }> = [];
  for (const p of facts.platforms) {
    const missing = fact === 'provenance' ? !p.provenance : fact === 'scan' ? !p.scan : false;
    const labelErr = fact === 'labels' ? facts.errors.find((e) => e.fact === 'image' && e.platform === platformName(p)) : undefined;
    if (missing || labelErr) {
      const e = labelErr ?? errorFor(facts, fact === 'labels' ? 'image' : fact, p.platform);
      evals.push({ p, r: { outcome: 'error', reason: e?.message ?? `the ${fact} of ${platformName(p)} is missing`, evidence: e ? { error: e } : {} } });
      continue;
    }
    evals.push({ p, r: check(p) });
  }
  const pick = (o: Outcome) => evals.filter((x) => x.r.outcome === o);
  const prefix = (x: { p: PlatformFacts; r: RuleEval }) => (multi ? `${platformName(x.p)}: ${x.r.reason}` : x.r.reason);
  const others = (shown: typeof evals) => {
    const rest = evals.filter((x) => !shown.includes(x));
    if (!multi || !rest.length) return '';
    return ` (other platforms: ${rest.slice(0, 4).map((x) => `${platformName(x.p)} ${x.r.outcome}`).join(', ')}${rest.length > 4 ? `, and ${rest.length - 4} more` : ''})`;
  };
  const evidence = multi ? { platforms: Object.fromEntries(evals.map((x) => [platformName(x.p), { outcome: x.r.outcome, ...x.r.evidence }])) } : evals[0]!.r.evidence;
  const fails = pick('fail');
  if (fails.length) {
    // A platform failing outright beats one that only warns: the strictest mode among the failures.
    const strict = fails.some((x) => x.r.mode === undefined) ? undefined : fails.map((x) => x.r.mode!).reduce((a, m) => (MODE_RANK[m] > MODE_RANK[a] ? m : a));
    return {
      outcome: 'fail',
      reason: fails.length === evals.length && new Set(fails.map((x) => x.r.reason)).size === 1 ? `${fails[0]!.r.reason}${multi ? ' (every platform)' : ''}` : joinReasons(fails.map(prefix)) + others(fails),
      evidence,
      ...(strict ? { mode: strict } : {}),
      ...(multi ? { platforms: fails.map((x) => platformName(x.p)) } : {}),
    };
  }
  const errors = pick('error');
  const same = new Set(errors.map((x) => x.r.reason)).size === 1 && errors.length === evals.length;
  if (errors.length) return { outcome: 'error', reason: same ? errors[0]!.r.reason : joinReasons(errors.map(prefix)) + others(errors), evidence, ...(multi ? { platforms: errors.map((x) => platformName(x.p)) } : {}) };
  if (pick('skip').length === evals.length) return { outcome: 'skip', reason: [...new Set(evals.map((x) => x.r.reason))].join('; '), evidence };
  const reasons = [...new Set(evals.filter((x) => x.r.outcome === 'pass').map((x) => x.r.reason))];
  return { outcome: 'pass', reason: reasons.length === 1 ? reasons[0]! : joinReasons(evals.map(prefix)), evidence };
}

function baseEvidence(b: BaseReport | null): Record<string, unknown> {
  if (!b) return { base: null };
  return {
    base: {
      name: b.name,
      tag: b.tag,
      digest: b.digest,
      confidence: b.confidence,
      evidence: b.evidence.map((e) => `${e.kind}: ${e.source}`),
      catalog: b.catalog ? { status: b.catalog.status, line: b.catalog.line, digest: b.catalog.digest } : null,
      ...(b.conflicts.length ? { conflicts: b.conflicts } : {}),
    },
  };
}

function unknownBaseReason(p: PlatformFacts): string {
  const c = p.provenance?.baseCandidates ?? [];
  const used = c.length ? ` (the build used ${c.slice(0, 3).map((x) => describeBase({ name: x.name, tag: x.tag, digest: x.digest })).join(', ')}${c.length > 3 ? ', …' : ''}; none is confirmed as the base)` : '';
  return `the base image is unknown: the image does not declare it, and no base in the catalog matches its layers${used}`;
}

function notRegistry(facts: ImageFacts): RuleEval | undefined {
  const f = facts.errors.find((e) => e.fact === 'reference');
  if (f) return { outcome: 'error', reason: f.message, evidence: { error: f } };
  if (!facts.reference) return { outcome: 'skip', reason: `${facts.image} is not a registry image (${facts.transport ?? 'local'}): there is no registry reference to check`, evidence: {} };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The rules
// ---------------------------------------------------------------------------------------------

const requireBaseImage: RuleDefinition<'requireBaseImage'> = {
  needs: () => ({ provenance: true }),
  message: () =>
    'Images must specify a source/base image from which they are built. Build the image with a builder that records its base (docker buildx, ko, buildpacks, or the org.opencontainers.image.base.name and .base.digest annotations), or ask the platform team to add the base to the catalog.',
  evaluate: (s, facts) =>
    perPlatform(facts, 'provenance', (p) => {
      const b = p.provenance!.base;
      if (!b) return { outcome: 'fail', reason: unknownBaseReason(p), evidence: { base: null, candidates: p.provenance!.baseCandidates } };
      const ev = baseEvidence(b);
      const min = s.minConfidence ?? 'low';
      if (s.declared && b.evidence.every((e) => e.kind === 'fingerprint')) {
        return { outcome: 'fail', reason: `the base ${describeBase(b)} was only recognised by its layers; the image does not declare it`, evidence: ev };
      }
      if (s.requireDigest && !b.digest) return { outcome: 'fail', reason: `the base ${describeBase(b)} is named without a digest`, evidence: ev };
      if (CONFIDENCE_RANK[b.confidence] < CONFIDENCE_RANK[min]) {
        return { outcome: 'fail', reason: `the base ${describeBase(b)} is identified with ${b.confidence} confidence (at least ${min} is required)${b.conflicts.length ? `: ${b.conflicts[0]}` : ''}`, evidence: ev };
      }
      return { outcome: 'pass', reason: `base ${describeBase(b)} (${b.confidence} confidence, from ${[...new Set(b.evidence.map((e) => e.kind))].join(', ')})`, evidence: ev };
    }),
};

const allowedBaseImages: RuleDefinition<'allowedBaseImages'> = {
  needs: (s) => ({ provenance: true, ...(s.minConfidence === undefined ? { verifyBase: true } : {}) }),
  message: () =>
    "This container image's base is not in the approved list or is not specified. Only pre-approved base images may be used. Please contact the platform team for assistance.",
  evaluate: (s, facts, env) =>
    perPlatform(facts, 'provenance', (p) => {
      const prov = p.provenance!;
      const b = prov.base;
      if (!b) return { outcome: 'fail', reason: unknownBaseReason(p), evidence: { base: null } };
      const ev = baseEvidence(b);
      // Default: the base must be confirmed by layers (its layers are the image's first layers,
      // from the catalog or its registry). A declared name and digest alone can be forged by
      // whoever builds the image; an explicit minConfidence accepts weaker evidence.
      const unconfirmed = s.minConfidence === undefined ? !b.verified : CONFIDENCE_RANK[b.confidence] < CONFIDENCE_RANK[s.minConfidence];
      if (unconfirmed) {
        // Could not check (registry unreachable, rate limited, no credentials): an error, which the
        // failure policy governs and which is not cached, rather than a denial.
        const lookup = s.minConfidence === undefined ? facts.errors.find((e) => e.fact === 'base-lookup' && (!e.platform || e.platform === platformName(p))) : undefined;
        if (lookup) return { outcome: 'error', reason: `the base ${describeBase(b)} could not be checked: ${lookup.message}`, evidence: ev };
        const why = b.conflicts[0] ?? (!b.digest ? 'no digest' : b.layers.base === null ? "its layers could not be checked against the image's: it is not in the catalog and its registry could not be read" : "only its metadata names it; no catalog entry or registry lookup confirmed it by its layers");
        return {
          outcome: 'fail',
          reason: `the base ${describeBase(b)} is only claimed, not confirmed (${b.confidence} confidence${why ? `${b.conflicts[0] ? ': ' : '; '}${why}` : ''})`,
          evidence: ev,
        };
      }
      const status = b.catalog?.status ?? null;
      const newest = prov.upToDate.newestApproved;
      const successor = b.catalog?.successor;
      const rebuild = successor ? `; its successor is ${successor}` : newest ? `; rebuild on ${newest.name}${newest.tag ? `:${newest.tag}` : ''}@${shortDigest(newest.digest)}` : '';
      const why = b.catalog?.reason ? ` (${b.catalog.reason})` : '';
      const deprecated = status === 'deprecated' ? (s.deprecated ?? 'deny') : undefined;
      if (deprecated === 'deny') return { outcome: 'fail', reason: `the base ${describeBase(b)} is deprecated in the catalog${why}${rebuild}`, evidence: ev };
      // A superseded base (a newer version of its line is approved) stays allowed for a grace period.
      let graceLeft: string | undefined;
      if (status === 'superseded' && s.catalogApproved) {
        const grace = (s.supersededGraceDays ?? 30) * 86_400_000;
        const since = Date.parse(b.catalog?.supersededAt ?? '');
        const until = Number.isNaN(since) ? NaN : since + grace;
        if (Number.isNaN(until) || env.now >= until) {
          return { outcome: 'fail', reason: `the base ${describeBase(b)} was superseded${Number.isNaN(since) ? '' : ` on ${new Date(since).toISOString().slice(0, 10)}`} and its grace period of ${s.supersededGraceDays ?? 30} day(s) is over${rebuild}`, evidence: ev };
        }
        graceLeft = new Date(until).toISOString().slice(0, 10);
      }
      // A tag that does not point at the base's digest (checked in its registry) is only claimed:
      // patterns are matched without it.
      const ref = b.name ? baseReference(b.name, b.tagVerified === false ? null : b.tag, b.digest) : null;
      const matched = s.images && ref ? s.images.find((pat) => imagePatternMatches(pat, ref, [b.catalog?.digest])) : s.images?.find((pat) => pat === b.digest || pat === b.catalog?.digest);
      const listOk = s.images ? matched !== undefined : undefined;
      const catOk = s.catalogApproved ? status === 'approved' || graceLeft !== undefined || (status === 'deprecated' && deprecated !== undefined) : undefined;
      const checks = [listOk, catOk].filter((x): x is boolean => x !== undefined);
      const ok = s.requireBoth ? checks.every(Boolean) : checks.some(Boolean);
      if (!ok) {
        const why: string[] = [];
        if (s.catalogApproved && !catOk) why.push(status ? `it is ${status} in the catalog, not approved` : 'it is not in the catalog');
        if (s.images && !listOk) why.push(`it matches none of ${s.images.join(', ')}`);
        return { outcome: 'fail', reason: `the base ${describeBase(b)} is not approved: ${why.join(s.requireBoth ? ', and ' : ' and ')}`, evidence: ev };
      }
      const how = [catOk ? `${status} in the catalog` : '', listOk ? `matches ${matched}` : ''].filter(Boolean).join(' and ');
      if (deprecated === 'warn') {
        return { outcome: 'fail', mode: 'warn', reason: `the base ${describeBase(b)} is allowed but deprecated in the catalog${why}${rebuild}`, evidence: ev };
      }
      if (graceLeft !== undefined && !listOk) {
        return { outcome: 'fail', mode: 'warn', reason: `the base ${describeBase(b)} is superseded and allowed until ${graceLeft}${rebuild}`, evidence: ev };
      }
      return { outcome: 'pass', reason: `base ${describeBase(b)} is allowed (${how})`, evidence: ev };
    }),
};

/** The first allowedRegistries pattern a reference matches: with "/" over registry/repository, without over the registry. */
export function registryMatch(patterns: readonly string[], ref: { name: string; registry: string }): string | undefined {
  return patterns.find((p) => (p.includes('/') ? globMatch(p, ref.name) : globMatch(p, ref.registry)));
}

const allowedRegistries: RuleDefinition<'allowedRegistries'> = {
  needs: () => ({}),
  message: (s) => `Images may only come from approved registries (${s.registries.join(', ')}). Push the image to one of them, or ask the platform team to allow its registry.`,
  evaluate: (s, facts) => {
    const n = notRegistry(facts);
    if (n) return n;
    const ref = facts.reference!;
    const hit = registryMatch(s.registries, ref);
    const evidence = { registry: ref.registry, repository: ref.repository, allowed: s.registries };
    if (hit) return { outcome: 'pass', reason: `${ref.name} matches ${hit}`, evidence: { ...evidence, matched: hit } };
    return { outcome: 'fail', reason: `${ref.name} is not in an allowed registry (${s.registries.join(', ')})`, evidence };
  },
};

const imageReferences: RuleDefinition<'imageReferences'> = {
  needs: () => ({}),
  message: (s) =>
    s.requireDigest
      ? 'Images must be referenced by digest (name@sha256:…), so that the image that runs is the image that was checked. Pin the reference: `plinth digest IMAGE` prints the digest.'
      : 'The "latest" tag is not allowed: it changes under you. Use a version tag or a digest.',
  evaluate: (s, facts, env) => {
    const n = notRegistry(facts);
    if (n) return n;
    const ref = facts.reference!;
    const shown = ref.tagDefaulted && !ref.digest ? ref.familiar.replace(/:latest$/, '') : ref.familiar;
    const evidence = { reference: ref.string, tag: ref.tag ?? null, tagDefaulted: ref.tagDefaulted, digest: ref.digest ?? null, resolvedDigest: facts.digest };
    const problems: string[] = [];
    let pinnedNote = '';
    if (s.requireDigest && !ref.digest) {
      if (env.context.pinning && facts.digest) pinnedNote = `the tag will be pinned to ${facts.digest}`;
      else problems.push(`${shown} has no digest${facts.digest ? ` (use ${ref.name}@${facts.digest})` : ''}`);
    }
    if (s.forbidLatest && !ref.digest && ref.tag === 'latest') {
      problems.push(ref.tagDefaulted ? `${shown} has no tag, which means "latest"` : `${shown} uses the tag "latest"`);
    }
    if (problems.length) return { outcome: 'fail', reason: joinReasons(problems), evidence };
    const ok: string[] = [];
    if (ref.digest) ok.push(`pinned to ${shortDigest(ref.digest)}`);
    if (pinnedNote) ok.push(pinnedNote);
    if (s.forbidLatest && !ref.digest) ok.push(`tag ${ref.tag}`);
    return { outcome: 'pass', reason: `${shown}: ${ok.join(', ')}`, evidence };
  },
};

const baseFreshness: RuleDefinition<'baseFreshness'> = {
  needs: (s) => ({ provenance: true, ...(s.tagNotMoved ? { registryCheck: true } : {}) }),
  message: () => "This image's base image is out of date. Rebuild the image on the newest approved version of its base.",
  evaluate: (s, facts, env) =>
    perPlatform(facts, 'provenance', (p) => {
      const prov = p.provenance!;
      const b = prov.base;
      if (!b) return { outcome: 'skip', reason: 'the base image is unknown, so its freshness cannot be judged (requireBaseImage / allowedBaseImages decide about unknown bases)', evidence: { base: null } };
      const u = prov.upToDate;
      const fails: string[] = [];
      const passes: string[] = [];
      const errors: string[] = [];
      const evidence: Record<string, unknown> = { ...baseEvidence(b), upToDate: u };
      if (s.newestApproved) {
        const n = u.newestApproved;
        if (u.isNewestApproved === true) passes.push(`the newest approved version of ${u.line}`);
        else if (n) fails.push(`the base ${describeBase(b)} is not the newest approved version of ${u.line}: that is ${n.name}${n.tag ? `:${n.tag}` : ''}@${shortDigest(n.digest)}${n.created ? ` (${n.created.slice(0, 10)})` : ''}`);
        else fails.push(`the base ${describeBase(b)} ${b.catalog ? `has no approved version in its line ${u.line}` : 'is not in the catalog, so it cannot be the newest approved version of its line'}`);
      }
      if (s.maxAgeDays !== undefined) {
        const created = b.catalog?.created ? Date.parse(b.catalog.created) : NaN;
        if (Number.isNaN(created) || created <= 0) fails.push(`the age of the base ${describeBase(b)} is unknown (${b.catalog ? 'the catalog has no creation time for it' : 'it is not in the catalog'})`);
        else {
          const age = Math.floor((env.now - created) / 86_400_000);
          evidence.baseAgeDays = age;
          if (age > s.maxAgeDays) fails.push(`the base ${describeBase(b)} is ${age} days old (created ${b.catalog!.created!.slice(0, 10)}); at most ${s.maxAgeDays} are allowed`);
          else passes.push(`${age} days old (at most ${s.maxAgeDays})`);
        }
      }
      if (s.tagNotMoved) {
        const m = u.baseTagMoved;
        if (m?.moved) fails.push(`the base tag ${m.tag} has moved: it now points at ${shortDigest(m.now)}, the image was built on ${shortDigest(m.was)}`);
        else if (m) passes.push(`tag ${m.tag} still points at the base`);
        else if (!b.tag || !b.digest || !b.name) passes.push('the base is not declared with both a tag and a digest, so there is no tag to check');
        else {
          const e = facts.errors.find((x) => x.fact === 'registry-check' && (!x.platform || x.platform === p.platform));
          errors.push(e?.message ?? `the tag ${b.name}:${b.tag} was not checked in the registry`);
        }
      }
      if (fails.length) return { outcome: 'fail', reason: joinReasons(fails), evidence };
      if (errors.length) return { outcome: 'error', reason: joinReasons(errors), evidence };
      return { outcome: 'pass', reason: `base ${describeBase(b)}: ${passes.join('; ')}`, evidence };
    }),
};

function severityRank(s: string): number {
  return (SEVERITIES as readonly string[]).indexOf(s);
}

function fmtVuln(v: ScanVulnerability): string {
  return `${v.id} (${v.severity}, ${v.package} ${v.installedVersion}${v.fixedVersion ? ` → ${v.fixedVersion}` : ', no fix'}${v.origin ? `, from the ${v.origin === 'base' ? 'base' : 'image'}` : ''})`;
}

const vulnerabilities: RuleDefinition<'vulnerabilities'> = {
  needs: () => ({ scan: true }),
  message: (s) =>
    `This image has known vulnerabilities of severity ${s.severity} or higher${s.ignoreUnfixed ? ' that have a fix' : ''}. Update the affected packages or rebuild on a patched base; an accepted risk needs an exception with a reason and an expiry date.`,
  evaluate: (s, facts, env) =>
    perPlatform(facts, 'scan', (p) => {
      const scan = p.scan!;
      const threshold = severityRank(s.severity);
      const origin = s.origin ?? 'any';
      const relevant = scan.vulnerabilities.filter(
        (v) => v.status !== 'not_affected' && severityRank(v.severity) >= threshold && (!s.ignoreUnfixed || v.fixedVersion) && (origin === 'any' || v.origin === origin),
      );
      const open: ScanVulnerability[] = [];
      const excused: Array<{ id: string; package: string; reason: string; expires: string | null }> = [];
      const expired = new Map<string, string>();
      for (const v of relevant) {
        const candidates = (s.exceptions ?? []).filter((x) => (x.id === v.id || v.aliases.includes(x.id)) && (!x.images || imageMatches(x.images, facts.image, facts.reference)));
        const valid = candidates.find((x) => x.expires === undefined || (expiryTime(x.expires) ?? 0) > env.now);
        if (valid) excused.push({ id: v.id, package: v.package, reason: valid.reason, expires: valid.expires ?? null });
        else {
          for (const x of candidates) expired.set(x.id, x.expires!);
          open.push(v);
        }
      }
      const evidence = {
        severity: s.severity,
        ignoreUnfixed: s.ignoreUnfixed ?? false,
        db: facts.scanDb,
        os: scan.os,
        packages: scan.packages,
        vulnerabilities: open.map((v) => ({ id: v.id, aliases: v.aliases, package: v.package, installedVersion: v.installedVersion, fixedVersion: v.fixedVersion, severity: v.severity, status: v.status, origin: v.origin })),
        excused,
        expiredExceptions: [...expired].map(([id, expires]) => ({ id, expires })),
        notes: scan.notes,
      };
      const expiredNote = expired.size ? `; expired exception(s): ${[...expired].map(([id, d]) => `${id} (expired ${d})`).join(', ')}` : '';
      if (open.length) {
        const ids = [...new Set(open.map((v) => v.id))];
        const shown = open.slice(0, 5).map(fmtVuln).join(', ');
        return {
          outcome: 'fail',
          reason: `${ids.length} vulnerabilit${ids.length === 1 ? 'y' : 'ies'} of severity ${s.severity} or higher${s.ignoreUnfixed ? ' with a fix' : ''}: ${shown}${open.length > 5 ? `, and ${open.length - 5} more` : ''}${expiredNote}`,
          evidence,
        };
      }
      const note = !scan.ecosystem ? ` (${scan.notes[scan.notes.length - 1] ?? 'no OS packages Plinth can match'})` : '';
      return {
        outcome: 'pass',
        reason: `no vulnerabilities of severity ${s.severity} or higher${s.ignoreUnfixed ? ' with a fix' : ''}${excused.length ? ` (${excused.length} excused by exceptions: ${[...new Set(excused.map((x) => x.id))].join(', ')})` : ''}${note}`,
        evidence,
      };
    }),
};

const requiredLabels: RuleDefinition<'requiredLabels'> = {
  needs: () => ({ labels: true }),
  message: (s) =>
    `Images must carry the label${s.labels.length > 1 ? 's' : ''} ${s.labels.map((l) => (l.value ? `${l.key}=${l.value}` : l.key)).join(', ')}. Add ${s.labels.length > 1 ? 'them' : 'it'} when building the image (LABEL in the Dockerfile, docker build --label, or an annotation).`,
  evaluate: (s, facts) =>
    perPlatform(facts, 'labels', (p) => {
      const useAnn = s.annotations ?? true;
      const problems: string[] = [];
      const found: Record<string, string> = {};
      for (const l of s.labels) {
        const v = p.labels[l.key] || (useAnn ? p.annotations[l.key] : undefined);
        if (!v) problems.push(`label ${l.key} is missing`);
        else if (l.value !== undefined && !globMatch(l.value, v)) problems.push(`label ${l.key}="${v.slice(0, 200)}" does not match ${l.value}`);
        else found[l.key] = v;
      }
      const evidence = { required: s.labels, found };
      if (problems.length) return { outcome: 'fail', reason: joinReasons(problems), evidence };
      return { outcome: 'pass', reason: Object.entries(found).map(([k, v]) => `${k}=${v.slice(0, 100)}`).join(', '), evidence };
    }),
};

/** Verifiers for PEM keys, parsed once (policies are loaded once and evaluated often). */
const verifierCache = new Map<string, Verifier>();
function verifiersFor(pems: readonly string[]): Verifier[] {
  return pems.map((pem, i) => {
    let v = verifierCache.get(pem);
    if (!v) {
      const key = parsePublicKey(pem, `key ${i + 1}`);
      const fp = keyHint(key).slice(0, 12);
      const file = /^# (.+)\n/.exec(pem)?.[1];
      v = verifierOf(key, file ? `${file} (sha256 ${fp}…)` : `key ${i + 1} (sha256 ${fp}…)`);
      if (verifierCache.size > 1000) verifierCache.clear();
      verifierCache.set(pem, v);
    }
    return v;
  });
}

/** Keyless options per rule entry (trusted roots parsed once per policy text). */
const rootCache = new Map<string, unknown>();
function keylessFor(s: NonNullable<RuleSettings<'signatures'>>): Array<{ label: string; opts: KeylessOptions }> {
  let root: unknown;
  if (s.trustedRoot) {
    root = rootCache.get(s.trustedRoot);
    if (root === undefined) {
      root = JSON.parse(s.trustedRoot);
      if (rootCache.size > 100) rootCache.clear();
      rootCache.set(s.trustedRoot, root);
    }
  }
  return (s.keyless ?? []).map((k) => ({
    label: `${k.identity ?? `/${k.identityRegExp}/`} (issuer ${k.issuer ?? `/${k.issuerRegExp}/`})`,
    opts: {
      identity: k.identity ?? new RegExp(k.identityRegExp!),
      issuer: k.issuer ?? new RegExp(k.issuerRegExp!),
      ...(root !== undefined ? { trustedRoot: root } : {}),
      ...(s.ignoreSct ? { ignoreSct: true } : {}),
    },
  }));
}

/** The trust configuration of a notaryV1 verifier as a key: facts hold one answer per key. */
export function dctConfigKey(c: { server?: string; trustDir?: string; rootKeys?: string[] }): string {
  return JSON.stringify({ server: c.server ?? null, trustDir: c.trustDir ?? null, rootKeys: c.rootKeys ?? [] });
}

/** Notation trust policies and stores (text from the policy loader), parsed once. */
const notationCache = new Map<string, { policy: TrustPolicy; stores: TrustStores }>();
function notationFor(n: { trustPolicy: string; trustStore: string }): { policy: TrustPolicy; stores: TrustStores } {
  const k = `${n.trustPolicy}\u0000${n.trustStore}`;
  let v = notationCache.get(k);
  if (!v) {
    const stores: TrustStores = new Map();
    for (const [name, pems] of Object.entries(JSON.parse(n.trustStore) as Record<string, string[]>)) stores.set(name, pems.map((p) => new X509Certificate(p)));
    v = { policy: parseTrustPolicy(JSON.parse(n.trustPolicy)), stores };
    if (notationCache.size > 100) notationCache.clear();
    notationCache.set(k, v);
  }
  return v;
}

interface OtherCheck {
  format: 'dct' | 'notation';
  source: string;
  verified: boolean;
  reason: string;
  /** Could not be looked up (not a verdict). */
  lookup?: boolean;
}

/** The Docker Content Trust and notation verifiers of a signatures rule: their checks and verified signer labels. */
function otherVerifiers(s: NonNullable<RuleSettings<'signatures'>>, facts: ImageFacts, digest: string, now: number): { checks: OtherCheck[]; signers: string[]; labels: string[] } {
  const checks: OtherCheck[] = [];
  const signers: string[] = [];
  const labels: string[] = [];
  if (s.notaryV1) {
    labels.push('Docker Content Trust');
    const key = dctConfigKey(s.notaryV1);
    const fact = facts.dct?.[key];
    if (!fact) checks.push({ format: 'dct', source: facts.reference?.name ?? facts.image, verified: false, reason: 'the Docker Content Trust data was not looked up', lookup: true });
    else if ('error' in fact) checks.push({ format: 'dct', source: facts.reference?.name ?? facts.image, verified: false, reason: fact.error, lookup: fact.lookup });
    else {
      const tag = facts.reference?.digest ? undefined : facts.reference?.tag;
      const c = checkDct(fact.trust, tag, digest, facts.size ?? -1, s.notaryV1.roles);
      checks.push({ format: 'dct', source: c.source, verified: c.verified, reason: c.reason });
      if (c.verified) signers.push('Docker Content Trust');
    }
  }
  if (s.notation) {
    labels.push('notation');
    const name = facts.reference?.name ?? facts.image;
    if (!facts.notation) checks.push({ format: 'notation', source: name, verified: false, reason: 'the notation signatures were not looked up', lookup: true });
    else {
      try {
        const { policy, stores } = notationFor(s.notation);
        const r = checkNotation(facts.notation, { name, digest, size: facts.size ?? -1 }, { policy, stores, now: new Date(now) });
        if (r.skipped) checks.push({ format: 'notation', source: name, verified: true, reason: `trust policy "${r.policy}" has the skip level` });
        for (const c of r.signatures) checks.push({ format: 'notation', source: c.source, verified: c.verified, reason: c.reason });
        if (r.verified) signers.push('notation');
      } catch (e) {
        checks.push({ format: 'notation', source: name, verified: false, reason: describeError(e) });
      }
    }
  }
  return { checks, signers, labels };
}

const signatures: RuleDefinition<'signatures'> = {
  needs: (s) => ({ signatures: !!(s.keys || s.keyless), ...(s.notation ? { notation: true } : {}), ...(s.notaryV1 ? { dct: [dctConfigKey(s.notaryV1)] } : {}) }),
  message: (s) =>
    `This image must be signed${(s.count ?? 1) > 1 ? ` by at least ${s.count} of the approved signers` : ' by an approved signer'}${s.attestations?.length ? ` and carry verified ${s.attestations.map((a) => a.type).join(', ')} attestation(s)` : ''}. ${[...(s.keys || s.keyless ? ['Sign its digest with cosign or plinth sign'] : []), ...(s.notaryV1 ? ['sign its tag with Docker Content Trust (docker trust sign, notary addhash)'] : []), ...(s.notation ? ['sign it with notation sign'] : [])].join('; ').replace(/^s/, 'S')} (plinth verify shows what was found).`,
  evaluate: (s, facts, env) => {
    const nr = notRegistry(facts);
    if (nr) return nr;
    const err = facts.errors.find((e) => e.fact === 'signatures') ?? facts.errors.find((e) => e.fact === 'deadline') ?? facts.errors.find((e) => e.fact === 'image' && !e.platform);
    const cosign = !!(s.keys || s.keyless);
    if (!facts.digest || (cosign && !facts.signatures)) return { outcome: 'error', reason: err?.message ?? `the signatures of ${facts.image} were not looked up`, evidence: err ? { error: err } : {} };
    const digest = facts.digest;
    const materials = facts.signatures ?? [];
    const keys = verifiersFor(s.keys ?? []);
    const keyless = keylessFor(s);
    const checks = keys.length ? checkSignatures(materials, digest, keys, s.annotations ?? {}) : [];
    const signers = new Set(checks.filter((c) => c.verified).map((c) => c.key!));
    const keylessChecks = keyless.map((k) => ({ label: k.label, checks: checkSignatures(materials, digest, [], s.annotations ?? {}, k.opts) }));
    for (const k of keylessChecks) if (k.checks.some((c) => c.verified)) signers.add(k.label);
    const other = otherVerifiers(s, facts, digest, env.now);
    for (const o of other.signers) signers.add(o);
    const all: Array<{ format: string; source: string; verified: boolean; key?: string; reason: string }> = [...checks, ...keylessChecks.flatMap((k) => k.checks), ...other.checks];
    const need = s.count ?? 1;
    const evidence: Record<string, unknown> = {
      digest,
      required: need,
      signers: [...signers],
      signatures: all.map((c) => ({ format: c.format, source: c.source, verified: c.verified, key: c.key ?? null, reason: c.reason })),
    };
    const problems: string[] = [];
    if (signers.size < need) {
      const missing = [...keys.map((k) => k.ref), ...keyless.map((k) => k.label), ...other.labels].filter((r) => !signers.has(r));
      const lookup = other.checks.find((c) => c.lookup);
      if (lookup) return { outcome: 'error', reason: `${lookup.format === 'dct' ? 'Docker Content Trust' : 'notation'}: ${lookup.reason}`, evidence: { ...evidence, ...(err ? { error: err } : {}) } };
      const seen = all.length ? `; found ${all.length} signature check(s): ${[...new Set(all.filter((c) => !c.verified).map((c) => c.reason))].slice(0, 3).join('; ')}` : '; it has no signatures';
      problems.push(`${digest} is signed by ${signers.size} of the required ${need} signer(s) (missing: ${missing.slice(0, 5).join(', ')})${seen}`);
    }
    const atts: Array<{ type: string; verified: boolean; key: string | null }> = [];
    for (const a of s.attestations ?? []) {
      const type = predicateType(a.type);
      const found = a.keys
        ? checkAttestations(materials, digest, verifiersFor(a.keys), type)
        : [...(keys.length ? checkAttestations(materials, digest, keys, type) : []), ...keyless.flatMap((k) => checkAttestations(materials, digest, [], type, k.opts))];
      const ok = found.find((x) => x.verified);
      atts.push({ type, verified: !!ok, key: ok?.key ?? null });
      if (!ok) problems.push(`no verified ${a.type} attestation (${type})${found.length ? `: ${found[0]!.reason}` : ''}`);
    }
    if (atts.length) evidence.attestations = atts;
    if (problems.length) return { outcome: 'fail', reason: joinReasons(problems), evidence };
    return { outcome: 'pass', reason: `signed by ${[...signers].join(', ')}${atts.length ? `; attestations ${atts.map((a) => a.type).join(', ')} verified` : ''}`, evidence };
  },
};

const workloadSecurity: RuleDefinition<'workloadSecurity'> = {
  needs: () => ({}),
  message: (s) =>
    `The workload must be securely configured${s.minScore !== undefined ? ` (kubesec score at least ${s.minScore})` : ''}${s.forbid ? `${s.minScore !== undefined ? ' and' : ''} without ${s.forbid.join(', ')}` : ''}. Run \`plinth lint --format kubesec\` on the manifest to see what to change.`,
  evaluate: (s, _facts, env) => {
    if (env.context.workload === undefined) return { outcome: 'skip', reason: 'no workload to judge (an image alone; plinth check --manifest FILE gives one)', evidence: {} };
    const v = evaluateWorkload(s, env.context.workload);
    return { outcome: v.outcome, reason: v.reason, evidence: v.evidence };
  },
};

export const RULES: { [K in RuleKind]: RuleDefinition<K> } = {
  workloadSecurity,
  signatures,
  requireBaseImage,
  allowedBaseImages,
  allowedRegistries,
  imageReferences,
  baseFreshness,
  vulnerabilities,
  requiredLabels,
};

