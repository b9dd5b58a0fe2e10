/**
 * Sigstore bundle signatures stored as OCI 1.1 referrers, as cosign v3 writes them by default:
 *
 *   referrer manifest: artifactType application/vnd.dev.sigstore.bundle.v0.3+json, empty config
 *     (application/vnd.oci.empty.v1+json `{}`), one layer holding the bundle JSON, annotations
 *     dev.sigstore.bundle.content=dsse-envelope, dev.sigstore.bundle.predicateType=<type>,
 *     org.opencontainers.image.created; `subject` = the signed manifest. Pushed by digest, and
 *     listed in the `sha256-<hex>` tag-schema index when the registry has no referrers API.
 *   bundle: v0.3, verificationMaterial.publicKey.hint = base64(sha256(SPKI DER)), a DSSE envelope
 *     (payloadType application/vnd.in-toto+json) whose signature is over DSSE's PAE.
 *   statement: image signatures are in-toto Statement v1 with predicateType
 *     https://sigstore.dev/cosign/sign/v1, `predicate: {}`, no subject name and the -a annotations
 *     on the subject; attestations are Statement v0.1 with the repository as subject name.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { assertBundleLatest, bundleFromJSON, bundleToJSON, toDSSEBundle, BUNDLE_V03_MEDIA_TYPE } from '@sigstore/bundle';
import { digestOf } from '../oci/digest.js';
import { OCI_EMPTY, OCI_EMPTY_DIGEST, OCI_EMPTY_SIZE, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { Descriptor } from '../oci/types.js';
import type { ImageReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { findSigner, noSignerReason, type Signer, type Verifier } from './keys.js';
import { isCertificateBundle, verifyCertificateBundle, type KeylessOptions } from './keyless.js';
import { PlinthError } from '../util/errors.js';
import { annotationsMatch, putBlob, type SignatureCheck, type SignedDigest } from './image.js';
import { checkStatement, COSIGN_SIGN_PREDICATE, INTOTO_PAYLOAD_TYPE, INTOTO_STATEMENT_V1, pae, type Statement } from './payload.js';

export { BUNDLE_V03_MEDIA_TYPE };

/** cosign's key hint: base64 of the SHA-256 of the public key's SPKI DER. */
export function keyHint(key: KeyObject): string {
  return createHash('sha256').update(key.export({ format: 'der', type: 'spki' })).digest('base64');
}

/** A DSSE bundle (v0.3) over `payload`, signed by `signer`: the JSON document. */
export async function dsseBundle(payload: Buffer, signer: Signer): Promise<Record<string, unknown>> {
  const signature = await signer.sign(pae(INTOTO_PAYLOAD_TYPE, payload));
  const json = bundleToJSON(toDSSEBundle({ artifact: payload, artifactType: INTOTO_PAYLOAD_TYPE, signature, keyHint: keyHint(signer.publicKey) })) as unknown as {
    dsseEnvelope: { signatures: Array<{ keyid?: string }> };
  };
  // No keyid, as cosign writes it: DSSE verifiers that know their key's id skip a signature whose
  // keyid differs (cosign then finds no signature to check).
  for (const s of json.dsseEnvelope.signatures) delete s.keyid;
  return json as unknown as Record<string, unknown>;
}

/**
 * Push a bundle as a referrer of `subject` in `repo`; returns the referrer manifest's digest. On a
 * registry without the referrers API, the referrer is added to the tag-schema index.
 */
export async function pushBundleReferrer(client: RegistryClient, repo: string, subject: Descriptor, bundle: Record<string, unknown>, predicateType: string): Promise<string> {
  const bundleBytes = Buffer.from(JSON.stringify(bundle));
  await putBlob(client, repo, Buffer.from('{}'));
  const layer = await putBlob(client, repo, bundleBytes);
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: BUNDLE_V03_MEDIA_TYPE,
    config: { mediaType: OCI_EMPTY, size: OCI_EMPTY_SIZE, digest: OCI_EMPTY_DIGEST },
    layers: [{ mediaType: BUNDLE_V03_MEDIA_TYPE, size: layer.size, digest: layer.digest }],
    annotations: {
      'dev.sigstore.bundle.content': 'dsse-envelope',
      'dev.sigstore.bundle.predicateType': predicateType,
      'org.opencontainers.image.created': new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    },
    subject: { mediaType: subject.mediaType, size: subject.size, digest: subject.digest },
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = digestOf(bytes);
  await client.putManifest(repo, digest, bytes, OCI_MANIFEST);
  const { source } = await client.referrers(repo, subject.digest);
  if (source === 'tag-schema') await client.addReferrer(repo, subject.digest, { mediaType: OCI_MANIFEST, size: bytes.length, digest, artifactType: BUNDLE_V03_MEDIA_TYPE });
  return digest;
}

/** Sign `subject` (a manifest of `ref`'s repository) as cosign does by default: a bundle referrer. */
export async function signBundle(client: RegistryClient, ref: ImageReference, subject: Descriptor, signer: Signer, annotations: Record<string, string> = {}): Promise<SignedDigest> {
  const i = subject.digest.indexOf(':');
  const st = {
    _type: INTOTO_STATEMENT_V1,
    subject: [{ digest: { [subject.digest.slice(0, i)]: subject.digest.slice(i + 1) }, annotations }],
    predicateType: COSIGN_SIGN_PREDICATE,
    predicate: {},
  };
  const bundle = await dsseBundle(Buffer.from(JSON.stringify(st)), signer);
  const digest = await pushBundleReferrer(client, ref.repository, subject, bundle, COSIGN_SIGN_PREDICATE);
  return { digest: subject.digest, location: `${ref.registry}/${ref.repository}@${digest}`, format: 'bundle' };
}

/** What a verified DSSE bundle said. */
export interface CheckedBundle {
  check: SignatureCheck;
  predicateType?: string;
  /** The verified statement (only when verified). */
  statement?: Statement;
}

/**
 * Check one bundle document against the keys: a v0.3 (or older) bundle with a DSSE envelope of
 * an in-toto statement whose signature verifies, whose subject is `digest`, whose predicate type
 * is `predicateType` (when given) and whose subject annotations include `wanted`.
 */
export function checkDsseBundle(json: unknown, digest: string, verifiers: Verifier[], wanted: Record<string, string>, source: string, predicateType?: string, keyless?: KeylessOptions): CheckedBundle {
  const fail = (reason: string, extra: Partial<SignatureCheck> = {}): CheckedBundle => ({ check: { format: 'bundle', source, verified: false, reason, ...extra } });
  let bundle;
  try {
    bundle = bundleFromJSON(json);
    // Key-signed bundles as cosign v3 writes them are v0.3; certificate-signed ones may be any version.
    if (!isCertificateBundle(bundle)) assertBundleLatest(bundle);
  } catch (e) {
    return fail(`not a valid Sigstore bundle: ${(e as Error).message}`);
  }
  const env = bundle.content.$case === 'dsseEnvelope' ? bundle.content.dsseEnvelope : undefined;
  if (!env) return fail('the bundle holds a message signature, not a DSSE envelope over a statement');
  if (env.payloadType !== INTOTO_PAYLOAD_TYPE) return fail(`DSSE payload type ${JSON.stringify(env.payloadType)} is not ${INTOTO_PAYLOAD_TYPE}`);
  if (!env.signatures.length) return fail('the DSSE envelope has no signature');
  const payload = Buffer.from(env.payload);
  let key: Pick<Verifier, 'ref'> | undefined;
  if (isCertificateBundle(bundle)) {
    // Keyless: the certificate, its chain, SCTs, the transparency log and the signature are
    // checked by @sigstore/verify; who signed is the certificate's identity.
    if (!keyless) return fail('the bundle is signed with a certificate (keyless): verify it with a certificate identity and issuer');
    try {
      const who = verifyCertificateBundle(bundle, undefined, keyless);
      key = { ref: `${who.identity} (issuer ${who.issuer})` };
    } catch (e) {
      if (!(e instanceof PlinthError)) throw e;
      return fail(e.message);
    }
  } else {
    if (!verifiers.length) return fail('the bundle is signed with a key, and no key was given');
    key = findSigner(verifiers, pae(env.payloadType, payload), env.signatures.map((s) => s.sig));
    if (!key) return fail(noSignerReason(verifiers));
  }
  const checked = checkStatement(payload, digest, predicateType);
  if (!checked.statement) return fail(checked.problem, { key: key.ref });
  const st = checked.statement;
  const base = { key: key.ref, signedDigest: checked.subjects[0] ?? '' };
  if (checked.problem) return fail(checked.problem, base);
  const subj = (JSON.parse(payload.toString('utf8')) as { subject: Array<{ digest?: Record<string, string>; annotations?: Record<string, unknown> } | null> }).subject.find(
    (s) => s !== null && typeof s === 'object' && s.digest?.[digest.slice(0, digest.indexOf(':'))] === digest.slice(digest.indexOf(':') + 1),
  );
  const annotations = subj?.annotations && typeof subj.annotations === 'object' && !Array.isArray(subj.annotations) ? subj.annotations : {};
  const ann = annotationsMatch(annotations, wanted);
  if (ann) return fail(ann, { ...base, annotations });
  return {
    check: { format: 'bundle', source, ...base, annotations, verified: true, reason: `${isCertificateBundle(bundle) ? 'keyless signature' : 'DSSE signature'} by ${key.ref} over an in-toto statement (${st.predicateType}) about ${digest}` },
    predicateType: st.predicateType,
    statement: st,
  };
}
