/**
 * packages/: OS detection and installed-package databases (dpkg, apk, rpm) → an inventory.
 * Pure parsers: bytes in, `{ packages, findings }` out; reading layers is someone else's job.
 */
export * from './types.js';
export * from './os.js';
export * from './dpkg.js';
export * from './apk.js';
export * from './rpm.js';
