import { PlinthError } from '../util/errors.js';
import { familiarName, familiarString, parseImageReference, type ImageReference, type Reference } from '../oci/reference.js';
import { isDigest } from '../oci/digest.js';

/**
 * Globs in policies: one syntax everywhere (namespaces, label values, images, registries).
 *
 *   *       any run of characters except '/'
 *   **      any run of characters, '/' included
 *   ?       one character except '/'
 *   [abc] [a-z] [!a-z] [^a-z]   one character of (not of) a class (never '/')
 *   \x      the character x itself
 *
 * `*` keeps Go path.Match's meaning (distribution's FamiliarMatch, docker's reference filter);
 * `**` is the extension for "anything under": `ghcr.io/acme/**`.
 */
const cache = new Map<string, RegExp>();

export class GlobError extends PlinthError {
  constructor(
    readonly pattern: string,
    what: string,
  ) {
    super('USAGE', `invalid pattern ${JSON.stringify(pattern)}: ${what}`, { pattern });
  }
}

const SPECIAL = /[\\^$.|+(){}]/;

export function compileGlob(pattern: string): RegExp {
  const hit = cache.get(pattern);
  if (hit) return hit;
  if (pattern === '') throw new GlobError(pattern, 'empty pattern');
  let re = '';
  const cs = [...pattern];
  for (let i = 0; i < cs.length; i++) {
    const c = cs[i]!;
    if (c === '*') {
      if (cs[i + 1] === '*') {
        while (cs[i + 1] === '*') i++;
        re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      const n = cs[++i];
      if (n === undefined) throw new GlobError(pattern, 'trailing backslash');
      re += escape(n);
    } else if (c === '[') {
      let j = i + 1;
      let negate = false;
      if (cs[j] === '!' || cs[j] === '^') {
        negate = true;
        j++;
      }
      let body = '';
      let first = true;
      for (; j < cs.length; j++) {
        const d = cs[j]!;
        if (d === ']' && !first) break;
        first = false;
        if (d === '\\') {
          const n = cs[++j];
          if (n === undefined) throw new GlobError(pattern, 'trailing backslash');
          body += escape(n);
        } else if (d === '-' && body !== '' && cs[j + 1] !== ']') body += '-';
        else body += d === '^' || d === ']' || d === '[' || d === '-' ? `\\${d}` : d;
      }
      if (j >= cs.length) throw new GlobError(pattern, 'unterminated character class "["');
      if (body === '') throw new GlobError(pattern, 'empty character class');
      re += negate ? `(?![/])[^${body}]` : `(?![/])[${body}]`;
      i = j;
    } else re += escape(c);
  }
  let compiled: RegExp;
  try {
    compiled = new RegExp(`^${re}$`, 'u');
  } catch (e) {
    throw new GlobError(pattern, (e as Error).message);
  }
  if (cache.size > 10_000) cache.clear();
  cache.set(pattern, compiled);
  return compiled;
}

function escape(c: string): string {
  return SPECIAL.test(c) || c === '[' || c === ']' || c === '*' || c === '?' ? `\\${c}` : c;
}

export function globMatch(pattern: string, s: string): boolean {
  return compileGlob(pattern).test(s);
}

/** True when any pattern matches. */
export function anyGlob(patterns: readonly string[], s: string): boolean {
  return patterns.some((p) => globMatch(p, s));
}

/**
 * The forms of an image reference a pattern is tried against: canonical (`docker.io/library/
 * nginx:1.25`), name, name:tag, name@digest, and the familiar forms (`nginx:1.25`, `nginx`).
 * So `nginx`, `docker.io/library/nginx`, `nginx:1.*`, `ghcr.io/acme/**` all mean what they say.
 */
export function referenceForms(ref: Pick<ImageReference, 'registry' | 'repository' | 'tag' | 'digest'>): string[] {
  const name = `${ref.registry}/${ref.repository}`;
  const r: Reference = { domain: ref.registry, path: ref.repository, ...(ref.tag ? { tag: ref.tag } : {}), ...(ref.digest ? { digest: ref.digest } : {}) };
  const forms = new Set<string>([name]);
  if (ref.tag) forms.add(`${name}:${ref.tag}`);
  if (ref.digest) forms.add(`${name}@${ref.digest}`);
  if (ref.tag && ref.digest) forms.add(`${name}:${ref.tag}@${ref.digest}`);
  const fam = familiarName(r);
  forms.add(fam);
  if (ref.tag) forms.add(`${fam}:${ref.tag}`);
  if (ref.digest) forms.add(`${fam}@${ref.digest}`);
  forms.add(familiarString(r));
  return [...forms];
}

/** Whether an image pattern (glob over the forms above, or a bare digest) matches a reference. */
export function imagePatternMatches(pattern: string, ref: Pick<ImageReference, 'registry' | 'repository' | 'tag' | 'digest'>, extraDigests: ReadonlyArray<string | null | undefined> = []): boolean {
  if (isDigest(pattern)) return pattern === ref.digest || extraDigests.includes(pattern);
  const forms = referenceForms(ref);
  for (const d of extraDigests) if (d && d !== ref.digest) forms.push(`${ref.registry}/${ref.repository}@${d}`);
  const re = compileGlob(pattern);
  return forms.some((f) => re.test(f));
}

/** A reference for a base image `name` (normalised registry/repository) with optional tag and digest. */
export function baseReference(name: string, tag: string | null, digest: string | null): BaseRef | null {
  try {
    const r = parseImageReference(name);
    return { registry: r.registry, repository: r.repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
  } catch {
    return null;
  }
}

export interface BaseRef {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

/** Check that a pattern compiles; the message of the error otherwise. */
export function globProblem(pattern: string): string | undefined {
  try {
    compileGlob(pattern);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
