import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PlinthError, describeError } from '../util/errors.js';
import { digestOf } from '../oci/digest.js';
import { formatPlatform, parsePlatform, type Descriptor, type Platform } from '../oci/types.js';
import { MemorySource } from '../source/memory.js';
import { VERSION } from '../version.js';
import { readRootfs } from './rootfs.js';
import { buildLayer, newestMtime } from './layer.js';
import { OS_PATHS, detectOs } from '../packages/os.js';
import type { Rootfs } from './rootfs.js';

/**
 * `plinth golden import`: a vendor rootfs → a reproducible single-layer image (or an index of
 * several platforms), after its bytes are verified (a sha256, the vendor's SHA256SUMS with its
 * detached GPG signature checked by gpgv, or a Sigstore bundle). The image records how to rebuild
 * it: the input's URL and sha256, the epoch, Plinth's version.
 */

const execFileP = promisify(execFile);

export interface RootfsInput {
  platform: Platform;
  file: string;
}

export interface VerifyInput {
  sha256?: string;
  checksums?: string;
  checksumsSig?: string;
  keyring?: string;
  /** A Sigstore bundle over the input, verified by the caller's verify-blob (see cli). */
  verifyBundle?: (file: string, sha256: string) => Promise<string>;
}

export interface ImportOptions {
  name: string;
  version: string;
  sourceUrl?: string;
  labels?: Record<string, string>;
  /** Seconds; default: the newest mtime in the input (the newest of all inputs for an index). */
  sourceDateEpoch?: number;
  verify?: VerifyInput;
  /** Change the tree before it is packed (library use: a patched variant of a vendor tree). */
  mutate?: (fs: Rootfs) => void;
  onProgress?: (msg: string) => void;
}

export interface ImportedPlatform {
  platform: string;
  input: { file: string; sha256: string; size: number; verified: string[] };
  entries: number;
  duplicates: number;
  layer: { digest: string; diffId: string; size: number; compressedSize: number };
  manifest: string;
  warnings: string[];
}

export interface ImportResult {
  source: MemorySource;
  digest: string;
  mediaType: string;
  epoch: number;
  created: string;
  platforms: ImportedPlatform[];
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Check `file` against what the user gave to trust it. Returns what was checked (for the record). */
export async function verifyInputFile(file: string, sha: string, v: VerifyInput): Promise<string[]> {
  const checked: string[] = [];
  if (v.sha256 !== undefined) {
    const want = v.sha256.toLowerCase().replace(/^sha256:/, '');
    if (!/^[a-f0-9]{64}$/.test(want)) throw new PlinthError('USAGE', `--sha256 must be 64 hex digits, got "${v.sha256}"`);
    if (want !== sha) throw new PlinthError('DIGEST_MISMATCH', `${file} has sha256 ${sha}, not the expected ${want}: refusing it`);
    checked.push('sha256 given on the command line');
  }
  if (v.checksumsSig && !v.checksums) throw new PlinthError('USAGE', '--checksums-sig needs --checksums');
  if (v.checksumsSig && !v.keyring) throw new PlinthError('USAGE', '--checksums-sig needs --keyring (the vendor\'s public keys, a .gpg keyring)');
  if (v.checksums) {
    if (v.checksumsSig) {
      // Never skip a signature that was given: gpgv's verdict decides.
      try {
        await execFileP('gpgv', ['--keyring', path.resolve(v.keyring!), path.resolve(v.checksumsSig), path.resolve(v.checksums)], { timeout: 60_000 });
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { stderr?: string };
        if (err.code === 'ENOENT') throw new PlinthError('UNSUPPORTED', 'gpgv is not installed (apt-get install gpgv): the checksum file\'s signature cannot be checked');
        throw new PlinthError('SIGNATURE_INVALID', `${v.checksums}: its signature ${v.checksumsSig} does not verify with ${v.keyring}: ${(err.stderr ?? describeError(e)).trim().split('\n').slice(-2).join(' ')}`);
      }
      checked.push(`${path.basename(v.checksums)} signature (gpgv, ${path.basename(v.keyring!)})`);
    }
    const text = await readFile(v.checksums, 'utf8').catch((e: Error) => {
      throw new PlinthError('IO', `cannot read checksums ${v.checksums}: ${e.message}`);
    });
    const base = path.basename(file);
    let listed: string | undefined;
    for (const line of text.split('\n')) {
      // sha256sum's format: HEX, two spaces (or space and *), the name (maybe with ./).
      const m = /^([a-fA-F0-9]{64}) [ *](?:\.\/)?(.+)$/.exec(line.trim());
      if (m && (m[2] === base || path.basename(m[2]!) === base)) listed = m[1]!.toLowerCase();
    }
    if (!listed) throw new PlinthError('DIGEST_MISMATCH', `${v.checksums} lists no sha256 for ${base}`);
    if (listed !== sha) throw new PlinthError('DIGEST_MISMATCH', `${file} has sha256 ${sha}, but ${v.checksums} lists ${listed}: refusing it`);
    checked.push(`listed in ${path.basename(v.checksums)}`);
  }
  if (v.verifyBundle) checked.push(await v.verifyBundle(file, sha));
  return checked;
}

const ANN = 'org.opencontainers.image.';

/** The release the tree says it is (os-release and friends), for the `dev.plinth.golden.os` label. */
function osOfTree(fs: Rootfs): string | null {
  const files = new Map<string, Buffer>();
  for (const p of OS_PATHS) {
    let e = fs.entries.get(p);
    // Debian's /etc/os-release is a symlink to ../usr/lib/os-release.
    for (let i = 0; e?.type === 'symlink' && i < 4; i++) {
      const t = e.linkname!;
      e = fs.entries.get(path.posix.normalize(t.startsWith('/') ? t : path.posix.join(path.posix.dirname(e.path), t)).replace(/^\/+/, ''));
    }
    if (e?.type === 'file' && e.content) files.set(p, e.content);
  }
  const os = detectOs(files);
  return os ? `${os.id} ${os.version}` : null;
}

/** Import one or several platform rootfs inputs. Nothing is written anywhere: the result is a source to copy. */
export async function importRootfs(inputs: RootfsInput[], o: ImportOptions): Promise<ImportResult> {
  if (!inputs.length) throw new PlinthError('USAGE', 'no rootfs given');
  const seen = new Set<string>();
  for (const i of inputs) {
    const p = formatPlatform(i.platform);
    if (seen.has(p)) throw new PlinthError('USAGE', `platform ${p} is given twice`);
    seen.add(p);
  }
  const read = [];
  for (const i of inputs) {
    const st = await stat(i.file).catch((e: Error) => {
      throw new PlinthError('IO', `cannot read rootfs ${i.file}: ${e.message}`);
    });
    let sha = '';
    let verified: string[] = [];
    if (st.isFile()) {
      o.onProgress?.(`verifying ${i.file}`);
      sha = await sha256File(i.file);
      verified = await verifyInputFile(i.file, sha, o.verify ?? {});
    } else if (o.verify?.sha256 || o.verify?.checksums || o.verify?.verifyBundle) {
      throw new PlinthError('USAGE', `${i.file} is a directory: --sha256, --checksums and --bundle verify a tarball`);
    }
    o.onProgress?.(`reading ${i.file}`);
    const fs = await readRootfs(i.file);
    if (sha && fs.sha256 && fs.sha256 !== sha) throw new PlinthError('DIGEST_MISMATCH', `${i.file} changed while it was being imported (sha256 ${sha} when verified, ${fs.sha256} when read): refusing it`);
    o.mutate?.(fs);
    read.push({ input: i, fs, sha, size: st.isFile() ? st.size : 0, verified });
  }
  const epoch = o.sourceDateEpoch ?? Math.max(...read.map((r) => newestMtime(r.fs)));
  if (!Number.isInteger(epoch) || epoch < 0) throw new PlinthError('USAGE', `SOURCE_DATE_EPOCH must be a non-negative integer, got ${epoch}`);
  const created = new Date(epoch * 1000).toISOString().replace('.000Z', 'Z');
  const src = new MemorySource({ descriptor: { mediaType: '', digest: '', size: 0 }, bytes: Buffer.alloc(0) }, `golden ${o.name}:${o.version}`);
  const platforms: ImportedPlatform[] = [];
  const manifests: Descriptor[] = [];
  for (const r of read) {
    const plat = formatPlatform(r.input.platform);
    o.onProgress?.(`building the ${plat} layer (${r.fs.entries.size} entries)`);
    const layer = await buildLayer(r.fs, epoch);
    src.blobs.set(layer.digest, layer.blob);
    const labels: Record<string, string> = {
      [`${ANN}created`]: created,
      [`${ANN}version`]: o.version,
      [`${ANN}title`]: o.name.split('/').pop()!,
      [`${ANN}ref.name`]: o.version,
      ...(o.sourceUrl ? { [`${ANN}source`]: o.sourceUrl } : {}),
      'dev.plinth.golden.input.sha256': r.sha || 'directory',
      ...(o.sourceUrl ? { 'dev.plinth.golden.input.url': o.sourceUrl } : {}),
      'dev.plinth.golden.input.name': path.basename(r.input.file),
      'dev.plinth.golden.source-date-epoch': String(epoch),
      'dev.plinth.golden.plinth': VERSION,
      ...(osOfTree(r.fs) ? { 'dev.plinth.golden.os': osOfTree(r.fs)! } : {}),
      ...(o.labels ?? {}),
    };
    const config = {
      created,
      architecture: r.input.platform.architecture,
      os: r.input.platform.os,
      ...(r.input.platform.variant ? { variant: r.input.platform.variant } : {}),
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], Labels: labels },
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: `plinth golden import ${path.basename(r.input.file)}${r.sha ? ` (sha256:${r.sha})` : ''} --name ${o.name} --version ${o.version}`, comment: `Plinth ${VERSION}; SOURCE_DATE_EPOCH=${epoch}` }],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDesc: Descriptor = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: src.add(configBytes), size: configBytes.length };
    const annotations = { [`${ANN}created`]: created, [`${ANN}version`]: o.version, ...(o.sourceUrl ? { [`${ANN}source`]: o.sourceUrl } : {}) };
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.blob.length }], annotations };
    const mbytes = Buffer.from(JSON.stringify(manifest));
    const mdesc: Descriptor = { mediaType: manifest.mediaType, digest: src.add(mbytes), size: mbytes.length };
    manifests.push({ ...mdesc, platform: { ...r.input.platform } });
    src.root = { descriptor: mdesc, bytes: mbytes };
    platforms.push({
      platform: plat,
      input: { file: r.input.file, sha256: r.sha, size: r.size, verified: r.verified },
      entries: layer.entries,
      duplicates: r.fs.duplicates,
      layer: { digest: layer.digest, diffId: layer.diffId, size: layer.size, compressedSize: layer.blob.length },
      manifest: mdesc.digest,
      warnings: r.fs.warnings,
    });
  }
  if (manifests.length > 1) {
    const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests, annotations: { [`${ANN}created`]: created, [`${ANN}version`]: o.version } };
    const ibytes = Buffer.from(JSON.stringify(index));
    src.root = { descriptor: { mediaType: index.mediaType, digest: digestOf(ibytes), size: ibytes.length }, bytes: ibytes };
    src.add(ibytes);
  }
  return { source: src, digest: src.root.descriptor.digest, mediaType: src.root.descriptor.mediaType, epoch, created, platforms };
}

/** `--rootfs linux/arm64=FILE` or a bare FILE with the default platform. */
export function parseRootfsArg(s: string, defaultPlatform: Platform): RootfsInput {
  const eq = s.indexOf('=');
  if (eq > 0 && /^[a-z0-9]+\/[a-z0-9_]+/.test(s.slice(0, eq))) return { platform: parsePlatform(s.slice(0, eq)), file: s.slice(eq + 1) };
  return { platform: defaultPlatform, file: s };
}
