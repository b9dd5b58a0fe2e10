/**
 * Looking up signed targets in verified trust data (pure: no I/O), shared by the TUF client, the
 * CLI and the policy rule (which must not load the HTTP stack: the executable's start-up snapshot
 * initialises the policy modules).
 */
import { pathAllowed, type DelegationRole, type RootMeta, type Signed, type SnapshotMeta, type TargetsMeta, type TimestampMeta } from './tuf.js';

export interface LoadedRole {
  name: string;
  doc: Signed<TargetsMeta>;
  /** The delegation entry (undefined for targets). */
  role?: DelegationRole;
  /** Key IDs that signed. */
  signers: string[];
}

export interface TrustData {
  gun: string;
  server: string;
  root: Signed<RootMeta>;
  timestamp: Signed<TimestampMeta>;
  snapshot: Signed<SnapshotMeta>;
  /** targets first, then delegations in walk order (pre-order). */
  roles: LoadedRole[];
  /** The root was trusted on first use in this run (nothing was trusted before). */
  firstUse: boolean;
  /** Root versions this run moved through (rotation). */
  rootRotations: number[];
}

export interface SignedTarget {
  name: string;
  /** Hex sha256 of the target (the manifest digest for Docker). */
  sha256: string;
  length: number;
  /** The role whose metadata lists it. */
  role: string;
}

/**
 * Look up `name` as Docker does: in targets/releases (and what it delegates), then in targets
 * and its delegations; a delegation's entry outside its paths is not trusted. Returns the first
 * trusted entry, and the entries refused for being outside their paths.
 */
export function lookupTarget(trust: TrustData, name: string): { target?: SignedTarget; outside: string[] } {
  const outside: string[] = [];
  const byName = new Map(trust.roles.map((r) => [r.name, r]));
  const visit = (r: LoadedRole, allowed: (role: LoadedRole) => boolean): SignedTarget | undefined => {
    const t = r.doc.signed.targets[name];
    if (t) {
      if (r.role && !pathAllowed(r.role, name)) outside.push(`${r.name} signs ${JSON.stringify(name)} outside its paths ${JSON.stringify(r.role.paths ?? r.role.path_hash_prefixes ?? [])}`);
      else if (allowed(r)) {
        const sha = t.hashes.sha256;
        if (sha) return { name, sha256: Buffer.from(sha, 'base64').toString('hex'), length: t.length, role: r.name };
      }
    }
    for (const c of trust.roles.filter((c) => c.role && c.name.startsWith(`${r.name}/`) && c.name.slice(r.name.length + 1).indexOf('/') < 0)) {
      if (!pathAllowed(c.role!, name) && !c.doc.signed.targets[name]) continue;
      const found = visit(c, allowed);
      if (found) return found;
    }
    return undefined;
  };
  for (const start of ['targets/releases', 'targets']) {
    const r = byName.get(start);
    if (!r) continue;
    const found = visit(r, () => true);
    if (found) return { target: found, outside: [...new Set(outside)] };
  }
  return { outside: [...new Set(outside)] };
}

/** Every signed target (trusted entries only) with the roles that sign it. */
export function listTargets(trust: TrustData): Array<SignedTarget & { signers: string[] }> {
  const out = new Map<string, SignedTarget & { signers: string[] }>();
  for (const r of trust.roles) {
    for (const [name, t] of Object.entries(r.doc.signed.targets)) {
      if (r.role && !pathAllowed(r.role, name)) continue;
      const sha = t.hashes.sha256 ? Buffer.from(t.hashes.sha256, 'base64').toString('hex') : undefined;
      if (!sha) continue;
      const key = `${name}\u0000${sha}\u0000${t.length}`;
      const e = out.get(key) ?? { name, sha256: sha, length: t.length, role: r.name, signers: [] };
      e.signers.push(r.name);
      out.set(key, e);
    }
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

