/**
 * dpkg's database of installed packages: `var/lib/dpkg/status`, and the one-file-per-package
 * `var/lib/dpkg/status.d/<pkg>` of Google's distroless images (each file is the package's
 * control file, usually without a Status field; the `<pkg>.md5sums` files beside them are file
 * lists, not packages).
 *
 * Pure: text in, packages and findings out. Corrupt input gives findings, never a throw.
 */
import { normalizeImagePath, type OsInfo } from './os.js';
import { FindingSink, packageUrl, type Finding, type Package, type ParseResult } from './types.js';

export const DPKG_STATUS = 'var/lib/dpkg/status';
export const DPKG_STATUS_DIR = 'var/lib/dpkg/status.d/';
/** What the dpkg analyzer wants: the status file, and every file directly in the status.d directory (see {@link isDpkgPath}). */
export const DPKG_PATHS: string[] = [DPKG_STATUS, DPKG_STATUS_DIR];

/** True for `var/lib/dpkg/status` and `var/lib/dpkg/status.d/<name>` (not `*.md5sums`, not deeper). */
export function isDpkgPath(path: string): boolean {
  const p = normalizeImagePath(path);
  if (p === DPKG_STATUS) return true;
  if (!p.startsWith(DPKG_STATUS_DIR)) return false;
  const rest = p.slice(DPKG_STATUS_DIR.length);
  return rest !== '' && !rest.includes('/') && !rest.endsWith('.md5sums') && !rest.startsWith('.');
}

// ---------------------------------------------------------------------------------------------
// deb822 paragraphs
// ---------------------------------------------------------------------------------------------

export interface Paragraph {
  /** Field names lower-cased (deb822 names are case-insensitive); values with continuation lines joined by `\n`. */
  fields: Map<string, string>;
  /** 1-based line number of the paragraph's first field. */
  line: number;
}

/**
 * Split RFC822-style (deb822) text into paragraphs: fields `Name: value`, continuation lines
 * starting with a space or tab, paragraphs separated by blank (or whitespace-only) lines,
 * `#` comment lines skipped. Problems (a line that is neither a field nor a continuation, a
 * continuation with nothing to continue, a repeated field) are reported through `problem` and
 * the line is skipped.
 */
export function parseDeb822(text: string, problem: (line: number, message: string) => void = () => {}): Paragraph[] {
  const out: Paragraph[] = [];
  let cur: Paragraph | undefined;
  let lastKey: string | undefined;
  // After a bad line, its continuation lines are dropped quietly (one report per problem).
  let skipping = false;
  const lines = text.split('\n');
  for (let idx = 0; idx < lines.length; idx++) {
    let line = lines[idx]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const lineNo = idx + 1;
    if (/^[ \t]*$/.test(line)) {
      if (cur) out.push(cur);
      cur = undefined;
      lastKey = undefined;
      skipping = false;
      continue;
    }
    if (line.startsWith('#')) continue;
    if (line[0] === ' ' || line[0] === '\t') {
      if (skipping) continue;
      if (!cur || lastKey === undefined) {
        skipping = true;
        problem(lineNo, 'continuation line without a field to continue');
        continue;
      }
      cur.fields.set(lastKey, cur.fields.get(lastKey)! + '\n' + line.slice(1));
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0 || /[\s]/.test(line.slice(0, colon))) {
      problem(lineNo, `not a "Field: value" line: ${JSON.stringify(line.slice(0, 80))}`);
      lastKey = undefined;
      skipping = true;
      continue;
    }
    skipping = false;
    const key = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (!cur) cur = { fields: new Map(), line: lineNo };
    if (cur.fields.has(key)) {
      problem(lineNo, `field ${line.slice(0, colon)} repeated in one paragraph; the first value is kept`);
      lastKey = undefined;
      skipping = true;
      continue;
    }
    cur.fields.set(key, value);
    lastKey = key;
  }
  if (cur) out.push(cur);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

/**
 * dpkg states in which the package's files are on disk and configured. `half-installed`,
 * `unpacked`, `half-configured`, `config-files` and `not-installed` are not counted.
 */
const INSTALLED_STATES = new Set(['installed', 'triggers-pending', 'triggers-awaited']);
const WANTS = new Set(['unknown', 'install', 'hold', 'deinstall', 'purge']);
const EFLAGS = new Set(['ok', 'reinstreq']);

export interface DpkgStatusOptions {
  /** The OS, for the purls (can be filled in later with `withOs`). */
  os?: OsInfo;
  /**
   * How to treat a paragraph without a Status field: distroless status.d files are plain control
   * files and have none, so there it means installed; in the status file it is an error.
   * Default: true for status.d paths, false otherwise.
   */
  missingStatusMeansInstalled?: boolean;
}

/**
 * Parse a dpkg status file (or one distroless status.d file). A package counts as installed when
 * the third word of its Status (`want eflag state`) is `installed` (or a triggers state — the
 * files are on disk), whatever the selection: `hold ok installed` and even `deinstall ok
 * installed` (marked for removal, still on disk) are installed; `deinstall ok config-files`,
 * `purge ok not-installed`, `install ok half-installed`, `install ok unpacked` are not.
 */
export function parseDpkgStatus(data: Buffer | string, path: string, options: DpkgStatusOptions = {}): ParseResult {
  const evidence = normalizeImagePath(path);
  const sink = new FindingSink(evidence);
  const text = typeof data === 'string' ? data : data.toString('utf8');
  const missingOk = options.missingStatusMeansInstalled ?? evidence.startsWith(DPKG_STATUS_DIR);
  const paragraphs = parseDeb822(text, (line, message) => sink.add(`line ${line}: ${message}`));
  const packages: Package[] = [];
  for (const para of paragraphs) {
    const f = para.fields;
    const name = f.get('package');
    const where = `line ${para.line}`;
    if (!name) {
      sink.add(`${where}: paragraph without a Package field skipped`);
      continue;
    }
    if (!/^[a-z0-9][a-z0-9+.\-]*$/i.test(name)) {
      sink.add(`${where}: invalid package name ${JSON.stringify(name.slice(0, 80))} skipped`);
      continue;
    }
    const status = f.get('status');
    if (status === undefined) {
      if (!missingOk) {
        sink.add(`${where}: package ${name} has no Status field; skipped`);
        continue;
      }
    } else {
      const words = status.split(/\s+/).filter((w) => w !== '');
      if (words.length !== 3 || !WANTS.has(words[0]!) || !EFLAGS.has(words[1]!)) {
        sink.add(`${where}: package ${name} has an invalid Status ${JSON.stringify(status.slice(0, 80))}; skipped`);
        continue;
      }
      if (!INSTALLED_STATES.has(words[2]!)) continue;
    }
    const version = f.get('version');
    if (!version) {
      sink.add(`${where}: installed package ${name} has no Version; skipped`);
      continue;
    }
    if (/\s/.test(version)) {
      sink.add(`${where}: package ${name} has an invalid Version ${JSON.stringify(version.slice(0, 80))}; skipped`);
      continue;
    }
    let source = name;
    let sourceVersion = version;
    const src = f.get('source');
    if (src) {
      const m = /^(\S+)(?:\s*\(\s*([^()\s]+)\s*\))?$/.exec(src);
      if (m) {
        source = m[1]!;
        if (m[2]) sourceVersion = m[2];
      } else {
        sink.add(`${where}: package ${name} has an invalid Source ${JSON.stringify(src.slice(0, 80))}; using the package's own name`);
      }
    }
    const pkg: Omit<Package, 'purl'> = { name, version, type: 'deb', source, sourceVersion, evidence };
    const arch = f.get('architecture');
    if (arch) pkg.arch = arch;
    const maintainer = f.get('maintainer');
    if (maintainer) pkg.maintainer = maintainer;
    packages.push({ ...pkg, purl: packageUrl(pkg, options.os) });
  }
  return { packages, findings: sink.done() };
}

/**
 * Parse every dpkg database among `files` (see {@link isDpkgPath}): the status file and the
 * distroless status.d files, in path order.
 */
export function parseDpkgFiles(files: Map<string, Buffer>, os?: OsInfo): ParseResult {
  const packages: Package[] = [];
  const findings: Finding[] = [];
  const paths = [...files.keys()].filter(isDpkgPath).sort();
  for (const p of paths) {
    const r = parseDpkgStatus(files.get(p)!, p, os ? { os } : {});
    packages.push(...r.packages);
    findings.push(...r.findings);
  }
  return { packages, findings };
}

// ---------------------------------------------------------------------------------------------
// Licenses from usr/share/doc/<pkg>/copyright
// ---------------------------------------------------------------------------------------------

/** Where a package's copyright file lives. */
export function debianCopyrightPath(pkg: string): string {
  return `usr/share/doc/${pkg}/copyright`;
}

/**
 * The licenses a Debian copyright file names. For a machine-readable file (DEP-5, whose first
 * paragraph has a `Format:` field pointing at copyright-format), the short names on the first
 * line of every `License:` field, in order of appearance, without duplicates (`GPL-3+`,
 * `LGPL-2.1+ or GPL-2+`). For a free-form file, the names of `/usr/share/common-licenses/<X>`
 * files it refers to. Empty when nothing is found.
 */
export function debianCopyrightLicenses(text: string): string[] {
  const seen = new Set<string>();
  const add = (s: string) => {
    const v = s.trim().replace(/\s+/g, ' ');
    if (v !== '' && v.length <= 200) seen.add(v);
  };
  const paragraphs = parseDeb822(text);
  const format = paragraphs[0]?.fields.get('format') ?? '';
  if (/copyright-format|dep-?5/i.test(format)) {
    for (const para of paragraphs) {
      const lic = para.fields.get('license');
      if (lic === undefined) continue;
      add(lic.split('\n')[0]!);
    }
    return [...seen];
  }
  const re = /\/usr\/share\/common-licenses\/([A-Za-z0-9][A-Za-z0-9.+\-_]*[A-Za-z0-9+])/g;
  for (const m of text.matchAll(re)) add(m[1]!);
  return [...seen];
}
