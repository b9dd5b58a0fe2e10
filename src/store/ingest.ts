import path from 'node:path';
import type { ProvenanceReport } from '../provenance/report.js';
import type { Catalog } from '../provenance/catalog.js';
import type { ScanResult, ScanVulnerability } from '../vuln/scan.js';
import type { Inventory, InventoryPackage } from '../packages/inventory.js';
import type { ImageLocation } from '../source/open.js';
import { VERSION } from '../version.js';
import { fullVersion } from '../vuln/match.js';
import { parseEcosystem } from '../vuln/osv.js';
import { contentFingerprint, noteId, occurrenceId, type IndexedPackage, type PackageIndexEntry, type BaseFacts, type ImageIdentity, type ImageRecord, type NoteInput, type OccurrenceInput, type VulnSummary } from './store.js';

/**
 * What each command learned, as store records in the Grafeas model. Pure functions: the commands
 * (and the webhook) call them and hand the records to MetaStore.
 */

/** The repository, registry and tag of what the user named; local sources keep their transport and path. */
export function identityOf(loc: ImageLocation, image: { digest: string; platform?: string | null; index?: string | null; mediaType?: string | null }): ImageIdentity {
  if (loc.transport === 'registry') {
    const r = loc.ref;
    return {
      repository: r.name,
      registry: r.registry,
      // The tag was resolved only when no digest was named with it.
      tag: r.digest ? null : r.tag ?? null,
      digest: image.digest,
      indexDigest: image.index ?? null,
      platform: image.platform ?? null,
      ...(image.mediaType !== undefined ? { mediaType: image.mediaType } : {}),
    };
  }
  return { repository: `${loc.transport}:${path.resolve(loc.path)}`, registry: null, tag: null, digest: image.digest, indexDigest: image.index ?? null, platform: image.platform ?? null };
}

const GRAFEAS_SEVERITY: Record<string, string> = { UNKNOWN: 'SEVERITY_UNSPECIFIED', LOW: 'LOW', MEDIUM: 'MEDIUM', HIGH: 'HIGH', CRITICAL: 'CRITICAL' };

/** A Grafeas Version message for a package manager's version string. */
function version(full: string | null | undefined): Record<string, unknown> {
  if (!full) return { kind: 'MAXIMUM' };
  const m = /^(?:(\d+):)?(.*?)(?:-([^-]*))?$/.exec(full);
  return { ...(m?.[1] ? { epoch: Number(m[1]) } : {}), name: m?.[2] ?? full, ...(m?.[3] ? { revision: m[3] } : {}), kind: 'NORMAL', fullName: full };
}

function baseFacts(p: ProvenanceReport): BaseFacts | null {
  const b = p.base;
  if (!b) return null;
  const up = p.upToDate;
  const newest = up.newestApproved ? `${up.newestApproved.name}${up.newestApproved.tag ? `:${up.newestApproved.tag}` : ''}@${up.newestApproved.digest}` : null;
  const behind = up.baseStatus === 'deprecated' ? true : up.isNewestApproved === null ? null : !up.isNewestApproved;
  return { name: b.name, tag: b.tag, digest: b.catalog?.digest ?? b.digest, confidence: b.confidence, status: up.baseStatus, line: up.line, newest, behind };
}

function labelsOf(p: ProvenanceReport): Record<string, string> {
  const out: Record<string, string> = {};
  const w = p.what;
  const put = (k: string, v: string | null) => {
    if (v) out[`org.opencontainers.image.${k}`] = v;
  };
  put('title', w.title);
  put('version', w.version);
  put('vendor', w.vendor);
  put('licenses', w.licenses);
  put('authors', w.authors);
  put('url', w.url);
  put('source', p.where.source);
  put('revision', p.where.revision);
  return out;
}

/** IMAGE (the base, with its fingerprint) and BUILD (where it came from, how to rebuild) occurrences. */
function provenanceOccurrences(p: ProvenanceReport, catalog: Catalog | undefined): { notes: NoteInput[]; occurrences: OccurrenceInput[] } {
  const notes: NoteInput[] = [];
  const occurrences: OccurrenceInput[] = [];
  const b = p.base;
  if (b && (b.digest || b.name)) {
    const baseDigest = b.catalog?.digest ?? b.digest;
    const entry = catalog?.bases.find((e) => e.digest === baseDigest);
    const baseUrl = `${b.name ?? 'unknown'}${baseDigest ? `@${baseDigest}` : b.tag ? `:${b.tag}` : ''}`;
    const id = noteId('base', baseDigest ?? `${b.name}:${b.tag ?? ''}`);
    const diffIds = entry?.diffIds ?? [];
    const fingerprint = { v1Name: entry?.diffIds.length ? entry.diffIds[0] : '', v2Blob: diffIds, ...(entry?.chainIds?.length ? { v2Name: entry.chainIds[entry.chainIds.length - 1] } : {}) };
    notes.push({ id, kind: 'IMAGE', shortDescription: `base image ${baseUrl}`, data: { image: { resourceUrl: baseUrl, fingerprint } } });
    occurrences.push({
      kind: 'IMAGE',
      note: id,
      subject: baseDigest ?? b.name,
      data: { fingerprint, distance: b.layers.image ?? 0, baseResourceUrl: baseUrl },
      extra: { name: b.name, tag: b.tag, digest: baseDigest, confidence: b.confidence, verified: b.verified, evidence: b.evidence.map((e) => ({ kind: e.kind, source: e.source, confirmed: e.confirmed ?? null })), layers: b.layers, status: p.upToDate.baseStatus, line: p.upToDate.line, newestApproved: p.upToDate.newestApproved },
    });
  }
  const builder = noteId('builder', p.where.builder);
  notes.push({ id: builder, kind: 'BUILD', shortDescription: `images built by ${p.where.builder}`, data: { build: { builderVersion: p.where.builder } } });
  occurrences.push({
    kind: 'BUILD',
    note: builder,
    subject: p.where.source,
    data: {
      provenance: {
        id: p.image.digest,
        builtArtifacts: [{ checksum: p.image.digest, id: p.image.reference }],
        ...(p.where.created ? { createTime: p.where.created } : {}),
        ...(p.where.source ? { sourceProvenance: { context: { git: { url: p.where.source, ...(p.where.revision ? { revisionId: p.where.revision } : {}) } } } } : {}),
        buildOptions: { builder: p.where.builder, reproducible: String(p.rebuild.reproducible) },
      },
    },
    // The layers (sizes, the instruction that made each, base or image, packages installed) and
    // what reading them found: the dashboard's layer view and "what is it?".
    extra: { rebuild: p.rebuild, where: p.where, findings: p.findings, layers: p.layers, distribution: p.what.distribution, packages: p.what.packages },
  });
  return { notes, occurrences };
}

/** The record `plinth provenance` makes of one report. */
export function provenanceRecord(loc: ImageLocation, p: ProvenanceReport, catalog?: Catalog): ImageRecord {
  const { notes, occurrences } = provenanceOccurrences(p, catalog);
  const discovery = discoveryOccurrence('provenance', null);
  return {
    image: identityOf(loc, { digest: p.image.digest, index: p.image.index, platform: p.image.platform }),
    source: 'provenance',
    ...(p.what.distribution ? { os: `${p.what.distribution.id} ${p.what.distribution.version}`.trim() } : {}),
    created: p.what.created,
    size: Number.isSafeInteger(p.what.size) ? p.what.size : null,
    labels: labelsOf(p),
    base: baseFacts(p),
    analysed: true,
    notes: [...notes, discovery.note],
    occurrences: [...occurrences, discovery.occurrence],
  };
}

function discoveryOccurrence(what: 'provenance' | 'packages' | 'vulnerabilities', db: string | null): { note: NoteInput; occurrence: OccurrenceInput } {
  const id = noteId('plinth', what);
  const kind = what === 'vulnerabilities' ? 'VULNERABILITY' : what === 'packages' ? 'PACKAGE' : 'BUILD';
  return {
    note: { id, kind: 'DISCOVERY', shortDescription: `Plinth ${what} analysis`, data: { discovery: { analysisKind: kind } } },
    occurrence: {
      kind: 'DISCOVERY',
      note: id,
      subject: what,
      data: { continuousAnalysis: 'INACTIVE', analysisStatus: 'FINISHED_SUCCESS', lastScanTime: new Date().toISOString(), analysisCompleted: { analysisType: [what] } },
      extra: { plinth: VERSION, ...(db !== null ? { advisoryDb: db } : {}) },
    },
  };
}

function packageOccurrences(inv: Inventory): { notes: NoteInput[]; occurrences: OccurrenceInput[] } {
  const notes: NoteInput[] = [];
  const occurrences: OccurrenceInput[] = [];
  const seen = new Set<string>();
  inv.packages.forEach((pkg: InventoryPackage, i: number) => {
    const id = noteId(`pkg-${pkg.type}`, pkg.name);
    if (!seen.has(id)) {
      seen.add(id);
      notes.push({ id, kind: 'PACKAGE', shortDescription: `${pkg.type} package ${pkg.name}`, data: { package: { name: pkg.name, packageType: pkg.type } } });
    }
    occurrences.push({
      kind: 'PACKAGE',
      note: id,
      // The same package listed twice (status and status.d) stays two occurrences.
      key: `${pkg.evidence}\u0000${pkg.name}\u0000${pkg.version}\u0000${pkg.arch ?? ''}\u0000${i}`,
      subject: pkg.name,
      data: {
        name: pkg.name,
        packageType: pkg.type,
        cpeUri: '',
        ...(pkg.license ? { license: { expression: pkg.license } } : {}),
        version: version(pkg.release ? `${pkg.epoch ? `${pkg.epoch}:` : ''}${pkg.version}-${pkg.release}` : pkg.version),
        location: [{ path: `/${pkg.evidence}` }],
      },
      extra: { purl: pkg.purl, arch: pkg.arch ?? null, source: pkg.source ?? null, sourceVersion: pkg.sourceVersion ?? null, layer: pkg.layer ?? null, layerIndex: pkg.layerIndex ?? null, origin: pkg.origin ?? null },
    });
  });
  return { notes, occurrences };
}

/** The inventory by source package, as the day-2 re-match reads it (see MetaStore's package_index). */
export function packageIndex(inv: Pick<Inventory, 'ecosystem' | 'packages'>): PackageIndexEntry[] {
  if (!inv.ecosystem) return [];
  // The key advisories are stored and logged under (Ubuntu:22.04, not Ubuntu:22.04:LTS), so an
  // advisory change finds the images it concerns.
  let ecosystem = inv.ecosystem;
  try {
    ecosystem = parseEcosystem(inv.ecosystem).key;
  } catch {
    /* kept as given */
  }
  const bySource = new Map<string, IndexedPackage[]>();
  for (const p of inv.packages) {
    const source = p.source?.trim() || p.name;
    const list = bySource.get(source) ?? [];
    const x: IndexedPackage = { name: p.name, version: fullVersion(p), type: p.type };
    if (p.source) x.source = p.source;
    if (p.sourceVersion) x.sourceVersion = p.sourceVersion;
    if (p.purl) x.purl = p.purl;
    if (p.layer) x.layer = p.layer;
    if (p.layerIndex !== undefined) x.layerIndex = p.layerIndex;
    if (p.origin) x.origin = p.origin;
    list.push(x);
    bySource.set(source, list);
  }
  return [...bySource].map(([source, packages]) => ({ ecosystem, source, packages }));
}

/** The record `plinth sbom` makes: the packages with the layer that installed each (replacing any stored set). */
export function inventoryRecord(loc: ImageLocation, inv: Inventory, source = 'sbom', index: string | null = null): ImageRecord {
  const { notes, occurrences } = packageOccurrences(inv);
  const discovery = discoveryOccurrence('packages', null);
  return {
    image: identityOf(loc, { digest: inv.image.digest, platform: inv.image.platform, index }),
    source,
    os: inv.os ? `${inv.os.id} ${inv.os.version}` : null,
    ecosystem: inv.ecosystem ?? null,
    packageIndex: packageIndex(inv),
    packageCount: inv.packages.length,
    notes: [...notes, discovery.note],
    occurrences: [...occurrences, discovery.occurrence],
    replaceKinds: ['PACKAGE'],
  };
}

export function vulnerabilityOccurrence(v: ScanVulnerability, fingerprint = vulnerabilityFingerprint(v)): { note: NoteInput; occurrence: OccurrenceInput } {
  const x = vulnerabilityOccurrenceBody(v);
  x.occurrence.fingerprint = fingerprint;
  return x;
}

/**
 * What a stored finding is compared by: a hash of the vulnerability it was made from (data and
 * extra are functions of it), so a re-match builds the occurrence only for what changed.
 */
export function vulnerabilityFingerprint(v: ScanVulnerability): string {
  return contentFingerprint(v);
}

/** The occurrence id a finding gets on a resource (without building the occurrence). */
export function vulnerabilityOccurrenceId(uri: string, v: Pick<ScanVulnerability, 'id' | 'package' | 'installedVersion'>): string {
  return occurrenceId(uri, { kind: 'VULNERABILITY', note: noteId('vuln', v.id), key: `${v.package}\u0000${v.installedVersion}` });
}

function vulnerabilityOccurrenceBody(v: ScanVulnerability): { note: NoteInput; occurrence: OccurrenceInput } {
  const id = noteId('vuln', v.id);
  const severity = GRAFEAS_SEVERITY[v.severity] ?? 'SEVERITY_UNSPECIFIED';
  const fixed = v.fixedVersion ? version(v.fixedVersion) : { kind: 'MAXIMUM' };
  return {
    note: {
      id,
      kind: 'VULNERABILITY',
      shortDescription: v.id,
      data: { vulnerability: { severity, ...(v.cvss ? { cvssScore: v.cvss.score } : {}) }, shortDescription: v.id, longDescription: v.title, relatedNoteNames: [], ...(v.aliases.length ? { relatedUrl: v.aliases.map((a) => ({ label: a, url: `https://osv.dev/vulnerability/${encodeURIComponent(a)}` })) } : {}) },
    },
    occurrence: {
      kind: 'VULNERABILITY',
      note: id,
      key: `${v.package}\u0000${v.installedVersion}`,
      subject: v.id,
      severity: v.severity,
      sourcePackage: v.source,
      facet: `${v.origin ?? 'none'}|${v.fixedVersion ? 1 : 0}`,
      data: {
        type: 'OS',
        severity,
        effectiveSeverity: severity,
        ...(v.cvss ? { cvssScore: v.cvss.score } : {}),
        shortDescription: v.title,
        fixAvailable: v.fixedVersion !== null,
        packageIssue: [{ affectedCpeUri: '', affectedPackage: v.package, affectedVersion: version(v.installedVersion), fixedCpeUri: '', fixedPackage: v.package, fixedVersion: fixed, fixAvailable: v.fixedVersion !== null, packageType: v.pkgType || 'OS', effectiveSeverity: severity }],
      },
      extra: { package: v.package, source: v.source, installedVersion: v.installedVersion, fixedVersion: v.fixedVersion, status: v.status, aliases: v.aliases, ecosystem: v.ecosystem, layer: v.layer, origin: v.origin, title: v.title, severitySource: v.severitySource },
    },
  };
}

/**
 * The record `plinth scan` makes: findings (replacing the open ones, resolving those no longer
 * reported), the summary, and — when the scan read them — packages and provenance.
 */
export function scanRecord(loc: ImageLocation, r: ScanResult, o: { advisoryDb: string | null; inventory?: Inventory; provenance?: ProvenanceReport; catalog?: Catalog; complete: boolean }): ImageRecord[] {
  const notes: NoteInput[] = [];
  const occurrences: OccurrenceInput[] = [];
  for (const v of r.vulnerabilities) {
    const x = vulnerabilityOccurrence(v);
    notes.push(x.note);
    occurrences.push(x.occurrence);
  }
  const discovery = discoveryOccurrence('vulnerabilities', o.advisoryDb);
  const summary: VulnSummary = { total: r.summary.total, bySeverity: r.summary.bySeverity, base: r.summary.base, image: r.summary.image, fixable: r.summary.fixable };
  const records: ImageRecord[] = [];
  if (o.provenance) records.push(provenanceRecord(loc, o.provenance, o.catalog));
  if (o.inventory) records.push(inventoryRecord(loc, o.inventory, 'scan', o.provenance?.image.index ?? null));
  records.push({
    image: identityOf(loc, { digest: r.image.digest, platform: r.image.platform, index: o.provenance?.image.index ?? null }),
    source: 'scan',
    os: r.os ? `${r.os.family} ${r.os.version}` : null,
    ...(r.ecosystem ? { ecosystem: r.ecosystem } : {}),
    packageCount: r.packages,
    scanned: true,
    advisoryDb: o.advisoryDb,
    notes: [...notes, discovery.note],
    occurrences: [...occurrences, discovery.occurrence],
    // A filtered scan (--severity, --ignore-unfixed) is not the whole truth: it adds, never resolves.
    ...(o.complete ? { vulns: summary, replaceKinds: ['VULNERABILITY' as const] } : {}),
  });
  return records;
}

/** ATTESTATION occurrences for the signatures `plinth verify` checked (verified ones only). */
export function verificationRecord(loc: ImageLocation, digest: string, signatures: Array<{ verified: boolean; key?: string; format: string; source: string; reason: string; signedDigest?: string }>, source = 'verify', signerOf: (keyRef: string | undefined) => string = (k) => k ?? 'keyless'): ImageRecord {
  const notes: NoteInput[] = [];
  const occurrences: OccurrenceInput[] = [];
  for (const s of signatures) {
    if (!s.verified) continue;
    // A signer is who they are, not where their key file was: the key's fingerprint (or the keyless identity).
    const signer = signerOf(s.key);
    const id = noteId('signer', signer);
    notes.push({ id, kind: 'ATTESTATION', shortDescription: `signatures verified with ${signer}`, data: { attestation: { hint: { humanReadableName: signer } } } });
    occurrences.push({
      kind: 'ATTESTATION',
      note: id,
      key: s.source,
      subject: signer,
      data: { serializedPayload: '', signatures: [{ publicKeyId: signer }] },
      extra: { format: s.format, source: s.source, reason: s.reason, key: s.key ?? null, signedDigest: s.signedDigest ?? digest, verifiedAt: new Date().toISOString() },
    });
  }
  return { image: identityOf(loc, { digest }), source, notes, occurrences };
}
