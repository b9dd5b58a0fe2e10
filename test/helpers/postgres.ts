/**
 * A real PostgreSQL server from Debian's package, started on 127.0.0.1 on a free port in a
 * temporary data directory, for the store tests; stopped (and its directory removed) by `stop()`.
 * As root it runs as the `postgres` user (PostgreSQL refuses root). Missing binaries are a test
 * failure naming the package (./scripts/setup.sh installs it), never a silent skip.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/registry/local.js';

export interface Postgres {
  /** postgres://… of the server's `postgres` database. */
  url: string;
  port: number;
  /** The postmaster's process id (benchmarks pin it to a core). */
  pid(): number | undefined;
  /** A new, empty database; its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stop the server (fast shutdown), keeping its data (for restart tests). */
  stopServer(): Promise<void>;
  startServer(): Promise<void>;
  stop(): Promise<void>;
}

function pgBin(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', name))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) throw new Error(`PostgreSQL's ${name} is not installed: apt-get install postgresql (./scripts/setup.sh does)`);
  return join(root, versions[0]!, 'bin', name);
}

const asRoot = process.getuid?.() === 0;

/** As root: the postgres user's uid and gid (the server's processes run as it, signals reach it directly). */
function ids(): { uid: number; gid: number } | Record<string, never> {
  if (!asRoot) return {};
  return { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()) };
}

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', ...ids() });
}

let counter = 0;

export async function startPostgres(): Promise<Postgres> {
  const dir = mkdtempSync(join(tmpdir(), 'plinth-pg-'));
  const who = ids();
  if ('uid' in who) chownSync(dir, who.uid, who.gid);
  const data = join(dir, 'data');
  run(pgBin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    if (child && child.exitCode === null) return;
    const args = ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`, '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'];
    child = spawn(pgBin('postgres'), args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: '/', ...who });
    let log = '';
    child.stderr!.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    const { default: pg } = await import('pg');
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`postgres exited: ${log}`);
      const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
      try {
        await c.connect();
        await c.end();
        return;
      } catch {
        await c.end().catch(() => {});
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`postgres did not start on ${port}: ${log}`);
  };
  const stopServer = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    // SIGINT: PostgreSQL's fast shutdown.
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGINT');
      setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
    });
  };
  await start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    pid: () => child?.pid,
    async createDatabase(name?: string) {
      const db = name ?? `t${process.pid}_${++counter}_${Date.now().toString(36)}`;
      const { default: pg } = await import('pg');
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${db}"`);
      } finally {
        await c.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${db}`;
    },
    stopServer,
    startServer: start,
    async stop() {
      await stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
