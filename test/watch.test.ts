/**
 * The day-2 worker (`plinth watch`), end to end on both stores — an SQLite file and a real
 * PostgreSQL (Debian's server on loopback): two apps on a catalogued base scanned into the store
 * through the real CLI from a real registry, then advisories imported, the base superseded, a
 * watched tag moved, a receiver that fails and recovers — each time `plinth watch --once`, and
 * what the store records and what a local receiver gets is asserted. Then on PostgreSQL: two
 * worker processes share 1,000 queued jobs through pg-boss while one is killed with SIGKILL, and a
 * poisoned job is parked after its retries.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildImage, type BuiltImage, type FileSpec } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { startLocalRegistry, type LocalRegistry } from '../src/registry/local.js';
import { chainIds } from '../src/provenance/chain.js';
import { emptyCatalog, loadCatalog, saveCatalog } from '../src/provenance/catalog.js';
import { openStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';
import { MetaStore } from '../src/store/store.js';
import { QueueRunner } from '../src/watch/worker.js';
import { rematch } from '../src/watch/rematch.js';
import { plinthCommand, repoRoot, runPlinth } from './helpers/common.js';
import { startPostgres, type Postgres } from './helpers/postgres.js';
import { debian12OsRelease, dpkgEntry } from './helpers/debian.js';

const baseStatus = `${dpkgEntry('libc6', '2.36-9+deb12u3', 'glibc')}\n${dpkgEntry('bash', '5.2.15-2+b2', 'bash (5.2.15-2)')}`;
const CRIT = 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H';

const osv = (id: string, pkg: string, fixed: string | null, score?: string, modified = '2024-05-01T00:00:00Z') => ({ id, modified, summary: `${id} in ${pkg}`, affected: [{ package: { ecosystem: 'Debian:12', name: pkg }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, ...(fixed ? [{ fixed }] : [])] }] }], ...(score ? { severity: [{ type: 'CVSS_V3', score }] } : {}) });

async function importAdvisories(dbFile: string, dir: string, records: unknown[]): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const r of records) await writeFile(path.join(dir, `${(r as { id: string }).id}.json`), JSON.stringify(r));
  const vs = openStore(dbFile);
  try {
    const rep = await importPaths(vs, [dir]);
    assert.equal(rep.errors.length, 0, JSON.stringify(rep.errors));
  } finally {
    vs.close();
  }
}

/** A webhook receiver on loopback: records what it accepted; answers 503 while `failing`. */
interface Receiver {
  url: string;
  accepted: Array<{ path: string; contentType: string; body: any }>;
  refused: number;
  failing: boolean;
  stop(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const r: Receiver = { url: '', accepted: [], refused: 0, failing: false, stop: async () => {} };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (r.failing) {
        r.refused++;
        res.writeHead(503).end();
        return;
      }
      r.accepted.push({ path: req.url ?? '', contentType: String(req.headers['content-type'] ?? ''), body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  r.url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  r.stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return r;
}

interface Fixture {
  work: string;
  reg: LocalRegistry;
  host: string;
  base: BuiltImage;
  base2: BuiltImage;
  appA: BuiltImage;
  appA2: BuiltImage;
  appB: BuiltImage;
  catalogFile: string;
  dbFile: string;
  ownersFile: string;
}

async function fixture(): Promise<Fixture> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-watch-'));
  const reg = await startLocalRegistry({ dir: path.join(work, 'registry') });
  const host = reg.host;
  const baseLayer: FileSpec[] = [debian12OsRelease, { path: 'var/lib/dpkg/status', content: baseStatus }];
  const base = await buildImage({ layers: [baseLayer], created: '2024-01-01T00:00:00Z' });
  const base2Layer: FileSpec[] = [debian12OsRelease, { path: 'var/lib/dpkg/status', content: `${dpkgEntry('libc6', '2.36-9+deb12u7', 'glibc')}\n${dpkgEntry('bash', '5.2.15-2+b7', 'bash (5.2.15-2)')}` }];
  const base2 = await buildImage({ layers: [base2Layer], created: '2024-06-01T00:00:00Z' });
  const app = (extra: string, n: string, owner: string | null) => buildImage({ layers: [baseLayer, [{ path: 'var/lib/dpkg/status', content: `${baseStatus}\n${extra}` }, { path: `app/${n}`, content: n }]], ...(owner ? { labels: { 'org.opencontainers.image.authors': owner } } : {}) });
  const appA = await app(dpkgEntry('curl', '7.88.1-10+deb12u5'), 'a', 'team-a@example.com');
  const appA2 = await app(dpkgEntry('curl', '7.88.1-10+deb12u8'), 'a2', 'team-a@example.com');
  // app-b has no owner label: the owners file routes it by repository.
  const appB = await app(dpkgEntry('openssl', '3.0.11-1~deb12u2'), 'b', null);
  await copyImage(base.source, await openDestination(`${host}/base/debian:12`));
  await copyImage(appA.source, await openDestination(`${host}/team/app-a:1`));
  await copyImage(appB.source, await openDestination(`${host}/team/app-b:1`));
  const catalog = emptyCatalog();
  catalog.bases.push({ name: `${host}/base/debian`, tag: '12', digest: base.descriptor.digest, diffIds: base.diffIds, chainIds: chainIds(base.diffIds), status: 'approved', line: 'debian-12', created: '2024-01-01T00:00:00Z' });
  const catalogFile = path.join(work, 'catalog.yaml');
  await saveCatalog(catalogFile, catalog);
  const dbFile = path.join(work, 'vuln.db');
  await importAdvisories(dbFile, path.join(work, 'osv0'), [osv('DEBIAN-CVE-2024-0001', 'curl', '7.88.1-10+deb12u6', CRIT)]);
  const ownersFile = path.join(work, 'owners.yaml');
  await writeFile(ownersFile, `owners:\n  - repositories: "${host}/team/app-b"\n    contact: team-b\n`);
  return { work, reg, host, base, base2, appA, appA2, appB, catalogFile, dbFile, ownersFile };
}

function backendSuite(name: string, target: () => Promise<string>) {
  describe(`watch on ${name}`, () => {
    let f: Fixture;
    let store: string;
    let rx: Receiver;
    before(async () => {
      f = await fixture();
      store = await target();
      rx = await startReceiver();
    });
    after(async () => {
      await rx?.stop();
      await f?.reg.stop();
      await rm(f?.work ?? '/nonexistent', { recursive: true, force: true });
    });

    const watch = (extra: string[] = [], env: NodeJS.ProcessEnv = {}) =>
      runPlinth(['watch', '--once', '--format', 'json', '--store', store, '--db', f.dbFile, '--catalog', f.catalogFile, '--owners', f.ownersFile, '--notify', `${rx.url}/hook`, '--watch-tag', `${f.host}/team/app-a:1`, '--watch-tag', `${f.host}/team/app-b:1`, ...extra], { env: { PLINTH_NOTIFY_BACKOFF_MS: '20', PLINTH_WATCH_SUPERVISE_SECONDS: '1', PLINTH_WATCH_POLL_SECONDS: '0.5', PLINTH_WATCH_RETRIES: '1', ...env } });

    const open = async <T>(fn: (s: MetaStore) => Promise<T>): Promise<T> => {
      const s = await MetaStore.open(store);
      try {
        return await fn(s);
      } finally {
        await s.close();
      }
    };

    test('scanned apps, a first run: nothing new to tell, tags recorded', async () => {
      for (const app of ['app-a', 'app-b']) {
        const r = await runPlinth(['scan', `${f.host}/team/${app}:1`, '--db', f.dbFile, '--catalog', f.catalogFile, '--store', store, '--format', 'json']);
        assert.equal(r.code, 0, r.stderr);
      }
      const r = await watch();
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(rx.accepted.length, 0, 'nothing new on a first run');
      await open(async (s) => {
        const tags = await s.tagHistory({ repository: `${f.host}/team/app-a` });
        assert.equal(tags.length, 1);
        assert.equal(tags[0]!.digest, f.appA.descriptor.digest);
        // The apps' curl finding from the scan is there; the re-match of an unchanged database changed nothing.
        const fs = await s.findings({ uri: `${f.host}/team/app-a@${f.appA.descriptor.digest}` });
        assert.deepEqual(fs.map((x) => x.id), ['DEBIAN-CVE-2024-0001']);
      });
    });

    test('a new advisory: one new finding per affected digest, one CloudEvent per owner, none on a second run', async () => {
      // bash is in the base layer: both apps are affected.
      await importAdvisories(f.dbFile, path.join(f.work, 'osv1'), [osv('DEBIAN-CVE-2024-7777', 'bash', '5.2.15-2+b7', CRIT, '2024-07-01T00:00:00Z')]);
      const r = await watch();
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const jobs = JSON.parse(r.stdout);
      const summary = name === 'sqlite' ? jobs.jobs.find((j: any) => j.kind === 'rematch').summary : '';
      if (name === 'sqlite') assert.match(summary, /^incremental .*2 image\(s\), 2 new, 0 resolved/);
      await open(async (s) => {
        for (const app of [f.appA, f.appB]) {
          const repo = app === f.appA ? 'app-a' : 'app-b';
          const found = await s.findings({ uri: `${f.host}/team/${repo}@${app.descriptor.digest}`, id: 'DEBIAN-CVE-2024-7777' });
          assert.equal(found.length, 1, `${repo}: one new finding`);
          assert.equal(found[0]!.package, 'bash');
          assert.equal(found[0]!.fixedVersion, '5.2.15-2+b7');
          const img = (await s.images({ digest: app.descriptor.digest }))[0]!;
          assert.equal(img.vulnerabilities?.bySeverity.CRITICAL, repo === 'app-a' ? 2 : 1, 'the summary follows the re-match');
        }
      });
      assert.equal(rx.accepted.length, 2, JSON.stringify(rx.accepted.map((a) => a.body.subject)));
      const bySubject = new Map(rx.accepted.map((a) => [a.body.subject, a]));
      for (const [owner, digest] of [['team-a@example.com', f.appA.descriptor.digest], ['team-b', f.appB.descriptor.digest]] as const) {
        const m = bySubject.get(owner);
        assert.ok(m, `a message for ${owner}`);
        assert.match(m.contentType, /^application\/cloudevents\+json/);
        assert.equal(m.body.specversion, '1.0');
        assert.equal(m.body.type, 'dev.plinth.finding.new');
        assert.equal(m.body.data.events.length, 1);
        assert.equal(m.body.data.events[0].data.vulnerability.id, 'DEBIAN-CVE-2024-7777');
        assert.equal(m.body.data.events[0].data.image.digest, digest);
      }
      const again = await watch();
      assert.equal(again.code, 0, again.stderr);
      assert.equal(rx.accepted.length, 2, 'nothing is told twice');
    });

    test('a fixed advisory resolves the finding; a withdrawn one too', async () => {
      // The curl advisory now says fixed in the very version app-a has: the finding goes.
      await importAdvisories(f.dbFile, path.join(f.work, 'osv2'), [
        osv('DEBIAN-CVE-2024-0001', 'curl', '7.88.1-10+deb12u5', CRIT, '2024-08-01T00:00:00Z'),
        { ...osv('DEBIAN-CVE-2024-7777', 'bash', '5.2.15-2+b7', CRIT, '2024-08-01T00:00:00Z'), withdrawn: '2024-08-01T00:00:00Z' },
      ]);
      const r = await watch();
      assert.equal(r.code, 0, r.stderr);
      await open(async (s) => {
        const open = await s.findings({ uri: `${f.host}/team/app-a@${f.appA.descriptor.digest}`, id: 'DEBIAN-CVE-2024-0001' });
        assert.equal(open.length, 0);
        const all = await s.findings({ uri: `${f.host}/team/app-a@${f.appA.descriptor.digest}`, id: 'DEBIAN-CVE-2024-0001', includeResolved: true });
        assert.equal(all.length, 1);
        assert.ok(all[0]!.resolved, 'kept as resolved');
        const bUri = `${f.host}/team/app-b@${f.appB.descriptor.digest}`;
        assert.equal((await s.findings({ uri: bUri, id: 'DEBIAN-CVE-2024-7777' })).length, 0, 'withdrawn: resolved');
        const img = (await s.images({ digest: f.appB.descriptor.digest }))[0]!;
        assert.equal(img.vulnerabilities?.total, 0, 'the summary follows');
      });
    });

    test('the base superseded: both apps behind by one version, told with the rebase command', async () => {
      await copyImage(f.base2.source, await openDestination(`${f.host}/base/debian:12`));
      const cat = await loadCatalog(f.catalogFile);
      const v1 = cat.bases[0]!;
      v1.status = 'superseded';
      v1.supersededAt = new Date(Date.now() - 3 * 86_400_000).toISOString();
      cat.bases.push({ name: `${f.host}/base/debian`, tag: '12', digest: f.base2.descriptor.digest, diffIds: f.base2.diffIds, chainIds: chainIds(f.base2.diffIds), status: 'approved', line: 'debian-12', created: '2024-06-01T00:00:00Z' });
      await saveCatalog(f.catalogFile, cat);
      const before = rx.accepted.length;
      const r = await watch();
      assert.equal(r.code, 0, r.stderr);
      const msgs = rx.accepted.slice(before).filter((m) => m.body.type === 'dev.plinth.base.superseded');
      assert.equal(msgs.length, 2, 'one message per owner');
      for (const m of msgs) {
        const e = m.body.data.events[0];
        assert.equal(e.data.base.digest, f.base.descriptor.digest);
        assert.equal(e.data.behind.versions, 1);
        assert.equal(e.data.behind.days, 3);
        assert.match(e.data.rebase, new RegExp(`^plinth rebase ${f.host.replace(/[.]/g, '\\.')}/team/app-[ab]:1 --new-base ${f.host.replace(/[.]/g, '\\.')}/base/debian:12@${f.base2.descriptor.digest} --in-place$`));
      }
      await open(async (s) => {
        const rows = await s.sql.all<{ uri: string; behind: number; behind_versions: number; base_status: string }>('SELECT uri, behind, behind_versions, base_status FROM images WHERE base_digest = ? ORDER BY uri', [f.base.descriptor.digest]);
        assert.equal(rows.length, 2);
        for (const x of rows) assert.deepEqual([x.behind, x.behind_versions, x.base_status], [1, 1, 'superseded']);
      });
      const again = await watch();
      assert.equal(again.code, 0);
      assert.equal(rx.accepted.filter((m) => m.body.type === 'dev.plinth.base.superseded').length, 2, 'told once');
    });

    test('a watched tag moved: recorded, scanned in the same run, told', async () => {
      await copyImage(f.appA2.source, await openDestination(`${f.host}/team/app-a:1`));
      const before = rx.accepted.length;
      const r = await watch();
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const moved = rx.accepted.slice(before).filter((m) => m.body.type === 'dev.plinth.tag.moved' || m.body.data.types.includes('dev.plinth.tag.moved'));
      assert.equal(moved.length, 1);
      const e = moved[0]!.body.data.events.find((x: any) => x.type === 'dev.plinth.tag.moved');
      assert.deepEqual([e.data.from, e.data.to], [f.appA.descriptor.digest, f.appA2.descriptor.digest]);
      await open(async (s) => {
        const tags = await s.tagHistory({ repository: `${f.host}/team/app-a`, tag: '1' });
        assert.deepEqual(tags.map((t) => t.digest).sort(), [f.appA.descriptor.digest, f.appA2.descriptor.digest].sort());
        const img = (await s.images({ digest: f.appA2.descriptor.digest }))[0];
        assert.ok(img?.scannedAt, 'the new digest was scanned in the same run');
      });
    });

    test('a receiver that fails, then recovers, gets each fact once', async () => {
      await importAdvisories(f.dbFile, path.join(f.work, 'osv3'), [osv('DEBIAN-CVE-2024-8888', 'glibc', null, CRIT, '2024-09-01T00:00:00Z')]);
      rx.failing = true;
      const failed = await watch([], { PLINTH_NOTIFY_ATTEMPTS: '3' });
      assert.equal(failed.code, 1, 'a run that could not deliver fails');
      assert.ok(rx.refused >= 3, `retried (${rx.refused} refused)`);
      const j = JSON.parse(failed.stdout);
      assert.match(j.jobs.find((x: any) => x.kind === 'notify')?.summary ?? '', /not delivered, kept for the next run.*HTTP 503/);
      rx.failing = false;
      const before = rx.accepted.length;
      const ok = await watch();
      assert.equal(ok.code, 0, ok.stderr + ok.stdout);
      const got = rx.accepted.slice(before).flatMap((m) => m.body.data.events).filter((e: any) => e.data.vulnerability?.id === 'DEBIAN-CVE-2024-8888');
      // app-a (new digest) and app-b carry glibc; the old app-a digest no longer runs under a watched tag but is in a watched repository.
      const digests = got.map((e: any) => e.data.image.digest).sort();
      assert.equal(new Set(digests).size, digests.length, 'each fact once');
      assert.ok(digests.includes(f.appB.descriptor.digest));
      assert.ok(digests.includes(f.appA2.descriptor.digest));
      const third = await watch();
      assert.equal(third.code, 0);
      const after3 = rx.accepted.slice(before).flatMap((m) => m.body.data.events).filter((e: any) => e.data.vulnerability?.id === 'DEBIAN-CVE-2024-8888');
      assert.equal(after3.length, got.length, 'no duplicate after recovery');
    });
  });
}

describe('watch', () => {
  let pg: Postgres;
  let dir: string;
  before(async () => {
    pg = await startPostgres();
    dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-watch-files-'));
  });
  after(async () => {
    await pg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  backendSuite('sqlite', async () => path.join(dir, `store-${Math.random().toString(36).slice(2)}.db`));
  backendSuite('postgres', () => pg.createDatabase());

  test('library: Ubuntu LTS images are re-matched incrementally; a damaged stored unit leaves its findings alone', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-watch-lib-'));
    try {
      const dbFile = path.join(work, 'vuln.db');
      const ubuntu = (id: string, pkg: string) => ({ id, modified: '2024-05-01T00:00:00Z', summary: id, affected: [{ package: { ecosystem: 'Ubuntu:22.04:LTS', name: pkg }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '7.81.0-1ubuntu1.99' }] }] }], severity: [{ type: 'CVSS_V3', score: CRIT }] });
      await importAdvisories(dbFile, path.join(work, 'a0'), [ubuntu('UBUNTU-CVE-2024-0001', 'openssl'), osv('DEBIAN-CVE-2024-0002', 'zlib', '1:1.2.13.dfsg-2', CRIT)]);
      const s = await MetaStore.open(path.join(work, 'store.db'));
      const { packageIndex } = await import('../src/store/ingest.js');
      const ub = 'registry.example/u/app@sha256:' + 'a'.repeat(64);
      const deb = 'registry.example/d/app@sha256:' + 'b'.repeat(64);
      await s.recordImage({ image: { repository: 'registry.example/u/app', registry: 'registry.example', tag: null, digest: 'sha256:' + 'a'.repeat(64) }, source: 'test', ecosystem: 'Ubuntu:22.04:LTS', packageIndex: packageIndex({ ecosystem: 'Ubuntu:22.04:LTS', packages: [{ name: 'curl', version: '7.81.0-1ubuntu1.15', type: 'deb', source: 'curl' } as any] }) });
      await s.recordImage({ image: { repository: 'registry.example/d/app', registry: 'registry.example', tag: null, digest: 'sha256:' + 'b'.repeat(64) }, source: 'test', ecosystem: 'Debian:12', packageIndex: packageIndex({ ecosystem: 'Debian:12', packages: [{ name: 'zlib1g', version: '1:1.2.13.dfsg-1', type: 'deb', source: 'zlib' } as any] }) });
      const { openStore: openVuln } = await import('../src/vuln/store.js');
      const first = await (async () => { const db = openVuln(dbFile, { readonly: true }); try { return await rematch(s, db); } finally { db.close(); } })();
      assert.equal(first.mode, 'full');
      assert.equal((await s.findings({ uri: deb })).length, 1);
      // A new Ubuntu advisory: the incremental run finds the LTS image.
      await importAdvisories(dbFile, path.join(work, 'a1'), [ubuntu('UBUNTU-CVE-2024-0003', 'curl')]);
      const inc = await (async () => { const db = openVuln(dbFile, { readonly: true }); try { return await rematch(s, db); } finally { db.close(); } })();
      assert.equal(inc.mode, 'incremental');
      assert.deepEqual((await s.findings({ uri: ub })).map((f) => f.id), ['UBUNTU-CVE-2024-0003']);
      // A damaged unit: skipped, its finding stays open, the summary stays.
      await s.sql.run("UPDATE package_index SET packages = '[null]', findings = NULL WHERE resource_uri = ?", [deb]);
      const full = await (async () => { const db = openVuln(dbFile, { readonly: true }); try { return await rematch(s, db, { mode: 'full' }); } finally { db.close(); } })();
      assert.equal(full.skippedUnits, 1);
      assert.equal((await s.findings({ uri: deb })).length, 1, 'still open');
      await s.close();
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  test('library: a full re-match compares only units whose inputs moved: an advisory rescored and retitled (same ranges) updates its findings; nothing changed, nothing compared', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-watch-stamp-'));
    try {
      const dbFile = path.join(work, 'vuln.db');
      await importAdvisories(dbFile, path.join(work, 'a0'), [osv('DEBIAN-CVE-2024-0100', 'zlib', '1:1.2.13.dfsg-2', CRIT), osv('DEBIAN-CVE-2024-0101', 'curl', null, CRIT)]);
      const s = await MetaStore.open(path.join(work, 'store.db'));
      const { packageIndex } = await import('../src/store/ingest.js');
      const uris: string[] = [];
      for (const n of [1, 2]) {
        uris.push(`registry.example/stamp/app-${n}@sha256:${String(n).repeat(64)}`);
        await s.recordImage({ image: { repository: `registry.example/stamp/app-${n}`, registry: 'registry.example', tag: null, digest: `sha256:${String(n).repeat(64)}` }, source: 'test', ecosystem: 'Debian:12', packageIndex: packageIndex({ ecosystem: 'Debian:12', packages: [{ name: 'zlib1g', version: '1:1.2.13.dfsg-1', type: 'deb', source: 'zlib' }, { name: 'curl', version: '7.88.1-10', type: 'deb', source: 'curl' }, { name: `own-${n}`, version: '1.0-1', type: 'deb', source: `own-${n}` }] as any }) });
      }
      const run = async () => { const db = openStore(dbFile, { readonly: true }); try { return await rematch(s, db, { mode: 'full' }); } finally { db.close(); } };
      const first = await run();
      assert.deepEqual([first.newFindings, first.comparedUnits, first.units], [4, 6, 6]);
      const again = await run();
      assert.deepEqual([again.newFindings, again.updatedFindings, again.resolvedFindings, again.comparedUnits], [0, 0, 0, 0]);
      // The zlib advisory rescored (CRITICAL → LOW) and retitled, its range as it was: both images' zlib findings move, nothing else.
      await importAdvisories(dbFile, path.join(work, 'a1'), [{ ...osv('DEBIAN-CVE-2024-0100', 'zlib', '1:1.2.13.dfsg-2', 'CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N', '2024-06-01T00:00:00Z'), summary: 'zlib: rescored' }]);
      const moved = await run();
      assert.deepEqual([moved.newFindings, moved.updatedFindings, moved.resolvedFindings, moved.comparedUnits, moved.changedImages.sort()], [0, 2, 0, 2, [...uris].sort()]);
      for (const uri of uris) {
        const zlib = (await s.findings({ uri })).find((f) => f.id === 'DEBIAN-CVE-2024-0100')!;
        assert.equal(zlib.severity, 'LOW');
        assert.equal(zlib.title, 'zlib: rescored');
        assert.equal((await s.findings({ uri })).find((f) => f.id === 'DEBIAN-CVE-2024-0101')!.severity, 'CRITICAL');
      }
      assert.deepEqual((await s.images()).map((i) => i.vulnerabilities?.bySeverity.LOW), [1, 1]);
      // A stored unit whose recorded stamp is not this run's (another Plinth wrote it): compared, and found unchanged.
      await s.sql.run("UPDATE package_index SET findings = 'stale' WHERE source = 'curl'");
      const stale = await run();
      assert.deepEqual([stale.comparedUnits, stale.newFindings, stale.updatedFindings, stale.resolvedFindings], [2, 0, 0, 0]);
      assert.equal((await run()).comparedUnits, 0);
      await s.close();
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  test('library: the outbox forgets facts past its retention (with their deliveries); a change log pruned past the last run makes the next re-match a full one', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-watch-prune-'));
    try {
      const s = await MetaStore.open(path.join(work, 'store.db'));
      const { addEvents, pruneEvents, undelivered, targetKey } = await import('../src/watch/state.js');
      const fact = (key: string) => ({ type: 'dev.plinth.finding.new', key, subject: `registry.example/x@sha256:${key}`, repository: 'registry.example/x', owner: null, data: {}, text: key });
      await s.sql.transaction((tx) => addEvents(tx, Array.from({ length: 5200 }, (_, i) => fact(`old-${i}`)), '2024-01-01T00:00:00Z'));
      const now = new Date().toISOString();
      await s.sql.transaction((tx) => addEvents(tx, [fact('new-1'), fact('new-2')], now));
      // Some old facts and one new one were delivered.
      const { eventKey } = await import('../src/watch/state.js');
      for (const k of ['old-1', 'old-2', 'new-1']) await s.sql.run('INSERT INTO deliveries (event_key, target, delivered_at) VALUES (?, ?, ?)', [eventKey(k), targetKey('https://rx.example/'), now]);
      assert.equal(await pruneEvents(s, new Date(Date.now() - 86_400_000).toISOString()), 5200);
      assert.deepEqual((await s.sql.all<{ text: string }>('SELECT text FROM events ORDER BY text')).map((r) => r.text), ['new-1', 'new-2']);
      assert.deepEqual((await s.sql.all<{ n: number | string }>('SELECT COUNT(*) AS n FROM deliveries')).map((r) => Number(r.n)), [1]);
      assert.deepEqual((await undelivered(s, 'https://rx.example/')).map((e) => e.text), ['new-2']);
      assert.equal(await pruneEvents(s, new Date(Date.now() - 86_400_000).toISOString()), 0);
      const bad = await runPlinth(['watch', '--once', '--store', path.join(work, 'store.db'), '--event-retention', '3 weeks']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--event-retention must be a duration such as 30s, 15m, 24h or 7d, got "3 weeks"/);

      // The advisory database's change log, pruned to its newest row.
      const dbFile = path.join(work, 'vuln.db');
      await importAdvisories(dbFile, path.join(work, 'a0'), [osv('DEBIAN-CVE-2024-0200', 'zlib', '1:1.2.13.dfsg-2', CRIT)]);
      const { packageIndex } = await import('../src/store/ingest.js');
      await s.recordImage({ image: { repository: 'registry.example/prune/app', registry: 'registry.example', tag: null, digest: 'sha256:' + 'e'.repeat(64) }, source: 'test', ecosystem: 'Debian:12', packageIndex: packageIndex({ ecosystem: 'Debian:12', packages: [{ name: 'zlib1g', version: '1:1.2.13.dfsg-1', type: 'deb', source: 'zlib' }, { name: 'curl', version: '7.88.1-10', type: 'deb', source: 'curl' }] as any }) });
      const run = async () => { const db = openStore(dbFile, { readonly: true }); try { return await rematch(s, db); } finally { db.close(); } };
      assert.equal((await run()).mode, 'full');
      await importAdvisories(dbFile, path.join(work, 'a1'), [osv('DEBIAN-CVE-2024-0201', 'curl', null, CRIT)]);
      const vs = openStore(dbFile);
      const before = vs.changeSeq();
      assert.ok(vs.pruneChangeLog(0) >= 1);
      assert.equal(vs.changeSeq(), before, 'the sequence goes on');
      assert.equal(vs.changeLogFloor(), before);
      vs.close();
      const next = await run();
      assert.equal(next.mode, 'full');
      assert.match(next.reason, /pruned/);
      assert.equal(next.newFindings, 1, 'the curl advisory is found all the same');
      // Caught up: incremental again.
      await importAdvisories(dbFile, path.join(work, 'a2'), [osv('DEBIAN-CVE-2024-0202', 'curl', null, CRIT)]);
      const inc = await run();
      assert.deepEqual([inc.mode, inc.newFindings], ['incremental', 1]);
      await s.close();
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  test('library: a full re-match shared with worker processes (plinth __match-units) records exactly what one process does', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-watch-par-'));
    try {
      const dbFile = path.join(work, 'vuln.db');
      const sources = Array.from({ length: 40 }, (_, i) => `src${i}`);
      // Half the sources affected, some fixed above what is installed, some without a fix.
      await importAdvisories(dbFile, path.join(work, 'a0'), sources.filter((_, i) => i % 2 === 0).map((src, i) => osv(`DEBIAN-CVE-2024-${1000 + i}`, src, i % 3 ? '2.0-1' : null, CRIT)));
      const { packageIndex } = await import('../src/store/ingest.js');
      const seed = async (file: string) => {
        const s = await MetaStore.open(file);
        for (let n = 0; n < 12; n++) {
          // Three shared bases of 10 sources, and 4 sources of each image's own.
          const mine = [...sources.slice((n % 3) * 10, (n % 3) * 10 + 10), ...sources.slice(30 + (n % 10), 34 + (n % 10)).filter(Boolean)];
          await s.recordImage({ image: { repository: `registry.example/par/app-${n}`, registry: 'registry.example', tag: null, digest: `sha256:${n.toString(16).padStart(64, '0')}` }, source: 'test', ecosystem: 'Debian:12', packageIndex: packageIndex({ ecosystem: 'Debian:12', packages: mine.map((src) => ({ name: `bin-${src}`, version: '1.0-1', type: 'deb', source: src }) as any) }) });
        }
        return s;
      };
      const one = await seed(path.join(work, 'one.db'));
      const par = await seed(path.join(work, 'par.db'));
      const command = [process.execPath, path.join(repoRoot(), 'bin', 'plinth.cjs')];
      const db = openStore(dbFile, { readonly: true });
      try {
        const a = await rematch(one, db, { mode: 'full' });
        const b = await rematch(par, db, { mode: 'full', parallel: { command, workers: 2, minUnits: 1 } });
        assert.equal(b.parallel, 3, 'both workers answered');
        assert.ok(a.newFindings > 20, String(a.newFindings));
        assert.deepEqual([b.newFindings, b.units, b.images], [a.newFindings, a.units, a.images]);
        const facts = async (s: MetaStore) => (await s.findings({})).map((f) => `${f.uri} ${f.id} ${f.package} ${f.installedVersion} ${f.fixedVersion} ${f.severity}`).sort();
        assert.deepEqual(await facts(par), await facts(one));
        assert.deepEqual((await par.images()).map((i) => i.vulnerabilities), (await one.images()).map((i) => i.vulnerabilities));
        // Nothing changed: the workers send back fingerprints only, and nothing is written.
        const again = await rematch(par, db, { mode: 'full', parallel: { command, workers: 2, minUnits: 1 } });
        assert.deepEqual([again.parallel, again.newFindings, again.resolvedFindings, again.updatedFindings], [3, 0, 0, 0]);
        // A worker that cannot start leaves its share to this process: the same answer.
        const broken = await rematch(par, db, { mode: 'full', parallel: { command: [path.join(work, 'no-such-plinth')], workers: 2, minUnits: 1 } });
        assert.deepEqual([broken.parallel, broken.newFindings, broken.resolvedFindings, broken.updatedFindings], [1, 0, 0, 0]);
      } finally {
        db.close();
        await one.close();
        await par.close();
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  test('library: findings a scan records after the first sweep are told; an owner\'s own target is reached past thousands of unrouted events', async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-watch-lib-'));
    const rx2 = await startReceiver();
    try {
      const s = await MetaStore.open(path.join(work, 'store.db'));
      const { sweepNewFindings } = await import('../src/watch/rematch.js');
      const { addEvents } = await import('../src/watch/state.js');
      const { notifyOwners } = await import('../src/watch/notify.js');
      const { vulnerabilityOccurrence } = await import('../src/store/ingest.js');
      const digest = 'sha256:' + 'c'.repeat(64);
      const uri = `registry.example/payments/api@${digest}`;
      await s.recordDeployments([{ cluster: 'prod', namespace: 'pay', kind: 'Deployment', name: 'api', container: 'api', image: uri, digest, repository: 'registry.example/payments/api', tag: null, at: new Date().toISOString(), via: 'inventory' }]);
      const finding = (id: string) => vulnerabilityOccurrence({ id, aliases: [], package: 'zlib1g', source: 'zlib', installedVersion: '1', sourceVersion: '1', fixedVersion: '2', status: 'fixed', severity: 'CRITICAL', severitySource: 'cvss', title: id, ecosystem: 'Debian:12', layer: null, layerIndex: null, origin: 'base', pkgType: 'deb' } as any);
      const record = (id: string) => { const x = finding(id); return s.recordImage({ image: { repository: 'registry.example/payments/api', registry: 'registry.example', tag: null, digest }, source: 'scan', notes: [x.note], occurrences: [x.occurrence] }); };
      await record('CVE-2024-1000');
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(await sweepNewFindings(s), 0, 'the first sweep starts the clock');
      await new Promise((r) => setTimeout(r, 5));
      await record('CVE-2024-2000');
      assert.equal(await sweepNewFindings(s), 1, 'a finding recorded since is a fact');
      assert.equal(await sweepNewFindings(s), 0, 'once');
      // 6,000 facts about other owners that no target takes, then the payments one.
      await s.sql.transaction((tx) => addEvents(tx, Array.from({ length: 6000 }, (_, i) => ({ type: 'dev.plinth.finding.new', key: `other-${i}`, subject: `registry.example/other/x@sha256:${i}`, repository: 'registry.example/other/x', owner: 'other', data: {}, text: 'x' })), '2024-01-01T00:00:00Z'));
      const owners = { apiVersion: 'plinth.dev/v1alpha1' as const, kind: 'Owners' as const, owners: [{ repositories: ['registry.example/payments/**'], contact: 'payments', notify: [`${rx2.url}/payments`] }] };
      const r = await notifyOwners(s, { targets: [], owners, backoffMs: 10 });
      assert.equal(r.messages, 1);
      assert.equal(rx2.accepted.length, 1);
      assert.equal(rx2.accepted[0]!.body.subject, 'payments');
      assert.equal(rx2.accepted[0]!.body.data.events[0].data.vulnerability.id, 'CVE-2024-2000');
      const again = await notifyOwners(s, { targets: [], owners, backoffMs: 10 });
      assert.equal(again.messages, 0);
      await s.close();
    } finally {
      await rx2.stop();
      await rm(work, { recursive: true, force: true });
    }
  });

  /** `n` stored images, each with zlib (affected by the advisory) and a package of its own, running in a cluster. */
  async function fleet(url: string, n: number): Promise<{ s: MetaStore; uris: string[] }> {
    const s = await MetaStore.open(url);
    const uris: string[] = [];
    for (let i = 0; i < n; i++) {
      const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
      const repository = `registry.example/fleet/app-${i % 37}`;
      uris.push(`${repository}@${digest}`);
      await s.recordImage({
        image: { repository, registry: 'registry.example', tag: null, digest },
        source: 'test',
        ecosystem: 'Debian:12',
        packageCount: 2,
        packageIndex: [
          { ecosystem: 'Debian:12', source: 'zlib', packages: [{ name: 'zlib1g', version: '1:1.2.13.dfsg-1', type: 'deb', source: 'zlib' }] },
          { ecosystem: 'Debian:12', source: `own-${i}`, packages: [{ name: `own-${i}`, version: '1.0-1', type: 'deb' }] },
        ],
      });
    }
    await s.recordDeployments(uris.map((u, i) => ({ cluster: 'prod', namespace: 'ns', kind: 'Deployment', name: `app-${i}`, container: 'c', image: u, digest: u.slice(u.indexOf('@') + 1), repository: u.slice(0, u.indexOf('@')), tag: null, at: new Date().toISOString(), via: 'inventory' })));
    return { s, uris };
  }

  /** Worker processes (`plinth watch` on the queue, schedules off); their stderr in logs[i]. */
  function startWorkers(url: string, dbFile: string, n: number, env: NodeJS.ProcessEnv, extra: string[][] = []): { procs: ChildProcess[]; logs: string[] } {
    const procs: ChildProcess[] = [];
    const logs: string[] = [];
    for (let w = 0; w < n; w++) {
      logs.push('');
      const c = plinthCommand(['watch', '--store', url, '--db', dbFile, '--no-rescan', '--schedule', 'discover=none', '--schedule', 'rematch=none', '--schedule', 'drift=none', '--schedule', 'notify=none', '--concurrency', '4', ...(extra[w] ?? [])], { ...process.env, ...env });
      const p = spawn(c.file, c.args, { env: c.env, stdio: ['ignore', 'ignore', 'pipe'] });
      p.stderr!.setEncoding('utf8').on('data', (d: string) => (logs[w] += d));
      procs.push(p);
    }
    return { procs, logs };
  }

  async function waitCompleted(q: QueueRunner, atLeast: number, logs: string[]): Promise<void> {
    const until = Date.now() + 120_000;
    for (;;) {
      const c = await q.counts().catch(() => ({}) as Record<string, Record<string, number>>);
      if ((c['plinth-rematch-image']?.completed ?? 0) >= atLeast) return;
      assert.ok(Date.now() < until, `no progress: ${JSON.stringify(c)}\n${logs.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function assertOnce(s: MetaStore, n: number): Promise<void> {
    const f = await s.sql.get<{ n: number; d: number }>("SELECT COUNT(*) AS n, COUNT(DISTINCT resource_uri) AS d FROM occurrences WHERE kind = 'VULNERABILITY' AND subject = 'DEBIAN-CVE-2024-4242' AND resolve_time IS NULL");
    assert.deepEqual([Number(f?.n), Number(f?.d)], [n, n], 'one finding per image');
    const e = await s.sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM events WHERE type = 'dev.plinth.finding.new'");
    assert.equal(Number(e?.n), n, 'one event per image');
  }

  test('postgres: two workers share 1,000 jobs through the queue, one killed mid-run; each job done once, a poisoned one parked; /metrics', async () => {
    const url = await pg.createDatabase();
    const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-watch-q-'));
    const dbFile = path.join(work, 'vuln.db');
    await importAdvisories(dbFile, path.join(work, 'osv'), [osv('DEBIAN-CVE-2024-4242', 'zlib', '1:1.2.13.dfsg-2', CRIT)]);
    const { s, uris } = await fleet(url, 1000);
    const env = { PLINTH_WATCH_SUPERVISE_SECONDS: '1', PLINTH_WATCH_HEARTBEAT_SECONDS: '10', PLINTH_WATCH_POLL_SECONDS: '0.5', PLINTH_WATCH_RETRIES: '1' };
    const { procs, logs } = startWorkers(url, dbFile, 2, env, [[], ['--metrics-port', '0']]);
    const producer = new QueueRunner({ store: s, dbPath: dbFile, registry: {} }, url, { noWork: true, superviseSeconds: 1, retryLimit: 1 });
    try {
      await producer.start();
      await producer.sendMany('rematch-image', uris.map((uri) => ({ key: uri, data: { uri } })));
      // A poisoned job: a reference that is not one.
      await producer.send('rescan', { ref: 'not a reference!!' }, 'poison');
      await waitCompleted(producer, 100, logs);
      procs[0]!.kill('SIGKILL');
      await producer.idle(['rematch-image', 'rescan'], 240_000);
      const c = await producer.counts();
      assert.equal(c['plinth-rematch-image']?.completed, 1000, JSON.stringify(c));
      assert.equal(c['plinth-rematch-image']?.failed ?? 0, 0);
      assert.equal(c['plinth-rescan']?.failed, 1, 'the poisoned job failed after its retries');
      assert.equal(c['plinth-parked']?.created ?? 0, 1, 'and was parked with its error');
      const parked = await s.sql.get<{ output: string | null; retry_count: number }>("SELECT output::text AS output, retry_count FROM plinth_jobs.job WHERE name = 'plinth-rescan'");
      assert.match(parked?.output ?? '', /not a reference|invalid/i);
      assert.equal(Number(parked?.retry_count), 1, 'retried a bounded number of times');
      // The killed worker's jobs in hand went to the survivor once their heartbeat stopped.
      const retried = await s.sql.get<{ n: number }>("SELECT COUNT(*) AS n FROM plinth_jobs.job WHERE name = 'plinth-rematch-image' AND retry_count > 0");
      assert.ok(Number(retried?.n) >= 1, 'some jobs were retried after the kill');
      await assertOnce(s, 1000);
      // The survivor's /metrics: jobs by kind and outcome, re-match durations.
      const port = /metrics on :(\d+)\/metrics/.exec(logs[1]!)?.[1];
      assert.ok(port, logs[1]);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const ok = Number(/plinth_watch_jobs_total\{kind="rematch-image",outcome="ok"\} (\d+)/.exec(metrics)?.[1] ?? 0);
      assert.ok(ok > 0 && ok <= 1000, `rematch-image ok: ${ok}`);
      assert.match(metrics, /plinth_watch_jobs_total\{kind="rescan",outcome="failed"\} [12]/);
      assert.match(metrics, /plinth_watch_rematch_duration_seconds_count\{mode="full"\} \d+/);
      assert.match(metrics, /plinth_watch_findings_total\{change="new"\} \d+/);
    } finally {
      for (const w of procs) w.kill('SIGKILL');
      await producer.stop();
      await s.close();
      await rm(work, { recursive: true, force: true });
    }
  });

  test('postgres: restarted under running workers, they reconnect; no job lost or done twice', async () => {
    const url = await pg.createDatabase();
    const work = await mkdtemp(path.join(os.tmpdir(), 'plinth-watch-r-'));
    const dbFile = path.join(work, 'vuln.db');
    await importAdvisories(dbFile, path.join(work, 'osv'), [osv('DEBIAN-CVE-2024-4242', 'zlib', '1:1.2.13.dfsg-2', CRIT)]);
    const { s, uris } = await fleet(url, 300);
    const env = { PLINTH_WATCH_SUPERVISE_SECONDS: '1', PLINTH_WATCH_HEARTBEAT_SECONDS: '10', PLINTH_WATCH_POLL_SECONDS: '0.5', PLINTH_WATCH_RETRIES: '5' };
    const { procs, logs } = startWorkers(url, dbFile, 2, env);
    const producer = new QueueRunner({ store: s, dbPath: dbFile, registry: {} }, url, { noWork: true, superviseSeconds: 1, retryLimit: 5 });
    try {
      await producer.start();
      await producer.sendMany('rematch-image', uris.map((uri) => ({ key: uri, data: { uri } })));
      await waitCompleted(producer, 30, logs);
      await pg.stopServer();
      await new Promise((r) => setTimeout(r, 2000));
      await pg.startServer();
      await producer.idle(['rematch-image'], 120_000).catch(async (e) => {
        throw new Error(`${(e as Error).message}: ${JSON.stringify(await producer.counts().catch(() => null))}\n${logs.map((l) => l.slice(-3000)).join('\n----\n')}`);
      });
      const c = await producer.counts();
      assert.equal(c['plinth-rematch-image']?.completed, 300, JSON.stringify(c));
      assert.equal(procs.filter((p) => p.exitCode !== null).length, 0, `the workers survived the restart\n${logs.join('\n')}`);
      await assertOnce(s, 300);
    } finally {
      for (const w of procs) w.kill('SIGKILL');
      await producer.stop();
      await s.close();
      await rm(work, { recursive: true, force: true });
    }
  });
});
