import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { PlinthError } from '../util/errors.js';
import { HashingStream } from '../oci/digest.js';
import type { ImageNode } from '../source/image.js';
import type { ImageSource } from '../source/types.js';
import { decoder, readHead, sniffCodec, type Codec } from './decompress.js';
import { layerCompression } from '../oci/mediatypes.js';

/**
 * One streaming pass over an image's layers, bottom to top, feeding every analyzer at once
 * (Trivy's model): analyzers say which paths they want; only those files are kept in memory,
 * nothing is unpacked to disk, whiteouts and opaque directories are honoured, and each kept file
 * remembers the layer it came from.
 */
export interface Analyzer {
  readonly name: string;
  /** Paths are relative, without a leading slash (`var/lib/dpkg/status`). */
  wants(path: string): boolean;
}

export interface LayerFile {
  path: string;
  content: Buffer;
  /** Index of the layer (0 = bottom) that wrote this version. */
  layer: number;
  /** For symlinks: the target, as written. */
  linkTarget?: string;
  /** In `versions` only: the file was deleted (whiteout or replaced) by this layer. */
  deleted?: boolean;
}

export interface WalkFinding {
  layer: number | null;
  path?: string;
  message: string;
}

export interface WalkResult {
  /** The files analyzers wanted, as the final image shows them (after whiteouts). */
  files: Map<string, LayerFile>;
  /** Every version of each wanted file, bottom to top, including ones later deleted. */
  versions: Map<string, LayerFile[]>;
  layers: Array<{ digest: string; diffId: string | null; size: number; entries: number; bytes: number }>;
  findings: WalkFinding[];
}

export interface WalkOptions {
  /** Largest wanted file kept (bigger ones become findings). Default 256 MiB. */
  maxFileSize?: number;
  /** All kept files together, every version (a hostile image cannot fill memory). Default 768 MiB. */
  maxTotalSize?: number;
  /** Check each layer's uncompressed digest against the config's diff_id (default true). */
  verifyDiffIds?: boolean;
  diffIds?: string[];
  onLayer?: (i: number, total: number, digest: string) => void;
}

export function normalisePath(p: string): string {
  let s = p.replace(/\\/g, '/');
  while (s.startsWith('./')) s = s.slice(2);
  s = s.replace(/^\/+/, '').replace(/\/+$/, '');
  const out: string[] = [];
  for (const part of s.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

/** Delete lower-layer files at or under `prefix`; each deletion is recorded as a tombstone version. */
function removeUnder(files: Map<string, LayerFile>, prefix: string, belowLayer: number, versions?: Map<string, LayerFile[]>, childrenOnly = false): void {
  for (const k of [...files.keys()]) {
    if (((!childrenOnly && k === prefix) || k.startsWith(`${prefix}/`)) && files.get(k)!.layer < belowLayer) {
      files.delete(k);
      versions?.get(k)?.push({ path: k, content: Buffer.alloc(0), layer: belowLayer, deleted: true });
    }
  }
}

export async function walkLayers(source: ImageSource, image: ImageNode, analyzers: Analyzer[], opts: WalkOptions = {}): Promise<WalkResult> {
  const maxFile = opts.maxFileSize ?? 256 * 1024 * 1024;
  const maxTotal = opts.maxTotalSize ?? 768 * 1024 * 1024;
  let kept = 0;
  const files = new Map<string, LayerFile>();
  const versions = new Map<string, LayerFile[]>();
  const findings: WalkFinding[] = [];
  const layers: WalkResult['layers'] = [];
  const wants = (p: string) => analyzers.some((a) => a.wants(p));
  const descs = image.manifest.layers ?? [];
  for (const [i, desc] of descs.entries()) {
    opts.onLayer?.(i, descs.length, desc.digest);
    if (/foreign|nondistributable/.test(desc.mediaType) && desc.urls?.length) {
      findings.push({ layer: i, message: `layer ${desc.digest} is a foreign layer (${desc.urls[0]}); not read` });
      layers.push({ digest: desc.digest, diffId: null, size: desc.size, entries: 0, bytes: 0 });
      continue;
    }
    // The media type names the codec; when it does not (unknown types, "uncompressed" layers that
    // are not), the first bytes decide.
    const declared = layerCompression(desc.mediaType);
    let codec: Codec;
    if (declared === 'gzip' || declared === 'zstd') codec = declared;
    else codec = sniffCodec(await readHead(await source.openBlob(desc)).catch(() => Buffer.alloc(0)));
    const blob = await source.openBlob(desc);
    const hasher = new HashingStream();
    const extract = tar.extract();
    let entries = 0;
    extract.on('entry', (header, stream, next) => {
      entries++;
      // A broken archive fails the whole pipeline; the entry's own error is the same one.
      stream.on('error', () => {});
      const raw = header.name;
      const path = normalisePath(raw);
      const base = path.slice(path.lastIndexOf('/') + 1);
      const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
      if (base === '.wh..wh..opq') {
        removeUnder(files, dir, i, versions);
        stream.resume();
        stream.on('end', next);
        return;
      }
      if (base.startsWith('.wh.')) {
        const target = (dir ? `${dir}/` : '') + base.slice(4);
        removeUnder(files, target, i, versions);
        stream.resume();
        stream.on('end', next);
        return;
      }
      // Something replacing what a lower layer had: a directory over a file hides the file; a file
      // or link over a directory hides the whole directory.
      if (header.type === 'directory') {
        if (files.has(path) && files.get(path)!.layer < i) files.delete(path);
      } else removeUnder(files, path, i, versions, true);
      if (!wants(path) || (header.type !== 'file' && header.type !== 'symlink' && header.type !== 'link' && header.type !== 'contiguous-file')) {
        stream.resume();
        stream.on('end', next);
        return;
      }
      if (header.type === 'symlink' || header.type === 'link') {
        const target = header.linkname ?? '';
        const f: LayerFile = { path, content: Buffer.alloc(0), layer: i, linkTarget: header.type === 'link' ? `/${normalisePath(target)}` : target };
        files.set(path, f);
        pushVersion(versions, f);
        stream.resume();
        stream.on('end', next);
        return;
      }
      const size = header.size ?? 0;
      if (kept + size > maxTotal) {
        extract.destroy(new PlinthError('ARCHIVE_INVALID', `the files Plinth reads from this image (package databases, OS release) add up to more than ${maxTotal} bytes; refusing to hold more`));
        return;
      }
      if (size > maxFile) {
        findings.push({ layer: i, path, message: `${path} is ${size} bytes, more than the ${maxFile}-byte limit; not read` });
        stream.resume();
        stream.on('end', next);
        return;
      }
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => chunks.push(c as Buffer));
      kept += size;
      stream.on('end', () => {
        const f: LayerFile = { path, content: Buffer.concat(chunks), layer: i };
        files.set(path, f);
        pushVersion(versions, f);
        next();
      });
    });
    try {
      const dec = decoder(codec);
      if (dec) await pipeline(blob, dec, hasher, extract);
      else await pipeline(blob, hasher, extract);
    } catch (e) {
      if (e instanceof PlinthError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH' || e.code === 'NETWORK' || e.code === 'TIMEOUT')) throw e;
      throw new PlinthError('ARCHIVE_INVALID', `layer ${i + 1} (${desc.digest}) is not a readable tar: ${(e as Error).message}`, { layer: i });
    }
    const diffId = hasher.digest();
    const expected = opts.diffIds?.[i];
    if ((opts.verifyDiffIds ?? true) && expected && expected !== diffId) {
      throw new PlinthError('DIGEST_MISMATCH', `layer ${i + 1} (${desc.digest}) uncompresses to ${diffId}, but the image config says its diff_id is ${expected}`);
    }
    layers.push({ digest: desc.digest, diffId, size: desc.size, entries, bytes: hasher.n });
  }
  return { files, versions, layers, findings };
}

function pushVersion(versions: Map<string, LayerFile[]>, f: LayerFile): void {
  const list = versions.get(f.path);
  if (list) list.push(f);
  else versions.set(f.path, [f]);
}

/** Read a wanted file from the final view, following symlinks among wanted files. */
export function readFinal(files: Map<string, LayerFile>, path: string, depth = 0): LayerFile | undefined {
  const f = files.get(normalisePath(path));
  if (!f || depth > 16) return undefined;
  if (f.linkTarget === undefined) return f;
  const t = f.linkTarget.startsWith('/') ? f.linkTarget : `${path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : ''}/${f.linkTarget}`;
  return readFinal(files, normalisePath(t), depth + 1);
}
