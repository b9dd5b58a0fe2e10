import type { ImageSource } from '../source/types.js';
import type { PlatformChoice } from '../source/image.js';
import { inventoryWithBase } from '../packages/withbase.js';
import type { Inventory } from '../packages/inventory.js';
import type { Catalog } from '../provenance/catalog.js';
import type { ProvenanceOptions, ProvenanceReport } from '../provenance/report.js';
import { matchPackages, type Finding, type MatchOptions, type MatchPackage } from './match.js';
import { SEVERITY_ORDER, type Severity } from './severity.js';
import type { VulnStore } from './store.js';

/**
 * Scan: the inventory of each selected image matched against the offline advisory store, each
 * finding attributed to the layer that installed the package and so to the base or the image.
 * The JSON form is stable: fields are only added.
 */
export interface ScanVulnerability extends Omit<Finding, 'layer'> {
  layer: string | null;
  layerIndex: number | null;
  /** base: installed by one of the base image's layers; image: added on top; null: base unknown. */
  origin: 'base' | 'image' | null;
  pkgType: string;
}

export interface ScanResult {
  image: Inventory['image'];
  os: { family: string; version: string } | null;
  ecosystem: string | null;
  base: { name: string | null; digest: string | null; layers: number | null } | null;
  packages: number;
  vulnerabilities: ScanVulnerability[];
  summary: {
    total: number;
    bySeverity: Record<Severity, number>;
    base: number;
    image: number;
    fixable: number;
  };
  /** Why the answer may be incomplete (unsupported OS, unreadable databases…). */
  notes: string[];
}

export interface ScanOptions {
  catalog: Catalog;
  severities?: Severity[];
  ignoreUnfixed?: boolean;
  onLayer?: (i: number, total: number, digest: string) => void;
  /** Called with each image's inventory and provenance (what the store records besides the findings). */
  onImage?: (inv: Inventory, provenance: ProvenanceReport) => void;
  /** How provenance looks bases up (registry checks…): `plinth provenance --db` scans with its own. */
  provenance?: Omit<ProvenanceOptions, 'catalog'>;
}

export function severityRank(s: Severity): number {
  return SEVERITY_ORDER.indexOf(s);
}

/** The packages matchInventory() reads: an inventory's, or the store's copy of one. */
export type ScanPackage = MatchPackage & Pick<Inventory['packages'][number], 'layerIndex' | 'origin'> & { layer?: string | null };

/**
 * Match an inventory's packages and attribute each finding to the package's layer and so to the
 * base or the image. Used by scan and by the day-2 re-match of stored inventories.
 */
export function matchInventory(store: VulnStore, ecosystem: string, packages: readonly ScanPackage[], o: MatchOptions = {}): ScanVulnerability[] {
  const found = matchPackages(store, ecosystem, packages.map((p, i) => ({ ...p, layer: i })), o);
  return found.map((f) => {
    const pkg = packages[Number(f.layer)];
    const { layer: _l, ...rest } = f;
    return { ...rest, layer: pkg?.layer ?? null, layerIndex: pkg?.layerIndex ?? null, origin: pkg?.origin ?? null, pkgType: pkg?.type ?? '' };
  });
}

/** Most severe first, then by package and id. Sorts in place. */
export function sortVulns(vulns: ScanVulnerability[]): ScanVulnerability[] {
  return vulns.sort((a, b) => severityRank(b.severity) - severityRank(a.severity) || a.package.localeCompare(b.package) || a.id.localeCompare(b.id));
}

export function summarize(vulns: readonly ScanVulnerability[]): ScanResult['summary'] {
  const bySeverity = Object.fromEntries(SEVERITY_ORDER.map((s) => [s, 0])) as Record<Severity, number>;
  for (const v of vulns) bySeverity[v.severity]++;
  return {
    total: vulns.length,
    bySeverity,
    base: vulns.filter((v) => v.origin === 'base').length,
    image: vulns.filter((v) => v.origin === 'image').length,
    fixable: vulns.filter((v) => v.fixedVersion).length,
  };
}

export async function scan(source: ImageSource, platform: PlatformChoice, store: VulnStore, o: ScanOptions): Promise<ScanResult[]> {
  const results: ScanResult[] = [];
  for (const { inv, base, provenance } of await inventoryWithBase(source, platform, o.catalog, o.onLayer, o.provenance)) {
    o.onImage?.(inv, provenance);
    const notes: string[] = inv.findings.map((f) => `${f.path ? `${f.path}: ` : ''}${f.message}`);
    let vulns: ScanVulnerability[] = [];
    if (!inv.os) notes.push('no OS release file found: the image has no OS packages Plinth can match');
    else if (!inv.ecosystem) notes.push(`${inv.os.name} ${inv.os.version} has no advisory ecosystem Plinth matches (Debian, Ubuntu and Alpine are supported)`);
    else {
      // The package's position is the join key: the same package listed twice (status and
      // status.d) stays two packages with their own layers.
      vulns = matchInventory(store, inv.ecosystem, inv.packages, { ...(o.ignoreUnfixed ? { ignoreUnfixed: true } : {}) });
    }
    if (o.severities?.length) vulns = vulns.filter((v) => o.severities!.includes(v.severity));
    results.push({
      image: inv.image,
      os: inv.os ? { family: inv.os.family, version: inv.os.version } : null,
      ecosystem: inv.ecosystem,
      base,
      packages: inv.packages.length,
      vulnerabilities: sortVulns(vulns),
      summary: summarize(vulns),
      notes,
    });
  }
  return results;
}
