import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildImage, buildIndex, type FileSpec } from '../source/memory.js';
import { copyImage } from '../source/copy.js';
import { openDestination, openSource } from '../source/open.js';
import { inspect } from '../inspect/inspect.js';
import { startLocalRegistry } from '../registry/local.js';
import { describeForCatalog, provenance } from '../provenance/report.js';
import { chainIds } from '../provenance/chain.js';
import { emptyCatalog } from '../provenance/catalog.js';
import { parsePolicy } from '../policy/load.js';
import { gatherFacts } from '../policy/facts.js';
import { evaluate } from '../policy/evaluate.js';

/**
 * The README's first command, on embedded defaults (no server to set up by hand): a real registry
 * on loopback, a two-platform golden base and an app built on it, then what Plinth answers about
 * them — inspect, provenance (base found by its layers), scan (findings split base/app) and an
 * admission-style policy check.
 */
const osRelease: FileSpec = { path: 'etc/os-release', content: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n' };
const status = (extra: string) => `Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n${extra}`;

export async function runDemo(o: { keep: boolean; log: (s: string) => void }): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-demo-'));
  const log = o.log;
  const reg = await startLocalRegistry({ dir: path.join(dir, 'registry') });
  try {
    log(`1. registry started on ${reg.url} (docker-registry, storage in ${reg.dir})`);
    // A two-platform golden base, built into an OCI layout, then copied into the registry.
    const baseLayers = (arch: string): FileSpec[][] => [[osRelease, { path: 'var/lib/dpkg/status', content: status('') }, { path: 'etc/arch', content: arch }]];
    const bases = [];
    for (const architecture of ['amd64', 'arm64']) {
      bases.push(await buildImage({ platform: { os: 'linux', architecture, ...(architecture === 'arm64' ? { variant: 'v8' } : {}) }, layers: baseLayers(architecture), labels: { 'org.opencontainers.image.title': 'golden debian' }, created: '2024-06-01T00:00:00Z' }));
    }
    const index = buildIndex(bases);
    const layoutDir = path.join(dir, 'layout');
    const built = await copyImage(index.source, await openDestination(`oci:${layoutDir}:golden`));
    log(`2. built a two-platform base into oci:${layoutDir}:golden  ${built.digest}`);
    const src = await openSource(`oci:${layoutDir}:golden`);
    const pushed = await copyImage(src, await openDestination(`${reg.host}/golden/debian:12`));
    await src.close();
    log(`3. copied it to ${reg.host}/golden/debian:12 (${pushed.blobs.copied} blobs, digests unchanged: ${pushed.digest === built.digest})`);

    const remote = await openSource(`${reg.host}/golden/debian:12`);
    const info = await inspect(remote, 'all');
    log(`4. plinth inspect ${reg.host}/golden/debian:12 --platform all: ${info.platforms.join(', ')}; ${info.images.map((i) => `${i.platform} ${i.digest.slice(0, 19)}… ${i.layers.length} layer(s)`).join('; ')}`);
    // Record it as an approved base (every platform), as `plinth catalog add --status approved` does.
    const catalog = emptyCatalog();
    for (const e of await describeForCatalog(remote, `${reg.host}/golden/debian:12`)) catalog.bases.push({ ...e, chainIds: chainIds(e.diffIds), status: 'approved' });
    await remote.close();
    log(`5. catalog: ${catalog.bases.length} approved base entries (one per platform)`);

    // An app built on the base (no metadata about it) and one built from scratch.
    const app = await buildImage({ layers: [...baseLayers('amd64'), [{ path: 'var/lib/dpkg/status', content: `${status('\n')}Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n` }, { path: 'app/run', content: '#!/bin/sh\n' }]], created: '2024-07-01T00:00:00Z' });
    await copyImage(app.source, await openDestination(`${reg.host}/team/app:1`));
    const stray = await buildImage({ layers: [[{ path: 'app/run', content: 'stray' }]] });
    await copyImage(stray.source, await openDestination(`${reg.host}/team/stray:1`));
    const appSrc = await openSource(`${reg.host}/team/app:1`);
    const [prov] = await provenance(appSrc, undefined, { catalog });
    log(`6. plinth provenance ${reg.host}/team/app:1: base ${prov!.where.base ?? 'unknown'} (${prov!.base?.confidence} confidence, ${prov!.base?.evidence[0]?.kind}); ${prov!.base?.layers.base} layer(s) from the base, ${prov!.base?.layers.image} added; base status ${prov!.upToDate.baseStatus}`);

    // An offline advisory database with one OSV record, then a scan split by origin.
    const adv = path.join(dir, 'osv');
    await mkdir(adv);
    await writeFile(path.join(adv, 'DEBIAN-CVE-2024-0727.json'), JSON.stringify({ id: 'DEBIAN-CVE-2024-0727', modified: '2024-02-01T00:00:00Z', summary: 'openssl: denial of service via malformed PKCS12', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H' }], affected: [{ package: { ecosystem: 'Debian:12', name: 'openssl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '3.0.13-1~deb12u1' }] }] }] }));
    const { openStore } = await import('../vuln/store.js');
    const { importPaths } = await import('../vuln/import.js');
    const { scan } = await import('../vuln/scan.js');
    const store = openStore(path.join(dir, 'vuln.db'));
    // The metadata store (an embedded SQLite file): what the scan and the checks learn is kept.
    const { MetaStore } = await import('../store/store.js');
    const { scanRecord } = await import('../store/ingest.js');
    const { parseLocation } = await import('../source/open.js');
    const meta = await MetaStore.open(path.join(dir, 'store.db'));
    try {
      await importPaths(store, [adv]);
      let seen: Parameters<NonNullable<Parameters<typeof scan>[3]['onImage']>> | undefined;
      const [r] = await scan(appSrc, undefined, store, { catalog, onImage: (inv, p) => void (seen = [inv, p]) });
      for (const rec of scanRecord(parseLocation(`${reg.host}/team/app:1`), r!, { advisoryDb: store.path, complete: true, catalog, ...(seen ? { inventory: seen[0], provenance: seen[1] } : {}) })) await meta.recordImage(rec);
      log(`7. plinth scan ${reg.host}/team/app:1: ${r!.packages} packages, ${r!.summary.total} vulnerability(ies): ${r!.vulnerabilities.map((v) => `${v.id} in ${v.package} ${v.installedVersion} (${v.severity}, fixed in ${v.fixedVersion}, from the ${v.origin})`).join('; ')}`);
    } finally {
      store.close();
      await appSrc.close();
    }

    // The admission policy: only images on approved bases.
    const { policy } = parsePolicy(`apiVersion: plinth.dev/v1alpha1
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
      allowedBaseImages: {catalogApproved: true}
`, 'approved-bases.yaml');
    for (const [n, image] of [[8, `${reg.host}/team/app:1`], [9, `${reg.host}/team/stray:1`]] as const) {
      const facts = await gatherFacts(image, { policy, catalog });
      const d = evaluate(policy, facts);
      log(`${n}. plinth check ${image} --policy approved-bases.yaml: ${d.allowed ? 'allowed' : `denied — ${d.denials[0]}`}`);
      await meta.recordDecisions([{ time: new Date().toISOString(), source: 'check', image, digest: d.digest, repository: facts.reference?.name ?? null, allowed: d.allowed, policy: 'approved-bases', messages: [...d.denials, ...d.warnings] }]);
    }
    const { consumers } = await import('../store/queries.js');
    const c = await consumers(meta, `${reg.host}/golden/debian:12`, { catalog });
    const st = await meta.stats();
    log(`10. plinth consumers ${reg.host}/golden/debian:12 --store ${meta.location}: ${c.images.map((i) => `${i.repository}:${i.tags.join(',')} (${i.vulnerabilities?.total ?? 0} finding(s), ${i.packages} packages)`).join('; ') || 'none'}; the store holds ${st.images} image(s), ${st.occurrences} occurrence(s), ${st.decisions} decision(s)`);
    await meta.close();
    log('Next: plinth --help; README.md lists every command.');
  } finally {
    await reg.stop();
    if (!o.keep) await rm(dir, { recursive: true, force: true });
    else log(`kept ${dir}`);
  }
}
