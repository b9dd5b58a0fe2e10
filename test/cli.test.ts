import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startRegistry, type TestRegistry } from './helpers/registry.js';
import { plinthCommand, runPlinth, type CliRun } from './helpers/common.js';
import { buildImage, buildIndex, MemorySource } from '../src/source/memory.js';
import { copyImage } from '../src/source/copy.js';
import { openDestination } from '../src/source/open.js';
import { digestOf } from '../src/oci/digest.js';
import { openStore } from '../src/vuln/store.js';
import { importPaths } from '../src/vuln/import.js';
import { debian12OsRelease, dpkgEntry } from './helpers/debian.js';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

type Run = CliRun;

/** Run the real CLI as a user would (asynchronously: the token server lives in this process). */
function plinth(args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<Run> {
  return runPlinth(args, { ...(input !== undefined ? { input } : {}), ...(env ? { env } : {}) });
}

function noStack(r: Run): void {
  assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, `stack trace printed: ${r.stderr}`);
}

describe('plinth CLI', () => {
  let reg: TestRegistry;
  let work: string;
  let digest: string;
  let indexDigest: string;
  before(async () => {
    reg = await startRegistry();
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-cli-'));
    const a = await buildImage({ platform: { os: 'linux', architecture: 'amd64' }, layers: [[{ path: 'a.txt', content: 'a' }]], labels: { team: 'core' } });
    const b = await buildImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, layers: [[{ path: 'b.txt', content: 'b' }]] });
    digest = a.descriptor.digest;
    await copyImage(a.source, await openDestination(`${reg.host}/cli/app:1`));
    const idx = buildIndex([a, b]);
    indexDigest = idx.descriptor.digest;
    await copyImage(idx.source, await openDestination(`${reg.host}/cli/multi:1`));
  });
  after(async () => {
    await reg?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('--help explains the commands and image names; unknown commands are usage errors', async () => {
    const h = await plinth(['--help']);
    assert.equal(h.code, 0);
    for (const c of ['inspect', 'manifest', 'config', 'copy', 'tags', 'digest', 'demo', 'oci-archive:FILE', 'docker-archive:FILE']) assert.ok(h.stdout.includes(c), c);
    const ih = await plinth(['inspect', '--help']);
    assert.match(ih.stdout, /--platform/);
    assert.match(ih.stdout, /--format/);
    const bad = await plinth(['frobnicate']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command/);
    const missing = await plinth(['inspect']);
    assert.equal(missing.code, 2);
  });

  test('inspect --format json reports the manifest digest, platforms and layers', async () => {
    const r = await plinth(['inspect', '--format', 'json', `${reg.host}/cli/multi:1`, '--platform', 'linux/arm64']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { digest: string; platforms: string[]; images: Array<{ architecture: string; layers: Array<{ digest: string; diffId: string; size: number; mediaType: string }> }> };
    assert.equal(j.digest, indexDigest);
    assert.deepEqual(j.platforms, ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(j.images[0]!.architecture, 'arm64');
    assert.equal(j.images[0]!.layers.length, 1);
    assert.match(j.images[0]!.layers[0]!.diffId, /^sha256:[a-f0-9]{64}$/);
    const t = await plinth(['inspect', `${reg.host}/cli/app:1`]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, new RegExp(`Digest\\s+${digest}`));
    assert.match(t.stdout, /team=core/);
    assert.match(t.stdout, /Layers \(1\)/);
  });

  test('manifest, config and digest print the raw documents', async () => {
    const m = await plinth(['manifest', `${reg.host}/cli/multi:1`]);
    assert.equal(m.code, 0, m.stderr);
    assert.equal(digestOf(Buffer.from(m.stdout)), indexDigest);
    const c = await plinth(['config', `${reg.host}/cli/multi:1`, '--platform', 'linux/amd64']);
    assert.equal(JSON.parse(c.stdout).architecture, 'amd64');
    const d = await plinth(['digest', `${reg.host}/cli/app:1`]);
    assert.equal(d.stdout.trim(), digest);
  });

  test('copy prints the digest, shows per-blob progress off a terminal, and --format json summarises', async () => {
    const r = await plinth(['copy', `${reg.host}/cli/multi:1`, `oci:${path.join(work, 'layout')}:m`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), indexDigest);
    assert.match(r.stderr, /Copying blob sha256:[a-f0-9]{12}/);
    const j = await plinth(['copy', '--format', 'json', `oci:${path.join(work, 'layout')}:m`, `${reg.host}/cli/copied:1`]);
    assert.equal(j.code, 0, j.stderr);
    const s = JSON.parse(j.stdout) as { digest: string; blobs: { copied: number; skipped: number; mounted: number } };
    assert.equal(s.digest, indexDigest);
    assert.equal(s.blobs.copied + s.blobs.skipped + s.blobs.mounted, 4);
    const t = await plinth(['tags', `${reg.host}/cli/copied`]);
    assert.equal(t.stdout.trim(), '1');
  });

  test('errors are one clear line with the right exit code and no stack trace', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['inspect', 'Bad/UPPER:x'], 2, /must be lowercase/],
      [['inspect', `${reg.host}/cli/app:nope`], 1, /tag "nope" not found/],
      [['inspect', `${reg.host}/cli/app:1`, '--platform', 'linux'], 2, /invalid platform "linux"/],
      [['inspect', `${reg.host}/cli/multi:1`, '--platform', 'linux/s390x'], 1, /no image for platform linux\/s390x/],
      [['inspect', 'oci:/nonexistent/dir'], 1, /not an OCI image layout/],
      [['inspect', 'docker-archive:/nonexistent.tar'], 1, /does not exist/],
      [['inspect', 'ftp://x/y'], 2, /unknown transport/],
      [['copy', `${reg.host}/cli/app:1`, 'docker-archive:/tmp/x.tar', '--jobs', '0'], 2, /--jobs/],
      [['inspect', '127.0.0.1:1/x/y:1'], 1, /connection refused/],
    ];
    for (const [args, code, re] of cases) {
      const r = await plinth(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
      assert.match(r.stderr, /^plinth: /, args.join(' '));
      noStack(r);
    }
  });

  test('--password-stdin logs in to a basic-auth registry', async () => {
    const breg = await startRegistry({ auth: 'basic' });
    try {
      const img = await buildImage({ layers: [[{ path: 'p', content: 'p' }]] });
      await copyImage(img.source, await openDestination(`${breg.host}/p/app:1`, { username: breg.username!, password: breg.password! }));
      const denied = await plinth(['digest', `${breg.host}/p/app:1`], undefined, { DOCKER_CONFIG: work });
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /401|auth/i);
      noStack(denied);
      const ok = await plinth(['digest', '--username', breg.username!, '--password-stdin', `${breg.host}/p/app:1`], `${breg.password}\n`, { DOCKER_CONFIG: work });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), img.descriptor.digest);
    } finally {
      await breg.stop();
    }
  });

  test('catalog add/list/remove/schema and provenance --format json', async () => {
    const cat = path.join(work, 'catalog.yaml');
    const add = await plinth(['catalog', 'add', `${reg.host}/cli/multi:1`, '--status', 'approved', '--catalog', cat, '--notes', 'golden']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /2 added/);
    const list = JSON.parse((await plinth(['catalog', 'list', '--catalog', cat, '--format', 'json'])).stdout) as Array<{ name: string; platform: string; status: string; index: string; notes: string }>;
    assert.deepEqual(list.map((b) => b.platform).sort(), ['linux/amd64', 'linux/arm64/v8']);
    assert.ok(list.every((b) => b.status === 'approved' && b.index === indexDigest && b.name === `${reg.host}/cli/multi` && b.notes === 'golden'));
    // An image built on the amd64 base: found by fingerprint, per the stable JSON contract.
    const base = await buildImage({ platform: { os: 'linux', architecture: 'amd64' }, layers: [[{ path: 'a.txt', content: 'a' }]], labels: { team: 'core' } });
    const app = await buildImage({ platform: { os: 'linux', architecture: 'amd64' }, layers: [[{ path: 'a.txt', content: 'a' }], [{ path: 'app', content: 'app' }]] });
    await copyImage(app.source, await openDestination(`${reg.host}/cli/derived:1`));
    const p = await plinth(['provenance', `${reg.host}/cli/derived:1`, '--catalog', cat, '--format', 'json']);
    assert.equal(p.code, 0, p.stderr);
    const j = JSON.parse(p.stdout) as { base: { name: string; digest: string; evidence: unknown[]; confidence: string; layers: { base: number; image: number } } };
    assert.equal(j.base.name, `${reg.host}/cli/multi`);
    assert.equal(j.base.digest, base.descriptor.digest);
    assert.equal(j.base.confidence, 'high');
    assert.deepEqual(j.base.layers, { base: 1, image: 1, total: 2 });
    const none = JSON.parse((await plinth(['provenance', `${reg.host}/cli/derived:1`, '--catalog', path.join(work, 'empty.yaml'), '--format', 'json'])).stdout || 'null');
    assert.equal(none, null, 'a missing explicit catalog is an error, not an empty answer');
    const rm1 = await plinth(['catalog', 'remove', base.descriptor.digest, '--catalog', cat]);
    assert.match(rm1.stdout, /1 removed/);
    const rm2 = await plinth(['catalog', 'remove', 'nothing.example/x', '--catalog', cat]);
    assert.equal(rm2.code, 2);
    const schema = JSON.parse((await plinth(['catalog', 'schema'])).stdout) as { properties: Record<string, unknown> };
    assert.ok(schema.properties.bases);
  });

  test('provenance answers "what is it?" from the layers: OS release, packages, each layer with its instruction; --metadata-only skips them', async () => {
    const baseStatus = `${dpkgEntry('libc6', '2.36-9+deb12u3')}\n${dpkgEntry('bash', '5.2.15-2+b2')}`;
    const baseLayer = [debian12OsRelease, { path: 'var/lib/dpkg/status', content: baseStatus }];
    const history = [{ created_by: 'ADD rootfs.tar.xz /' }, { created_by: 'ENV LANG=C.UTF-8', empty_layer: true }, { created_by: 'RUN apt-get install -y curl' }];
    const app = await buildImage({ layers: [baseLayer, [{ path: 'var/lib/dpkg/status', content: `${baseStatus}\n${dpkgEntry('curl', '7.88.1-10+deb12u5')}` }]], history, labels: { 'org.opencontainers.image.base.name': 'docker.io/library/debian:12' } });
    await copyImage(app.source, await openDestination(`${reg.host}/cli/what:1`));
    const env = { PLINTH_DB: path.join(work, 'no-such.db') };
    type Report = { what: { distribution: { id: string; version: string; prettyName: string } | null; packages: number | null }; layers: Array<{ index: number; createdBy: string | null; packages: number | null; origin: string | null; size: number }> };
    const run = await runPlinth(['provenance', `${reg.host}/cli/what:1`, '--format', 'json'], { env });
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(run.stdout) as Report;
    assert.equal(r.what.distribution?.id, 'debian');
    assert.equal(r.what.distribution?.version, '12');
    assert.equal(r.what.distribution?.prettyName, 'Debian GNU/Linux 12 (bookworm)');
    assert.equal(r.what.packages, 3);
    // The empty ENV entry is skipped: each layer gets the instruction that made it.
    assert.deepEqual(r.layers.map((l) => [l.index, l.createdBy, l.packages]), [[0, 'ADD rootfs.tar.xz /', 2], [1, 'RUN apt-get install -y curl', 1]]);
    assert.ok(r.layers.every((l) => l.size > 0));
    const text = await runPlinth(['provenance', `${reg.host}/cli/what:1`], { env });
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /contents\s+Debian GNU\/Linux 12 \(bookworm\), 3 packages/);
    assert.match(text.stdout, /layer 2\s+\S+\s+\d+ bytes\s+1 package\(s\)\s+RUN apt-get install -y curl/);
    const meta = await runPlinth(['provenance', `${reg.host}/cli/what:1`, '--metadata-only', '--format', 'json'], { env });
    assert.equal(meta.code, 0, meta.stderr);
    const m = JSON.parse(meta.stdout) as Report;
    assert.equal(m.what.distribution, null);
    assert.equal(m.what.packages, null);
    assert.deepEqual(m.layers.map((l) => [l.createdBy, l.packages]), [['ADD rootfs.tar.xz /', null], ['RUN apt-get install -y curl', null]]);
    assert.equal((await runPlinth(['provenance', `${reg.host}/cli/what:1`, '--metadata-only', '--db', path.join(work, 'x.db')], { env })).code, 2);
    // With an advisory database the same pass answers "known vulnerabilities?" too.
    const adv = path.join(work, 'osv-what');
    await mkdir(adv, { recursive: true });
    await writeFile(path.join(adv, 'DEBIAN-CVE-2024-0001.json'), JSON.stringify({ id: 'DEBIAN-CVE-2024-0001', modified: '2024-05-01T00:00:00Z', affected: [{ package: { ecosystem: 'Debian:12', name: 'curl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '7.88.1-10+deb12u6' }] }] }] }));
    const vs = openStore(path.join(work, 'what.db'));
    assert.equal((await importPaths(vs, [adv])).errors.length, 0);
    vs.close();
    const withDb = await runPlinth(['provenance', `${reg.host}/cli/what:1`, '--db', path.join(work, 'what.db'), '--format', 'json'], { env });
    assert.equal(withDb.code, 0, withDb.stderr);
    const d = JSON.parse(withDb.stdout) as Report & { vulnerabilities: { status: string; total: number; unknownOrigin: number } };
    // (The declared base has no digest and is not in the catalog: its layer count, so the split, is unknown.)
    assert.deepEqual([d.vulnerabilities.status, d.vulnerabilities.total, d.vulnerabilities.unknownOrigin, d.what.packages], ['scanned', 1, 1, 3]);
    // A layer that is not a file system (a WASM module): the answer from the manifest and config,
    // with a finding that says why the layers were not read — not an error.
    const wsrc = new MemorySource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) });
    const wasm = Buffer.concat([Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]), Buffer.alloc(600, 7)]);
    const wlayer = { mediaType: 'application/vnd.wasm.content.layer.v1+wasm', digest: wsrc.add(wasm), size: wasm.length };
    const wcfg = Buffer.from(JSON.stringify({ created: '2024-01-01T00:00:00Z', architecture: 'wasm', os: 'wasip1', rootfs: { type: 'layers', diff_ids: [digestOf(wasm)] }, config: {} }));
    const wman = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: wsrc.add(wcfg), size: wcfg.length }, layers: [wlayer] }));
    wsrc.root = { descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: wsrc.add(wman), size: wman.length }, bytes: wman };
    await copyImage(wsrc, await openDestination(`${reg.host}/cli/wasm:1`));
    const w = await runPlinth(['provenance', `${reg.host}/cli/wasm:1`, '--platform', 'wasip1/wasm', '--format', 'json'], { env });
    assert.equal(w.code, 0, w.stderr);
    const wr = JSON.parse(w.stdout) as Report & { findings: Array<{ source: string; message: string }> };
    assert.equal(wr.what.packages, null);
    assert.equal(wr.layers.length, 1);
    assert.ok(wr.findings.some((x) => x.source === 'layers' && /were not read/.test(x.message)), JSON.stringify(wr.findings));
    // A history that does not line up with the layers is not attributed.
    const odd = await buildImage({ layers: [baseLayer], history: [{ created_by: 'one' }, { created_by: 'two' }] });
    await copyImage(odd.source, await openDestination(`${reg.host}/cli/odd:1`));
    const o = JSON.parse((await runPlinth(['provenance', `${reg.host}/cli/odd:1`, '--format', 'json'], { env })).stdout) as Report;
    assert.deepEqual(o.layers.map((l) => l.createdBy), [null]);
    assert.equal(o.what.packages, 2);
  });

  test('sbom through the bundled CLI reads an rpm sqlite database (node:sqlite loaded on first use)', async () => {
    const { DatabaseSync } = await import('node:sqlite');
    const { readFile } = await import('node:fs/promises');
    const { rpmPackageHeader } = await import('./helpers/rpmheader.js');
        const dbFile = path.join(work, 'rpmdb.sqlite');
    const db = new DatabaseSync(dbFile);
    db.exec('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)');
    db.prepare('INSERT INTO Packages (blob) VALUES (?)').run(rpmPackageHeader({ name: 'bash', version: '5.1.8', release: '6.el9', arch: 'x86_64', sourceRpm: 'bash-5.1.8-6.el9.src.rpm' }));
    db.close();
    const img = await buildImage({ layers: [[{ path: 'etc/os-release', content: 'ID="rocky"\nVERSION_ID="9.3"\n' }, { path: 'var/lib/rpm/rpmdb.sqlite', content: await readFile(dbFile) }]] });
    await copyImage(img.source, await openDestination(`oci:${path.join(work, 'rpm')}:r`));
    const r = await plinth(['sbom', `oci:${path.join(work, 'rpm')}:r`, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { packages: Array<{ name: string; purl: string }>; findings: unknown[] };
    assert.deepEqual(doc.findings, []);
    assert.deepEqual(doc.packages.map((p) => p.name), ['bash']);
    const cdx = JSON.parse((await plinth(['sbom', `oci:${path.join(work, 'rpm')}:r`, '--format', 'cyclonedx'])).stdout) as { specVersion: string };
    assert.equal(cdx.specVersion, '1.5');
  });

  test('plinth certs and plinth serve: the webhook starts, answers /readyz over HTTPS, stops on SIGTERM', async () => {
    const certDir = path.join(work, 'certs');
    const c = await plinth(['certs', '--service', 'plinth', '--namespace', 'plinth-system', '--dir', certDir, '--ip', '127.0.0.1', '--format', 'json']);
    assert.equal(c.code, 0, c.stderr);
    const info = JSON.parse(c.stdout) as { caBundle: string; dnsNames: string[] };
    assert.ok(info.dnsNames.includes('plinth.plinth-system.svc'));
    const ca = Buffer.from(info.caBundle, 'base64').toString();
    const { freePort } = await import('../src/registry/local.js');
    const port = await freePort();
    const cmd = plinthCommand(['serve', '--policy', path.join(root, 'examples/policies/approved-bases.yaml'), '--tls-cert', path.join(certDir, 'tls.crt'), '--tls-key', path.join(certDir, 'tls.key'), '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn']);
    const p = spawn(cmd.file, cmd.args, { env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    try {
      const https = await import('node:https');
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = await new Promise<number>((resolve) => {
          const r = https.get(`https://127.0.0.1:${port}/readyz`, { ca, servername: 'plinth.plinth-system.svc' }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          r.on('error', () => resolve(0));
        });
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 200);
      assert.match(out, /listening on https/);
    } finally {
      p.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    const bad = await plinth(['serve', '--policy', path.join(work, 'missing.yaml'), '--tls-cert', 'x', '--tls-key', 'y']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /^plinth: /);
  });

  test('demo runs the whole lifecycle end to end on embedded defaults', async () => {
    const r = await plinth(['demo']);
    assert.equal(r.code, 0, r.stderr);
    const line = (n: number) => r.stdout.split('\n').find((l) => l.startsWith(`${n}. `)) ?? '';
    assert.match(line(2), /plinth golden import .*: \d+ entries, sha256:[a-f0-9]{64} \(reproducible: SOURCE_DATE_EPOCH=\d+\)/);
    assert.match(line(3), /gate --fail-on HIGH: passed \(\d+ packages, \d+ finding\(s\) below HIGH: DEMO-2026-0001 MEDIUM in libc/);
    assert.match(line(4), /pushed, signed 1 manifest\(s\), 2 attestation\(s\) \(SBOM, scan\), catalog line debian-12 approved/);
    assert.match(line(5), /base .*golden\/debian:12\.1@sha256:[a-f0-9]{64} \(high confidence, fingerprint\), 1 layer\(s\) from the base, 1 added/);
    assert.match(line(6), /finding\(s\): \d+ from the base, 0 added by the app \(DEMO-2026-0001 in libc/);
    assert.match(line(7), /: allowed/);
    assert.match(line(8), /for pod shop\/shop-0: allowed; recorded in the store/);
    assert.match(line(9), /gate passed with 0 finding\(s\); published sha256:[a-f0-9]{64}; 12\.1 is now superseded/);
    assert.match(line(10), /plinth check now: denied — .*deprecated in the catalog \(glibc DEMO-2026-0001 \(CVE-2026-0001\)\); its successor is .*golden\/debian:12\.2@sha256:/);
    assert.match(line(11), /team\/shop:1 \(owner shop-team@example\.com\); 1 CloudEvent\(s\) delivered \(after a 503 retry\): dev\.plinth\.base\.deprecated/);
    assert.match(line(12), /--in-place: .* -> .*golden\/debian:12\.2@sha256:[a-f0-9]{64}; 1 blob uploaded \(the config\), 2 layer\(s\) mounted or already there/);
    assert.match(line(13), /signed and verified \(1 signature\); scan: 0 finding\(s\); plinth check: allowed/);
    assert.match(line(14), /DEMO-2026-0002, no fix\) imported; plinth watch --once: full \(first run on this store\): 2 image\(s\), [1-9]\d* new, 0 resolved, 0 updated finding\(s\); 1 CloudEvent\(s\) to the owner: dev\.plinth\.\S+ \(shop-team@example\.com\)/);
    assert.match(r.stdout, /Done\. The store holds 2 image\(s\)/);
  });
});
