/**
 * What `plinth lint` reports: findings with a rule ID (hadolint's DLxxxx, kubesec's rule IDs,
 * Plinth's PLxxx), a severity, and where (file, line, column; 1-based).
 */
export const LINT_SEVERITIES = ['error', 'warning', 'info', 'style'] as const;
export type LintSeverity = (typeof LINT_SEVERITIES)[number];

/** Rank: error is the most severe. `none` as a threshold never fails. */
export const SEVERITY_RANK: Record<LintSeverity | 'none', number> = { error: 3, warning: 2, info: 1, style: 0, none: 99 };

export function atLeast(s: LintSeverity, threshold: LintSeverity | 'none'): boolean {
  return SEVERITY_RANK[s] >= SEVERITY_RANK[threshold];
}

export interface Finding {
  rule: string;
  severity: LintSeverity;
  message: string;
  file: string;
  line: number;
  column: number;
  endLine?: number;
  endColumn?: number;
  /** Kubernetes findings: the object (`Kind/name.namespace`, as kubesec names it). */
  object?: string;
  /** kubesec rules: the points the rule gives. */
  points?: number;
}

export interface RuleInfo {
  id: string;
  /** Short name (SARIF rule name). */
  name: string;
  severity: LintSeverity;
  /** What the rule checks, one sentence. */
  description: string;
  /** Where to read more. */
  helpUri: string;
  /** Which family: hadolint-compatible, kubesec-compatible, or Plinth's own. */
  source: 'hadolint' | 'kubesec' | 'plinth';
}

export type FileKind = 'dockerfile' | 'kubernetes';

export interface FileResult {
  file: string;
  kind: FileKind;
  findings: Finding[];
  /** Kubernetes files: kubesec's report per object. */
  kubesec?: import('./kubesec.js').KubesecReport[];
  /** Input problems that stopped the file from being linted fully (not a YAML, too large…). */
  errors: string[];
  /** Findings silenced by pragmas or configuration. */
  ignored: number;
}
