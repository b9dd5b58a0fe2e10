/**
 * Debian's notary-server on 127.0.0.1 (memory storage, local trust service, plain HTTP), the
 * `notary` CLI against it with a private trust directory, and a proxy in front of it whose
 * answers a test can replace (replayed or edited metadata, endless bodies).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { debianTool } from './peers.js';
import { freePort, scaledTimeout, sleep, TailBuffer, trackChild, untrackChild } from './util.js';
import { listenOnLoopback } from './common.js';

const execFileP = promisify(execFile);

export interface NotaryServer {
  url: string;
  stop(): Promise<void>;
  logs(): string;
}

export interface NotaryServerOptions {
  /** Token auth (the Docker token protocol, as notary.docker.io): the token server's realm, service, issuer and certificate. */
  token?: { realm: string; service: string; issuer: string; certPath: string };
}

export async function startNotaryServer(opts: NotaryServerOptions = {}): Promise<NotaryServer> {
  const bin = debianTool('notary-server', 'notary');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-notary-server-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = path.join(dir, 'server.json');
    const auth = opts.token ? { auth: { type: 'token', options: { realm: opts.token.realm, service: opts.token.service, issuer: opts.token.issuer, rootcertbundle: opts.token.certPath } } } : {};
    await writeFile(config, JSON.stringify({ server: { http_addr: `127.0.0.1:${port}` }, trust_service: { type: 'local', key_algorithm: 'ecdsa' }, storage: { backend: 'memory' }, logging: { level: 'error' }, ...auth }));
    const logs = new TailBuffer(8192);
    const child: ChildProcess = spawn(bin, ['-config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    child.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
    child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
    const url = `http://127.0.0.1:${port}`;
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
      untrackChild(child);
    };
    const deadline = Date.now() + scaledTimeout(15_000);
    let up = false;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        const res = await fetch(`${url}/_notary_server/health`);
        if (res.ok) {
          up = true;
          break;
        }
      } catch {
        /* not yet */
      }
      await sleep(50);
    }
    if (up) {
      return {
        url,
        logs: () => logs.toString(),
        async stop() {
          await stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    await stop();
    if (attempt >= 3 || !/address already in use/.test(logs.toString())) throw new Error(`notary-server did not start: ${logs.toString()}`);
  }
}

/** The notary CLI with its own trust directory and passphrases, against `server`. */
export function notaryCli(server: string, trustDir: string, auth?: { username: string; password: string }) {
  const bin = debianTool('notary', 'notary');
  const env = { ...process.env, NOTARY_ROOT_PASSPHRASE: 'pw', NOTARY_TARGETS_PASSPHRASE: 'pw', NOTARY_SNAPSHOT_PASSPHRASE: 'pw', NOTARY_DELEGATION_PASSPHRASE: 'pw', ...(auth ? { NOTARY_AUTH: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } : {}) };
  return async (args: string[], input?: string): Promise<string> => {
    const run = execFileP(bin, ['-s', server, '-d', trustDir, ...args], { env, timeout: 60_000 });
    if (input !== undefined) {
      run.child.stdin!.end(input);
    }
    const { stdout } = await run;
    return stdout;
  };
}

export type Answer = Buffer | 'endless' | 'hang' | { status: number };

export interface MetadataProxy {
  url: string;
  /** Answers by request path (regex on the path); the first match wins; others go to the server. */
  rules: Array<{ match: RegExp; answer: Answer }>;
  /** Every request path, in order. */
  requests: string[];
  stop(): Promise<void>;
}

export async function startMetadataProxy(target: string): Promise<MetadataProxy> {
  const rules: MetadataProxy['rules'] = [];
  const requests: string[] = [];
  const t = new URL(target);
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const rule = rules.find((r) => r.match.test(req.url ?? ''));
    if (rule) {
      const a = rule.answer;
      if (a === 'hang') return; // never answered (the client's deadline ends it)
      if (a === 'endless') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        res.on('error', () => {});
        pump();
        return;
      }
      if (Buffer.isBuffer(a)) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': a.length });
        res.end(a);
        return;
      }
      res.writeHead(a.status);
      res.end();
      return;
    }
    const up = httpRequest({ host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  const { port, stop } = await listenOnLoopback(server);
  return { url: `http://127.0.0.1:${port}`, rules, requests, stop };
}
