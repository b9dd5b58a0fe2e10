/**
 * Notary Project signature envelopes, as `notation sign` writes them: JWS JSON serialization
 * (`application/jose+json`) and COSE_Sign1 (`application/cose`), read into one shape. Only the
 * structure is judged here (headers present and of the right type, critical headers known, the
 * signature algorithm and certificate chain readable); verify.ts checks signatures and trust.
 *
 * Protected headers (both formats): alg, crit (must list io.cncf.notary.signingScheme, and
 * io.cncf.notary.expiry when present), cty = application/vnd.cncf.notary.payload.v1+json,
 * io.cncf.notary.signingScheme (notary.x509 or notary.x509.signingAuthority),
 * io.cncf.notary.signingTime / authenticSigningTime, io.cncf.notary.expiry. Unprotected: the
 * certificate chain (JWS `x5c`, COSE label 33), leaf first; io.cncf.notary.signingAgent.
 */
import { X509Certificate } from 'node:crypto';
import { PlinthError } from '../util/errors.js';
import { decodeCbor, encodeCbor, Tagged, type CborValue } from './cbor.js';

export const JWS_MEDIA_TYPE = 'application/jose+json';
export const COSE_MEDIA_TYPE = 'application/cose';
export const NOTARY_PAYLOAD_TYPE = 'application/vnd.cncf.notary.payload.v1+json';
export const SIGNING_SCHEME = 'io.cncf.notary.signingScheme';
export const SIGNING_TIME = 'io.cncf.notary.signingTime';
export const AUTHENTIC_SIGNING_TIME = 'io.cncf.notary.authenticSigningTime';
export const EXPIRY = 'io.cncf.notary.expiry';
export const SIGNING_AGENT = 'io.cncf.notary.signingAgent';
export const TIMESTAMP_SIGNATURE = 'io.cncf.notary.timestampSignature';
/** Headers notation knows; any other header listed as critical makes the envelope unusable. */
const KNOWN_CRITICAL = new Set([SIGNING_SCHEME, EXPIRY, AUTHENTIC_SIGNING_TIME, 'io.cncf.notary.verificationPlugin', 'io.cncf.notary.verificationPluginMinVersion']);
const MAX_CHAIN = 10;

export type Algorithm = 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512';
const COSE_ALGS: Record<number, Algorithm> = { [-37]: 'PS256', [-38]: 'PS384', [-39]: 'PS512', [-7]: 'ES256', [-35]: 'ES384', [-36]: 'ES512' };

export interface Envelope {
  format: 'jws' | 'cose';
  alg: Algorithm;
  /** The bytes the signature covers. */
  signingInput: Buffer;
  signature: Buffer;
  /** Leaf first. */
  chain: X509Certificate[];
  payload: Buffer;
  signingScheme: 'notary.x509' | 'notary.x509.signingAuthority';
  signingTime?: Date;
  authenticSigningTime?: Date;
  expiry?: Date;
  signingAgent?: string;
  /** An RFC 3161 time-stamp token over the signature (unprotected header). */
  timestampSignature?: Buffer;
  /** Critical headers notation knows but Plinth does not act on (verification plugins). */
  unsupportedCritical: string[];
}

function bad(format: string, m: string): never {
  throw new PlinthError('SIGNATURE_INVALID', `${format} envelope: ${m}`);
}

function b64url(s: unknown, what: string): Buffer {
  if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) bad('JWS', `${what} is not base64url`);
  return Buffer.from(s, 'base64url');
}

function certs(ders: Uint8Array[], format: string): X509Certificate[] {
  if (!ders.length) bad(format, 'no certificate chain');
  if (ders.length > MAX_CHAIN) bad(format, `certificate chain of ${ders.length} certificates (at most ${MAX_CHAIN})`);
  return ders.map((d, i) => {
    try {
      const c = new X509Certificate(d);
      // Every field the checks read must be readable: a corrupt key or extension throws here, named.
      void [c.subject, c.issuer, c.publicKey, c.validFrom, c.validTo, c.ca, c.keyUsage, c.infoAccess];
      return c;
    } catch {
      return bad(format, `certificate ${i} of the chain is not a readable X.509 certificate`);
    }
  });
}

function rfc3339(v: unknown, what: string, format: string): Date {
  if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v)) bad(format, `${what} is not an RFC 3339 time`);
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) bad(format, `${what} is not a time`);
  return d;
}

function common(format: 'jws' | 'cose', h: { crit: unknown; cty: unknown; scheme: unknown; present: (k: string) => boolean }): { scheme: Envelope['signingScheme']; unsupported: string[] } {
  const F = format.toUpperCase();
  if (h.cty !== NOTARY_PAYLOAD_TYPE) bad(F, `content type is ${JSON.stringify(h.cty)}, not ${NOTARY_PAYLOAD_TYPE}`);
  if (h.scheme !== 'notary.x509' && h.scheme !== 'notary.x509.signingAuthority') bad(F, `signing scheme ${JSON.stringify(h.scheme)} is not notary.x509 or notary.x509.signingAuthority`);
  if (!Array.isArray(h.crit) || !h.crit.every((c) => typeof c === 'string')) bad(F, 'crit is not a list of header names');
  const crit = h.crit as string[];
  if (!crit.includes(SIGNING_SCHEME)) bad(F, `${SIGNING_SCHEME} is not marked critical`);
  if (h.present(EXPIRY) && !crit.includes(EXPIRY)) bad(F, `${EXPIRY} is not marked critical`);
  if (h.scheme === 'notary.x509.signingAuthority' && !crit.includes(AUTHENTIC_SIGNING_TIME)) bad(F, `${AUTHENTIC_SIGNING_TIME} is not marked critical`);
  for (const c of crit) {
    if (!KNOWN_CRITICAL.has(c)) bad(F, `unknown critical header ${JSON.stringify(c)}`);
    if (!h.present(c)) bad(F, `critical header ${c} is missing`);
  }
  return { scheme: h.scheme, unsupported: crit.filter((c) => c.startsWith('io.cncf.notary.verificationPlugin')) };
}

/** A JWS JSON (flattened) envelope. */
export function parseJws(bytes: Buffer): Envelope {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    return bad('JWS', 'not JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) bad('JWS', 'not a JSON object');
  const protB64 = doc.protected;
  const payloadB64 = doc.payload;
  const protRaw = b64url(protB64, 'protected');
  let prot: Record<string, unknown>;
  try {
    prot = JSON.parse(protRaw.toString('utf8')) as Record<string, unknown>;
  } catch {
    return bad('JWS', 'protected header is not JSON');
  }
  if (!prot || typeof prot !== 'object' || Array.isArray(prot)) bad('JWS', 'protected header is not an object');
  const header = (doc.header ?? {}) as Record<string, unknown>;
  if (typeof header !== 'object' || Array.isArray(header)) bad('JWS', 'unprotected header is not an object');
  const alg = prot.alg;
  if (typeof alg !== 'string' || !['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'].includes(alg)) bad('JWS', `signature algorithm ${JSON.stringify(alg)} is not one notation uses (PS256/384/512, ES256/384/512)`);
  const { scheme, unsupported } = common('jws', { crit: prot.crit, cty: prot.cty, scheme: prot[SIGNING_SCHEME], present: (k) => Object.hasOwn(prot, k) });
  const x5c = header.x5c;
  if (!Array.isArray(x5c) || !x5c.every((c) => typeof c === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(c))) bad('JWS', 'x5c is not a list of base64 certificates');
  const env: Envelope = {
    format: 'jws',
    alg: alg as Algorithm,
    signingInput: Buffer.from(`${protB64 as string}.${String(payloadB64)}`, 'ascii'),
    signature: b64url(doc.signature, 'signature'),
    chain: certs((x5c as string[]).map((c) => Buffer.from(c, 'base64')), 'JWS'),
    payload: b64url(payloadB64, 'payload'),
    signingScheme: scheme,
    unsupportedCritical: unsupported,
  };
  if (Object.hasOwn(prot, SIGNING_TIME)) env.signingTime = rfc3339(prot[SIGNING_TIME], SIGNING_TIME, 'JWS');
  if (Object.hasOwn(prot, AUTHENTIC_SIGNING_TIME)) env.authenticSigningTime = rfc3339(prot[AUTHENTIC_SIGNING_TIME], AUTHENTIC_SIGNING_TIME, 'JWS');
  if (Object.hasOwn(prot, EXPIRY)) env.expiry = rfc3339(prot[EXPIRY], EXPIRY, 'JWS');
  if (scheme === 'notary.x509' && !env.signingTime) bad('JWS', `${SIGNING_TIME} is missing`);
  if (scheme === 'notary.x509.signingAuthority' && !env.authenticSigningTime) bad('JWS', `${AUTHENTIC_SIGNING_TIME} is missing`);
  if (typeof header[SIGNING_AGENT] === 'string') env.signingAgent = header[SIGNING_AGENT];
  const ts = header[TIMESTAMP_SIGNATURE];
  if (ts !== undefined) {
    if (typeof ts !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(ts)) bad('JWS', `${TIMESTAMP_SIGNATURE} is not base64`);
    env.timestampSignature = Buffer.from(ts, 'base64');
  }
  return env;
}

function coseTime(v: CborValue | undefined, what: string): Date {
  if (!(v instanceof Tagged) || v.tag !== 1 || typeof v.value !== 'number' || !Number.isFinite(v.value)) bad('COSE', `${what} is not a tagged epoch time`);
  return new Date((v.value as number) * 1000);
}

/** A COSE_Sign1 envelope (tagged 18 or not). */
export function parseCose(bytes: Buffer): Envelope {
  let msg = decodeCbor(bytes, 'COSE envelope');
  if (msg instanceof Tagged) {
    if (msg.tag !== 18) bad('COSE', `CBOR tag ${msg.tag} is not COSE_Sign1 (18)`);
    msg = msg.value;
  }
  if (!Array.isArray(msg) || msg.length !== 4) bad('COSE', 'not a COSE_Sign1 array of 4');
  const [protRaw, unprot, payload, signature] = msg as CborValue[];
  if (!(protRaw instanceof Uint8Array) || !(unprot instanceof Map) || !(payload instanceof Uint8Array) || !(signature instanceof Uint8Array)) bad('COSE', 'COSE_Sign1 fields are not (bstr, map, bstr, bstr)');
  const prot = (protRaw as Uint8Array).length ? decodeCbor(protRaw as Uint8Array, 'COSE protected header') : new Map();
  if (!(prot instanceof Map)) bad('COSE', 'protected header is not a map');
  const p = prot as Map<CborValue, CborValue>;
  const u = unprot as Map<CborValue, CborValue>;
  const algId = p.get(1);
  const alg = typeof algId === 'number' ? COSE_ALGS[algId] : undefined;
  if (!alg) bad('COSE', `signature algorithm ${String(algId)} is not one notation uses (PS256/384/512, ES256/384/512)`);
  const { scheme, unsupported } = common('cose', { crit: p.get(2), cty: p.get(3), scheme: p.get(SIGNING_SCHEME), present: (k) => p.has(k) });
  let x5 = u.get(33);
  if (x5 instanceof Uint8Array) x5 = [x5];
  if (!Array.isArray(x5) || !x5.every((c) => c instanceof Uint8Array)) bad('COSE', 'x5chain (label 33) is not a list of certificates');
  const env: Envelope = {
    format: 'cose',
    alg: alg as Algorithm,
    signingInput: encodeCbor(['Signature1', protRaw as Uint8Array, new Uint8Array(0), payload as Uint8Array]),
    signature: Buffer.from(signature as Uint8Array),
    chain: certs(x5 as Uint8Array[], 'COSE'),
    payload: Buffer.from(payload as Uint8Array),
    signingScheme: scheme,
    unsupportedCritical: unsupported,
  };
  if (p.has(SIGNING_TIME)) env.signingTime = coseTime(p.get(SIGNING_TIME), SIGNING_TIME);
  if (p.has(AUTHENTIC_SIGNING_TIME)) env.authenticSigningTime = coseTime(p.get(AUTHENTIC_SIGNING_TIME), AUTHENTIC_SIGNING_TIME);
  if (p.has(EXPIRY)) env.expiry = coseTime(p.get(EXPIRY), EXPIRY);
  if (scheme === 'notary.x509' && !env.signingTime) bad('COSE', `${SIGNING_TIME} is missing`);
  if (scheme === 'notary.x509.signingAuthority' && !env.authenticSigningTime) bad('COSE', `${AUTHENTIC_SIGNING_TIME} is missing`);
  const agent = u.get(SIGNING_AGENT);
  if (typeof agent === 'string') env.signingAgent = agent;
  const ts = u.get(TIMESTAMP_SIGNATURE);
  if (ts !== undefined) {
    if (!(ts instanceof Uint8Array)) bad('COSE', `${TIMESTAMP_SIGNATURE} is not a byte string`);
    env.timestampSignature = Buffer.from(ts as Uint8Array);
  }
  return env;
}

export function parseEnvelope(mediaType: string, bytes: Buffer): Envelope {
  if (mediaType === JWS_MEDIA_TYPE) return parseJws(bytes);
  if (mediaType === COSE_MEDIA_TYPE) return parseCose(bytes);
  throw new PlinthError('SIGNATURE_INVALID', `signature envelope media type ${mediaType} is not ${JWS_MEDIA_TYPE} or ${COSE_MEDIA_TYPE}`);
}

export interface TargetArtifact {
  digest: string;
  mediaType: string;
  size: number;
  annotations?: Record<string, string>;
}

/** The signed payload: `{"targetArtifact": {digest, mediaType, size, annotations?}}`. */
export function parsePayload(bytes: Buffer): TargetArtifact {
  let doc: { targetArtifact?: Record<string, unknown> };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    throw new PlinthError('SIGNATURE_INVALID', 'the signed payload is not JSON');
  }
  const t = doc?.targetArtifact;
  if (!t || typeof t !== 'object' || typeof t.digest !== 'string' || typeof t.mediaType !== 'string' || !Number.isSafeInteger(t.size)) {
    throw new PlinthError('SIGNATURE_INVALID', 'the signed payload has no targetArtifact {digest, mediaType, size}');
  }
  const out: TargetArtifact = { digest: t.digest, mediaType: t.mediaType, size: t.size as number };
  if (t.annotations && typeof t.annotations === 'object') out.annotations = t.annotations as Record<string, string>;
  return out;
}
