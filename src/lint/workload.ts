import { kubesecScore, kubesecRules, type KubesecRuleset } from './kubesec.js';

/**
 * The `workloadSecurity` policy rule: kubesec's score and rules over a workload (Pod, Deployment,
 * StatefulSet, DaemonSet, Job, CronJob, ReplicaSet…). The same function serves `plinth lint`,
 * `plinth check --manifest` and the admission webhook (the pod of the AdmissionReview).
 */
export interface WorkloadSecuritySettings {
  /** The kubesec score must be at least this. */
  minScore?: number | undefined;
  /** kubesec rule IDs that must not match (e.g. Privileged, HostNetwork). */
  forbid?: string[] | undefined;
  /** kubesec rule set: latest (default) or 2.14 (kubesec v2.14.2). */
  ruleset?: KubesecRuleset | undefined;
}

export interface WorkloadVerdict {
  outcome: 'pass' | 'fail' | 'skip';
  reason: string;
  evidence: { object: string; score: number | null; minScore: number | null; critical: string[]; passed: string[]; forbidden: string[] };
}

/** Kinds whose pod spec kubesec scores. */
export const WORKLOAD_KINDS = new Set(['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'ReplicationController']);

export function evaluateWorkload(s: WorkloadSecuritySettings, obj: unknown): WorkloadVerdict {
  const ruleset = s.ruleset ?? 'latest';
  const { report, applied } = kubesecScore(obj, '', ruleset);
  const critical = (report.scoring.critical ?? []).map((r) => r.id);
  const passed = (report.scoring.passed ?? []).map((r) => r.id);
  const matched = applied.filter((a) => a.matches > 0).map((a) => a.rule.id);
  const forbidden = (s.forbid ?? []).filter((id) => matched.includes(id));
  const evidence = { object: report.object, score: applied.length ? report.score : null, minScore: s.minScore ?? null, critical, passed, forbidden };
  if (!applied.length) return { outcome: 'skip', reason: `${report.object}: kubesec does not score this kind`, evidence };
  const problems: string[] = [];
  if (s.minScore !== undefined && report.score < s.minScore) problems.push(`kubesec score ${report.score} is below ${s.minScore}${critical.length ? ` (critical: ${critical.join(', ')})` : ''}`);
  if (forbidden.length) problems.push(`forbidden: ${forbidden.join(', ')}`);
  if (problems.length) return { outcome: 'fail', reason: `${report.object}: ${problems.join('; ')}`, evidence };
  return { outcome: 'pass', reason: `${report.object}: kubesec score ${report.score}${s.minScore !== undefined ? ` (at least ${s.minScore})` : ''}${s.forbid?.length ? `, none of ${s.forbid.join(', ')}` : ''}`, evidence };
}

/** Every kubesec rule ID (both rule sets), for validating `forbid`. */
export function kubesecRuleIds(): string[] {
  return [...new Set([...kubesecRules('latest'), ...kubesecRules('2.14')].map((r) => r.id))];
}

/**
 * The object an AdmissionReview admits, as kubesec sees it: the object itself when kubesec scores
 * its kind; a Pod for a bare pod spec.
 */
export function workloadObject(obj: unknown): unknown {
  return obj;
}
