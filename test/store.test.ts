/**
 * The metadata store, end to end, on both databases it runs on: an SQLite file and a real
 * PostgreSQL server (Debian's package, started on loopback by test/helpers/postgres.ts). The same
 * suite runs against each: images scanned through the real CLI from a real registry, a tag that
 * moves, an inventory import of a real-shaped `kubectl get pods -A -o json`, admissions recorded
 * by the webhook's recorder, the query commands, the JSON API and its Grafeas subset; then the
 * reliability cases (kill -9 while ingesting, schema versions, corrupt files, a lost server).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildImage, type BuiltImage, type FileSpec } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { startLocalRegistry, type LocalRegistry } from '../src/registry/local.js';
import { chainIds } from '../src/provenance/chain.js';
import { emptyCatalog, saveCatalog } from '../src/provenance/catalog.js';
import { openStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';
import { MetaStore } from '../src/store/store.js';
import { SCHEMA_VERSION } from '../src/store/schema.js';
import { AdmissionRecorder } from '../src/store/recorder.js';
import { parseKubeInventory, parseImageId } from '../src/store/kube.js';
import { startApi } from '../src/store/api.js';
import { openSqlite } from '../src/util/sqlite.js';
import { plinthCommand, repoRoot, runPlinth } from './helpers/common.js';
import { startPostgres, type Postgres } from './helpers/postgres.js';
import { debian12OsRelease, dpkgEntry } from './helpers/debian.js';

const baseStatus = `${dpkgEntry('libc6', '2.36-9+deb12u3', 'glibc')}\n${dpkgEntry('bash', '5.2.15-2+b2', 'bash (5.2.15-2)')}`;

async function getJson(url: string, token?: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: r.status, body: await r.json() };
}

/** A `kubectl get pods -A -o json` of 3 namespaces: Deployment, DaemonSet and bare pods, init containers, a pending pod. */
function podsJson(reg: string, d: { a: string; b: string }): string {
  const status = (name: string, imageID: string) => ({ name, image: '', imageID, ready: true, restartCount: 0 });
  const pod = (ns: string, name: string, labels: Record<string, string>, owner: { kind: string; name: string } | null, containers: Array<{ name: string; image: string }>, init: Array<{ name: string; image: string }>, statuses: any) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels, ...(owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: owner.kind, name: owner.name, controller: true, uid: 'u' }] } : {}) },
    spec: { containers, ...(init.length ? { initContainers: init } : {}) },
    status: statuses,
  });
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      pod('shop', 'web-7d9f8c6b5-x2x9q', { app: 'web', 'pod-template-hash': '7d9f8c6b5', owner: 'team-shop' }, { kind: 'ReplicaSet', name: 'web-7d9f8c6b5' },
        [{ name: 'web', image: `${reg}/team/app-a:1` }], [{ name: 'migrate', image: `${reg}/team/app-b:1` }],
        { phase: 'Running', containerStatuses: [status('web', `docker-pullable://${reg}/team/app-a@${d.a}`)], initContainerStatuses: [status('migrate', `${reg}/team/app-b@${d.b}`)] }),
      pod('payments', 'agent-abcde', { app: 'agent' }, { kind: 'DaemonSet', name: 'agent' },
        [{ name: 'agent', image: `${reg}/team/app-b:1` }], [],
        { phase: 'Running', containerStatuses: [status('agent', `${reg}/team/app-b@${d.b}`)] }),
      // Pending: scheduled nowhere yet, no imageID: known by reference only.
      pod('batch', 'report', { app: 'report' }, null, [{ name: 'report', image: `${reg}/team/report:2` }], [], { phase: 'Pending' }),
      // A bare sha256 imageID (containerd's config digest) is not a manifest digest: not used.
      pod('batch', 'cleanup', {}, null, [{ name: 'c', image: `${reg}/team/cleanup:1` }], [], { phase: 'Running', containerStatuses: [status('c', `sha256:${'e'.repeat(64)}`)] }),
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'shop' } },
    ],
  });
}

interface Fixture {
  work: string;
  reg: LocalRegistry;
  host: string;
  base: BuiltImage;
  appA: BuiltImage;
  appA2: BuiltImage;
  appB: BuiltImage;
  catalogFile: string;
  dbFile: string;
}

async function fixture(): Promise<Fixture> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-store-'));
  const reg = await startLocalRegistry({ dir: path.join(work, 'registry') });
  const host = reg.host;
  const baseLayer: FileSpec[] = [debian12OsRelease, { path: 'var/lib/dpkg/status', content: baseStatus }];
  const base = await buildImage({ layers: [baseLayer], created: '2024-01-01T00:00:00Z' });
  const app = (extra: string, n: string) => buildImage({ layers: [baseLayer, [{ path: 'var/lib/dpkg/status', content: `${baseStatus}\n${extra}` }, { path: `app/${n}`, content: n }]], labels: { 'org.opencontainers.image.authors': `${n}@example.com` } });
  const appA = await app(dpkgEntry('curl', '7.88.1-10+deb12u5'), 'a');
  const appA2 = await app(dpkgEntry('curl', '7.88.1-10+deb12u8'), 'a2');
  const appB = await app(dpkgEntry('openssl', '3.0.11-1~deb12u2'), 'b');
  await copyImage(base.source, await openDestination(`${host}/base/debian:12`));
  await copyImage(appA.source, await openDestination(`${host}/team/app-a:1`));
  await copyImage(appB.source, await openDestination(`${host}/team/app-b:1`));
  const catalog = emptyCatalog();
  catalog.bases.push({ name: `${host}/base/debian`, tag: '12', digest: base.descriptor.digest, diffIds: base.diffIds, chainIds: chainIds(base.diffIds), status: 'approved', line: 'debian-12' });
  const catalogFile = path.join(work, 'catalog.yaml');
  await saveCatalog(catalogFile, catalog);
  const adv = path.join(work, 'osv');
  await mkdir(adv);
  const osv = (id: string, pkg: string, fixed: string | null, score?: string) => ({ id, modified: '2024-05-01T00:00:00Z', summary: `${id} in ${pkg}`, affected: [{ package: { ecosystem: 'Debian:12', name: pkg }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, ...(fixed ? [{ fixed }] : [])] }] }], ...(score ? { severity: [{ type: 'CVSS_V3', score }] } : {}) });
  for (const r of [
    osv('DEBIAN-CVE-2024-2961', 'glibc', '2.36-9+deb12u7', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'),
    osv('DEBIAN-CVE-2024-0001', 'curl', '7.88.1-10+deb12u6', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N'),
  ]) await writeFile(path.join(adv, `${r.id}.json`), JSON.stringify(r));
  const dbFile = path.join(work, 'vuln.db');
  const vs = openStore(dbFile);
  const rep = await importPaths(vs, [adv]);
  vs.close();
  assert.equal(rep.errors.length, 0, JSON.stringify(rep.errors));
  return { work, reg, host, base, appA, appA2, appB, catalogFile, dbFile };
}

async function plinth(args: string[], o: { input?: string } = {}) {
  const r = await runPlinth(args, o);
  return r;
}

function backendSuite(name: string, target: () => Promise<string>) {
  describe(`store on ${name}`, () => {
    let f: Fixture;
    let store: string;
    let t0: string;
    let tMoved: string;

    before(async () => {
      f = await fixture();
      store = await target();
    });
    after(async () => {
      await f?.reg.stop();
      await rm(f?.work ?? '/nonexistent', { recursive: true, force: true });
    });

    test('scan and provenance of two apps on one base: consumers, images --base and the API agree', async () => {
      for (const app of ['app-a', 'app-b']) {
        const img = `${f.host}/team/${app}:1`;
        const s = await plinth(['scan', img, '--db', f.dbFile, '--catalog', f.catalogFile, '--store', store, '--format', 'json']);
        assert.equal(s.code, 0, s.stderr);
        const p = await plinth(['provenance', img, '--catalog', f.catalogFile, '--store', store, '--format', 'json']);
        assert.equal(p.code, 0, p.stderr);
      }
      t0 = new Date().toISOString();
      const c = await plinth(['consumers', `${f.host}/base/debian@${f.base.descriptor.digest}`, '--store', store, '--format', 'json']);
      assert.equal(c.code, 0, c.stderr);
      const consumers = JSON.parse(c.stdout);
      const uris = consumers.images.map((i: any) => i.uri).sort();
      assert.deepEqual(uris, [`${f.host}/team/app-a@${f.appA.descriptor.digest}`, `${f.host}/team/app-b@${f.appB.descriptor.digest}`].sort());
      // By tag (resolved through the catalog) and by repository: the same two.
      const byTag = JSON.parse((await plinth(['consumers', `${f.host}/base/debian:12`, '--store', store, '--catalog', f.catalogFile, '--format', 'json'])).stdout);
      assert.deepEqual(byTag.images.map((i: any) => i.uri).sort(), uris);
      const images = JSON.parse((await plinth(['images', '--base', `${f.host}/base/debian@${f.base.descriptor.digest}`, '--store', store, '--format', 'json'])).stdout);
      assert.deepEqual(images.images.map((i: any) => i.uri).sort(), uris);
      const a = images.images.find((i: any) => i.repository.endsWith('app-a'));
      assert.deepEqual(a.tags, ['1']);
      assert.equal(a.base.digest, f.base.descriptor.digest);
      assert.equal(a.base.status, 'approved');
      assert.equal(a.base.line, 'debian-12');
      assert.equal(a.owner, 'a@example.com');
      assert.equal(a.os, 'debian 12');
      assert.equal(a.packages, 3);
      // libc6 (glibc, base) CRITICAL and curl (image) HIGH.
      assert.equal(a.vulnerabilities.total, 2);
      assert.equal(a.vulnerabilities.base, 1);
      assert.equal(a.vulnerabilities.image, 1);
      const b = images.images.find((i: any) => i.repository.endsWith('app-b'));
      assert.equal(b.vulnerabilities.total, 1);
      // --vulnerable HIGH: both (glibc is critical); --vulnerable CRITICAL: both; the text table names them.
      const vuln = JSON.parse((await plinth(['images', '--vulnerable', 'critical', '--store', store, '--format', 'json'])).stdout);
      assert.equal(vuln.images.length, 2);
      const table = await plinth(['images', '--store', store]);
      assert.match(table.stdout, /team\/app-a\s+1\s+/);

      // The API answers the same facts, with and without a token.
      const m = await MetaStore.open(store);
      const api = await startApi(m, { token: 'a-token-of-sixteen-chars', catalog: (await import('../src/provenance/catalog.js')).emptyCatalog() });
      try {
        assert.equal((await getJson(`${api.url}/v1/images`)).status, 401);
        assert.equal((await getJson(`${api.url}/v1/images`, 'wrong-token-xxxxxxxxxx')).status, 401);
        const tok = 'a-token-of-sixteen-chars';
        const ai = await getJson(`${api.url}/v1/images?base=${encodeURIComponent(`${f.host}/base/debian@${f.base.descriptor.digest}`)}`, tok);
        assert.equal(ai.status, 200);
        assert.deepEqual(ai.body.images, images.images);
        const ac = await getJson(`${api.url}/v1/consumers?base=${encodeURIComponent(`${f.host}/base/debian@${f.base.descriptor.digest}`)}`, tok);
        assert.deepEqual(ac.body, consumers);
        const one = await getJson(`${api.url}/v1/images/${f.appA.descriptor.digest}`, tok);
        assert.equal(one.status, 200);
        assert.deepEqual(one.body.findings.map((x: any) => `${x.id} ${x.package} ${x.severity} ${x.origin}`).sort(), ['DEBIAN-CVE-2024-0001 curl HIGH image', 'DEBIAN-CVE-2024-2961 libc6 CRITICAL base']);
        assert.equal((await getJson(`${api.url}/v1/images/sha256:${'0'.repeat(64)}`, tok)).status, 404);
        // docs/openapi.yaml describes exactly the fields the API returns.
        const { parse } = await import('yaml');
        const spec = parse(readFileSync(path.join(repoRoot(), 'docs', 'openapi.yaml'), 'utf8'));
        const fields = (name: string) => Object.keys(spec.components.schemas[name].properties).sort();
        for (const i of one.body.images) assert.deepEqual(Object.keys(i).sort(), fields('ImageSummary'));
        for (const x of one.body.findings) assert.deepEqual(Object.keys(x).sort(), fields('Finding'));
        for (const x of one.body.tags) assert.deepEqual(Object.keys(x).sort(), fields('TagEvent'));
        for (const p of ['/v1/images', '/v1/images/{digest}', '/v1/consumers', '/v1/projects/{project}/occurrences', '/v1/projects/{project}/notes/{id}/occurrences']) assert.ok(spec.paths[p], p);
        assert.equal((await getJson(`${api.url}/v1/images/nope`, tok)).status, 400);
        assert.equal((await getJson(`${api.url}/v1/projects/plinth/notes/%E0%A4%A`, tok)).status, 400);
        assert.equal((await fetch(`${api.url}/v1/images`, { method: 'POST', headers: { authorization: `Bearer ${tok}` } })).status, 405);

        // Grafeas: occurrences of a resource by kind, in proto3 JSON, paged.
        const res = `${f.host}/team/app-a@${f.appA.descriptor.digest}`;
        const vq = await getJson(`${api.url}/v1/projects/plinth/occurrences?filter=${encodeURIComponent(`resourceUrl="${res}" AND kind="VULNERABILITY"`)}`, tok);
        assert.equal(vq.status, 200);
        assert.equal(vq.body.occurrences.length, 2);
        for (const o of vq.body.occurrences) {
          assert.equal(o.resourceUri, res);
          assert.equal(o.kind, 'VULNERABILITY');
          assert.match(o.name, /^projects\/plinth\/occurrences\/[a-f0-9]{32}$/);
          assert.match(o.noteName, /^projects\/plinth\/notes\/vuln-DEBIAN-CVE-/);
          assert.ok(['CRITICAL', 'HIGH'].includes(o.vulnerability.severity));
          assert.equal(o.vulnerability.packageIssue.length, 1);
        }
        const glibc = vq.body.occurrences.find((o: any) => o.vulnerability.severity === 'CRITICAL');
        assert.equal(glibc.vulnerability.packageIssue[0].affectedPackage, 'libc6');
        assert.equal(glibc.vulnerability.packageIssue[0].fixedVersion.fullName, '2.36-9+deb12u7');
        assert.equal(glibc.vulnerability.fixAvailable, true);
        const img = await getJson(`${api.url}/v1/projects/plinth/occurrences?filter=${encodeURIComponent(`resourceUrl="${res}" AND kind="IMAGE"`)}`, tok);
        assert.equal(img.body.occurrences.length, 1);
        assert.equal(img.body.occurrences[0].image.baseResourceUrl, `${f.host}/base/debian@${f.base.descriptor.digest}`);
        assert.deepEqual(img.body.occurrences[0].image.fingerprint.v2Blob, f.base.diffIds);
        assert.equal(img.body.occurrences[0].image.distance, 1);
        const pk = await getJson(`${api.url}/v1/projects/plinth/occurrences?filter=${encodeURIComponent(`resourceUrl="${res}" AND kind="PACKAGE"`)}`, tok);
        assert.deepEqual(pk.body.occurrences.map((o: any) => o.package.name).sort(), ['bash', 'curl', 'libc6']);
        // Paging one at a time visits every occurrence of the resource exactly once.
        const all = await getJson(`${api.url}/v1/projects/plinth/occurrences?filter=${encodeURIComponent(`resourceUrl="${res}"`)}&pageSize=1000`, tok);
        const ids: string[] = [];
        let token = '';
        for (let i = 0; i < 100; i++) {
          const page = await getJson(`${api.url}/v1/projects/plinth/occurrences?filter=${encodeURIComponent(`resourceUrl="${res}"`)}&pageSize=2${token ? `&pageToken=${token}` : ''}`, tok);
          ids.push(...page.body.occurrences.map((o: any) => o.name));
          token = page.body.nextPageToken;
          if (!token) break;
        }
        assert.deepEqual(ids, all.body.occurrences.map((o: any) => o.name));
        assert.equal(new Set(ids).size, ids.length);
        // One occurrence, its note, and the note's occurrences (both apps have the glibc finding).
        const id = glibc.name.split('/').pop();
        assert.deepEqual((await getJson(`${api.url}/v1/projects/plinth/occurrences/${id}`, tok)).body, glibc);
        const note = await getJson(`${api.url}/v1/projects/plinth/occurrences/${id}/notes`, tok);
        assert.equal(note.body.name, glibc.noteName);
        assert.equal(note.body.kind, 'VULNERABILITY');
        const noteId = glibc.noteName.split('/').pop();
        const no = await getJson(`${api.url}/v1/projects/plinth/notes/${noteId}/occurrences`, tok);
        assert.deepEqual(no.body.occurrences.map((o: any) => o.resourceUri).sort(), uris);
        assert.equal((await getJson(`${api.url}/v1/projects/other/occurrences`, tok)).status, 404);
        const bad = await getJson(`${api.url}/v1/projects/plinth/occurrences?filter=${encodeURIComponent('resourceUrl~"x"')}`, tok);
        assert.equal(bad.status, 400);
        assert.equal(bad.body.error.status, 'INVALID_ARGUMENT');
        assert.equal((await getJson(`${api.url}/v1/projects/plinth/occurrences?pageToken=garbage`, tok)).status, 400);
      } finally {
        await api.close();
        await m.close();
      }
    });

    test('a tag that moves: history keeps both, --at answers what it pointed at then', async () => {
      await new Promise((r) => setTimeout(r, 20));
      await copyImage(f.appA2.source, await openDestination(`${f.host}/team/app-a:1`));
      tMoved = new Date().toISOString();
      const s = await plinth(['scan', `${f.host}/team/app-a:1`, '--db', f.dbFile, '--catalog', f.catalogFile, '--store', store, '--format', 'json']);
      assert.equal(s.code, 0, s.stderr);
      const h = JSON.parse((await plinth(['history', `${f.host}/team/app-a:1`, '--store', store, '--format', 'json'])).stdout);
      assert.deepEqual(h.tags.map((t: any) => t.digest), [f.appA.descriptor.digest, f.appA2.descriptor.digest]);
      assert.equal(h.images.length, 2);
      const then = JSON.parse((await plinth(['history', `${f.host}/team/app-a:1`, '--at', t0, '--store', store, '--format', 'json'])).stdout);
      assert.equal(then.at.digest, f.appA.descriptor.digest);
      const now = JSON.parse((await plinth(['history', `${f.host}/team/app-a:1`, '--at', new Date().toISOString(), '--store', store, '--format', 'json'])).stdout);
      assert.equal(now.at.digest, f.appA2.descriptor.digest);
      // The old digest lost its tag; the new one has it; the new build's curl is fixed.
      const imgs = JSON.parse((await plinth(['images', '--repository', `${f.host}/team/app-a`, '--store', store, '--format', 'json'])).stdout).images;
      assert.deepEqual(imgs.find((i: any) => i.digest === f.appA2.descriptor.digest).tags, ['1']);
      assert.deepEqual(imgs.find((i: any) => i.digest === f.appA.descriptor.digest).tags, []);
      assert.equal(imgs.find((i: any) => i.digest === f.appA2.descriptor.digest).vulnerabilities.total, 1);
      // findings --new-since: only what the second scan found first (the glibc finding of the new digest).
      const nf = JSON.parse((await plinth(['findings', '--new-since', tMoved, '--store', store, '--format', 'json'])).stdout).findings;
      assert.deepEqual(nf.map((x: any) => `${x.digest} ${x.id}`), [`${f.appA2.descriptor.digest} DEBIAN-CVE-2024-2961`]);
      const text = await plinth(['history', `${f.host}/team/app-a:1`, '--store', store]);
      assert.match(text.stdout, /Tag history:[\s\S]*app-a:1 -> sha256/);
    });

    test('inventory import of kubectl get pods -A -o json records where each image runs', async () => {
      const json = podsJson(f.host, { a: f.appA.descriptor.digest, b: f.appB.descriptor.digest });
      const r = await plinth(['inventory', 'import', '-', '--cluster', 'prod', '--store', store, '--format', 'json'], { input: json });
      assert.equal(r.code, 0, r.stderr);
      const sum = JSON.parse(r.stdout);
      assert.equal(sum.pods, 4);
      assert.equal(sum.containers, 5);
      assert.equal(sum.withDigest, 3);
      assert.equal(sum.byReferenceOnly, 2);
      assert.ok(sum.skipped.some((s: any) => /ConfigMap/.test(s.item)));
      const hb = JSON.parse((await plinth(['history', `${f.host}/team/app-b@${f.appB.descriptor.digest}`, '--store', store, '--format', 'json'])).stdout);
      const where = hb.deployments.map((d: any) => `${d.cluster}/${d.namespace}/${d.kind}/${d.name}/${d.container}`).sort();
      assert.deepEqual(where, ['prod/payments/DaemonSet/agent/agent', 'prod/shop/Deployment/web/migrate']);
      const running = JSON.parse((await plinth(['images', '--running', '--store', store, '--format', 'json'])).stdout).images;
      assert.deepEqual(running.map((i: any) => i.digest).sort(), [f.appA.descriptor.digest, f.appB.descriptor.digest].sort());
      // The pending pod is known by reference only.
      const pending = JSON.parse((await plinth(['history', `${f.host}/team/report:2`, '--store', store, '--format', 'json'])).stdout);
      assert.deepEqual(pending.deployments.map((d: any) => `${d.namespace}/${d.name}`), ['batch/report']);
      // A second import without the DaemonSet: it is no longer running, the rest is.
      const fewer = JSON.parse(json);
      fewer.items = fewer.items.filter((i: any) => i.metadata.name !== 'agent-abcde');
      const r2 = await plinth(['inventory', 'import', '-', '--cluster', 'prod', '--store', store, '--format', 'json'], { input: JSON.stringify(fewer) });
      assert.equal(JSON.parse(r2.stdout).noLongerRunning, 1);
      const hb2 = JSON.parse((await plinth(['history', `${f.host}/team/app-b@${f.appB.descriptor.digest}`, '--store', store, '--format', 'json'])).stdout);
      assert.deepEqual(hb2.deployments.map((d: any) => `${d.name}:${d.running}`).sort(), ['agent:false', 'web:true']);
      // A one-namespace list (kubectl get pods -n batch) only speaks for that namespace.
      const onlyBatch = JSON.parse(json);
      onlyBatch.items = onlyBatch.items.filter((i: any) => i.metadata.namespace === 'batch' && i.metadata.name !== 'cleanup');
      const r3 = JSON.parse((await plinth(['inventory', 'import', '-', '--cluster', 'prod', '--store', store, '--format', 'json'], { input: JSON.stringify(onlyBatch) })).stdout);
      assert.equal(r3.noLongerRunning, 1);
      const still = JSON.parse((await plinth(['images', '--running', '--store', store, '--format', 'json'])).stdout).images;
      assert.ok(still.some((i: any) => i.digest === f.appA.descriptor.digest), 'the shop namespace was not part of the -n batch import');
      // Bad input: a clear error, nothing written.
      const bad = await plinth(['inventory', 'import', '-', '--cluster', 'prod', '--store', store], { input: '{"items": [' });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /inventory is not JSON/);
      assert.doesNotMatch(bad.stderr, /at .*\.js/);
    });

    test('admissions go through the batched recorder into the audit log and the deployments', async () => {
      const m = await MetaStore.open(store);
      try {
        const rec = new AdmissionRecorder(m, { cluster: 'prod', intervalMs: 10 });
        for (let i = 0; i < 250; i++) {
          rec.record({ time: Date.now(), endpoint: 'validate', namespace: 'shop', kind: 'Deployment', name: 'web', containers: [{ name: 'web', image: `${f.host}/team/app-a:1` }], verdicts: [{ image: `${f.host}/team/app-a:1`, allowed: true, denials: [], warnings: [], digest: f.appA2.descriptor.digest }], policyVersion: 'v1', admitted: true });
        }
        rec.record({ time: Date.now(), endpoint: 'validate', namespace: 'shop', kind: 'Pod', name: 'evil', containers: [{ name: 'x', image: 'docker.io/evil/miner:1' }], verdicts: [{ image: 'docker.io/evil/miner:1', allowed: false, denials: ['registry docker.io is not allowed'], warnings: [] }], policyVersion: 'v1', admitted: false });
        await rec.close();
        assert.equal(rec.stats.written, 251);
        assert.equal(rec.stats.dropped.queueFull + rec.stats.dropped.storeError, 0);
        const denied = await m.decisions({ allowed: false });
        assert.equal(denied.length, 1);
        assert.equal(denied[0]!.image, 'docker.io/evil/miner:1');
        assert.deepEqual(denied[0]!.messages, ['registry docker.io is not allowed']);
        assert.equal(denied[0]!.cluster, 'prod');
        const h = JSON.parse((await plinth(['history', `${f.host}/team/app-a@${f.appA2.descriptor.digest}`, '--store', store, '--format', 'json'])).stdout);
        // 250 identical admissions, folded per batch: fewer rows, every one counted.
        const adm = h.decisions.filter((d: any) => d.source === 'admission');
        assert.equal(adm.reduce((n: number, d: any) => n + d.count, 0), 250);
        assert.ok(adm.length < 250, `${adm.length} rows for 250 identical admissions`);
        assert.ok(adm.every((d: any) => d.lastTime >= d.time));
        assert.ok(h.deployments.some((d: any) => d.via === 'admission' && d.namespace === 'shop' && d.name === 'web'));
        // A full queue drops and counts, never blocks.
        const tiny = new AdmissionRecorder(m, { maxQueue: 2, intervalMs: 1000 });
        for (let i = 0; i < 5; i++) tiny.record({ time: Date.now(), endpoint: 'imagepolicy', namespace: 'x', kind: 'Pod', name: '', containers: [], verdicts: [], policyVersion: 'v', admitted: true });
        assert.equal(tiny.stats.dropped.queueFull, 3);
        await tiny.close();
      } finally {
        await m.close();
      }
    });

    test('plinth serve --store records admissions off the request path; --api serves them with a token', async () => {
      const dir = path.join(f.work, 'serve');
      const c = await plinth(['certs', '--service', 'plinth', '--namespace', 'plinth-system', '--dir', dir, '--ip', '127.0.0.1', '--format', 'json']);
      assert.equal(c.code, 0, c.stderr);
      const ca = Buffer.from(JSON.parse(c.stdout).caBundle, 'base64').toString();
      const policy = path.join(dir, 'policy.yaml');
      await writeFile(policy, `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: registries\nspec:\n  rules:\n    - name: only-local\n      mode: enforce\n      allowedRegistries:\n        registries: ["${f.host}"]\n`);
      const { freePort } = await import('../src/registry/local.js');
      const port = await freePort();
      const token = 'serve-api-token-0123456789';
      const cmd = plinthCommand(['serve', '--policy', policy, '--tls-cert', path.join(dir, 'tls.crt'), '--tls-key', path.join(dir, 'tls.key'), '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn', '--store', store, '--cluster', 'staging', '--api', '--api-token', token]);
      const p = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d));
      const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
      const https = await import('node:https');
      const call = (method: string, url: string, body?: unknown, auth?: string) =>
        new Promise<{ status: number; text: string }>((resolve) => {
          const r = https.request(`https://127.0.0.1:${port}${url}`, { method, ca, servername: 'plinth.plinth-system.svc', headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) } }, (res) => {
            let t = '';
            res.on('data', (d: Buffer) => (t += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
          });
          r.on('error', () => resolve({ status: 0, text: '' }));
          r.end(body === undefined ? undefined : JSON.stringify(body));
        });
      const review = (name: string, images: string[]) => ({
        apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
        request: { uid: `uid-${name}`, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, name, namespace: 'shop', operation: 'CREATE', userInfo: { username: 'test' }, object: { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop' }, spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } }, oldObject: null, dryRun: false },
      });
      try {
        for (let i = 0; i < 100 && (await call('GET', '/readyz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
        const good = `${f.host}/team/app-b@${f.appB.descriptor.digest}`;
        const ok = await call('POST', '/validate', review('served-ok', [good]));
        assert.match(ok.text, /"allowed":true/);
        const no = await call('POST', '/validate', review('served-bad', ['docker.io/evil/miner:1', good]));
        assert.match(no.text, /"allowed":false/);
        assert.equal((await call('GET', '/v1/decisions')).status, 401);
        let ds: any[] = [];
        for (let i = 0; i < 50; i++) {
          const r = await call('GET', '/v1/decisions?limit=1000', undefined, token);
          assert.equal(r.status, 200, r.text);
          ds = JSON.parse(r.text).decisions.filter((d: any) => d.cluster === 'staging');
          if (ds.length >= 3) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const { parse } = await import('yaml');
        const decisionFields = Object.keys(parse(readFileSync(path.join(repoRoot(), 'docs', 'openapi.yaml'), 'utf8')).components.schemas.Decision.properties).sort();
        for (const d of ds) assert.deepEqual(Object.keys(d).sort(), decisionFields);
        assert.deepEqual(ds.map((d: any) => `${d.workload} ${d.image} ${d.allowed}`).sort(), [`Pod/served-bad ${good} true`, 'Pod/served-bad docker.io/evil/miner:1 false', `Pod/served-ok ${good} true`]);
        // Where it runs: the admitted pod only (the denied one never ran).
        const h = JSON.parse((await call('GET', `/v1/history?ref=${encodeURIComponent(good)}`, undefined, token)).text);
        assert.deepEqual(h.deployments.filter((d: any) => d.cluster === 'staging').map((d: any) => d.name), ['served-ok']);
        const metrics = (await call('GET', '/metrics')).text;
        assert.match(metrics, /plinth_store_admissions_total\{result="written"\} 2/);
        assert.match(metrics, /plinth_store_queue_depth 0/);
      } finally {
        p.kill('SIGTERM');
      }
      assert.equal(await exited, 0, err);
      // --api without a token is refused (the webhook port is reachable from the cluster).
      const bad = await plinth(['serve', '--policy', policy, '--tls-cert', path.join(dir, 'tls.crt'), '--tls-key', path.join(dir, 'tls.key'), '--store', store, '--api']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--api on the webhook's port needs --api-token/);
    });

    test('hostile values: NUL in names and an impossible size are stored, the same way on both databases, and every query still works', async () => {
      const m = await MetaStore.open(store);
      try {
        const digest = `sha256:${'7'.repeat(64)}`;
        await m.recordImage({ image: { repository: 'r.example/evil', registry: 'r.example', tag: 'x\u0000y', digest }, source: 'test', size: 2 ** 60, os: 'alpine\u00003', occurrences: [{ kind: 'PACKAGE', note: 'pkg-apk-evil', subject: 'evil\u0000pkg', data: { name: 'evil\u0000pkg' } }], notes: [{ id: 'pkg-apk-evil', kind: 'PACKAGE', shortDescription: 'evil\u0000pkg', data: {} }] });
        const [img] = await m.images({ digest });
        assert.equal(img!.size, null);
        assert.equal(img!.os, 'alpine\uFFFD3');
        const occ = await m.listOccurrences({ resourceUri: `r.example/evil@${digest}`, limit: 10 });
        assert.equal(occ.length, 1);
        assert.equal((await m.tagHistory({ digest }))[0]!.tag, 'x\uFFFDy');
        assert.ok((await m.images()).length > 1);
      } finally {
        await m.close();
      }
    });

    test('verify --store records each verified signature as an ATTESTATION by the key\'s fingerprint', async () => {
      const { generateKeyPair } = await import('../src/sign/keys.js');
      const kp = await generateKeyPair('pw');
      await writeFile(path.join(f.work, `v-${name}.key`), kp.privateKeyPem);
      await writeFile(path.join(f.work, `v-${name}.pub`), kp.publicKeyPem);
      const env = { PLINTH_PASSWORD: 'pw' };
      const img = `${f.host}/team/app-b:1`;
      assert.equal((await runPlinth(['sign', img, '--key', path.join(f.work, `v-${name}.key`)], { env })).code, 0);
      const v = await runPlinth(['verify', img, '--key', path.join(f.work, `v-${name}.pub`), '--store', store], { env });
      assert.equal(v.code, 0, v.stderr);
      const { createPublicKey } = await import('node:crypto');
      const fp = `sha256:${createHash('sha256').update(createPublicKey(kp.publicKeyPem).export({ type: 'spki', format: 'der' })).digest('hex')}`;
      const m = await MetaStore.open(store);
      try {
        const occ = await m.listOccurrences({ resourceUri: `${f.host}/team/app-b@${f.appB.descriptor.digest}`, kind: 'ATTESTATION', limit: 10 });
        assert.equal(occ.length, 1);
        assert.equal((occ[0]!.data as any).signatures[0].publicKeyId, fp);
        assert.equal((occ[0]!.extra as any).key, path.join(f.work, `v-${name}.pub`));
      } finally {
        await m.close();
      }
    });

    test('check records its decisions with the policy version', async () => {
      const policy = path.join(f.work, 'policy.yaml');
      await writeFile(policy, `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: registries\nspec:\n  rules:\n    - name: only-local\n      mode: enforce\n      allowedRegistries:\n        registries: ["${f.host}"]\n`);
      const r = await plinth(['check', `${f.host}/team/app-b:1`, 'docker.io/library/alpine:3', '--policy', policy, '--store', store]);
      assert.equal(r.code, 1, r.stderr);
      const m = await MetaStore.open(store, { readonly: name === 'sqlite' });
      try {
        const ds = (await m.decisions({ limit: 10 })).filter((d) => d.source === 'check');
        assert.equal(ds.length, 2);
        const alpine = ds.find((d) => d.image.includes('alpine'))!;
        assert.equal(alpine.allowed, false);
        assert.equal(alpine.policy, 'registries');
        assert.match(alpine.policyVersion ?? '', /\S/);
        assert.match(alpine.messages.join(' '), /docker\.io/);
      } finally {
        await m.close();
      }
    });

    test('kill -9 while ingesting never leaves a partial image record nor loses a committed one', async () => {
      // sbom --store writes the provenance and the packages of one image; kill it at random points.
      const layout = path.join(repoRoot(), '.cache', 'deb-layout');
      const useReal = (await import('node:fs')).existsSync(path.join(layout, 'index.json'));
      const image = useReal ? `oci:${layout}:deb` : `${f.host}/team/app-a:1`;
      let committed = 0;
      let killed = 0;
      // Kills spread over the run (start-up, reading layers, writing), then one run left to finish.
      const delays = [...Array.from({ length: 11 }, (_, i) => 100 + i * 90 + Math.floor(Math.random() * 60)), Infinity];
      for (const delay of delays) {
        const c = plinthCommand(['sbom', image, '--store', store, '-o', path.join(f.work, 'sbom.json')]);
        const child = spawn(c.file, c.args, { env: c.env, stdio: 'ignore' });
        const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
        const timer = Number.isFinite(delay) ? setTimeout(() => child.kill('SIGKILL'), delay) : undefined;
        const { code, signal } = await exit;
        clearTimeout(timer);
        if (code === 0) committed++;
        if (signal === 'SIGKILL') killed++;
        const m = await MetaStore.open(store);
        try {
          // Every image row that says it has N packages has exactly N package occurrences.
          const rows = await m.sql.all<{ uri: string; packages: number | null }>('SELECT uri, packages FROM images WHERE packages IS NOT NULL');
          for (const r of rows) {
            const n = await m.sql.get<{ n: number }>("SELECT count(*) AS n FROM occurrences WHERE resource_uri = ? AND kind = 'PACKAGE' AND resolve_time IS NULL", [r.uri]);
            assert.equal(Number(n!.n), Number(r.packages), `${r.uri}: ${r.packages} packages recorded, ${n!.n} package occurrences (after a kill at ${delay} ms)`);
          }
          if (m.dialect === 'sqlite') assert.equal((await m.sql.get<{ integrity_check: string }>('PRAGMA integrity_check'))!.integrity_check, 'ok');
          // What an earlier run committed is still there.
          if (committed) assert.ok(rows.some((r) => r.uri.includes(useReal ? 'deb-layout' : 'app-a')), 'a committed record was lost');
        } finally {
          await m.close();
        }
      }
      assert.ok(killed >= 1, 'no run was killed');
      assert.ok(committed >= 1, 'no run completed');
    });
  });
}

describe('store', () => {
  let pg: Postgres;
  let dir: string;
  before(async () => {
    pg = await startPostgres();
    dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-store-files-'));
  });
  after(async () => {
    await pg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  backendSuite('sqlite', async () => path.join(dir, `store-${Math.random().toString(36).slice(2)}.db`));
  backendSuite('postgres', () => pg.createDatabase());

  test('schema: an older store migrates on open, a newer one is refused and left untouched (both databases)', async () => {
    for (const target of [path.join(dir, 'old.db'), await pg.createDatabase()]) {
      // A store as a first release would have left it: the bookkeeping tables, no migrations applied.
      const m0 = await MetaStore.open(target);
      await m0.sql.exec('DROP TABLE decisions; DROP TABLE tag_history; DROP TABLE images; DROP TABLE occurrences; DROP TABLE notes; DROP TABLE package_index; DROP TABLE watch_state; DROP TABLE watched_tags; DROP TABLE events; DROP TABLE deliveries; DELETE FROM schema_migrations');
      await m0.close();
      const m1 = await MetaStore.open(target);
      assert.equal(Number((await m1.sql.get<{ v: number }>('SELECT max(version) AS v FROM schema_migrations'))!.v), SCHEMA_VERSION);
      assert.equal(SCHEMA_VERSION, 2);
      assert.equal((await m1.stats()).images, 0);
      await m1.sql.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [99, 'from the future', new Date().toISOString()]);
      await m1.close();
      await assert.rejects(MetaStore.open(target), (e: Error) => /schema version 99, written by a newer Plinth.*upgrade Plinth/.test(e.message));
      const r = await runPlinth(['images', '--store', target]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /newer Plinth/);
    }
  });

  test('SQLite: a writer that finds another process holding the lock waits without blocking the event loop', async () => {
    const file = path.join(dir, 'busy.db');
    const m = await MetaStore.open(file);
    const other = openSqlite(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      let done = false;
      const write = m.recordDecisions([{ time: new Date().toISOString(), source: 'check', image: 'r.example/a:1', digest: null, repository: null, allowed: true, messages: [] }]).then(() => (done = true));
      // The event loop turns while the lock is held elsewhere (a synchronous busy wait would not let it).
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(done, false);
      other.exec('COMMIT');
      await write;
      assert.equal(done, true);
      assert.equal((await m.decisions()).length, 1);
    } finally {
      if (other.isTransaction) other.exec('ROLLBACK');
      other.close();
      await m.close();
    }
  });

  test('a corrupt or foreign SQLite file is refused and never overwritten', async () => {
    const garbage = path.join(dir, 'garbage.db');
    await writeFile(garbage, Buffer.alloc(8192, 0x41));
    const before = createHash('sha256').update(readFileSync(garbage)).digest('hex');
    for (const args of [['store', 'status', '--store', garbage], ['images', '--store', garbage], ['inventory', 'import', '-', '--cluster', 'x', '--store', garbage]]) {
      const r = await runPlinth(args, { input: '{"items":[]}' });
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /not an SQLite database/);
    }
    assert.equal(createHash('sha256').update(readFileSync(garbage)).digest('hex'), before);
    // A valid SQLite file of someone else's: refused by name.
    const foreign = path.join(dir, 'foreign.db');
    const db = openSqlite(foreign);
    db.exec('CREATE TABLE customers (id INTEGER)');
    db.close();
    const r = await runPlinth(['store', 'status', '--store', foreign]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /holds other tables \(customers\) and is not a Plinth store/);
    // A truncated store: its header survives, its pages do not.
    const good = path.join(dir, 'trunc.db');
    const m = await MetaStore.open(good);
    await m.close();
    const bytes = readFileSync(good);
    await writeFile(good, bytes.subarray(0, 100));
    const t = await runPlinth(['images', '--store', good]);
    assert.equal(t.code, 1);
    assert.match(t.stderr, /not a usable SQLite database|not an SQLite database|malformed/);
  });

  test('a lost PostgreSQL fails a command clearly; the webhook recorder counts what it drops and recovers', async () => {
    const url = await pg.createDatabase();
    const m = await MetaStore.open(url);
    const rec = new AdmissionRecorder(m, { intervalMs: 10 });
    await pg.stopServer();
    try {
      const r = await runPlinth(['images', '--store', url]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+ is not reachable/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      rec.record({ time: Date.now(), endpoint: 'validate', namespace: 'n', kind: 'Pod', name: 'p', containers: [], verdicts: [{ image: 'r.example/a:1', allowed: true, denials: [], warnings: [] }], policyVersion: 'v', admitted: true });
      await rec.flush();
      assert.equal(rec.stats.dropped.storeError, 1);
      assert.match(rec.stats.lastError ?? '', /not reachable|terminat|ECONNREFUSED/i);
    } finally {
      await pg.startServer();
    }
    // The pool reconnects: the next batch is written.
    rec.record({ time: Date.now(), endpoint: 'validate', namespace: 'n', kind: 'Pod', name: 'p', containers: [], verdicts: [{ image: 'r.example/a:1', allowed: true, denials: [], warnings: [] }], policyVersion: 'v', admitted: true });
    await rec.close();
    assert.equal(rec.stats.written, 1);
    await m.close();
  });

  test('plinth serve --store with PostgreSQL down starts, admits, counts what it cannot record, and records once PostgreSQL is back', async () => {
    const url = await pg.createDatabase();
    await pg.stopServer();
    const certs = path.join(dir, 'serve-down');
    const c = await runPlinth(['certs', '--service', 'plinth', '--namespace', 'plinth-system', '--dir', certs, '--ip', '127.0.0.1', '--format', 'json']);
    const ca = Buffer.from(JSON.parse(c.stdout).caBundle, 'base64').toString();
    const policy = path.join(certs, 'policy.yaml');
    await writeFile(policy, 'apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: open\nspec:\n  rules:\n    - name: registries\n      mode: enforce\n      allowedRegistries:\n        registries: ["r.example"]\n');
    const { freePort } = await import('../src/registry/local.js');
    const port = await freePort();
    const cmd = plinthCommand(['serve', '--policy', policy, '--tls-cert', path.join(certs, 'tls.crt'), '--tls-key', path.join(certs, 'tls.key'), '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn', '--store', url], { ...process.env, PLINTH_STORE_RETRY_MS: '200' });
    const p = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.stdout.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    const https = await import('node:https');
    const call = (method: string, url2: string, body?: unknown) =>
      new Promise<{ status: number; text: string }>((resolve) => {
        const r = https.request(`https://127.0.0.1:${port}${url2}`, { method, ca, servername: 'plinth.plinth-system.svc', headers: { 'content-type': 'application/json' } }, (res) => {
          let t = '';
          res.on('data', (d: Buffer) => (t += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t }));
        });
        r.on('error', () => resolve({ status: 0, text: '' }));
        r.end(body === undefined ? undefined : JSON.stringify(body));
      });
    const review = (name: string) => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: name, kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, name, namespace: 'n', operation: 'CREATE', userInfo: { username: 't' }, object: { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'n' }, spec: { containers: [{ name: 'c', image: `r.example/app@sha256:${'1'.repeat(64)}` }] } }, oldObject: null, dryRun: false } });
    try {
      for (let i = 0; i < 100 && (await call('GET', '/readyz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
      assert.match((await call('POST', '/validate', review('while-down'))).text, /"allowed":true/);
      let m = '';
      for (let i = 0; i < 50 && !/dropped_store_error"\} [1-9]/.test(m); i++) {
        await new Promise((r) => setTimeout(r, 100));
        m = (await call('GET', '/metrics')).text;
      }
      assert.match(m, /plinth_store_admissions_total\{result="dropped_store_error"\} 1/);
      await pg.startServer();
      await new Promise((r) => setTimeout(r, 300));
      assert.match((await call('POST', '/validate', review('after'))).text, /"allowed":true/);
      for (let i = 0; i < 50 && !/result="written"\} [1-9]/.test(m); i++) {
        await new Promise((r) => setTimeout(r, 100));
        m = (await call('GET', '/metrics')).text;
      }
      assert.match(m, /plinth_store_admissions_total\{result="written"\} 1/);
    } finally {
      p.kill('SIGTERM');
      await pg.startServer().catch(() => {});
    }
    assert.equal(await exited, 0, err);
    assert.match(err, /not reachable; admissions are not recorded until it is/);
    const store = await MetaStore.open(url);
    try {
      assert.deepEqual((await store.decisions()).map((d) => d.workload), ['Pod/after']);
    } finally {
      await store.close();
    }
  });

  test('kubectl JSON: owners, imageIDs and hostile shapes', () => {
    assert.deepEqual(parseImageId('docker-pullable://registry.example/a/b@sha256:' + 'a'.repeat(64)), { repository: 'registry.example/a/b', digest: `sha256:${'a'.repeat(64)}` });
    assert.equal(parseImageId(`sha256:${'a'.repeat(64)}`), null);
    assert.equal(parseImageId('garbage@@'), null);
    const cron = parseKubeInventory(JSON.stringify({ kind: 'CronJob', metadata: { name: 'nightly', namespace: 'ops' }, spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'n', image: 'r.example/n:1' }] } } } } } }), 'c');
    assert.deepEqual(cron.records.map((r) => `${r.kind}/${r.name} ${r.image} ${r.digest}`), ['CronJob/nightly r.example/n:1 null']);
    const pinned = parseKubeInventory(JSON.stringify({ kind: 'Deployment', metadata: { name: 'd' }, spec: { template: { metadata: { labels: { team: 'x' } }, spec: { containers: [{ name: 'c', image: `r.example/c@sha256:${'b'.repeat(64)}` }] } } } }), 'c');
    assert.equal(pinned.records[0]!.digest, `sha256:${'b'.repeat(64)}`);
    assert.equal(pinned.records[0]!.namespace, 'default');
    assert.equal(pinned.records[0]!.owner, 'x');
    for (const bad of ['[]', '"x"', '{}', '{"items": 3}']) assert.throws(() => parseKubeInventory(bad, 'c'), /inventory/);
    const weird = parseKubeInventory(JSON.stringify({ items: [null, 1, { kind: 'Pod' }, { kind: 'Pod', metadata: {}, spec: { containers: [{ image: 5 }, {}] } }] }), 'c');
    assert.equal(weird.records.length, 0);
    assert.equal(weird.skipped.length, 4);
  });
});
