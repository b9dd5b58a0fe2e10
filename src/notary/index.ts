/**
 * Docker Content Trust (Notary v1) verification of registry images: the library behind
 * `plinth verify --dct`, `plinth dct targets` and the `notaryV1` verifier of the `signatures`
 * policy rule. The tag's signed target (sha256 and length, from targets/releases then targets)
 * must equal the manifest digest and size the registry serves.
 */
import { parseLocation, withRegistryImage, type OpenOptions } from '../source/open.js';
import { PlinthError } from '../util/errors.js';
import { resolveCredential } from '../registry/credentials.js';
import { canonicalKeyId } from './tuf.js';
import { defaultTrustServer, listTargets, updateTrust, type DctOptions, type TrustData } from './client.js';
import { checkDct, type DctCheck } from './check.js';

export { checkDct, type DctCheck } from './check.js';

export { defaultTrustDir, defaultTrustServer, listTargets, lookupTarget, updateTrust, type DctOptions, type SignedTarget, type TrustData } from './client.js';
export { canonicalJson } from './canonicaljson.js';

export interface DctVerifyOptions extends DctOptions {
  registry?: OpenOptions;
  /** Only these roles may have signed the tag (e.g. ["targets/releases"]); default any trusted role. */
  requiredRoles?: string[];
}

export interface DctVerifyResult {
  reference: string;
  name: string;
  gun: string;
  tag?: string;
  digest: string;
  server: string;
  signatures: DctCheck[];
  verified: boolean;
  firstUse: boolean;
  rootRotations: number[];
  /** Root key IDs (as `notary key list` shows them). */
  rootKeys: string[];
}

function rootKeyIds(trust: TrustData): string[] {
  return trust.root.signed.roles.root!.keyids.flatMap((id) => (trust.root.signed.keys[id] ? [canonicalKeyId(trust.root.signed.keys[id]!)] : []));
}

/** Verify the Docker Content Trust signature of the image `reference` names (a tag, or a digest some tag signs). */
export async function verifyDct(reference: string, opts: DctVerifyOptions = {}): Promise<DctVerifyResult> {
  return withRegistryImage(reference, opts.registry, async (src, root) => {
    const gun = src.ref.name;
    const server = opts.server ?? defaultTrustServer(src.ref.registry);
    // As Docker: the registry's credentials serve its trust server's token service too.
    let credential = opts.credential;
    if (!credential) credential = await resolveCredential(src.ref.registry, opts.registry ?? {}).catch(() => undefined);
    const trust = await updateTrust(gun, server, { ...opts, server, ...(credential ? { credential } : {}) });
    const tag = src.ref.digest ? undefined : src.ref.tag;
    const check = checkDct(trust, tag, root.descriptor.digest, root.descriptor.size, opts.requiredRoles);
    return {
      reference: src.ref.string,
      name: src.ref.name,
      gun,
      ...(tag !== undefined ? { tag } : {}),
      digest: root.descriptor.digest,
      server,
      signatures: [check],
      verified: check.verified,
      firstUse: trust.firstUse,
      rootRotations: trust.rootRotations,
      rootKeys: rootKeyIds(trust),
    };
  });
}

export interface DctTargetsResult {
  gun: string;
  server: string;
  signedTags: Array<{ tag: string; digest: string; size: number; signers: string[] }>;
  /** Delegation roles and their key IDs (docker trust inspect's Signers). */
  signers: Array<{ name: string; keys: string[] }>;
  administrativeKeys: Array<{ name: 'Root' | 'Repository'; keys: string[] }>;
}

/** The signed tags of a repository and who signs them (like `docker trust inspect`). */
export async function dctTargets(repository: string, opts: DctOptions = {}): Promise<DctTargetsResult> {
  const loc = parseLocation(repository);
  if (loc.transport !== 'registry') throw new PlinthError('USAGE', `${repository}: name a registry repository (REGISTRY/REPO)`);
  if (loc.ref.digest || (loc.ref.tag && !loc.ref.tagDefaulted)) throw new PlinthError('USAGE', `${repository}: name the repository without a tag or digest`);
  const gun = loc.ref.name;
  const server = opts.server ?? defaultTrustServer(loc.ref.registry);
  const credential = opts.credential ?? (await resolveCredential(loc.ref.registry).catch(() => undefined));
  const trust = await updateTrust(gun, server, { ...opts, server, ...(credential ? { credential } : {}) });
  const roleName = (r: string) => (r === 'targets' ? 'Repo Admin' : r.replace(/^targets\//, ''));
  const signedTags = listTargets(trust).map((t) => ({ tag: t.name, digest: `sha256:${t.sha256}`, size: t.length, signers: t.signers.map(roleName) }));
  const signers: DctTargetsResult['signers'] = [];
  for (const r of trust.roles) {
    for (const d of r.doc.signed.delegations?.roles ?? []) {
      if (d.name === 'targets/releases') continue;
      signers.push({ name: roleName(d.name), keys: [...d.keyids].sort() });
    }
  }
  const rolesOf = trust.root.signed.roles;
  return {
    gun,
    server,
    signedTags,
    signers,
    administrativeKeys: [
      { name: 'Root', keys: rootKeyIds(trust) },
      { name: 'Repository', keys: [...rolesOf.targets!.keyids].sort() },
    ],
  };
}
