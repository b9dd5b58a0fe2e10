import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { PlinthError } from '../util/errors.js';
import type { PlatformChoice } from '../source/image.js';
import type { CatalogEntry } from '../provenance/catalog.js';
import type { ProvenanceReport } from '../provenance/report.js';
import type { OpenOptions } from '../source/open.js';
import { defaultCatalogPath } from '../util/paths.js';
import { addStoreOption, openRecorder, recordAll } from './store.js';

/** The library modules this file's commands run, imported when a command runs (start-up). */
async function lib() {
  const [m0, m1, m2, m3] = await Promise.all([import('../provenance/chain.js'), import('../provenance/catalog.js'), import('../provenance/report.js'), import('../source/open.js')]);
  return { ...m0, ...m1, ...m2, ...m3 };
}


export interface CliHelpers {
  addRegistryFlags(cmd: Command): Command;
  /** Registry options; explicit credentials are scoped to `image`'s registry. */
  openOptions(flags: Record<string, unknown>, image?: string): Promise<OpenOptions>;
  platformChoice(p: string | undefined): PlatformChoice;
  out(s: string): void;
  /** Whether to define this top-level command (a run defines only the one it starts; --help all). */
  want(name: string): boolean;
}

function printReport(r: ProvenanceReport, out: (s: string) => void, describeContents: (w: ProvenanceReport['what']) => string | null): void {
  const L: string[] = [];
  const kv = (k: string, v: unknown) => {
    if (v !== null && v !== undefined && v !== '') L.push(`  ${k.padEnd(16)}${String(v)}`);
  };
  L.push(`${r.image.reference}  ${r.image.platform ?? ''}`);
  kv('digest', r.image.digest);
  L.push('What is it?');
  kv('title', r.what.title);
  kv('version', r.what.version);
  kv('vendor', r.what.vendor);
  kv('licenses', r.what.licenses);
  kv('description', r.what.description);
  kv('os/arch', [r.what.os, r.what.architecture, r.what.variant].filter(Boolean).join('/'));
  kv('contents', describeContents(r.what));
  kv('size', `${r.what.size} bytes in ${r.what.layers} layer(s)`);
  for (const l of r.layers) kv(`layer ${l.index + 1}`, `${l.origin ?? '?'}  ${l.size} bytes${l.packages ? `  ${l.packages} package(s)` : ''}${l.createdBy ? `  ${l.createdBy.length > 100 ? `${l.createdBy.slice(0, 99)}…` : l.createdBy}` : ''}`);
  L.push('Where did it come from?');
  kv('source', r.where.source ?? '(unknown)');
  kv('revision', r.where.revision ?? '(unknown)');
  kv('created', r.where.created);
  kv('builder', r.where.builder);
  if (r.base) {
    kv('base', r.where.base);
    kv('confidence', r.base.confidence);
    if (r.base.layers.base !== null) kv('layers', `${r.base.layers.base} from the base, ${r.base.layers.image} added by the image`);
    for (const e of r.base.evidence) kv('evidence', `${e.kind}: ${e.source}${e.confirmed === true ? ' (layers confirmed)' : e.confirmed === false ? ' (layers do NOT match)' : ''}`);
    for (const c of r.base.candidates) kv('also', `${c.name}${c.tag ? `:${c.tag}` : ''}${c.digest ? `@${c.digest}` : ''} (${c.kind})`);
    for (const c of r.base.conflicts) kv('conflict', c);
  } else {
    kv('base', 'unknown (no evidence)');
    for (const c of r.baseCandidates) kv('build used', `${c.name}${c.tag ? `:${c.tag}` : ''}${c.digest ? `@${c.digest}` : ''} (${c.kind}, not confirmed as the base)`);
  }
  L.push('How can I rebuild it?');
  kv('reproducible', r.rebuild.reproducible ? 'yes' : 'no');
  for (const m of r.rebuild.missing) kv('missing', m);
  L.push('Is it up to date?');
  kv('base status', r.upToDate.baseStatus);
  if (r.upToDate.newestApproved) kv('newest approved', `${r.upToDate.newestApproved.name}${r.upToDate.newestApproved.tag ? `:${r.upToDate.newestApproved.tag}` : ''}@${r.upToDate.newestApproved.digest}${r.upToDate.isNewestApproved ? ' (this base)' : ''}`);
  if (r.upToDate.baseTagMoved) kv('base tag', r.upToDate.baseTagMoved.moved ? `${r.upToDate.baseTagMoved.tag} has moved to ${r.upToDate.baseTagMoved.now}` : `${r.upToDate.baseTagMoved.tag} still points at the base`);
  kv('image age', r.upToDate.imageAgeDays === null ? null : `${r.upToDate.imageAgeDays} days`);
  kv('base age', r.upToDate.baseAgeDays === null ? null : `${r.upToDate.baseAgeDays} days`);
  L.push('Known vulnerabilities?');
  kv('status', r.vulnerabilities.status);
  if (r.vulnerabilities.status === 'scanned') {
    const v = r.vulnerabilities;
    kv('total', `${v.total} (critical ${v.bySeverity.CRITICAL ?? 0}, high ${v.bySeverity.HIGH ?? 0}); ${v.base} from the base, ${v.image} added by the image; ${v.fixable} fixable`);
  }
  for (const f of r.findings) L.push(`  ! ${f.source}: ${f.message}`);
  out(L.join('\n'));
}

export function registerProvenance(program: Command, h: CliHelpers): void {
  if (!h.want('provenance') && !h.want('catalog')) return;
  addStoreOption(h.addRegistryFlags(
    program
      .command('provenance')
      .description('answer the five questions for an image: what is it, where did it come from (its base image, with evidence), how to rebuild it, is it up to date, known vulnerabilities')
      .argument('<image>')
      .option('--catalog <file>', `catalog of known base images (default: ${defaultCatalogPath()})`)
      .option('--platform <os/arch[/variant]|all>', 'platform of a multi-platform image (default: this host\'s)')
      .option('--check-registry', 'look bases up in their registries: confirm their layers, and check whether their tags have moved')
      .option('--db <path>', 'vulnerability database: answer "known vulnerabilities?" too (default: used when $PLINTH_DB or ~/.cache/plinth/vuln.db exists)')
      .option('--metadata-only', 'answer from the manifest and config only, without reading the layers (no OS release, package counts or vulnerabilities; fast on a large remote image)')
      .option('--format <format>', 'table or json', 'table'),
  )).action(async (image: string, o: Record<string, unknown> & { catalog?: string; platform?: string; checkRegistry?: boolean; format: string; db?: string; metadataOnly?: boolean; store?: unknown }) => {
    const { loadCatalog, provenance, openSource, parseLocation, describeContents } = await lib();
    if (o.metadataOnly && o.db !== undefined) throw new PlinthError('USAGE', '--db reads the layers: it cannot be used with --metadata-only');
    if (!['table', 'json'].includes(o.format)) throw new PlinthError('USAGE', `--format must be table or json, got "${o.format}"`);
    const opts = await h.openOptions(o, image);
    const catalog = await loadCatalog(o.catalog ?? defaultCatalogPath(), { mustExist: o.catalog !== undefined });
    const loc = parseLocation(image);
    const meta = await openRecorder(o.store);
    let src;
    try {
      src = await openSource(loc, opts);
    } catch (e) {
      await meta?.close();
      throw e;
    }
    try {
      const platform = h.platformChoice(o.platform);
      const popts = { ...(o.checkRegistry ? { checkRegistry: true } : {}), registryOptions: opts };
      const { defaultDbPath } = await import('../vuln/store.js');
      const dbPath = o.db ?? defaultDbPath();
      const useDb = !o.metadataOnly && (o.db !== undefined || existsSync(dbPath));
      const progress = o.format !== 'json' && process.stderr.isTTY ? (i: number, n: number, d: string) => process.stderr.write(`\rreading layer ${i + 1}/${n} ${d.slice(0, 19)}…${i + 1 === n ? '\n' : ''}`) : undefined;
      let reports: ProvenanceReport[];
      if (o.metadataOnly) reports = await provenance(src, platform, { catalog, ...popts });
      else if (!useDb) {
        // One pass over the layers: the OS release and the packages each layer installed. Layers
        // that are not file systems (a WASM module, an OCI artifact) or cannot be read leave the
        // answer from the manifest and config, with a finding that says why.
        const { inventoryWithBase } = await import('../packages/withbase.js');
        try {
          reports = (await inventoryWithBase(src, platform, catalog, progress, popts)).map((x) => x.provenance);
        } catch (e) {
          // What is wrong with a layer's content (not with reaching the registry) is a finding.
          if (!(e instanceof PlinthError) || !['ARCHIVE_INVALID', 'PACKAGE_DB_INVALID', 'UNSUPPORTED', 'DIGEST_MISMATCH', 'SIZE_MISMATCH', 'BLOB_UNKNOWN'].includes(e.code)) throw e;
          reports = await provenance(src, platform, { catalog, ...popts });
          for (const r of reports) r.findings.push({ severity: 'warning', source: 'layers', message: `the layers were not read (no OS release or package counts): ${e.message}` });
        }
      } else {
        const { openStore } = await import('../vuln/store.js');
        const { scan } = await import('../vuln/scan.js');
        const store = openStore(dbPath, { readonly: true });
        reports = [];
        try {
          const results = await scan(src, platform, store, { catalog, provenance: popts, ...(progress ? { onLayer: progress } : {}), onImage: (_inv, p) => void reports.push(p) });
          for (const r of reports) {
            const s = results.find((x) => x.image.digest === r.image.digest);
            if (!s) continue;
            r.vulnerabilities = {
              status: 'scanned',
              total: s.summary.total,
              base: s.summary.base,
              image: s.summary.image,
              unknownOrigin: s.summary.total - s.summary.base - s.summary.image,
              fixable: s.summary.fixable,
              bySeverity: s.summary.bySeverity,
              db: dbPath,
            };
          }
        } finally {
          store.close();
        }
      }
      if (o.format === 'json') h.out(JSON.stringify(o.platform === 'all' ? reports : reports[0], null, 2));
      else reports.forEach((r, i) => {
        if (i) h.out('');
        printReport(r, h.out, describeContents);
      });
      if (meta) {
        const { provenanceRecord } = await import('../store/ingest.js');
        await recordAll(meta, reports.map((r) => provenanceRecord(loc, r, catalog)), o.format === 'json');
      }
    } finally {
      await src.close();
      await meta?.close().catch(() => {});
    }
  });

  const cat = program.command('catalog').description('the catalog of known base images (approved, deprecated…), used to recognise bases by their layers');
  h.addRegistryFlags(
    cat
      .command('add')
      .description('record an image (every platform of an index) as a known base')
      .argument('<image>')
      .option('--catalog <file>', `catalog file (default: ${defaultCatalogPath()})`)
      .option('--status <status>', 'approved, superseded, deprecated or unknown', 'unknown')
      .option('--line <line>', 'the version line this base belongs to (default: its repository)')
      .option('--name <name>', 'name to record (default: the image reference; useful for local sources)')
      .option('--notes <text>', 'free text'),
  ).action(async (image: string, o: Record<string, unknown> & { catalog?: string; status: string; line?: string; name?: string; notes?: string }) => {
    const { chainIds, loadCatalog, saveCatalog, upsert, describeForCatalog, openSource, parseLocation } = await lib();
    if (!['approved', 'superseded', 'deprecated', 'unknown'].includes(o.status)) throw new PlinthError('USAGE', `--status must be approved, superseded, deprecated or unknown, got "${o.status}"`);
    const file = o.catalog ?? defaultCatalogPath();
    const catalog = await loadCatalog(file);
    const loc = parseLocation(image);
    const src = await openSource(loc, await h.openOptions(o, image));
    let entries: CatalogEntry[];
    try {
      const found = await describeForCatalog(src, loc.transport === 'registry' ? loc.ref.string : undefined);
      const addedAt = new Date().toISOString();
      entries = found.map((f) => ({
        ...f,
        ...(o.name ? { name: o.name } : {}),
        chainIds: chainIds(f.diffIds),
        status: o.status as CatalogEntry['status'],
        ...(o.line ? { line: o.line } : {}),
        ...(o.notes ? { notes: o.notes } : {}),
        addedAt,
      }));
    } finally {
      await src.close();
    }
    const empty = entries.filter((e) => e.diffIds.length === 0);
    if (empty.length) throw new PlinthError('USAGE', `${image} has an image with no layers; it cannot be recognised by its layers and is not added`);
    const r = upsert(catalog, entries);
    await saveCatalog(file, catalog);
    h.out(`${file}: ${r.added} added, ${r.updated} updated (${entries.map((e) => `${e.platform ?? '?'} ${e.digest}`).join(', ')})`);
  });

  cat
    .command('list')
    .description('list the known bases')
    .option('--catalog <file>', `catalog file (default: ${defaultCatalogPath()})`)
    .option('--format <format>', 'table or json', 'table')
    .action(async (o: { catalog?: string; format: string }) => {
      const { loadCatalog } = await lib();
      const catalog = await loadCatalog(o.catalog ?? defaultCatalogPath());
      if (o.format === 'json') return h.out(JSON.stringify(catalog.bases, null, 2));
      if (!catalog.bases.length) return h.out('(no bases)');
      h.out(`${'STATUS'.padEnd(11)}${'NAME'.padEnd(45)}${'TAG'.padEnd(12)}${'PLATFORM'.padEnd(16)}${'LAYERS'.padEnd(8)}DIGEST`);
      for (const b of catalog.bases) h.out(`${b.status.padEnd(11)}${b.name.padEnd(45)}${(b.tag ?? '').padEnd(12)}${(b.platform ?? '').padEnd(16)}${String(b.diffIds.length).padEnd(8)}${b.digest}`);
    });

  cat
    .command('remove')
    .description('remove bases by digest (manifest or index), name, or name:tag')
    .argument('<what>')
    .option('--catalog <file>', `catalog file (default: ${defaultCatalogPath()})`)
    .action(async (what: string, o: { catalog?: string }) => {
      const { loadCatalog, remove, saveCatalog, parseLocation } = await lib();
      const file = o.catalog ?? defaultCatalogPath();
      const catalog = await loadCatalog(file, { mustExist: true });
      let key = what;
      try {
        const loc = parseLocation(what);
        if (loc.transport === 'registry' && !loc.ref.digest) key = loc.ref.tagDefaulted ? loc.ref.name : `${loc.ref.name}:${loc.ref.tag}`;
      } catch {
        /* a digest or a raw name */
      }
      const n = remove(catalog, key);
      if (n === 0) throw new PlinthError('USAGE', `no base in ${file} matches "${what}"`);
      await saveCatalog(file, catalog);
      h.out(`${file}: ${n} removed`);
    });

  cat
    .command('schema')
    .description('print the JSON Schema of the catalog file')
    .action(async () => {
      const { catalogJsonSchema } = await lib();
      return h.out(JSON.stringify(catalogJsonSchema(), null, 2));
    });
}
