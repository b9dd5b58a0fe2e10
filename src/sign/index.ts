/**
 * Sign and verify registry images, cosign-compatible. The library behind `plinth sign` and
 * `plinth verify` (and, later, the `signatures` policy rule).
 */
import { isIndexMediaType } from '../oci/mediatypes.js';
import { parseLocation, withRegistryImage, type OpenOptions } from '../source/open.js';
import { PlinthError } from '../util/errors.js';
import type { Signer, Verifier } from './keys.js';
import { signLegacy, type SignatureCheck, type SignedDigest } from './image.js';
import { signBundle } from './bundle.js';
import { checkAttestations, checkSignatures, discover, isBundleReferrer, type Material } from './discover.js';
import type { RegistrySource } from '../source/registry.js';
import { loadKeyless, type KeylessOptions } from './keyless.js';

export type { SignatureCheck, SignedDigest } from './image.js';

export interface SignOptions {
  annotations?: Record<string, string>;
  format?: 'legacy' | 'bundle';
  /** Also sign every manifest of an index. */
  recursive?: boolean;
  registry?: OpenOptions;
}

export { withRegistryImage } from '../source/open.js';

/**
 * Sign the manifest digest `reference` names (a tag is resolved once). With `recursive`, an
 * index's manifests are signed too. Returns what was signed, in order.
 */
export async function signImage(reference: string, signer: Signer, opts: SignOptions = {}): Promise<SignedDigest[]> {
  const format = opts.format ?? 'bundle';
  return withRegistryImage(reference, opts.registry, async (src, root) => {
    const subjects = [root.descriptor];
    if (opts.recursive && isIndexMediaType(root.descriptor.mediaType)) {
      const doc = JSON.parse(root.bytes.toString('utf8')) as { manifests?: Array<{ digest?: unknown; size?: unknown; mediaType?: unknown }> };
      for (const m of doc.manifests ?? []) {
        if (typeof m.digest === 'string' && typeof m.mediaType === 'string' && Number.isSafeInteger(m.size)) subjects.push({ digest: m.digest, size: m.size as number, mediaType: m.mediaType });
      }
    }
    const out: SignedDigest[] = [];
    for (const d of subjects) {
      out.push(format === 'legacy' ? await signLegacy(src.client, src.ref, d.digest, signer, opts.annotations) : await signBundle(src.client, src.ref, d, signer, opts.annotations));
    }
    return out;
  });
}

export interface VerifyOptions {
  annotations?: Record<string, string>;
  registry?: OpenOptions;
  /** Keyless: certificate identity and issuer (bundle signatures made with a Fulcio certificate). */
  keyless?: KeylessOptions;
}

export interface VerifyResult {
  reference: string;
  /** registry/repository */
  name: string;
  digest: string;
  /** Every signature found, verified or not. */
  signatures: SignatureCheck[];
  /** True when at least one signature verified. */
  verified: boolean;
}

/**
 * A reference by digest names what the signatures are looked up by: the lookup starts with the
 * manifest's fetch (which still verifies the image exists and has that digest).
 */
function discoverEarly(only: 'signatures' | 'attestations'): (src: RegistrySource) => Promise<Material[]> | undefined {
  return (src) => (src.ref.digest ? discover(src.client, src.ref.repository, src.ref.digest, only) : undefined);
}

function discoverFor(src: RegistrySource, digest: string, early: Promise<Material[]> | undefined, only: 'signatures' | 'attestations'): Promise<Material[]> {
  return early && src.ref.digest === digest ? early : discover(src.client, src.ref.repository, digest, only);
}

/** Find and check the signatures of the image `reference` names against the keys. */
export async function verifyImage(reference: string, verifiers: Verifier[], opts: VerifyOptions = {}): Promise<VerifyResult> {
  if (!verifiers.length && !opts.keyless) throw new PlinthError('USAGE', 'verification needs a key, or a certificate identity and issuer (keyless)');
  if (opts.keyless) await loadKeyless();
  return withRegistryImage(reference, opts.registry, async (src, root, early) => {
    const digest = root.descriptor.digest;
    const signatures = checkSignatures(await discoverFor(src, digest, early, 'signatures'), digest, verifiers, opts.annotations ?? {}, opts.keyless);
    return { reference: src.ref.string, name: src.ref.name, digest, signatures, verified: signatures.some((s) => s.verified) };
  }, discoverEarly('signatures'));
}

export interface AttestOptions {
  format?: 'bundle' | 'legacy';
  registry?: OpenOptions;
}

/** Attest `predicate` (of `predicateType`) about the manifest digest `reference` names. */
export async function attestImage(reference: string, signer: Signer, predicateType: string, predicate: unknown, opts: AttestOptions = {}): Promise<SignedDigest> {
  const { attest } = await import('./attest.js');
  return withRegistryImage(reference, opts.registry, async (src, root) => {
    return await attest(src.client, src.ref, root.descriptor, signer, predicateType, predicate, opts.format ?? 'bundle');
  });
}

export interface AttestationResult {
  reference: string;
  name: string;
  digest: string;
  attestations: import('./attest.js').AttestationCheck[];
  verified: boolean;
}

/** Find and check the attestations of `predicateType` (any when undefined) about the image. */
export async function verifyImageAttestations(reference: string, verifiers: Verifier[], predicateType: string | undefined, opts: { registry?: OpenOptions; keyless?: KeylessOptions } = {}): Promise<AttestationResult> {
  if (!verifiers.length && !opts.keyless) throw new PlinthError('USAGE', 'verification needs a key, or a certificate identity and issuer (keyless)');
  if (opts.keyless) await loadKeyless();
  return withRegistryImage(reference, opts.registry, async (src, root, early) => {
    const digest = root.descriptor.digest;
    const attestations = checkAttestations(await discoverFor(src, digest, early, 'attestations'), digest, verifiers, predicateType, opts.keyless);
    return { reference: src.ref.string, name: src.ref.name, digest, attestations, verified: attestations.some((a) => a.verified) };
  }, discoverEarly('attestations'));
}

export interface Triangulation {
  reference: string;
  digest: string;
  /** Where cosign's legacy formats live (the tag, and whether it exists). */
  signature: { location: string; exists: boolean };
  attestation: { location: string; exists: boolean };
  sbom: { location: string; exists: boolean };
  /** Sigstore bundle referrers (signatures and attestations), and how they were found. */
  bundles: Array<{ location: string; predicateType?: string }>;
  referrersSource: 'api' | 'tag-schema';
}

/** Where an image's signatures and attestations live (like cosign triangulate, for every format). */
export async function triangulate(reference: string, opts: { registry?: OpenOptions } = {}): Promise<Triangulation> {
  const { cosignTag } = await import('./image.js');
  return withRegistryImage(reference, opts.registry, async (src, root) => {
    const digest = root.descriptor.digest;
    const repo = src.ref.repository;
    const at = async (suffix: 'sig' | 'att' | 'sbom') => {
      const tag = cosignTag(digest, suffix);
      return { location: `${src.ref.name}:${tag}`, exists: (await src.client.headManifest(repo, tag)) !== undefined };
    };
    const [signature, attestation, sbom] = [await at('sig'), await at('att'), await at('sbom')];
    const { manifests, source } = await src.client.referrers(repo, digest);
    const bundles = manifests
      .filter(isBundleReferrer)
      .map((m) => {
        const pt = (m.annotations as Record<string, unknown> | undefined)?.['dev.sigstore.bundle.predicateType'];
        return { location: `${src.ref.name}@${m.digest as string}`, ...(typeof pt === 'string' ? { predicateType: pt } : {}) };
      });
    return { reference: src.ref.string, digest, signature, attestation, sbom, bundles, referrersSource: source };
  });
}

/**
 * Attest about one manifest digest of the repository `reference` names (a platform image of an
 * index, e.g. what an SBOM or a scan describes): `plinth sbom --attest`, `plinth scan --attest`.
 */
export async function attestDigest(reference: string, digest: string, signer: Signer, predicateType: string, predicate: unknown, opts: AttestOptions = {}): Promise<SignedDigest> {
  const loc = parseLocation(reference);
  if (loc.transport !== 'registry') throw new PlinthError('USAGE', `--attest: ${reference} is not a registry image; attestations are stored next to the image in its registry`);
  return attestImage(`${loc.ref.name}@${digest}`, signer, predicateType, predicate, opts);
}
