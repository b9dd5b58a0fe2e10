/**
 * HTML templating for the dashboard: a tagged template whose every interpolation is escaped
 * unless it is already Html (made by `html` itself or `raw` for constant markup). Store values
 * (labels, names, messages) are hostile input: they only ever reach a page through `esc`.
 */

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

function part(v: unknown): string {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(part).join('');
  if (v === null || v === undefined || v === false) return '';
  return esc(v);
}

/** html`<p>${value}</p>`: values escaped, Html and arrays of Html inserted as they are. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let s = strings[0]!;
  for (let i = 0; i < values.length; i++) s += part(values[i]) + strings[i + 1]!;
  return new Html(s);
}

/** Constant markup written in this module's callers (never store values). */
export function raw(s: string): Html {
  return new Html(s);
}

/** A query string from parameters (empty values left out), for stable links. */
export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

/** A path segment holding a reference (slashes and colons kept readable, the rest encoded). */
export function refPath(ref: string): string {
  return encodeURIComponent(ref).replace(/%2F/g, '/').replace(/%3A/g, ':').replace(/%40/g, '@');
}
