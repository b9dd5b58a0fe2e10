import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { listenError } from '../util/http.js';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { stringify } from 'yaml';
import { MemorySource, makeLayerTar } from '../source/memory.js';
import { copyImage } from '../source/copy.js';
import { openDestination, openSource } from '../source/open.js';
import { resolveRoot, selectImages, readConfig } from '../source/image.js';
import { digestOf } from '../oci/digest.js';
import { startLocalRegistry } from '../registry/local.js';
import { emptyCatalog, loadCatalog, saveCatalog } from '../provenance/catalog.js';
import { parsePolicy } from '../policy/load.js';
import { gatherFacts } from '../policy/facts.js';
import { evaluate } from '../policy/evaluate.js';

/**
 * The README's first command: the seeds' whole lifecycle on embedded defaults (no server to set
 * up by hand), on the real Debian rootfs setup builds (.cache/rootfs-bookworm; a small synthetic
 * tree when there is none): golden import → gate → publish (signed, attested, catalogued) → an app
 * built on it → provenance and scan (base/app split) → policy check and an admission review → a
 * new base version published → the old one deprecated → consumers found and notified → the app
 * rebased and its signature verified → check passes again. Every step prints one line with its
 * evidence; `--keep` leaves the registry, store, catalog and files.
 */

const POLICY = `apiVersion: plinth.dev/v1alpha1
kind: ImagePolicy
metadata: {name: approved-bases}
spec:
  rules:
    - name: require-base-image
      mode: enforce
      message: Images must specify a source/base image from which they are built.
      requireBaseImage: {}
    - name: allowed-base-images
      mode: enforce
      message: This container image's base is not in the approved list or is not specified. Only pre-approved base images may be used.
      allowedBaseImages: {catalogApproved: true, supersededGraceDays: 0}
`;

/** The debootstrap tree setup builds, looked for from here and from the working directory. */
function findRootfs(): string | undefined {
  const want = (d: string) => existsSync(path.join(d, 'var/lib/dpkg/status')) && existsSync(path.join(d, 'etc/os-release'));
  if (process.env.PLINTH_DEMO_ROOTFS && want(process.env.PLINTH_DEMO_ROOTFS)) return process.env.PLINTH_DEMO_ROOTFS;
  const starts = [process.cwd(), path.dirname(new URL(import.meta.url).pathname)];
  for (const s of starts) {
    let d = s;
    for (let i = 0; i < 5; i++) {
      const c = path.join(d, '.cache', 'rootfs-bookworm');
      if (want(c)) return c;
      d = path.dirname(d);
    }
  }
  return undefined;
}

async function syntheticRootfs(dir: string): Promise<string> {
  const root = path.join(dir, 'rootfs');
  await mkdir(path.join(root, 'etc'), { recursive: true });
  await mkdir(path.join(root, 'var/lib/dpkg'), { recursive: true });
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await writeFile(path.join(root, 'etc/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n');
  await writeFile(path.join(root, 'var/lib/dpkg/status'), 'Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u13\n\nPackage: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.17-1~deb12u2\n');
  await writeFile(path.join(root, 'bin/sh'), '#!demo\n', { mode: 0o755 });
  return root;
}

function libcVersion(status: string): string {
  const m = /Package: libc6\n(?:[^\n]+\n)*?Version: (\S+)/.exec(status);
  if (!m) throw new Error('the demo rootfs has no libc6');
  return m[1]!;
}

async function portFree(port: number, host: string): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (e: NodeJS.ErrnoException) => reject(listenError('the dashboard', host, port, e)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

export interface DemoUi {
  /** Port for the dashboard (0: any free one). */
  port: number;
  /** Address to listen on (default 127.0.0.1: the demo's dashboard has no token). */
  host?: string;
  /** Resolves when the dashboard should stop (the CLI: SIGINT or SIGTERM); given the dashboard's URL. */
  until: (url: string) => Promise<void>;
}

/**
 * Run the demo. With `ui`, after the last step the registry is stopped and the dashboard
 * (`startUi`) serves the demo's store and catalog until `ui.until` resolves; then the directory is
 * removed as usual (unless `keep`).
 */
export async function runDemo(o: { keep: boolean; log: (s: string) => void; ui?: DemoUi }): Promise<void> {
  // A busy dashboard port is found now, not after the whole demo has run.
  if (o.ui && o.ui.port !== 0) await portFree(o.ui.port, o.ui.host ?? '127.0.0.1');
  const started = Date.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-demo-'));
  const log = (s: string) => o.log(`${s}  [${((Date.now() - started) / 1000).toFixed(1)} s]`);
  const reg = await startLocalRegistry({ dir: path.join(dir, 'registry') });
  const received: Array<{ type: string; subject: string }> = [];
  let failFirst = 1;
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (failFirst-- > 0) {
        res.writeHead(503);
        return void res.end();
      }
      try {
        const e = JSON.parse(body) as { type: string; subject: string };
        received.push({ type: e.type, subject: e.subject });
      } catch {
        /* counted as not received */
      }
      res.writeHead(202);
      res.end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/events`;
  const { MetaStore } = await import('../store/store.js');
  const meta = await MetaStore.open(path.join(dir, 'store.db'));
  try {
    const host = reg.host;
    log(`1. registry on ${reg.url} (Debian's docker-registry), store ${meta.location}, notification receiver ${hook}`);

    // The vendor's tree and an advisory that affects the libc6 it ships (fixed in a later build).
    const found = findRootfs();
    const rootfs = found ?? (await syntheticRootfs(dir));
    const libc = libcVersion(await readFile(path.join(rootfs, 'var/lib/dpkg/status'), 'utf8'));
    const fixed = `${libc}+demo1`;
    const adv = path.join(dir, 'osv');
    await mkdir(adv);
    await writeFile(path.join(adv, 'DEMO-2026-0001.json'), JSON.stringify({ id: 'DEMO-2026-0001', aliases: ['CVE-2026-0001'], modified: '2026-11-01T00:00:00Z', summary: 'glibc: a demonstration advisory', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:L' }], affected: [{ package: { ecosystem: 'Debian:12', name: 'glibc' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] }] }));
    const [{ openStore }, { importPaths }, { scan }] = await Promise.all([import('../vuln/store.js'), import('../vuln/import.js'), import('../vuln/scan.js')]);
    const db = openStore(path.join(dir, 'vuln.db'));
    await importPaths(db, [adv]);

    // 2-4: golden import, gate, publish.
    const [{ importRootfs }, { gate, failOnList }, { publish, deprecate }, { generateKeyPair, openSigner }] = await Promise.all([import('../golden/import.js'), import('../golden/gate.js'), import('../golden/publish.js'), import('../sign/keys.js')]);
    const pair = await generateKeyPair('demo');
    await writeFile(path.join(dir, 'golden.key'), pair.privateKeyPem, { mode: 0o600 });
    await writeFile(path.join(dir, 'golden.pub'), pair.publicKeyPem);
    const signer = await openSigner(path.join(dir, 'golden.key'), async () => 'demo');
    const catalogFile = path.join(dir, 'catalog.yaml');
    await saveCatalog(catalogFile, emptyCatalog());
    const base = `${host}/golden/debian`;
    const v1 = await importRootfs([{ platform: { os: 'linux', architecture: 'amd64' }, file: rootfs }], { name: base, version: '12.1', sourceUrl: 'https://deb.debian.org/debian' });
    log(`2. plinth golden import ${found ? '.cache/rootfs-bookworm (debootstrap bookworm)' : 'a small synthetic Debian tree (no .cache/rootfs-bookworm)'}: ${v1.platforms[0]!.entries} entries, ${v1.digest} (reproducible: SOURCE_DATE_EPOCH=${v1.epoch})`);
    const catalog0 = await loadCatalog(catalogFile);
    const g1 = await gate(v1.source, db, { catalog: catalog0, failOn: failOnList('HIGH') });
    const f1 = g1.results[0]!;
    log(`3. plinth golden gate --fail-on HIGH: ${g1.passed ? 'passed' : 'FAILED'} (${f1.packages} packages, ${f1.summary.total} finding(s) below HIGH: ${f1.vulnerabilities.map((v) => `${v.id} ${v.severity} in ${v.package}`).join(', ') || 'none'})`);
    const p1 = await publish(v1.source, catalog0, { to: `${base}:12.1`, signer, line: 'debian-12', db });
    await saveCatalog(catalogFile, catalog0);
    log(`4. plinth golden publish --to ${base}:12.1: pushed, signed ${p1.signed.length} manifest(s), ${p1.attestations.length} attestation(s) (SBOM, scan), catalog line debian-12 approved`);

    // 5: an app built on it (the base's layer, then its own).
    const appRef = `${host}/team/shop:1`;
    {
      const src = await openSource(`${base}@${p1.digest}`);
      const root = await resolveRoot(src);
      const [img] = await selectImages(src, root, 'all');
      const { config } = await readConfig(src, img!);
      const m = new MemorySource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) });
      const raw = await makeLayerTar([{ path: 'app/shop', content: '#!/bin/sh\necho shop\n', mode: 0o755 }]);
      const gz = gzipSync(raw);
      const cfg = Buffer.from(JSON.stringify({ ...config, created: '2026-11-01T00:00:00Z', config: { ...config.config, Entrypoint: ['/app/shop'], Labels: { 'org.opencontainers.image.authors': 'shop-team@example.com', 'org.opencontainers.image.source': 'https://git.example.com/shop' } }, rootfs: { type: 'layers', diff_ids: [...config.rootfs!.diff_ids, digestOf(raw)] }, history: [...(config.history ?? []), { created: '2026-11-01T00:00:00Z', created_by: 'COPY shop /app/' }] }));
      const layers = [...img!.manifest.layers, { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: m.add(gz), size: gz.length }];
      const mf = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: m.add(cfg), size: cfg.length }, layers }));
      m.root = { descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.add(mf), size: mf.length }, bytes: mf };
      const { RegistryClient } = await import('../registry/client.js');
      const c = new RegistryClient(host, {});
      await c.mountBlob('team/shop', img!.manifest.layers[0]!.digest, 'golden/debian');
      c.close();
      await src.close();
      await copyImage(m, await openDestination(appRef));
    }
    const { scanRecord } = await import('../store/ingest.js');
    const { parseLocation } = await import('../source/open.js');
    const scanApp = async () => {
      const src = await openSource(appRef);
      try {
        const catalog = await loadCatalog(catalogFile);
        let seen: { inv: import('../packages/inventory.js').Inventory; prov: import('../provenance/report.js').ProvenanceReport } | undefined;
        const [r] = await scan(src, undefined, db, { catalog, onImage: (inv, prov) => void (seen = { inv, prov }) });
        for (const rec of scanRecord(parseLocation(appRef), r!, { advisoryDb: db.path, complete: true, catalog, ...(seen ? { inventory: seen.inv, provenance: seen.prov } : {}) })) await meta.recordImage(rec);
        // The scan answered provenance on its way (the base/app split): the same report.
        return { r: r!, p: seen!.prov };
      } finally {
        await src.close();
      }
    };
    const s1 = await scanApp();
    log(`5. app ${appRef} built on it; plinth provenance: base ${s1.p.where.base} (${s1.p.base?.confidence} confidence, ${s1.p.base?.evidence[0]?.kind}), ${s1.p.base?.layers.base} layer(s) from the base, ${s1.p.base?.layers.image} added`);
    log(`6. plinth scan --store: ${s1.r.packages} packages, ${s1.r.summary.total} finding(s): ${s1.r.summary.base} from the base, ${s1.r.summary.image} added by the app (${s1.r.vulnerabilities.map((v) => `${v.id} in ${v.package} ${v.installedVersion}, fixed in ${v.fixedVersion}`).join('; ') || '-'})`);

    // 7-8: policy in CI and at admission.
    const { policy } = parsePolicy(POLICY, 'approved-bases.yaml');
    const check = async () => {
      const catalog = await loadCatalog(catalogFile);
      const facts = await gatherFacts(appRef, { policy, catalog });
      const d = evaluate(policy, facts);
      await meta.recordDecisions([{ time: new Date().toISOString(), source: 'check', image: appRef, digest: d.digest, repository: `${host}/team/shop`, allowed: d.allowed, policy: 'approved-bases', messages: [...d.denials, ...d.warnings] }]);
      return d;
    };
    const c1 = await check();
    log(`7. plinth check ${appRef} --policy approved-bases.yaml: ${c1.allowed ? 'allowed' : `denied — ${c1.denials[0]}`}`);
    await writeFile(path.join(dir, 'policy.yaml'), POLICY);
    const [{ PolicyDecider }, { createWebhook }, { AdmissionRecorder }] = await Promise.all([import('../admission/policydecider.js'), import('../admission/server.js'), import('../store/recorder.js')]);
    const decider = await PolicyDecider.create({ policyFile: path.join(dir, 'policy.yaml'), catalogFile, denyPrivateNetworks: false });
    const recorder = new AdmissionRecorder(meta, { cluster: 'demo', intervalMs: 10 });
    const { default: pino } = await import('pino');
    const webhook = createWebhook(decider, { logger: pino({ level: 'silent' }), onAdmission: (e) => void recorder.record(e) });
    const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'demo-1', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, name: 'shop-0', namespace: 'shop', operation: 'CREATE', userInfo: { username: 'demo' }, object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'shop-0', namespace: 'shop' }, spec: { containers: [{ name: 'shop', image: appRef }] } }, oldObject: null, dryRun: false } };
    const answer = (await webhook.handle('validate', Buffer.from(JSON.stringify(review)))) as { body: { response: { allowed: boolean } } };
    await recorder.flush();
    decider.close();
    log(`8. admission review (POST /validate, AdmissionReview v1) for pod shop/shop-0: ${answer.body.response.allowed ? 'allowed' : 'denied'}; recorded in the store (where it runs, the decision)`);

    // 9-11: a fixed base version, the old one deprecated, its consumers told.
    const v2 = await importRootfs([{ platform: { os: 'linux', architecture: 'amd64' }, file: rootfs }], {
      name: base,
      version: '12.2',
      sourceUrl: 'https://deb.debian.org/debian',
      // The vendor's next build: the same tree with the fixed glibc (libc6, libc-bin…).
      mutate: (fs) => {
        const e = fs.entries.get('var/lib/dpkg/status');
        if (e?.content) e.content = Buffer.from(e.content.toString('utf8').replaceAll(`Version: ${libc}\n`, `Version: ${fixed}\n`));
      },
    });
    const catalog1 = await loadCatalog(catalogFile);
    const g2 = await gate(v2.source, db, { catalog: catalog1, failOn: failOnList('HIGH') });
    const p2 = await publish(v2.source, catalog1, { to: `${base}:12.2`, signer, line: 'debian-12', db });
    await saveCatalog(catalogFile, catalog1);
    log(`9. base 12.2 (libc6 ${fixed}): gate ${g2.passed ? 'passed' : 'FAILED'} with ${g2.results[0]!.summary.total} finding(s); published ${p2.digest}; 12.1 is now superseded`);
    const catalog2 = await loadCatalog(catalogFile);
    const dep = deprecate(catalog2, `${base}:12.1`, { reason: 'glibc DEMO-2026-0001 (CVE-2026-0001)' });
    await saveCatalog(catalogFile, catalog2);
    const c2 = await check();
    log(`10. plinth golden deprecate ${base}:12.1 (successor ${dep.successor}); plinth check now: ${c2.allowed ? 'allowed' : `denied — ${c2.denials[0]}`}`);
    const [{ baseVersions, findConsumers, deprecationEvent }, { deliver }] = await Promise.all([import('../golden/consumers.js'), import('../notify/notify.js')]);
    const consumers = await findConsumers(await baseVersions(`${base}:12.1`, catalog2, {}), [`${host}/team/**`], { registry: {} });
    const sent = await deliver([hook], consumers.map((c) => deprecationEvent(c, { reason: 'glibc DEMO-2026-0001', successor: dep.successor })), { statePath: path.join(dir, 'notified.json'), backoffMs: 100 });
    log(`11. plinth golden consumers --repos '${host}/team/**' --notify: ${consumers.map((c) => `${c.image} (owner ${c.owner})`).join(', ')}; ${sent.sent} CloudEvent(s) delivered (after a 503 retry): ${received.map((r) => r.type).join(', ')}`);

    // 12-13: rebase, sign, verify; the policy passes again.
    const { rebase } = await import('../rebase/rebase.js');
    const rb = await rebase(appRef, { catalog: catalog2, registry: {} });
    let pushedDigest: string;
    try {
      const copied = await copyImage(rb.source, await openDestination(appRef));
      pushedDigest = copied.digest;
      log(`12. plinth rebase ${appRef} --in-place: ${rb.plan.oldBase.split('@')[1]!.slice(0, 19)}… -> ${rb.plan.newBase}; ${copied.blobs.copied} blob uploaded (the config), ${copied.blobs.mounted + copied.blobs.skipped} layer(s) mounted or already there`);
    } finally {
      await rb.close();
    }
    const { signImage, verifyImage } = await import('../sign/index.js');
    const { openVerifier } = await import('../sign/keys.js');
    await signImage(`${host}/team/shop@${pushedDigest}`, signer, {});
    const v = await verifyImage(appRef, [await openVerifier(path.join(dir, 'golden.pub'))]);
    const s2 = await scanApp();
    const c3 = await check();
    log(`13. signed and verified (${v.signatures.filter((x) => x.verified).length} signature); scan: ${s2.r.summary.total} finding(s); plinth check: ${c3.allowed ? 'allowed' : `denied — ${c3.denials[0]}`}`);

    // 14: day 2 — a new advisory, no image pulled again: the worker re-matches the stored
    // inventories and tells the owner once.
    const adv2 = path.join(dir, 'osv2');
    await mkdir(adv2);
    await writeFile(path.join(adv2, 'DEMO-2026-0002.json'), JSON.stringify({ id: 'DEMO-2026-0002', aliases: ['CVE-2026-0002'], modified: '2026-11-20T00:00:00Z', summary: 'glibc: a second demonstration advisory, no fix yet', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N' }], affected: [{ package: { ecosystem: 'Debian:12', name: 'glibc' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }] }] }));
    await importPaths(db, [adv2]);
    const { runOnce } = await import('../watch/worker.js');
    const { addWatchedTags } = await import('../watch/state.js');
    const appLoc = parseLocation(appRef);
    if (appLoc.transport === 'registry') await addWatchedTags(meta, [{ repository: appLoc.ref.name, tag: appLoc.ref.tag ?? 'latest' }]);
    const before = received.length;
    const w = await runOnce({ store: meta, dbPath: path.join(dir, 'vuln.db'), catalogPath: catalogFile, registry: {}, notify: { targets: [hook], backoffMs: 100 }, notifyAt: 'HIGH' }, { skip: ['discover'] });
    const rm1 = w.jobs.find((j) => j.kind === 'rematch');
    const told = received.slice(before);
    log(`14. a new advisory (DEMO-2026-0002, no fix) imported; plinth watch --once: ${rm1?.summary.replace(/ in \d+ ms$/, '') ?? 'no re-match'}; ${told.length} CloudEvent(s) to the owner: ${told.map((r) => `${r.type} (${r.subject})`).join(', ') || 'none'}`);
    const st = await meta.stats();
    log(`Done. The store holds ${st.images} image(s), ${st.occurrences} occurrence(s), ${st.tags} tag observation(s), ${st.decisions} decision(s): try plinth images|history|consumers --store ${meta.location}`);
    db.close();
    if (o.keep) await writeFile(path.join(dir, 'README.txt'), stringify({ registry: reg.url, store: meta.location, catalog: catalogFile, key: path.join(dir, 'golden.key'), password: 'demo' }));
    if (o.ui) {
      // The dashboard reads only the store (and the catalog, to resolve bases): the registry can go.
      await reg.stop();
      const { startUi } = await import('../ui/server.js');
      const ui = await startUi(meta, { port: o.ui.port, host: o.ui.host ?? '127.0.0.1', catalog: await loadCatalog(catalogFile) });
      try {
        o.log(`dashboard: ${ui.url}/  (Ctrl-C to stop)`);
        await o.ui.until(`${ui.url}/`);
      } finally {
        await ui.close();
      }
    }
  } finally {
    await meta.close();
    receiver.close();
    await reg.stop();
    if (!o.keep) await rm(dir, { recursive: true, force: true });
    else o.log(`kept ${dir}: registry storage, store.db, catalog.yaml, vuln.db, golden.key (password "demo"); restart the registry with docker-registry serve ${path.join(dir, 'registry')}/config.yml`);
  }
}
