import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { PlinthError } from '../util/errors.js';
import type { CliHelpers } from './provenance.js';
import { defaultCatalogPath } from '../util/paths.js';
import { addStoreOption, openRecorder, recordAll } from './store.js';

/** The library modules this file's commands run, imported when a command runs (start-up). */
async function lib() {
  const [m0, m1] = await Promise.all([import('../source/open.js'), import('../provenance/catalog.js')]);
  return { ...m0, ...m1 };
}


/** `plinth scan` and `plinth db …`: the advisory store is loaded lazily (a native module). */
const SEVERITIES = ['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;

function parseSeverities(s: string | undefined): Array<(typeof SEVERITIES)[number]> | undefined {
  if (!s) return undefined;
  const out = s.split(',').map((x) => x.trim().toUpperCase()).filter(Boolean);
  for (const x of out) if (!(SEVERITIES as readonly string[]).includes(x)) throw new PlinthError('USAGE', `--severity: unknown severity "${x}" (use ${SEVERITIES.join(',')})`);
  return out as Array<(typeof SEVERITIES)[number]>;
}

async function store(path: string | undefined, readonly: boolean) {
  const { openStore, defaultDbPath } = await import('../vuln/store.js');
  return openStore(path ?? defaultDbPath(), { readonly });
}

export function registerScan(program: Command, h: CliHelpers): void {
  if (!h.want('scan') && !h.want('db')) return;
  addStoreOption(h.addRegistryFlags(
    program
      .command('scan')
      .description('find known vulnerabilities in an image\'s OS packages, offline, split into what the base brought and what the image added')
      .argument('<image>')
      .option('--db <path>', 'advisory database (default: $PLINTH_DB or ~/.cache/plinth/vuln.db; fill it with plinth db import/update/pull)')
      .option('--catalog <file>', 'catalog of known bases, to tell base findings from image findings')
      .option('--platform <os/arch[/variant]|all>', 'platform of a multi-platform image (default: this host\'s)')
      .option('--severity <list>', 'only these severities, e.g. HIGH,CRITICAL')
      .option('--ignore-unfixed', 'only vulnerabilities that have a fix')
      .option('--exit-code <n>', 'exit with this code when vulnerabilities are found (for CI gates)', '0')
      .option('--format <format>', 'table, json, sarif or cyclonedx', 'table')
      .option('-o, --output <file>', 'write the report to a file')
      .option('--attest', 'also attest the result about each scanned platform image (cosign\'s vuln predicate; needs --key)')
      .option('--key <ref>', 'cosign private key for --attest')
      .option('--attest-format <format>', 'bundle (a Sigstore bundle referrer) or legacy (the .att tag)', 'bundle'),
  )).action(async (image: string, o: Record<string, unknown> & { db?: string; catalog?: string; platform?: string; severity?: string; ignoreUnfixed?: boolean; exitCode: string; format: string; output?: string; attest?: boolean; key?: string; attestFormat: string; store?: unknown }) => {
    if (o.attest && !o.key) throw new PlinthError('USAGE', '--attest needs --key');
    // The key (and its password) first: a wrong one should not wait for the whole read.
    const signer = o.attest ? await (await import('../sign/keys.js')).openSigner(o.key!) : undefined;
    if (o.attestFormat !== 'bundle' && o.attestFormat !== 'legacy') throw new PlinthError('USAGE', `--attest-format must be bundle or legacy, got "${o.attestFormat}"`);
    const started = new Date().toISOString();
    const { loadCatalog } = await lib();
    if (!['table', 'json', 'sarif', 'cyclonedx'].includes(o.format)) throw new PlinthError('USAGE', `--format must be table, json, sarif or cyclonedx, got "${o.format}"`);
    const exitCode = Number(o.exitCode);
    if (!Number.isInteger(exitCode) || exitCode < 0 || exitCode > 255) throw new PlinthError('USAGE', `--exit-code must be 0-255, got "${o.exitCode}"`);
    const severities = parseSeverities(o.severity);
    const catalog = await loadCatalog(o.catalog ?? defaultCatalogPath(), { mustExist: o.catalog !== undefined });
    const report = await import('../vuln/report.js');
    const db = await store(o.db, true);
    const meta = await openRecorder(o.store).catch((e) => {
      db.close();
      throw e;
    });
    const { scanForStore } = await import('../watch/rescan.js');
    try {
      const tty = process.stderr.isTTY === true;
      const { results, records } = await scanForStore(image, db, catalog, {
        registry: await h.openOptions(o, image),
        platform: h.platformChoice(o.platform),
        ...(severities ? { severities } : {}),
        ...(o.ignoreUnfixed ? { ignoreUnfixed: true } : {}),
        ...(tty ? { onLayer: (i: number, n: number, d: string) => process.stderr.write(`\rreading layer ${i + 1}/${n} ${d.slice(0, 19)}…`) } : {}),
      });
      if (tty) process.stderr.write('\r\x1b[K');
      let text: string;
      if (o.format === 'json') text = JSON.stringify(o.platform === 'all' ? results : results[0], null, 2);
      else if (o.format === 'sarif') text = JSON.stringify(report.sarif(results), null, 2);
      else if (o.format === 'cyclonedx') text = JSON.stringify(report.cycloneDxVulns(results), null, 2);
      else text = report.table(results);
      if (o.output) await writeFile(o.output, `${text}\n`);
      else h.out(text);
      if (o.attest) {
        const [{ attestDigest }, { VERSION }] = await Promise.all([import('../sign/index.js'), import('../version.js')]);
        const finished = new Date().toISOString();
        for (const r of results) {
          // cosign's vuln predicate (https://cosign.sigstore.dev/attestation/vuln/v1), the result being Plinth's JSON report.
          const predicate = {
            invocation: { parameters: null, uri: '', event_id: '', 'builder.id': '' },
            scanner: { uri: 'pkg:github/plinth-dev/plinth', version: VERSION, db: { uri: db.path, version: db.meta('last_import') ?? '' }, result: r },
            metadata: { scanStartedOn: started, scanFinishedOn: finished },
          };
          const a = await attestDigest(image, r.image.digest, signer!, 'https://cosign.sigstore.dev/attestation/vuln/v1', predicate, { format: o.attestFormat, registry: await h.openOptions(o, image) });
          process.stderr.write(`Attested vuln about ${a.digest} (${a.format}, ${a.location})\n`);
        }
      }
      if (meta) await recordAll(meta, records, o.format !== 'table');
      if (exitCode && results.some((r) => r.vulnerabilities.length > 0)) process.exitCode = exitCode;
    } finally {
      db.close();
      await meta?.close().catch(() => {});
    }
  });

  const db = program.command('db').description('the offline vulnerability database (OSV advisories for Debian, Ubuntu, Alpine; Alpine secdb)');
  db.command('import')
    .description('import OSV JSON files, directories, OSV zip files (<Ecosystem>/all.zip) and Alpine secdb files')
    .argument('<paths...>')
    .option('--db <path>', 'database (default: $PLINTH_DB or ~/.cache/plinth/vuln.db)')
    .option('--format <format>', 'text or json', 'text')
    .action(async (paths: string[], o: { db?: string; format: string }) => {
      const { importPaths } = await import('../vuln/import.js');
      const s = await store(o.db, false);
      try {
        const r = await importPaths(s, paths);
        if (o.format === 'json') h.out(JSON.stringify(r, null, 2));
        else {
          h.out(`${s.path}: ${r.records} record(s) from ${r.files} file(s), ${r.skipped} skipped, ${r.errors.length} error(s)`);
          for (const e of r.errors.slice(0, 50)) h.out(`  ${e.file}: ${e.message}`);
        }
        if (r.errors.length) process.exitCode = 1;
      } finally {
        s.close();
      }
    });
  db.command('update')
    .description('download the per-ecosystem OSV zips from a mirror and import them')
    .requiredOption('--mirror <url>', 'OSV-style mirror (serves <Ecosystem>/all.zip)')
    .option('--ecosystem <list>', 'ecosystems to fetch', 'Debian,Ubuntu,Alpine')
    .option('--db <path>', 'database (default: $PLINTH_DB or ~/.cache/plinth/vuln.db)')
    .action(async (o: { mirror: string; ecosystem: string; db?: string }) => {
      const { updateFromMirror } = await import('../vuln/import.js');
      const s = await store(o.db, false);
      try {
        const r = await updateFromMirror(s, o.mirror, o.ecosystem.split(',').map((x) => x.trim()).filter(Boolean));
        h.out(`${s.path}: ${r.records} record(s) from ${r.files} file(s), ${r.errors.length} error(s)`);
        for (const e of r.errors.slice(0, 50)) h.out(`  ${e.file}: ${e.message}`);
        if (r.errors.length) process.exitCode = 1;
      } finally {
        s.close();
      }
    });
  db.command('status')
    .description('what the database holds: records per ecosystem, imports, schema')
    .option('--db <path>', 'database (default: $PLINTH_DB or ~/.cache/plinth/vuln.db)')
    .option('--format <format>', 'text or json', 'text')
    .action(async (o: { db?: string; format: string }) => {
      const { status } = await import('../vuln/import.js');
      const s = await store(o.db, true);
      try {
        const st = status(s);
        h.out(o.format === 'json' ? JSON.stringify(st, null, 2) : JSON.stringify(st, null, 2));
      } finally {
        s.close();
      }
    });
  h.addRegistryFlags(
    db.command('push')
      .description('store the database in a registry as an OCI artifact (for air-gapped mirrors)')
      .argument('<ref>')
      .option('--db <path>', 'database (default: $PLINTH_DB or ~/.cache/plinth/vuln.db)'),
  ).action(async (ref: string, o: Record<string, unknown> & { db?: string }) => {
    const { pushDb } = await import('../vuln/oci.js');
    const { defaultDbPath } = await import('../vuln/store.js');
    const r = await pushDb(o.db ?? defaultDbPath(), ref, await h.openOptions(o, ref));
    h.out(JSON.stringify(r, null, 2));
  });
  h.addRegistryFlags(
    db.command('pull')
      .description('fetch a database pushed with plinth db push (replaces the local one only when complete and valid)')
      .argument('<ref>')
      .option('--db <path>', 'database (default: $PLINTH_DB or ~/.cache/plinth/vuln.db)'),
  ).action(async (ref: string, o: Record<string, unknown> & { db?: string }) => {
    const { pullDb } = await import('../vuln/oci.js');
    const { defaultDbPath } = await import('../vuln/store.js');
    const r = await pullDb(ref, o.db ?? defaultDbPath(), await h.openOptions(o, ref));
    h.out(JSON.stringify(r, null, 2));
  });
}
