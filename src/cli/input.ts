import { readFile, stat } from 'node:fs/promises';
import { PlinthError } from '../util/errors.js';

/**
 * Read a file named on the command line (`-`: standard input); IO error naming what it was
 * (`what file: reason`); refused above `max` bytes.
 */
export async function readInput(file: string, what: string, max?: number): Promise<Buffer> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of process.stdin as AsyncIterable<Buffer>) {
      n += c.length;
      if (max !== undefined && n > max) throw new PlinthError('USAGE', `${what ? `${what} on ` : ''}standard input is larger than ${max} bytes`);
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  }
  try {
    if (max !== undefined) {
      const st = await stat(file);
      if (st.isFile() && st.size > max) throw new PlinthError('USAGE', `${what ? `${what} ` : ''}${file} is larger than ${max} bytes`);
    }
    return await readFile(file);
  } catch (e) {
    if (e instanceof PlinthError) throw e;
    throw new PlinthError('IO', `cannot read ${what ? `${what} ` : ''}${file}: ${(e as Error).message}`);
  }
}

/** A repeatable option's values, in order (commander's argParser for `--x <v>` given many times). */
export function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/** `--label key=value` options into an object; the flag is named in the error. */
export function keyValues(list: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list ?? []) {
    const i = l.indexOf('=');
    if (i <= 0) throw new PlinthError('USAGE', `${flag} must be key=value, got "${l}"`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}
