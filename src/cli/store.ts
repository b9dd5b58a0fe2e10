import type { Command } from 'commander';
import { PlinthError } from '../util/errors.js';
import { defaultCatalogPath, defaultStorePath } from '../util/paths.js';
import type { CliHelpers } from './provenance.js';
import type { MetaStore, ImageRecord, ImageSummary } from '../store/store.js';
import { readInput } from './input.js';

/**
 * The metadata store on the command line: `--store` for the commands that learn something, and
 * the commands that ask it (images, history, consumers, findings), feed it (inventory import) and
 * serve it (api).
 */

const STORE_HELP = 'metadata store: an SQLite file or postgres://… (default $PLINTH_STORE, else ~/.local/share/plinth/store.db)';

/** `--store [target]` on a command that records what it learned (bare --store: the default store). */
export function addStoreOption(cmd: Command): Command {
  return cmd.option('--store [target]', `record what this command learns in the ${STORE_HELP}`);
}

/** Where to record: --store's value, the default for a bare --store, else $PLINTH_STORE, else nowhere. */
export function recordTarget(v: unknown, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (v === true) return defaultStorePath(env);
  if (typeof v === 'string' && v !== '') return v;
  return env.PLINTH_STORE || undefined;
}

/** The store a command records into, opened before its work so a bad store fails it first. */
export async function openRecorder(v: unknown): Promise<MetaStore | undefined> {
  const target = recordTarget(v);
  if (!target) return undefined;
  const { MetaStore } = await import('../store/store.js');
  return MetaStore.open(target);
}

/** Write records (each its own transaction) and close; the caller's output is already printed. */
export async function recordAll(store: MetaStore | undefined, records: ImageRecord[], quiet = false): Promise<void> {
  if (!store) return;
  try {
    for (const r of records) await store.recordImage(r);
    if (!quiet && records.length) process.stderr.write(`Recorded ${records.length} record(s) in ${store.location}\n`);
  } finally {
    await store.close();
  }
}

/** A store to read: an SQLite file opened read-only (it must exist), PostgreSQL as it is. */
export async function openForQuery(target: string | undefined): Promise<MetaStore> {
  const [{ MetaStore }, { isPostgresUrl }] = await Promise.all([import('../store/store.js'), import('../store/sql.js')]);
  const t = target ?? defaultStorePath();
  return MetaStore.open(t, { readonly: !isPostgresUrl(t) });
}

function short(d: string | null | undefined): string {
  return d ? d.replace(/^sha256:/, '').slice(0, 12) : '-';
}

function vulnCell(i: ImageSummary): string {
  const v = i.vulnerabilities;
  if (!v) return i.scannedAt ? '0' : 'not scanned';
  const b = v.bySeverity;
  return `${v.total} (C${b.CRITICAL ?? 0} H${b.HIGH ?? 0} M${b.MEDIUM ?? 0} L${b.LOW ?? 0}; base ${v.base})`;
}

function baseCell(i: ImageSummary): string {
  if (!i.base) return 'unknown';
  const name = `${i.base.name ?? '?'}${i.base.tag ? `:${i.base.tag}` : ''}`;
  return `${name}${i.base.digest ? `@${short(i.base.digest)}` : ''} ${i.base.status ?? ''}${i.base.behind ? ' (behind)' : ''}`.trim();
}

/** Aligned columns (each at most `max` wide; the last one free), two spaces apart. */
function columns(head: string[], rows: string[][], max: number): string {
  const w = head.map((h, c) => Math.min(max, Math.max(h.length, ...rows.map((r) => r[c]!.length))));
  return [head, ...rows].map((r) => r.map((x, c) => (c === r.length - 1 ? x : x.padEnd(w[c]!))).join('  ')).join('\n');
}

function imagesTable(images: ImageSummary[]): string {
  if (!images.length) return '(no images)';
  const rows = images.map((i) => [i.repository, i.tags.join(',') || '-', short(i.digest), i.platform ?? '-', baseCell(i), vulnCell(i), i.running.length ? i.running.map((r) => `${r.cluster}/${r.namespace}/${r.workload}`).slice(0, 3).join(' ') + (i.running.length > 3 ? ` +${i.running.length - 3}` : '') : '-']);
  return columns(['REPOSITORY', 'TAGS', 'DIGEST', 'PLATFORM', 'BASE', 'VULNERABILITIES', 'RUNNING'], rows, 60);
}

function checkFormat(f: string): void {
  if (f !== 'table' && f !== 'json') throw new PlinthError('USAGE', `--format must be table or json, got "${f}"`);
}

async function catalogFor(file: string | undefined) {
  const { loadCatalog } = await import('../provenance/catalog.js');
  return loadCatalog(file ?? defaultCatalogPath(), { mustExist: file !== undefined });
}

export function registerStore(program: Command, h: CliHelpers): void {
  const any = ['images', 'history', 'consumers', 'findings', 'inventory', 'api', 'store'].some((n) => h.want(n));
  if (!any) return;

  program
    .command('images')
    .description('list the images the store knows: tags, base and its status, vulnerabilities, where they run')
    .option('--store <target>', STORE_HELP)
    .option('--base <ref>', 'only images built on this base (REPO, REPO:TAG or @DIGEST)')
    .option('--running', 'only images running in a cluster (admissions, inventory import)')
    .option('--vulnerable <severity>', 'only images with an open finding at or above LOW, MEDIUM, HIGH or CRITICAL')
    .option('--behind', 'only images whose base is deprecated or not the newest approved of its line')
    .option('--repository <repo>', 'only this repository (REGISTRY/REPO)')
    .option('--catalog <file>', 'catalog, to resolve a --base tag to its platform images')
    .option('--format <format>', 'table or json', 'table')
    .action(async (o: { store?: string; base?: string; running?: boolean; vulnerable?: string; behind?: boolean; repository?: string; catalog?: string; format: string }) => {
      checkFormat(o.format);
      const { listImages, parseSeverity } = await import('../store/queries.js');
      const vulnerable = parseSeverity(o.vulnerable, '--vulnerable');
      const catalog = o.base ? await catalogFor(o.catalog) : undefined;
      const store = await openForQuery(o.store);
      try {
        const images = await listImages(store, { ...(o.base ? { base: o.base } : {}), ...(o.running ? { running: true } : {}), ...(vulnerable ? { vulnerable } : {}), ...(o.behind ? { behind: true } : {}), ...(o.repository ? { repository: o.repository } : {}) }, catalog ? { catalog } : {});
        h.out(o.format === 'json' ? JSON.stringify({ images }, null, 2) : imagesTable(images));
      } finally {
        await store.close();
      }
    });

  program
    .command('history')
    .description('an image\'s history: what a tag pointed at over time (or the tags a digest had), where it ran, the policy decisions about it')
    .argument('<ref>', 'REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:…')
    .option('--store <target>', STORE_HELP)
    .option('--at <time>', 'what the tag pointed at on this date or time (2026-11-02, or ISO-8601)')
    .option('--format <format>', 'table or json', 'table')
    .action(async (ref: string, o: { store?: string; at?: string; format: string }) => {
      checkFormat(o.format);
      const { history } = await import('../store/queries.js');
      const store = await openForQuery(o.store);
      try {
        const r = await history(store, ref, o.at ? { at: o.at } : {});
        if (o.format === 'json') return h.out(JSON.stringify(r, null, 2));
        const L: string[] = [r.reference];
        if (r.at) L.push(`  at ${r.at.time}: ${r.at.digest ?? '(not seen yet)'}`);
        L.push(r.digest ? 'Tags seen pointing at it:' : 'Tag history:');
        if (!r.tags.length) L.push('  (none recorded)');
        for (const t of r.tags) L.push(`  ${t.firstSeen} .. ${t.lastSeen}  ${t.repository}:${t.tag} -> ${t.digest}${t.source ? `  (${t.source})` : ''}`);
        L.push('Images:');
        if (!r.images.length) L.push('  (none analysed)');
        for (const i of r.images) L.push(`  ${i.uri}  ${i.platform ?? ''}  base ${baseCell(i)}  vulnerabilities ${vulnCell(i)}`);
        L.push('Where it ran:');
        if (!r.deployments.length) L.push('  (nowhere recorded)');
        for (const d of r.deployments) L.push(`  ${d.cluster}/${d.namespace}/${d.kind}/${d.name}${d.container ? ` [${d.container}]` : ''}  ${d.firstSeen} .. ${d.lastSeen}${d.running ? '' : ' (gone)'}  via ${d.via}`);
        L.push('Decisions:');
        if (!r.decisions.length) L.push('  (none recorded)');
        for (const d of r.decisions.slice(0, 50)) L.push(`  ${d.time}  ${d.allowed ? 'allowed' : 'DENIED '}${(d.count ?? 1) > 1 ? ` ×${d.count} (to ${d.lastTime})` : ''}  ${d.source}${d.namespace ? ` ${d.namespace}/${d.workload ?? ''}` : ''}  ${d.image}${d.messages.length ? `: ${d.messages.join('; ').slice(0, 200)}` : ''}`);
        h.out(L.join('\n'));
      } finally {
        await store.close();
      }
    });

  program
    .command('consumers')
    .description('the images built on a base (by the base digest their provenance found, or its repository and tag)')
    .argument('<base>', 'REGISTRY/REPO, REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:…')
    .option('--store <target>', STORE_HELP)
    .option('--catalog <file>', 'catalog, to resolve a tag or an index to its platform images')
    .option('--format <format>', 'table or json', 'table')
    .action(async (base: string, o: { store?: string; catalog?: string; format: string }) => {
      checkFormat(o.format);
      const { consumers } = await import('../store/queries.js');
      const catalog = await catalogFor(o.catalog);
      const store = await openForQuery(o.store);
      try {
        const r = await consumers(store, base, { catalog });
        if (o.format === 'json') return h.out(JSON.stringify(r, null, 2));
        if (!r.images.length) return h.out(`no image in the store is built on ${r.base.reference}`);
        const rows = r.images.map((i) => [`${i.repository}${i.tags.length ? `:${i.tags.join(',')}` : ''}`, short(i.digest), i.owner ?? '-', i.running.length ? `${i.running.length} workload(s)` : '-', vulnCell(i)]);
        h.out(columns(['IMAGE', 'DIGEST', 'OWNER', 'RUNNING', 'VULNERABILITIES'], rows, 70));
      } finally {
        await store.close();
      }
    });

  program
    .command('findings')
    .description('open vulnerability findings across stored images (optionally only those first seen since a date)')
    .option('--store <target>', STORE_HELP)
    .option('--new-since <time>', 'only findings first recorded at or after this date or time')
    .option('--severity <severity>', 'at or above LOW, MEDIUM, HIGH or CRITICAL')
    .option('--format <format>', 'table or json', 'table')
    .action(async (o: { store?: string; newSince?: string; severity?: string; format: string }) => {
      checkFormat(o.format);
      const { normaliseTime, parseSeverity } = await import('../store/queries.js');
      const severity = parseSeverity(o.severity, '--severity');
      const since = o.newSince ? normaliseTime(o.newSince, '--new-since') : undefined;
      const store = await openForQuery(o.store);
      try {
        const f = await store.findings({ ...(since ? { newSince: since } : {}), ...(severity ? { severity } : {}) });
        if (o.format === 'json') return h.out(JSON.stringify({ findings: f }, null, 2));
        if (!f.length) return h.out('(no open findings)');
        for (const x of f) h.out(`${x.severity.padEnd(9)}${x.id.padEnd(22)}${x.package.padEnd(24)}${(x.installedVersion ?? '').padEnd(26)}${(x.fixedVersion ?? '-').padEnd(26)}${x.repository}@${short(x.digest)}  ${x.firstSeen}`);
      } finally {
        await store.close();
      }
    });

  const inv = program.command('inventory').description('what runs in a cluster, from kubectl');
  inv
    .command('import')
    .description('record where images run from `kubectl get pods -A -o json` (or the -o json of Deployments, DaemonSets, StatefulSets, Jobs, CronJobs); - reads standard input')
    .argument('<file>', 'kubectl JSON file, or - for standard input')
    .requiredOption('--cluster <name>', 'the cluster this inventory is of')
    .option('--store <target>', STORE_HELP)
    .option('--partial', 'the input is not the whole cluster: do not mark workloads missing from it as gone')
    .option('--format <format>', 'text or json', 'text')
    .action(async (file: string, o: { cluster: string; store?: string; partial?: boolean; format: string }) => {
      const { parseKubeInventory } = await import('../store/kube.js');
      const { MetaStore } = await import('../store/store.js');
      const text = (await readInput(file, 'inventory', 512 * 1024 * 1024)).toString('utf8');
      const at = new Date().toISOString();
      const parsed = parseKubeInventory(text, o.cluster, at);
      const store = await MetaStore.open(o.store ?? defaultStorePath());
      try {
        // A pods list is the picture of what it covers: the whole cluster when it spans several
        // namespaces (kubectl get pods -A), one namespace when it holds only that one (-n NS).
        // Workload lists (no pods) only add; --partial never resolves.
        const namespaces = [...new Set(parsed.records.map((x) => x.namespace))];
        const whole = !o.partial && parsed.pods > 0;
        const r = await store.recordDeployments(parsed.records, { at, ...(whole ? { resolveCluster: o.cluster, ...(namespaces.length === 1 ? { resolveNamespaces: namespaces } : {}) } : {}) });
        const withDigest = parsed.records.filter((x) => x.digest).length;
        const summary = { cluster: o.cluster, store: store.location, pods: parsed.pods, workloads: parsed.workloads, containers: parsed.records.length, withDigest, byReferenceOnly: parsed.records.length - withDigest, noLongerRunning: r.resolved, skipped: parsed.skipped };
        if (o.format === 'json') h.out(JSON.stringify(summary, null, 2));
        else {
          h.out(`${o.cluster}: ${parsed.records.length} container(s) from ${parsed.pods} pod(s) and ${parsed.workloads} workload(s); ${withDigest} with a digest, ${summary.byReferenceOnly} known by reference only; ${r.resolved} no longer running`);
          for (const s of parsed.skipped.slice(0, 20)) process.stderr.write(`  skipped ${s.item}: ${s.reason}\n`);
        }
      } finally {
        await store.close();
      }
    });

  program
    .command('api')
    .description('serve the store read-only over HTTP: JSON queries under /v1 and a Grafeas v1 read subset (docs/api.md)')
    .option('--store <target>', STORE_HELP)
    .option('--port <n>', 'port', '8080')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--token <token>', 'require this bearer token (default: $PLINTH_API_TOKEN; none on loopback only)')
    .option('--token-file <file>', 'read the bearer token from a file (a mounted Secret)')
    .option('--project <name>', 'Grafeas project name', 'plinth')
    .option('--catalog <file>', 'catalog, to resolve base tags')
    .action(async (o: { store?: string; port: string; host: string; token?: string; tokenFile?: string; project: string; catalog?: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new PlinthError('USAGE', `--port must be 0-65535, got "${o.port}"`);
      let token = o.token ?? process.env.PLINTH_API_TOKEN;
      if (o.tokenFile) token = (await readInput(o.tokenFile, 'token file')).toString('utf8').trim();
      if (token !== undefined && token.length < 16) throw new PlinthError('USAGE', 'the API token must be at least 16 characters');
      if (!token && !['127.0.0.1', '::1', 'localhost'].includes(o.host)) throw new PlinthError('USAGE', `serving the store on ${o.host} without a token would let anyone on the network read it: give --token or --token-file (or keep --host 127.0.0.1)`);
      const catalog = await catalogFor(o.catalog);
      const { startApi } = await import('../store/api.js');
      const store = await openForQuery(o.store);
      const api = await startApi(store, { port, host: o.host, ...(token ? { token } : {}), project: o.project, catalog });
      h.out(`plinth API on ${api.url} (store ${store.location})`);
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await api.close();
      await store.close();
    });

  const st = program.command('store').description('the metadata store itself');
  st.command('status')
    .description('where the store is, its schema version and what it holds (creates and migrates it when missing or older)')
    .option('--store <target>', STORE_HELP)
    .option('--format <format>', 'text or json', 'text')
    .action(async (o: { store?: string; format: string }) => {
      const { MetaStore } = await import('../store/store.js');
      const { SCHEMA_VERSION } = await import('../store/schema.js');
      const store = await MetaStore.open(o.store ?? defaultStorePath());
      try {
        const s = { store: store.location, dialect: store.dialect, schemaVersion: SCHEMA_VERSION, ...(await store.stats()) };
        h.out(o.format === 'json' ? JSON.stringify(s, null, 2) : Object.entries(s).map(([k, v]) => `${k.padEnd(14)}${v}`).join('\n'));
      } finally {
        await store.close();
      }
    });
}
