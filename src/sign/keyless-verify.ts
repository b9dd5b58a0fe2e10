/**
 * Keyless (Fulcio certificate) verification of a Sigstore bundle, offline (keyless.ts loads it for
 * a run that verifies keyless): the certificate chains to a CA of the trusted root at a verified
 * time (transparency-log entry or RFC 3161 timestamp), carries SCTs from a trusted CT log, has a
 * transparency-log entry, and names the expected identity (subject alternative name) and OIDC
 * issuer. @sigstore/verify does the cryptography; identity and
 * issuer are compared here, exactly or by regular expression (the library would treat a string as
 * an unanchored regular expression).
 */
import type { Bundle } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier as SigstoreVerifier, type TrustMaterial } from '@sigstore/verify';
import { PlinthError } from '../util/errors.js';
import { PUBLIC_GOOD_TRUSTED_ROOT } from './public-good-root.js';
import { fail, isCertificateBundle, provideKeyless, type KeylessOptions } from './keyless.js';

export function trustedRootOf(json: unknown): TrustedRoot {
  try {
    return TrustedRoot.fromJSON(json ?? PUBLIC_GOOD_TRUSTED_ROOT);
  } catch (e) {
    throw new PlinthError('USAGE', `the trusted root is not a trusted_root.json document: ${(e as Error).message}`);
  }
}

/**
 * Trust material per trusted-root document (certificates and keys decoded once): the webhook
 * verifies against the same root for every decision.
 */
const materials = new WeakMap<object, TrustMaterial>();
function trustMaterialOf(json: unknown): TrustMaterial {
  const src = json ?? PUBLIC_GOOD_TRUSTED_ROOT;
  if (typeof src !== 'object' || src === null) return toTrustMaterial(trustedRootOf(src));
  let m = materials.get(src);
  if (!m) {
    m = toTrustMaterial(trustedRootOf(src));
    materials.set(src, m);
  }
  return m;
}

/**
 * Verify a certificate-signed bundle (over `artifact` for a message signature; a DSSE envelope
 * carries its payload). Returns who signed; throws SIGNATURE_INVALID naming what failed.
 */
export function verifyCertificateBundle(bundle: Bundle, artifact: Buffer | undefined, o: KeylessOptions): { identity: string; issuer: string } {
  if (o.identity === '' || o.issuer === '') throw new PlinthError('USAGE', 'the certificate identity and the OIDC issuer must not be empty');
  if (!isCertificateBundle(bundle)) fail('the bundle is signed with a key, not a certificate: verify it with a key');
  const vm = bundle.verificationMaterial;
  if (!o.ignoreTlog && vm.tlogEntries.length === 0) fail('the bundle has no transparency-log entry (--insecure-ignore-tlog accepts one with a timestamp only)');
  const verifier = new SigstoreVerifier(trustMaterialOf(o.trustedRoot), { tlogThreshold: o.ignoreTlog ? 0 : 1, ctlogThreshold: o.ignoreSct ? 0 : 1, timestampThreshold: 1 });
  let signer;
  try {
    signer = verifier.verify(toSignedEntity(bundle, artifact));
  } catch (e) {
    fail((e as Error).message, e);
  }
  const san = signer.identity?.subjectAlternativeName ?? null;
  const issuer = signer.identity?.extensions?.issuer ?? null;
  const matches = (want: string | RegExp, got: string | null) => got !== null && (typeof want === 'string' ? got === want : want.test(got));
  if (!matches(o.identity, san)) fail(`certificate identity error - expected ${o.identity}, got ${san ?? '(none)'}`);
  if (!matches(o.issuer, issuer)) fail(`the certificate's issuer ${issuer ?? '(none)'} does not match ${o.issuer}`);
  return { identity: san!, issuer: issuer! };
}

provideKeyless(verifyCertificateBundle);
