/**
 * `plinth ui`, the store's dashboard, end to end: a store filled through the real CLI (scan and
 * provenance of images in a real local registry, an inventory import, a policy check) plus bulk
 * records for paging; `plinth ui` started as a process; each page fetched and asserted; the
 * pages' numbers compared with the JSON API's on the same store; then Debian's chromium, driven
 * by playwright-core, clicks from the overview to an image, its base, a vulnerability and
 * filters by CVE (screenshots of each view in $PLINTH_UI_SCREENSHOTS, else a temp dir).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildImage, buildIndex, type BuiltImage, type FileSpec } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { freePort, startLocalRegistry, type LocalRegistry } from '../src/registry/local.js';
import { chainIds } from '../src/provenance/chain.js';
import { emptyCatalog, saveCatalog } from '../src/provenance/catalog.js';
import { openStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';
import { MetaStore } from '../src/store/store.js';
import { startApi } from '../src/store/api.js';
import { plinthCommand, runPlinth } from './helpers/common.js';
import { startPostgres, type Postgres } from './helpers/postgres.js';
import { imageDetails } from '../src/ui/data.js';
import { imagePage, imagesPage, overviewPage } from '../src/ui/pages.js';
import http from 'node:http';
import net from 'node:net';
import { debian12OsRelease, dpkgEntry } from './helpers/debian.js';

const baseStatus = `${dpkgEntry('libc6', '2.36-9+deb12u3', 'glibc')}\n${dpkgEntry('bash', '5.2.15-2+b2', 'bash (5.2.15-2)')}`;
const TOKEN = 'ui-test-token-0123456789';
const HOSTILE = '<script>alert("pwned")</script>';
const HOSTILE_OWNER = '"><img src=x onerror=alert(1)>';
const CVE_BASE = 'DEBIAN-CVE-2024-2961';
const CVE_APP = 'DEBIAN-CVE-2024-0001';
const BULK = 60;

interface Fixture {
  work: string;
  reg: LocalRegistry;
  host: string;
  base: BuiltImage;
  appA: BuiltImage;
  appB: BuiltImage;
  evil: BuiltImage;
  store: string;
}

async function fixture(storeTarget?: string): Promise<Fixture> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-ui-'));
  const reg = await startLocalRegistry({ dir: path.join(work, 'registry') });
  const host = reg.host;
  const baseLayer: FileSpec[] = [debian12OsRelease, { path: 'var/lib/dpkg/status', content: baseStatus }];
  const base = await buildImage({ layers: [baseLayer], created: '2024-01-01T00:00:00Z' });
  const app = (extra: string, n: string, labels: Record<string, string>) => buildImage({ layers: [baseLayer, [{ path: 'var/lib/dpkg/status', content: `${baseStatus}\n${extra}` }, { path: `app/${n}`, content: n }]], labels });
  const appA = await app(dpkgEntry('curl', '7.88.1-10+deb12u5'), 'a', { 'org.opencontainers.image.authors': 'a@example.com', 'org.opencontainers.image.title': 'Shop front' });
  const appB = await app(dpkgEntry('openssl', '3.0.11-1~deb12u2'), 'b', { 'org.opencontainers.image.authors': 'b@example.com' });
  const evil = await app(dpkgEntry('curl', '7.88.1-10+deb12u5'), 'evil', { 'org.opencontainers.image.authors': HOSTILE_OWNER, 'org.opencontainers.image.title': HOSTILE, [HOSTILE]: HOSTILE });
  await copyImage(base.source, await openDestination(`${host}/base/debian:12`));
  await copyImage(appA.source, await openDestination(`${host}/team/app-a:1`));
  await copyImage(appB.source, await openDestination(`${host}/team/app-b:1`));
  await copyImage(evil.source, await openDestination(`${host}/team/evil:1`));
  const catalog = emptyCatalog();
  // The line's history: an older version (superseded, no consumer left) and the current one.
  catalog.bases.push({ name: `${host}/base/debian`, tag: '12.0', digest: `sha256:${'a'.repeat(64)}`, diffIds: [`sha256:${'d'.repeat(64)}`], status: 'superseded', line: 'debian-12', created: '2023-06-10T00:00:00Z', supersededAt: '2024-01-02T00:00:00Z' });
  catalog.bases.push({ name: `${host}/base/debian`, tag: '12', digest: base.descriptor.digest, diffIds: base.diffIds, chainIds: chainIds(base.diffIds), status: 'approved', line: 'debian-12', created: '2024-01-01T00:00:00Z', addedAt: '2024-01-02T00:00:00Z' });
  const catalogFile = path.join(work, 'catalog.yaml');
  await saveCatalog(catalogFile, catalog);
  const adv = path.join(work, 'osv');
  await mkdir(adv);
  const osv = (id: string, pkg: string, fixed: string | null, score?: string) => ({ id, modified: '2024-05-01T00:00:00Z', summary: `${id} in ${pkg}`, affected: [{ package: { ecosystem: 'Debian:12', name: pkg }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, ...(fixed ? [{ fixed }] : [])] }] }], ...(score ? { severity: [{ type: 'CVSS_V3', score }] } : {}) });
  for (const r of [
    osv(CVE_BASE, 'glibc', '2.36-9+deb12u7', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'),
    osv(CVE_APP, 'curl', '7.88.1-10+deb12u6', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N'),
  ]) await writeFile(path.join(adv, `${r.id}.json`), JSON.stringify(r));
  const dbFile = path.join(work, 'vuln.db');
  const vs = openStore(dbFile);
  const rep = await importPaths(vs, [adv]);
  vs.close();
  assert.equal(rep.errors.length, 0, JSON.stringify(rep.errors));
  const store = storeTarget ?? path.join(work, 'store.db');
  for (const name of ['app-a', 'app-b', 'evil']) {
    const img = `${host}/team/${name}:1`;
    const s = await runPlinth(['scan', img, '--db', dbFile, '--catalog', catalogFile, '--store', store, '--format', 'json']);
    assert.equal(s.code, 0, s.stderr);
    const p = await runPlinth(['provenance', img, '--catalog', catalogFile, '--store', store, '--format', 'json']);
    assert.equal(p.code, 0, p.stderr);
  }
  // app-a signed (a Sigstore bundle referrer) and verified into the store: an ATTESTATION.
  const pw = { PLINTH_PASSWORD: 'ui-test' };
  const kg = await runPlinth(['key', 'generate', '--output-key-prefix', path.join(work, 'team')], { env: pw });
  assert.equal(kg.code, 0, kg.stderr);
  const sg = await runPlinth(['sign', `${host}/team/app-a:1`, '--key', path.join(work, 'team.key')], { env: pw });
  assert.equal(sg.code, 0, sg.stderr);
  const vf = await runPlinth(['verify', `${host}/team/app-a:1`, '--key', path.join(work, 'team.pub'), '--store', store]);
  assert.equal(vf.code, 0, vf.stderr);
  // app-a runs in prod/shop (an inventory import of kubectl's JSON).
  const pods = { apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'shop', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f8c6b5', controller: true, uid: 'u' }] }, spec: { containers: [{ name: 'web', image: `${host}/team/app-a:1` }] }, status: { phase: 'Running', containerStatuses: [{ name: 'web', image: '', imageID: `${host}/team/app-a@${appA.descriptor.digest}`, ready: true, restartCount: 0 }] } }] };
  const inv = await runPlinth(['inventory', 'import', '-', '--cluster', 'prod', '--store', store, '--format', 'json'], { input: JSON.stringify(pods) });
  assert.equal(inv.code, 0, inv.stderr);
  // A policy check: app-b allowed, a foreign registry denied.
  const policy = path.join(work, 'policy.yaml');
  await writeFile(policy, `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: registries\nspec:\n  rules:\n    - name: only-local\n      mode: enforce\n      allowedRegistries:\n        registries: ["${host}"]\n`);
  const chk = await runPlinth(['check', `${host}/team/app-b:1`, 'docker.io/library/alpine:3', '--policy', policy, '--store', store]);
  assert.equal(chk.code, 1, chk.stderr);
  // Bulk records through the store's own API, for paging (sorted after team/).
  const m = await MetaStore.open(store);
  try {
    for (let i = 0; i < BULK; i++) {
      const digest = `sha256:${createHash('sha256').update(`bulk-${i}`).digest('hex')}`;
      // One of them on a superseded base, behind.
      const base = i === 7 ? { base: { name: `${host}/base/old`, tag: '11', digest: `sha256:${'b'.repeat(64)}`, confidence: 'high', status: 'superseded', line: 'debian-11', newest: `${host}/base/old:11.9@sha256:${'c'.repeat(64)}`, behind: true } } : {};
      await m.recordImage({ image: { repository: `${host}/zz-bulk/app-${String(i).padStart(2, '0')}`, registry: host, tag: 'latest', digest }, source: 'test', os: 'debian 12', size: 1000 + i, labels: {}, ...base });
    }
  } finally {
    await m.close();
  }
  return { work, reg, host, base, appA, appB, evil, store };
}

interface Ui {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

async function startUiProcess(args: string[]): Promise<Ui> {
  const port = await freePort();
  const cmd = plinthCommand(['ui', '--port', String(port), ...args]);
  const proc = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('plinth dashboard on')) resolve();
    });
    proc.on('exit', (code) => reject(new Error(`plinth ui exited ${code}: ${err}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    async stop() {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

async function get(url: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): Promise<{ status: number; text: string; type: string }> {
  const r = await fetch(url, { headers, redirect: 'manual' });
  return { status: r.status, text: await r.text(), type: r.headers.get('content-type') ?? '' };
}

/** The number a stat card shows under a label. */
function stat(page: string, label: string): number {
  const m = new RegExp(`<span class="n">(?:<a [^>]*>)?(\\d+)[^<]*(?:</a>)?</span><span class="l">${label}</span>`).exec(page);
  assert.ok(m, `no stat "${label}"`);
  return Number(m[1]);
}

const imagePath = (host: string, repo: string, d: BuiltImage) => `/images/${host}/team/${repo}@${d.descriptor.digest}`;

let pg: Postgres | undefined;
after(async () => {
  await pg?.stop();
});

/** The same pages on each store: SQLite (with the browser) and a real PostgreSQL. */
for (const kind of ['sqlite', 'postgres'] as const) describe(kind === 'sqlite' ? 'plinth ui' : 'plinth ui on postgres', () => {
  let f: Fixture;
  let ui: Ui;
  // Auth, a pure function and the browser do not depend on the store: defined once, on SQLite.
  const once = kind === 'sqlite' ? test : (..._: unknown[]) => undefined;

  before(async () => {
    if (kind === 'postgres') pg ??= await startPostgres();
    f = await fixture(kind === 'postgres' ? await pg!.createDatabase() : undefined);
    ui = await startUiProcess(['--store', f.store, '--token', TOKEN, '--catalog', path.join(f.work, 'catalog.yaml')]);
  });
  after(async () => {
    await ui?.stop();
    await f?.reg.stop();
    await rm(f?.work ?? '/nonexistent', { recursive: true, force: true });
  });

  test('overview counts images, running, findings by severity base/app and decisions', async () => {
    const r = await get(`${ui.url}/`);
    assert.equal(r.status, 200);
    assert.match(r.type, /text\/html/);
    assert.equal(stat(r.text, 'images known'), 3 + BULK);
    assert.equal(stat(r.text, 'running'), 1);
    assert.equal(stat(r.text, 'scanned'), 3);
    assert.equal(stat(r.text, 'with a known base'), 4);
    assert.equal(stat(r.text, 'behind'), 1);
    assert.match(r.text, /3 \(75%\)<\/span><span class="l">on the newest approved base/);
    // Findings over time: today's point is the open count now (all five appeared today).
    assert.match(r.text, /<svg data-testid="trend" role="img" aria-label="Open findings per day from \d{4}-\d\d-\d\d \(0\) to \d{4}-\d\d-\d\d \(5\), at most 5"/);
    assert.equal(stat(r.text, 'denied'), 1);
    // glibc (base, CRITICAL) in all three; curl (app, HIGH) in app-a and evil.
    assert.match(r.text, /data-testid="finding-total">5 open findings: 3 in base layers, 2 in app layers, 5 fixable/);
    assert.match(r.text, /sev-critical">CRITICAL<\/span><\/th><td>3<\/td><td>0<\/td>/);
    assert.match(r.text, /sev-high">HIGH<\/span><\/th><td>0<\/td><td>2<\/td>/);
    assert.match(r.text, /<a class="skip" href="#main">/);
    // The stylesheet is served by the package itself (no CDN).
    const css = await get(`${ui.url}/static/plinth.css`);
    assert.equal(css.status, 200);
    assert.match(css.type, /text\/css/);
    assert.doesNotMatch(r.text, /https?:\/\/(?!127\.0\.0\.1)[a-z]/i);
  });

  test('a bad or missing token gets 401, the sign-in form sets a cookie that works', async () => {
    const tries: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong-token-0123456789' }, { cookie: 'plinth_ui_token=nope' }];
    for (const h of tries) {
      const r = await get(`${ui.url}/images`, h);
      assert.equal(r.status, 401);
      assert.match(r.text, /valid access token is required/);
      assert.doesNotMatch(r.text, /team\/app-a/);
    }
    const bad = await fetch(`${ui.url}/login`, { method: 'POST', body: new URLSearchParams({ token: 'not-it-000000000000' }), redirect: 'manual' });
    assert.equal(bad.status, 401);
    const ok = await fetch(`${ui.url}/login`, { method: 'POST', body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' });
    assert.equal(ok.status, 303);
    const cookie = ok.headers.get('set-cookie')!.split(';')[0]!;
    assert.match(ok.headers.get('set-cookie')!, /HttpOnly/);
    const r = await get(`${ui.url}/images`, { cookie });
    assert.equal(r.status, 200);
    // Read-only: other methods are refused.
    const post = await fetch(`${ui.url}/images`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(post.status, 405);
  });

  test('an unknown digest, base or path gets a 404 page, a malformed one never a stack trace', async () => {
    for (const p of [`/images/${f.host}/team/app-a@sha256:${'0'.repeat(64)}`, `/images/${f.host}/team/app-b@${f.appA.descriptor.digest}`, '/images/nonsense', '/images/%E0%A4%A', '/bases/no.such.example/base@sha256:' + '1'.repeat(64), '/bases/%%%', '/nope']) {
      const r = await get(`${ui.url}${p}`);
      assert.equal(r.status, 404, p);
      assert.match(r.text, /not found/i);
      assert.doesNotMatch(r.text, /at [\w.]+ \(|node:internal|\.js:\d+/);
    }
  });

  test('the image page answers what, base, vulnerabilities, tags, where it ran and decisions', async () => {
    const r = await get(`${ui.url}${imagePath(f.host, 'app-a', f.appA)}`);
    assert.equal(r.status, 200);
    // What is it: the OS release and package count as plinth provenance reads them from the layers.
    assert.match(r.text, /<dt>OS<\/dt><dd>Debian GNU\/Linux 12 \(bookworm\)<\/dd>/);
    assert.match(r.text, /<dt>Packages<\/dt><dd><a href="#h-packages">3<\/a><\/dd>/);
    // The layers split base/app with the instruction that made each and the packages each installed.
    assert.match(r.text, /data-testid="layer-split">1 layer\(s\) from the base \(\d+ B\), 1 added by the image \(\d+ B\)/);
    const layerRows = [...r.text.matchAll(/<tr><td>(\d)<\/td><td>(base|app)<\/td><td>[^<]+<\/td><td>(?:<a href="#layer-\d">)?(\d+)(?:<\/a>)?<\/td><td><code>([^<]+)<\/code>/g)].map((m) => m.slice(1).join(' '));
    assert.deepEqual(layerRows, ['1 base 2 plinth build layer 1', '2 app 1 plinth build layer 2']);
    const layer2 = /<details id="layer-2"[^>]*><summary>Layer 2 \(app\): 1 package\(s\)<\/summary>(.*?)<\/details>/s.exec(r.text);
    assert.ok(layer2 && layer2[1]!.includes('>curl</a></td><td>7.88.1-10+deb12u5<'), 'curl listed under the app layer');
    assert.match(r.text, /<details id="layer-1"[^>]*><summary>Layer 1 \(base\): 2 package\(s\)/);
    // Evidence and the rebuild recipe.
    assert.match(r.text, /data-testid="evidence"><li>fingerprint: catalog: diff_ids of [^<]+ \(layers confirmed\)<\/li>/);
    assert.match(r.text, /<dt>Reproducible<\/dt><dd>no<\/dd>/);
    assert.match(r.text, /data-testid="rebuild-missing"><li>no source repository/);
    // The signature plinth verify recorded.
    const sig = /<table data-testid="signatures">.*?<\/table>/s.exec(r.text)?.[0] ?? '';
    assert.match(sig, /<td>bundle<\/td>/);
    assert.ok(sig.includes(`<code>${f.appA.descriptor.digest.slice(7, 19)}</code>`), sig);
    const unsigned = await get(`${ui.url}${imagePath(f.host, 'app-b', f.appB)}`);
    assert.match(unsigned.text, /No verified signature recorded/);
    assert.match(r.text, /<dt>Title<\/dt><dd>Shop front<\/dd>/);
    assert.match(r.text, /<dt>Owner<\/dt><dd>a@example.com<\/dd>/);
    assert.ok(r.text.includes(`href="/bases/${f.host}/base/debian@${f.base.descriptor.digest}"`));
    assert.match(r.text, /s-approved">approved/);
    assert.ok(r.text.includes(`href="/vulnerabilities/${CVE_BASE}"`));
    assert.ok(r.text.includes(`href="/vulnerabilities/${CVE_APP}"`));
    assert.match(r.text, /2\.36-9\+deb12u7/);
    assert.ok(r.text.includes(`${f.host}/team/app-a:1`));
    assert.match(r.text, /prod\/shop<\/a><\/td><td>ReplicaSet\/web-7d9f8c6b5/);
    // By digest alone: every repository with that digest (here one).
    const byDigest = await get(`${ui.url}/images/${f.appA.descriptor.digest}`);
    assert.equal(byDigest.status, 200);
    assert.match(byDigest.text, /<dt>Title<\/dt><dd>Shop front<\/dd>/);
    // app-b's page has the check's decision.
    const b = await get(`${ui.url}${imagePath(f.host, 'app-b', f.appB)}`);
    assert.equal(b.status, 200);
    assert.match(b.text, /data-testid="decisions"/);
    assert.match(b.text, /badge ok">allowed/);
  });

  test('hostile labels and owners are escaped everywhere', async () => {
    for (const p of [imagePath(f.host, 'evil', f.evil), '/images?repository=evil', `/vulnerabilities/${CVE_APP}`, `/bases/${f.host}/base/debian@${f.base.descriptor.digest}`]) {
      const r = await get(`${ui.url}${p}`);
      assert.equal(r.status, 200, p);
      assert.ok(!r.text.includes('<script'), `${p} has a raw <script`);
      assert.ok(!r.text.includes('<img'), `${p} has a raw <img`);
    }
    const r = await get(`${ui.url}${imagePath(f.host, 'evil', f.evil)}`);
    assert.ok(r.text.includes('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;'));
    assert.ok(r.text.includes('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;'));
    // A hostile path and query are escaped too.
    const q = await get(`${ui.url}/images?repository=${encodeURIComponent('"><script>x</script>')}`);
    assert.ok(!q.text.includes('<script>x'));
    const v = await get(`${ui.url}/vulnerabilities/${encodeURIComponent('<script>x</script>')}`);
    assert.equal(v.status, 200);
    assert.ok(!v.text.includes('<script>x'));
    // No script at all: the CSP forbids it.
    assert.match((await fetch(`${ui.url}/`, { headers: { authorization: `Bearer ${TOKEN}` } })).headers.get('content-security-policy') ?? '', /default-src 'none'/);
  });

  test('the images table pages, sorts and filters on the server with stable URLs', async () => {
    const p1 = await get(`${ui.url}/images?size=25`);
    assert.match(p1.text, /Page 1 of 3 · 63 images/);
    const rows = (t: string) => [...t.matchAll(/<tr><td><a href="\/images\/([^"]+)">/g)].map((m) => decodeURIComponent(m[1]!));
    assert.equal(rows(p1.text).length, 25);
    // Signature status: app-a was verified into the store, app-b was not.
    const rowOf = (t: string, repo: string) => [...t.matchAll(/<tr><td><a href="\/images\/[^"]+">([^<]+)<\/a>.*?<\/tr>/gs)].find((m) => m[1] === `${f.host}/team/${repo}`)?.[0] ?? '';
    assert.match(rowOf(p1.text, 'app-a'), /#h-sigs"><span class="badge signed">verified<\/span>/);
    assert.match(rowOf(p1.text, 'app-b'), /<span class="muted">none recorded<\/span>/);
    const p3 = await get(`${ui.url}/images?size=25&page=3`);
    assert.equal(rows(p3.text).length, 13);
    const all = new Set([...rows(p1.text), ...rows((await get(`${ui.url}/images?size=25&page=2`)).text), ...rows(p3.text)]);
    assert.equal(all.size, 63);
    assert.ok(p1.text.includes('rel="next" href="/images?size=25&amp;page=2"'));
    // Sorted by size, descending: the three scanned images (~1.7 KB) first, then the biggest bulk record; ascending: the smallest bulk record.
    const bySize = rows((await get(`${ui.url}/images?sort=size&dir=desc&size=5`)).text);
    assert.deepEqual(bySize.slice(0, 3).map((r) => r.split('/')[1]), ['team', 'team', 'team']);
    assert.ok(bySize[3]!.startsWith(`${f.host}/zz-bulk/app-59@`), bySize[3]);
    assert.ok(rows((await get(`${ui.url}/images?sort=size&size=5`)).text)[0]!.startsWith(`${f.host}/zz-bulk/app-00@`));
    // Filters.
    const cve = rows((await get(`${ui.url}/images?cve=${CVE_APP}`)).text).sort();
    assert.deepEqual(cve, [`${f.host}/team/app-a@${f.appA.descriptor.digest}`, `${f.host}/team/evil@${f.evil.descriptor.digest}`].sort());
    // package: images that have it installed (openssl has no finding; app-b installed it).
    assert.deepEqual(rows((await get(`${ui.url}/images?package=openssl`)).text), [`${f.host}/team/app-b@${f.appB.descriptor.digest}`]);
    assert.deepEqual(rows((await get(`${ui.url}/images?package=no-such-package`)).text), []);
    assert.equal(rows((await get(`${ui.url}/images?package=libc6`)).text).length, 3);
    assert.deepEqual(rows((await get(`${ui.url}/images?namespace=shop`)).text), [`${f.host}/team/app-a@${f.appA.descriptor.digest}`]);
    assert.deepEqual(rows((await get(`${ui.url}/images?owner=b%40example`)).text), [`${f.host}/team/app-b@${f.appB.descriptor.digest}`]);
    // The last policy verdict: app-b's check (made on its tag) allowed it; app-a has none.
    const b = (await get(`${ui.url}/images?owner=b%40example`)).text;
    assert.match(b, /<td><span class="badge ok">allowed<\/span> <small title="">\d{4}-\d\d-\d\d · registries<\/small><\/td><\/tr>/);
    const a = (await get(`${ui.url}/images?namespace=shop`)).text;
    assert.match(a, /<td><span class="muted">–<\/span><\/td><\/tr>/);
    assert.doesNotMatch(a, /badge (ok|bad|warn)/);
    assert.equal(rows((await get(`${ui.url}/images?base=base/debian`)).text).length, 3);
    // The base page's link (NAME@DIGEST) filters the same three.
    assert.equal(rows((await get(`${ui.url}/images?base=${encodeURIComponent(`${f.host}/base/debian@${f.base.descriptor.digest}`)}`)).text).length, 3);
    assert.equal(rows((await get(`${ui.url}/images?repository=zz-bulk&size=500`)).text).length, BULK);
  });

  test('vulnerability, bases, base and decisions pages', async () => {
    const v = await get(`${ui.url}/vulnerabilities/${CVE_BASE}`);
    assert.match(v.text, /3 image\(s\) affected now \(1 running\)/);
    assert.match(v.text, /Fixed in 2\.36-9\+deb12u7/);
    const none = await get(`${ui.url}/vulnerabilities/CVE-1999-0001`);
    assert.match(none.text, /No image in the store has this advisory/);
    const redirect = await get(`${ui.url}/vulnerabilities?id=${CVE_APP}`);
    assert.equal(redirect.status, 303);
    const bases = await get(`${ui.url}/bases`);
    assert.match(bases.text, /<td>debian-12<\/td><td><a href="\/bases\/[^"]+">[^<]*base\/debian:12@/);
    assert.match(bases.text, /<td>3<\/td><td>0<\/td><td>–<\/td><\/tr>/);
    assert.ok(bases.text.includes(`s-superseded">superseded</span></td><td><code>${f.host}/base/old:11.9@cccccccccccc</code></td><td>1</td><td>1</td><td><code>plinth rebase --consumers-of ${f.host}/base/old@sha256:${'b'.repeat(64)} --store …</code>`));
    // The catalog line's versions over time, oldest first, with their consumers.
    const line = /<table data-testid="line-versions"><caption>debian-12<\/caption>.*?<\/table>/s.exec(bases.text)?.[0] ?? '';
    const versions = [...line.matchAll(/<tr><td>(?:<a [^>]+>)?([^<]+)(?:<\/a>)?<\/td><td>[^<]*<\/td><td>([^<]+)<\/td><td><span class="badge s-(\w+)">\w+<\/span><\/td><td>([^<]+)<\/td><td>(\d+)<\/td>/g)].map((m) => m.slice(1).join(' '));
    assert.deepEqual(versions, [
      `${f.host}/base/debian:12.0@aaaaaaaaaaaa 2023-06-10T00:00:00Z superseded 2024-01-02T00:00:00Z 0`,
      `${f.host}/base/debian:12@${f.base.descriptor.digest.slice(7, 19)} 2024-01-01T00:00:00Z approved 2024-01-02T00:00:00Z 3`,
    ]);
    const base = await get(`${ui.url}/bases/${f.host}/base/debian@${f.base.descriptor.digest}`);
    assert.equal(base.status, 200);
    assert.match(base.text, /Consumers \(3\)/);
    const d = await get(`${ui.url}/decisions?allowed=false`);
    assert.match(d.text, /badge bad">denied/);
    assert.match(d.text, /docker\.io\/library\/alpine:3/);
    assert.doesNotMatch(d.text, /team\/app-b:1/);
  });

  test('the pages and the JSON API give the same numbers for the same store', async () => {
    const m = await MetaStore.open(f.store, { readonly: true });
    const api = await startApi(m, { token: TOKEN });
    try {
      const j = async (p: string) => (await (await fetch(`${api.url}${p}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as any;
      const page = (await get(`${ui.url}/`)).text;
      assert.equal(stat(page, 'images known'), (await j('/v1/images')).images.length);
      assert.equal(stat(page, 'running'), (await j('/v1/images?running=true')).images.length);
      const behind = (await j('/v1/images?behind=true')).images.length;
      assert.equal(stat(page, 'behind'), behind);
      const findings = (await j('/v1/findings')).findings as any[];
      const total = /(\d+) open findings: (\d+) in base layers, (\d+) in app layers, (\d+) fixable/.exec(page)!;
      assert.equal(Number(total[1]), findings.length);
      assert.equal(Number(total[2]), findings.filter((x) => x.origin === 'base').length);
      assert.equal(Number(total[3]), findings.filter((x) => x.origin !== 'base').length);
      assert.equal(Number(total[4]), findings.filter((x) => x.fixedVersion).length);
      for (const s of ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN']) {
        const row = new RegExp(`sev-${s.toLowerCase()}">${s}</span></th><td>(\\d+)</td><td>(\\d+)</td>`).exec(page)!;
        assert.equal(Number(row[1]), findings.filter((x) => x.severity === s && x.origin === 'base').length, s);
        assert.equal(Number(row[2]), findings.filter((x) => x.severity === s && x.origin !== 'base').length, s);
      }
      const decisions = (await j('/v1/decisions?limit=10000')).decisions as any[];
      assert.equal(stat(page, 'decisions'), decisions.length);
      assert.equal(stat(page, 'denied'), decisions.filter((d) => !d.allowed).length);
      assert.equal(stat(page, 'allowed'), decisions.filter((d) => d.allowed).length);
      // Per image: the findings the image page lists are the API's for that digest.
      for (const [repo, img] of [['app-a', f.appA], ['app-b', f.appB], ['evil', f.evil]] as const) {
        const one = await j(`/v1/images/${img.descriptor.digest}`);
        const html = (await get(`${ui.url}${imagePath(f.host, repo, img)}`)).text;
        const listed = [...html.matchAll(/<tr><td><a href="\/vulnerabilities\/([^"]+)">/g)].map((x) => decodeURIComponent(x[1]!)).sort();
        assert.deepEqual(listed, one.findings.map((x: any) => x.id).sort(), repo);
      }
      // The images table's count under a filter is the API's.
      const table = (await get(`${ui.url}/images?base=${encodeURIComponent(`${f.host}/base/debian`)}`)).text;
      const n = Number(/· (\d+) images/.exec(table)![1]);
      assert.equal(n, (await j(`/v1/images?base=${encodeURIComponent(`${f.host}/base/debian@${f.base.descriptor.digest}`)}`)).images.length);
    } finally {
      await api.close();
      await m.close();
    }
  });

  once('--auth-header: a request without the proxy header gets 401, with it the user is shown; no token off loopback is refused', async () => {
    const proxied = await startUiProcess(['--store', f.store, '--auth-header', 'X-Forwarded-User']);
    try {
      const no = await get(`${proxied.url}/`, {});
      assert.equal(no.status, 401);
      const yes = await get(`${proxied.url}/`, { 'x-forwarded-user': 'alice<b>' });
      assert.equal(yes.status, 200);
      assert.match(yes.text, /<span class="user">alice&lt;b&gt;<\/span>/);
    } finally {
      await proxied.stop();
    }
    const open = await runPlinth(['ui', '--store', f.store, '--host', '0.0.0.0', '--port', '0']);
    assert.equal(open.code, 2);
    assert.match(open.stderr, /without --token/);
    const short = await runPlinth(['ui', '--store', f.store, '--token', 'short', '--port', '0']);
    assert.equal(short.code, 2);
  });

  test('a busy port is a usage error, and the store is closed (the process exits)', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (blocker.address() as net.AddressInfo).port;
      const r = await runPlinth(['ui', '--store', f.store, '--token', TOKEN, '--port', String(port)]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /port is in use/);
    } finally {
      blocker.close();
    }
  });

  once('without a token only requests addressed to loopback are served (DNS rebinding); a bad request target is a 400', async () => {
    const open = await startUiProcess(['--store', f.store]);
    try {
      const port = Number(new URL(open.url).port);
      const raw = (host: string, target = '/images') => new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: target, headers: { host } }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
      for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`]) assert.equal((await raw(h)).status, 200, h);
      for (const h of [`attacker.example:${port}`, 'attacker.example', `127.0.0.1.attacker.example:${port}`]) {
        const r = await raw(h);
        assert.equal(r.status, 421, h);
        assert.doesNotMatch(r.body, /team\/app-a/);
      }
      const bad = await raw(`127.0.0.1:${port}`, 'http://[x]/');
      assert.equal(bad.status, 400);
      assert.doesNotMatch(bad.body, /at [\w.]+ \(|node:internal/);
    } finally {
      await open.stop();
    }
  });

  once('an image known only from provenance shows its layers\' package counts; damaged image rows never break a page', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-ui-prov-'));
    try {
      const db = path.join(dir, 'store.db');
      const p = await runPlinth(['provenance', `${f.host}/team/app-a:1`, '--catalog', path.join(f.work, 'catalog.yaml'), '--store', db, '--format', 'json'], { env: { PLINTH_DB: path.join(dir, 'none.db') } });
      assert.equal(p.code, 0, p.stderr);
      const m = await MetaStore.open(db);
      try {
        const uri = `${f.host}/team/app-a@${f.appA.descriptor.digest}`;
        const x = await imageDetails(m, uri);
        assert.equal(x.packageCount, 3);
        assert.deepEqual(x.layers.map((l) => [l.origin, l.packages]), [['base', 2], ['image', 1]]);
        assert.equal(x.packages.length, 0);
        const page = (await imagePage(m, uri, {}))!;
        assert.match(page, /<dt>Packages<\/dt><dd><a href="#h-packages">3<\/a>/);
        assert.match(page, /3 package\(s\) counted by plinth provenance/);
        // A damaged row (labels not an object, a summary of the wrong shape): the pages still answer.
        await m.sql.run("UPDATE images SET labels = 'null', vulns = '{}'");
        assert.equal((await m.images())[0]!.vulnerabilities, null);
        assert.match(await overviewPage(m, {}), /Overview/);
        assert.match(await imagesPage(m, {}, {}), /team\/app-a/);
        await m.sql.run(`UPDATE images SET labels = '["x"]', vulns = '{"total":"many","bySeverity":[],"base":1,"image":1,"fixable":0}'`);
        assert.ok((await imagePage(m, uri, {}))!.includes('What is it?'));
        // A two-platform image signed by its tag (the index digest): both platform rows count as signed.
        const amd = await buildImage({ platform: { os: 'linux', architecture: 'amd64' }, layers: [[{ path: 'm', content: 'amd64' }]] });
        const arm = await buildImage({ platform: { os: 'linux', architecture: 'arm64' }, layers: [[{ path: 'm', content: 'arm64' }]] });
        const idx = buildIndex([amd, arm]);
        await copyImage(idx.source, await openDestination(`${f.host}/team/multi:1`));
        const pw = { PLINTH_PASSWORD: 'ui-test' };
        assert.equal((await runPlinth(['sign', `${f.host}/team/multi:1`, '--key', path.join(f.work, 'team.key')], { env: pw })).code, 0);
        assert.equal((await runPlinth(['provenance', `${f.host}/team/multi:1`, '--platform', 'all', '--metadata-only', '--store', db])).code, 0);
        const vf = await runPlinth(['verify', `${f.host}/team/multi:1`, '--key', path.join(f.work, 'team.pub'), '--store', db]);
        assert.equal(vf.code, 0, vf.stderr);
        const table = await imagesPage(m, { repository: 'team/multi' }, {});
        const platformRows = [...table.matchAll(/<tr><td><a href="\/images\/[^"]+">[^<]+<\/a> <small>(linux\/\w+)<\/small>.*?<\/tr>/gs)];
        assert.deepEqual(platformRows.map((r) => r[1]).sort(), ['linux/amd64', 'linux/arm64']);
        for (const r of platformRows) assert.match(r[0], /badge signed">verified/);
        const amdPage = (await imagePage(m, `${f.host}/team/multi@${amd.descriptor.digest}`, {}))!;
        assert.match(amdPage, /\(its index\)/);
      } finally {
        await m.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  once('findings over time count what was open at the end of each day', async () => {
    const { findingTrend } = await import('../src/ui/data.js');
    const row = (firstSeen: string, resolved: string | null) => ({ uri: 'r@sha256:x', repository: 'r', digest: 'sha256:x', id: 'CVE-1', package: 'p', installedVersion: null, fixedVersion: null, severity: 'HIGH', origin: null, title: null, firstSeen, lastSeen: firstSeen, resolved });
    const now = new Date('2026-03-10T12:00:00Z');
    const t = findingTrend([row('2026-03-01T10:00:00Z', null), row('2026-03-05T10:00:00Z', '2026-03-08T09:00:00Z'), row('2026-03-10T11:00:00Z', null), row('2026-03-10T13:00:00Z', null)], now, 12);
    assert.deepEqual(t.map((x) => `${x.day.slice(5)}=${x.open}`), ['02-27=0', '02-28=0', '03-01=1', '03-02=1', '03-03=1', '03-04=1', '03-05=2', '03-06=2', '03-07=2', '03-08=1', '03-09=1', '03-10=2']);
  });

  const browser = '/usr/bin/chromium';
  once('in a real browser: overview → image → base → vulnerability, filter by CVE', { skip: existsSync(browser) ? false : 'Debian chromium is not installed (scripts/setup.sh installs it)' }, async () => {
    const { chromium } = await import('playwright-core');
    const shots = process.env.PLINTH_UI_SCREENSHOTS ?? path.join(f.work, 'screenshots');
    await mkdir(shots, { recursive: true });
    const b = await chromium.launch({ executablePath: browser, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    try {
      const ctx = await b.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await ctx.newPage();
      // Signing in through the form (the cookie carries the token after that).
      await page.goto(`${ui.url}/`);
      await page.fill('#token', TOKEN);
      await page.click('button[type=submit]');
      await page.waitForURL(`${ui.url}/`);
      assert.equal(await page.textContent('h1'), 'Overview');
      await page.screenshot({ path: path.join(shots, 'overview.png'), fullPage: true });
      // Keyboard: the first Tab reaches the skip link.
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Skip to content');
      await page.click('text=images known >> xpath=.. >> a');
      await page.waitForURL(/\/images$/);
      await page.screenshot({ path: path.join(shots, 'images.png'), fullPage: true });
      await page.click(`a[href="/images/${f.host}/team/app-a@${f.appA.descriptor.digest}"]`);
      await page.waitForURL(/\/images\/.+@sha256:/);
      assert.match((await page.textContent('main'))!, /Shop front/);
      await page.screenshot({ path: path.join(shots, 'image.png'), fullPage: true });
      await page.click(`section >> a[href^="/bases/"]`);
      await page.waitForURL(/\/bases\//);
      assert.match((await page.textContent('main'))!, /Consumers \(3\)/);
      await page.screenshot({ path: path.join(shots, 'base.png'), fullPage: true });
      await page.goBack();
      await page.click(`a[href="/vulnerabilities/${CVE_APP}"]`);
      await page.waitForURL(/\/vulnerabilities\//);
      assert.match((await page.textContent('[data-testid=vuln-summary]'))!, /2 image\(s\) affected now \(1 running\)/);
      await page.screenshot({ path: path.join(shots, 'vulnerability.png'), fullPage: true });
      // Filter by CVE from the images table's form.
      await page.goto(`${ui.url}/images`);
      await page.fill('#f-cve', CVE_APP);
      await page.click('form.filters button[type=submit]');
      await page.waitForURL(/cve=/);
      const rows = await page.locator('[data-testid=images] tbody tr').count();
      assert.equal(rows, 2);
      assert.match((await page.textContent('[data-testid=page-info]'))!, /2 images/);
      await page.goto(`${ui.url}/bases`);
      await page.screenshot({ path: path.join(shots, 'bases.png'), fullPage: true });
      await page.goto(`${ui.url}/decisions`);
      await page.screenshot({ path: path.join(shots, 'decisions.png'), fullPage: true });
      // A narrow window: no horizontal scroll of the page itself (tables scroll in their box).
      await page.setViewportSize({ width: 380, height: 800 });
      await page.goto(`${ui.url}/images/${f.host}/team/app-a@${f.appA.descriptor.digest}`);
      const overflow = (await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')) as number;
      assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px in a narrow window`);
      // The hostile image in the browser: its title shows as text, no script ran.
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.goto(`${ui.url}/images/${f.host}/team/evil@${f.evil.descriptor.digest}`);
      assert.ok((await page.textContent('main'))!.includes(HOSTILE));
      assert.equal(await page.locator('main script, main img').count(), 0);
    } finally {
      await b.close();
    }
  });
});
