import type { Command } from 'commander';
import os from 'node:os';
import { isSingleExecutable } from '../version.js';
import { PlinthError } from '../util/errors.js';
import { defaultStorePath } from '../util/paths.js';
import type { CliHelpers } from './provenance.js';
import { collect, readInput } from './input.js';

/**
 * `plinth watch`: the day-2 worker (src/watch/worker.ts). Thin: flags → WatchConfig → a runner.
 */

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(v: string, flag: string): number {
  const m = /^(\d{1,7})([smhd])$/.exec(v.trim());
  if (!m) throw new PlinthError('USAGE', `${flag} must be a duration such as 30s, 15m, 24h or 7d, got "${v}"`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

type WatchFlags = Record<string, unknown> & {
  matchWorkers?: string;
  store?: string;
  db?: string;
  catalog?: string;
  once?: boolean;
  watchTag: string[];
  owners?: string;
  notify?: string[];
  notifyFormat: string;
  severity: string;
  rescanTtl: string;
  eventRetention: string;
  rescanLimit: string;
  rescan: boolean;
  full?: boolean;
  interval: string;
  queue: string;
  concurrency: string;
  schedule: string[];
  metricsPort?: string;
  format: string;
  platform?: string;
  denyPrivateNetworks?: boolean;
  allowPrivateRegistry: string[];
};

export function registerWatch(program: Command, h: CliHelpers): void {
  if (!h.want('watch')) return;
  h.addRegistryFlags(
    program
      .command('watch')
      .description('the day-2 worker: re-match stored inventories when advisories change, resolve catalog and watched tags (moved tags, bases behind), scan images known only by reference or scanned too long ago, and tell owners what is new — once per fact, one message per owner')
      .option('--store <target>', 'metadata store: an SQLite file or postgres://… (default $PLINTH_STORE, else ~/.local/share/plinth/store.db)')
      .option('--db <path>', 'advisory database (default: $PLINTH_DB or ~/.cache/plinth/vuln.db); update it with plinth db update, the next run re-matches what changed')
      .option('--catalog <file>', 'catalog of bases: their tags are resolved and their status makes images "behind" (read at every run)')
      .option('--once', 'run every due job once and exit (for cron, a Kubernetes CronJob, tests); exit 1 if a job failed')
      .option('--watch-tag <repo:tag>', 'also resolve this tag on every run and tell when it moves (repeatable; remembered in the store)', collect, [])
      .option('--owners <file>', 'owners file: owners: [{repositories: GLOB|[GLOB], contact, notify: [URL], format}] — routes events of images without an authors/maintainer label, and gives contacts their own targets')
      .option('--notify <url...>', 'POST what is new here (owners without their own targets; default $PLINTH_NOTIFY, whitespace-separated)')
      .option('--notify-format <format>', 'cloudevents (CloudEvents 1.0 JSON) or slack ({"text": …})', 'cloudevents')
      .option('--severity <level>', 'new findings at or above this severity are told (UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL)', 'HIGH')
      .option('--rescan-ttl <duration>', 'scan again images whose last scan is older than this', '24h')
      .option('--rescan-limit <n>', 'at most this many scans per run', '100')
      .option('--no-rescan', 'do not scan images (only re-match, drift and notify)')
      .option('--event-retention <duration>', 'facts told (or not) are forgotten after this long (0: kept forever); a fact recorded again after that is told again', '90d')
      .option('--full', 'this run: re-match every stored inventory, not only what the advisory update changed')
      .option('--match-workers <n>', 'a full re-match shares its work with this many more processes (default: one fewer than the CPUs with 4 or more, at most 7; 0: only this one)')
      .option('--interval <duration>', 'without --once on SQLite (or --queue off): run every this long', '1h')
      .option('--queue <mode>', 'on PostgreSQL, share the jobs with other replicas through a pg-boss queue in the store\'s database: on (default for postgres://), off', 'auto')
      .option('--concurrency <n>', 'with the queue: scans and per-image re-matches this process runs at once', '2')
      .option('--schedule <kind=cron>', 'with the queue, without --once: when to run discover, rematch, drift, notify (defaults: discover=0 * * * *, rematch=*/5 * * * *, drift=*/30 * * * *, notify=*/5 * * * *; "none" disables one)', collect, [])
      .option('--metrics-port <port>', 'serve /metrics (Prometheus) and /healthz on this port')
      .option('--deny-private-networks', 'refuse registries on loopback, private and link-local addresses (as plinth serve does: references recorded from pod specs are not trusted); on in the Helm chart')
      .option('--allow-private-registry <host>', 'with --deny-private-networks: a private registry the worker may reach (repeatable; globs such as *.registry.svc)', collect, [])
      .option('--platform <os/arch[/variant]|all>', 'platform to scan of multi-platform images (default: this host\'s)')
      .option('--format <format>', '--once: text or json', 'text'),
  ).action(async (o: WatchFlags) => {
    if (o.format !== 'text' && o.format !== 'json') throw new PlinthError('USAGE', `--format must be text or json, got "${o.format}"`);
    if (o.notifyFormat !== 'cloudevents' && o.notifyFormat !== 'slack') throw new PlinthError('USAGE', `--notify-format must be cloudevents or slack, got "${o.notifyFormat}"`);
    const severity = o.severity.toUpperCase();
    if (!['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'].includes(severity)) throw new PlinthError('USAGE', `--severity must be one of UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL, got "${o.severity}"`);
    const ttl = parseDuration(o.rescanTtl, '--rescan-ttl');
    const retention = o.eventRetention === '0' ? 0 : parseDuration(o.eventRetention, '--event-retention');
    const interval = parseDuration(o.interval, '--interval');
    const limit = Number(o.rescanLimit);
    if (!Number.isInteger(limit) || limit < 0 || limit > 100_000) throw new PlinthError('USAGE', `--rescan-limit must be 0-100000, got "${o.rescanLimit}"`);
    const concurrency = Number(o.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new PlinthError('USAGE', `--concurrency must be 1-64, got "${o.concurrency}"`);
    if (!['auto', 'on', 'off'].includes(o.queue)) throw new PlinthError('USAGE', `--queue must be auto, on or off, got "${o.queue}"`);
    const schedule: Record<string, string | null> = { discover: '0 * * * *', rematch: '*/5 * * * *', drift: '*/30 * * * *', notify: '*/5 * * * *' };
    for (const s of o.schedule) {
      const eq = s.indexOf('=');
      const k = s.slice(0, eq);
      if (eq <= 0 || !(k in schedule)) throw new PlinthError('USAGE', `--schedule ${s}: give KIND=CRON with KIND one of discover, rematch, drift, notify`);
      const cron = s.slice(eq + 1).trim();
      schedule[k] = cron === 'none' ? null : cron;
    }
    // With 2–3 CPUs a worker's cold start (loading Plinth, its JIT and page cache) costs about
    // what its share saves (bench/rescan.ts): one process.
    const cpus = os.availableParallelism();
    const matchWorkers = o.matchWorkers === undefined ? (cpus >= 4 ? Math.min(7, cpus - 1) : 0) : Number(o.matchWorkers);
    if (!Number.isInteger(matchWorkers) || matchWorkers < 0 || matchWorkers > 64) throw new PlinthError('USAGE', `--match-workers must be 0-64, got "${o.matchWorkers}"`);
    let metricsPort: number | undefined;
    if (o.metricsPort !== undefined) {
      metricsPort = Number(o.metricsPort);
      if (!Number.isInteger(metricsPort) || metricsPort < 0 || metricsPort > 65535) throw new PlinthError('USAGE', `--metrics-port must be 0-65535, got "${o.metricsPort}"`);
    }
    const [{ MetaStore }, { isPostgresUrl, redactUrl }, worker, { addWatchedTags }, { parseOwners }, { defaultDbPath }, { parseLocation }, { maskTarget }] = await Promise.all([
      import('../store/store.js'),
      import('../store/sql.js'),
      import('../watch/worker.js'),
      import('../watch/state.js'),
      import('../golden/consumers.js'),
      import('../util/paths.js'),
      import('../source/open.js'),
      import('../notify/notify.js'),
    ]);
    // Targets from the environment too (a Kubernetes Secret): webhook URLs are secrets, not arguments.
    if (!o.notify?.length && process.env.PLINTH_NOTIFY) o.notify = process.env.PLINTH_NOTIFY.split(/[\s,]+/).filter(Boolean);
    const tags = o.watchTag.map((t) => {
      const loc = parseLocation(t);
      if (loc.transport !== 'registry' || loc.ref.digest || loc.ref.tagDefaulted) throw new PlinthError('USAGE', `--watch-tag ${t}: give REGISTRY/REPO:TAG`);
      return { repository: loc.ref.name, tag: loc.ref.tag! };
    });
    const owners = o.owners ? parseOwners((await readInput(o.owners, 'owners file')).toString('utf8'), o.owners) : undefined;
    const target = o.store ?? process.env.PLINTH_STORE ?? defaultStorePath();
    const onPg = isPostgresUrl(target);
    const useQueue = o.queue === 'on' || (o.queue === 'auto' && onPg);
    if (useQueue && !onPg) throw new PlinthError('USAGE', '--queue on needs a PostgreSQL store (postgres://…); on SQLite the worker is one process');
    const store = await MetaStore.open(target);
    const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
    const metrics = new worker.WatchMetrics();
    const metricsServer = metricsPort !== undefined ? await worker.startMetricsServer(metrics, metricsPort) : undefined;
    if (metricsServer) {
      const a = metricsServer.address();
      log(`metrics on :${typeof a === 'object' && a ? a.port : metricsPort}/metrics`);
    }
    const cfg: import('../watch/worker.js').WatchConfig = {
      store,
      dbPath: o.db ?? defaultDbPath(),
      ...(o.catalog ? { catalogPath: o.catalog } : {}),
      registry: { ...(await h.openOptions(o)), ...(o.denyPrivateNetworks ? { network: { denyPrivate: true, allowHosts: o.allowPrivateRegistry } } : {}) },
      ...(o.platform ? { platform: h.platformChoice(o.platform) } : {}),
      ...(o.notify?.length || owners?.owners.some((x) => x.notify?.length) ? { notify: { targets: o.notify ?? [], format: o.notifyFormat as 'cloudevents' | 'slack', ...(owners ? { owners } : {}), ...(process.env.PLINTH_NOTIFY_BACKOFF_MS ? { backoffMs: Number(process.env.PLINTH_NOTIFY_BACKOFF_MS) } : {}), ...(process.env.PLINTH_NOTIFY_ATTEMPTS ? { attempts: Number(process.env.PLINTH_NOTIFY_ATTEMPTS) } : {}), onAttempt: (t: string, owner: string, n: number, err: string | null) => { if (err) log(`notify ${maskTarget(t)} (${owner}): attempt ${n} failed (${err})`); } } } : {}),
      notifyAt: severity as 'HIGH',
      ...(o.full ? { rematchMode: 'full' as const } : {}),
      ...(matchWorkers ? { matchWorkers: { command: selfCommand(), workers: matchWorkers } } : {}),
      rescanTtlMs: ttl,
      eventRetentionMs: retention,
      rescanLimit: o.rescan ? limit : 0,
      log,
      metrics,
    };
    const stopping = new AbortController();
    const onSignal = () => stopping.abort();
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    try {
      await addWatchedTags(store, tags);
      if (!useQueue) {
        log(`watching ${redactUrl(store.location)} in this process${o.once ? ' (once)' : ` every ${o.interval}`}`);
        for (;;) {
          const r = await worker.runOnce(cfg, o.rescan ? {} : { skip: ['discover'] });
          if (o.once) {
            if (o.format === 'json') h.out(JSON.stringify(r, null, 2));
            else for (const j of r.jobs) h.out(`${j.ok ? 'ok    ' : 'FAILED'} ${j.kind}${j.key ? ` ${j.key}` : ''}: ${j.summary}`);
            if (r.failed) process.exitCode = 1;
            return;
          }
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, interval);
            stopping.signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
          });
          if (stopping.signal.aborted) return;
        }
      }
      const runner = new worker.QueueRunner(cfg, target, { concurrency, schedule: o.once ? {} : schedule, ...(process.env.PLINTH_WATCH_SUPERVISE_SECONDS ? { superviseSeconds: Number(process.env.PLINTH_WATCH_SUPERVISE_SECONDS) } : {}), ...(process.env.PLINTH_WATCH_HEARTBEAT_SECONDS ? { heartbeatSeconds: Number(process.env.PLINTH_WATCH_HEARTBEAT_SECONDS) } : {}), ...(process.env.PLINTH_WATCH_POLL_SECONDS ? { pollingSeconds: Number(process.env.PLINTH_WATCH_POLL_SECONDS) } : {}), ...(process.env.PLINTH_WATCH_RETRIES ? { retryLimit: Number(process.env.PLINTH_WATCH_RETRIES) } : {}) });
      await runner.start();
      log(`watching ${redactUrl(store.location)} through the job queue (schema plinth_jobs)${o.once ? ' (once)' : ''}`);
      try {
        if (o.once) {
          const since = new Date().toISOString();
          await runner.once();
          const r = await runner.report(since);
          if (o.format === 'json') h.out(JSON.stringify(r, null, 2));
          else for (const j of r.jobs) h.out(`${j.ok ? 'ok    ' : 'FAILED'} ${j.kind}${j.key ? ` ${j.key}` : ''}: ${j.summary}`);
          if (r.failed) process.exitCode = 1;
          return;
        }
        await new Promise<void>((resolve) => stopping.signal.addEventListener('abort', () => resolve(), { once: true }));
        log('stopping: finishing the jobs in hand');
      } finally {
        await runner.stop();
      }
    } finally {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      metricsServer?.close();
      await store.close();
    }
  });
}

/** How this Plinth starts itself again (the launcher or bundle under Node, or the single-file executable). */
function selfCommand(): string[] {
  return isSingleExecutable() || !process.argv[1] ? [process.execPath] : [process.execPath, process.argv[1]];
}
