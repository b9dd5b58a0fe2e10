/**
 * Small process-level utilities for tests that start real servers:
 * free ports, temp dirs, and a last-chance cleanup that kills children
 * and removes temp dirs when the test process exits (normally, by an
 * uncaught exception, or by SIGINT/SIGTERM/SIGHUP).
 */
import { type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let hooksInstalled = false;

function cleanupNow(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  liveChildren.clear();
  for (const dir of liveDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  liveDirs.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupNow();
      // Our listener was a `once`: re-raising now gets the default behaviour (terminate).
      process.kill(process.pid, sig);
    });
  }
}

/** Kill `child` (SIGKILL) if the test process exits before `untrackChild` is called. */
export function trackChild(child: ChildProcess): void {
  installHooks();
  liveChildren.add(child);
}

export function untrackChild(child: ChildProcess): void {
  liveChildren.delete(child);
}

const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. There is an unavoidable race
 * between this and the real bind; callers that spawn servers should retry on EADDRINUSE.
 * Never hands out the same port twice within one process.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: could not find a free port on 127.0.0.1');
}

export interface TempDir {
  readonly path: string;
  /** Remove the directory and everything in it (idempotent). */
  remove(): Promise<void>;
}

/** A fresh directory under the OS temp dir, removed by `remove()` or at process exit. */
export async function tempDir(prefix: string): Promise<TempDir> {
  installHooks();
  const safe = prefix.replace(/[^A-Za-z0-9_.-]/g, '-');
  const path = await mkdtemp(join(tmpdir(), `plinth-${safe}-`));
  liveDirs.add(path);
  return {
    path,
    async remove() {
      liveDirs.delete(path);
      await rm(path, { recursive: true, force: true });
    },
  };
}

/** Resolve after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Multiply test startup timeouts on slow machines: PLINTH_TEST_TIMEOUT_FACTOR=2. */
export function scaledTimeout(ms: number): number {
  const f = Number(process.env.PLINTH_TEST_TIMEOUT_FACTOR ?? '1');
  return Number.isFinite(f) && f > 0 ? Math.round(ms * f) : ms;
}

/** Keep the last `max` bytes of a stream of text (for error messages). */
export class TailBuffer {
  private text = '';
  constructor(private readonly max = 16 * 1024) {}
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.max) this.text = this.text.slice(-this.max);
  }
  toString(): string {
    return this.text;
  }
}
