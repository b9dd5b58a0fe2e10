import { parseImageReference } from '../oci/reference.js';
import { formatPlatform, hostPlatform, parsePlatform, type Platform } from '../oci/types.js';
import { openSource, type OpenOptions } from '../source/open.js';
import { resolveRoot, selectImages } from '../source/image.js';
import { PlinthError, describeError } from '../util/errors.js';
import { parseDockerfile, type FromLine, type ParsedDockerfile } from './dockerfile.js';

/**
 * `plinth lint --fix`: pin `FROM image:tag` to `FROM image:tag@sha256:…` (the digest the tag
 * resolves to in the registry: the multi-platform index when it is one, which must list the build
 * platform; the tag is kept for humans, as Renovate and digestabot do). `--update` refreshes pins
 * whose tag has moved. A FROM written as one variable (`FROM ${BASE}`) is pinned in the global
 * ARG's default. Only the image text changes: every other byte of the file is kept.
 */
export interface FixOptions {
  /** Refresh existing pins whose tag now resolves elsewhere. */
  update?: boolean;
  registryOptions?: OpenOptions;
  /** The build platform (default: FROM --platform when literal, else this host's). */
  platform?: Platform;
  buildArgs?: Record<string, string>;
}

export interface FixChange {
  line: number;
  image: string;
  /** What the text was and becomes. */
  from: string;
  to: string;
  digest: string;
  action: 'pinned' | 'updated';
  /** The pin was written in the ARG default (FROM ${VAR}). */
  viaArg?: string;
}

export interface FixSkip {
  line: number;
  image: string;
  reason: string;
}

export interface FixResult {
  text: string;
  changes: FixChange[];
  skipped: FixSkip[];
  /** Images the registry could not resolve (the file is left as it was for them). */
  errors: FixSkip[];
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

/** A global `ARG NAME=value`: where its value is in the text. */
function argValueSpan(p: ParsedDockerfile, name: string, beforeLine: number): { start: number; end: number; value: string } | undefined {
  let found: { start: number; end: number; value: string } | undefined;
  for (const ins of p.instructions) {
    if (ins.getRange().start.line >= beforeLine) break;
    if (ins.getKeyword() !== 'ARG') continue;
    for (const a of ins.getArguments() as unknown as Array<{ getValue(): string; getRange(): { start: { line: number; character: number }; end: { line: number; character: number } } }>) {
      const v = a.getValue();
      const eq = v.indexOf('=');
      if (eq < 0 || v.slice(0, eq).trim() !== name) continue;
      const r = a.getRange();
      const s = p.lineStarts[r.start.line]! + r.start.character;
      const e = p.lineStarts[r.end.line]! + r.end.character;
      const raw = p.text.slice(s, e);
      const i = raw.indexOf('=');
      if (i < 0) continue;
      let vs = s + i + 1;
      let ve = e;
      const q = p.text[vs];
      if ((q === '"' || q === "'") && p.text[ve - 1] === q && ve - vs >= 2) {
        vs++;
        ve--;
      }
      found = { start: vs, end: ve, value: p.text.slice(vs, ve) };
    }
  }
  return found;
}

export async function fixDockerfile(text: string, o: FixOptions = {}): Promise<FixResult> {
  const p = parseDockerfile(text, o.buildArgs);
  const edits: Edit[] = [];
  const changes: FixChange[] = [];
  const skipped: FixSkip[] = [];
  const errors: FixSkip[] = [];
  const resolved = new Map<string, Promise<string>>();
  const seenArg = new Set<string>();
  for (const f of p.froms) {
    const line = f.line + 1;
    if (f.stageRef || !f.written) continue;
    if (f.resolved === null) {
      skipped.push({ line, image: f.written, reason: 'the image names a build argument without a default' });
      continue;
    }
    if (f.resolved.toLowerCase() === 'scratch') continue;
    if (!f.ref) {
      skipped.push({ line, image: f.resolved, reason: 'not a valid image reference' });
      continue;
    }
    const ref = f.ref;
    if (ref.digest && !o.update) {
      skipped.push({ line, image: f.resolved, reason: 'already pinned' });
      continue;
    }
    if (ref.digest && ref.tag === undefined) {
      // name@digest: no tag to follow.
      skipped.push({ line, image: f.resolved, reason: 'pinned without a tag: nothing to update' });
      continue;
    }
    // Where the text is: the FROM itself, or the default of the ARG it is written as.
    let span: { start: number; end: number; value: string } = { start: f.start, end: f.end, value: f.written };
    let viaArg: string | undefined;
    if (f.written.includes('$')) {
      const m = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(f.written);
      const a = m ? argValueSpan(p, m[1]!, f.line) : undefined;
      if (!m || !a || (o.buildArgs && Object.prototype.hasOwnProperty.call(o.buildArgs, m[1]!))) {
        skipped.push({ line, image: f.resolved, reason: 'the image is built from variables: pin the build argument instead' });
        continue;
      }
      if (a.value !== f.resolved) {
        skipped.push({ line, image: f.resolved, reason: 'the build argument default is not the image' });
        continue;
      }
      if (seenArg.has(m[1]!)) continue;
      seenArg.add(m[1]!);
      span = a;
      viaArg = m[1]!;
    }
    const tagRef = `${ref.name}:${ref.tag}`;
    let platform: Platform;
    try {
      platform = o.platform ?? (f.platform && !f.platform.includes('$') ? parsePlatform(f.platform) : hostPlatform());
    } catch (e) {
      skipped.push({ line, image: f.resolved, reason: `--platform ${f.platform}: ${describeError(e)}` });
      continue;
    }
    const key = `${tagRef}|${formatPlatform(platform)}`;
    let pr = resolved.get(key);
    if (!pr) {
      pr = resolveDigest(tagRef, platform, o.registryOptions ?? {});
      resolved.set(key, pr);
    }
    let digest: string;
    try {
      digest = await pr;
    } catch (e) {
      errors.push({ line, image: f.resolved, reason: describeError(e) });
      continue;
    }
    if (ref.digest === digest) {
      skipped.push({ line, image: f.resolved, reason: 'pin is current' });
      continue;
    }
    const newText = pinText(span.value, digest);
    edits.push({ start: span.start, end: span.end, text: newText });
    changes.push({ line, image: f.resolved, from: span.value, to: newText, digest, action: ref.digest ? 'updated' : 'pinned', ...(viaArg ? { viaArg } : {}) });
  }
  edits.sort((a, b) => b.start - a.start);
  let out = text;
  for (const e of edits) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return { text: out, changes, skipped, errors };
}

/** `image:tag` → `image:tag@digest`; `image:tag@old` → `image:tag@digest` (as written, not normalised). */
export function pinText(written: string, digest: string): string {
  const at = written.indexOf('@');
  return `${at >= 0 ? written.slice(0, at) : written}@${digest}`;
}

async function resolveDigest(image: string, platform: Platform, opts: OpenOptions): Promise<string> {
  parseImageReference(image);
  const src = await openSource(image, opts);
  try {
    const root = await resolveRoot(src);
    if (root.kind === 'index') {
      // The index is pinned (every platform keeps working); it must have the build platform.
      try {
        await selectImages(src, root, platform);
      } catch (e) {
        if (e instanceof PlinthError && e.code === 'PLATFORM_NOT_FOUND') throw new PlinthError('PLATFORM_NOT_FOUND', `${image} has no image for the build platform ${formatPlatform(platform)}`);
        throw e;
      }
    }
    return root.descriptor.digest;
  } finally {
    await src.close();
  }
}

/** A unified diff of two texts that have the same lines except some replaced (what --fix does). */
export function unifiedDiff(file: string, a: string, b: string, context = 3): string {
  const A = a.split('\n');
  const B = b.split('\n');
  if (A.length !== B.length) return `--- ${file}\n+++ ${file}\n(whole file changed)\n`;
  const changed: number[] = [];
  for (let i = 0; i < A.length; i++) if (A[i] !== B[i]) changed.push(i);
  if (!changed.length) return '';
  const hunks: Array<[number, number]> = [];
  for (const i of changed) {
    const s = Math.max(0, i - context);
    const e = Math.min(A.length - 1, i + context);
    const last = hunks[hunks.length - 1];
    if (last && s <= last[1] + 1) last[1] = e;
    else hunks.push([s, e]);
  }
  const L = [`--- a/${file}`, `+++ b/${file}`];
  for (const [s, e] of hunks) {
    const n = e - s + 1;
    L.push(`@@ -${s + 1},${n} +${s + 1},${n} @@`);
    for (let i = s; i <= e; i++) {
      if (A[i] === B[i]) L.push(` ${A[i]}`);
      else L.push(`-${A[i]}`, `+${B[i]}`);
    }
  }
  return `${L.join('\n')}\n`;
}

export type { FromLine };
