import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { VERSION } from '../version.js';
import type { KubesecRuleset } from './kubesec.js';
import { ruleInfo } from './rules.js';
import type { FileResult, LintSeverity } from './types.js';

/**
 * SARIF 2.1.0: one run, one reportingDescriptor per rule ID that has results (with its help text
 * and link), one result per finding with a region (startLine, startColumn, endLine, endColumn).
 */
const LEVEL: Record<LintSeverity, 'error' | 'warning' | 'note'> = { error: 'error', warning: 'warning', info: 'note', style: 'note' };

export function lintSarif(results: readonly FileResult[], o: { ruleset?: KubesecRuleset; cwd?: string } = {}): unknown {
  const cwd = o.cwd ?? process.cwd();
  const ids = [...new Set(results.flatMap((r) => r.findings.map((f) => f.rule)))].sort();
  const rules = ids.map((id) => {
    const info = ruleInfo(id, o.ruleset);
    return {
      id,
      name: info?.name ?? id,
      shortDescription: { text: info?.description.split('. ')[0] ?? id },
      fullDescription: { text: info?.description ?? id },
      helpUri: info?.helpUri ?? 'https://github.com/plinth-dev/plinth/blob/main/docs/lint.md',
      help: { text: `${info?.description ?? id}\nSee ${info?.helpUri ?? 'docs/lint.md'}`, markdown: `${info?.description ?? id}\n\n[${id}](${info?.helpUri ?? 'docs/lint.md'})` },
      defaultConfiguration: { level: LEVEL[info?.severity ?? 'warning'] },
      properties: { tags: ['security', info?.source ?? 'plinth'], source: info?.source ?? 'plinth' },
    };
  });
  const index = new Map(ids.map((id, i) => [id, i]));
  const uri = (file: string) => {
    if (file === '-' || file === 'STDIN') return { uri: 'stdin' };
    const rel = path.relative(cwd, path.resolve(cwd, file));
    if (!rel.startsWith('..') && !path.isAbsolute(rel)) return { uri: rel.split(path.sep).map(encodeURIComponent).join('/'), uriBaseId: 'SRCROOT' };
    return { uri: pathToFileURL(path.resolve(cwd, file)).href };
  };
  const out = [];
  for (const r of results) {
    for (const f of r.findings) {
      const region: Record<string, number> = { startLine: Math.max(1, f.line), startColumn: Math.max(1, f.column) };
      if (f.endLine !== undefined && f.endColumn !== undefined && (f.endLine > f.line || (f.endLine === f.line && f.endColumn >= f.column))) {
        region.endLine = f.endLine;
        region.endColumn = f.endColumn;
      }
      out.push({
        ruleId: f.rule,
        ruleIndex: index.get(f.rule)!,
        level: LEVEL[f.severity],
        message: { text: f.object ? `${f.object}: ${f.message}` : f.message },
        locations: [{ physicalLocation: { artifactLocation: uri(r.file), region } }],
        ...(f.object || f.points !== undefined ? { properties: { ...(f.object ? { object: f.object } : {}), ...(f.points !== undefined ? { points: f.points } : {}) } } : {}),
      });
    }
  }
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: { driver: { name: 'plinth-lint', informationUri: 'https://github.com/plinth-dev/plinth', version: VERSION, rules } },
      originalUriBaseIds: { SRCROOT: { uri: pathToFileURL(cwd.endsWith(path.sep) ? cwd : `${cwd}${path.sep}`).href } },
      results: out,
      invocations: [{ executionSuccessful: results.every((r) => r.errors.length === 0), toolExecutionNotifications: results.flatMap((r) => r.errors.map((e) => ({ level: 'error', message: { text: `${r.file}: ${e}` } }))) }],
    }],
  };
}
