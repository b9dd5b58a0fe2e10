import { createHash } from 'node:crypto';

/** OCI chain IDs: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

/** True when `base` is a (non-strict) prefix of `image`. */
export function isPrefix(base: string[], image: string[]): boolean {
  if (base.length === 0 || base.length > image.length) return false;
  for (let i = 0; i < base.length; i++) if (base[i] !== image[i]) return false;
  return true;
}
