import { Transform, type TransformCallback, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { PlinthError } from '../util/errors.js';

/**
 * A streaming zstd decoder (Node 20's zlib has none): fzstd, pure JS. fzstd decodes whatever it
 * is given at once, and a few bytes of RLE blocks can expand to megabytes, so input is fed in
 * small slices and the decoder waits whenever the reader is behind (a zstd bomb cannot fill memory).
 */
class ZstdDecompress extends Transform {
  private readonly d: Decompress;
  private full = false;
  private waiting: (() => void) | undefined;
  private static readonly SLICE = 1024;
  constructor() {
    super({ readableHighWaterMark: 1 << 20 });
    this.d = new Decompress((chunk) => {
      if (!this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) this.full = true;
    });
  }
  override _read(size: number): void {
    const w = this.waiting;
    this.waiting = undefined;
    this.full = false;
    w?.();
    super._read(size);
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    void this.feed(chunk).then(() => cb(), (e: unknown) => cb(new PlinthError('ARCHIVE_INVALID', `corrupt zstd data: ${(e as Error).message}`)));
  }
  private async feed(chunk: Buffer): Promise<void> {
    for (let off = 0; off < chunk.length; off += ZstdDecompress.SLICE) {
      const end = Math.min(off + ZstdDecompress.SLICE, chunk.length);
      this.d.push(new Uint8Array(chunk.buffer, chunk.byteOffset + off, end - off));
      if (this.full) await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
  override _flush(cb: TransformCallback): void {
    try {
      this.d.push(new Uint8Array(0), true);
      cb();
    } catch (e) {
      cb(new PlinthError('ARCHIVE_INVALID', `corrupt or truncated zstd data: ${(e as Error).message}`));
    }
  }
}

export type Codec = 'gzip' | 'zstd' | 'none';

/** Recognise a codec from a layer's first bytes (gzip 1f 8b, zstd 28 b5 2f fd, else none). */
export function sniffCodec(head: Buffer): Codec {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

export function decoder(codec: Codec): Transform | null {
  if (codec === 'gzip') return createGunzip({ chunkSize: 256 * 1024 });
  if (codec === 'zstd') return new ZstdDecompress();
  return null;
}

/** Read the first bytes of a stream and drop the rest (for sniffing a codec). */
export async function readHead(input: Readable, n = 4): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const c of input as AsyncIterable<Buffer>) {
      chunks.push(c);
      got += c.length;
      if (got >= n) break;
    }
  } finally {
    input.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}
