import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { writeFile, rename } from 'node:fs/promises';
import { PlinthError, describeError } from '../util/errors.js';
import { collect, keyValues, readInput } from './input.js';
import type { CliHelpers } from './provenance.js';
import { defaultCatalogPath } from '../util/paths.js';

/** The library modules `plinth lint` runs, imported when it runs (start-up). */
async function lib() {
  const [m0, m1, m2, m3, m4, m5, m6] = await Promise.all([import('../lint/index.js'), import('../lint/config.js'), import('../policy/load.js'), import('../provenance/catalog.js'), import('../lint/sarif.js'), import('../lint/kubesec.js'), import('../lint/types.js')]);
  return { ...m0, ...m1, ...m2, ...m3, ...m4, ...m5, ...m6 };
}

const FORMATS = ['table', 'json', 'sarif', 'kubesec'] as const;
const THRESHOLDS = ['error', 'warning', 'info', 'style', 'none'] as const;

interface LintFlags extends Record<string, unknown> {
  format: string;
  policy?: string;
  catalog?: string;
  config?: string;
  severity?: string;
  trustedRegistry?: string[];
  ignore?: string[];
  buildArg?: string[];
  kubesecRules: string;
  type?: string;
  output?: string;
  fix?: boolean;
  update?: boolean;
  dryRun?: boolean;
  platform?: string;
}

const HELP = `
Inputs: Dockerfiles (Dockerfile, *.Dockerfile, Containerfile) and Kubernetes manifests
(multi-document YAML or JSON, List kinds); directories are walked; - reads standard input
(Helm or Kustomize output). --type forces the kind.

Rules: hadolint's IDs for Dockerfiles (DL3000 DL3002 DL3004 DL3006 DL3007 DL3008 DL3018 DL3020
DL3026 DL3029 DL3061 DL4006), honouring "# hadolint ignore=…" pragmas and .hadolint.yaml
(ignored, trustedRegistries, failure-threshold, override); kubesec's rules, points and scores for
Kubernetes objects; Plinth's PL… rules from the catalog and the policy (docs/lint.md).

Formats: table, json, sarif (2.1.0), kubesec (kubesec scan's JSON array, for its scripts).

Fixing: --fix pins every FROM image:tag to image:tag@sha256:… (the registry's digest for the tag;
the index for multi-platform images), --update also refreshes pins whose tag moved, --dry-run
prints the diff instead of writing.

Exit status: 0 no finding at or above --severity, 1 findings at or above it, 2 usage or input
errors (a file that cannot be read, is binary or too large; a bad policy or config).`;

export function registerLint(program: Command, h: CliHelpers): void {
  if (!h.want('lint')) return;
  h.addRegistryFlags(
    program
      .command('lint')
      .description('lint Dockerfiles and Kubernetes manifests: hadolint-compatible rules and pragmas, kubesec-compatible scores, the catalog and the policy; --fix pins FROM to digests')
      .argument('<paths...>', 'Dockerfiles, manifests or directories; - for standard input')
      .option('--format <format>', `output: ${FORMATS.join(', ')}`, 'table')
      .option('--policy <file>', 'policy file: allowedRegistries, imageReferences and workloadSecurity rules become findings')
      .option('--catalog <file>', `catalog of base images for PL001/PL002/PL008 (default: ${defaultCatalogPath()} when it exists)`)
      .option('--config <file>', 'hadolint configuration (default: ./.hadolint.yaml or ./.hadolint.yml when present)')
      .option('--severity <level>', `fail (exit 1) on findings at or above: ${THRESHOLDS.join(', ')} (default: the config's failure-threshold, else warning)`)
      .option('--trusted-registry <registry>', 'DL3026: a trusted registry (glob; repeatable, adds to trustedRegistries)', collect)
      .option('--ignore <rule>', 'a rule ID to ignore (repeatable)', collect)
      .option('--build-arg <key=value>', 'a build argument for FROM substitution (repeatable)', collect)
      .option('--kubesec-rules <set>', 'kubesec rule set: latest (30 rules, kubesec main) or 2.14 (kubesec v2.14.2)', 'latest')
      .option('--type <kind>', 'treat every input as: dockerfile or kubernetes')
      .option('--fix', 'pin FROM image:tag to image:tag@sha256:… in place (asks the registry)')
      .option('--update', 'with --fix: also refresh pins whose tag now points elsewhere')
      .option('--dry-run', 'with --fix: print the diff, change nothing')
      .option('--platform <os/arch[/variant]>', 'with --fix: the build platform the pinned index must have (default: FROM --platform, else this host\'s)')
      .option('-o, --output <file>', 'write the report to a file')
      .addHelpText('after', HELP),
  ).action(async (paths: string[], o: LintFlags) => {
    const L = await lib();
    if (!(FORMATS as readonly string[]).includes(o.format)) throw new PlinthError('USAGE', `--format must be ${FORMATS.join(', ')}, got "${o.format}"`);
    if (!(L.KUBESEC_RULESETS as readonly string[]).includes(o.kubesecRules)) throw new PlinthError('USAGE', `--kubesec-rules must be ${L.KUBESEC_RULESETS.join(' or ')}, got "${o.kubesecRules}"`);
    if (o.type !== undefined && o.type !== 'dockerfile' && o.type !== 'kubernetes') throw new PlinthError('USAGE', `--type must be dockerfile or kubernetes, got "${o.type}"`);
    if (o.severity !== undefined && !(THRESHOLDS as readonly string[]).includes(o.severity)) throw new PlinthError('USAGE', `--severity must be ${THRESHOLDS.join(', ')}, got "${o.severity}"`);
    if ((o.update || o.dryRun || o.platform) && !o.fix) throw new PlinthError('USAGE', '--update, --dry-run and --platform go with --fix');
    if (paths.filter((p) => p === '-').length > 1) throw new PlinthError('USAGE', 'standard input (-) can be read once');
    const buildArgs = o.buildArg ? keyValues(o.buildArg, '--build-arg') : undefined;
    const usage = async <T>(f: () => Promise<T>): Promise<T> => {
      try {
        return await f();
      } catch (e) {
        if (e instanceof PlinthError && e.code === 'USAGE') throw e;
        throw new PlinthError('USAGE', describeError(e));
      }
    };
    const policy = o.policy ? (await usage(() => L.loadPolicy(o.policy!))) : undefined;
    for (const w of policy?.warnings ?? []) process.stderr.write(`plinth: warning: ${w}\n`);
    const catalog = await usage(() => L.loadCatalog(o.catalog ?? defaultCatalogPath(), { mustExist: o.catalog !== undefined }));
    const configFile = o.config ?? ['.hadolint.yaml', '.hadolint.yml'].find((f) => existsSync(f));
    const hadolint = configFile ? await L.loadHadolintConfig(configFile, o.config !== undefined) : undefined;

    if (o.fix) {
      const { fixDockerfile, unifiedDiff } = await import('../lint/fix.js');
      const files = (await L.expandTargets(paths)).filter((f) => f !== '-' && (o.type === 'dockerfile' || L.isDockerfileName(f)));
      if (!files.length) throw new PlinthError('USAGE', '--fix rewrites Dockerfiles: no Dockerfile among the paths');
      const registryOptions = await h.openOptions(o);
      const platform = o.platform ? await usage(async () => h.platformChoice(o.platform)) : undefined;
      let failed = 0;
      const report: unknown[] = [];
      for (const file of files) {
        const bytes = await readInput(file, 'Dockerfile', 4 * 1024 * 1024);
        const text = bytes.toString('utf8');
        if (!Buffer.from(text, 'utf8').equals(bytes)) throw new PlinthError('USAGE', `${file} is not UTF-8 text: not rewritten`);
        const r = await fixDockerfile(text, { ...(o.update ? { update: true } : {}), registryOptions, ...(platform && platform !== 'all' ? { platform } : {}), ...(buildArgs ? { buildArgs } : {}) });
        failed += r.errors.length;
        report.push({ file, changes: r.changes, skipped: r.skipped, errors: r.errors });
        for (const e of r.errors) process.stderr.write(`plinth: ${file}:${e.line}: ${e.image}: ${e.reason}\n`);
        if (o.dryRun) {
          if (o.format !== 'json') process.stdout.write(unifiedDiff(file, text, r.text));
        } else if (r.changes.length) {
          const tmp = `${file}.plinth-fix.tmp`;
          await writeFile(tmp, r.text);
          await rename(tmp, file);
        }
        if (o.format !== 'json') for (const c of r.changes) process.stderr.write(`${file}:${c.line}: ${c.action} ${c.image} → ${c.to}${c.viaArg ? ` (ARG ${c.viaArg})` : ''}${o.dryRun ? ' (dry run)' : ''}\n`);
      }
      if (o.format === 'json') h.out(JSON.stringify({ dryRun: !!o.dryRun, files: report }, null, 2));
      process.exitCode = failed ? 2 : 0;
      return;
    }

    const results = await L.lintTargets(paths, {
      ...(policy ? { policy: policy.policy } : {}),
      ...(catalog.bases.length ? { catalog } : {}),
      ...(hadolint ? { hadolint } : {}),
      ...(o.trustedRegistry ? { trustedRegistries: o.trustedRegistry } : {}),
      ...(o.ignore ? { ignore: o.ignore.map((x) => (/^(dl|pl)\d+$/i.test(x) ? x.toUpperCase() : x)) } : {}),
      ruleset: o.kubesecRules as 'latest' | '2.14',
      ...(buildArgs ? { buildArgs } : {}),
      ...(o.type ? { kind: o.type as 'dockerfile' | 'kubernetes' } : {}),
      stdin: () => readInput('-', 'manifest', 32 * 1024 * 1024),
    });
    const threshold = (o.severity ?? hadolint?.failureThreshold ?? 'warning') as 'error' | 'warning' | 'info' | 'style' | 'none';
    let text: string;
    if (o.format === 'json') {
      const failingFindings = L.failing(results, threshold);
      text = JSON.stringify({ threshold, passed: failingFindings.length === 0 && results.every((r) => !r.errors.length), files: results }, null, 2);
    } else if (o.format === 'sarif') text = JSON.stringify(L.lintSarif(results, { ruleset: o.kubesecRules as 'latest' | '2.14' }), null, 2);
    else if (o.format === 'kubesec') text = L.formatKubesecJson(results.flatMap((r) => r.kubesec ?? []));
    else text = L.formatTable(results);
    if (o.output) await writeFile(o.output, `${text}\n`);
    else h.out(text);
    const errors = results.flatMap((r) => r.errors);
    if (o.format !== 'table') for (const e of errors) process.stderr.write(`plinth: ${e}\n`);
    process.exitCode = errors.length ? 2 : L.failing(results, threshold).length ? 1 : 0;
  });
}

