import { readFile } from 'node:fs/promises';
import * as z from 'zod/mini';
import '../util/zod.js';
import { PlinthError } from '../util/errors.js';
import { parseYamlFile } from '../util/yamlfile.js';
import type { LintSeverity } from './types.js';

/**
 * hadolint's configuration file (.hadolint.yaml): `ignored`, `trustedRegistries`,
 * `failure-threshold` and `override` are honoured; hadolint's other keys are accepted and ignored.
 */
const Sev = z.enum(['error', 'warning', 'info', 'style', 'ignore', 'none']);
const ids = z.array(z.string().check(z.minLength(1)));

export const HadolintConfigSchema = z.looseObject({
  ignored: z.optional(ids),
  trustedRegistries: z.optional(ids),
  'failure-threshold': z.optional(Sev),
  override: z.optional(z.strictObject({ error: z.optional(ids), warning: z.optional(ids), info: z.optional(ids), style: z.optional(ids) })),
});

export interface HadolintConfig {
  file: string;
  ignored: string[];
  trustedRegistries: string[];
  failureThreshold?: LintSeverity | 'none';
  override: Partial<Record<LintSeverity, string[]>>;
}

export const HADOLINT_CONFIG_MAX_BYTES = 1024 * 1024;

export async function loadHadolintConfig(file: string, mustExist: boolean): Promise<HadolintConfig | undefined> {
  let text: string;
  try {
    const b = await readFile(file);
    if (b.length > HADOLINT_CONFIG_MAX_BYTES) throw new PlinthError('USAGE', `${file} is larger than ${HADOLINT_CONFIG_MAX_BYTES} bytes`);
    text = b.toString('utf8');
  } catch (e) {
    if (e instanceof PlinthError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !mustExist) return undefined;
    throw new PlinthError('USAGE', `cannot read ${file}: ${(e as Error).message}`);
  }
  if (text.trim() === '') return { file, ignored: [], trustedRegistries: [], override: {} };
  const c = parseYamlFile(text, HadolintConfigSchema, file);
  const t = c['failure-threshold'];
  return {
    file,
    ignored: (c.ignored ?? []).map((x) => x.toUpperCase().startsWith('DL') || x.toUpperCase().startsWith('PL') ? x.toUpperCase() : x),
    trustedRegistries: c.trustedRegistries ?? [],
    ...(t ? { failureThreshold: t === 'ignore' ? 'none' : t } : {}),
    override: c.override ?? {},
  };
}
