import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlinthError } from '../src/util/errors.js';
import {
  APK_PATHS,
  DPKG_PATHS,
  MAX_FINDINGS_PER_FILE,
  OS_PATHS,
  RPM_PATHS,
  advisoryEcosystem,
  alpineBranch,
  buildPurl,
  debianCopyrightLicenses,
  debianCopyrightPath,
  detectOs,
  encodePurlComponent,
  fullVersion,
  indexRpmHeader,
  isApkPath,
  isDpkgPath,
  isOsPath,
  isRpmPath,
  isRpmUnsupported,
  packageUrl,
  parseApkInstalled,
  parseDeb822,
  parseDpkgFiles,
  parseDpkgStatus,
  parseOsRelease,
  parseRpmBlobs,
  parseRpmHeader,
  readRpmDb,
  rpmDbFormat,
  splitSourceRpm,
  withOs,
  type OsInfo,
  type SqliteReader,
} from '../src/packages/index.js';
import { encodeRpmHeader, rpmPackageHeader } from './helpers/rpmheader.js';
import { repoRoot } from './helpers/common.js';

const files = (entries: Record<string, string>): Map<string, Buffer> =>
  new Map(Object.entries(entries).map(([k, v]) => [k, Buffer.from(v, 'utf8')]));

function commandExists(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// OS detection
// ---------------------------------------------------------------------------------------------

const DEBIAN_12 = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
`;

const DEBIAN_TESTING = `PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=trixie
ID=debian
HOME_URL="https://www.debian.org/"
`;

const DISTROLESS_12 = `PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="12"
VERSION="Debian GNU/Linux 12 (bookworm)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"
BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"
`;

const UBUNTU_2204 = `PRETTY_NAME="Ubuntu 22.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.3 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
`;

const UBUNTU_2310 = `PRETTY_NAME="Ubuntu 23.10"
NAME="Ubuntu"
VERSION_ID="23.10"
VERSION="23.10 (Mantic Minotaur)"
VERSION_CODENAME=mantic
ID=ubuntu
ID_LIKE=debian
`;

const ALPINE_319 = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
`;

const ROCKY_93 = `NAME="Rocky Linux"
VERSION="9.3 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:rocky:rocky:9::baseos"
HOME_URL="https://rockylinux.org/"
REDHAT_SUPPORT_PRODUCT="Rocky Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="9.3"
`;

const UBI_92 = `NAME="Red Hat Enterprise Linux"
VERSION="9.2 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.2"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.2 (Plow)"
`;

describe('os-release parsing', () => {
  test('quotes, escapes, comments, concatenation, CRLF', () => {
    const kv = parseOsRelease(
      [
        '# a comment line',
        '   # an indented comment',
        '',
        'PLAIN=bare',
        'DQ="double \\"quoted\\" \\\\ \\$HOME \\`cmd\\` \\n kept"',
        "SQ='single \\n \"raw\"'",
        'CAT="a"\'b\'c\\ d',
        'SPACES  =  "x"   ',
        'EMPTY=',
        'EMPTYQ=""',
        'not an assignment',
        '9BAD=x',
        'MULTI="line one',
        'line two"',
        'CR="windows"\r',
        'CONT=a\\',
        'b',
        'DUP=first',
        'DUP=second',
        'OPEN="never closed',
      ].join('\n'),
    );
    assert.equal(kv.get('PLAIN'), 'bare');
    assert.equal(kv.get('DQ'), 'double "quoted" \\ $HOME `cmd` \\n kept');
    assert.equal(kv.get('SQ'), 'single \\n "raw"');
    assert.equal(kv.get('CAT'), 'abc d');
    assert.equal(kv.get('SPACES'), 'x');
    assert.equal(kv.get('EMPTY'), '');
    assert.equal(kv.get('EMPTYQ'), '');
    assert.equal(kv.get('MULTI'), 'line one\nline two');
    assert.equal(kv.get('CR'), 'windows');
    assert.equal(kv.get('CONT'), 'ab');
    assert.equal(kv.get('DUP'), 'second');
    assert.equal(kv.has('9BAD'), false);
    assert.equal(kv.has('not'), false);
    assert.equal(kv.has('OPEN'), false, 'an unterminated quote is not a value');
  });

  test('quoted ID and NAME with escapes reach OsInfo', () => {
    const os = detectOs(files({ 'etc/os-release': 'ID="debian"\nNAME="Debian \\"GNU\\"/Linux"\nVERSION_ID=\'12\'\nPRETTY_NAME="Debian 12 \\$X"\n' }));
    assert.equal(os?.family, 'debian');
    assert.equal(os?.name, 'Debian "GNU"/Linux');
    assert.equal(os?.version, '12');
    assert.equal(os?.prettyName, 'Debian 12 $X');
  });
});

describe('detectOs', () => {
  test('OS_PATHS are relative and recognised', () => {
    for (const p of OS_PATHS) {
      assert.ok(!p.startsWith('/'), p);
      assert.ok(isOsPath(p) && isOsPath('/' + p) && isOsPath('./' + p));
    }
    assert.ok(!isOsPath('etc/passwd'));
  });

  test('Debian 12', () => {
    const os = detectOs(files({ 'etc/os-release': DEBIAN_12, 'etc/debian_version': '12.5\n' }))!;
    assert.deepEqual(
      { family: os.family, id: os.id, version: os.version, versionId: os.versionId, codename: os.codename, evidence: os.evidence },
      { family: 'debian', id: 'debian', version: '12', versionId: '12', codename: 'bookworm', evidence: 'etc/os-release' },
    );
    assert.equal(os.prettyName, 'Debian GNU/Linux 12 (bookworm)');
    assert.equal(os.variant, undefined);
    assert.equal(advisoryEcosystem(os), 'Debian:12');
  });

  test('etc/os-release before usr/lib/os-release; keys may carry / or ./', () => {
    const a = detectOs(files({ '/usr/lib/os-release': DEBIAN_12, './etc/os-release': UBUNTU_2204 }))!;
    assert.equal(a.family, 'ubuntu');
    assert.equal(a.evidence, 'etc/os-release');
    const b = detectOs(files({ 'usr/lib/os-release': DEBIAN_12 }))!;
    assert.equal(b.family, 'debian');
    assert.equal(b.evidence, 'usr/lib/os-release');
    // An empty etc/os-release (say, a symlink the layer reader gave no bytes for) falls through.
    const c = detectOs(files({ 'etc/os-release': '', 'usr/lib/os-release': DEBIAN_12 }))!;
    assert.equal(c.evidence, 'usr/lib/os-release');
  });

  test('Debian testing: no VERSION_ID, version from debian_version / the code name', () => {
    const a = detectOs(files({ 'etc/os-release': DEBIAN_TESTING, 'etc/debian_version': 'trixie/sid\n' }))!;
    assert.equal(a.family, 'debian');
    assert.equal(a.version, '13');
    assert.equal(a.codename, 'trixie');
    assert.equal(a.versionId, 'trixie/sid');
    assert.equal(advisoryEcosystem(a), 'Debian:13');
    const b = detectOs(files({ 'etc/os-release': DEBIAN_TESTING }))!;
    assert.equal(b.version, '13');
    const sid = detectOs(files({ 'etc/debian_version': 'sid\n' }))!;
    assert.equal(sid.version, '');
    assert.equal(sid.codename, 'sid');
    assert.equal(advisoryEcosystem(sid), undefined);
  });

  test('distroless Debian: os-release says Distroless; debian_version alone is enough too', () => {
    const a = detectOs(files({ 'etc/os-release': DISTROLESS_12, 'etc/debian_version': '12.5\n' }))!;
    assert.equal(a.family, 'debian');
    assert.equal(a.version, '12');
    assert.equal(a.codename, 'bookworm');
    assert.equal(a.variant, 'distroless');
    assert.equal(advisoryEcosystem(a), 'Debian:12');
    const b = detectOs(files({ 'etc/debian_version': '12.5\n' }))!;
    assert.deepEqual(
      { family: b.family, version: b.version, versionId: b.versionId, codename: b.codename, evidence: b.evidence },
      { family: 'debian', version: '12', versionId: '12.5', codename: 'bookworm', evidence: 'etc/debian_version' },
    );
    assert.equal(detectOs(files({ 'etc/debian_version': '10.13\n' }))?.codename, 'buster');
  });

  test('Ubuntu 22.04 LTS and 23.10', () => {
    const a = detectOs(files({ 'etc/os-release': UBUNTU_2204, 'etc/debian_version': 'bookworm/sid\n' }))!;
    assert.equal(a.family, 'ubuntu');
    assert.equal(a.version, '22.04');
    assert.equal(a.codename, 'jammy');
    assert.equal(a.lts, true);
    assert.equal(advisoryEcosystem(a), 'Ubuntu:22.04:LTS');
    const b = detectOs(files({ 'etc/os-release': UBUNTU_2310 }))!;
    assert.equal(b.lts, false);
    assert.equal(advisoryEcosystem(b), 'Ubuntu:23.10');
  });

  test('Ubuntu without os-release: lsb-release beats debian_version', () => {
    const os = detectOs(
      files({
        'etc/lsb-release': 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=20.04\nDISTRIB_CODENAME=focal\nDISTRIB_DESCRIPTION="Ubuntu 20.04.6 LTS"\n',
        'etc/debian_version': 'bullseye/sid\n',
      }),
    )!;
    assert.equal(os.family, 'ubuntu');
    assert.equal(os.version, '20.04');
    assert.equal(os.evidence, 'etc/lsb-release');
    assert.equal(advisoryEcosystem(os), 'Ubuntu:20.04:LTS');
  });

  test('Alpine 3.19.1', () => {
    const a = detectOs(files({ 'etc/os-release': ALPINE_319, 'etc/alpine-release': '3.19.1\n' }))!;
    assert.equal(a.family, 'alpine');
    assert.equal(a.version, '3.19.1');
    assert.equal(advisoryEcosystem(a), 'Alpine:v3.19');
    const b = detectOs(files({ 'etc/alpine-release': '3.19.1\n' }))!;
    assert.equal(b.family, 'alpine');
    assert.equal(b.version, '3.19.1');
    assert.equal(b.evidence, 'etc/alpine-release');
    assert.equal(alpineBranch('3.19.1'), 'v3.19');
    assert.equal(alpineBranch('3.9.6'), 'v3.9');
    assert.equal(alpineBranch('3.20'), 'v3.20');
    assert.equal(alpineBranch('3.20.0_alpha20240329'), 'edge');
    assert.equal(alpineBranch('edge'), 'edge');
    assert.equal(alpineBranch('not a version'), undefined);
    const edge = detectOs(files({ 'etc/os-release': 'ID=alpine\nVERSION_ID=3.20.0_alpha20240329\nPRETTY_NAME="Alpine Linux edge"\n' }))!;
    assert.equal(advisoryEcosystem(edge), undefined);
  });

  test('Rocky 9, RHEL (UBI) 9.2, and the Red Hat family release files', () => {
    const r = detectOs(files({ 'etc/os-release': ROCKY_93, 'etc/redhat-release': 'Rocky Linux release 9.3 (Blue Onyx)\n' }))!;
    assert.equal(r.family, 'rocky');
    assert.equal(r.version, '9.3');
    assert.equal(advisoryEcosystem(r), 'Rocky Linux:9');
    const u = detectOs(files({ 'etc/os-release': UBI_92 }))!;
    assert.equal(u.family, 'rhel');
    assert.equal(u.version, '9.2');
    assert.equal(advisoryEcosystem(u), undefined);
    // Without os-release: Oracle Linux also ships a redhat-release that claims RHEL.
    const ol = detectOs(
      files({ 'etc/redhat-release': 'Red Hat Enterprise Linux Server release 7.9 (Maipo)\n', 'etc/oracle-release': 'Oracle Linux Server release 7.9\n' }),
    )!;
    assert.equal(ol.family, 'oracle');
    assert.equal(ol.version, '7.9');
    const c7 = detectOs(files({ 'etc/centos-release': 'CentOS Linux release 7.9.2009 (Core)\n' }))!;
    assert.deepEqual([c7.family, c7.version, c7.codename], ['centos', '7.9.2009', 'Core']);
    const amzn = detectOs(files({ 'etc/system-release': 'Amazon Linux release 2023 (Amazon Linux)\n' }))!;
    assert.deepEqual([amzn.family, amzn.version], ['amazon', '2023']);
    const rocky = detectOs(files({ 'etc/rocky-release': 'Rocky Linux release 8.9 (Green Obsidian)\n', 'etc/redhat-release': 'Rocky Linux release 8.9 (Green Obsidian)\n' }))!;
    assert.deepEqual([rocky.family, rocky.evidence], ['rocky', 'etc/rocky-release']);
  });

  test('unknown distributions and empty input', () => {
    assert.equal(detectOs(new Map()), undefined);
    assert.equal(detectOs(files({ 'etc/hostname': 'x' })), undefined);
    const arch = detectOs(files({ 'etc/os-release': 'NAME="Arch Linux"\nID=arch\nBUILD_ID=rolling\n' }))!;
    assert.deepEqual([arch.family, arch.id, arch.name, arch.version], ['other', 'arch', 'Arch Linux', '']);
    assert.equal(advisoryEcosystem(arch), undefined);
    // An unknown os-release ID gives way to a family file that is recognised (Trivy does the same).
    const mint = detectOs(files({ 'etc/os-release': 'ID=linuxmint\n', 'etc/debian_version': '12.1\n' }))!;
    assert.equal(mint.family, 'debian');
    assert.equal(detectOs(files({ 'etc/os-release': 'garbage\n\u0000\u0001' })), undefined);
    assert.equal(detectOs(files({ 'etc/debian_version': 'not a version at all\n' })), undefined);
  });
});

// ---------------------------------------------------------------------------------------------
// purls
// ---------------------------------------------------------------------------------------------

const debian12: OsInfo = detectOs(files({ 'etc/os-release': DEBIAN_12 }))!;
const alpine319: OsInfo = detectOs(files({ 'etc/os-release': ALPINE_319 }))!;
const rhel92: OsInfo = detectOs(files({ 'etc/os-release': UBI_92 }))!;

describe('package URLs', () => {
  test('the three ecosystems', () => {
    assert.equal(
      packageUrl({ name: 'openssl', version: '3.0.11-1~deb12u2', arch: 'amd64', type: 'deb', evidence: 'var/lib/dpkg/status' }, debian12),
      'pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12',
    );
    assert.equal(
      packageUrl({ name: 'musl', version: '1.2.4-r2', arch: 'x86_64', type: 'apk', evidence: 'lib/apk/db/installed' }, alpine319),
      'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.19.1',
    );
    // Qualifiers in the spec's canonical (sorted) order.
    assert.equal(
      packageUrl({ name: 'bash', version: '5.1.8', release: '6.el9', epoch: 1, arch: 'x86_64', type: 'rpm', evidence: 'var/lib/rpm/rpmdb.sqlite' }, rhel92),
      'pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64&distro=rhel-9.2&epoch=1',
    );
  });

  test('percent-encoding: + and spaces encoded, : and ~ kept; no OS', () => {
    assert.equal(
      packageUrl({ name: 'login', version: '1:4.13+dfsg1-1+b1', arch: 'amd64', type: 'deb', evidence: 'x' }),
      'pkg:deb/debian/login@1:4.13%2Bdfsg1-1%2Bb1?arch=amd64',
    );
    assert.equal(encodePurlComponent('a b/c@d?e#f%g&h=i+j:k~l'), 'a%20b%2Fc%40d%3Fe%23f%25g%26h%3Di%2Bj:k~l');
    assert.equal(encodePurlComponent('é'), '%C3%A9');
    assert.equal(buildPurl({ type: 'RPM', namespace: 'a/b', name: 'n', qualifiers: { Z: '1', a: '', b: undefined, c: 'x y' } }), 'pkg:rpm/a/b/n?c=x%20y&z=1');
    assert.equal(packageUrl({ name: 'bash', version: '5.1.8', release: '6', type: 'rpm', evidence: 'x' }), 'pkg:rpm/bash@5.1.8-6');
  });

  test('fullVersion and withOs', () => {
    assert.equal(fullVersion({ type: 'rpm', version: '5.1.8', release: '6.el9', epoch: 1 }), '1:5.1.8-6.el9');
    assert.equal(fullVersion({ type: 'rpm', version: '5.1.8', release: '6.el9', epoch: 0 }), '5.1.8-6.el9');
    assert.equal(fullVersion({ type: 'deb', version: '1:2.3-4' }), '1:2.3-4');
    const r = parseDpkgStatus('Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n', 'var/lib/dpkg/status');
    assert.equal(r.packages[0]!.purl, 'pkg:deb/debian/a@1?arch=all');
    assert.equal(withOs(r, debian12).packages[0]!.purl, 'pkg:deb/debian/a@1?arch=all&distro=debian-12');
  });
});

// ---------------------------------------------------------------------------------------------
// dpkg
// ---------------------------------------------------------------------------------------------

const STATUS = `Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Depends: libgcc-s1
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 A second paragraph.

Package: libc6
Status: install ok installed
Architecture: i386
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>

Package: bsdutils
Status: install ok installed
Architecture: amd64
Source: util-linux (2.38.1-5+deb12u3)
Version: 1:2.38.1-5+deb12u3
Maintainer: util-linux packagers <util-linux@packages.debian.org>
Conffiles:
 /etc/x 0123456789abcdef0123456789abcdef

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1
Conffiles:
 /etc/removed.conf 0123456789abcdef0123456789abcdef

Package: purged
Status: purge ok not-installed
Architecture: amd64

Package: broken-upgrade
Status: install reinstreq half-installed
Architecture: amd64
Version: 2.0-1

Package: only-unpacked
Status: install ok unpacked
Architecture: amd64
Version: 3.0-1

Package: held
Status: hold ok installed
Architecture: all
Version: 0.5
Maintainer: Someone <a@b.c>

Package: trig
Status: install ok triggers-pending
Architecture: amd64
Version: 7
Triggers-Pending: ldconfig

Package: selected-for-removal
Status: deinstall ok installed
Architecture: amd64
Version: 9

Package: no-version
Status: install ok installed
Architecture: amd64

Package: bad-status
Status: install fine
Version: 1

Package: no-status
Version: 1

this line is garbage
 and its continuation is dropped quietly
Package: after-garbage
Status: install ok installed
Version: 4.2
`;

describe('dpkg', () => {
  test('DPKG_PATHS and isDpkgPath', () => {
    assert.deepEqual(DPKG_PATHS, ['var/lib/dpkg/status', 'var/lib/dpkg/status.d/']);
    assert.ok(isDpkgPath('var/lib/dpkg/status'));
    assert.ok(isDpkgPath('/var/lib/dpkg/status'));
    assert.ok(isDpkgPath('./var/lib/dpkg/status.d/libc6'));
    assert.ok(!isDpkgPath('var/lib/dpkg/status.d/libc6.md5sums'));
    assert.ok(!isDpkgPath('var/lib/dpkg/status.d/'));
    assert.ok(!isDpkgPath('var/lib/dpkg/status.d/sub/x'));
    assert.ok(!isDpkgPath('var/lib/dpkg/status-old'));
    assert.ok(!isDpkgPath('var/lib/dpkg/available'));
  });

  test('status: installed states only, Source with and without version, findings for the rest', () => {
    const r = parseDpkgStatus(Buffer.from(STATUS.replace(/\n/g, '\r\n')), '/var/lib/dpkg/status', { os: debian12 });
    const got = r.packages.map((p) => [p.name, p.version, p.arch, p.source, p.sourceVersion]);
    assert.deepEqual(got, [
      ['libc6', '2.36-9+deb12u4', 'amd64', 'glibc', '2.36-9+deb12u4'],
      ['libc6', '2.36-9+deb12u4', 'i386', 'glibc', '2.36-9+deb12u4'],
      ['bsdutils', '1:2.38.1-5+deb12u3', 'amd64', 'util-linux', '2.38.1-5+deb12u3'],
      ['held', '0.5', 'all', 'held', '0.5'],
      ['trig', '7', 'amd64', 'trig', '7'],
      ['selected-for-removal', '9', 'amd64', 'selected-for-removal', '9'],
      ['after-garbage', '4.2', undefined, 'after-garbage', '4.2'],
    ]);
    const libc = r.packages[0]!;
    assert.equal(libc.maintainer, 'GNU Libc Maintainers <debian-glibc@lists.debian.org>');
    assert.equal(libc.license, undefined);
    assert.equal(libc.type, 'deb');
    assert.equal(libc.evidence, 'var/lib/dpkg/status');
    assert.equal(libc.purl, 'pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12');
    assert.equal(r.packages[2]!.purl, 'pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12');
    const messages = r.findings.map((f) => f.message).join('\n');
    assert.match(messages, /no-version has no Version/);
    assert.match(messages, /bad-status has an invalid Status/);
    assert.match(messages, /no-status has no Status field/);
    assert.match(messages, /not a "Field: value" line: "this line is garbage"/);
    assert.equal(r.findings.length, 4, messages);
    assert.ok(r.findings.every((f) => f.path === 'var/lib/dpkg/status'));
  });

  test('distroless status.d: control files without Status, md5sums ignored', () => {
    const dir = 'var/lib/dpkg/status.d/';
    const m = files({
      [dir + 'base-files']: 'Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\nMaintainer: Santiago Vila <sanvila@debian.org>\nEssential: yes\nDescription: Debian base system miscellaneous files\n',
      [dir + 'libssl3']: 'Package: libssl3\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nMaintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>\n',
      [dir + 'libssl3.md5sums']: 'd41d8cd98f00b204e9800998ecf8427e  usr/lib/x86_64-linux-gnu/libssl.so.3\n',
      [dir + 'tzdata']: 'Package: tzdata\nStatus: install ok installed\nVersion: 2024a-0+deb12u1\nArchitecture: all\n',
      'var/lib/dpkg/status.d.bak/x': 'Package: x\nVersion: 1\n',
    });
    const r = parseDpkgFiles(m, debian12);
    assert.deepEqual(
      r.packages.map((p) => [p.name, p.version, p.source, p.evidence]),
      [
        ['base-files', '12.4+deb12u5', 'base-files', dir + 'base-files'],
        ['libssl3', '3.0.11-1~deb12u2', 'openssl', dir + 'libssl3'],
        ['tzdata', '2024a-0+deb12u1', 'tzdata', dir + 'tzdata'],
      ],
    );
    assert.equal(r.packages[1]!.purl, 'pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12');
    assert.deepEqual(r.findings, []);
  });

  test('hostile input: never throws, findings are capped', () => {
    const junk = Array.from({ length: 5000 }, (_, i) => `junk line ${i}`).join('\n');
    const r = parseDpkgStatus(junk, 'var/lib/dpkg/status');
    assert.equal(r.packages.length, 0);
    assert.equal(r.findings.length, MAX_FINDINGS_PER_FILE + 1);
    assert.match(r.findings.at(-1)!.message, /4950 more/);
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) / 65536;
    for (let i = 0; i < 200; i++) {
      const buf = Buffer.from(STATUS);
      for (let k = 0; k < 20; k++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
      const cut = buf.subarray(0, Math.floor(rand() * buf.length));
      const out = parseDpkgStatus(cut, 'var/lib/dpkg/status');
      assert.ok(Array.isArray(out.packages) && Array.isArray(out.findings));
    }
    assert.deepEqual(parseDpkgStatus('', 'var/lib/dpkg/status'), { packages: [], findings: [] });
    assert.equal(parseDpkgStatus('Package: a b\nStatus: install ok installed\nVersion: 1\n', 'x').packages.length, 0);
    assert.equal(parseDpkgStatus('Package: a\nStatus: install ok installed\nVersion: 1 2\n', 'x').packages.length, 0);
  });

  test('parseDeb822: continuation lines, repeated fields, comments', () => {
    const problems: string[] = [];
    const ps = parseDeb822(' leading continuation\n# comment\nA: 1\n b\n\tc\nA: 2\n  d\n \t \nB:x\n', (l, m) => problems.push(`${l}: ${m}`));
    assert.equal(ps.length, 2);
    assert.equal(ps[0]!.fields.get('a'), '1\nb\nc');
    assert.equal(ps[0]!.line, 3);
    assert.equal(ps[1]!.fields.get('b'), 'x');
    assert.equal(problems.length, 2, problems.join('\n'));
  });

  test('debianCopyrightLicenses: machine-readable and free-form files', () => {
    const dep5 = `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: foo
Source: https://example.org/foo

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: lib/*
Copyright: 2021 Else
License: LGPL-2.1+ or   GPL-2+

Files: debian/*
License: GPL-2+

License: GPL-2+
 This program is free software; ...
 .
 On Debian systems, see /usr/share/common-licenses/GPL-2.

License: LGPL-2.1+ or GPL-2+
 text
`;
    assert.deepEqual(debianCopyrightLicenses(dep5), ['GPL-2+', 'LGPL-2.1+ or GPL-2+']);
    const free = `This package was debianized by someone.

It is licensed under the GPL, see /usr/share/common-licenses/GPL-3, and parts under
/usr/share/common-licenses/Apache-2.0. Also /usr/share/common-licenses/GPL-3.
`;
    assert.deepEqual(debianCopyrightLicenses(free), ['GPL-3', 'Apache-2.0']);
    assert.deepEqual(debianCopyrightLicenses(''), []);
    assert.equal(debianCopyrightPath('bash'), 'usr/share/doc/bash/copyright');
  });
});

// ---------------------------------------------------------------------------------------------
// apk
// ---------------------------------------------------------------------------------------------

const APK_DB = `C:Q1Xm9p6pQ7K0bEcjv1H9Vg2mWlhgw=
P:musl
V:1.2.4-r2
A:x86_64
S:407278
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1698073423
c:e7a8e4bfba5f9a4f38e98d4c6c7ecd1f0b2d7d7f
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1Bm6E5z2QDdnzYmV6ZHw5pIX4wS0=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1abc=
P:libcrypto3
V:3.1.4-r5
A:x86_64
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
D:so:libc.musl-x86_64.so.1
this line is broken
F:usr/lib

P:no-version-here
A:x86_64

F:orphan/files
R:x

P:busybox
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only`;

describe('apk', () => {
  test('installed database: fields, origin, license, broken lines', () => {
    assert.deepEqual(APK_PATHS, ['lib/apk/db/installed']);
    assert.ok(isApkPath('/lib/apk/db/installed') && !isApkPath('lib/apk/db/triggers'));
    const r = parseApkInstalled(Buffer.from(APK_DB), 'lib/apk/db/installed', alpine319);
    assert.deepEqual(
      r.packages.map((p) => [p.name, p.version, p.arch, p.source, p.sourceVersion, p.license]),
      [
        ['musl', '1.2.4-r2', 'x86_64', 'musl', '1.2.4-r2', 'MIT'],
        ['libcrypto3', '3.1.4-r5', 'x86_64', 'openssl', '3.1.4-r5', 'Apache-2.0'],
        ['busybox', '1.36.1-r15', 'x86_64', 'busybox', '1.36.1-r15', 'GPL-2.0-only'],
      ],
    );
    assert.equal(r.packages[0]!.maintainer, 'Timo Teräs <timo.teras@iki.fi>');
    assert.equal(r.packages[0]!.purl, 'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.19.1');
    assert.equal(r.packages[1]!.purl, 'pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=3.19.1');
    const messages = r.findings.map((f) => f.message);
    assert.equal(messages.length, 3, messages.join('\n'));
    assert.match(messages[0]!, /line 31: not a "X:value" line/);
    assert.match(messages[1]!, /no-version-here has no version/);
    assert.match(messages[2]!, /block without a package name/);
  });

  test('hostile input never throws', () => {
    assert.deepEqual(parseApkInstalled(Buffer.alloc(0), 'lib/apk/db/installed'), { packages: [], findings: [] });
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) / 65536;
    for (let i = 0; i < 200; i++) {
      const buf = Buffer.from(APK_DB);
      for (let k = 0; k < 30; k++) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
      const out = parseApkInstalled(buf, 'lib/apk/db/installed');
      assert.ok(out.findings.length <= MAX_FINDINGS_PER_FILE + 1);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// rpm
// ---------------------------------------------------------------------------------------------

const BASH = { name: 'bash', version: '5.1.8', release: '6.el9', epoch: 1, arch: 'x86_64', license: 'GPLv3+', vendor: 'Red Hat, Inc.', sourceRpm: 'bash-5.1.8-6.el9.src.rpm' };

/** Overwrite one big-endian int32 of index entry `i`'s field (0 tag, 1 type, 2 offset, 3 count). */
function patchEntry(blob: Buffer, i: number, field: number, value: number): Buffer {
  const b = Buffer.from(blob);
  b.writeInt32BE(value | 0, 8 + 16 * i + 4 * field);
  return b;
}

function entryIndexOf(blob: Buffer, tag: number): number {
  const il = blob.readUInt32BE(0);
  for (let i = 0; i < il; i++) if (blob.readInt32BE(8 + 16 * i) === tag) return i;
  throw new Error(`no tag ${tag}`);
}

function expectInvalid(blob: Buffer, re: RegExp): void {
  const r = parseRpmHeader(blob);
  assert.ok(r instanceof PlinthError, `expected an error, got ${JSON.stringify(r)}`);
  assert.equal(r.code, 'PACKAGE_DB_INVALID');
  assert.match(r.message, re);
}

describe('rpm headers', () => {
  test('round trip through the encoder, with and without a region', () => {
    for (const region of [true, false]) {
      const h = parseRpmHeader(rpmPackageHeader(BASH, { region }));
      assert.deepEqual(h, BASH);
    }
    const min = parseRpmHeader(rpmPackageHeader({ name: 'filesystem', version: '3.16', release: '2.el9' }));
    assert.deepEqual(min, { name: 'filesystem', version: '3.16', release: '2.el9' });
    const utf = parseRpmHeader(rpmPackageHeader({ ...BASH, vendor: 'Ünïcødé vendor' }));
    assert.equal((utf as { vendor: string }).vendor, 'Ünïcødé vendor');
    const idx = indexRpmHeader(rpmPackageHeader(BASH));
    assert.ok(!(idx instanceof PlinthError));
    assert.equal(idx.regionTag, 63);
  });

  test('dribbles after the region replace region entries', () => {
    const blob = rpmPackageHeader(BASH, { dribbles: [[1002, { type: 'string', value: '7.el9_3' }], [1008, { type: 'int32', value: [1700000000] }]] });
    const h = parseRpmHeader(blob);
    assert.ok(!(h instanceof PlinthError));
    assert.equal(h.release, '7.el9_3');
  });

  test('I18NSTRING and STRING_ARRAY values are read as their first string', () => {
    const blob = encodeRpmHeader([
      [1000, { type: 'i18n', value: ['name-c', 'name-de'] }],
      [1001, { type: 'strings', value: ['1.0'] }],
      [1002, { type: 'string', value: '1' }],
    ]);
    assert.deepEqual(parseRpmHeader(blob), { name: 'name-c', version: '1.0', release: '1' });
  });

  test('hostile blobs give errors, never exceptions', () => {
    const good = rpmPackageHeader(BASH, { dribbles: [[1008, { type: 'int32', value: [1] }]] });
    // Every truncation, and one byte too many.
    for (let n = 0; n < good.length; n++) assert.ok(parseRpmHeader(good.subarray(0, n)) instanceof PlinthError, `truncated to ${n}`);
    expectInvalid(Buffer.concat([good, Buffer.alloc(1)]), /intro says/);
    expectInvalid(Buffer.alloc(0), /shorter than its 8-byte intro/);
    // Huge counts in the intro: refused before anything is allocated.
    const hugeIl = Buffer.from(good);
    hugeIl.writeUInt32BE(0x7fffffff, 0);
    expectInvalid(hugeIl, /index count 2147483647 out of range/);
    const hugeDl = Buffer.from(good);
    hugeDl.writeUInt32BE(0xffffffff, 4);
    expectInvalid(hugeDl, /data length 4294967295 out of range/);
    const zeroIl = Buffer.alloc(8);
    expectInvalid(zeroIl, /index count 0/);
    // Entries.
    const iName = entryIndexOf(good, 1000);
    const iBase = entryIndexOf(good, 1117);
    const iSize = entryIndexOf(good, 1009);
    const dl = good.readUInt32BE(4);
    expectInvalid(patchEntry(good, iName, 2, dl + 100), /outside the .*data store/);
    expectInvalid(patchEntry(good, iName, 2, -8), /outside the .*data store/);
    expectInvalid(patchEntry(good, iBase, 3, 0x7fffffff), /count 2147483647 out of range/);
    expectInvalid(patchEntry(good, iBase, 3, 0), /count 0 out of range/);
    expectInvalid(patchEntry(good, iBase, 3, dl - 1), /runs past the end|overlaps/);
    expectInvalid(patchEntry(good, iSize, 2, good.readInt32BE(8 + 16 * iSize + 8) + 1), /not aligned/);
    expectInvalid(patchEntry(good, iName, 1, 99), /unknown type 99/);
    expectInvalid(patchEntry(good, iName, 3, 2), /count 2 \(want 1\)/);
    expectInvalid(patchEntry(good, iName, 0, 50), /tag number below 100/);
    expectInvalid(patchEntry(good, iName + 1, 2, good.readInt32BE(8 + 16 * iName + 8)), /overlaps/);
    // Region tag and trailer.
    expectInvalid(patchEntry(good, 0, 3, 17), /region tag 63 has type 7 and count 17/);
    expectInvalid(patchEntry(good, 0, 2, dl - 8), /region trailer offset|region trailer is/);
    const trailerAt = 8 + 16 * good.readUInt32BE(0) + good.readInt32BE(8 + 8);
    const badTrailer = Buffer.from(good);
    badTrailer.writeInt32BE(-(1000 * 16), trailerAt + 8);
    expectInvalid(badTrailer, /region has 1000 entries/);
    const oddTrailer = Buffer.from(good);
    oddTrailer.writeInt32BE(-17, trailerAt + 8);
    expectInvalid(oddTrailer, /region/);
    // A string without its NUL at the very end of the data store.
    const last = encodeRpmHeader([[1000, { type: 'string', value: 'bash' }], [1001, { type: 'string', value: '1' }], [1002, { type: 'string', value: '1' }]], { region: false });
    const noNul = Buffer.from(last);
    noNul[noNul.length - 1] = 0x41;
    expectInvalid(noNul, /runs past the end/);
    // Well-formed, but not a package.
    expectInvalid(encodeRpmHeader([[1000, { type: 'int32', value: [5] }]]), /tag 1000 has type 4, not a string/);
    expectInvalid(rpmPackageHeader({ version: '1', release: '1' }), /no NAME/);
    expectInvalid(rpmPackageHeader({ name: 'x', release: '1' }), /no VERSION/);
    expectInvalid(rpmPackageHeader({ name: 'x', version: '1' }), /no RELEASE/);
    expectInvalid(encodeRpmHeader([[1000, { type: 'string', value: 'x' }], [1001, { type: 'string', value: '1' }], [1002, { type: 'string', value: '1' }], [1003, { type: 'string', value: '1' }]]), /not INT32/);
    expectInvalid(rpmPackageHeader({ ...BASH, epoch: -1 }), /negative EPOCH/);
  });

  test('random corruption never throws', () => {
    const good = rpmPackageHeader(BASH, { dribbles: [[1008, { type: 'int32', value: [1] }]] });
    let seed = 1234567;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) / 65536;
    let ok = 0;
    let bad = 0;
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(good);
      const flips = 1 + Math.floor(rand() * 6);
      for (let k = 0; k < flips; k++) {
        // Aim at the index half the time: that is where the structure lives.
        const pos = rand() < 0.5 ? Math.floor(rand() * (8 + 16 * b.readUInt32BE(0) || b.length)) % b.length : Math.floor(rand() * b.length);
        b[pos] = Math.floor(rand() * 256);
      }
      const r = parseRpmHeader(b);
      if (r instanceof PlinthError) bad++;
      else {
        ok++;
        assert.equal(typeof r.name, 'string');
      }
    }
    for (let i = 0; i < 500; i++) {
      const b = Buffer.alloc(Math.floor(rand() * 200));
      for (let k = 0; k < b.length; k++) b[k] = Math.floor(rand() * 256);
      if (b.length >= 8 && rand() < 0.5) {
        // Make the intro consistent so the index checks run.
        const il = 1 + Math.floor(rand() * 4);
        if (8 + 16 * il <= b.length) {
          b.writeUInt32BE(il, 0);
          b.writeUInt32BE(b.length - 8 - 16 * il, 4);
        }
      }
      assert.doesNotThrow(() => parseRpmHeader(b));
    }
    assert.ok(ok > 0 && bad > 0, `ok ${ok} bad ${bad}`);
  });

  test('splitSourceRpm', () => {
    assert.deepEqual(splitSourceRpm('bash-5.1.8-6.el9.src.rpm'), { name: 'bash', version: '5.1.8', release: '6.el9' });
    assert.deepEqual(splitSourceRpm('python3.11-pip-22.3.1-4.el9.noarch.src.rpm'), { name: 'python3.11-pip', version: '22.3.1', release: '4.el9.noarch' });
    assert.deepEqual(splitSourceRpm('kernel-5.14.0-362.8.1.el9_3.nosrc.rpm'), { name: 'kernel', version: '5.14.0', release: '362.8.1.el9_3' });
    assert.equal(splitSourceRpm('(none)'), undefined);
    assert.equal(splitSourceRpm('nodashes.src.rpm'), undefined);
  });
});

describe('rpm databases', () => {
  test('paths and formats', () => {
    for (const p of RPM_PATHS) assert.ok(isRpmPath(p) && isRpmPath('/' + p));
    assert.ok(!isRpmPath('var/lib/rpm/Basenames'));
    assert.equal(rpmDbFormat('var/lib/rpm/rpmdb.sqlite'), 'sqlite');
    assert.equal(rpmDbFormat('var/lib/rpm/Packages'), 'berkeleydb');
    assert.equal(rpmDbFormat('usr/lib/sysimage/rpm/Packages.db'), 'ndb');
    assert.equal(rpmDbFormat('var/lib/rpm/other'), undefined);
    const sqliteHead = Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(84)]);
    assert.equal(rpmDbFormat('var/lib/rpm/Packages', sqliteHead), 'sqlite');
    const bdb = Buffer.alloc(64);
    bdb.writeUInt32LE(0x00061561, 12);
    assert.equal(rpmDbFormat('var/lib/rpm/rpmdb.sqlite', bdb), 'berkeleydb');
    const ndb = Buffer.concat([Buffer.from('RpmP', 'latin1'), Buffer.alloc(60)]);
    assert.equal(rpmDbFormat('x/Packages.db', ndb), 'ndb');
  });

  test('BerkeleyDB and NDB are reported as unsupported, not read', () => {
    const b = readRpmDb('/var/lib/rpm/Packages', {});
    assert.ok(isRpmUnsupported(b));
    assert.equal(b.unsupported, 'berkeleydb');
    assert.equal(b.path, 'var/lib/rpm/Packages');
    assert.match(b.message, /BerkeleyDB format/);
    const n = readRpmDb('usr/lib/sysimage/rpm/Packages.db', {});
    assert.ok(isRpmUnsupported(n));
    assert.equal(n.unsupported, 'ndb');
  });

  test('SQLite through a supplied reader: packages, findings, gpg-pubkey skipped, reader failures', () => {
    const blobs = [
      rpmPackageHeader(BASH),
      rpmPackageHeader({ name: 'gpg-pubkey', version: 'fd431d51', release: '4ae0493b' }),
      Buffer.from('definitely not a header'),
      rpmPackageHeader({ name: 'openssl-libs', version: '3.0.7', release: '24.el9', epoch: 1, arch: 'x86_64', license: 'ASL 2.0', sourceRpm: 'openssl-3.0.7-24.el9.src.rpm' }),
      rpmPackageHeader({ name: 'weird', version: '1', release: '1', sourceRpm: 'garbage' }),
    ];
    const seen: string[] = [];
    const reader: SqliteReader = (file) => {
      seen.push(file);
      return blobs;
    };
    const r = readRpmDb('var/lib/rpm/rpmdb.sqlite', { sqlite: reader, file: '/tmp/copy.sqlite', os: rhel92 });
    assert.ok(!isRpmUnsupported(r));
    assert.deepEqual(seen, ['/tmp/copy.sqlite']);
    assert.deepEqual(
      r.packages.map((p) => [p.name, fullVersion(p), p.arch, p.source, p.sourceVersion, p.license, p.vendor, p.purl]),
      [
        ['bash', '1:5.1.8-6.el9', 'x86_64', 'bash', '5.1.8-6.el9', 'GPLv3+', 'Red Hat, Inc.', 'pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64&distro=rhel-9.2&epoch=1'],
        ['openssl-libs', '1:3.0.7-24.el9', 'x86_64', 'openssl', '3.0.7-24.el9', 'ASL 2.0', undefined, 'pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rhel-9.2&epoch=1'],
        ['weird', '1-1', undefined, undefined, undefined, undefined, undefined, 'pkg:rpm/redhat/weird@1-1?distro=rhel-9.2'],
      ],
    );
    assert.deepEqual(
      r.findings.map((f) => [f.path, f.message.replace(/:.*/, '')]),
      [
        ['var/lib/rpm/rpmdb.sqlite', 'package 3'],
        ['var/lib/rpm/rpmdb.sqlite', 'package 5 (weird)'],
      ],
    );
    const failing = readRpmDb('var/lib/rpm/rpmdb.sqlite', {
      sqlite: () => {
        throw new Error('file is not a database');
      },
    });
    assert.ok(!isRpmUnsupported(failing));
    assert.deepEqual(failing.packages, []);
    assert.match(failing.findings[0]!.message, /cannot read the SQLite rpm database: file is not a database/);
    const noReader = readRpmDb('var/lib/rpm/rpmdb.sqlite', {});
    assert.ok(!isRpmUnsupported(noReader) && /no SQLite reader/.test(noReader.findings[0]!.message));
    assert.deepEqual(parseRpmBlobs([], 'var/lib/rpm/rpmdb.sqlite'), { packages: [], findings: [] });
  });

  // A real rpm database, when rpm, rpmbuild and sqlite3 are on the machine (Debian packages
  // `rpm` and `sqlite3`): build two packages, record them with `rpm --justdb` in a fresh SQLite
  // database, read the blobs through the sqlite3 CLI and compare with `rpm -qa`.
  const haveRpm = commandExists('rpm') && commandExists('rpmbuild') && commandExists('sqlite3');
  test('a database written by rpm itself agrees with rpm -qa', { skip: haveRpm ? false : 'needs rpm, rpmbuild and sqlite3 (apt-get install rpm sqlite3)' }, () => {
    const top = mkdtempSync(join(tmpdir(), 'plinth-rpm-'));
    try {
      mkdirSync(join(top, 'SPECS'));
      const spec = (name: string, extra: string, arch: string) => `Name: ${name}
Version: 1.2.3
Release: 4.el9
${extra}
Summary: Plinth test package
License: MIT AND (Apache-2.0 OR GPL-2.0-or-later)
Vendor: Plinth Tests
${arch}
%description
A package for Plinth's tests.
%install
mkdir -p %{buildroot}/usr/share/${name}
echo hi > %{buildroot}/usr/share/${name}/hello.txt
%files
/usr/share/${name}/hello.txt
`;
      writeFileSync(join(top, 'SPECS', 'a.spec'), spec('plinth-epoch', 'Epoch: 2', 'BuildArch: noarch'));
      writeFileSync(join(top, 'SPECS', 'b.spec'), spec('plinth-plain', '', ''));
      for (const s of ['a.spec', 'b.spec']) execFileSync('rpmbuild', ['--define', `_topdir ${top}`, '-bb', join(top, 'SPECS', s)], { stdio: 'pipe' });
      const rpms: string[] = [];
      for (const d of readdirSync(join(top, 'RPMS'))) for (const f of readdirSync(join(top, 'RPMS', d))) rpms.push(join(top, 'RPMS', d, f));
      const db = join(top, 'db');
      mkdirSync(db);
      const rpmArgs = ['--dbpath', db, '--define', '_db_backend sqlite'];
      execFileSync('rpm', [...rpmArgs, '--initdb'], { stdio: 'pipe' });
      execFileSync('rpm', [...rpmArgs, '-i', '--justdb', '--nodeps', '--noscripts', ...rpms], { stdio: 'pipe' });
      const expected = execFileSync('rpm', [...rpmArgs, '-qa', '--qf', '%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\t%{LICENSE}\t%{VENDOR}\n'], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .sort();
      const sqlite: SqliteReader = (file) =>
        execFileSync('sqlite3', ['-readonly', file, 'SELECT hex(blob) FROM Packages ORDER BY hnum'], { encoding: 'utf8', maxBuffer: 256 << 20 })
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => Buffer.from(l, 'hex'));
      const r = readRpmDb('var/lib/rpm/rpmdb.sqlite', { sqlite, file: join(db, 'rpmdb.sqlite') });
      assert.ok(!isRpmUnsupported(r));
      assert.deepEqual(r.findings, []);
      const got = r.packages
        .map((p) => [p.name, `${p.epoch ?? 0}:${p.version}-${p.release}`, p.arch, `${p.source}-${p.sourceVersion}.src.rpm`, p.license, p.vendor].join('\t'))
        .sort();
      assert.deepEqual(got, expected);
      assert.equal(got.length, 2);
      const head = readFileSync(join(db, 'rpmdb.sqlite')).subarray(0, 100);
      assert.equal(rpmDbFormat('var/lib/rpm/rpmdb.sqlite', head), 'sqlite');
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// A real Debian root filesystem (debootstrap --variant=minbase bookworm)
// ---------------------------------------------------------------------------------------------

const ROOTFS = process.env['PLINTH_ROOTFS'] || join(repoRoot(), '.cache', 'rootfs-bookworm');
const haveRootfs = existsSync(join(ROOTFS, 'var', 'lib', 'dpkg', 'status'));
const haveDpkgQuery = commandExists('dpkg-query');
const rootfsSkip = !haveRootfs
  ? `no Debian rootfs at ${ROOTFS} (set PLINTH_ROOTFS, or make one with: debootstrap --variant=minbase bookworm <repo>/.cache/rootfs-bookworm)`
  : !haveDpkgQuery
    ? 'dpkg-query is not installed'
    : false;

describe('real Debian bookworm rootfs', () => {
  test('dpkg status agrees exactly with dpkg-query', { skip: rootfsSkip }, (t) => {
    const admindir = join(ROOTFS, 'var', 'lib', 'dpkg');
    const q = (fmt: string) =>
      execFileSync('dpkg-query', ['-W', `-f=${fmt}`, `--admindir=${admindir}`], { encoding: 'utf8', maxBuffer: 64 << 20 })
        .split('\n')
        .filter((l) => l !== '');
    const expected = q('${Package}\\t${Version}\\t${Architecture}\\n').sort();
    // dpkg-query -W lists every package it knows, installed or not; this rootfs has only installed ones.
    assert.ok(q('${db:Status-Status}\\n').every((s) => s === 'installed'));
    const r = parseDpkgStatus(readFileSync(join(admindir, 'status')), 'var/lib/dpkg/status', { os: debian12 });
    assert.deepEqual(r.findings, []);
    const got = r.packages.map((p) => `${p.name}\t${p.version}\t${p.arch}`).sort();
    assert.deepEqual(got, expected);
    assert.ok(got.length > 50, `only ${got.length} packages`);
    t.diagnostic(`rootfs ${ROOTFS}: ${got.length} packages, equal to dpkg-query's list`);
    for (const p of r.packages) {
      assert.ok(p.purl.startsWith(`pkg:deb/debian/${encodePurlComponent(p.name)}@`), p.purl);
      assert.ok(p.purl.endsWith('&distro=debian-12'), p.purl);
      const v = p.purl.slice(p.purl.indexOf('@') + 1, p.purl.indexOf('?'));
      assert.equal(decodeURIComponent(v), p.version);
    }
    // Source packages agree with dpkg-query's ${source:Package} / ${source:Version}.
    const sources = q('${Package}:${Architecture}\\t${source:Package}\\t${source:Version}\\n').sort();
    assert.deepEqual(r.packages.map((p) => `${p.name}:${p.arch}\t${p.source}\t${p.sourceVersion}`).sort(), sources);
  });

  test('detectOs says Debian 12 (bookworm), with and without following the os-release symlink', { skip: rootfsSkip }, (t) => {
    // As a layer pass sees it: symlinks carry no bytes (etc/os-release → ../usr/lib/os-release).
    const asLayer = new Map<string, Buffer>();
    const followed = new Map<string, Buffer>();
    for (const p of OS_PATHS) {
      const full = join(ROOTFS, p);
      if (!existsSync(full)) continue;
      followed.set(p, readFileSync(full));
      if (!lstatSync(full).isSymbolicLink()) asLayer.set(p, readFileSync(full));
    }
    for (const m of [asLayer, followed]) {
      const os = detectOs(m)!;
      assert.equal(os.family, 'debian');
      assert.equal(os.version, '12');
      assert.equal(os.codename, 'bookworm');
      assert.equal(advisoryEcosystem(os), 'Debian:12');
    }
    t.diagnostic(`rootfs OS: ${JSON.stringify(detectOs(asLayer))}`);
  });

  test('copyright files name licenses for most packages', { skip: rootfsSkip }, (t) => {
    const r = parseDpkgStatus(readFileSync(join(ROOTFS, 'var', 'lib', 'dpkg', 'status')), 'var/lib/dpkg/status');
    let withLicense = 0;
    const licenses = new Map<string, string[]>();
    for (const p of r.packages) {
      const f = join(ROOTFS, debianCopyrightPath(p.name));
      if (!existsSync(f)) continue;
      const l = debianCopyrightLicenses(readFileSync(f, 'utf8'));
      licenses.set(p.name, l);
      if (l.length > 0) withLicense++;
    }
    assert.ok(licenses.get('bash')?.includes('GPL-3+'), JSON.stringify(licenses.get('bash')));
    assert.ok(withLicense >= r.packages.length * 0.8, `${withLicense} of ${r.packages.length}`);
    t.diagnostic(`rootfs copyright: ${withLicense} of ${r.packages.length} packages name a license`);
  });
});
