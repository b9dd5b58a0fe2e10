import { PlinthError } from '../util/errors.js';
import type { ImageSource } from '../source/types.js';
import { openSource, parseLocation, openDestination, type OpenOptions } from '../source/open.js';
import { copyImage } from '../source/copy.js';
import { chainIds } from '../provenance/chain.js';
import { describeForCatalog } from '../provenance/report.js';
import { emptyCatalog, lineOf, type Catalog, type CatalogEntry } from '../provenance/catalog.js';
import type { Inventory } from '../packages/inventory.js';
import type { ScanResult } from '../vuln/scan.js';
import { inventoryWithBase } from '../packages/withbase.js';
import { cycloneDx } from '../sbom/formats.js';
import type { Signer } from '../sign/keys.js';
import type { SignedDigest } from '../sign/image.js';
import type { VulnStore } from '../vuln/store.js';
import { VERSION } from '../version.js';

/**
 * `plinth golden publish`: push a gated base (digests kept), sign it (the index and every platform
 * manifest), attach its SBOM (CycloneDX) and, with an advisory database, its scan result as signed
 * attestations, and make it the approved version of its catalog line — the previous approved
 * versions of the line become superseded. The catalog is changed in memory; the caller saves it
 * only when every step passed.
 */

export interface PublishOptions {
  to: string;
  signer: Signer;
  line?: string;
  registry?: OpenOptions;
  db?: VulnStore;
  now?: Date;
  onStep?: (msg: string) => void;
}

export interface PublishResult {
  reference: string;
  digest: string;
  signed: SignedDigest[];
  attestations: Array<{ digest: string; predicateType: string; location: string }>;
  catalog: { added: CatalogEntry[]; superseded: CatalogEntry[]; line: string };
}

export async function publish(source: ImageSource, catalog: Catalog, o: PublishOptions): Promise<PublishResult> {
  const loc = parseLocation(o.to);
  if (loc.transport !== 'registry') throw new PlinthError('USAGE', `--to ${o.to}: a golden base is published to a registry (REGISTRY/REPO:TAG)`);
  if (loc.ref.digest) throw new PlinthError('USAGE', `--to ${o.to}: name a tag, not a digest`);
  const step = o.onStep ?? (() => {});
  // A deprecated version is never published again (and so never re-approved by a daily build).
  const root = (await source.resolve()).descriptor.digest;
  const dead = catalog.bases.find((b) => b.status === 'deprecated' && (b.digest === root || b.index === root));
  if (dead) throw new PlinthError('USAGE', `${root} is deprecated in the catalog${dead.reason ? ` (${dead.reason})` : ''}; it is not published again`);
  const copied = await copyImage(source, await openDestination(loc, o.registry ?? {}));
  step(`pushed ${loc.ref.string} ${copied.digest}`);
  const pinned = `${loc.ref.name}@${copied.digest}`;
  const { signImage, attestDigest } = await import('../sign/index.js');
  const signed = await signImage(pinned, o.signer, { format: 'bundle', recursive: true, ...(o.registry ? { registry: o.registry } : {}) });
  step(`signed ${signed.map((s) => s.digest.slice(0, 19)).join(', ')}`);
  const remote = await openSource(pinned, o.registry ?? {});
  const attestations: PublishResult['attestations'] = [];
  let entries;
  try {
    const now = (o.now ?? new Date()).toISOString();
    const tag = loc.ref.tagDefaulted ? undefined : loc.ref.tag;
    const found = await describeForCatalog(remote, tag ? `${loc.ref.name}:${tag}` : loc.ref.name);
    const line = o.line ?? loc.ref.name;
    entries = found.map((f): CatalogEntry => ({ ...f, chainIds: chainIds(f.diffIds), status: 'approved', line, addedAt: now }));
    // One pass over the layers: with a database the scan reads the inventories the SBOMs are made of.
    const inventories: Inventory[] = [];
    let scanned: ScanResult[] = [];
    let scanFinishedOn = now;
    if (o.db) {
      const { scan } = await import('../vuln/scan.js');
      scanned = await scan(remote, 'all', o.db, { catalog: emptyCatalog(), onImage: (inv) => void inventories.push(inv) });
      scanFinishedOn = new Date().toISOString();
    } else for (const { inv } of await inventoryWithBase(remote, 'all', emptyCatalog())) inventories.push(inv);
    for (const inv of inventories) {
      const a = await attestDigest(pinned, inv.image.digest, o.signer, 'https://cyclonedx.org/bom', cycloneDx(inv), { format: 'bundle', ...(o.registry ? { registry: o.registry } : {}) });
      attestations.push({ digest: a.digest, predicateType: 'https://cyclonedx.org/bom', location: a.location });
    }
    if (o.db) {
      for (const r of scanned) {
        const predicate = {
          invocation: { parameters: null, uri: '', event_id: '', 'builder.id': '' },
          scanner: { uri: 'pkg:github/plinth-dev/plinth', version: VERSION, db: { uri: o.db.path, version: o.db.meta('last_import') ?? '' }, result: r },
          metadata: { scanStartedOn: now, scanFinishedOn },
        };
        const a = await attestDigest(pinned, r.image.digest, o.signer, 'https://cosign.sigstore.dev/attestation/vuln/v1', predicate, { format: 'bundle', ...(o.registry ? { registry: o.registry } : {}) });
        attestations.push({ digest: a.digest, predicateType: 'https://cosign.sigstore.dev/attestation/vuln/v1', location: a.location });
      }
    }
    step(`attested ${attestations.length} document(s) (SBOM${o.db ? ', vulnerabilities' : ''})`);
    const successor = `${loc.ref.name}${tag ? `:${tag}` : ''}@${copied.digest}`;
    const superseded: CatalogEntry[] = [];
    const newDigests = new Set(entries.map((e) => e.digest));
    for (const b of catalog.bases) {
      if (lineOf(b) === line && b.status === 'approved' && !newDigests.has(b.digest)) {
        b.status = 'superseded';
        b.supersededAt = now;
        b.successor = successor;
        superseded.push(b);
      }
    }
    for (const e of entries) {
      const i = catalog.bases.findIndex((b) => b.digest === e.digest && b.name === e.name);
      if (i >= 0) catalog.bases[i] = { ...catalog.bases[i]!, ...e, addedAt: catalog.bases[i]!.addedAt ?? now };
      else catalog.bases.push(e);
    }
    return { reference: loc.ref.string, digest: copied.digest, signed, attestations, catalog: { added: entries, superseded, line } };
  } finally {
    await remote.close();
  }
}

/**
 * `plinth golden deprecate`: the catalog entries a reference names (digest, index digest, name:tag
 * or name) become deprecated, with why and what to use instead (default: the newest approved
 * version of the same line).
 */
export function deprecate(catalog: Catalog, ref: string, o: { reason: string; successor?: string; now?: Date }): { deprecated: CatalogEntry[]; successor: string | null } {
  const now = (o.now ?? new Date()).toISOString();
  let name: string | undefined;
  let tag: string | undefined;
  let digest: string | undefined;
  if (/^sha256:[a-f0-9]{64}$/.test(ref)) digest = ref;
  else {
    const loc = parseLocation(ref);
    if (loc.transport !== 'registry') throw new PlinthError('USAGE', `${ref} is not a registry reference or a digest`);
    name = loc.ref.name;
    digest = loc.ref.digest;
    if (!digest && !loc.ref.tagDefaulted) tag = loc.ref.tag;
  }
  const hit = catalog.bases.filter((b) => (digest ? b.digest === digest || b.index === digest : b.name === name && (!tag || b.tag === tag)) && (!name || b.name === name));
  if (!hit.length) throw new PlinthError('USAGE', `no base in the catalog matches ${ref}`);
  let successor = o.successor ?? null;
  if (!successor) {
    const lines = new Set(hit.map(lineOf));
    const hitDigests = new Set(hit.map((b) => b.digest));
    const next = catalog.bases
      .filter((b) => lines.has(lineOf(b)) && b.status === 'approved' && !hitDigests.has(b.digest))
      .sort((a, b) => (Date.parse(b.addedAt ?? b.created ?? '') || 0) - (Date.parse(a.addedAt ?? a.created ?? '') || 0))[0];
    if (next) successor = `${next.name}${next.tag ? `:${next.tag}` : ''}@${next.index ?? next.digest}`;
  }
  for (const b of hit) {
    b.status = 'deprecated';
    b.deprecatedAt = now;
    b.reason = o.reason;
    if (successor) b.successor = successor;
  }
  return { deprecated: hit, successor };
}
