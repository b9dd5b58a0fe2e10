/**
 * A small, bounded CBOR (RFC 8949) decoder: just what COSE_Sign1 envelopes need (integers, byte
 * and text strings, arrays, maps, tags, simple values, floats), definite lengths only (COSE
 * requires deterministic encoding), nesting and item counts capped. Anything else is an error
 * naming the offset, never a crash. Plus the encoder of the Sig_structure the signature covers.
 */
import { PlinthError } from '../util/errors.js';

export class Tagged {
  constructor(readonly tag: number, readonly value: CborValue) {}
}
export type CborValue = number | bigint | string | Uint8Array | boolean | null | undefined | CborValue[] | Map<CborValue, CborValue> | Tagged;

const MAX_DEPTH = 16;
const MAX_ITEMS = 4096;

export function decodeCbor(buf: Uint8Array, what = 'CBOR'): CborValue {
  let pos = 0;
  let items = 0;
  const fail = (m: string): never => {
    throw new PlinthError('SIGNATURE_INVALID', `${what}: ${m} at byte ${pos}`);
  };
  const need = (n: number) => {
    if (n > buf.length - pos) fail(`truncated (needs ${n} more bytes)`);
  };
  const arg = (info: number): number | bigint => {
    if (info < 24) return info;
    if (info === 24) return need(1), buf[pos++]!;
    if (info === 25) {
      need(2);
      const v = (buf[pos]! << 8) | buf[pos + 1]!;
      pos += 2;
      return v;
    }
    if (info === 26) {
      need(4);
      const v = Buffer.from(buf.buffer, buf.byteOffset + pos, 4).readUInt32BE(0);
      pos += 4;
      return v;
    }
    if (info === 27) {
      need(8);
      const v = Buffer.from(buf.buffer, buf.byteOffset + pos, 8).readBigUInt64BE(0);
      pos += 8;
      return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    return fail(info === 31 ? 'indefinite length (not allowed in COSE)' : `reserved additional information ${info}`);
  };
  const len = (info: number): number => {
    const n = arg(info);
    if (typeof n !== 'number' || n > buf.length - pos) return fail(`truncated: length ${String(n)}, ${buf.length - pos} bytes left`);
    return n;
  };
  const item = (depth: number): CborValue => {
    if (depth > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH}`);
    if (++items > MAX_ITEMS) fail(`more than ${MAX_ITEMS} items`);
    need(1);
    const b = buf[pos++]!;
    const major = b >> 5;
    const info = b & 31;
    switch (major) {
      case 0:
        return arg(info);
      case 1: {
        const n = arg(info);
        return typeof n === 'number' ? -1 - n : -1n - n;
      }
      case 2: {
        const n = len(info);
        need(n);
        const v = buf.slice(pos, pos + n);
        pos += n;
        return v;
      }
      case 3: {
        const n = len(info);
        need(n);
        const v = new TextDecoder('utf-8', { fatal: true });
        let s: string;
        try {
          s = v.decode(buf.subarray(pos, pos + n));
        } catch {
          return fail('text string is not UTF-8');
        }
        pos += n;
        return s;
      }
      case 4: {
        const n = len(info);
        const out: CborValue[] = [];
        for (let i = 0; i < n; i++) out.push(item(depth + 1));
        return out;
      }
      case 5: {
        const n = len(info);
        const out = new Map<CborValue, CborValue>();
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1);
          if (typeof k !== 'number' && typeof k !== 'string') fail('map key is not an integer or text');
          if (out.has(k)) fail(`duplicate map key ${JSON.stringify(k)}`);
          out.set(k, item(depth + 1));
        }
        return out;
      }
      case 6: {
        const t = arg(info);
        if (typeof t !== 'number') return fail('tag number too large');
        return new Tagged(t, item(depth + 1));
      }
      default: {
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        if (info === 23) return undefined;
        if (info === 25) {
          need(2);
          const v = Buffer.from(buf.buffer, buf.byteOffset + pos, 2);
          pos += 2;
          return halfFloat(v.readUInt16BE(0));
        }
        if (info === 26) {
          need(4);
          const v = Buffer.from(buf.buffer, buf.byteOffset + pos, 4).readFloatBE(0);
          pos += 4;
          return v;
        }
        if (info === 27) {
          need(8);
          const v = Buffer.from(buf.buffer, buf.byteOffset + pos, 8).readDoubleBE(0);
          pos += 8;
          return v;
        }
        return fail(`unsupported simple value ${info}`);
      }
    }
  };
  const v = item(0);
  if (pos !== buf.length) fail(`${buf.length - pos} bytes after the item`);
  return v;
}

function halfFloat(h: number): number {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 256) return Buffer.from([(major << 5) | 24, n]);
  if (n < 65536) return Buffer.from([(major << 5) | 25, n >> 8, n & 255]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

/** Encode the few shapes the Sig_structure needs: text, byte strings, arrays of them. */
export function encodeCbor(v: string | Uint8Array | Array<string | Uint8Array>): Buffer {
  if (typeof v === 'string') {
    const b = Buffer.from(v, 'utf8');
    return Buffer.concat([head(3, b.length), b]);
  }
  if (v instanceof Uint8Array) return Buffer.concat([head(2, v.length), v]);
  return Buffer.concat([head(4, v.length), ...v.map((x) => encodeCbor(x))]);
}
