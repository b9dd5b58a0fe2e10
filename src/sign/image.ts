/**
 * Image signatures on a registry, as cosign stores them.
 *
 * legacy: the tag `sha256-<hex>.sig` next to the image holds an OCI manifest whose layers are
 *   simple-signing payloads (media type application/vnd.dev.cosign.simplesigning.v1+json), each
 *   with its base64 signature in the `dev.cosignproject.cosign/signature` annotation. Signing
 *   again appends a layer.
 * bundle: an OCI 1.1 referrer of the image (subject = the image manifest) whose one layer is a
 *   Sigstore bundle v0.3 with a DSSE envelope of an in-toto statement (src/sign/bundle.ts); on a
 *   registry without the referrers API it is listed in the `sha256-<hex>` tag-schema index.
 *
 * Everything read from the registry is bounded: the signature manifest (the client's manifest
 * limit), the number of layers and referrers looked at, and each payload's size.
 */
import { Readable } from 'node:stream';
import { digestOf } from '../oci/digest.js';
import { OCI_CONFIG, OCI_MANIFEST } from '../oci/mediatypes.js';
import type { ImageReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { PlinthError } from '../util/errors.js';
import { createHash } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { findSigner, noSignerReason, pemBlocks, verifyWith, type Signer, type Verifier } from './keys.js';
import { verifyCertificateBundle, type KeylessOptions } from './keyless.js';
import { parseSimpleSigning, SIMPLE_SIGNING_MEDIA_TYPE, SIMPLE_SIGNING_TYPE, simpleSigningPayload } from './payload.js';

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** At most this many signatures are looked at per image (a hostile .sig manifest may list more). */
export const MAX_SIGNATURES = 256;
/** A payload larger than this is not a signature payload. */
export const MAX_PAYLOAD = 1 << 20;

/** `sha256:<hex>` → `sha256-<hex>.sig` (or `.att`, `.sbom`). */
export function cosignTag(digest: string, suffix: 'sig' | 'att' | 'sbom'): string {
  const i = digest.indexOf(':');
  return `${digest.slice(0, i)}-${digest.slice(i + 1)}.${suffix}`;
}

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface SigManifest {
  schemaVersion: 2;
  mediaType: string;
  config: { mediaType: string; digest: string; size: number };
  layers: Layer[];
  annotations?: Record<string, string>;
}

/** Read the manifest under a cosign tag; undefined when there is none. */
export async function readCosignManifest(client: RegistryClient, repo: string, tag: string): Promise<SigManifest | undefined> {
  let bytes: Buffer;
  try {
    bytes = (await client.getManifest(repo, tag)).bytes;
  } catch (e) {
    if (e instanceof PlinthError && (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN')) return undefined;
    throw e;
  }
  let doc: SigManifest;
  try {
    doc = JSON.parse(bytes.toString('utf8')) as SigManifest;
  } catch {
    throw new PlinthError('SIGNATURE_INVALID', `${repo}:${tag} is not a JSON manifest`);
  }
  if (!doc || !Array.isArray(doc.layers)) throw new PlinthError('SIGNATURE_INVALID', `${repo}:${tag} is not a manifest with layers`);
  doc.layers = doc.layers.filter((l) => l && typeof l === 'object' && typeof l.digest === 'string' && typeof l.mediaType === 'string' && Number.isSafeInteger(l.size));
  return doc;
}

/** A config for a manifest of payload layers (what cosign's images carry: an empty image config). */
function payloadConfig(layers: Layer[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
}

/** Upload `bytes` as a blob of `repo` unless it is there already. */
export async function putBlob(client: RegistryClient, repo: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = digestOf(bytes);
  if ((await client.blobExists(repo, digest)) === undefined) {
    await client.uploadBlob(repo, { digest, size: bytes.length }, async () => Readable.from([bytes]));
  }
  return { digest, size: bytes.length };
}

/**
 * Add a layer to the manifest under a cosign tag (`.sig`, `.att`), keeping the layers already
 * there; a layer with the same payload digest and annotations is not added twice.
 */
export async function appendCosignLayer(client: RegistryClient, repo: string, tag: string, payload: Buffer, mediaType: string, annotations: Record<string, string>, isDuplicate?: (l: Layer) => boolean): Promise<string | undefined> {
  const existing = await readCosignManifest(client, repo, tag);
  const payloadDigest = digestOf(payload);
  // As cosign: a layer with this payload that the same key already signed is not added again.
  if (existing && isDuplicate && existing.layers.some((l) => l.digest === payloadDigest && isDuplicate(l))) return undefined;
  const blob = await putBlob(client, repo, payload);
  const layers = existing ? existing.layers.slice(0, MAX_SIGNATURES - 1) : [];
  const layer: Layer = { mediaType, size: blob.size, digest: blob.digest, annotations };
  if (!layers.some((l) => l.digest === layer.digest && JSON.stringify(l.annotations ?? {}) === JSON.stringify(annotations))) layers.push(layer);
  const config = payloadConfig(layers);
  const cfg = await putBlob(client, repo, config);
  const manifest: SigManifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: OCI_CONFIG, size: cfg.size, digest: cfg.digest }, layers };
  return client.putManifest(repo, tag, Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
}

export interface SignedDigest {
  /** The manifest digest that was signed. */
  digest: string;
  /** Where the signature went: the .sig tag or the referrer manifest digest. */
  location: string;
  format: 'legacy' | 'bundle';
}

/** Sign `digest` in `ref`'s repository the legacy way (the `.sig` tag). */
export async function signLegacy(client: RegistryClient, ref: ImageReference, digest: string, signer: Signer, annotations: Record<string, string> = {}): Promise<SignedDigest> {
  const payload = simpleSigningPayload(`${ref.registry}/${ref.repository}`, digest, annotations);
  const sig = await signer.sign(payload);
  const tag = cosignTag(digest, 'sig');
  const sameKey = (l: Layer) => {
    const b = l.annotations?.[SIGNATURE_ANNOTATION];
    return typeof b === 'string' && verifyWith(signer.publicKey, payload, Buffer.from(b, 'base64'));
  };
  await appendCosignLayer(client, ref.repository, tag, payload, SIMPLE_SIGNING_MEDIA_TYPE, { [SIGNATURE_ANNOTATION]: sig.toString('base64') }, sameKey);
  return { digest, location: `${ref.registry}/${ref.repository}:${tag}`, format: 'legacy' };
}

/** One signature found for an image, and what came of checking it. */
export interface SignatureCheck {
  format: 'legacy' | 'bundle';
  /** Where it was found (tag or referrer digest) and which layer. */
  source: string;
  /** The key that verified it (its ref), when one did. */
  key?: string;
  verified: boolean;
  /** Why it did not verify, or what was checked when it did. */
  reason: string;
  /** The digest the payload names. */
  signedDigest?: string;
  annotations?: Record<string, unknown>;
}

/** Whether every wanted annotation is in the signed ones, as strings. */
export function annotationsMatch(signed: Record<string, unknown> | null | undefined, wanted: Record<string, string>): string | undefined {
  for (const [k, v] of Object.entries(wanted)) {
    // Own keys only (no __proto__ or constructor from the prototype), and strings only, as cosign.
    const got = signed && Object.hasOwn(signed, k) ? signed[k] : undefined;
    if (got === undefined) return `annotation ${k} is not in the signed payload`;
    if (typeof got !== 'string' || got !== v) return `annotation ${k} is ${JSON.stringify(got)}, not ${JSON.stringify(v)}`;
  }
  return undefined;
}

/** Check one simple-signing payload and its signature. */
export function checkSimpleSigning(payload: Buffer, sig: Buffer, digest: string, verifiers: Verifier[], wanted: Record<string, string>, source: string, keyless?: { opts: KeylessOptions; certificate?: string; rekorBundle?: string }): SignatureCheck {
  let key: Pick<Verifier, 'ref'> | undefined;
  if (keyless && (keyless.certificate !== undefined || !verifiers.length)) {
    // A keyless legacy signature: a Fulcio certificate and a Rekor bundle in the layer annotations.
    if (!keyless.certificate) return { format: 'legacy', source, verified: false, reason: 'the signature carries no certificate (it was made with a key)' };
    try {
      const who = verifyCertificateBundle(legacyBundle(payload, sig, keyless.certificate, keyless.rekorBundle), payload, keyless.opts);
      key = { ref: `${who.identity} (issuer ${who.issuer})` };
    } catch (e) {
      if (!(e instanceof PlinthError)) throw e;
      return { format: 'legacy', source, verified: false, reason: e.message };
    }
  } else {
    key = findSigner(verifiers, payload, [sig]);
    if (!key) return { format: 'legacy', source, verified: false, reason: noSignerReason(verifiers) };
  }
  let doc;
  try {
    doc = parseSimpleSigning(payload);
  } catch (e) {
    return { format: 'legacy', source, key: key.ref, verified: false, reason: (e as Error).message };
  }
  const signedDigest = doc.critical.image['docker-manifest-digest'];
  const base = { format: 'legacy' as const, source, key: key.ref, signedDigest, annotations: doc.optional ?? {} };
  if (doc.critical.type !== SIMPLE_SIGNING_TYPE) return { ...base, verified: false, reason: `payload type is ${JSON.stringify(doc.critical.type)}, not ${JSON.stringify(SIMPLE_SIGNING_TYPE)}` };
  if (signedDigest !== digest) return { ...base, verified: false, reason: `the signature is for ${signedDigest}, not this image (${digest})` };
  const ann = annotationsMatch(doc.optional, wanted);
  if (ann) return { ...base, verified: false, reason: ann };
  return { ...base, verified: true, reason: `signature by ${key.ref} over the simple-signing payload for ${digest}` };
}

export const DSSE_ENVELOPE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';

/**
 * A legacy keyless signature as a Sigstore bundle v0.1 (message signature over the payload), so
 * @sigstore/verify checks it: the certificate from `dev.sigstore.cosign/certificate`, the Rekor
 * entry from `dev.sigstore.cosign/bundle` (`{SignedEntryTimestamp, Payload: {body,
 * integratedTime, logIndex, logID}}`, a hashedrekord 0.0.1 entry). SIGNATURE_INVALID when they
 * are not what cosign writes.
 */
export function legacyBundle(payload: Buffer, sig: Buffer, certificatePem: string, rekorBundle: string | undefined): Bundle {
  const cert = pemBlocks(certificatePem).find((b) => b.type === 'CERTIFICATE');
  if (!cert) throw new PlinthError('SIGNATURE_INVALID', 'the dev.sigstore.cosign/certificate annotation holds no PEM certificate');
  const tlogEntries: unknown[] = [];
  if (rekorBundle !== undefined) {
    let rb: { SignedEntryTimestamp?: unknown; Payload?: { body?: unknown; integratedTime?: unknown; logIndex?: unknown; logID?: unknown } };
    try {
      rb = JSON.parse(rekorBundle) as typeof rb;
    } catch {
      throw new PlinthError('SIGNATURE_INVALID', 'the dev.sigstore.cosign/bundle annotation is not JSON');
    }
    const p = rb?.Payload;
    if (typeof rb?.SignedEntryTimestamp !== 'string' || typeof p?.body !== 'string' || !Number.isSafeInteger(p.integratedTime) || !Number.isSafeInteger(p.logIndex) || typeof p.logID !== 'string' || !/^[0-9a-f]{64}$/.test(p.logID)) {
      throw new PlinthError('SIGNATURE_INVALID', 'the dev.sigstore.cosign/bundle annotation is not a Rekor bundle (SignedEntryTimestamp, Payload.body, integratedTime, logIndex, logID)');
    }
    tlogEntries.push({
      logIndex: String(p.logIndex),
      logId: { keyId: Buffer.from(p.logID, 'hex').toString('base64') },
      kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
      integratedTime: String(p.integratedTime),
      inclusionPromise: { signedEntryTimestamp: rb.SignedEntryTimestamp },
      canonicalizedBody: p.body,
    });
  }
  try {
    return bundleFromJSON({
      mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1',
      verificationMaterial: { x509CertificateChain: { certificates: [{ rawBytes: cert.der.toString('base64') }] }, tlogEntries, timestampVerificationData: { rfc3161Timestamps: [] } },
      messageSignature: { messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64') }, signature: sig.toString('base64') },
    });
  } catch (e) {
    throw new PlinthError('SIGNATURE_INVALID', `the keyless signature does not form a Sigstore bundle: ${(e as Error).message}`);
  }
}
