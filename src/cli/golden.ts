import type { Command } from 'commander';
import path from 'node:path';
import { PlinthError } from '../util/errors.js';
import { defaultCatalogPath } from '../util/paths.js';
import type { CliHelpers } from './provenance.js';
import { collect, keyValues, readInput } from './input.js';
import { openForQuery, openRecorder, recordAll } from './store.js';
import { addKeylessFlags, keylessFromFlags, readTrustedRoot, type KeylessFlags } from './sign.js';

/**
 * `plinth golden …`: the platform team's approved bases — import a vendor rootfs reproducibly,
 * gate it on its scan, publish it (push, sign, attest, catalog), deprecate old versions, find and
 * notify their consumers, or run the whole pipeline from a config file.
 */

function epochOf(flag: string | undefined): number | undefined {
  const v = flag ?? process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new PlinthError('USAGE', `SOURCE_DATE_EPOCH must be whole seconds since 1970, got "${v}"`);
  return Number(v);
}

async function vulnDb(p: string | undefined) {
  const { openStore, defaultDbPath } = await import('../vuln/store.js');
  return openStore(p ?? defaultDbPath(), { readonly: true });
}

async function catalogAt(file: string | undefined, mustExist = false) {
  const { loadCatalog } = await import('../provenance/catalog.js');
  const f = file ?? defaultCatalogPath();
  return { file: f, catalog: await loadCatalog(f, { mustExist }) };
}

export function registerGolden(program: Command, h: CliHelpers): void {
  if (!h.want('golden')) return;
  const g = program.command('golden').description('approved ("golden") base images: import a vendor rootfs reproducibly, gate, publish, deprecate, consumers, build');

  addKeylessFlags(g.command('import')
    .description('turn a vendor root filesystem (tarball: plain, gzip, xz, zstd; or a directory) into an image whose digest anyone can reproduce, after verifying the input')
    .argument('[rootfs]', 'the rootfs tarball or directory (or give --rootfs PLATFORM=FILE, repeatable, for a multi-platform index)')
    .requiredOption('--name <repo>', 'the image name it is built for, REGISTRY/REPO (recorded in its history)')
    .requiredOption('--version <version>', 'the base\'s version (org.opencontainers.image.version)')
    .option('--platform <os/arch[/variant]>', 'platform of a single rootfs', 'linux/amd64')
    .option('--rootfs <platform=file>', 'one platform\'s rootfs (repeatable): linux/arm64/v8=arm64.tar.xz', collect)
    .option('--source-url <url>', 'where the input came from (org.opencontainers.image.source)')
    .option('--sha256 <hex>', 'the input\'s expected sha256')
    .option('--checksums <file>', 'the vendor\'s SHA256SUMS file listing the input')
    .option('--checksums-sig <file>', 'detached GPG signature of the checksums file, checked with gpgv')
    .option('--keyring <file>', 'GPG keyring with the vendor\'s keys, for --checksums-sig')
    .option('--bundle <file>', 'a Sigstore bundle over the input (sign-blob), verified with --bundle-key or keyless (--certificate-identity and --certificate-oidc-issuer)')
    .option('--bundle-key <ref>', 'public key for --bundle')
    .option('--label <key=value>', 'extra image label (repeatable)', collect)
    .option('--source-date-epoch <seconds>', 'the time every mtime is clamped to and the image is created at (default: $SOURCE_DATE_EPOCH, else the newest mtime in the input)')
    .option('--output <dest>', 'where to write it: oci:DIR:TAG, oci-archive:FILE, docker-archive:FILE:NAME:TAG, or a registry (default oci:./golden:VERSION)')
    .option('--format <format>', 'text or json', 'text'))
    .action(async (rootfs: string | undefined, o: Record<string, unknown> & KeylessFlags & { name: string; version: string; platform: string; rootfs?: string[]; sourceUrl?: string; sha256?: string; checksums?: string; checksumsSig?: string; keyring?: string; bundle?: string; bundleKey?: string; label?: string[]; sourceDateEpoch?: string; output?: string; format: string }) => {
      const [{ importRootfs, parseRootfsArg }, { parsePlatform }, { copyImage }, { openDestination, parseLocation }] = await Promise.all([import('../golden/import.js'), import('../oci/types.js'), import('../source/copy.js'), import('../source/open.js')]);
      if (o.format !== 'text' && o.format !== 'json') throw new PlinthError('USAGE', `--format must be text or json, got "${o.format}"`);
      const def = parsePlatform(o.platform);
      const inputs = [...(rootfs ? [parseRootfsArg(rootfs, def)] : []), ...(o.rootfs ?? []).map((r) => parseRootfsArg(r, def))];
      if (!inputs.length) throw new PlinthError('USAGE', 'give a rootfs (a tarball or directory) or --rootfs PLATFORM=FILE');
      if (inputs.length > 1 && (o.sha256 || o.bundle)) throw new PlinthError('USAGE', '--sha256 and --bundle verify one input; with several, use --checksums (one file listing them all)');
      const keyless = await keylessFromFlags(o);
      if (o.bundle && !o.bundleKey && !keyless) throw new PlinthError('USAGE', '--bundle needs --bundle-key (the public key that signed the input), or --certificate-identity and --certificate-oidc-issuer (keyless)');
      if (!o.bundle && (o.bundleKey || keyless)) throw new PlinthError('USAGE', '--bundle-key and the certificate flags verify a --bundle: give it');
      const dest = o.output ?? `oci:./golden:${o.version}`;
      parseLocation(dest);
      let verifyBundle: ((file: string, sha256: string) => Promise<string>) | undefined;
      if (o.bundle) {
        const [{ openVerifier }, { parseBundle, verifyBlob }] = await Promise.all([import('../sign/keys.js'), import('../sign/blob.js')]);
        const bundle = parseBundle((await readInput(o.bundle, 'bundle')).toString('utf8'));
        const key = o.bundleKey ? (await openVerifier(o.bundleKey)).publicKey : undefined;
        const trustedRoot = keyless ? keyless.trustedRoot : await readTrustedRoot(o.trustedRoot);
        verifyBundle = async (file, sha256) => {
          const bytes = await readInput(file, 'rootfs');
          // The bytes the signature covers are the bytes that were hashed (and are then extracted and checked again).
          if ((process.getBuiltinModule('node:crypto') as typeof import('node:crypto')).createHash('sha256').update(bytes).digest('hex') !== sha256) throw new PlinthError('DIGEST_MISMATCH', `${file} changed while it was being verified`);
          // With a key, cosign's sign-blob --bundle has no transparency-log entry unless uploaded: not required.
          const r = verifyBlob(bytes, bundle, {
            ...(key ? { key, ignoreTlog: true } : { identity: keyless!.identity, issuer: keyless!.issuer, ...(o.insecureIgnoreTlog ? { ignoreTlog: true } : {}), ...(o.insecureIgnoreSct ? { ignoreSct: true } : {}) }),
            ...(trustedRoot ? { trustedRoot } : {}),
          });
          const who = 'key' in r.signer ? `key ${o.bundleKey}` : `${r.signer.identity} (issuer ${r.signer.issuer})`;
          return `Sigstore bundle ${path.basename(o.bundle!)} (${r.content === 'dsse' ? 'DSSE' : 'message signature'}, ${who})`;
        };
      }
      const tty = process.stderr.isTTY === true && o.format === 'text';
      const epoch = epochOf(o.sourceDateEpoch);
      const r = await importRootfs(inputs, {
        name: o.name,
        version: o.version,
        ...(o.sourceUrl ? { sourceUrl: o.sourceUrl } : {}),
        labels: keyValues(o.label, '--label'),
        ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
        verify: { ...(o.sha256 ? { sha256: o.sha256 } : {}), ...(o.checksums ? { checksums: o.checksums } : {}), ...(o.checksumsSig ? { checksumsSig: o.checksumsSig } : {}), ...(o.keyring ? { keyring: o.keyring } : {}), ...(verifyBundle ? { verifyBundle } : {}) },
        ...(o.format === 'text' ? { onProgress: (m: string) => process.stderr.write(tty ? `\r\x1b[K${m}…` : `${m}…\n`) } : {}),
      });
      if (tty) process.stderr.write('\r\x1b[K');
      for (const p of r.platforms) for (const w of p.warnings) process.stderr.write(`plinth: warning: ${w}\n`);
      const copied = await copyImage(r.source, await openDestination(dest, await h.openOptions(o, dest)));
      const summary = { digest: r.digest, output: dest, mediaType: r.mediaType, created: r.created, sourceDateEpoch: r.epoch, platforms: r.platforms, pushed: copied.digest === r.digest };
      if (o.format === 'json') h.out(JSON.stringify(summary, null, 2));
      else {
        for (const p of r.platforms) {
          h.out(`${p.platform}: ${p.input.file}${p.input.sha256 ? ` sha256:${p.input.sha256}` : ''}${p.input.verified.length ? ` (verified: ${p.input.verified.join('; ')})` : ' (not verified: give --sha256, --checksums or --bundle)'}`);
          h.out(`  ${p.entries} entries${p.duplicates ? ` (${p.duplicates} duplicate(s), last kept)` : ''}, layer ${p.layer.digest} (${p.layer.compressedSize} bytes gzip, diff_id ${p.layer.diffId}), manifest ${p.manifest}`);
        }
        h.out(`${dest} ${r.digest} (created ${r.created}, SOURCE_DATE_EPOCH=${r.epoch})`);
      }
    });

  g.command('gate')
    .description('scan a candidate base and refuse it (exit 1) when it has findings at or above a severity that no unexpired exception covers')
    .argument('<image>')
    .option('--db <path>', 'advisory database (default: $PLINTH_DB or ~/.cache/plinth/vuln.db)')
    .option('--fail-on <severities>', 'HIGH means HIGH and CRITICAL; or a list such as HIGH,CRITICAL', 'HIGH')
    .option('--exceptions <file>', 'reviewed exceptions (YAML: exceptions: [{id, package?, expires, reason}])')
    .option('--format <format>', 'text or json', 'text')
    .action(async (image: string, o: Record<string, unknown> & { db?: string; failOn: string; exceptions?: string; format: string }) => {
      const [{ gate, failOnList, parseExceptions }, { openSource }] = await Promise.all([import('../golden/gate.js'), import('../source/open.js')]);
      const failOn = failOnList(o.failOn);
      const exceptions = o.exceptions ? parseExceptions((await readInput(o.exceptions, 'exceptions')).toString('utf8'), o.exceptions) : [];
      const db = await vulnDb(o.db);
      const src = await openSource(image, await h.openOptions(o, image));
      try {
        const { catalog } = await catalogAt(undefined);
        const r = await gate(src, db, { catalog, failOn, exceptions });
        if (o.format === 'json') h.out(JSON.stringify({ passed: r.passed, image, failOn: r.failOn, blocking: r.blocking, excepted: r.excepted, expired: r.expired, packages: r.results.map((x) => ({ platform: x.image.platform, packages: x.packages, os: x.os })) }, null, 2));
        else {
          const pk = r.results.map((x) => `${x.image.platform ?? '?'}: ${x.os ? `${x.os.family} ${x.os.version}, ` : ''}${x.packages} packages, ${x.summary.total} finding(s)`).join('; ');
          h.out(`${image}: ${pk}`);
          for (const b of r.blocking) h.out(`  BLOCKS  ${b.severity.padEnd(9)}${b.id.padEnd(24)}${b.package} ${b.installedVersion}${b.fixedVersion ? ` (fixed in ${b.fixedVersion})` : ''}${b.platform ? `  [${b.platform}]` : ''}`);
          for (const x of r.excepted) h.out(`  excepted ${x.id} in ${x.package} until ${x.exception.expires}: ${x.exception.reason}`);
          for (const x of r.expired) h.out(`  expired exception for ${x.id} in ${x.package} (expired ${x.expires})`);
          h.out(r.passed ? `gate passed (fail on ${failOn.join(',')})` : `gate FAILED: ${r.blocking.length} finding(s) at ${failOn.join(',')} not covered by an exception`);
        }
        if (!r.passed) process.exitCode = 1;
      } finally {
        await src.close();
        db.close();
      }
    });

  h.addRegistryFlags(
    g.command('publish')
      .description('push a gated base to a registry (digests kept), sign it, attach its SBOM (and scan result with --db) as signed attestations, and make it the approved version of its catalog line (the previous one becomes superseded)')
      .argument('<image>', 'the imported image, e.g. oci:./golden:12')
      .requiredOption('--to <ref>', 'REGISTRY/REPO:TAG')
      .requiredOption('--key <ref>', 'cosign private key')
      .option('--line <line>', 'catalog line, e.g. debian-12 (default: the repository)')
      .option('--catalog <file>', `catalog file (default: ${defaultCatalogPath()})`)
      .option('--db <path>', 'advisory database: also attest the scan result')
      .option('--store [target]', 'record the published base in the metadata store')
      .option('--format <format>', 'text or json', 'text'),
  ).action(async (image: string, o: Record<string, unknown> & { to: string; key: string; line?: string; catalog?: string; db?: string; store?: unknown; format: string }) => {
    const [{ openSigner }, { publish }, { openSource }, { saveCatalog }] = await Promise.all([import('../sign/keys.js'), import('../golden/publish.js'), import('../source/open.js'), import('../provenance/catalog.js')]);
    const signer = await openSigner(o.key);
    const { file, catalog } = await catalogAt(o.catalog);
    const meta = await openRecorder(o.store);
    const db = o.db ? await vulnDb(o.db) : undefined;
    const src = await openSource(image, await h.openOptions(o, image));
    try {
      const r = await publish(src, catalog, { to: o.to, signer, ...(o.line ? { line: o.line } : {}), registry: await h.openOptions(o, o.to), ...(db ? { db } : {}), ...(o.format === 'text' ? { onStep: (m: string) => process.stderr.write(`${m}\n`) } : {}) });
      // Only now, with everything pushed, signed and attested, does the catalog change.
      await saveCatalog(file, catalog);
      if (meta) {
        const [{ provenanceRecord }, { parseLocation }, { provenance }] = await Promise.all([import('../store/ingest.js'), import('../source/open.js'), import('../provenance/report.js')]);
        const remote = await openSource(`${r.reference.replace(/:[^/:@]+$/, '')}@${r.digest}`, await h.openOptions(o, o.to));
        try {
          const reports = await provenance(remote, 'all', { catalog });
          await recordAll(meta, reports.map((p) => provenanceRecord(parseLocation(o.to), p, catalog)), o.format === 'json');
        } finally {
          await remote.close();
        }
      }
      if (o.format === 'json') h.out(JSON.stringify({ ...r, catalogFile: file }, null, 2));
      else {
        h.out(`published ${r.reference} ${r.digest}`);
        h.out(`  signed: ${r.signed.length} manifest(s); attestations: ${r.attestations.map((a) => a.predicateType.split('/').slice(-2).join('/')).join(', ')}`);
        h.out(`  catalog ${file}: line ${r.catalog.line}: ${r.catalog.added.length} entr${r.catalog.added.length === 1 ? 'y' : 'ies'} approved${r.catalog.superseded.length ? `, ${r.catalog.superseded.length} superseded (${[...new Set(r.catalog.superseded.map((b) => `${b.name}${b.tag ? `:${b.tag}` : ''}`))].join(', ')})` : ''}`);
      }
    } finally {
      await src.close();
      db?.close();
      await meta?.close().catch(() => {});
    }
  });

  const addConsumerFlags = (c: Command) =>
    c
      .option('--repos <glob...>', 'repositories to search by layers: REGISTRY/REPO-GLOB (e.g. registry.example.com/team/**)')
      .option('--store <target>', 'also the images the metadata store knows on this base')
      .option('--owners <file>', 'owners file: owners: [{repositories: GLOB|[GLOB], contact}] (used when an image has no authors/maintainer label)')
      .option('--notify <url...>', 'POST one event per affected image to these URLs')
      .option('--notify-format <format>', 'cloudevents (CloudEvents 1.0 JSON) or slack ({"text": …})', 'cloudevents')
      .option('--notify-state <file>', 'where delivered events are remembered, so none is sent twice (default $XDG_STATE_HOME/plinth/notified.json)');

  type ConsumerFlags = Record<string, unknown> & { repos?: string[]; store?: string; owners?: string; notify?: string[]; notifyFormat: string; notifyState?: string; catalog?: string; format?: string };

  /** Consumers from the registry walk and the store, merged by digest; then notifications. */
  async function consumersAndNotify(ref: string, o: ConsumerFlags, fact: { type: string; reason: string | null; successor: string | null }) {
    const [{ baseVersions, gatherConsumers, parseOwners, deprecationEvent }, { deliver, maskTarget }] = await Promise.all([import('../golden/consumers.js'), import('../notify/notify.js')]);
    if (o.notifyFormat !== 'cloudevents' && o.notifyFormat !== 'slack') throw new PlinthError('USAGE', `--notify-format must be cloudevents or slack, got "${o.notifyFormat}"`);
    if (!o.repos?.length && !o.store) throw new PlinthError('USAGE', 'say where to look: --repos REGISTRY/GLOB (walk the registry) and/or --store');
    const { catalog } = await catalogAt(o.catalog);
    const owners = o.owners ? parseOwners((await readInput(o.owners, 'owners file')).toString('utf8'), o.owners) : undefined;
    const registry = await h.openOptions(o);
    const bases = await baseVersions(ref, catalog, registry);
    const warnings: string[] = [];
    const store = o.store ? await openForQuery(o.store) : undefined;
    let list;
    try {
      list = await gatherConsumers(bases, { ...(o.repos?.length ? { repos: o.repos } : {}), ...(store ? { store } : {}), catalog, registry, ...(owners ? { owners } : {}), onWarning: (m) => warnings.push(m) });
    } finally {
      await store?.close();
    }
    let delivery;
    if (o.notify?.length) {
      const events = list.map((c) => deprecationEvent(c, fact));
      delivery = await deliver(o.notify, events, { format: o.notifyFormat as 'cloudevents', ...(o.notifyState ? { statePath: o.notifyState } : {}), onAttempt: (t, e, n, err) => { if (err) process.stderr.write(`notify ${maskTarget(t)}: ${e.subject}: attempt ${n} failed (${err})\n`); } });
      if (delivery.failed.length) process.exitCode = 1;
    }
    return { bases, consumers: list, warnings, delivery };
  }

  function printConsumers(r: Awaited<ReturnType<typeof consumersAndNotify>>) {
    if (!r.consumers.length) h.out('no consumers found');
    for (const c of r.consumers) h.out(`${c.image}  ${c.digest.slice(0, 19)}…  ${c.platform ?? ''}  owner ${c.owner ?? '(unknown)'}  (found in ${c.foundBy.join(', ')})`);
    for (const w of r.warnings.slice(0, 20)) process.stderr.write(`plinth: warning: ${w}\n`);
    if (r.delivery) h.out(`notified: ${r.delivery.sent} sent, ${r.delivery.skipped} already sent before, ${r.delivery.failed.length} failed`);
  }

  h.addRegistryFlags(addConsumerFlags(
    g.command('consumers')
      .description('every image built on a base: by layer prefix in the repositories --repos names (manifests and configs only) and from the store; optionally notify their owners')
      .argument('<base>', 'REGISTRY/REPO[:TAG|@DIGEST] or a digest in the catalog')
      .option('--catalog <file>', `catalog file (default: ${defaultCatalogPath()})`)
      .option('--reason <text>', 'for --notify: why (default: the catalog entry\'s reason)')
      .option('--format <format>', 'text or json', 'text'),
  )).action(async (base: string, o: ConsumerFlags & { reason?: string; format: string }) => {
    const { catalog } = await catalogAt(o.catalog);
    const entry = catalog.bases.find((b) => base.includes(b.digest) || (b.index !== undefined && base.includes(b.index)) || `${b.name}:${b.tag}` === base);
    const type = entry?.status === 'superseded' ? 'dev.plinth.base.superseded' : 'dev.plinth.base.deprecated';
    const r = await consumersAndNotify(base, o, { type, reason: o.reason ?? entry?.reason ?? null, successor: entry?.successor ?? null });
    if (o.format === 'json') h.out(JSON.stringify({ base, bases: r.bases.map(({ diffIds: _d, ...b }) => b), consumers: r.consumers, warnings: r.warnings, ...(r.delivery ? { notified: r.delivery } : {}) }, null, 2));
    else printConsumers(r);
  });

  h.addRegistryFlags(addConsumerFlags(
    g.command('deprecate')
      .description('mark a base deprecated in the catalog (checks then deny images on it, naming the successor); with --repos/--store and --notify, tell the owners of every image on it')
      .argument('<ref>', 'REGISTRY/REPO:TAG, REGISTRY/REPO@DIGEST or a digest')
      .requiredOption('--reason <text>', 'why (shown in denials and notifications)')
      .option('--successor <ref>', 'what to use instead (default: the newest approved version of its line)')
      .option('--catalog <file>', `catalog file (default: ${defaultCatalogPath()})`)
      .option('--format <format>', 'text or json', 'text'),
  )).action(async (ref: string, o: ConsumerFlags & { reason: string; successor?: string; format: string }) => {
    const [{ deprecate }, { saveCatalog }] = await Promise.all([import('../golden/publish.js'), import('../provenance/catalog.js')]);
    const { file, catalog } = await catalogAt(o.catalog, true);
    const d = deprecate(catalog, ref, { reason: o.reason, ...(o.successor ? { successor: o.successor } : {}) });
    await saveCatalog(file, catalog);
    const out: Record<string, unknown> = { deprecated: d.deprecated.map((b) => ({ name: b.name, tag: b.tag ?? null, digest: b.digest, platform: b.platform ?? null })), successor: d.successor, catalog: file };
    if (o.repos?.length || o.store) {
      const r = await consumersAndNotify(ref, o, { type: 'dev.plinth.base.deprecated', reason: o.reason, successor: d.successor });
      Object.assign(out, { consumers: r.consumers, warnings: r.warnings, ...(r.delivery ? { notified: r.delivery } : {}) });
      if (o.format !== 'json') {
        h.out(`${file}: ${d.deprecated.length} entr${d.deprecated.length === 1 ? 'y' : 'ies'} deprecated${d.successor ? `; successor ${d.successor}` : ' (no successor)'}`);
        printConsumers(r);
      }
    } else if (o.format !== 'json') h.out(`${file}: ${d.deprecated.length} entr${d.deprecated.length === 1 ? 'y' : 'ies'} deprecated${d.successor ? `; successor ${d.successor}` : ' (no successor)'}`);
    if (o.format === 'json') h.out(JSON.stringify(out, null, 2));
  });

  h.addRegistryFlags(
    g.command('build')
      .description('the whole pipeline for every line of a config file: import (verified inputs), gate, publish; idempotent — unchanged inputs publish nothing and say so (for a daily CI job)')
      .requiredOption('--config <file>', 'golden.yaml (see docs/golden.md)')
      .option('--line <line>', 'only this line')
      .option('--dry-run', 'import and gate, publish nothing')
      .option('--format <format>', 'text or json', 'text'),
  ).action(async (o: Record<string, unknown> & { config: string; line?: string; dryRun?: boolean; format: string }) => {
    const { runBuild, parseBuildConfig } = await import('../golden/build.js');
    const cfg = parseBuildConfig((await readInput(o.config, 'config')).toString('utf8'), o.config);
    const results = await runBuild(cfg, { configDir: path.dirname(path.resolve(o.config)), registry: await h.openOptions(o), ...(o.line ? { line: o.line } : {}), dryRun: o.dryRun === true, log: o.format === 'json' ? () => {} : (m) => process.stderr.write(`${m}\n`) });
    if (o.format === 'json') h.out(JSON.stringify({ lines: results }, null, 2));
    else for (const r of results) h.out(`${r.line}: ${r.outcome}${r.digest ? ` ${r.digest}` : ''}${r.detail ? ` — ${r.detail}` : ''}`);
    if (results.some((r) => r.outcome === 'failed' || r.outcome === 'refused by the gate')) process.exitCode = 1;
  });
}
