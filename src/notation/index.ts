/**
 * Notary Project (notation) signature verification of registry images: the library behind
 * `plinth verify --notation` and the `notation` verifier of the `signatures` policy rule.
 */
import { withRegistryImage, type OpenOptions } from '../source/open.js';
import { checkNotation, discoverNotation, loadTrustStores, type NotationResult } from './verify.js';
import { defaultTrustStore, loadTrustPolicy, type TrustPolicy } from './trustpolicy.js';

export { checkNotation, discoverNotation, loadTrustStores, NOTATION_ARTIFACT_TYPE, type TrustStores, type NotationCheck, type NotationMaterial, type NotationResult, type NotationTarget } from './verify.js';
export { defaultTrustStore, loadTrustPolicy, parseTrustPolicy, policyFor, type TrustPolicy } from './trustpolicy.js';
export { parseCose, parseEnvelope, parseJws, parsePayload } from './envelope.js';

export interface NotationVerifyOptions {
  /** A parsed policy, or a file (default: notation's trustpolicy.oci.json / trustpolicy.json). */
  policy?: TrustPolicy | string;
  /** The trust store root (default: notation's truststore directory). */
  trustStore?: string;
  registry?: OpenOptions;
  now?: Date;
}

export interface NotationVerifyResult extends NotationResult {
  reference: string;
  name: string;
  digest: string;
}

/** Find and judge the notation signatures of the image `reference` names. */
export async function verifyNotation(reference: string, opts: NotationVerifyOptions = {}): Promise<NotationVerifyResult> {
  const policy = typeof opts.policy === 'object' ? opts.policy : await loadTrustPolicy(opts.policy);
  const stores = loadTrustStores(policy, opts.trustStore ?? defaultTrustStore());
  return withRegistryImage(reference, opts.registry, async (src, root) => {
    const digest = root.descriptor.digest;
    const target = { name: src.ref.name, digest, size: root.descriptor.size };
    const materials = await discoverNotation(src.client, src.ref.repository, digest);
    const r = checkNotation(materials, target, { policy, stores, ...(opts.now ? { now: opts.now } : {}) });
    return { reference: src.ref.string, name: src.ref.name, digest, ...r };
  });
}
