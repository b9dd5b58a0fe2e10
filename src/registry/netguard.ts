import type dns from 'node:dns';
import { isIP, type BlockList, type LookupFunction } from 'node:net';
import { PlinthError } from '../util/errors.js';

/**
 * Which network addresses Plinth may connect to. The admission webhook fetches whatever image a
 * pod spec (or an image's base annotation) names; without a guard, that is a way to make it
 * send requests to the cluster's own services, the cloud metadata endpoint or loopback (SSRF).
 * With `denyPrivate`, connections to loopback, private, link-local, shared (CGNAT), multicast
 * and reserved addresses are refused, unless the host is on `allowHosts`. The check is made on
 * the address actually connected to (a DNS lookup hook), so a name that resolves, or later
 * re-resolves, to a private address is refused too; IP literals are checked before connecting.
 */
export interface NetworkPolicy {
  denyPrivate: boolean;
  /** Host names or IP addresses (globs: `*` within a label, e.g. `*.registry.internal`) exempt from denyPrivate. */
  allowHosts?: readonly string[];
}

/** The refused networks, built on first use (a BlockList loads Node's socket address code, ~5 ms). */
let blocked: BlockList | undefined;
function blockedNetworks(): BlockList {
  if (blocked) return blocked;
  const { BlockList } = process.getBuiltinModule('node:net') as typeof import('node:net');
  const list = new BlockList();
  for (const [net, bits] of [
    ['0.0.0.0', 8], // "this network"
    ['10.0.0.0', 8],
    ['100.64.0.0', 10], // shared address space (CGNAT)
    ['127.0.0.0', 8],
    ['169.254.0.0', 16], // link-local, cloud metadata (169.254.169.254)
    ['172.16.0.0', 12],
    ['192.0.0.0', 24], // IETF protocol assignments
    ['192.168.0.0', 16],
    ['198.18.0.0', 15], // benchmarking
    ['224.0.0.0', 4], // multicast
    ['240.0.0.0', 4], // reserved, broadcast
  ] as const) {
    list.addSubnet(net, bits, 'ipv4');
  }
  for (const [net, bits] of [
    ['::', 96], // unspecified, loopback and IPv4-compatible (::a.b.c.d)
    ['::ffff:0:0:0', 96], // IPv4-translated (SIIT)
    ['64:ff9b:1::', 48], // local-use NAT64
    ['fec0::', 10], // site-local (deprecated)
    ['fc00::', 7], // unique local
    ['fe80::', 10], // link-local
    ['ff00::', 8], // multicast
  ] as const) {
    list.addSubnet(net, bits, 'ipv6');
  }
  return (blocked = list);
}

/** node:dns on first use (only a guarded client resolves names itself). */
function dnsModule(): typeof dns {
  return process.getBuiltinModule('node:dns') as typeof dns;
}

/** IPv4 addresses carried inside IPv6 ones: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96). */
function embeddedV4(ip: string): string | undefined {
  // 6to4 (2002:AABB:CCDD::/48) carries the IPv4 address in the next 32 bits.
  const six = /^2002:([0-9a-f]{1,4}):([0-9a-f]{1,4})(?::|$)/i.exec(ip);
  if (six) {
    const a = parseInt(six[1]!, 16);
    const b = parseInt(six[2]!, 16);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  const m = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (m) return m[1];
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (hex) {
    const a = parseInt(hex[1]!, 16);
    const b = parseInt(hex[2]!, 16);
    return `${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  return undefined;
}

/** Whether an IP address is loopback, private, link-local, shared, multicast or reserved. */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return blockedNetworks().check(ip, 'ipv4');
  if (family === 6) {
    const v4 = embeddedV4(ip);
    if (v4) return blockedNetworks().check(v4, 'ipv4');
    return blockedNetworks().check(ip, 'ipv6');
  }
  return false;
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .toLowerCase()
    .split('*')
    .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^.]*');
  return new RegExp(`^${body}$`);
}

/** The host part of `host`, `host:port` or `[v6]:port`, lower-cased. */
export function hostOnly(hostport: string): string {
  let h = hostport.toLowerCase();
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']'));
  else if (h.split(':').length - 1 === 1) h = h.slice(0, h.indexOf(':'));
  // A fully qualified name ("registry.internal.") is the same host.
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

const GUARDS = new WeakMap<NetworkPolicy, NetworkGuard>();

export class NetworkGuard {
  /** The guard for a policy object, built once (every registry client of a decision shares the policy). */
  static for(policy: NetworkPolicy): NetworkGuard {
    let g = GUARDS.get(policy);
    if (!g) GUARDS.set(policy, (g = new NetworkGuard(policy)));
    return g;
  }

  private readonly allow: RegExp[];
  constructor(readonly policy: NetworkPolicy) {
    this.allow = (policy.allowHosts ?? []).map((h) => globToRegExp(hostOnly(h)));
  }

  /** Whether `host` (a name or an address) is exempt from the private-address rule. */
  allowed(host: string): boolean {
    const h = hostOnly(host);
    return this.allow.some((re) => re.test(h));
  }

  private refuse(host: string, address: string): PlinthError {
    return new PlinthError(
      'DENIED',
      `refusing to connect to ${host}${address !== host ? ` (${address})` : ''}: a loopback, private or link-local address; allow the registry explicitly (plinth serve --allow-private-registry ${host}, or name its host in an enforce allowedRegistries rule)`,
    );
  }

  /** Throws DENIED for an IP-literal host that may not be reached (names are checked at lookup). */
  checkLiteral(hostname: string): void {
    const h = hostOnly(hostname);
    if (!this.policy.denyPrivate || !isIP(h)) return;
    if (isPrivateAddress(h) && !this.allowed(h)) throw this.refuse(h, h);
  }

  /**
   * Throws DENIED when `hostport` may not be reached: an IP literal, or a name that resolves to a
   * refused address (checked before any registry work, so the refusal is a policy failure, not a
   * network error the failure policy could turn into an allow). Resolution failures are left to
   * the connection, which reports them.
   */
  async assertReachable(hostport: string): Promise<void> {
    if (!this.policy.denyPrivate) return;
    const h = hostOnly(hostport);
    if (isIP(h)) return this.checkLiteral(h);
    if (this.allowed(h)) return;
    let list: dns.LookupAddress[];
    try {
      list = await dnsModule().promises.lookup(h, { all: true });
    } catch {
      return;
    }
    const bad = list.find((a) => isPrivateAddress(a.address) && !this.allowed(a.address));
    if (bad) throw this.refuse(h, bad.address);
  }

  /** A `lookup` for http(s).Agent: resolves as dns.lookup does, refusing private answers. */
  lookup(): LookupFunction {
    return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
      dnsModule().lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err);
        const list = addresses as dns.LookupAddress[];
        if (this.policy.denyPrivate && !this.allowed(hostname)) {
          // An allowed address is allowed under any name that resolves to it.
          const bad = list.find((a) => isPrivateAddress(a.address) && !this.allowed(a.address));
          if (bad) return callback(this.refuse(hostname, bad.address));
        }
        if (options.all) return callback(null, list);
        const first = list[0];
        if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }));
        callback(null, first.address, first.family);
      });
    }) as LookupFunction;
  }
}
