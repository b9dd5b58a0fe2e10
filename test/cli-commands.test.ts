import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram, COMMANDS } from '../src/cli/main.js';

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
