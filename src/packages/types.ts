import type { OsInfo } from './os.js';

export type PackageType = 'deb' | 'apk' | 'rpm';

/**
 * One installed OS package.
 *
 * `version` is what the package manager calls the version:
 * - deb: the complete dpkg version, epoch included (`1:2.36-9+deb12u4`), exactly as
 *   `dpkg-query -W` prints it; `epoch` and `release` stay unset.
 * - apk: the complete version with its `-rN` suffix (`1.2.4-r2`).
 * - rpm: rpm's VERSION only; `release` is RELEASE and `epoch` is EPOCH (when the header has one).
 *   {@link fullVersion} gives the `[epoch:]version-release` string rpm compares.
 */
export interface Package {
  name: string;
  version: string;
  release?: string;
  epoch?: number;
  arch?: string;
  /** Source package: deb `Source:` (default: the package), apk origin, rpm SOURCERPM's name. */
  source?: string;
  /** deb: `Source: name (version)` or the package version; apk: the version; rpm: SOURCERPM's `version-release`. */
  sourceVersion?: string;
  license?: string;
  maintainer?: string;
  /** rpm VENDOR. */
  vendor?: string;
  type: PackageType;
  purl: string;
  /** Filled later: the layer (diff_id) that installed this version of the package. */
  layer?: string;
  /** The package database the package was read from (path inside the image, no leading slash). */
  evidence: string;
}

export interface Finding {
  path: string;
  message: string;
}

export interface ParseResult {
  packages: Package[];
  findings: Finding[];
}

/** At most this many findings per database file; the rest are counted in one last finding. */
export const MAX_FINDINGS_PER_FILE = 50;

/** Collects findings for one file, capping their number so hostile input cannot flood the report. */
export class FindingSink {
  readonly findings: Finding[] = [];
  private dropped = 0;
  constructor(private readonly path: string) {}
  add(message: string): void {
    if (this.findings.length < MAX_FINDINGS_PER_FILE) this.findings.push({ path: this.path, message });
    else this.dropped++;
  }
  done(): Finding[] {
    if (this.dropped > 0) {
      this.findings.push({ path: this.path, message: `${this.dropped} more problem(s) in this file not listed` });
      this.dropped = 0;
    }
    return this.findings;
  }
}

/** The version string an ecosystem's comparator takes: rpm `[epoch:]version-release`, otherwise `version`. */
export function fullVersion(pkg: Pick<Package, 'type' | 'version' | 'release' | 'epoch'>): string {
  if (pkg.type !== 'rpm') return pkg.version;
  const epoch = pkg.epoch !== undefined && pkg.epoch !== 0 ? `${pkg.epoch}:` : '';
  return `${epoch}${pkg.version}${pkg.release ? `-${pkg.release}` : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Package URLs (https://github.com/package-url/purl-spec)
// ---------------------------------------------------------------------------------------------

/**
 * Percent-encode one purl component: every byte of the UTF-8 form is encoded except the
 * unreserved characters `A-Z a-z 0-9 - . _ ~` and `:` (which the spec says must stay as is).
 */
export function encodePurlComponent(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~:]/.test(c)) out += c;
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export interface PurlParts {
  type: string;
  namespace?: string;
  name: string;
  version?: string;
  /** Empty values are left out; keys are lower-cased and sorted, as the canonical form asks. */
  qualifiers?: Record<string, string | undefined>;
  subpath?: string;
}

/** Build a canonical package URL. */
export function buildPurl(p: PurlParts): string {
  let s = `pkg:${p.type.toLowerCase()}/`;
  if (p.namespace) {
    const segs = p.namespace.split('/').filter((x) => x !== '');
    if (segs.length > 0) s += segs.map(encodePurlComponent).join('/') + '/';
  }
  s += encodePurlComponent(p.name);
  if (p.version !== undefined && p.version !== '') s += '@' + encodePurlComponent(p.version);
  const q = Object.entries(p.qualifiers ?? {})
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .map(([k, v]) => [k.toLowerCase(), v] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  if (q.length > 0) s += '?' + q.map(([k, v]) => `${k}=${encodePurlComponent(v)}`).join('&');
  if (p.subpath) {
    const segs = p.subpath.split('/').filter((x) => x !== '' && x !== '.' && x !== '..');
    if (segs.length > 0) s += '#' + segs.map(encodePurlComponent).join('/');
  }
  return s;
}

const RPM_NAMESPACE: Partial<Record<OsInfo['family'], string>> = {
  rhel: 'redhat',
  centos: 'centos',
  rocky: 'rocky',
  almalinux: 'almalinux',
  fedora: 'fedora',
  oracle: 'oracle',
  amazon: 'amazon',
  opensuse: 'opensuse',
  sles: 'suse',
  photon: 'photon',
  mariner: 'mariner',
  azurelinux: 'azurelinux',
};

/**
 * The purl of an installed package:
 * `pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12`,
 * `pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.19.1`,
 * `pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64&distro=rhel-9.2&epoch=1`.
 * Without an OS the namespace falls back to `debian` / `alpine` (none for rpm) and there is no
 * `distro` qualifier.
 */
export function packageUrl(pkg: Omit<Package, 'purl'>, os?: OsInfo): string {
  // The advisory version (`12`, `22.04`, `3.19.1`, `9.2`), the precise one when that is unknown.
  const osVersion = os ? os.version || os.versionId : '';
  switch (pkg.type) {
    case 'deb':
      return buildPurl({
        type: 'deb',
        namespace: os && (os.family === 'debian' || os.family === 'ubuntu') ? os.family : os?.family === 'other' ? os.id : 'debian',
        name: pkg.name,
        version: pkg.version,
        qualifiers: { arch: pkg.arch, distro: os && osVersion ? `${os.id}-${osVersion}` : undefined },
      });
    case 'apk':
      return buildPurl({
        type: 'apk',
        namespace: os && (os.family === 'wolfi' || os.family === 'chainguard' || os.family === 'alpine') ? os.family : os?.family === 'other' ? os.id : 'alpine',
        name: pkg.name,
        version: pkg.version,
        qualifiers: { arch: pkg.arch, distro: os && osVersion ? osVersion : undefined },
      });
    case 'rpm':
      return buildPurl({
        type: 'rpm',
        namespace: os ? (RPM_NAMESPACE[os.family] ?? os.id) : undefined,
        name: pkg.name,
        version: pkg.release ? `${pkg.version}-${pkg.release}` : pkg.version,
        qualifiers: {
          arch: pkg.arch,
          epoch: pkg.epoch !== undefined && pkg.epoch !== 0 ? String(pkg.epoch) : undefined,
          distro: os && osVersion ? `${os.id}-${osVersion}` : undefined,
        },
      });
  }
}

/** Recompute the purls once the OS is known (package databases may be read before the OS files). */
export function withOs(result: ParseResult, os: OsInfo | undefined): ParseResult {
  return { packages: result.packages.map((p) => ({ ...p, purl: packageUrl(p, os) })), findings: result.findings };
}
