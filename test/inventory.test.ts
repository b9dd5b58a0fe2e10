import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { buildImage, type FileSpec } from '../src/source/memory.js';
import { openSource } from '../src/source/open.js';
import { resolveRoot, selectImages } from '../src/source/image.js';
import { inventory } from '../src/packages/inventory.js';
import { cycloneDx, plinthJson, spdx } from '../src/sbom/formats.js';
import { rpmPackageHeader } from './helpers/rpmheader.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const ROOTFS = process.env.PLINTH_ROOTFS || path.join(root, '.cache', 'rootfs-bookworm');
const LAYOUT = path.join(root, '.cache', 'deb-layout');
const haveDebian = existsSync(path.join(ROOTFS, 'var/lib/dpkg/status')) && existsSync(path.join(LAYOUT, 'index.json'));
const skipDebian = haveDebian ? false : `no debootstrap image in ${LAYOUT} (./scripts/setup.sh makes it)`;

const osRelease = (id: string, version: string): FileSpec => ({ path: 'etc/os-release', content: `ID=${id}\nVERSION_ID="${version}"\nNAME="${id}"\n` });
const dpkgEntry = (name: string, version: string, extra = '') => `Package: ${name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${version}\n${extra}`;

async function inv(image: Awaited<ReturnType<typeof buildImage>>, baseLayers?: number) {
  const [img] = await selectImages(image.source, await resolveRoot(image.source), undefined);
  return inventory(image.source, img!, baseLayers === undefined ? {} : { baseLayers });
}

describe('inventory (SBOM)', () => {
  test('the debootstrap image lists exactly the packages dpkg-query lists for that rootfs', { skip: skipDebian }, async () => {
    const want = execFileSync('dpkg-query', ['-W', '-f=${Package}\t${Version}\t${Architecture}\n', `--admindir=${path.join(ROOTFS, 'var/lib/dpkg')}`], { encoding: 'utf8' })
      .trim().split('\n').sort();
    const src = await openSource(`oci:${LAYOUT}:deb`);
    const [img] = await selectImages(src, await resolveRoot(src), undefined);
    const r = await inventory(src, img!);
    await src.close();
    assert.deepEqual(r.packages.map((p) => `${p.name}\t${p.version}\t${p.arch}`).sort(), want);
    assert.equal(r.os?.family, 'debian');
    assert.equal(r.os?.version, '12');
    assert.equal(r.ecosystem, 'Debian:12');
    assert.ok(r.packages.every((p) => p.layerIndex === 0 && p.layer === r.layers[0]!.diffId));
    const libc = r.packages.find((p) => p.name === 'libc6')!;
    assert.equal(libc.source, 'glibc');
    assert.match(libc.purl, /^pkg:deb\/debian\/libc6@.+\?arch=amd64&distro=debian-12$/);
  });

  test('packages are attributed to the layer that installed them; base vs image', async () => {
    const base = [[osRelease('debian', '12'), { path: 'var/lib/dpkg/status', content: `${dpkgEntry('libc6', '2.36-9', 'Source: glibc\n')}\n${dpkgEntry('bash', '5.2-1')}` }]];
    const app = [{ path: 'var/lib/dpkg/status', content: `${dpkgEntry('libc6', '2.36-9', 'Source: glibc\n')}\n${dpkgEntry('bash', '5.2-2')}\n${dpkgEntry('curl', '7.88-1')}` }];
    const image = await buildImage({ layers: [...base, app] });
    const r = await inv(image, 1);
    const by = Object.fromEntries(r.packages.map((p) => [p.name, p]));
    assert.equal(by.libc6!.layerIndex, 0);
    assert.equal(by.libc6!.origin, 'base');
    assert.equal(by.libc6!.source, 'glibc');
    assert.equal(by.bash!.layerIndex, 1, 'an upgraded package belongs to the layer that upgraded it');
    assert.equal(by.curl!.layerIndex, 1);
    assert.equal(by.curl!.origin, 'image');
    assert.equal(by.curl!.layer, image.diffIds[1]);
  });

  test('a package database deleted and recreated: its packages belong to the layer that recreated it', async () => {
    const db = (v: string) => ({ path: 'var/lib/dpkg/status', content: dpkgEntry('bash', v) });
    const image = await buildImage({ layers: [[osRelease('debian', '12'), db('5.2-1')], [{ path: 'var/lib/dpkg/.wh.status', content: '' }], [db('5.2-1')]] });
    const r = await inv(image, 1);
    assert.equal(r.packages[0]!.layerIndex, 2);
    assert.equal(r.packages[0]!.origin, 'image');
  });

  test('distroless status.d, whiteouts, Alpine installed db, rpm sqlite db', async () => {
    const distroless = await buildImage({
      layers: [
        [{ path: 'etc/debian_version', content: '12.5\n' }, { path: 'etc/os-release', content: 'PRETTY_NAME="Distroless"\nID=debian\nVERSION_ID="12"\n' }, { path: 'var/lib/dpkg/status.d/base-files', content: 'Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n' }, { path: 'var/lib/dpkg/status.d/tzdata', content: 'Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n' }],
        [{ path: 'var/lib/dpkg/status.d/.wh.tzdata', content: '' }, { path: 'var/lib/dpkg/status.d/libssl3', content: 'Package: libssl3\nSource: openssl (3.0.11-1~deb12u2)\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n' }],
      ],
    });
    const d = await inv(distroless, 1);
    assert.deepEqual(d.packages.map((p) => `${p.name}@${p.layerIndex}`), ['base-files@0', 'libssl3@1']);
    assert.equal(d.packages[1]!.source, 'openssl');
    assert.equal(d.packages[1]!.sourceVersion, '3.0.11-1~deb12u2');

    const alpine = await buildImage({
      layers: [[
        { path: 'etc/alpine-release', content: '3.19.1\n' },
        { path: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.19.1\nNAME="Alpine Linux"\n' },
        { path: 'lib/apk/db/installed', content: 'C:Q1\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nL:MIT\no:musl\n\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\n\n' },
      ]],
    });
    const a = await inv(alpine);
    assert.equal(a.ecosystem, 'Alpine:v3.19');
    assert.deepEqual(a.packages.map((p) => [p.name, p.source, p.license]), [['libcrypto3', 'openssl', 'Apache-2.0'], ['musl', 'musl', 'MIT']]);

    // An rpm database in SQLite form, as rpm ≥ 4.16 writes it.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-rpmdb-'));
        const dbFile = path.join(dir, 'rpmdb.sqlite');
    const db = new DatabaseSync(dbFile);
    db.exec('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)');
    db.prepare('INSERT INTO Packages (blob) VALUES (?)').run(rpmPackageHeader({ name: 'bash', version: '5.1.8', release: '6.el9', arch: 'x86_64', epoch: 1, license: 'GPLv3+', sourceRpm: 'bash-5.1.8-6.el9.src.rpm' }));
    db.prepare('INSERT INTO Packages (blob) VALUES (?)').run(rpmPackageHeader({ name: 'openssl-libs', version: '3.0.7', release: '24.el9', arch: 'x86_64', license: 'ASL 2.0', sourceRpm: 'openssl-3.0.7-24.el9.src.rpm' }));
    db.close();
    const rocky = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID="rocky"\nVERSION_ID="9.3"\nNAME="Rocky Linux"\n' }, { path: 'var/lib/rpm/rpmdb.sqlite', content: await readFile(dbFile) }]] });
    await rm(dir, { recursive: true, force: true });
    const r = await inv(rocky);
    assert.equal(r.os?.family, 'rocky');
    assert.deepEqual(r.packages.map((p) => [p.name, p.version, p.release, p.epoch, p.source]), [['bash', '5.1.8', '6.el9', 1, 'bash'], ['openssl-libs', '3.0.7', '24.el9', undefined, 'openssl']]);
    // BerkeleyDB is named, not silently empty.
    const bdb = await buildImage({ layers: [[{ path: 'var/lib/rpm/Packages', content: Buffer.concat([Buffer.alloc(12), Buffer.from([0x61, 0x15, 0x06, 0x00]), Buffer.alloc(64)]) }]] });
    const rb = await inv(bdb);
    assert.equal(rb.packages.length, 0);
    assert.ok(rb.findings.some((f) => /BerkeleyDB/.test(f.message)), JSON.stringify(rb.findings));
  });

  test('corrupt package databases give findings, not a crash', async () => {
    const image = await buildImage({
      layers: [[
        { path: 'var/lib/dpkg/status', content: 'Package: ok\nStatus: install ok installed\nVersion: 1.0\n\nPackage: bad name!\nStatus: install ok installed\nVersion: 1\n\nStatus: what\n\n\u0000\u0001garbage' },
        { path: 'lib/apk/db/installed', content: 'P:\nV:\nzzz\n' },
        { path: 'var/lib/rpm/rpmdb.sqlite', content: 'SQLite format 3\u0000 not really' },
      ]],
    });
    const r = await inv(image);
    assert.deepEqual(r.packages.map((p) => p.name), ['ok']);
    assert.ok(r.findings.length >= 3, JSON.stringify(r.findings));
    assert.ok(r.findings.some((f) => f.path === 'var/lib/rpm/rpmdb.sqlite'));
  });

  test('CycloneDX 1.5, SPDX 2.3 and Plinth JSON documents', async () => {
    const image = await buildImage({ layers: [[osRelease('debian', '12'), { path: 'var/lib/dpkg/status', content: `${dpkgEntry('libssl3', '3.0.11-1~deb12u2', 'Source: openssl\n')}` }]] });
    const r = await inv(image);
    const cdx = cycloneDx(r) as { bomFormat: string; specVersion: string; components: Array<{ type: string; purl?: string; name: string }> };
    assert.equal(cdx.bomFormat, 'CycloneDX');
    assert.equal(cdx.specVersion, '1.5');
    assert.equal(cdx.components[0]!.type, 'operating-system');
    assert.equal(cdx.components[1]!.purl, 'pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12');
    const s = spdx(r) as { spdxVersion: string; packages: Array<{ name: string; externalRefs?: Array<{ referenceLocator: string }>; sourceInfo?: string }>; relationships: unknown[] };
    assert.equal(s.spdxVersion, 'SPDX-2.3');
    const p = s.packages.find((x) => x.name === 'libssl3')!;
    assert.equal(p.externalRefs![0]!.referenceLocator, cdx.components[1]!.purl);
    assert.match(p.sourceInfo!, /openssl/);
    assert.equal(s.relationships.length, 3);
    const j = plinthJson(r) as { os: { family: string; version: string }; packages: Array<{ name: string; source: string; layer: string }> };
    assert.deepEqual(j.os, { family: 'debian', version: '12', name: 'debian', versionId: '12', codename: 'bookworm' });
    assert.equal(j.packages[0]!.source, 'openssl');
    assert.equal(j.packages[0]!.layer, image.diffIds[0]);
  });
});
