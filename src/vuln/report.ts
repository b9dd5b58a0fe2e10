import { randomUUID } from 'node:crypto';
import type { ScanResult, ScanVulnerability } from './scan.js';

/** SARIF 2.1.0 for code scanning: one rule per vulnerability id, one result per affected package. */
export function sarif(results: ScanResult[]): unknown {
  const rules = new Map<string, unknown>();
  const out: unknown[] = [];
  const level = (s: string) => (s === 'CRITICAL' || s === 'HIGH' ? 'error' : s === 'MEDIUM' ? 'warning' : 'note');
  const score = (v: ScanVulnerability) => v.cvss?.score ?? ({ CRITICAL: 9.5, HIGH: 8.0, MEDIUM: 5.5, LOW: 2.0, UNKNOWN: 0 } as Record<string, number>)[v.severity] ?? 0;
  for (const r of results) {
    for (const v of r.vulnerabilities) {
      if (!rules.has(v.id)) {
        rules.set(v.id, {
          id: v.id,
          name: 'OsPackageVulnerability',
          shortDescription: { text: v.title || v.id },
          fullDescription: { text: v.title || v.id },
          helpUri: /^CVE-/.test(v.id) ? `https://nvd.nist.gov/vuln/detail/${v.id}` : `https://osv.dev/vulnerability/${v.id}`,
          help: { text: `${v.id}: ${v.title}`, markdown: `**${v.id}** ${v.title}` },
          properties: { tags: ['vulnerability', 'security', v.severity], precision: 'very-high', 'security-severity': score(v).toFixed(1) },
        });
      }
      out.push({
        ruleId: v.id,
        level: level(v.severity),
        message: {
          text: `Package ${v.package} ${v.installedVersion} (${v.origin === 'base' ? 'from the base image' : v.origin === 'image' ? 'added by the image' : 'origin unknown'}) has ${v.id}, severity ${v.severity}; ${v.fixedVersion ? `fixed in ${v.fixedVersion}` : 'no fix available'}.`,
        },
        locations: [{
          physicalLocation: { artifactLocation: { uri: r.image.reference.replace(/^[a-z-]+:\/\//, ''), uriBaseId: 'ROOTPATH' }, region: { startLine: 1 } },
          logicalLocations: [{ name: `${v.package}@${v.installedVersion}`, kind: 'package', fullyQualifiedName: v.purl ?? v.package }],
        }],
        partialFingerprints: { 'plinth/v1': `${r.image.digest}:${v.package}:${v.id}` },
        properties: { origin: v.origin, layer: v.layer, fixedVersion: v.fixedVersion, status: v.status },
      });
    }
  }
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: 'plinth', informationUri: 'https://github.com/plinth-dev/plinth', version: '0.1.0', rules: [...rules.values()] } },
      results: out,
      originalUriBaseIds: { ROOTPATH: { uri: 'file:///' } },
    }],
  };
}

/** CycloneDX 1.5 vulnerabilities (VEX-style) for the scanned image. */
export function cycloneDxVulns(results: ScanResult[]): unknown {
  const r = results[0]!;
  const refs = new Map<string, string>();
  const components = [];
  for (const v of r.vulnerabilities) {
    const ref = v.purl ?? `${v.package}@${v.installedVersion}`;
    if (!refs.has(ref)) {
      refs.set(ref, ref);
      components.push({ type: 'library', 'bom-ref': ref, name: v.package, version: v.installedVersion, ...(v.purl ? { purl: v.purl } : {}) });
    }
  }
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: { timestamp: new Date().toISOString(), tools: { components: [{ type: 'application', name: 'plinth', version: '0.1.0' }] }, component: { type: 'container', 'bom-ref': r.image.digest, name: r.image.reference, version: r.image.digest } },
    components,
    vulnerabilities: r.vulnerabilities.map((v) => ({
      id: v.id,
      source: { name: v.ecosystem },
      ratings: [{ severity: v.severity.toLowerCase() === 'unknown' ? 'unknown' : v.severity.toLowerCase(), ...(v.cvss ? { score: v.cvss.score, method: 'CVSSv31', vector: v.cvss.vector } : {}) }],
      description: v.title,
      ...(v.aliases.length ? { references: v.aliases.map((a) => ({ id: a, source: { name: 'alias' } })) } : {}),
      affects: [{ ref: v.purl ?? `${v.package}@${v.installedVersion}` }],
      analysis: { state: v.status === 'not_affected' ? 'not_affected' : 'exploitable', ...(v.fixedVersion ? { response: ['update'] } : {}) },
      properties: [{ name: 'plinth:origin', value: String(v.origin) }, ...(v.fixedVersion ? [{ name: 'plinth:fixedVersion', value: v.fixedVersion }] : [])],
    })),
  };
}

/** The table: findings grouped by where they come from (base, image). */
export function table(results: ScanResult[]): string {
  const L: string[] = [];
  for (const r of results) {
    L.push(`${r.image.reference} (${r.image.platform ?? '?'}) ${r.image.digest}`);
    L.push(`OS: ${r.os ? `${r.os.family} ${r.os.version}` : 'unknown'}   packages: ${r.packages}   base: ${r.base?.name ? `${r.base.name}${r.base.digest ? `@${r.base.digest}` : ''} (${r.base.layers ?? '?'} layers)` : 'unknown'}`);
    const s = r.summary;
    L.push(`Total: ${s.total} (CRITICAL ${s.bySeverity.CRITICAL}, HIGH ${s.bySeverity.HIGH}, MEDIUM ${s.bySeverity.MEDIUM}, LOW ${s.bySeverity.LOW}, UNKNOWN ${s.bySeverity.UNKNOWN}); from the base: ${s.base}, added by the image: ${s.image}, fixable: ${s.fixable}`);
    const groups: Array<[string, ScanVulnerability[]]> = [
      ['From the base image', r.vulnerabilities.filter((v) => v.origin === 'base')],
      ['Added by the image', r.vulnerabilities.filter((v) => v.origin === 'image')],
      ['Origin unknown (base not identified)', r.vulnerabilities.filter((v) => v.origin === null)],
    ];
    for (const [title, vs] of groups) {
      if (!vs.length) continue;
      L.push('', `${title} (${vs.length})`);
      L.push(`  ${'PACKAGE'.padEnd(24)} ${'VULNERABILITY'.padEnd(20)} ${'SEVERITY'.padEnd(9)} ${'INSTALLED'.padEnd(22)} ${'FIXED'.padEnd(22)} TITLE`);
      for (const v of vs) {
        L.push(`  ${v.package.padEnd(24)} ${v.id.padEnd(20)} ${v.severity.padEnd(9)} ${v.installedVersion.padEnd(22)} ${(v.fixedVersion ?? (v.status === 'will_not_fix' ? '(will not fix)' : '-')).padEnd(22)} ${v.title.replace(/\s+/g, ' ').slice(0, 60)}`);
      }
    }
    for (const n of r.notes.slice(0, 20)) L.push(`  note: ${n}`);
    L.push('');
  }
  return L.join('\n');
}
