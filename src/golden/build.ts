import path from 'node:path';
import * as z from 'zod/mini';
import { described } from '../util/zod.js';
import { PlinthError, describeError } from '../util/errors.js';
import { parseYamlFile } from '../util/yamlfile.js';
import { parsePlatform } from '../oci/types.js';
import { openSource, type OpenOptions } from '../source/open.js';
import { loadCatalog, saveCatalog } from '../provenance/catalog.js';
import { importRootfs } from './import.js';
import { gate, failOnList, parseExceptions } from './gate.js';
import { publish } from './publish.js';
import { readFile } from 'node:fs/promises';

/**
 * `plinth golden build --config golden.yaml`: import → gate → publish for every line, the job a
 * scheduled CI pipeline runs daily. Idempotent: the import is reproducible, so unchanged inputs
 * give the digest already published and approved, and nothing is pushed, signed or catalogued.
 * A line that fails (bad input, gate, registry) does not stop the others; its outcome says why.
 */

const str1 = () => z.string().check(z.minLength(1));

const LineSchema = z.strictObject({
  line: described(str1(), 'catalog line, e.g. debian-12'),
  name: described(str1(), 'REGISTRY/REPO'),
  version: str1(),
  to: described(str1(), 'REGISTRY/REPO:TAG to publish to'),
  sourceUrl: z.optional(z.string()),
  sourceDateEpoch: z.optional(z.number().check(z.int(), z.gte(0))),
  rootfs: z.array(z.strictObject({ platform: z._default(z.string(), 'linux/amd64'), file: str1(), sha256: z.optional(z.string()) })).check(z.minLength(1)),
  checksums: z.optional(z.string()),
  checksumsSig: z.optional(z.string()),
  keyring: z.optional(z.string()),
  labels: z.optional(z.record(z.string(), z.string())),
  gate: z._default(z.strictObject({ failOn: z._default(z.string(), 'HIGH'), exceptions: z.optional(z.string()) }), { failOn: 'HIGH' }),
});

const BuildSchema = z.strictObject({
  apiVersion: z.literal('plinth.dev/v1alpha1'),
  kind: z.literal('GoldenBuild'),
  catalog: described(z.optional(z.string()), 'catalog file (relative to this file); default the user\'s catalog'),
  key: described(str1(), 'cosign private key (password from $COSIGN_PASSWORD)'),
  db: described(z.optional(z.string()), 'advisory database for the gate and the scan attestation'),
  lines: z.array(LineSchema).check(z.minLength(1)),
});
export type BuildConfig = z.infer<typeof BuildSchema>;

export function parseBuildConfig(text: string, file: string): BuildConfig {
  return parseYamlFile(text, BuildSchema, file);
}

export interface LineOutcome {
  line: string;
  outcome: 'published' | 'unchanged' | 'would publish' | 'refused by the gate' | 'failed';
  digest: string | null;
  detail: string | null;
}

export async function runBuild(cfg: BuildConfig, o: { configDir: string; registry: OpenOptions; line?: string; dryRun?: boolean; log: (m: string) => void }): Promise<LineOutcome[]> {
  const rel = (p: string) => path.resolve(o.configDir, p);
  const { defaultCatalogPath, defaultDbPath } = await import('../util/paths.js');
  const catalogFile = cfg.catalog ? rel(cfg.catalog) : defaultCatalogPath();
  const [{ openSigner }, { openStore }] = await Promise.all([import('../sign/keys.js'), import('../vuln/store.js')]);
  const signer = o.dryRun ? undefined : await openSigner(rel(cfg.key));
  const db = openStore(cfg.db ? rel(cfg.db) : defaultDbPath(), { readonly: true });
  const out: LineOutcome[] = [];
  try {
    const lines = cfg.lines.filter((l) => !o.line || l.line === o.line);
    if (!lines.length) throw new PlinthError('USAGE', `no line ${o.line} in the config`);
    for (const l of lines) {
      try {
        o.log(`${l.line}: importing ${l.rootfs.map((r) => r.file).join(', ')}`);
        if (l.rootfs.length > 1 && l.rootfs.some((r) => r.sha256)) throw new PlinthError('USAGE', `${l.line}: per-input sha256 with several inputs: use checksums`);
        const imported = await importRootfs(l.rootfs.map((r) => ({ platform: parsePlatform(r.platform), file: rel(r.file) })), {
          name: l.name,
          version: l.version,
          ...(l.sourceUrl ? { sourceUrl: l.sourceUrl } : {}),
          ...(l.sourceDateEpoch !== undefined ? { sourceDateEpoch: l.sourceDateEpoch } : {}),
          labels: l.labels ?? {},
          verify: { ...(l.rootfs[0]?.sha256 && l.rootfs.length === 1 ? { sha256: l.rootfs[0].sha256 } : {}), ...(l.checksums ? { checksums: rel(l.checksums) } : {}), ...(l.checksumsSig ? { checksumsSig: rel(l.checksumsSig) } : {}), ...(l.keyring ? { keyring: rel(l.keyring) } : {}) },
        });
        const catalog = await loadCatalog(catalogFile);
        const approved = catalog.bases.some((b) => b.status === 'approved' && (b.index === imported.digest || b.digest === imported.digest));
        const dead = catalog.bases.find((b) => b.status === 'deprecated' && (b.index === imported.digest || b.digest === imported.digest));
        if (dead) {
          out.push({ line: l.line, outcome: 'refused by the gate', digest: imported.digest, detail: `the inputs give ${imported.digest}, which is deprecated in the catalog${dead.reason ? ` (${dead.reason})` : ''}: update the inputs` });
          continue;
        }
        let published: string | undefined;
        try {
          const remote = await openSource(l.to, o.registry);
          try {
            published = (await remote.resolve()).descriptor.digest;
          } finally {
            await remote.close();
          }
        } catch {
          published = undefined;
        }
        if (approved && published === imported.digest) {
          out.push({ line: l.line, outcome: 'unchanged', digest: imported.digest, detail: `${l.to} already is this approved digest; nothing published` });
          continue;
        }
        const exceptions = l.gate.exceptions ? parseExceptions(await readFile(rel(l.gate.exceptions), 'utf8'), rel(l.gate.exceptions)) : [];
        const g = await gate(imported.source, db, { catalog, failOn: failOnList(l.gate.failOn), exceptions });
        if (!g.passed) {
          out.push({ line: l.line, outcome: 'refused by the gate', digest: imported.digest, detail: g.blocking.slice(0, 5).map((b) => `${b.severity} ${b.id} in ${b.package}`).join('; ') });
          continue;
        }
        if (o.dryRun) {
          out.push({ line: l.line, outcome: 'would publish', digest: imported.digest, detail: `gate passed; ${l.to}` });
          continue;
        }
        const r = await publish(imported.source, catalog, { to: l.to, signer: signer!, line: l.line, registry: o.registry, db, onStep: (m) => o.log(`${l.line}: ${m}`) });
        await saveCatalog(catalogFile, catalog);
        out.push({ line: l.line, outcome: 'published', digest: r.digest, detail: `${r.reference}${r.catalog.superseded.length ? `; superseded ${r.catalog.superseded.length} entr${r.catalog.superseded.length === 1 ? 'y' : 'ies'}` : ''}` });
      } catch (e) {
        out.push({ line: l.line, outcome: 'failed', digest: null, detail: describeError(e) });
      }
    }
  } finally {
    db.close();
  }
  return out;
}
