import { openSource, parseLocation, registryLocation, type OpenOptions } from '../source/open.js';
import type { PlatformChoice } from '../source/image.js';
import type { Catalog } from '../provenance/catalog.js';
import type { Inventory } from '../packages/inventory.js';
import type { ProvenanceReport } from '../provenance/report.js';
import { scan, type ScanResult } from '../vuln/scan.js';
import type { VulnStore } from '../vuln/store.js';
import { scanRecord } from '../store/ingest.js';
import type { ImageRecord, MetaStore } from '../store/store.js';

/**
 * Rescans: images the store knows only by reference (an admission or an inventory import named
 * `nginx:1.25` and no digest) are resolved, analysed and scanned; images whose last scan is older
 * than a TTL are scanned again (their packages do not change, but a scan also refreshes the
 * provenance against today's catalog). Each is one job: its records are written like
 * `plinth scan --store` writes them, so a retry writes the same rows.
 */

/** Scan one image and the records `plinth scan --store` makes of it. */
export async function scanForStore(image: string, db: VulnStore, catalog: Catalog, o: { registry: OpenOptions; /** Open `image` as a registry reference whatever it looks like (never a local path). */ registryOnly?: boolean; platform?: PlatformChoice; severities?: ScanResult['vulnerabilities'][number]['severity'][]; ignoreUnfixed?: boolean; onLayer?: (i: number, n: number, d: string) => void }): Promise<{ results: ScanResult[]; records: ImageRecord[] }> {
  const loc = o.registryOnly ? registryLocation(image) : parseLocation(image);
  const seen = new Map<string, { inv: Inventory; prov: ProvenanceReport }>();
  const src = await openSource(loc, o.registry);
  try {
    const results = await scan(src, o.platform, db, {
      catalog,
      onImage: (inv, prov) => void seen.set(inv.image.digest, { inv, prov }),
      ...(o.severities ? { severities: o.severities } : {}),
      ...(o.ignoreUnfixed ? { ignoreUnfixed: true } : {}),
      ...(o.onLayer ? { onLayer: o.onLayer } : {}),
    });
    const dbVersion = `${db.path}@${db.meta('last_import') ?? 'unknown'}`;
    const records = results.flatMap((r) => {
      const s = seen.get(r.image.digest);
      return scanRecord(loc, r, { advisoryDb: dbVersion, ...(s ? { inventory: s.inv, provenance: s.prov } : {}), catalog, complete: !o.severities && !o.ignoreUnfixed });
    });
    return { results, records };
  } finally {
    await src.close();
  }
}

export interface RescanCandidate {
  /** What to open: REPOSITORY@DIGEST or the reference a workload named. */
  ref: string;
  why: 'reference only' | 'never scanned' | 'stale';
}

/**
 * What is due: references that workloads run and whose tag the store cannot resolve to a scanned
 * image, registry images never scanned, and those scanned longer than `ttlMs` ago — the running
 * and watched ones first, at most `limit`.
 */
export async function rescanCandidates(store: MetaStore, o: { ttlMs: number; limit: number; now?: number }): Promise<RescanCandidate[]> {
  const now = o.now ?? Date.now();
  const cutoff = new Date(now - o.ttlMs).toISOString();
  const out: RescanCandidate[] = [];
  const seen = new Set<string>();
  const add = (ref: string, why: RescanCandidate['why']) => {
    if (!seen.has(ref) && out.length < o.limit) {
      seen.add(ref);
      out.push({ ref, why });
    }
  };
  // 1. Running references without a digest.
  const refs = await store.sql.all<{ resource_uri: string }>("SELECT DISTINCT resource_uri FROM occurrences WHERE kind = 'DEPLOYMENT' AND resolve_time IS NULL AND resource_uri NOT LIKE '%@sha256:%' ORDER BY resource_uri");
  for (const r of refs) {
    let repo: string;
    let tag: string;
    try {
      const loc = parseLocation(r.resource_uri);
      if (loc.transport !== 'registry') continue;
      repo = loc.ref.name;
      tag = loc.ref.tag ?? 'latest';
    } catch {
      continue; // not a reference Plinth can open; the deployment stays as it is
    }
    const cur = await store.sql.get<{ scanned_at: string | null }>(
      `SELECT i.scanned_at FROM tag_history t JOIN images i ON i.repository = t.repository AND (i.digest = t.digest OR i.index_digest = t.digest)
       WHERE t.repository = ? AND t.tag = ? ORDER BY t.first_seen DESC, t.id DESC LIMIT 1`,
      [repo, tag],
    );
    if (!cur?.scanned_at || cur.scanned_at < cutoff) add(`${repo}:${tag}`, 'reference only');
  }
  // 2. Watched tags whose current digest was never scanned (a tag that moved).
  for (const t of await store.sql.all<{ repository: string; tag: string }>('SELECT repository, tag FROM watched_tags ORDER BY repository, tag')) {
    const cur = await store.sql.get<{ digest: string; scanned_at: string | null }>(
      `SELECT t.digest, (SELECT MAX(i.scanned_at) FROM images i WHERE i.repository = t.repository AND (i.digest = t.digest OR i.index_digest = t.digest)) AS scanned_at
       FROM tag_history t WHERE t.repository = ? AND t.tag = ? ORDER BY t.first_seen DESC, t.id DESC LIMIT 1`,
      [t.repository, t.tag],
    );
    if (cur && (!cur.scanned_at || cur.scanned_at < cutoff)) add(`${t.repository}@${cur.digest}`, cur.scanned_at ? 'stale' : 'never scanned');
  }
  // 3. Registry images never scanned or scanned before the cutoff, running ones first.
  const rows = await store.sql.all<{ uri: string; scanned_at: string | null; running: number }>(
    `SELECT i.uri, i.scanned_at, CASE WHEN EXISTS (SELECT 1 FROM occurrences o WHERE o.kind = 'DEPLOYMENT' AND o.resource_uri = i.uri AND o.resolve_time IS NULL) THEN 1 ELSE 0 END AS running
     FROM images i WHERE i.registry IS NOT NULL AND (i.scanned_at IS NULL OR i.scanned_at < ?) ORDER BY running DESC, (CASE WHEN i.scanned_at IS NULL THEN 0 ELSE 1 END), i.scanned_at, i.uri LIMIT ?`,
    [cutoff, o.limit],
  );
  for (const r of rows) add(r.uri, r.scanned_at ? 'stale' : 'never scanned');
  return out;
}
