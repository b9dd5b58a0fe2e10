/**
 * The Docker Content Trust verdict on one image, from verified trust data (pure). Loaded by the
 * policy rule without the TUF client's HTTP stack.
 */
import { listTargets, lookupTarget, type SignedTarget, type TrustData } from './targets.js';

export interface DctCheck {
  format: 'dct';
  source: string;
  verified: boolean;
  reason: string;
  /** The role whose metadata signs the tag. */
  role?: string;
  signedDigest?: string;
}

/** Judge the trust data for the manifest (digest, size) `tag` resolved to. Pure. */
export function checkDct(trust: TrustData, tag: string | undefined, digest: string, size: number, requiredRoles?: string[]): DctCheck {
  const source = `${trust.server} ${trust.gun}${tag ? `:${tag}` : ''}`;
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : undefined;
  if (!hex) return { format: 'dct', source, verified: false, reason: `${digest} is not a sha256 digest; Docker Content Trust signs sha256 only` };
  let target: SignedTarget | undefined;
  let outside: string[] = [];
  if (tag !== undefined) {
    ({ target, outside } = lookupTarget(trust, tag));
    if (!target) return { format: 'dct', source, verified: false, reason: outside.length ? `${outside.join('; ')}: not trusted, and no other role signs ${tag}` : `no signed target for tag ${tag} in ${trust.gun} (looked in targets/releases, then targets)` };
  } else {
    target = listTargets(trust).find((t) => t.sha256 === hex);
    if (!target) return { format: 'dct', source, verified: false, reason: `no signed tag of ${trust.gun} names ${digest}` };
  }
  const base = { format: 'dct' as const, source: `${trust.server} ${trust.gun}:${target.name}`, role: target.role, signedDigest: `sha256:${target.sha256}` };
  if (requiredRoles?.length && !requiredRoles.includes(target.role)) return { ...base, verified: false, reason: `${target.name} is signed by ${target.role}, not by ${requiredRoles.join(' or ')}` };
  if (target.sha256 !== hex) return { ...base, verified: false, reason: `the signed target ${target.name} (${target.role}) is sha256:${target.sha256}, the registry serves ${digest}` };
  if (target.length !== size) return { ...base, verified: false, reason: `the signed target ${target.name} (${target.role}) is ${target.length} bytes, the registry serves a ${size}-byte manifest` };
  return { ...base, verified: true, reason: `${target.role} signs ${target.name} = ${digest} (${size} bytes) in trust data verified from root version ${trust.root.signed.version}` };
}

