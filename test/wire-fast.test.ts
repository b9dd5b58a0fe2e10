/**
 * The webhook's hot path checks well-formed AdmissionReview and ImageReview bodies by hand and
 * leaves everything else to the zod schemas (which name what is wrong). These tests hold the two
 * to the same answers: for thousands of seeded mutations of real-shaped requests, whenever the
 * hand-written check accepts, the schema accepts too and yields the same values; and the
 * well-formed requests really take the hand-written path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { __fastPaths as F, parseAdmissionReview, parseAdmissionReviewBody, extractImages } from '../src/admission/wire.js';
import { mulberry32 } from './helpers/common.js';

const POOL: unknown[] = [undefined, null, '', 'x', 'CREATE', 0, 1.5, true, false, [], ['a'], [1], {}, { a: 'b' }, { a: 1 }, { __proto__: null, k: 'v' }, [{}], [{ name: 'c', image: 'i' }], [{ name: 1 }], [null]];

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** Every path (as key lists) inside a JSON value. */
function paths(v: unknown, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (Array.isArray(v)) v.forEach((x, i) => { out.push([...prefix, i]); paths(x, [...prefix, i], out); });
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) { out.push([...prefix, k]); paths((v as Record<string, unknown>)[k], [...prefix, k], out); }
  return out;
}

function mutate(base: Record<string, unknown>, rnd: () => number, extraKeys: string[]): Record<string, unknown> {
  const v = clone(base);
  const n = 1 + Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) {
    const ps = paths(v);
    const pick = rnd() < 0.2 || ps.length === 0 ? [extraKeys[Math.floor(rnd() * extraKeys.length)]!] : ps[Math.floor(rnd() * ps.length)]!;
    let cur: any = v;
    for (const k of pick.slice(0, -1)) cur = cur?.[k];
    if (!cur || typeof cur !== 'object') continue;
    const last = pick[pick.length - 1]!;
    const val = clone(POOL[Math.floor(rnd() * POOL.length)]);
    if (val === undefined && !Array.isArray(cur)) delete cur[last];
    else cur[last] = val;
  }
  // Through JSON, as the server sees it (also turns `undefined` in arrays into null).
  return JSON.parse(JSON.stringify(v)) as Record<string, unknown>;
}

function agree<T>(name: string, bases: Record<string, unknown>[], extraKeys: string[], fast: (v: any) => T | undefined, slow: (v: unknown) => { success: boolean; data?: unknown }, project: (x: any) => unknown): void {
  test(`${name}: the hand-written check agrees with the schema`, () => {
    for (const b of bases) {
      const f = fast(clone(b));
      assert.ok(f !== undefined, `${name}: a well-formed value must take the hand-written path: ${JSON.stringify(b).slice(0, 200)}`);
      const s = slow(clone(b));
      assert.ok(s.success);
      assert.deepEqual(project(f), project(s.data));
    }
    const rnd = mulberry32(0x5eed + name.length);
    let accepted = 0;
    let fellBack = 0;
    for (let i = 0; i < 4000; i++) {
      const v = mutate(bases[i % bases.length]!, rnd, extraKeys);
      const f = fast(clone(v));
      const s = slow(clone(v));
      if (f === undefined) {
        fellBack++;
        continue;
      }
      accepted++;
      assert.ok(s.success, `${name}: the hand-written check accepted what the schema refuses: ${JSON.stringify(v).slice(0, 300)}`);
      assert.deepEqual(project(f), project(s.data), `${name}: different values for ${JSON.stringify(v).slice(0, 300)}`);
    }
    // Both paths are exercised by the mutations.
    assert.ok(accepted > 400, `${name}: only ${accepted} mutations accepted`);
    assert.ok(fellBack > 400, `${name}: only ${fellBack} mutations fell back`);
  });
}

const request = {
  uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
  kind: { group: '', version: 'v1', kind: 'Pod' },
  resource: { group: '', version: 'v1', resource: 'pods' },
  requestKind: { group: '', version: 'v1', kind: 'Pod' },
  requestResource: { group: '', version: 'v1', resource: 'pods' },
  name: 'web-0',
  namespace: 'prod',
  operation: 'CREATE',
  userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: 'u', groups: ['system:serviceaccounts', 'system:authenticated'], extra: { 'authentication.kubernetes.io/pod-name': ['x'], empty: null } },
  object: { kind: 'Pod', spec: { containers: [{ name: 'a', image: 'b' }] } },
  oldObject: null,
  dryRun: false,
  options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
};
const minimal = { uid: 'u', kind: { kind: 'Deployment' }, resource: { resource: 'deployments' }, operation: 'UPDATE', userInfo: null, dryRun: null, subResource: 'status' };

agree('AdmissionReview request', [request, minimal], ['requestSubResource', 'subResource', 'name', 'namespace', 'object', 'oldObject', 'options', 'dryRun', 'userInfo'], F.request, (v) => {
  const r = F.requestSchema.safeParse(v);
  return r.success ? { success: true, data: F.requestFrom(r.data) } : { success: false };
}, (x) => x);

const meta = { name: 'web', generateName: 'web-', namespace: 'prod', labels: { app: 'web', 'app.kubernetes.io/name': 'web' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' }, uid: 'x', managedFields: [{ manager: 'kubectl' }] };
const pick = (m: any) => m && { name: m.name ?? undefined, generateName: m.generateName ?? undefined, namespace: m.namespace ?? undefined, labels: m.labels ?? undefined, annotations: m.annotations ?? undefined };
agree('metadata', [meta, {}, { labels: null, annotations: null, name: null }], ['labels', 'annotations', 'name', 'namespace'], F.metadata, (v) => F.metadataSchema.safeParse(v), pick);

const spec = { containers: [{ name: 'a', image: 'r/a:1', ports: [{ containerPort: 80 }] }, { name: 'b', image: 'r/b@sha256:00' }], initContainers: [{ name: 'i', image: 'r/i' }], ephemeralContainers: null, volumes: [] };
const lists = (s: any) => s && { containers: s.containers ?? null, initContainers: s.initContainers ?? null, ephemeralContainers: s.ephemeralContainers ?? null };
agree('pod spec', [spec, {}, { containers: [] }], ['containers', 'initContainers', 'ephemeralContainers'], F.podSpec, (v) => F.podSpecSchema.safeParse(v), lists);

const irSpec = { containers: [{ image: 'r/a:1' }, { image: 'r/b' }], annotations: { 'mycluster.image-policy.k8s.io/ticket-1234': 'break-glass' }, namespace: 'prod' };
const irPick = (s: any) => s && { containers: s.containers.map((c: any) => c.image ?? ''), annotations: s.annotations, namespace: s.namespace };
agree('ImageReview spec', [irSpec, {}, { containers: null, annotations: null, namespace: null }], ['containers', 'annotations', 'namespace'], F.imageReviewSpec, (v) => F.imageReviewSpecSchema.safeParse(v), irPick);

test('a real-shaped Pod review takes the hand-written path end to end and still names what is wrong', () => {
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...request, object: { apiVersion: 'v1', kind: 'Pod', metadata: meta, spec } } };
  const out = extractImages(parseAdmissionReview(clone(review)));
  assert.equal(out.checked, true);
  if (out.checked) assert.deepEqual(out.images, ['r/a:1', 'r/b@sha256:00', 'r/i']);
  const bad = clone(review) as any;
  bad.request.object.spec.containers[1].image = 42;
  assert.throws(() => extractImages(parseAdmissionReview(bad)), /request\.object\.spec\.containers\[1\]\.image: expected a string, got a number/);
  const badLabels = clone(review) as any;
  badLabels.request.object.metadata.labels.app = true;
  assert.throws(() => extractImages(parseAdmissionReview(badLabels)), /request\.object\.metadata\.labels\.app/);
});

test('edge inputs: a byte-order mark is accepted; non-JSON objects and __proto__ keys go to the schema', () => {
  const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { ...request, object: { apiVersion: 'v1', kind: 'Pod', metadata: meta, spec } } };
  const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(review))]);
  assert.equal(parseAdmissionReviewBody(withBom).request.uid, request.uid);
  // A Map where labels belong: the hand-written check declines, the schema names the problem.
  assert.equal(F.metadata({ labels: new Map([['a', 'b']]) }), undefined);
  const odd = clone(review) as any;
  odd.request.object.metadata.labels = new Map([['a', 'b']]);
  assert.throws(() => extractImages(parseAdmissionReview(odd)), /request\.object\.metadata\.labels/);
  // Own "__proto__" keys (as JSON.parse makes them) are not taken by the hand-written path.
  const text = JSON.stringify(review).replace('"labels":{', '"labels":{"__proto__":"x",');
  const parsed = JSON.parse(text) as any;
  assert.ok(Object.prototype.hasOwnProperty.call(parsed.request.object.metadata.labels, '__proto__'));
  assert.equal(F.metadata(parsed.request.object.metadata), undefined);
  const extraText = JSON.stringify(request).replace('"extra":{', '"extra":{"__proto__":["a"],');
  assert.equal(F.request(JSON.parse(extraText)), undefined);
  const out = extractImages(parseAdmissionReview(JSON.parse(text)));
  assert.equal(Object.getPrototypeOf(out.labels), Object.prototype, 'no prototype taken from the request');
});
