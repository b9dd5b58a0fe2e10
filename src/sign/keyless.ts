/**
 * Keyless (Fulcio certificate) verification: what every signature check needs (the options, whether
 * a bundle is certificate-signed) and, loaded only by a run that verifies keyless, the verification
 * itself (keyless-verify.ts: @sigstore/verify, the trusted root). A `plinth verify --key` never
 * loads it: @sigstore/verify with @sigstore/core and the public-good root cost ~5 ms at start.
 * The async entry points that take KeylessOptions (verifyImage, verifyImageAttestations) call
 * loadKeyless() first; the policy's rules (whose evaluate() is public and synchronous, and may be
 * given facts gathered elsewhere) and blob verification import keyless-verify.ts statically. The
 * checks themselves stay synchronous.
 */
import type { Bundle } from '@sigstore/bundle';
import { PlinthError } from '../util/errors.js';

export interface KeylessOptions {
  /** The certificate's subject alternative name: exact, or a regular expression. */
  identity: string | RegExp;
  /** The OIDC issuer recorded in the certificate: exact, or a regular expression. */
  issuer: string | RegExp;
  /** A trusted_root.json document; default the Sigstore public-good root. */
  trustedRoot?: unknown;
  /** Do not require a transparency-log entry (a timestamp is still required). */
  ignoreTlog?: boolean;
  /** Do not require an SCT in the certificate (private CAs without a CT log). */
  ignoreSct?: boolean;
}

/** Throw SIGNATURE_INVALID with this reason. */
export function fail(message: string, cause?: unknown): never {
  throw new PlinthError('SIGNATURE_INVALID', message, undefined, cause ? { cause } : undefined);
}

/** Whether a bundle is signed with a certificate (keyless) rather than a key. */
export function isCertificateBundle(bundle: Bundle): boolean {
  const c = bundle.verificationMaterial.content?.$case;
  return c === 'x509CertificateChain' || c === 'certificate';
}

type CertificateBundleVerifier = (bundle: Bundle, artifact: Buffer | undefined, o: KeylessOptions) => { identity: string; issuer: string };
let verifier: CertificateBundleVerifier | undefined;

/** Called by keyless-verify.ts when it loads (a module that imports it statically has it too). */
export function provideKeyless(v: CertificateBundleVerifier): void {
  verifier = v;
}

/** Load keyless verification (once); then verifyCertificateBundle can be called. */
export async function loadKeyless(): Promise<void> {
  if (!verifier) await import('./keyless-verify.js');
}

/**
 * Verify a certificate-signed bundle (over `artifact` for a message signature; a DSSE envelope
 * carries its payload). Returns who signed; throws SIGNATURE_INVALID naming what failed.
 */
export function verifyCertificateBundle(bundle: Bundle, artifact: Buffer | undefined, o: KeylessOptions): { identity: string; issuer: string } {
  if (!verifier) throw new Error('keyless verification was not loaded (loadKeyless) before a keyless check');
  return verifier(bundle, artifact, o);
}
