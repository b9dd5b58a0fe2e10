/**
 * Real registries for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1,
 * with no auth, HTTP Basic (htpasswd, bcrypt) or bearer tokens from a local token server.
 *
 *   const reg = await startRegistry({ auth: 'token' });
 *   try { ... reg.url ... reg.tokenRequests ... } finally { await reg.stop(); }
 *
 * Everything lives in a fresh temp dir (config, storage, htpasswd, token cert), which stop()
 * removes. Processes and dirs are also cleaned up if the test process exits without stop(),
 * and a forgotten stop() does not keep the test process alive.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { UNRECORDED_HEADER, startTokenServer, type TokenRequest, type TokenServer } from './token-server.js';
import { TailBuffer, freePort, scaledTimeout, sleep, tempDir, trackChild, untrackChild } from './util.js';

export { freePort, tempDir, sleep, type TempDir } from './util.js';
export { makeTestImage, pushBlob, pushImage, sha256, writeOciLayout, type PushTarget, type TestBlob, type TestImage } from './image.js';
export { startFaultProxy, type Fault, type FaultAction, type FaultPlan, type FaultProxy } from './fault-proxy.js';
export {
  DISTRIBUTION_TOKEN_LEEWAY_SECONDS,
  parseScope,
  startTokenServer,
  type GrantedAccess,
  type TokenRequest,
  type TokenServer,
} from './token-server.js';

const execFileP = promisify(execFile);

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface RegistryOptions {
  auth?: RegistryAuth;
  /** Defaults to 'plinth' when auth is on. */
  username?: string;
  /** Defaults to 'plinth-password' when auth is on. */
  password?: string;
  /** token: anonymous token requests get pull access (default true) or none. */
  anonymousPull?: boolean;
  /** token: token lifetime in seconds (default 300); the registry really rejects it afterwards. */
  tokenExpiresIn?: number;
  /** token: see TokenServerOptions.compensateLeeway (default true). */
  compensateLeeway?: boolean;
  /** token: signature algorithm (default ES256). */
  tokenAlg?: 'ES256' | 'RS256';
  /** How long to wait for `GET /v2/` to answer. Default 15 s (times PLINTH_TEST_TIMEOUT_FACTOR). */
  startTimeoutMs?: number;
  /** Registry binary. Default $PLINTH_TEST_REGISTRY_BIN or 'docker-registry'. */
  binary?: string;
  /** Registry log level. Default 'warn'. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Last chance to edit the distribution config object before it is written. */
  configure?: (config: Record<string, any>) => void;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT` */
  url: string;
  auth: RegistryAuth;
  username?: string;
  password?: string;
  /** The temp dir holding config.yml, data/, htpasswd, token-cert.pem. */
  dir: string;
  configPath: string;
  pid: number;
  /** token: the token server (realm, service, cert, mint()). */
  tokenServer?: TokenServer;
  /** token: every request made to the token server, in order (empty array otherwise). */
  tokenRequests: TokenRequest[];
  /**
   * Headers that authorize `scopes` (e.g. `['repository:test/a:pull,push']`) with the registry's
   * credentials: `{}` for no auth, Basic for basic, a fresh Bearer token for token auth.
   * Does not record into tokenRequests.
   */
  authHeaders(scopes?: string[]): Promise<Record<string, string>>;
  /** Tail of the registry's stderr/stdout. */
  logs(): string;
  /** Kill the registry (and token server) and remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

const DEFAULT_USER = 'plinth';
const DEFAULT_PASSWORD = 'plinth-password';

/** Environment for the registry without REGISTRY_* overrides (distribution reads them as config). */
function registryEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
  return env;
}

async function makeHtpasswd(path: string, user: string, pass: string): Promise<void> {
  let out: string;
  try {
    ({ stdout: out } = await execFileP('htpasswd', ['-Bbn', user, pass], { timeout: 60_000 }));
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new Error('startRegistry: `htpasswd` not found on PATH (apt-get install apache2-utils)');
    throw new Error(`startRegistry: htpasswd -Bbn failed: ${err.stderr ?? err.message}`);
  }
  await writeFile(path, out.trim() + '\n', { mode: 0o600 });
}

interface Spawned {
  child: ChildProcess;
  logs: TailBuffer;
}

class StartError extends Error {
  constructor(
    message: string,
    readonly addrInUse: boolean,
  ) {
    super(message);
  }
}

async function spawnAndWait(bin: string, configPath: string, url: string, expect: number, timeoutMs: number): Promise<Spawned> {
  const logs = new TailBuffer();
  const child = spawn(bin, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: registryEnv() });
  trackChild(child);
  child.stdout!.on('data', (c: Buffer) => logs.push(c));
  child.stderr!.on('data', (c: Buffer) => logs.push(c));

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let spawnError: NodeJS.ErrnoException | undefined;
  child.once('error', (e: NodeJS.ErrnoException) => {
    spawnError = e;
  });
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });

  const deadline = Date.now() + timeoutMs;
  let lastProblem = 'no answer yet';
  while (true) {
    if (spawnError) {
      untrackChild(child);
      if (spawnError.code === 'ENOENT')
        throw new StartError(
          `startRegistry: registry binary \`${bin}\` not found on PATH (apt-get install docker-registry, or set PLINTH_TEST_REGISTRY_BIN)`,
          false,
        );
      throw new StartError(`startRegistry: could not run \`${bin}\`: ${spawnError.message}`, false);
    }
    if (exited) {
      untrackChild(child);
      const text = logs.toString();
      throw new StartError(
        `startRegistry: \`${bin} serve ${configPath}\` exited (code ${exited.code}, signal ${exited.signal}) before answering GET ${url}/v2/.\n--- registry output ---\n${text}`,
        /address already in use/i.test(text),
      );
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(3000) });
      await res.arrayBuffer();
      if (res.status === expect) break;
      lastProblem = `GET /v2/ answered ${res.status}, expected ${expect}`;
    } catch (e) {
      lastProblem = `GET /v2/ failed: ${(e as Error).cause ?? (e as Error).message}`;
    }
    if (Date.now() > deadline) {
      untrackChild(child);
      child.kill('SIGKILL');
      throw new StartError(
        `startRegistry: registry did not come up within ${timeoutMs} ms (${lastProblem}).\n--- registry output ---\n${logs.toString()}`,
        false,
      );
    }
    await sleep(100);
  }
  // A forgotten stop() must not keep the test process alive; the exit hook still kills it.
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  return { child, logs };
}

function killAndWait(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve();
      return;
    }
    child.ref();
    (child.stdout as unknown as { ref?: () => void }).ref?.();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Start a real distribution registry on 127.0.0.1. Always `stop()` it (try/finally or t.after). */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const bin = opts.binary ?? process.env.PLINTH_TEST_REGISTRY_BIN ?? 'docker-registry';
  const timeoutMs = opts.startTimeoutMs ?? scaledTimeout(15_000);
  const username = auth === 'none' ? undefined : (opts.username ?? DEFAULT_USER);
  const password = auth === 'none' ? undefined : (opts.password ?? DEFAULT_PASSWORD);

  const tmp = await tempDir(`registry-${auth}`);
  const dir = tmp.path;
  let tokenServer: TokenServer | undefined;
  try {
    const config: Record<string, any> = {
      version: 0.1,
      log: { level: opts.logLevel ?? 'warn', formatter: 'text', accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: join(dir, 'data') },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false }, readonly: { enabled: false } },
      },
      http: { addr: '', secret: randomBytes(16).toString('hex') },
      health: { storagedriver: { enabled: false } },
    };

    if (auth === 'basic') {
      const htpasswdPath = join(dir, 'htpasswd');
      await makeHtpasswd(htpasswdPath, username!, password!);
      config.auth = { htpasswd: { realm: 'plinth-test', path: htpasswdPath } };
    } else if (auth === 'token') {
      tokenServer = await startTokenServer({
        dir,
        username,
        password,
        anonymousPull: opts.anonymousPull,
        tokenExpiresIn: opts.tokenExpiresIn,
        compensateLeeway: opts.compensateLeeway,
        alg: opts.tokenAlg,
      });
      config.auth = {
        token: {
          realm: tokenServer.realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: tokenServer.certPath,
        },
      };
    }

    const configPath = join(dir, 'config.yml');
    const expect = auth === 'none' ? 200 : 401;
    let spawned: Spawned | undefined;
    let port = 0;
    for (let attempt = 1; !spawned; attempt++) {
      port = await freePort();
      config.http.addr = `127.0.0.1:${port}`;
      opts.configure?.(config);
      await writeFile(configPath, toYaml(config));
      try {
        spawned = await spawnAndWait(bin, configPath, `http://127.0.0.1:${port}`, expect, timeoutMs);
      } catch (e) {
        if (e instanceof StartError && e.addrInUse && attempt < 5) continue;
        throw e;
      }
    }

    const { child, logs } = spawned;
    const host = `127.0.0.1:${port}`;
    const url = `http://${host}`;
    const ts = tokenServer;
    let stopping: Promise<void> | undefined;

    return {
      host,
      url,
      auth,
      username,
      password,
      dir,
      configPath,
      pid: child.pid!,
      tokenServer: ts,
      tokenRequests: ts ? ts.requests : [],
      async authHeaders(scopes: string[] = []): Promise<Record<string, string>> {
        if (auth === 'none') return {};
        const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
        if (auth === 'basic') return { Authorization: basic };
        const q = new URLSearchParams({ service: ts!.service });
        for (const s of scopes) q.append('scope', s);
        const res = await fetch(`${ts!.realm}?${q}`, { headers: { Authorization: basic, [UNRECORDED_HEADER]: '1' } });
        if (res.status !== 200) throw new Error(`authHeaders: token server answered ${res.status}`);
        const body = (await res.json()) as { token: string };
        return { Authorization: `Bearer ${body.token}` };
      },
      logs: () => logs.toString(),
      stop() {
        stopping ??= (async () => {
          await killAndWait(child, 3000);
          untrackChild(child);
          await ts?.stop();
          await tmp.remove();
        })();
        return stopping;
      },
    };
  } catch (e) {
    await tokenServer?.stop();
    await tmp.remove();
    throw e;
  }
}
