import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hash } from 'node:crypto';
import { PlinthError } from '../util/errors.js';
import { MatchCache, matchStamps } from '../vuln/match.js';
import { matchInventory, type ScanVulnerability } from '../vuln/scan.js';
import type { VulnStore } from '../vuln/store.js';
import { SEVERITY_ORDER, type Severity } from '../vuln/severity.js';
import { vulnerabilityFingerprint, vulnerabilityOccurrence } from '../store/ingest.js';
import {
  json,
  noteId,
  occurrenceId,
  ownerLabel,
  severityRank,
  upsertNotes,
  upsertOccurrences,
  type IndexedPackage,
  type MetaStore,
  type NoteInput,
  type OccurrenceInput,
  type StoreSeverity,
  type VulnSummary,
} from '../store/store.js';
import type { Param, Tx } from '../store/sql.js';
import { addEvents, getState, notifiable, setState, type WatchEvent } from './state.js';

/**
 * Re-match stored inventories against the advisory database — no image is pulled again — and
 * record what changed: new findings, findings gone (fixed or withdrawn advisories), findings whose
 * severity or fix changed. Two ways, chosen by what the advisory database's change log says:
 *
 *   incremental  the (ecosystem, source package) pairs the advisories written since the last run
 *                name (now or before) → the images holding them, from the package index → only
 *                those images' packages of those sources are matched again, and only their
 *                findings of those sources compared. Cost ∝ what changed.
 *   full         every image of the index (first run, a different database, a change log too
 *                long, or asked for). Each (ecosystem, source) is looked up once and each
 *                (ecosystem, source, version) evaluated once for the whole fleet (MatchCache):
 *                cost ∝ distinct packages, not images × packages.
 *
 * Writes only the differences, in one transaction per batch of images; a finding's occurrence id
 * is stable (the same fact on every run and replica), so a re-run, a retry after a crash or two
 * replicas doing the same work record each change once.
 */

export type RematchMode = 'auto' | 'full' | 'incremental';

export interface RematchOptions {
  mode?: RematchMode;
  /** Only these images (resource URIs); implies a full match of each. */
  uris?: string[];
  /** New findings at or above this severity in images that run or are watched become events (default HIGH). */
  notifyAt?: StoreSeverity;
  at?: string;
  /** Above this many changed advisories an incremental run becomes a full one (default 50,000). */
  incrementalLimit?: number;
  /**
   * Match on other processes too: `command` starts a Plinth (the CLI passes how to start itself;
   * `__match-units` is appended), `workers` of them share the distinct units with this process
   * when there are at least `minUnits` (default 4,000). A worker that fails leaves its share to
   * this process: the answer is the same, only slower.
   */
  parallel?: { command: string[]; workers: number; minUnits?: number };
}

export interface RematchReport {
  mode: 'full' | 'incremental' | 'none';
  reason: string;
  advisoryDb: string;
  /** Advisories written since the last run (incremental). */
  changedAdvisories: number;
  images: number;
  /** (image, source package) units matched. */
  units: number;
  /** Units whose stamp moved (new advisories, changed ones, a fresh inventory): their findings were built and compared with what is stored. */
  comparedUnits: number;
  lookups: number;
  newFindings: number;
  resolvedFindings: number;
  updatedFindings: number;
  changedImages: string[];
  events: number;
  /** Stored units that could not be matched (damaged, an unsupported ecosystem): left as they are. */
  skippedUnits: number;
  ms: number;
  /** Where the time went (ms): reading the index, matching, reading stored findings, comparing, writing. */
  phases: Record<string, number>;
  /** Processes that matched (this one included) when the work was shared (RematchOptions.parallel). */
  parallel?: number;
}

interface Unit {
  uri: string;
  ecosystem: string;
  source: string;
  /** The packages as stored (JSON): images sharing a base share these strings, and their findings. */
  raw: string;
  /** The stamp recorded with this unit (null: never matched here). */
  findings: string | null;
  /** Ecosystem and packages: units with equal keys (images on one base) share their stamp and findings. */
  key: string;
}

interface Existing {
  uri: string;
  source: string | null;
  fingerprint: string | null;
  severity: string | null;
  facet: string | null;
}

interface Prepared {
  v: ScanVulnerability;
  /** The finding's fingerprint (as stored with it), computed only when its unit is compared. */
  fingerprint?: string;
  /** The occurrence's note and key (its id on a resource is a hash of them and the resource). */
  ref: { kind: 'VULNERABILITY'; note: string; key: string };
  built?: { occ: OccurrenceInput; note: NoteInput };
}

const STATE_KEY = 'advisories';
const CHUNK = 400;

/**
 * Identity of an advisory database: when it was created (a pulled or rebuilt file is another
 * database: a full re-match). Not its path: replicas mounting one database at different paths,
 * or a moved file, are the same database.
 */
export function advisoryDbId(db: VulnStore): string {
  return `created ${db.meta('created') ?? 'unknown'}`;
}

function dbLabel(db: VulnStore): string {
  return `${db.path}@${db.meta('last_import') ?? 'unknown'}`;
}

async function loadUnits(store: MetaStore, where: { uris?: string[]; pairs?: Array<{ ecosystem: string; package: string }> }): Promise<Unit[]> {
  const out: Unit[] = [];
  const push = (rows: Array<{ ecosystem: string; source: string; resource_uri: string; packages: string; findings: string | null }>) => {
    for (const r of rows) out.push({ uri: r.resource_uri, ecosystem: r.ecosystem, source: r.source, raw: r.packages, findings: r.findings, key: `${r.ecosystem}\u0000${r.packages}` });
  };
  const cols = 'SELECT ecosystem, source, resource_uri, packages, findings FROM package_index';
  if (where.pairs) {
    // One query per ecosystem, sources in chunks: an index seek per (ecosystem, source).
    const byEco = new Map<string, string[]>();
    for (const p of where.pairs) byEco.set(p.ecosystem, [...(byEco.get(p.ecosystem) ?? []), p.package]);
    for (const [eco, names] of byEco) {
      for (let i = 0; i < names.length; i += CHUNK) {
        const chunk = names.slice(i, i + CHUNK);
        push(await store.sql.all(`${cols} WHERE ecosystem = ? AND source IN (${chunk.map(() => '?').join(', ')})`, [eco, ...chunk]));
      }
    }
  } else if (where.uris) {
    for (let i = 0; i < where.uris.length; i += CHUNK) {
      const chunk = where.uris.slice(i, i + CHUNK);
      push(await store.sql.all(`${cols} WHERE resource_uri IN (${chunk.map(() => '?').join(', ')})`, chunk));
    }
  } else {
    push(await store.sql.all(cols));
  }
  return out;
}

/** Open findings of these images (all of them, or only those of the given source packages). */
async function loadExisting(store: MetaStore, uris: string[], sources: string[] | null): Promise<Map<string, Existing>> {
  const out = new Map<string, Existing>();
  const want = new Set(uris);
  const base = "SELECT id, resource_uri, source_package, fingerprint, severity, facet FROM occurrences WHERE kind = 'VULNERABILITY' AND resolve_time IS NULL";
  const take = (rows: Array<{ id: string; resource_uri: string; source_package: string | null; fingerprint: string | null; severity: string | null; facet: string | null }>) => {
    for (const r of rows) if (want.has(r.resource_uri)) out.set(r.id, { uri: r.resource_uri, source: r.source_package, fingerprint: r.fingerprint, severity: r.severity, facet: r.facet });
  };
  // SQLite without statistics reads the images' every open finding by (resource_uri, kind) and
  // filters by source: on a fleet, ~100× the rows an incremental run needs. By source package it
  // reads only those sources' findings (on every image), and the set above keeps the images asked for.
  if (sources && store.sql.dialect === 'sqlite') {
    const bySource = base.replace('FROM occurrences WHERE', 'FROM occurrences INDEXED BY occurrences_source WHERE');
    for (let i = 0; i < sources.length; i += CHUNK) {
      const chunk = sources.slice(i, i + CHUNK);
      take(await store.sql.all(`${bySource} AND source_package IN (${chunk.map(() => '?').join(', ')})`, chunk));
    }
    return out;
  }
  if (sources && uris.length <= CHUNK) {
    for (let i = 0; i < sources.length; i += CHUNK) {
      const chunk = sources.slice(i, i + CHUNK);
      take(await store.sql.all(`${base} AND source_package IN (${chunk.map(() => '?').join(', ')}) AND resource_uri IN (${uris.map(() => '?').join(', ')})`, [...chunk, ...uris]));
    }
  } else if (sources) {
    for (let i = 0; i < sources.length; i += CHUNK) {
      const chunk = sources.slice(i, i + CHUNK);
      take(await store.sql.all(`${base} AND source_package IN (${chunk.map(() => '?').join(', ')})`, chunk));
    }
  } else if (uris.length > 2000) {
    take(await store.sql.all(base));
  } else {
    for (let i = 0; i < uris.length; i += CHUNK) {
      const chunk = uris.slice(i, i + CHUNK);
      take(await store.sql.all(`${base} AND resource_uri IN (${chunk.map(() => '?').join(', ')})`, chunk));
    }
  }
  return out;
}

/** The findings summaries of images, aggregated by the database (severity, origin, fix known). */
async function summaries(tx: Tx, uris: string[]): Promise<Map<string, VulnSummary>> {
  const out = new Map<string, VulnSummary>();
  for (const u of uris) out.set(u, { total: 0, bySeverity: Object.fromEntries(SEVERITY_ORDER.map((x) => [x, 0])), base: 0, image: 0, fixable: 0 });
  for (let i = 0; i < uris.length; i += CHUNK) {
    const chunk = uris.slice(i, i + CHUNK);
    const rows = await tx.all<{ uri: string; severity: string | null; facet: string | null; n: number | string }>(
      `SELECT resource_uri AS uri, severity, facet, COUNT(*) AS n FROM occurrences
       WHERE resource_uri IN (${chunk.map(() => '?').join(', ')}) AND kind = 'VULNERABILITY' AND resolve_time IS NULL
       GROUP BY resource_uri, severity, facet`,
      chunk,
    );
    for (const r of rows) {
      const s = out.get(r.uri);
      if (!s) continue;
      const n = Number(r.n);
      const sev = SEVERITY_ORDER.includes(r.severity as Severity) ? (r.severity as Severity) : 'UNKNOWN';
      const [origin, fixable] = (r.facet ?? 'none|0').split('|');
      s.total += n;
      s.bySeverity[sev] = (s.bySeverity[sev] ?? 0) + n;
      if (origin === 'base') s.base += n;
      else if (origin === 'image') s.image += n;
      if (fixable === '1') s.fixable += n;
    }
  }
  return out;
}

/**
 * The changed images' summaries: the stored one moved by the changes' deltas, or — when an image
 * has none stored, or one that would go negative — aggregated again from its findings.
 */
async function summariesAfter(tx: Tx, changes: Array<{ uri: string; delta: Array<[string | null, string | null, number]> }>): Promise<Map<string, VulnSummary>> {
  const out = new Map<string, VulnSummary>();
  const again: string[] = [];
  const stored = new Map<string, string | null>();
  for (let i = 0; i < changes.length; i += CHUNK) {
    const chunk = changes.slice(i, i + CHUNK).map((c) => c.uri);
    for (const r of await tx.all<{ uri: string; vulns: string | null }>(`SELECT uri, vulns FROM images WHERE uri IN (${chunk.map(() => '?').join(', ')})`, chunk)) stored.set(r.uri, r.vulns);
  }
  for (const c of changes) {
    let s: VulnSummary | null = null;
    try {
      const v = JSON.parse(stored.get(c.uri) ?? 'null') as VulnSummary | null;
      if (v && typeof v.total === 'number' && v.bySeverity && typeof v.bySeverity === 'object') s = { total: v.total, bySeverity: { ...v.bySeverity }, base: v.base ?? 0, image: v.image ?? 0, fixable: v.fixable ?? 0 };
    } catch {
      s = null;
    }
    if (s) {
      for (const [severity, facet, n] of c.delta) {
        const sev = SEVERITY_ORDER.includes(severity as Severity) ? (severity as Severity) : 'UNKNOWN';
        const [origin, fixable] = (facet ?? 'none|0').split('|');
        s.total += n;
        s.bySeverity[sev] = (s.bySeverity[sev] ?? 0) + n;
        if (origin === 'base') s.base += n;
        else if (origin === 'image') s.image += n;
        if (fixable === '1') s.fixable += n;
      }
      if (s.total < 0 || s.base < 0 || s.image < 0 || s.fixable < 0 || Object.values(s.bySeverity).some((x) => x < 0)) s = null;
    }
    if (s) out.set(c.uri, s);
    else again.push(c.uri);
  }
  for (const [u, s] of await summaries(tx, again)) out.set(u, s);
  return out;
}

/** Re-match stored inventories; see the module comment. */
export async function rematch(store: MetaStore, db: VulnStore, o: RematchOptions = {}): Promise<RematchReport> {
  const t0 = performance.now();
  const at = o.at ?? new Date().toISOString();
  const dbId = advisoryDbId(db);
  const seq = db.changeSeq();
  const report: RematchReport = { mode: 'none', reason: '', advisoryDb: dbLabel(db), changedAdvisories: 0, images: 0, units: 0, comparedUnits: 0, lookups: 0, newFindings: 0, resolvedFindings: 0, updatedFindings: 0, changedImages: [], events: 0, skippedUnits: 0, ms: 0, phases: {} };
  let tp = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    report.phases[name] = Math.round((report.phases[name] ?? 0) + now - tp);
    tp = now;
  };
  const mark = (await getState<{ db: string; seq: number }>(store, STATE_KEY)) ?? null;

  let units: Unit[];
  let scopeSources: string[] | null = null;
  if (o.uris) {
    report.mode = 'full';
    report.reason = `${o.uris.length} image(s) asked for`;
    units = await loadUnits(store, { uris: o.uris });
  } else {
    let mode: 'full' | 'incremental' = o.mode === 'full' ? 'full' : 'incremental';
    let changes = null;
    if (mode === 'incremental') {
      if (!mark) report.reason = 'first run on this store';
      else if (mark.db !== dbId) report.reason = 'a different advisory database than last run';
      else if (!db.hasChangeLog()) report.reason = 'the advisory database keeps no change log';
      else if (seq < mark.seq) report.reason = 'the advisory database change log went backwards';
      else if (mark.seq < db.changeLogFloor()) report.reason = 'the advisory database change log no longer reaches back to the last run (pruned)';
      else {
        changes = db.changesSince(mark.seq, o.incrementalLimit ?? 50_000);
        if (!changes) report.reason = `more than ${o.incrementalLimit ?? 50_000} advisories changed`;
      }
      if (!changes) {
        if (o.mode === 'incremental') throw new PlinthError('USAGE', `an incremental re-match is not possible: ${report.reason}`);
        mode = 'full';
      }
    } else report.reason = 'asked for';
    if (mode === 'incremental') {
      report.mode = 'incremental';
      report.changedAdvisories = changes!.advisories;
      report.reason = `${changes!.advisories} advisories changed since the last run`;
      if (changes!.packages.length === 0) {
        report.mode = 'none';
        await setState(store, STATE_KEY, { db: dbId, seq });
        report.ms = performance.now() - t0;
        return report;
      }
      units = await loadUnits(store, { pairs: changes!.packages });
      scopeSources = [...new Set(units.map((u) => u.source))];
    } else {
      report.mode = 'full';
      units = await loadUnits(store, {});
    }
  }

  phase('index');
  // Match each distinct (ecosystem, packages) unit once for the whole run: images on one base share
  // the base's units, their findings and the units' fingerprints.
  const cache = new MatchCache();
  // null: a unit that cannot be matched (a damaged row, an ecosystem this Plinth does not match):
  // skipped — neither compared nor stamped — so what is stored for it stays as it is.
  const prepared = new Map<string, Stamped | null>();
  if (o.parallel && o.parallel.workers > 0) {
    const distinct = new Map<string, { ecosystem: string; source: string; raw: string; stored: Set<string | null> }>();
    for (const u of units) {
      const k = u.key;
      const d = distinct.get(k);
      if (d) d.stored.add(u.findings);
      else distinct.set(k, { ecosystem: u.ecosystem, source: u.source, raw: u.raw, stored: new Set([u.findings]) });
    }
    if (distinct.size >= (o.parallel.minUnits ?? 4000)) {
      const r = await matchParallel(db.path, distinct, o.parallel, (list) => stampUnits(db, list, cache));
      for (const [k, v] of r.results) prepared.set(k, v);
      report.lookups += r.lookups;
      report.parallel = r.used;
    }
  }
  const todo = new Map<string, Unit>();
  for (const u of units) {
    const k = u.key;
    if (!prepared.has(k)) todo.set(k, u);
  }
  // By source package: the candidate rows of a source are read and dropped while its units are stamped.
  const order = [...todo].sort(bySource);
  const stamped = stampUnits(db, order.map(([, u]) => u), cache);
  order.forEach(([k], i) => prepared.set(k, stamped[i]!));
  const byUri = new Map<string, Unit[]>();
  for (const u of units) {
    const k = u.key;
    if (prepared.get(k) === null) {
      report.skippedUnits++;
      continue;
    }
    const list = byUri.get(u.uri);
    if (list) list.push(u);
    else byUri.set(u.uri, [u]);
  }
  report.images = byUri.size;
  report.units = units.length;
  report.lookups += cache.lookups;
  phase('match');

  // Units whose stamp equals the one recorded with them are unchanged: nothing of
  // them is read or compared. The others ("dirty": new advisories, fixes, a fresh inventory) are
  // compared finding by finding with what is stored for their image and source package.
  const dirty = new Map<string, Unit[]>();
  for (const [uri, list] of byUri) {
    const d = list.filter((u) => {
      const p = prepared.get(u.key)!;
      if (u.findings === p.fp) return false;
      // The findings of a unit whose stamp moved (shared by every image with these packages).
      if (!p.list) {
        const vulns = p.pkgs && findingsOf(db, u.ecosystem, p.pkgs, cache);
        if (!vulns) {
          report.skippedUnits++;
          return false;
        }
        p.list = toPrepared(vulns);
      }
      return true;
    });
    if (d.length) dirty.set(uri, d);
    report.comparedUnits += d.length;
  }
  const uris = [...dirty.keys()];
  const existing = await loadExisting(store, uris, scopeSources);
  phase('stored');

  // What differs from what is stored.
  const info = await imageInfo(store, uris);
  const running = await notifiable(store, uris);
  const notifyAt = severityRank(o.notifyAt ?? 'HIGH');
  type Change = { uri: string; upserts: OccurrenceInput[]; notes: NoteInput[]; resolve: string[]; events: WatchEvent[]; units: Unit[]; delta: Array<[string | null, string | null, number]> };
  const existingByUri = new Map<string, Array<[string, Existing]>>();
  for (const [id, e] of existing) {
    const l = existingByUri.get(e.uri);
    if (l) l.push([id, e]);
    else existingByUri.set(e.uri, [[id, e]]);
  }
  const changes: Change[] = [];
  const seen = new Set<string>();
  for (const [uri, list] of dirty) {
    const c: Change = { uri, upserts: [], notes: [], resolve: [], events: [], units: list, delta: [] };
    const sources = new Set(list.map((u) => u.source));
    for (const u of list) {
      for (const f of prepared.get(u.key)!.list!) {
        const id = occurrenceId(uri, f.ref);
        if (seen.has(id)) continue;
        seen.add(id);
        const old = existing.get(id);
        f.fingerprint ??= vulnerabilityFingerprint(f.v);
        if (old && old.fingerprint === f.fingerprint) continue;
        if (!f.built) {
          const x = vulnerabilityOccurrence(f.v, f.fingerprint);
          f.built = { occ: x.occurrence, note: x.note };
        }
        c.upserts.push(f.built.occ);
        c.notes.push(f.built.note);
        // The summary moves by what changed: +new, −old.
        c.delta.push([f.built.occ.severity ?? null, f.built.occ.facet ?? null, 1]);
        if (old) c.delta.push([old.severity, old.facet, -1]);
        if (old) report.updatedFindings++;
        else {
          report.newFindings++;
          const img = info.get(uri);
          if (running.has(uri) && severityRank(f.v.severity) >= notifyAt && img) {
            c.events.push(findingEvent(uri, img, f.v));
          }
        }
      }
    }
    // Stored findings of these (image, source package) pairs this match did not give are resolved:
    // a fix that now covers the installed version, a withdrawn advisory.
    for (const [id, old] of existingByUri.get(uri) ?? []) {
      if (!seen.has(id) && (old.source === null || sources.has(old.source))) {
        c.resolve.push(id);
        c.delta.push([old.severity, old.facet, -1]);
      }
    }
    changes.push(c);
  }
  report.resolvedFindings = changes.reduce((n, c) => n + c.resolve.length, 0);
  phase('compare');

  // Write the differences (and the units' new fingerprints), a batch of images per transaction,
  // then each changed image's summary.
  const label = dbLabel(db);
  // Batches of up to 1,000 images and about 20,000 written rows: one commit for a usual run (each
  // commit writes every page its rows touched), bounded transactions for a first full re-match.
  const batches: Change[][] = [];
  for (let i = 0, rows = 0; i < changes.length; i++) {
    const c = changes[i]!;
    const last = batches[batches.length - 1];
    if (!last || last.length >= 1000 || rows >= 20_000) {
      batches.push([c]);
      rows = 0;
    } else last.push(c);
    rows += c.upserts.length + c.resolve.length + c.units.length;
  }
  for (const batch of batches) {
    await store.sql.transaction(async (tx) => {
      // A few multi-row statements per batch, whatever its size (round trips dominate on PostgreSQL).
      const notes = batch.flatMap((c) => c.notes);
      if (notes.length) await upsertNotes(tx, notes, at);
      const upserts = batch.filter((c) => c.upserts.length).map((c) => ({ uri: c.uri, occ: c.upserts }));
      if (upserts.length) await upsertOccurrences(tx, upserts, [], at);
      const resolve = batch.flatMap((c) => c.resolve);
      for (let k = 0; k < resolve.length; k += CHUNK) {
        const chunk = resolve.slice(k, k + CHUNK);
        await tx.run(`UPDATE occurrences SET resolve_time = ? WHERE id IN (${chunk.map(() => '?').join(', ')}) AND resolve_time IS NULL`, [at, ...chunk]);
      }
      // Compare-and-set: a unit whose packages were rewritten meanwhile (a rescan) is not stamped.
      const fps = batch.flatMap((c) => c.units.map((u) => [prepared.get(u.key)!.fp, u.ecosystem, u.source, c.uri, u.raw] as Param[]));
      for (let k = 0; k < fps.length; k += 200) {
        const chunk = fps.slice(k, k + 200);
        await tx.run(
          `WITH v (fp, eco, src, uri, raw) AS (VALUES ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')})
           UPDATE package_index SET findings = (SELECT v.fp FROM v WHERE v.eco = package_index.ecosystem AND v.src = package_index.source AND v.uri = package_index.resource_uri)
           WHERE (ecosystem, source, resource_uri, packages) IN (SELECT eco, src, uri, raw FROM v)`,
          chunk.flat(),
        );
      }
      const changed = batch.filter((c) => c.upserts.length || c.resolve.length).map((c) => c.uri);
      const sums = await summariesAfter(tx, batch.filter((c) => c.upserts.length || c.resolve.length));
      for (let k = 0; k < changed.length; k += 200) {
        const chunk = changed.slice(k, k + 200);
        await tx.run(
          `WITH v (uri, vulns) AS (VALUES ${chunk.map(() => '(?, ?)').join(', ')})
           UPDATE images SET vulns = (SELECT v.vulns FROM v WHERE v.uri = images.uri), advisory_db = ?, scanned_at = ? WHERE uri IN (SELECT uri FROM v)`,
          [...chunk.flatMap((u) => [u, json(sums.get(u))]), label, at],
        );
      }
      const events = batch.flatMap((c) => c.events);
      if (events.length) report.events += await addEvents(tx, events, at);
    });
  }
  report.changedImages = changes.filter((c) => c.upserts.length || c.resolve.length).map((c) => c.uri);
  // Every image matched was matched against this database.
  // Only the rows that name another database: a full re-match with nothing changed writes nothing.
  if (report.mode === 'full') {
    const differs = '(advisory_db IS NULL OR advisory_db <> ?)';
    await store.sql.run(o.uris ? `UPDATE images SET advisory_db = ? WHERE ${differs} AND uri IN (${o.uris.map(() => '?').join(', ')})` : `UPDATE images SET advisory_db = ? WHERE ${differs} AND uri IN (SELECT DISTINCT resource_uri FROM package_index)`, [label, label, ...(o.uris ?? [])] as Param[]);
  }
  // After a large write (a first full re-match), refresh the planner's statistics: PostgreSQL's
  // autovacuum would in a minute or so, but the next incremental run may come first, and with
  // stale statistics it reads the findings of whole images instead of a few source packages.
  if (store.sql.dialect === 'postgres' && report.newFindings + report.resolvedFindings + report.updatedFindings > 10_000) await store.sql.run('ANALYZE occurrences');
  phase('write');
  if (!o.uris) await setState(store, STATE_KEY, { db: dbId, seq });
  report.ms = performance.now() - t0;
  return report;
}

/** A stored unit's packages, or null when the row is damaged. */
function parsePackages(raw: string): IndexedPackage[] | null {
  try {
    const p = JSON.parse(raw) as unknown;
    if (!Array.isArray(p) || !p.every((x) => x && typeof x === 'object' && typeof x.name === 'string' && typeof x.version === 'string' && typeof x.type === 'string')) return null;
    return p as IndexedPackage[];
  } catch {
    return null;
  }
}

type FindingFacts = Pick<ScanVulnerability, 'id' | 'aliases' | 'severity' | 'package' | 'installedVersion' | 'fixedVersion' | 'origin' | 'title'>;

/** The event that tells an image's owner about a new finding (one per digest and advisory). */
function findingEvent(uri: string, img: { repository: string; digest: string; owner: string | null }, v: FindingFacts): WatchEvent {
  return {
    type: 'dev.plinth.finding.new',
    key: `finding\u0000${uri}\u0000${v.id}`,
    subject: uri,
    repository: img.repository,
    owner: img.owner,
    data: { image: { uri, repository: img.repository, digest: img.digest }, vulnerability: { id: v.id, aliases: v.aliases, severity: v.severity, package: v.package, installedVersion: v.installedVersion, fixedVersion: v.fixedVersion, origin: v.origin, title: v.title } },
    text: `${v.id} (${v.severity}) in ${v.package} ${v.installedVersion} of ${img.repository}@${img.digest.slice(0, 19)}…${v.fixedVersion ? `: fixed in ${v.fixedVersion}` : ': no fix yet'}${v.origin === 'base' ? ' (from the base image: rebase on a fixed base)' : ''}`,
  };
}

/**
 * New findings recorded by anyone — a rescan, `plinth scan --store` in CI — since the last sweep,
 * on images that run or are watched, at or above the threshold, become events too (the same keys
 * as the re-match's: a fact already told is not told again). The first sweep of a store only
 * starts the clock. Run before notifying.
 */
export async function sweepNewFindings(store: MetaStore, o: { notifyAt?: StoreSeverity; now?: string } = {}): Promise<number> {
  const now = o.now ?? new Date().toISOString();
  const mark = await getState<{ at: string; start?: string }>(store, 'findings-sweep');
  if (!mark) {
    await setState(store, 'findings-sweep', { at: now, start: now });
    return 0;
  }
  // A record written while the last sweep ran may carry an earlier time: overlap by 10 minutes,
  // never before the first sweep (what was there then is not new).
  const start = mark.start ?? mark.at;
  const since = new Date(Math.max(Date.parse(start) || 0, Math.min(Date.parse(mark.at) || 0, Date.parse(now)) - 600_000)).toISOString();
  const rows = await store.sql.all<{ resource_uri: string; subject: string | null; severity: string | null; extra: string | null }>(
    "SELECT resource_uri, subject, severity, extra FROM occurrences WHERE kind = 'VULNERABILITY' AND create_time >= ? AND resolve_time IS NULL ORDER BY create_time LIMIT 200000",
    [since],
  );
  const notifyAt = severityRank(o.notifyAt ?? 'HIGH');
  const wanted = rows.filter((r) => severityRank(r.severity) >= notifyAt);
  const uris = [...new Set(wanted.map((r) => r.resource_uri))];
  const running = await notifiable(store, uris);
  const info = await imageInfo(store, uris);
  const events: WatchEvent[] = [];
  for (const r of wanted) {
    const img = info.get(r.resource_uri);
    if (!img || !running.has(r.resource_uri)) continue;
    let x: Partial<ScanVulnerability>;
    try {
      x = JSON.parse(r.extra ?? '{}') as typeof x;
    } catch {
      continue;
    }
    const id = r.subject;
    if (!id || !x || typeof x.package !== 'string') continue;
    events.push(findingEvent(r.resource_uri, img, { id, aliases: Array.isArray(x.aliases) ? x.aliases : [], severity: (r.severity ?? 'UNKNOWN') as Severity, package: x.package, installedVersion: String(x.installedVersion ?? ''), fixedVersion: x.fixedVersion ?? null, origin: x.origin ?? null, title: String(x.title ?? id) }));
  }
  let added = 0;
  await store.sql.transaction(async (tx) => {
    if (events.length) added = await addEvents(tx, events, now);
    await setState(tx, 'findings-sweep', { at: now, start });
  });
  return added;
}

/** Repository, digest and owner label of images. */
async function imageInfo(store: MetaStore, uris: string[]): Promise<Map<string, { repository: string; digest: string; owner: string | null }>> {
  const out = new Map<string, { repository: string; digest: string; owner: string | null }>();
  for (let i = 0; i < uris.length; i += CHUNK) {
    const chunk = uris.slice(i, i + CHUNK);
    for (const r of await store.sql.all<{ uri: string; repository: string; digest: string; labels: string | null }>(`SELECT uri, repository, digest, labels FROM images WHERE uri IN (${chunk.map(() => '?').join(', ')})`, chunk)) {
      let labels: Record<string, string> = {};
      try {
        labels = JSON.parse(r.labels ?? '{}') as Record<string, string>;
      } catch {
        /* no labels */
      }
      out.set(r.uri, { repository: r.repository, digest: r.digest, owner: ownerLabel(labels) });
    }
  }
  return out;
}


function toPrepared(vulns: ScanVulnerability[]): Prepared[] {
  return vulns.map((v) => ({ v, ref: { kind: 'VULNERABILITY' as const, note: noteId('vuln', v.id), key: `${v.package}\u0000${v.installedVersion}` } }));
}

/**
 * Bumped when what findings are made of changes (matching, severity, titles, fields): every
 * unit's stamp moves, so the next re-match compares each unit's findings with what is stored.
 */
const FINDINGS_REVISION = 2;

/**
 * A stored unit, stamped: a fingerprint of everything its findings are made from — this Plinth's
 * findings revision, the ecosystem, the packages as stored, the advisories that apply and their
 * stored details (matchStamps) — without building a finding. Equal to the one recorded with the
 * unit: its findings are those recorded. `list`: its findings, built only when needed.
 */
interface Stamped {
  fp: string;
  pkgs: IndexedPackage[] | null;
  list?: Prepared[];
}

/**
 * Stored units stamped (see Stamped); null for one that cannot be matched (damaged, an unsupported
 * ecosystem). In slices, the candidate rows read for one dropped before the next: given in source
 * package order, each source is read about once and the rows of the whole fleet are never held.
 */
export function stampUnits(db: VulnStore, units: ReadonlyArray<{ ecosystem: string; raw: string }>, cache: MatchCache): Array<Stamped | null> {
  const out: Array<Stamped | null> = [];
  for (let i = 0; i < units.length; i += 2000) {
    out.push(...stampSlice(db, units.slice(i, i + 2000), cache));
    cache.forgetRows();
  }
  return out;
}

/** Order of (key, unit) pairs by ecosystem and source package. */
function bySource(a: [string, { ecosystem: string; source: string }], b: [string, { ecosystem: string; source: string }]): number {
  const x = a[1];
  const y = b[1];
  return x.ecosystem < y.ecosystem ? -1 : x.ecosystem > y.ecosystem ? 1 : x.source < y.source ? -1 : x.source > y.source ? 1 : 0;
}

function stampSlice(db: VulnStore, units: ReadonlyArray<{ ecosystem: string; raw: string }>, cache: MatchCache): Array<Stamped | null> {
  const pkgs = units.map((u) => parsePackages(u.raw));
  // A unit without packages has no findings, whatever its ecosystem.
  const want = units.flatMap((_, i) => (pkgs[i]?.length ? [i] : []));
  const stamps = matchStamps(db, want.map((i) => ({ ecosystem: units[i]!.ecosystem, packages: pkgs[i]! })), cache);
  const stampOf = new Map(want.map((i, j) => [i, stamps[j]!]));
  return units.map((u, i) => {
    const p = pkgs[i];
    const stamp = p && (p.length ? stampOf.get(i)! : '');
    if (!p || stamp === null) return null;
    return { fp: hash('sha256', `${FINDINGS_REVISION}\u0000${u.ecosystem}\u0000${u.raw}\u0000${stamp}`, 'hex').slice(0, 32), pkgs: p };
  });
}

/** A unit's findings, or null when they cannot be made. */
function findingsOf(db: VulnStore, ecosystem: string, pkgs: IndexedPackage[], cache: MatchCache): ScanVulnerability[] | null {
  try {
    return pkgs.length ? matchInventory(db, ecosystem, pkgs, { cache }) : [];
  } catch {
    return null;
  }
}

/** What a match worker is given: the database, and units with the fingerprints stored for them. */
interface WorkerInput {
  db: string;
  units: Array<[key: string, ecosystem: string, raw: string, stored: Array<string | null>]>;
}

/** A unit's answer: its fingerprint, its findings only when a stored fingerprint differs, null when it cannot be matched. */
type WorkerResult = [key: string, fp: string | null, vulns: ScanVulnerability[] | null];

/**
 * `plinth __match-units`: read a WorkerInput (JSON) and answer each unit. Opens the database
 * read-only; shares nothing with the parent but the file.
 */
export async function matchUnitsWorker(input: string): Promise<string> {
  const { openStore } = await import('../vuln/store.js');
  const req = JSON.parse(input) as WorkerInput;
  if (!req || typeof req.db !== 'string' || !Array.isArray(req.units)) throw new PlinthError('USAGE', 'not a match-units request');
  const db = openStore(req.db, { readonly: true });
  try {
    const cache = new MatchCache();
    const out: WorkerResult[] = [];
    const stamped = stampUnits(db, req.units.map(([, ecosystem, raw]) => ({ ecosystem, raw })), cache);
    for (const [i, [key, ecosystem, , stored]] of req.units.entries()) {
      const m = stamped[i];
      if (!m) out.push([key, null, null]);
      else if (stored.every((f) => f === m.fp)) out.push([key, m.fp, null]);
      else {
        const vulns = findingsOf(db, ecosystem, m.pkgs!, cache);
        out.push(vulns ? [key, m.fp, vulns] : [key, null, null]);
      }
    }
    return JSON.stringify({ results: out, lookups: cache.lookups });
  } finally {
    db.close();
  }
}

/** Share the distinct units between this process and `workers` others, by source package (so lookups are not repeated). */
async function matchParallel(
  dbPath: string,
  distinct: Map<string, { ecosystem: string; source: string; raw: string; stored: Set<string | null> }>,
  p: NonNullable<RematchOptions['parallel']>,
  prepare: (list: Array<{ ecosystem: string; raw: string }>) => Array<Stamped | null>,
): Promise<{ results: Map<string, Stamped | null>; lookups: number; used: number }> {
  const n = p.workers + 1;
  const shares: Array<Array<[string, { ecosystem: string; source: string; raw: string; stored: Set<string | null> }]>> = Array.from({ length: n }, () => []);
  for (const e of distinct) {
    let h = 0;
    for (let i = 0; i < e[1].source.length; i++) h = (h * 31 + e[1].source.charCodeAt(i)) | 0;
    shares[Math.abs(h) % n]!.push(e);
  }
  for (const share of shares) share.sort(bySource);
  const results = new Map<string, Stamped | null>();
  let lookups = 0;
  let used = 1;
  const own = (share: (typeof shares)[number]) => {
    const stamped = prepare(share.map(([, d]) => d));
    share.forEach(([k], i) => results.set(k, stamped[i]!));
  };
  // Requests and answers go through files, not pipes: a pipe would move only as fast as this
  // process, busy with its own share, reads it.
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'plinth-match-'));
  const workers = shares.slice(1).map((share, w) => new Promise<typeof share | null>((resolve) => {
    if (!share.length) return resolve(null);
    const inPath = path.join(tmp, `in-${w}.json`);
    const outPath = path.join(tmp, `out-${w}.json`);
    let fds: number[] = [];
    try {
      const input: WorkerInput = { db: dbPath, units: share.map(([k, d]) => [k, d.ecosystem, d.raw, [...d.stored]]) };
      writeFileSync(inPath, JSON.stringify(input));
      fds = [openSync(inPath, 'r'), openSync(outPath, 'w')];
    } catch {
      return resolve(share);
    }
    const child = spawn(p.command[0]!, [...p.command.slice(1), '__match-units'], { stdio: [fds[0]!, fds[1]!, 'ignore'] });
    for (const fd of fds) closeSync(fd);
    child.on('error', () => resolve(share));
    child.on('close', (code) => {
      if (code !== 0) return resolve(share);
      try {
        const r = JSON.parse(readFileSync(outPath, 'utf8')) as { results: WorkerResult[]; lookups: number };
        const byKey = new Map(share);
        for (const [k, fp, vulns] of r.results) {
          if (!byKey.has(k)) continue;
          // Clean units come back without their findings: nothing of them is compared or written.
          results.set(k, fp === null ? null : { fp, pkgs: null, ...(vulns ? { list: toPrepared(vulns) } : {}) });
          byKey.delete(k);
        }
        lookups += r.lookups;
        used++;
        resolve(byKey.size ? [...byKey] : null);
      } catch {
        resolve(share);
      }
    });
  }));
  try {
    // This process's share in slices, so the workers' answers are handled while it matches.
    const mine = shares[0]!;
    for (let i = 0; i < mine.length; i += 500) {
      own(mine.slice(i, i + 500));
      await new Promise((r) => setImmediate(r));
    }
    for (const left of await Promise.all(workers)) if (left) own(left);
    return { results, lookups, used };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
