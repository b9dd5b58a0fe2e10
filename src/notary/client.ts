/**
 * A TUF client for a Notary v1 server (Docker Content Trust): downloads
 * `/v2/<gun>/_trust/tuf/{root,timestamp,snapshot,targets}.json`, the versioned roots
 * (`<n>.root.json`) of a rotation, the hashed snapshot/targets/delegations (`<role>.<sha256>.json`)
 * and the delegations (`targets/releases.json`, …), each bounded in size; verifies the chain
 * root → timestamp → snapshot → targets → delegations (tuf.ts) and keeps what it trusted in a
 * trust directory laid out as Docker's (`<dir>/tuf/<gun>/metadata/<role>.json`), so versions
 * never go backwards across runs and the root is trusted on first use (unless pinned) and
 * replaced only by a new root signed by the trusted one.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HttpClient, type HttpOptions } from '../registry/http.js';
import { parseChallenges, TokenCache } from '../registry/auth.js';
import type { Credential } from '../registry/credentials.js';
import { PlinthError } from '../util/errors.js';
import { canonicalJson } from './canonicaljson.js';
import {
  canonicalKeyId,
  checkExpiry,
  checkFileMeta,
  checkRootCertificates,
  parseMetadata,
  tufError,
  verifyThreshold,
  type DelegationRole,
  type FileMeta,
  type RootMeta,
  type Signed,
  type SnapshotMeta,
  type TargetsMeta,
  type TimestampMeta,
} from './tuf.js';

export const MAX_ROOT = 512 * 1024;
export const MAX_TIMESTAMP = 64 * 1024;
/** Snapshot, targets and delegations: their length comes from the metadata above, capped here. */
export const MAX_METADATA = 16 * 1024 * 1024;
const MAX_DELEGATIONS = 64;
const MAX_DELEGATION_DEPTH = 4;
const MAX_ROOT_STEPS = 64;

export interface DctOptions {
  /** The notary server URL (default: $DOCKER_CONTENT_TRUST_SERVER, notary.docker.io for Docker Hub, else https://REGISTRY). */
  server?: string;
  /** Where trusted metadata is kept (default: $DOCKER_CONFIG/trust or ~/.docker/trust); false: keep nothing. */
  trustDir?: string | false;
  /** Root key IDs (hex, `sha256:` optional): the root must carry a valid signature by one of them. */
  rootKeyPins?: string[];
  now?: Date;
  http?: HttpOptions;
  /** Credentials for the trust server's token service (default: anonymous tokens). */
  credential?: Credential;
}

export type { LoadedRole, TrustData } from './targets.js';
import type { LoadedRole, TrustData } from './targets.js';

export function defaultTrustDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.DOCKER_CONFIG || path.join(os.homedir(), '.docker'), 'trust');
}

/** Docker's choice of trust server for a registry. */
export function defaultTrustServer(registry: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONTENT_TRUST_SERVER) return env.DOCKER_CONTENT_TRUST_SERVER;
  if (registry === 'docker.io' || registry === 'index.docker.io' || registry === 'registry-1.docker.io') return 'https://notary.docker.io';
  return `https://${registry}`;
}

function metadataDir(trustDir: string, gun: string): string {
  if (gun.split('/').some((p) => p === '' || p === '.' || p === '..')) throw new PlinthError('USAGE', `${gun} is not a repository name`);
  return path.join(trustDir, 'tuf', ...gun.split('/'), 'metadata');
}

async function readCached<T>(dir: string, role: string): Promise<Signed<T> | undefined> {
  const file = path.join(dir, `${role}.json`);
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PlinthError('IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  if (raw.length > MAX_METADATA) throw new PlinthError('USAGE', `${file} is larger than ${MAX_METADATA} bytes`);
  try {
    return parseMetadata<T>(raw, role);
  } catch (e) {
    throw new PlinthError('USAGE', `the trusted copy ${file} is unusable (${(e as Error).message}); remove it to trust the server's metadata again`);
  }
}

class Fetcher {
  private readonly http: HttpClient;
  /** Bearer auth, once the server asked for it (the Docker token protocol, as notary.docker.io). */
  private bearer: { realm: string; service?: string; scopes: string[] } | undefined;
  private tokens: TokenCache | undefined;
  constructor(
    private readonly base: string,
    private readonly gun: string,
    opts: HttpOptions,
    private readonly credential: Credential | undefined,
  ) {
    this.http = new HttpClient({ retries: 1, timeoutMs: 30_000, ...opts });
  }
  close(): void {
    this.http.close();
  }
  /** GET a metadata file; undefined on 404. */
  async get(name: string, limit: number): Promise<Buffer | undefined> {
    const url = `${this.base.replace(/\/+$/, '')}/v2/${this.gun}/_trust/tuf/${name}.json`;
    let res;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (this.bearer && this.tokens) headers.authorization = `Bearer ${await this.tokens.get(this.bearer)}`;
      res = await this.http.request({ method: 'GET', url, headers });
      if (res.status !== 401 || attempt > 0) break;
      const ch = parseChallenges(res.headers['www-authenticate']).find((c) => c.scheme === 'bearer');
      if (!ch?.params.realm) break;
      await res.discard();
      if (this.bearer && this.tokens) this.tokens.invalidate(this.bearer);
      const u = new URL(url);
      this.bearer = { realm: ch.params.realm, ...(ch.params.service ? { service: ch.params.service } : {}), scopes: (ch.params.scope ?? `repository:${this.gun}:pull`).split(' ') };
      this.tokens ??= new TokenCache(this.http, this.credential, u.host, u.protocol === 'https:');
    }
    if (res.status === 404) {
      await res.discard();
      return undefined;
    }
    if (res.status === 401 || res.status === 403) {
      await res.discard();
      throw new PlinthError('UNAUTHORIZED', `the trust server ${new URL(url).host} refused ${name}.json (HTTP ${res.status})${this.bearer ? ' with the token it issued' : ''}`);
    }
    if (res.status !== 200) {
      await res.discard();
      throw new PlinthError('REGISTRY_ERROR', `the trust server answered HTTP ${res.status} for ${name}.json`);
    }
    try {
      return await res.bytes(limit);
    } catch (e) {
      if (e instanceof PlinthError && e.code === 'MANIFEST_TOO_LARGE') throw tufError(`${name}.json from the trust server is larger than the ${limit}-byte limit`);
      throw e;
    }
  }
  async must(name: string, limit: number): Promise<Buffer> {
    const b = await this.get(name, limit);
    if (!b) throw new PlinthError('MANIFEST_UNKNOWN', `the trust server has no ${name}.json for ${this.gun}`);
    return b;
  }
  /** A file listed with hashes: by its sha256 name first (consistent snapshots), else by name. */
  async hashed(role: string, meta: FileMeta): Promise<Buffer> {
    const limit = Math.min(meta.length, MAX_METADATA);
    if (meta.length > MAX_METADATA) throw tufError(`${role}.json is listed with ${meta.length} bytes, more than the ${MAX_METADATA}-byte limit`);
    const sha = meta.hashes.sha256 ? Buffer.from(meta.hashes.sha256, 'base64').toString('hex') : undefined;
    return (sha ? await this.get(`${role}.${sha}`, limit) : undefined) ?? (await this.must(role, limit));
  }
}

function normalizePin(p: string): string {
  const v = p.replace(/^sha256:/, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(v)) throw new PlinthError('USAGE', `root key pin ${p} is not a key ID (64 hex digits, sha256: optional)`);
  return v;
}

function checkVersion(role: string, doc: Signed<{ version: number }>, cached: Signed<{ version: number }> | undefined): void {
  if (cached && doc.signed.version < cached.signed.version) throw tufError(`${role}.json version ${doc.signed.version} is older than the trusted version ${cached.signed.version} (rollback)`);
}

/** Download and verify the trust data of `gun`, from the server, against what is trusted already. */
export async function updateTrust(gun: string, server: string, opts: DctOptions = {}): Promise<TrustData> {
  const now = opts.now ?? new Date();
  const trustDir = opts.trustDir === false ? undefined : (opts.trustDir ?? defaultTrustDir());
  const dir = trustDir ? metadataDir(trustDir, gun) : undefined;
  const pins = (opts.rootKeyPins ?? []).map(normalizePin);
  const fetcher = new Fetcher(server, gun, opts.http ?? {}, opts.credential);
  try {
    const cached = {
      root: dir ? await readCached<RootMeta>(dir, 'root') : undefined,
      timestamp: dir ? await readCached<TimestampMeta>(dir, 'timestamp') : undefined,
      snapshot: dir ? await readCached<SnapshotMeta>(dir, 'snapshot') : undefined,
      targets: dir ? await readCached<TargetsMeta>(dir, 'targets') : undefined,
    };
    // root
    const rootRaw = await fetcher.get('root', MAX_ROOT);
    if (!rootRaw) throw new PlinthError('MANIFEST_UNKNOWN', `the trust server ${server} has no trust data for ${gun} (the repository is not signed)`);
    let root = parseMetadata<RootMeta>(rootRaw, 'root');
    const rotations: number[] = [];
    if (cached.root) {
      const trusted = cached.root;
      if (root.signed.version < trusted.signed.version) throw tufError(`root.json version ${root.signed.version} is older than the trusted version ${trusted.signed.version} (rollback)`);
      if (root.signed.version === trusted.signed.version) {
        if (!canonicalJson(root.signed).equals(canonicalJson(trusted.signed))) throw tufError(`root.json differs from the trusted root of the same version ${trusted.signed.version} (a root swapped without a new version signed by the old root)`);
      } else {
        if (root.signed.version - trusted.signed.version > MAX_ROOT_STEPS) throw tufError(`root.json jumps from version ${trusted.signed.version} to ${root.signed.version}, more than ${MAX_ROOT_STEPS} rotations`);
        let prev = trusted;
        for (let v = trusted.signed.version + 1; v <= root.signed.version; v++) {
          const next = v === root.signed.version ? root : parseMetadata<RootMeta>(await fetcher.must(`${v}.root`, MAX_ROOT), 'root');
          if (next.signed.version !== v) throw tufError(`${v}.root.json holds version ${next.signed.version}`);
          try {
            verifyThreshold(next, prev.signed.keys, prev.signed.roles.root!, `root.json version ${v}`);
          } catch (e) {
            throw tufError(`root.json version ${v} is not signed by the trusted root (version ${prev.signed.version})'s keys: ${(e as Error).message} — a root swapped without a signature from the old root`);
          }
          verifyThreshold(next, next.signed.keys, next.signed.roles.root!, `root.json version ${v} (its own root keys)`);
          rotations.push(v);
          prev = next;
        }
        root = prev;
      }
    } else {
      verifyThreshold(root, root.signed.keys, root.signed.roles.root!, 'root.json');
    }
    checkExpiry('root', root.signed.expires, now);
    checkRootCertificates(root.signed, gun, now);
    if (pins.length) {
      const signers = verifyThreshold(root, root.signed.keys, root.signed.roles.root!, 'root.json');
      const ids = signers.flatMap((id) => [id, canonicalKeyId(root.signed.keys[id]!)]);
      if (!ids.some((id) => pins.includes(id))) throw tufError(`root.json is not signed by a pinned root key (signed by ${signers.map((s) => s.slice(0, 12) + '…').join(', ')}; pinned ${pins.map((p) => p.slice(0, 12) + '…').join(', ')})`);
    }
    const keys = root.signed.keys;
    // timestamp
    const timestamp = parseMetadata<TimestampMeta>(await fetcher.must('timestamp', MAX_TIMESTAMP), 'timestamp');
    verifyThreshold(timestamp, keys, root.signed.roles.timestamp!, 'timestamp.json');
    checkExpiry('timestamp', timestamp.signed.expires, now);
    checkVersion('timestamp', timestamp, cached.timestamp);
    // snapshot
    const snapMeta = timestamp.signed.meta.snapshot;
    if (!snapMeta) throw tufError('timestamp.json lists no snapshot');
    const snapRaw = await fetcher.hashed('snapshot', snapMeta);
    checkFileMeta('snapshot', snapRaw, snapMeta, 'timestamp.json');
    const snapshot = parseMetadata<SnapshotMeta>(snapRaw, 'snapshot');
    verifyThreshold(snapshot, keys, root.signed.roles.snapshot!, 'snapshot.json');
    checkExpiry('snapshot', snapshot.signed.expires, now);
    checkVersion('snapshot', snapshot, cached.snapshot);
    if (snapshot.signed.meta.root) checkFileMeta('root', root.raw, snapshot.signed.meta.root, 'snapshot.json');
    // targets
    const targetsMeta = snapshot.signed.meta.targets;
    if (!targetsMeta) throw tufError('snapshot.json lists no targets');
    const targetsRaw = await fetcher.hashed('targets', targetsMeta);
    checkFileMeta('targets', targetsRaw, targetsMeta, 'snapshot.json');
    const targets = parseMetadata<TargetsMeta>(targetsRaw, 'targets');
    const targetSigners = verifyThreshold(targets, keys, root.signed.roles.targets!, 'targets.json');
    checkExpiry('targets', targets.signed.expires, now);
    checkVersion('targets', targets, cached.targets);
    const roles: LoadedRole[] = [{ name: 'targets', doc: targets, signers: targetSigners }];
    // delegations, pre-order
    const walk = async (parent: LoadedRole, depth: number): Promise<void> => {
      const d = parent.doc.signed.delegations;
      if (!d) return;
      for (const role of d.roles) {
        if (!role.name.startsWith(`${parent.name}/`) || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/.test(role.name.slice(parent.name.length + 1))) throw tufError(`${parent.name}.json delegates to ${JSON.stringify(role.name)}, which is not a direct child role of ${parent.name}`);
        if (depth > MAX_DELEGATION_DEPTH) throw tufError(`delegations nest deeper than ${MAX_DELEGATION_DEPTH} (${role.name})`);
        if (roles.length >= MAX_DELEGATIONS) throw tufError(`more than ${MAX_DELEGATIONS} delegations`);
        // As Notary: a delegation can only narrow its parent's paths; paths outside them are dropped.
        const restricted: DelegationRole = parent.role?.paths && role.paths ? { ...role, paths: role.paths.filter((p) => parent.role!.paths!.some((pp) => p.startsWith(pp))) } : role;
        const meta = snapshot.signed.meta[role.name];
        if (!meta) continue; // declared, nothing published yet
        const raw = await fetcher.hashed(role.name, meta);
        checkFileMeta(role.name, raw, meta, 'snapshot.json');
        const doc = parseMetadata<TargetsMeta>(raw, role.name);
        const signers = verifyThreshold(doc, d.keys, role, `${role.name}.json`);
        checkExpiry(role.name, doc.signed.expires, now);
        if (dir) checkVersion(role.name, doc, await readCached<TargetsMeta>(dir, role.name));
        const loaded: LoadedRole = { name: role.name, doc, role: restricted, signers };
        roles.push(loaded);
        await walk(loaded, depth + 1);
      }
    };
    await walk(roles[0]!, 1);
    if (dir) await persist(dir, [root, timestamp, snapshot, ...roles.map((r) => r.doc)]);
    return { gun, server, root, timestamp, snapshot, roles, firstUse: !cached.root, rootRotations: rotations };
  } finally {
    fetcher.close();
  }
}

async function persist(dir: string, docs: Array<Signed<unknown>>): Promise<void> {
  try {
    for (const d of docs) {
      const file = path.join(dir, `${d.role}.json`);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, d.raw, { mode: 0o600 });
      await rename(tmp, file);
    }
  } catch (e) {
    throw new PlinthError('IO', `cannot keep the trusted metadata in ${dir}: ${(e as Error).message}`);
  }
}

export { listTargets, lookupTarget, type SignedTarget } from './targets.js';
