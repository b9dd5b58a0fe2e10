/**
 * The Update Framework metadata as Notary v1 (Docker Content Trust) writes it, judged without
 * I/O: `{"signed": {...}, "signatures": [{keyid, method, sig}]}` documents of the roles root,
 * timestamp, snapshot, targets and delegations (targets/…), signatures over the canonical JSON
 * of `signed` (canonicaljson.ts), key IDs = sha256 of the canonical JSON of the public key,
 * key types ecdsa, ecdsa-x509, rsa, rsa-x509, ed25519 and methods ecdsa (P1363 r‖s over
 * sha256), rsapss (sha256, salt = hash length), rsapkcs1v15 (sha256) and eddsa.
 */
import { createHash, createPublicKey, constants, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto';
import { PlinthError } from '../util/errors.js';
import { canonicalJson } from './canonicaljson.js';

export type RoleName = string;

export interface TufKey {
  keytype: 'ecdsa' | 'ecdsa-x509' | 'rsa' | 'rsa-x509' | 'ed25519';
  keyval: { private: null; public: string };
}

export interface Signed<T> {
  role: RoleName;
  signed: T;
  signatures: Array<{ keyid: string; method: string; sig: string }>;
  /** The bytes as served (for hashes). */
  raw: Buffer;
}

export interface RoleSpec {
  keyids: string[];
  threshold: number;
}

export interface RootMeta {
  _type: 'Root';
  version: number;
  expires: string;
  consistent_snapshot?: boolean;
  keys: Record<string, TufKey>;
  roles: Record<string, RoleSpec>;
}

export interface FileMeta {
  length: number;
  hashes: Record<string, string>;
}

export interface TimestampMeta {
  _type: 'Timestamp';
  version: number;
  expires: string;
  meta: Record<string, FileMeta>;
}
export type SnapshotMeta = Omit<TimestampMeta, '_type'> & { _type: 'Snapshot' };

export interface DelegationRole extends RoleSpec {
  name: string;
  paths?: string[];
  path_hash_prefixes?: string[];
}

export interface TargetsMeta {
  _type: 'Targets';
  version: number;
  expires: string;
  targets: Record<string, FileMeta & { custom?: unknown }>;
  delegations?: { keys: Record<string, TufKey>; roles: DelegationRole[] };
}

export function tufError(m: string): PlinthError {
  return new PlinthError('SIGNATURE_INVALID', m);
}

const TYPES: Record<string, string> = { root: 'Root', timestamp: 'Timestamp', snapshot: 'Snapshot', targets: 'Targets' };
const MAX_KEYS = 256;
const MAX_SIGS = 64;
const MAX_TARGETS = 100_000;

function isObj(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function fileMeta(v: unknown, where: string): FileMeta {
  if (!isObj(v) || !Number.isSafeInteger(v.length) || (v.length as number) < 0 || !isObj(v.hashes)) throw tufError(`${where}: not {length, hashes}`);
  for (const [k, h] of Object.entries(v.hashes)) if (typeof h !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(h)) throw tufError(`${where}: hash ${k} is not base64`);
  return v as unknown as FileMeta;
}

function keys(v: unknown, where: string): Record<string, TufKey> {
  if (!isObj(v)) throw tufError(`${where}: keys is not an object`);
  if (Object.keys(v).length > MAX_KEYS) throw tufError(`${where}: more than ${MAX_KEYS} keys`);
  for (const [id, k] of Object.entries(v)) {
    if (!isObj(k) || typeof k.keytype !== 'string' || !isObj(k.keyval) || typeof k.keyval.public !== 'string') throw tufError(`${where}: key ${id} is not {keytype, keyval: {public}}`);
  }
  return v as Record<string, TufKey>;
}

function roleSpec(v: unknown, where: string): RoleSpec {
  if (!isObj(v) || !Array.isArray(v.keyids) || !v.keyids.every((k) => typeof k === 'string') || !Number.isSafeInteger(v.threshold)) throw tufError(`${where}: not {keyids, threshold}`);
  if ((v.threshold as number) < 1) throw tufError(`${where}: threshold ${String(v.threshold)} is below 1`);
  if (v.keyids.length > MAX_KEYS) throw tufError(`${where}: more than ${MAX_KEYS} key IDs`);
  return v as unknown as RoleSpec;
}

/** Parse a metadata document of `role` (root, timestamp, snapshot, targets or targets/…). */
export function parseMetadata<T>(raw: Buffer, role: RoleName): Signed<T> {
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    throw tufError(`${role}.json is not JSON`);
  }
  if (!isObj(doc) || !isObj(doc.signed) || !Array.isArray(doc.signatures)) throw tufError(`${role}.json is not {signed, signatures}`);
  if (doc.signatures.length > MAX_SIGS) throw tufError(`${role}.json has more than ${MAX_SIGS} signatures`);
  for (const s of doc.signatures) if (!isObj(s) || typeof s.keyid !== 'string' || typeof s.method !== 'string' || typeof s.sig !== 'string') throw tufError(`${role}.json: a signature is not {keyid, method, sig}`);
  const s = doc.signed;
  const type = TYPES[role] ?? 'Targets';
  if (s._type !== type) throw tufError(`${role}.json has _type ${JSON.stringify(s._type)}, not ${type}`);
  if (!Number.isSafeInteger(s.version) || (s.version as number) < 0) throw tufError(`${role}.json: version is not a number`);
  if (typeof s.expires !== 'string' || Number.isNaN(Date.parse(s.expires))) throw tufError(`${role}.json: expires is not a time`);
  if (type === 'Root') {
    keys(s.keys, `${role}.json`);
    if (!isObj(s.roles)) throw tufError('root.json: roles is not an object');
    for (const r of ['root', 'targets', 'snapshot', 'timestamp']) roleSpec(s.roles[r], `root.json role ${r}`);
  } else if (type === 'Timestamp' || type === 'Snapshot') {
    if (!isObj(s.meta)) throw tufError(`${role}.json: meta is not an object`);
    if (Object.keys(s.meta).length > MAX_KEYS * 4) throw tufError(`${role}.json: too many meta entries`);
    for (const [k, m] of Object.entries(s.meta)) fileMeta(m, `${role}.json meta ${k}`);
  } else {
    if (!isObj(s.targets)) throw tufError(`${role}.json: targets is not an object`);
    if (Object.keys(s.targets).length > MAX_TARGETS) throw tufError(`${role}.json: more than ${MAX_TARGETS} targets`);
    for (const [k, m] of Object.entries(s.targets)) fileMeta(m, `${role}.json target ${JSON.stringify(k)}`);
    if (s.delegations !== undefined) {
      const d = s.delegations;
      if (!isObj(d) || !Array.isArray(d.roles)) throw tufError(`${role}.json: delegations is not {keys, roles}`);
      keys(d.keys ?? {}, `${role}.json delegations`);
      if (d.roles.length > MAX_KEYS) throw tufError(`${role}.json: more than ${MAX_KEYS} delegations`);
      for (const r of d.roles) {
        roleSpec(r, `${role}.json delegation`);
        const dr = r as Record<string, unknown>;
        if (typeof dr.name !== 'string') throw tufError(`${role}.json: a delegation has no name`);
        if (dr.paths !== undefined && (!Array.isArray(dr.paths) || !dr.paths.every((p) => typeof p === 'string'))) throw tufError(`${role}.json: delegation ${dr.name} paths is not a list of strings`);
      }
    }
  }
  return { role, signed: s as T, signatures: doc.signatures as Signed<T>['signatures'], raw };
}

/** The TUF key ID: hex sha256 of the key's canonical JSON. */
export function keyId(k: TufKey): string {
  return createHash('sha256').update(canonicalJson({ keytype: k.keytype, keyval: { private: null, public: k.keyval.public } })).digest('hex');
}

/** The certificate of an x509 key (base64 of a PEM certificate). */
export function keyCertificate(k: TufKey): X509Certificate | undefined {
  if (!k.keytype.endsWith('-x509')) return undefined;
  try {
    const c = new X509Certificate(Buffer.from(k.keyval.public, 'base64'));
    void [c.publicKey, c.subject, c.validFrom, c.validTo];
    return c;
  } catch {
    throw tufError(`a ${k.keytype} key does not hold a PEM certificate`);
  }
}

/** The ID of the bare public key of an x509 key (what `notary key list` and `docker trust` show as the root key ID). */
export function canonicalKeyId(k: TufKey): string {
  const cert = keyCertificate(k);
  if (!cert) return keyId(k);
  const der = cert.publicKey.export({ format: 'der', type: 'spki' });
  return keyId({ keytype: k.keytype.replace('-x509', '') as TufKey['keytype'], keyval: { private: null, public: der.toString('base64') } });
}

function publicKey(k: TufKey): KeyObject {
  const cert = keyCertificate(k);
  if (cert) return cert.publicKey;
  const bytes = Buffer.from(k.keyval.public, 'base64');
  try {
    if (k.keytype === 'ed25519') {
      if (bytes.length !== 32) throw new Error('length');
      // SPKI prefix of an Ed25519 key: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }.
      return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), bytes]), format: 'der', type: 'spki' });
    }
    return createPublicKey({ key: bytes, format: 'der', type: 'spki' });
  } catch {
    throw tufError(`a ${k.keytype} key is not a public key`);
  }
}

const KEYTYPES = new Set(['ecdsa', 'ecdsa-x509', 'rsa', 'rsa-x509', 'ed25519']);

/** Whether one signature verifies over `msg` with the key (the method fitting the key type). */
export function verifySig(k: TufKey, method: string, msg: Buffer, sig: Buffer): boolean {
  if (!KEYTYPES.has(k.keytype)) return false;
  let key: KeyObject;
  try {
    key = publicKey(k);
  } catch {
    return false;
  }
  const type = key.asymmetricKeyType;
  try {
    if (method === 'ecdsa' && type === 'ec') return cryptoVerify('sha256', msg, { key, dsaEncoding: 'ieee-p1363' }, sig);
    if (method === 'rsapss' && type === 'rsa') return cryptoVerify('sha256', msg, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig);
    if (method === 'rsapkcs1v15' && type === 'rsa') return cryptoVerify('sha256', msg, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
    if (method === 'eddsa' && type === 'ed25519') return cryptoVerify(null, msg, key, sig);
  } catch {
    return false;
  }
  return false;
}

/**
 * Count the distinct keys of `spec` (looked up in `keys`, whose IDs must match their content)
 * with a valid signature on `doc`; throws naming the role when fewer than the threshold.
 * Returns the IDs that signed.
 */
export function verifyThreshold(doc: Signed<unknown>, keys: Record<string, TufKey>, spec: RoleSpec, what = doc.role): string[] {
  const msg = canonicalJson(doc.signed);
  const ok = new Set<string>();
  // One key counts once, even when listed twice (as a certificate and as a bare key).
  const publicKeys = new Set<string>();
  for (const s of doc.signatures) {
    if (!spec.keyids.includes(s.keyid) || ok.has(s.keyid)) continue;
    const k = keys[s.keyid];
    if (!k || keyId(k) !== s.keyid) continue;
    let pk: string;
    try {
      pk = canonicalKeyId(k);
    } catch {
      continue;
    }
    if (publicKeys.has(pk)) continue;
    if (verifySig(k, s.method, msg, Buffer.from(s.sig, 'base64'))) {
      ok.add(s.keyid);
      publicKeys.add(pk);
    }
  }
  if (ok.size < spec.threshold) {
    throw tufError(`${what}: ${ok.size} valid signature${ok.size === 1 ? '' : 's'} from its keys, the threshold is ${spec.threshold} (${doc.signatures.length} signature${doc.signatures.length === 1 ? '' : 's'} present)`);
  }
  return [...ok];
}

/** Throws when `expires` is before `now`. */
export function checkExpiry(role: string, expires: string, now: Date): void {
  if (Date.parse(expires) <= now.getTime()) throw tufError(`${role}.json expired at ${new Date(expires).toISOString()}`);
}

/** The bytes against {length, hashes}: every known hash (sha256, sha512) must match, and at least one is needed. */
export function checkFileMeta(role: string, raw: Buffer, meta: FileMeta, by: string): void {
  if (raw.length !== meta.length) throw tufError(`${role}.json is ${raw.length} bytes, ${by} says ${meta.length}`);
  let n = 0;
  for (const alg of ['sha256', 'sha512'] as const) {
    const want = meta.hashes[alg];
    if (want === undefined) continue;
    n++;
    if (createHash(alg).update(raw).digest('base64') !== want) throw tufError(`${role}.json does not match the ${alg} hash ${by} lists`);
  }
  if (!n) throw tufError(`${by} lists no sha256 or sha512 hash for ${role}.json`);
}

/** Whether a delegation's paths (prefixes; "" is every path) cover `target`. */
export function pathAllowed(role: DelegationRole, target: string): boolean {
  if (role.paths) return role.paths.some((p) => target.startsWith(p));
  if (role.path_hash_prefixes) {
    const h = createHash('sha256').update(target).digest('hex');
    return role.path_hash_prefixes.some((p) => h.startsWith(p));
  }
  return false;
}

/** The root role's certificate checks Notary makes: each x509 root key names the GUN and is valid now. */
export function checkRootCertificates(root: RootMeta, gun: string, now: Date): void {
  for (const id of root.roles.root!.keyids) {
    const k = root.keys[id];
    if (!k) continue;
    const cert = keyCertificate(k);
    if (!cert) continue;
    const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
    if (cn !== gun) throw tufError(`root key ${id.slice(0, 12)}…'s certificate is for ${JSON.stringify(cn)}, not ${gun}`);
    if (new Date(cert.validTo) < now || new Date(cert.validFrom) > now) throw tufError(`root key ${id.slice(0, 12)}…'s certificate is not valid now (${cert.validFrom} to ${cert.validTo})`);
  }
}
