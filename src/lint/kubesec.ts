/**
 * kubesec's rules, points, selectors and scoring (github.com/controlplaneio/kubesec, pkg/rules and
 * pkg/ruler), rewritten: the same predicates over the same JSON view of a Kubernetes object, so
 * `plinth lint --format kubesec` gives the score, the critical/passed/advise lists and the
 * messages `kubesec scan` gives.
 *
 * Two rule sets:
 *   - `latest` (default): kubesec's main branch (30 rules: seccomp and AppArmor from the
 *     securityContext profiles, ephemeral containers, CronJob pod specs, HostUsers,
 *     ApparmorUnconfined, SecretsAsEnvironmentVariables, BindingsToSystemAnonymous);
 *   - `2.14`: the released kubesec v2.14.2 (26 rules: seccomp and AppArmor from the legacy
 *     annotations, no ephemeral containers).
 *
 * kubesec reads the object with gojsonq; its quirks are kept on purpose (a rule is satisfied by
 * the string form of a value containing a word, `hostAliases: []` counts as set, `Only` counts a
 * key that is present with a null value): a Plinth score is the kubesec score.
 */

export type KubesecRuleset = 'latest' | '2.14';
export const KUBESEC_RULESETS: readonly KubesecRuleset[] = ['latest', '2.14'];

type Json = unknown;

export interface KubesecRule {
  id: string;
  selector: string;
  reason: string;
  kinds: readonly string[];
  points: number;
  /** kubesec's legacy ordering hint (not used in scoring). */
  advise?: number;
  predicate: (obj: Json) => number;
}

export interface RuleRef {
  id: string;
  selector: string;
  reason: string;
  points: number;
}

/** One object's report, in kubesec's JSON shape (field order as kubesec prints it). */
export interface KubesecReport {
  object: string;
  valid: boolean;
  fileName: string;
  message?: string;
  score: number;
  scoring: { critical?: RuleRef[]; passed?: RuleRef[]; advise?: RuleRef[] };
}

// ---------------------------------------------------------------------------------------------
// gojsonq's view of a value
// ---------------------------------------------------------------------------------------------

const MISSING = Symbol('missing');
type Got = Json | typeof MISSING;

function isObj(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * gojsonq's getNestedValue: `a.b.[0].c`. An index step on a value that is not an array is skipped
 * (gojsonq's behaviour); a missing key is MISSING.
 */
function nested(input: Json, path: string): Got {
  let cur: Json = input;
  for (const n of path.split('.')) {
    const idx = /^\[(\d+)\]$/.exec(n);
    if (idx) {
      if (Array.isArray(cur)) {
        const i = Number(idx[1]);
        if (i > cur.length - 1) return MISSING;
        cur = cur[i];
      }
      continue;
    }
    if (!isObj(cur) || !Object.prototype.hasOwnProperty.call(cur, n)) return MISSING;
    cur = cur[n];
  }
  return cur;
}

/** `jq.From(path).Get()`: the value, or nil (null) when missing. */
function get(input: Json, path: string): Json {
  const v = nested(input, path);
  return v === MISSING ? null : v;
}

/** `jq.From(path).Count()`: length of a list or map, else 0. */
function count(input: Json, path: string): number {
  const v = get(input, path);
  if (Array.isArray(v)) return v.length;
  if (isObj(v)) return Object.keys(v).length;
  return 0;
}

/** `jq.From(path).Only(prop)`: for each object of the list, `{ lastSegment: value }` when the nested prop exists. */
function only(input: Json, path: string, prop: string): Array<Record<string, Json>> {
  const list = get(input, path);
  const out: Array<Record<string, Json>> = [];
  if (!Array.isArray(list)) return out;
  const alias = prop.split('.').pop()!;
  for (const item of list) {
    const v = nested(item, prop);
    if (v !== MISSING) out.push({ [alias]: v });
  }
  return out;
}

/** Go's `fmt.Sprintf("%v", x)` for a value decoded from JSON (maps print with sorted keys). */
export function goFmt(v: Json, depth = 0): string {
  if (depth > 200) return '…';
  if (v === null || v === undefined) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return goFloat(v);
  if (Array.isArray(v)) return `[${v.map((x) => goFmt(x, depth + 1)).join(' ')}]`;
  if (isObj(v)) {
    const keys = Object.keys(v).sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
    return `map[${keys.map((k) => `${k}:${goFmt(v[k], depth + 1)}`).join(' ')}]`;
  }
  return String(v);
}

/** strconv.FormatFloat(f, 'g', -1, 64) as %v prints a float64. */
function goFloat(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? '+Inf' : '-Inf';
  if (f === 0) return Object.is(f, -0) ? '-0' : '0';
  const exp = Math.floor(Math.log10(Math.abs(f)));
  if (exp < -4 || exp >= 21) {
    const [m, e] = f.toExponential().split('e');
    const n = Number(e);
    return `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  return String(f);
}

function specSelector(obj: Json, ruleset: KubesecRuleset): string {
  const kind = get(obj, 'kind');
  if (kind === 'Pod') return 'spec';
  if (kind === 'CronJob' && ruleset === 'latest') return 'spec.jobTemplate.spec.template.spec';
  return 'spec.template.spec';
}

interface ScResult {
  unset: boolean;
  valid: boolean;
}

/** kubesec's checkSecurityContext: containers whose setting is valid, or unset with a valid pod-level setting. */
function checkSecurityContext(obj: Json, ruleset: KubesecRuleset, podLevel: boolean, fn: (node: Json) => ScResult): number {
  const spec = specSelector(obj, ruleset);
  const validAtPod = podLevel && fn(get(obj, spec)).valid;
  let valid = 0;
  const nodes = ruleset === 'latest' ? ['initContainers', 'containers', 'ephemeralContainers'] : ['initContainers', 'containers'];
  for (const node of nodes) {
    const n = count(obj, `${spec}.${node}`);
    for (let i = 0; i < n; i++) {
      const res = fn(get(obj, `${spec}.${node}.[${i}]`));
      if (res.valid || (res.unset && validAtPod)) valid++;
    }
  }
  return valid;
}

const boolAttr = (attr: string) => (node: Json): ScResult => {
  const v = get(node, `securityContext.${attr}`);
  if (typeof v !== 'boolean') return { unset: true, valid: false };
  return { unset: false, valid: v };
};

const highId = (attr: string) => (node: Json): ScResult => {
  const v = get(node, `securityContext.${attr}`);
  if (typeof v !== 'number') return { unset: true, valid: false };
  return { unset: false, valid: v > 10000 };
};

const profileType = (field: 'seccompProfile' | 'appArmorProfile', unconfined: boolean) => (node: Json): ScResult => {
  const v = get(node, `securityContext.${field}.type`);
  if (typeof v !== 'string') return { unset: true, valid: false };
  return { unset: false, valid: (v === 'Unconfined') === unconfined };
};

const podBool = (field: string, want: boolean) => (ruleset: KubesecRuleset) => (obj: Json): number => {
  const v = get(obj, `${specSelector(obj, ruleset)}.${field}`);
  return typeof v === 'boolean' && v === want ? 1 : 0;
};

const podSet = (field: string) => (ruleset: KubesecRuleset) => (obj: Json): number => {
  const v = get(obj, `${specSelector(obj, ruleset)}.${field}`);
  return v === null ? 0 : 1;
};

const containersHave = (prop: string) => (ruleset: KubesecRuleset) => (obj: Json): number => only(obj, `${specSelector(obj, ruleset)}.containers`, prop).length;

const hostPathContains = (needle: string) => (ruleset: KubesecRuleset) => (obj: Json): number => (goFmt(only(obj, `${specSelector(obj, ruleset)}.volumes`, 'hostPath.path')).includes(needle) ? 1 : 0);

/** kubesec v2.14.2's annotation-based seccomp / AppArmor rules. */
function legacyAnnotation(prefix: 'seccomp' | 'apparmor', wantUnconfined: boolean) {
  const podKey = prefix === 'seccomp' ? 'seccomp.security.alpha.kubernetes.io/pod:' : 'container.apparmor.security.beta.kubernetes.io/pod:';
  const keyRe = prefix === 'seccomp' ? 'seccomp\\.security\\.alpha\\.kubernetes\\.io/[a-zA-Z-.]+' : 'container\\.apparmor\\.security\\.beta\\.kubernetes\\.io/[a-zA-Z-.]+';
  const named = new RegExp(`[\\[ ]${keyRe}:`);
  const namedUnconfined = new RegExp(`[\\[ ]${keyRe}:unconfined[\\] ]`);
  return (obj: Json): number => {
    const annotations = get(obj, 'metadata.annotations');
    if (annotations === null) return 0;
    const s = goFmt(annotations);
    if (s.includes(podKey)) return s.includes(`${podKey}unconfined`) === wantUnconfined ? 1 : 0;
    if (named.test(s)) return namedUnconfined.test(s) === wantUnconfined ? 1 : 0;
    return 0;
  };
}

function volumeClaimTemplates(obj: Json): number {
  return only(obj, 'spec.volumeClaimTemplates', 'spec').length;
}

function secretsAsEnv(obj: Json): number {
  const spec = specSelector(obj, 'latest');
  let found = 0;
  for (const path of [`${spec}.containers`, `${spec}.initContainers`, `${spec}.ephemeralContainers`]) {
    const n = count(obj, path);
    for (let i = 0; i < n; i++) {
      const node = `${path}.[${i}]`;
      let hit = false;
      const envN = count(obj, `${node}.env`);
      for (let j = 0; j < envN && !hit; j++) if (get(obj, `${node}.env.[${j}].valueFrom.secretKeyRef`) !== null) hit = true;
      const fromN = count(obj, `${node}.envFrom`);
      for (let j = 0; j < fromN && !hit; j++) if (get(obj, `${node}.envFrom.[${j}].secretRef`) !== null) hit = true;
      if (hit) found++;
    }
  }
  return found;
}

const WORKLOADS = ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet'] as const;

interface RuleSpec {
  id: string;
  selector: string;
  reason: string;
  kinds: readonly string[];
  points: number;
  advise?: number;
  predicate: (rs: KubesecRuleset) => (obj: Json) => number;
  /** In which rule sets (default both). */
  in?: KubesecRuleset;
  /** Selector and reason in the other rule set, when they differ. */
  legacy?: { selector: string; reason: string; predicate: (obj: Json) => number };
}

const SC = (podLevel: boolean, fn: (node: Json) => ScResult) => (rs: KubesecRuleset) => (obj: Json) => checkSecurityContext(obj, rs, podLevel, fn);

const PROFILE_SELECTOR = (f: string) => `.spec .securityContext .${f} .type | .spec .containers[] .securityContext .${f} .type | .spec .initContainers[] .securityContext .${f} .type | .spec .ephemeralContainers[] .securityContext .${f} .type`;

/** kubesec's rule list, in its order (pkg/ruler/ruleset.go). */
const SPECS: RuleSpec[] = [
  { id: 'HostNetwork', selector: '.spec .hostNetwork == true', reason: "Sharing the host's network namespace permits processes in the pod to communicate with processes bound to the host's loopback adapter", kinds: WORKLOADS, points: -9, predicate: podBool('hostNetwork', true) },
  { id: 'HostPID', selector: '.spec .hostPID == true', reason: "Sharing the host's PID namespace allows visibility of processes on the host, potentially leaking information such as environment variables and configuration", kinds: WORKLOADS, points: -9, predicate: podBool('hostPID', true) },
  { id: 'HostIPC', selector: '.spec .hostIPC == true', reason: "Sharing the host's IPC namespace allows container processes to communicate with processes on the host", kinds: WORKLOADS, points: -9, predicate: podBool('hostIPC', true) },
  { id: 'ReadOnlyRootFilesystem', selector: 'containers[] .securityContext .readOnlyRootFilesystem == true', reason: 'An immutable root filesystem can prevent malicious binaries being added to PATH and increase attack cost', kinds: WORKLOADS, points: 1, advise: 3, predicate: SC(false, boolAttr('readOnlyRootFilesystem')) },
  { id: 'RunAsNonRoot', selector: '.spec, .spec.containers[] | .securityContext .runAsNonRoot == true', reason: 'Force the running image to run as a non-root user to ensure least privilege', kinds: WORKLOADS, points: 1, advise: 10, predicate: SC(true, boolAttr('runAsNonRoot')) },
  { id: 'RunAsUser', selector: '.spec, .spec.containers[] | .securityContext .runAsUser -gt 10000', reason: "Run as a high-UID user to avoid conflicts with the host's users", kinds: WORKLOADS, points: 1, advise: 4, predicate: SC(true, highId('runAsUser')) },
  { id: 'RunAsGroup', selector: '.spec, .spec.containers[] | .securityContext .runAsGroup -gt 10000', reason: "Run as a high-UID group to avoid conflicts with the host's groups", kinds: WORKLOADS, points: 1, advise: 4, predicate: SC(true, highId('runAsGroup')) },
  { id: 'Privileged', selector: 'containers[] .securityContext .privileged == true', reason: 'Privileged containers can allow almost completely unrestricted host access', kinds: WORKLOADS, points: -30, predicate: SC(false, boolAttr('privileged')) },
  {
    id: 'CapSysAdmin', selector: 'containers[] .securityContext .capabilities .add == SYS_ADMIN', reason: 'CAP_SYS_ADMIN is the most privileged capability and should always be avoided', kinds: WORKLOADS, points: -30,
    predicate: SC(false, (node) => {
      const v = get(node, 'securityContext.capabilities.add');
      if (v === null) return { unset: true, valid: false };
      return { unset: false, valid: goFmt(v).includes('SYS_ADMIN') };
    }),
  },
  {
    id: 'CapDropAny', selector: 'containers[] .securityContext .capabilities .drop', reason: 'Reducing kernel capabilities available to a container limits its attack surface', kinds: WORKLOADS, points: 1,
    predicate: SC(false, (node) => {
      const v = get(node, 'securityContext.capabilities.drop');
      if (!Array.isArray(v)) return { unset: true, valid: false };
      return { unset: false, valid: v.length > 0 && !goFmt(v).includes('<nil>') };
    }),
  },
  {
    id: 'CapDropAll', selector: 'containers[] .securityContext .capabilities .drop | index("ALL")', reason: 'Drop all capabilities and add only those required to reduce syscall attack surface', kinds: WORKLOADS, points: 1,
    predicate: SC(false, (node) => {
      const v = get(node, 'securityContext.capabilities.drop');
      if (v === null) return { unset: true, valid: false };
      return { unset: false, valid: goFmt(v).toUpperCase().includes('ALL') };
    }),
  },
  { id: 'DockerSock', selector: 'volumes[] .hostPath .path == /var/run/docker.sock', reason: 'Mounting the docker.socket leaks information about other containers and can allow container breakout', kinds: WORKLOADS, points: -9, predicate: hostPathContains('/var/run/docker.sock') },
  { id: 'ProcMount', selector: 'volumes[] .hostPath .path == /proc', reason: 'Mounting the proc directory from the host system into a container gives access to information about other containers running on the same host and can allow container breakout', kinds: WORKLOADS, points: -9, predicate: hostPathContains('/proc') },
  { id: 'RequestsCPU', selector: 'containers[] .resources .requests .cpu', reason: 'Enforcing CPU requests aids a fair balancing of resources across the cluster', kinds: WORKLOADS, points: 1, predicate: containersHave('resources.requests.cpu') },
  { id: 'LimitsCPU', selector: 'containers[] .resources .limits .cpu', reason: 'Enforcing CPU limits prevents DOS via resource exhaustion', kinds: WORKLOADS, points: 1, predicate: containersHave('resources.limits.cpu') },
  { id: 'RequestsMemory', selector: 'containers[] .resources .requests .memory', reason: 'Enforcing memory requests aids a fair balancing of resources across the cluster', kinds: WORKLOADS, points: 1, predicate: containersHave('resources.requests.memory') },
  { id: 'LimitsMemory', selector: 'containers[] .resources .limits .memory', reason: 'Enforcing memory limits prevents DOS via resource exhaustion', kinds: WORKLOADS, points: 1, predicate: containersHave('resources.limits.memory') },
  { id: 'ServiceAccountName', selector: '.spec .serviceAccountName', reason: 'Service accounts restrict Kubernetes API access and should be configured with least privilege', kinds: WORKLOADS, points: 3, predicate: podSet('serviceAccountName') },
  { id: 'HostAliases', selector: '.spec .hostAliases', reason: "Managing /etc/hosts aliases can prevent the container from modifying the file after a pod's containers have already been started. DNS should be managed by the orchestrator", kinds: WORKLOADS, points: -3, predicate: podSet('hostAliases') },
  {
    id: 'SeccompAny', selector: PROFILE_SELECTOR('seccompProfile'), reason: 'Seccomp profiles set minimum privilege and secure against unknown threats', kinds: WORKLOADS, points: 1, predicate: SC(true, profileType('seccompProfile', false)),
    legacy: { selector: '.metadata .annotations ."container.seccomp.security.alpha.kubernetes.io/pod"', reason: 'Seccomp profiles set minimum privilege and secure against unknown threats', predicate: legacyAnnotation('seccomp', false) },
  },
  {
    id: 'SeccompUnconfined', selector: PROFILE_SELECTOR('seccompProfile'), reason: 'Unconfined Seccomp profiles have full system call access', kinds: WORKLOADS, points: -1, predicate: SC(true, profileType('seccompProfile', true)),
    legacy: { selector: '.metadata .annotations ."container.seccomp.security.alpha.kubernetes.io/pod"', reason: 'Unconfined Seccomp profiles have full system call access', predicate: legacyAnnotation('seccomp', true) },
  },
  {
    id: 'ApparmorAny', selector: PROFILE_SELECTOR('appArmorProfile'), reason: 'Well defined AppArmor policies may provide greater protection from unknown threats.', kinds: WORKLOADS, points: 3, predicate: SC(true, profileType('appArmorProfile', false)),
    legacy: { selector: '.metadata .annotations ."container.apparmor.security.beta.kubernetes.io/nginx"', reason: 'Well defined AppArmor policies may provide greater protection from unknown threats. WARNING: NOT PRODUCTION READY', predicate: legacyAnnotation('apparmor', false) },
  },
  { id: 'ApparmorUnconfined', selector: PROFILE_SELECTOR('appArmorProfile'), reason: 'Unconfined AppArmor profiles disable AppArmor enforcement on the workloads', kinds: WORKLOADS, points: -1, predicate: SC(true, profileType('appArmorProfile', true)), in: 'latest' },
  {
    id: 'VolumeClaimAccessModeReadWriteOnce', selector: '.spec .volumeClaimTemplates[] .spec .accessModes | index("ReadWriteOnce")', reason: 'Setting the access mode of ReadWriteOnce on volumeClaimTemplates (if any exist) allows only one node to mount the persistentVolume', kinds: ['StatefulSet'], points: 1,
    predicate: () => (obj) => (volumeClaimTemplates(obj) === 0 ? 1 : goFmt(only(obj, 'spec.volumeClaimTemplates', 'spec.accessModes')).includes('accessModes:[ReadWriteOnce]') ? 1 : 0),
  },
  {
    id: 'VolumeClaimRequestsStorage', selector: '.spec .volumeClaimTemplates[] .spec .resources .requests .storage', reason: "Setting a storage request on volumeClaimTemplates (if any exist) allows for the StatefulSet's PVCs to be bound to appropriately sized PVs.", kinds: ['StatefulSet'], points: 1,
    predicate: () => (obj) => (volumeClaimTemplates(obj) === 0 ? 1 : only(obj, 'spec.volumeClaimTemplates', 'spec.resources.requests.storage').length),
  },
  { id: 'AllowPrivilegeEscalation', selector: 'containers[] .securityContext .allowPrivilegeEscalation == true', reason: 'Ensure a non-root process can not gain more privileges', kinds: WORKLOADS, points: -7, predicate: SC(false, boolAttr('allowPrivilegeEscalation')) },
  { id: 'AutomountServiceAccountToken', selector: '.spec .automountServiceAccountToken == false', reason: 'Disabling the automounting of Service Account Token reduces the attack surface of the API server', kinds: WORKLOADS, points: 1, predicate: podBool('automountServiceAccountToken', false) },
  { id: 'HostUsers', selector: '.spec .hostUsers == false', reason: 'A user namespace for a Pod is enabled by setting the hostUsers field of Pod .spec, which can prevent various attacks', kinds: WORKLOADS, points: 1, predicate: podBool('hostUsers', false), in: 'latest' },
  {
    id: 'SecretsAsEnvironmentVariables',
    selector: '.spec .containers[] .env[] .valueFrom .secretKeyRef | .spec .initContainers[] .env[] .valueFrom .secretKeyRef | .spec .ephemeralContainers[] .env[] .valueFrom .secretKeyRef | .spec .containers[] .envFrom[] .secretRef | .spec .initContainers[] .envFrom[] .secretRef | .spec .ephemeralContainers[] .envFrom[] .secretRef',
    reason: 'Secrets passed as environment variables can be easily exposed through application logs, crash dumps, and system process inspection',
    kinds: [...WORKLOADS, 'ReplicaSet', 'Job', 'CronJob'], points: -5, predicate: () => secretsAsEnv, in: 'latest',
  },
  {
    id: 'BindingsToSystemAnonymous', selector: '.subjects[] .name == "system:anonymous"', reason: 'Binding a Role or a ClusterRole to user system:anonymous gives any unauthenticated user the permissions granted by that role', kinds: ['RoleBinding', 'ClusterRoleBinding'], points: -30,
    predicate: () => (obj) => (goFmt(only(obj, 'subjects', 'name')).includes('system:anonymous') ? 1 : 0), in: 'latest',
  },
];

const cache = new Map<KubesecRuleset, KubesecRule[]>();

/** The rules of a rule set, in kubesec's order. */
export function kubesecRules(ruleset: KubesecRuleset = 'latest'): KubesecRule[] {
  let rules = cache.get(ruleset);
  if (!rules) {
    rules = SPECS.filter((s) => !s.in || s.in === ruleset).map((s) => {
      const legacy = ruleset === '2.14' && s.legacy;
      return {
        id: s.id,
        selector: legacy ? legacy.selector : s.selector,
        reason: legacy ? legacy.reason : s.reason,
        kinds: s.kinds,
        points: s.points,
        ...(s.advise !== undefined ? { advise: s.advise } : {}),
        predicate: legacy ? legacy.predicate : s.predicate(ruleset),
      };
    });
    cache.set(ruleset, rules);
  }
  return rules;
}

/** kubesec's object name: `<kind>/<name>.<namespace>` ("Unknown" without a kind). */
export function kubesecObjectName(obj: Json): string {
  const kind = get(obj, 'kind');
  if (kind === null) return 'Unknown';
  const name = get(obj, 'metadata.name');
  const ns = get(obj, 'metadata.namespace');
  return `${goFmt(kind)}/${name === null ? 'undefined' : goFmt(name)}.${ns === null ? 'default' : goFmt(ns)}`;
}

/** kubesec's RuleRefCustomOrder: positive points descending, negative ascending, then selector. */
function order(a: RuleRef, b: RuleRef): number {
  if (a.points !== b.points) {
    if (a.points > 0 || b.points > 0) return b.points - a.points;
    return a.points - b.points;
  }
  return a.selector < b.selector ? -1 : a.selector > b.selector ? 1 : 0;
}

export interface KubesecResult {
  report: KubesecReport;
  /** Rules that applied to the kind, with how many containers (or 1/0) matched. */
  applied: Array<{ rule: KubesecRule; matches: number }>;
}

/** Score one object (the JSON view of one YAML document) as kubesec does. */
export function kubesecScore(obj: Json, fileName: string, ruleset: KubesecRuleset = 'latest', ruleIds?: readonly string[]): KubesecResult {
  const report: KubesecReport = { object: kubesecObjectName(obj), valid: true, fileName, score: 0, scoring: {} };
  const critical: RuleRef[] = [];
  const passed: RuleRef[] = [];
  const advise: RuleRef[] = [];
  const applied: KubesecResult['applied'] = [];
  const kind = get(obj, 'kind');
  for (const rule of kubesecRules(ruleset)) {
    if (ruleIds && !ruleIds.includes(rule.id)) continue;
    if (typeof kind !== 'string' || !rule.kinds.includes(kind)) continue;
    let matches = 0;
    try {
      matches = rule.predicate(obj);
    } catch {
      matches = 0;
    }
    applied.push({ rule, matches });
    const ref: RuleRef = { id: rule.id, selector: rule.selector, reason: rule.reason, points: rule.points };
    if (matches > 0) {
      report.score += rule.points;
      (rule.points >= 0 ? passed : critical).push(ref);
    } else if (rule.points >= 0) advise.push(ref);
  }
  if (applied.length < 1) report.message = 'This resource kind is not supported by kubesec';
  else if (report.score >= 0) report.message = `Passed with a score of ${report.score} points`;
  else report.message = `Failed with a score of ${report.score} points`;
  critical.sort(order);
  passed.sort(order);
  advise.sort(order);
  if (critical.length) report.scoring.critical = critical;
  if (passed.length) report.scoring.passed = passed;
  if (advise.length) report.scoring.advise = advise;
  // kubesec's field order: message before score.
  const ordered: KubesecReport = { object: report.object, valid: report.valid, fileName: report.fileName, ...(report.message ? { message: report.message } : {}), score: report.score, scoring: report.scoring };
  return { report: ordered, applied };
}

/** kubesec's JSON output (Go's encoder: two-space indent, <, > and & escaped). */
export function formatKubesecJson(reports: readonly KubesecReport[]): string {
  return JSON.stringify(reports, null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
