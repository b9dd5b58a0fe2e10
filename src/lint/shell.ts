/**
 * A small POSIX-shell reader for RUN lines: enough to find the commands, their words, and the
 * pipes between them (hadolint uses ShellCheck's parser; this follows the same tokens for the
 * rules Plinth implements). Quotes, escapes, `$(…)`, comments and operators are handled; what is
 * not understood is kept as words, never an error.
 */
export interface ShellCommand {
  /** Words with quotes removed; leading VAR=value assignments dropped. */
  words: string[];
  /** The command receives the previous command's output (`a | b`: b is piped). */
  piped: boolean;
  /** Index of the pipeline this command belongs to. */
  pipeline: number;
}

export interface ParsedShell {
  commands: ShellCommand[];
  /** A `|` pipe (not `||`) appears outside quotes. */
  hasPipes: boolean;
  /** `$(...)` and `<(...)` bodies, parsed as their own scripts. */
  substitutions: ParsedShell[];
}

const MAX_SCRIPT = 1 << 20;

export function parseShell(script: string, depth = 0): ParsedShell {
  const s = script.length > MAX_SCRIPT ? script.slice(0, MAX_SCRIPT) : script;
  const commands: ShellCommand[] = [];
  const substitutions: ParsedShell[] = [];
  let hasPipes = false;
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let piped = false;
  let pipeline = 0;
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = (op: 'pipe' | 'list') => {
    endWord();
    while (words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) words.shift();
    if (words.length) commands.push({ words, piped, pipeline });
    words = [];
    if (op === 'pipe') piped = true;
    else {
      piped = false;
      pipeline++;
    }
  };
  /** The body of `$(`…`)` / `<(`…`)` starting at i (after the open paren); returns the index after `)`. */
  const sub = (i: number): number => {
    let level = 1;
    let j = i;
    let q: string | null = null;
    for (; j < s.length; j++) {
      const c = s[j]!;
      if (q) {
        if (c === '\\' && q === '"') j++;
        else if (c === q) q = null;
        continue;
      }
      if (c === '\\') j++;
      else if (c === '"' || c === "'") q = c;
      else if (c === '(') level++;
      else if (c === ')' && --level === 0) break;
    }
    if (depth < 8) substitutions.push(parseShell(s.slice(i, j), depth + 1));
    return j;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      if (s[i + 1] === '\n') {
        i++;
        continue;
      }
      word += s[i + 1] ?? '';
      inWord = true;
      i++;
      continue;
    }
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      const end = j < 0 ? s.length : j;
      word += s.slice(i + 1, end);
      inWord = true;
      i = end;
      continue;
    }
    if (c === '"') {
      inWord = true;
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === '\\' && j + 1 < s.length) {
          j++;
          word += s[j];
        } else if (s[j] === '$' && s[j + 1] === '(') {
          const end = sub(j + 2);
          word += s.slice(j, end + 1);
          j = end;
        } else word += s[j];
      }
      i = j;
      continue;
    }
    if ((c === '$' || c === '<') && s[i + 1] === '(') {
      const end = sub(i + 2);
      word += s.slice(i, end + 1);
      inWord = true;
      i = end;
      continue;
    }
    if (c === '#' && !inWord) {
      const j = s.indexOf('\n', i);
      i = j < 0 ? s.length : j - 1;
      continue;
    }
    if (c === '|') {
      if (s[i + 1] === '|') {
        endCommand('list');
        i++;
      } else {
        hasPipes = true;
        endCommand('pipe');
      }
      continue;
    }
    if (c === '&') {
      if (s[i + 1] === '&') i++;
      endCommand('list');
      continue;
    }
    if (c === ';' || c === '\n' || c === '(' || c === ')' || c === '{' && !inWord || c === '}' && !inWord) {
      endCommand('list');
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      endWord();
      continue;
    }
    word += c;
    inWord = true;
  }
  endCommand('list');
  return { commands, hasPipes, substitutions };
}

/** Every command, including those in `$(…)` substitutions. */
export function allCommands(p: ParsedShell): ShellCommand[] {
  return [...p.commands, ...p.substitutions.flatMap(allCommands)];
}

export function basename(cmd: string): string {
  const i = cmd.lastIndexOf('/');
  return i >= 0 ? cmd.slice(i + 1) : cmd;
}

/** The command name and its arguments, past `sudo`, `env`, `command`, `exec` and their flags. */
export function effective(words: readonly string[]): { name: string; args: string[] } {
  let i = 0;
  while (i < words.length) {
    const n = basename(words[i]!);
    if (n === 'sudo' || n === 'env' || n === 'command' || n === 'exec' || n === 'nohup' || n === 'time') {
      i++;
      while (i < words.length && (words[i]!.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!))) i++;
      continue;
    }
    break;
  }
  return { name: basename(words[i] ?? ''), args: words.slice(i + 1) };
}

export const SHELLS = new Set(['sh', 'bash', 'zsh', 'ash', 'dash', 'ksh', 'mksh', 'busybox']);
