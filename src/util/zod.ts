/**
 * zod/mini with zod's English messages, for the file formats users write (policy, catalog). zod
 * classic costs ~5 ms to initialise at every start of a command that loads it; zod/mini is the
 * same validation core with functions instead of methods, and no locale until one is configured.
 * The messages are zod classic's, word for word.
 */
import * as z from 'zod/mini';
import { en } from 'zod/locales';

z.config(en());

export { z };

/** A copy of `s` with a description (for the JSON Schema): classic zod's `.describe()`. */
export function described<T extends z.ZodMiniType>(s: T, description: string): T {
  const c = s.clone() as T;
  z.globalRegistry.add(c, { description });
  return c;
}
