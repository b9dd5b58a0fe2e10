import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { PlinthError, describeError } from '../util/errors.js';
import type { PolicyContext } from '../policy/match.js';
import type { CliHelpers } from './provenance.js';
import { collect, keyValues } from './input.js';
import type { Catalog } from '../provenance/catalog.js';
import type { LoadedPolicy } from '../policy/load.js';
import type { ImageFacts } from '../policy/facts.js';
import type { Decision, RuleResult } from '../policy/evaluate.js';
import type { PolicyRule } from '../policy/schema.js';
import { defaultCatalogPath } from '../util/paths.js';
import { addStoreOption, openRecorder } from './store.js';

/** The library modules this file's commands run, imported when a command runs (start-up). */
async function lib() {
  const [m0, m1, m2, m3, m4, m5] = await Promise.all([import('../source/open.js'), import('../provenance/catalog.js'), import('../policy/load.js'), import('../policy/facts.js'), import('../policy/evaluate.js'), import('../policy/schema.js')]);
  return { ...m0, ...m1, ...m2, ...m3, ...m4, ...m5 };
}


/**
 * `plinth check IMAGE… --policy FILE`: every rule of the policy against every image; each
 * decision with its reason and evidence. Exit 0 when every image is allowed, 1 when an enforce
 * rule denies one, 2 on usage or input errors (bad flags, invalid policy or catalog, an invalid
 * reference, an image that cannot be read).
 */
const FORMATS = ['table', 'json', 'sarif'] as const;

interface CheckFlags extends Record<string, unknown> {
  policy: string;
  catalog?: string;
  db?: string;
  format: string;
  platform?: string;
  namespace?: string;
  label?: string[];
  output?: string;
  store?: unknown;
  manifest?: string;
}

/** Any failure before the images are judged is a usage / input error (exit 2). */
async function asUsage<T>(f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof PlinthError && e.code === 'USAGE') throw e;
    throw new PlinthError('USAGE', describeError(e));
  }
}

/** The facts could not be had at all: the image is unreadable or its reference invalid. */
export function inputError(f: ImageFacts): string | undefined {
  return f.errors.find((e) => e.fact === 'reference' || (e.fact === 'image' && !e.platform))?.message;
}

function summarizeEvidence(e: Record<string, unknown>, max = 400): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(e)) {
    if (v === null || v === undefined) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    parts.push(`${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  const s = parts.join(' ');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

function table(loaded: LoadedPolicy, decisions: Decision[], facts: ImageFacts[], workloads?: string[]): string {
  const L: string[] = [];
  L.push(`Policy ${loaded.policy.metadata.name} (${loaded.file}, ${loaded.version.slice(0, 19)}…)`);
  decisions.forEach((d, i) => {
    const f = facts[i]!;
    const err = inputError(f);
    const verdict = err ? 'NOT CHECKED' : d.allowed ? 'ALLOWED' : 'DENIED';
    const counts = [d.denials.length ? `${d.denials.length} denied` : '', d.warnings.length ? `${d.warnings.length} warning(s)` : '', d.audits.length ? `${d.audits.length} audit record(s)` : ''].filter(Boolean).join(', ');
    L.push('', `${d.image}${workloads?.[i] ? ` (in ${workloads[i]})` : ''}: ${verdict}${counts ? ` (${counts})` : ''}${d.digest ? `  ${d.digest}` : ''}`);
    if (err) L.push(`  error: ${err}`);
    for (const r of d.results) L.push(...resultLines(r));
    if (d.breakGlass) L.push(`  break-glass: ${d.breakGlass.annotation}=${d.breakGlass.value}`);
  });
  return L.join('\n');
}

function resultLines(r: RuleResult): string[] {
  const head = `  ${r.outcome.toUpperCase().padEnd(6)} ${r.mode.padEnd(8)} ${r.rule}`;
  if (r.outcome === 'pass' || r.outcome === 'skip') return [`${head}: ${r.reason}`];
  const L = [`${head}: ${r.message}`, `${' '.repeat(18)}reason: ${r.reason}`];
  if (r.action !== 'deny') L.push(`${' '.repeat(18)}action: ${r.action}${r.actionNote ? ` (${r.actionNote})` : ''}`);
  // The table shows the evidence of what failed; --format json has all of it.
  const platforms = r.evidence['platforms'] as Record<string, Record<string, unknown>> | undefined;
  const shown = platforms && r.platforms ? Object.fromEntries(Object.entries(platforms).filter(([k]) => r.platforms!.includes(k))) : r.evidence;
  const ev = r.outcome === 'error' ? '' : platforms && r.platforms ? summarizeEvidence({ platforms: shown }) : summarizeEvidence(shown);
  if (ev) L.push(`${' '.repeat(18)}evidence: ${ev}`);
  return L;
}

/** SARIF 2.1.0: one rule per policy rule, one result per failing (or erroring) rule per image. */
export function checkSarif(loaded: LoadedPolicy, decisions: Decision[], kindOf: (rule: PolicyRule) => string): unknown {
  const rules = loaded.policy.spec.rules.map((r) => {
    const kind = kindOf(r);
    return {
      id: r.name,
      name: kind,
      shortDescription: { text: `${kind} (${r.mode})` },
      fullDescription: { text: decisions[0]?.results.find((x) => x.rule === r.name)?.message ?? kind },
      defaultConfiguration: { level: r.mode === 'enforce' ? 'error' : r.mode === 'warn' ? 'warning' : 'note' },
      properties: { tags: ['policy', 'container-image', kind], mode: r.mode },
    };
  });
  const results = [];
  for (const d of decisions) {
    for (const r of d.results) {
      if (r.outcome !== 'fail' && r.outcome !== 'error') continue;
      const uri = d.image.replace(/^[a-z-]+:\/\//, '');
      results.push({
        ruleId: r.rule,
        ruleIndex: rules.findIndex((x) => x.id === r.rule),
        level: r.action === 'deny' ? 'error' : r.action === 'warn' ? 'warning' : 'note',
        message: { text: `${d.image}: ${r.message} (${r.reason})` },
        locations: [{
          physicalLocation: { artifactLocation: { uri, uriBaseId: 'ROOTPATH' }, region: { startLine: 1 } },
          logicalLocations: [{ name: d.image, kind: 'container-image', fullyQualifiedName: d.digest ? `${uri}@${d.digest}` : uri }],
        }],
        partialFingerprints: { 'plinth-policy/v1': `${d.digest ?? d.image}:${r.rule}` },
        properties: { kind: r.kind, mode: r.mode, outcome: r.outcome, action: r.action, ...(r.actionNote ? { actionNote: r.actionNote } : {}), ...(r.platforms ? { platforms: r.platforms } : {}), evidence: r.evidence },
      });
    }
  }
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: 'plinth', informationUri: 'https://github.com/plinth-dev/plinth', version: '0.1.0', rules } },
      automationDetails: { id: `plinth-check/${loaded.policy.metadata.name}/` },
      results,
      originalUriBaseIds: { ROOTPATH: { uri: 'file:///' } },
      properties: { policy: { name: loaded.policy.metadata.name, file: loaded.file, version: loaded.version } },
    }],
  };
}

/**
 * `--manifest FILE`: every workload of the manifest with its images, each image in the
 * workload's context (its namespace, its pod labels and annotations, the object itself for
 * workloadSecurity rules). `only`: just these images.
 */
async function manifestJobs(file: string, only: string[], base: PolicyContext): Promise<Array<{ image: string; context: PolicyContext; workload: string }>> {
  const [{ parseManifests, objectImages, podSpecPath, MANIFEST_MAX_BYTES }, { kubesecObjectName }, { readInput }] = await Promise.all([import('../lint/manifests.js'), import('../lint/kubesec.js'), import('./input.js')]);
  const bytes = await readInput(file, 'manifest', MANIFEST_MAX_BYTES);
  if (bytes.subarray(0, 8192).includes(0)) throw new PlinthError('USAGE', `${file} is a binary file, not a YAML or JSON manifest`);
  const parsed = parseManifests(bytes.toString('utf8'));
  if (parsed.problems.length) {
    const p = parsed.problems[0]!;
    throw new PlinthError('USAGE', `${file}:${p.line}:${p.column}: ${p.message}`);
  }
  const jobs: Array<{ image: string; context: PolicyContext; workload: string }> = [];
  for (const obj of parsed.objects) {
    const v = obj.value as Record<string, unknown>;
    const meta = (v && typeof v['metadata'] === 'object' && v['metadata']) || {};
    const spec = podSpecPath(v?.['kind']);
    // The pod's labels and annotations: the template's (its metadata is the pod's), else the object's.
    let podMeta: unknown = meta;
    if (spec && spec.length > 1) {
      let cur: unknown = v;
      for (const k of spec.slice(0, -1)) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined;
      const m = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)['metadata'] : undefined;
      if (m && typeof m === 'object') podMeta = m;
    }
    const strings = (x: unknown): Record<string, string> | undefined => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).filter(([, y]) => typeof y === 'string')) as Record<string, string> : undefined);
    const ns = (meta as Record<string, unknown>)['namespace'];
    const labels = strings((podMeta as Record<string, unknown>)['labels']);
    const annotations = strings((podMeta as Record<string, unknown>)['annotations']);
    const context: PolicyContext = {
      ...base,
      ...(typeof ns === 'string' && base.namespace === undefined ? { namespace: ns } : {}),
      ...(labels ? { labels: { ...labels, ...(base.labels ?? {}) } } : {}),
      ...(annotations ? { annotations } : {}),
      workload: v,
    };
    const name = kubesecObjectName(v);
    const seen = new Set<string>();
    for (const img of objectImages(v)) {
      if (seen.has(img.image) || (only.length && !only.includes(img.image))) continue;
      seen.add(img.image);
      jobs.push({ image: img.image, context, workload: name });
    }
  }
  return jobs;
}

export function registerCheck(program: Command, h: CliHelpers): void {
  if (!h.want('check') && !h.want('policy')) return;
  addStoreOption(h.addRegistryFlags(
    program
      .command('check')
      .description('check images against a policy (base image, registries, references, freshness, vulnerabilities, labels, signatures); exit 0 allowed, 1 denied, 2 usage or input error')
      .argument('[images...]', 'images to check (with --manifest: only these of its images; default all of them)')
      .option('--manifest <file>', 'a Kubernetes manifest (multi-document YAML or JSON; - for standard input): its workloads\' images are checked in their context (namespace, pod labels), and workloadSecurity rules judge each workload')
      .requiredOption('--policy <file>', 'policy file (YAML; see examples/policies/ and `plinth policy schema`)')
      .option('--catalog <file>', `catalog of known base images (default: ${defaultCatalogPath()})`)
      .option('--db <path>', 'vulnerability database for vulnerabilities rules (default: $PLINTH_DB or ~/.cache/plinth/vuln.db when it exists)')
      .option('--platform <os/arch[/variant]|all>', 'platform of multi-platform images to check (default: all of them)')
      .option('--namespace <ns>', 'judge as in this Kubernetes namespace (rules with namespace conditions)')
      .option('--label <key=value>', 'a workload label, for rules with label conditions (repeatable)', collect)
      .option('--format <format>', 'table, json or sarif', 'table')
      .option('-o, --output <file>', 'write the report to a file'),
  )).action(async (imageArgs: string[], o: CheckFlags) => {
    const { parseLocation, loadCatalog, loadPolicy, gatherFacts, evaluate, ruleKind } = await lib();
    if (!(FORMATS as readonly string[]).includes(o.format)) throw new PlinthError('USAGE', `--format must be ${FORMATS.join(', ')}, got "${o.format}"`);
    if (!imageArgs.length && o.manifest === undefined) throw new PlinthError('USAGE', 'name the images to check, or a manifest with --manifest FILE');
    const context: PolicyContext = {};
    if (o.namespace !== undefined) context.namespace = o.namespace;
    if (o.label) context.labels = keyValues(o.label, '--label');
    // Each image is judged in a context: its workload's (--manifest) or the command line's.
    const jobs: Array<{ image: string; context: PolicyContext; workload?: string }> = o.manifest === undefined ? imageArgs.map((image) => ({ image, context })) : await manifestJobs(o.manifest, imageArgs, context);
    const images = jobs.map((j) => j.image);
    if (!images.length) throw new PlinthError('USAGE', `${o.manifest}: no workload with a container image${imageArgs.length ? ` among ${imageArgs.join(', ')}` : ''}`);
    const platform = await asUsage(() => (o.platform === undefined ? 'all' : h.platformChoice(o.platform)));
    const loaded = await loadPolicy(o.policy);
    for (const w of loaded.warnings) process.stderr.write(`plinth: warning: ${w}\n`);
    const catalog: Catalog = await asUsage(() => loadCatalog(o.catalog ?? defaultCatalogPath(), { mustExist: o.catalog !== undefined }));
    for (const img of images) await asUsage(() => parseLocation(img));
    // Explicit credentials belong to the first image's registry only.
    const registryOptions = await h.openOptions(o, images[0]);
    let db: string | undefined = o.db;
    if (db === undefined) {
      const { defaultDbPath } = await import('../vuln/store.js');
      if (existsSync(defaultDbPath())) db = defaultDbPath();
    }
    const meta = await openRecorder(o.store);
    const now = Date.now();
    const facts: ImageFacts[] = [];
    const decisions: Decision[] = [];
    const factsByImage = new Map<string, ImageFacts>();
    for (const job of jobs) {
      // An image in several workloads is read once (unless the contexts need different facts).
      const key = `${job.image}\u0000${job.context.namespace ?? ''}\u0000${JSON.stringify(job.context.labels ?? {})}`;
      let f = factsByImage.get(key);
      if (!f) {
        f = await gatherFacts(job.image, { policy: loaded.policy, context: job.context, registryOptions, catalog, platform, now, ...(db !== undefined ? { db } : {}) });
        factsByImage.set(key, f);
      }
      facts.push(f);
      decisions.push(evaluate(loaded.policy, f, job.context, now));
    }
    const workloads = o.manifest !== undefined ? jobs.map((j) => j.workload ?? '') : undefined;
    let text: string;
    if (o.format === 'json') {
      text = JSON.stringify({ policy: { name: loaded.policy.metadata.name, file: loaded.file, version: loaded.version }, allowed: decisions.every((d) => d.allowed), decisions: workloads ? decisions.map((d, i) => ({ workload: workloads[i], ...d })) : decisions }, null, 2);
    } else if (o.format === 'sarif') text = JSON.stringify(checkSarif(loaded, decisions, ruleKind), null, 2);
    else text = table(loaded, decisions, facts, workloads);
    if (o.output) await writeFile(o.output, `${text}\n`);
    else h.out(text);
    const unreadable = facts.map(inputError).filter((x): x is string => !!x);
    for (const u of unreadable) process.stderr.write(`plinth: ${u}\n`);
    if (meta) {
      try {
        // The audit log: one decision per image, with the policy and its version.
        const time = new Date(now).toISOString();
        await meta.recordDecisions(decisions.map((d, i) => ({
          time,
          source: 'check' as const,
          image: d.image,
          digest: d.digest,
          repository: facts[i]!.reference?.name ?? null,
          allowed: d.allowed,
          policy: loaded.policy.metadata.name,
          policyVersion: loaded.version,
          namespace: o.namespace ?? null,
          messages: [...d.denials, ...d.warnings],
          details: d.results.map((r) => ({ rule: r.rule, outcome: r.outcome, mode: r.mode })),
        })));
        const ref = (i: number) => facts[i]!.reference;
        await meta.recordTags(decisions.flatMap((d, i) => {
          const r = ref(i);
          return r && d.digest && !r.digest && r.tag ? [{ repository: r.name, tag: r.tag, digest: d.digest, at: time, source: 'check' }] : [];
        }));
      } finally {
        await meta.close();
      }
    }
    process.exitCode = unreadable.length ? 2 : decisions.every((d) => d.allowed) ? 0 : 1;
  });

  const policy = program.command('policy').description('image policies: the file format and its validation');
  policy
    .command('schema')
    .description('print the JSON Schema of the policy file (for editors)')
    .action(async () => {
      const { policyJsonSchema } = await lib();
      return h.out(JSON.stringify(policyJsonSchema(), null, 2));
    });
  policy
    .command('validate')
    .description('validate policy files; errors give the line and what is wrong')
    .argument('<files...>')
    .action(async (files: string[]) => {
      const { loadPolicy, ruleKind } = await lib();
      for (const file of files) {
        const p = await loadPolicy(file);
        for (const w of p.warnings) process.stderr.write(`plinth: warning: ${w}\n`);
        h.out(`${file}: ok, policy ${p.policy.metadata.name}, ${p.policy.spec.rules.length} rule(s) (${p.policy.spec.rules.map((r) => `${r.name}: ${ruleKind(r)}/${r.mode}`).join(', ')}), ${p.version}`);
      }
    });
}
