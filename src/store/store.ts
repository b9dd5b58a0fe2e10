import { hash } from 'node:crypto';
import { PlinthError } from '../util/errors.js';
import { migrate } from './schema.js';
import { openSql, type OpenSqlOptions, type Param, type Sql, type Tx } from './sql.js';

/**
 * The metadata store: what Plinth learned about images, keyed by digest, kept between runs. The
 * write side takes whole records (one transaction each, so a record is never half written);
 * the read side answers the queries of `plinth images|history|consumers|findings`, the API and
 * its Grafeas subset. The same code runs on SQLite and PostgreSQL (see sql.ts).
 */

export type OccurrenceKind = 'IMAGE' | 'PACKAGE' | 'VULNERABILITY' | 'BUILD' | 'ATTESTATION' | 'DEPLOYMENT' | 'DISCOVERY' | 'COMPLIANCE';
export const OCCURRENCE_KINDS: readonly OccurrenceKind[] = ['IMAGE', 'PACKAGE', 'VULNERABILITY', 'BUILD', 'ATTESTATION', 'DEPLOYMENT', 'DISCOVERY', 'COMPLIANCE'];

const SEVERITIES = ['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;
export type StoreSeverity = (typeof SEVERITIES)[number];
export function severityRank(s: string | null | undefined): number {
  return SEVERITIES.indexOf((s ?? 'UNKNOWN') as StoreSeverity);
}

/** Where an image lives: `repository` is REGISTRY/REPO (or transport:path for local sources). */
export interface ImageIdentity {
  repository: string;
  registry: string | null;
  /** The tag the user named (recorded in the tag history), when a registry tag was named. */
  tag: string | null;
  digest: string;
  indexDigest?: string | null;
  platform?: string | null;
  mediaType?: string | null;
}

export function resourceUri(repository: string, digest: string): string {
  return `${repository}@${digest}`;
}

export interface NoteInput {
  id: string;
  kind: OccurrenceKind;
  shortDescription?: string | null;
  data: unknown;
}

export interface OccurrenceInput {
  kind: OccurrenceKind;
  note: string;
  /** What distinguishes this occurrence from others of the same note on the same resource. */
  key?: string;
  subject?: string | null;
  severity?: string | null;
  data: unknown;
  extra?: unknown;
  /** VULNERABILITY: the source package the advisory names (what an incremental re-match replaces). */
  sourcePackage?: string | null;
  /** A hash of what the occurrence was made from: what a re-match compares. */
  fingerprint?: string | null;
  /** VULNERABILITY: "ORIGIN|FIXABLE" (base|image|none, 1|0), what an image's summary counts. */
  facet?: string | null;
}

/** The fingerprint of what an occurrence is made from (for findings: the scan's vulnerability object). */
export function contentFingerprint(source: unknown): string {
  return hash('sha256', json(source), 'hex').slice(0, 32);
}

export interface BaseFacts {
  name: string | null;
  tag: string | null;
  digest: string | null;
  confidence: string | null;
  status: string | null;
  line: string | null;
  newest: string | null;
  /** True when the base is deprecated or not the newest approved of its line. */
  behind: boolean | null;
}

export interface VulnSummary {
  total: number;
  bySeverity: Record<string, number>;
  base: number;
  image: number;
  fixable: number;
}

/**
 * One image's facts from one command. Fields left undefined are not touched; `packages` and
 * `vulnerabilities` replace the stored set (findings no longer reported are marked resolved).
 */
export interface ImageRecord {
  image: ImageIdentity;
  /** The command that learned it (scan, provenance, sbom, verify, check…). */
  source: string;
  at?: string;
  os?: string | null;
  created?: string | null;
  size?: number | null;
  labels?: Record<string, string>;
  base?: BaseFacts | null;
  packageCount?: number;
  /** The advisory ecosystem key of the image's OS (Debian:12), for re-matching its stored packages. */
  ecosystem?: string | null;
  vulns?: VulnSummary;
  advisoryDb?: string | null;
  scanned?: boolean;
  analysed?: boolean;
  notes?: NoteInput[];
  /** Occurrences to upsert (IMAGE, BUILD, DISCOVERY, ATTESTATION…). */
  occurrences?: OccurrenceInput[];
  /** Replace the resource's occurrences of these kinds by `occurrences` of the same kind (PACKAGE, VULNERABILITY). */
  replaceKinds?: OccurrenceKind[];
  /** With a PACKAGE replacement: the inventory by source package, replacing the image's rows of the package index. */
  packageIndex?: PackageIndexEntry[];
}

/** One image's packages of one source package (the unit an advisory change re-matches). */
export interface PackageIndexEntry {
  ecosystem: string;
  source: string;
  packages: IndexedPackage[];
}

/** What re-matching a stored package needs (src/vuln/scan.ts ScanPackage's fields). */
export interface IndexedPackage {
  name: string;
  version: string;
  type: string;
  source?: string;
  sourceVersion?: string;
  purl?: string;
  layer?: string | null;
  layerIndex?: number;
  origin?: 'base' | 'image';
}

export interface DecisionRecord {
  time: string;
  source: 'check' | 'admission' | 'imagereview';
  image: string;
  digest: string | null;
  repository: string | null;
  allowed: boolean;
  mode?: string | null;
  policy?: string | null;
  policyVersion?: string | null;
  cluster?: string | null;
  namespace?: string | null;
  workload?: string | null;
  messages: string[];
  details?: unknown;
  /** Identical decisions folded into this one (the webhook under load), and when the last was made. */
  count?: number;
  lastTime?: string | null;
}

export interface DeploymentRecord {
  cluster: string;
  namespace: string;
  /** Workload kind and name (the pod's controller when it has one: Deployment, DaemonSet…). */
  kind: string;
  name: string;
  container: string | null;
  /** The image as the pod spec names it. */
  image: string;
  /** The digest it runs (from the container status) when known. */
  digest: string | null;
  repository: string | null;
  tag: string | null;
  labels?: Record<string, string>;
  owner?: string | null;
  at: string;
  /** How it was learned: admission or inventory. */
  via: string;
}

export interface ImageSummary {
  uri: string;
  repository: string;
  digest: string;
  platform: string | null;
  indexDigest: string | null;
  tags: string[];
  os: string | null;
  created: string | null;
  size: number | null;
  labels: Record<string, string>;
  owner: string | null;
  /** behindVersions/behindSince: how many newer approved versions of its line, since when (set by plinth watch). */
  base: (BaseFacts & { name: string | null; behindVersions?: number | null; behindSince?: string | null }) | null;
  packages: number | null;
  vulnerabilities: VulnSummary | null;
  scannedAt: string | null;
  advisoryDb: string | null;
  running: Array<{ cluster: string; namespace: string; workload: string; lastSeen: string }>;
  firstSeen: string;
  lastSeen: string;
}

export interface ImageQuery {
  /** Images whose base is this digest, or (without a digest) this repository and optional tag. */
  base?: { name?: string | null; tag?: string | null; digests?: string[] };
  running?: boolean;
  /** Images with at least one open finding at or above this severity. */
  vulnerable?: StoreSeverity;
  behind?: boolean;
  repository?: string;
  digest?: string;
  limit?: number;
}

export interface TagEvent {
  repository: string;
  tag: string;
  digest: string;
  firstSeen: string;
  lastSeen: string;
  source: string | null;
}

export interface FindingRow {
  uri: string;
  repository: string;
  digest: string;
  id: string;
  package: string;
  installedVersion: string | null;
  fixedVersion: string | null;
  severity: string;
  origin: string | null;
  title: string | null;
  firstSeen: string;
  lastSeen: string;
  resolved: string | null;
}

export interface StoredOccurrence {
  id: string;
  resourceUri: string;
  noteName: string;
  kind: OccurrenceKind;
  data: unknown;
  extra: unknown;
  createTime: string;
  updateTime: string;
  resolveTime: string | null;
}

export interface StoredNote {
  id: string;
  kind: OccurrenceKind;
  shortDescription: string | null;
  data: unknown;
  createTime: string;
  updateTime: string;
}

/** Stable ids: the same fact on the same resource is the same occurrence on every run and replica. */
export function occurrenceId(uri: string, o: Pick<OccurrenceInput, 'kind' | 'note' | 'key'>): string {
  // crypto.hash: the one-shot form (several times faster than createHash for short input; same digest).
  return hash('sha256', `${o.kind}\u0000${uri}\u0000${o.note}\u0000${o.key ?? ''}`, 'hex').slice(0, 32);
}

/** Note ids are path segments in the API: keep them to letters, digits and `-._~`, escaping the rest. */
export function noteId(prefix: string, name: string): string {
  return `${prefix}-${name.replace(/[^A-Za-z0-9._~-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`.slice(0, 400);
}

const ROWS_PER_STATEMENT = 100;

/** @internal shared with the day-2 module (day2.ts) */
export function json(v: unknown): string {
  return JSON.stringify(v ?? null);
}

/** @internal shared with the day-2 module (day2.ts) */
export function parse<T>(s: unknown, fallback: T): T {
  if (typeof s !== 'string') return fallback;
  try {
    return JSON.parse(s) as T;
  } catch {
    return fallback;
  }
}

/** @internal shared with the day-2 module (day2.ts) */
export async function insertMany(tx: Tx, head: string, cols: number, rows: Param[][], tail: string): Promise<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
    const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
    const ph = `(${new Array(cols).fill('?').join(', ')})`;
    await tx.run(`${head} VALUES ${chunk.map(() => ph).join(', ')} ${tail}`, chunk.flat());
  }
}

/** @internal shared with the day-2 module (day2.ts) */
export async function upsertNotes(tx: Tx, notes: NoteInput[], at: string): Promise<void> {
  const seen = new Map<string, NoteInput>();
  for (const n of notes) seen.set(n.id, n);
  await insertMany(
    tx,
    'INSERT INTO notes (name, kind, short_description, data, create_time, update_time)',
    6,
    [...seen.values()].map((n) => [n.id, n.kind, n.shortDescription ?? null, json(n.data), at, at]),
    'ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, short_description = excluded.short_description, data = excluded.data, update_time = excluded.update_time',
  );
}

/** @internal shared with the day-2 module (day2.ts) */
export async function upsertOccurrences(tx: Tx, uri: string | Array<{ uri: string; occ: OccurrenceInput[] }>, occ: OccurrenceInput[], at: string): Promise<string[]> {
  const byId = new Map<string, Param[]>();
  // One resource, or several in one set of multi-row statements (the day-2 re-match's batches).
  for (const { uri: u, occ: list } of typeof uri === 'string' ? [{ uri, occ }] : uri) {
    for (const o of list) {
      const id = occurrenceId(u, o);
      byId.set(id, [id, u, o.note, o.kind, o.subject ?? null, o.severity ?? null, json(o.data), o.extra === undefined ? null : json(o.extra), at, at, o.sourcePackage ?? null, o.fingerprint ?? null, o.facet ?? null]);
    }
  }
  await insertMany(
    tx,
    'INSERT INTO occurrences (id, resource_uri, note_name, kind, subject, severity, data, extra, create_time, update_time, source_package, fingerprint, facet)',
    13,
    [...byId.values()],
    'ON CONFLICT (id) DO UPDATE SET note_name = excluded.note_name, subject = excluded.subject, severity = excluded.severity, data = excluded.data, extra = excluded.extra, update_time = excluded.update_time, source_package = excluded.source_package, fingerprint = excluded.fingerprint, facet = excluded.facet, resolve_time = NULL',
  );
  return [...byId.keys()];
}

/** Record that `repository:tag` points at `digest` now: extend the current row, or start a new one when the tag moved. */
/** @internal shared with the day-2 module (day2.ts) */
export async function recordTag(tx: Tx, repository: string, tag: string, digest: string, at: string, source: string): Promise<void> {
  const last = await tx.get<{ id: number; digest: string; first_seen: string; last_seen: string }>(
    'SELECT id, digest, first_seen, last_seen FROM tag_history WHERE repository = ? AND tag = ? ORDER BY first_seen DESC, id DESC LIMIT 1',
    [repository, tag],
  );
  if (last && last.digest === digest) {
    if (at > last.last_seen) await tx.run('UPDATE tag_history SET last_seen = ? WHERE id = ?', [at, last.id]);
    return;
  }
  // An observation older than the current row (a replayed import) does not rewrite history.
  if (last && at < last.first_seen) return;
  await tx.run('INSERT INTO tag_history (repository, tag, digest, first_seen, last_seen, source) VALUES (?, ?, ?, ?, ?, ?)', [repository, tag, digest, at, at, source]);
}

const IMAGE_COLUMNS = ['registry', 'repository', 'digest', 'media_type', 'platform', 'index_digest', 'os', 'created', 'size', 'labels', 'base_name', 'base_tag', 'base_digest', 'base_confidence', 'base_status', 'base_line', 'newest_base', 'behind', 'packages', 'vulns', 'scanned_at', 'advisory_db', 'analysed_at', 'ecosystem'] as const;

function imageColumns(r: ImageRecord, at: string): Partial<Record<(typeof IMAGE_COLUMNS)[number], Param>> {
  const c: Partial<Record<(typeof IMAGE_COLUMNS)[number], Param>> = {
    registry: r.image.registry,
    repository: r.image.repository,
    digest: r.image.digest,
  };
  if (r.image.mediaType !== undefined) c.media_type = r.image.mediaType;
  if (r.image.platform !== undefined && r.image.platform !== null) c.platform = r.image.platform;
  if (r.image.indexDigest !== undefined && r.image.indexDigest !== null) c.index_digest = r.image.indexDigest;
  if (r.os !== undefined) c.os = r.os;
  if (r.created !== undefined) c.created = r.created;
  if (r.size !== undefined) c.size = r.size !== null && Number.isSafeInteger(r.size) ? r.size : null;
  if (r.labels !== undefined) c.labels = json(r.labels);
  if (r.base !== undefined) {
    const b = r.base;
    c.base_name = b?.name ?? null;
    c.base_tag = b?.tag ?? null;
    c.base_digest = b?.digest ?? null;
    c.base_confidence = b?.confidence ?? null;
    c.base_status = b?.status ?? null;
    c.base_line = b?.line ?? null;
    c.newest_base = b?.newest ?? null;
    c.behind = b?.behind === null || b?.behind === undefined ? null : b.behind ? 1 : 0;
  }
  if (r.packageCount !== undefined) c.packages = r.packageCount;
  if (r.ecosystem !== undefined) c.ecosystem = r.ecosystem;
  if (r.vulns !== undefined) c.vulns = json(r.vulns);
  if (r.scanned) c.scanned_at = at;
  if (r.advisoryDb !== undefined) c.advisory_db = r.advisoryDb;
  if (r.analysed) c.analysed_at = at;
  return c;
}

export interface StoreOpenOptions extends OpenSqlOptions {}

export class MetaStore {
  private constructor(readonly sql: Sql) {}

  /** Open (and create or migrate) the store at a file path or postgres:// URL. */
  static async open(target: string, o: StoreOpenOptions = {}): Promise<MetaStore> {
    if (!target) throw new PlinthError('USAGE', 'no store given');
    const sql = await openSql(target, o);
    try {
      await migrate(sql, { readonly: o.readonly === true });
    } catch (e) {
      await sql.close().catch(() => {});
      throw e;
    }
    return new MetaStore(sql);
  }

  get location(): string {
    return this.sql.location;
  }

  get dialect(): 'sqlite' | 'postgres' {
    return this.sql.dialect;
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  // ---------------------------------------------------------------- write side

  /** Record one image's facts in one transaction. */
  async recordImage(r: ImageRecord): Promise<void> {
    const at = r.at ?? new Date().toISOString();
    const uri = resourceUri(r.image.repository, r.image.digest);
    const cols = imageColumns(r, at);
    const names = Object.keys(cols) as Array<keyof typeof cols>;
    await this.sql.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO images (uri, ${names.join(', ')}, first_seen, last_seen) VALUES (?, ${names.map(() => '?').join(', ')}, ?, ?)
         ON CONFLICT (uri) DO UPDATE SET ${names.map((n) => `${n} = excluded.${n}`).join(', ')}, last_seen = excluded.last_seen`,
        [uri, ...names.map((n) => cols[n] ?? null), at, at],
      );
      if (r.notes?.length) await upsertNotes(tx, r.notes, at);
      const occ = r.occurrences ?? [];
      const ids = occ.length ? await upsertOccurrences(tx, uri, occ, at) : [];
      for (const kind of r.replaceKinds ?? []) {
        const keep = new Set(ids);
        const open = await tx.all<{ id: string }>('SELECT id FROM occurrences WHERE resource_uri = ? AND kind = ? AND resolve_time IS NULL', [uri, kind]);
        const gone = open.filter((o) => !keep.has(o.id)).map((o) => o.id);
        for (let i = 0; i < gone.length; i += ROWS_PER_STATEMENT) {
          const chunk = gone.slice(i, i + ROWS_PER_STATEMENT);
          // Packages are facts of the digest (they never change): a removed one is deleted. A finding
          // no longer reported (a fixed advisory, a withdrawn one) is kept as resolved, for history.
          if (kind === 'VULNERABILITY') await tx.run(`UPDATE occurrences SET resolve_time = ? WHERE id IN (${chunk.map(() => '?').join(', ')})`, [at, ...chunk]);
          else await tx.run(`DELETE FROM occurrences WHERE id IN (${chunk.map(() => '?').join(', ')})`, chunk);
        }
      }
      if (r.packageIndex) {
        await tx.run('DELETE FROM package_index WHERE resource_uri = ?', [uri]);
        await insertMany(tx, 'INSERT INTO package_index (ecosystem, source, resource_uri, packages)', 4, r.packageIndex.map((e) => [e.ecosystem, e.source, uri, json(e.packages)]), 'ON CONFLICT (ecosystem, source, resource_uri) DO UPDATE SET packages = excluded.packages, findings = NULL');
      }
      if (r.image.tag && r.image.registry) await recordTag(tx, r.image.repository, r.image.tag, r.image.indexDigest ?? r.image.digest, at, r.source);
    });
  }

  /** Record tags seen (from any source), each in its own small step of one transaction. */
  async recordTags(tags: Array<{ repository: string; tag: string; digest: string; at: string; source: string }>): Promise<void> {
    if (!tags.length) return;
    await this.sql.transaction(async (tx) => {
      for (const t of tags) await recordTag(tx, t.repository, t.tag, t.digest, t.at, t.source);
    });
  }

  /** Append decisions to the audit log (a batch in one transaction). */
  async recordDecisions(ds: DecisionRecord[]): Promise<void> {
    if (!ds.length) return;
    await this.sql.transaction(async (tx) => {
      await insertMany(
        tx,
        'INSERT INTO decisions (time, source, image, digest, resource_uri, allowed, mode, policy, policy_version, cluster, namespace, workload, messages, details, count, last_time)',
        16,
        ds.map((d) => [d.time, d.source, d.image, d.digest, d.digest && d.repository ? resourceUri(d.repository, d.digest) : null, d.allowed ? 1 : 0, d.mode ?? null, d.policy ?? null, d.policyVersion ?? null, d.cluster ?? null, d.namespace ?? null, d.workload ?? null, json(d.messages), d.details === undefined ? null : json(d.details), d.count ?? 1, d.lastTime ?? null]),
        '',
      );
    });
  }

  /**
   * Record where images run. With `resolveCluster`, the deployments of that cluster not in this
   * batch are marked as no longer running (an inventory import is a complete picture of a cluster).
   */
  async recordDeployments(ds: DeploymentRecord[], o: { resolveCluster?: string; resolveNamespaces?: string[]; at?: string } = {}): Promise<{ recorded: number; resolved: number }> {
    const at = o.at ?? new Date().toISOString();
    let resolved = 0;
    await this.sql.transaction(async (tx) => {
      const ids = new Set<string>();
      const byUri = new Map<string, OccurrenceInput[]>();
      const notes = new Map<string, NoteInput>();
      const tags: Array<[string, string, string]> = [];
      for (const d of ds) {
        const uri = d.digest && d.repository ? resourceUri(d.repository, d.digest) : d.image;
        const noteName = noteId('deploy', d.cluster);
        notes.set(noteName, { id: noteName, kind: 'DEPLOYMENT', shortDescription: `workloads in cluster ${d.cluster}`, data: { deployable: { resourceUri: [] } } });
        const workload = `${d.namespace}/${d.kind}/${d.name}`;
        const occ: OccurrenceInput = {
          kind: 'DEPLOYMENT',
          note: noteName,
          key: `${workload}/${d.container ?? ''}`,
          subject: `${d.cluster}/${workload}`,
          data: { deployTime: d.at, address: d.cluster, resourceUri: [uri], platform: 'CUSTOM', config: d.image },
          extra: { cluster: d.cluster, namespace: d.namespace, kind: d.kind, name: d.name, container: d.container, image: d.image, labels: d.labels ?? {}, owner: d.owner ?? null, via: d.via },
        };
        const list = byUri.get(uri) ?? [];
        list.push(occ);
        byUri.set(uri, list);
        if (d.digest && d.repository) {
          await tx.run(
            'INSERT INTO images (uri, registry, repository, digest, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (uri) DO UPDATE SET last_seen = excluded.last_seen',
            [uri, d.repository.split('/')[0] ?? null, d.repository, d.digest, at, at],
          );
          if (d.tag) tags.push([d.repository, d.tag, d.digest]);
        }
      }
      await upsertNotes(tx, [...notes.values()], at);
      for (const [uri, occ] of byUri) {
        // An upsert keeps create_time: a deployment's first sighting; update_time is its last.
        for (const id of await upsertOccurrences(tx, uri, occ, at)) ids.add(id);
      }
      for (const [repo, tag, digest] of tags) await recordTag(tx, repo, tag, digest, at, ds[0]?.via ?? 'inventory');
      if (o.resolveCluster !== undefined) {
        const open = await tx.all<{ id: string; subject: string | null }>("SELECT id, subject FROM occurrences WHERE kind = 'DEPLOYMENT' AND note_name = ? AND resolve_time IS NULL", [noteId('deploy', o.resolveCluster)]);
        // Only the namespaces the input covers, when it says which (a one-namespace kubectl list).
        const scope = o.resolveNamespaces?.map((n) => `${o.resolveCluster}/${n}/`);
        const gone = open.filter((r) => !ids.has(r.id) && (!scope || scope.some((p) => (r.subject ?? '').startsWith(p)))).map((r) => r.id);
        for (let i = 0; i < gone.length; i += ROWS_PER_STATEMENT) {
          const chunk = gone.slice(i, i + ROWS_PER_STATEMENT);
          resolved += await tx.run(`UPDATE occurrences SET resolve_time = ? WHERE id IN (${chunk.map(() => '?').join(', ')})`, [at, ...chunk]);
        }
      }
    });
    return { recorded: ds.length, resolved };
  }

  // ---------------------------------------------------------------- read side

  private async currentTags(): Promise<Map<string, string[]>> {
    const rows = await this.sql.all<{ repository: string; tag: string; digest: string }>(
      `SELECT t.repository, t.tag, t.digest FROM tag_history t
       WHERE NOT EXISTS (SELECT 1 FROM tag_history u WHERE u.repository = t.repository AND u.tag = t.tag AND (u.first_seen > t.first_seen OR (u.first_seen = t.first_seen AND u.id > t.id)))`,
    );
    const m = new Map<string, string[]>();
    for (const r of rows) {
      const k = `${r.repository}@${r.digest}`;
      const l = m.get(k) ?? [];
      l.push(r.tag);
      m.set(k, l);
    }
    return m;
  }

  private async running(): Promise<Map<string, ImageSummary['running']>> {
    const rows = await this.sql.all<{ resource_uri: string; extra: string; update_time: string }>("SELECT resource_uri, extra, update_time FROM occurrences WHERE kind = 'DEPLOYMENT' AND resolve_time IS NULL");
    const m = new Map<string, ImageSummary['running']>();
    for (const r of rows) {
      const x = parse<{ cluster?: string; namespace?: string; kind?: string; name?: string }>(r.extra, {});
      const l = m.get(r.resource_uri) ?? [];
      l.push({ cluster: x.cluster ?? '', namespace: x.namespace ?? '', workload: `${x.kind ?? ''}/${x.name ?? ''}`, lastSeen: r.update_time });
      m.set(r.resource_uri, l);
    }
    return m;
  }

  /** Images with their tags, base, findings and where they run. */
  async images(q: ImageQuery = {}): Promise<ImageSummary[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (q.base) {
      const ors: string[] = [];
      if (q.base.digests?.length) {
        ors.push(`base_digest IN (${q.base.digests.map(() => '?').join(', ')})`);
        params.push(...q.base.digests);
      }
      if (q.base.name) {
        ors.push(q.base.tag ? '(base_name = ? AND base_tag = ?)' : 'base_name = ?');
        params.push(q.base.name, ...(q.base.tag ? [q.base.tag] : []));
      }
      where.push(ors.length ? `(${ors.join(' OR ')})` : '1 = 0');
    }
    if (q.behind) where.push('behind = 1');
    if (q.repository) {
      where.push('repository = ?');
      params.push(q.repository);
    }
    if (q.digest) {
      where.push('(digest = ? OR index_digest = ?)');
      params.push(q.digest, q.digest);
    }
    const rows = await this.sql.all<Record<string, unknown>>(`SELECT * FROM images${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY repository, digest`, params);
    const [tags, running] = await Promise.all([this.currentTags(), this.running()]);
    let open: Map<string, number> | undefined;
    if (q.vulnerable) {
      open = new Map();
      const min = severityRank(q.vulnerable);
      const vr = await this.sql.all<{ resource_uri: string; severity: string | null }>("SELECT resource_uri, severity FROM occurrences WHERE kind = 'VULNERABILITY' AND resolve_time IS NULL");
      for (const v of vr) if (severityRank(v.severity) >= min) open.set(v.resource_uri, (open.get(v.resource_uri) ?? 0) + 1);
    }
    const out: ImageSummary[] = [];
    for (const r of rows) {
      const uri = r.uri as string;
      const run = running.get(uri) ?? [];
      if (q.running && !run.length) continue;
      if (open && !open.get(uri)) continue;
      out.push(summary(r, tags.get(`${r.repository as string}@${(r.index_digest as string | null) ?? (r.digest as string)}`) ?? tags.get(`${r.repository as string}@${r.digest as string}`) ?? [], run));
      if (q.limit && out.length >= q.limit) break;
    }
    return out;
  }

  /** Every tag → digest observation of a repository tag, or every tag a digest was seen under. */
  async tagHistory(q: { repository?: string; tag?: string; digest?: string }): Promise<TagEvent[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (q.repository) where.push('repository = ?'), params.push(q.repository);
    if (q.tag) where.push('tag = ?'), params.push(q.tag);
    if (q.digest) where.push('digest = ?'), params.push(q.digest);
    const rows = await this.sql.all<{ repository: string; tag: string; digest: string; first_seen: string; last_seen: string; source: string | null }>(
      `SELECT repository, tag, digest, first_seen, last_seen, source FROM tag_history${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY repository, tag, first_seen, id`,
      params,
    );
    return rows.map((r) => ({ repository: r.repository, tag: r.tag, digest: r.digest, firstSeen: r.first_seen, lastSeen: r.last_seen, source: r.source }));
  }

  /** What `repository:tag` pointed at, at `time` (the observation in force then). */
  async tagAt(repository: string, tag: string, time: string): Promise<TagEvent | null> {
    const r = await this.sql.get<{ repository: string; tag: string; digest: string; first_seen: string; last_seen: string; source: string | null }>(
      'SELECT repository, tag, digest, first_seen, last_seen, source FROM tag_history WHERE repository = ? AND tag = ? AND first_seen <= ? ORDER BY first_seen DESC, id DESC LIMIT 1',
      [repository, tag, time],
    );
    return r ? { repository: r.repository, tag: r.tag, digest: r.digest, firstSeen: r.first_seen, lastSeen: r.last_seen, source: r.source } : null;
  }

  /** Where images ran (every DEPLOYMENT occurrence, running or not), for resource URIs or references. */
  async deployments(resources: string[]): Promise<Array<{ resourceUri: string; cluster: string; namespace: string; kind: string; name: string; container: string | null; image: string; firstSeen: string; lastSeen: string; running: boolean; via: string }>> {
    if (!resources.length) return [];
    const rows = await this.sql.all<{ resource_uri: string; extra: string; create_time: string; update_time: string; resolve_time: string | null }>(
      `SELECT resource_uri, extra, create_time, update_time, resolve_time FROM occurrences WHERE kind = 'DEPLOYMENT' AND resource_uri IN (${resources.map(() => '?').join(', ')}) ORDER BY create_time`,
      resources,
    );
    return rows.map((r) => {
      const x = parse<Record<string, unknown>>(r.extra, {});
      return { resourceUri: r.resource_uri, cluster: String(x.cluster ?? ''), namespace: String(x.namespace ?? ''), kind: String(x.kind ?? ''), name: String(x.name ?? ''), container: (x.container as string | null) ?? null, image: String(x.image ?? ''), firstSeen: r.create_time, lastSeen: r.update_time, running: r.resolve_time === null, via: String(x.via ?? '') };
    });
  }

  /** The audit log, newest first. */
  async decisions(q: { digest?: string; image?: string; since?: string; allowed?: boolean; limit?: number } = {}): Promise<Array<DecisionRecord & { id: number; count: number }>> {
    const where: string[] = [];
    const params: Param[] = [];
    if (q.digest) where.push('digest = ?'), params.push(q.digest);
    if (q.image) where.push('image = ?'), params.push(q.image);
    if (q.since) where.push('time >= ?'), params.push(q.since);
    if (q.allowed !== undefined) where.push('allowed = ?'), params.push(q.allowed ? 1 : 0);
    const rows = await this.sql.all<Record<string, unknown>>(`SELECT * FROM decisions${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY time DESC, id DESC LIMIT ?`, [...params, Math.min(Math.max(q.limit ?? 100, 1), 10_000)]);
    return rows.map((r) => ({
      id: Number(r.id),
      time: r.time as string,
      source: r.source as DecisionRecord['source'],
      image: r.image as string,
      digest: (r.digest as string | null) ?? null,
      repository: typeof r.resource_uri === 'string' ? r.resource_uri.split('@')[0]! : null,
      allowed: Number(r.allowed) === 1,
      mode: (r.mode as string | null) ?? null,
      policy: (r.policy as string | null) ?? null,
      policyVersion: (r.policy_version as string | null) ?? null,
      cluster: (r.cluster as string | null) ?? null,
      namespace: (r.namespace as string | null) ?? null,
      workload: (r.workload as string | null) ?? null,
      messages: parse<string[]>(r.messages, []),
      details: parse<unknown>(r.details, null),
      count: Number(r.count ?? 1),
      lastTime: (r.last_time as string | null) ?? (r.time as string),
    }));
  }

  /** Open findings (optionally first seen since a time, at or above a severity). */
  async findings(q: { newSince?: string; severity?: StoreSeverity; uri?: string; id?: string; includeResolved?: boolean; limit?: number } = {}): Promise<FindingRow[]> {
    const where: string[] = ["o.kind = 'VULNERABILITY'"];
    const params: Param[] = [];
    if (!q.includeResolved) where.push('o.resolve_time IS NULL');
    if (q.newSince) where.push('o.create_time >= ?'), params.push(q.newSince);
    if (q.uri) where.push('o.resource_uri = ?'), params.push(q.uri);
    if (q.id) where.push('o.subject = ?'), params.push(q.id);
    const rows = await this.sql.all<{ resource_uri: string; subject: string; severity: string | null; data: string; extra: string | null; create_time: string; update_time: string; resolve_time: string | null; repository: string | null; digest: string | null }>(
      `SELECT o.resource_uri, o.subject, o.severity, o.data, o.extra, o.create_time, o.update_time, o.resolve_time, i.repository, i.digest
       FROM occurrences o LEFT JOIN images i ON i.uri = o.resource_uri WHERE ${where.join(' AND ')} ORDER BY o.create_time DESC, o.resource_uri, o.subject`,
      params,
    );
    const min = q.severity ? severityRank(q.severity) : -1;
    const out: FindingRow[] = [];
    for (const r of rows) {
      if (severityRank(r.severity) < min) continue;
      const x = parse<{ package?: string; installedVersion?: string; fixedVersion?: string | null; origin?: string | null; title?: string }>(r.extra, {});
      const [repo, digest] = r.resource_uri.split('@');
      out.push({ uri: r.resource_uri, repository: r.repository ?? repo ?? '', digest: r.digest ?? digest ?? '', id: r.subject, package: x.package ?? '', installedVersion: x.installedVersion ?? null, fixedVersion: x.fixedVersion ?? null, severity: r.severity ?? 'UNKNOWN', origin: x.origin ?? null, title: x.title ?? null, firstSeen: r.create_time, lastSeen: r.update_time, resolved: r.resolve_time });
      if (q.limit && out.length >= q.limit) break;
    }
    return out;
  }

  // ---------------------------------------------------------------- Grafeas read side

  /** Occurrences in a stable order (by id), from after `after`, optionally of one resource, kind or note. */
  async listOccurrences(q: { resourceUri?: string; kind?: string; note?: string; after?: string; limit: number }): Promise<StoredOccurrence[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (q.resourceUri !== undefined) where.push('resource_uri = ?'), params.push(q.resourceUri);
    if (q.kind !== undefined) where.push('kind = ?'), params.push(q.kind);
    if (q.note !== undefined) where.push('note_name = ?'), params.push(q.note);
    if (q.after !== undefined) where.push('id > ?'), params.push(q.after);
    const rows = await this.sql.all<Record<string, unknown>>(`SELECT * FROM occurrences${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`, [...params, q.limit]);
    return rows.map(occurrenceRow);
  }

  /**
   * The images with a current occurrence of this kind (about this subject: PACKAGE and a package
   * name are the images that have it installed), among `uris` when given.
   */
  async resourcesWith(kind: OccurrenceKind, q: { subject?: string; uris?: string[] } = {}): Promise<Set<string>> {
    const out = new Set<string>();
    const run = async (uris: string[] | null) => {
      const where = ['kind = ?', 'resolve_time IS NULL'];
      const params: Param[] = [kind];
      if (q.subject !== undefined) where.push('subject = ?'), params.push(q.subject);
      if (uris) where.push(`resource_uri IN (${uris.map(() => '?').join(', ')})`), params.push(...uris);
      for (const r of await this.sql.all<{ resource_uri: string }>(`SELECT DISTINCT resource_uri FROM occurrences WHERE ${where.join(' AND ')}`, params)) out.add(r.resource_uri);
    };
    if (!q.uris) await run(null);
    else for (let i = 0; i < q.uris.length; i += 500) await run(q.uris.slice(i, i + 500));
    return out;
  }

  async getOccurrence(id: string): Promise<StoredOccurrence | null> {
    const r = await this.sql.get<Record<string, unknown>>('SELECT * FROM occurrences WHERE id = ?', [id]);
    return r ? occurrenceRow(r) : null;
  }

  async getNote(id: string): Promise<StoredNote | null> {
    const r = await this.sql.get<Record<string, unknown>>('SELECT * FROM notes WHERE name = ?', [id]);
    return r ? noteRow(r) : null;
  }

  async listNotes(q: { kind?: string; after?: string; limit: number }): Promise<StoredNote[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (q.kind !== undefined) where.push('kind = ?'), params.push(q.kind);
    if (q.after !== undefined) where.push('name > ?'), params.push(q.after);
    const rows = await this.sql.all<Record<string, unknown>>(`SELECT * FROM notes${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY name LIMIT ?`, [...params, q.limit]);
    return rows.map(noteRow);
  }

  /** Counts for a status line. */
  async stats(): Promise<Record<string, number>> {
    const one = async (sql: string) => Number((await this.sql.get<{ n: number }>(sql))?.n ?? 0);
    return {
      images: await one('SELECT count(*) AS n FROM images'),
      occurrences: await one('SELECT count(*) AS n FROM occurrences'),
      notes: await one('SELECT count(*) AS n FROM notes'),
      tags: await one('SELECT count(*) AS n FROM tag_history'),
      decisions: await one('SELECT count(*) AS n FROM decisions'),
    };
  }
}

function occurrenceRow(r: Record<string, unknown>): StoredOccurrence {
  return {
    id: r.id as string,
    resourceUri: r.resource_uri as string,
    noteName: r.note_name as string,
    kind: r.kind as OccurrenceKind,
    data: parse<unknown>(r.data, {}),
    extra: parse<unknown>(r.extra, null),
    createTime: r.create_time as string,
    updateTime: r.update_time as string,
    resolveTime: (r.resolve_time as string | null) ?? null,
  };
}

function noteRow(r: Record<string, unknown>): StoredNote {
  return {
    id: r.name as string,
    kind: r.kind as OccurrenceKind,
    shortDescription: (r.short_description as string | null) ?? null,
    data: parse<unknown>(r.data, {}),
    createTime: r.create_time as string,
    updateTime: r.update_time as string,
  };
}

const OWNER_LABELS = ['org.opencontainers.image.authors', 'maintainer', 'MAINTAINER'];

/** Who owns an image, by its labels: the first non-empty of authors, maintainer, MAINTAINER. */
export function ownerLabel(labels: Record<string, string>): string | null {
  return OWNER_LABELS.map((k) => labels[k]).find((v) => typeof v === 'string' && v !== '') ?? null;
}

/** Labels as stored: an object of strings, whatever a damaged row holds. */
function labelsOf(v: unknown): Record<string, string> {
  const x = parse<unknown>(v, {});
  const out: Record<string, string> = {};
  if (x && typeof x === 'object' && !Array.isArray(x)) for (const [k, val] of Object.entries(x)) if (typeof val === 'string') out[k] = val;
  return out;
}

/** A findings summary as stored, or null when a damaged row holds something else. */
function vulnSummaryOf(v: unknown): VulnSummary | null {
  const x = parse<unknown>(v, null);
  if (!x || typeof x !== 'object') return null;
  const s = x as Record<string, unknown>;
  const n = (k: unknown) => typeof k === 'number' && Number.isFinite(k);
  if (!n(s.total) || !n(s.base) || !n(s.image) || !n(s.fixable) || !s.bySeverity || typeof s.bySeverity !== 'object' || Array.isArray(s.bySeverity)) return null;
  const bySeverity: Record<string, number> = {};
  for (const [k, c] of Object.entries(s.bySeverity as Record<string, unknown>)) if (n(c)) bySeverity[k] = c as number;
  return { total: s.total as number, base: s.base as number, image: s.image as number, fixable: s.fixable as number, bySeverity } as VulnSummary;
}

function summary(r: Record<string, unknown>, tags: string[], running: ImageSummary['running']): ImageSummary {
  const labels = labelsOf(r.labels);
  const owner = ownerLabel(labels);
  const hasBase = r.base_name !== null || r.base_digest !== null;
  return {
    uri: r.uri as string,
    repository: r.repository as string,
    digest: r.digest as string,
    platform: (r.platform as string | null) ?? null,
    indexDigest: (r.index_digest as string | null) ?? null,
    tags: [...tags].sort(),
    os: (r.os as string | null) ?? null,
    created: (r.created as string | null) ?? null,
    size: r.size === null || r.size === undefined ? null : Number(r.size),
    labels,
    owner,
    base: hasBase
      ? {
          name: (r.base_name as string | null) ?? null,
          tag: (r.base_tag as string | null) ?? null,
          digest: (r.base_digest as string | null) ?? null,
          confidence: (r.base_confidence as string | null) ?? null,
          status: (r.base_status as string | null) ?? null,
          line: (r.base_line as string | null) ?? null,
          newest: (r.newest_base as string | null) ?? null,
          behind: r.behind === null || r.behind === undefined ? null : Number(r.behind) === 1,
          behindVersions: r.behind_versions === null || r.behind_versions === undefined ? null : Number(r.behind_versions),
          behindSince: (r.behind_since as string | null | undefined) ?? null,
        }
      : null,
    packages: r.packages === null || r.packages === undefined ? null : Number(r.packages),
    vulnerabilities: vulnSummaryOf(r.vulns),
    scannedAt: (r.scanned_at as string | null) ?? null,
    advisoryDb: (r.advisory_db as string | null) ?? null,
    running,
    firstSeen: r.first_seen as string,
    lastSeen: r.last_seen as string,
  };
}
