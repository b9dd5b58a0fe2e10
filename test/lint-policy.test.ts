import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { runPlinth } from './helpers/common.js';
import { tempDir, type TempDir } from './helpers/util.js';
import { createCertificates } from '../src/admission/certs.js';
import { PolicyDecider } from '../src/admission/policydecider.js';
import { startServer, type RunningServer } from '../src/admission/server.js';
import { evaluate } from '../src/policy/evaluate.js';
import { gatherFacts } from '../src/policy/facts.js';
import { parsePolicy } from '../src/policy/load.js';
import { lintManifests } from '../src/lint/manifests.js';

/**
 * The workloadSecurity policy rule: kubesec's score and rules over the workload, the same code in
 * `plinth check --manifest`, `plinth lint` and the admission webhook (the AdmissionReview's object).
 */
const POLICY = `apiVersion: plinth.dev/v1alpha1
kind: ImagePolicy
metadata: {name: workloads}
spec:
  rules:
    - name: registries
      mode: enforce
      allowedRegistries: {registries: ["registry.example.com/**"]}
    - name: hardened
      mode: enforce
      workloadSecurity: {minScore: 1, forbid: [Privileged, HostNetwork]}
    - name: no-host-pid
      mode: warn
      workloadSecurity: {forbid: [HostPID]}
`;

const IMG = 'registry.example.com/team/app:1.0';
const pod = (name: string, spec: Record<string, unknown>, containerSc: Record<string, unknown> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'prod' },
  spec: { containers: [{ name: 'app', image: IMG, securityContext: containerSc, resources: { limits: { cpu: '1', memory: '1Gi' } } }], ...spec },
});
const hardened = pod('good', { serviceAccountName: 'app' }, { readOnlyRootFilesystem: true, runAsNonRoot: true });
const privileged = pod('bad', {}, { privileged: true });

describe('workloadSecurity: schema, evaluation, plinth check --manifest, plinth lint', () => {
  let dir: TempDir;
  before(async () => {
    dir = await tempDir('workload');
    await writeFile(path.join(dir.path, 'policy.yaml'), POLICY);
  });
  after(async () => dir?.remove());

  test('the policy schema: minScore and/or forbid, known kubesec rule IDs', () => {
    const bad = (body: string) => assert.throws(() => parsePolicy(`apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: x}\nspec:\n  rules:\n    - name: w\n      mode: enforce\n      workloadSecurity: ${body}\n`), /workloadSecurity/);
    bad('{}');
    bad('{forbid: [NoSuchRule]}');
    bad('{minScore: many}');
    assert.equal(parsePolicy(POLICY).policy.spec.rules.length, 3);
  });

  test('evaluate: skipped without a workload, judged with one', async () => {
    const { policy } = parsePolicy(POLICY);
    const facts = await gatherFacts(IMG, { policy });
    const alone = evaluate(policy, facts, {});
    assert.equal(alone.results.find((r) => r.rule === 'hardened')!.outcome, 'skip');
    assert.equal(alone.allowed, true);
    const bad = evaluate(policy, facts, { workload: privileged });
    const r = bad.results.find((x) => x.rule === 'hardened')!;
    assert.equal(r.outcome, 'fail');
    assert.match(r.reason, /Pod\/bad\.prod: kubesec score -\d+ is below 1 .*forbidden: Privileged/);
    assert.equal(bad.allowed, false);
    assert.equal(evaluate(policy, facts, { workload: hardened }).allowed, true);
    const warn = evaluate(policy, facts, { workload: pod('pid', { hostPID: true, serviceAccountName: 'a' }) });
    assert.equal(warn.results.find((x) => x.rule === 'no-host-pid')!.action, 'warn');
  });

  test('plinth check --manifest: each workload\'s images judged with the workload; exit 1 when one is denied', async () => {
    const deploy = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'prod' }, spec: { template: { metadata: { labels: { app: 'web' } }, spec: { ...hardened.spec, hostNetwork: true } } } };
    const file = path.join(dir.path, 'app.yaml');
    await writeFile(file, [stringify(hardened), stringify(privileged), stringify(deploy), stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } })].join('---\n'));
    const r = await runPlinth(['check', '--manifest', file, '--policy', path.join(dir.path, 'policy.yaml'), '--format', 'json']);
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout) as { decisions: Array<{ workload: string; image: string; allowed: boolean; denials: string[] }> };
    assert.deepEqual(out.decisions.map((d) => [d.workload, d.allowed]), [['Pod/good.prod', true], ['Pod/bad.prod', false], ['Deployment/web.prod', false]]);
    assert.match(out.decisions[2]!.denials[0]!, /\[hardened\].*forbidden: HostNetwork/);
    const table = await runPlinth(['check', '--manifest', file, '--policy', path.join(dir.path, 'policy.yaml')]);
    assert.match(table.stdout, /registry\.example\.com\/team\/app:1\.0 \(in Pod\/bad\.prod\): DENIED/);
    const good = path.join(dir.path, 'good.yaml');
    await writeFile(good, stringify(hardened));
    assert.equal((await runPlinth(['check', '--manifest', good, '--policy', path.join(dir.path, 'policy.yaml')])).code, 0);
    // Bad input: not YAML, no workload, no images and no manifest.
    const junk = path.join(dir.path, 'junk.yaml');
    await writeFile(junk, 'a: [unclosed\n');
    const j = await runPlinth(['check', '--manifest', junk, '--policy', path.join(dir.path, 'policy.yaml')]);
    assert.equal(j.code, 2);
    assert.match(j.stderr, /junk\.yaml:\d+:\d+: invalid YAML/);
    assert.equal((await runPlinth(['check', '--policy', path.join(dir.path, 'policy.yaml')])).code, 2);
  });

  test('plinth lint --policy: workloadSecurity failures are PL104 findings', () => {
    const { policy } = parsePolicy(POLICY);
    const r = lintManifests([stringify(hardened), stringify(privileged)].join('---\n'), { file: 'm.yaml', policy });
    const f = r.findings.filter((x) => x.rule === 'PL104');
    assert.deepEqual(f.map((x) => [x.object, x.severity]), [['Pod/bad.prod', 'error']]);
  });
});

describe('workloadSecurity at admission (plinth serve)', () => {
  let dir: TempDir;
  let server: RunningServer;
  let decider: PolicyDecider;
  let ca: Buffer;
  before(async () => {
    dir = await tempDir('workload-serve');
    const certs = await createCertificates({ service: 'plinth', namespace: 'plinth-system', dir: path.join(dir.path, 'certs'), ipAddresses: ['127.0.0.1'] });
    void certs;
    ca = readFileSync(path.join(dir.path, 'certs', 'ca.crt'));
    await writeFile(path.join(dir.path, 'policy.yaml'), POLICY);
    decider = await PolicyDecider.create({ policyFile: path.join(dir.path, 'policy.yaml'), logger: pino({ level: 'silent' }), denyPrivateNetworks: false });
    server = await startServer(decider, { cert: readFileSync(path.join(dir.path, 'certs', 'tls.crt')), key: readFileSync(path.join(dir.path, 'certs', 'tls.key')), port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }), deadlineMs: 5000 });
  });
  after(async () => {
    await server?.close();
    decider?.close();
    await dir?.remove();
  });

  const post = (pathName: string, body: unknown): Promise<Record<string, any>> =>
    new Promise((resolve, reject) => {
      const req = https.request(`${server.url}${pathName}`, { method: 'POST', ca, servername: 'plinth.plinth-system.svc', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve(JSON.parse(text) as Record<string, any>));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  const review = (uid: string, object: Record<string, unknown>) => {
    const kind = object['kind'] as string;
    const group = kind === 'Pod' ? '' : 'apps';
    const resource = kind === 'Pod' ? 'pods' : `${kind.toLowerCase()}s`;
    return {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid, kind: { group, version: 'v1', kind }, resource: { group, version: 'v1', resource }, name: (object['metadata'] as { name: string }).name, namespace: 'prod', operation: 'CREATE', userInfo: { username: 'alice' }, object, oldObject: null, dryRun: false },
    };
  };

  test('the pod spec of the AdmissionReview is scored: a privileged pod is denied, a hardened one admitted (same image, no cache mix-up)', async () => {
    const ok = await post('/validate', review('u1', hardened));
    assert.equal(ok.response.allowed, true, JSON.stringify(ok.response));
    const bad = await post('/validate', review('u2', privileged));
    assert.equal(bad.response.allowed, false);
    assert.match(bad.response.status.message, /\[hardened\] The workload must be securely configured/);
    assert.match(bad.response.status.message, /forbidden: Privileged/);
    // The same image again in the hardened pod: still admitted (the verdict depends on the workload).
    const again = await post('/validate', review('u3', hardened));
    assert.equal(again.response.allowed, true, JSON.stringify(again.response));
    const dep = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'prod' }, spec: { template: { metadata: {}, spec: { ...hardened.spec, hostNetwork: true } } } };
    const d = await post('/validate', review('u4', dep));
    assert.equal(d.response.allowed, false);
    assert.match(d.response.status.message, /HostNetwork/);
    // warn mode: admitted with a warning.
    const w = await post('/validate', review('u5', pod('pid', { hostPID: true, serviceAccountName: 'a', automountServiceAccountToken: false }, { readOnlyRootFilesystem: true, runAsNonRoot: true, runAsUser: 20000, runAsGroup: 20000, capabilities: { drop: ['ALL'] } })));
    assert.equal(w.response.allowed, true, JSON.stringify(w.response));
    assert.ok((w.response.warnings as string[]).some((x) => /no-host-pid/.test(x)));
  });

  test('an ImageReview has no workload: workloadSecurity rules skip', async () => {
    const r = await post('/imagepolicy', { apiVersion: 'imagepolicy.k8s.io/v1alpha1', kind: 'ImageReview', spec: { containers: [{ image: IMG }], namespace: 'prod', annotations: {} } });
    assert.equal(r.status.allowed, true, JSON.stringify(r));
  });
});
