import { mulberry32 } from './common.js';

/**
 * Generated Kubernetes manifests that set (or not) what every kubesec rule looks at: the oracle
 * test (test/lint-kubesec.test.ts) and the benchmark (bench/lint.ts) use them.
 */
type Obj = Record<string, unknown>;

export const KINDS: Array<{ kind: string; apiVersion: string; schema: string }> = [
  { kind: 'Pod', apiVersion: 'v1', schema: 'pod-v1' },
  { kind: 'Deployment', apiVersion: 'apps/v1', schema: 'deployment-apps-v1' },
  { kind: 'StatefulSet', apiVersion: 'apps/v1', schema: 'statefulset-apps-v1' },
  { kind: 'DaemonSet', apiVersion: 'apps/v1', schema: 'daemonset-apps-v1' },
  { kind: 'Job', apiVersion: 'batch/v1', schema: 'job-batch-v1' },
  { kind: 'CronJob', apiVersion: 'batch/v1', schema: 'cronjob-batch-v1' },
  { kind: 'ReplicaSet', apiVersion: 'apps/v1', schema: 'replicaset-apps-v1' },
  { kind: 'Service', apiVersion: 'v1', schema: 'service-v1' },
  { kind: 'ConfigMap', apiVersion: 'v1', schema: 'configmap-v1' },
  { kind: 'RoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1', schema: 'rolebinding-rbac-v1' },
  { kind: 'ClusterRoleBinding', apiVersion: 'rbac.authorization.k8s.io/v1', schema: 'clusterrolebinding-rbac-v1' },
];

/** A manifest that sets (or not) what every kubesec rule looks at, chosen by a seeded generator. */
export function generateManifest(i: number, seed = 1): Obj {
  const r = mulberry32(seed * 100_003 + i);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const maybe = (p = 0.5) => r() < p;
  // Workloads most of the time; the other kinds now and then.
  const k = i < 8 ? KINDS[i % 4]! : maybe(0.85) ? KINDS[Math.floor(r() * 4)]! : pick(KINDS.slice(4));
  const metadata: Obj = { name: `obj-${i}` };
  if (maybe(0.3)) metadata['namespace'] = pick(['prod', 'dev', 'kube-system']);
  const annotations: Obj = {};
  if (maybe(0.3)) annotations['container.seccomp.security.alpha.kubernetes.io/pod'] = pick(['runtime/default', 'unconfined', 'docker/default']);
  if (maybe(0.2)) annotations['container.seccomp.security.alpha.kubernetes.io/app'] = pick(['runtime/default', 'unconfined']);
  if (maybe(0.3)) annotations['container.apparmor.security.beta.kubernetes.io/pod'] = pick(['runtime/default', 'unconfined', 'localhost/prof']);
  if (maybe(0.2)) annotations['container.apparmor.security.beta.kubernetes.io/app'] = pick(['runtime/default', 'unconfined']);
  if (maybe(0.2)) annotations['team'] = 'x';
  if (Object.keys(annotations).length) metadata['annotations'] = annotations;
  const obj: Obj = { apiVersion: k.apiVersion, kind: k.kind, metadata };
  if (k.kind === 'RoleBinding' || k.kind === 'ClusterRoleBinding') {
    obj['roleRef'] = { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' };
    obj['subjects'] = [{ kind: 'User', name: pick(['system:anonymous', 'alice', 'system:authenticated']), apiGroup: 'rbac.authorization.k8s.io' }];
    return obj;
  }
  if (k.kind === 'Service') {
    obj['spec'] = { ports: [{ port: 80 }], selector: { app: 'x' } };
    return obj;
  }
  if (k.kind === 'ConfigMap') {
    obj['data'] = { hostNetwork: 'true' };
    return obj;
  }
  const sc = (): Obj | undefined => {
    const s: Obj = {};
    if (maybe(0.35)) s['runAsNonRoot'] = maybe(0.7);
    if (maybe(0.35)) s['runAsUser'] = pick([0, 1000, 10000, 10001, 65534]);
    if (maybe(0.35)) s['runAsGroup'] = pick([0, 10000, 10001, 20000]);
    if (maybe(0.25)) s['seccompProfile'] = { type: pick(['RuntimeDefault', 'Unconfined', 'Localhost']) };
    if (maybe(0.2)) s['appArmorProfile'] = { type: pick(['RuntimeDefault', 'Unconfined']) };
    return Object.keys(s).length ? s : undefined;
  };
  const container = (name: string): Obj => {
    const c: Obj = { name, image: pick(['nginx', 'nginx:1.27', 'ghcr.io/acme/app:1.0', 'registry.example.com/x@sha256:' + 'a'.repeat(64)]) };
    const s: Obj = sc() ?? {};
    if (maybe(0.3)) s['readOnlyRootFilesystem'] = maybe(0.7);
    if (maybe(0.2)) s['privileged'] = maybe(0.5);
    if (maybe(0.25)) s['allowPrivilegeEscalation'] = maybe(0.5);
    if (maybe(0.4)) {
      const caps: Obj = {};
      if (maybe(0.6)) caps['drop'] = pick([['ALL'], ['NET_RAW'], ['all'], [], ['NET_RAW', 'ALL']]);
      if (maybe(0.4)) caps['add'] = pick([['SYS_ADMIN'], ['NET_BIND_SERVICE'], ['CAP_SYS_ADMIN', 'CHOWN']]);
      s['capabilities'] = caps;
    }
    if (Object.keys(s).length) c['securityContext'] = s;
    if (maybe(0.6)) {
      const res: Obj = {};
      if (maybe(0.6)) res['requests'] = Object.fromEntries([maybe(0.7) ? ['cpu', '100m'] : null, maybe(0.7) ? ['memory', '64Mi'] : null].filter((x): x is [string, string] => x !== null));
      if (maybe(0.6)) res['limits'] = Object.fromEntries([maybe(0.7) ? ['cpu', '1'] : null, maybe(0.7) ? ['memory', '128Mi'] : null].filter((x): x is [string, string] => x !== null));
      c['resources'] = res;
    }
    if (maybe(0.15)) c['env'] = [{ name: 'A', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }];
    if (maybe(0.1)) c['envFrom'] = [{ secretRef: { name: 's' } }];
    return c;
  };
  const pod: Obj = { containers: Array.from({ length: 1 + Math.floor(r() * 3) }, (_, j) => container(`c${j}`)) };
  if (maybe(0.3)) pod['initContainers'] = [container('init')];
  if (maybe(0.1)) pod['ephemeralContainers'] = [container('debug')];
  for (const f of ['hostNetwork', 'hostPID', 'hostIPC'] as const) if (maybe(0.2)) pod[f] = maybe(0.6);
  if (maybe(0.3)) pod['serviceAccountName'] = pick(['app', '']);
  if (maybe(0.15)) pod['hostAliases'] = pick([[{ ip: '10.0.0.1', hostnames: ['x'] }], []]);
  if (maybe(0.3)) pod['automountServiceAccountToken'] = maybe(0.6);
  if (maybe(0.15)) pod['hostUsers'] = maybe(0.6);
  const psc = sc();
  if (psc) pod['securityContext'] = psc;
  if (maybe(0.3)) pod['volumes'] = [{ name: 'v', hostPath: { path: pick(['/var/run/docker.sock', '/proc', '/proc/sys', '/data', '/var/run']) } }, ...(maybe(0.5) ? [{ name: 'e', emptyDir: {} }] : [])];
  const template = { metadata: { labels: { app: 'x' } }, spec: pod };
  if (k.kind === 'Pod') obj['spec'] = pod;
  else if (k.kind === 'CronJob') obj['spec'] = { schedule: '* * * * *', jobTemplate: { spec: { template } } };
  else {
    const spec: Obj = { template };
    if (k.kind !== 'Job') spec['selector'] = { matchLabels: { app: 'x' } };
    if (k.kind === 'StatefulSet' && maybe(0.7)) {
      spec['volumeClaimTemplates'] = Array.from({ length: 1 + Math.floor(r() * 2) }, () => {
        const s: Obj = {};
        if (maybe(0.7)) s['accessModes'] = pick([['ReadWriteOnce'], ['ReadWriteMany'], ['ReadWriteOnce', 'ReadOnlyMany']]);
        if (maybe(0.7)) s['resources'] = { requests: { storage: '1Gi' } };
        return { metadata: { name: 'data' }, spec: s };
      });
    }
    obj['spec'] = spec;
  }
  return obj;
}

