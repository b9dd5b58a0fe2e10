import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlinthError } from '../src/util/errors.js';
import {
  compareApk,
  compareApkFuzzy,
  compareDeb,
  compareRpmEvr,
  compareVersions,
  isValidVersion,
  matchApkVersion,
  parseVersion,
  requireVersion,
  rpmvercmp,
  type Ordering,
  type VersionKind,
} from '../src/vuln/version.js';
import { mulberry32, repoRoot } from './helpers/common.js';

// ---------------------------------------------------------------------------------------------
// Shared vectors: <repo>/../shared/vectors/version. From dist/test/ walk up to package.json.
// ---------------------------------------------------------------------------------------------


const VECTORS = resolve(repoRoot(), '..', 'shared', 'vectors', 'version');

function readLines(name: string): Array<{ line: number; text: string }> {
  return readFileSync(join(VECTORS, name), 'utf8')
    .split('\n')
    .map((text, i) => ({ line: i + 1, text: text.replace(/\r$/, '') }));
}

interface TsvRow {
  line: number;
  v1: string;
  op: string;
  v2: string;
  scope: string;
  source: string;
}

/** TSV rows; fields are NOT trimmed (an empty v1/v2 is a real vector). */
function readTsv(name: string): TsvRow[] {
  const rows: TsvRow[] = [];
  for (const { line, text } of readLines(name)) {
    if (text === '' || text.startsWith('#')) continue;
    const f = text.split('\t');
    assert.equal(f.length, 5, `${name}:${line}: expected 5 tab-separated fields, got ${f.length}`);
    rows.push({ line, v1: f[0]!, op: f[1]!, v2: f[2]!, scope: f[3]!, source: f[4]! });
  }
  return rows;
}

function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const list = m.get(k);
    if (list) list.push(it);
    else m.set(k, [it]);
  }
  return m;
}

const show = (s: string): string => JSON.stringify(s);
const OPS: Record<string, Ordering> = { '<': -1, '=': 0, '>': 1 };
/** The reverse ordering (no -0). */
const rev = (o: Ordering): Ordering => (o === 0 ? 0 : o === 1 ? -1 : 1);

/** Assert `cmp(v1, v2)` satisfies op, and (for exact ops) that the reverse comparison agrees. */
function assertOrder(cmp: (a: string, b: string) => Ordering, row: TsvRow): void {
  const got = cmp(row.v1, row.v2);
  if (row.op === '>=') {
    assert.ok(got >= 0, `${show(row.v1)} should not be less than ${show(row.v2)}, got ${got}`);
    return;
  }
  const want = OPS[row.op];
  assert.ok(want !== undefined, `unknown op ${row.op}`);
  assert.equal(got, want, `${show(row.v1)} ${row.op} ${show(row.v2)}`);
  assert.equal(cmp(row.v2, row.v1), rev(want), `reverse of ${show(row.v1)} ${row.op} ${show(row.v2)}`);
}

// Rows deliberately not asserted, keyed by `file:line`, with the reason.
const DEB_SKIPS = new Map<string, string>([
  // t-version.c's test for "0:0-" comes from a libdpkg that accepted an empty revision; current dpkg
  // (1.21.22 `dpkg --compare-versions`, see README) and Dpkg_Version.t ("1.0-" invalid, also a vector)
  // reject it with "revision number is empty". We follow current dpkg, so this row contradicts "1.0-".
  ['0:0-\tvalid', 'libdpkg test accepted an empty revision; current dpkg and the "1.0-" invalid vector reject it'],
  // go-deb-version accepts '_' in a revision; dpkg warns "invalid character in revision number", and the
  // t-version.c vectors (e.g. "0:0-_" invalid) count dpkg warnings as invalid. Comparisons of this
  // version (cmp rows) still follow dpkg and are asserted.
  ['6.0-4.el6.x86_64\tvalid', "go-deb-version accepts '_' in the revision; dpkg flags it (\"0:0-_\" invalid vector)"],
]);

const counts: Record<string, { asserted: number; skipped: number }> = {};
function count(file: string, asserted: boolean): void {
  const c = (counts[file] ??= { asserted: 0, skipped: 0 });
  if (asserted) c.asserted++;
  else c.skipped++;
}

// ---------------------------------------------------------------------------------------------
// deb.tsv
// ---------------------------------------------------------------------------------------------

describe('deb.tsv', () => {
  const rows = readTsv('deb.tsv');
  test('vector file has the documented row counts', () => {
    assert.equal(rows.filter((r) => r.scope === 'cmp').length, 119);
    assert.equal(rows.filter((r) => r.scope === 'valid').length, 91);
  });
  for (const [scope, list] of groupBy(rows, (r) => r.scope)) {
    describe(`scope ${scope}`, () => {
      for (const row of list) {
        const name = `line ${row.line}: ${show(row.v1)} ${row.op} ${row.v2 === '' ? '' : show(row.v2)} (${row.source})`;
        const skip = DEB_SKIPS.get(`${row.v1}\t${row.op}`);
        count('deb.tsv', !skip);
        if (skip) {
          test(name, { skip });
          continue;
        }
        test(name, () => {
          if (scope === 'cmp') {
            assertOrder(compareDeb, row);
            assertOrder((a, b) => compareVersions('deb', a, b), row);
          } else if (scope === 'valid') {
            const r = parseVersion('deb', row.v1);
            if (row.op === 'valid') assert.ok(r.ok, `${show(row.v1)} should be valid: ${r.ok ? '' : r.reason}`);
            else if (row.op === 'invalid') assert.ok(!r.ok, `${show(row.v1)} should be invalid`);
            else assert.fail(`unknown op ${row.op}`);
            assert.equal(isValidVersion('deb', row.v1), row.op === 'valid');
          } else {
            assert.fail(`unknown scope ${scope}`);
          }
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// rpm.tsv
// ---------------------------------------------------------------------------------------------

describe('rpm.tsv', () => {
  const rows = readTsv('rpm.tsv');
  test('vector file has the documented row counts', () => {
    assert.equal(rows.length, 4607);
    assert.equal(rows.filter((r) => r.scope === 'rpmvercmp').length, 4577);
    assert.equal(rows.filter((r) => r.scope === 'rpmvercmp-oddity-disabled').length, 12);
    assert.equal(rows.filter((r) => r.scope === 'evr').length, 18);
  });
  for (const [scope, list] of groupBy(rows, (r) => r.scope)) {
    describe(`scope ${scope}`, () => {
      // rpmvercmp-oddity-disabled rows are "dnl"-ed upstream (not asserted there); rpmvercmp as written
      // produces exactly what they state, so they are asserted here too.
      const cmp =
        scope === 'evr' ? compareRpmEvr : scope === 'rpmvercmp' || scope === 'rpmvercmp-oddity-disabled' ? rpmvercmp : null;
      for (const row of list) {
        count('rpm.tsv', true);
        test(`line ${row.line}: ${show(row.v1)} ${row.op} ${show(row.v2)}`, () => {
          assert.ok(cmp, `unknown scope ${scope}`);
          assertOrder(cmp, row);
          if (scope === 'evr') assertOrder((a, b) => compareVersions('rpm', a, b), row);
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// apk.txt (apk-tools test/unit/version.data)
// ---------------------------------------------------------------------------------------------

type ApkRow =
  | { line: number; kind: 'cmp'; v1: string; op: string; v2: string; negate: boolean; scope: 'strict' | 'fuzzy' }
  | { line: number; kind: 'valid'; v: string; negate: boolean };

/** Parsed like version_test.c: '#' starts a comment, "v1 [!]op v2" or "[!]version". */
function readApk(): ApkRow[] {
  const rows: ApkRow[] = [];
  for (const { line, text } of readLines('apk.txt')) {
    const hash = text.indexOf('#');
    const body = (hash >= 0 ? text.slice(0, hash) : text).trim();
    if (body === '') continue;
    const parts = body.split(/[ \t]+/);
    if (parts.length === 3) {
      let op = parts[1]!;
      const negate = op.startsWith('!');
      if (negate) op = op.slice(1);
      rows.push({ line, kind: 'cmp', v1: parts[0]!, op, v2: parts[2]!, negate, scope: op.includes('~') ? 'fuzzy' : 'strict' });
    } else if (parts.length === 1) {
      const negate = parts[0]!.startsWith('!');
      rows.push({ line, kind: 'valid', v: negate ? parts[0]!.slice(1) : parts[0]!, negate });
    } else {
      throw new Error(`apk.txt:${line}: cannot parse ${show(text)}`);
    }
  }
  return rows;
}

describe('apk.txt', () => {
  const rows = readApk();
  test('vector file has the documented row counts', () => {
    assert.equal(rows.length, 785);
    assert.equal(rows.filter((r) => r.kind === 'cmp' && r.scope === 'strict').length, 738);
    assert.equal(rows.filter((r) => r.kind === 'cmp' && r.scope === 'fuzzy').length, 16);
    assert.equal(rows.filter((r) => r.kind === 'valid' && !r.negate).length, 6);
    assert.equal(rows.filter((r) => r.kind === 'valid' && r.negate).length, 25);
  });
  const scopeOf = (r: ApkRow): string => (r.kind === 'cmp' ? `${r.scope} comparisons` : r.negate ? 'invalid versions' : 'valid versions');
  for (const [scope, list] of groupBy(rows, scopeOf)) {
    describe(scope, () => {
      for (const row of list) {
        count('apk.txt', true);
        if (row.kind === 'cmp') {
          test(`line ${row.line}: ${row.v1} ${row.negate ? '!' : ''}${row.op} ${row.v2}`, () => {
            const ok = matchApkVersion(row.v1, row.op, row.v2);
            assert.equal(ok, !row.negate, `${row.v1} ${row.op} ${row.v2} should be ${!row.negate}`);
            if (row.scope === 'strict' && !row.negate) {
              const want = OPS[row.op]!;
              assert.equal(compareApk(row.v1, row.v2), want);
              assert.equal(compareApk(row.v2, row.v1), rev(want));
              assert.equal(compareVersions('apk', row.v1, row.v2), want);
            }
          });
        } else {
          test(`line ${row.line}: ${row.negate ? 'invalid' : 'valid'} ${show(row.v)}`, () => {
            const r = parseVersion('apk', row.v);
            assert.equal(r.ok, !row.negate, r.ok ? `${show(row.v)} should be invalid` : `${show(row.v)}: ${r.reason}`);
            assert.equal(isValidVersion('apk', row.v), !row.negate);
          });
        }
      }
    });
  }
});

test('vector accounting', () => {
  // Every row is either asserted or explicitly skipped (with a reason) above.
  assert.deepEqual(counts, {
    'deb.tsv': { asserted: 208, skipped: 2 },
    'rpm.tsv': { asserted: 4607, skipped: 0 },
    'apk.txt': { asserted: 785, skipped: 0 },
  });
});

// ---------------------------------------------------------------------------------------------
// Behaviour beyond the vectors
// ---------------------------------------------------------------------------------------------

const KINDS: VersionKind[] = ['deb', 'rpm', 'apk'];

describe('long digit runs compare exactly (no Number overflow)', () => {
  const big = '9'.repeat(400);
  const bigger = '1' + '0'.repeat(400);
  const padded = '0'.repeat(300) + big;
  for (const kind of KINDS) {
    test(kind, () => {
      assert.equal(compareVersions(kind, `1.${big}`, `1.${bigger}`), -1);
      assert.equal(compareVersions(kind, `1.${bigger}`, `1.${big}`), 1);
      assert.equal(compareVersions(kind, `${big}.1`, `${bigger}.0`), -1);
      // Beyond 2^53 and 2^64, adjacent values still differ.
      assert.equal(compareVersions(kind, '1.18446744073709551616', '1.18446744073709551617'), -1);
      assert.equal(compareVersions(kind, '9007199254740993', '9007199254740992'), 1);
      assert.equal(compareVersions(kind, `1.${big}`, `1.${big}`), 0);
    });
  }
  test('leading zeros: numeric for deb/rpm, apk string-compares non-initial zero-led numbers', () => {
    assert.equal(compareDeb(padded, big), 0);
    assert.equal(rpmvercmp(padded, big), 0);
    assert.equal(compareApk(padded, big), 0); // the initial number is always numeric in apk
    assert.equal(compareApk(`1.${padded}`, `1.${big}`), -1); // "0…" vs "9…" as strings
  });
  test('deb epoch beyond INT_MAX is invalid; rpm epoch compares exactly', () => {
    assert.equal(parseVersion('deb', '2147483647:1').ok, true);
    assert.equal(parseVersion('deb', '2147483648:1').ok, false);
    assert.equal(compareRpmEvr(`${bigger}:1`, `${big}:9`), 1);
    assert.equal(parseVersion('rpm', '4294967296:1').ok, false);
  });
});

describe('empty strings', () => {
  for (const kind of KINDS) {
    test(kind, () => {
      assert.equal(compareVersions(kind, '', ''), 0);
      assert.equal(compareVersions(kind, '', '1'), -1);
      assert.equal(compareVersions(kind, '1', ''), 1);
      assert.equal(isValidVersion(kind, ''), false);
      const r = parseVersion(kind, '');
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.reason, /empty/);
    });
  }
  test('deb: "" is the blank version (equal to "0", above "0~"), blank-only strings compare like it', () => {
    assert.equal(compareDeb('', '0'), 0);
    assert.equal(compareDeb('', '0:0-0'), 0);
    assert.equal(compareDeb('', '0~'), 1);
    assert.equal(compareDeb('', '~'), 1);
    assert.equal(compareDeb('  \t ', ''), 0);
  });
  test('rpm: "" is above "~" (tilde sorts before the end)', () => {
    assert.equal(compareRpmEvr('~', ''), -1);
    assert.equal(compareRpmEvr('^', ''), 1);
  });
});

describe('whitespace', () => {
  test('deb: leading/trailing blanks are ignored (as dpkg does); embedded blanks are invalid', () => {
    assert.equal(compareDeb(' \t1.0-1 \t', '1.0-1'), 0);
    assert.ok(isValidVersion('deb', '  1:2.0-3  '));
    assert.deepEqual(requireVersion('deb', '  1:2.0-3  '), { kind: 'deb', epoch: 1, upstream: '2.0', revision: '3' });
    assert.equal(isValidVersion('deb', '1.0 1'), false);
    assert.equal(isValidVersion('deb', '1.0\n'), false);
    assert.doesNotThrow(() => compareDeb('1.0 1', '1.0'));
  });
  test('rpm: whitespace is a separator in comparison but not allowed in a version', () => {
    assert.equal(compareRpmEvr('1.0 ', '1.0'), 0);
    assert.equal(compareRpmEvr(' 1.0', '1.0'), 0);
    assert.equal(isValidVersion('rpm', '1.0 '), false);
  });
  test('apk: whitespace makes a version invalid and compares as apk does (lower)', () => {
    assert.equal(isValidVersion('apk', '1.0 '), false);
    assert.equal(compareApk('1.0 ', '1.0'), -1);
    assert.equal(compareApk(' 1.0', '0'), -1);
  });
});

describe('structured parse results', () => {
  test('deb', () => {
    assert.deepEqual(requireVersion('deb', '2:7.4.052-1ubuntu3.1'), {
      kind: 'deb',
      epoch: 2,
      upstream: '7.4.052',
      revision: '1ubuntu3.1',
    });
    assert.deepEqual(requireVersion('deb', '1:2-3:4-5'), { kind: 'deb', epoch: 1, upstream: '2-3:4', revision: '5' });
    // strtol quirks dpkg keeps: a '+' sign and "-0" are accepted epochs.
    assert.equal(requireVersion('deb', '+1:2').epoch, 1);
    assert.equal(requireVersion('deb', '-0:2').epoch, 0);
    const r = parseVersion('deb', '1.0-');
    assert.deepEqual(r, { ok: false, reason: 'revision number is empty' });
  });
  test('rpm', () => {
    assert.deepEqual(requireVersion('rpm', '3:1.2.3-4.el9'), { kind: 'rpm', epoch: 3, version: '1.2.3', release: '4.el9' });
    assert.deepEqual(requireVersion('rpm', '1.0^git1~rc1'), { kind: 'rpm', epoch: null, version: '1.0^git1~rc1', release: null });
    assert.equal(parseVersion('rpm', '1..0').ok, false);
    assert.equal(parseVersion('rpm', '1.0-').ok, false);
    assert.equal(parseVersion('rpm', 'a:1.0').ok, false);
  });
  test('apk', () => {
    assert.deepEqual(requireVersion('apk', '1.2.3b_alpha2_p1~ab12-r7'), {
      kind: 'apk',
      numbers: ['1', '2', '3'],
      letter: 'b',
      suffixes: [
        { name: 'alpha', number: '2' },
        { name: 'p', number: '1' },
      ],
      commitHash: 'ab12',
      revision: '7',
    });
    const r = parseVersion('apk', '0.1_foobar');
    assert.ok(!r.ok);
    assert.match(r.reason, /unknown suffix "_foobar"/);
  });
  test('requireVersion throws PlinthError USAGE with the reason', () => {
    for (const [kind, v] of [
      ['deb', 'a:1'],
      ['rpm', ''],
      ['apk', '1.0-x'],
    ] as const) {
      assert.throws(
        () => requireVersion(kind, v),
        (e: unknown) => e instanceof PlinthError && e.code === 'USAGE' && e.message.includes(`invalid ${kind} version`),
      );
    }
  });
  test('NUL characters: the C references stop at NUL; parseVersion rejects them', () => {
    for (const kind of KINDS) {
      assert.equal(compareVersions(kind, '1.0\0garbage', '1.0'), 0);
      assert.equal(isValidVersion(kind, '1.0\0'), false);
    }
  });
  test('unknown kind is a usage error', () => {
    assert.throws(
      () => compareVersions('npm' as VersionKind, '1', '2'),
      (e: unknown) => e instanceof PlinthError && e.code === 'USAGE',
    );
    assert.throws(() => parseVersion('npm' as VersionKind, '1'), PlinthError);
  });
});

describe('apk fuzzy matching', () => {
  test('fuzzy compare treats b as a prefix', () => {
    assert.equal(compareApkFuzzy('3.6.9', '3.6'), 0);
    assert.equal(compareApkFuzzy('3.6', '3.6.9'), -1);
    assert.equal(compareApkFuzzy('3.7', '3.6'), 1);
    assert.equal(compareApk('3.6.9', '3.6'), 1);
  });
  test('operators', () => {
    assert.ok(matchApkVersion('1.2', '<=', '1.2'));
    assert.ok(matchApkVersion('1.2-r1', '>=', '1.2'));
    assert.ok(!matchApkVersion('1.2', '!=', '1.2'));
    assert.ok(matchApkVersion('anything', '<=>', 'else'));
    assert.throws(() => matchApkVersion('1', '=>x', '1'), PlinthError);
    assert.throws(() => matchApkVersion('1', '', '1'), PlinthError);
  });
});

describe('hostile input', () => {
  const K100 = 100 * 1024;
  const patterns: Record<string, string> = {
    digits: '7'.repeat(K100),
    zeros: '0'.repeat(K100),
    letters: 'a'.repeat(K100),
    dots: '1.'.repeat(K100 / 2),
    tildes: '~'.repeat(K100),
    carets: '^'.repeat(K100),
    hyphens: '1-'.repeat(K100 / 2),
    colons: '1:'.repeat(K100 / 2),
    suffixes: '1' + '_p1'.repeat(K100 / 3),
    mixed: 'a1.~^-:_+'.repeat(Math.floor(K100 / 9)),
    unicode: 'é1ß'.repeat(Math.floor(K100 / 3)),
    blanks: '1' + ' '.repeat(K100) + '1',
  };
  for (const kind of KINDS) {
    test(`${kind}: 100 KB strings compare and parse quickly`, () => {
      const names = Object.keys(patterns);
      const start = performance.now();
      for (const x of names) {
        for (const y of names) {
          const a = patterns[x]!;
          const b = patterns[y]!;
          const r = compareVersions(kind, a, b);
          assert.ok(r === -1 || r === 0 || r === 1);
          // A one-character difference at the very end must still be seen.
          assert.equal(compareVersions(kind, a, a), 0);
        }
        parseVersion(kind, patterns[x]!);
        isValidVersion(kind, patterns[x]!);
      }
      const digitsA = '1.' + '9'.repeat(K100);
      const digitsB = '1.' + '9'.repeat(K100 - 1) + '8';
      assert.equal(compareVersions(kind, digitsA, digitsB), 1);
      const elapsed = performance.now() - start;
      assert.ok(elapsed < 3000, `took ${elapsed.toFixed(0)} ms`);
    });
  }
});

describe('seeded fuzz: compareVersions never throws and is a consistent comparator', () => {
  const ALPHABET = [
    ...'0123456789',
    ...'0019',
    ...'abcfprgz',
    ...'ABZ',
    ...'.-+~^:_ \t',
    '_alpha',
    '_rc',
    '_p',
    '-r',
    '~',
    '\0',
    '\n',
    'é',
    '😀',
    '\uD800',
  ];
  for (const kind of KINDS) {
    test(kind, () => {
      const rnd = mulberry32(0x5eed + kind.charCodeAt(0));
      const gen = (): string => {
        const n = Math.floor(rnd() * 14);
        let s = '';
        for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)]!;
        return s;
      };
      const pool: string[] = [];
      for (let i = 0; i < 400; i++) pool.push(gen());
      for (let i = 0; i < 20000; i++) {
        const a = pool[Math.floor(rnd() * pool.length)]!;
        const b = rnd() < 0.5 ? pool[Math.floor(rnd() * pool.length)]! : gen();
        let ab: Ordering;
        let ba: Ordering;
        try {
          ab = compareVersions(kind, a, b);
          ba = compareVersions(kind, b, a);
          parseVersion(kind, a);
        } catch (e) {
          assert.fail(`${kind} threw on ${show(a)} vs ${show(b)}: ${String(e)}`);
        }
        assert.ok(ab === -1 || ab === 0 || ab === 1, `${show(a)} vs ${show(b)} gave ${ab}`);
        assert.equal(ab, rev(ba), `antisymmetry: ${show(a)} vs ${show(b)}`);
        assert.equal(compareVersions(kind, a, a), 0, `reflexive: ${show(a)}`);
      }
      // Sorting valid versions must be consistent (transitive): sorted order checked pairwise.
      const valid = pool.filter((v) => isValidVersion(kind, v));
      const sorted = [...valid].sort((x, y) => compareVersions(kind, x, y));
      for (let i = 0; i + 1 < sorted.length; i++) {
        assert.ok(compareVersions(kind, sorted[i]!, sorted[i + 1]!) <= 0, `sort order broken at ${show(sorted[i]!)}`);
        for (let j = i + 1; j < sorted.length; j++) {
          assert.ok(compareVersions(kind, sorted[i]!, sorted[j]!) <= 0, `${show(sorted[i]!)} > ${show(sorted[j]!)} after sort`);
        }
      }
    });
  }
  test('non-string inputs from untyped callers do not throw', () => {
    for (const kind of KINDS) {
      assert.doesNotThrow(() => compareVersions(kind, undefined as unknown as string, null as unknown as string));
      assert.doesNotThrow(() => compareVersions(kind, 5 as unknown as string, '5'));
      assert.equal(parseVersion(kind, undefined as unknown as string).ok, false);
    }
  });
});
