import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { formatPlatform } from '../oci/types.js';
import { readConfig, type ImageNode } from '../source/image.js';
import type { ImageSource } from '../source/types.js';
import { readFinal, walkLayers, type LayerFile } from '../layers/walk.js';
import { advisoryEcosystem, detectOs, isOsPath, type OsInfo } from './os.js';
import { isDpkgPath, parseDpkgStatus } from './dpkg.js';
import { isApkPath, parseApkInstalled } from './apk.js';
import { isRpmPath, isRpmUnsupported, readRpmDb } from './rpm.js';
import type { Package, ParseResult } from './types.js';
import { openSqlite } from '../util/sqlite.js';

/**
 * The installed-package inventory of one image: one pass over its layers feeds the OS, dpkg,
 * apk and rpm analyzers; each package is attributed to the layer that installed its version,
 * so findings can later be split into what the base brought and what the image added.
 */
export interface InventoryPackage extends Package {
  /** Index (0 = bottom) of the layer that installed this version. */
  layerIndex?: number;
  /** base or image, once the base's layer count is known. */
  origin?: 'base' | 'image';
}

export interface Inventory {
  image: { reference: string; digest: string; platform: string | null };
  os: OsInfo | null;
  ecosystem: string | null;
  packages: InventoryPackage[];
  layers: Array<{ index: number; digest: string; diffId: string | null; size: number }>;
  findings: Array<{ path?: string; layer?: number | null; message: string }>;
}

export interface InventoryOptions {
  /** How many bottom layers belong to the base (from provenance); sets each package's origin. */
  baseLayers?: number | null;
  onLayer?: (i: number, total: number, digest: string) => void;
}

const analyzer = {
  name: 'os-packages',
  wants: (p: string) => isOsPath(p) || isDpkgPath(p) || isApkPath(p) || isRpmPath(p),
};

type Reader = (f: LayerFile) => Promise<ParseResult>;

/** Read the Packages blobs of an rpmdb.sqlite held in memory (via a temporary file). */
async function rpmSqliteBlobs(content: Buffer): Promise<Buffer[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plinth-rpmdb-'));
  try {
    const file = path.join(dir, 'rpmdb.sqlite');
    await writeFile(file, content);
    const db = openSqlite(file, { readonly: true });
    try {
      return db.prepare('SELECT blob FROM Packages').all().map((r) => {
        const b = r.blob as Uint8Array;
        return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
      });
    } finally {
      db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function readerFor(p: string, osInfo: OsInfo | undefined): Reader | undefined {
  if (isDpkgPath(p)) return async (f) => parseDpkgStatus(f.content, f.path, osInfo ? { os: osInfo } : {});
  if (isApkPath(p)) return async (f) => parseApkInstalled(f.content, f.path, osInfo);
  if (isRpmPath(p)) {
    return async (f) => {
      let blobs: Buffer[] | undefined;
      let err: string | undefined;
      if (/\.sqlite$/.test(f.path)) {
        try {
          blobs = await rpmSqliteBlobs(f.content);
        } catch (e) {
          err = (e as Error).message;
        }
      }
      const r = readRpmDb(f.path, {
        head: f.content.subarray(0, 64),
        ...(osInfo ? { os: osInfo } : {}),
        sqlite: () => {
          if (err) throw new Error(err);
          return blobs ?? [];
        },
      });
      if (isRpmUnsupported(r)) return { packages: [], findings: [{ path: r.path, message: r.message }] };
      return r;
    };
  }
  return undefined;
}

const key = (p: Package) => `${p.name}\u0000${p.version}\u0000${p.release ?? ''}\u0000${p.arch ?? ''}`;

export async function inventory(source: ImageSource, image: ImageNode, opts: InventoryOptions = {}): Promise<Inventory> {
  const { config } = await readConfig(source, image);
  const diffIds = Array.isArray(config.rootfs?.diff_ids) ? config.rootfs!.diff_ids : [];
  const walk = await walkLayers(source, image, [analyzer], { diffIds, ...(opts.onLayer ? { onLayer: opts.onLayer } : {}) });
  const osFiles = new Map<string, Buffer>();
  for (const p of walk.files.keys()) {
    if (!isOsPath(p)) continue;
    const f = readFinal(walk.files, p);
    if (f) osFiles.set(p, f.content);
  }
  const osInfo = detectOs(osFiles);
  const findings: Inventory['findings'] = walk.findings.map((f) => ({ ...(f.path ? { path: f.path } : {}), layer: f.layer, message: f.message }));
  const packages: InventoryPackage[] = [];
  for (const [p, f0] of walk.files) {
    if (isOsPath(p)) continue;
    const f = readFinal(walk.files, p);
    if (!f) continue;
    const read = readerFor(p, osInfo);
    if (!read) continue;
    const final = await read(f);
    findings.push(...final.findings.map((x) => ({ path: x.path, layer: f.layer, message: x.message })));
    // Attribution: the earliest layer from which this package version is present in every later
    // version of the database file (a database rewritten by a later layer still lists old packages).
    // A deletion (whiteout) is a version with no packages: it breaks continuity, so a package
    // removed and reinstalled belongs to the layer that reinstalled it.
    const versions = (walk.versions.get(p) ?? [f0]).filter((v) => v.linkTarget === undefined);
    const sets: Array<{ layer: number; keys: Set<string> }> = [];
    if (versions.length > 1) {
      for (const v of versions) sets.push({ layer: v.layer, keys: v.deleted ? new Set() : new Set((await read(v)).packages.map(key)) });
    }
    for (const pkg of final.packages) {
      let layer = f.layer;
      if (sets.length > 1) {
        const k = key(pkg);
        for (let i = sets.length - 1; i >= 0 && sets[i]!.keys.has(k); i--) layer = sets[i]!.layer;
      }
      const ip: InventoryPackage = { ...pkg, layerIndex: layer };
      const d = diffIds[layer];
      if (d) ip.layer = d;
      if (opts.baseLayers !== undefined && opts.baseLayers !== null) ip.origin = layer < opts.baseLayers ? 'base' : 'image';
      packages.push(ip);
    }
  }
  packages.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : (a.arch ?? '').localeCompare(b.arch ?? '')));
  return {
    image: {
      reference: source.description,
      digest: image.descriptor.digest,
      platform: config.os && config.architecture ? formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) }) : null,
    },
    os: osInfo ?? null,
    ecosystem: osInfo ? (advisoryEcosystem(osInfo) ?? null) : null,
    packages,
    layers: walk.layers.map((l, i) => ({ index: i, digest: l.digest, diffId: l.diffId, size: l.size })),
    findings,
  };
}
