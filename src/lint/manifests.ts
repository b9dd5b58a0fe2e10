import { LineCounter, parseAllDocuments, isMap, isSeq, type Document } from 'yaml';
import { parseImageReference } from '../oci/reference.js';
import type { ImagePolicy } from '../policy/schema.js';
import { kubesecScore, type KubesecReport, type KubesecRuleset } from './kubesec.js';
import { policyImageProblems, modeSeverity } from './policyimages.js';
import { kubesecSeverity, ruleInfo } from './rules.js';
import type { Finding } from './types.js';
import { evaluateWorkload, type WorkloadSecuritySettings } from './workload.js';

/**
 * Kubernetes manifests: multi-document YAML (or JSON), `List` kinds expanded, each object scored
 * with kubesec's rules, its images checked against the policy. Hostile input is bounded: size,
 * documents, aliases (YAML bombs), nesting; every problem is a finding with a position.
 */
export const MANIFEST_MAX_BYTES = 32 * 1024 * 1024;
export const MANIFEST_MAX_DOCUMENTS = 20_000;
export const MANIFEST_MAX_ALIASES = 100;
export const MANIFEST_MAX_DEPTH = 200;

export interface ManifestLintOptions {
  file: string;
  /** kubesec's file name in --format kubesec (default: file). */
  fileName?: string;
  policy?: ImagePolicy;
  ruleset?: KubesecRuleset;
}

export interface ManifestObject {
  /** The JSON view (YAML 1.1 scalars, as Kubernetes and kubesec read them). */
  value: unknown;
  /** 1-based line and column of the object. */
  line: number;
  column: number;
  /** Path of the object within its document (`['items', 3]` for a List item). */
  path: Array<string | number>;
  doc: Document;
}

export interface ParsedManifests {
  objects: ManifestObject[];
  /** Problems with positions (YAML errors, bombs, nesting). */
  problems: Array<{ line: number; column: number; message: string }>;
  /** 1-based line and column of a character offset. */
  position(offset: number): { line: number; column: number };
}

function depthExceeds(v: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[v, 0]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (d > max) return true;
    if (x && typeof x === 'object') for (const c of Object.values(x as object)) if (c && typeof c === 'object') stack.push([c, d + 1]);
  }
  return false;
}

export function parseManifests(text: string): ParsedManifests {
  const lc = new LineCounter();
  const problems: ParsedManifests['problems'] = [];
  const objects: ManifestObject[] = [];
  let docs: Document[];
  try {
    docs = parseAllDocuments(text, { lineCounter: lc, version: '1.1', prettyErrors: false }) as unknown as Document[];
    if (!Array.isArray(docs)) docs = [docs as unknown as Document];
  } catch (e) {
    problems.push({ line: 1, column: 1, message: `not YAML: ${(e as Error).message}` });
    return { objects, problems, position: () => ({ line: 1, column: 1 }) };
  }
  if (docs.length > MANIFEST_MAX_DOCUMENTS) {
    problems.push({ line: 1, column: 1, message: `more than ${MANIFEST_MAX_DOCUMENTS} YAML documents` });
    return { objects, problems, position: () => ({ line: 1, column: 1 }) };
  }
  const pos = (off: number | undefined) => (off === undefined ? { line: 1, column: 1 } : (({ line, col }) => ({ line, column: col }))(lc.linePos(off)));
  for (const doc of docs) {
    if (doc.errors.length) {
      const e = doc.errors[0]!;
      problems.push({ ...pos(e.pos?.[0]), message: /call stack/i.test(e.message) ? 'the document is nested too deeply' : `invalid YAML: ${e.message.split('\n')[0]}` });
      continue;
    }
    if (doc.contents === null) continue;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MANIFEST_MAX_ALIASES });
    } catch (e) {
      const msg = e instanceof RangeError || /call stack/i.test((e as Error).message) ? `the document is nested too deeply` : `invalid YAML: ${(e as Error).message}`;
      problems.push({ ...pos(doc.contents?.range?.[0]), message: msg.includes('alias') ? `too many YAML aliases (more than ${MANIFEST_MAX_ALIASES}: a YAML bomb?)` : msg });
      continue;
    }
    if (depthExceeds(value, MANIFEST_MAX_DEPTH)) {
      problems.push({ ...pos(doc.contents?.range?.[0]), message: `the document is nested more than ${MANIFEST_MAX_DEPTH} levels deep` });
      continue;
    }
    const start = pos(doc.contents?.range?.[0]);
    const v = value as Record<string, unknown> | null;
    if (v && typeof v === 'object' && !Array.isArray(v) && typeof v['kind'] === 'string' && (v['kind'] as string).endsWith('List') && Array.isArray(v['items'])) {
      const items = v['items'] as unknown[];
      items.forEach((item, i) => {
        const node = doc.getIn(['items', i], true) as { range?: [number, number, number] } | undefined;
        objects.push({ value: item, ...pos(node?.range?.[0]), path: ['items', i], doc });
      });
      continue;
    }
    objects.push({ value, ...start, path: [], doc });
  }
  return { objects, problems, position: (off) => pos(off) };
}

/** The pod spec path of a workload kind. */
export function podSpecPath(kind: unknown): string[] | null {
  if (kind === 'Pod') return ['spec'];
  if (kind === 'CronJob') return ['spec', 'jobTemplate', 'spec', 'template', 'spec'];
  if (typeof kind === 'string' && ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'ReplicationController'].includes(kind)) return ['spec', 'template', 'spec'];
  return null;
}

export interface ContainerImage {
  image: string;
  container: string;
  path: Array<string | number>;
}

/** The images of an object's containers, init containers and ephemeral containers. */
export function objectImages(obj: unknown): ContainerImage[] {
  if (!obj || typeof obj !== 'object') return [];
  const spec = podSpecPath((obj as Record<string, unknown>)['kind']);
  if (!spec) return [];
  let cur: unknown = obj;
  for (const k of spec) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
  if (!cur || typeof cur !== 'object') return [];
  const out: ContainerImage[] = [];
  for (const list of ['initContainers', 'containers', 'ephemeralContainers']) {
    const cs = (cur as Record<string, unknown>)[list];
    if (!Array.isArray(cs)) continue;
    cs.forEach((c, i) => {
      if (c && typeof c === 'object' && typeof (c as Record<string, unknown>)['image'] === 'string') {
        out.push({ image: (c as Record<string, string>)['image']!, container: String((c as Record<string, unknown>)['name'] ?? `${list}[${i}]`), path: [...spec, list, i, 'image'] });
      }
    });
  }
  return out;
}

export function lintManifests(text: string, o: ManifestLintOptions): { findings: Finding[]; kubesec: KubesecReport[]; objects: ManifestObject[] } {
  const parsed = parseManifests(text);
  const findings: Finding[] = [];
  const reports: KubesecReport[] = [];
  const fileName = o.fileName ?? o.file;
  for (const p of parsed.problems) {
    findings.push({ rule: 'PL190', severity: 'error', message: p.message, file: o.file, line: p.line, column: p.column });
    reports.push({ object: 'Unknown', valid: false, fileName, message: p.message, score: 0, scoring: {} });
  }
  const workloadRules = (o.policy?.spec.rules ?? []).filter((r) => (r as Record<string, unknown>)['workloadSecurity'] !== undefined);
  for (const obj of parsed.objects) {
    const { report, applied } = kubesecScore(obj.value, fileName, o.ruleset ?? 'latest');
    reports.push(report);
    for (const a of applied) {
      if (a.matches > 0 && a.rule.points < 0) {
        const where = locate(obj, a.rule.id);
        const node = where ? (obj.doc.getIn([...obj.path, ...where], true) as { range?: [number, number, number] } | undefined) : undefined;
        const at = node?.range ? parsed.position(node.range[0]) : { line: obj.line, column: obj.column };
        findings.push({ rule: a.rule.id, severity: kubesecSeverity(a.rule.points), message: `${a.rule.reason} (${a.rule.points} points)`, file: o.file, ...at, object: report.object, points: a.rule.points });
      }
    }
    // Images.
    for (const img of objectImages(obj.value)) {
      const node = obj.doc.getIn([...obj.path, ...img.path], true) as { range?: [number, number, number] } | undefined;
      const at = node?.range ? parsed.position(node.range[0]) : { line: obj.line, column: obj.column };
      let ref;
      try {
        ref = parseImageReference(img.image);
      } catch (e) {
        findings.push({ rule: 'PL102', severity: 'error', message: `container ${img.container}: "${img.image}" is not a valid image reference: ${(e as Error).message}`, file: o.file, ...at, object: report.object });
        continue;
      }
      const problems = policyImageProblems(o.policy, img.image, ref);
      const prob = (k: string) => problems.find((x) => x.kind === k);
      for (const x of problems.filter((y) => y.kind === 'registry')) findings.push({ rule: 'PL102', severity: x.severity, message: `container ${img.container}: ${x.message}`, file: o.file, ...at, object: report.object });
      if (!ref.digest) {
        const x = prob('digest');
        findings.push({ rule: 'PL101', severity: x?.severity ?? ruleInfo('PL101')!.severity, message: `container ${img.container}: ${x?.message ?? `${ref.familiar} is not referenced by digest`}`, file: o.file, ...at, object: report.object });
      }
      if (!ref.digest && ref.tag === 'latest') {
        const x = prob('latest');
        findings.push({ rule: 'PL103', severity: x?.severity ?? ruleInfo('PL103')!.severity, message: `container ${img.container}: ${x?.message ?? (ref.tagDefaulted ? `${ref.familiar.replace(/:latest$/, '')} has no tag (latest is implied)` : `${ref.familiar} uses the latest tag`)}`, file: o.file, ...at, object: report.object });
      }
    }
    // The policy's workloadSecurity rules.
    for (const r of workloadRules) {
      const s = (r as Record<string, unknown>)['workloadSecurity'] as WorkloadSecuritySettings;
      const v = evaluateWorkload({ ...s, ruleset: s.ruleset ?? o.ruleset }, obj.value);
      if (v.outcome !== 'fail') continue;
      findings.push({ rule: 'PL104', severity: modeSeverity(r.mode), message: `${v.reason} (policy rule ${r.name})`, file: o.file, line: obj.line, column: obj.column, object: report.object });
    }
  }
  findings.sort((a, b) => a.line - b.line || a.column - b.column || a.rule.localeCompare(b.rule));
  return { findings, kubesec: reports, objects: parsed.objects };
}

/** Where a critical kubesec rule points in the object: the field that makes it match (best effort). */
const POD_FIELDS: Record<string, string[]> = {
  HostNetwork: ['hostNetwork'],
  HostPID: ['hostPID'],
  HostIPC: ['hostIPC'],
  HostAliases: ['hostAliases'],
  DockerSock: ['volumes'],
  ProcMount: ['volumes'],
};
const CONTAINER_FIELDS: Record<string, string[]> = {
  Privileged: ['securityContext', 'privileged'],
  AllowPrivilegeEscalation: ['securityContext', 'allowPrivilegeEscalation'],
  CapSysAdmin: ['securityContext', 'capabilities', 'add'],
  SeccompUnconfined: ['securityContext', 'seccompProfile'],
  ApparmorUnconfined: ['securityContext', 'appArmorProfile'],
  SecretsAsEnvironmentVariables: ['env'],
};

function at(v: unknown, path: readonly (string | number)[]): unknown {
  let cur = v;
  for (const k of path) cur = cur && typeof cur === 'object' ? (cur as Record<string | number, unknown>)[k] : undefined;
  return cur;
}

function locate(obj: ManifestObject, rule: string): Array<string | number> | undefined {
  const v = obj.value as Record<string, unknown> | null;
  if (!v || typeof v !== 'object') return undefined;
  if (rule === 'BindingsToSystemAnonymous') return ['subjects'];
  const spec = podSpecPath(v['kind']);
  if (!spec) return undefined;
  const pod = POD_FIELDS[rule];
  if (pod) return at(v, [...spec, ...pod]) !== undefined ? [...spec, ...pod] : spec;
  const field = CONTAINER_FIELDS[rule];
  if (field) {
    for (const list of ['initContainers', 'containers', 'ephemeralContainers']) {
      const cs = at(v, [...spec, list]);
      if (!Array.isArray(cs)) continue;
      for (let i = 0; i < cs.length; i++) {
        if (at(cs[i], field) !== undefined) return [...spec, list, i, ...field];
        if (rule === 'SecretsAsEnvironmentVariables' && at(cs[i], ['envFrom']) !== undefined) return [...spec, list, i, 'envFrom'];
      }
    }
    // Inherited from the pod's securityContext.
    if (field[0] === 'securityContext' && at(v, [...spec, 'securityContext']) !== undefined) return [...spec, 'securityContext'];
  }
  return spec;
}

export { isMap, isSeq };
