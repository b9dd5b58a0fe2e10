/**
 * Finding an image's signatures and attestations (network), apart from checking them (pure):
 * discover() fetches every candidate once — bundle referrers (referrers API or tag index), the
 * legacy `.sig` and `.att` tags — bounded in count and size; checkSignatures() and
 * checkAttestations() judge them against keys without I/O, so `plinth verify`, `plinth check`
 * and the admission webhook share one verification core and can check one fetch against several
 * rules.
 */
import type { RegistryClient } from '../registry/client.js';
import { PlinthError } from '../util/errors.js';
import type { Verifier } from './keys.js';
import { checkDsseBundle } from './bundle.js';
import { checkEnvelope, type AttestationCheck } from './attest.js';
import { checkSimpleSigning, cosignTag, DSSE_ENVELOPE_MEDIA_TYPE, MAX_PAYLOAD, MAX_SIGNATURES, readCosignManifest, SIGNATURE_ANNOTATION, type SignatureCheck } from './image.js';
import { COSIGN_SIGN_PREDICATE, SIMPLE_SIGNING_MEDIA_TYPE } from './payload.js';
import type { KeylessOptions } from './keyless.js';

export type Material =
  | { kind: 'simple-signing'; source: string; payload: Buffer; signature: Buffer; certificate?: string; rekorBundle?: string }
  | { kind: 'bundle'; source: string; bundle: unknown; predicateType?: string }
  | { kind: 'envelope'; source: string; envelope: unknown; predicateType?: string }
  /** Something found that cannot be a valid signature (wrong media type, too large, unreadable). */
  | { kind: 'broken'; source: string; format: 'legacy' | 'bundle'; reason: string; attestation: boolean };

const BUNDLE_PREFIX = 'application/vnd.dev.sigstore.bundle';

/** A referrers-index entry that is a Sigstore bundle (signature or attestation). */
export function isBundleReferrer(m: Record<string, unknown>): boolean {
  return typeof m.artifactType === 'string' && m.artifactType.startsWith(BUNDLE_PREFIX) && typeof m.digest === 'string';
}
/** At most this many bytes of signature material are read per image (across all candidates). */
export const MAX_TOTAL = 16 * 1024 * 1024;

function isMissing(e: unknown): boolean {
  return e instanceof PlinthError && (e.code === 'MANIFEST_UNKNOWN' || e.code === 'NAME_UNKNOWN');
}

async function readJsonBlob(client: RegistryClient, repo: string, digest: string, size: number): Promise<unknown> {
  const bytes = await client.getBlobBytes(repo, digest, size, MAX_PAYLOAD);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new PlinthError('SIGNATURE_INVALID', `${digest} is not JSON`);
  }
}

/**
 * Everything that may sign or attest `digest` in `repo`; with `only`, the legacy tag of the other
 * kind is not read (`plinth verify` needs no `.att`, `verify-attestation` no `.sig`; what
 * checkSignatures and checkAttestations judge is the same).
 */
export async function discover(client: RegistryClient, repo: string, digest: string, only?: 'signatures' | 'attestations'): Promise<Material[]> {
  let budget = MAX_TOTAL;
  const spend = (n: number) => {
    if (n > budget) throw new PlinthError('SIGNATURE_INVALID', `more than ${MAX_TOTAL} bytes of signatures for one image; the rest is not read`);
    budget -= n;
  };
  // The three places are looked up at once (each a few round trips); results keep this order.
  const bundles = async (): Promise<Material[]> => {
    const out: Material[] = [];
    const { manifests } = await client.referrers(repo, digest);
    const refs = manifests.filter(isBundleReferrer).slice(0, MAX_SIGNATURES);
    for (const r of refs) {
      const source = `${repo}@${r.digest as string}`;
      try {
        const raw = (await client.getManifest(repo, r.digest as string)).bytes;
        spend(raw.length);
        let m: { layers?: Array<{ mediaType?: unknown; digest?: unknown; size?: unknown }>; subject?: { digest?: unknown }; annotations?: Record<string, unknown> } | null;
        try {
          m = JSON.parse(raw.toString('utf8')) as typeof m;
        } catch {
          m = null;
        }
        if (!m || typeof m !== 'object' || Array.isArray(m)) {
          out.push({ kind: 'broken', source, format: 'bundle', attestation: false, reason: 'the referrer is not a JSON manifest' });
          continue;
        }
        const pt = typeof m.annotations?.['dev.sigstore.bundle.predicateType'] === 'string' ? (m.annotations['dev.sigstore.bundle.predicateType'] as string) : undefined;
        const attestation = pt !== undefined && pt !== COSIGN_SIGN_PREDICATE;
        if (m.subject?.digest !== digest) {
          out.push({ kind: 'broken', source, format: 'bundle', attestation, reason: `the referrer's subject is ${String(m.subject?.digest)}, not ${digest}` });
          continue;
        }
        const layer = Array.isArray(m.layers) && m.layers[0] && typeof m.layers[0] === 'object' ? m.layers[0] : undefined;
        const size = Number(layer?.size);
        if (!layer || typeof layer.mediaType !== 'string' || !layer.mediaType.startsWith(BUNDLE_PREFIX) || typeof layer.digest !== 'string') {
          out.push({ kind: 'broken', source, format: 'bundle', attestation, reason: 'the referrer has no bundle layer' });
        } else if (!Number.isSafeInteger(size) || size < 0 || size > MAX_PAYLOAD) {
          out.push({ kind: 'broken', source, format: 'bundle', attestation, reason: `bundle of ${String(layer.size)} bytes is over the ${MAX_PAYLOAD}-byte limit` });
        } else {
          spend(size);
          out.push({ kind: 'bundle', source, bundle: await readJsonBlob(client, repo, layer.digest, size), ...(pt ? { predicateType: pt } : {}) });
        }
      } catch (e) {
        if (!(e instanceof PlinthError)) throw e;
        out.push({ kind: 'broken', source, format: 'bundle', attestation: false, reason: e.message });
      }
    }
    return out;
  };
  const legacy = async (suffix: 'sig' | 'att'): Promise<Material[]> => {
    const out: Material[] = [];
    const tag = cosignTag(digest, suffix);
    let m;
    try {
      m = await readCosignManifest(client, repo, tag);
    } catch (e) {
      if (isMissing(e) || !(e instanceof PlinthError)) throw e;
      out.push({ kind: 'broken', source: `${repo}:${tag}`, format: 'legacy', attestation: suffix === 'att', reason: e.message });
      return out;
    }
    for (const [i, l] of (m?.layers ?? []).slice(0, MAX_SIGNATURES).entries()) {
      const source = `${repo}:${tag} layer ${i}`;
      const attestation = suffix === 'att';
      const want = attestation ? DSSE_ENVELOPE_MEDIA_TYPE : SIMPLE_SIGNING_MEDIA_TYPE;
      if (l.mediaType !== want) {
        out.push({ kind: 'broken', source, format: 'legacy', attestation, reason: `layer media type ${l.mediaType} is not ${attestation ? 'a DSSE envelope' : 'a simple-signing payload'}` });
        continue;
      }
      if (l.size > MAX_PAYLOAD) {
        out.push({ kind: 'broken', source, format: 'legacy', attestation, reason: `layer of ${l.size} bytes is over the ${MAX_PAYLOAD}-byte limit` });
        continue;
      }
      try {
        spend(l.size);
        if (attestation) {
          const pt = l.annotations?.predicateType;
          out.push({ kind: 'envelope', source, envelope: await readJsonBlob(client, repo, l.digest, l.size), ...(typeof pt === 'string' && pt ? { predicateType: pt } : {}) });
        } else {
          const sig = l.annotations?.[SIGNATURE_ANNOTATION];
          if (typeof sig !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(sig)) {
            out.push({ kind: 'broken', source, format: 'legacy', attestation, reason: `no base64 ${SIGNATURE_ANNOTATION} annotation` });
            continue;
          }
          const cert = l.annotations?.['dev.sigstore.cosign/certificate'];
          const rekor = l.annotations?.['dev.sigstore.cosign/bundle'];
          out.push({
            kind: 'simple-signing',
            source,
            payload: await client.getBlobBytes(repo, l.digest, l.size, MAX_PAYLOAD),
            signature: Buffer.from(sig, 'base64'),
            ...(typeof cert === 'string' ? { certificate: cert } : {}),
            ...(typeof rekor === 'string' ? { rekorBundle: rekor } : {}),
          });
        }
      } catch (e) {
        if (!(e instanceof PlinthError)) throw e;
        out.push({ kind: 'broken', source, format: 'legacy', attestation, reason: e.message });
      }
    }
    return out;
  };
  const none = async (): Promise<Material[]> => [];
  const parts = await Promise.all([bundles(), only === 'attestations' ? none() : legacy('sig'), only === 'signatures' ? none() : legacy('att')]);
  return parts.flat();
}

/** Image signatures among the materials, checked against the keys (bundles first, as found). */
export function checkSignatures(materials: Material[], digest: string, verifiers: Verifier[], wanted: Record<string, string> = {}, keyless?: KeylessOptions): SignatureCheck[] {
  const out: SignatureCheck[] = [];
  for (const m of materials) {
    if (m.kind === 'simple-signing') {
      const kl = keyless ? { opts: keyless, ...(m.certificate !== undefined ? { certificate: m.certificate } : {}), ...(m.rekorBundle !== undefined ? { rekorBundle: m.rekorBundle } : {}) } : undefined;
      out.push(checkSimpleSigning(m.payload, m.signature, digest, verifiers, wanted, m.source, kl));
    }
    else if (m.kind === 'bundle' && (m.predicateType === undefined || m.predicateType === COSIGN_SIGN_PREDICATE)) out.push(checkDsseBundle(m.bundle, digest, verifiers, wanted, m.source, COSIGN_SIGN_PREDICATE, keyless).check);
    else if (m.kind === 'broken' && !m.attestation) out.push({ format: m.format, source: m.source, verified: false, reason: m.reason });
  }
  return out;
}

/** Attestations of `predicateType` (any when undefined) among the materials, checked against the keys. */
export function checkAttestations(materials: Material[], digest: string, verifiers: Verifier[], predicateType?: string, keyless?: KeylessOptions): AttestationCheck[] {
  const out: AttestationCheck[] = [];
  for (const m of materials) {
    if (m.kind === 'bundle') {
      if (m.predicateType === COSIGN_SIGN_PREDICATE || (predicateType && m.predicateType && m.predicateType !== predicateType)) continue;
      const b = checkDsseBundle(m.bundle, digest, verifiers, {}, m.source, predicateType, keyless);
      if (!predicateType && b.predicateType === COSIGN_SIGN_PREDICATE) continue;
      out.push({ ...b.check, ...(b.predicateType ? { predicateType: b.predicateType } : {}), ...(b.statement ? { statement: b.statement } : {}) });
    } else if (m.kind === 'envelope') {
      if (predicateType && m.predicateType && m.predicateType !== predicateType) continue;
      out.push(checkEnvelope(m.envelope, digest, verifiers, predicateType, m.source));
    } else if (m.kind === 'broken' && m.attestation) out.push({ format: m.format, source: m.source, verified: false, reason: m.reason });
  }
  return out;
}
