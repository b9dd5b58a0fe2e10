/**
 * Types for OCI image-spec v1.1 documents (and the Docker schema 2 documents they grew from),
 * plus platform parsing, formatting and matching.
 *
 * Documents keep any fields these types do not name (validation is not strict about unknown
 * fields, as the spec requires of consumers), so treat them as open records.
 */
import { PlinthError } from '../util/errors.js';

/** The platform a manifest (or config) is built for. Names follow Go's GOOS/GOARCH. */
export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

/** A content descriptor: what a blob is, how big it is and its digest. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  /** Embedded content, standard base64 with padding. */
  data?: string;
  artifactType?: string;
  /** Only meaningful on index entries. */
  platform?: Platform;
}

/** An OCI image manifest or Docker image manifest v2 schema 2. */
export interface Manifest {
  schemaVersion: 2;
  /** OCI: SHOULD be set (`application/vnd.oci.image.manifest.v1+json`); Docker schema 2: always set. */
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** An OCI image index or Docker manifest list. */
export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface HealthConfig {
  Test?: string[] | null;
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The execution parameters in an image config (`config`). Docker keys are capitalised. */
export interface ContainerConfig {
  User?: string;
  /** Keys like `8080/tcp`; values are empty objects. */
  ExposedPorts?: Record<string, Record<string, unknown>> | null;
  /** `KEY=VALUE` strings. `null` is tolerated (Docker writes it for an empty list). */
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, unknown>> | null;
  WorkingDir?: string;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  // Docker extensions (not in the OCI config, but common in Docker-built images):
  Healthcheck?: HealthConfig | null;
  OnBuild?: string[] | null;
  Shell?: string[] | null;
}

export interface History {
  created?: string;
  author?: string;
  created_by?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface RootFS {
  type: 'layers';
  /** Digests of the uncompressed layer tars, in order. */
  diff_ids: string[];
}

/** The OCI image configuration (also Docker's `application/vnd.docker.container.image.v1+json`). */
export interface ImageConfig {
  /** RFC 3339 date-time. */
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: ContainerConfig;
  rootfs: RootFS;
  history?: History[];
}

/** The `oci-layout` file at the root of an OCI image layout. */
export interface OciLayout {
  imageLayoutVersion: '1.0.0';
}

export type DocumentKind = 'manifest' | 'index';

export type ParsedDocument =
  | { kind: 'manifest'; mediaType: string; doc: Manifest }
  | { kind: 'index'; mediaType: string; doc: Index };

// ---------------------------------------------------------------------------------------------
// Platforms
// ---------------------------------------------------------------------------------------------

const PLATFORM_PART = /^[A-Za-z0-9_.-]+$/;

/**
 * Parse `os/arch[/variant]`, e.g. `linux/arm64/v8`, `linux/amd64`, `windows(10.0.17763)/amd64`
 * (the parenthesised part is `os.version`). Names are lower-cased; no other normalisation is
 * applied (see normalizePlatform). Throws PlinthError('USAGE') for anything else.
 */
export function parsePlatform(spec: string): Platform {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new PlinthError('USAGE', 'platform is empty: expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8');
  }
  const parts = spec.trim().split('/');
  if (parts.length < 2 || parts.length > 3) {
    throw new PlinthError('USAGE', `invalid platform "${clip(spec)}": expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`);
  }
  let osPart = parts[0]!;
  let osVersion: string | undefined;
  const m = /^([^()]+)\(([^()]*)\)$/.exec(osPart);
  if (m) {
    osPart = m[1]!;
    osVersion = m[2]!;
    if (osVersion === '' || !PLATFORM_PART.test(osVersion)) {
      throw new PlinthError('USAGE', `invalid platform "${clip(spec)}": bad os.version "${clip(osVersion)}"`);
    }
  }
  const names: Array<[string, string]> = [['os', osPart], ['architecture', parts[1]!]];
  if (parts.length === 3) names.push(['variant', parts[2]!]);
  for (const [what, value] of names) {
    if (!PLATFORM_PART.test(value)) {
      throw new PlinthError('USAGE', `invalid platform "${clip(spec)}": ${what} ${value === '' ? 'is empty' : `"${clip(value)}" has characters other than letters, digits, '_', '.' and '-'`}`);
    }
  }
  const p: Platform = { os: osPart.toLowerCase(), architecture: parts[1]!.toLowerCase() };
  if (parts.length === 3) p.variant = parts[2]!.toLowerCase();
  if (osVersion !== undefined) p['os.version'] = osVersion;
  return p;
}

/** `os/arch[/variant]` (with `os(os.version)` when os.version is set): the inverse of parsePlatform. */
export function formatPlatform(p: Platform): string {
  const os = p['os.version'] ? `${p.os}(${p['os.version']})` : p.os;
  return p.variant ? `${os}/${p.architecture}/${p.variant}` : `${os}/${p.architecture}`;
}

/**
 * containerd's normalisation: lower-case; `aarch64`→`arm64`, `x86_64`/`x86-64`→`amd64`,
 * `i386`→`386`, `armhf`→`arm/v7`, `armel`→`arm/v6`; default variants are made explicit-equal:
 * arm64's `v8` and amd64's `v1` become no variant, bare `arm` becomes `arm/v7`; `macos`→`darwin`.
 */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase();
  if (os === 'macos') os = 'darwin';
  let arch = p.architecture.toLowerCase();
  let variant = (p.variant ?? '').toLowerCase();
  switch (arch) {
    case 'i386':
    case 'i686':
    case 'x86':
      arch = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      else if (variant === '9' || variant === '9.0' || variant === 'v9.0') variant = 'v9';
      break;
    case 'armhf':
      arch = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7';
      else if (variant === '5' || variant === '6' || variant === '8') variant = `v${variant}`;
      break;
    default:
      break;
  }
  const out: Platform = { os, architecture: arch };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  if (p['os.features']) out['os.features'] = [...p['os.features']];
  if (p.features) out.features = [...p.features];
  return out;
}

/**
 * Does `have` (e.g. an index entry's platform) satisfy `want`? Both are normalised first
 * (normalizePlatform), then os, architecture and variant must be equal — containerd's
 * platforms.Matcher semantics, so `linux/arm64` matches `linux/arm64/v8` and `linux/amd64`
 * matches `linux/amd64/v1`, but `linux/amd64` does not match `linux/amd64/v3` and `linux/arm/v7`
 * does not match `linux/arm/v6`. If `want` names an os.version, `have` must carry the same one.
 */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture || (w.variant ?? '') !== (h.variant ?? '')) return false;
  if (w['os.version'] && w['os.version'] !== h['os.version']) return false;
  return true;
}

/**
 * The platform of this machine, in image terms. The architecture is node's process.arch mapped to
 * GOARCH (x64→amd64, arm64→arm64/v8, arm→arm/v7 (v6 if node was built for ARMv6), ia32→386,
 * ppc64→ppc64le on little-endian hosts, s390x, riscv64, loong64, mips(el)). The os is `windows` on
 * Windows and `linux` everywhere else: on macOS containers run in a Linux VM, and a `darwin` image
 * platform does not exist in practice.
 */
export function hostPlatform(): Platform {
  const os = process.platform === 'win32' ? 'windows' : 'linux';
  switch (process.arch) {
    case 'x64':
      return { os, architecture: 'amd64' };
    case 'arm64':
      return { os, architecture: 'arm64', variant: 'v8' };
    case 'arm': {
      const v = (process.config?.variables as Record<string, unknown> | undefined)?.['arm_version'];
      return { os, architecture: 'arm', variant: v === '6' || v === 6 ? 'v6' : 'v7' };
    }
    case 'ia32':
      return { os, architecture: '386' };
    case 'ppc64':
      return { os, architecture: littleEndian() ? 'ppc64le' : 'ppc64' };
    case 'mips':
      return { os, architecture: 'mips' };
    case 'mipsel':
      return { os, architecture: 'mipsle' };
    default:
      // s390x, riscv64, loong64, ppc (=ppc), … already match GOARCH.
      return { os, architecture: process.arch };
  }
}

function littleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

function clip(s: string, n = 60): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
