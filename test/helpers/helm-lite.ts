/**
 * Test-only: a very small renderer for the subset of Helm (Go text/template + Sprig) that
 * deploy/helm/plinth uses, so the chart's templates can be rendered with their default values
 * and checked as YAML without `helm`. It is not Helm: it knows `{{ }}` actions with `-` trimming,
 * comments, if/else/end, range/end, with/end, define/end, pipelines, `.Field` paths, `$`,
 * parentheses, string and number literals, and the functions include, toYaml, nindent, indent,
 * quote, default, required, trunc, trimSuffix, printf (%s %v %d), eq, ne, not. Anything else is
 * an error, so a template that drifts outside the subset fails the test instead of passing
 * silently.
 */
import { stringify } from 'yaml';

type Node =
  | { t: 'text'; s: string }
  | { t: 'action'; p: string }
  | { t: 'if' | 'with' | 'range'; p: string; body: Node[]; alt: Node[] }
  | { t: 'define'; name: string; body: Node[] };

interface Token {
  kind: 'text' | 'action';
  s: string;
}

function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open === -1) {
      out.push({ kind: 'text', s: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let j = open + 2;
    if (src[j] === '-' && /\s/.test(src[j + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      j += 1;
    }
    out.push({ kind: 'text', s: text });
    const close = findClose(src, j);
    let inner = src.slice(j, close);
    let next = close + 2;
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -1);
      const m = /^\s*/.exec(src.slice(next))!;
      next += m[0].length;
    }
    inner = inner.trim();
    if (!(inner.startsWith('/*') && inner.endsWith('*/'))) out.push({ kind: 'action', s: inner });
    i = next;
  }
  return out;
}

function findClose(src: string, from: number): number {
  let inStr = false;
  for (let k = from; k < src.length; k++) {
    const c = src[k];
    if (inStr) {
      if (c === '\\') k++;
      else if (c === '"') inStr = false;
    } else if (c === '"') inStr = true;
    else if (c === '}' && src[k + 1] === '}') return k;
  }
  throw new Error(`unclosed action at ${from}`);
}

function parse(tokens: Token[]): Node[] {
  let pos = 0;
  const block = (stopAt: string[]): { nodes: Node[]; stop: string } => {
    const nodes: Node[] = [];
    while (pos < tokens.length) {
      const tok = tokens[pos++]!;
      if (tok.kind === 'text') {
        if (tok.s) nodes.push({ t: 'text', s: tok.s });
        continue;
      }
      const [word, ...rest] = tok.s.split(/\s+/);
      const arg = rest.join(' ');
      if (stopAt.includes(tok.s)) return { nodes, stop: tok.s };
      if (word === 'if' || word === 'with' || word === 'range') {
        const body = block(['else', 'end']);
        const alt = body.stop === 'else' ? block(['end']).nodes : [];
        nodes.push({ t: word, p: arg, body: body.nodes, alt });
      } else if (word === 'define') {
        const body = block(['end']);
        nodes.push({ t: 'define', name: JSON.parse(arg) as string, body: body.nodes });
      } else if (word === 'else' || word === 'end') {
        throw new Error(`unexpected {{ ${tok.s} }}`);
      } else {
        nodes.push({ t: 'action', p: tok.s });
      }
    }
    if (stopAt.length) throw new Error(`missing {{ end }}`);
    return { nodes, stop: '' };
  };
  return block([]).nodes;
}

export class RenderError extends Error {}

function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

function str(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') throw new RenderError(`cannot print ${JSON.stringify(v)} without toYaml`);
  return String(v);
}

function indentLines(n: number, s: string): string {
  const pad = ' '.repeat(n);
  return s
    .split('\n')
    .map((l) => pad + l)
    .join('\n');
}

export class Chart {
  private readonly defines = new Map<string, Node[]>();
  private readonly templates = new Map<string, Node[]>();

  constructor(files: Record<string, string>) {
    for (const [name, src] of Object.entries(files)) {
      const nodes = parse(lex(src));
      for (const n of nodes) if (n.t === 'define') this.defines.set(n.name, n.body);
      if (!name.startsWith('_')) this.templates.set(name, nodes);
    }
  }

  /** Render every template (not partials) with the given root context. */
  render(root: Record<string, unknown>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, nodes] of this.templates) out[name] = this.exec(nodes, root, root);
    return out;
  }

  private exec(nodes: Node[], dot: unknown, top: unknown): string {
    let s = '';
    for (const n of nodes) {
      switch (n.t) {
        case 'text':
          s += n.s;
          break;
        case 'define':
          break;
        case 'action':
          s += str(this.pipeline(n.p, dot, top));
          break;
        case 'if': {
          const v = this.pipeline(n.p, dot, top);
          s += this.exec(truthy(v) ? n.body : n.alt, dot, top);
          break;
        }
        case 'with': {
          const v = this.pipeline(n.p, dot, top);
          s += truthy(v) ? this.exec(n.body, v, top) : this.exec(n.alt, dot, top);
          break;
        }
        case 'range': {
          const v = this.pipeline(n.p, dot, top);
          const items = Array.isArray(v) ? v : v && typeof v === 'object' ? Object.keys(v).sort().map((k) => (v as Record<string, unknown>)[k]) : [];
          if (items.length === 0) s += this.exec(n.alt, dot, top);
          for (const item of items) s += this.exec(n.body, item, top);
          break;
        }
      }
    }
    return s;
  }

  private pipeline(src: string, dot: unknown, top: unknown): unknown {
    const cmds = splitTop(src, '|');
    let value: unknown;
    let first = true;
    for (const cmd of cmds) {
      const words = splitWords(cmd.trim());
      const args = (extra: unknown[]) => [...words.slice(1).map((w) => this.operand(w, dot, top)), ...extra];
      const head = words[0]!;
      if (/^[a-zA-Z][a-zA-Z0-9]*$/.test(head) && !['true', 'false', 'nil'].includes(head)) {
        value = this.call(head, args(first ? [] : [value]), top);
      } else {
        if (!first || words.length !== 1) throw new RenderError(`cannot apply ${cmd}`);
        value = this.operand(head, dot, top);
      }
      first = false;
    }
    return value;
  }

  private operand(w: string, dot: unknown, top: unknown): unknown {
    if (w.startsWith('"')) return JSON.parse(w) as string;
    if (/^-?\d+$/.test(w)) return Number(w);
    if (w === 'true') return true;
    if (w === 'false') return false;
    if (w === 'nil') return null;
    if (w.startsWith('(') && w.endsWith(')')) return this.pipeline(w.slice(1, -1), dot, top);
    if (w === '.') return dot;
    if (w === '$') return top;
    let base: unknown;
    let path: string;
    if (w.startsWith('$.')) {
      base = top;
      path = w.slice(2);
    } else if (w.startsWith('.')) {
      base = dot;
      path = w.slice(1);
    } else if (/^[a-zA-Z]/.test(w)) {
      return this.call(w, [], top);
    } else throw new RenderError(`unknown operand ${w}`);
    for (const k of path.split('.')) {
      base = base && typeof base === 'object' ? (base as Record<string, unknown>)[k] : undefined;
    }
    return base;
  }

  private call(name: string, a: unknown[], _top: unknown): unknown {
    switch (name) {
      case 'include': {
        const body = this.defines.get(a[0] as string);
        if (!body) throw new RenderError(`no template ${String(a[0])}`);
        return this.exec(body, a[1], a[1]);
      }
      case 'toYaml':
        return stringify(a[0], { version: '1.1' }).replace(/\n$/, '');
      case 'nindent':
        return `\n${indentLines(a[0] as number, str(a[1]))}`;
      case 'indent':
        return indentLines(a[0] as number, str(a[1]));
      case 'quote':
        return JSON.stringify(str(a[0]));
      case 'default':
        return truthy(a[1]) ? a[1] : a[0];
      case 'required':
        if (!truthy(a[1])) throw new RenderError(String(a[0]));
        return a[1];
      case 'trunc':
        return str(a[1]).slice(0, a[0] as number);
      case 'trimSuffix': {
        const s = str(a[1]);
        const suf = str(a[0]);
        return suf && s.endsWith(suf) ? s.slice(0, -suf.length) : s;
      }
      case 'printf': {
        let k = 1;
        return str(a[0]).replace(/%[svd%]/g, (m) => (m === '%%' ? '%' : str(a[k++])));
      }
      case 'eq':
        return a[0] === a[1];
      case 'ne':
        return a[0] !== a[1];
      case 'not':
        return !truthy(a[0]);
      default:
        throw new RenderError(`function ${name} is not supported by helm-lite`);
    }
  }
}

/** Split on `sep` outside strings and parentheses. */
function splitTop(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let inStr = false;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (inStr) {
      cur += c;
      if (c === '\\') cur += s[++i] ?? '';
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    if (c === sep && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Words of a command: literals, paths and parenthesised pipelines. */
function splitWords(s: string): string[] {
  return splitTop(s, ' ').filter((w) => w !== '');
}
