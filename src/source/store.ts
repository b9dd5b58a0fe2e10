import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { PlinthError } from '../util/errors.js';
import type { TarFile } from '../util/tarindex.js';

/** Read-only file access to an OCI layout: a directory, or the members of a tar (oci-archive). */
export interface FileStore {
  readonly where: string;
  exists(rel: string): Promise<boolean>;
  size(rel: string): Promise<number | undefined>;
  read(rel: string, limit: number): Promise<Buffer>;
  open(rel: string): Readable;
  close(): Promise<void>;
}

function safeRel(rel: string): string {
  const n = path.posix.normalize(rel);
  if (n.startsWith('../') || n === '..' || path.posix.isAbsolute(n)) {
    throw new PlinthError('LAYOUT_INVALID', `refusing path outside the layout: ${rel}`);
  }
  return n;
}

export class DirStore implements FileStore {
  constructor(readonly where: string) {}
  private p(rel: string): string {
    return path.join(this.where, safeRel(rel));
  }
  async exists(rel: string): Promise<boolean> {
    return (await this.size(rel)) !== undefined;
  }
  async size(rel: string): Promise<number | undefined> {
    try {
      const s = await stat(this.p(rel));
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  }
  async read(rel: string, limit: number): Promise<Buffer> {
    const fh = await open(this.p(rel), 'r').catch((e: NodeJS.ErrnoException) => {
      throw new PlinthError(e.code === 'ENOENT' ? 'LAYOUT_INVALID' : 'IO', e.code === 'ENOENT' ? `${this.where} has no ${rel}` : `cannot read ${this.p(rel)}: ${e.message}`);
    });
    try {
      const { size } = await fh.stat();
      if (size > limit) throw new PlinthError('MANIFEST_TOO_LARGE', `${this.p(rel)} is ${size} bytes, more than the ${limit}-byte limit`);
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }
  open(rel: string): Readable {
    return createReadStream(this.p(rel), { highWaterMark: 1 << 20 });
  }
  async close(): Promise<void> {}
}

export class TarStore implements FileStore {
  constructor(private readonly tar: TarFile) {}
  get where(): string {
    return this.tar.path;
  }
  async exists(rel: string): Promise<boolean> {
    return this.tar.has(safeRel(rel));
  }
  async size(rel: string): Promise<number | undefined> {
    return this.tar.members.get(safeRel(rel))?.size;
  }
  async read(rel: string, limit: number): Promise<Buffer> {
    if (!this.tar.has(safeRel(rel))) throw new PlinthError('ARCHIVE_INVALID', `${this.tar.path} has no ${rel}`);
    return this.tar.read(safeRel(rel), limit);
  }
  open(rel: string): Readable {
    return this.tar.open(safeRel(rel));
  }
  async close(): Promise<void> {
    await this.tar.close();
  }
}
