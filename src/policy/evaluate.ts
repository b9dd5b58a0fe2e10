import type { ImageFacts } from './facts.js';
import { ruleApplies, type PolicyContext } from './match.js';
import { RULES, describeBase, milderMode, type Outcome, type RuleEval } from './rules.js';
import { ruleKind, ruleSettings, type ImagePolicy, type PolicyRule, type RuleKind, type RuleMode } from './schema.js';

/**
 * Judge one image's facts against a policy. Pure: no I/O, no clock (pass `now`). Every rule is
 * listed in the result, applicable or not:
 *
 *   outcome  pass | fail | skip (does not apply, or nothing to judge) | error (a fact is missing)
 *   action   what the result did: deny (enforce), warn, audit (recorded only), none
 *
 * enforce + fail → deny; enforce + error → deny (failurePolicy closed, the default) or warn
 * (failurePolicy open); warn + fail/error → warning; audit + fail/error → audit record. A
 * configured break-glass annotation turns enforce into audit.
 */
export type { Outcome } from './rules.js';
export type Action = 'deny' | 'warn' | 'audit' | 'none';

export interface RuleResult {
  rule: string;
  kind: RuleKind;
  /** The rule's mode as written. */
  mode: RuleMode;
  outcome: Outcome;
  /** What this result did. */
  action: Action;
  /** Why `action` is milder than `mode` implies (break-glass, failurePolicy: open, deprecated: warn). */
  actionNote?: string;
  /** The rule's message (or the kind's default), placeholders filled in. */
  message: string;
  /** Specific to this image: which base, which CVEs, which platform; or why the rule was skipped. */
  reason: string;
  evidence: Record<string, unknown>;
  /** Multi-platform images: the platforms that failed (or errored). */
  platforms?: string[];
}

export interface Decision {
  image: string;
  /** What the image resolved to (when it was resolved). */
  digest: string | null;
  policy: string;
  /** False when any result's action is deny. */
  allowed: boolean;
  results: RuleResult[];
  /** Failures of warn rules (and notices such as break-glass use), phrased for kubectl users. */
  warnings: string[];
  /** Why the image is denied, one line per denying rule. */
  denials: string[];
  /** Failures of audit rules (and enforce failures excused by break-glass): recorded, not shown. */
  audits: string[];
  /** The break-glass annotation that was honoured, if any. */
  breakGlass: { annotation: string; value: string } | null;
}

function fill(template: string, vars: Record<string, string>): string {
  return template.replace(/\{\{\s*([a-z]+)\s*\}\}/g, (m, k: string) => vars[k] ?? m);
}

/** The line shown to a user (kubectl, CI) for a failing result. */
export function resultLine(image: string, r: Pick<RuleResult, 'rule' | 'message' | 'reason'>): string {
  return `[${r.rule}] ${image}: ${r.message} (${r.reason})`;
}

function baseNames(facts: ImageFacts): string {
  const names = [...new Set(facts.platforms.map((p) => (p.provenance?.base ? describeBase(p.provenance.base) : null)).filter((x): x is string => !!x))];
  return names.length ? names.join(', ') : 'unknown';
}

export function evaluate(policy: ImagePolicy, facts: ImageFacts, context: PolicyContext = {}, now: number | Date = Date.now()): Decision {
  const t = typeof now === 'number' ? now : now.getTime();
  const bg = policy.spec.breakGlass;
  const bgValue = bg ? context.annotations?.[bg.annotation] : undefined;
  const breakGlass = bg && typeof bgValue === 'string' && bgValue.trim() !== '' ? { annotation: bg.annotation, value: bgValue } : null;
  const failOpen = policy.spec.failurePolicy === 'open';
  const vars = { image: facts.image, namespace: context.namespace ?? '', base: baseNames(facts) };
  const results: RuleResult[] = [];
  for (const rule of policy.spec.rules) results.push(evaluateRule(rule, facts, context, t, { breakGlass, failOpen, vars }));

  const denials: string[] = [];
  const warnings: string[] = [];
  const audits: string[] = [];
  for (const r of results) {
    const line = resultLine(facts.image, r);
    if (r.action === 'deny') denials.push(line);
    else if (r.action === 'warn') warnings.push(r.actionNote ? `${line} [${r.actionNote}]` : line);
    else if (r.action === 'audit') audits.push(r.actionNote ? `${line} [${r.actionNote}]` : line);
  }
  if (breakGlass) {
    const excused = results.filter((r) => r.mode === 'enforce' && (r.outcome === 'fail' || r.outcome === 'error')).map((r) => r.rule);
    if (excused.length) warnings.unshift(`${facts.image}: break-glass annotation ${breakGlass.annotation}=${breakGlass.value} used; not enforced: ${excused.join(', ')} (recorded for audit)`);
  }
  return { image: facts.image, digest: facts.digest, policy: policy.metadata.name, allowed: denials.length === 0, results, warnings, denials, audits, breakGlass };
}

function evaluateRule(
  rule: PolicyRule,
  facts: ImageFacts,
  context: PolicyContext,
  now: number,
  o: { breakGlass: Decision['breakGlass']; failOpen: boolean; vars: Record<string, string> },
): RuleResult {
  const kind = ruleKind(rule);
  const settings = ruleSettings(rule, kind);
  const def = RULES[kind] as unknown as {
    message(s: unknown): string;
    evaluate(s: unknown, f: ImageFacts, env: { now: number; context: PolicyContext }): RuleEval;
  };
  const message = fill(rule.message ?? def.message(settings), { ...o.vars, rule: rule.name });
  const applies = ruleApplies(rule, facts.image, facts.reference, context);
  if (!applies.applies) return { rule: rule.name, kind, mode: rule.mode, outcome: 'skip', action: 'none', message, reason: `does not apply: ${applies.reason}`, evidence: {} };
  let ev: RuleEval;
  try {
    ev = def.evaluate(settings, facts, { now, context });
  } catch (e) {
    // A bug or hostile facts must not crash the webhook: the rule errors.
    ev = { outcome: 'error', reason: `internal error evaluating the rule: ${(e as Error).message}`, evidence: {} };
  }
  let mode = rule.mode;
  const notes: string[] = [];
  if (ev.mode && milderMode(ev.mode, mode) !== mode) {
    mode = ev.mode;
    notes.push(`${kind} treats this as ${ev.mode}`);
  }
  if (ev.outcome === 'error' && mode === 'enforce' && o.failOpen) {
    mode = 'warn';
    notes.push('failurePolicy: open');
  }
  if (mode === 'enforce' && o.breakGlass) {
    mode = 'audit';
    notes.push(`break-glass ${o.breakGlass.annotation}`);
  }
  const failed = ev.outcome === 'fail' || ev.outcome === 'error';
  const action: Action = !failed ? 'none' : mode === 'enforce' ? 'deny' : mode;
  return {
    rule: rule.name,
    kind,
    mode: rule.mode,
    outcome: ev.outcome,
    action,
    ...(failed && notes.length ? { actionNote: notes.join('; ') } : {}),
    message,
    reason: ev.reason,
    evidence: ev.evidence,
    ...(ev.platforms ? { platforms: ev.platforms } : {}),
  };
}

/** Several images of one request (a pod): denied if any is; warnings and denials in order, once each. */
export function mergeDecisions(decisions: readonly Decision[]): { allowed: boolean; denials: string[]; warnings: string[]; audits: string[] } {
  const uniq = (xs: string[]) => [...new Set(xs)];
  return {
    allowed: decisions.every((d) => d.allowed),
    denials: uniq(decisions.flatMap((d) => d.denials)),
    warnings: uniq(decisions.flatMap((d) => d.warnings)),
    audits: uniq(decisions.flatMap((d) => d.audits)),
  };
}
