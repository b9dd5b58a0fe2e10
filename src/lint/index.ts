import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Catalog } from '../provenance/catalog.js';
import type { ImagePolicy } from '../policy/schema.js';
import { PlinthError, describeError } from '../util/errors.js';
import type { HadolintConfig } from './config.js';
import { DOCKERFILE_MAX_BYTES, lintDockerfile } from './dockerfile.js';
import type { KubesecRuleset } from './kubesec.js';
import { MANIFEST_MAX_BYTES, lintManifests } from './manifests.js';
import { SEVERITY_RANK, atLeast, type FileKind, type FileResult, type Finding, type LintSeverity } from './types.js';

export * from './types.js';
export { lintDockerfile, parseDockerfile } from './dockerfile.js';
export { lintManifests, parseManifests, objectImages } from './manifests.js';
export { kubesecScore, kubesecRules, formatKubesecJson, type KubesecReport, type KubesecRuleset } from './kubesec.js';
export { evaluateWorkload, type WorkloadSecuritySettings } from './workload.js';
export { lintSarif } from './sarif.js';
export { loadHadolintConfig } from './config.js';

export interface LintOptions {
  policy?: ImagePolicy;
  catalog?: Catalog;
  hadolint?: HadolintConfig;
  /** Extra trusted registries (--trusted-registry). */
  trustedRegistries?: string[];
  /** Rule IDs to ignore (--ignore). */
  ignore?: string[];
  ruleset?: KubesecRuleset;
  buildArgs?: Record<string, string>;
  /** Force the kind of every input (default: by file name and content). */
  kind?: FileKind;
  /** Standard input's content, for `-`. */
  stdin?: () => Promise<Buffer>;
}

export const MAX_FILES = 20_000;

const YAML_EXT = /\.(ya?ml|json)$/i;

export function isDockerfileName(name: string): boolean {
  const b = path.basename(name);
  return /^(Dockerfile|Containerfile)(\..+)?$/i.test(b) || /\.(Dockerfile|Containerfile)$/i.test(b);
}

/** The files a list of paths names: files as given, directories walked (Dockerfiles and YAML/JSON). */
export async function expandTargets(targets: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, depth: number) => {
    if (depth > 32) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw new PlinthError('IO', `cannot read directory ${dir}: ${describeError(e)}`);
    }
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      if (out.length > MAX_FILES) throw new PlinthError('USAGE', `more than ${MAX_FILES} files to lint under ${dir}`);
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
        await walk(p, depth + 1);
      } else if (e.isFile() && (isDockerfileName(e.name) || YAML_EXT.test(e.name))) out.push(p);
    }
  };
  for (const t of targets) {
    if (t === '-') {
      out.push(t);
      continue;
    }
    let st;
    try {
      st = await stat(t);
    } catch (e) {
      throw new PlinthError('USAGE', `cannot read ${t}: ${describeError(e)}`);
    }
    if (st.isDirectory()) await walk(t, 0);
    else out.push(t);
  }
  return out;
}

function kindOf(file: string, text: string, forced?: FileKind): FileKind {
  if (forced) return forced;
  if (file !== '-' && isDockerfileName(file)) return 'dockerfile';
  if (file !== '-' && YAML_EXT.test(file)) return 'kubernetes';
  // By content: a Dockerfile starts (after comments) with FROM, ARG or a parser directive.
  const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
  if (first && /^(FROM|ARG)\s/i.test(first)) return 'dockerfile';
  return 'kubernetes';
}

function looksBinary(b: Buffer): boolean {
  const n = Math.min(b.length, 8192);
  for (let i = 0; i < n; i++) if (b[i] === 0) return true;
  return false;
}

/** Lint one input (its bytes already read). */
export function lintText(file: string, bytes: Buffer, o: LintOptions = {}): FileResult {
  const text = bytes.toString('utf8');
  const kind = kindOf(file, text, o.kind);
  const result: FileResult = { file, kind, findings: [], errors: [], ignored: 0 };
  const max = kind === 'dockerfile' ? DOCKERFILE_MAX_BYTES : MANIFEST_MAX_BYTES;
  if (bytes.length > max) {
    result.errors.push(`${file} is larger than ${max} bytes: not linted`);
    return result;
  }
  if (looksBinary(bytes)) {
    result.errors.push(`${file} is a binary file (it contains NUL bytes), not a ${kind === 'dockerfile' ? 'Dockerfile' : 'YAML or JSON manifest'}`);
    return result;
  }
  const ignore = new Set([...(o.ignore ?? []), ...(o.hadolint?.ignored ?? [])]);
  let findings: Finding[];
  try {
    if (kind === 'dockerfile') {
      const r = lintDockerfile(text, {
        file,
        trustedRegistries: [...(o.hadolint?.trustedRegistries ?? []), ...(o.trustedRegistries ?? [])],
        ...(o.policy ? { policy: o.policy } : {}),
        ...(o.catalog ? { catalog: o.catalog } : {}),
        ...(o.buildArgs ? { buildArgs: o.buildArgs } : {}),
      });
      findings = r.findings;
      result.ignored += r.ignored;
    } else {
      const r = lintManifests(text, { file, fileName: file === '-' ? 'STDIN' : file, ...(o.policy ? { policy: o.policy } : {}), ...(o.ruleset ? { ruleset: o.ruleset } : {}) });
      findings = r.findings;
      result.kubesec = r.kubesec;
    }
  } catch (e) {
    // A parser bug or a pathological input must not crash the run: the file is reported.
    result.errors.push(`${file}: cannot be linted: ${describeError(e)}`);
    return result;
  }
  const override = o.hadolint?.override ?? {};
  for (const f of findings) {
    if (ignore.has(f.rule)) {
      result.ignored++;
      continue;
    }
    for (const sev of ['error', 'warning', 'info', 'style'] as LintSeverity[]) if (override[sev]?.includes(f.rule)) f.severity = sev;
    result.findings.push(f);
  }
  return result;
}

export async function lintTargets(targets: readonly string[], o: LintOptions = {}): Promise<FileResult[]> {
  const files = await expandTargets(targets);
  const out: FileResult[] = [];
  for (const file of files) {
    let bytes: Buffer;
    if (file === '-') {
      if (!o.stdin) throw new PlinthError('USAGE', 'standard input is not available');
      bytes = await o.stdin();
    } else {
      try {
        const st = await stat(file);
        if (st.size > MANIFEST_MAX_BYTES) {
          out.push({ file, kind: kindOf(file, '', o.kind), findings: [], errors: [`${file} is larger than ${MANIFEST_MAX_BYTES} bytes: not linted`], ignored: 0 });
          continue;
        }
        bytes = await readFile(file);
      } catch (e) {
        out.push({ file, kind: kindOf(file, '', o.kind), findings: [], errors: [`cannot read ${file}: ${describeError(e)}`], ignored: 0 });
        continue;
      }
    }
    out.push(lintText(file, bytes, o));
  }
  return out;
}

/** Whether a run fails: any finding at or above the threshold. */
export function failing(results: readonly FileResult[], threshold: LintSeverity | 'none'): Finding[] {
  return results.flatMap((r) => r.findings.filter((f) => atLeast(f.severity, threshold)));
}

/** The human table. */
export function formatTable(results: readonly FileResult[]): string {
  const L: string[] = [];
  for (const r of results) {
    for (const e of r.errors) L.push(`${r.file}: error: ${e}`);
    for (const f of r.findings) L.push(`${f.file}:${f.line}:${f.column} ${f.rule} ${f.severity}: ${f.object ? `${f.object}: ` : ''}${f.message}`);
    for (const k of r.kubesec ?? []) if (k.message && k.valid) L.push(`${r.file}: ${k.object}: ${k.message}`);
  }
  const n = results.reduce((a, r) => a + r.findings.length, 0);
  const by = (s: LintSeverity) => results.reduce((a, r) => a + r.findings.filter((f) => f.severity === s).length, 0);
  L.push(`${results.length} file(s), ${n} finding(s): ${by('error')} error, ${by('warning')} warning, ${by('info')} info, ${by('style')} style${results.some((r) => r.ignored) ? `; ${results.reduce((a, r) => a + r.ignored, 0)} ignored` : ''}`);
  return L.join('\n');
}

export { SEVERITY_RANK };
