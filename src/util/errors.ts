/**
 * Errors are values with a stable code and a message a person can act on.
 * The CLI prints `message` (never a stack trace) and exits non-zero; the server answers them.
 */
export type ErrorCode =
  | 'REFERENCE_INVALID'
  | 'DIGEST_INVALID'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_TOO_LARGE'
  | 'BLOB_UNKNOWN'
  | 'NAME_UNKNOWN'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'PLATFORM_NOT_FOUND'
  | 'ARCHIVE_INVALID'
  | 'ADVISORY_INVALID'
  | 'LAYOUT_INVALID'
  | 'TRANSPORT_INVALID'
  | 'INSECURE_REFUSED'
  | 'REGISTRY_ERROR'
  | 'NETWORK'
  | 'TIMEOUT'
  | 'UNSUPPORTED'
  | 'PACKAGE_DB_INVALID'
  /** A key file that is not a usable key, or a wrong key password. */
  | 'KEY_INVALID'
  /** A signature that is malformed or does not verify. */
  | 'SIGNATURE_INVALID'
  /** A webhook request (AdmissionReview, ImageReview) that is not what the API server sends. */
  | 'REQUEST_INVALID'
  /** The metadata store refused or failed (not a store, newer schema, corrupt, SQL error). */
  | 'STORE'
  /** The store's server (PostgreSQL) cannot be reached. */
  | 'STORE_UNAVAILABLE'
  | 'USAGE'
  | 'IO';

export class PlinthError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PlinthError';
    this.code = code;
    this.details = details;
  }
}

export function isPlinthError(e: unknown): e is PlinthError {
  return e instanceof PlinthError;
}

/** A short, human message for any thrown value (no stack). */
export function describeError(e: unknown): string {
  if (e instanceof PlinthError) return e.message;
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `no such file or directory: ${(e as NodeJS.ErrnoException).path ?? e.message}`;
    if (code === 'EACCES') return `permission denied: ${(e as NodeJS.ErrnoException).path ?? e.message}`;
    return e.message;
  }
  return String(e);
}
