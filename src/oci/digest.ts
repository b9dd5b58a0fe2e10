import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { PlinthError } from '../util/errors.js';

/** Algorithms Plinth can compute and verify (go-digest's registered set). */
export const ALGORITHMS: Record<string, { hexLength: number; node: string }> = {
  sha256: { hexLength: 64, node: 'sha256' },
  sha384: { hexLength: 96, node: 'sha384' },
  sha512: { hexLength: 128, node: 'sha512' },
};

/** The OCI descriptor digest grammar (image-spec descriptor.md). */
export const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** go-digest's DigestRegexp (used to tell "unsupported" from "malformed"). */
const GO_DIGEST_REGEXP = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export type DigestErrorKind = 'ErrDigestInvalidFormat' | 'ErrDigestInvalidLength' | 'ErrDigestUnsupported';

export class DigestError extends PlinthError {
  readonly kind: DigestErrorKind;
  constructor(kind: DigestErrorKind, message: string) {
    super('DIGEST_INVALID', message, { kind });
    this.kind = kind;
  }
}

export interface ParsedDigest {
  algorithm: string;
  hex: string;
  /** `algorithm:hex` */
  digest: string;
}

/**
 * Validate a digest string exactly as go-digest's Digest.Validate does; returns the parts.
 * Throws DigestError with the go-digest error kind.
 */
export function parseDigest(s: string): ParsedDigest {
  const i = s.indexOf(':');
  if (i <= 0 || i + 1 === s.length) {
    throw new DigestError('ErrDigestInvalidFormat', `invalid digest format: "${truncate(s)}" (expected algorithm:hex, e.g. sha256:…)`);
  }
  const algorithm = s.slice(0, i);
  const encoded = s.slice(i + 1);
  const alg = ALGORITHMS[algorithm];
  if (!alg) {
    if (!GO_DIGEST_REGEXP.test(s)) {
      throw new DigestError('ErrDigestInvalidFormat', `invalid digest format: "${truncate(s)}"`);
    }
    throw new DigestError('ErrDigestUnsupported', `unsupported digest algorithm "${truncate(algorithm)}" (supported: sha256, sha384, sha512)`);
  }
  if (encoded.length !== alg.hexLength) {
    throw new DigestError('ErrDigestInvalidLength', `invalid ${algorithm} digest length: ${encoded.length} hex characters, expected ${alg.hexLength}`);
  }
  if (!/^[a-f0-9]+$/.test(encoded)) {
    throw new DigestError('ErrDigestInvalidFormat', `invalid digest format: "${truncate(s)}" (hex must be lowercase 0-9a-f)`);
  }
  return { algorithm, hex: encoded, digest: s };
}

/** A digest cut for people: the algorithm and 12 hex digits, `sha256:9f86d081884c…`. */
export function shortDigest(d: string | null | undefined): string {
  if (!d) return '';
  const i = d.indexOf(':');
  return i > 0 ? `${d.slice(0, i + 13)}…` : d;
}

export function isDigest(s: string): boolean {
  try {
    parseDigest(s);
    return true;
  } catch {
    return false;
  }
}

export function hasher(algorithm = 'sha256'): Hash {
  const alg = ALGORITHMS[algorithm];
  if (!alg) throw new DigestError('ErrDigestUnsupported', `unsupported digest algorithm "${algorithm}"`);
  return createHash(alg.node);
}

/** Digest of an in-memory buffer, `sha256:…` by default. */
export function digestOf(data: Uint8Array | string, algorithm = 'sha256'): string {
  return `${algorithm}:${hasher(algorithm).update(data).digest('hex')}`;
}

function truncate(s: string, n = 80): string {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

/**
 * A pass-through stream that checks the bytes flowing through it against an expected digest and
 * (optionally) size. It fails the stream with DIGEST_MISMATCH / SIZE_MISMATCH instead of letting
 * unverified bytes end cleanly, so a consumer that reads to the end has verified content.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash;
  private readonly expected: ParsedDigest;
  private readonly expectedSize: number | undefined;
  private seen = 0;
  readonly what: string;
  /** Called with each chunk's length as it passes (progress) — without switching the stream to flowing mode. */
  onChunk: ((n: number) => void) | undefined;
  constructor(expectedDigest: string, expectedSize?: number, what = 'blob', onChunk?: (n: number) => void) {
    super();
    this.expected = parseDigest(expectedDigest);
    this.expectedSize = expectedSize;
    this.hash = hasher(this.expected.algorithm);
    this.what = what;
    this.onChunk = onChunk;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.expectedSize !== undefined && this.seen > this.expectedSize) {
      cb(new PlinthError('SIZE_MISMATCH', `${this.what} ${this.expected.digest}: more than the expected ${this.expectedSize} bytes`, { digest: this.expected.digest }));
      return;
    }
    this.hash.update(chunk);
    this.onChunk?.(chunk.length);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.expectedSize !== undefined && this.seen !== this.expectedSize) {
      cb(new PlinthError('SIZE_MISMATCH', `${this.what} ${this.expected.digest}: got ${this.seen} bytes, expected ${this.expectedSize}`, { digest: this.expected.digest }));
      return;
    }
    const got = `${this.expected.algorithm}:${this.hash.digest('hex')}`;
    if (got !== this.expected.digest) {
      cb(new PlinthError('DIGEST_MISMATCH', `${this.what} content does not match its digest: expected ${this.expected.digest}, got ${got}`, { expected: this.expected.digest, actual: got }));
      return;
    }
    cb();
  }
  get bytes(): number {
    return this.seen;
  }
}

/** Verify an in-memory document against an expected digest (throws DIGEST_MISMATCH). */
export function verifyBytes(data: Uint8Array, expectedDigest: string, what = 'content'): void {
  const p = parseDigest(expectedDigest);
  const got = digestOf(data, p.algorithm);
  if (got !== p.digest) {
    throw new PlinthError('DIGEST_MISMATCH', `${what} does not match its digest: expected ${p.digest}, got ${got}`, { expected: p.digest, actual: got });
  }
}

/**
 * A pass-through that only counts bytes (progress). Destinations use it instead of hashing again:
 * every ImageSource.openBlob stream already fails unless its bytes match the digest, so the
 * pipeline into a destination fails (and the destination discards the write) on a mismatch.
 */
export class CountingStream extends Transform {
  constructor(private readonly onChunk?: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.onChunk?.(chunk.length);
    cb(null, chunk);
  }
}

/** A pass-through that hashes what flows through it (for digests computed on the way, e.g. diff_ids). */
export class HashingStream extends Transform {
  readonly hash: Hash;
  /** Bytes seen so far. */
  n = 0;
  constructor(algorithm = 'sha256') {
    super();
    this.hash = hasher(algorithm);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.n += chunk.length;
    cb(null, chunk);
  }
  /** `algorithm:hex` of everything seen (call once, after the stream ended). */
  digest(algorithm = 'sha256'): string {
    return `${algorithm}:${this.hash.digest('hex')}`;
  }
}

/** A pass-through that fails with `message(max)` once more than `max` bytes went through. */
export class LimitStream extends Transform {
  n = 0;
  constructor(
    private readonly max: number,
    private readonly message: (max: number) => string,
    private readonly code: import('../util/errors.js').ErrorCode = 'IO',
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    if (this.n > this.max) cb(new PlinthError(this.code, this.message(this.max)));
    else cb(null, chunk);
  }
}
