/**
 * Attestations: in-toto statements about an image, in a DSSE envelope, signed with a cosign key.
 * As cosign writes them, the statement is v0.1 with the repository as subject name, in both
 * formats: a bundle referrer (default) or a layer of the `sha256-<hex>.att` tag (media type
 * application/vnd.dsse.envelope.v1+json, annotations `dev.cosignproject.cosign/signature: ""` and
 * `predicateType`).
 */
import type { Descriptor } from '../oci/types.js';
import type { ImageReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { findSigner, noSignerReason, type Signer, type Verifier } from './keys.js';
import { dsseBundle, pushBundleReferrer } from './bundle.js';
import { appendCosignLayer, cosignTag, DSSE_ENVELOPE_MEDIA_TYPE, SIGNATURE_ANNOTATION, type SignatureCheck, type SignedDigest } from './image.js';
import { checkStatement, INTOTO_PAYLOAD_TYPE, pae, type Statement } from './payload.js';

const STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1';

/** The statement cosign attests: v0.1, subject name = registry/repository. */
export function attestationStatement(ref: ImageReference, digest: string, predicateType: string, predicate: unknown): Statement {
  const i = digest.indexOf(':');
  return { _type: STATEMENT_V01, subject: [{ name: `${ref.registry}/${ref.repository}`, digest: { [digest.slice(0, i)]: digest.slice(i + 1) } }], predicateType, predicate };
}

export async function attest(client: RegistryClient, ref: ImageReference, subject: Descriptor, signer: Signer, predicateType: string, predicate: unknown, format: 'bundle' | 'legacy'): Promise<SignedDigest> {
  const payload = Buffer.from(JSON.stringify(attestationStatement(ref, subject.digest, predicateType, predicate)));
  if (format === 'bundle') {
    const bundle = await dsseBundle(payload, signer);
    const digest = await pushBundleReferrer(client, ref.repository, subject, bundle, predicateType);
    return { digest: subject.digest, location: `${ref.registry}/${ref.repository}@${digest}`, format };
  }
  const sig = await signer.sign(pae(INTOTO_PAYLOAD_TYPE, payload));
  const envelope = Buffer.from(JSON.stringify({ payload: payload.toString('base64'), payloadType: INTOTO_PAYLOAD_TYPE, signatures: [{ sig: sig.toString('base64') }] }));
  const tag = cosignTag(subject.digest, 'att');
  await appendCosignLayer(client, ref.repository, tag, envelope, DSSE_ENVELOPE_MEDIA_TYPE, { [SIGNATURE_ANNOTATION]: '', predicateType });
  return { digest: subject.digest, location: `${ref.registry}/${ref.repository}:${tag}`, format };
}

export interface AttestationCheck extends SignatureCheck {
  predicateType?: string;
  /** The verified statement (only when verified). */
  statement?: Statement;
}

/** Check one DSSE envelope (JSON) holding a statement about `digest` of `predicateType`. */
export function checkEnvelope(json: unknown, digest: string, verifiers: Verifier[], predicateType: string | undefined, source: string): AttestationCheck {
  const fail = (reason: string, extra: Partial<AttestationCheck> = {}): AttestationCheck => ({ format: 'legacy', source, verified: false, reason, ...extra });
  const env = json as { payload?: unknown; payloadType?: unknown; signatures?: unknown };
  if (!env || typeof env.payload !== 'string' || typeof env.payloadType !== 'string' || !Array.isArray(env.signatures)) return fail('not a DSSE envelope (payload, payloadType, signatures)');
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE) return fail(`DSSE payload type ${JSON.stringify(env.payloadType)} is not ${INTOTO_PAYLOAD_TYPE}`);
  const payload = Buffer.from(env.payload, 'base64');
  const sigs = (env.signatures as Array<{ sig?: unknown }>).flatMap((s) => (typeof s?.sig === 'string' ? [Buffer.from(s.sig, 'base64')] : []));
  const key = findSigner(verifiers, pae(env.payloadType, payload), sigs);
  if (!key) return fail(noSignerReason(verifiers));
  const checked = checkStatement(payload, digest, predicateType);
  if (!checked.statement) return fail(checked.problem, { key: key.ref });
  const st = checked.statement;
  if (checked.problem) return fail(checked.problem, { key: key.ref, predicateType: st.predicateType });
  return { format: 'legacy', source, key: key.ref, verified: true, predicateType: st.predicateType, statement: st, reason: `DSSE signature by ${key.ref} over a ${st.predicateType} statement about ${digest}` };
}
