/**
 * What gets signed: cosign's simple-signing payload (legacy `.sig` signatures), in-toto
 * statements (bundles and attestations) and DSSE's pre-authentication encoding.
 */
import { PlinthError } from '../util/errors.js';

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIMPLE_SIGNING_TYPE = 'cosign container image signature';
export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const INTOTO_STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
/** The predicate type of a cosign image signature in a bundle. */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/** cosign's payload (sigstore/cosign pkg/cosign/payload, containers/image "simple signing"). */
export interface SimpleSigning {
  critical: {
    identity: { 'docker-reference': string };
    image: { 'docker-manifest-digest': string };
    type: string;
  };
  optional: Record<string, unknown> | null;
}

/** The payload bytes for an image digest, as cosign marshals them (Go field order, no spaces). */
export function simpleSigningPayload(dockerReference: string, digest: string, annotations: Record<string, string> = {}): Buffer {
  const doc: SimpleSigning = {
    critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': digest }, type: SIMPLE_SIGNING_TYPE },
    optional: Object.keys(annotations).length ? annotations : null,
  };
  return Buffer.from(JSON.stringify(doc));
}

/** Parse a simple-signing payload; throws SIGNATURE_INVALID naming what is wrong. */
export function parseSimpleSigning(bytes: Uint8Array): SimpleSigning {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new PlinthError('SIGNATURE_INVALID', 'the signed payload is not JSON');
  }
  const c = (doc as { critical?: unknown })?.critical as Record<string, unknown> | undefined;
  const image = c?.image as Record<string, unknown> | undefined;
  const identity = c?.identity as Record<string, unknown> | undefined;
  if (!c || typeof image?.['docker-manifest-digest'] !== 'string' || typeof c.type !== 'string') {
    throw new PlinthError('SIGNATURE_INVALID', 'the signed payload is not a cosign simple-signing document (critical.image.docker-manifest-digest and critical.type)');
  }
  const optional = (doc as { optional?: unknown }).optional;
  return {
    critical: {
      identity: { 'docker-reference': typeof identity?.['docker-reference'] === 'string' ? (identity['docker-reference'] as string) : '' },
      image: { 'docker-manifest-digest': image['docker-manifest-digest'] as string },
      type: c.type,
    },
    optional: optional && typeof optional === 'object' && !Array.isArray(optional) ? (optional as Record<string, unknown>) : null,
  };
}

export interface Statement {
  _type: string;
  subject: Array<{ name: string; digest: Record<string, string> }>;
  predicateType: string;
  predicate: unknown;
}

/** An in-toto v1 statement about one image digest. */
export function statement(name: string, digest: string, predicateType: string, predicate: unknown): Statement {
  const i = digest.indexOf(':');
  return { _type: INTOTO_STATEMENT_V1, subject: [{ name, digest: { [digest.slice(0, i)]: digest.slice(i + 1) } }], predicateType, predicate };
}

/** Parse an in-toto statement (v0.1 or v1); throws SIGNATURE_INVALID naming what is wrong. */
export function parseStatement(bytes: Uint8Array): Statement {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new PlinthError('SIGNATURE_INVALID', 'the signed statement is not JSON');
  }
  if (!doc || typeof doc !== 'object' || typeof doc._type !== 'string' || !/^https:\/\/in-toto\.io\/Statement\/v(0\.1|1)$/.test(doc._type)) {
    throw new PlinthError('SIGNATURE_INVALID', 'the signed payload is not an in-toto statement');
  }
  if (!Array.isArray(doc.subject) || typeof doc.predicateType !== 'string') throw new PlinthError('SIGNATURE_INVALID', 'the in-toto statement has no subject or predicateType');
  const subject = (doc.subject as unknown[]).flatMap((s) => {
    const o = s as { name?: unknown; digest?: unknown };
    if (!o || typeof o.digest !== 'object' || o.digest === null) return [];
    const digest: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.digest as Record<string, unknown>)) if (typeof v === 'string') digest[k] = v;
    return [{ name: typeof o.name === 'string' ? o.name : '', digest }];
  });
  return { _type: doc._type, subject, predicateType: doc.predicateType, predicate: doc.predicate };
}

/** Whether a statement names this digest (`sha256:…`) among its subjects. */
export function statementCovers(st: Statement, digest: string): boolean {
  const i = digest.indexOf(':');
  const alg = digest.slice(0, i);
  const hex = digest.slice(i + 1);
  return st.subject.some((s) => s.digest[alg] === hex);
}

/**
 * What is checked once a DSSE payload's signature verified: it is an in-toto statement, about
 * `digest`, of `predicateType` when one is asked for. Returns the statement, or the reason it fails
 * (with the digests it does name).
 */
export function checkStatement(payload: Uint8Array, digest: string, predicateType?: string): { statement: Statement; subjects: string[]; problem?: string } | { problem: string; statement?: undefined; subjects?: undefined } {
  let statement: Statement;
  try {
    statement = parseStatement(payload);
  } catch (e) {
    return { problem: (e as Error).message };
  }
  const subjects = statement.subject.map((s) => Object.entries(s.digest).map(([a, h]) => `${a}:${h}`)[0]).filter(Boolean) as string[];
  if (!statementCovers(statement, digest)) return { statement, subjects, problem: `the statement is about ${subjects.join(', ') || 'nothing'}, not this image (${digest})` };
  if (predicateType && statement.predicateType !== predicateType) return { statement, subjects, problem: `predicate type is ${statement.predicateType}, not ${predicateType}` };
  return { statement, subjects };
}

/** DSSE's pre-authentication encoding: "DSSEv1 <len> <type> <len> <body>". */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const t = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), Buffer.from(payload)]);
}

/** The predicate types cosign's --type shorthands name. */
export const PREDICATE_TYPES: Record<string, string> = {
  slsaprovenance: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance02: 'https://slsa.dev/provenance/v0.2',
  slsaprovenance1: 'https://slsa.dev/provenance/v1',
  link: 'https://in-toto.io/Link/v1',
  spdx: 'https://spdx.dev/Document',
  spdxjson: 'https://spdx.dev/Document',
  cyclonedx: 'https://cyclonedx.org/bom',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
  custom: 'https://cosign.sigstore.dev/attestation/v1',
};

/** A --type value: a shorthand or a predicate type URI. */
export function predicateType(t: string): string {
  const known = PREDICATE_TYPES[t];
  if (known) return known;
  if (/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(t)) return t;
  throw new PlinthError('USAGE', `unknown predicate type "${t}" (use ${Object.keys(PREDICATE_TYPES).join(', ')} or a URI)`);
}
