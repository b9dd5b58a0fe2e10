import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  WARNINGS_TOTAL_MAX_CODE_POINTS,
  WARNING_MAX_CODE_POINTS,
  admissionResponse,
  boundWarnings,
  codePointLength,
  encodePatch,
  escapeJsonPointerToken,
  extractImageReviewImages,
  extractImages,
  imageReviewResponse,
  jsonPointer,
  parseAdmissionReview,
  parseAdmissionReviewBody,
  parseImageReview,
  parseImageReviewBody,
  parseJsonPointer,
  pinPatch,
  truncateUtf8,
  unescapeJsonPointerToken,
  type AdmissionImages,
  type CheckedWorkload,
  type JsonPatchOp,
} from '../src/admission/wire.js';
import { parseImageReference } from '../src/oci/reference.js';
import { PlinthError } from '../src/util/errors.js';

// ---------------------------------------------------------------------------------------------
// Fixtures: AdmissionReview requests shaped like the API server's (defaults filled in, managed
// fields, service-account user info).
// ---------------------------------------------------------------------------------------------

const DIGEST_A = 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';
const DIGEST_B = 'sha256:beb6bd6a68f114c1dc2ea4b28db81bdf91de202a9014972bec5e4d9171d90ed0';

function container(name: string, image: string): Record<string, unknown> {
  return {
    name,
    image,
    resources: { limits: { memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
    securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true },
  };
}

function podSpec(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    containers: [container('app', 'registry.example.com/team/app:1.4.2'), container('proxy', 'envoyproxy/envoy:v1.30.1')],
    initContainers: [container('migrate', 'registry.example.com/team/migrate:1.4.2')],
    restartPolicy: 'Always',
    terminationGracePeriodSeconds: 30,
    dnsPolicy: 'ClusterFirst',
    serviceAccountName: 'app',
    securityContext: {},
    schedulerName: 'default-scheduler',
    ...extra,
  };
}

function template(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { metadata: { labels: { app: 'web' } }, spec: podSpec(extra) };
}

interface Gvk {
  group: string;
  version: string;
  kind: string;
}

function review(
  gvk: Gvk,
  resource: string,
  object: unknown,
  o: { operation?: string; oldObject?: unknown; subResource?: string; namespace?: string; name?: string; uid?: string } = {},
): Record<string, unknown> {
  const request: Record<string, unknown> = {
    uid: o.uid ?? '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: gvk,
    resource: { group: gvk.group, version: gvk.version, resource },
    requestKind: gvk,
    requestResource: { group: gvk.group, version: gvk.version, resource },
    name: o.name ?? 'web',
    namespace: o.namespace ?? 'prod',
    operation: o.operation ?? 'CREATE',
    userInfo: {
      username: 'system:serviceaccount:kube-system:replicaset-controller',
      uid: 'a1b2c3',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      extra: { 'authentication.kubernetes.io/pod-name': ['kube-controller-manager-0'] },
    },
    object,
    oldObject: o.oldObject ?? null,
    dryRun: false,
    options: { apiVersion: 'meta.k8s.io/v1', kind: o.operation === 'UPDATE' ? 'UpdateOptions' : 'CreateOptions' },
  };
  if (o.subResource) {
    request.subResource = o.subResource;
    request.requestSubResource = o.subResource;
  }
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}

function meta(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    namespace: 'prod',
    labels: { app: 'web', 'app.kubernetes.io/part-of': 'shop' },
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', 'mycluster.image-policy.k8s.io/ticket': '42' },
    managedFields: [{ manager: 'kubectl', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }],
    ...extra,
  };
}

const POD: Gvk = { group: '', version: 'v1', kind: 'Pod' };

function pod(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta('web-0'),
    spec: podSpec({
      ephemeralContainers: [{ name: 'debugger', image: 'busybox:1.36', targetContainerName: 'app', terminationMessagePolicy: 'File' }],
      ...extra,
    }),
    status: {},
  };
}

function workload(apiVersion: string, kind: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion, kind, metadata: meta('web', { generation: 1 }), spec, status: {} };
}

/** Parse the JSON text (as the server would) and extract. */
function extract(r: unknown): AdmissionImages {
  return extractImages(parseAdmissionReviewBody(JSON.stringify(r)));
}

function checked(r: unknown): CheckedWorkload {
  const out = extract(r);
  assert.equal(out.checked, true, out.checked ? '' : out.reason);
  return out as CheckedWorkload;
}

function summary(w: CheckedWorkload): Array<[string, string, string, string]> {
  return w.containers.map((c) => [c.kind, c.name, c.image, c.path]);
}

function assertRequestInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PlinthError, `expected a PlinthError, got ${String(e)}`);
    assert.equal(e.code, 'REQUEST_INVALID');
    assert.match(e.message, message);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// AdmissionReview: workloads
// ---------------------------------------------------------------------------------------------

describe('extractImages: workloads', () => {
  test('Pod with containers, initContainers and ephemeralContainers', () => {
    const w = checked(review(POD, 'pods', pod(), { name: 'web-0' }));
    assert.equal(w.workload, 'Pod');
    assert.equal(w.podSpecPath, '/spec');
    assert.deepEqual(summary(w), [
      ['container', 'app', 'registry.example.com/team/app:1.4.2', '/spec/containers/0/image'],
      ['container', 'proxy', 'envoyproxy/envoy:v1.30.1', '/spec/containers/1/image'],
      ['initContainer', 'migrate', 'registry.example.com/team/migrate:1.4.2', '/spec/initContainers/0/image'],
      ['ephemeralContainer', 'debugger', 'busybox:1.36', '/spec/ephemeralContainers/0/image'],
    ]);
    assert.ok(w.containers.every((c) => c.isNew));
    assert.deepEqual(w.images, ['registry.example.com/team/app:1.4.2', 'envoyproxy/envoy:v1.30.1', 'registry.example.com/team/migrate:1.4.2', 'busybox:1.36']);
    assert.deepEqual(w.newImages, w.images);
    assert.equal(w.uid, '705ab4f5-6393-11e8-b7cc-42010a800002');
    assert.equal(w.operation, 'CREATE');
    assert.equal(w.namespace, 'prod');
    assert.equal(w.name, 'web-0');
    assert.deepEqual(w.labels, { app: 'web', 'app.kubernetes.io/part-of': 'shop' });
    assert.equal(w.annotations['mycluster.image-policy.k8s.io/ticket'], '42');
    assert.equal(w.userInfo.username, 'system:serviceaccount:kube-system:replicaset-controller');
    assert.deepEqual(w.userInfo.groups, ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated']);
    assert.deepEqual(w.userInfo.extra, { 'authentication.kubernetes.io/pod-name': ['kube-controller-manager-0'] });
    assert.equal(w.dryRun, false);
    assert.deepEqual(w.kind, POD);
  });

  test('Pod created with generateName: no name yet, namespace from the request', () => {
    const obj = pod();
    obj.metadata = { generateName: 'web-7d9f8b6c5d-', labels: { app: 'web' } };
    const r = review(POD, 'pods', obj);
    delete (r.request as Record<string, unknown>).name;
    const w = checked(r);
    assert.equal(w.name, '');
    assert.equal(w.generateName, 'web-7d9f8b6c5d-');
    assert.equal(w.namespace, 'prod');
    assert.deepEqual(w.annotations, {});
  });

  const templated: Array<[string, Gvk, string, (s: Record<string, unknown>) => Record<string, unknown>, string]> = [
    ['Deployment', { group: 'apps', version: 'v1', kind: 'Deployment' }, 'deployments', (t) => ({ replicas: 3, selector: { matchLabels: { app: 'web' } }, template: t, strategy: { type: 'RollingUpdate' } }), '/spec/template/spec'],
    ['ReplicaSet', { group: 'apps', version: 'v1', kind: 'ReplicaSet' }, 'replicasets', (t) => ({ replicas: 3, selector: { matchLabels: { app: 'web' } }, template: t }), '/spec/template/spec'],
    ['StatefulSet', { group: 'apps', version: 'v1', kind: 'StatefulSet' }, 'statefulsets', (t) => ({ serviceName: 'web', replicas: 3, selector: { matchLabels: { app: 'web' } }, template: t, volumeClaimTemplates: [] }), '/spec/template/spec'],
    ['DaemonSet', { group: 'apps', version: 'v1', kind: 'DaemonSet' }, 'daemonsets', (t) => ({ selector: { matchLabels: { app: 'web' } }, template: t, updateStrategy: { type: 'RollingUpdate' } }), '/spec/template/spec'],
    ['Job', { group: 'batch', version: 'v1', kind: 'Job' }, 'jobs', (t) => ({ backoffLimit: 6, completions: 1, parallelism: 1, template: t }), '/spec/template/spec'],
    ['CronJob', { group: 'batch', version: 'v1', kind: 'CronJob' }, 'cronjobs', (t) => ({ schedule: '*/5 * * * *', concurrencyPolicy: 'Forbid', jobTemplate: { metadata: {}, spec: { backoffLimit: 2, template: t } } }), '/spec/jobTemplate/spec/template/spec'],
    ['ReplicationController', { group: '', version: 'v1', kind: 'ReplicationController' }, 'replicationcontrollers', (t) => ({ replicas: 1, selector: { app: 'web' }, template: t }), '/spec/template/spec'],
    ['Deployment (extensions/v1beta1, old clusters)', { group: 'extensions', version: 'v1beta1', kind: 'Deployment' }, 'deployments', (t) => ({ template: t }), '/spec/template/spec'],
    ['CronJob (batch/v1beta1, old clusters)', { group: 'batch', version: 'v1beta1', kind: 'CronJob' }, 'cronjobs', (t) => ({ schedule: '@daily', jobTemplate: { spec: { template: t } } }), '/spec/jobTemplate/spec/template/spec'],
  ];
  for (const [label, gvk, resource, spec, prefix] of templated) {
    test(label, () => {
      const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
      const w = checked(review(gvk, resource, workload(apiVersion, gvk.kind, spec(template()))));
      assert.equal(w.workload, gvk.kind);
      assert.equal(w.podSpecPath, prefix);
      assert.deepEqual(summary(w), [
        ['container', 'app', 'registry.example.com/team/app:1.4.2', `${prefix}/containers/0/image`],
        ['container', 'proxy', 'envoyproxy/envoy:v1.30.1', `${prefix}/containers/1/image`],
        ['initContainer', 'migrate', 'registry.example.com/team/migrate:1.4.2', `${prefix}/initContainers/0/image`],
      ]);
      assert.equal(w.name, 'web');
      assert.equal(w.labels.app, 'web');
    });
  }

  test('every path points at the image in the object (JSON pointer resolution)', () => {
    const obj = workload('batch/v1', 'CronJob', { schedule: '@hourly', jobTemplate: { spec: { template: template() } } });
    const w = checked(review({ group: 'batch', version: 'v1', kind: 'CronJob' }, 'cronjobs', obj));
    for (const c of w.containers) assert.equal(resolvePointer(obj, c.path), c.image);
  });

  test('a workload without a template has no containers (validation rejects it later)', () => {
    const w = checked(review({ group: 'apps', version: 'v1', kind: 'Deployment' }, 'deployments', workload('apps/v1', 'Deployment', { replicas: 1 })));
    assert.deepEqual(w.containers, []);
    assert.deepEqual(w.images, []);
  });

  test('a container without an image is listed with image "" (validation rejects it later)', () => {
    const w = checked(review(POD, 'pods', pod({ containers: [{ name: 'x' }], initContainers: null, ephemeralContainers: [] })));
    assert.deepEqual(summary(w), [['container', 'x', '', '/spec/containers/0/image']]);
  });
});

describe('extractImages: UPDATE and the ephemeralcontainers subresource', () => {
  test('UPDATE of a Deployment: only changed images are new', () => {
    const gvk = { group: 'apps', version: 'v1', kind: 'Deployment' };
    const old = workload('apps/v1', 'Deployment', { template: template() });
    const cur = workload('apps/v1', 'Deployment', {
      template: {
        metadata: {},
        spec: podSpec({
          containers: [container('app', 'registry.example.com/team/app:1.5.0'), container('proxy', 'envoyproxy/envoy:v1.30.1')],
        }),
      },
    });
    const w = checked(review(gvk, 'deployments', cur, { operation: 'UPDATE', oldObject: old }));
    assert.equal(w.operation, 'UPDATE');
    assert.deepEqual(
      w.containers.map((c) => [c.name, c.isNew]),
      [
        ['app', true],
        ['proxy', false],
        ['migrate', false],
      ],
    );
    assert.deepEqual(w.newImages, ['registry.example.com/team/app:1.5.0']);
    assert.equal(w.images.length, 3);
  });

  test('UPDATE without an oldObject treats every image as new', () => {
    const w = checked(review(POD, 'pods', pod(), { operation: 'UPDATE' }));
    assert.ok(w.containers.every((c) => c.isNew));
  });

  test('an image moved between containers is not new (it already ran in this object)', () => {
    const old = pod({ ephemeralContainers: [] });
    const cur = pod({ containers: [container('app2', 'registry.example.com/team/migrate:1.4.2')], ephemeralContainers: [] });
    const w = checked(review(POD, 'pods', cur, { operation: 'UPDATE', oldObject: old }));
    assert.deepEqual(w.newImages, []);
  });

  test('pods/ephemeralcontainers (Kubernetes ≥ 1.22: the body is the Pod)', () => {
    const old = pod({ ephemeralContainers: [] });
    const cur = pod({
      ephemeralContainers: [{ name: 'debugger-x7k2p', image: 'registry.example.com/tools/netshoot:0.13', targetContainerName: 'app', stdin: true, tty: true }],
    });
    const w = checked(review(POD, 'pods', cur, { operation: 'UPDATE', oldObject: old, subResource: 'ephemeralcontainers', name: 'web-0' }));
    assert.equal(w.subResource, 'ephemeralcontainers');
    const eph = w.containers.filter((c) => c.kind === 'ephemeralContainer');
    assert.deepEqual(
      eph.map((c) => [c.name, c.image, c.path, c.isNew]),
      [['debugger-x7k2p', 'registry.example.com/tools/netshoot:0.13', '/spec/ephemeralContainers/0/image', true]],
    );
    assert.deepEqual(w.newImages, ['registry.example.com/tools/netshoot:0.13']);
  });

  test('pods/ephemeralcontainers on Kubernetes 1.16–1.21 (EphemeralContainers body)', () => {
    const gvk = { group: '', version: 'v1', kind: 'EphemeralContainers' };
    const body = (images: string[]) => ({
      kind: 'EphemeralContainers',
      apiVersion: 'v1',
      metadata: { name: 'web-0', namespace: 'prod' },
      ephemeralContainers: images.map((image, i) => ({ name: `debug-${i}`, image })),
    });
    const w = checked(review(gvk, 'pods', body(['busybox:1.36', 'alpine:3.20']), { operation: 'UPDATE', oldObject: body(['busybox:1.36']), subResource: 'ephemeralcontainers' }));
    assert.equal(w.workload, 'EphemeralContainers');
    assert.deepEqual(
      w.containers.map((c) => [c.kind, c.path, c.isNew]),
      [
        ['ephemeralContainer', '/ephemeralContainers/0/image', false],
        ['ephemeralContainer', '/ephemeralContainers/1/image', true],
      ],
    );
  });
});

describe('extractImages: requests Plinth does not check', () => {
  test('unknown kinds give a clear not-checked result', () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg', namespace: 'prod', labels: { a: 'b' } }, data: { k: 'v' } };
    const r = extract(review({ group: '', version: 'v1', kind: 'ConfigMap' }, 'configmaps', cm, { name: 'cfg' }));
    assert.equal(r.checked, false);
    assert.ok(!r.checked);
    assert.match(r.reason, /^v1 ConfigMap is not a workload Plinth checks/);
    assert.equal(r.name, 'cfg');
    assert.deepEqual(r.labels, { a: 'b' });

    const crd = extract(review({ group: 'argoproj.io', version: 'v1alpha1', kind: 'Rollout' }, 'rollouts', { kind: 'Rollout', spec: 42 }));
    assert.ok(!crd.checked);
    assert.match(crd.reason, /argoproj\.io\/v1alpha1 Rollout is not a workload Plinth checks/);
    // A kind named like a workload but in another group is not one.
    const other = extract(review({ group: 'example.com', version: 'v1', kind: 'Deployment' }, 'deployments', { kind: 'Deployment' }));
    assert.ok(!other.checked);
  });

  test('other subresources, DELETE and CONNECT are not checked', () => {
    const status = extract(review(POD, 'pods', pod(), { operation: 'UPDATE', subResource: 'status' }));
    assert.ok(!status.checked);
    assert.match(status.reason, /pods\/status subresource has no container images/);
    const scale = extract(
      review({ group: 'autoscaling', version: 'v1', kind: 'Scale' }, 'deployments', { kind: 'Scale', spec: { replicas: 3 } }, { operation: 'UPDATE', subResource: 'scale' }),
    );
    assert.ok(!scale.checked);
    const scale2 = extract(review({ group: 'apps', version: 'v1', kind: 'Deployment' }, 'deployments', { kind: 'Deployment' }, { operation: 'UPDATE', subResource: 'scale' }));
    assert.ok(!scale2.checked);
    const del = review(POD, 'pods', null, { operation: 'DELETE', oldObject: pod() });
    const d = extract(del);
    assert.ok(!d.checked);
    assert.match(d.reason, /DELETE requests run no new images/);
    assert.equal(d.labels.app, 'web', 'labels come from the old object');
    const exec = extract(review(POD, 'pods', { kind: 'PodExecOptions', command: ['sh'] }, { operation: 'CONNECT', subResource: 'exec' }));
    assert.ok(!exec.checked);
  });
});

// ---------------------------------------------------------------------------------------------
// AdmissionReview: bad requests
// ---------------------------------------------------------------------------------------------

describe('parseAdmissionReview: clear errors', () => {
  const good = () => review(POD, 'pods', pod());
  const withRequest = (f: (req: Record<string, unknown>) => void) => {
    const r = good();
    f(r.request as Record<string, unknown>);
    return r;
  };

  test('not an object', () => {
    for (const v of [null, 42, 'AdmissionReview', [], [good()], true]) {
      assertRequestInvalid(() => parseAdmissionReview(v), /^invalid AdmissionReview: expected a JSON object, got /);
    }
  });

  test('wrong apiVersion or kind', () => {
    assertRequestInvalid(() => parseAdmissionReview({ ...good(), apiVersion: 'admission.k8s.io/v1beta1' }), /v1beta1 is not supported; list only v1 in the webhook's admissionReviewVersions/);
    assertRequestInvalid(() => parseAdmissionReview({ ...good(), apiVersion: 'v1' }), /apiVersion: expected "admission\.k8s\.io\/v1", got "v1"/);
    assertRequestInvalid(() => parseAdmissionReview({ ...good(), apiVersion: undefined }), /apiVersion is missing/);
    assertRequestInvalid(() => parseAdmissionReview({ ...good(), kind: 'Pod' }), /kind: expected "AdmissionReview", got "Pod"/);
    assertRequestInvalid(() => parseAdmissionReview({ ...good(), kind: undefined }), /kind is missing/);
    assertRequestInvalid(
      () => parseAdmissionReview({ apiVersion: 'imagepolicy.k8s.io/v1alpha1', kind: 'ImageReview', spec: { containers: [] } }),
      /got an ImageReview \(ImagePolicyWebhook\)/,
    );
  });

  test('missing request', () => {
    assertRequestInvalid(() => parseAdmissionReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), /request is missing/);
    assertRequestInvalid(() => parseAdmissionReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: null }), /request is missing/);
    assertRequestInvalid(
      () => parseAdmissionReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'x', allowed: true } }),
      /it has a response but no request/,
    );
    assertRequestInvalid(() => parseAdmissionReview({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: [1] }), /request: expected an object, got an array/);
  });

  test('missing, empty or mistyped uid', () => {
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => delete r.uid)), /request\.uid is missing \(the response must echo it\)/);
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => (r.uid = ''))), /request\.uid: is empty/);
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => (r.uid = 12))), /request\.uid: expected a string, got a number/);
  });

  test('wrong or missing resource kind', () => {
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => delete r.kind)), /request\.kind is missing/);
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => (r.kind = 'Pod'))), /request\.kind: expected an object, got a string/);
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => (r.kind = { group: '', version: 'v1' }))), /request\.kind\.kind is missing/);
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => (r.kind = { group: '', version: 'v1', kind: '' }))), /request\.kind\.kind: must not be empty/);
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => delete r.resource)), /request\.resource is missing/);
    // The object says it is something else than request.kind.
    assertRequestInvalid(
      () => extract(withRequest((r) => ((r.object as Record<string, unknown>).kind = 'Deployment'))),
      /request\.object\.kind is "Deployment" but request\.kind\.kind is "Pod"/,
    );
  });

  test('bad operation, userInfo, dryRun', () => {
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => (r.operation = 'PATCH'))), /request\.operation: expected one of "CREATE", "UPDATE", "DELETE", "CONNECT", got "PATCH"/);
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => delete r.operation)), /request\.operation/);
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => (r.userInfo = { username: 'x', groups: 'admins' }))), /request\.userInfo\.groups: expected an array, got a string/);
    assertRequestInvalid(() => parseAdmissionReview(withRequest((r) => (r.dryRun = 'yes'))), /request\.dryRun: expected a boolean, got a string/);
  });

  test('malformed objects name the field', () => {
    const cases: Array<[(o: Record<string, unknown>) => void, RegExp]> = [
      [(o) => ((o.spec as Record<string, unknown>).containers = { app: 'x' }), /request\.object\.spec\.containers: expected an array, got an object/],
      [(o) => (((o.spec as Record<string, unknown>).containers as Array<Record<string, unknown>>)[1]!.image = 7), /request\.object\.spec\.containers\[1\]\.image: expected a string, got a number/],
      [(o) => (((o.spec as Record<string, unknown>).initContainers as unknown[])[0] = 'nginx'), /request\.object\.spec\.initContainers\[0\]: expected an object, got a string/],
      [(o) => ((o.spec as Record<string, unknown>).ephemeralContainers = [{ name: 3 }]), /request\.object\.spec\.ephemeralContainers\[0\]\.name: expected a string, got a number/],
      [(o) => (o.spec = []), /request\.object\.spec: expected an object, got an array/],
      [(o) => ((o.metadata as Record<string, unknown>).labels = { tier: 1 }), /request\.object\.metadata\.labels\.tier: expected a string, got a number/],
      [(o) => ((o.metadata as Record<string, unknown>).annotations = 'none'), /request\.object\.metadata\.annotations: expected an object, got a string/],
      [(o) => (o.kind = 5), /request\.object\.kind: expected a string, got a number/],
    ];
    for (const [mutate, message] of cases) {
      const obj = pod();
      mutate(obj);
      assertRequestInvalid(() => extract(review(POD, 'pods', obj)), message);
    }
    assertRequestInvalid(() => extract(review(POD, 'pods', 'a pod')), /request\.object: expected an object, got a string/);
    assertRequestInvalid(() => extract(review(POD, 'pods', null)), /request\.object is missing for CREATE of a Pod/);
    const dep = workload('apps/v1', 'Deployment', { template: { spec: 'x' } });
    assertRequestInvalid(() => extract(review({ group: 'apps', version: 'v1', kind: 'Deployment' }, 'deployments', dep)), /request\.object\.spec\.template\.spec: expected an object, got a string/);
    const old = pod();
    (old.spec as Record<string, unknown>).containers = [{ name: 'a', image: false }];
    assertRequestInvalid(() => extract(review(POD, 'pods', pod(), { operation: 'UPDATE', oldObject: old })), /request\.oldObject\.spec\.containers\[0\]\.image: expected a string, got a boolean/);
    assertRequestInvalid(() => extract(review(POD, 'pods', pod(), { operation: 'UPDATE', oldObject: [pod()] })), /request\.oldObject: expected an object, got an array/);
  });

  test('bodies: oversized, not UTF-8, not JSON, empty', () => {
    const body = JSON.stringify(review(POD, 'pods', pod()));
    assertRequestInvalid(() => parseAdmissionReviewBody(body, { maxBytes: 100 }), /^invalid AdmissionReview: the body is \d+ bytes, more than the limit of 100$/);
    assertRequestInvalid(() => parseAdmissionReviewBody(Buffer.from(body), { maxBytes: 100 }), /more than the limit of 100/);
    const huge = JSON.stringify(review(POD, 'pods', pod({ padding: 'x'.repeat(9 * 1024 * 1024) })));
    assertRequestInvalid(() => parseAdmissionReviewBody(huge), /more than the limit of 8388608/);
    assertRequestInvalid(() => parseAdmissionReviewBody(Buffer.from([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
    assertRequestInvalid(() => parseAdmissionReviewBody('{"apiVersion": "admission.k8s.io/v1",'), /the body is not valid JSON/);
    assertRequestInvalid(() => parseAdmissionReviewBody('  '), /the body is empty/);
    assertRequestInvalid(() => parseImageReviewBody('nope'), /^invalid ImageReview: the body is not valid JSON/);
    // A good body parses from bytes too.
    const w = extractImages(parseAdmissionReviewBody(Buffer.from(body)));
    assert.ok(w.checked);
  });

  test('any JSON value gives a result or a PlinthError, nothing else', () => {
    let seed = 20240601;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const keys = ['apiVersion', 'kind', 'request', 'uid', 'object', 'spec', 'containers', 'image', 'name', 'metadata', 'labels', '__proto__', 'constructor', 'toString', 'template', 'jobTemplate', 'operation', 'resource', 'group', 'version', 'subResource', 'oldObject'];
    const randomValue = (depth: number): unknown => {
      const r = rand();
      if (depth > 4 || r < 0.3) return pick<unknown>([null, true, false, 0, -1, 1.5, '', 'Pod', 'CREATE', 'UPDATE', 'pods', 'apps', 'v1', 'admission.k8s.io/v1', 'AdmissionReview', 'nginx:1', '\u0000', '\uD800']);
      if (r < 0.55) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(depth + 1));
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rand() * 5); i > 0; i--) o[pick(keys)] = randomValue(depth + 1);
      return o;
    };
    /** Replace one random node of `v` with a random value. */
    const mutate = (v: unknown, depth = 0): unknown => {
      if (v === null || typeof v !== 'object' || (depth >= 3 && rand() < 0.3)) return randomValue(2);
      if (Array.isArray(v)) {
        if (v.length === 0) return randomValue(2);
        const i = Math.floor(rand() * v.length);
        return v.map((x, j) => (j === i ? mutate(x, depth + 1) : x));
      }
      const ks = Object.keys(v);
      if (ks.length === 0) return randomValue(2);
      const k = pick(ks);
      const out: Record<string, unknown> = { ...(v as Record<string, unknown>) };
      if (rand() < 0.1) delete out[k];
      else out[k] = mutate(out[k], depth + 1);
      return out;
    };
    const bases = [
      review(POD, 'pods', pod()),
      review(POD, 'pods', pod(), { operation: 'UPDATE', oldObject: pod() }),
      review({ group: 'batch', version: 'v1', kind: 'CronJob' }, 'cronjobs', workload('batch/v1', 'CronJob', { jobTemplate: { spec: { template: template() } } })),
      review({ group: 'apps', version: 'v1', kind: 'Deployment' }, 'deployments', workload('apps/v1', 'Deployment', { template: template() })),
    ];
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const input = i % 5 === 0 ? randomValue(0) : i % 2 === 0 ? mutate(mutate(pick(bases))) : mutate(pick(bases));
      // Through the body parser as well, so the value is what JSON.parse makes of it.
      for (const run of [() => extractImages(parseAdmissionReview(input)), () => extractImages(parseAdmissionReviewBody(JSON.stringify(input) ?? 'null'))]) {
        try {
          const r = run();
          assert.equal(typeof r.checked, 'boolean');
          ok++;
        } catch (e) {
          if (!(e instanceof PlinthError) || e.code !== 'REQUEST_INVALID') {
            assert.fail(`non-PlinthError for ${JSON.stringify(input)?.slice(0, 300)}: ${String(e)}`);
          }
          refused++;
        }
      }
      try {
        extractImageReviewImages(parseImageReview(input));
      } catch (e) {
        assert.ok(e instanceof PlinthError && e.code === 'REQUEST_INVALID', String(e));
      }
    }
    assert.ok(ok > 100 && refused > 100, `ok ${ok}, refused ${refused}`);
  });

  test('__proto__ keys do not leak into the result', () => {
    const text = JSON.stringify(review(POD, 'pods', pod())).replace('"uid":', '"__proto__":{"subResource":"status","polluted":true},"uid":');
    const parsed = parseAdmissionReviewBody(text);
    assert.equal(parsed.request.subResource, undefined);
    assert.equal((parsed.request as unknown as Record<string, unknown>).polluted, undefined);
    assert.ok(extractImages(parsed).checked);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

// ---------------------------------------------------------------------------------------------
// ImageReview
// ---------------------------------------------------------------------------------------------

describe('ImageReview', () => {
  const doc = {
    apiVersion: 'imagepolicy.k8s.io/v1alpha1',
    kind: 'ImageReview',
    spec: {
      containers: [{ image: 'myrepo/myimage:v1' }, { image: `myrepo/myimage@${DIGEST_B}` }, { image: 'myrepo/myimage:v1' }],
      annotations: {
        'mycluster.image-policy.k8s.io/ticket-1234': 'break-glass',
        'image-policy.k8s.io/no-prefix': 'dropped',
        'other.example.com/image-policy.k8s.io': 'dropped',
        app: 'web',
        'a.image-policy.k8s.io/': 'kept: the plugin only tests for the substring',
      },
      namespace: 'mynamespace',
    },
  };

  test('images, namespace and only *.image-policy.k8s.io/* annotations', () => {
    const r = extractImageReviewImages(parseImageReviewBody(JSON.stringify(doc)));
    assert.equal(r.namespace, 'mynamespace');
    assert.deepEqual(r.containers, [
      { index: 0, image: 'myrepo/myimage:v1' },
      { index: 1, image: `myrepo/myimage@${DIGEST_B}` },
      { index: 2, image: 'myrepo/myimage:v1' },
    ]);
    assert.deepEqual(r.images, ['myrepo/myimage:v1', `myrepo/myimage@${DIGEST_B}`]);
    assert.deepEqual(r.annotations, {
      'mycluster.image-policy.k8s.io/ticket-1234': 'break-glass',
      'a.image-policy.k8s.io/': 'kept: the plugin only tests for the substring',
    });
  });

  test('missing optional fields default to empty', () => {
    const r = extractImageReviewImages(parseImageReview({ apiVersion: 'imagepolicy.k8s.io/v1alpha1', kind: 'ImageReview', spec: {} }));
    assert.deepEqual(r, { namespace: '', containers: [], images: [], annotations: {} });
  });

  test('clear errors', () => {
    assertRequestInvalid(() => parseImageReview([]), /^invalid ImageReview: expected a JSON object, got an array$/);
    assertRequestInvalid(() => parseImageReview({ ...doc, apiVersion: 'imagepolicy.k8s.io/v1beta1' }), /apiVersion: expected "imagepolicy\.k8s\.io\/v1alpha1", got "imagepolicy\.k8s\.io\/v1beta1"/);
    assertRequestInvalid(() => parseImageReview({ ...doc, kind: 'AdmissionReview' }), /got an AdmissionReview/);
    assertRequestInvalid(() => parseImageReview({ ...doc, kind: 'ImageReviews' }), /kind: expected "ImageReview", got "ImageReviews"/);
    assertRequestInvalid(() => parseImageReview({ apiVersion: doc.apiVersion, kind: doc.kind }), /spec is missing/);
    assertRequestInvalid(() => parseImageReview({ ...doc, spec: { containers: [{ image: 1 }] } }), /spec\.containers\[0\]\.image: expected a string, got a number/);
    assertRequestInvalid(() => parseImageReview({ ...doc, spec: { containers: 'nginx' } }), /spec\.containers: expected an array, got a string/);
    assertRequestInvalid(() => parseImageReview({ ...doc, spec: { annotations: { a: ['b'] } } }), /spec\.annotations\.a: expected a string, got an array/);
    assertRequestInvalid(() => parseImageReview({ ...doc, spec: { namespace: {} } }), /spec\.namespace: expected a string, got an object/);
  });

  test('responses, exactly as the wire-format doc shows them', () => {
    assert.equal(JSON.stringify(imageReviewResponse({ allowed: true })), '{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","status":{"allowed":true}}');
    assert.equal(
      JSON.stringify(imageReviewResponse({ allowed: false, reason: 'image currently blacklisted' })),
      '{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","status":{"allowed":false,"reason":"image currently blacklisted"}}',
    );
    const r = imageReviewResponse({ allowed: false, reason: 'é'.repeat(2000), auditAnnotations: { 'denied-image': 'nginx:1' } });
    assert.ok(Buffer.byteLength(r.status.reason!) <= DEFAULT_MAX_MESSAGE_BYTES);
    assert.ok(r.status.reason!.endsWith('…'));
    assert.deepEqual(r.status.auditAnnotations, { 'denied-image': 'nginx:1' });
  });
});

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

describe('admissionResponse', () => {
  const UID = '705ab4f5-6393-11e8-b7cc-42010a800002';

  test('allow with warnings, deny, mutate: exactly as the wire-format doc shows them', () => {
    assert.equal(
      JSON.stringify(admissionResponse(UID, { allowed: true, warnings: ['base image debian:11 is deprecated; rebase onto golden/debian:12'] })),
      `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"${UID}","allowed":true,"warnings":["base image debian:11 is deprecated; rebase onto golden/debian:12"]}}`,
    );
    assert.equal(
      JSON.stringify(admissionResponse(UID, { allowed: false, code: 403, message: 'image registry.example.com/team/app:1.4.2 has 2 critical CVEs' })),
      `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"${UID}","allowed":false,"status":{"code":403,"message":"image registry.example.com/team/app:1.4.2 has 2 critical CVEs"}}}`,
    );
    const w = checked(review(POD, 'pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0' }, spec: { containers: [{ name: 'app', image: 'registry.example.com/team/app:1.4.2' }] } }));
    const patch = pinPatch(w.containers, new Map([['registry.example.com/team/app:1.4.2', DIGEST_A]]));
    assert.equal(
      JSON.stringify(admissionResponse(UID, { allowed: true, patch })),
      `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"${UID}","allowed":true,"patchType":"JSONPatch",` +
        '"patch":"W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9zcGVjL2NvbnRhaW5lcnMvMC9pbWFnZSIsInZhbHVlIjoicmVnaXN0cnkuZXhhbXBsZS5jb20vdGVhbS9hcHA6MS40LjJAc2hhMjU2OjlmODZkMDgxODg0YzdkNjU5YTJmZWFhMGM1NWFkMDE1YTNiZjRmMWIyYjBiODIyY2QxNWQ2YzE1YjBmMDBhMDgifV0="}}',
    );
  });

  test('the base64 patch decodes back to the operations', () => {
    const ops: JsonPatchOp[] = [
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: `nginx:1.27@${DIGEST_A}` },
      { op: 'add', path: jsonPointer(['metadata', 'annotations', 'plinth.dev/pinned']), value: 'true' },
      { op: 'add', path: '/spec/replicas', value: 3 },
      { op: 'remove', path: '/metadata/labels/tmp~0x' },
      { op: 'copy', from: '/a', path: '/b' },
      { op: 'test', path: '/spec/replicas', value: null },
    ];
    const r = admissionResponse(UID, { allowed: true, patch: ops });
    assert.equal(r.response.patchType, 'JSONPatch');
    assert.match(r.response.patch!, /^[A-Za-z0-9+/]+={0,2}$/);
    assert.deepEqual(JSON.parse(Buffer.from(r.response.patch!, 'base64').toString('utf8')), ops);
    // The docs' own example encodes the same way (modulo their spaces).
    assert.deepEqual(
      JSON.parse(Buffer.from('W3sib3AiOiAiYWRkIiwgInBhdGgiOiAiL3NwZWMvcmVwbGljYXMiLCAidmFsdWUiOiAzfV0=', 'base64').toString()),
      JSON.parse(Buffer.from(encodePatch([{ op: 'add', path: '/spec/replicas', value: 3 }]), 'base64').toString()),
    );
  });

  test('denials: default code and message, bounded message, codes the server would rewrite are refused', () => {
    const d = admissionResponse(UID, { allowed: false });
    assert.deepEqual(d.response.status, { code: 403, message: "the request was denied by Plinth's image policy" });
    const long = admissionResponse(UID, { allowed: false, code: 422, message: `${'x'.repeat(1022)}€€` });
    assert.equal(long.response.status!.code, 422);
    assert.ok(Buffer.byteLength(long.response.status!.message) <= 1024);
    assert.ok(long.response.status!.message.endsWith('x…'));
    const custom = admissionResponse(UID, { allowed: false, message: 'y'.repeat(5000), maxMessageBytes: 4096 });
    assert.equal(Buffer.byteLength(custom.response.status!.message), 4096);
    for (const code of [200, 399, 600, 403.5]) {
      assert.throws(() => admissionResponse(UID, { allowed: false, code }), (e: unknown) => e instanceof PlinthError && e.code === 'USAGE');
    }
    // The message of an allowed response is not sent.
    assert.deepEqual(admissionResponse(UID, { allowed: true, message: 'fine', code: 200 }).response, { uid: UID, allowed: true });
  });

  test('programming errors are USAGE errors', () => {
    const usage = (fn: () => unknown, m: RegExp) => assert.throws(fn, (e: unknown) => e instanceof PlinthError && e.code === 'USAGE' && m.test(e.message));
    usage(() => admissionResponse('', { allowed: true }), /needs the request uid/);
    usage(() => admissionResponse(UID, { allowed: false, patch: [{ op: 'add', path: '/x', value: 1 }] }), /cannot be patched/);
    usage(() => admissionResponse(UID, { allowed: true, patch: [{ op: 'add', path: 'x', value: 1 }] }), /must be empty or start with "\/"/);
    usage(() => admissionResponse(UID, { allowed: true, patch: [{ op: 'add', path: '/a~2', value: 1 }] }), /"~" must be followed by 0 or 1/);
    usage(() => admissionResponse(UID, { allowed: true, patch: [{ op: 'add', path: '/a' } as unknown as JsonPatchOp] }), /needs a value/);
    usage(() => admissionResponse(UID, { allowed: true, patch: [{ op: 'frobnicate', path: '/a' } as unknown as JsonPatchOp] }), /expected add, remove/);
    usage(() => admissionResponse(UID, { allowed: true, auditAnnotations: { 'plinth.dev/decision': 'x' } }), /audit annotation key "plinth\.dev\/decision" is not a valid name/);
    usage(() => admissionResponse(UID, { allowed: true, auditAnnotations: { ['a'.repeat(64)]: 'x' } }), /not a valid name/);
  });

  test('an empty patch and empty warnings are left out; audit annotations are passed', () => {
    const r = admissionResponse(UID, { allowed: true, patch: [], warnings: ['', '  '], auditAnnotations: { 'policy-decision': 'allowed', 'base.image': 'debian:12' } });
    assert.deepEqual(r.response, { uid: UID, allowed: true, auditAnnotations: { 'policy-decision': 'allowed', 'base.image': 'debian:12' } });
  });
});

describe('warnings within the API server limits', () => {
  test('each warning: no control characters, at most 256 code points, no broken characters', () => {
    const [a, b, c, d] = boundWarnings(['line one\nline two\ttab\u0085nel', '😀'.repeat(300), 'lone \uD83D surrogate', '  padded  ']);
    assert.equal(a, 'line one line two tab nel');
    assert.equal(codePointLength(b!), WARNING_MAX_CODE_POINTS);
    assert.ok(b!.endsWith('😀…'));
    assert.equal(b!.length, 255 * 2 + 1, 'surrogate pairs kept whole');
    assert.equal(c, 'lone \uFFFD surrogate');
    assert.equal(d, 'padded');
    for (const w of [a, b, c, d]) {
      assert.ok(!/\p{Cc}/u.test(w!));
      assert.equal(Buffer.from(w!, 'utf8').toString('utf8'), w, 'round-trips through UTF-8');
    }
  });

  test('duplicates are dropped; the total stays within 4096 code points and says what was left out', () => {
    assert.deepEqual(boundWarnings(['a', 'a', 'b']), ['a', 'b']);
    const many = Array.from({ length: 40 }, (_, i) => `warning ${i}: ${'é'.repeat(300)}`);
    const out = boundWarnings(many);
    const total = out.reduce((n, w) => n + codePointLength(w), 0);
    assert.ok(total <= WARNINGS_TOTAL_MAX_CODE_POINTS, `total ${total}`);
    assert.match(out[out.length - 1]!, /^\(\d+ more warnings not shown\)$/);
    const shown = out.length - 1;
    assert.equal(out[out.length - 1], `(${40 - shown} more warnings not shown)`);
    assert.ok(out.slice(0, -1).every((w, i) => w.startsWith(`warning ${i}: `)));
    // Exactly 16 warnings of 256 code points fit with nothing left out.
    const fit = boundWarnings(Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, '0')}${'z'.repeat(254)}`));
    assert.equal(fit.length, 16);
  });

  test('truncateUtf8 cuts on a code point boundary', () => {
    assert.equal(truncateUtf8('abc', 3), 'abc');
    assert.equal(truncateUtf8('ab€€', 7), 'ab…');
    assert.equal(truncateUtf8('ab€€', 8), 'ab€€');
    assert.equal(truncateUtf8('😀😀😀', 10), '😀…');
  });
});

// ---------------------------------------------------------------------------------------------
// Pinning and JSON pointers
// ---------------------------------------------------------------------------------------------

describe('pinPatch', () => {
  const images = [
    { image: 'registry.example.com/team/app:1.4.2', path: '/spec/template/spec/containers/0/image' },
    { image: 'nginx', path: '/spec/template/spec/containers/1/image' },
    { image: `alpine:3.20@${DIGEST_B}`, path: '/spec/template/spec/initContainers/0/image' },
    { image: 'not-resolved:1', path: '/spec/template/spec/containers/2/image' },
    { image: 'registry.example.com/team/app:1.4.2', path: '/spec/template/spec/ephemeralContainers/0/image' },
  ];

  test('tags are kept and the digest appended; digests and unresolved images are left alone', () => {
    const resolved = new Map([
      ['registry.example.com/team/app:1.4.2', DIGEST_A],
      ['nginx', DIGEST_B],
      [`alpine:3.20@${DIGEST_B}`, DIGEST_A],
    ]);
    const ops = pinPatch(images, resolved);
    assert.deepEqual(ops, [
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: `registry.example.com/team/app:1.4.2@${DIGEST_A}` },
      { op: 'replace', path: '/spec/template/spec/containers/1/image', value: `nginx@${DIGEST_B}` },
      { op: 'replace', path: '/spec/template/spec/ephemeralContainers/0/image', value: `registry.example.com/team/app:1.4.2@${DIGEST_A}` },
    ]);
    for (const op of ops) {
      const ref = parseImageReference((op as { value: string }).value);
      assert.ok(ref.digest);
    }
    assert.equal(parseImageReference(`registry.example.com/team/app:1.4.2@${DIGEST_A}`).tag, '1.4.2');
    // Reinvocation: the pinned images produce no further operations.
    const pinned = ops.map((op) => ({ image: (op as { value: string }).value, path: op.path }));
    assert.deepEqual(pinPatch(pinned, new Map(pinned.map((p) => [p.image, DIGEST_B]))), []);
  });

  test('bad digests and references are refused', () => {
    assert.throws(() => pinPatch(images, new Map([['nginx', 'sha256:abc']])), (e: unknown) => e instanceof PlinthError && e.code === 'DIGEST_INVALID');
    assert.throws(() => pinPatch([{ image: 'docker.io/Team/app:1', path: '/x' }], new Map([['docker.io/Team/app:1', DIGEST_A]])), (e: unknown) => e instanceof PlinthError && e.code === 'REFERENCE_INVALID');
    assert.throws(() => pinPatch([{ image: 'nginx', path: 'spec' }], new Map([['nginx', DIGEST_A]])), (e: unknown) => e instanceof PlinthError && e.code === 'USAGE');
  });

  test('works on extractImages output end to end', () => {
    const w = checked(review({ group: 'batch', version: 'v1', kind: 'CronJob' }, 'cronjobs', workload('batch/v1', 'CronJob', { jobTemplate: { spec: { template: template() } } })));
    const resolved = new Map(w.images.map((img) => [img, DIGEST_A]));
    const ops = pinPatch(w.containers.filter((c) => c.isNew), resolved);
    assert.deepEqual(
      ops.map((o) => o.path),
      ['/spec/jobTemplate/spec/template/spec/containers/0/image', '/spec/jobTemplate/spec/template/spec/containers/1/image', '/spec/jobTemplate/spec/template/spec/initContainers/0/image'],
    );
  });
});

describe('JSON pointers (RFC 6901)', () => {
  test('escaping ~ and /', () => {
    assert.equal(escapeJsonPointerToken('a/b'), 'a~1b');
    assert.equal(escapeJsonPointerToken('m~n'), 'm~0n');
    assert.equal(escapeJsonPointerToken('~1'), '~01', '~ is escaped first, so ~1 is not read back as /');
    assert.equal(unescapeJsonPointerToken('~01'), '~1');
    assert.equal(unescapeJsonPointerToken('a~1b~0c'), 'a/b~c');
    assert.equal(escapeJsonPointerToken(3), '3');
    assert.equal(jsonPointer(['metadata', 'annotations', 'plinth.dev/pinned-from~tag']), '/metadata/annotations/plinth.dev~1pinned-from~0tag');
    assert.equal(jsonPointer([]), '');
  });

  test('parse round-trips and resolves in a document (RFC 6901 §5 examples)', () => {
    const doc = { foo: ['bar', 'baz'], '': 0, 'a/b': 1, 'c%d': 2, 'e^f': 3, 'g|h': 4, 'i\\j': 5, 'k"l': 6, ' ': 7, 'm~n': 8 };
    const cases: Array<[string, unknown]> = [
      ['', doc],
      ['/foo', ['bar', 'baz']],
      ['/foo/0', 'bar'],
      ['/', 0],
      ['/a~1b', 1],
      ['/c%d', 2],
      ['/e^f', 3],
      ['/g|h', 4],
      ['/i\\j', 5],
      ['/k"l', 6],
      ['/ ', 7],
      ['/m~0n', 8],
    ];
    for (const [p, expected] of cases) {
      assert.deepEqual(resolvePointer(doc, p), expected, p);
      assert.equal(jsonPointer(parseJsonPointer(p)), p);
    }
    for (const bad of ['foo', '/a~', '/a~2b']) assert.throws(() => parseJsonPointer(bad), (e: unknown) => e instanceof PlinthError && e.code === 'USAGE');
  });
});

function resolvePointer(doc: unknown, pointer: string): unknown {
  let cur: unknown = doc;
  for (const t of parseJsonPointer(pointer)) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (cur && typeof cur === 'object') cur = (cur as Record<string, unknown>)[t];
    else return undefined;
  }
  return cur;
}
