import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { CatalogSchema } from '../src/provenance/catalog.js';
import { CHECKED_KINDS } from '../src/admission/wire.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { peer } from './helpers/peers.js';
import { repoRoot } from './helpers/common.js';

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

const ROOT = repoRoot();
const MANIFESTS = path.join(ROOT, 'deploy', 'manifests');
const CHART = path.join(ROOT, 'deploy', 'helm', 'plinth');

type Obj = Record<string, any>;

/**
 * Parse YAML as Kubernetes does: sigs.k8s.io/yaml reads YAML 1.1, where `0440` is octal (288).
 * Every document must parse without errors or warnings.
 */
function parseDocs(text: string, where: string): Obj[] {
  const docs = parseAllDocuments(text, { version: '1.1', uniqueKeys: true });
  if (!Array.isArray(docs)) throw new Error(`${where}: not a YAML stream`);
  const out: Obj[] = [];
  for (const d of docs) {
    assert.deepEqual(d.errors.map(String), [], `${where}: YAML errors`);
    assert.deepEqual(d.warnings.map(String), [], `${where}: YAML warnings`);
    const v = d.toJS() as Obj | null;
    if (v !== null) out.push(v);
  }
  return out;
}

function loadManifests(): Obj[] {
  const files = readdirSync(MANIFESTS).filter((f) => /\.ya?ml$/.test(f)).sort();
  assert.ok(files.length >= 8);
  return files.flatMap((f) => parseDocs(readFileSync(path.join(MANIFESTS, f), 'utf8'), f));
}

function byKind(objs: Obj[], kind: string): Obj {
  const found = objs.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind}`);
  return found[0]!;
}

function selectorMatches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Resource names of the kinds `extractImages` checks (legacy groups are served by these rules via matchPolicy: Equivalent). */
const RESOURCE_OF: Record<string, [string, string]> = {
  Pod: ['', 'pods'],
  ReplicationController: ['', 'replicationcontrollers'],
  EphemeralContainers: ['', 'pods/ephemeralcontainers'],
  'apps/Deployment': ['apps', 'deployments'],
  'apps/ReplicaSet': ['apps', 'replicasets'],
  'apps/StatefulSet': ['apps', 'statefulsets'],
  'apps/DaemonSet': ['apps', 'daemonsets'],
  'extensions/Deployment': ['apps', 'deployments'],
  'extensions/ReplicaSet': ['apps', 'replicasets'],
  'extensions/DaemonSet': ['apps', 'daemonsets'],
  'batch/Job': ['batch', 'jobs'],
  'batch/CronJob': ['batch', 'cronjobs'],
};

/** Check every invariant the operator relies on; `ns` and `name` are the install's. */
function checkInvariants(objs: Obj[], o: { ns: string; name: string; caBundle: string; replicas: number; failurePolicy: string; timeoutSeconds: number; extraExcluded: string[] }): void {
  for (const kind of ['ServiceAccount', 'ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) byKind(objs, kind);
  for (const obj of objs) {
    assert.ok(obj.apiVersion && obj.kind && obj.metadata?.name, `every object has apiVersion, kind and name: ${JSON.stringify(obj).slice(0, 80)}`);
    if (!['Namespace', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'].includes(obj.kind)) {
      assert.equal(obj.metadata.namespace, o.ns, `${obj.kind} ${obj.metadata.name} is in ${o.ns}`);
    }
  }

  const sa = byKind(objs, 'ServiceAccount');
  const cm = byKind(objs, 'ConfigMap');
  const dep = byKind(objs, 'Deployment');
  const svc = byKind(objs, 'Service');
  const pdb = byKind(objs, 'PodDisruptionBudget');

  // ConfigMap: policy.yaml and catalog.yaml, the catalog a valid (empty) catalog.
  assert.deepEqual(Object.keys(cm.data).sort(), ['catalog.yaml', 'policy.yaml']);
  assert.deepEqual(CatalogSchema.parse(parse(cm.data['catalog.yaml'])).bases, []);
  assert.equal(parse(cm.data['policy.yaml']).kind, 'ImagePolicy');

  // Deployment.
  assert.equal(dep.spec.replicas, o.replicas);
  const podLabels = dep.spec.template.metadata.labels;
  assert.ok(selectorMatches(dep.spec.selector.matchLabels, podLabels), 'the Deployment selects its Pods');
  const pod = dep.spec.template.spec;
  assert.equal(pod.serviceAccountName, sa.metadata.name);
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  assert.equal(c.securityContext.runAsNonRoot, true);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
  assert.equal(c.securityContext.capabilities.add, undefined);
  assert.equal(c.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.equal(c.securityContext.privileged, undefined);
  assert.ok(c.resources.requests.cpu && c.resources.requests.memory && c.resources.limits.memory, 'requests and a memory limit');
  const https = c.ports.find((p: Obj) => p.name === 'https');
  assert.equal(https.containerPort, 8443);
  for (const [probe, p] of [
    ['readinessProbe', '/readyz'],
    ['livenessProbe', '/healthz'],
  ] as const) {
    assert.equal(c[probe].httpGet.path, p);
    assert.equal(c[probe].httpGet.scheme, 'HTTPS');
    assert.ok(c[probe].httpGet.port === 'https' || c[probe].httpGet.port === 8443);
  }
  // The TLS Secret and the ConfigMap are mounted read-only; /tmp is writable.
  const volumes: Obj[] = pod.volumes;
  const tls = volumes.find((v) => v.secret);
  assert.equal(tls!.secret.secretName, 'plinth-tls');
  assert.equal(tls!.secret.defaultMode, 0o440, 'YAML 1.1 octal, as Kubernetes reads it');
  assert.equal(volumes.find((v) => v.configMap)!.configMap.name, cm.metadata.name);
  const mounts: Obj[] = c.volumeMounts;
  assert.equal(mounts.find((m) => m.name === tls!.name)!.readOnly, true);
  assert.ok(mounts.find((m) => m.name === tls!.name)!.mountPath);
  assert.ok(c.args.includes(`--tls-cert=${mounts.find((m) => m.name === tls!.name)!.mountPath}/tls.crt`));
  assert.ok(mounts.some((m) => m.mountPath === '/tmp'));
  assert.ok(c.args.includes(`--port=${https.containerPort}`));

  // Service → Deployment port.
  assert.ok(selectorMatches(svc.spec.selector, podLabels), 'the Service selects the webhook Pods');
  const sp = svc.spec.ports.find((p: Obj) => p.name === 'https');
  assert.equal(sp.port, 443);
  const target = typeof sp.targetPort === 'string' ? c.ports.find((p: Obj) => p.name === sp.targetPort)?.containerPort : sp.targetPort;
  assert.equal(target, https.containerPort, 'Service targetPort resolves to the container port');

  // PodDisruptionBudget.
  assert.equal(pdb.apiVersion, 'policy/v1');
  assert.equal(pdb.spec.minAvailable, 1);
  assert.ok(pdb.spec.minAvailable < o.replicas);
  assert.ok(selectorMatches(pdb.spec.selector.matchLabels, podLabels));

  // Webhooks.
  const expectedExcluded = new Set(['kube-system', o.ns, ...o.extraExcluded]);
  for (const [kind, path, mutating] of [
    ['ValidatingWebhookConfiguration', '/validate', false],
    ['MutatingWebhookConfiguration', '/mutate', true],
  ] as const) {
    const cfg = byKind(objs, kind);
    assert.equal(cfg.apiVersion, 'admissionregistration.k8s.io/v1');
    assert.equal(cfg.webhooks.length, 1);
    const wh = cfg.webhooks[0];
    assert.match(wh.name, /^[a-z0-9-]+(\.[a-z0-9-]+){2,}$/, 'a fully qualified webhook name');
    assert.deepEqual(wh.admissionReviewVersions, ['v1']);
    assert.equal(wh.sideEffects, 'None');
    assert.equal(wh.failurePolicy, o.failurePolicy);
    assert.equal(wh.timeoutSeconds, o.timeoutSeconds);
    assert.ok(wh.timeoutSeconds >= 1 && wh.timeoutSeconds <= 30, 'timeoutSeconds within 1..30');
    assert.equal(wh.matchPolicy, 'Equivalent');
    assert.deepEqual(wh.clientConfig.service, { name: svc.metadata.name, namespace: o.ns, path, port: sp.port });
    assert.equal(wh.clientConfig.url, undefined);
    assert.equal(wh.clientConfig.caBundle, o.caBundle);
    if (mutating) assert.equal(wh.reinvocationPolicy, 'IfNeeded');
    else assert.equal(wh.reinvocationPolicy, undefined);

    // Rules: CREATE and UPDATE of every kind extractImages checks.
    const covered = new Set<string>();
    for (const r of wh.rules) {
      assert.deepEqual(r.operations, ['CREATE', 'UPDATE']);
      assert.equal(r.scope, 'Namespaced');
      for (const g of r.apiGroups) for (const res of r.resources) covered.add(`${g}/${res}`);
    }
    for (const k of CHECKED_KINDS) {
      const [g, res] = RESOURCE_OF[k] ?? assert.fail(`no resource known for ${k}`);
      assert.ok(covered.has(`${g}/${res}`), `${kind} covers ${g}/${res}`);
    }

    // Exclusions: kube-system and the webhook's own namespace, by name.
    const exprs: Obj[] = wh.namespaceSelector.matchExpressions;
    const notIn = exprs.find((e) => e.key === 'kubernetes.io/metadata.name' && e.operator === 'NotIn');
    assert.ok(notIn, 'a kubernetes.io/metadata.name NotIn expression');
    assert.deepEqual(new Set(notIn!.values), expectedExcluded);
    // Requests from the webhook's own service account are skipped.
    const own = `system:serviceaccount:${o.ns}:${sa.metadata.name}`;
    assert.ok(
      wh.matchConditions.some((m: Obj) => m.expression === `request.userInfo.username != '${own}'`),
      `a matchCondition skipping ${own}`,
    );
    assert.ok(wh.matchConditions.length <= 64);
  }
}

// ---------------------------------------------------------------------------------------------
// Plain manifests
// ---------------------------------------------------------------------------------------------

describe('deploy/manifests', () => {
  const objs = loadManifests();

  test('every document parses; the expected objects are there', () => {
    assert.deepEqual(
      objs.map((o) => o.kind),
      ['Namespace', 'ServiceAccount', 'ConfigMap', 'Deployment', 'Service', 'PodDisruptionBudget', 'ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration'],
      'in an order kubectl apply -f can follow (namespace first, webhooks last)',
    );
  });

  test('invariants: fail closed, bounded timeouts, exclusions, consistent ports, locked-down Pods', () => {
    checkInvariants(objs, { ns: 'plinth-system', name: 'plinth', caBundle: '__PLINTH_CA_BUNDLE__', replicas: 2, failurePolicy: 'Fail', timeoutSeconds: 10, extraExcluded: [] });
    const ns = byKind(objs, 'Namespace');
    assert.equal(ns.metadata.name, 'plinth-system');
    assert.equal(ns.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  test('the caBundle placeholder is not valid base64, so an unfilled configuration cannot be applied', () => {
    assert.doesNotMatch('__PLINTH_CA_BUNDLE__', /^[A-Za-z0-9+/]*={0,2}$/);
  });
});

// ---------------------------------------------------------------------------------------------
// Helm chart (rendered and linted by the real helm, built by scripts/peers.sh)
// ---------------------------------------------------------------------------------------------

describe('deploy/helm/plinth', () => {
  const chartMeta = parse(readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8')) as Obj;
  const defaults = parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as Obj;
  const CA = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');

  /** Run helm; returns stdout, or throws an Error carrying helm's own message. */
  function helm(args: string[]): string {
    try {
      return execFileSync(peer('helm'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HELM_CACHE_HOME: path.join(os.tmpdir(), 'plinth-helm-cache'), HELM_CONFIG_HOME: path.join(os.tmpdir(), 'plinth-helm-config'), HELM_DATA_HOME: path.join(os.tmpdir(), 'plinth-helm-data') } });
    } catch (e) {
      const err = e as { stderr?: string; stdout?: string; message: string };
      throw new Error(`helm ${args[0]}: ${(err.stderr || err.stdout || err.message).trim()}`);
    }
  }

  /** `helm template` with these values (a whole values document, as the test merged it). */
  function render(values: Obj, release = { Name: 'plinth', Namespace: 'plinth-system' }): Obj[] {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'plinth-helm-'));
    try {
      const file = path.join(dir, 'values.json');
      writeFileSync(file, JSON.stringify(values));
      return parseDocs(helm(['template', release.Name, CHART, '--namespace', release.Namespace, '-f', file]), 'helm template');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const merge = (a: Obj, b: Obj): Obj => {
    const out: Obj = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object' ? merge(a[k], v) : v;
    return out;
  };

  test('Chart.yaml and values.yaml', () => {
    assert.equal(chartMeta.apiVersion, 'v2');
    assert.equal(chartMeta.name, 'plinth');
    assert.match(chartMeta.version, /^\d+\.\d+\.\d+/);
    assert.equal(defaults.replicas, 2);
    assert.equal(defaults.webhook.failurePolicy, 'Fail');
    assert.equal(defaults.webhook.timeoutSeconds, 10);
    assert.equal(defaults.tls.secretName, 'plinth-tls');
    assert.equal(defaults.tls.caBundle, '');
  });

  test('without a caBundle the chart refuses to render', () => {
    assert.throws(() => render(defaults), (e: unknown) => e instanceof Error && /tls\.caBundle is required/.test(e.message));
  });

  test('helm lint passes (strict) with a caBundle', () => {
    const out = helm(['lint', '--strict', CHART, '--set', `tls.caBundle=${CA}`]);
    assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test('defaults render the same objects as deploy/manifests', () => {
    const rendered = render(merge(defaults, { createNamespace: true, tls: { caBundle: '__PLINTH_CA_BUNDLE__' } }));
    // Helm adds the instance and version labels; the plain manifests do not.
    const strip = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(strip);
      if (v && typeof v === 'object') {
        const out: Obj = {};
        for (const [k, x] of Object.entries(v)) if (k !== 'app.kubernetes.io/instance' && k !== 'app.kubernetes.io/version') out[k] = strip(x);
        return out;
      }
      return v;
    };
    const key = (o: Obj) => `${o.kind}/${o.metadata.name}`;
    const plain = new Map(loadManifests().map((o) => [key(o), o]));
    assert.deepEqual([...rendered.map(key)].sort(), [...plain.keys()].sort());
    for (const o of rendered) assert.deepEqual(strip(o), plain.get(key(o)), key(o));
  });

  test('values change what they should', () => {
    const objs = render(
      merge(defaults, {
        replicas: 3,
        fullnameOverride: 'gate',
        image: { repository: 'ghcr.example/plinth', digest: 'sha256:' + 'a'.repeat(64) },
        webhook: { failurePolicy: 'Ignore', timeoutSeconds: 5, excludedNamespaces: ['kube-system', 'monitoring', 'security'] },
        tls: { caBundle: CA, secretName: 'gate-tls' },
        imagePullSecrets: [{ name: 'regcred' }],
        allowPrivateRegistries: ['*.registry.svc.cluster.local', '10.0.0.12'],
      }),
      { Name: 'rel', Namespace: 'security' },
    );
    const args = byKind(objs, 'Deployment').spec.template.spec.containers[0].args as string[];
    assert.deepEqual(args.filter((a) => a.startsWith('--allow-private-registry')), ['--allow-private-registry=*.registry.svc.cluster.local', '--allow-private-registry=10.0.0.12']);
    assert.equal(objs.find((o) => o.kind === 'Namespace'), undefined, 'no Namespace unless createNamespace');
    const dep = byKind(objs, 'Deployment');
    assert.equal(dep.metadata.name, 'gate');
    assert.equal(dep.spec.template.spec.containers[0].image, `ghcr.example/plinth@sha256:${'a'.repeat(64)}`);
    assert.deepEqual(dep.spec.template.spec.imagePullSecrets, [{ name: 'regcred' }]);
    assert.equal(dep.spec.template.spec.volumes.find((v: Obj) => v.secret).secret.secretName, 'gate-tls');
    // The release namespace is excluded once, even when listed.
    for (const kind of ['ValidatingWebhookConfiguration', 'MutatingWebhookConfiguration']) {
      const values = byKind(objs, kind).webhooks[0].namespaceSelector.matchExpressions[0].values;
      assert.deepEqual(values, ['kube-system', 'monitoring', 'security']);
    }
    // checkInvariants expects the default secret name; patch it back for the shared checks.
    dep.spec.template.spec.volumes.find((v: Obj) => v.secret).secret.secretName = 'plinth-tls';
    checkInvariants(objs, { ns: 'security', name: 'gate', caBundle: CA, replicas: 3, failurePolicy: 'Ignore', timeoutSeconds: 5, extraExcluded: ['monitoring'] });
  });

  test('day 2: the store Secret, the webhook\'s store, the worker (Deployment or CronJob) and the API', async () => {
    const day2 = { tls: { caBundle: CA }, store: { enabled: true, url: 'postgres://plinth:secret@db.plinth-system:5432/plinth', cluster: 'prod' }, worker: { enabled: true, dbClaim: 'plinth-advisories', dbUpdateArgs: ['pull', 'registry.example/plinth/vuln-db:latest'], notify: ['https://hooks.example/plinth/T0/B0/secret'], owners: 'owners:\n  - repositories: "ghcr.example/team-a/**"\n    contact: team-a\n' }, api: { enabled: true, tokenSecret: 'plinth-api' } };
    const objs = render(merge(defaults, day2));
    const secret = objs.find((o) => o.kind === 'Secret' && o.metadata.name === 'plinth-store');
    assert.equal(secret?.stringData?.url, 'postgres://plinth:secret@db.plinth-system:5432/plinth');
    const deps = objs.filter((o) => o.kind === 'Deployment');
    const webhook = deps.find((d) => d.metadata.name === 'plinth')!;
    const c = webhook.spec.template.spec.containers[0];
    assert.ok(c.args.includes('--cluster=prod'));
    assert.ok(!c.args.some((a: string) => a.includes('postgres://') || a.includes('PLINTH_STORE')), 'the store URL is never an argument');
    assert.deepEqual(c.env, [{ name: 'PLINTH_STORE', valueFrom: { secretKeyRef: { name: 'plinth-store', key: 'url' } } }]);
    const worker = deps.find((d) => d.metadata.name === 'plinth-watch')!;
    assert.equal(worker.spec.replicas, 2);
    const w = worker.spec.template.spec.containers[0];
    assert.equal(w.args[0], 'watch');
    assert.ok(!w.args.includes('--once'));
    assert.ok(w.args.includes('--deny-private-networks'), 'references recorded from pod specs are not trusted');
    assert.ok(w.args.includes('--owners=/etc/plinth/notify/owners.yaml'));
    assert.ok(w.args.includes('--match-workers=0'), 'no extra matching processes under the default CPU limit of 1');
    assert.ok(w.args.includes('--event-retention=90d'));
    assert.equal(w.env[0].valueFrom.secretKeyRef.name, 'plinth-store');
    // Webhook URLs are secrets: in a Secret (targets and the owners file), never in arguments.
    assert.ok(!JSON.stringify(objs.filter((o) => o.kind !== 'Secret')).includes('hooks.example'), 'no webhook URL outside Secrets');
    assert.deepEqual(w.env.find((e: Obj) => e.name === 'PLINTH_NOTIFY').valueFrom.secretKeyRef, { name: 'plinth-notify', key: 'targets' });
    const notifySecret = objs.find((o) => o.kind === 'Secret' && o.metadata.name === 'plinth-notify')!;
    assert.equal(notifySecret.stringData.targets, 'https://hooks.example/plinth/T0/B0/secret');
    assert.match(notifySecret.stringData['owners.yaml'], /contact: team-a/);
    // The replicas share one advisory database, refreshed by a CronJob (no per-replica init container).
    assert.equal(worker.spec.template.spec.initContainers, undefined);
    assert.equal(worker.spec.template.spec.volumes.find((v: Obj) => v.name === 'advisories').persistentVolumeClaim.claimName, 'plinth-advisories');
    const refresh = objs.find((o) => o.kind === 'CronJob' && o.metadata.name === 'plinth-advisories')!;
    assert.deepEqual(refresh.spec.jobTemplate.spec.template.spec.containers[0].args, ['db', 'pull', 'registry.example/plinth/vuln-db:latest', '--db=/var/lib/plinth/vuln.db']);
    assert.throws(() => render(merge(defaults, { ...day2, worker: { enabled: true, dbClaim: '' } })), (e: unknown) => /needs worker\.dbClaim/.test(String(e)));
    assert.deepEqual(w.securityContext.capabilities, { drop: ['ALL'] });
    assert.equal(w.securityContext.readOnlyRootFilesystem, true);
    // Every flag the worker is given exists (the real CLI's help lists it).
    const help = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'plinth.cjs'), 'watch', '--help'], { encoding: 'utf8' });
    for (const a of w.args.slice(1)) assert.ok(help.includes(a.split('=')[0]), `${a} is a plinth watch flag`);
    const api = deps.find((d) => d.metadata.name === 'plinth-api')!;
    assert.ok(api.spec.template.spec.containers[0].args.includes('--token-file=/etc/plinth/api/token'));
    assert.equal(objs.find((o) => o.kind === 'Service' && o.metadata.name === 'plinth-api')?.spec.ports[0].port, 8080);
    assert.equal(api.spec.template.spec.containers.length, 1, 'no dashboard unless api.ui');
    // api.ui: the dashboard beside the API, same token and store; its flags exist in the real CLI.
    const withUi = render(merge(defaults, { ...day2, api: { enabled: true, tokenSecret: 'plinth-api', ui: true } }));
    const uiPod = withUi.find((o) => o.kind === 'Deployment' && o.metadata.name === 'plinth-api')!.spec.template.spec;
    const ui = uiPod.containers.find((c: { name: string }) => c.name === 'ui');
    assert.deepEqual(ui.args, ['ui', '--host=0.0.0.0', '--port=8081', '--token-file=/etc/plinth/api/token', '--catalog=/etc/plinth/config/catalog.yaml']);
    assert.deepEqual(ui.env, uiPod.containers[0].env, 'the same store as the API');
    const uiHelp = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'plinth.cjs'), 'ui', '--help'], { encoding: 'utf8' });
    for (const a of ui.args.slice(1)) assert.ok(uiHelp.includes(a.split('=')[0]), `${a} is a plinth ui flag`);
    assert.deepEqual(withUi.find((o) => o.kind === 'Service' && o.metadata.name === 'plinth-api')?.spec.ports.map((p: { name: string; port: number }) => [p.name, p.port]), [['http', 8080], ['ui', 8081]]);
    // Without a token Secret the API is not rendered open; the worker needs the store.
    assert.throws(() => render(merge(defaults, { ...day2, api: { enabled: true } })), (e: unknown) => /api\.tokenSecret is required/.test(String(e)));
    assert.throws(() => render(merge(defaults, { tls: { caBundle: CA }, worker: { enabled: true } })), (e: unknown) => /worker\.enabled needs store\.enabled/.test(String(e)));

    // The CronJob alternative: `plinth watch --once`; its arguments run as they are with the real CLI.
    const cron = render(merge(defaults, { ...day2, worker: { enabled: true, mode: 'cronjob', schedule: '*/10 * * * *', notify: [], owners: '', dbClaim: '', dbUpdateArgs: [] }, api: { enabled: false } }));
    const job = byKind(cron, 'CronJob');
    assert.equal(job.spec.schedule, '*/10 * * * *');
    assert.equal(job.spec.concurrencyPolicy, 'Forbid');
    assert.equal(cron.filter((o) => o.kind === 'Deployment').length, 1, 'only the webhook runs as a Deployment');
    const args = job.spec.jobTemplate.spec.template.spec.containers[0].args as string[];
    assert.ok(args.includes('--once'));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'plinth-chart-watch-'));
    try {
      const { openStore } = await import('../src/vuln/store.js');
      openStore(path.join(dir, 'vuln.db')).close();
      writeFileSync(path.join(dir, 'catalog.yaml'), byKind(cron, 'ConfigMap').data['catalog.yaml']);
      const local = args.map((a) => a.replace('/var/lib/plinth/vuln.db', path.join(dir, 'vuln.db')).replace('/etc/plinth/config/catalog.yaml', path.join(dir, 'catalog.yaml')));
      const out = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'plinth.cjs'), ...local, '--store', path.join(dir, 'store.db')], { encoding: 'utf8', env: { ...process.env, XDG_STATE_HOME: dir, PLINTH_NOTIFY: '' } });
      assert.match(out, /ok +rematch/);
      assert.match(out, /ok +notify/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the tag defaults to appVersion; webhooks can be turned off', () => {
    const objs = render(merge(defaults, { tls: { caBundle: CA }, webhook: { mutating: { enabled: false } } }));
    assert.equal(byKind(objs, 'Deployment').spec.template.spec.containers[0].image, `registry.example.com/plinth:${chartMeta.appVersion}`);
    assert.equal(objs.filter((o) => o.kind === 'MutatingWebhookConfiguration').length, 0);
    assert.equal(objs.filter((o) => o.kind === 'ValidatingWebhookConfiguration').length, 1);
  });
});

test('the ConfigMap ships a policy and a catalog that plinth serve loads', async () => {
  const { parse: parseYaml } = await import('yaml');
  const { readFileSync } = await import('node:fs');
  const { parsePolicy } = await import('../src/policy/load.js');
  const { CatalogSchema } = await import('../src/provenance/catalog.js');
  const cm = parseYaml(readFileSync(new URL('../../deploy/manifests/20-configmap.yaml', import.meta.url), 'utf8')) as { data: Record<string, string> };
  const loaded = parsePolicy(cm.data['policy.yaml']!, 'policy.yaml');
  assert.equal(loaded.policy.metadata.name, 'approved-bases');
  assert.ok(CatalogSchema.safeParse(parseYaml(cm.data['catalog.yaml']!)).success);
});
