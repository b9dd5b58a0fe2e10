/**
 * The dashboard where it is mounted besides `plinth ui` (issue 15): `plinth demo --ui` serves it
 * on the demo's own store after the last step, and `plinth serve --ui` on the admission webhook's
 * HTTPS port behind the API token. Both started as real processes; pages fetched and asserted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { buildImage, type BuiltImage, type FileSpec } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { freePort, startLocalRegistry, type LocalRegistry } from '../src/registry/local.js';
import { chainIds } from '../src/provenance/chain.js';
import { emptyCatalog, saveCatalog } from '../src/provenance/catalog.js';
import { openStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';
import { MetaStore } from '../src/store/store.js';
import { plinthCommand, runPlinth } from './helpers/common.js';
import { debian12OsRelease, dpkgEntry } from './helpers/debian.js';

/** The number a stat card shows under a label. */
function stat(page: string, label: string): number {
  const m = new RegExp(`<span class="n">(?:<a [^>]*>)?(\\d+)[^<]*(?:</a>)?</span><span class="l">${label}</span>`).exec(page);
  assert.ok(m, `no stat "${label}"`);
  return Number(m[1]);
}

/** The image links of the images table, with the row each is in. */
function imageRows(page: string): Array<{ href: string; row: string }> {
  const rows: Array<{ href: string; row: string }> = [];
  for (const row of page.split('<tr>').slice(1)) {
    const m = /<a href="(\/images\/[^"]+)"/.exec(row);
    if (m) rows.push({ href: m[1]!, row });
  }
  return rows;
}

describe('plinth demo --ui', () => {
  test('after the last step the dashboard serves the demo\'s store until SIGTERM, then the directory is removed', async () => {
    const cmd = plinthCommand(['demo', '--ui', '--port', '0']);
    const p = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    let dir: string | undefined;
    try {
      // Bounded wait for the dashboard line (the demo runs 14 steps first).
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no dashboard line within 300 s: ${out}\n${err}`)), 300_000);
        p.stdout.on('data', (d: Buffer) => {
          out += d;
          const m = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/) {2}\(Ctrl-C to stop\)$/m.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`plinth demo --ui exited ${code} before serving: ${out}\n${err}`));
        });
      });
      const first = /^1\. registry on (http:\/\/127\.0\.0\.1:(\d+)) .*, store (\S+)\/store\.db,/m.exec(out);
      assert.ok(first, out);
      const [, regUrl, regPort, demoDir] = first;
      dir = demoDir!;
      const host = `127.0.0.1:${regPort}`;
      assert.ok(existsSync(path.join(dir, 'store.db')), 'the store is kept while the dashboard serves it');
      // The registry was stopped before serving: the dashboard reads only the store.
      await assert.rejects(fetch(`${regUrl}/v2/`));
      const get = async (u: string) => {
        const r = await fetch(new URL(u, url), { redirect: 'manual' });
        return { status: r.status, text: await r.text() };
      };
      // The overview: the app before and after the rebase, one of them behind, the denial of step 10.
      const home = await get('/');
      assert.equal(home.status, 200);
      assert.equal(stat(home.text, 'images known'), 2);
      assert.equal(stat(home.text, 'with a known base'), 2);
      assert.equal(stat(home.text, 'behind'), 1);
      assert.equal(stat(home.text, 'denied'), 1);
      // The images table: both are the demo's app, on 12.1 (deprecated, behind) and on 12.2.
      const images = await get('/images');
      assert.equal(images.status, 200);
      const rows = imageRows(images.text);
      assert.equal(rows.length, 2, images.text);
      for (const r of rows) assert.ok(r.href.startsWith(`/images/${host}/team/shop@sha256:`), r.href);
      const old = rows.find((r) => r.row.includes(`>${host}/golden/debian:12.1@`));
      const rebased = rows.find((r) => r.row.includes(`>${host}/golden/debian:12.2@`));
      assert.ok(old && rebased, images.text);
      assert.match(old.row, /s-deprecated">deprecated<\/span> <span class="badge warn" title="since [^"]+">behind by 1</);
      assert.match(old.row, /shop-team@example\.com/);
      assert.match(rebased.row, /s-approved">approved/);
      // The first image link, followed: its page names the app, its base line and its owner.
      const page = await get(rows[0]!.href);
      assert.equal(page.status, 200);
      assert.match(page.text, new RegExp(`${host.replace(/\./g, '\\.')}/team/shop`));
      assert.match(page.text, /golden\/debian:12\.[12]/);
      assert.match(page.text, /debian-12/);
      // The app as first built: the findings the demo printed (step 6) and the day-2 advisory (step 14).
      const oldPage = await get(old.href);
      assert.equal(oldPage.status, 200);
      assert.match(oldPage.text, /DEMO-2026-0001/);
      assert.match(oldPage.text, /DEMO-2026-0002/);
      assert.match(oldPage.text, /shop\/shop-0|shop-0/);
      // The bases page: 12.1 deprecated with its successor and the rebase command, 12.2 approved.
      const bases = await get('/bases');
      assert.equal(bases.status, 200);
      const b121 = bases.text.split('<tr>').find((r) => r.includes(`>${host}/golden/debian:12.1@`));
      assert.ok(b121, bases.text);
      assert.match(b121, /debian-12/);
      assert.match(b121, /s-deprecated">deprecated/);
      assert.match(b121, new RegExp(`<code>${host.replace(/\./g, '\\.')}/golden/debian:12\\.2@[a-f0-9]{12}</code>`));
      assert.match(b121, /plinth rebase --consumers-of /);
      assert.match(bases.text, /s-approved">approved/);
      const vuln = await get('/vulnerabilities/DEMO-2026-0001');
      assert.equal(vuln.status, 200);
      assert.match(vuln.text, /team\/shop/);
    } finally {
      p.kill('SIGTERM');
    }
    assert.equal(await exited, 0, err);
    assert.ok(dir);
    assert.equal(existsSync(dir), false, `${dir} is removed after the dashboard stops`);
    assert.equal(err, '');
  });

  test('--port without --ui, or a bad port, is a usage error before anything runs', async () => {
    const a = await runPlinth(['demo', '--port', '0']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /^plinth: --port is the dashboard's port: give --ui too/);
    assert.equal(a.stdout, '');
    const b = await runPlinth(['demo', '--ui', '--port', '70000']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /--port must be 0-65535, got "70000"/);
    assert.equal(b.stdout, '');
  });

  test('a dashboard port in use is found before the demo runs', async () => {
    const { createServer } = await import('node:net');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (busy.address() as import('node:net').AddressInfo).port;
      const r = await runPlinth(['demo', '--ui', '--port', String(port)]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`the dashboard cannot listen on 127\\.0\\.0\\.1:${port} \\(the port is in use\\)`));
      assert.equal(r.stdout, '', 'no demo step ran');
    } finally {
      busy.close();
    }
  });
});

describe('plinth serve --ui', () => {
  const TOKEN = 'serve-ui-token-0123456789';
  const BATCH = `sha256:${createHash('sha256').update('batch').digest('hex')}`;
  let work: string;
  let reg: LocalRegistry;
  let host: string;
  let app: BuiltImage;
  let store: string;
  let catalogFile: string;
  let dir: string;
  let policy: string;
  let ca: string;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-ui-serve-'));
    reg = await startLocalRegistry({ dir: path.join(work, 'registry') });
    host = reg.host;
    const baseLayer: FileSpec[] = [
      debian12OsRelease,
      { path: 'var/lib/dpkg/status', content: dpkgEntry('libc6', '2.36-9+deb12u3', 'glibc') },
    ];
    const base = await buildImage({ layers: [baseLayer], created: '2024-01-01T00:00:00Z' });
    app = await buildImage({ layers: [baseLayer, [{ path: 'app/web', content: 'web' }]], labels: { 'org.opencontainers.image.authors': 'web-team@example.com' } });
    await copyImage(base.source, await openDestination(`${host}/base/debian:12`));
    await copyImage(app.source, await openDestination(`${host}/team/web:1`));
    const catalog = emptyCatalog();
    catalog.bases.push({ name: `${host}/base/debian`, tag: '12', digest: base.descriptor.digest, diffIds: base.diffIds, chainIds: chainIds(base.diffIds), status: 'approved', line: 'debian-12' });
    catalogFile = path.join(work, 'catalog.yaml');
    await saveCatalog(catalogFile, catalog);
    const adv = path.join(work, 'osv');
    await mkdir(adv);
    await writeFile(path.join(adv, 'DEBIAN-CVE-2024-2961.json'), JSON.stringify({ id: 'DEBIAN-CVE-2024-2961', modified: '2024-05-01T00:00:00Z', summary: 'glibc iconv', affected: [{ package: { ecosystem: 'Debian:12', name: 'glibc' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.36-9+deb12u7' }] }] }], severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] }));
    const dbFile = path.join(work, 'vuln.db');
    const vs = openStore(dbFile);
    await importPaths(vs, [adv]);
    vs.close();
    store = path.join(work, 'store.db');
    const s = await runPlinth(['scan', `${host}/team/web:1`, '--db', dbFile, '--catalog', catalogFile, '--store', store, '--format', 'json']);
    assert.equal(s.code, 0, s.stderr);
    // An image whose provenance named the base by digest only: only the catalog ties it to base/debian:12.
    const m = await MetaStore.open(store);
    try {
      await m.recordImage({ image: { repository: `${host}/team/batch`, registry: host, tag: '2', digest: BATCH }, source: 'test', os: 'debian 12', size: 1000, labels: {}, base: { name: `${host}/base/debian`, tag: null, digest: base.descriptor.digest, confidence: 'high', status: 'approved', line: 'debian-12', newest: null, behind: false } });
    } finally {
      await m.close();
    }
    dir = path.join(work, 'certs');
    const c = await runPlinth(['certs', '--service', 'plinth', '--namespace', 'plinth-system', '--dir', dir, '--ip', '127.0.0.1', '--format', 'json']);
    assert.equal(c.code, 0, c.stderr);
    ca = Buffer.from(JSON.parse(c.stdout).caBundle, 'base64').toString();
    policy = path.join(work, 'policy.yaml');
    await writeFile(policy, `apiVersion: plinth.dev/v1alpha1\nkind: ImagePolicy\nmetadata:\n  name: registries\nspec:\n  rules:\n    - name: only-local\n      mode: enforce\n      allowedRegistries:\n        registries: ["${host}"]\n`);
  });
  after(async () => {
    await reg?.stop();
    await rm(work ?? '/nonexistent', { recursive: true, force: true });
  });

  test('the dashboard on the webhook\'s HTTPS port: token or Secure cookie; webhook, /healthz, /metrics and /v1/ unchanged', async () => {
    const port = await freePort();
    // The token from a file, as a mounted Secret gives it (with a trailing newline).
    const tokenFile = path.join(dir, 'api-token');
    await writeFile(tokenFile, `${TOKEN}\n`);
    const cmd = plinthCommand(['serve', '--policy', policy, '--catalog', catalogFile, '--tls-cert', path.join(dir, 'tls.crt'), '--tls-key', path.join(dir, 'tls.key'), '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn', '--store', store, '--api', '--api-token-file', tokenFile, '--ui']);
    const p = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    const call = (method: string, url: string, o: { body?: string; headers?: Record<string, string> } = {}) =>
      new Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }>((resolve) => {
        const r = https.request(`https://127.0.0.1:${port}${url}`, { method, ca, servername: 'plinth.plinth-system.svc', headers: o.headers ?? {} }, (res) => {
          let t = '';
          res.on('data', (d: Buffer) => (t += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: t, headers: res.headers }));
        });
        r.on('error', () => resolve({ status: 0, text: '', headers: {} }));
        r.end(o.body);
      });
    const bearer = { authorization: `Bearer ${TOKEN}` };
    try {
      for (let i = 0; i < 200 && (await call('GET', '/readyz')).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /listening on https:\/\/127\.0\.0\.1:\d+; store API on \/v1\/; dashboard on \//);
      // Without the token (or with a wrong one): 401 and the sign-in form, never the store.
      for (const headers of <Array<Record<string, string>>>[{}, { authorization: 'Bearer wrong-token-0123456789' }, { cookie: 'plinth_ui_token=wrong' }]) {
        const r = await call('GET', '/', { headers });
        assert.equal(r.status, 401);
        assert.match(r.text, /A valid access token is required/);
        assert.doesNotMatch(r.text, /team\/web/);
      }
      // With it: the overview of the store.
      const home = await call('GET', '/', { headers: bearer });
      assert.equal(home.status, 200);
      assert.match(String(home.headers['content-type']), /text\/html/);
      assert.match(home.text, /<h1>Overview<\/h1>/);
      assert.equal(stat(home.text, 'images known'), 2);
      assert.equal(stat(home.text, 'scanned'), 1);
      assert.match(home.text, /data-testid="finding-total">1 open finding/);
      // The images table, and the image's page.
      const images = await call('GET', '/images', { headers: bearer });
      assert.equal(images.status, 200);
      const rows = imageRows(images.text);
      assert.deepEqual(rows.map((r) => r.href), [`/images/${host}/team/batch@${BATCH}`, `/images/${host}/team/web@${app.descriptor.digest}`]);
      const page = await call('GET', rows[1]!.href, { headers: bearer });
      assert.equal(page.status, 200);
      assert.match(page.text, /DEBIAN-CVE-2024-2961/);
      assert.match(page.text, /web-team@example\.com/);
      assert.match(page.text, new RegExp(`${host.replace(/\./g, '\\.')}/base/debian:12`));
      // A base named by tag resolves through the catalog serve loaded.
      const base = await call('GET', `/bases/${host}/base/debian:12`, { headers: bearer });
      assert.equal(base.status, 200, base.text);
      assert.match(base.text, /team\/web/);
      assert.match(base.text, /team\/batch/, 'the catalog serve was given names the digest of base/debian:12');
      const css = await call('GET', '/static/plinth.css');
      assert.equal(css.status, 200);
      // The sign-in form: a Secure, HttpOnly cookie (this is HTTPS), which then opens the pages.
      const login = await call('POST', '/login', { body: `token=${TOKEN}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(login.status, 303);
      const cookie = String(login.headers['set-cookie']);
      assert.match(cookie, /^plinth_ui_token=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
      const viaCookie = await call('GET', '/images', { headers: { cookie: cookie.split(';')[0]! } });
      assert.equal(viaCookie.status, 200);
      assert.match(viaCookie.text, /team\/web/);
      const badLogin = await call('POST', '/login', { body: 'token=nope', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(badLogin.status, 401);
      assert.equal(badLogin.headers['set-cookie'], undefined);
      // Unknown pages are the dashboard's 404; other methods than GET/HEAD/POST /login are the webhook's.
      const missing = await call('GET', '/no-such-page', { headers: bearer });
      assert.equal(missing.status, 404);
      assert.match(missing.text, /is not a page of this dashboard/);
      const put = await call('PUT', '/images', { headers: bearer });
      assert.equal(put.status, 404);
      assert.match(put.text, /"error":"no such endpoint PUT \/images"/);
      // The webhook still answers, first.
      const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'uid-ui', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, name: 'web-0', namespace: 'shop', operation: 'CREATE', userInfo: { username: 'test' }, object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace: 'shop' }, spec: { containers: [{ name: 'web', image: 'docker.io/evil/miner:1' }] } }, oldObject: null, dryRun: false } };
      const v = await call('POST', '/validate', { body: JSON.stringify(review), headers: { 'content-type': 'application/json' } });
      assert.equal(v.status, 200);
      assert.match(v.text, /"uid":"uid-ui"/);
      assert.match(v.text, /"allowed":false/);
      const getValidate = await call('GET', '/validate', { headers: bearer });
      assert.equal(getValidate.status, 405);
      assert.equal((await call('GET', '/healthz')).text, 'ok');
      // Probes that use HEAD get the webhook's answer, not the dashboard's sign-in page.
      assert.equal((await call('HEAD', '/healthz')).status, 200);
      assert.equal((await call('HEAD', '/readyz')).status, 200);
      assert.match((await call('GET', '/metrics')).text, /# HELP/);
      // The API: still JSON under /v1/, still behind the token.
      assert.equal((await call('GET', '/v1/images')).status, 401);
      const api = await call('GET', '/v1/images', { headers: bearer });
      assert.equal(api.status, 200);
      assert.match(String(api.headers['content-type']), /application\/json/);
      assert.deepEqual(JSON.parse(api.text).images.map((i: { digest: string }) => i.digest).sort(), [BATCH, app.descriptor.digest].sort());
    } finally {
      p.kill('SIGTERM');
    }
    assert.equal(await exited, 0, err);
  });

  test('--ui without --store, without a token, or with a short one is a usage error', async () => {
    const args = ['serve', '--policy', policy, '--tls-cert', path.join(dir, 'tls.crt'), '--tls-key', path.join(dir, 'tls.key'), '--port', '0', '--host', '127.0.0.1'];
    const env = { PLINTH_STORE: '', PLINTH_API_TOKEN: '' };
    const noStore = await runPlinth([...args, '--ui', '--api-token', TOKEN], { env });
    assert.equal(noStore.code, 2);
    assert.match(noStore.stderr, /^plinth: --ui serves the dashboard of the store: give --store too/);
    const noToken = await runPlinth([...args, '--ui', '--store', store], { env });
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /--ui on the webhook's port needs --api-token/);
    const short = await runPlinth([...args, '--ui', '--store', store, '--api-token', 'short'], { env });
    assert.equal(short.code, 2);
    assert.match(short.stderr, /at least 16 characters/);
    const emptyFile = path.join(dir, 'empty-token');
    await writeFile(emptyFile, '\n');
    const empty = await runPlinth([...args, '--ui', '--store', store, '--api-token-file', emptyFile], { env });
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /is empty/);
    const both = await runPlinth([...args, '--ui', '--store', store, '--api-token', TOKEN, '--api-token-file', emptyFile], { env });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /not both/);
  });
});
