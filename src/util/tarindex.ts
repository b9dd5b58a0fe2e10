import { open, type FileHandle } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { PlinthError } from './errors.js';
import { LimitStream } from '../oci/digest.js';

/**
 * Random access to the members of a tar file (docker-archive, oci-archive): one pass over the
 * headers records where each regular file's bytes start, so members can be streamed later with a
 * ranged read — no unpacking to disk. Handles ustar, pax (path/size records) and GNU long names.
 */
export interface TarMember {
  name: string;
  offset: number;
  size: number;
}

export interface TarFile {
  readonly path: string;
  readonly members: Map<string, TarMember>;
  /** Stream one member's bytes. */
  open(name: string): Readable;
  read(name: string, limit?: number): Promise<Buffer>;
  has(name: string): boolean;
  close(): Promise<void>;
}

const BLOCK = 512;

function cstr(buf: Buffer, start: number, len: number): string {
  const b = buf.subarray(start, start + len);
  const z = b.indexOf(0);
  return (z >= 0 ? b.subarray(0, z) : b).toString('utf8');
}

function parseOctal(buf: Buffer, start: number, len: number): number {
  const b = buf.subarray(start, start + len);
  if (b[0]! & 0x80) {
    // GNU base-256 for large sizes.
    let v = 0;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = cstr(buf, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return NaN;
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = parseOctal(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === stored;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0 || i + len > data.length) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}

export function normaliseMemberName(name: string): string {
  let n = name.replace(/\\/g, '/');
  while (n.startsWith('./')) n = n.slice(2);
  n = n.replace(/^\/+/, '');
  return n;
}

async function indexTar(fh: FileHandle, file: string, what: string): Promise<Map<string, TarMember>> {
  const { size: fileSize } = await fh.stat();
  const members = new Map<string, TarMember>();
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let longName: string | undefined;
  let pax: Record<string, string> = {};
  let entries = 0;
  for (;;) {
    if (pos + BLOCK > fileSize) {
      if (entries === 0) throw new PlinthError('ARCHIVE_INVALID', `${file} is not a tar archive (${what}): it is too short`);
      // Missing end-of-archive blocks: tolerate (many writers omit them), but not a cut member.
      break;
    }
    const { bytesRead } = await fh.read(header, 0, BLOCK, pos);
    if (bytesRead < BLOCK) break;
    if (header.every((b) => b === 0)) break;
    if (!checksumOk(header)) {
      throw new PlinthError('ARCHIVE_INVALID', entries === 0 ? `${file} is not a tar archive (${what})` : `${file} is corrupt: bad tar header checksum at byte ${pos}`);
    }
    entries++;
    let size = parseOctal(header, 124, 12);
    if (!Number.isFinite(size) || size < 0) throw new PlinthError('ARCHIVE_INVALID', `${file} is corrupt: bad size field in tar header at byte ${pos}`);
    const type = String.fromCharCode(header[156] || 48);
    // A pax size record (members of 8 GiB and more) overrides the ustar field, for the data too.
    if (pax.size !== undefined && type !== 'x' && type !== 'g' && type !== 'L') {
      if (!/^\d{1,15}$/.test(pax.size)) throw new PlinthError('ARCHIVE_INVALID', `${file} is corrupt: invalid pax size "${pax.size.slice(0, 20)}" at byte ${pos}`);
      size = Number(pax.size);
    }
    const dataStart = pos + BLOCK;
    const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (dataStart + size > fileSize) {
      throw new PlinthError('ARCHIVE_INVALID', `${file} is truncated: member "${cstr(header, 0, 100)}" needs ${size} bytes but the file ends first`);
    }
    if (type === 'x' || type === 'L') {
      if (size > 1 << 20) throw new PlinthError('ARCHIVE_INVALID', `${file}: oversized tar extended header at byte ${pos}`);
      const data = Buffer.alloc(size);
      await fh.read(data, 0, size, dataStart);
      if (type === 'x') pax = parsePax(data);
      else longName = cstr(data, 0, size);
      pos = next;
      continue;
    }
    if (type === 'g') {
      pos = next;
      continue;
    }
    let name = longName ?? pax.path;
    if (name === undefined) {
      const magic = cstr(header, 257, 6);
      const prefix = magic.startsWith('ustar') ? cstr(header, 345, 155) : '';
      name = prefix ? `${prefix}/${cstr(header, 0, 100)}` : cstr(header, 0, 100);
    }
    const realSize = size;
    longName = undefined;
    pax = {};
    if (type === '0' || type === '\0' || type === '7') {
      const n = normaliseMemberName(name);
      members.set(n, { name: n, offset: dataStart, size: realSize });
    }
    pos = next;
  }
  return members;
}

/** The first `n` bytes of a file (fewer when it is shorter): enough to recognise its format. */
export async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function isGzip(file: string): Promise<boolean> {
  const b = await readHead(file, 2);
  return b.length === 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Open a tar (or gzip-compressed tar, decompressed once to a temporary file) for random access. */
export async function openTar(file: string, what: string): Promise<TarFile> {
  let real = file;
  let tmpDir: string | undefined;
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PlinthError('IO', code === 'ENOENT' ? `${what} ${file} does not exist` : `cannot open ${what} ${file}: ${(e as Error).message}`);
  }
  await fh.close();
  if (await isGzip(file)) {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'plinth-archive-'));
    real = path.join(tmpDir, 'archive.tar');
    try {
      const max = Number(process.env.PLINTH_MAX_ARCHIVE_BYTES ?? 64 * 1024 ** 3);
      await pipeline(createReadStream(file), createGunzip(), new LimitStream(max, (m) => `${file} decompresses to more than ${m} bytes (set PLINTH_MAX_ARCHIVE_BYTES to allow more)`, 'ARCHIVE_INVALID'), createWriteStream(real));
    } catch (e) {
      await rm(tmpDir, { recursive: true, force: true });
      if (e instanceof PlinthError) throw e;
      throw new PlinthError('ARCHIVE_INVALID', `${file} is a corrupt or truncated gzip file: ${(e as Error).message}`);
    }
  }
  fh = await open(real, 'r');
  let members: Map<string, TarMember>;
  try {
    members = await indexTar(fh, file, what);
  } catch (e) {
    await fh.close();
    if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    throw e;
  }
  const openMember = (name: string): Readable => {
    const m = members.get(normaliseMemberName(name));
    if (!m) throw new PlinthError('ARCHIVE_INVALID', `${file} has no member "${name}"`);
    if (m.size === 0) return Readable.from([]);
    return createReadStream(real, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
  };
  return {
    path: file,
    members,
    has: (name) => members.has(normaliseMemberName(name)),
    open: openMember,
    read: async (name, limit = 64 * 1024 * 1024) => {
      const m = members.get(normaliseMemberName(name));
      if (!m) throw new PlinthError('ARCHIVE_INVALID', `${file} has no member "${name}"`);
      if (m.size > limit) throw new PlinthError('ARCHIVE_INVALID', `${file}: member "${name}" is ${m.size} bytes, more than the ${limit}-byte limit`);
      const buf = Buffer.alloc(m.size);
      await fh.read(buf, 0, m.size, m.offset);
      return buf;
    },
    close: async () => {
      await fh.close().catch(() => {});
      if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
    },
  };
}
