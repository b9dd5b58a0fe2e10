import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { readInput } from './input.js';
import { PlinthError } from '../util/errors.js';
import type { CliHelpers } from './provenance.js';
import { addStoreOption, openRecorder, recordAll } from './store.js';

const KEY_REF_HELP = 'a cosign key file (KMS references awskms://, gcpkms://, azurekms://, hashivault://, k8s:// are not supported yet)';

/** `-a key=value`, repeatable, into an object. */
function collectAnnotation(v: string, prev: Record<string, string> = {}): Record<string, string> {
  const i = v.indexOf('=');
  if (i <= 0) throw new PlinthError('USAGE', `-a/--annotations takes key=value, got "${v}"`);
  return { ...prev, [v.slice(0, i)]: v.slice(i + 1) };
}

export interface KeylessFlags {
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  certificateOidcIssuerRegexp?: string;
  trustedRoot?: string;
  insecureIgnoreTlog?: boolean;
  insecureIgnoreSct?: boolean;
}

/** The keyless flags cosign users know (identity and issuer, exact or regexp; trusted root). */
export function addKeylessFlags(cmd: Command): Command {
  return cmd
    .option('--certificate-identity <san>', 'keyless: the exact subject alternative name of the signing certificate')
    .option('--certificate-identity-regexp <re>', 'keyless: a regular expression the subject alternative name must match')
    .option('--certificate-oidc-issuer <url>', 'keyless: the exact OIDC issuer recorded in the certificate')
    .option('--certificate-oidc-issuer-regexp <re>', 'keyless: a regular expression the issuer must match')
    .option('--trusted-root <file>', 'keyless: trusted_root.json (default: the Sigstore public-good root built into Plinth)')
    .option('--insecure-ignore-tlog', 'do not require a transparency-log entry')
    .option('--insecure-ignore-sct', 'keyless: do not require a certificate-transparency SCT (a private CA without a CT log)');
}

/** A trusted_root.json file, parsed (undefined without a file). */
export async function readTrustedRoot(file: string | undefined): Promise<unknown> {
  if (!file) return undefined;
  const text = (await readInput(file, 'trusted root')).toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new PlinthError('USAGE', `${file} is not JSON`);
  }
}

/** Keyless options from the flags; undefined when no identity is given. */
export async function keylessFromFlags(o: KeylessFlags): Promise<import('../sign/keyless.js').KeylessOptions | undefined> {
  const regexp = (v: string, flag: string) => {
    try {
      return new RegExp(v);
    } catch (e) {
      throw new PlinthError('USAGE', `${flag}: ${(e as Error).message}`);
    }
  };
  if ((o.certificateIdentity !== undefined && o.certificateIdentityRegexp !== undefined) || (o.certificateOidcIssuer !== undefined && o.certificateOidcIssuerRegexp !== undefined)) {
    throw new PlinthError('USAGE', 'give an exact value or a regular expression, not both');
  }
  const identity = o.certificateIdentity ?? (o.certificateIdentityRegexp !== undefined ? regexp(o.certificateIdentityRegexp, '--certificate-identity-regexp') : undefined);
  const issuer = o.certificateOidcIssuer ?? (o.certificateOidcIssuerRegexp !== undefined ? regexp(o.certificateOidcIssuerRegexp, '--certificate-oidc-issuer-regexp') : undefined);
  if (identity === undefined && issuer === undefined) return undefined;
  if (identity === undefined || issuer === undefined) throw new PlinthError('USAGE', 'keyless verification needs both a certificate identity and an OIDC issuer');
  const trustedRoot = await readTrustedRoot(o.trustedRoot);
  return { identity, issuer, ...(trustedRoot !== undefined ? { trustedRoot } : {}), ...(o.insecureIgnoreTlog ? { ignoreTlog: true } : {}), ...(o.insecureIgnoreSct ? { ignoreSct: true } : {}) };
}

/** Who may have signed, from --key and the keyless flags: at least one of them is required. */
async function signersFromFlags(o: KeylessFlags & { key?: string[] }) {
  const { openVerifier } = await import('../sign/keys.js');
  const verifiers = await Promise.all((o.key ?? []).map((k) => openVerifier(k)));
  const keyless = await keylessFromFlags(o);
  if (!verifiers.length && !keyless) throw new PlinthError('USAGE', 'give --key, or --certificate-identity and --certificate-oidc-issuer (keyless)');
  return { verifiers, keyless };
}

export interface OtherSignatureFlags {
  dct?: boolean;
  trustServer?: string;
  trustDir?: string;
  rootKeyPin?: string[];
  dctRole?: string[];
  notation?: boolean;
  trustPolicy?: string;
  trustStore?: string;
}

/** The Docker Content Trust and notation flags of `plinth verify`. */
function addOtherSignatureFlags(cmd: Command): Command {
  return cmd
    .option('--dct', 'verify Docker Content Trust (Notary v1 / TUF) signatures: the tag\'s signed target (targets/releases, then targets) must be the manifest the registry serves')
    .option('--trust-server <url>', 'dct: the notary server (default: $DOCKER_CONTENT_TRUST_SERVER; https://notary.docker.io for Docker Hub; else https://REGISTRY)')
    .option('--trust-dir <dir>', 'dct: where trusted metadata is kept between runs, for rollback protection and trust on first use (default: $DOCKER_CONFIG/trust or ~/.docker/trust, Docker\'s)')
    .option('--root-key-pin <id...>', 'dct: root key ID(s) (hex, sha256: optional, as `notary key list` shows them or the certificate key ID): the root must be signed by one')
    .option('--dct-role <role...>', 'dct: only these roles may sign the tag (e.g. targets/releases)')
    .option('--notation', 'verify Notary Project signatures (notation: JWS or COSE envelopes stored as referrers) with notation\'s trust policy and trust store')
    .option('--trust-policy <file>', 'notation: trustpolicy.json (default: $XDG_CONFIG_HOME/notation/trustpolicy.oci.json, then trustpolicy.json)')
    .option('--trust-store <dir>', 'notation: the trust store directory holding x509/{ca,signingAuthority}/NAME/*.pem (default: $XDG_CONFIG_HOME/notation/truststore)');
}

function checkOtherSignatureFlags(o: OtherSignatureFlags): void {
  if (!o.dct && (o.trustServer !== undefined || o.trustDir !== undefined || o.rootKeyPin !== undefined || o.dctRole !== undefined)) throw new PlinthError('USAGE', '--trust-server, --trust-dir, --root-key-pin and --dct-role go with --dct');
  if (!o.notation && (o.trustPolicy !== undefined || o.trustStore !== undefined)) throw new PlinthError('USAGE', '--trust-policy and --trust-store go with --notation');
}

/** `plinth verify --dct` / `--notation` (and the cosign result when keys were given too). */
async function verifyOther(image: string, o: OtherSignatureFlags & { format: string; store?: unknown }, registry: import('../source/open.js').OpenOptions, out: (s: string) => void, cosign: import('../sign/index.js').VerifyResult | undefined): Promise<void> {
  const result: Record<string, unknown> & { digest?: string } = { reference: image };
  // Verified signatures for the metadata store: who signed (a role of the trust data, a certificate subject).
  const recorded: Array<{ verified: boolean; key: string; format: string; source: string; reason: string; signedDigest?: string }> = [];
  const lines: string[] = [];
  const failed: string[] = [];
  if (cosign) {
    result.digest = cosign.digest;
    result.cosign = cosign;
    for (const s of cosign.signatures) lines.push(`${s.verified ? 'verified' : 'failed  '}  cosign ${s.format}  ${s.source}: ${s.reason}`);
    if (!cosign.verified) failed.push(cosign.signatures.length ? 'no cosign signature verified' : 'no cosign signatures');
  }
  if (o.dct) {
    const { verifyDct } = await import('../notary/index.js');
    const r = await verifyDct(image, { registry, ...(o.trustServer ? { server: o.trustServer } : {}), ...(o.trustDir ? { trustDir: o.trustDir } : {}), ...(o.rootKeyPin ? { rootKeyPins: o.rootKeyPin } : {}), ...(o.dctRole ? { requiredRoles: o.dctRole } : {}), http: { ...(registry.insecure ? { insecureTls: true } : {}) } });
    result.digest = r.digest;
    result.dct = r;
    if (r.firstUse) lines.push(`note      dct  trusting the root of ${r.gun} on first use (root keys ${r.rootKeys.join(', ')}); pin it with --root-key-pin`);
    if (r.rootRotations.length) lines.push(`note      dct  the root was rotated to version${r.rootRotations.length > 1 ? 's' : ''} ${r.rootRotations.join(', ')}, each signed by the previous root`);
    for (const s of r.signatures) lines.push(`${s.verified ? 'verified' : 'failed  '}  dct  ${s.source}: ${s.reason}`);
    for (const s of r.signatures) if (s.verified) recorded.push({ ...s, key: `Docker Content Trust ${s.role ?? ''} of ${r.gun} (root key ${r.rootKeys[0] ?? '?'})` });
    if (!r.verified) failed.push('the Docker Content Trust signature does not verify');
  }
  if (o.notation) {
    const { verifyNotation } = await import('../notation/index.js');
    const r = await verifyNotation(image, { registry, ...(o.trustPolicy ? { policy: o.trustPolicy } : {}), ...(o.trustStore ? { trustStore: o.trustStore } : {}) });
    result.digest = r.digest;
    result.notation = r;
    if (r.skipped) lines.push(`skipped   notation  trust policy "${r.policy}" has the skip level: signatures are not verified`);
    for (const s of r.signatures) lines.push(`${s.verified ? 'verified' : 'failed  '}  notation ${s.envelope ?? ''}  ${s.source}: ${s.reason}`);
    for (const s of r.signatures) if (s.verified) recorded.push({ ...s, format: `notation-${s.envelope ?? ''}`, key: `notation ${s.signer ?? ''}` });
    if (!r.signatures.length && !r.skipped) lines.push('failed    notation  no notation signatures found');
    if (!r.verified) failed.push(r.signatures.length ? `none of its ${r.signatures.length} notation signature(s) verified` : 'it has no notation signatures');
  }
  result.verified = failed.length === 0;
  if (o.store && result.digest && recorded.length) {
    const meta = await openRecorder(o.store);
    try {
      const [{ verificationRecord }, { parseLocation }] = await Promise.all([import('../store/ingest.js'), import('../source/open.js')]);
      await recordAll(meta!, [verificationRecord(parseLocation(image), result.digest, recorded, 'verify', (k) => k ?? 'unknown')], true);
    } finally {
      await meta?.close().catch(() => {});
    }
  }
  if (o.format === 'json') out(JSON.stringify(result, null, 2));
  else {
    out(`Verification for ${image}${result.digest ? ` (${result.digest})` : ''} --`);
    for (const l of lines) out(l);
  }
  if (failed.length) throw new PlinthError('SIGNATURE_INVALID', `${image}${result.digest ? ` (${result.digest})` : ''}: ${failed.join('; ')}`);
}

/** `plinth key …`, `plinth sign`, `plinth verify`: cosign-compatible keys and image signatures. */
export function registerSign(program: Command, h: CliHelpers): void {
  if (h.want('key')) {
    const key = program.command('key').description('cosign-compatible signing keys: ECDSA P-256, private key encrypted with scrypt + NaCl secretbox');
    key
      .command('generate')
      .description('write a new key pair: <prefix>.key (PEM ENCRYPTED SIGSTORE PRIVATE KEY, as cosign generate-key-pair) and <prefix>.pub (SPKI PEM); the password comes from PLINTH_PASSWORD or COSIGN_PASSWORD, else it is asked on the terminal')
      .option('--output-key-prefix <prefix>', 'file name prefix', 'cosign')
      .option('-f, --force', 'overwrite existing files')
      .action(async (o: { outputKeyPrefix: string; force?: boolean }) => {
        const { generateKeyPair, keyPassword } = await import('../sign/keys.js');
        const keyFile = `${o.outputKeyPrefix}.key`;
        const pubFile = `${o.outputKeyPrefix}.pub`;
        const password = await keyPassword(`for the new private key ${keyFile}`, true);
        const pair = await generateKeyPair(password);
        const flag = o.force ? 'w' : 'wx';
        try {
          await writeFile(keyFile, pair.privateKeyPem, { mode: 0o600, flag });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new PlinthError('USAGE', `${keyFile} exists; use --force to overwrite it`);
          throw new PlinthError('IO', `cannot write ${keyFile}: ${(e as Error).message}`);
        }
        try {
          await writeFile(pubFile, pair.publicKeyPem, { mode: 0o644, flag });
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new PlinthError('USAGE', `${pubFile} exists; use --force to overwrite it`);
          throw new PlinthError('IO', `cannot write ${pubFile}: ${(e as Error).message}`);
        }
        process.stderr.write(`Private key written to ${keyFile}\nPublic key written to ${pubFile}\n`);
      });
    key
      .command('public')
      .description('print the public key of a private key (like cosign public-key)')
      .requiredOption('--key <ref>', KEY_REF_HELP)
      .action(async (o: { key: string }) => {
        const { openSigner } = await import('../sign/keys.js');
        h.out((await openSigner(o.key)).publicKeyPem());
      });
  }

  if (h.want('sign')) {
    h.addRegistryFlags(
      program
        .command('sign')
        .description('sign an image\'s manifest digest with a cosign key (a tag is resolved once; the output names the digest signed). cosign verifies what Plinth signs, and Plinth what cosign signs')
        .argument('<image>', 'a registry image: REGISTRY/REPO:TAG or @DIGEST')
        .requiredOption('--key <ref>', KEY_REF_HELP)
        .option('-a, --annotations <key=value>', 'annotation to sign with the digest (repeatable)', collectAnnotation)
        .option('--format <format>', 'bundle: a Sigstore bundle v0.3 (DSSE, in-toto statement) stored as an OCI 1.1 referrer, listed in the sha256-<hex> tag index when the registry has no referrers API (cosign v3\'s default); legacy: the sha256-<hex>.sig tag with a simple-signing payload', 'bundle')
        .option('--recursive', 'also sign every platform manifest of an index')
        .option('-o, --output <format>', 'text or json', 'text'),
    ).action(async (image: string, o: Record<string, unknown> & { key: string; annotations?: Record<string, string>; format: string; recursive?: boolean; output: string }) => {
      if (o.format !== 'legacy' && o.format !== 'bundle') throw new PlinthError('USAGE', `--format must be legacy or bundle, got "${o.format}"`);
      if (o.output !== 'text' && o.output !== 'json') throw new PlinthError('USAGE', `--output must be text or json, got "${o.output}"`);
      const [{ openSigner }, { signImage }] = await Promise.all([import('../sign/keys.js'), import('../sign/index.js')]);
      const signer = await openSigner(o.key);
      const signed = await signImage(image, signer, { format: o.format, ...(o.annotations ? { annotations: o.annotations } : {}), ...(o.recursive ? { recursive: true } : {}), registry: await h.openOptions(o, image) });
      if (o.output === 'json') h.out(JSON.stringify({ image, signed }, null, 2));
      else for (const s of signed) h.out(`Signed ${s.digest} (${s.format}, ${s.location})`);
    });
  }

  if (h.want('verify')) {
    addStoreOption(h.addRegistryFlags(addKeylessFlags(addOtherSignatureFlags(
      program
        .command('verify')
        .description('verify an image\'s signatures. cosign: with public keys or keyless (certificate identity and issuer), finds cosign signatures (bundle referrers, through the referrers API or its tag index, and the legacy .sig tag), checks each signature, that it signs this image\'s digest, and the annotations asked for. --dct: Docker Content Trust (Notary v1 / TUF) from a notary server. --notation: Notary Project signatures (JWS or COSE referrers) with notation\'s trust policy and trust store. Exit 0 only when every kind asked for verifies (for cosign and notation: at least one signature), 1 when one does not, 2 for usage errors')
        .argument('<image>', 'a registry image: REGISTRY/REPO:TAG or @DIGEST')
        .option('--key <ref...>', 'public key file (PEM) or inline PEM; repeatable: any of them may verify')
        .option('-a, --annotations <key=value>', 'annotation the signed payload must carry (repeatable)', collectAnnotation)
        .option('--format <format>', 'text or json', 'text'),
    )))).action(async (image: string, o: Record<string, unknown> & KeylessFlags & OtherSignatureFlags & { key?: string[]; annotations?: Record<string, string>; format: string; store?: unknown }) => {
      if (o.format !== 'text' && o.format !== 'json') throw new PlinthError('USAGE', `--format must be text or json, got "${o.format}"`);
      const other = o.dct || o.notation;
      checkOtherSignatureFlags(o);
      if (other && !o.key?.length && o.certificateIdentity === undefined && o.certificateIdentityRegexp === undefined) {
        if (o.annotations) throw new PlinthError('USAGE', '-a/--annotations applies to cosign signatures (give --key or keyless flags)');
        return verifyOther(image, o, await h.openOptions(o, image), h.out, undefined);
      }
      if (!o.key?.length && o.certificateIdentity === undefined && o.certificateIdentityRegexp === undefined && o.certificateOidcIssuer === undefined && o.certificateOidcIssuerRegexp === undefined) {
        throw new PlinthError('USAGE', 'give --key, or --certificate-identity and --certificate-oidc-issuer (keyless), or --dct, or --notation');
      }
      const { verifyImage } = await import('../sign/index.js');
      const { verifiers, keyless } = await signersFromFlags(o);
      const meta = await openRecorder(o.store);
      let r;
      try {
        r = await verifyImage(image, verifiers, { ...(o.annotations ? { annotations: o.annotations } : {}), ...(keyless ? { keyless } : {}), registry: await h.openOptions(o, image) });
        if (meta) {
          // Verified signatures become ATTESTATION occurrences (failed ones are not facts about the image).
          const [{ verificationRecord }, { parseLocation }] = await Promise.all([import('../store/ingest.js'), import('../source/open.js')]);
          const { keyHint } = await import('../sign/bundle.js');
          // keyHint is the sha256 of the key's SPKI DER (base64, as bundles carry it): the same digest, in hex.
          const fingerprints = new Map(verifiers.map((v) => [v.ref, `sha256:${Buffer.from(keyHint(v.publicKey), 'base64').toString('hex')}`]));
          const keylessName = keyless ? `${String(keyless.identity)} (issuer ${String(keyless.issuer)})` : 'keyless';
          await recordAll(meta, [verificationRecord(parseLocation(image), r.digest, r.signatures, 'verify', (k) => (k ? fingerprints.get(k) ?? k : keylessName))], true);
        }
      } finally {
        await meta?.close().catch(() => {});
      }
      if (other) return verifyOther(image, o, await h.openOptions(o, image), h.out, r);
      if (o.format === 'json') h.out(JSON.stringify(r, null, 2));
      else {
        h.out(`Verification for ${r.name}@${r.digest} --`);
        if (r.verified) {
          h.out('The following checks were performed on each verified signature:');
          h.out(`  - the signature verifies with ${keyless ? 'a certificate from the trusted root\'s CA naming the given identity and issuer' : 'the given public key'}`);
          h.out('  - the signed payload names this image\'s manifest digest');
          if (o.annotations) h.out(`  - the signed payload carries ${Object.entries(o.annotations).map(([k, v]) => `${k}=${v}`).join(', ')}`);
        }
        for (const s of r.signatures) h.out(`${s.verified ? 'verified' : 'failed  '}  ${s.format}  ${s.source}: ${s.reason}`);
        if (!r.signatures.length) h.out('no signatures found');
      }
      if (!r.verified) {
        const why = r.signatures.length ? `none of its ${r.signatures.length} signature(s) verified` : 'it has no signatures';
        throw new PlinthError('SIGNATURE_INVALID', `${image} (${r.digest}): ${why}`);
      }
    });
  }

  if (h.want('attest')) {
    h.addRegistryFlags(
      program
        .command('attest')
        .description('attest a predicate about an image\'s manifest digest: an in-toto statement in a DSSE envelope signed with a cosign key, as cosign attest writes it')
        .argument('<image>', 'a registry image: REGISTRY/REPO:TAG or @DIGEST')
        .requiredOption('--predicate <file>', 'the predicate (JSON; for --type custom, any text)')
        .option('--type <type>', 'slsaprovenance, slsaprovenance1, spdxjson, cyclonedx, vuln, openvex, link, custom, or a predicate type URI', 'custom')
        .requiredOption('--key <ref>', KEY_REF_HELP)
        .option('--format <format>', 'bundle (a Sigstore bundle referrer, the default) or legacy (the sha256-<hex>.att tag)', 'bundle')
        .option('-o, --output <format>', 'text or json', 'text'),
    ).action(async (image: string, o: Record<string, unknown> & { predicate: string; type: string; key: string; format: string; output: string }) => {
      if (o.format !== 'legacy' && o.format !== 'bundle') throw new PlinthError('USAGE', `--format must be legacy or bundle, got "${o.format}"`);
      const [{ openSigner }, { attestImage }, { predicateType, PREDICATE_TYPES }] = await Promise.all([import('../sign/keys.js'), import('../sign/index.js'), import('../sign/payload.js')]);
      const type = predicateType(o.type);
      const text = (await readInput(o.predicate, 'predicate')).toString('utf8');
      let predicate: unknown;
      if (type === PREDICATE_TYPES.custom) predicate = { Data: text, Timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
      else {
        try {
          predicate = JSON.parse(text);
        } catch {
          throw new PlinthError('USAGE', `${o.predicate} is not JSON (a ${o.type} predicate is a JSON document)`);
        }
      }
      const signer = await openSigner(o.key);
      const r = await attestImage(image, signer, type, predicate, { format: o.format, registry: await h.openOptions(o, image) });
      if (o.output === 'json') h.out(JSON.stringify({ image, predicateType: type, ...r }, null, 2));
      else h.out(`Attested ${type} about ${r.digest} (${r.format}, ${r.location})`);
    });
  }

  if (h.want('verify-attestation')) {
    h.addRegistryFlags(addKeylessFlags(
      program
        .command('verify-attestation')
        .description('verify an image\'s attestations of a predicate type with public keys or keyless (bundle referrers and the legacy .att tag); prints the verified statements. Exit 0 only when at least one verifies')
        .argument('<image>', 'a registry image: REGISTRY/REPO:TAG or @DIGEST')
        .option('--key <ref...>', 'public key file (PEM) or inline PEM; repeatable')
        .option('--type <type>', 'predicate type (shorthand or URI); default: any', undefined)
        .option('--format <format>', 'text (one statement per line) or json', 'text'),
    )).action(async (image: string, o: Record<string, unknown> & KeylessFlags & { key?: string[]; type?: string; format: string }) => {
      const [{ verifyImageAttestations }, { predicateType }] = await Promise.all([import('../sign/index.js'), import('../sign/payload.js')]);
      const type = o.type ? predicateType(o.type) : undefined;
      const { verifiers, keyless } = await signersFromFlags(o);
      const r = await verifyImageAttestations(image, verifiers, type, { ...(keyless ? { keyless } : {}), registry: await h.openOptions(o, image) });
      if (o.format === 'json') h.out(JSON.stringify(r, null, 2));
      else {
        for (const a of r.attestations) if (a.verified && a.statement) h.out(JSON.stringify(a.statement));
        for (const a of r.attestations) process.stderr.write(`${a.verified ? 'verified' : 'failed  '}  ${a.format}  ${a.source}: ${a.reason}\n`);
      }
      if (!r.verified) {
        const what = type ? `${type} attestations` : 'attestations';
        throw new PlinthError('SIGNATURE_INVALID', `${image} (${r.digest}): ${r.attestations.length ? `none of its ${r.attestations.length} ${what} verified` : `it has no ${what}`}`);
      }
    });
  }

  if (h.want('triangulate')) {
    h.addRegistryFlags(
      program
        .command('triangulate')
        .description('print where an image\'s signatures and attestations live: the legacy .sig/.att/.sbom tags (like cosign triangulate) and the Sigstore bundle referrers')
        .argument('<image>', 'a registry image: REGISTRY/REPO:TAG or @DIGEST')
        .option('--type <type>', 'signature, attestation, sbom, bundle (one location per line), or all', 'signature')
        .option('--format <format>', 'text or json', 'text'),
    ).action(async (image: string, o: Record<string, unknown> & { type: string; format: string }) => {
      if (!['signature', 'attestation', 'sbom', 'bundle', 'all'].includes(o.type)) throw new PlinthError('USAGE', `--type must be signature, attestation, sbom, bundle or all, got "${o.type}"`);
      const { triangulate } = await import('../sign/index.js');
      const t = await triangulate(image, { registry: await h.openOptions(o, image) });
      if (o.format === 'json') return h.out(JSON.stringify(t, null, 2));
      if (o.type === 'signature' || o.type === 'attestation' || o.type === 'sbom') return h.out(t[o.type].location);
      if (o.type === 'bundle') return t.bundles.length ? h.out(t.bundles.map((b) => b.location).join('\n')) : undefined;
      const lines = [`digest       ${t.digest}`];
      for (const k of ['signature', 'attestation', 'sbom'] as const) lines.push(`${k.padEnd(12)} ${t[k].location}${t[k].exists ? '' : ' (none)'}`);
      for (const b of t.bundles) lines.push(`bundle       ${b.location}${b.predicateType ? ` (${b.predicateType})` : ''}`);
      lines.push(`referrers    via ${t.referrersSource === 'api' ? 'the referrers API' : 'the sha256-<hex> tag index (no referrers API)'}`);
      h.out(lines.join('\n'));
    });
  }

  if (h.want('sign-blob')) {
    program
      .command('sign-blob')
      .description('sign a file with a cosign key and write a Sigstore bundle v0.3 (message signature), as cosign sign-blob --bundle does (no transparency log: verify with --insecure-ignore-tlog)')
      .argument('<file>')
      .requiredOption('--key <ref>', KEY_REF_HELP)
      .requiredOption('--bundle <file>', 'where to write the bundle')
      .action(async (file: string, o: { key: string; bundle: string }) => {
        const [{ openSigner }, { signBlob }] = await Promise.all([import('../sign/keys.js'), import('../sign/blob.js')]);
        const bundle = await signBlob(await readInput(file, ''), await openSigner(o.key));
        try {
          await writeFile(o.bundle, `${JSON.stringify(bundle)}\n`);
        } catch (e) {
          throw new PlinthError('IO', `cannot write ${o.bundle}: ${(e as Error).message}`);
        }
        process.stderr.write(`Wrote bundle to file ${o.bundle}\n`);
      });
  }

  if (h.want('verify-blob')) {
    addKeylessFlags(program
      .command('verify-blob')
      .description('verify a file (or a sha256:<hex> digest, for DSSE bundles) against a Sigstore bundle (v0.1-v0.3, message signature or DSSE, Rekor v1 and v2), offline: with a public key, or keyless (certificate chain, SCTs, transparency log, identity, issuer) against a trusted root; without --trusted-root, the Sigstore public-good root built into Plinth')
      .argument('<file-or-digest>')
      .requiredOption('--bundle <file>', 'the Sigstore bundle (JSON)')
      .option('--key <ref>', 'public key (PEM file or inline PEM)')
      .option('--format <format>', 'text or json', 'text'))
      .action(async (target: string, o: KeylessFlags & { bundle: string; key?: string; format: string }) => {
        const [{ openVerifier }, { parseBundle, verifyBlob }] = await Promise.all([import('../sign/keys.js'), import('../sign/blob.js')]);
        const keyless = await keylessFromFlags(o);
        const bundle = parseBundle((await readInput(o.bundle, 'bundle')).toString('utf8'));
        const trustedRoot = keyless ? keyless.trustedRoot : await readTrustedRoot(o.trustedRoot);
        const identity = keyless?.identity;
        const issuer = keyless?.issuer;
        const artifact = /^sha256:[a-f0-9]{64}$/.test(target) ? target : await readInput(target, 'file');
        const key = o.key ? (await openVerifier(o.key)).publicKey : undefined;
        const r = verifyBlob(artifact, bundle, { ...(key ? { key } : {}), ...(identity !== undefined ? { identity } : {}), ...(issuer !== undefined ? { issuer } : {}), ...(trustedRoot ? { trustedRoot } : {}), ...(o.insecureIgnoreTlog ? { ignoreTlog: true } : {}), ...(o.insecureIgnoreSct ? { ignoreSct: true } : {}) });
        if (o.format === 'json') h.out(JSON.stringify(r, null, 2));
        else {
          const who = 'key' in r.signer ? `the key ${o.key}` : `${r.signer.identity} (issuer ${r.signer.issuer})`;
          process.stderr.write(`Verified OK: ${r.content === 'dsse' ? `DSSE ${r.predicateType}` : 'message signature'} by ${who}; ${r.tlogEntries} transparency-log entr${r.tlogEntries === 1 ? 'y' : 'ies'}; trusted root: ${r.trustedRoot === 'given' ? o.trustedRoot : 'Sigstore public-good (built in)'}\n`);
        }
      });
  }
}
