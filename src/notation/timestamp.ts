/**
 * RFC 3161 timestamp countersignatures of notation signatures
 * (`io.cncf.notary.timestampSignature`: a CMS SignedData time-stamp token over the signature
 * value). Parsed and checked with @sigstore/core's RFC 3161 support (message imprint, signed
 * attributes, the TSA's signature); the TSA certificate chain, from the certificates the token
 * carries, must lead to a certificate of the policy's `tsa` trust stores, be valid at the
 * time stamped, and end in a certificate for time stamping. Everything is bounded; anything
 * wrong is a PlinthError naming it.
 */
import { X509Certificate } from 'node:crypto';
import { RFC3161Timestamp, type ASN1Obj } from '@sigstore/core';
import { PlinthError } from '../util/errors.js';

export const MAX_TIMESTAMP_TOKEN = 64 * 1024;
const MAX_TSA_CERTS = 10;
const EKU_TIME_STAMPING = '1.3.6.1.5.5.7.3.8';

function fail(m: string): never {
  throw new PlinthError('SIGNATURE_INVALID', `timestamp countersignature: ${m}`);
}

function derLength(n: number): Buffer {
  if (n < 128) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 255);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** The time-stamp token as a TimeStampResp (status granted), the shape @sigstore/core parses. */
function asResponse(token: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), token]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

export interface TimestampResult {
  /** genTime of the token. */
  time: Date;
  /** The TSA's certificate subject. */
  tsa: string;
}

/** Verify `token` as a time stamp of `signature` by a TSA the `trusted` certificates vouch for. */
export function verifyTimestamp(token: Buffer, signature: Buffer, trusted: X509Certificate[]): TimestampResult {
  if (token.length > MAX_TIMESTAMP_TOKEN) fail(`${token.length} bytes, more than ${MAX_TIMESTAMP_TOKEN}`);
  let ts: RFC3161Timestamp;
  let time: Date;
  let certs: X509Certificate[];
  let serial: bigint;
  try {
    ts = RFC3161Timestamp.parse(asResponse(token) as Buffer<ArrayBuffer>);
    time = ts.tstInfo.genTime;
    if (Number.isNaN(time.getTime())) throw new Error('no time');
    const signedData = ts.root.subs[1]!.subs.find((s) => s.tag.isContextSpecific(0))!.subs[0]!;
    const certSet: ASN1Obj | undefined = signedData.subs.find((s) => s.tag.isContextSpecific(0));
    const ders = (certSet?.subs ?? []).slice(0, MAX_TSA_CERTS + 1);
    if (ders.length > MAX_TSA_CERTS) fail(`more than ${MAX_TSA_CERTS} certificates`);
    certs = ders.map((c) => {
      const x = new X509Certificate(c.toDER());
      void [x.publicKey, x.subject, x.issuer, x.validFrom, x.validTo, x.keyUsage];
      return x;
    });
    serial = BigInt(`0x${ts.signerSerialNumber.toString('hex') || '0'}`);
  } catch (e) {
    if (e instanceof PlinthError) throw e;
    return fail('not an RFC 3161 time-stamp token (CMS SignedData of a TSTInfo with the TSA certificate)');
  }
  try {
    ts.tstInfo.verify(signature);
  } catch {
    fail('its message imprint is not the hash of this signature (a time stamp of something else)');
  }
  const signer = certs.find((c) => BigInt(`0x${c.serialNumber}`) === serial);
  if (!signer) fail('the token does not carry the TSA\'s certificate');
  try {
    ts.verify(signature, signer.publicKey);
  } catch (e) {
    fail(`the TSA's signature does not verify (${(e as Error).message})`);
  }
  const eku = signer.keyUsage;
  if (!eku || !eku.includes(EKU_TIME_STAMPING)) fail(`the TSA certificate (${signer.subject.replaceAll('\n', ', ')}) is not for time stamping`);
  // The chain, from the TSA certificate up to a trusted one.
  const pool = [...certs, ...trusted];
  let cur = signer;
  for (let depth = 0; ; depth++) {
    if (new Date(cur.validFrom) > time || new Date(cur.validTo) < time) fail(`certificate ${cur.subject.replaceAll('\n', ', ')} was not valid at the time stamped (${time.toISOString()})`);
    if (trusted.some((t) => t.raw.equals(cur.raw))) break;
    if (depth >= MAX_TSA_CERTS) fail('the TSA certificate chain is too long');
    const issuer = pool.find((p) => p.subject === cur.issuer && !p.raw.equals(cur.raw) && (() => {
      try {
        return cur.verify(p.publicKey);
      } catch {
        return false;
      }
    })());
    if (!issuer) fail(`the TSA certificate chain (${signer.subject.replaceAll('\n', ', ')}) does not lead to a certificate of the tsa trust stores`);
    if (!issuer.ca) fail(`${issuer.subject.replaceAll('\n', ', ')} issues the TSA certificate but is not a CA`);
    cur = issuer;
  }
  return { time, tsa: signer.subject.replaceAll('\n', ', ') };
}
