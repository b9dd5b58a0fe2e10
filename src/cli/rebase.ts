import type { Command } from 'commander';
import { PlinthError, describeError } from '../util/errors.js';
import { defaultCatalogPath } from '../util/paths.js';
import type { CliHelpers } from './provenance.js';
import type { OpenOptions } from '../source/open.js';
import type { ImageConfig } from '../oci/types.js';
import type { ImageNode } from '../source/image.js';
import type { ImageSource } from '../source/types.js';
import type { OsRelease, RebasePlan } from '../rebase/rebase.js';
import { openForQuery } from './store.js';

/**
 * `plinth rebase`: one image (crane/pack semantics, platform by platform) or every consumer of a
 * base (`--consumers-of`). Only configs and manifests are uploaded; layers are already in the
 * repository or mounted from the base's.
 */

interface RebaseFlags extends Record<string, unknown> {
  oldBase?: string;
  newBase?: string;
  tag?: string;
  inPlace?: boolean;
  key?: string;
  dryRun?: boolean;
  allowOsChange?: boolean;
  catalog?: string;
  db?: string;
  format: string;
  consumersOf?: string;
  repos?: string[];
  store?: string;
  owners?: string;
  tagTemplate: string;
}

/** The release of a base: its golden label, else its os-release read from its layers. */
async function osOf(source: ImageSource, img: ImageNode, cfg: ImageConfig): Promise<OsRelease | null> {
  const label = (cfg.config?.Labels as Record<string, string> | undefined)?.['dev.plinth.golden.os'];
  const m = label ? /^(\S+) (\S+)$/.exec(label) : null;
  if (m) return { id: m[1]!, version: m[2]! };
  const { inventory } = await import('../packages/inventory.js');
  const inv = await inventory(source, img);
  return inv.os ? { id: inv.os.id, version: inv.os.version } : null;
}

interface Outcome {
  image: string;
  outcome: 'rebased' | 'would rebase' | 'unchanged' | 'refused' | 'failed';
  plan?: RebasePlan;
  pushed?: { reference: string; digest: string; uploaded: number; mounted: number; present: number; bytesUploaded: number };
  signed?: number;
  diff?: unknown;
  error?: string;
}

async function rebaseOne(image: string, dest: string | null, o: RebaseFlags, registry: OpenOptions, h: CliHelpers): Promise<Outcome> {
  const [{ rebase }, { loadCatalog }, { copyImage }, { openDestination, parseLocation }] = await Promise.all([import('../rebase/rebase.js'), import('../provenance/catalog.js'), import('../source/copy.js'), import('../source/open.js')]);
  const catalog = await loadCatalog(o.catalog ?? defaultCatalogPath(), { mustExist: o.catalog !== undefined });
  const r = await rebase(image, { ...(o.oldBase ? { oldBase: o.oldBase } : {}), ...(o.newBase ? { newBase: o.newBase } : {}), catalog, registry, ...(o.allowOsChange ? { allowOsChange: true } : {}), osOf });
  try {
    const out: Outcome = { image, outcome: r.plan.noop ? 'unchanged' : o.dryRun ? 'would rebase' : 'rebased', plan: r.plan };
    if (o.dryRun) {
      out.diff = await baseDiff(r.plan, o, registry);
      return out;
    }
    if (r.plan.noop) return out;
    const target = dest!;
    const copied = await copyImage(r.source, await openDestination(target, registry));
    const loc = parseLocation(target);
    const name = loc.transport === 'registry' ? loc.ref.name : target;
    out.pushed = { reference: target, digest: copied.digest, uploaded: copied.blobs.copied, mounted: copied.blobs.mounted, present: copied.blobs.skipped, bytesUploaded: copied.bytesCopied };
    if (o.key) {
      const [{ openSigner }, { signImage }] = await Promise.all([import('../sign/keys.js'), import('../sign/index.js')]);
      const signed = await signImage(`${name}@${copied.digest}`, await openSigner(o.key), { recursive: true, registry });
      out.signed = signed.length;
    }
    return out;
  } finally {
    await r.close();
  }
}

/** What moving bases changes: packages added/removed/upgraded, and findings fixed/introduced (with --db). */
async function baseDiff(plan: RebasePlan, o: RebaseFlags, registry: OpenOptions): Promise<unknown> {
  const [{ openSource, parseLocation }, { inventory }, { resolveRoot }] = await Promise.all([import('../source/open.js'), import('../packages/inventory.js'), import('../source/image.js')]);
  const p = plan.platforms[0];
  if (!p) return null;
  const nameOf = (ref: string) => {
    const l = parseLocation(ref);
    return l.transport === 'registry' ? l.ref.name : ref;
  };
  const read = async (ref: string, digest: string) => {
    const src = await openSource(`${nameOf(ref)}@${digest}`, registry);
    try {
      const root = await resolveRoot(src);
      if (root.kind !== 'image') throw new PlinthError('MANIFEST_INVALID', `${ref}@${digest} is not an image`);
      const inv = await inventory(src, root);
      let vulns: Set<string> | null = null;
      if (o.db) {
        const [{ openStore }, { scan }] = await Promise.all([import('../vuln/store.js'), import('../vuln/scan.js')]);
        const db = openStore(o.db, { readonly: true });
        try {
          const [s] = await scan(src, undefined, db, { catalog: (await import('../provenance/catalog.js')).emptyCatalog() });
          vulns = new Set((s?.vulnerabilities ?? []).map((v) => `${v.id} ${v.package}`));
        } finally {
          db.close();
        }
      }
      return { pkgs: new Map(inv.packages.map((x) => [`${x.type}:${x.name}`, x.version])), vulns };
    } finally {
      await src.close();
    }
  };
  const [a, b] = await Promise.all([read(plan.oldBase, p.oldBase.digest), read(plan.newBase, p.newBase.digest)]);
  const added: string[] = [];
  const removed: string[] = [];
  const upgraded: string[] = [];
  for (const [k, v] of b.pkgs) {
    const was = a.pkgs.get(k);
    if (was === undefined) added.push(`${k.split(':')[1]} ${v}`);
    else if (was !== v) upgraded.push(`${k.split(':')[1]} ${was} -> ${v}`);
  }
  for (const [k, v] of a.pkgs) if (!b.pkgs.has(k)) removed.push(`${k.split(':')[1]} ${v}`);
  return {
    platform: p.platform,
    packages: { added: added.sort(), removed: removed.sort(), upgraded: upgraded.sort() },
    ...(a.vulns && b.vulns ? { findings: { fixed: [...a.vulns].filter((x) => !b.vulns!.has(x)).sort(), introduced: [...b.vulns].filter((x) => !a.vulns!.has(x)).sort() } } : {}),
  };
}

function printOutcome(r: Outcome, out: (s: string) => void): void {
  if (r.error) return out(`${r.image}: ${r.outcome}: ${r.error}`);
  const p = r.plan!;
  out(`${r.image}: ${r.outcome}${r.pushed ? ` -> ${r.pushed.reference} ${r.pushed.digest}` : ` (${p.result})`}`);
  out(`  old base ${p.oldBase}  new base ${p.newBase} (${p.newBaseDigest})`);
  for (const x of p.platforms) out(`  ${x.platform}: ${x.original.layers} layer(s) -> ${x.result.layers}: ${x.oldBase.layers} of the old base replaced by ${x.newBase.layers} of the new, ${x.keptLayers.length} of the image kept${x.oldBase.os && x.newBase.os ? `; ${x.oldBase.os.id} ${x.oldBase.os.version} -> ${x.newBase.os.id} ${x.newBase.os.version}` : ''}`);
  if (r.pushed) out(`  uploaded ${r.pushed.uploaded} blob(s) (${r.pushed.bytesUploaded} bytes: configs), mounted ${r.pushed.mounted}, already present ${r.pushed.present}${r.signed ? `; signed ${r.signed} manifest(s)` : ''}`);
  const d = r.diff as { packages: { added: string[]; removed: string[]; upgraded: string[] }; findings?: { fixed: string[]; introduced: string[] } } | null | undefined;
  if (d) {
    out(`  packages: ${d.packages.upgraded.length} upgraded, ${d.packages.added.length} added, ${d.packages.removed.length} removed`);
    for (const u of d.packages.upgraded.slice(0, 30)) out(`    ~ ${u}`);
    for (const u of d.packages.added.slice(0, 30)) out(`    + ${u}`);
    for (const u of d.packages.removed.slice(0, 30)) out(`    - ${u}`);
    if (d.findings) out(`  findings: ${d.findings.fixed.length} fixed (${d.findings.fixed.slice(0, 10).join(', ')}), ${d.findings.introduced.length} introduced${d.findings.introduced.length ? ` (${d.findings.introduced.slice(0, 10).join(', ')})` : ''}`);
  }
}

export function registerRebase(program: Command, h: CliHelpers): void {
  if (!h.want('rebase')) return;
  h.addRegistryFlags(
    program
      .command('rebase')
      .description('move an image onto a new base without rebuilding (crane/pack rebase semantics, platform by platform; only configs and manifests are uploaded), or every consumer of a base with --consumers-of')
      .argument('[image]', 'REGISTRY/REPO:TAG (or @DIGEST with --tag)')
      .option('--old-base <ref>', 'the base to take off (default: the base provenance confirms by its layers)')
      .option('--new-base <ref>', 'the base to put on (default: the newest approved version of the old base\'s catalog line)')
      .option('-t, --tag <ref>', 'where to push the result (REGISTRY/REPO:TAG)')
      .option('--in-place', 'push the result to the image\'s own tag')
      .option('--key <ref>', 'sign the result (cosign key); signatures of the original are never copied')
      .option('--dry-run', 'print the plan, the packages the base change adds/removes/upgrades, and (with --db) the findings it fixes and introduces; write nothing')
      .option('--allow-os-change', 'allow a new base of another distribution or major release')
      .option('--catalog <file>', `catalog (default: ${defaultCatalogPath()})`)
      .option('--db <path>', 'advisory database, for the --dry-run findings diff')
      .option('--consumers-of <base>', 'rebase every image built on this base (found by layers in --repos, and in --store)')
      .option('--repos <glob...>', 'with --consumers-of: REGISTRY/REPO-GLOB to search')
      .option('--store <target>', 'with --consumers-of: also the consumers the metadata store knows')
      .option('--tag-template <template>', 'with --consumers-of: the tag each result gets, next to its original ({tag}, {repo})', '{tag}-rebased')
      .option('--format <format>', 'text or json', 'text'),
  ).action(async (image: string | undefined, o: RebaseFlags) => {
    if (o.format !== 'text' && o.format !== 'json') throw new PlinthError('USAGE', `--format must be text or json, got "${o.format}"`);
    // One GET /v2/ per registry for the whole run (the image, both bases and the destination are
    // often in one registry).
    const registry = { ...(await h.openOptions(o, image)), pings: new Map() };
    const { parseLocation } = await import('../source/open.js');
    const results: Outcome[] = [];
    if (o.consumersOf) {
      if (image) throw new PlinthError('USAGE', 'give an image or --consumers-of, not both');
      if (!o.newBase) throw new PlinthError('USAGE', '--consumers-of needs --new-base');
      if (o.tag || o.inPlace) throw new PlinthError('USAGE', 'with --consumers-of each result is tagged by --tag-template');
      if (!o.repos?.length && !o.store) throw new PlinthError('USAGE', '--consumers-of needs --repos and/or --store');
      const [{ baseVersions, gatherConsumers }, { loadCatalog }] = await Promise.all([import('../golden/consumers.js'), import('../provenance/catalog.js')]);
      const catalog = await loadCatalog(o.catalog ?? defaultCatalogPath(), { mustExist: o.catalog !== undefined });
      const bases = await baseVersions(o.consumersOf, catalog, registry);
      // Each consumer is rebased off the version of the base it is on (the tag may have moved since).
      const images = new Map<string, string>();
      const baseRef = (digest: string) => {
        const b = bases.find((x) => x.digest === digest)!;
        return `${b.name}@${b.index ?? b.digest}`;
      };
      const store = o.store ? await openForQuery(o.store) : undefined;
      try {
        const found = await gatherConsumers(bases, { ...(o.repos?.length ? { repos: o.repos } : {}), ...(store ? { store } : {}), catalog, registry, onWarning: (m) => process.stderr.write(`plinth: warning: ${m}\n`) });
        for (const c of found) for (const t of c.tags) if (!images.has(`${c.repository}:${t}`)) images.set(`${c.repository}:${t}`, baseRef(c.base.digest));
      } finally {
        await store?.close();
      }
      for (const [img, oldBase] of [...images].sort(([a], [b]) => a.localeCompare(b))) {
        const loc = parseLocation(img);
        if (loc.transport !== 'registry') continue;
        const dest = `${loc.ref.name}:${o.tagTemplate.replaceAll('{tag}', loc.ref.tag ?? 'latest').replaceAll('{repo}', loc.ref.repository.split('/').pop()!)}`;
        try {
          results.push(await rebaseOne(img, dest, { ...o, oldBase }, registry, h));
        } catch (e) {
          results.push({ image: img, outcome: e instanceof PlinthError && e.code === 'USAGE' ? 'refused' : 'failed', error: describeError(e) });
        }
      }
      if (!images.size) process.stderr.write(`plinth: no image built on ${o.consumersOf} was found\n`);
    } else {
      if (!image) throw new PlinthError('USAGE', 'give the image to rebase (or --consumers-of BASE)');
      if (!o.dryRun && !o.tag && !o.inPlace) throw new PlinthError('USAGE', 'say where the result goes: --tag REF or --in-place (or --dry-run)');
      if (o.tag && o.inPlace) throw new PlinthError('USAGE', '--tag and --in-place are mutually exclusive');
      const loc = parseLocation(image);
      if (o.inPlace && (loc.transport !== 'registry' || loc.ref.digest)) throw new PlinthError('USAGE', '--in-place needs the image named by tag');
      results.push(await rebaseOne(image, o.tag ?? (o.inPlace ? image : null), o, registry, h));
    }
    if (o.format === 'json') h.out(JSON.stringify(o.consumersOf ? { consumersOf: o.consumersOf, newBase: o.newBase, results } : results[0], null, 2));
    else for (const r of results) printOutcome(r, h.out);
    if (results.some((r) => r.outcome === 'failed' || r.outcome === 'refused')) process.exitCode = 1;
  });
}
