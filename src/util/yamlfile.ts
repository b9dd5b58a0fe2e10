import { LineCounter, parseDocument, isMap, isSeq, type Document, type Node as YamlNode } from 'yaml';
import { PlinthError } from './errors.js';

/**
 * Read a YAML (or JSON) file the user wrote and validate it against a zod schema. Errors name the
 * file, the line and column, the field path and what is wrong — never a stack trace.
 */
/** A zod schema, classic or zod/mini (only safeParse is used). */
interface Schema<T> {
  safeParse(data: unknown): { success: true; data: T } | { success: false; error: { issues: Array<{ path: PropertyKey[]; message: string }> } };
}

export function parseYamlFile<T>(text: string, schema: Schema<T>, file: string): T {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0] ?? (e.pos ? lc.linePos(e.pos[0]) : undefined);
    throw new PlinthError('USAGE', `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const lines = r.error.issues.slice(0, 5).map((issue) => {
    const p = issue.path.map((k) => (typeof k === 'number' ? k : String(k)));
    const pos = positionOf(doc, lc, p);
    const where = p.length ? p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('').replace(/^\./, '') : '(top level)';
    return `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${where}: ${issue.message}`;
  });
  const more = r.error.issues.length > 5 ? `\n… and ${r.error.issues.length - 5} more` : '';
  throw new PlinthError('USAGE', `${lines.join('\n')}${more}`, { issues: r.error.issues });
}

/** Line/column of the deepest existing node along a path. */
function positionOf(doc: Document, lc: LineCounter, path: Array<string | number>): { line: number; col: number } | undefined {
  let node: unknown = doc.contents;
  let last: YamlNode | undefined = doc.contents as YamlNode | undefined;
  for (const k of path) {
    if (isMap(node)) node = node.get(k, true);
    else if (isSeq(node) && typeof k === 'number') node = node.get(k, true);
    else break;
    if (node && typeof node === 'object' && 'range' in (node as object)) last = node as YamlNode;
    else break;
  }
  const off = last?.range?.[0];
  return off === undefined ? undefined : lc.linePos(off);
}

/**
 * Positions in a YAML text by field path, for checks made after schema validation (duplicate
 * names, bad patterns…): `locate(['spec', 'rules', 2, 'name'])` → `{ line, col }` of the deepest
 * node along the path that exists.
 */
export function yamlLocator(text: string): (path: Array<string | number>) => { line: number; col: number } | undefined {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  return (path) => positionOf(doc, lc, path);
}
