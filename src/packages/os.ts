/**
 * Operating-system detection from the release files of an image's root filesystem, in the
 * spirit of Trivy's OS analyzers: os-release is the authority when it names a distribution we
 * know; the distribution-specific files (alpine-release, lsb-release, debian_version,
 * *-release of the Red Hat family) are the fallbacks, and fill in what os-release leaves out
 * (Debian testing has no VERSION_ID).
 *
 * Pure: the caller hands over the files' bytes (keys are paths inside the image, with or
 * without a leading `/` or `./`); nothing here touches the disk.
 */

export type OsFamily =
  | 'debian'
  | 'ubuntu'
  | 'alpine'
  | 'wolfi'
  | 'chainguard'
  | 'rhel'
  | 'centos'
  | 'rocky'
  | 'almalinux'
  | 'fedora'
  | 'oracle'
  | 'amazon'
  | 'opensuse'
  | 'sles'
  | 'photon'
  | 'mariner'
  | 'azurelinux'
  /** os-release names a distribution this module does not know; `id` says which. */
  | 'other';

export interface OsInfo {
  family: OsFamily;
  /** os-release `ID` (e.g. `debian`, `rhel`, `amzn`, `opensuse-leap`), or the family's usual ID. */
  id: string;
  /** os-release `NAME` (e.g. `Debian GNU/Linux`), or the distribution's usual name. */
  name: string;
  /**
   * The version advisories are keyed by: Debian's major release (`12`), Ubuntu's release
   * (`22.04`), Alpine's full release (`3.19.1`), otherwise `VERSION_ID` (`9.3`, `2023`).
   * Empty when nothing says (Debian sid, rolling releases without VERSION_ID).
   */
  version: string;
  /** The most precise version string found: `VERSION_ID`, or the release file's number (`12.5`, `7.9.2009`). */
  versionId: string;
  codename?: string;
  prettyName?: string;
  /** Ubuntu only: a long-term-support release. */
  lts?: boolean;
  /** A recognisable flavour of the family, e.g. `distroless` for Google's Debian-based images. */
  variant?: string;
  /** The file the answer came from (path inside the image, no leading slash). */
  evidence: string;
}

/** Every path the OS analyzer wants, without a leading slash. */
export const OS_PATHS: string[] = [
  'etc/os-release',
  'usr/lib/os-release',
  'etc/alpine-release',
  'etc/lsb-release',
  'etc/debian_version',
  'etc/oracle-release',
  'etc/rocky-release',
  'etc/almalinux-release',
  'etc/centos-release',
  'etc/fedora-release',
  'etc/redhat-release',
  'etc/system-release',
];

const OS_PATH_SET = new Set(OS_PATHS);

/** Strip a leading `./` or `/` so layer-tar names and absolute paths compare equal. */
export function normalizeImagePath(p: string): string {
  let s = p;
  while (s.startsWith('./')) s = s.slice(2);
  while (s.startsWith('/')) s = s.slice(1);
  return s;
}

export function isOsPath(p: string): boolean {
  return OS_PATH_SET.has(normalizeImagePath(p));
}

// ---------------------------------------------------------------------------------------------
// os-release (freedesktop.org): KEY=VALUE lines with shell-like quoting.
// ---------------------------------------------------------------------------------------------

/**
 * Parse an os-release / lsb-release style file. Follows os-release(5): `#` comment lines, blank
 * lines, values in double quotes (where `\"`, `\\`, `\$`, `` \` `` are escapes), single quotes
 * (no escapes) or bare (a backslash escapes the next character); quoted and bare pieces may be
 * concatenated; a backslash-newline continues the value. Lines that are not assignments are
 * ignored. Later assignments win.
 */
export function parseOsRelease(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const s = text.replace(/\r\n?/g, '\n');
  let i = 0;
  const n = s.length;
  while (i < n) {
    // Start of a line: skip leading blanks.
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= n) break;
    if (s[i] === '\n') {
      i++;
      continue;
    }
    if (s[i] === '#' || s[i] === ';') {
      const nl = s.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    const keyMatch = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i, Math.min(n, i + 256)));
    let j = i + (keyMatch ? keyMatch[0].length : 0);
    while (j < n && (s[j] === ' ' || s[j] === '\t')) j++;
    if (!keyMatch || s[j] !== '=') {
      // Not an assignment: skip the line.
      const nl = s.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    const key = keyMatch[0];
    j++;
    while (j < n && (s[j] === ' ' || s[j] === '\t')) j++;
    let value = '';
    let pendingSpace = '';
    let ok = true;
    while (j < n && s[j] !== '\n') {
      const c = s[j]!;
      if (c === '"') {
        value += pendingSpace;
        pendingSpace = '';
        j++;
        let closed = false;
        while (j < n) {
          const d = s[j]!;
          if (d === '"') {
            closed = true;
            j++;
            break;
          }
          if (d === '\\' && j + 1 < n) {
            const e = s[j + 1]!;
            if (e === '\n') {
              j += 2;
              continue;
            }
            if (e === '"' || e === '\\' || e === '$' || e === '`') {
              value += e;
              j += 2;
              continue;
            }
            value += d;
            j++;
            continue;
          }
          value += d;
          j++;
        }
        if (!closed) ok = false;
      } else if (c === "'") {
        value += pendingSpace;
        pendingSpace = '';
        const end = s.indexOf("'", j + 1);
        if (end < 0) {
          value += s.slice(j + 1);
          j = n;
          ok = false;
        } else {
          value += s.slice(j + 1, end);
          j = end + 1;
        }
      } else if (c === '\\') {
        value += pendingSpace;
        pendingSpace = '';
        if (j + 1 < n) {
          if (s[j + 1] !== '\n') value += s[j + 1];
          j += 2;
        } else j++;
      } else if (c === ' ' || c === '\t') {
        // Bare whitespace: kept only when more value follows (trailing blanks are dropped).
        pendingSpace += c;
        j++;
      } else {
        value += pendingSpace + c;
        pendingSpace = '';
        j++;
      }
    }
    if (ok) out.set(key, value);
    i = j < n ? j + 1 : n;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Family tables
// ---------------------------------------------------------------------------------------------

const ID_TO_FAMILY: Record<string, OsFamily> = {
  debian: 'debian',
  ubuntu: 'ubuntu',
  alpine: 'alpine',
  wolfi: 'wolfi',
  chainguard: 'chainguard',
  rhel: 'rhel',
  centos: 'centos',
  rocky: 'rocky',
  almalinux: 'almalinux',
  fedora: 'fedora',
  ol: 'oracle',
  amzn: 'amazon',
  opensuse: 'opensuse',
  'opensuse-leap': 'opensuse',
  'opensuse-tumbleweed': 'opensuse',
  sles: 'sles',
  sles_sap: 'sles',
  'sle-micro': 'sles',
  photon: 'photon',
  mariner: 'mariner',
  azurelinux: 'azurelinux',
};

const FAMILY_NAME: Record<OsFamily, string> = {
  debian: 'Debian GNU/Linux',
  ubuntu: 'Ubuntu',
  alpine: 'Alpine Linux',
  wolfi: 'Wolfi',
  chainguard: 'Chainguard',
  rhel: 'Red Hat Enterprise Linux',
  centos: 'CentOS Linux',
  rocky: 'Rocky Linux',
  almalinux: 'AlmaLinux',
  fedora: 'Fedora Linux',
  oracle: 'Oracle Linux Server',
  amazon: 'Amazon Linux',
  opensuse: 'openSUSE',
  sles: 'SUSE Linux Enterprise Server',
  photon: 'VMware Photon OS',
  mariner: 'CBL-Mariner',
  azurelinux: 'Microsoft Azure Linux',
  other: 'Linux',
};

const FAMILY_ID: Record<OsFamily, string> = {
  debian: 'debian',
  ubuntu: 'ubuntu',
  alpine: 'alpine',
  wolfi: 'wolfi',
  chainguard: 'chainguard',
  rhel: 'rhel',
  centos: 'centos',
  rocky: 'rocky',
  almalinux: 'almalinux',
  fedora: 'fedora',
  oracle: 'ol',
  amazon: 'amzn',
  opensuse: 'opensuse',
  sles: 'sles',
  photon: 'photon',
  mariner: 'mariner',
  azurelinux: 'azurelinux',
  other: 'linux',
};

/** Debian release code names and their numbers (stable releases and the named testing ones). */
export const DEBIAN_CODENAMES: Readonly<Record<string, string>> = {
  hamm: '2.0',
  slink: '2.1',
  potato: '2.2',
  woody: '3.0',
  sarge: '3.1',
  etch: '4',
  lenny: '5',
  squeeze: '6',
  wheezy: '7',
  jessie: '8',
  stretch: '9',
  buster: '10',
  bullseye: '11',
  bookworm: '12',
  trixie: '13',
  forky: '14',
  duke: '15',
};

function debianCodenameOf(major: string): string | undefined {
  for (const [name, num] of Object.entries(DEBIAN_CODENAMES)) if (num === major) return name;
  return undefined;
}

/** Debian's advisory version from a `debian_version` value or VERSION_ID: `12.5` → `12`, `6.0.10` → `6`. */
function debianMajor(v: string): string | undefined {
  const m = /^(\d+)(?:\.\d+)*$/.exec(v.trim());
  if (!m) return undefined;
  const major = m[1]!;
  // Before Debian 4 the major.minor pair named the release (3.0 woody, 3.1 sarge).
  if (Number(major) < 4) {
    const mm = /^(\d+\.\d+)/.exec(v.trim());
    return mm ? mm[1] : major;
  }
  return major;
}

/**
 * Alpine's advisory branch for a release: `3.19.1` → `v3.19`; an edge snapshot
 * (`3.20.0_alpha20240329`, or `edge`) → `edge`. Undefined when the string is not a release.
 */
export function alpineBranch(version: string): string | undefined {
  const v = version.trim();
  if (v === 'edge' || /_alpha/.test(v)) return 'edge';
  const m = /^(\d+)\.(\d+)(?:[._].*)?$/.exec(v);
  if (!m) return undefined;
  return `v${Number(m[1])}.${Number(m[2])}`;
}

function ubuntuLtsByNumber(v: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(v);
  if (!m) return false;
  const yy = Number(m[1]);
  return m[2] === '04' && yy >= 6 && yy % 2 === 0;
}

// ---------------------------------------------------------------------------------------------
// Detection
// ---------------------------------------------------------------------------------------------

function text(buf: Buffer | undefined): string | undefined {
  if (!buf) return undefined;
  // Release files are tiny; refuse to spend time on something that is not one.
  return buf.subarray(0, 64 * 1024).toString('utf8');
}

function lookup(files: Map<string, Buffer>): (p: string) => string | undefined {
  const norm = new Map<string, Buffer>();
  for (const [k, v] of files) {
    const nk = normalizeImagePath(k);
    if (OS_PATH_SET.has(nk) && !norm.has(nk)) norm.set(nk, v);
  }
  return (p) => text(norm.get(p));
}

function fromOsRelease(kv: Map<string, string>, evidence: string): OsInfo | undefined {
  const rawId = (kv.get('ID') ?? '').trim().toLowerCase();
  if (rawId === '') return undefined;
  const family = ID_TO_FAMILY[rawId] ?? 'other';
  const versionId = (kv.get('VERSION_ID') ?? '').trim();
  const info: OsInfo = {
    family,
    id: rawId,
    name: kv.get('NAME')?.trim() || FAMILY_NAME[family],
    version: versionId,
    versionId,
    evidence,
  };
  const codename = (kv.get('VERSION_CODENAME') ?? kv.get('UBUNTU_CODENAME') ?? '').trim();
  if (codename) info.codename = codename;
  const pretty = kv.get('PRETTY_NAME')?.trim();
  if (pretty) info.prettyName = pretty;
  if (family === 'debian') {
    const major = versionId ? debianMajor(versionId) : undefined;
    if (major) info.version = major;
    if (!info.codename && major) {
      const c = debianCodenameOf(major);
      if (c) info.codename = c;
    }
    const home = kv.get('HOME_URL') ?? '';
    if (/^distroless$/i.test(pretty ?? '') || /distroless/i.test(home)) info.variant = 'distroless';
  } else if (family === 'ubuntu') {
    const ver = kv.get('VERSION') ?? '';
    info.lts = /\bLTS\b/.test(ver) || /\bLTS\b/.test(pretty ?? '') || (!ver && !pretty && ubuntuLtsByNumber(versionId));
  }
  return info;
}

function fromDebianVersion(t: string, evidence: string): OsInfo | undefined {
  const v = t.split('\n')[0]!.trim();
  if (v === '') return undefined;
  const major = debianMajor(v);
  if (major) {
    const info: OsInfo = { family: 'debian', id: 'debian', name: FAMILY_NAME.debian, version: major, versionId: v, evidence };
    const c = debianCodenameOf(major);
    if (c) info.codename = c;
    return info;
  }
  // Testing and unstable: `trixie/sid`, `sid`.
  const m = /^([a-z]+)(?:\/sid)?$/.exec(v);
  if (!m) return undefined;
  const codename = m[1]!;
  return {
    family: 'debian',
    id: 'debian',
    name: FAMILY_NAME.debian,
    version: DEBIAN_CODENAMES[codename] ?? '',
    versionId: v,
    codename,
    evidence,
  };
}

function fromAlpineRelease(t: string, evidence: string): OsInfo | undefined {
  const v = t.split('\n')[0]!.trim();
  if (!/^\d+\.\d+/.test(v) && v !== 'edge') return undefined;
  return { family: 'alpine', id: 'alpine', name: FAMILY_NAME.alpine, version: v, versionId: v, evidence };
}

function fromLsbRelease(t: string, evidence: string): OsInfo | undefined {
  const kv = parseOsRelease(t);
  if ((kv.get('DISTRIB_ID') ?? '').trim().toLowerCase() !== 'ubuntu') return undefined;
  const v = (kv.get('DISTRIB_RELEASE') ?? '').trim();
  if (!v) return undefined;
  const info: OsInfo = { family: 'ubuntu', id: 'ubuntu', name: FAMILY_NAME.ubuntu, version: v, versionId: v, evidence };
  const codename = kv.get('DISTRIB_CODENAME')?.trim();
  if (codename) info.codename = codename;
  const desc = kv.get('DISTRIB_DESCRIPTION')?.trim();
  if (desc) info.prettyName = desc;
  info.lts = desc ? /\bLTS\b/.test(desc) : ubuntuLtsByNumber(v);
  return info;
}

/** `Rocky Linux release 9.3 (Blue Onyx)` and friends, recognised by content (not file name). */
const RPM_RELEASE_PATTERNS: Array<[RegExp, OsFamily]> = [
  [/^Oracle Linux Server release\s+/i, 'oracle'],
  [/^Rocky Linux release\s+/i, 'rocky'],
  [/^AlmaLinux release\s+/i, 'almalinux'],
  [/^CentOS (?:Linux |Stream )?release\s+/i, 'centos'],
  [/^Fedora(?: Linux)? release\s+/i, 'fedora'],
  [/^Red Hat Enterprise Linux(?: Server| Workstation| ComputeNode| Client)? release\s+/i, 'rhel'],
  [/^Amazon Linux(?: AMI)? release\s+/i, 'amazon'],
];

function fromRpmRelease(t: string, evidence: string): OsInfo | undefined {
  const line = t.split('\n')[0]!.trim();
  for (const [re, family] of RPM_RELEASE_PATTERNS) {
    const m = re.exec(line);
    if (!m) continue;
    const rest = line.slice(m[0].length);
    const vm = /^(\d+(?:\.\d+)*)/.exec(rest);
    if (!vm) return undefined;
    const v = vm[1]!;
    const info: OsInfo = { family, id: FAMILY_ID[family], name: FAMILY_NAME[family], version: v, versionId: v, evidence, prettyName: line };
    const cm = /\(([^)]+)\)\s*$/.exec(rest);
    if (cm) info.codename = cm[1]!;
    return info;
  }
  return undefined;
}

const RPM_RELEASE_FILES = [
  'etc/oracle-release',
  'etc/rocky-release',
  'etc/almalinux-release',
  'etc/centos-release',
  'etc/fedora-release',
  'etc/redhat-release',
  'etc/system-release',
];

function fromFallbacks(get: (p: string) => string | undefined): OsInfo | undefined {
  const alpine = get('etc/alpine-release');
  if (alpine !== undefined) {
    const r = fromAlpineRelease(alpine, 'etc/alpine-release');
    if (r) return r;
  }
  // Ubuntu before Debian: Ubuntu also ships etc/debian_version (`bookworm/sid`).
  const lsb = get('etc/lsb-release');
  if (lsb !== undefined) {
    const r = fromLsbRelease(lsb, 'etc/lsb-release');
    if (r) return r;
  }
  const deb = get('etc/debian_version');
  if (deb !== undefined) {
    const r = fromDebianVersion(deb, 'etc/debian_version');
    if (r) return r;
  }
  for (const p of RPM_RELEASE_FILES) {
    const t = get(p);
    if (t === undefined) continue;
    const r = fromRpmRelease(t, p);
    if (r) return r;
  }
  return undefined;
}

/**
 * Detect the OS of a root filesystem from its release files (see {@link OS_PATHS}).
 *
 * Precedence: `etc/os-release`, then `usr/lib/os-release` when it names a known distribution
 * (completed from the family's own file when it lacks a version: Debian testing, Alpine
 * without VERSION_ID); otherwise alpine-release, lsb-release (Ubuntu), debian_version, then the
 * Red Hat family's release files. An os-release with an unknown ID is reported as family
 * `other` only when no fallback recognises the system. Undefined when nothing is recognised.
 */
export function detectOs(files: Map<string, Buffer>): OsInfo | undefined {
  const get = lookup(files);
  let unknown: OsInfo | undefined;
  for (const p of ['etc/os-release', 'usr/lib/os-release']) {
    const t = get(p);
    if (t === undefined) continue;
    const info = fromOsRelease(parseOsRelease(t), p);
    if (!info) continue;
    if (info.family === 'other') {
      unknown ??= info;
      continue;
    }
    if (info.version === '') complete(info, get);
    return info;
  }
  return fromFallbacks(get) ?? unknown;
}

/** Fill in a version os-release left out from the family's own release file. */
function complete(info: OsInfo, get: (p: string) => string | undefined): void {
  if (info.family === 'debian') {
    const t = get('etc/debian_version');
    const d = t === undefined ? undefined : fromDebianVersion(t, 'etc/debian_version');
    if (d && d.version) {
      info.version = d.version;
      if (!info.versionId) info.versionId = d.versionId;
      info.codename ??= d.codename;
    } else if (info.codename && DEBIAN_CODENAMES[info.codename]) {
      info.version = DEBIAN_CODENAMES[info.codename]!;
    }
  } else if (info.family === 'alpine') {
    const t = get('etc/alpine-release');
    const a = t === undefined ? undefined : fromAlpineRelease(t, 'etc/alpine-release');
    if (a) {
      info.version = a.version;
      if (!info.versionId) info.versionId = a.versionId;
    }
  } else if (info.family === 'ubuntu') {
    const t = get('etc/lsb-release');
    const u = t === undefined ? undefined : fromLsbRelease(t, 'etc/lsb-release');
    if (u) {
      info.version = u.version;
      if (!info.versionId) info.versionId = u.versionId;
      info.lts = u.lts;
    }
  }
}

/**
 * The OSV ecosystem string advisories for this OS are filed under, e.g. `Debian:12`,
 * `Ubuntu:22.04:LTS`, `Ubuntu:23.10`, `Alpine:v3.19`, `Rocky Linux:9`, `AlmaLinux:9`.
 * Undefined when OSV has no ecosystem for it (or the version is unknown: Debian sid, Alpine edge).
 */
export function advisoryEcosystem(os: OsInfo): string | undefined {
  switch (os.family) {
    case 'debian':
      return /^\d+(?:\.\d+)?$/.test(os.version) ? `Debian:${os.version}` : undefined;
    case 'ubuntu': {
      const m = /^(\d+\.\d+)/.exec(os.version);
      if (!m) return undefined;
      return os.lts ? `Ubuntu:${m[1]}:LTS` : `Ubuntu:${m[1]}`;
    }
    case 'alpine': {
      const b = alpineBranch(os.version);
      return b && b !== 'edge' ? `Alpine:${b}` : undefined;
    }
    case 'rocky':
    case 'almalinux': {
      const m = /^(\d+)/.exec(os.version);
      if (!m) return undefined;
      return `${os.family === 'rocky' ? 'Rocky Linux' : 'AlmaLinux'}:${m[1]}`;
    }
    case 'wolfi':
      return 'Wolfi';
    case 'chainguard':
      return 'Chainguard';
    case 'opensuse':
      if (os.id === 'opensuse-tumbleweed') return 'openSUSE:Tumbleweed';
      if (os.id === 'opensuse-leap' && os.version) return `openSUSE:Leap ${os.version}`;
      return undefined;
    default:
      return undefined;
  }
}
