/**
 * zod's English messages for zod/mini, and classic zod's `.describe()`. Plinth validates with
 * zod/mini (zod classic costs ~5 ms to initialise at every start of a command that loads it, and
 * ~450 KB of bundle with its locales): the same validation core, functions instead of methods, and
 * no locale until one is configured. A module whose users see zod's own messages imports this one
 * (`import '../util/zod.js'` at least): the messages are then zod classic's, word for word.
 * Import zod/mini itself as `import * as z from 'zod/mini'` (a namespace re-exported as a value
 * would bring every locale into the bundle).
 */
import * as z from 'zod/mini';
import { en } from 'zod/locales';

z.config(en());

/** A copy of `s` with a description (for the JSON Schema): classic zod's `.describe()`. */
export function described<T extends z.ZodMiniType>(s: T, description: string): T {
  const c = s.clone() as T;
  z.globalRegistry.add(c, { description });
  return c;
}
