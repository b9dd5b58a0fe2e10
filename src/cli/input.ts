import { readFile, stat } from 'node:fs/promises';
import { PlinthError } from '../util/errors.js';

/** Read a file named on the command line; IO error naming what it was (`what file: reason`); refused above `max` bytes. */
export async function readInput(file: string, what: string, max?: number): Promise<Buffer> {
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
