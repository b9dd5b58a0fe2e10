/**
 * Blobs, as `cosign sign-blob` / `verify-blob` do them: a Sigstore bundle (v0.1–v0.3, message
 * signature or DSSE) verified offline with @sigstore/verify against a trusted root — with a public
 * key, or keyless (Fulcio certificate chain, SCTs, transparency-log inclusion, identity and
 * issuer). Without a trusted root file, the Sigstore public-good root embedded in Plinth is used.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { bundleFromJSON, bundleToJSON, toMessageSignatureBundle, type Bundle } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier as SigstoreVerifier } from '@sigstore/verify';
import { PlinthError } from '../util/errors.js';
import type { Signer } from './keys.js';
import { keyHint } from './bundle.js';
import { parseStatement, statementCovers } from './payload.js';
import { fail, isCertificateBundle } from './keyless.js';
import { trustedRootOf, verifyCertificateBundle } from './keyless-verify.js';

/** A v0.3 bundle with a message signature over `artifact` (what cosign sign-blob writes). */
export async function signBlob(artifact: Buffer, signer: Signer): Promise<Record<string, unknown>> {
  const signature = await signer.sign(artifact);
  const digest = createHash('sha256').update(artifact).digest();
  return bundleToJSON(toMessageSignatureBundle({ digest, signature, keyHint: keyHint(signer.publicKey) })) as unknown as Record<string, unknown>;
}

export interface BlobVerifyOptions {
  /** Verify with this public key (no certificate identity). */
  key?: KeyObject;
  /** Keyless: the certificate's subject alternative name, exact or a regular expression. */
  identity?: string | RegExp;
  /** Keyless: the OIDC issuer the certificate records, exact or a regular expression. */
  issuer?: string | RegExp;
  /** A trusted_root.json document; default the Sigstore public-good root. */
  trustedRoot?: unknown;
  /** Do not require a transparency-log entry (bundles signed with --tlog-upload=false). */
  ignoreTlog?: boolean;
  /** Keyless: do not require an SCT (a private CA without a CT log). */
  ignoreSct?: boolean;
}

export interface BlobVerifyResult {
  verified: true;
  /** message-signature or dsse (with the statement's predicate type). */
  content: 'message-signature' | 'dsse';
  predicateType?: string;
  mediaType: string;
  /** Which trusted root was used. */
  trustedRoot: 'given' | 'public-good';
  signer: { key: 'given' } | { identity: string | null; issuer: string | null };
  tlogEntries: number;
}

/** Parse a bundle file's JSON text; SIGNATURE_INVALID naming what is wrong. */
export function parseBundle(text: string): Bundle {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`the bundle is not valid JSON (${(e as Error).message})`);
  }
  try {
    return bundleFromJSON(json);
  } catch (e) {
    fail(`not a valid Sigstore bundle: ${(e as Error).message}`, e);
  }
}

/**
 * Verify a bundle over an artifact (its bytes, or `sha256:<hex>` for a DSSE bundle whose
 * statement names it). Throws SIGNATURE_INVALID with the reason when it does not verify.
 */
export function verifyBlob(artifact: Buffer | string, bundle: Bundle, o: BlobVerifyOptions): BlobVerifyResult {
  if (!o.key && o.identity === undefined) throw new PlinthError('USAGE', 'give a public key, or a certificate identity and OIDC issuer (keyless)');
  if (o.key && o.identity !== undefined) throw new PlinthError('USAGE', 'give a public key or a certificate identity, not both');
  if (!o.key && o.issuer === undefined) throw new PlinthError('USAGE', 'keyless verification needs the OIDC issuer too (--certificate-oidc-issuer)');
  const vm = bundle.verificationMaterial;
  const dsse = bundle.content.$case === 'dsseEnvelope';
  if (!dsse && typeof artifact === 'string') throw new PlinthError('USAGE', 'a message-signature bundle is verified against the file itself, not a digest');
  const entity = dsse ? undefined : (artifact as Buffer);
  let who: { identity: string; issuer: string } | undefined;
  const key = o.key;
  if (key) {
    // A key verifies only a bundle made with a key: a certificate in the bundle would be checked
    // against the trusted root's CAs instead, and the given key would never be used.
    if (isCertificateBundle(bundle)) fail('the bundle is signed with a certificate (keyless), not a key: verify it with --certificate-identity and --certificate-oidc-issuer');
    if (!o.ignoreTlog && vm.tlogEntries.length === 0 && !vm.timestampVerificationData?.rfc3161Timestamps?.length) {
      fail('the bundle has no transparency-log entry and no timestamp: one signed without Rekor (cosign --tlog-upload=false, plinth sign-blob) verifies only with --insecure-ignore-tlog');
    }
    const material = toTrustMaterial(trustedRootOf(o.trustedRoot), () => ({ publicKey: key, validFor: () => true }));
    const verifier = new SigstoreVerifier(material, { tlogThreshold: o.ignoreTlog ? 0 : 1, ctlogThreshold: 0, timestampThreshold: o.ignoreTlog ? 0 : 1 });
    try {
      verifier.verify(toSignedEntity(bundle, entity));
    } catch (e) {
      fail(`${(e as Error).message}`, e);
    }
  } else {
    who = verifyCertificateBundle(bundle, entity, { identity: o.identity!, issuer: o.issuer!, ...(o.trustedRoot ? { trustedRoot: o.trustedRoot } : {}), ...(o.ignoreTlog ? { ignoreTlog: true } : {}), ...(o.ignoreSct ? { ignoreSct: true } : {}) });
  }
  let predicateType: string | undefined;
  if (dsse) {
    const env = bundle.content.$case === 'dsseEnvelope' ? bundle.content.dsseEnvelope : undefined;
    const st = parseStatement(env!.payload);
    const digest = typeof artifact === 'string' ? artifact : `sha256:${createHash('sha256').update(artifact).digest('hex')}`;
    if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new PlinthError('USAGE', `"${artifact as string}" is neither a file nor a sha256:<hex> digest`);
    if (!statementCovers(st, digest)) fail(`the statement's subjects do not include the artifact (${digest})`);
    predicateType = st.predicateType;
  }
  return {
    verified: true,
    content: dsse ? 'dsse' : 'message-signature',
    ...(predicateType ? { predicateType } : {}),
    mediaType: bundle.mediaType,
    trustedRoot: o.trustedRoot ? 'given' : 'public-good',
    signer: who ? { identity: who.identity, issuer: who.issuer } : { key: 'given' },
    tlogEntries: bundle.verificationMaterial.tlogEntries.length,
  };
}
