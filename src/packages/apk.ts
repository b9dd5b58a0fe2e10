/**
 * apk's database of installed packages, `lib/apk/db/installed` (Alpine, Wolfi, Chainguard):
 * one block per package, blocks separated by blank lines, each line `X:value` with a one-letter
 * key — P name, V version, A arch, o origin (the source package), L license, m maintainer;
 * F/R/a/Z… describe files and are ignored here. A broken line is reported and skipped; the
 * parse goes on.
 *
 * Pure: text in, packages and findings out.
 */
import { normalizeImagePath, type OsInfo } from './os.js';
import { FindingSink, packageUrl, type Package, type ParseResult } from './types.js';

export const APK_INSTALLED = 'lib/apk/db/installed';
export const APK_PATHS: string[] = [APK_INSTALLED];

export function isApkPath(path: string): boolean {
  return normalizeImagePath(path) === APK_INSTALLED;
}

interface Block {
  line: number;
  fields: Map<string, string>;
}

export function parseApkInstalled(data: Buffer | string, path: string, os?: OsInfo): ParseResult {
  const evidence = normalizeImagePath(path);
  const sink = new FindingSink(evidence);
  const text = typeof data === 'string' ? data : data.toString('utf8');
  const blocks: Block[] = [];
  let cur: Block | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.trim() === '') {
      if (cur) blocks.push(cur);
      cur = undefined;
      continue;
    }
    if (line.length < 2 || line[1] !== ':' || !/^[A-Za-z]$/.test(line[0]!)) {
      sink.add(`line ${i + 1}: not a "X:value" line: ${JSON.stringify(line.slice(0, 80))}`);
      continue;
    }
    cur ??= { line: i + 1, fields: new Map() };
    const key = line[0]!;
    // Keys that repeat (F, R, a, Z, M: one per file) do not matter here; the first value of the rest wins.
    if (!cur.fields.has(key)) cur.fields.set(key, line.slice(2));
  }
  if (cur) blocks.push(cur);

  const packages: Package[] = [];
  for (const b of blocks) {
    const f = b.fields;
    const name = f.get('P')?.trim();
    const version = f.get('V')?.trim();
    if (!name) {
      // A block of file entries without a package (seen in damaged databases): report, go on.
      sink.add(`line ${b.line}: block without a package name (P:) skipped`);
      continue;
    }
    if (!version) {
      sink.add(`line ${b.line}: package ${name} has no version (V:); skipped`);
      continue;
    }
    if (/\s/.test(name) || /\s/.test(version)) {
      sink.add(`line ${b.line}: package ${JSON.stringify(name.slice(0, 80))} has an invalid name or version; skipped`);
      continue;
    }
    const pkg: Omit<Package, 'purl'> = {
      name,
      version,
      type: 'apk',
      source: f.get('o')?.trim() || name,
      sourceVersion: version,
      evidence,
    };
    const arch = f.get('A')?.trim();
    if (arch) pkg.arch = arch;
    const license = f.get('L')?.trim();
    if (license) pkg.license = license;
    const maintainer = f.get('m')?.trim();
    if (maintainer) pkg.maintainer = maintainer;
    packages.push({ ...pkg, purl: packageUrl(pkg, os) });
  }
  return { packages, findings: sink.done() };
}
