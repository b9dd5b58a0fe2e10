import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { strToU8, zipSync } from 'fflate';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { RegistryClient } from '../src/registry/client.js';
import { OCI_EMPTY_DIGEST } from '../src/oci/mediatypes.js';
import { cvss2BaseScore, cvss3BaseScore, chooseSeverity, roundup } from '../src/vuln/severity.js';
import { checkOsvRecord, parseEcosystem, parseOsvRecord, rangeIntervals } from '../src/vuln/osv.js';
import { secfixIds } from '../src/vuln/secdb.js';
import { defaultDbPath, openStore, SCHEMA_VERSION, type VulnStore } from '../src/vuln/store.js';
import { importPaths, jsonErrorOffset, status, updateFromMirror } from '../src/vuln/import.js';
import { matchPackages, type Finding, type MatchPackage } from '../src/vuln/match.js';
import { pullDb, pushDb, VULNDB_ARTIFACT_TYPE, VULNDB_LAYER_MEDIA_TYPE } from '../src/vuln/oci.js';
import { sharedDir, isCode } from './helpers/common.js';

const SECDB_DIR = sharedDir('data', 'advisories', 'alpine-secdb');
const SECDB = existsSync(SECDB_DIR) ? SECDB_DIR : '/work/shared/data/advisories/alpine-secdb';

async function tmp(prefix: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `plinth-test-${prefix}-`));
}

type Json = Record<string, unknown>;

/** A small OSV record builder: one affected package with one ECOSYSTEM range. */
function osv(id: string, ecosystem: string, pkg: string, events: Json[], extra: Json = {}, affectedExtra: Json = {}): Json {
  return {
    schema_version: '1.6.0',
    id,
    modified: '2024-03-01T00:00:00Z',
    published: '2024-02-01T00:00:00Z',
    summary: `${id} in ${pkg}`,
    affected: [{ package: { ecosystem, name: pkg }, ranges: [{ type: 'ECOSYSTEM', events }], ...affectedExtra }],
    ...extra,
  };
}

const deb = (name: string, version: string, source?: string, sourceVersion?: string): MatchPackage => ({
  name,
  version,
  type: 'deb',
  ...(source ? { source } : {}),
  ...(sourceVersion ? { sourceVersion } : {}),
});

function ids(findings: Finding[]): string[] {
  return findings.map((f) => `${f.package}:${f.id}`).sort();
}

// ---------------------------------------------------------------------------------------------

describe('CVSS and severity', () => {
  test('CVSS v3 base scores of known vectors', () => {
    const cases: Array<[string, number]> = [
      ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
      ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10.0],
      ['CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N', 5.5],
      ['CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N', 3.1],
      ['CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1], // typical XSS
      ['CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H', 9.9],
      ['CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N', 0],
      ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H/E:P/RL:O', 7.5], // temporal metrics ignored
    ];
    for (const [v, score] of cases) assert.equal(cvss3BaseScore(v)?.score, score, v);
    assert.equal(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H')?.score, undefined, 'missing metric');
    assert.equal(cvss3BaseScore('CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H'), undefined, 'bad value');
    assert.equal(cvss3BaseScore('CVSS:2.0/AV:N'), undefined);
    assert.equal(roundup(4.02), 4.1);
    assert.equal(roundup(4.0), 4.0);
    assert.equal(roundup(4.000000000000001), 4.0, 'Roundup absorbs floating-point noise');
    assert.equal(cvss2BaseScore('AV:N/AC:L/Au:N/C:P/I:P/A:P'), 7.5);
    assert.equal(cvss2BaseScore('AV:N/AC:L/Au:N/C:C/I:C/A:C'), 10);
    assert.equal(cvss2BaseScore('AV:L/AC:H/Au:N/C:N/I:P/A:N'), 1.2);
  });

  test('severity order: vendor, CVSS v3, severity word, CVSS v2', () => {
    const v3 = { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' };
    assert.deepEqual(chooseSeverity({ severity: [v3], vendor: { scale: 'debian-urgency', value: 'low' } }).severity, 'LOW');
    const r = chooseSeverity({ severity: [v3], vendor: { scale: 'debian-urgency', value: 'not yet assigned' } });
    assert.equal(r.severity, 'CRITICAL');
    assert.equal(r.severitySource, 'cvss_v3');
    assert.deepEqual(r.cvss, { version: '3.1', vector: v3.score, score: 9.8 });
    const v4 = { type: 'CVSS_V4', score: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' };
    assert.deepEqual(chooseSeverity({ severity: [v4], text: 'MODERATE' }), {
      severity: 'MEDIUM',
      severitySource: 'osv',
      cvss: { version: '4.0', vector: v4.score, score: null },
    });
    assert.equal(chooseSeverity({ severity: [v4] }).severity, 'UNKNOWN');
    assert.equal(chooseSeverity({ severity: [{ type: 'CVSS_V2', score: 'AV:N/AC:L/Au:N/C:P/I:P/A:P' }] }).severitySource, 'cvss_v2');
    assert.equal(chooseSeverity({ severity: [], vendor: { scale: 'ubuntu-priority', value: 'negligible' } }).severity, 'LOW');
    assert.equal(chooseSeverity({ severity: [], vendor: { scale: 'ubuntu-priority', value: 'critical' } }).severity, 'CRITICAL');
  });
});

describe('OSV records and ecosystems', () => {
  test('ecosystem keys', () => {
    assert.deepEqual(parseEcosystem('Debian:12'), { input: 'Debian:12', key: 'Debian:12', base: 'Debian', kind: 'deb' });
    assert.equal(parseEcosystem('Debian:12.5').key, 'Debian:12');
    assert.equal(parseEcosystem('Ubuntu:22.04:LTS').key, 'Ubuntu:22.04');
    assert.equal(parseEcosystem('Ubuntu:24.10').key, 'Ubuntu:24.10');
    assert.equal(parseEcosystem('Ubuntu:Pro:18.04:LTS').key, 'Ubuntu:Pro:18.04');
    assert.equal(parseEcosystem('Alpine:v3.19').key, 'Alpine:v3.19');
    assert.equal(parseEcosystem('Alpine:3.19.1').key, 'Alpine:v3.19');
    assert.equal(parseEcosystem('Alpine:v3.19').kind, 'apk');
    assert.equal(parseEcosystem('Debian').kind, null);
    assert.equal(parseEcosystem('PyPI').kind, null);
    assert.equal(parseEcosystem('Rocky Linux:9').base, 'Rocky Linux');
  });

  test('validation names the file, the record and the field', () => {
    assert.throws(() => parseOsvRecord({ modified: '2024-01-01T00:00:00Z' }, { file: 'a.json' }), isCode('ADVISORY_INVALID', /^a\.json: record \(no id\): id is required/));
    assert.throws(
      () => parseOsvRecord(osv('X-1', 'Debian:12', 'p', [{ introduced: '0' }, {}]), { file: 'b.json', index: 3 }),
      isCode('ADVISORY_INVALID', /b\.json: record "X-1" \(#3\): affected\[0\]\.ranges\[0\]\.events\[1\] an event needs one of introduced/),
    );
    assert.throws(
      () => parseOsvRecord(osv('X-2', 'Debian:12', 'p', [{ introduced: '0', fixed: '1' }], { modified: 'yesterday' }), { file: 'c.json' }),
      isCode('ADVISORY_INVALID', /record "X-2": modified must be an RFC 3339 timestamp/),
    );
    const bad = checkOsvRecord({ ...osv('X-3', 'Debian:12', 'p', [{ introduced: '0', fixed: '1', limit: '2' }]) });
    assert.equal(bad.ok, false);
    assert.match((bad as { message: string }).message, /exactly one of introduced, fixed, last_affected, limit \(found introduced, fixed, limit\)/);
    // Lenient: unknown fields, null lists, credits and references are fine.
    const ok = checkOsvRecord({ ...osv('X-4', 'Debian:12', 'p', [{ introduced: '0' }]), aliases: null, credits: [{ name: 'x' }], references: [{ type: 'WEB', url: 'u' }], x_new: 1 });
    assert.equal(ok.ok, true);
  });

  test('ranges become intervals (OSV event walk)', () => {
    assert.deepEqual(rangeIntervals('deb', [{ fixed: '1.7' }, { introduced: '1.5' }, { introduced: '0' }, { fixed: '1.2' }]), [
      { introduced: '0', fixed: '1.2' },
      { introduced: '1.5', fixed: '1.7' },
    ]);
    assert.deepEqual(rangeIntervals('deb', [{ introduced: '1.0' }, { last_affected: '1.4' }]), [{ introduced: '1.0', lastAffected: '1.4' }]);
    assert.deepEqual(rangeIntervals('deb', [{ fixed: '2.0' }]), [{ introduced: '0', fixed: '2.0' }], 'no introduced: from the beginning');
    assert.deepEqual(rangeIntervals('deb', [{ introduced: '0' }]), [{ introduced: '0' }]);
  });

  test('secdb entry ids', () => {
    assert.deepEqual(secfixIds('CVE-2019-10206'), ['CVE-2019-10206']);
    assert.deepEqual(secfixIds('CVE 2018-16859'), ['CVE-2018-16859']);
    assert.deepEqual(secfixIds('CVE-2019-5060 TALOS-2019-0844'), ['CVE-2019-5060', 'TALOS-2019-0844']);
    assert.deepEqual(secfixIds('CVE-????-?????  XSA-295'), ['XSA-295']);
    assert.deepEqual(secfixIds('???'), []);
  });
});

describe('advisory store and matching', () => {
  let dir: string;
  let store: VulnStore;
  before(async () => {
    dir = await tmp('vulndb');
    const data = path.join(dir, 'data');
    await mkdir(path.join(data, 'debian'), { recursive: true });
    await mkdir(path.join(data, 'ubuntu'), { recursive: true });
    const debian: Json[] = [
      // source openssl, binary libssl3
      osv('DEBIAN-CVE-2024-0001', 'Debian:12', 'openssl', [{ introduced: '0' }, { fixed: '3.0.13-1~deb12u1' }], {
        upstream: ['CVE-2024-0001'],
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }],
      }, { ecosystem_specific: { urgency: 'medium' } }),
      osv('DEBIAN-CVE-2023-0002', 'Debian:12', 'openssl', [{ introduced: '0' }, { fixed: '3.0.9-1' }]), // fixed below installed
      osv('DEBIAN-CVE-2024-0003', 'Debian:12', 'openssl', [{ introduced: '0' }], {
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N' }],
      }, { ecosystem_specific: { urgency: 'not yet assigned' } }), // unfixed, CVSS 5.5
      osv('DEBIAN-CVE-2024-0004', 'Debian:12', 'openssl', [{ introduced: '0' }], {}, { ecosystem_specific: { urgency: 'unimportant' } }),
      osv('DEBIAN-CVE-2024-0005', 'Debian:12', 'openssl', [{ introduced: '0' }], {}, { ecosystem_specific: { urgency: 'end-of-life' } }),
      osv('DEBIAN-CVE-2024-0006', 'Debian:12', 'openssl', [{ introduced: '0' }, { fixed: '3.0.20-1' }], { withdrawn: '2024-03-02T00:00:00Z' }),
      // multiple ranges
      osv('MULTI-1', 'Debian:12', 'multi', [{ introduced: '0' }, { fixed: '1.2' }, { introduced: '1.5' }, { fixed: '1.7' }]),
      // introduced later
      osv('LATER-1', 'Debian:12', 'later', [{ introduced: '2.0' }, { fixed: '2.5' }]),
      // last_affected and limit
      osv('LAST-1', 'Debian:12', 'last', [{ introduced: '1.0' }, { last_affected: '1.4' }]),
      osv('LIMIT-1', 'Debian:12', 'lim', [{ introduced: '0' }, { limit: '3.0' }]),
      // epochs
      osv('EPOCH-1', 'Debian:12', 'epochy', [{ introduced: '0' }, { fixed: '1:2.0-1' }]),
      osv('EPOCH-2', 'Debian:12', 'noepoch', [{ introduced: '0' }, { fixed: '2.0-1' }]),
      // explicit versions
      {
        id: 'LIST-1',
        modified: '2024-03-01T00:00:00Z',
        affected: [{ package: { ecosystem: 'Debian:12', name: 'listed' }, versions: ['1.0-1', '1:1.1-1'] }],
      },
      // DSA + DEBIAN-CVE for the same CVE: one finding
      osv('DSA-9999-1', 'Debian:12', 'dup', [{ introduced: '0' }, { fixed: '1.1-1' }], { aliases: ['CVE-2024-9999'] }),
      osv('DEBIAN-CVE-2024-9999', 'Debian:12', 'dup', [{ introduced: '0' }, { fixed: '1.1-1' }], { upstream: ['CVE-2024-9999'] }, { ecosystem_specific: { urgency: 'high' } }),
      // CVSS v4 only, with and without a severity word
      osv('V4-1', 'Debian:12', 'vfour', [{ introduced: '0' }], {
        severity: [{ type: 'CVSS_V4', score: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' }],
        database_specific: { severity: 'HIGH' },
      }),
      // Debian:11 must not leak into Debian:12
      osv('DEBIAN-CVE-2024-0011', 'Debian:11', 'openssl', [{ introduced: '0' }]),
    ];
    await writeFile(path.join(data, 'debian', 'all.json'), JSON.stringify(debian, null, 1));
    const ubuntu: Json[] = [
      osv('UBUNTU-CVE-2024-1000', 'Ubuntu:22.04:LTS', 'curl', [{ introduced: '0' }, { fixed: '7.81.0-1ubuntu1.16' }], {
        upstream: ['CVE-2024-1000'],
        severity: [
          { type: 'Ubuntu', score: 'high' },
          { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N' },
        ],
      }),
      osv('UBUNTU-CVE-2024-1001', 'Ubuntu:Pro:22.04:LTS', 'curl', [{ introduced: '0' }]),
      osv('PYSEC-1', 'PyPI', 'requests', [{ introduced: '0' }, { fixed: '2.0' }]),
    ];
    for (const r of ubuntu) await writeFile(path.join(data, 'ubuntu', `${r.id}.json`), JSON.stringify(r));
    store = openStore(path.join(dir, 'vuln.db'));
    const rep = await importPaths(store, [data]);
    assert.deepEqual(rep.errors, []);
    assert.equal(rep.files, 4);
    assert.equal(rep.records, debian.length + ubuntu.length);
  });
  after(async () => {
    store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('source package name and version; fixed, unfixed, withdrawn, other releases', () => {
    const f = matchPackages(store, 'Debian:12', [deb('libssl3', '3.0.11-1~deb12u2', 'openssl'), deb('openssl', '3.0.11-1~deb12u2')]);
    // 0001 fixed later, 0003/0004/0005 unfixed; 0002 fixed earlier, 0006 withdrawn, 0011 is Debian 11
    assert.deepEqual(ids(f.filter((x) => x.package === 'libssl3')), [
      'libssl3:DEBIAN-CVE-2024-0001',
      'libssl3:DEBIAN-CVE-2024-0003',
      'libssl3:DEBIAN-CVE-2024-0004',
      'libssl3:DEBIAN-CVE-2024-0005',
    ]);
    assert.equal(f.length, 8, 'the same findings on the openssl binary');
    const one = f.find((x) => x.package === 'libssl3' && x.id === 'DEBIAN-CVE-2024-0001')!;
    assert.equal(one.source, 'openssl');
    assert.equal(one.installedVersion, '3.0.11-1~deb12u2');
    assert.equal(one.fixedVersion, '3.0.13-1~deb12u1');
    assert.equal(one.status, 'fixed');
    assert.equal(one.severity, 'MEDIUM', 'Debian urgency wins over CVSS');
    assert.equal(one.severitySource, 'debian-urgency');
    assert.deepEqual(one.cvss, { version: '3.1', vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', score: 9.8 });
    assert.deepEqual(one.aliases, ['CVE-2024-0001']);
    assert.equal(one.title, 'DEBIAN-CVE-2024-0001 in openssl');
    assert.equal(one.ecosystem, 'Debian:12');
    assert.equal(one.published, '2024-02-01T00:00:00Z');

    const unfixed = f.find((x) => x.package === 'libssl3' && x.id === 'DEBIAN-CVE-2024-0003')!;
    assert.equal(unfixed.status, 'affected');
    assert.equal(unfixed.fixedVersion, null);
    assert.equal(unfixed.severity, 'MEDIUM');
    assert.equal(unfixed.severitySource, 'cvss_v3', '"not yet assigned" falls through to CVSS (5.5)');
    assert.equal(unfixed.cvss?.score, 5.5);

    const unimportant = f.find((x) => x.package === 'libssl3' && x.id === 'DEBIAN-CVE-2024-0004')!;
    assert.equal(unimportant.severity, 'LOW');
    assert.equal(unimportant.severitySource, 'debian-urgency');
    assert.equal(unimportant.status, 'affected');
    assert.equal(unimportant.urgency, 'unimportant');
    const eol = f.find((x) => x.package === 'libssl3' && x.id === 'DEBIAN-CVE-2024-0005')!;
    assert.equal(eol.status, 'will_not_fix');
    assert.equal(eol.severity, 'UNKNOWN');

    // Newer than every fix: only the unfixed ones remain.
    const newer = matchPackages(store, 'Debian:12', [deb('libssl3', '3.0.14-1~deb12u1', 'openssl')]);
    assert.deepEqual(ids(newer), ['libssl3:DEBIAN-CVE-2024-0003', 'libssl3:DEBIAN-CVE-2024-0004', 'libssl3:DEBIAN-CVE-2024-0005']);
    assert.deepEqual(ids(matchPackages(store, 'Debian:12', [deb('libssl3', '3.0.14-1~deb12u1', 'openssl')], { ignoreUnfixed: true })), []);
    // Debian 11 sees only its own record.
    assert.deepEqual(ids(matchPackages(store, 'Debian:11', [deb('libssl1.1', '1.1.1w-0+deb11u1', 'openssl')])), ['libssl1.1:DEBIAN-CVE-2024-0011']);
  });

  test('source version differs from the binary version (binNMU)', () => {
    const f = matchPackages(store, 'Debian:12', [deb('libssl3', '3.0.13-1~deb12u1+b1', 'openssl', '3.0.11-1~deb12u2')]);
    const one = f.find((x) => x.id === 'DEBIAN-CVE-2024-0001')!;
    assert.equal(one.installedVersion, '3.0.13-1~deb12u1+b1');
    assert.equal(one.sourceVersion, '3.0.11-1~deb12u2');
  });

  test('multiple ranges, introduced later, last_affected, limit', () => {
    const at = (name: string, v: string) => matchPackages(store, 'Debian:12', [deb(name, v)]).map((x) => `${x.id}@${x.fixedVersion}`);
    assert.deepEqual(at('multi', '1.1'), ['MULTI-1@1.2']);
    assert.deepEqual(at('multi', '1.2'), []);
    assert.deepEqual(at('multi', '1.3'), []);
    assert.deepEqual(at('multi', '1.5'), ['MULTI-1@1.7']);
    assert.deepEqual(at('multi', '1.7'), []);
    assert.deepEqual(at('later', '1.9'), []);
    assert.deepEqual(at('later', '2.0'), ['LATER-1@2.5']);
    assert.deepEqual(at('last', '0.9'), []);
    assert.deepEqual(at('last', '1.4'), ['LAST-1@null']);
    assert.deepEqual(at('last', '1.4.1'), []);
    assert.deepEqual(at('lim', '2.9'), ['LIMIT-1@null']);
    assert.deepEqual(at('lim', '3.0'), []);
    const last = matchPackages(store, 'Debian:12', [deb('last', '1.2')])[0]!;
    assert.equal(last.status, 'affected');
  });

  test('epochs', () => {
    const at = (name: string, v: string) => matchPackages(store, 'Debian:12', [deb(name, v)]).map((x) => x.id);
    assert.deepEqual(at('epochy', '2.5-1'), ['EPOCH-1'], 'no epoch is older than epoch 1');
    assert.deepEqual(at('epochy', '1:1.9-1'), ['EPOCH-1']);
    assert.deepEqual(at('epochy', '1:2.0-1'), []);
    assert.deepEqual(at('noepoch', '1:1.0-1'), [], '1:1.0 is newer than 2.0');
    assert.deepEqual(at('noepoch', '1.9-1'), ['EPOCH-2']);
    // The epoch given separately, as an inventory may do.
    assert.deepEqual(matchPackages(store, 'Debian:12', [{ name: 'noepoch', version: '1.0-1', epoch: 1, type: 'deb' }]).map((x) => x.installedVersion), []);
    assert.deepEqual(matchPackages(store, 'Debian:12', [{ name: 'epochy', version: '1.9-1', epoch: '1', type: 'deb' }]).map((x) => x.installedVersion), ['1:1.9-1']);
  });

  test('explicit versions', () => {
    const at = (v: string) => matchPackages(store, 'Debian:12', [deb('listed', v)]).map((x) => x.id);
    assert.deepEqual(at('1.0-1'), ['LIST-1']);
    assert.deepEqual(at('1:1.1-1'), ['LIST-1']);
    assert.deepEqual(at('1.1-1'), []);
  });

  test('one finding per CVE when several advisories describe it', () => {
    const f = matchPackages(store, 'Debian:12', [deb('dup', '1.0-1')]);
    assert.equal(f.length, 1);
    assert.equal(f[0]!.id, 'DEBIAN-CVE-2024-9999', 'the one with a known severity');
    assert.deepEqual(f[0]!.aliases, ['CVE-2024-9999', 'DSA-9999-1']);
    assert.equal(f[0]!.severity, 'HIGH');
    assert.equal(matchPackages(store, 'Debian:12', [deb('dup', '1.0-1')], { dedupe: false }).length, 2);
  });

  test('CVSS v4 records use the severity word', () => {
    const [f] = matchPackages(store, 'Debian:12', [deb('vfour', '1.0')]);
    assert.equal(f!.severity, 'HIGH');
    assert.equal(f!.severitySource, 'osv');
    assert.equal(f!.cvss?.version, '4.0');
    assert.equal(f!.cvss?.score, null);
  });

  test('Ubuntu: priority as severity, LTS suffix, Pro kept apart', () => {
    const f = matchPackages(store, 'Ubuntu:22.04:LTS', [deb('libcurl4', '7.81.0-1ubuntu1.15', 'curl')]);
    assert.deepEqual(ids(f), ['libcurl4:UBUNTU-CVE-2024-1000']);
    assert.equal(f[0]!.severity, 'HIGH');
    assert.equal(f[0]!.severitySource, 'ubuntu-priority');
    assert.equal(f[0]!.cvss?.score, 3.1);
    assert.equal(f[0]!.ecosystem, 'Ubuntu:22.04');
    assert.deepEqual(ids(matchPackages(store, 'Ubuntu:22.04', [deb('libcurl4', '7.81.0-1ubuntu1.15', 'curl')])), ['libcurl4:UBUNTU-CVE-2024-1000']);
    assert.deepEqual(ids(matchPackages(store, 'Ubuntu:Pro:22.04:LTS', [deb('libcurl4', '7.81.0-1ubuntu1.16', 'curl')])), ['libcurl4:UBUNTU-CVE-2024-1001']);
  });

  test('unsupported ecosystems and package types', () => {
    assert.throws(() => matchPackages(store, 'PyPI', [{ name: 'requests', version: '1.0', type: 'pypi' }]), isCode('UNSUPPORTED', /PyPI/));
    assert.deepEqual(matchPackages(store, 'Debian:12', [{ name: 'openssl', version: '1.0', type: 'rpm' }]), []);
    const st = status(store);
    const pypi = st.ecosystems.find((e) => e.ecosystem === 'PyPI')!;
    assert.equal(pypi.advisories, 1);
    assert.equal(pypi.matchable, false);
    const d12 = st.ecosystems.find((e) => e.ecosystem === 'Debian:12')!;
    assert.equal(d12.withdrawn, 1);
    assert.equal(d12.matchable, true);
    assert.equal(st.schemaVersion, SCHEMA_VERSION);
    assert.ok(st.sizeBytes > 0);
    assert.equal(st.sources.length, 1);
    assert.equal(st.sources[0]!.kind, 'directory');
  });

  test('re-import replaces; an older modified is skipped; a newer one wins', async () => {
    const d = path.join(dir, 'reimport');
    await mkdir(d, { recursive: true });
    const base = osv('RE-1', 'Debian:12', 'reimp', [{ introduced: '0' }, { fixed: '2.0' }]);
    await writeFile(path.join(d, 'a.json'), JSON.stringify(base));
    let r = await importPaths(store, [path.join(d, 'a.json')]);
    assert.equal(r.records, 1);
    r = await importPaths(store, [path.join(d, 'a.json')]);
    assert.equal(r.records, 1, 'the same record again replaces it');
    const count = () => (store.db.prepare("SELECT COUNT(*) AS n FROM affected WHERE package = 'reimp'").get() as { n: number }).n;
    assert.equal(count(), 1);
    await writeFile(path.join(d, 'old.json'), JSON.stringify({ ...base, modified: '2023-01-01T00:00:00Z', affected: [{ package: { ecosystem: 'Debian:12', name: 'reimp' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.0' }] }] }] }));
    r = await importPaths(store, [path.join(d, 'old.json')]);
    assert.deepEqual([r.records, r.skipped], [0, 1]);
    assert.equal(matchPackages(store, 'Debian:12', [deb('reimp', '1.5')])[0]?.fixedVersion, '2.0');
    await writeFile(path.join(d, 'new.json'), JSON.stringify({ ...base, modified: '2025-01-01T00:00:00Z', withdrawn: '2025-01-01T00:00:00Z' }));
    r = await importPaths(store, [path.join(d, 'new.json')]);
    assert.equal(r.records, 1);
    assert.deepEqual(matchPackages(store, 'Debian:12', [deb('reimp', '1.5')]), [], 'withdrawn now');
    assert.equal(count(), 1);
  });
});

describe('Alpine secdb', () => {
  let dir: string;
  let store: VulnStore;
  before(async () => {
    dir = await tmp('secdb');
    store = openStore(path.join(dir, 'vuln.db'));
  });
  after(async () => {
    store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('the real secdb files import, and ansible 2.8.3-r0 on v3.10 matches', async () => {
    const r = await importPaths(store, [SECDB]);
    assert.deepEqual(r.errors, []);
    assert.equal(r.files, 2);
    assert.ok(r.records > 2000, `records ${r.records}`);
    const f = matchPackages(store, 'Alpine:v3.10', [{ name: 'ansible', version: '2.8.3-r0', type: 'apk' }]);
    assert.deepEqual(
      f.map((x) => [x.id, x.fixedVersion, x.status]),
      [
        ['CVE-2019-10206', '2.8.4-r0', 'fixed'],
        ['CVE-2019-10217', '2.8.4-r0', 'fixed'],
      ],
    );
    assert.equal(f[0]!.ecosystem, 'Alpine:v3.10');
    assert.equal(f[0]!.severity, 'UNKNOWN');
    assert.deepEqual(matchPackages(store, 'Alpine:v3.10', [{ name: 'ansible', version: '2.8.4-r0', type: 'apk' }]), []);
    // v3.9 has a different fix for the same CVE.
    assert.deepEqual(
      matchPackages(store, 'Alpine:v3.9', [{ name: 'ansible', version: '2.7.12-r0', type: 'apk' }]).map((x) => [x.id, x.fixedVersion]),
      [['CVE-2019-10206', '2.7.13-r0']],
    );
    // apk origin: a subpackage matches by its origin
    const sub = matchPackages(store, 'Alpine:v3.10', [{ name: 'apache2-utils', version: '2.4.39-r0', source: 'apache2', type: 'apk' }]);
    assert.ok(sub.length >= 6 && sub.every((x) => x.package === 'apache2-utils' && x.source === 'apache2' && x.fixedVersion === '2.4.41-r0'));
    // The entries the real data spells oddly.
    const odd = store.db.prepare("SELECT id, aliases FROM advisories WHERE ecosystem = 'Alpine:v3.9' AND id IN ('CVE-2018-16859', 'CVE-2019-5060', 'XSA-295')").all() as Array<{ id: string; aliases: string }>;
    assert.deepEqual(odd.map((x) => x.id).sort(), ['CVE-2018-16859', 'CVE-2019-5060', 'XSA-295']);
    assert.deepEqual(JSON.parse(odd.find((x) => x.id === 'CVE-2019-5060')!.aliases), ['TALOS-2019-0844']);
  });

  test('secdb JSON, fixed version "0" and other repos of the same branch', async () => {
    const main = {
      distroversion: 'v3.19',
      reponame: 'main',
      packages: [
        { pkg: { name: 'busybox', secfixes: { '1.36.1-r2': ['CVE-2023-42363'], '0': ['CVE-2022-28391'] } } },
        { pkg: { name: 'nosecfixes' } },
      ],
    };
    const community = `distroversion: v3.19
reponame: community
packages:
  - pkg:
      name: vim
      secfixes:
        9.0.2127-r0:
          - CVE-2023-42363
        9.10-r0:
          - CVE-2099-0001
`;
    await writeFile(path.join(dir, 'v3.19-main.json'), JSON.stringify(main));
    await writeFile(path.join(dir, 'v3.19-community.yaml'), community);
    const r = await importPaths(store, [path.join(dir, 'v3.19-main.json'), path.join(dir, 'v3.19-community.yaml')]);
    assert.deepEqual(r.errors, []);
    const pkgs: MatchPackage[] = [
      { name: 'busybox', version: '1.36.1-r1', type: 'apk' },
      { name: 'vim', version: '9.0.2000-r0', type: 'apk' },
    ];
    assert.deepEqual(ids(matchPackages(store, 'Alpine:v3.19', pkgs)), ['busybox:CVE-2023-42363', 'vim:CVE-2023-42363', 'vim:CVE-2099-0001']);
    const na = matchPackages(store, 'Alpine:v3.19', pkgs, { includeNotAffected: true }).find((x) => x.id === 'CVE-2022-28391')!;
    assert.equal(na.status, 'not_affected');
    // "9.10" stays "9.10" (YAML would read it as the number 9.1).
    assert.equal(matchPackages(store, 'Alpine:v3.19', [{ name: 'vim', version: '9.9-r0', type: 'apk' }]).find((x) => x.id === 'CVE-2099-0001')?.fixedVersion, '9.10-r0');
    // Importing main again does not drop community's vim entry for the same CVE.
    await importPaths(store, [path.join(dir, 'v3.19-main.json')]);
    assert.deepEqual(ids(matchPackages(store, 'Alpine:v3.19', pkgs)), ['busybox:CVE-2023-42363', 'vim:CVE-2023-42363', 'vim:CVE-2099-0001']);
  });
});

describe('import: zips and bad inputs', () => {
  let dir: string;
  let store: VulnStore;
  before(async () => {
    dir = await tmp('import');
    store = openStore(path.join(dir, 'vuln.db'));
  });
  after(async () => {
    store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('an OSV zip, one bad record inside', async () => {
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 1200; i++) files[`Z-${i}.json`] = strToU8(JSON.stringify(osv(`Z-${i}`, 'Debian:12', `zpkg${i % 10}`, [{ introduced: '0' }, { fixed: `1.${i}` }])));
    files['Z-bad.json'] = strToU8(JSON.stringify({ id: 'Z-bad', modified: '2024-01-01T00:00:00Z', affected: [{ package: { ecosystem: 'Debian:12' } }] }));
    files['README.md'] = strToU8('not a record');
    await writeFile(path.join(dir, 'all.zip'), zipSync(files));
    const r = await importPaths(store, [path.join(dir, 'all.zip')]);
    assert.equal(r.files, 1);
    assert.equal(r.records, 1200);
    assert.equal(r.errors.length, 1);
    assert.equal(r.errors[0]!.file, `${path.join(dir, 'all.zip')}!Z-bad.json`);
    assert.match(r.errors[0]!.message, /record "Z-bad": affected\[0\]\.package\.name is required/);
    assert.equal(matchPackages(store, 'Debian:12', [deb('zpkg3', '1.0')]).length, 120);
  });

  test('bad files are error entries; good files next to them are imported', async () => {
    const d = path.join(dir, 'mixed');
    await mkdir(path.join(d, 'sub'), { recursive: true });
    await writeFile(path.join(d, 'good.json'), JSON.stringify(osv('GOOD-1', 'Debian:12', 'goodpkg', [{ introduced: '0' }])));
    await writeFile(path.join(d, 'badjson.json'), '{"id": "BAD-1",\n  "modified": }');
    await writeFile(path.join(d, 'noid.json'), JSON.stringify({ modified: '2024-01-01T00:00:00Z', affected: [] }));
    await writeFile(path.join(d, 'empty.json'), '');
    await writeFile(path.join(d, 'sub', 'notazip.zip'), 'this is not a zip');
    const zip = zipSync({ 'T-1.json': strToU8(JSON.stringify(osv('T-1', 'Debian:12', 'tpkg', [{ introduced: '0' }]))) });
    await writeFile(path.join(d, 'sub', 'truncated.zip'), zip.subarray(0, zip.length - 10));
    await writeFile(path.join(d, 'array.json'), JSON.stringify([osv('ARR-1', 'Debian:12', 'arrpkg', [{ introduced: '0' }]), { id: 'ARR-2' }, 'nope']));
    await writeFile(path.join(d, 'notes.txt'), 'ignored in directories');
    const before = store.totals().advisories;
    const r = await importPaths(store, [d, path.join(dir, 'missing.json')]);
    const byFile = new Map(r.errors.map((e) => [path.relative(dir, e.file), e.message]));
    assert.equal(byFile.get('mixed/badjson.json'), 'invalid JSON: unexpected "}" at line 2, column 15');
    assert.match(byFile.get('mixed/noid.json')!, /^record \(no id\): id is required/);
    assert.equal(byFile.get('mixed/empty.json'), 'empty file (0 bytes)');
    assert.match(byFile.get('mixed/sub/notazip.zip')!, /^not a zip file/);
    assert.match(byFile.get('mixed/sub/truncated.zip')!, /^not a valid zip file .*truncated or corrupt/);
    assert.match(byFile.get('missing.json')!, /no such file or directory/);
    const arr = r.errors.filter((e) => e.file.endsWith('array.json')).map((e) => e.message);
    assert.deepEqual(arr.length, 2);
    assert.match(arr[0]!, /^record "ARR-2" \(#1\): modified is required/);
    assert.match(arr[1]!, /^record #2 \(no id\): an OSV record must be a JSON object/);
    assert.equal(r.errorCount, 8);
    assert.equal(r.records, 2, 'good.json and ARR-1');
    assert.equal(store.totals().advisories, before + 2);
    assert.equal(matchPackages(store, 'Debian:12', [deb('goodpkg', '1'), deb('arrpkg', '1'), deb('tpkg', '1')]).length, 2);
  });

  test('JSON error positions', () => {
    const at = (t: string) => jsonErrorOffset(t);
    assert.equal(at('{"a": 1}'), -1);
    assert.equal(at('[1, 2,]'), 6);
    assert.equal(at('{"a" 1}'), 5);
    assert.equal(at('[{"id": "x"'), 11);
    assert.equal(at('{"a": "\\q"}'), 8);
    assert.equal(at('{"a": tru}'), 6);
    assert.equal(at('{} x'), 3);
  });

  test('store location and opening errors', async () => {
    assert.equal(defaultDbPath({ PLINTH_DB: '/x/y.db' }), '/x/y.db');
    assert.equal(defaultDbPath({ XDG_CACHE_HOME: '/cache' }), '/cache/plinth/vuln.db');
    assert.equal(defaultDbPath({ HOME: os.homedir() }), path.join(os.homedir(), '.cache', 'plinth', 'vuln.db'));
    assert.throws(() => openStore(path.join(dir, 'nope.db'), { readonly: true }), isCode('IO', /no vulnerability database at/));
    await writeFile(path.join(dir, 'text.db'), 'hello, this is not sqlite at all, just some text to fill a page'.repeat(20));
    assert.throws(() => openStore(path.join(dir, 'text.db')), isCode('IO', /is not a Plinth vulnerability database/));
    const ro = openStore(store.path, { readonly: true });
    try {
      assert.ok(ro.totals().advisories > 0);
      assert.throws(() => ro.setMeta('x', 'y'), isCode('USAGE', /read-only/));
    } finally {
      ro.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

interface MirrorServer {
  url: string;
  requests: string[];
  routes: Map<string, (req: IncomingMessage, res: ServerResponse) => void>;
  close(): Promise<void>;
}

async function startMirror(): Promise<MirrorServer> {
  const routes = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}${req.headers['if-none-match'] ? ` if-none-match=${req.headers['if-none-match']}` : ''}`);
    const h = routes.get(req.url ?? '');
    if (h) h(req, res);
    else {
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end('<Error><Code>NoSuchKey</Code></Error>');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    routes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function serveZip(zip: Uint8Array) {
  const etag = `"${createHash('sha256').update(zip).digest('hex').slice(0, 16)}"`;
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(zip.length), etag });
    res.end(Buffer.from(zip));
  };
}

describe('mirror update', () => {
  let dir: string;
  let store: VulnStore;
  let mirror: MirrorServer;
  let debianZip: Uint8Array;
  before(async () => {
    dir = await tmp('mirror');
    store = openStore(path.join(dir, 'vuln.db'));
    mirror = await startMirror();
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 30; i++) files[`DEBIAN-CVE-2024-${1000 + i}.json`] = strToU8(JSON.stringify(osv(`DEBIAN-CVE-2024-${1000 + i}`, i % 3 === 0 ? 'Debian:11' : 'Debian:12', 'zlib', [{ introduced: '0' }, { fixed: `1:1.2.${i}-1` }])));
    debianZip = zipSync(files);
    mirror.routes.set('/Debian/all.zip', serveZip(debianZip));
    const alpine = { 'ALPINE-CVE-2024-1.json': strToU8(JSON.stringify(osv('ALPINE-CVE-2024-1', 'Alpine:v3.19', 'musl', [{ introduced: '0' }, { fixed: '1.2.4-r3' }]))) };
    mirror.routes.set('/Alpine/all.zip', serveZip(zipSync(alpine)));
  });
  after(async () => {
    store?.close();
    await mirror?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('downloads <Base>/all.zip and keeps the releases asked for; 304 next time', async () => {
    const r = await updateFromMirror(store, `${mirror.url}/`, ['Debian:12', 'Alpine:v3.19']);
    assert.deepEqual(r.errors, []);
    assert.equal(r.records, 21, '20 Debian:12 records + 1 Alpine');
    assert.equal(r.skipped, 10, 'the Debian:11 records');
    assert.deepEqual(
      r.downloads.map((d) => [d.ecosystem, d.url, d.notModified]),
      [
        ['Debian', `${mirror.url}/Debian/all.zip`, false],
        ['Alpine', `${mirror.url}/Alpine/all.zip`, false],
      ],
    );
    assert.equal(r.downloads[0]!.bytes, debianZip.length);
    assert.equal(matchPackages(store, 'Debian:12', [deb('zlib1g', '1:1.2.0-1', 'zlib')]).length, 20);
    assert.equal(matchPackages(store, 'Debian:11', [deb('zlib1g', '1:1.2.0-1', 'zlib')]).length, 0);
    assert.equal(matchPackages(store, 'Alpine:v3.19', [{ name: 'musl', version: '1.2.4-r2', type: 'apk' }]).length, 1);
    const src = status(store).sources.find((s) => s.name.startsWith(`${mirror.url}/Debian/all.zip`))!;
    assert.equal(src.kind, 'mirror');
    assert.equal(src.records, 20);
    assert.ok(src.etag);

    const again = await updateFromMirror(store, mirror.url, ['Debian:12']);
    assert.deepEqual(again.downloads.map((d) => d.notModified), [true]);
    assert.ok(mirror.requests.some((x) => x.startsWith('GET /Debian/all.zip if-none-match=')));
    // The whole ecosystem is a different source: downloaded again.
    const all = await updateFromMirror(store, mirror.url, ['Debian']);
    assert.equal(all.records, 30);
    assert.equal(matchPackages(store, 'Debian:11', [deb('zlib1g', '1:1.1.0-1', 'zlib')]).length, 10);
  });

  test('a 404 fails clearly and changes nothing, even next to a good download', async () => {
    const before = status(store);
    await assert.rejects(updateFromMirror(store, mirror.url, ['Alpine:v3.19', 'Ubuntu:22.04:LTS'], { force: true }), isCode('NETWORK', /Ubuntu\/all\.zip: the mirror answered HTTP 404 \(no "Ubuntu" export there/));
    const afterStatus = status(store);
    assert.deepEqual(afterStatus.ecosystems, before.ecosystems);
    assert.deepEqual(afterStatus.sources, before.sources);
  });

  test('a truncated or corrupt zip fails clearly and changes nothing', async () => {
    const before = status(store);
    const big: Record<string, Uint8Array> = {};
    for (let i = 0; i < 50; i++) big[`UBUNTU-CVE-2024-${i}.json`] = strToU8(JSON.stringify(osv(`UBUNTU-CVE-2024-${i}`, 'Ubuntu:22.04:LTS', 'curl', [{ introduced: '0' }])));
    const zip = zipSync(big);
    mirror.routes.set('/Ubuntu/all.zip', serveZip(zip.subarray(0, Math.floor(zip.length / 2))));
    await assert.rejects(updateFromMirror(store, mirror.url, ['Ubuntu:22.04:LTS']), isCode('ARCHIVE_INVALID', /Ubuntu\/all\.zip is not a valid zip .*truncated or corrupt; nothing was imported/));
    // Corrupt deflate data behind an intact directory: found while importing, rolled back.
    const corrupt = Buffer.from(zip);
    for (let i = 200; i < 400; i++) corrupt[i] = corrupt[i]! ^ 0x5a;
    mirror.routes.set('/Ubuntu/all.zip', serveZip(corrupt));
    await assert.rejects(updateFromMirror(store, mirror.url, ['Ubuntu:22.04:LTS', 'Alpine'], { force: true }), isCode('ARCHIVE_INVALID', /nothing was imported/));
    // Not a zip at all.
    mirror.routes.set('/Ubuntu/all.zip', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>captive portal</html>');
    });
    await assert.rejects(updateFromMirror(store, mirror.url, ['Ubuntu']), isCode('ARCHIVE_INVALID', /is not a zip file/));
    // The connection drops before Content-Length bytes arrived.
    mirror.routes.set('/Ubuntu/all.zip', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(zip.length) });
      res.write(Buffer.from(zip.subarray(0, 100)), () => res.socket?.destroy());
    });
    await assert.rejects(updateFromMirror(store, mirror.url, ['Ubuntu'], { retries: 0 }), isCode('NETWORK', /cannot download .*Ubuntu\/all\.zip/));
    // A server error.
    mirror.routes.set('/Ubuntu/all.zip', (_req, res) => {
      res.writeHead(503);
      res.end('busy');
    });
    await assert.rejects(updateFromMirror(store, mirror.url, ['Ubuntu'], { retries: 0 }), isCode('NETWORK', /HTTP 503 \(the mirror failed; try again later\)/));
    const afterStatus = status(store);
    assert.deepEqual(afterStatus.ecosystems, before.ecosystems);
    assert.deepEqual(afterStatus.sources, before.sources);
    assert.equal(afterStatus.advisories, before.advisories);
  });

  test('bad arguments', async () => {
    await assert.rejects(updateFromMirror(store, 'ftp://x', ['Debian']), isCode('USAGE', /http/));
    await assert.rejects(updateFromMirror(store, mirror.url, []), isCode('USAGE', /at least one ecosystem/));
  });
});

describe('database as an OCI artifact', () => {
  let reg: TestRegistry;
  let dir: string;
  let dbPath: string;
  before(async () => {
    reg = await startRegistry();
    dir = await tmp('vulndb-oci');
    dbPath = path.join(dir, 'src', 'vuln.db');
    const s = openStore(dbPath);
    await mkdir(path.join(dir, 'data'));
    await writeFile(path.join(dir, 'data', 'a.json'), JSON.stringify([osv('OCI-1', 'Debian:12', 'bash', [{ introduced: '0' }, { fixed: '5.2.15-3' }]), osv('OCI-2', 'Debian:12', 'bash', [{ introduced: '0' }])]));
    const r = await importPaths(s, [path.join(dir, 'data'), SECDB]);
    assert.deepEqual(r.errors, []);
    s.close();
  });
  after(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('push, inspect the manifest, pull and use', async () => {
    const ref = `${reg.host}/plinth/vulndb:1`;
    const pushed = await pushDb(dbPath, ref);
    assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
    const client = new RegistryClient(reg.host);
    try {
      const m = await client.getManifest('plinth/vulndb', '1');
      assert.equal(m.digest, pushed.digest);
      const doc = JSON.parse(m.bytes.toString('utf8'));
      assert.equal(doc.mediaType, 'application/vnd.oci.image.manifest.v1+json');
      assert.equal(doc.artifactType, VULNDB_ARTIFACT_TYPE);
      assert.deepEqual(doc.config, { mediaType: 'application/vnd.oci.empty.v1+json', digest: OCI_EMPTY_DIGEST, size: 2, data: 'e30=' });
      assert.equal(doc.layers.length, 1);
      assert.equal(doc.layers[0].mediaType, VULNDB_LAYER_MEDIA_TYPE);
      assert.ok(doc.annotations['org.opencontainers.image.created']);
      const ro = openStore(dbPath, { readonly: true });
      assert.equal(Number(doc.annotations['dev.plinth.vulndb.advisories']), ro.totals().advisories);
      ro.close();
      assert.match(doc.annotations['dev.plinth.vulndb.ecosystems'], /Alpine:v3\.10=\d+,Alpine:v3\.9=\d+,Debian:12=2/);
      const cfg = await client.getBlobBytes('plinth/vulndb', OCI_EMPTY_DIGEST, 2);
      assert.equal(cfg.toString(), '{}');
    } finally {
      client.close();
    }
    const dest = path.join(dir, 'pulled', 'vuln.db');
    const pulled = await pullDb(ref, dest);
    assert.equal(pulled.digest, pushed.digest);
    const s = openStore(dest, { readonly: true });
    try {
      assert.equal(s.schemaVersion, SCHEMA_VERSION);
      assert.deepEqual(ids(matchPackages(s, 'Debian:12', [deb('bash', '5.2.15-2')])), ['bash:OCI-1', 'bash:OCI-2']);
      assert.equal(matchPackages(s, 'Alpine:v3.10', [{ name: 'ansible', version: '2.8.3-r0', type: 'apk' }]).length, 2);
    } finally {
      s.close();
    }
    // Pulling over an existing database (in WAL mode, open-and-closed) replaces it.
    const other = openStore(path.join(dir, 'other.db'));
    other.close();
    await copyFile(path.join(dir, 'other.db'), path.join(dir, 'over.db'));
    const w = openStore(path.join(dir, 'over.db'));
    await importPaths(w, [path.join(dir, 'data', 'a.json')]);
    w.close();
    await pullDb(`docker://${ref}`, path.join(dir, 'over.db'));
    assert.ok(!existsSync(path.join(dir, 'over.db-wal')), 'no WAL of the old database is left to be replayed');
    const o = openStore(path.join(dir, 'over.db'));
    try {
      assert.ok(o.totals().advisories > 2000);
    } finally {
      o.close();
    }
  });

  test('pull refuses other artifacts and missing tags, and keeps the existing database', async () => {
    const dest = path.join(dir, 'keep.db');
    const keep = openStore(dest);
    keep.setMeta('marker', 'original');
    keep.close();
    const before = readFileSync(dest);

    // Some other artifact in the same repository.
    const client = new RegistryClient(reg.host);
    try {
      const blob = Buffer.from('not a database');
      const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
      const { Readable } = await import('node:stream');
      await client.uploadBlob('plinth/vulndb', { digest, size: blob.length }, async () => Readable.from([blob]));
      await client.uploadBlob('plinth/vulndb', { digest: OCI_EMPTY_DIGEST, size: 2 }, async () => Readable.from([Buffer.from('{}')]));
      const manifest = {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/vnd.example.sbom.v1',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: OCI_EMPTY_DIGEST, size: 2 },
        layers: [{ mediaType: 'application/vnd.example.sbom.v1+json', digest, size: blob.length }],
      };
      await client.putManifest('plinth/vulndb', 'sbom', Buffer.from(JSON.stringify(manifest)), 'application/vnd.oci.image.manifest.v1+json');
      // A layer that claims to be a database but is not gzip'd SQLite.
      const fake = { ...manifest, artifactType: VULNDB_ARTIFACT_TYPE, layers: [{ mediaType: VULNDB_LAYER_MEDIA_TYPE, digest, size: blob.length }] };
      await client.putManifest('plinth/vulndb', 'fake', Buffer.from(JSON.stringify(fake)), 'application/vnd.oci.image.manifest.v1+json');
    } finally {
      client.close();
    }
    await assert.rejects(pullDb(`${reg.host}/plinth/vulndb:sbom`, dest), isCode('MANIFEST_INVALID', /not a Plinth vulnerability database: its artifactType is "application\/vnd\.example\.sbom\.v1"/));
    await assert.rejects(pullDb(`${reg.host}/plinth/vulndb:fake`, dest), isCode('IO', /cannot unpack the database layer/));
    await assert.rejects(pullDb(`${reg.host}/plinth/vulndb:nope`, dest), isCode('MANIFEST_UNKNOWN', /tag "nope" not found/));
    assert.deepEqual(readFileSync(dest), before, 'the existing database is untouched');
    const s = openStore(dest, { readonly: true });
    try {
      assert.equal(s.meta('marker'), 'original');
    } finally {
      s.close();
    }
    const leftovers = readdirSync(dir).filter((n) => n.includes('.pull-'));
    assert.deepEqual(leftovers, []);
  });

  test('push refuses something that is not a vulnerability database', async () => {
    await writeFile(path.join(dir, 'junk.db'), 'junk'.repeat(1000));
    await assert.rejects(pushDb(path.join(dir, 'junk.db'), `${reg.host}/plinth/vulndb:junk`), isCode('IO'));
    await assert.rejects(pushDb(path.join(dir, 'absent.db'), `${reg.host}/plinth/vulndb:junk`), isCode('IO', /no vulnerability database/));
  });
});
