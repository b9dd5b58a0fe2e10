import dns from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
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

const BLOCKED = new BlockList();
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
  BLOCKED.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(net, bits, 'ipv6');
}

/** IPv4 addresses carried inside IPv6 ones: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96). */
function embeddedV4(ip: string): string | undefined {
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
  if (family === 4) return BLOCKED.check(ip, 'ipv4');
  if (family === 6) {
    const v4 = embeddedV4(ip);
    if (v4) return BLOCKED.check(v4, 'ipv4');
    return BLOCKED.check(ip, 'ipv6');
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
  const h = hostport.toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  const colons = h.split(':').length - 1;
  return colons === 1 ? h.slice(0, h.indexOf(':')) : h;
}

export class NetworkGuard {
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
      `refusing to connect to ${host}${address !== host ? ` (${address})` : ''}: a loopback, private or link-local address; allow the registry explicitly (plinth serve --allow-private-registry ${host}, or name it in an allowedRegistries rule)`,
    );
  }

  /** Throws DENIED for an IP-literal host that may not be reached (names are checked at lookup). */
  checkLiteral(hostname: string): void {
    const h = hostOnly(hostname);
    if (!this.policy.denyPrivate || !isIP(h)) return;
    if (isPrivateAddress(h) && !this.allowed(h)) throw this.refuse(h, h);
  }

  /** A `lookup` for http(s).Agent: resolves as dns.lookup does, refusing private answers. */
  lookup(): LookupFunction {
    return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
      dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err);
        const list = addresses as dns.LookupAddress[];
        if (this.policy.denyPrivate && !this.allowed(hostname)) {
          const bad = list.find((a) => isPrivateAddress(a.address));
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
