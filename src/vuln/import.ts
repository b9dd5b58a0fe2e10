/**
 * Filling the advisory store: local files and directories, OSV's per-ecosystem zip exports, and
 * mirror updates over HTTP(S).
 *
 * Accepted inputs, recognised by content (not by name):
 *   - OSV JSON: one record, or an array of records
 *   - a zip as OSV publishes them (`<Ecosystem>/all.zip`, one JSON record per entry)
 *   - Alpine secdb, YAML or JSON
 *   - directories, recursively (files named *.json, *.yaml, *.yml, *.zip; hidden ones skipped)
 *
 * One importPaths() call is one transaction: the store changes all at once or not at all if
 * something fails below the level of a single input (disk full, I/O error). A bad input is an
 * entry in `errors`, not a failed import: a file that cannot be parsed, a zip that is not a zip or
 * is corrupt (what it had added is rolled back), and each invalid record (the others in the same
 * file are imported).
 */
import { createWriteStream, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { LimitStream } from '../oci/digest.js';
import { unzipSync } from 'fflate';
import { describeError, PlinthError } from '../util/errors.js';
import { HttpClient } from '../registry/http.js';
import { checkOsvRecord, parseEcosystem, toStoredAdvisories, type EcosystemInfo } from './osv.js';
import { isSecdb, parseSecdbYaml, secdbToAdvisories } from './secdb.js';
import type { SourceInfo, VulnStore } from './store.js';

export interface ImportError {
  /** The input file; `archive.zip!entry.json` for an entry of a zip. */
  file: string;
  message: string;
}

export interface ImportReport {
  /** Input files read (a zip counts once). */
  files: number;
  /** Records stored. */
  records: number;
  /** Records not stored: the store has a newer copy, or nothing in them can be stored. */
  skipped: number;
  /** Problems, at most `maxErrors` of them (errorCount has the total). */
  errors: ImportError[];
  errorCount: number;
}

export interface ImportOptions {
  /** Keep only these ecosystems' data (keys as parseEcosystem gives them). */
  ecosystemFilter?: (info: EcosystemInfo) => boolean;
  /** Called after each file (and every few hundred zip entries). */
  onProgress?: (p: { file: string; records: number }) => void;
  /** Errors listed in the report (the rest are only counted). Default 1000. */
  maxErrors?: number;
}

const ZIP_BATCH = 500;

function isZip(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && ((b[2] === 3 && b[3] === 4) || (b[2] === 5 && b[3] === 6));
}

/**
 * Where JSON text first goes wrong, as an offset (V8's JSON.parse messages do not always say).
 * A small validating scanner, only run after JSON.parse failed.
 */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const fail = (): never => {
    throw i;
  };
  const str = () => {
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) return void i++;
      if (c < 0x20) fail();
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) (i += 2), fail();
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else (i++, fail());
      } else i++;
    }
    fail();
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail();
        str();
        ws();
        if (text[i] !== ':') fail();
        i++;
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') return void i++;
        else fail();
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') return void i++;
        else fail();
      }
    }
    if (c === '"') return str();
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) return void (i += lit.length);
    }
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m && m[0].length) return void (i += m[0].length);
    fail();
  };
  try {
    value();
    ws();
    if (i < text.length) fail();
  } catch (e) {
    if (typeof e === 'number') return Math.min(e, text.length);
    return -1; // e.g. nesting too deep for this scanner: no position, JSON.parse's message stands
  }
  return -1;
}

/** A JSON.parse failure as a message with the line and column where the text goes wrong. */
function jsonError(text: string, e: unknown): string {
  const msg = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ');
  const pos = jsonErrorOffset(text);
  if (pos < 0) return msg;
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  const what = pos >= text.length ? 'unexpected end of the file' : `unexpected ${JSON.stringify(text[pos])}`;
  return `${what} at line ${line}, column ${col}`;
}

class Importer {
  report: ImportReport = { files: 0, records: 0, skipped: 0, errors: [], errorCount: 0 };
  private readonly maxErrors: number;
  private sinceYield = 0;
  constructor(
    private readonly store: VulnStore,
    private readonly opts: ImportOptions,
  ) {
    this.maxErrors = opts.maxErrors ?? 1000;
  }

  error(file: string, message: string): void {
    this.report.errorCount++;
    if (this.report.errors.length < this.maxErrors) this.report.errors.push({ file, message });
  }

  private async breathe(): Promise<void> {
    if (++this.sinceYield >= 200) {
      this.sinceYield = 0;
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** Store one parsed value that should be an OSV record. */
  record(value: unknown, file: string, source: string, index?: number): void {
    const r = checkOsvRecord(value, index);
    if (!r.ok) {
      this.error(file, r.message);
      return;
    }
    const advs = toStoredAdvisories(r.record, this.opts.ecosystemFilter ? { ecosystemFilter: this.opts.ecosystemFilter } : {});
    if (advs.length === 0) {
      this.report.skipped++;
      return;
    }
    if (this.store.putAdvisories(advs, source) === 'written') this.report.records++;
    else this.report.skipped++;
  }

  /** A parsed document: secdb, an array of records or one record. */
  document(value: unknown, file: string, source: string): void {
    if (isSecdb(value)) {
      let converted;
      try {
        converted = secdbToAdvisories(value, file);
      } catch (e) {
        this.error(file, describeError(e).replace(`${file}: `, ''));
        return;
      }
      for (const p of converted.problems) this.error(file, p.replace(`${file}: `, ''));
      if (this.opts.ecosystemFilter && !this.opts.ecosystemFilter(parseEcosystem(converted.ecosystem))) {
        this.report.skipped += converted.advisories.length;
        return;
      }
      for (const adv of converted.advisories) {
        this.store.putAdvisories([adv], source);
        this.report.records++;
      }
      return;
    }
    if (Array.isArray(value)) {
      value.forEach((v, i) => this.record(v, file, source, i));
      return;
    }
    this.record(value, file, source);
  }

  /** A text file's content (not a zip). */
  text(bytes: Uint8Array, file: string, source: string): void {
    let text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const first = /\S/.exec(text)?.[0];
    if (first === undefined) {
      this.error(file, 'the file has no content (only whitespace)');
      return;
    }
    let value: unknown;
    if (first === '{' || first === '[' || /\.json$/i.test(file)) {
      try {
        value = JSON.parse(text);
      } catch (e) {
        this.error(file, `invalid JSON: ${jsonError(text, e)}`);
        return;
      }
    } else {
      try {
        value = parseSecdbYaml(text, file);
      } catch (e) {
        this.error(file, describeError(e).replace(`${file}`, '').replace(/^:\s*/, '').replace(/^(\d+:\d+): /, 'line $1: '));
        return;
      }
      if (value === null || typeof value !== 'object') {
        this.error(file, 'neither an OSV record (JSON) nor an Alpine secdb document');
        return;
      }
    }
    this.document(value, file, source);
  }

  /** A zip of OSV records. Everything it added is rolled back if the zip turns out to be corrupt. */
  async zip(bytes: Uint8Array, file: string, source: string, strict = false): Promise<void> {
    let names: string[];
    try {
      names = listZip(bytes);
    } catch (e) {
      const msg = `not a valid zip file (${describeError(e)}); is the download truncated or corrupt?`;
      if (strict) throw new PlinthError('ARCHIVE_INVALID', `${file}: ${msg}`);
      this.error(file, msg);
      return;
    }
    const entries = names.filter((n) => !n.endsWith('/') && /\.json$/i.test(n));
    const before = { ...this.report, errors: this.report.errors.length };
    try {
      await this.store.transaction(async () => {
        for (let i = 0; i < entries.length; i += ZIP_BATCH) {
          const batch = new Set(entries.slice(i, i + ZIP_BATCH));
          let files: Record<string, Uint8Array>;
          try {
            files = unzipSync(bytes, { filter: (f) => batch.has(f.name) });
          } catch (e) {
            throw new PlinthError('ARCHIVE_INVALID', `${file}: corrupt zip entry among ${[...batch][0]}…: ${describeError(e)}`);
          }
          for (const name of batch) {
            const data = files[name];
            if (!data) continue;
            const where = `${file}!${name}`;
            if (data.length === 0) {
              this.error(where, 'empty file (0 bytes)');
              continue;
            }
            this.text(data, where, source);
          }
          this.opts.onProgress?.({ file, records: this.report.records });
          await new Promise<void>((r) => setImmediate(r));
        }
      });
    } catch (e) {
      if (strict || !(e instanceof PlinthError && e.code === 'ARCHIVE_INVALID')) throw e;
      // Roll the counters back with the rows.
      this.report.records = before.records;
      this.report.skipped = before.skipped;
      this.report.errorCount = before.errorCount;
      this.report.errors.length = before.errors;
      this.error(file, `${describeError(e).replace(`${file}: `, '')} (nothing from this zip was imported)`);
    }
  }

  /** One file, whatever it holds. */
  async file(path: string, source: string): Promise<void> {
    this.report.files++;
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      this.error(path, describeError(e));
      return;
    }
    if (bytes.length === 0) {
      this.error(path, 'empty file (0 bytes)');
      return;
    }
    if (isZip(bytes)) await this.zip(bytes, path, source);
    else if (/\.zip$/i.test(path)) this.error(path, 'not a zip file (it does not start with a zip header); expected an OSV export such as Debian/all.zip');
    else this.text(bytes, path, source);
    this.opts.onProgress?.({ file: path, records: this.report.records });
    await this.breathe();
  }

  /** A file or a directory (recursively). */
  async path(input: string, source: string, seen = new Set<string>()): Promise<void> {
    let st;
    try {
      st = statSync(input);
    } catch (e) {
      this.report.files++;
      this.error(input, describeError(e));
      return;
    }
    if (!st.isDirectory()) {
      await this.file(input, source);
      return;
    }
    let real: string;
    try {
      real = realpathSync(input);
    } catch {
      real = input;
    }
    if (seen.has(real)) return;
    seen.add(real);
    let names: string[];
    try {
      names = readdirSync(input).sort();
    } catch (e) {
      this.error(input, describeError(e));
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const p = join(input, name);
      let isDir = false;
      try {
        isDir = statSync(p).isDirectory();
      } catch {
        /* reported by path() */
      }
      if (isDir || /\.(json|ya?ml|zip)$/i.test(name)) await this.path(p, source, seen);
    }
  }
}

/** Entry names of a zip (throws on anything that is not a complete zip). */
function listZip(bytes: Uint8Array): string[] {
  const names: string[] = [];
  unzipSync(bytes, {
    filter: (f) => {
      names.push(f.name);
      return false;
    },
  });
  return names;
}

/**
 * Import files, directories and zips (see the module comment). Each input path is recorded in
 * the store's `sources` with its counts.
 */
export async function importPaths(store: VulnStore, paths: readonly string[], opts: ImportOptions = {}): Promise<ImportReport> {
  const imp = new Importer(store, opts);
  await store.transaction(async () => {
    for (const p of paths) {
      const abs = resolve(p);
      const before = { ...imp.report };
      await imp.path(abs, abs);
      let kind = 'file';
      try {
        kind = statSync(abs).isDirectory() ? 'directory' : 'file';
      } catch {
        /* missing: still recorded */
      }
      store.recordSource({
        name: abs,
        kind,
        importedAt: new Date().toISOString(),
        files: imp.report.files - before.files,
        records: imp.report.records - before.records,
        skipped: imp.report.skipped - before.skipped,
        errors: imp.report.errorCount - before.errorCount,
      });
    }
  });
  return imp.report;
}

// ---------------------------------------------------------------------------------------------
// Mirror updates
// ---------------------------------------------------------------------------------------------

/** OSV's public bucket: `<mirror>/<Ecosystem>/all.zip`, one zip per ecosystem (all releases). */
export const OSV_MIRROR = 'https://osv-vulnerabilities.storage.googleapis.com';

export interface MirrorOptions extends ImportOptions {
  /** Refuse downloads larger than this. Default 2 GiB. */
  maxBytes?: number;
  /** Time to wait for the answer, and for each stretch of silence in the body. Default 60 s. */
  timeoutMs?: number;
  /** Retries of network failures and 408/429/5xx answers. Default 2. */
  retries?: number;
  insecureTls?: boolean;
  ca?: string | Buffer;
  /** Where downloads are written before import. Default the OS temp dir. */
  tmpDir?: string;
  /** Download even when the mirror says the zip did not change since the last update. */
  force?: boolean;
}

export interface MirrorDownload {
  ecosystem: string;
  url: string;
  bytes: number;
  /** The mirror answered 304: nothing changed since the last update. */
  notModified: boolean;
}

export interface MirrorReport extends ImportReport {
  downloads: MirrorDownload[];
}


/**
 * Download `<mirror>/<Base>/all.zip` for each ecosystem base named in `ecosystems` (`Debian:12`
 * and `Debian` both mean the `Debian` export) and import them. When a release is named
 * (`Debian:12`), only that release's data is kept; a bare base (`Debian`) keeps every release.
 *
 * All downloads finish and are checked to be complete zips before anything is imported, and the
 * import is one transaction: on any failure (HTTP error, timeout, size limit, truncated or
 * corrupt zip) this throws a PlinthError saying what and where, and the store is as it was.
 * Invalid records inside a good zip are reported in `errors`, like importPaths.
 */
export async function updateFromMirror(store: VulnStore, mirrorUrl: string, ecosystems: readonly string[], opts: MirrorOptions = {}): Promise<MirrorReport> {
  if (ecosystems.length === 0) throw new PlinthError('USAGE', 'name at least one ecosystem to update (e.g. Debian:12, Ubuntu:22.04:LTS, Alpine:v3.19)');
  let base: URL;
  try {
    base = new URL(mirrorUrl);
  } catch {
    throw new PlinthError('USAGE', `mirror URL "${mirrorUrl}" is not a URL (e.g. ${OSV_MIRROR})`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new PlinthError('USAGE', `mirror URL "${mirrorUrl}" must be http:// or https://`);
  const root = base.toString().replace(/\/+$/, '');

  // Base name → the keys to keep (undefined: all of it).
  const wanted = new Map<string, Set<string> | undefined>();
  for (const e of ecosystems) {
    const info = parseEcosystem(e);
    if (!info.base) throw new PlinthError('USAGE', `"${e}" is not an ecosystem name`);
    const whole = info.key === info.base;
    if (wanted.has(info.base) && wanted.get(info.base) === undefined) continue;
    if (whole) wanted.set(info.base, undefined);
    else wanted.set(info.base, new Set([...(wanted.get(info.base) ?? []), info.key]));
  }

  const http = new HttpClient({
    timeoutMs: opts.timeoutMs ?? 60_000,
    retries: opts.retries ?? 2,
    ...(opts.insecureTls ? { insecureTls: true } : {}),
    ...(opts.ca ? { ca: opts.ca } : {}),
  });
  const maxBytes = opts.maxBytes ?? 2 * 1024 * 1024 * 1024;
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'plinth-osv-'));
  const downloads: Array<MirrorDownload & { path?: string; keys: Set<string> | undefined; source: string; etag?: string; lastModified?: string }> = [];
  try {
    for (const [eco, keys] of wanted) {
      const url = `${root}/${encodeURIComponent(eco)}/all.zip`;
      // What is shown and stored never carries credentials written into the mirror URL.
      const shown = url.replace(/\/\/[^/@]*@/, '//');
      const source = keys ? `${shown}#${[...keys].sort().join(',')}` : shown;
      const prev = opts.force ? undefined : store.source(source);
      const headers: Record<string, string> = {};
      if (prev?.etag) headers['if-none-match'] = prev.etag;
      else if (prev?.lastModified) headers['if-modified-since'] = prev.lastModified;
      let res;
      try {
        res = await http.request({ method: 'GET', url, headers });
      } catch (e) {
        throw new PlinthError(e instanceof PlinthError ? e.code : 'NETWORK', `cannot download ${shown}: ${describeError(e)}`, undefined, { cause: e });
      }
      if (res.status === 304) {
        await res.discard();
        downloads.push({ ecosystem: eco, url: shown, bytes: 0, notModified: true, keys, source });
        continue;
      }
      if (res.status !== 200) {
        await res.discard();
        const hint =
          res.status === 404
            ? ` (no "${eco}" export there: the mirror should hold <Ecosystem>/all.zip as OSV publishes it, e.g. Debian/all.zip)`
            : res.status >= 500
              ? ' (the mirror failed; try again later)'
              : '';
        throw new PlinthError('NETWORK', `cannot download ${shown}: the mirror answered HTTP ${res.status}${hint}`, { status: res.status, url: shown });
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        res.body.destroy();
        throw new PlinthError('IO', `cannot download ${shown}: it is ${declared} bytes, more than the ${maxBytes}-byte limit`);
      }
      const path = join(dir, `${eco.replace(/[^A-Za-z0-9._-]/g, '_')}.zip`);
      const counter = new LimitStream(maxBytes, (m) => `download ${shown} is larger than the ${m}-byte limit`);
      try {
        await pipeline(res.body, counter, createWriteStream(path));
      } catch (e) {
        const what = e instanceof PlinthError ? e.message : `the connection failed after ${counter.n} bytes (${describeError(e)})`;
        throw new PlinthError(e instanceof PlinthError ? e.code : 'NETWORK', `cannot download ${shown}: ${what}`, undefined, { cause: e });
      }
      if (Number.isFinite(declared) && counter.n !== declared) {
        throw new PlinthError('NETWORK', `cannot download ${shown}: got ${counter.n} of ${declared} bytes (truncated)`);
      }
      const etag = typeof res.headers.etag === 'string' ? res.headers.etag : undefined;
      const lastModified = typeof res.headers['last-modified'] === 'string' ? res.headers['last-modified'] : undefined;
      downloads.push({ ecosystem: eco, url: shown, bytes: counter.n, notModified: false, path, keys, source, ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) });
    }

    // Every download must be a complete zip before the store is touched.
    const zips: Array<{ d: (typeof downloads)[number]; bytes: Buffer }> = [];
    for (const d of downloads) {
      if (!d.path) continue;
      const bytes = readFileSync(d.path);
      if (!isZip(bytes)) throw new PlinthError('ARCHIVE_INVALID', `${d.url} is not a zip file (${bytes.length} bytes starting ${JSON.stringify(bytes.subarray(0, 16).toString('latin1'))})`);
      try {
        listZip(bytes);
      } catch (e) {
        throw new PlinthError('ARCHIVE_INVALID', `${d.url} is not a valid zip (${describeError(e)}): the download is truncated or corrupt; nothing was imported`);
      }
      zips.push({ d, bytes });
    }

    const report: MirrorReport = { files: 0, records: 0, skipped: 0, errors: [], errorCount: 0, downloads: [] };
    await store.transaction(async () => {
      for (const { d, bytes } of zips) {
        const keys = d.keys;
        const filter = (info: EcosystemInfo) => info.base === d.ecosystem && (!keys || keys.has(info.key)) && (!opts.ecosystemFilter || opts.ecosystemFilter(info));
        const imp = new Importer(store, { ...opts, ecosystemFilter: filter });
        imp.report.files = 1;
        try {
          await imp.zip(bytes, d.url, d.source, true);
        } catch (e) {
          if (e instanceof PlinthError && e.code === 'ARCHIVE_INVALID') {
            throw new PlinthError('ARCHIVE_INVALID', `${e.message}; nothing was imported`, undefined, { cause: e });
          }
          throw e;
        }
        const r = imp.report;
        report.files += r.files;
        report.records += r.records;
        report.skipped += r.skipped;
        report.errorCount += r.errorCount;
        for (const err of r.errors) if (report.errors.length < (opts.maxErrors ?? 1000)) report.errors.push(err);
        const info: SourceInfo = {
          name: d.source,
          kind: 'mirror',
          importedAt: new Date().toISOString(),
          files: 1,
          records: r.records,
          skipped: r.skipped,
          errors: r.errorCount,
          ...(d.etag ? { etag: d.etag } : {}),
          ...(d.lastModified ? { lastModified: d.lastModified } : {}),
        };
        store.recordSource(info);
      }
    });
    report.downloads = downloads.map(({ ecosystem, url, bytes, notModified }) => ({ ecosystem, url, bytes, notModified }));
    return report;
  } finally {
    http.close();
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

export interface StoreStatus {
  path: string;
  schemaVersion: number;
  sizeBytes: number;
  created?: string;
  lastImport?: string;
  advisories: number;
  affectedRows: number;
  ecosystems: Array<{ ecosystem: string; advisories: number; withdrawn: number; packages: number; matchable: boolean }>;
  sources: SourceInfo[];
}

/** What the store holds: counts per ecosystem, the last import of each source, schema version, size. */
export function status(store: VulnStore): StoreStatus {
  const t = store.totals();
  const created = store.meta('created');
  const lastImport = store.meta('last_import');
  return {
    path: store.path,
    schemaVersion: store.schemaVersion,
    sizeBytes: store.sizeBytes(),
    ...(created ? { created } : {}),
    ...(lastImport ? { lastImport } : {}),
    advisories: t.advisories,
    affectedRows: t.affected,
    ecosystems: store.ecosystemCounts(),
    sources: store.sources(),
  };
}

