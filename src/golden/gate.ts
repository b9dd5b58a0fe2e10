import * as z from 'zod/mini';
import { described } from '../util/zod.js';
import { PlinthError } from '../util/errors.js';
import { parseYamlFile } from '../util/yamlfile.js';
import type { ImageSource } from '../source/types.js';
import type { Catalog } from '../provenance/catalog.js';
import type { VulnStore } from '../vuln/store.js';
import { scan, type ScanResult, type ScanVulnerability } from '../vuln/scan.js';

/**
 * `plinth golden gate`: a candidate base is refused when it has findings at or above a severity
 * that no unexpired exception covers. Exceptions are a reviewed YAML file: each names an advisory
 * (and optionally a package), why, and until when.
 */

const ExceptionSchema = z.strictObject({
  id: described(z.string().check(z.minLength(1)), 'advisory id or alias (CVE-\u2026, DSA-\u2026, DEBIAN-CVE-\u2026)'),
  package: described(z.optional(z.string().check(z.minLength(1))), 'only for this package'),
  expires: described(z.string(), 'date or time after which the exception no longer applies'),
  reason: z.string().check(z.minLength(1)),
});
const ExceptionsSchema = z.strictObject({
  apiVersion: z._default(z.literal('plinth.dev/v1alpha1'), 'plinth.dev/v1alpha1'),
  kind: z._default(z.literal('GateExceptions'), 'GateExceptions'),
  exceptions: z._default(z.array(ExceptionSchema), []),
});
export type GateException = z.infer<typeof ExceptionSchema>;

export function parseExceptions(text: string, file: string): GateException[] {
  const doc = parseYamlFile(text, ExceptionsSchema, file);
  for (const e of doc.exceptions) if (Number.isNaN(Date.parse(e.expires))) throw new PlinthError('USAGE', `${file}: exception for ${e.id}: expires "${e.expires}" is not a date`);
  return doc.exceptions;
}

const ORDER = ['UNKNOWN', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

export interface GateResult {
  passed: boolean;
  image: string;
  failOn: string[];
  blocking: Array<ScanVulnerability & { platform: string | null }>;
  excepted: Array<{ id: string; package: string; platform: string | null; exception: GateException }>;
  /** Exceptions that matched a finding but had expired. */
  expired: Array<{ id: string; package: string; expires: string }>;
  results: ScanResult[];
}

function covers(x: GateException, v: ScanVulnerability): boolean {
  return (x.id === v.id || v.aliases.includes(x.id)) && (!x.package || x.package === v.package || x.package === v.source);
}

export async function gate(source: ImageSource, db: VulnStore, o: { catalog: Catalog; failOn: string[]; exceptions?: GateException[]; now?: number }): Promise<GateResult> {
  for (const s of o.failOn) if (!ORDER.includes(s)) throw new PlinthError('USAGE', `--fail-on: unknown severity "${s}" (use ${ORDER.join(',')})`);
  const now = o.now ?? Date.now();
  const results = await scan(source, 'all', db, { catalog: o.catalog });
  const out: GateResult = { passed: true, image: source.description, failOn: o.failOn, blocking: [], excepted: [], expired: [], results };
  for (const r of results) {
    for (const v of r.vulnerabilities) {
      if (!o.failOn.includes(v.severity)) continue;
      const matching = (o.exceptions ?? []).filter((x) => covers(x, v));
      const live = matching.find((x) => Date.parse(x.expires) > now);
      if (live) out.excepted.push({ id: v.id, package: v.package, platform: r.image.platform, exception: live });
      else {
        for (const x of matching) out.expired.push({ id: v.id, package: v.package, expires: x.expires });
        out.blocking.push({ ...v, platform: r.image.platform });
      }
    }
  }
  out.passed = out.blocking.length === 0;
  return out;
}

/** `HIGH` means HIGH and above; a list is taken as given. */
export function failOnList(s: string): string[] {
  const parts = s.split(',').map((x) => x.trim().toUpperCase()).filter(Boolean);
  for (const p of parts) if (!ORDER.includes(p)) throw new PlinthError('USAGE', `--fail-on: unknown severity "${p}" (use ${ORDER.join(',')})`);
  if (parts.length === 1) return ORDER.slice(ORDER.indexOf(parts[0]!));
  return parts;
}
