import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlinthError } from '../../src/util/errors.js';

/** The repository root: from dist/test/… (or test/…) walk up to the directory holding package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** `../shared` beside the repository: product docs, vectors and data (read-only). */
export function sharedDir(...parts: string[]): string {
  return resolve(repoRoot(), '..', 'shared', ...parts);
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence, so fuzz failures reproduce. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Listen on 127.0.0.1 (a free port), tracking connections; the server does not keep the test
 * process alive. `stop` closes it and ends open connections; calling it again waits for the same.
 */
export async function listenOnLoopback(server: Server): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  let stopped: Promise<void> | undefined;
  return {
    port: (server.address() as AddressInfo).port,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return stopped;
    },
  };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Run the real CLI (bin/plinth.cjs) as a user would, asynchronously (servers the test runs stay
 * responsive): `input` is its standard input (empty when absent), `env` is added to this process's.
 */
/**
 * The CLI the tests run: `node bin/plinth.cjs`, or the single-file executable named by
 * $PLINTH_TEST_BIN (test/cli-exe.test.ts).
 */
export function plinthCommand(args: string[], env: NodeJS.ProcessEnv = process.env): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
  const exe = process.env.PLINTH_TEST_BIN;
  if (exe) return { file: exe, args, env };
  return { file: process.execPath, args: [join(repoRoot(), 'bin', 'plinth.cjs'), ...args], env };
}

export function runPlinth(args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const c = plinthCommand(args, { ...process.env, ...o.env });
    const p = spawn(c.file, c.args, { env: c.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.on('error', () => {}).end(o.input ?? '');
  });
}

/** An assert.throws/rejects validator: a PlinthError with this code (and message matching `re`). */
export function isCode(code: string, re?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof PlinthError, `expected a PlinthError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (re) assert.match(e.message, re);
    return true;
  };
}
