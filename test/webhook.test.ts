import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { startRegistry, startFaultProxy, type TestRegistry } from './helpers/registry.js';
import { buildImage, type BuiltImage, type FileSpec } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { chainIds } from '../src/provenance/chain.js';
import { emptyCatalog, saveCatalog } from '../src/provenance/catalog.js';
import { createCertificates } from '../src/admission/certs.js';
import { PolicyDecider } from '../src/admission/policydecider.js';
import { startServer, type RunningServer } from '../src/admission/server.js';

const AMD64 = { os: 'linux', architecture: 'amd64' };
const layers = (v: string): FileSpec[][] => [[{ path: 'etc/os-release', content: `ID=debian\nVERSION_ID="12"\nB=${v}\n` }]];
const app: FileSpec[] = [{ path: 'app/main', content: 'app' }];

interface Reply {
  status: number;
  body: Record<string, any>;
  text: string;
}

describe('admission webhook over HTTPS', () => {
  let reg: TestRegistry;
  let work: string;
  let ca: string;
  let server: RunningServer;
  let decider: PolicyDecider;
  let policyFile: string;
  const img: Record<string, BuiltImage> = {};
  let host: string;

  function call(pathName: string, body: unknown, method = 'POST', raw?: string): Promise<Reply> {
    const data = raw ?? (body === undefined ? '' : JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = https.request(`${server.url}${pathName}`, { method, ca, servername: 'plinth.plinth-system.svc', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: Record<string, any> = {};
          try {
            parsed = JSON.parse(text) as Record<string, any>;
          } catch {
            /* text endpoints */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, text });
        });
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  /** POST a review to another server of the test (same CA) and return the parsed answer. */
  function postReview(url: string, pathName: string, body: unknown): Promise<Record<string, any>> {
    return new Promise((resolve, reject) => {
      const req = https.request(`${url}${pathName}`, { method: 'POST', ca, servername: 'plinth.plinth-system.svc', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => resolve(JSON.parse(text) as Record<string, any>));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }

  const review = (uid: string, images: string[], o: { namespace?: string; kind?: string; labels?: Record<string, string>; annotations?: Record<string, string>; operation?: string } = {}) => {
    const podSpec = { containers: images.map((image, i) => ({ name: `c${i}`, image })), initContainers: [] as unknown[] };
    const kind = o.kind ?? 'Pod';
    const object = kind === 'Pod'
      ? { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace: o.namespace ?? 'prod', labels: o.labels ?? {}, annotations: o.annotations ?? {} }, spec: podSpec }
      : { apiVersion: 'apps/v1', kind, metadata: { name: 'web', namespace: o.namespace ?? 'prod', labels: o.labels ?? {} }, spec: { template: { metadata: { labels: o.labels ?? {}, annotations: o.annotations ?? {} }, spec: podSpec } } };
    const group = kind === 'Pod' ? '' : 'apps';
    const resource = kind === 'Pod' ? 'pods' : `${kind.toLowerCase()}s`;
    return {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid, kind: { group, version: 'v1', kind }, resource: { group, version: 'v1', resource }, requestKind: { group, version: 'v1', kind }, requestResource: { group, version: 'v1', resource },
        name: object.metadata.name, namespace: o.namespace ?? 'prod', operation: o.operation ?? 'CREATE', userInfo: { username: 'alice', groups: ['devs'] }, object, oldObject: null, dryRun: false,
        options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
      },
    };
  };

  const policyText = (pin: boolean, extra = '') => `apiVersion: plinth.dev/v1alpha1
kind: ImagePolicy
metadata: {name: test}
spec:
  pinDigests: ${pin}
  breakGlass: {annotation: break-glass.image-policy.k8s.io/ticket, mode: audit}
  rules:
    - name: allowed-registries
      mode: enforce
      allowedRegistries: {registries: ["127.0.0.1:*/**"]}
    - name: no-latest
      mode: warn
      imageReferences: {forbidLatest: true}
    - name: require-base-image
      mode: enforce
      message: Images must specify a source/base image from which they are built.
      requireBaseImage: {}
    - name: allowed-base-images
      mode: enforce
      message: This container image's base is not in the approved list or is not specified. Only pre-approved base images may be used. Please contact the platform team for assistance.
      allowedBaseImages: {catalogApproved: true, deprecated: deny}
${extra}`;

  before(async () => {
    reg = await startRegistry();
    host = reg.host;
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-webhook-'));
    img.approvedBase = await buildImage({ platform: AMD64, layers: layers('approved') });
    img.otherBase = await buildImage({ platform: AMD64, layers: layers('other') });
    img.onApproved = await buildImage({ platform: AMD64, layers: [...layers('approved'), app] });
    img.onOther = await buildImage({ platform: AMD64, layers: [...layers('other'), app] });
    img.noBase = await buildImage({ platform: AMD64, layers: [[{ path: 'x', content: 'scratch' }], app] });
    await copyImage(img.approvedBase.source, await openDestination(`${host}/base/debian:12`));
    await copyImage(img.otherBase.source, await openDestination(`${host}/base/other:1`));
    await copyImage(img.onApproved.source, await openDestination(`${host}/team/good:1`));
    await copyImage(img.onApproved.source, await openDestination(`${host}/team/good:latest`));
    await copyImage(img.onOther.source, await openDestination(`${host}/team/unapproved:1`));
    await copyImage(img.noBase.source, await openDestination(`${host}/team/unknown:1`));
    const cat = emptyCatalog();
    cat.bases.push({ name: `${host}/base/debian`, tag: '12', digest: img.approvedBase.descriptor.digest, diffIds: img.approvedBase.diffIds, chainIds: chainIds(img.approvedBase.diffIds), status: 'approved' });
    cat.bases.push({ name: `${host}/base/other`, tag: '1', digest: img.otherBase.descriptor.digest, diffIds: img.otherBase.diffIds, chainIds: chainIds(img.otherBase.diffIds), status: 'unknown' });
    await saveCatalog(path.join(work, 'catalog.yaml'), cat);
    policyFile = path.join(work, 'policy.yaml');
    await writeFile(policyFile, policyText(true).replace('${REGISTRY}', host));
    const certs = await createCertificates({ service: 'plinth', namespace: 'plinth-system', dir: path.join(work, 'certs'), ipAddresses: ['127.0.0.1'] });
    ca = certs.caCert;
    const logger = pino({ level: 'silent' });
    decider = await PolicyDecider.create({ policyFile, catalogFile: path.join(work, 'catalog.yaml'), logger, onReload: () => server?.clearCache() });
    server = await startServer(decider, { cert: certs.cert, key: certs.key, port: 0, host: '127.0.0.1', deadlineMs: 5000, logger });
  });
  after(async () => {
    await server?.close();
    decider?.close();
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('an image on an approved base is allowed; the answer echoes the uid', async () => {
    const r = await call('/validate', review('uid-ok', [`${host}/team/good:1`]));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.body).sort(), ['apiVersion', 'kind', 'response']);
    assert.equal(r.body.apiVersion, 'admission.k8s.io/v1');
    assert.equal(r.body.kind, 'AdmissionReview');
    assert.equal(r.body.response.uid, 'uid-ok');
    assert.equal(r.body.response.allowed, true);
    assert.equal(r.body.response.status, undefined);
  });

  test('unknown base, unapproved base, disallowed registry are denied with per-container reasons', async () => {
    const r = await call('/validate', review('uid-deny', [`${host}/team/unknown:1`, `${host}/team/unapproved:1`, 'docker.io/library/nginx:1.25'], { kind: 'Deployment' }));
    assert.equal(r.body.response.uid, 'uid-deny');
    assert.equal(r.body.response.allowed, false);
    assert.equal(r.body.response.status.code, 403);
    const msg = r.body.response.status.message as string;
    assert.match(msg, /Deployment prod\/web/);
    assert.match(msg, /\[require-base-image\] Images must specify a source\/base image from which they are built.\n  - container "c0" \(.*team\/unknown:1\): the base image is unknown/);
    assert.match(msg, /\[allowed-base-images\] This container image's base is not in the approved list[^\n]*\n(  - [^\n]*\n)*  - container "c1" \(.*team\/unapproved:1\): the base .*base\/other.* is not approved/);
    assert.match(msg, /\[allowed-registries\][^\n]*\n  - container "c2" \(docker.io\/library\/nginx:1.25\)/);
    // The disallowed registry is never contacted: its only failure is the registry rule.
    assert.doesNotMatch(msg, /registry-1.docker.io|resolve host/);
  });

  test('a warn rule gives warnings on an allowed request (latest tag)', async () => {
    const r = await call('/validate', review('uid-warn', [`${host}/team/good:latest`]));
    assert.equal(r.body.response.allowed, true);
    assert.ok(r.body.response.warnings.some((w: string) => /no-latest/.test(w)), JSON.stringify(r.body.response.warnings));
  });

  test('/mutate pins tags to the digests that were checked', async () => {
    const r = await call('/mutate', review('uid-mut', [`${host}/team/good:1`]));
    assert.equal(r.body.response.allowed, true);
    assert.equal(r.body.response.patchType, 'JSONPatch');
    const ops = JSON.parse(Buffer.from(r.body.response.patch, 'base64').toString()) as Array<{ op: string; path: string; value: string }>;
    assert.deepEqual(ops, [{ op: 'replace', path: '/spec/containers/0/image', value: `${host}/team/good:1@${img.onApproved.descriptor.digest}` }]);
  });

  test('ImageReview: allow, deny with reason, and the break-glass annotation turning a denial into an audited allow', async () => {
    const ir = (images: string[], annotations: Record<string, string> = {}) => ({ apiVersion: 'imagepolicy.k8s.io/v1alpha1', kind: 'ImageReview', spec: { containers: images.map((image) => ({ image })), annotations, namespace: 'prod' } });
    const ok = await call('/imagepolicy', ir([`${host}/team/good:1`]));
    assert.deepEqual(ok.body, { apiVersion: 'imagepolicy.k8s.io/v1alpha1', kind: 'ImageReview', status: { allowed: true } });
    const no = await call('/imagepolicy', ir([`${host}/team/unknown:1`]));
    assert.equal(no.body.status.allowed, false);
    assert.match(no.body.status.reason, /source\/base image/);
    const glass = await call('/imagepolicy', ir([`${host}/team/unknown:1`], { 'break-glass.image-policy.k8s.io/ticket': 'INC-42', 'other.example.com/x': 'ignored' }));
    assert.equal(glass.body.status.allowed, true);
  });

  test('malformed, oversized, wrong-kind and missing-uid requests get a clear 400 and the server keeps serving', async () => {
    const bad: Array<[string, string | undefined, unknown]> = [
      ['not json', '{"apiVersion":', undefined],
      ['wrong kind', undefined, { apiVersion: 'admission.k8s.io/v1', kind: 'Pod', request: {} }],
      ['missing uid', undefined, { ...review('x', ['a']), request: { ...review('x', ['a']).request, uid: '' } }],
      ['old version', undefined, { ...review('x', ['a']), apiVersion: 'admission.k8s.io/v1beta1' }],
      ['oversized', JSON.stringify({ pad: 'x'.repeat(4 * 1024 * 1024) }), undefined],
    ];
    for (const [name, raw, body] of bad) {
      const r = await call('/validate', body, 'POST', raw);
      assert.equal(r.status, 400, name);
      assert.equal(typeof r.body.error, 'string', name);
      assert.ok(r.body.error.length > 5, name);
    }
    assert.equal((await call('/validate', undefined, 'GET')).status, 405);
    assert.equal((await call('/nope', {})).status, 404);
    const still = await call('/validate', review('uid-after', [`${host}/team/good:1`]));
    assert.equal(still.body.response.allowed, true);
  });

  test('health, readiness and Prometheus metrics', async () => {
    assert.equal((await call('/healthz', undefined, 'GET')).text, 'ok');
    assert.equal((await call('/readyz', undefined, 'GET')).text, 'ok');
    const m = (await call('/metrics', undefined, 'GET')).text;
    assert.match(m, /plinth_decisions_total\{endpoint="validate",result="deny"\} \d+/);
    assert.match(m, /plinth_rule_results_total\{rule="allowed-base-images",mode="enforce",outcome="fail"\}/);
    assert.match(m, /plinth_request_duration_seconds_bucket/);
    assert.match(m, /plinth_cache_hits_total\{result="hit"\} [1-9]/);
  });

  test('a slow registry hits the deadline and the closed failure mode denies, saying why', async () => {
    const proxy = await startFaultProxy(reg.url, [{ match: /\/manifests\//, action: { delayMs: 8000 } }]);
    const slow = await startServer(decider, { cert: (await import('node:fs')).readFileSync(path.join(work, 'certs', 'tls.crt')), key: (await import('node:fs')).readFileSync(path.join(work, 'certs', 'tls.key')), port: 0, host: '127.0.0.1', deadlineMs: 500, logger: pino({ level: 'silent' }) });
    try {
      const started = Date.now();
      const r = await new Promise<Reply>((resolve, reject) => {
        const data = JSON.stringify(review('uid-slow', [`${proxy.host}/team/good:1`]));
        const req = https.request(`${slow.url}/validate`, { method: 'POST', ca, servername: 'plinth.plinth-system.svc', headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, any>, text }));
        });
        req.on('error', reject);
        req.end(data);
      });
      assert.ok(Date.now() - started < 4000, 'answered well before the slow registry would have');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.response.allowed, false);
      assert.match(r.body.response.status.message, /could not be checked|deadline|within/);
      assert.match(r.body.response.status.message, /failure policy is closed|closed/);
    } finally {
      await slow.close();
      await proxy.stop();
    }
  });

  test('the policy reloads when its file changes (as a ConfigMap update does), without dropping requests', async () => {
    const before = await call('/validate', review('uid-r1', [`${host}/team/unapproved:1`]));
    assert.equal(before.body.response.allowed, false);
    // Relax: allowed-base-images becomes warn. Written to a temp file and renamed, like kubelet's symlink swap.
    const relaxed = policyText(true).replace('${REGISTRY}', host).replace(/- name: allowed-base-images\n      mode: enforce/, '- name: allowed-base-images\n      mode: warn');
    await writeFile(`${policyFile}.new`, relaxed);
    await rename(`${policyFile}.new`, policyFile);
    let after: Reply | undefined;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await call('/validate', review(`uid-r2-${i}`, [`${host}/team/unapproved:1`]));
      if (after.body.response.allowed) break;
    }
    assert.equal(after!.body.response.allowed, true);
    assert.ok(after!.body.response.warnings.some((w: string) => /allowed-base-images/.test(w)));
    // A broken policy keeps the last good one.
    await writeFile(policyFile, 'spec: [not a policy');
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await call('/readyz', undefined, 'GET')).text, 'ok');
    assert.equal((await call('/validate', review('uid-r3', [`${host}/team/unapproved:1`]))).body.response.allowed, true);
  });

  test('a vulnerable image is denied by a vulnerabilities rule; an unexpired exception excuses it, an expired one does not', async () => {
    const { openStore } = await import('../src/vuln/store.js');
    const { importPaths } = await import('../src/vuln/import.js');
    const vulnImg = await buildImage({ platform: AMD64, layers: [...layers('approved'), [{ path: 'var/lib/dpkg/status', content: 'Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n' }]] });
    await copyImage(vulnImg.source, await openDestination(`${host}/team/vulnerable:1`));
    const adv = path.join(work, 'adv');
    await (await import('node:fs/promises')).mkdir(adv, { recursive: true });
    await writeFile(path.join(adv, 'a.json'), JSON.stringify({ id: 'DEBIAN-CVE-2024-0727', modified: '2024-02-01T00:00:00Z', summary: 'openssl crash', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }], affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.13-1~deb12u1' }] }] }] }));
    const dbPath = path.join(work, 'vuln.db');
    const store = openStore(dbPath);
    await importPaths(store, [adv]);
    store.close();
    const vulnPolicy = (expires: string) => policyText(false, `    - name: no-critical
      mode: enforce
      vulnerabilities:
        severity: CRITICAL
        exceptions:
          - id: DEBIAN-CVE-2024-0727
            images: ["127.0.0.1:*/team/excused/**"]
            reason: not reachable (SEC-1)
            expires: ${expires}
`);
    const certs = { cert: (await import('node:fs')).readFileSync(path.join(work, 'certs', 'tls.crt')), key: (await import('node:fs')).readFileSync(path.join(work, 'certs', 'tls.key')) };
    for (const [expires, excusedAllowed] of [['2999-01-01', true], ['2000-01-01', false]] as const) {
      const pf = path.join(work, `vpolicy-${expires}.yaml`);
      await writeFile(pf, vulnPolicy(expires));
      const d = await PolicyDecider.create({ policyFile: pf, catalogFile: path.join(work, 'catalog.yaml'), dbPath, logger: pino({ level: 'silent' }) });
      const s = await startServer(d, { ...certs, port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) });
      try {
        const post = (imgRef: string) => postReview(s.url, '/validate', review(`uid-v-${expires}`, [imgRef]));
        const denied = await post(`${host}/team/vulnerable:1`);
        assert.equal(denied.response.allowed, false);
        assert.match(denied.response.status.message, /\[no-critical\][\s\S]*DEBIAN-CVE-2024-0727/);
        await copyImage(vulnImg.source, await openDestination(`${host}/team/excused/app:1`));
        const excused = await post(`${host}/team/excused/app:1`);
        assert.equal(excused.response.allowed, excusedAllowed, JSON.stringify(excused.response));
      } finally {
        await s.close();
        d.close();
      }
    }
  });

  test('client certificates: with --client-ca a caller without a certificate is refused at TLS', async () => {
    const { readFileSync } = await import('node:fs');
    const s = await startServer(decider, { cert: readFileSync(path.join(work, 'certs', 'tls.crt')), key: readFileSync(path.join(work, 'certs', 'tls.key')), clientCa: ca, port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) });
    try {
      await assert.rejects(new Promise((resolve, reject) => {
        const req = https.request(`${s.url}/healthz`, { ca, servername: 'plinth.plinth-system.svc' }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        });
        req.on('error', reject);
        req.end();
      }));
    } finally {
      await s.close();
    }
  });

  test('requireDigest with pinDigests: /validate denies an unpinned tag, /mutate pins it', async () => {
    const pf = path.join(work, 'pin-policy.yaml');
    await writeFile(pf, 'apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: pin}\nspec:\n  pinDigests: true\n  rules:\n    - name: digests\n      mode: enforce\n      imageReferences: {requireDigest: true}\n');
    // The test registry is on loopback, which the webhook refuses unless allowed.
    const d = await PolicyDecider.create({ policyFile: pf, logger: pino({ level: 'silent' }), allowPrivateRegistries: ['127.0.0.1'] });
    const { readFileSync } = await import('node:fs');
    const s = await startServer(d, { cert: readFileSync(path.join(work, 'certs', 'tls.crt')), key: readFileSync(path.join(work, 'certs', 'tls.key')), port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) });
    const post = (p: string, imgRef: string) => postReview(s.url, p, review('uid-pin', [imgRef]));
    try {
      const v = await post('/validate', `${host}/team/good:1`);
      assert.equal(v.response.allowed, false);
      assert.match(v.response.status.message, /\[digests\]/);
      const m = await post('/mutate', `${host}/team/good:1`);
      assert.equal(m.response.allowed, true);
      const ops = JSON.parse(Buffer.from(m.response.patch, 'base64').toString()) as Array<{ value: string }>;
      assert.equal(ops[0]!.value, `${host}/team/good:1@${img.onApproved.descriptor.digest}`);
      const pinned = await post('/validate', ops[0]!.value);
      assert.equal(pinned.response.allowed, true);
    } finally {
      await s.close();
      d.close();
    }
  });

  test('private networks: a pod spec cannot make the webhook contact loopback, private or metadata addresses', async () => {
    // A policy that needs the registry (pinning) and names no registries: nothing is exempt.
    const pf = path.join(work, 'ssrf-policy.yaml');
    await writeFile(pf, 'apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: ssrf}\nspec:\n  pinDigests: true\n  rules:\n    - name: base\n      mode: enforce\n      requireBaseImage: {}\n');
    const d = await PolicyDecider.create({ policyFile: pf, logger: pino({ level: 'silent' }) });
    const { readFileSync } = await import('node:fs');
    const s = await startServer(d, { cert: readFileSync(path.join(work, 'certs', 'tls.crt')), key: readFileSync(path.join(work, 'certs', 'tls.key')), port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }), deadlineMs: 3000 });
    const post = (imgRef: string) => postReview(s.url, '/validate', review('uid-ssrf', [imgRef]));
    // A listener on loopback that counts connections: nothing may reach it.
    const net = await import('node:net');
    let connections = 0;
    const trap = net.createServer((sock) => {
      connections++;
      sock.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const port = (trap.address() as import('node:net').AddressInfo).port;
    try {
      // An IP literal on loopback (the test registry itself), a name that resolves to loopback,
      // the cloud metadata address and a private address: all refused, fail closed, and the
      // registry sees no request.
      for (const [imgRef, shown] of [
        [`127.0.0.1:${port}/team/good:1`, '127.0.0.1'],
        [`localhost:${port}/team/good:1`, 'localhost'],
        ['169.254.169.254/latest/meta-data:1', '169.254.169.254'],
        ['10.1.2.3:5000/team/app:1', '10.1.2.3'],
        ['[::1]:5000/team/app:1', '::1'],
      ] as const) {
        const v = await post(imgRef);
        assert.equal(v.response.allowed, false, imgRef);
        assert.match(v.response.status.message, /refusing to connect to .*loopback, private or link-local/, imgRef);
        assert.ok(v.response.status.message.includes(shown), `${imgRef}: ${v.response.status.message}`);
      }
      assert.equal(connections, 0, 'nothing connected to the loopback listener');
    } finally {
      await s.close();
      d.close();
    }
    // failurePolicy open does not let a refused registry in: the refusal is a denial, not an error.
    // A policy pattern with a wildcard host ("*:PORT") exempts nothing.
    const open = path.join(work, 'ssrf-open.yaml');
    await writeFile(open, `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: open}\nspec:\n  failurePolicy: open\n  rules:\n    - name: base\n      mode: enforce\n      requireBaseImage: {}\n    - name: regs\n      mode: enforce\n      allowedRegistries: {registries: ["*:${port}/**", "10.1.2.3:5000/**"]}\n`);
    const dOpen = await PolicyDecider.create({ policyFile: open, logger: pino({ level: 'silent' }) });
    const sOpen = await startServer(dOpen, { cert: readFileSync(path.join(work, 'certs', 'tls.crt')), key: readFileSync(path.join(work, 'certs', 'tls.key')), port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) });
    try {
      const ask = (imgRef: string) => postReview(sOpen.url, '/validate', review('uid-open', [imgRef]));
      const v = await ask(`localhost:${port}/team/app:1`);
      assert.equal(v.response.allowed, false, JSON.stringify(v.response));
      assert.match(v.response.status.message, /\[network\][\s\S]*refusing to connect to localhost/);
      assert.equal(connections, 0);
    } finally {
      await sOpen.close();
      dOpen.close();
    }
    // Allowed by name (operator flag) or by the policy's allowedRegistries, the same image is checked.
    for (const opts of [{ allowPrivateRegistries: ['127.0.0.1'] }, {}]) {
      const pf2 = path.join(work, 'ssrf-policy-2.yaml');
      const named = 'allowPrivateRegistries' in opts ? '' : `    - name: ours\n      mode: enforce\n      allowedRegistries: {registries: ["${host}/**"]}\n`;
      await writeFile(pf2, `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: ssrf2}\nspec:\n  pinDigests: true\n  rules:\n    - name: base\n      mode: enforce\n      requireBaseImage: {}\n${named}`);
      const d2 = await PolicyDecider.create({ policyFile: pf2, catalogFile: path.join(work, 'catalog.yaml'), logger: pino({ level: 'silent' }), ...opts });
      const s2 = await startServer(d2, { cert: readFileSync(path.join(work, 'certs', 'tls.crt')), key: readFileSync(path.join(work, 'certs', 'tls.key')), port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) });
      try {
        const res = await postReview(s2.url, '/validate', review('uid-ok', [`${host}/team/good:1`]));
        assert.equal(res.response.allowed, true, JSON.stringify(res.response));
      } finally {
        await s2.close();
        d2.close();
      }
    }
    trap.close();
  });
});
