import { createHash } from 'node:crypto';
import { createGzip, constants as zc } from 'node:zlib';
import tar from 'tar-stream';
import type { Rootfs, RootfsEntry } from './rootfs.js';

/**
 * A rootfs as one reproducible layer: the same entries give the same bytes on any run and any
 * machine with the same zlib. Entries in byte order of their UTF-8 paths (a parent before its
 * children), mtimes clamped to the epoch, owners, modes, device numbers, symlink targets and xattrs
 * exactly as read, each hard-link group written as its first path (in that order) plus links to
 * it, PAX records only where ustar cannot hold a field (their headers are named `PaxHeader` with
 * the entry's own mtime), and gzip level 6 with no name and mtime 0 in its header.
 */

export interface BuiltLayer {
  /** The gzip-compressed layer. */
  blob: Buffer;
  digest: string;
  diffId: string;
  /** Uncompressed tar size. */
  size: number;
  entries: number;
}

/** Hard links pointed at the first path of their group (byte order), with that path holding the content. */
function orderedEntries(fs: Rootfs): RootfsEntry[] {
  const byPath = fs.entries;
  // Follow links to the file they finally name.
  const fileOf = (e: RootfsEntry): RootfsEntry => {
    let cur = e;
    for (let i = 0; cur.type === 'link' && i < 64; i++) cur = byPath.get(cur.linkname!) ?? cur;
    return cur;
  };
  const groups = new Map<string, string[]>();
  for (const e of byPath.values()) {
    if (e.type !== 'link') continue;
    const f = fileOf(e);
    const g = groups.get(f.path) ?? [f.path];
    g.push(e.path);
    groups.set(f.path, g);
  }
  const out = new Map<string, RootfsEntry>();
  for (const e of byPath.values()) out.set(e.path, e);
  for (const [file, members] of groups) {
    members.sort(cmp);
    const first = members[0]!;
    const src = byPath.get(file)!;
    for (const m of members) {
      const own = byPath.get(m)!;
      out.set(m, m === first ? { ...src, path: first } : { ...own, type: 'link', linkname: first, mode: src.mode, uid: src.uid, gid: src.gid, uname: src.uname, gname: src.gname, mtime: src.mtime } as RootfsEntry);
    }
  }
  return [...out.values()].sort((a, b) => cmp(a.path, b.path));
}

function cmp(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The newest mtime in the tree (the default SOURCE_DATE_EPOCH). */
export function newestMtime(fs: Rootfs): number {
  let max = 0;
  for (const e of fs.entries.values()) if (e.mtime > max) max = e.mtime;
  return max;
}

export async function buildLayer(fs: Rootfs, epoch: number): Promise<BuiltLayer> {
  const pack = tar.pack();
  const gzip = createGzip({ level: 6, memLevel: 8, strategy: zc.Z_DEFAULT_STRATEGY, chunkSize: 256 * 1024 });
  const rawHash = createHash('sha256');
  const gzHash = createHash('sha256');
  const out: Buffer[] = [];
  let rawSize = 0;
  pack.on('data', (d: unknown) => {
    const c = d as Buffer;
    rawHash.update(c);
    rawSize += c.length;
  });
  pack.pipe(gzip);
  gzip.on('data', (c: Buffer) => {
    gzHash.update(c);
    out.push(c);
  });
  const done = new Promise<void>((resolve, reject) => {
    gzip.on('end', resolve);
    gzip.on('error', reject);
    pack.on('error', reject);
  });
  const entries = orderedEntries(fs);
  for (const e of entries) {
    const mtime = new Date(Math.min(e.mtime, epoch) * 1000);
    const pax = e.xattrs && Object.keys(e.xattrs).length ? Object.fromEntries(Object.entries(e.xattrs).sort(([a], [b]) => cmp(a, b))) : undefined;
    // ustar holds ids up to 0o7777777; larger ones go in PAX records (as GNU tar writes them).
    const big = e.uid > 0o7777777 || e.gid > 0o7777777;
    const paxAll = { ...(pax ?? {}), ...(big ? { uid: String(e.uid), gid: String(e.gid) } : {}) };
    const header = {
      name: e.type === 'directory' ? `${e.path}/` : e.path,
      // tar-stream replaces a falsy mode with 0644/0755; a bit above the permission mask is
      // masked off when encoding, so mode 0 (RHEL's /etc/shadow) stays 0.
      mode: e.mode === 0 ? 0o100000 : e.mode,
      uid: big ? 0 : e.uid,
      gid: big ? 0 : e.gid,
      uname: e.uname,
      gname: e.gname,
      mtime,
      type: e.type,
      size: e.type === 'file' ? e.content!.length : 0,
      ...(e.linkname !== undefined ? { linkname: e.linkname as string } : {}),
      ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
      ...(Object.keys(paxAll).length ? { pax: paxAll } : {}),
    } as tar.Header;
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (e.type === 'file') pack.entry(header, e.content!, cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  const blob = Buffer.concat(out);
  return { blob, digest: `sha256:${gzHash.digest('hex')}`, diffId: `sha256:${rawHash.digest('hex')}`, size: rawSize, entries: entries.length };
}
