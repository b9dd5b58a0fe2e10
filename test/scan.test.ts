import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildImage, type BuiltImage, type FileSpec } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination, openSource } from '../src/source/open.js';
import { chainIds } from '../src/provenance/chain.js';
import { emptyCatalog, saveCatalog, type Catalog } from '../src/provenance/catalog.js';
import { openStore, type VulnStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';
import { scan } from '../src/vuln/scan.js';
import { sarif, table } from '../src/vuln/report.js';
import { runPlinth } from './helpers/common.js';
import { debian12OsRelease, dpkgEntry } from './helpers/debian.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const LAYOUT = path.join(root, '.cache', 'deb-layout');


function osv(id: string, pkg: string, events: Array<Record<string, string>>, extra: Record<string, unknown> = {}) {
  return { id, modified: '2024-05-01T00:00:00Z', summary: `${id} in ${pkg}`, affected: [{ package: { ecosystem: 'Debian:12', name: pkg }, ranges: [{ type: 'ECOSYSTEM', events }] }], ...extra };
}

const run = (args: string[]) => runPlinth(args);

describe('scan', () => {
  let work: string;
  let dbPath: string;
  let store: VulnStore;
  let base: BuiltImage;
  let app: BuiltImage;
  let catalog: Catalog;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-scan-'));
    const baseLayer: FileSpec[] = [debian12OsRelease, { path: 'var/lib/dpkg/status', content: `${dpkgEntry('libc6', '2.36-9+deb12u3', 'glibc')}\n${dpkgEntry('libc-bin', '2.36-9+deb12u3', 'glibc')}\n${dpkgEntry('bash', '5.2.15-2+b2', 'bash (5.2.15-2)')}` }];
    base = await buildImage({ layers: [baseLayer], created: '2024-01-01T00:00:00Z' });
    app = await buildImage({
      layers: [baseLayer, [{ path: 'var/lib/dpkg/status', content: `${dpkgEntry('libc6', '2.36-9+deb12u3', 'glibc')}\n${dpkgEntry('libc-bin', '2.36-9+deb12u3', 'glibc')}\n${dpkgEntry('bash', '5.2.15-2+b2', 'bash (5.2.15-2)')}\n${dpkgEntry('curl', '7.88.1-10+deb12u5')}\n${dpkgEntry('libcurl4', '7.88.1-10+deb12u5', 'curl')}` }]],
    });
    catalog = emptyCatalog();
    catalog.bases.push({ name: 'example.com/debian', tag: '12', digest: base.descriptor.digest, diffIds: base.diffIds, chainIds: chainIds(base.diffIds), status: 'approved' });
    const adv = path.join(work, 'osv');
    await mkdir(adv);
    const records = [
      osv('DEBIAN-CVE-2024-2961', 'glibc', [{ introduced: '0' }, { fixed: '2.36-9+deb12u7' }], { severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] }),
      osv('DEBIAN-CVE-2023-0001', 'glibc', [{ introduced: '0' }, { fixed: '2.36-9+deb12u1' }]),
      osv('DEBIAN-CVE-2024-9999', 'curl', [{ introduced: '0' }], { severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N' }] }),
      osv('DEBIAN-CVE-2022-1111', 'bash', [{ introduced: '5.0-1' }, { last_affected: '5.2.15-2' }]),
    ];
    for (const r of records) await writeFile(path.join(adv, `${r.id}.json`), JSON.stringify(r));
    dbPath = path.join(work, 'vuln.db');
    store = openStore(dbPath);
    const rep = await importPaths(store, [adv]);
    assert.equal(rep.errors.length, 0, JSON.stringify(rep.errors));
  });
  after(async () => {
    store?.close();
    await rm(work, { recursive: true, force: true });
  });

  test('findings are matched by source package, reported per binary package, split base/image', async () => {
    const [r] = await scan(app.source, undefined, store, { catalog });
    const got = r!.vulnerabilities.map((v) => `${v.package} ${v.id} ${v.origin} ${v.severity} ${v.fixedVersion ?? '-'}`).sort();
    assert.deepEqual(got, [
      'bash DEBIAN-CVE-2022-1111 base UNKNOWN -',
      'curl DEBIAN-CVE-2024-9999 image MEDIUM -',
      'libc-bin DEBIAN-CVE-2024-2961 base CRITICAL 2.36-9+deb12u7',
      'libc6 DEBIAN-CVE-2024-2961 base CRITICAL 2.36-9+deb12u7',
      'libcurl4 DEBIAN-CVE-2024-9999 image MEDIUM -',
    ]);
    assert.equal(r!.summary.base, 3);
    assert.equal(r!.summary.image, 2);
    assert.equal(r!.base?.digest, base.descriptor.digest);
    const libc = r!.vulnerabilities.find((v) => v.package === 'libc6')!;
    assert.equal(libc.source, 'glibc');
    assert.equal(libc.cvss?.score, 9.8);
    assert.equal(libc.layer, app.diffIds[0]);
    // Without a catalog the base is unknown: origin null, never guessed.
    const [u] = await scan(app.source, undefined, store, { catalog: emptyCatalog() });
    assert.ok(u!.vulnerabilities.every((v) => v.origin === null));
  });

  test('--ignore-unfixed and --severity filter; reports render', async () => {
    const [fixedOnly] = await scan(app.source, undefined, store, { catalog, ignoreUnfixed: true });
    assert.deepEqual([...new Set(fixedOnly!.vulnerabilities.map((v) => v.id))], ['DEBIAN-CVE-2024-2961']);
    const [crit] = await scan(app.source, undefined, store, { catalog, severities: ['CRITICAL', 'HIGH'] });
    assert.ok(crit!.vulnerabilities.every((v) => v.severity === 'CRITICAL'));
    const [all] = await scan(app.source, undefined, store, { catalog });
    const s = sarif([all!]) as { version: string; runs: Array<{ results: Array<{ ruleId: string; level: string }>; tool: { driver: { rules: Array<{ id: string; properties: Record<string, string> }> } } }> };
    assert.equal(s.version, '2.1.0');
    assert.equal(s.runs[0]!.results.length, 5);
    assert.equal(s.runs[0]!.results.find((x) => x.ruleId === 'DEBIAN-CVE-2024-2961')!.level, 'error');
    assert.equal(s.runs[0]!.tool.driver.rules.find((x) => x.id === 'DEBIAN-CVE-2024-2961')!.properties['security-severity'], '9.8');
    const t = table([all!]);
    assert.match(t, /From the base image \(3\)[\s\S]*Added by the image \(2\)/);
  });

  test('an OS without an advisory ecosystem says so instead of reporting nothing silently', async () => {
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID=plan9\nVERSION_ID=4\n' }]] });
    const [r] = await scan(img.source, undefined, store, { catalog });
    assert.equal(r!.vulnerabilities.length, 0);
    assert.ok(r!.notes.some((n) => /no advisory ecosystem/.test(n)), r!.notes.join('\n'));
  });

  test('plinth scan CLI: json, sarif, --exit-code for CI gates, db status', async () => {
    const dir = path.join(work, 'layout');
    await copyImage(app.source, await openDestination(`oci:${dir}:app`));
    const catFile = path.join(work, 'catalog.yaml');
    await saveCatalog(catFile, catalog);
    const j = await run(['scan', `oci:${dir}:app`, '--db', dbPath, '--catalog', catFile, '--format', 'json']);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { vulnerabilities: Array<{ id: string; origin: string }>; summary: { total: number } };
    assert.equal(doc.summary.total, 5);
    const gate = await run(['scan', `oci:${dir}:app`, '--db', dbPath, '--severity', 'CRITICAL', '--exit-code', '3', '--format', 'sarif']);
    assert.equal(gate.code, 3, gate.stderr);
    assert.equal(JSON.parse(gate.stdout).runs[0].results.length, 2);
    const clean = await run(['scan', `oci:${dir}:app`, '--db', dbPath, '--severity', 'LOW', '--exit-code', '3']);
    assert.equal(clean.code, 0, clean.stderr);
    const bad = await run(['scan', `oci:${dir}:app`, '--db', dbPath, '--severity', 'SEVERE']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown severity "SEVERE"/);
    const st = await run(['db', 'status', '--db', dbPath]);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /Debian:12/);
    const missing = await run(['scan', `oci:${dir}:app`, '--db', path.join(work, 'none.db')]);
    assert.equal(missing.code, 1);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);
  });

  test('the debootstrap image: real packages matched by their source names', { skip: existsSync(path.join(LAYOUT, 'index.json')) ? false : 'no .cache/deb-layout (./scripts/setup.sh makes it)' }, async () => {
    const src = await openSource(`oci:${LAYOUT}:deb`);
    const adv = path.join(work, 'osv-real');
    await mkdir(adv);
    await writeFile(path.join(adv, 'a.json'), JSON.stringify(osv('DEBIAN-CVE-2099-0001', 'glibc', [{ introduced: '0' }])));
    const realStore = openStore(path.join(work, 'real.db'));
    await importPaths(realStore, [adv]);
    try {
      const [r] = await scan(src, undefined, realStore, { catalog: emptyCatalog() });
      assert.equal(r!.ecosystem, 'Debian:12');
      // glibc's binaries in a real minbase rootfs: libc6 and libc-bin at least.
      const glibc = r!.vulnerabilities.filter((v) => v.source === 'glibc').map((v) => v.package);
      assert.ok(glibc.includes('libc6') && glibc.includes('libc-bin'), glibc.join(','));
      assert.ok(r!.packages >= 80);
    } finally {
      realStore.close();
      await src.close();
    }
  });
});
