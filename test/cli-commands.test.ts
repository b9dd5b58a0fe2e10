import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Command } from 'commander';
import { buildProgram, COMMANDS } from '../src/cli/main.js';
import { repoRoot } from './helpers/common.js';

/**
 * A run that names a command defines only that command (start-up): the table of command names it
 * goes by must be exactly what defining every command gives, and the command so defined must be
 * the same command (options, arguments, help, subcommands) as in the full parser.
 */

/** A command's help and its subcommands' help, recursively. */
function helpTree(c: Command, prefix = ''): string[] {
  return [`${prefix}${c.name()}\n${c.helpInformation()}`, ...c.commands.flatMap((s) => helpTree(s, `${prefix}${c.name()} `))];
}

test('the command table names every command and alias the full parser defines, and nothing else', () => {
  const full = buildProgram();
  const defined: Record<string, string> = {};
  for (const c of full.commands) {
    defined[c.name()] = c.name();
    for (const a of c.aliases()) defined[a] = c.name();
  }
  assert.ok(Object.keys(defined).length >= 30, `only ${Object.keys(defined).length} commands defined`);
  assert.deepEqual(Object.entries(COMMANDS).sort(), Object.entries(defined).sort());
});

test('a run that names a command defines that command exactly as the full parser does', () => {
  const full = buildProgram();
  for (const [name, command] of Object.entries(COMMANDS)) {
    const only = buildProgram([name, 'x']);
    const mine = only.commands.find((c) => c.name() === command);
    assert.ok(mine, `${name}: ${command} is not defined`);
    assert.ok(only.commands.length < full.commands.length, `${name}: every command was defined`);
    assert.deepEqual(helpTree(mine), helpTree(full.commands.find((c) => c.name() === command)!), name);
    assert.deepEqual(mine.aliases(), full.commands.find((c) => c.name() === command)!.aliases(), name);
  }
  // Help and no command: everything.
  for (const argv of [['--help'], ['help', 'verify'], ['verify', '--help'], ['inspect', '-h'], []]) {
    assert.equal(buildProgram(argv).commands.length, full.commands.length, argv.join(' '));
  }
});

/**
 * Command bundles (scripts/bundle.mjs): the launcher runs a command from its group's bundle, which
 * holds only what that group reaches. Each must define its commands exactly as the full parser
 * does, and every command but the demo must have one.
 */
test('each command bundle defines the commands the table gives it exactly as the full parser does', () => {
  const dist = path.join(repoRoot(), 'dist');
  const table = JSON.parse(readFileSync(path.join(dist, 'plinth-bundles.json'), 'utf8')) as Record<string, string>;
  assert.deepEqual(
    Object.keys(COMMANDS).filter((n) => !table[n]).sort(),
    ['demo'],
    'every command but the demo has a bundle',
  );
  for (const n of Object.keys(table)) assert.ok(Object.hasOwn(COMMANDS, n), `${n} in the table is not a command`);
  const full = buildProgram();
  const require = createRequire(import.meta.url);
  const files = [...new Set(Object.values(table))];
  assert.ok(files.length >= 10, `only ${files.length} bundles`);
  for (const file of files) {
    assert.match(file, /^plinth-[a-z-]+\.cjs$/);
    const bundle = require(path.join(dist, file)) as typeof import('../src/cli/main.js');
    // The bundle's own full parser defines fewer commands than everything (it is a smaller bundle)…
    const all = bundle.buildProgram().commands.map((c) => c.name());
    assert.ok(all.length < full.commands.length, `${file} defines every command`);
    for (const [name, f] of Object.entries(table)) {
      if (f !== file) continue;
      // …and, run for one of its commands, defines it as the full parser does.
      const only = bundle.buildProgram([name, 'x']);
      const command = COMMANDS[name]!;
      const mine = only.commands.find((c) => c.name() === command);
      assert.ok(mine, `${file}: ${name} is not defined`);
      assert.deepEqual(helpTree(mine), helpTree(full.commands.find((c) => c.name() === command)!), `${file}: ${name}`);
    }
  }
});

test('a command bundle run for a command that is not its own fails clearly (the demo is not in any)', () => {
  const dist = path.join(repoRoot(), 'dist');
  const r = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(dist, 'plinth-image.cjs'))}).main(['demo']).then((c) => process.exit(c))`], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /the demo is not in this command bundle \(image\)/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});
