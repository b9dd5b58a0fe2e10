import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { PlinthError } from '../util/errors.js';
import { decoder, sniffCodec } from '../layers/decompress.js';
import { readHead } from '../util/tarindex.js';

/**
 * A vendor's root filesystem (a tarball — plain, gzip, xz or zstd — or a directory) read into
 * entries with everything a rootfs layer must keep: type, mode (with setuid/setgid/sticky),
 * owner ids and names, mtime, symlink targets, hard links, device numbers, xattrs (from PAX
 * records). Hostile input is refused by name: `..` or absolute paths, hard links outside the tree
 * or to nothing, unknown entry types, an empty tree. Symlinks are kept as symlinks, never followed.
 */

export type EntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';

export interface RootfsEntry {
  /** Relative path, no leading `./` or `/`, no trailing `/`. */
  path: string;
  type: EntryType;
  /** Permission bits with setuid, setgid and sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target (as written) or hard link target (a path in the tree). */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string>;
  content?: Buffer;
}

export interface Rootfs {
  entries: Map<string, RootfsEntry>;
  /** Entries that replaced an earlier one of the same path (last wins, as tar extraction does). */
  duplicates: number;
  /** A tarball's sha256, of the bytes that were extracted. */
  sha256?: string;
  warnings: string[];
}

const MAX_ENTRIES = 2_000_000;
/** The tree is held in memory to be sorted: refuse more than this much file content. */
export const MAX_CONTENT_BYTES = Number(process.env.PLINTH_ROOTFS_MAX_BYTES ?? 6 * 1024 ** 3);

function paxInt(v: string | undefined): number | undefined {
  return v !== undefined && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
}

/** `./a/b/` → `a/b`; refuses absolute paths and `..`. '' is the root itself. */
export function normalisePath(p: string, what: string): string {
  if (p.includes('\u0000')) throw new PlinthError('ARCHIVE_INVALID', `${what} ${JSON.stringify(p)} contains a NUL byte`);
  if (p.startsWith('/')) throw new PlinthError('ARCHIVE_INVALID', `${what} ${JSON.stringify(p)} is absolute: a rootfs tarball holds relative paths (tar -C ROOT .)`);
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw new PlinthError('ARCHIVE_INVALID', `${what} ${JSON.stringify(p)} climbs out of the root with ".."`);
  return parts.join('/');
}

const TAR_TYPES: Record<string, EntryType> = {
  file: 'file', 'contiguous-file': 'file', directory: 'directory', symlink: 'symlink', link: 'link',
  'character-device': 'character-device', 'block-device': 'block-device', fifo: 'fifo',
};

/** Which compression a rootfs tarball uses, from its first bytes. */
export function sniffArchive(head: Buffer): 'gzip' | 'zstd' | 'xz' | 'bzip2' | 'none' {
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 3 && head.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  const c = sniffCodec(head);
  return c === 'none' ? 'none' : c;
}

/**
 * Decompress with xz-utils (Node has no xz; `xz` is on every Debian system). The process's exit
 * status is checked: a truncated or corrupt stream is an error, not a short tarball.
 */
function xzDecoder(input: Readable, file: string): Readable {
  const out = new PassThrough();
  const p = spawn('xz', ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  p.stdin.on('error', () => {});
  input.on('error', (e) => out.destroy(e));
  input.pipe(p.stdin);
  p.on('error', (e: NodeJS.ErrnoException) => out.destroy(new PlinthError('UNSUPPORTED', e.code === 'ENOENT' ? `${file} is xz-compressed and xz is not installed (apt-get install xz-utils)` : `xz: ${e.message}`)));
  p.stdout.pipe(out, { end: false });
  // The reader gave up (a refused entry): stop xz, or it blocks on a full pipe forever.
  out.on('close', () => {
    if (p.exitCode === null) p.kill();
    input.destroy();
  });
  p.on('close', (code) => {
    if (out.destroyed) return;
    if (code === 0) out.end();
    else out.destroy(new PlinthError('ARCHIVE_INVALID', `${file}: corrupt or truncated xz data (${err.trim() || `xz exited ${code}`})`));
  });
  return out;
}

/** Read a rootfs tarball (plain, gzip, xz, zstd). */
export async function readTarball(file: string): Promise<Rootfs> {
  const kind = sniffArchive(await readHead(file, 8));
  if (kind === 'bzip2') throw new PlinthError('UNSUPPORTED', `${file} is bzip2-compressed: recompress it (bzcat ${file} | gzip) or unpack it and import the directory`);
  // The bytes extracted are hashed on the way: the caller checks they are the bytes it verified.
  const hash = createHash('sha256');
  const raw = createReadStream(file);
  raw.on('data', (c) => hash.update(c as Buffer));
  let input: Readable;
  if (kind === 'xz') input = xzDecoder(raw, file);
  else {
    const d = decoder(kind);
    input = d ? raw.pipe(d) : raw;
    if (d) raw.on('error', (e) => d.destroy(e));
  }
  const fs: Rootfs = { entries: new Map(), duplicates: 0, warnings: [] };
  const extract = tar.extract();
  let count = 0;
  let total = 0;
  extract.on('entry', (h, stream, next) => {
    // The entry stream errors when the extraction is torn down: that error is the extraction's.
    stream.on('error', () => {});
    const fail = (e: unknown) => {
      stream.resume();
      extract.destroy(e as Error);
    };
    try {
      if (++count > MAX_ENTRIES) throw new PlinthError('ARCHIVE_INVALID', `${file} has more than ${MAX_ENTRIES} entries`);
      const type = TAR_TYPES[h.type ?? 'file'];
      if (!type) throw new PlinthError('ARCHIVE_INVALID', `${file}: entry ${JSON.stringify(h.name)} has tar type ${h.type}, which a root filesystem cannot hold`);
      const p = normalisePath(h.name, 'entry');
      const pax = (h.pax ?? {}) as Record<string, string | undefined>;
      const xattrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(pax)) if (k.startsWith('SCHILY.xattr.') && v !== undefined) xattrs[k] = v;
      const base: RootfsEntry = {
        path: p,
        type,
        mode: (h.mode ?? (type === 'directory' ? 0o755 : 0o644)) & 0o7777,
        // PAX records override the ustar fields (ids above 2097151, long names).
        uid: paxInt(pax.uid) ?? h.uid ?? 0,
        gid: paxInt(pax.gid) ?? h.gid ?? 0,
        uname: pax.uname ?? h.uname ?? '',
        gname: pax.gname ?? h.gname ?? '',
        mtime: Math.floor((h.mtime?.getTime() ?? 0) / 1000),
        ...(type === 'symlink' ? { linkname: h.linkname ?? '' } : {}),
        ...(type === 'link' ? { linkname: normalisePath(h.linkname ?? '', `hard link ${JSON.stringify(h.name)} target`) } : {}),
        ...(type === 'character-device' || type === 'block-device' ? { devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0 } : {}),
        ...(Object.keys(xattrs).length ? { xattrs } : {}),
      };
      if (p === '' && type !== 'directory') throw new PlinthError('ARCHIVE_INVALID', `${file}: the root itself is a ${type}`);
      if (type !== 'file') {
        stream.resume();
        stream.on('end', () => {
          put(fs, base);
          next();
        });
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        total += (c as Buffer).length;
        if (total > MAX_CONTENT_BYTES) return fail(new PlinthError('ARCHIVE_INVALID', `${file} holds more than ${MAX_CONTENT_BYTES} bytes of file content (a decompression bomb, or set PLINTH_ROOTFS_MAX_BYTES)`));
        chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        put(fs, { ...base, content: Buffer.concat(chunks) });
        next();
      });
    } catch (e) {
      fail(e);
    }
  });
  try {
    await pipeline(input, extract);
  } catch (e) {
    if (e instanceof PlinthError) throw e;
    throw new PlinthError('ARCHIVE_INVALID', `${file} is not a readable tar archive${kind === 'none' ? '' : ` (${kind})`}: ${(e as Error).message}`);
  }
  fs.sha256 = hash.digest('hex');
  return finish(fs, file);
}

function put(fs: Rootfs, e: RootfsEntry): void {
  if (e.path === '') {
    // The root directory's own entry (./): its mode and owner are not a layer's business.
    return;
  }
  if (fs.entries.has(e.path)) {
    fs.duplicates++;
    fs.entries.delete(e.path);
  }
  fs.entries.set(e.path, e);
}

/** Checks that need the whole tree: hard link targets, an empty tree, /etc/os-release. */
function finish(fs: Rootfs, where: string): Rootfs {
  if (fs.entries.size === 0) throw new PlinthError('ARCHIVE_INVALID', `${where} is an empty root filesystem`);
  for (const e of fs.entries.values()) {
    // A path under a file or a symlink: extracting it would fail, or write through the symlink.
    for (let slash = e.path.indexOf('/'); slash > 0; slash = e.path.indexOf('/', slash + 1)) {
      const parent = fs.entries.get(e.path.slice(0, slash));
      if (parent && parent.type !== 'directory') throw new PlinthError('ARCHIVE_INVALID', `${where}: ${e.path} lies under ${parent.path}, which is a ${parent.type === 'symlink' ? 'symlink (extraction would write through it)' : parent.type}, not a directory`);
    }
    if (e.type !== 'link') continue;
    let t = fs.entries.get(e.linkname!);
    for (let i = 0; t?.type === 'link' && i < 64; i++) t = fs.entries.get(t.linkname!);
    if (!t) throw new PlinthError('ARCHIVE_INVALID', `${where}: hard link ${e.path} points at ${e.linkname}, which is not in the archive`);
    if (t.type === 'link') throw new PlinthError('ARCHIVE_INVALID', `${where}: hard link ${e.path} is part of a loop of hard links`);
    if (t.type === 'directory') throw new PlinthError('ARCHIVE_INVALID', `${where}: hard link ${e.path} points at the directory ${t.path}`);
  }
  if (!fs.entries.has('etc/os-release') && !fs.entries.has('usr/lib/os-release')) {
    fs.warnings.push(`${where} has no /etc/os-release or /usr/lib/os-release: scanners (Plinth's included) will not know its OS`);
  }
  return fs;
}

/** Linux's dev_t: major and minor numbers. */
function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  const r = BigInt(rdev);
  return { devmajor: Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), devminor: Number((r & 0xffn) | ((r >> 12n) & ~0xffn)) };
}

/**
 * Read a directory tree (lstat: symlinks are not followed). Owners are numeric (no names: the
 * host's /etc/passwd says nothing about the image's); files with several links become hard links.
 * xattrs are not read from a directory (Node has no API for them); import a tarball made with
 * `tar --xattrs` to keep them.
 */
export async function readDirectory(root: string): Promise<Rootfs> {
  const fs: Rootfs = { entries: new Map(), duplicates: 0, warnings: [] };
  const inodes = new Map<string, string>();
  let total = 0;
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const name of names) {
      const r = rel ? `${rel}/${name}` : name;
      const abs = path.join(root, r);
      const st = await lstat(abs, { bigint: false });
      if (fs.entries.size >= MAX_ENTRIES) throw new PlinthError('ARCHIVE_INVALID', `${root} has more than ${MAX_ENTRIES} entries`);
      const base = { path: r, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, uname: '', gname: '', mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) {
        fs.entries.set(r, { ...base, type: 'directory' });
        await walk(r);
      } else if (st.isSymbolicLink()) fs.entries.set(r, { ...base, type: 'symlink', linkname: await readlink(abs) });
      else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first) fs.entries.set(r, { ...base, type: 'link', linkname: first });
        else {
          if (st.nlink > 1) inodes.set(key, r);
          const content = await readFile(abs);
          total += content.length;
          if (total > MAX_CONTENT_BYTES) throw new PlinthError('ARCHIVE_INVALID', `${root} holds more than ${MAX_CONTENT_BYTES} bytes of file content (set PLINTH_ROOTFS_MAX_BYTES)`);
          fs.entries.set(r, { ...base, type: 'file', content });
        }
      } else if (st.isCharacterDevice() || st.isBlockDevice()) fs.entries.set(r, { ...base, type: st.isCharacterDevice() ? 'character-device' : 'block-device', ...devNumbers(st.rdev) });
      else if (st.isFIFO()) fs.entries.set(r, { ...base, type: 'fifo' });
      else fs.warnings.push(`${abs}: a socket is not kept in an image`);
    }
  };
  await walk('');
  return finish(fs, root);
}

/** A tarball or a directory. */
export async function readRootfs(input: string): Promise<Rootfs> {
  let st;
  try {
    st = await lstat(input);
  } catch (e) {
    throw new PlinthError('IO', `cannot read rootfs ${input}: ${(e as Error).message}`);
  }
  if (st.isDirectory()) return readDirectory(input);
  if (!st.isFile()) throw new PlinthError('USAGE', `rootfs ${input} is neither a tarball nor a directory`);
  return readTarball(input);
}
