import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { describeError, PlinthError } from '../util/errors.js';
import { parsePublicKey } from '../sign/keys.js';
import { predicateType } from '../sign/payload.js';
import { parseTrustPolicy } from '../notation/trustpolicy.js';
import { loadTrustStores } from '../notation/verify.js';
import { parseYamlFile, yamlLocator } from '../util/yamlfile.js';
import { isDigest } from '../oci/digest.js';
import { globProblem } from './glob.js';
import { PolicySchema, ruleKind, ruleSettings, type ImagePolicy } from './schema.js';

/**
 * Load a policy file: YAML (or JSON) validated against the schema, then the checks a schema cannot
 * make (unique rule names, patterns that compile, real dates, known placeholders). Every error
 * names the file, line and column, the field and what is wrong.
 */
export interface LoadedPolicy {
  policy: ImagePolicy;
  /** `sha256:<hex>` of the file's bytes: a cache key for decisions made under this policy. */
  version: string;
  file: string;
  /** Things that are legal but probably not what the author meant (shown by plinth check). */
  warnings: string[];
}

export const POLICY_MAX_BYTES = 4 * 1024 * 1024;
export const PLACEHOLDERS = ['image', 'rule', 'namespace', 'base'] as const;

export async function loadPolicy(file: string, opts: { now?: number } = {}): Promise<LoadedPolicy> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PlinthError('USAGE', code === 'ENOENT' ? `policy file ${file} does not exist` : code === 'EISDIR' ? `policy ${file} is a directory, not a file` : `cannot read policy ${file}: ${(e as Error).message}`);
  }
  return parsePolicy(bytes, file, opts);
}

/** The same from bytes or text (a ConfigMap value, a request body). */
export function parsePolicy(input: string | Uint8Array, file = 'policy', opts: { now?: number } = {}): LoadedPolicy {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input);
  if (bytes.length > POLICY_MAX_BYTES) throw new PlinthError('USAGE', `${file}: the policy is larger than ${POLICY_MAX_BYTES / 1024 / 1024} MiB`);
  const text = bytes.toString('utf8');
  const policy = parseYamlFile(text, PolicySchema, file);
  const locate = yamlLocator(text);
  const errors: string[] = [];
  const warnings: string[] = [];
  const at = (path: Array<string | number>) => {
    const pos = locate(path);
    const where = path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('').replace(/^\./, '');
    return `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${where}`;
  };
  const glob = (pattern: string, path: Array<string | number>) => {
    const p = globProblem(pattern);
    if (p) errors.push(`${at(path)}: ${p}`);
  };
  const globs = (patterns: readonly string[] | undefined, path: Array<string | number>) => patterns?.forEach((p, i) => glob(p, [...path, i]));
  const now = opts.now ?? Date.now();

  const seen = new Map<string, number>();
  policy.spec.rules.forEach((rule, i) => {
    const rp: Array<string | number> = ['spec', 'rules', i];
    const first = seen.get(rule.name);
    if (first !== undefined) errors.push(`${at([...rp, 'name'])}: duplicate rule name "${rule.name}" (also rule ${first + 1}); rule names must be unique`);
    else seen.set(rule.name, i);
    if (rule.message) {
      for (const m of rule.message.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) {
        if (!(PLACEHOLDERS as readonly string[]).includes(m[1]!)) errors.push(`${at([...rp, 'message'])}: unknown placeholder {{${m[1]}}} (use ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(', ')})`);
      }
    }
    const m = rule.match;
    if (m) {
      globs(m.namespaces, [...rp, 'match', 'namespaces']);
      globs(m.excludeNamespaces, [...rp, 'match', 'excludeNamespaces']);
      globs(m.images, [...rp, 'match', 'images']);
      globs(m.excludeImages, [...rp, 'match', 'excludeImages']);
      for (const key of ['labels', 'excludeLabels'] as const) for (const [k, v] of Object.entries(m[key] ?? {})) glob(v, [...rp, 'match', key, k]);
    }
    const kind = ruleKind(rule);
    const kp = [...rp, kind];
    switch (kind) {
      case 'allowedBaseImages': {
        const s = ruleSettings(rule, kind);
        s.images?.forEach((p, j) => {
          if (/^sha(256|384|512):/.test(p) && !isDigest(p)) errors.push(`${at([...kp, 'images', j])}: "${p}" is not a valid digest`);
          else if (!isDigest(p)) glob(p, [...kp, 'images', j]);
        });
        break;
      }
      case 'allowedRegistries':
        globs(ruleSettings(rule, kind).registries, [...kp, 'registries']);
        break;
      case 'requiredLabels':
        ruleSettings(rule, kind).labels.forEach((l, j) => {
          if (l.value !== undefined) glob(l.value, [...kp, 'labels', j, 'value']);
        });
        break;
      case 'signatures': {
        // Keys are read and parsed here, once: evaluation gets PEM text it can trust.
        const sg = ruleSettings(rule, kind);
        const resolveKeys = (keys: string[], path: Array<string | number>) =>
          keys.map((k, j) => {
            try {
              if (k.includes('-----BEGIN')) {
                parsePublicKey(k, 'the inline key');
                return k;
              }
              const pem = readFileSync(isAbsolute(k) ? k : join(dirname(file), k), 'utf8');
              parsePublicKey(pem, k);
              // The file name stays with the key (a first "# name" line), so verdicts can name it.
              return `# ${k}\n${pem}`;
            } catch (e) {
              errors.push(`${at([...path, j])}: ${describeError(e)}`);
              return k;
            }
          });
        if (sg.keys) sg.keys = resolveKeys(sg.keys, [...kp, 'keys']);
        if (sg.trustedRoot) {
          // Read once here: evaluation gets the document's text.
          const p = isAbsolute(sg.trustedRoot) ? sg.trustedRoot : join(dirname(file), sg.trustedRoot);
          try {
            const text = readFileSync(p, 'utf8');
            JSON.parse(text);
            sg.trustedRoot = text;
          } catch (e) {
            errors.push(`${at([...kp, 'trustedRoot'])}: ${e instanceof SyntaxError ? `${sg.trustedRoot} is not JSON` : describeError(e)}`);
          }
        }
        if (sg.notaryV1 && !sg.notaryV1.rootKeys && !sg.notaryV1.trustDir) warnings.push(`${at([...kp, 'notaryV1'])}: without rootKeys or trustDir each check trusts the repository's root on first use (anyone who can write to the trust server can replace it); pin rootKeys`);
        if (sg.notaryV1?.trustDir) sg.notaryV1.trustDir = isAbsolute(sg.notaryV1.trustDir) ? sg.notaryV1.trustDir : join(dirname(file), sg.notaryV1.trustDir);
        if (sg.notation) {
          // The trust policy and the certificates of its trust stores are read once, here: evaluation gets their text.
          const nt = sg.notation;
          const rel = (p: string) => (isAbsolute(p) ? p : join(dirname(file), p));
          try {
            const text = readFileSync(rel(nt.trustPolicy), 'utf8');
            let doc: unknown;
            try {
              doc = JSON.parse(text);
            } catch {
              throw new PlinthError('USAGE', `${nt.trustPolicy} is not JSON`);
            }
            const tp = parseTrustPolicy(doc);
            const stores: Record<string, string[]> = {};
            for (const [k, v] of loadTrustStores(tp, rel(nt.trustStore))) {
              if (v instanceof PlinthError) errors.push(`${at([...kp, 'notation', 'trustStore'])}: ${v.message}`);
              else stores[k] = v.map((c) => c.toString());
            }
            nt.trustPolicy = text;
            nt.trustStore = JSON.stringify(stores);
          } catch (e) {
            errors.push(`${at([...kp, 'notation', 'trustPolicy'])}: ${describeError(e)}`);
          }
        }
        sg.attestations?.forEach((a, j) => {
          try {
            predicateType(a.type);
          } catch (e) {
            errors.push(`${at([...kp, 'attestations', j, 'type'])}: ${describeError(e)}`);
          }
          if (a.keys) a.keys = resolveKeys(a.keys, [...kp, 'attestations', j, 'keys']);
        });
        break;
      }
      case 'vulnerabilities':
        ruleSettings(rule, kind).exceptions?.forEach((x, j) => {
          const xp = [...kp, 'exceptions', j];
          globs(x.images, [...xp, 'images']);
          if (x.expires !== undefined) {
            const t = expiryTime(x.expires);
            if (t === undefined) errors.push(`${at([...xp, 'expires'])}: "${x.expires}" is not a date (use YYYY-MM-DD or an RFC 3339 time such as 2025-06-30T00:00:00Z)`);
            else if (t <= now) warnings.push(`${at([...xp, 'expires'])}: the exception for ${x.id} expired on ${x.expires}; it no longer excuses anything`);
          }
        });
        break;
      default:
        break;
    }
  });
  const bg = policy.spec.breakGlass;
  if (bg) {
    if (!/^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(bg.annotation)) {
      errors.push(`${at(['spec', 'breakGlass', 'annotation'])}: "${bg.annotation}" is not a valid annotation key ([prefix/]name, e.g. break-glass.image-policy.k8s.io/ticket)`);
    } else if (!bg.annotation.includes('.image-policy.k8s.io/')) {
      warnings.push(`${at(['spec', 'breakGlass', 'annotation'])}: the ImagePolicyWebhook admission plugin only forwards annotations named *.image-policy.k8s.io/*; "${bg.annotation}" is only seen by the validating webhook`);
    }
  }
  if (errors.length) {
    const more = errors.length > 10 ? `\n… and ${errors.length - 10} more` : '';
    throw new PlinthError('USAGE', `${errors.slice(0, 10).join('\n')}${more}`);
  }
  return { policy, version: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, file, warnings };
}

/**
 * The instant an exception stops excusing: a date (YYYY-MM-DD) is valid through the end of that
 * day (UTC); a time (RFC 3339) up to that instant. undefined for anything else.
 */
export function expiryTime(s: string): number | undefined {
  const d = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (d) {
    const t = Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3]));
    const back = new Date(t);
    if (back.getUTCFullYear() !== Number(d[1]) || back.getUTCMonth() !== Number(d[2]) - 1 || back.getUTCDate() !== Number(d[3])) return undefined;
    return t + 86_400_000;
  }
  if (!/^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/.test(s)) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}
