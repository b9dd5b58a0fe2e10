import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PlinthError, describeError } from '../util/errors.js';
import { loadCatalog, emptyCatalog, type Catalog } from '../provenance/catalog.js';
import type { OpenOptions } from '../source/open.js';
import type { PlatformChoice } from '../source/image.js';
import { openStore as openVulnStore, type VulnStore } from '../vuln/store.js';
import type { MetaStore, StoreSeverity } from '../store/store.js';
import { rematch, advisoryDbId, sweepNewFindings, type RematchReport } from './rematch.js';
import { drift, type DriftReport } from './drift.js';
import { notifyOwners, type NotifyOptions, type NotifyReport } from './notify.js';
import { rescanCandidates, scanForStore } from './rescan.js';
import { getState, pruneEvents, setState } from './state.js';

/**
 * `plinth watch`: the day-2 jobs and who runs them.
 *
 *   discover       find images due a scan (reference only, never scanned, older than the TTL)
 *                  and queue one `rescan` per image
 *   rescan         resolve, analyse and scan one image; record it (key: the reference)
 *   rematch        re-match stored inventories after an advisory update. In process (SQLite, or
 *                  --once without replicas) it matches the fleet in one pass; on a queue it queues
 *                  one `rematch-image` per affected image (key: the image), so a burst of
 *                  updates leaves one pending job per digest and replicas share the work
 *   rematch-image  re-match one image
 *   drift          resolve catalog and watched tags, compute "behind by"
 *   notify         send what is new, one message per owner
 *
 * A run goes drift → discover → rescans → rematch → notify: a watched tag that moved is
 * scanned in the same run.
 *
 * Every job is idempotent (stable occurrence ids, keyed events): a job retried after a crash, or
 * run by two replicas, records its effects once.
 *
 * Runners: runOnce() runs every due job in order in this process (SQLite — one process — and
 * `--once`); QueueRunner puts them on pg-boss (PostgreSQL), whose queue policies, retries with
 * backoff, heartbeats (a killed worker's job goes to another), dead-letter queue (a poisoned job
 * is parked with its error after its retries) and cron schedules (one sender across replicas)
 * do the coordination.
 */

export type JobKind = 'discover' | 'rescan' | 'rematch' | 'rematch-image' | 'drift' | 'notify';
export const JOB_KINDS: readonly JobKind[] = ['discover', 'rescan', 'rematch', 'rematch-image', 'drift', 'notify'];

/** How long facts stay in the outbox by default (plinth watch --event-retention). */
export const EVENT_RETENTION_MS = 90 * 86_400_000;

export interface WatchConfig {
  store: MetaStore;
  /** The advisory database file (opened read-only per job: `plinth db update` may replace it). */
  dbPath: string;
  /** The catalog file, read at each drift/rescan job (a ConfigMap may change under the worker). */
  catalogPath?: string;
  registry: OpenOptions;
  platform?: PlatformChoice;
  notify?: NotifyOptions;
  notifyAt?: StoreSeverity;
  /** full: re-match every stored inventory (default auto: what the advisory update changed). */
  rematchMode?: 'auto' | 'full';
  /** Share a full re-match with other processes (RematchOptions.parallel). */
  matchWorkers?: { command: string[]; workers: number };
  rescanTtlMs?: number;
  rescanLimit?: number;
  /** Facts older than this are dropped from the outbox by each notify job, before it sends (default 90 days; 0: kept forever). */
  eventRetentionMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  metrics?: WatchMetrics;
}

export class WatchMetrics {
  readonly registry = new Registry();
  readonly jobs = new Counter({ name: 'plinth_watch_jobs_total', help: 'jobs run, by kind and outcome (ok, failed)', labelNames: ['kind', 'outcome'] as const, registers: [this.registry] });
  readonly queue = new Gauge({ name: 'plinth_watch_queue_depth', help: 'jobs waiting, by kind', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly rematchSeconds = new Histogram({ name: 'plinth_watch_rematch_duration_seconds', help: 'time to re-match stored inventories, by mode', labelNames: ['mode'] as const, buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers: [this.registry] });
  readonly findings = new Counter({ name: 'plinth_watch_findings_total', help: 'findings recorded by re-matching, by change (new, resolved, updated)', labelNames: ['change'] as const, registers: [this.registry] });
  readonly notifications = new Counter({ name: 'plinth_watch_notifications_total', help: 'notification messages, by outcome (sent, failed)', labelNames: ['outcome'] as const, registers: [this.registry] });
  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'plinth_watch_' });
  }
}

function catalogOf(cfg: WatchConfig): Promise<Catalog> {
  return cfg.catalogPath ? loadCatalog(cfg.catalogPath, { mustExist: true }) : Promise.resolve(emptyCatalog());
}

function withDb<T>(cfg: WatchConfig, fn: (db: VulnStore) => Promise<T>): Promise<T> {
  const db = openVulnStore(cfg.dbPath, { readonly: true });
  return fn(db).finally(() => db.close());
}

function recordRematch(cfg: WatchConfig, r: RematchReport): void {
  cfg.metrics?.rematchSeconds.observe({ mode: r.mode }, r.ms / 1000);
  cfg.metrics?.findings.inc({ change: 'new' }, r.newFindings);
  cfg.metrics?.findings.inc({ change: 'resolved' }, r.resolvedFindings);
  cfg.metrics?.findings.inc({ change: 'updated' }, r.updatedFindings);
}

/** The images an advisory update can affect (incremental), or every indexed image (full). */
async function affectedImages(cfg: WatchConfig, db: VulnStore): Promise<{ uris: string[]; seq: number; dbId: string; mode: 'full' | 'incremental' }> {
  const dbId = advisoryDbId(db);
  const seq = db.changeSeq();
  const mark = await getState<{ db: string; seq: number }>(cfg.store, 'advisories');
  const changes = cfg.rematchMode !== 'full' && mark && mark.db === dbId && seq >= mark.seq ? db.changesSince(mark.seq) : null;
  const uris = new Set<string>();
  if (changes) {
    const byEco = new Map<string, string[]>();
    for (const p of changes.packages) byEco.set(p.ecosystem, [...(byEco.get(p.ecosystem) ?? []), p.package]);
    for (const [eco, names] of byEco) {
      for (let i = 0; i < names.length; i += 400) {
        const chunk = names.slice(i, i + 400);
        for (const r of await cfg.store.sql.all<{ resource_uri: string }>(`SELECT DISTINCT resource_uri FROM package_index WHERE ecosystem = ? AND source IN (${chunk.map(() => '?').join(', ')})`, [eco, ...chunk])) uris.add(r.resource_uri);
      }
    }
    return { uris: [...uris].sort(), seq, dbId, mode: 'incremental' };
  }
  for (const r of await cfg.store.sql.all<{ resource_uri: string }>('SELECT DISTINCT resource_uri FROM package_index ORDER BY resource_uri')) uris.add(r.resource_uri);
  return { uris: [...uris], seq, dbId, mode: 'full' };
}

export interface JobResult {
  kind: JobKind;
  key?: string;
  summary: string;
  details?: unknown;
  /** Jobs this one asks for (a queue runner sends them; runOnce runs them). */
  follow?: Array<{ kind: JobKind; key: string; data: Record<string, unknown> }>;
}

/** Run one job. `fanOut`: queue per-image work instead of doing it here (queue runners). */
export async function runJob(cfg: WatchConfig, kind: JobKind, data: Record<string, unknown> = {}, o: { fanOut?: boolean } = {}): Promise<JobResult> {
  switch (kind) {
    case 'discover': {
      const due = await rescanCandidates(cfg.store, { ttlMs: cfg.rescanTtlMs ?? 24 * 3600_000, limit: cfg.rescanLimit ?? 100 });
      return { kind, summary: `${due.length} image(s) due a scan`, details: due, follow: due.map((d) => ({ kind: 'rescan' as const, key: d.ref, data: { ref: d.ref, why: d.why } })) };
    }
    case 'rescan': {
      const ref = String(data.ref ?? '');
      if (!ref) throw new PlinthError('USAGE', 'a rescan job needs a ref');
      const catalog = await catalogOf(cfg);
      return withDb(cfg, async (db) => {
        const { results, records } = await scanForStore(ref, db, catalog, { registry: cfg.registry, registryOnly: true, ...(cfg.platform !== undefined ? { platform: cfg.platform } : {}) });
        for (const r of records) await cfg.store.recordImage(r);
        return { kind, key: ref, summary: `${ref}: ${results.map((r) => `${r.image.digest.slice(0, 19)}… ${r.summary.total} finding(s)`).join(', ')}` };
      });
    }
    case 'rematch':
      return withDb(cfg, async (db) => {
        if (o.fanOut) {
          const a = await affectedImages(cfg, db);
          // The watermark moves once the per-image jobs are queued (they are durable rows).
          return { kind, summary: `${a.mode}: ${a.uris.length} image(s) to re-match`, details: { mode: a.mode, seq: a.seq, dbId: a.dbId }, follow: a.uris.map((uri) => ({ kind: 'rematch-image' as const, key: uri, data: { uri } })) };
        }
        const r = await rematch(cfg.store, db, { ...(cfg.notifyAt ? { notifyAt: cfg.notifyAt } : {}), ...(cfg.rematchMode === 'full' ? { mode: 'full' as const } : {}), ...(cfg.matchWorkers?.workers ? { parallel: cfg.matchWorkers } : {}) });
        recordRematch(cfg, r);
        return { kind, summary: `${r.mode} (${r.reason}): ${r.images} image(s), ${r.newFindings} new, ${r.resolvedFindings} resolved, ${r.updatedFindings} updated finding(s) in ${Math.round(r.ms)} ms`, details: r };
      });
    case 'rematch-image': {
      const uri = String(data.uri ?? '');
      if (!uri) throw new PlinthError('USAGE', 'a rematch-image job needs a uri');
      return withDb(cfg, async (db) => {
        const r = await rematch(cfg.store, db, { uris: [uri], ...(cfg.notifyAt ? { notifyAt: cfg.notifyAt } : {}) });
        recordRematch(cfg, r);
        return { kind, key: uri, summary: `${uri}: ${r.newFindings} new, ${r.resolvedFindings} resolved`, details: r };
      });
    }
    case 'drift': {
      const catalog = await catalogOf(cfg);
      const r: DriftReport = await drift(cfg.store, catalog, { registry: cfg.registry, onWarning: (m) => cfg.log?.(`drift: ${m}`) });
      return { kind, summary: `${r.tags} tag(s) resolved (${r.moved.length} moved, ${r.unresolved} unresolved), ${r.behind} image(s) behind, ${r.events} new event(s)`, details: r };
    }
    case 'notify': {
      // Findings recorded by scans (a rescan, CI) since the last run are facts too.
      const swept = await sweepNewFindings(cfg.store, { ...(cfg.notifyAt ? { notifyAt: cfg.notifyAt } : {}) });
      // The outbox's retention, before sending: a fact past it is not sent late.
      const retention = cfg.eventRetentionMs ?? EVENT_RETENTION_MS;
      const pruned = retention > 0 ? await pruneEvents(cfg.store, new Date(Date.now() - retention).toISOString()) : 0;
      const dropped = pruned ? `; ${pruned} fact(s) older than the retention dropped` : '';
      if (!cfg.notify) return { kind, summary: `no notification targets (${swept} new finding event(s) kept${dropped})` };
      const r: NotifyReport = await notifyOwners(cfg.store, cfg.notify);
      cfg.metrics?.notifications.inc({ outcome: 'sent' }, r.messages);
      cfg.metrics?.notifications.inc({ outcome: 'failed' }, r.failed.length);
      // Undelivered facts stay in the outbox for the next run; the job fails so --once exits 1 and a queue retries it.
      if (r.failed.length) throw new PlinthError('NETWORK', `${r.messages} message(s) sent; ${r.failed.length} not delivered, kept for the next run: ${r.failed.map((f) => `${f.owner} (${f.events} fact(s)): ${f.error}`).join('; ')}`);
      return { kind, summary: `${r.messages} message(s) with ${r.events} fact(s) sent${r.failed.length ? `, ${r.failed.length} failed (${r.failed.map((f) => `${f.target}: ${f.error}`).join('; ')})` : ''}${dropped}`, details: r };
    }
  }
}

async function counted(cfg: WatchConfig, kind: JobKind, fn: () => Promise<JobResult>): Promise<JobResult> {
  try {
    const r = await fn();
    cfg.metrics?.jobs.inc({ kind, outcome: 'ok' });
    return r;
  } catch (e) {
    cfg.metrics?.jobs.inc({ kind, outcome: 'failed' });
    throw e;
  }
}

export interface OnceReport {
  jobs: Array<{ kind: JobKind; key?: string; ok: boolean; summary: string }>;
  failed: number;
}

/** Every due job, in order, in this process: scans first, then re-match, drift, notify. */
export async function runOnce(cfg: WatchConfig, o: { skip?: JobKind[] } = {}): Promise<OnceReport> {
  const report: OnceReport = { jobs: [], failed: 0 };
  const run = async (kind: JobKind, data: Record<string, unknown> = {}): Promise<JobResult | undefined> => {
    if (o.skip?.includes(kind)) return undefined;
    try {
      const r = await counted(cfg, kind, () => runJob(cfg, kind, data));
      report.jobs.push({ kind, ...(r.key ? { key: r.key } : {}), ok: true, summary: r.summary });
      cfg.log?.(`${kind}${r.key ? ` ${r.key}` : ''}: ${r.summary}`);
      return r;
    } catch (e) {
      report.failed++;
      const key = typeof data.ref === 'string' ? data.ref : typeof data.uri === 'string' ? data.uri : undefined;
      report.jobs.push({ kind, ...(key ? { key } : {}), ok: false, summary: describeError(e) });
      cfg.log?.(`${kind}${key ? ` ${key}` : ''} failed: ${describeError(e)}`);
      return undefined;
    }
  };
  // Tags first (a watched tag that moved is scanned in the same run), then scans, re-match, tell.
  await run('drift');
  const discovered = await run('discover');
  for (const f of discovered?.follow ?? []) await run(f.kind, f.data);
  await run('rematch');
  await run('notify');
  await setState(cfg.store, 'last-run', { at: new Date().toISOString(), failed: report.failed });
  return report;
}

// ------------------------------------------------------------------------------- queue runner

export interface QueueOptions {
  /** Jobs this process runs at once per kind (default 2). */
  concurrency?: number;
  /** Cron schedules (pg-boss sends each once across replicas); null disables one. */
  schedule?: Partial<Record<'discover' | 'rematch' | 'drift' | 'notify', string | null>>;
  /** Tries of a failing job before it is parked in plinth-parked (default 3). */
  retryLimit?: number;
  /** Seconds without a heartbeat before a job of a dead worker goes to another (>= 10, default 30). */
  heartbeatSeconds?: number;
  /** How often pg-boss looks for dead jobs and runs schedules (default 30 s). */
  superviseSeconds?: number;
  pollingSeconds?: number;
  /** Only send jobs (a producer), do not work them. */
  noWork?: boolean;
}

export const PARKED_QUEUE = 'plinth-parked';
const queueName = (k: JobKind) => `plinth-${k}`;

type Boss = import('pg-boss').PgBoss;

export class QueueRunner {
  private boss: Boss | undefined;
  private readonly cfg: WatchConfig;
  private readonly o: QueueOptions;
  private readonly connection: string;
  running = 0;

  constructor(cfg: WatchConfig, connection: string, o: QueueOptions = {}) {
    this.cfg = cfg;
    this.o = o;
    this.connection = connection;
  }

  async start(): Promise<void> {
    const { PgBoss } = await import('pg-boss');
    const supervise = this.o.superviseSeconds ?? 30;
    const boss = new PgBoss({ connectionString: this.connection, schema: 'plinth_jobs', superviseIntervalSeconds: supervise, monitorIntervalSeconds: supervise, queueCacheIntervalSeconds: Math.max(1, supervise), cronMonitorIntervalSeconds: Math.min(45, Math.max(1, supervise)), cronWorkerIntervalSeconds: Math.min(45, Math.max(1, Math.ceil(supervise / 2))), max: 4 });
    boss.on('error', (e: unknown) => this.cfg.log?.(`queue: ${describeError(e)}`));
    try {
      await boss.start();
    } catch (e) {
      throw new PlinthError('STORE_UNAVAILABLE', `cannot start the job queue on ${this.cfg.store.location}: ${describeError(e)}`, undefined, { cause: e });
    }
    this.boss = boss;
    const heartbeat = Math.max(10, this.o.heartbeatSeconds ?? 30);
    const common = { retryLimit: this.o.retryLimit ?? 3, retryDelay: 2, retryBackoff: true, retryDelayMax: 300, heartbeatSeconds: heartbeat, expireInSeconds: 3600, deadLetter: PARKED_QUEUE };
    await this.ensureQueue(PARKED_QUEUE, { policy: 'standard', retentionSeconds: 30 * 86400 });
    for (const k of JOB_KINDS) {
      // stately: at most one queued and one active job per key (per-image kinds, keyed by the
      // image: a burst of updates collapses into one pending job per digest) or per queue (the
      // fleet-wide kinds: one at a time across replicas, a cron tick while one waits is dropped).
      await this.ensureQueue(queueName(k), { ...common, policy: 'stately' });
    }
    for (const [k, cron] of Object.entries(this.o.schedule ?? {})) {
      if (cron) await boss.schedule(queueName(k as JobKind), cron, {}, { tz: 'UTC' });
      else await boss.unschedule(queueName(k as JobKind)).catch(() => {});
    }
    if (!this.o.noWork) {
      for (const k of JOB_KINDS) {
        // Batches of jobs, each settled on its own (a failing one is retried or parked without its
        // neighbours); a full batch fetches the next at once instead of waiting for the poll.
        const handler = async (jobs: Array<{ id: string; data: Record<string, unknown> | null }>) => {
          const results: Array<{ id: string; status: 'completed' | 'failed'; output: Record<string, unknown> }> = [];
          for (const job of jobs) {
            this.running++;
            try {
              const r = await counted(this.cfg, k, () => runJob(this.cfg, k, job.data ?? {}, { fanOut: true }));
              for (let i = 0; i < (r.follow ?? []).length; i += 500) {
                const part = r.follow!.slice(i, i + 500);
                await this.sendMany(part[0]!.kind, part.map((f) => ({ key: f.key, data: f.data })));
              }
              if (k === 'rematch' && r.details && typeof r.details === 'object') {
                const d = r.details as { seq: number; dbId: string };
                await setState(this.cfg.store, 'advisories', { db: d.dbId, seq: d.seq });
              }
              this.cfg.log?.(`${k}${r.key ? ` ${r.key}` : ''}: ${r.summary}`, { job: job.id });
              results.push({ id: job.id, status: 'completed', output: { summary: r.summary } });
            } catch (e) {
              this.cfg.log?.(`${k} failed: ${describeError(e)}`, { job: job.id });
              results.push({ id: job.id, status: 'failed', output: { message: describeError(e) } });
            } finally {
              this.running--;
            }
          }
          return results;
        };
        const keyed = k === 'rescan' || k === 'rematch-image';
        await boss.work<Record<string, unknown>>(
          queueName(k),
          { perJobResults: true, batchSize: keyed ? 10 : 1, burstWhenBatchFull: keyed, localConcurrency: keyed ? (this.o.concurrency ?? 2) : 1, pollingIntervalSeconds: this.o.pollingSeconds ?? 2, heartbeatRefreshSeconds: Math.max(1, Math.floor(heartbeat / 3)) } as never,
          handler as never,
        );
      }
    }
  }

  private async ensureQueue(name: string, options: Record<string, unknown>): Promise<void> {
    const boss = this.boss!;
    const existing = await boss.getQueue(name);
    if (!existing) {
      try {
        await boss.createQueue(name, options as never);
      } catch (e) {
        // Another replica created it meanwhile.
        if (!(await boss.getQueue(name))) throw e;
      }
    }
  }

  /** Queue a job; keyed jobs collapse with a pending one of the same key. */
  async send(kind: JobKind, data: Record<string, unknown> = {}, key?: string): Promise<string | null> {
    if (!this.boss) throw new Error('the queue is not started');
    return this.boss.send(queueName(kind), data, key ? { singletonKey: key } : {});
  }

  /** Queue many keyed jobs at once (one insert). */
  async sendMany(kind: JobKind, jobs: Array<{ key: string; data: Record<string, unknown> }>): Promise<void> {
    if (!this.boss) throw new Error('the queue is not started');
    for (let i = 0; i < jobs.length; i += 500) await this.boss.insert(queueName(kind), jobs.slice(i, i + 500).map((j) => ({ data: j.data, singletonKey: j.key })));
  }

  /** Jobs waiting or running, by kind (and parked). */
  async depth(): Promise<Record<string, { queued: number; active: number }>> {
    const out: Record<string, { queued: number; active: number }> = {};
    const qs = await this.boss!.getQueues([...JOB_KINDS.map(queueName), PARKED_QUEUE]);
    for (const q of qs) {
      out[q.name] = { queued: q.queuedCount ?? 0, active: q.activeCount ?? 0 };
      if (q.name !== PARKED_QUEUE) this.cfg.metrics?.queue.set({ kind: q.name.replace(/^plinth-/, '') }, q.queuedCount ?? 0);
    }
    return out;
  }

  /** Exact counts straight from the job table (getQueues' are cached between supervise passes), of jobs created since `since`. */
  async counts(since?: string): Promise<Record<string, Record<string, number>>> {
    const rows = await this.cfg.store.sql.all<{ name: string; state: string; n: number }>(`SELECT name, state::text AS state, COUNT(*) AS n FROM plinth_jobs.job ${since ? 'WHERE created_on >= ?' : ''} GROUP BY name, state`, since ? [since] : []);
    const out: Record<string, Record<string, number>> = {};
    for (const r of rows) (out[r.name] ??= {})[r.state] = Number(r.n);
    return out;
  }

  /** Wait until no job of these kinds is queued, retrying or active (polls the job table). */
  async idle(kinds: readonly JobKind[] = JOB_KINDS, timeoutMs = 600_000): Promise<void> {
    const names = new Set(kinds.map(queueName));
    const until = Date.now() + timeoutMs;
    for (;;) {
      const c = await this.counts();
      let busy = 0;
      for (const [name, states] of Object.entries(c)) if (names.has(name)) busy += (states.created ?? 0) + (states.retry ?? 0) + (states.active ?? 0);
      if (busy === 0) return;
      if (Date.now() > until) throw new PlinthError('TIMEOUT', `jobs still pending after ${Math.round(timeoutMs / 1000)} s`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** What the jobs created since `since` did (whoever ran them): their outcome and summary or error. */
  async report(since: string): Promise<OnceReport> {
    const rows = await this.cfg.store.sql.all<{ name: string; state: string; key: string | null; output: string | null }>(
      "SELECT name, state::text AS state, singleton_key AS key, output::text AS output FROM plinth_jobs.job WHERE created_on >= ? AND name LIKE 'plinth-%' ORDER BY created_on",
      [since],
    );
    const report: OnceReport = { jobs: [], failed: 0 };
    for (const r of rows) {
      let out: { summary?: string; message?: string } = {};
      try {
        out = JSON.parse(r.output ?? '{}') as typeof out;
      } catch {
        /* none */
      }
      const ok = r.state === 'completed';
      if (r.state === 'failed') report.failed++;
      report.jobs.push({ kind: r.name.replace(/^plinth-/, '') as JobKind, ...(r.key ? { key: r.key } : {}), ok, summary: ok ? (out.summary ?? '') : `${r.state}${out.message ? `: ${out.message}` : ''}` });
    }
    return report;
  }

  /** `--once` on a queue: the due jobs in order, shared with any running replicas, then return. */
  async once(): Promise<void> {
    await this.send('drift');
    await this.idle(['drift']);
    await this.send('discover');
    await this.idle(['discover', 'rescan']);
    await this.send('rematch');
    await this.idle(['rematch', 'rematch-image']);
    await this.send('notify');
    await this.idle(['notify']);
  }

  async stop(): Promise<void> {
    await this.boss?.stop({ graceful: true, timeout: 10_000 } as never).catch(() => {});
    this.boss = undefined;
  }
}

/** A /metrics (and /healthz) endpoint for the worker. */
export async function startMetricsServer(metrics: WatchMetrics, port: number, host = '0.0.0.0'): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics.registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(body);
        },
        (e) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(describeError(e));
        },
      );
    } else if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
