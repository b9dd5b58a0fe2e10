import type { ImageReference } from '../oci/reference.js';
import { anyGlob, globMatch, imagePatternMatches } from './glob.js';
import type { PolicyRule } from './schema.js';

/**
 * Where a request comes from. The admission webhook fills namespace, labels and annotations from
 * the object; `plinth check` leaves them out (or takes --namespace / --label). A condition on
 * something the context does not have is not evaluated: the rule applies.
 */
export interface PolicyContext {
  namespace?: string;
  /** The workload's labels (pod template labels, or the pod's). */
  labels?: Record<string, string>;
  /** The workload's annotations (break-glass; for ImageReview only *.image-policy.k8s.io/* ones). */
  annotations?: Record<string, string>;
  /**
   * The webhook will pin this image's tag to the digest it checked (spec.pinDigests): an
   * `imageReferences.requireDigest` rule passes when that digest is known.
   */
  pinning?: boolean;
  /**
   * The workload the image runs in (the object of the AdmissionReview, a document of
   * `plinth check --manifest`), for workloadSecurity rules; without it they skip.
   */
  workload?: unknown;
}

export type Applicability = { applies: true } | { applies: false; reason: string };

function selectorMatches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] !== undefined && globMatch(v, labels[k]!));
}

function fmtSelector(s: Record<string, string>): string {
  return Object.entries(s).map(([k, v]) => `${k}=${v}`).join(',');
}

/** Whether an image pattern matches the image (its reference forms, or the string as given). */
export function imageMatches(patterns: readonly string[], image: string, ref: ImageReference | null, digest?: string | null): boolean {
  if (ref) return patterns.some((p) => imagePatternMatches(p, ref, digest ? [digest] : []));
  return anyGlob(patterns, image);
}

/** Whether a rule's match / exclude conditions select this image in this context. */
export function ruleApplies(rule: PolicyRule, image: string, ref: ImageReference | null, ctx: PolicyContext, digest?: string | null): Applicability {
  const m = rule.match;
  if (!m) return { applies: true };
  const ns = ctx.namespace;
  if (ns !== undefined) {
    if (m.namespaces && !anyGlob(m.namespaces, ns)) return { applies: false, reason: `namespace "${ns}" is not one of ${m.namespaces.join(', ')}` };
    if (m.excludeNamespaces && anyGlob(m.excludeNamespaces, ns)) return { applies: false, reason: `namespace "${ns}" is excluded (${m.excludeNamespaces.join(', ')})` };
  }
  const labels = ctx.labels;
  if (labels !== undefined) {
    if (m.labels && !selectorMatches(m.labels, labels)) return { applies: false, reason: `the workload's labels do not match ${fmtSelector(m.labels)}` };
    if (m.excludeLabels && selectorMatches(m.excludeLabels, labels)) return { applies: false, reason: `the workload's labels match the exclusion ${fmtSelector(m.excludeLabels)}` };
  }
  if (m.images && !imageMatches(m.images, image, ref, digest)) return { applies: false, reason: `the image does not match ${m.images.join(', ')}` };
  if (m.excludeImages && imageMatches(m.excludeImages, image, ref, digest)) return { applies: false, reason: `the image is excluded (${m.excludeImages.join(', ')})` };
  return { applies: true };
}
