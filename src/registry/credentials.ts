import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PlinthError } from '../util/errors.js';

/**
 * Credentials the way docker, crane and skopeo find them: explicit --username/--password, then
 * Docker's config.json (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, or a file given
 * with --authfile): `credHelpers[registry]`, `auths[registry]` (`auth` = base64 user:pass,
 * `identitytoken`), then `credsStore` — helpers are `docker-credential-<name>` programs.
 */
export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker's identitytoken). */
  identityToken?: string;
  /** A bearer token to send as is (registrytoken). */
  registryToken?: string;
}

export interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string; registrytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export interface CredentialOptions {
  username?: string;
  password?: string;
  /**
   * The registry explicit --username/--password belong to. Other registries the same command
   * reaches (base images, referrers) never see them; they use the config file instead.
   */
  credentialsFor?: string;
  /** Path of a docker config.json (or containers auth.json) to use instead of the default. */
  authFile?: string;
  /** Do not look at any config file or helper. */
  noConfig?: boolean;
}

export function defaultDockerConfigPath(): string {
  const dir = process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

async function loadConfig(file: string, explicit: boolean): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (!explicit && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PlinthError('IO', `cannot read credentials file ${file}: ${(e as Error).message}`);
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new Error('not an object');
    return doc as DockerConfig;
  } catch (e) {
    throw new PlinthError('IO', `credentials file ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The keys under which a registry may appear in `auths` (docker writes Hub as a v1 URL). */
function authKeys(registry: string): string[] {
  if (registry === 'docker.io' || registry === 'index.docker.io' || registry === 'registry-1.docker.io') {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1'];
  }
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`];
}

function helperServerName(registry: string): string {
  return registry === 'docker.io' ? 'https://index.docker.io/v1/' : registry;
}

export async function resolveCredential(registry: string, opts: CredentialOptions = {}): Promise<Credential | undefined> {
  const explicit = opts.username !== undefined || opts.password !== undefined;
  if (explicit && (opts.credentialsFor === undefined || opts.credentialsFor === registry)) {
    if (!opts.username) throw new PlinthError('USAGE', 'a password was given without --username');
    if (opts.password === undefined) throw new PlinthError('USAGE', `no password given for user ${opts.username} (use --password or --password-stdin)`);
    return { username: opts.username, password: opts.password };
  }
  if (opts.noConfig) return undefined;
  const file = opts.authFile ?? defaultDockerConfigPath();
  const cfg = await loadConfig(file, opts.authFile !== undefined);
  if (!cfg) return undefined;
  const keys = authKeys(registry);
  const helper = keys.map((k) => cfg.credHelpers?.[k]).find((h) => typeof h === 'string' && h);
  if (helper) return runHelper(helper, helperServerName(registry));
  for (const k of keys) {
    const entry = cfg.auths?.[k];
    if (!entry || typeof entry !== 'object') continue;
    const cred: Credential = {};
    if (typeof entry.auth === 'string' && entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i < 0) throw new PlinthError('IO', `credentials for ${registry} in ${file} are malformed (auth is not base64 of user:password)`);
      cred.username = decoded.slice(0, i);
      cred.password = decoded.slice(i + 1);
    } else if (typeof entry.username === 'string') {
      cred.username = entry.username;
      cred.password = typeof entry.password === 'string' ? entry.password : '';
    }
    if (typeof entry.identitytoken === 'string' && entry.identitytoken) cred.identityToken = entry.identitytoken;
    if (typeof entry.registrytoken === 'string' && entry.registrytoken) cred.registryToken = entry.registrytoken;
    if (cred.username !== undefined || cred.identityToken || cred.registryToken) return cred;
    // An empty entry means: use the credsStore (docker writes `{}` for those).
  }
  if (typeof cfg.credsStore === 'string' && cfg.credsStore) {
    return runHelper(cfg.credsStore, helperServerName(registry), true);
  }
  return undefined;
}

/** Run `docker-credential-<name> get` with the server URL on stdin. */
export function runHelper(name: string, serverUrl: string, missingOk = false): Promise<Credential | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    return Promise.reject(new PlinthError('IO', `invalid credential helper name "${name}"`));
  }
  const bin = `docker-credential-${name}`;
  // child_process loads only when a helper runs (start-up of every registry command).
  const { spawn } = process.getBuiltinModule('node:child_process') as typeof import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['get'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d.length + out.length < 1 << 20 ? d : ''));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += err.length < 4096 ? d : ''));
    child.on('error', (e) => {
      clearTimeout(timer);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        if (missingOk) resolve(undefined);
        else reject(new PlinthError('UNAUTHORIZED', `credential helper ${bin} is configured for ${serverUrl} but is not on PATH`));
      } else reject(new PlinthError('UNAUTHORIZED', `credential helper ${bin} failed: ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        const msg = (out + err).trim();
        if (/credentials not found/i.test(msg)) return resolve(undefined);
        return reject(new PlinthError('UNAUTHORIZED', `credential helper ${bin} failed for ${serverUrl}: ${msg.slice(0, 300) || `exit ${code}`}`));
      }
      try {
        const doc = JSON.parse(out) as { Username?: unknown; Secret?: unknown };
        if (typeof doc.Secret !== 'string') throw new Error('no Secret');
        if (doc.Username === '<token>') resolve({ identityToken: doc.Secret });
        else resolve({ username: typeof doc.Username === 'string' ? doc.Username : '', password: doc.Secret });
      } catch (e) {
        reject(new PlinthError('UNAUTHORIZED', `credential helper ${bin} printed something that is not a credential: ${(e as Error).message}`));
      }
    });
    child.stdin.on('error', () => {});
    child.stdin.end(serverUrl);
  });
}
