/**
 * Verifying Notary Project (notation) signatures of a registry image: find them as OCI
 * referrers (artifact type application/vnd.cncf.notary.signature, through the referrers API or
 * the tag-schema index), read each envelope (JWS or COSE), and judge it with the trust policy
 * statement for the image's repository, as `notation verify` does: integrity (the signature
 * over the payload with the leaf key, the certificate chain well formed and fit for code
 * signing, the payload naming this manifest's digest and size), authenticity (the chain ends in
 * a certificate of the policy's trust stores, the leaf subject matches trustedIdentities),
 * authentic timestamp (the chain valid now, or at the authentic signing time), expiry, and
 * revocation, each enforced, logged or skipped by the verification level and its overrides.
 */
import { constants, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto';
import type { RegistryClient } from '../registry/client.js';
import { describeError, PlinthError } from '../util/errors.js';
import { parseEnvelope, parsePayload, type Algorithm, type Envelope } from './envelope.js';
import { verifyTimestamp } from './timestamp.js';
import { loadTrustStore, policyFor, type TrustPolicy, subjectAttrs, type Action, type CheckName, type TrustPolicyStatement } from './trustpolicy.js';

export const NOTATION_ARTIFACT_TYPE = 'application/vnd.cncf.notary.signature';
/** An envelope larger than this is not a signature (as for cosign's payloads). */
export const MAX_PAYLOAD = 1 << 20;
/** notation's own default cap on signatures looked at per artifact. */
export const MAX_NOTATION_SIGNATURES = 50;

export interface NotationMaterial {
  source: string;
  mediaType?: string;
  envelope?: Buffer;
  /** Why this referrer cannot be a signature. */
  broken?: string;
}

/** The notation signatures that refer to `digest` in `repo` (bounded in count and size). */
export async function discoverNotation(client: RegistryClient, repo: string, digest: string): Promise<NotationMaterial[]> {
  const { manifests } = await client.referrers(repo, digest);
  const refs = manifests.filter((m) => m.artifactType === NOTATION_ARTIFACT_TYPE && typeof m.digest === 'string').slice(0, MAX_NOTATION_SIGNATURES);
  const out: NotationMaterial[] = [];
  for (const r of refs) {
    const source = `${repo}@${r.digest as string}`;
    try {
      const raw = (await client.getManifest(repo, r.digest as string)).bytes;
      type SigManifest = { artifactType?: unknown; config?: { mediaType?: unknown }; layers?: Array<{ mediaType?: unknown; digest?: unknown; size?: unknown }>; subject?: { digest?: unknown } };
      let m: SigManifest | null;
      try {
        m = JSON.parse(raw.toString('utf8')) as SigManifest | null;
      } catch {
        m = null;
      }
      if (!m || typeof m !== 'object' || Array.isArray(m)) {
        out.push({ source, broken: 'the referrer is not a JSON manifest' });
        continue;
      }
      if (m.artifactType !== NOTATION_ARTIFACT_TYPE && m.config?.mediaType !== NOTATION_ARTIFACT_TYPE) {
        out.push({ source, broken: `the referrer's artifact type is not ${NOTATION_ARTIFACT_TYPE}` });
        continue;
      }
      if (m.subject?.digest !== digest) {
        out.push({ source, broken: `the referrer's subject is ${String(m.subject?.digest)}, not ${digest}` });
        continue;
      }
      const layer = Array.isArray(m.layers) && m.layers.length === 1 && m.layers[0] && typeof m.layers[0] === 'object' ? m.layers[0] : undefined;
      const size = Number(layer?.size);
      if (!layer || typeof layer.mediaType !== 'string' || typeof layer.digest !== 'string') out.push({ source, broken: 'the signature manifest does not have exactly one envelope layer' });
      else if (!Number.isSafeInteger(size) || size < 0 || size > MAX_PAYLOAD) out.push({ source, broken: `envelope of ${String(layer.size)} bytes is over the ${MAX_PAYLOAD}-byte limit` });
      else out.push({ source, mediaType: layer.mediaType, envelope: await client.getBlobBytes(repo, layer.digest, size, MAX_PAYLOAD) });
    } catch (e) {
      if (!(e instanceof PlinthError)) throw e;
      out.push({ source, broken: e.message });
    }
  }
  return out;
}

export interface CheckResult {
  check: CheckName;
  action: Action;
  ok: boolean;
  message: string;
}

export interface NotationCheck {
  format: 'notation';
  source: string;
  envelope?: 'jws' | 'cose';
  verified: boolean;
  reason: string;
  /** The leaf certificate's subject, when the envelope could be read. */
  signer?: string;
  signedDigest?: string;
  signingTime?: string;
  checks: CheckResult[];
}

export interface NotationTarget {
  /** registry/repository, for the trust policy scope. */
  name: string;
  digest: string;
  size: number;
}

const HASH: Record<Algorithm, string> = { PS256: 'sha256', PS384: 'sha384', PS512: 'sha512', ES256: 'sha256', ES384: 'sha384', ES512: 'sha512' };
const CURVE: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

function keyFits(key: KeyObject, alg: Algorithm): string | undefined {
  if (alg.startsWith('PS')) {
    if (key.asymmetricKeyType !== 'rsa') return `the ${alg} signature is made with a ${String(key.asymmetricKeyType)} key`;
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) return 'the RSA key is shorter than 2048 bits';
    return undefined;
  }
  if (key.asymmetricKeyType !== 'ec') return `the ${alg} signature is made with a ${String(key.asymmetricKeyType)} key`;
  if (key.asymmetricKeyDetails?.namedCurve !== CURVE[alg]) return `${alg} needs curve ${CURVE[alg]}, the key is on ${String(key.asymmetricKeyDetails?.namedCurve)}`;
  return undefined;
}

function signatureVerifies(env: Envelope): boolean {
  const key = env.chain[0]!.publicKey;
  try {
    if (env.alg.startsWith('PS')) return cryptoVerify(HASH[env.alg], env.signingInput, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, env.signature);
    return cryptoVerify(HASH[env.alg], env.signingInput, { key, dsaEncoding: 'ieee-p1363' }, env.signature);
  } catch {
    return false;
  }
}

const OID_CRL_DP = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x1f]);

/** Each certificate signed by the next, the last self-signed; the leaf fit for code signing. */
function chainProblem(chain: X509Certificate[]): string | undefined {
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i]!;
    const issuer = chain[i + 1] ?? c;
    let signed = false;
    try {
      signed = c.issuer === issuer.subject && c.verify(issuer.publicKey);
    } catch {
      signed = false;
    }
    if (!signed) return i + 1 < chain.length ? `certificate ${i} (${c.subject.replaceAll('\n', ', ')}) is not signed by certificate ${i + 1}` : `the last certificate of the chain (${c.subject.replaceAll('\n', ', ')}) is not a self-signed root`;
    if (i > 0 && !c.ca) return `certificate ${i} (${c.subject.replaceAll('\n', ', ')}) issues certificates but is not a CA`;
  }
  const leaf = chain[0]!;
  if (chain.length > 1 && leaf.ca) return 'the signing certificate is a CA certificate';
  const eku = leaf.keyUsage;
  if (eku && eku.length && !eku.includes('1.3.6.1.5.5.7.3.3')) return 'the signing certificate\'s extended key usage does not include code signing';
  return undefined;
}

function validAt(chain: X509Certificate[], t: Date): string | undefined {
  for (const [i, c] of chain.entries()) {
    if (new Date(c.validFrom) > t) return `certificate ${i} (${c.subject.replaceAll('\n', ', ')}) is not valid before ${new Date(c.validFrom).toISOString()}`;
    if (new Date(c.validTo) < t) return `certificate ${i} (${c.subject.replaceAll('\n', ', ')}) expired at ${new Date(c.validTo).toISOString()}`;
  }
  return undefined;
}

/** The certificates of the statement's trust stores of `type` (a store that could not be read throws). */
function storeCerts(statement: TrustPolicyStatement, type: 'ca' | 'signingAuthority' | 'tsa', stores: TrustStores): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const ref of statement.trustStores.filter((t) => t.type === type)) {
    const got = stores.get(`${type}:${ref.name}`);
    if (got instanceof PlinthError) throw got;
    if (!got) throw new PlinthError('USAGE', `trust store ${type}:${ref.name} was not loaded`);
    out.push(...got);
  }
  return out;
}

/** Trust store certificates by `type:name`, or the error reading that store gave. */
export type TrustStores = Map<string, X509Certificate[] | PlinthError>;

/** Read every trust store the policy names (errors kept per store, reported where it is used). */
export function loadTrustStores(policy: TrustPolicy, root: string): TrustStores {
  const out: TrustStores = new Map();
  for (const st of policy.statements) {
    for (const ref of st.trustStores) {
      const k = `${ref.type}:${ref.name}`;
      if (out.has(k)) continue;
      try {
        out.set(k, loadTrustStore(root, ref));
      } catch (e) {
        if (!(e instanceof PlinthError)) throw e;
        out.set(k, e);
      }
    }
  }
  return out;
}

export interface NotationOptions {
  policy: TrustPolicy;
  /** The trust stores' certificates (loadTrustStores). */
  stores: TrustStores;
  now?: Date;
}

/** Judge one envelope; never throws for what the envelope holds. */
function checkOne(m: NotationMaterial, target: NotationTarget, statement: TrustPolicyStatement, o: NotationOptions): NotationCheck {
  const base = { format: 'notation' as const, source: m.source };
  const results: CheckResult[] = [];
  if (m.broken || !m.envelope || !m.mediaType) return { ...base, verified: false, reason: m.broken ?? 'no envelope', checks: [] };
  let env: Envelope;
  try {
    env = parseEnvelope(m.mediaType, m.envelope);
  } catch (e) {
    if (!(e instanceof PlinthError)) throw e;
    return { ...base, verified: false, reason: `integrity: ${e.message}`, checks: [{ check: 'integrity', action: 'enforce', ok: false, message: e.message }] };
  }
  const now = o.now ?? new Date();
  const leaf = env.chain[0]!;
  const out: NotationCheck = { ...base, envelope: env.format, verified: false, reason: '', signer: leaf.subject.replaceAll('\n', ', '), checks: results, ...(env.signingTime ? { signingTime: env.signingTime.toISOString() } : {}) };
  const add = (check: CheckName, problem: string | undefined, okMessage: string) => {
    const action = statement.actions[check];
    if (action === 'skip') return;
    results.push({ check, action, ok: !problem, message: problem ?? okMessage });
  };
  // integrity (always enforced)
  let integrity = keyFits(leaf.publicKey, env.alg);
  if (!integrity && !signatureVerifies(env)) integrity = `the ${env.alg} signature does not verify with the signing certificate's key (the envelope was altered or signed by another key)`;
  if (!integrity) integrity = chainProblem(env.chain);
  if (!integrity && env.unsupportedCritical.length) integrity = `the signature requires a verification plugin (${env.unsupportedCritical.join(', ')}), which Plinth does not run`;
  if (!integrity) {
    try {
      const t = parsePayload(env.payload);
      out.signedDigest = t.digest;
      if (t.digest !== target.digest) integrity = `the signature is for ${t.digest}, not this image (${target.digest})`;
      else if (t.size !== target.size) integrity = `the signature is for a ${t.size}-byte manifest, this one is ${target.size} bytes`;
    } catch (e) {
      if (!(e instanceof PlinthError)) throw e;
      integrity = e.message;
    }
  }
  results.push({ check: 'integrity', action: 'enforce', ok: !integrity, message: integrity ?? `${env.format.toUpperCase()} ${env.alg} signature over ${target.digest} (${target.size} bytes) verifies with the signing certificate` });
  if (integrity) {
    out.reason = `integrity: ${integrity}`;
    return out;
  }
  // authenticity: trust store and trusted identity
  if (statement.actions.authenticity !== 'skip') {
    let problem: string | undefined;
    const type = env.signingScheme === 'notary.x509' ? 'ca' : 'signingAuthority';
    let trusted: X509Certificate[] = [];
    try {
      trusted = storeCerts(statement, type, o.stores);
    } catch (e) {
      if (!(e instanceof PlinthError)) throw e;
      problem = e.message;
    }
    if (!problem && !trusted.length) problem = `trust policy statement "${statement.name}" names no ${type} trust store (the signing scheme is ${env.signingScheme})`;
    if (!problem && !env.chain.some((c) => trusted.some((t) => t.raw.equals(c.raw)))) problem = `the certificate chain does not lead to a certificate of the trust stores ${statement.trustStores.filter((t) => t.type === type).map((t) => `${t.type}:${t.name}`).join(', ')}`;
    if (!problem) {
      const subj = subjectAttrs(leaf);
      const ok = statement.trustedIdentities.some((id) => id === '*' || [...id.attrs].every(([k, v]) => subj.get(k) === v));
      if (!ok) problem = `the signing certificate's subject (${out.signer}) is not one of the trusted identities of "${statement.name}"`;
    }
    add('authenticity', problem, `the chain leads to the trust store and ${out.signer} is a trusted identity`);
  }
  // authentic timestamp, as notation: under notary.x509 with a tsa trust store in the statement,
  // the RFC 3161 countersignature must verify and the chain be valid at the time it stamps
  // (verifyTimestamp afterCertExpiry: only once the chain has expired); without one, the chain
  // must be valid now. Under the signing-authority scheme: valid at the authentic signing time.
  if (statement.actions.authenticTimestamp !== 'skip') {
    if (env.signingScheme === 'notary.x509.signingAuthority') {
      const at = env.authenticSigningTime!;
      add('authenticTimestamp', validAt(env.chain, at), `the certificate chain is valid at the authentic signing time ${at.toISOString()}`);
    } else {
      const tsa = statement.trustStores.some((t) => t.type === 'tsa');
      const expired = env.chain.some((c) => new Date(c.validTo) < now);
      if (!tsa || (statement.verifyTimestamp === 'afterCertExpiry' && !expired)) add('authenticTimestamp', validAt(env.chain, now), `the certificate chain is valid now (${now.toISOString()})`);
      else if (!env.timestampSignature) add('authenticTimestamp', 'no timestamp countersignature was found in the signature envelope (the statement names a tsa trust store)', '');
      else {
        let problem: string | undefined;
        let ok = '';
        try {
          const r = verifyTimestamp(env.timestampSignature, env.signature, storeCerts(statement, 'tsa', o.stores));
          problem = validAt(env.chain, r.time);
          ok = `time stamped ${r.time.toISOString()} by ${r.tsa}; the certificate chain was valid then`;
        } catch (e) {
          if (!(e instanceof PlinthError)) throw e;
          problem = e.message;
        }
        add('authenticTimestamp', problem, ok);
      }
    }
  }
  add('expiry', env.expiry && env.expiry < now ? `the signature expired at ${env.expiry.toISOString()}` : undefined, env.expiry ? `the signature is valid until ${env.expiry.toISOString()}` : 'the signature has no expiry');
  {
    const revocable = env.chain.some((c) => c.infoAccess?.includes('OCSP') || c.raw.includes(OID_CRL_DP));
    add('revocation', revocable ? 'the certificate chain names OCSP or CRL endpoints, and Plinth does not check revocation online' : undefined, 'the certificates name no revocation endpoints (not revocable)');
  }
  const failedEnforced = results.filter((r) => !r.ok && r.action === 'enforce');
  const logged = results.filter((r) => !r.ok && r.action === 'log');
  out.verified = failedEnforced.length === 0;
  out.reason = out.verified
    ? `${env.format.toUpperCase()} signature by ${out.signer} verified with trust policy "${statement.name}" (${statement.level})${logged.length ? `; logged: ${logged.map((r) => `${r.check}: ${r.message}`).join('; ')}` : ''}`
    : failedEnforced.map((r) => `${r.check}: ${r.message}`).join('; ');
  return out;
}

export interface NotationResult {
  policy: string;
  level: string;
  signatures: NotationCheck[];
  verified: boolean;
  /** The statement's level is skip: nothing was verified, by policy. */
  skipped?: boolean;
}

/** Judge the materials found for `target` with the trust policy. */
export function checkNotation(materials: NotationMaterial[], target: NotationTarget, o: NotationOptions): NotationResult {
  const statement = policyFor(o.policy, target.name);
  if (!statement) throw new PlinthError('SIGNATURE_INVALID', `${target.name} is not in the registryScopes of any trust policy statement`);
  if (statement.level === 'skip') return { policy: statement.name, level: 'skip', signatures: [], verified: true, skipped: true };
  const signatures = materials.map((m) => {
    try {
      return checkOne(m, target, statement, o);
    } catch (e) {
      // Whatever a hostile envelope makes the crypto layer throw is a refusal, never a crash.
      return { format: 'notation' as const, source: m.source, verified: false, reason: `integrity: the envelope cannot be checked (${describeError(e)})`, checks: [] };
    }
  });
  return { policy: statement.name, level: statement.level, signatures, verified: signatures.some((s) => s.verified) };
}
