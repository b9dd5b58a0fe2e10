/**
 * Canonical JSON as Notary v1 signs it (docker/go's canonical/json, MarshalCanonical): object
 * keys in byte order, no whitespace, strings escaping only `"` and `\` (every other character
 * as is, UTF-8), integers only (a fraction or exponent is refused, as Go's canonical encoder
 * refuses floats).
 */
import { PlinthError } from '../util/errors.js';

const MAX_DEPTH = 64;

function str(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

export function canonicalJson(v: unknown): Buffer {
  const parts: string[] = [];
  const walk = (x: unknown, depth: number): void => {
    if (depth > MAX_DEPTH) throw new PlinthError('SIGNATURE_INVALID', `metadata nested deeper than ${MAX_DEPTH}`);
    if (x === null) parts.push('null');
    else if (typeof x === 'boolean') parts.push(x ? 'true' : 'false');
    else if (typeof x === 'number') {
      if (!Number.isSafeInteger(x)) throw new PlinthError('SIGNATURE_INVALID', `metadata holds the number ${x}; canonical JSON has integers only`);
      parts.push(String(x));
    } else if (typeof x === 'string') parts.push(str(x));
    else if (Array.isArray(x)) {
      parts.push('[');
      x.forEach((e, i) => {
        if (i) parts.push(',');
        walk(e, depth + 1);
      });
      parts.push(']');
    } else if (typeof x === 'object') {
      const keys = Object.keys(x as object).sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
      parts.push('{');
      keys.forEach((k, i) => {
        if (i) parts.push(',');
        parts.push(str(k), ':');
        walk((x as Record<string, unknown>)[k], depth + 1);
      });
      parts.push('}');
    } else throw new PlinthError('SIGNATURE_INVALID', `metadata holds a ${typeof x}, which JSON does not`);
  };
  walk(v, 0);
  return Buffer.from(parts.join(''), 'utf8');
}
