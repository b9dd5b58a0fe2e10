/**
 * Golden bases end to end: a vendor rootfs imported reproducibly (the real debootstrap bookworm
 * tree that setup builds, checked with the real umoci), hostile inputs refused, checksums and
 * GPG signatures checked with the real gpgv, the gate on a real advisory database, publish to a
 * real registry (signed: the real cosign verifies it), supersede, deprecate, consumers found by
 * layers, notifications delivered to a local receiver that fails first, and the build config.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import tar from 'tar-stream';
import { parse as parseYaml } from 'yaml';
import { MemorySource } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination, openSource } from '../src/source/open.js';
import { resolveRoot, selectImages, readConfig } from '../src/source/image.js';
import { digestOf } from '../src/oci/digest.js';
import { generateKeyPair } from '../src/sign/keys.js';
import { openStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';
import { importRootfs } from '../src/golden/import.js';
import { deliver } from '../src/notify/notify.js';
import { listenOnLoopback, repoRoot, runPlinth } from './helpers/common.js';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { peer, debianTool } from './helpers/peers.js';

const execFileP = promisify(execFile);
const env = { ...process.env, PLINTH_PASSWORD: 'pw', COSIGN_PASSWORD: 'pw', SOURCE_DATE_EPOCH: '' };
const plinth = (args: string[], input?: string) => runPlinth(args, { env, ...(input !== undefined ? { input } : {}) });
const ROOTFS = path.join(repoRoot(), '.cache', 'rootfs-bookworm');

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device'; content?: string; linkname?: string; mode?: number; uid?: number; gid?: number; mtime?: number; devmajor?: number; devminor?: number };

async function makeTar(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  for (const e of entries) {
    const big = (e.uid ?? 0) > 0o7777777;
    const h = { name: e.name, type: e.type ?? 'file', mode: e.mode === 0 ? 0o100000 : e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), ...(big ? { pax: { uid: String(e.uid), gid: String(e.gid) } } : {}), uid: big ? 0 : e.uid ?? 0, gid: big ? 0 : e.gid ?? 0, mtime: new Date((e.mtime ?? 1_700_000_000) * 1000), ...(e.linkname ? { linkname: e.linkname } : {}), ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}) } as tar.Header;
    await new Promise<void>((resolve, reject) => (e.type && e.type !== 'file' ? pack.entry(h, (err) => (err ? reject(err) : resolve())) : pack.entry(h, e.content ?? '', (err) => (err ? reject(err) : resolve()))));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const dpkg = (pkgs: Array<[string, string, string?]>) => pkgs.map(([n, v, s]) => `Package: ${n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n${s ? `Source: ${s}\n` : ''}`).join('\n');
const smallRootfs = (libc: string, extra: Entry[] = []): Entry[] => [
  { name: './', type: 'directory' },
  { name: './etc/', type: 'directory' },
  { name: './etc/os-release', content: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' },
  { name: './bin/', type: 'directory' },
  { name: './bin/sh', content: '#!fake shell\n', mode: 0o755 },
  { name: './bin/dash', type: 'link', linkname: './bin/sh' },
  { name: './usr/', type: 'directory' },
  { name: './usr/bin/', type: 'directory' },
  { name: './usr/bin/su', content: 'setuid', mode: 0o4755 },
  { name: './usr/bin/sh', type: 'symlink', linkname: '../../bin/sh' },
  { name: './etc/escape', type: 'symlink', linkname: '../../../../etc/shadow' },
  { name: './etc/shadow', content: 'root:*:1::::::\n', mode: 0 },
  { name: './etc/bigid', content: 'x', uid: 3_000_000, gid: 3_000_001 } as Entry,
  { name: './dev/', type: 'directory' },
  { name: './dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
  { name: './home/', type: 'directory' },
  { name: './home/user/', type: 'directory', uid: 1000, gid: 1000 },
  { name: './var/', type: 'directory' },
  { name: './var/lib/', type: 'directory' },
  { name: './var/lib/dpkg/', type: 'directory' },
  { name: './var/lib/dpkg/status', content: dpkg([['libc6', libc, 'glibc'], ['openssl', '3.0.11-1~deb12u2']]) },
  ...extra,
];

/** A listing of a tree as `tar --compare` would judge it: type, mode, owner, size/content hash, link targets, hard-link groups, device numbers, mtimes of non-directories. */
async function listing(root: string): Promise<string[]> {
  const out: string[] = [];
  const inodes = new Map<string, string>();
  const walk = async (rel: string) => {
    for (const n of (await readdir(path.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await lstat(path.join(root, r));
      let extra = '';
      if (st.isSymbolicLink()) extra = `-> ${await readlink(path.join(root, r))}`;
      else if (st.isFile()) {
        extra = `${st.size} ${createHash('sha256').update(await readFile(path.join(root, r))).digest('hex').slice(0, 16)}`;
        if (st.nlink > 1) {
          const k = `${st.dev}:${st.ino}`;
          if (!inodes.has(k)) inodes.set(k, r);
          extra += ` link=${inodes.get(k)}`;
        }
      } else if (st.isCharacterDevice() || st.isBlockDevice()) extra = `dev ${st.rdev}`;
      out.push(`${r} ${(st.mode >>> 12).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isDirectory() ? '' : Math.floor(st.mtimeMs / 1000)} ${extra}`);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  return out;
}

describe('golden import: reproducible images from a real debootstrap rootfs', { skip: existsSync(path.join(ROOTFS, 'var/lib/dpkg/status')) ? false : 'no debootstrap rootfs in .cache (./scripts/setup.sh builds it as root)' }, () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-golden-deb-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('the same tarball imports to the same digest; touched files with SOURCE_DATE_EPOCH too; umoci unpack gives the input back', async () => {
    const tarball = path.join(work, 'bookworm.tar');
    await execFileP('tar', ['-C', ROOTFS, '-cf', tarball, '.']);
    const imp = async (file: string, out: string, epoch?: string) => {
      const r = await runPlinth(['golden', 'import', file, '--name', 'registry.example/golden/debian', '--version', '12', '--output', `oci:${out}:12`, '--format', 'json', '--source-url', 'https://deb.debian.org/debian'], { env: { ...env, SOURCE_DATE_EPOCH: epoch ?? '' } });
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as { digest: string; sourceDateEpoch: number; platforms: Array<{ entries: number; input: { sha256: string }; layer: { digest: string; diffId: string } }> };
    };
    const a = await imp(tarball, path.join(work, 'a'));
    const b = await imp(tarball, path.join(work, 'b'));
    assert.equal(a.digest, b.digest);
    assert.ok(a.platforms[0]!.entries > 5000);
    // The same tree with every mtime moved to now ("touched"), with a SOURCE_DATE_EPOCH no later
    // than the oldest mtime (mtimes are clamped to it, so both trees end up with the same times).
    const touched = path.join(work, 'touched.tar');
    await execFileP('tar', ['-C', ROOTFS, `--mtime=@${Math.floor(Date.now() / 1000)}`, '-cf', touched, '.']);
    const epoch = '315532800';
    const c = await imp(tarball, path.join(work, 'c'), epoch);
    const d = await imp(touched, path.join(work, 'd'), epoch);
    // The layer is byte for byte the same; the image differs only where it records its input
    // (the touched tarball is other bytes, with another sha256).
    assert.equal(c.platforms[0]!.layer.digest, d.platforms[0]!.layer.digest);
    assert.equal(c.platforms[0]!.layer.diffId, d.platforms[0]!.layer.diffId);
    assert.notEqual(c.platforms[0]!.input.sha256, d.platforms[0]!.input.sha256);
    const cfgC = JSON.parse((await plinth(['config', `oci:${path.join(work, 'c')}:12`])).stdout);
    const cfgD = JSON.parse((await plinth(['config', `oci:${path.join(work, 'd')}:12`])).stdout);
    const strip = (cfg: any) => JSON.stringify(cfg).replaceAll(/[a-f0-9]{64}/g, 'HEX').replaceAll(/touched\.tar|bookworm\.tar/g, 'INPUT');
    assert.equal(strip(cfgC), strip(cfgD));
    assert.notEqual(c.digest, a.digest);
    assert.equal(d.sourceDateEpoch, 315532800);
    // umoci unpacks the image to exactly the input tree.
    const bundle = path.join(work, 'bundle');
    await execFileP(debianTool('umoci', 'umoci'), ['unpack', '--image', `${path.join(work, 'a')}:12`, bundle]);
    const want = await listing(ROOTFS);
    const got = await listing(path.join(bundle, 'rootfs'));
    assert.equal(got.length, want.length);
    const diff = want.filter((l, i) => got[i] !== l).slice(0, 5);
    assert.deepEqual(diff, [], `first differences: ${diff.map((l) => `\n  want ${l}\n  got  ${got[want.indexOf(l)]}`).join('')}`);
    // And provenance answers "how can I rebuild it?" from the labels.
    const p = JSON.parse((await plinth(['provenance', `oci:${path.join(work, 'a')}:12`, '--format', 'json'])).stdout);
    assert.equal(p.where.source, 'https://deb.debian.org/debian');
    assert.equal(p.what.version, '12');
    const cfg = JSON.parse((await plinth(['config', `oci:${path.join(work, 'a')}:12`])).stdout);
    assert.equal(cfg.config.Labels['dev.plinth.golden.input.sha256'], a.platforms[0]!.input.sha256);
    assert.match(cfg.history[0].created_by, /plinth golden import bookworm\.tar \(sha256:[a-f0-9]{64}\)/);
  });
});

describe('golden: inputs, gate, publish, deprecate, consumers, notify, build', () => {
  let work: string;
  let reg: TestRegistry;
  let v1: string;
  let v2: string;
  let dbFile: string;
  let catalog: string;
  let key: string;
  let pub: string;

  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-golden-'));
    reg = await startRegistry();
    await writeFile(path.join(work, 'v1.tar'), await makeTar(smallRootfs('2.36-9+deb12u3')));
    await writeFile(path.join(work, 'v2.tar'), await makeTar(smallRootfs('2.36-9+deb12u7')));
    v1 = path.join(work, 'v1.tar');
    v2 = path.join(work, 'v2.tar');
    const adv = path.join(work, 'osv');
    await mkdir(adv);
    await writeFile(path.join(adv, 'a.json'), JSON.stringify({ id: 'DEBIAN-CVE-2024-2961', aliases: ['CVE-2024-2961'], modified: '2024-05-01T00:00:00Z', summary: 'glibc iconv overflow', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N' }], affected: [{ package: { ecosystem: 'Debian:12', name: 'glibc' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.36-9+deb12u7' }] }] }] }));
    dbFile = path.join(work, 'vuln.db');
    const s = openStore(dbFile);
    await importPaths(s, [adv]);
    s.close();
    catalog = path.join(work, 'catalog.yaml');
    const kp = await generateKeyPair('pw');
    key = path.join(work, 'golden.key');
    pub = path.join(work, 'golden.pub');
    await writeFile(key, kp.privateKeyPem);
    await writeFile(pub, kp.publicKeyPem);
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('formats and hostile inputs: xz/zstd/gzip equal the plain tar; bad paths, links, checksums and compression are refused by name', async () => {
    const plain = await importRootfs([{ platform: { os: 'linux', architecture: 'amd64' }, file: v1 }], { name: 'r/x', version: '1' });
    for (const [tool, ext] of [['gzip', 'gz'], ['xz', 'xz'], ['zstd', 'zst']] as const) {
      const f = path.join(work, `v1.tar.${ext}`);
      await execFileP('sh', ['-c', `${tool} -c < ${v1} > ${f}`]);
      const r = await importRootfs([{ platform: { os: 'linux', architecture: 'amd64' }, file: f }], { name: 'r/x', version: '1' });
      assert.equal(r.platforms[0]!.layer.diffId, plain.platforms[0]!.layer.diffId, tool);
    }
    // Symlinks are kept as written (never followed), setuid and devices and hard links kept.
    const src = plain.source;
    const layer = src.blobs.get(plain.platforms[0]!.layer.digest)!;
    const names: string[] = [];
    const ex = tar.extract();
    ex.on('entry', (h, s, next) => {
      names.push(`${h.name} ${h.type} ${(h.mode ?? 0).toString(8)}${h.linkname ? ` -> ${h.linkname}` : ''}${h.type === 'character-device' ? ` ${h.devmajor},${h.devminor}` : ''}${(h.pax as Record<string, string> | undefined)?.uid ? ` uid=${(h.pax as Record<string, string>).uid} gid=${(h.pax as Record<string, string>).gid}` : ''}`);
      s.resume();
      s.on('end', next);
    });
    const { gunzipSync } = await import('node:zlib');
    ex.end(gunzipSync(layer));
    await new Promise<void>((r) => ex.on('finish', () => r()));
    // The hard-link pair bin/sh + bin/dash is written as its first path in byte order plus a link to it.
    // Mode 0 (RHEL's /etc/shadow) stays 0; ids above ustar's range go in PAX records.
    assert.ok(names.includes('etc/shadow file 0'), names.join('\n'));
    assert.ok(names.includes('etc/bigid file 644 uid=3000000 gid=3000001'), names.join('\n'));
    assert.deepEqual(names.filter((n) => /escape|bin\/dash|usr\/bin\/su|dev\/null|usr\/bin\/sh/.test(n)), ['bin/dash file 755', 'bin/sh link 755 -> bin/dash', 'dev/null character-device 666 1,3', 'etc/escape symlink 644 -> ../../../../etc/shadow', 'usr/bin/sh symlink 644 -> ../../bin/sh', 'usr/bin/su file 4755']);
    // Sorted, parents first.
    const paths = names.map((n) => n.split(' ')[0]!);
    assert.deepEqual(paths, [...paths].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));

    const bad = async (name: string, entries: Entry[] | Buffer, re: RegExp, extraArgs: string[] = []) => {
      const f = path.join(work, name);
      await writeFile(f, Buffer.isBuffer(entries) ? entries : await makeTar(entries));
      const r = await plinth(['golden', 'import', f, '--name', 'r/x', '--version', '1', '--output', `oci:${path.join(work, 'bad')}:1`, ...extraArgs]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, re, name);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    };
    await bad('dotdot.tar', [{ name: 'etc/../../x', content: 'x' }], /climbs out of the root/);
    await bad('abs.tar', [{ name: '/etc/passwd', content: 'x' }], /is absolute/);
    await bad('hardlink.tar', [{ name: 'a', type: 'link', linkname: 'missing' }], /hard link a points at missing, which is not in the archive/);
    await bad('hardlink-up.tar', [{ name: 'a', type: 'link', linkname: '../../etc/shadow' }], /climbs out of the root/);
    await bad('empty.tar', [], /empty root filesystem/);
    await bad('linkloop.tar', [{ name: 'a', type: 'link', linkname: 'b' }, { name: 'b', type: 'link', linkname: 'a' }], /loop of hard links/);
    await bad('through-symlink-deep.tar', [{ name: 'a', type: 'symlink', linkname: '/etc' }, { name: 'a/b/c', content: 'x' }], /a\/b\/c lies under a, which is a symlink/);
    // A refused entry at the start of a big xz stream: the command ends (xz is stopped), never hangs.
    const hostileTar = await makeTar([{ name: '/etc/passwd', content: 'x' }, { name: 'big', content: 'z'.repeat(8 * 1024 * 1024) }]);
    await writeFile(path.join(work, 'hostile.tar'), hostileTar);
    await execFileP('sh', ['-c', `xz -0 -c < ${path.join(work, 'hostile.tar')} > ${path.join(work, 'hostile.tar.xz')}`]);
    await bad('hostile2.tar.xz', await readFile(path.join(work, 'hostile.tar.xz')), /is absolute/);
    await bad('through-symlink.tar', [{ name: 'lib', type: 'symlink', linkname: '/etc' }, { name: 'lib/passwd', content: 'x' }], /lib\/passwd lies under lib, which is a symlink \(extraction would write through it\)/);
    await bad('trunc.tar.gz', gzipSync(await makeTar(smallRootfs('1'))).subarray(0, 300), /not a readable tar archive|unexpected end|truncated/i);
    await bad('trunc.tar.xz', (await readFile(path.join(work, 'v1.tar.xz'))).subarray(0, 200), /corrupt or truncated xz/);
    await bad('garbage.tar', Buffer.alloc(4096, 0x41), /not a readable tar archive/);
    await bad('wrongsum.tar', smallRootfs('1'), /not the expected/, ['--sha256', 'a'.repeat(64)]);
    // Duplicates: the last wins; no os-release: a warning.
    const dup = path.join(work, 'dup.tar');
    await writeFile(dup, await makeTar([{ name: 'x', content: 'first' }, { name: 'x', content: 'second' }]));
    const d = await plinth(['golden', 'import', dup, '--name', 'r/x', '--version', '1', '--output', `oci:${path.join(work, 'dup')}:1`, '--format', 'json']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(JSON.parse(d.stdout).platforms[0].duplicates, 1);
    assert.match(d.stderr, /no \/etc\/os-release/);
    const unpacked = path.join(work, 'dup-unpacked');
    await execFileP(debianTool('umoci', 'umoci'), ['unpack', '--image', `${path.join(work, 'dup')}:1`, unpacked]);
    assert.equal(await readFile(path.join(unpacked, 'rootfs', 'x'), 'utf8'), 'second');
  });

  test('checksums: SHA256SUMS with a detached signature checked by the real gpgv; a bad signature or a foreign key is refused', async () => {
    const gnupg = path.join(work, 'gnupg');
    await mkdir(gnupg, { mode: 0o700 });
    const g = (args: string[]) => execFileP('gpg', ['--homedir', gnupg, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args]);
    await g(['--quick-gen-key', 'Vendor <vendor@example.com>', 'ed25519', 'sign', 'never']);
    await g(['--quick-gen-key', 'Mallory <m@example.com>', 'ed25519', 'sign', 'never']);
    await g(['--export', '--output', path.join(work, 'vendor.gpg'), 'vendor@example.com']);
    const sha = createHash('sha256').update(await readFile(v1)).digest('hex');
    const sums = path.join(work, 'SHA256SUMS');
    await writeFile(sums, `${'b'.repeat(64)}  other.tar\n${sha}  v1.tar\n`);
    await g(['--local-user', 'vendor@example.com', '--detach-sign', '--output', `${sums}.gpg`, sums]);
    await g(['--local-user', 'm@example.com', '--detach-sign', '--output', `${sums}.mallory.gpg`, sums]);
    const run = (sig: string) => plinth(['golden', 'import', v1, '--name', 'r/x', '--version', '1', '--output', `oci:${path.join(work, 'sums')}:1`, '--checksums', sums, '--checksums-sig', sig, '--keyring', path.join(work, 'vendor.gpg')]);
    const ok = await run(`${sums}.gpg`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /verified: SHA256SUMS signature \(gpgv, vendor\.gpg\); listed in SHA256SUMS/);
    const foreign = await run(`${sums}.mallory.gpg`);
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /does not verify with .*vendor\.gpg/);
    // A changed checksums file no longer matches its signature.
    await writeFile(sums, `${sha}  v1.tar\n`);
    const tampered = await run(`${sums}.gpg`);
    assert.equal(tampered.code, 1);
    assert.match(tampered.stderr, /signature .* does not verify/);
    // A Sigstore bundle over the tarball (plinth sign-blob, as cosign sign-blob --bundle): the right
    // key passes, another tarball with that bundle does not.
    const bundle = path.join(work, 'v1.sigstore.json');
    assert.equal((await plinth(['sign-blob', v1, '--key', key, '--bundle', bundle])).code, 0);
    const withBundle = await plinth(['golden', 'import', v1, '--name', 'r/x', '--version', '1', '--output', `oci:${path.join(work, 'bundled')}:1`, '--bundle', bundle, '--bundle-key', pub]);
    assert.equal(withBundle.code, 0, withBundle.stderr);
    assert.match(withBundle.stdout, /verified: Sigstore bundle v1\.sigstore\.json \(message signature, key /);
    const wrongFile = await plinth(['golden', 'import', v2, '--name', 'r/x', '--version', '1', '--output', `oci:${path.join(work, 'bundled')}:2`, '--bundle', bundle, '--bundle-key', pub]);
    assert.equal(wrongFile.code, 1);
    assert.doesNotMatch(wrongFile.stderr, /\n\s+at /);
    // A signature without a keyring is a usage error, never skipped.
    const nokey = await plinth(['golden', 'import', v1, '--name', 'r/x', '--version', '1', '--checksums', sums, '--checksums-sig', `${sums}.gpg`]);
    assert.equal(nokey.code, 2);
    assert.match(nokey.stderr, /needs --keyring/);
  });

  test('gate: refuses a HIGH finding, passes with an unexpired exception, refuses again when it expired', async () => {
    const out = `oci:${path.join(work, 'gate')}:1`;
    assert.equal((await plinth(['golden', 'import', v1, '--name', 'r/x', '--version', '1', '--output', out])).code, 0);
    const r = await plinth(['golden', 'gate', out, '--db', dbFile, '--fail-on', 'HIGH']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /BLOCKS\s+HIGH\s+DEBIAN-CVE-2024-2961\s+libc6 2\.36-9\+deb12u3 \(fixed in 2\.36-9\+deb12u7\)/);
    const ex = path.join(work, 'exceptions.yaml');
    await writeFile(ex, 'exceptions:\n  - id: CVE-2024-2961\n    package: glibc\n    expires: "2999-01-01"\n    reason: iconv is not used by any workload on this base\n');
    const ok = await plinth(['golden', 'gate', out, '--db', dbFile, '--exceptions', ex, '--format', 'json']);
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(JSON.parse(ok.stdout).excepted[0].id, 'DEBIAN-CVE-2024-2961');
    await writeFile(ex, 'exceptions:\n  - id: CVE-2024-2961\n    expires: "2020-01-01"\n    reason: old\n');
    const expired = await plinth(['golden', 'gate', out, '--db', dbFile, '--exceptions', ex]);
    assert.equal(expired.code, 1);
    assert.match(expired.stdout, /expired exception for DEBIAN-CVE-2024-2961/);
    // v2 has the fixed glibc: passes with no exception. CRITICAL only: v1 passes too.
    const out2 = `oci:${path.join(work, 'gate')}:2`;
    await plinth(['golden', 'import', v2, '--name', 'r/x', '--version', '2', '--output', out2]);
    assert.equal((await plinth(['golden', 'gate', out2, '--db', dbFile])).code, 0);
    assert.equal((await plinth(['golden', 'gate', out, '--db', dbFile, '--fail-on', 'CRITICAL'])).code, 0);
  });

  test('publish signs (plinth and cosign verify), attests, catalogs; a second version supersedes; deprecate denies apps on it naming the successor; consumers and notifications', async () => {
    const repo = `${reg.host}/golden/debian`;
    // v1 and v2 as two platforms each? One platform, as the vendor ships: linux/amd64.
    for (const [file, ver] of [[v1, '12.1'], [v2, '12.2']] as const) {
      const r = await plinth(['golden', 'import', file, '--name', repo, '--version', ver, '--output', `oci:${path.join(work, 'pub')}:${ver}`]);
      assert.equal(r.code, 0, r.stderr);
    }
    const p1 = await plinth(['golden', 'publish', `oci:${path.join(work, 'pub')}:12.1`, '--to', `${repo}:12.1`, '--key', key, '--line', 'debian-12', '--catalog', catalog, '--db', dbFile, '--format', 'json']);
    assert.equal(p1.code, 0, p1.stderr);
    const pub1 = JSON.parse(p1.stdout);
    assert.equal(pub1.attestations.length, 2);
    const v = await plinth(['verify', `${repo}:12.1`, '--key', pub]);
    assert.equal(v.code, 0, v.stderr);
    await execFileP(peer('cosign'), ['verify', '--key', pub, '--insecure-ignore-tlog=true', '--allow-http-registry=true', `${repo}:12.1`], { env });
    const att = await plinth(['verify-attestation', `${repo}@${pub1.digest}`, '--key', pub, '--type', 'cyclonedx']);
    assert.equal(att.code, 0, att.stderr);
    let cat = parseYaml(await readFile(catalog, 'utf8'));
    assert.deepEqual(cat.bases.map((b: any) => `${b.tag} ${b.status} ${b.line}`), ['12.1 approved debian-12']);

    // Two apps built on v1 (its layer first), with owners from a label and from an owners file.
    const app = async (name: string, labels: Record<string, string>) => {
      const src = await openSource(`${repo}@${pub1.digest}`);
      const root = await resolveRoot(src);
      const [img] = await selectImages(src, root, 'all');
      const { config } = await readConfig(src, img!);
      const baseLayer = img!.manifest.layers[0]!;
      const m = new MemorySource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) });
      m.blobs.set(baseLayer.digest, await src.readBlob(baseLayer));
      await src.close();
      const raw = await makeTar([{ name: 'app/run', content: name }]);
      const gz = gzipSync(raw);
      const cfg = { ...config, config: { ...config.config, Labels: labels }, rootfs: { type: 'layers', diff_ids: [...config.rootfs!.diff_ids, digestOf(raw)] }, history: [...(config.history ?? []), { created_by: `COPY app /app # ${name}` }] };
      const cb = Buffer.from(JSON.stringify(cfg));
      const mf = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: m.add(cb), size: cb.length }, layers: [baseLayer, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: m.add(gz), size: gz.length }] };
      const mb = Buffer.from(JSON.stringify(mf));
      m.root = { descriptor: { mediaType: mf.mediaType, digest: m.add(mb), size: mb.length }, bytes: mb };
      await copyImage(m, await openDestination(`${reg.host}/team/${name}:1`));
      return m.root.descriptor.digest;
    };
    const shopDigest = await app('shop', { 'org.opencontainers.image.authors': 'shop-team@example.com' });
    const payDigest = await app('pay', {});
    const owners = path.join(work, 'owners.yaml');
    await writeFile(owners, `owners:\n  - repositories: "${reg.host}/team/pay*"\n    contact: payments@example.com\n`);

    // v2 supersedes v1.
    const p2 = await plinth(['golden', 'publish', `oci:${path.join(work, 'pub')}:12.2`, '--to', `${repo}:12.2`, '--key', key, '--line', 'debian-12', '--catalog', catalog, '--format', 'json']);
    assert.equal(p2.code, 0, p2.stderr);
    const pub2 = JSON.parse(p2.stdout);
    cat = parseYaml(await readFile(catalog, 'utf8'));
    assert.deepEqual(cat.bases.map((b: any) => `${b.tag} ${b.status}`), ['12.1 superseded', '12.2 approved']);
    assert.equal(cat.bases[0].successor, `${repo}:12.2@${pub2.digest}`);

    // A superseded base is allowed (with a warning) in its grace period; deprecated is denied, naming the successor.
    const policy = path.join(repoRoot(), 'examples', 'policies', 'approved-bases.yaml');
    const grace = await plinth(['check', `${reg.host}/team/shop:1`, '--policy', policy, '--catalog', catalog]);
    assert.equal(grace.code, 0, grace.stdout + grace.stderr);
    assert.match(grace.stdout, /superseded and allowed until \d{4}-\d{2}-\d{2}; its successor is .*golden\/debian:12\.2@sha256/);
    const dep = await plinth(['golden', 'deprecate', `${repo}:12.1`, '--reason', 'glibc CVE-2024-2961', '--catalog', catalog, '--repos', `${reg.host}/team/**`, '--owners', owners, '--format', 'json']);
    assert.equal(dep.code, 0, dep.stderr);
    const depOut = JSON.parse(dep.stdout);
    assert.equal(depOut.successor, `${repo}:12.2@${pub2.digest}`);
    assert.deepEqual(depOut.consumers.map((c: any) => `${c.image} ${c.owner} ${c.ownerFrom}`).sort(), [`${reg.host}/team/pay:1 payments@example.com owners file`, `${reg.host}/team/shop:1 shop-team@example.com label`]);
    const again = await plinth(['golden', 'publish', `oci:${path.join(work, 'pub')}:12.1`, '--to', `${repo}:12.1-again`, '--key', key, '--line', 'debian-12', '--catalog', catalog]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /is deprecated in the catalog \(glibc CVE-2024-2961\); it is not published again/);
    const denied = await plinth(['check', `${reg.host}/team/shop:1`, '--policy', policy, '--catalog', catalog]);
    assert.equal(denied.code, 1);
    assert.match(denied.stdout, /deprecated in the catalog \(glibc CVE-2024-2961\); its successor is .*golden\/debian:12\.2@sha256:/);

    // consumers --notify: a receiver that fails twice (503) then accepts; each event arrives once; a rerun sends nothing.
    const got: Array<{ type: string; subject: string; data: any; contentType: string }> = [];
    let fails = 2;
    const server = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (fails-- > 0) {
          res.writeHead(503);
          return res.end();
        }
        const e = JSON.parse(body);
        got.push({ type: e.type, subject: e.subject, data: e.data, contentType: String(req.headers['content-type']) });
        res.writeHead(202);
        res.end();
      });
    });
    const { port, stop } = await listenOnLoopback(server);
    try {
      const state = path.join(work, 'notified.json');
      const args = ['golden', 'consumers', `${repo}:12.1`, '--catalog', catalog, '--repos', `${reg.host}/team/**`, '--owners', owners, '--notify', `http://127.0.0.1:${port}/hook`, '--notify-state', state, '--format', 'json'];
      const n1 = await plinth(args);
      assert.equal(n1.code, 0, n1.stderr);
      assert.equal(JSON.parse(n1.stdout).notified.sent, 2);
      assert.match(n1.stderr, /attempt 1 failed \(HTTP 503\)/);
      assert.deepEqual(got.map((g) => g.subject).sort(), [`${reg.host}/team/pay@${payDigest}`, `${reg.host}/team/shop@${shopDigest}`].sort());
      for (const g of got) {
        assert.equal(g.type, 'dev.plinth.base.deprecated');
        assert.match(g.contentType, /^application\/cloudevents\+json/);
        assert.equal(g.data.successor, `${repo}:12.2@${pub2.digest}`);
        assert.equal(g.data.reason, 'glibc CVE-2024-2961');
        assert.equal(g.data.base.digest, pub1.digest);
      }
      const n2 = await plinth(args);
      assert.equal(JSON.parse(n2.stdout).notified.skipped, 2);
      assert.equal(got.length, 2);
      // Slack format.
      const slack: string[] = [];
      const s2 = createServer((req, res) => {
        let b = '';
        req.on('data', (d) => (b += d));
        req.on('end', () => {
          slack.push(b);
          res.end('ok');
        });
      });
      const l2 = await listenOnLoopback(s2);
      try {
        const r = await deliver([`http://127.0.0.1:${l2.port}/`], [{ type: 'dev.plinth.base.deprecated', subject: 's', key: 'k', data: {}, text: 'base is deprecated' }], { format: 'slack', statePath: path.join(work, 'slack.json') });
        assert.equal(r.sent, 1);
        assert.deepEqual(JSON.parse(slack[0]!), { text: 'base is deprecated' });
      } finally {
        await l2.stop();
      }
    } finally {
      await stop();
    }
  });

  test('retries back off (doubling, or as Retry-After says); the state file keeps no target URL and is private', async () => {
    const times: number[] = [];
    const server = createServer((req, res) => {
      times.push(Date.now());
      req.resume();
      res.writeHead(times.length < 3 ? 503 : 200);
      res.end();
    });
    const { port, stop } = await listenOnLoopback(server);
    try {
      const state = path.join(work, 'backoff.json');
      const r = await deliver([`http://127.0.0.1:${port}/secret-token-in-path`], [{ type: 't', subject: 's', key: 'backoff', data: {}, text: 't' }], { statePath: state, backoffMs: 100 });
      assert.equal(r.sent, 1);
      assert.ok(times[1]! - times[0]! >= 90 && times[2]! - times[1]! >= 190, `attempts at ${times.map((t) => t - times[0]!).join(', ')} ms`);
      const text = await readFile(state, 'utf8');
      assert.doesNotMatch(text, /secret-token/);
      assert.equal((await lstat(state)).mode & 0o777, 0o600);
    } finally {
      await stop();
    }
  });

  test('a receiver that hangs or refuses: bounded retries, reported, nothing remembered as sent', async () => {
    const server = createServer(() => {
      /* never answers */
    });
    const { port, stop } = await listenOnLoopback(server);
    try {
      const r = await deliver([`http://127.0.0.1:${port}/`], [{ type: 't', subject: 's', key: 'hang', data: {}, text: 't' }], { statePath: path.join(work, 'hang.json'), attempts: 2, backoffMs: 10, timeoutMs: 300 });
      assert.equal(r.sent, 0);
      assert.match(r.failed[0]!.error, /no answer within 300 ms/);
      assert.equal(existsSync(path.join(work, 'hang.json')), false);
    } finally {
      server.closeAllConnections();
      await stop();
    }
  });

  test('golden build: the whole pipeline from a config; a rerun with unchanged inputs publishes nothing; a gate failure is reported', async () => {
    const cfgFile = path.join(work, 'golden.yaml');
    const cat2 = path.join(work, 'build-catalog.yaml');
    const sha = createHash('sha256').update(await readFile(v2)).digest('hex');
    await writeFile(cfgFile, `apiVersion: plinth.dev/v1alpha1
kind: GoldenBuild
catalog: build-catalog.yaml
key: golden.key
db: vuln.db
lines:
  - line: debian-12
    name: ${reg.host}/golden/built
    version: "12.2"
    to: ${reg.host}/golden/built:12
    rootfs:
      - platform: linux/amd64
        file: v2.tar
        sha256: ${sha}
  - line: old
    name: ${reg.host}/golden/old
    version: "12.1"
    to: ${reg.host}/golden/old:12
    rootfs:
      - file: v1.tar
`);
    const r1 = await plinth(['golden', 'build', '--config', cfgFile, '--format', 'json']);
    assert.equal(r1.code, 1, r1.stderr);
    const l1 = JSON.parse(r1.stdout).lines;
    assert.equal(l1[0].outcome, 'published');
    assert.equal(l1[1].outcome, 'refused by the gate');
    assert.match(l1[1].detail, /HIGH DEBIAN-CVE-2024-2961 in libc6/);
    const r2 = await plinth(['golden', 'build', '--config', cfgFile, '--line', 'debian-12', '--format', 'json']);
    assert.equal(r2.code, 0, r2.stderr);
    const l2 = JSON.parse(r2.stdout).lines;
    assert.equal(l2[0].outcome, 'unchanged');
    assert.equal(l2[0].digest, l1[0].digest);
    const cat = parseYaml(await readFile(cat2, 'utf8'));
    assert.equal(cat.bases.length, 1);
    assert.equal(cat.bases[0].status, 'approved');
  });

  test('multi-platform: several --rootfs make one index, platform by platform', async () => {
    const r = await plinth(['golden', 'import', '--rootfs', `linux/amd64=${v1}`, '--rootfs', `linux/arm64/v8=${v2}`, '--name', 'r/x', '--version', '1', '--output', `oci:${path.join(work, 'multi')}:1`, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(out.platforms.map((p: any) => p.platform), ['linux/amd64', 'linux/arm64/v8']);
    const i = await plinth(['inspect', `oci:${path.join(work, 'multi')}:1`, '--platform', 'all', '--format', 'json']);
    assert.deepEqual(JSON.parse(i.stdout).platforms, ['linux/amd64', 'linux/arm64/v8']);
  });

  test('global flags do not shadow a command\'s own: golden import --version is the image version; an unknown command fails', async () => {
    const r = await plinth(['nosuchcommand', '--version']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'nosuchcommand'/);
    assert.equal(r.stdout, '');
    const v = await plinth(['--version']);
    assert.equal(v.code, 0);
    assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  });
});
