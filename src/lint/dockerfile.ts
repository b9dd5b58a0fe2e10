import { DockerfileParser, type Instruction, type From, type Flag } from 'dockerfile-ast';
import { parseImageReference, type ImageReference } from '../oci/reference.js';
import { lineOf, newestApproved, type Catalog, type CatalogEntry } from '../provenance/catalog.js';
import type { ImagePolicy } from '../policy/schema.js';
import { allCommands, effective, parseShell, SHELLS, type ParsedShell } from './shell.js';
import { policyImageProblems } from './policyimages.js';
import { ruleInfo } from './rules.js';
import type { Finding, LintSeverity } from './types.js';

/**
 * Dockerfile linting: hadolint's rules (same IDs, severities and messages) for what hadolint
 * checks, and Plinth's PL… rules for what only the catalog and the policy know. Multi-stage aware
 * (a FROM naming an earlier stage is not an image), global ARG defaults substituted in FROM,
 * heredocs, line continuations and the escape directive (dockerfile-ast parses them), and
 * hadolint's `# hadolint ignore=…` / `# hadolint global ignore=…` pragmas.
 */

export const DOCKERFILE_MAX_BYTES = 2 * 1024 * 1024;

export interface DockerfileLintOptions {
  file: string;
  /** hadolint trustedRegistries (registry globs; unqualified images are docker.io). */
  trustedRegistries?: readonly string[];
  /** The policy: allowedRegistries → DL3026, imageReferences → DL3007 / PL003 severities. */
  policy?: ImagePolicy;
  /** The catalog: PL001, PL002, PL008 (only when it has entries). */
  catalog?: Catalog;
  /** --build-arg values (override ARG defaults in FROM). */
  buildArgs?: Record<string, string>;
}

/** One FROM, resolved. Offsets are JS string indices in the text (for --fix). */
export interface FromLine {
  instruction: From;
  /** 0-based line of FROM. */
  line: number;
  /** The image as written (`${BASE}`, `debian:12`, `build`). */
  written: string;
  /** Start and end index of the written image in the text. */
  start: number;
  end: number;
  /** After ARG substitution; null when a variable has no value. */
  resolved: string | null;
  /** The stage this FROM starts (its alias, lower-cased), if named. */
  alias: string | null;
  /** The FROM names an earlier stage (not an image). */
  stageRef: boolean;
  ref: ImageReference | null;
  platform: string | null;
  /** Index of the stage. */
  stage: number;
}

export interface ParsedDockerfile {
  text: string;
  instructions: Instruction[];
  froms: FromLine[];
  escape: string;
  /** Start index of each line. */
  lineStarts: number[];
  globalArgs: Record<string, string | undefined>;
}

const KNOWN = new Set(['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

function lineStartsOf(text: string): number[] {
  const out = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) out.push(i + 1);
  return out;
}

/** `${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}` with the given values; null when one is unset. */
export function substitute(s: string, vars: Record<string, string | undefined>, escape = '\\'): string | null {
  let unresolved = false;
  const out = s.replace(new RegExp(`${escape === '`' ? '`' : '\\\\'}\\$|\\$\\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\\}|\\$([A-Za-z_][A-Za-z0-9_]*)`, 'g'), (m, braced: string | undefined, op: string | undefined, word: string | undefined, bare: string | undefined) => {
    if (m.endsWith('$') && m.length === 2) return '$';
    const name = braced ?? bare!;
    const v = vars[name];
    if (op === ':-') return v !== undefined && v !== '' ? v : word ?? '';
    if (op === '-') return v !== undefined ? v : word ?? '';
    if (op === ':+') return v !== undefined && v !== '' ? word ?? '' : '';
    if (op === '+') return v !== undefined ? word ?? '' : '';
    if (v === undefined) {
      unresolved = true;
      return m;
    }
    return v;
  });
  return unresolved ? null : out;
}

function parseArg(content: string): { name: string; value: string | undefined } {
  const i = content.indexOf('=');
  if (i < 0) return { name: content.trim(), value: undefined };
  let v = content.slice(i + 1).trim();
  if ((v.startsWith('"') && v.endsWith('"') && v.length >= 2) || (v.startsWith("'") && v.endsWith("'") && v.length >= 2)) v = v.slice(1, -1);
  return { name: content.slice(0, i).trim(), value: v };
}

export function parseDockerfile(text: string, buildArgs: Record<string, string> = {}): ParsedDockerfile {
  const df = DockerfileParser.parse(text);
  const lineStarts = lineStartsOf(text);
  const offset = (p: { line: number; character: number }) => (lineStarts[p.line] ?? text.length) + p.character;
  const instructions = df.getInstructions();
  const globalArgs: Record<string, string | undefined> = {};
  const froms: FromLine[] = [];
  const aliases = new Set<string>();
  let seenFrom = false;
  for (const ins of instructions) {
    const kw = ins.getKeyword();
    if (kw === 'ARG' && !seenFrom) {
      for (const a of ins.getArguments()) {
        const { name, value } = parseArg(a.getValue());
        if (name) globalArgs[name] = Object.prototype.hasOwnProperty.call(buildArgs, name) ? buildArgs[name] : value;
      }
    }
    if (kw !== 'FROM') continue;
    seenFrom = true;
    const from = ins as From;
    const range = from.getImageRange();
    const written = range ? text.slice(offset(range.start), offset(range.end)) : '';
    const resolved = written ? substitute(written, globalArgs, df.getEscapeCharacter()) : null;
    const stageRef = resolved !== null && aliases.has(resolved.toLowerCase());
    let ref: ImageReference | null = null;
    if (resolved && !stageRef && resolved.toLowerCase() !== 'scratch') {
      try {
        ref = parseImageReference(resolved);
      } catch {
        ref = null;
      }
    }
    const alias = from.getBuildStage()?.toLowerCase() ?? null;
    const pf = from.getPlatformFlag();
    froms.push({
      instruction: from,
      line: from.getRange().start.line,
      written,
      start: range ? offset(range.start) : 0,
      end: range ? offset(range.end) : 0,
      resolved,
      alias,
      stageRef,
      ref,
      platform: pf ? (pf.getValue() ?? '') : null,
      stage: froms.length,
    });
    if (alias) aliases.add(alias);
  }
  return { text, instructions, froms, escape: df.getEscapeCharacter(), lineStarts, globalArgs };
}

/** The script of a RUN: heredoc bodies, or the arguments with continuations joined and comment lines dropped. */
export function runScript(ins: Instruction, escape: string): string {
  const raw = ins.getRawArgumentsContent() ?? '';
  const heredoc = /^<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2[^\n]*\n/.exec(raw);
  if (heredoc) {
    const lines = raw.slice(heredoc[0].length).split('\n');
    const endIdx = lines.findIndex((l) => (heredoc[1] ? l.trim() : l.replace(/\r$/, '')) === heredoc[3]);
    return (endIdx < 0 ? lines : lines.slice(0, endIdx)).join('\n');
  }
  const lines = raw.split('\n').filter((l) => !/^\s*#/.test(l));
  let s = lines.join('\n');
  const esc = escape === '`' ? '`' : '\\\\';
  s = s.replace(new RegExp(`${esc}[ \\t]*\\r?\\n`, 'g'), ' ');
  return s;
}

interface Pragmas {
  global: Set<string>;
  /** 0-based line of an instruction → rule IDs ignored for it. */
  byLine: Map<number, Set<string>>;
}

const PRAGMA = /^#\s*hadolint\s+(global\s+)?ignore\s*=\s*([A-Za-z0-9_,\s-]+)$/i;

function pragmas(p: ParsedDockerfile): Pragmas {
  const lines = p.text.split('\n');
  const inside = new Set<number>();
  const starts = new Map<number, Instruction>();
  for (const ins of p.instructions) {
    const r = ins.getRange();
    starts.set(r.start.line, ins);
    for (let l = r.start.line + 1; l <= r.end.line; l++) inside.add(l);
  }
  const out: Pragmas = { global: new Set(), byLine: new Map() };
  let pending = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    if (inside.has(i)) continue;
    const t = lines[i]!.trim();
    const m = PRAGMA.exec(t);
    if (m) {
      const ids = m[2]!.split(/[,\s]+/).map((x) => x.trim().toUpperCase()).filter(Boolean);
      for (const id of ids) (m[1] ? out.global : pending).add(id);
      continue;
    }
    if (t.startsWith('#')) continue;
    if (starts.has(i)) {
      if (pending.size) out.byLine.set(i, pending);
      pending = new Set();
    } else if (t !== '') pending = new Set();
  }
  return out;
}

function globRe(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 'i');
}

/** hadolint's DL3026 over trustedRegistries: the registry (globs), unqualified images as docker.io. */
export function hadolintRegistryAllowed(image: string, trusted: readonly string[]): boolean {
  if (!trusted.length) return true;
  const first = image.split('/')[0]!;
  const qualified = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!qualified) return image === 'scratch' || trusted.some((t) => globRe(t).test('docker.io') || globRe(t).test('hub.docker.com'));
  return trusted.some((t) => globRe(t).test(first));
}

const ARCHIVE = ['.tar', '.gz', '.bz2', '.xz', '.zst', '.tgz', '.tb2', '.tbz', '.tbz2', '.lz', '.lzma', '.tlz', '.txz', '.Z', '.tZ'];
const isUrl = (s: string) => /^https?:\/\//.test(s.replace(/^["']|["']$/g, ''));
const SECRET_NAME = /(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|AUTH_?KEY|CREDENTIALS?|_PWD$|^PWD_)/i;
const PACKAGE_MANAGERS = new Set(['apt-get', 'apt', 'dpkg', 'apk', 'yum', 'dnf', 'microdnf', 'rpm', 'zypper', 'tdnf', 'pip', 'pip3', 'npm']);

function isRoot(user: string): boolean {
  return user.startsWith('root:') || user.startsWith('0:') || user === 'root' || user === '0';
}

/** Catalog entries for a reference (same repository and tag or digest). */
function catalogEntries(cat: Catalog, ref: ImageReference): CatalogEntry[] {
  return cat.bases.filter((b) => b.name === ref.name && ((ref.digest && (b.digest === ref.digest || b.index === ref.digest)) || (!ref.digest && ref.tag !== undefined && b.tag === ref.tag) || (ref.digest && ref.tag !== undefined && b.tag === ref.tag && !b.digest)));
}

/** An approved distroless variant of a base line: line `<line>-distroless` / `<line>/distroless`, or the same repository with a tag naming distroless. */
function distrolessVariant(cat: Catalog, ref: ImageReference, entries: CatalogEntry[]): CatalogEntry | undefined {
  const line = entries[0] ? lineOf(entries[0]) : ref.name;
  return cat.bases.find((b) => b.status === 'approved' && (lineOf(b) === `${line}-distroless` || lineOf(b) === `${line}/distroless` || (b.name === ref.name && /distroless/i.test(b.tag ?? '') && !/distroless/i.test(ref.tag ?? ''))));
}

export function lintDockerfile(text: string, o: DockerfileLintOptions): { findings: Finding[]; ignored: number; parsed: ParsedDockerfile } {
  const p = parseDockerfile(text, o.buildArgs);
  const raw: Array<Omit<Finding, 'file' | 'severity'> & { severity?: LintSeverity; insLine: number }> = [];
  const add = (rule: string, ins: { getRange(): { start: { line: number; character: number }; end: { line: number; character: number } } }, message?: string, severity?: LintSeverity) => {
    const r = ins.getRange();
    raw.push({ rule, message: message ?? ruleInfo(rule)!.description, line: r.start.line + 1, column: r.start.character + 1, endLine: r.end.line + 1, endColumn: r.end.character + 1, insLine: r.start.line, ...(severity ? { severity } : {}) });
  };
  const addAt = (rule: string, insLine: number, start: number, end: number, message?: string, severity?: LintSeverity) => {
    const pos = (i: number) => {
      let lo = 0;
      let hi = p.lineStarts.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (p.lineStarts[mid]! <= i) lo = mid;
        else hi = mid - 1;
      }
      return { line: lo + 1, column: i - p.lineStarts[lo]! + 1 };
    };
    const a = pos(start);
    const b = pos(end);
    raw.push({ rule, message: message ?? ruleInfo(rule)!.description, line: a.line, column: a.column, endLine: b.line, endColumn: b.column, insLine, ...(severity ? { severity } : {}) });
  };

  // DL3061: must begin with FROM, ARG (or comments / directives).
  const first = p.instructions[0];
  if (first && first.getKeyword() !== 'FROM' && first.getKeyword() !== 'ARG') add('DL3061', first);

  const trusted = o.trustedRegistries ?? [];
  const catalog = o.catalog && o.catalog.bases.length ? o.catalog : undefined;
  const finalStage = p.froms.length - 1;
  const fromByLine = new Map(p.froms.map((f) => [f.line, f]));
  const aliasesSoFar = new Set<string>();

  // Per-stage state.
  let stage = -1;
  let pipefail = false;
  let lastRootUser: Instruction | undefined;
  let finalShellOrPm: Instruction | undefined;

  const flushStage = () => {
    if (stage >= 0 && lastRootUser) add('DL3002', lastRootUser);
  };

  for (const ins of p.instructions) {
    const kw = ins.getKeyword();
    if (!KNOWN.has(kw)) {
      add('PL009', ins, `Unknown instruction ${kw.length > 40 ? `${kw.slice(0, 40)}…` : kw}`);
      continue;
    }
    if (kw === 'FROM') {
      flushStage();
      const f = fromByLine.get(ins.getRange().start.line)!;
      stage = f.stage;
      pipefail = false;
      lastRootUser = undefined;
      lintFrom(f);
      if (f.alias) aliasesSoFar.add(f.alias);
      continue;
    }
    if (stage < 0) continue;
    const flags = (ins as unknown as { getFlags?(): Flag[] }).getFlags?.() ?? [];
    const flag = (name: string) => flags.find((x) => x.getName().toLowerCase() === name);
    switch (kw) {
      case 'USER': {
        const u = (ins.getArgumentsContent() ?? '').trim();
        lastRootUser = isRoot(u) ? ins : undefined;
        break;
      }
      case 'WORKDIR': {
        const d = (ins.getArgumentsContent() ?? '').trim().replace(/^["']|["']$/g, '');
        if (d && !d.startsWith('/') && !d.startsWith('$') && !/^[A-Za-z]:[\\/]/.test(d)) add('DL3000', ins);
        break;
      }
      case 'SHELL': {
        const args = (ins.getArgumentsContent() ?? '').trim();
        let list: string[] = [];
        try {
          const v: unknown = JSON.parse(args);
          if (Array.isArray(v)) list = v.map(String);
        } catch {
          list = args.split(/\s+/);
        }
        const sh = list[0] ?? '';
        if (['pwsh', 'powershell', 'cmd'].some((x) => sh.toLowerCase().includes(x))) pipefail = true;
        else {
          const name = sh.split('/').pop() ?? '';
          const i = list.indexOf('-o');
          pipefail = ['bash', 'zsh', 'ash'].includes(name) && i >= 0 && list.slice(i + 1).includes('pipefail');
        }
        break;
      }
      case 'RUN': {
        const script = runScript(ins, p.escape);
        const isExec = /^\s*\[/.test(script);
        let sh: ParsedShell;
        if (isExec) {
          try {
            const v: unknown = JSON.parse(script);
            sh = parseShell(Array.isArray(v) ? v.map((x) => (/[\s|&;]/.test(String(x)) ? `'${String(x)}'` : String(x))).join(' ') : script);
          } catch {
            sh = parseShell(script);
          }
        } else sh = parseShell(script);
        if (sh.hasPipes && !pipefail && !isExec) add('DL4006', ins);
        lintShell(ins, sh, stage === finalStage);
        for (const m of flags.filter((x) => x.getName().toLowerCase() === 'mount')) {
          const from = /(?:^|,)from=([^,]+)/.exec(m.getValue() ?? '')?.[1];
          if (from) checkCopyFrom(ins, from);
        }
        break;
      }
      case 'ADD': {
        const args = ins.getArguments().map((a) => a.getValue());
        const srcs = args.slice(0, -1);
        if (srcs.length && !srcs.every((s) => isUrl(s) || ARCHIVE.some((x) => s.replace(/^["']|["']$/g, '').endsWith(x)))) add('DL3020', ins);
        if (srcs.some(isUrl) && !flag('checksum')) add('PL005', ins, `ADD ${srcs.find(isUrl)} has no --checksum=sha256:…: the download is not verified`);
        break;
      }
      case 'COPY': {
        const from = flag('from')?.getValue();
        if (from) checkCopyFrom(ins, from);
        break;
      }
      case 'ENV':
      case 'ARG': {
        const names = kw === 'ARG' ? ins.getArguments().map((a) => parseArg(a.getValue()).name) : envNames(ins);
        const secret = names.filter((n) => SECRET_NAME.test(n));
        if (secret.length) add('PL006', ins, `${kw} ${secret.join(', ')} looks like a secret: ${kw === 'ARG' ? 'build arguments are recorded in the image history' : 'the value is stored in the image config'}; use RUN --mount=type=secret`);
        break;
      }
      default:
        break;
    }
  }
  flushStage();

  // PL007: the final stage sets no USER.
  const last = p.froms[finalStage];
  if (last && !stageUserOf(p, finalStage)) add('PL007', last.instruction, `The final stage (FROM ${last.written}) sets no USER: the container runs as the base image's user, often root`);
  // PL008: the final stage runs a shell / package manager while the line has a distroless variant.
  if (catalog && last && finalShellOrPm) {
    const base = resolveStageBase(p, finalStage);
    if (base?.ref) {
      const variant = distrolessVariant(catalog, base.ref, catalogEntries(catalog, base.ref));
      if (variant) add('PL008', finalShellOrPm, `The final stage runs a shell or package manager on ${base.ref.familiar}; its line has a distroless variant in the catalog (${variant.name}${variant.tag ? `:${variant.tag}` : ''}): build in an earlier stage and copy into it`);
    }
  }

  // Pragmas.
  const pr = pragmas(p);
  const findings: Finding[] = [];
  let ignored = 0;
  for (const f of raw) {
    if (pr.global.has(f.rule) || pr.byLine.get(f.insLine)?.has(f.rule)) {
      ignored++;
      continue;
    }
    const { insLine: _insLine, severity, ...rest } = f;
    findings.push({ ...rest, severity: severity ?? ruleInfo(f.rule)!.severity, file: o.file });
  }
  findings.sort((a, b) => a.line - b.line || a.column - b.column || a.rule.localeCompare(b.rule));
  return { findings, ignored, parsed: p };

  function lintFrom(f: FromLine): void {
    const ins = f.instruction;
    const at = (rule: string, message?: string, severity?: LintSeverity) => (f.end > f.start ? addAt(rule, f.line, f.start, f.end, message, severity) : add(rule, ins, message, severity));
    if (f.platform !== null && f.platform !== '') {
      const r = ins.getPlatformFlag()!.getRange();
      raw.push({ rule: 'DL3029', message: ruleInfo('DL3029')!.description, line: r.start.line + 1, column: r.start.character + 1, endLine: r.end.line + 1, endColumn: r.end.character + 1, insLine: f.line });
    }
    if (f.stageRef || f.resolved === null || !f.written) return;
    const image = f.resolved;
    if (image.toLowerCase() === 'scratch') return;
    if (!f.ref) {
      at('PL001', `FROM ${image} is not a valid image reference`, 'error');
      return;
    }
    const ref = f.ref;
    const policyProblems = policyImageProblems(o.policy, image, ref);
    // DL3006: untagged (and not pinned).
    if (ref.tagDefaulted && !ref.digest) at('DL3006');
    // DL3007: latest without a digest (policy forbidLatest raises its severity).
    const latest = policyProblems.find((x) => x.kind === 'latest');
    if (!ref.tagDefaulted && ref.tag === 'latest' && !ref.digest) at('DL3007', undefined, latest?.severity);
    else if (latest && ref.tagDefaulted) at('DL3007', latest.message, latest.severity);
    // DL3026: registry allow-list (.hadolint.yaml trustedRegistries, policy allowedRegistries).
    if (!hadolintRegistryAllowed(image, trusted)) at('DL3026', `Use only an allowed registry in the FROM image (${image}; trusted: ${trusted.join(', ')})`);
    for (const x of policyProblems.filter((y) => y.kind === 'registry')) at('DL3026', `Use only an allowed registry in the FROM image: ${x.message}`, x.severity);
    // PL003: not pinned by digest.
    if (!ref.digest) {
      const pol = policyProblems.find((x) => x.kind === 'digest');
      at('PL003', pol?.message ?? `FROM ${image} is not pinned by digest: the tag can move (plinth lint --fix pins it)`, pol?.severity);
    }
    // Catalog: approved, deprecated, superseded.
    if (catalog) {
      const entries = catalogEntries(catalog, ref);
      if (!entries.length) at('PL001', `${ref.familiar} is not in the catalog of approved base images`);
      else if (entries.some((e) => e.status === 'deprecated')) {
        const e = entries.find((x) => x.status === 'deprecated')!;
        const next = e.successor ?? nameOf(newestApproved(catalog, lineOf(e), e.platform));
        at('PL002', `${ref.familiar} is deprecated in the catalog${e.reason ? ` (${e.reason})` : ''}${next ? `; use ${next}` : ''}`, 'error');
      } else if (!entries.some((e) => e.status === 'approved')) {
        const e = entries.find((x) => x.status === 'superseded');
        if (e) {
          const next = e.successor ?? nameOf(newestApproved(catalog, lineOf(e), e.platform));
          at('PL002', `${ref.familiar} is superseded in the catalog${next ? `; use ${next}` : ''}`);
        } else at('PL001', `${ref.familiar} is in the catalog but not approved (status ${entries[0]!.status})`);
      }
    }
  }

  function checkCopyFrom(ins: Instruction, from: string): void {
    // A stage (alias or index) is not an image.
    if (/^\d+$/.test(from) || aliasesSoFar.has(from.toLowerCase()) || p.froms.some((f) => f.alias === from.toLowerCase())) return;
    const image = substitute(from, p.globalArgs, p.escape);
    if (!image) return;
    if (!hadolintRegistryAllowed(image, trusted)) add('DL3026', ins, `Use only an allowed registry in the FROM image (${image} in --from; trusted: ${trusted.join(', ')})`);
    try {
      const ref = parseImageReference(image);
      for (const x of policyImageProblems(o.policy, image, ref).filter((y) => y.kind === 'registry')) add('DL3026', ins, `Use only an allowed registry in the FROM image: ${x.message}`, x.severity);
    } catch {
      /* not an image reference: nothing to check */
    }
  }

  function lintShell(ins: Instruction, sh: ParsedShell, final: boolean): void {
    const cmds = allCommands(sh);
    if (cmds.some((c) => c.words.some((w, i) => (i === 0 || c.words.slice(0, i).every((x) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(x))) && w.split('/').pop() === 'sudo'))) add('DL3004', ins);
    const unpinnedApt: string[] = [];
    const unpinnedApk: string[] = [];
    let pmOrShell = false;
    for (const c of cmds) {
      const { name, args } = effective(c.words);
      if (PACKAGE_MANAGERS.has(name) || SHELLS.has(name)) pmOrShell = true;
      if (name === 'apt-get' && args.includes('install')) {
        unpinnedApt.push(...argsNoFlags(args, ['-t', '--target-release']).filter((a) => a !== 'install' && !(a.includes('=') || a.includes('/') || a.endsWith('.deb'))));
      }
      if (name === 'apk' && args.includes('add')) {
        unpinnedApk.push(...argsNoFlags(args, ['-t', '--virtual', '--repository', '-X']).filter((a) => a !== 'add' && !(a.includes('=') || a.endsWith('.apk'))));
      }
    }
    if (unpinnedApt.length) add('DL3008', ins);
    if (unpinnedApk.length) add('DL3018', ins);
    if (final && !finalShellOrPm) {
      // A RUN in shell form runs /bin/sh: the final stage has a shell.
      if (pmOrShell || cmds.length) finalShellOrPm = ins;
    }
    // PL004: curl/wget | sh, sh -c "$(curl …)", bash <(curl …).
    const downloads = (cs: ParsedShell['commands']) => cs.some((c) => ['curl', 'wget'].includes(effective(c.words).name));
    let piped = false;
    const pipelines = new Map<number, ParsedShell['commands']>();
    for (const c of sh.commands) {
      const list = pipelines.get(c.pipeline);
      if (list) list.push(c);
      else pipelines.set(c.pipeline, [c]);
    }
    for (const cs of pipelines.values()) {
      const dl = cs.findIndex((c) => ['curl', 'wget'].includes(effective(c.words).name));
      if (dl >= 0 && cs.slice(dl + 1).some((c) => c.piped && isShellRun(effective(c.words)))) piped = true;
    }
    for (const c of sh.commands) {
      const e = effective(c.words);
      if (isShellRun(e, true) && e.args.some((a) => /^[$<]\(/.test(a) && /\b(curl|wget)\b/.test(a))) piped = true;
    }
    if (!piped && sh.substitutions.some((s) => downloads(s.commands)) && sh.commands.some((c) => SHELLS.has(effective(c.words).name) && c.words.some((w) => /^[$<]\(/.test(w) && /\b(curl|wget)\b/.test(w)))) piped = true;
    if (piped) add('PL004', ins, 'A download (curl or wget) is piped into a shell: download to a file, verify its checksum or signature, then run it');
  }
}

function isShellRun(e: { name: string; args: string[] }, withArgs = false): boolean {
  if (SHELLS.has(e.name)) return true;
  if (!withArgs && ['python', 'python3', 'perl', 'ruby', 'node'].includes(e.name) && (e.args.length === 0 || e.args[0] === '-')) return true;
  return false;
}

function argsNoFlags(args: string[], withValue: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (withValue.includes(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    out.push(a);
  }
  return out;
}

function envNames(ins: Instruction): string[] {
  const args = ins.getArguments().map((a) => a.getValue());
  if (args.length >= 2 && !args[0]!.includes('=')) return [args[0]!];
  return args.filter((a) => a.includes('=')).map((a) => a.slice(0, a.indexOf('=')));
}

function nameOf(e: CatalogEntry | undefined): string | undefined {
  return e ? `${e.name}${e.tag ? `:${e.tag}` : ''}@${e.index ?? e.digest}` : undefined;
}

function stageUserOf(p: ParsedDockerfile, stage: number): boolean {
  const from = p.froms[stage]!;
  const next = p.froms[stage + 1];
  const startLine = from.line;
  const endLine = next ? next.line : Number.POSITIVE_INFINITY;
  return p.instructions.some((i) => i.getKeyword() === 'USER' && i.getRange().start.line > startLine && i.getRange().start.line < endLine);
}

/** The image a stage is ultimately built on (following FROM <stage> chains). */
export function resolveStageBase(p: ParsedDockerfile, stage: number): FromLine | undefined {
  let f: FromLine | undefined = p.froms[stage];
  for (let guard = 0; f && f.stageRef && guard < 128; guard++) {
    const alias = f.resolved!.toLowerCase();
    f = p.froms.slice(0, f.stage).reverse().find((x) => x.alias === alias);
  }
  return f && !f.stageRef ? f : undefined;
}

