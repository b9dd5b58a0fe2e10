/**
 * Signing keys in cosign's formats.
 *
 * Private keys: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (what cosign writes today) or the older
 * `ENCRYPTED COSIGN PRIVATE KEY`. The PEM body is JSON:
 *   {"kdf":{"name":"scrypt","params":{"N":…,"r":8,"p":1},"salt":b64},
 *    "cipher":{"name":"nacl/secretbox","nonce":b64},"ciphertext":b64}
 * The secretbox key is scrypt(password, salt, N, r, p, 32 bytes); the plaintext is the private
 * key in PKCS#8 DER (older cosign keys: SEC1 `EC PRIVATE KEY` DER). Plinth writes N=65536, r=8,
 * p=1, a 32-byte salt and a 24-byte nonce, as cosign does.
 *
 * Public keys: SPKI PEM (`PUBLIC KEY`). ECDSA P-256 signs; verification also takes P-384,
 * Ed25519 and RSA keys.
 *
 * Key references go through openSigner()/openVerifier(), the one place a KMS provider would plug
 * in: `awskms://`, `gcpkms://`, `azurekms://`, `hashivault://` and `k8s://` are named and refused as
 * not supported yet.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scrypt, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PlinthError } from '../util/errors.js';

export const SIGSTORE_KEY_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
export const COSIGN_KEY_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';
const SCRYPT = { N: 65536, r: 8, p: 1 };
/**
 * Work factors accepted when reading: cosign has written N=32768 and 65536 with r=8, p=1. Memory is
 * 128·N·r bytes (64 MiB at cosign's setting), time grows with N·r·p: a key file asking for more is
 * refused rather than allowed to take gigabytes or minutes.
 */
const MAX_SCRYPT_N = 1 << 16;
const MAX_SCRYPT_R = 8;
const MAX_SCRYPT_P = 2;

export const KMS_SCHEMES = ['awskms://', 'gcpkms://', 'azurekms://', 'hashivault://', 'k8s://'] as const;

/** A private key that signs (a file today; a KMS key later, behind the same shape). */
export interface Signer {
  /** Where the key came from (file path or URI), for messages. */
  readonly ref: string;
  readonly publicKey: KeyObject;
  /** The public key as SPKI PEM. */
  publicKeyPem(): string;
  sign(data: Uint8Array): Promise<Buffer>;
}

/** A public key that verifies. */
export interface Verifier {
  readonly ref: string;
  readonly publicKey: KeyObject;
  verify(data: Uint8Array, signature: Uint8Array): boolean;
}

function kmsRefusal(ref: string): PlinthError | undefined {
  const scheme = KMS_SCHEMES.find((s) => ref.startsWith(s));
  return scheme ? new PlinthError('UNSUPPORTED', `key ${ref}: ${scheme} keys (KMS) are not supported yet; use a key file (plinth key generate)`) : undefined;
}

function b64(v: unknown, what: string, file: string): Buffer {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new PlinthError('KEY_INVALID', `${file}: ${what} is not base64`);
  return Buffer.from(v, 'base64');
}

/** The PEM blocks of a text: type and DER body. */
export function pemBlocks(text: string): Array<{ type: string; der: Buffer }> {
  const out: Array<{ type: string; der: Buffer }> = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push({ type: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') });
  return out;
}

function scryptAsync(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(password, 'utf8'), salt, 32, { N: n, r, p, maxmem: 129 * n * r + (1 << 20) }, (e, key) => (e ? reject(e) : resolve(key)));
  });
}

/**
 * Decrypt a cosign private key (PEM text). Throws KEY_INVALID naming the file for a wrong
 * password or a document that is not a cosign key.
 */
export async function decryptPrivateKey(pem: string, password: string, file = 'key'): Promise<KeyObject> {
  const block = pemBlocks(pem).find((b) => b.type === SIGSTORE_KEY_PEM || b.type === COSIGN_KEY_PEM);
  if (!block) {
    const types = pemBlocks(pem).map((b) => b.type);
    const hint = types.length ? `it holds ${types.join(', ')}` : 'it holds no PEM block';
    throw new PlinthError('KEY_INVALID', `${file} is not an encrypted cosign private key (${SIGSTORE_KEY_PEM} or ${COSIGN_KEY_PEM}); ${hint}`);
  }
  let doc: { kdf?: { name?: unknown; params?: { N?: unknown; r?: unknown; p?: unknown }; salt?: unknown }; cipher?: { name?: unknown; nonce?: unknown }; ciphertext?: unknown };
  try {
    doc = JSON.parse(block.der.toString('utf8'));
  } catch {
    throw new PlinthError('KEY_INVALID', `${file}: the ${block.type} block is not the JSON cosign writes`);
  }
  const kdf = doc?.kdf;
  const n = kdf?.params?.N;
  const r = kdf?.params?.r;
  const p = kdf?.params?.p;
  if (kdf?.name !== 'scrypt' || !Number.isSafeInteger(n) || !Number.isSafeInteger(r) || !Number.isSafeInteger(p)) {
    throw new PlinthError('KEY_INVALID', `${file}: unsupported key derivation ${JSON.stringify(kdf?.name ?? null)} (cosign keys use scrypt)`);
  }
  const [N, R, P] = [n as number, r as number, p as number];
  if (N < 1024 || N > MAX_SCRYPT_N || (N & (N - 1)) !== 0 || R < 1 || R > MAX_SCRYPT_R || P < 1 || P > MAX_SCRYPT_P) {
    throw new PlinthError('KEY_INVALID', `${file}: scrypt parameters N=${N} r=${R} p=${P} are out of the accepted range`);
  }
  if (doc.cipher?.name !== 'nacl/secretbox') throw new PlinthError('KEY_INVALID', `${file}: unsupported cipher ${JSON.stringify(doc.cipher?.name ?? null)} (cosign keys use nacl/secretbox)`);
  const salt = b64(kdf.salt, 'the salt', file);
  const nonce = b64(doc.cipher.nonce, 'the nonce', file);
  const sealed = b64(doc.ciphertext, 'the ciphertext', file);
  if (nonce.length !== 24) throw new PlinthError('KEY_INVALID', `${file}: the nonce is ${nonce.length} bytes, secretbox needs 24`);
  const key = await scryptAsync(password, salt, N, R, P);
  const { secretbox } = await import('@noble/ciphers/salsa.js');
  let plain: Uint8Array;
  try {
    plain = secretbox(key, nonce).open(sealed);
  } catch {
    throw new PlinthError('KEY_INVALID', `${file}: wrong password (or the key file is corrupted)`);
  }
  const der = Buffer.from(plain);
  for (const type of ['pkcs8', 'sec1'] as const) {
    try {
      return createPrivateKey({ key: der, format: 'der', type });
    } catch {
      /* try the next encoding */
    }
  }
  throw new PlinthError('KEY_INVALID', `${file}: the decrypted key is neither PKCS#8 nor SEC1 DER`);
}

/** Encrypt a private key as cosign does (PEM `ENCRYPTED SIGSTORE PRIVATE KEY`). */
export async function encryptPrivateKey(key: KeyObject, password: string): Promise<string> {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const derived = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p);
  // NaCl secretbox loads only when a private key is opened or written (not to verify).
  const { secretbox } = await import('@noble/ciphers/salsa.js');
  const plain = key.export({ format: 'der', type: 'pkcs8' });
  const sealed = Buffer.from(secretbox(derived, nonce).seal(plain));
  const body = JSON.stringify({
    kdf: { name: 'scrypt', params: SCRYPT, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: sealed.toString('base64'),
  });
  return toPem(SIGSTORE_KEY_PEM, Buffer.from(body, 'utf8'));
}

export function toPem(type: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

export function publicKeyPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'spki' }).toString();
}

/** A new ECDSA P-256 key pair: the encrypted private key PEM and the public key PEM. */
export async function generateKeyPair(password: string): Promise<{ privateKeyPem: string; publicKeyPem: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKeyPem: await encryptPrivateKey(privateKey, password), publicKeyPem: publicKeyPem(publicKey) };
}

/** The digest a key signs with: sha256 for P-256, RSA; sha384 for P-384; none for Ed25519. */
function hashFor(key: KeyObject): string | null {
  const t = key.asymmetricKeyType;
  if (t === 'ed25519') return null;
  if (t === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1' || curve === 'P-256') return 'sha256';
    if (curve === 'secp384r1' || curve === 'P-384') return 'sha384';
    if (curve === 'secp521r1' || curve === 'P-521') return 'sha512';
    throw new PlinthError('UNSUPPORTED', `ECDSA keys on curve ${curve ?? 'unknown'} are not supported (P-256, P-384, P-521)`);
  }
  if (t === 'rsa') return 'sha256';
  throw new PlinthError('UNSUPPORTED', `${t ?? 'unknown'} keys are not supported (ECDSA, Ed25519, RSA)`);
}

export function signWith(key: KeyObject, data: Uint8Array): Buffer {
  return cryptoSign(hashFor(key), data, key);
}

/** A Verifier for a public key, named `ref` in results and messages. */
export function verifierOf(key: KeyObject, ref: string): Verifier {
  return { ref, publicKey: key, verify: (data, sig) => verifyWith(key, data, sig) };
}

/** At most this many signatures of one envelope are tried (each against every key). */
export const MAX_SIGNATURES_PER_ENVELOPE = 4;

/** The first key that verifies one of `signatures` over `data`. */
export function findSigner(verifiers: readonly Verifier[], data: Uint8Array, signatures: readonly Uint8Array[]): Verifier | undefined {
  for (const sig of signatures.slice(0, MAX_SIGNATURES_PER_ENVELOPE)) {
    const key = verifiers.find((v) => v.verify(data, sig));
    if (key) return key;
  }
  return undefined;
}

/** Why no key verified a signature. */
export function noSignerReason(verifiers: readonly Verifier[]): string {
  return verifiers.length === 1 ? `the signature does not verify with ${verifiers[0]!.ref}` : `the signature does not verify with any of ${verifiers.length} keys`;
}

export function verifyWith(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return cryptoVerify(hashFor(key), data, key, signature);
  } catch (e) {
    if (e instanceof PlinthError) throw e;
    return false; // a malformed signature is a failed verification
  }
}

/** The password for a key: PLINTH_PASSWORD, COSIGN_PASSWORD, else asked on the terminal. */
export async function keyPassword(purpose: string, confirm = false): Promise<string> {
  const env = process.env.PLINTH_PASSWORD ?? process.env.COSIGN_PASSWORD;
  if (env !== undefined) return env;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new PlinthError('USAGE', `a password is needed ${purpose}: set PLINTH_PASSWORD (or COSIGN_PASSWORD), or run on a terminal`);
  }
  const first = await prompt(`Enter password ${purpose}: `);
  if (confirm) {
    const again = await prompt('Enter password again: ');
    if (again !== first) throw new PlinthError('USAGE', 'the passwords do not match');
  }
  return first;
}

/** Read a line from the terminal without echoing it. */
function prompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let s = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(s);
    };
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new PlinthError('USAGE', 'interrupted'));
        if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1);
        else s += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** A signer for a key reference (a key file; KMS URIs are refused as not supported yet). */
export async function openSigner(ref: string, password?: () => Promise<string>): Promise<Signer> {
  const kms = kmsRefusal(ref);
  if (kms) throw kms;
  let text: string;
  try {
    text = await readFile(ref, 'utf8');
  } catch (e) {
    throw new PlinthError('IO', `cannot read key ${ref}: ${(e as Error).message}`);
  }
  const key = await decryptPrivateKey(text, await (password ?? (() => keyPassword(`for ${ref}`)))(), ref);
  const pub = createPublicKey(key);
  hashFor(pub);
  return {
    ref,
    publicKey: pub,
    publicKeyPem: () => publicKeyPem(pub),
    sign: async (data) => signWith(key, data),
  };
}

/** Parse a public key: SPKI PEM (also taken from an X.509 certificate PEM). */
export function parsePublicKey(text: string, ref = 'key'): KeyObject {
  const blocks = pemBlocks(text);
  const block = blocks.find((b) => b.type === 'PUBLIC KEY' || b.type === 'CERTIFICATE' || b.type === 'RSA PUBLIC KEY');
  if (!block) {
    const what = blocks.length ? `it holds ${blocks.map((b) => b.type).join(', ')}` : 'no PEM block';
    throw new PlinthError('KEY_INVALID', `${ref} is not a public key (expected a PEM PUBLIC KEY; ${what})`);
  }
  try {
    const key = block.type === 'PUBLIC KEY' ? createPublicKey({ key: block.der, format: 'der', type: 'spki' }) : block.type === 'RSA PUBLIC KEY' ? createPublicKey({ key: block.der, format: 'der', type: 'pkcs1' }) : createPublicKey(toPem('CERTIFICATE', block.der));
    hashFor(key);
    return key;
  } catch (e) {
    if (e instanceof PlinthError) throw e;
    throw new PlinthError('KEY_INVALID', `${ref}: the public key does not parse (${(e as Error).message})`);
  }
}

/** A verifier for a key reference: a PEM file, or PEM text given inline. */
export async function openVerifier(ref: string): Promise<Verifier> {
  const kms = kmsRefusal(ref);
  if (kms) throw kms;
  let text = ref;
  let name = 'inline key';
  if (!ref.includes('-----BEGIN')) {
    name = ref;
    try {
      text = await readFile(ref, 'utf8');
    } catch (e) {
      throw new PlinthError('IO', `cannot read public key ${ref}: ${(e as Error).message}`);
    }
  }
  return verifierOf(parsePublicKey(text, name), name);
}
