import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { mulberry32, plinthCommand, runPlinth } from './helpers/common.js';
import { peer } from './helpers/peers.js';
import { tempDir, type TempDir } from './helpers/util.js';
import { kubesecRules } from '../src/lint/kubesec.js';

/**
 * The real kubesec (v2.14.2, built by scripts/peers.sh) is the oracle: a generated corpus of
 * manifests that varies every rule goes through `kubesec scan` and `plinth lint --format kubesec
 * --kubesec-rules 2.14`; the reports must be identical (objects, scores, messages, the critical /
 * passed / advise lists with their order). kubesec validates against Kubernetes JSON schemas it
 * fetches online; offline it is given permissive local schemas (kubeconform's file layout) so only
 * the rules differ.
 */
const run = promisify(execFile);

type Obj = Record<string, unknown>;

const KINDS: Array<{ kind: string; apiVersion: string; schema: string }> = [
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

const N = 120;

describe('plinth lint --format kubesec against the real kubesec', () => {
  let dir: TempDir;
  let kubesec: string;
  before(async () => {
    kubesec = peer('kubesec');
    dir = await tempDir('plinth-kubesec');
    await mkdir(path.join(dir.path, 'schemas'));
    for (const k of KINDS) await writeFile(path.join(dir.path, 'schemas', `${k.schema}.json`), '{"type": "object"}');
  });
  after(async () => dir?.remove());

  const kubesecScan = async (file: string): Promise<unknown> => {
    // kubesec exits 2 when any score is 0 or below: the report is on stdout either way.
    const r = await run(kubesec, ['scan', '--schema-location', `${dir.path}/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json`, file], { cwd: dir.path, maxBuffer: 64 << 20 }).catch((e: { stdout?: string; code?: number; stderr?: string }) => {
      if (e.code === 2 && e.stdout) return { stdout: e.stdout, stderr: e.stderr ?? '' };
      throw e;
    });
    return JSON.parse(r.stdout);
  };

  test(`a corpus of ${N} generated manifests: identical reports`, async () => {
    assert.ok(existsSync(kubesec));
    const docs = Array.from({ length: N }, (_, i) => generateManifest(i));
    await writeFile(path.join(dir.path, 'corpus.yaml'), docs.map((d) => stringify(d)).join('---\n'));
    const theirs = (await kubesecScan('corpus.yaml')) as Array<{ object: string; score: number; scoring: Record<string, Array<{ id: string }>> }>;
    const ours = await runInDir(dir.path, ['lint', '--format', 'kubesec', '--kubesec-rules', '2.14', 'corpus.yaml']);
    assert.equal(theirs.length, N);
    assert.equal(ours.length, N);
    for (let i = 0; i < N; i++) assert.deepEqual(ours[i], theirs[i], `document ${i} (${JSON.stringify(docs[i]).slice(0, 300)})`);
    // The corpus varies every rule: each rule of kubesec v2.14.2 both matched and not.
    const matched = new Set<string>();
    const unmatched = new Set<string>();
    for (const rep of theirs) {
      for (const x of [...(rep.scoring['critical'] ?? []), ...(rep.scoring['passed'] ?? [])]) matched.add(x.id);
      for (const x of rep.scoring['advise'] ?? []) unmatched.add(x.id);
    }
    for (const rule of kubesecRules('2.14')) {
      assert.ok(matched.has(rule.id), `no manifest matches ${rule.id}`);
      if (rule.points > 0) assert.ok(unmatched.has(rule.id), `every manifest matches ${rule.id}`);
    }
    // Scores of every sign, and kinds kubesec does not score.
    assert.ok(theirs.some((x) => x.score < 0) && theirs.some((x) => x.score > 0));
    assert.ok(theirs.some((x) => Object.keys(x.scoring).length === 0));
  });

  test('one manifest per file, JSON input, and a manifest from standard input', async () => {
    for (let i = 0; i < 12; i++) {
      const doc = generateManifest(1000 + i, 7);
      const name = `one-${i}.${i % 3 === 0 ? 'json' : 'yaml'}`;
      await writeFile(path.join(dir.path, name), i % 3 === 0 ? JSON.stringify(doc) : stringify(doc));
      const theirs = await kubesecScan(name);
      const ours = await runInDir(dir.path, ['lint', '--format', 'kubesec', '--kubesec-rules', '2.14', name]);
      assert.deepEqual(ours, theirs, name);
    }
    const docs = [generateManifest(2000, 9), generateManifest(2001, 9), generateManifest(2002, 9)];
    const input = docs.map((d) => stringify(d)).join('---\n');
    const k = spawnSync(kubesec, ['scan', '--schema-location', `${dir.path}/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json`, '-'], { input, encoding: 'utf8' });
    const p = await runPlinth(['lint', '--format', 'kubesec', '--kubesec-rules', '2.14', '-'], { input });
    assert.ok(p.code === 0 || p.code === 1, p.stderr);
    assert.deepEqual(JSON.parse(p.stdout), JSON.parse(k.stdout));
    assert.equal((JSON.parse(p.stdout) as Array<{ fileName: string }>)[0]!.fileName, 'STDIN');
  });
});

async function runInDir(cwd: string, args: string[]): Promise<unknown[]> {
  const c = plinthCommand(args);
  const r = await run(c.file, c.args, { cwd, env: c.env, maxBuffer: 64 << 20 }).catch((e: { stdout?: string; code?: number; stderr?: string }) => {
    if ((e.code === 1 || e.code === 0) && e.stdout) return { stdout: e.stdout, stderr: e.stderr ?? '' };
    throw new Error(`plinth ${args.join(' ')} failed (${e.code}): ${e.stderr}`);
  });
  return JSON.parse(r.stdout) as unknown[];
}
