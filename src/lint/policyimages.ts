import type { ImageReference } from '../oci/reference.js';
import { ruleApplies } from '../policy/match.js';
import { registryMatch } from '../policy/rules.js';
import type { ImagePolicy, RuleMode } from '../policy/schema.js';
import type { LintSeverity } from './types.js';

/**
 * The image checks a policy file asks for that need nothing but the reference (the same rules
 * `plinth check` and the webhook enforce): allowedRegistries, imageReferences.requireDigest and
 * imageReferences.forbidLatest. A rule's match.images / excludeImages are honoured; namespace and
 * label conditions are not known to a linter, so the rule applies.
 */
export interface PolicyImageProblem {
  kind: 'registry' | 'digest' | 'latest';
  severity: LintSeverity;
  /** The policy rule's name. */
  rule: string;
  message: string;
}

export function modeSeverity(mode: RuleMode): LintSeverity {
  return mode === 'enforce' ? 'error' : mode === 'warn' ? 'warning' : 'info';
}

export function policyImageProblems(policy: ImagePolicy | undefined, image: string, ref: ImageReference): PolicyImageProblem[] {
  if (!policy) return [];
  const out: PolicyImageProblem[] = [];
  for (const r of policy.spec.rules) {
    if (!r.allowedRegistries && !r.imageReferences) continue;
    if (!ruleApplies(r, image, ref, {}).applies) continue;
    const severity = modeSeverity(r.mode);
    if (r.allowedRegistries && !registryMatch(r.allowedRegistries.registries, ref)) {
      out.push({ kind: 'registry', severity, rule: r.name, message: `${ref.familiar} is not from an allowed registry (${r.allowedRegistries.registries.join(', ')}; policy rule ${r.name})` });
    }
    if (r.imageReferences?.requireDigest && !ref.digest) {
      out.push({ kind: 'digest', severity, rule: r.name, message: `${ref.familiar} is not pinned by digest (policy rule ${r.name} requires a digest)` });
    }
    if (r.imageReferences?.forbidLatest && !ref.digest && ref.tag === 'latest') {
      out.push({ kind: 'latest', severity, rule: r.name, message: `${ref.tagDefaulted ? `${ref.familiar.replace(/:latest$/, '')} has no tag (latest is implied)` : `${ref.familiar} uses the latest tag`} (policy rule ${r.name} forbids latest)` });
    }
  }
  return out;
}

/** The registry allow-list patterns of a policy (every allowedRegistries rule). */
export function policyRegistries(policy: ImagePolicy | undefined): string[] {
  return policy ? policy.spec.rules.flatMap((r) => r.allowedRegistries?.registries ?? []) : [];
}
