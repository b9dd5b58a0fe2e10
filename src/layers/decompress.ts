import { Transform, type TransformCallback, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { PlinthError } from '../util/errors.js';

/** A streaming zstd decoder (Node 20's zlib has none): fzstd, pure JS. */
class ZstdDecompress extends Transform {
  private readonly d: Decompress;
  constructor() {
    super();
    this.d = new Decompress((chunk) => {
      this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    try {
      this.d.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      cb();
    } catch (e) {
      cb(new PlinthError('ARCHIVE_INVALID', `corrupt zstd data: ${(e as Error).message}`));
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

/**
 * Decompress a layer stream, choosing the codec from the first bytes (gzip 1f 8b, zstd
 * 28 b5 2f fd, else a plain tar) — media types lie often enough (docker-archive layers).
 */
export function autoDecompress(input: Readable): Readable {
  let decided = false;
  let inner: Transform | undefined;
  const out = new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (!decided) {
        decided = true;
        if (chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) inner = createGunzip({ chunkSize: 256 * 1024 });
        else if (chunk.length >= 4 && chunk.readUInt32LE(0) === 0xfd2fb528) inner = new ZstdDecompress();
        if (inner) {
          inner.on('data', (d: Buffer) => out.push(d));
          inner.on('error', (e) => out.destroy(e.message.startsWith('corrupt') ? e : new PlinthError('ARCHIVE_INVALID', `corrupt compressed layer: ${e.message}`)));
        }
      }
      if (inner) {
        if (!inner.write(chunk)) inner.once('drain', () => cb());
        else cb();
      } else cb(null, chunk);
    },
    flush(cb) {
      if (!inner) return cb();
      inner.once('end', () => cb());
      inner.once('error', () => {});
      inner.end();
    },
  });
  input.on('error', (e) => out.destroy(e));
  return input.pipe(out);
}
