/**
 * notation's trust policy (trustpolicy.json / trustpolicy.oci.json, version 1.0) and trust store
 * ($XDG_CONFIG_HOME/notation/truststore/x509/{ca,signingAuthority,tsa}/<name>/*), read and
 * validated as notation does, so the same files serve both tools.
 */
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PlinthError } from '../util/errors.js';
import { pemBlocks } from '../sign/keys.js';

export type Level = 'strict' | 'permissive' | 'audit' | 'skip';
export type Action = 'enforce' | 'log' | 'skip';
export type CheckName = 'integrity' | 'authenticity' | 'authenticTimestamp' | 'expiry' | 'revocation';
export const CHECKS: CheckName[] = ['integrity', 'authenticity', 'authenticTimestamp', 'expiry', 'revocation'];

/** What each level does with each check (the Notary Project trust policy specification). */
const LEVELS: Record<Level, Record<CheckName, Action>> = {
  strict: { integrity: 'enforce', authenticity: 'enforce', authenticTimestamp: 'enforce', expiry: 'enforce', revocation: 'enforce' },
  permissive: { integrity: 'enforce', authenticity: 'enforce', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
  audit: { integrity: 'enforce', authenticity: 'log', authenticTimestamp: 'log', expiry: 'log', revocation: 'log' },
  skip: { integrity: 'skip', authenticity: 'skip', authenticTimestamp: 'skip', expiry: 'skip', revocation: 'skip' },
};

export interface TrustStoreRef {
  type: 'ca' | 'signingAuthority' | 'tsa';
  name: string;
}

export interface TrustPolicyStatement {
  name: string;
  registryScopes: string[];
  level: Level;
  actions: Record<CheckName, Action>;
  trustStores: TrustStoreRef[];
  /** '*' or parsed x509.subject DNs (attribute → value). */
  trustedIdentities: Array<'*' | { dn: string; attrs: Map<string, string> }>;
  /** With a tsa trust store: verify the timestamp always (default), or only once the signing chain has expired. */
  verifyTimestamp: 'always' | 'afterCertExpiry';
}

export interface TrustPolicy {
  statements: TrustPolicyStatement[];
}

const MAX_POLICY = 1 << 20;

function fail(m: string): never {
  throw new PlinthError('USAGE', `trust policy: ${m}`);
}

/** Parse an RFC 4514-ish DN ("C=US, ST=WA, O=Notary") into attribute → value. */
export function parseDn(dn: string, where: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const s = dn.trim();
  while (i < s.length) {
    let key = '';
    while (i < s.length && s[i] !== '=') key += s[i++];
    if (s[i] !== '=') fail(`${where}: "${dn}" is not a distinguished name (KEY=value, …)`);
    i++;
    let val = '';
    while (i < s.length && s[i] !== ',' && s[i] !== '+') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      val += s[i++];
    }
    i++;
    const k = key.trim().toUpperCase();
    if (!/^[A-Z][A-Z0-9-]*$|^\d+(\.\d+)+$/.test(k)) fail(`${where}: "${key.trim()}" is not an attribute type in "${dn}"`);
    if (out.has(k)) fail(`${where}: attribute ${k} appears twice in "${dn}"`);
    out.set(k, val.trim());
  }
  return out;
}

/** The subject of a certificate as attribute → value (Node prints one attribute per line). */
export function subjectAttrs(cert: X509Certificate): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of cert.subject.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out.set(line.slice(0, i).toUpperCase(), line.slice(i + 1));
  }
  if (out.has('S') && !out.has('ST')) out.set('ST', out.get('S')!);
  return out;
}

/** Validate a parsed trustpolicy.json document the way notation does. */
export function parseTrustPolicy(doc: unknown): TrustPolicy {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) fail('not a JSON object');
  const d = doc as { version?: unknown; trustPolicies?: unknown };
  if (d.version !== '1.0') fail(`version ${JSON.stringify(d.version)} is not supported (1.0)`);
  if (!Array.isArray(d.trustPolicies) || !d.trustPolicies.length) fail('trustPolicies is empty');
  if (d.trustPolicies.length > 256) fail('more than 256 trust policies');
  const names = new Set<string>();
  const scopes = new Map<string, string>();
  const statements: TrustPolicyStatement[] = [];
  for (const [i, raw] of d.trustPolicies.entries()) {
    const p = raw as Record<string, unknown>;
    if (!p || typeof p !== 'object') fail(`trustPolicies[${i}] is not an object`);
    if (typeof p.name !== 'string' || !p.name) fail(`trustPolicies[${i}] has no name`);
    const name = p.name;
    if (names.has(name)) fail(`multiple trust policy statements use the same name "${name}"`);
    names.add(name);
    if (!Array.isArray(p.registryScopes) || !p.registryScopes.length || !p.registryScopes.every((s) => typeof s === 'string' && s)) fail(`statement "${name}" has no registryScopes`);
    const rs = p.registryScopes as string[];
    if (rs.includes('*') && rs.length > 1) fail(`statement "${name}": the wildcard registry scope "*" cannot be combined with other scopes`);
    for (const s of rs) {
      if (s !== '*' && !/^[^/\s]+\/[^\s:@]+$/.test(s)) fail(`statement "${name}": registry scope "${s}" is not REGISTRY/REPOSITORY or "*"`);
      const other = scopes.get(s);
      if (other !== undefined) fail(`registry scope "${s}" is in statements "${other}" and "${name}"; a scope may be in one statement only`);
      scopes.set(s, name);
    }
    const sv = p.signatureVerification as { level?: unknown; override?: unknown; verifyTimestamp?: unknown } | undefined;
    if (!sv || typeof sv !== 'object') fail(`statement "${name}" has no signatureVerification`);
    const level = sv.level;
    if (level !== 'strict' && level !== 'permissive' && level !== 'audit' && level !== 'skip') fail(`statement "${name}": signature verification level ${JSON.stringify(level)} is not strict, permissive, audit or skip`);
    const actions = { ...LEVELS[level] };
    if (sv.override !== undefined) {
      if (level === 'skip') fail(`statement "${name}": the skip level cannot have overrides`);
      if (!sv.override || typeof sv.override !== 'object' || Array.isArray(sv.override)) fail(`statement "${name}": override is not an object`);
      for (const [k, v] of Object.entries(sv.override as Record<string, unknown>)) {
        if (!CHECKS.includes(k as CheckName)) fail(`statement "${name}": override of unknown check "${k}"`);
        if (k === 'integrity') fail(`statement "${name}": the integrity check cannot be overridden`);
        if (v !== 'enforce' && v !== 'log' && v !== 'skip') fail(`statement "${name}": override ${k} is ${JSON.stringify(v)}, not enforce, log or skip`);
        if (k === 'authenticity' && v === 'skip') fail(`statement "${name}": authenticity cannot be skipped (use the audit or skip level)`);
        actions[k as CheckName] = v;
      }
    }
    const vt = sv.verifyTimestamp ?? 'always';
    if (vt !== 'always' && vt !== 'afterCertExpiry') fail(`statement "${name}": verifyTimestamp ${JSON.stringify(vt)} is not always or afterCertExpiry`);
    const trustStores: TrustStoreRef[] = [];
    const identities: TrustPolicyStatement['trustedIdentities'] = [];
    if (level !== 'skip') {
      if (!Array.isArray(p.trustStores) || !p.trustStores.length) fail(`statement "${name}" has no trustStores`);
      for (const t of p.trustStores as unknown[]) {
        const m = typeof t === 'string' ? /^(ca|signingAuthority|tsa):([A-Za-z0-9_.-]+)$/.exec(t) : null;
        if (!m) fail(`statement "${name}": trust store ${JSON.stringify(t)} is not ca:NAME, signingAuthority:NAME or tsa:NAME`);
        trustStores.push({ type: m[1] as TrustStoreRef['type'], name: m[2]! });
      }
      if (!Array.isArray(p.trustedIdentities) || !p.trustedIdentities.length) fail(`statement "${name}" has no trustedIdentities`);
      const ti = p.trustedIdentities as unknown[];
      if (ti.includes('*') && ti.length > 1) fail(`statement "${name}": the wildcard trusted identity "*" cannot be combined with others`);
      for (const t of ti) {
        if (t === '*') {
          identities.push('*');
          continue;
        }
        if (typeof t !== 'string' || !t.startsWith('x509.subject:')) fail(`statement "${name}": trusted identity ${JSON.stringify(t)} is not "*" or "x509.subject: DN"`);
        const dn = t.slice('x509.subject:'.length).trim();
        const attrs = parseDn(dn, `statement "${name}"`);
        if (!attrs.has('C') || !(attrs.has('ST') || attrs.has('S')) || !attrs.has('O')) fail(`statement "${name}": trusted identity "${dn}" must have at least the C, ST (or S) and O attributes`);
        if (attrs.has('S') && !attrs.has('ST')) attrs.set('ST', attrs.get('S')!);
        identities.push({ dn, attrs });
      }
    } else if ((Array.isArray(p.trustStores) && p.trustStores.length) || (Array.isArray(p.trustedIdentities) && p.trustedIdentities.length)) {
      fail(`statement "${name}": the skip level takes no trustStores or trustedIdentities`);
    }
    statements.push({ name, registryScopes: rs, level, actions, trustStores, trustedIdentities: identities, verifyTimestamp: vt });
  }
  return { statements };
}

/** The statement for `registry/repository`: an exact scope first, else the wildcard one. */
export function policyFor(policy: TrustPolicy, name: string): TrustPolicyStatement | undefined {
  return policy.statements.find((s) => s.registryScopes.includes(name)) ?? policy.statements.find((s) => s.registryScopes.includes('*'));
}

/** notation's configuration directory: $XDG_CONFIG_HOME/notation, else ~/.config/notation. */
export function notationConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'notation');
}

/** Read a trust policy file; without a path, notation's trustpolicy.oci.json then trustpolicy.json. */
export async function loadTrustPolicy(file?: string): Promise<TrustPolicy> {
  const candidates = file ? [file] : [path.join(notationConfigDir(), 'trustpolicy.oci.json'), path.join(notationConfigDir(), 'trustpolicy.json')];
  for (const f of candidates) {
    let text: Buffer;
    try {
      const st = await stat(f); // symbolic links are followed (mounted ConfigMaps and Secrets are links)
      if (!st.isFile()) throw new PlinthError('USAGE', `trust policy ${f} is not a regular file`);
      if (st.size > MAX_POLICY) throw new PlinthError('USAGE', `trust policy ${f} is larger than ${MAX_POLICY} bytes`);
      text = await readFile(f);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !file) continue;
      if (e instanceof PlinthError) throw e;
      throw new PlinthError('USAGE', `cannot read trust policy ${f}: ${(e as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text.toString('utf8'));
    } catch {
      throw new PlinthError('USAGE', `trust policy ${f} is not JSON`);
    }
    try {
      return parseTrustPolicy(doc);
    } catch (e) {
      if (e instanceof PlinthError) throw new PlinthError('USAGE', `${f}: ${e.message}`);
      throw e;
    }
  }
  throw new PlinthError('USAGE', `no trust policy: give --trust-policy, or write ${candidates.join(' or ')}`);
}

const MAX_STORE_FILES = 256;
const MAX_CERT_FILE = 1 << 20;

/** The trust store root (…/truststore); `x509/<type>/<name>/` below it holds certificate files. */
export function defaultTrustStore(): string {
  return path.join(notationConfigDir(), 'truststore');
}

/** The certificates of one named trust store (PEM or DER files); an empty or missing store is an error. Synchronous: policies are loaded synchronously. */
export function loadTrustStore(root: string, ref: TrustStoreRef): X509Certificate[] {
  const dir = path.join(root, 'x509', ref.type, ref.name);
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    throw new PlinthError('USAGE', `trust store ${ref.type}:${ref.name}: cannot read ${dir}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such directory' : (e as Error).message}`);
  }
  if (names.length > MAX_STORE_FILES) throw new PlinthError('USAGE', `trust store ${ref.type}:${ref.name} has more than ${MAX_STORE_FILES} files`);
  const out: X509Certificate[] = [];
  for (const n of names) {
    const f = path.join(dir, n);
    const st = statSync(f); // links followed, as for the trust policy
    if (st.isDirectory()) continue;
    if (!st.isFile()) throw new PlinthError('USAGE', `trust store ${ref.type}:${ref.name}: ${f} is not a regular file`);
    if (st.size > MAX_CERT_FILE) throw new PlinthError('USAGE', `trust store ${ref.type}:${ref.name}: ${f} is larger than ${MAX_CERT_FILE} bytes`);
    const bytes = readFileSync(f);
    const blocks = pemBlocks(bytes.toString('latin1'));
    const ders = blocks.length ? blocks.filter((b) => b.type === 'CERTIFICATE').map((b) => b.der) : [bytes];
    if (!ders.length) throw new PlinthError('USAGE', `trust store ${ref.type}:${ref.name}: ${f} holds no certificate`);
    for (const der of ders) {
      try {
        const c = new X509Certificate(der);
        void c.publicKey;
        out.push(c);
      } catch {
        throw new PlinthError('USAGE', `trust store ${ref.type}:${ref.name}: ${f} is not an X.509 certificate (PEM or DER)`);
      }
    }
  }
  if (!out.length) throw new PlinthError('USAGE', `trust store ${ref.type}:${ref.name} (${dir}) holds no certificates`);
  return out;
}
