import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { PlinthError } from '../util/errors.js';

/**
 * Start a real OCI registry (distribution's `docker-registry`, Debian package `docker-registry`)
 * on 127.0.0.1 with its storage in a directory: for the demo, and as the base of the test helpers.
 */
export interface LocalRegistry {
  host: string;
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
  /** What the registry printed on stderr (for error reports). */
  log(): string;
}

export interface LocalRegistryOptions {
  dir: string;
  binary?: string;
  port?: number;
  /** Extra YAML appended to the config (auth sections). */
  extraConfig?: string;
  startTimeoutMs?: number;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startLocalRegistry(o: LocalRegistryOptions): Promise<LocalRegistry> {
  const binary = o.binary ?? process.env.PLINTH_REGISTRY_BIN ?? 'docker-registry';
  const port = o.port ?? (await freePort());
  const storage = path.join(o.dir, 'storage');
  await mkdir(storage, { recursive: true });
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storage)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    o.extraConfig ?? '',
  ].join('\n');
  const configFile = path.join(o.dir, 'config.yml');
  await writeFile(configFile, `${config}\n`);
  let stderr = '';
  const child = spawn(binary, ['serve', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-8192);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const spawnError = new Promise<Error>((resolve) => child.on('error', resolve));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (o.startTimeoutMs ?? 20_000);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
  };
  for (;;) {
    const err = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 50))]);
    if (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      throw new PlinthError('IO', missing ? `cannot start a local registry: "${binary}" is not installed (Debian: apt-get install docker-registry)` : `cannot start ${binary}: ${err.message}`);
    }
    if (child.exitCode !== null) throw new PlinthError('IO', `${binary} exited with code ${child.exitCode}: ${stderr.trim().slice(-1000)}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      await stop();
      throw new PlinthError('TIMEOUT', `${binary} did not come up on ${url} in time: ${stderr.trim().slice(-1000)}`);
    }
  }
  return { host: `127.0.0.1:${port}`, url, port, dir: o.dir, process: child, stop, log: () => stderr };
}
