import { readFile } from 'node:fs/promises';
import { PlinthError } from '../util/errors.js';

/** Read a file named on the command line; IO error naming what it was (`what file: reason`). */
export async function readInput(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new PlinthError('IO', `cannot read ${what ? `${what} ` : ''}${file}: ${(e as Error).message}`);
  }
}
