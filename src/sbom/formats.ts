import { createHash, randomUUID } from 'node:crypto';
import type { Inventory } from '../packages/inventory.js';

/**
 * SBOM documents from an inventory: CycloneDX 1.5 JSON, SPDX 2.3 JSON, and Plinth's own JSON
 * (`{ os: {family, version}, packages: [...] }`, one entry per installed package).
 */
const TOOL = { name: 'plinth', version: '0.1.0' };

/** A license string is kept as an SPDX expression only when it looks like one. */
function spdxExpression(s: string | undefined): string | undefined {
  if (!s) return undefined;
  const t = s.trim();
  return /^\(?[A-Za-z0-9.+-]+(?:\s+(?:AND|OR|WITH)\s+\(?[A-Za-z0-9.+-]+\)?)*\)?$/.test(t) ? t : undefined;
}

export function plinthJson(inv: Inventory): unknown {
  return {
    image: inv.image,
    os: inv.os ? { family: inv.os.family, version: inv.os.version, name: inv.os.name, versionId: inv.os.versionId, ...(inv.os.codename ? { codename: inv.os.codename } : {}) } : null,
    ecosystem: inv.ecosystem,
    packages: inv.packages.map((p) => ({
      name: p.name,
      version: p.version,
      ...(p.release !== undefined ? { release: p.release } : {}),
      ...(p.epoch !== undefined ? { epoch: p.epoch } : {}),
      arch: p.arch ?? null,
      source: p.source ?? p.name,
      sourceVersion: p.sourceVersion ?? p.version,
      license: p.license ?? null,
      type: p.type,
      purl: p.purl,
      layer: p.layer ?? null,
      layerIndex: p.layerIndex ?? null,
      origin: p.origin ?? null,
      evidence: p.evidence,
    })),
    layers: inv.layers,
    findings: inv.findings,
  };
}

export function cycloneDx(inv: Inventory): unknown {
  const components: unknown[] = [];
  if (inv.os) {
    components.push({ type: 'operating-system', 'bom-ref': `os:${inv.os.id}@${inv.os.versionId || inv.os.version}`, name: inv.os.id, version: inv.os.versionId || inv.os.version, description: inv.os.prettyName ?? inv.os.name });
  }
  const seen = new Set<string>();
  for (const p of inv.packages) {
    let ref = p.purl;
    if (seen.has(ref)) ref = `${p.purl}#${p.evidence}`;
    seen.add(ref);
    const license = p.license;
    const expr = spdxExpression(license);
    components.push({
      type: 'library',
      'bom-ref': ref,
      name: p.name,
      version: p.type === 'rpm' && p.release ? `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}` : p.version,
      purl: p.purl,
      ...(license ? { licenses: [expr ? { expression: expr } : { license: { name: license } }] } : {}),
      ...(p.maintainer ? { publisher: p.maintainer } : {}),
      properties: [
        ...(p.source ? [{ name: 'plinth:package:source', value: p.source }] : []),
        ...(p.sourceVersion ? [{ name: 'plinth:package:sourceVersion', value: p.sourceVersion }] : []),
        ...(p.layer ? [{ name: 'plinth:layer:diffID', value: p.layer }] : []),
        ...(p.origin ? [{ name: 'plinth:origin', value: p.origin }] : []),
        { name: 'plinth:evidence', value: p.evidence },
      ],
    });
  }
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.5.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${randomUUID()}`,
    version: 1,
    metadata: {
      timestamp: new Date().toISOString(),
      tools: { components: [{ type: 'application', name: TOOL.name, version: TOOL.version }] },
      component: { type: 'container', 'bom-ref': inv.image.digest, name: inv.image.reference, version: inv.image.digest },
    },
    components,
    dependencies: [{ ref: inv.image.digest, dependsOn: components.map((c) => (c as { 'bom-ref': string })['bom-ref']) }],
  };
}

function spdxId(s: string): string {
  return `SPDXRef-${s.replace(/[^A-Za-z0-9.-]/g, '-')}`;
}

export function spdx(inv: Inventory): unknown {
  const imageId = 'SPDXRef-Image';
  const packages: Array<Record<string, unknown>> = [
    {
      SPDXID: imageId,
      name: inv.image.reference,
      versionInfo: inv.image.digest,
      downloadLocation: 'NOASSERTION',
      primaryPackagePurpose: 'CONTAINER',
      filesAnalyzed: false,
      checksums: [{ algorithm: 'SHA256', checksumValue: inv.image.digest.replace(/^sha256:/, '') }],
    },
  ];
  const relationships: Array<Record<string, string>> = [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId }];
  if (inv.os) {
    packages.push({ SPDXID: 'SPDXRef-OperatingSystem', name: inv.os.id, versionInfo: inv.os.versionId || inv.os.version, downloadLocation: 'NOASSERTION', primaryPackagePurpose: 'OPERATING-SYSTEM', filesAnalyzed: false });
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: 'SPDXRef-OperatingSystem' });
  }
  const ids = new Set<string>();
  for (const p of inv.packages) {
    let id = spdxId(`Package-${p.type}-${p.name}-${createHash('sha256').update(`${p.purl} ${p.evidence}`).digest('hex').slice(0, 16)}`);
    while (ids.has(id)) id += '-x';
    ids.add(id);
    const expr = spdxExpression(p.license);
    packages.push({
      SPDXID: id,
      name: p.name,
      versionInfo: p.type === 'rpm' && p.release ? `${p.epoch ? `${p.epoch}:` : ''}${p.version}-${p.release}` : p.version,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: expr ?? 'NOASSERTION',
      ...(p.license && !expr ? { licenseComments: `declared license: ${p.license}` } : {}),
      ...(p.source && p.source !== p.name ? { sourceInfo: `built package from: ${p.source} ${p.sourceVersion ?? ''}`.trim() } : {}),
      ...(p.maintainer ? { supplier: `Person: ${p.maintainer.replace(/\n/g, ' ')}` } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
      ...(p.layer ? { attributionTexts: [`layer ${p.layer}`] } : {}),
    });
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: inv.image.reference,
    documentNamespace: `https://plinth.dev/spdxdocs/${inv.image.digest.replace(':', '-')}-${randomUUID()}`,
    creationInfo: { created: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), creators: [`Tool: ${TOOL.name}-${TOOL.version}`] },
    packages,
    relationships,
  };
}
