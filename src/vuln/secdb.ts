/**
 * Alpine secdb (https://secdb.alpinelinux.org/, YAML or JSON):
 *
 *   distroversion: v3.10
 *   reponame: main
 *   packages:
 *     - pkg:
 *         name: ansible            # the origin (source) package
 *         secfixes:
 *           2.8.4-r0: [CVE-2019-10206, CVE-2019-10217]
 *           0: [CVE-2020-1234]      # "0": never affected in this branch (Trivy's reading)
 *
 * converted to the store's advisories: ecosystem `Alpine:v3.10`, one advisory per vulnerability
 * id, package = origin name, a range `introduced 0, fixed <version>` per fix (or a `not_affected`
 * marker for "0"). Entries such as `CVE-2019-5060 TALOS-2019-0844` keep the first usable id and
 * list the rest as aliases; `CVE 2018-16859` (a typo in the real data) is read as CVE-2018-16859;
 * `CVE-????-?????  XSA-295` becomes XSA-295.
 */
import { parseDocument } from 'yaml';
import { PlinthError } from '../util/errors.js';
import { parseEcosystem, type AffectedRow, type StoredAdvisory } from './osv.js';

/** True when a parsed document looks like an Alpine secdb file. */
export function isSecdb(value: unknown): boolean {
  return !!value && typeof value === 'object' && !Array.isArray(value) && 'distroversion' in value && 'packages' in value;
}

/**
 * Parse secdb YAML with the failsafe schema so that version keys stay strings
 * (the core schema would read `2.10:` as the number 2.1).
 */
export function parseSecdbYaml(text: string, file: string): unknown {
  const doc = parseDocument(text, { schema: 'failsafe', prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw new PlinthError('ADVISORY_INVALID', `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  return doc.toJS({ maxAliasCount: 100 });
}

const ID_TOKEN = /^[A-Z][A-Z0-9]*-[A-Za-z0-9._:-]*[0-9A-Za-z]$/;

/** The usable ids in one secfixes entry: [id, ...aliases], or [] when there is none. */
export function secfixIds(entry: string): string[] {
  const tokens = entry.trim().split(/\s+/).filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    let t = tokens[i]!;
    if (/^CVE$/i.test(t) && /^\d{4}-\d+$/.test(tokens[i + 1] ?? '')) t = `CVE-${tokens[++i]}`;
    t = t.replace(/[,;]+$/, '');
    if (ID_TOKEN.test(t) && !out.includes(t)) out.push(t);
  }
  return out;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return undefined;
}

/**
 * Convert a parsed secdb document. Throws ADVISORY_INVALID when the document itself is unusable
 * (no distroversion, packages not a list); problems with single entries are returned in
 * `problems` and the rest is converted.
 */
export function secdbToAdvisories(doc: unknown, file: string): { advisories: StoredAdvisory[]; problems: string[]; ecosystem: string } {
  if (!isSecdb(doc)) throw new PlinthError('ADVISORY_INVALID', `${file}: not an Alpine secdb document (needs distroversion and packages)`);
  const d = doc as Record<string, unknown>;
  const distro = str(d.distroversion)?.trim();
  if (!distro) throw new PlinthError('ADVISORY_INVALID', `${file}: distroversion must be a string like v3.19`);
  const info = parseEcosystem(`Alpine:${distro}`);
  if (info.kind !== 'apk') throw new PlinthError('ADVISORY_INVALID', `${file}: distroversion "${distro}" is not an Alpine release like v3.19`);
  const packages = d.packages ?? [];
  if (!Array.isArray(packages)) throw new PlinthError('ADVISORY_INVALID', `${file}: packages must be a list`);
  const problems: string[] = [];
  const byId = new Map<string, StoredAdvisory>();
  packages.forEach((entry: unknown, i: number) => {
    const pkg = entry && typeof entry === 'object' ? (entry as { pkg?: unknown }).pkg : undefined;
    const name = pkg && typeof pkg === 'object' ? str((pkg as { name?: unknown }).name)?.trim() : undefined;
    if (!name) {
      problems.push(`${file}: packages[${i}]: pkg.name is required`);
      return;
    }
    const secfixes = (pkg as { secfixes?: unknown }).secfixes;
    if (secfixes === undefined || secfixes === null || secfixes === '') return;
    if (typeof secfixes !== 'object' || Array.isArray(secfixes)) {
      problems.push(`${file}: package "${name}": secfixes must be a map of version to ids`);
      return;
    }
    for (const [versionKey, ids] of Object.entries(secfixes as Record<string, unknown>)) {
      const version = versionKey.trim();
      if (!version) {
        problems.push(`${file}: package "${name}": empty fixed version`);
        continue;
      }
      const list = Array.isArray(ids) ? ids : ids === null || ids === '' ? [] : [ids];
      for (const raw of list) {
        const text = str(raw);
        if (text === undefined || !text.trim()) continue;
        const [id, ...aliases] = secfixIds(text);
        if (!id) {
          problems.push(`${file}: package "${name}" ${version}: "${text}" names no vulnerability id`);
          continue;
        }
        let adv = byId.get(id);
        if (!adv) {
          adv = {
            id,
            ecosystem: info.key,
            origin: 'alpine-secdb',
            modified: null,
            published: null,
            withdrawn: null,
            aliases: [],
            related: [],
            summary: null,
            details: null,
            severity: [],
            textSeverity: null,
            rows: [],
          };
          byId.set(id, adv);
        }
        for (const a of aliases) if (!adv.aliases.includes(a)) adv.aliases.push(a);
        const row: AffectedRow =
          version === '0' ? { package: name, kind: 'not_affected' } : { package: name, kind: 'range', introduced: '0', fixed: version };
        adv.rows.push(row);
      }
    }
  });
  return { advisories: [...byId.values()], problems, ecosystem: info.key };
}
