import type { Descriptor, ImageConfig, Platform } from '../oci/types.js';
import { formatPlatform } from '../oci/types.js';
import { isPlatformEntry, readConfig, resolveRoot, selectImages, type ImageNode, type PlatformChoice } from '../source/image.js';
import type { ImageSource } from '../source/types.js';

/** What `plinth inspect` reports. The JSON form is stable: fields are only ever added. */
export interface LayerInfo {
  digest: string;
  diffId: string | null;
  size: number;
  mediaType: string;
  annotations?: Record<string, string>;
}

export interface ImageInfo {
  digest: string;
  mediaType: string;
  platform: string | null;
  os: string | null;
  architecture: string | null;
  variant: string | null;
  created: string | null;
  author: string | null;
  /** Bytes of manifest + config + layers as stored (compressed). */
  size: number;
  config: { digest: string; mediaType: string; size: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  env: string[];
  entrypoint: string[] | null;
  cmd: string[] | null;
  user: string | null;
  workingDir: string | null;
  exposedPorts: string[];
  layers: LayerInfo[];
  history: Array<{ created: string | null; createdBy: string | null; comment: string | null; emptyLayer: boolean }>;
}

export interface InspectResult {
  reference: string;
  transport: string;
  /** The digest of the document the reference names (the index for multi-platform images), as skopeo reports it. */
  digest: string;
  mediaType: string;
  size: number;
  /** Platforms of an index (empty for a single image). */
  platforms: string[];
  /** Entries of an index. */
  manifests: Array<{ digest: string; mediaType: string; size: number; platform: string | null; annotations?: Record<string, string> }>;
  annotations: Record<string, string>;
  /** The selected image(s): one for a platform, all with --platform all. */
  images: ImageInfo[];
}

function platformOf(p: Platform | undefined): string | null {
  return p ? formatPlatform(p) : null;
}

export async function describeImage(source: ImageSource, img: ImageNode): Promise<ImageInfo> {
  const { config } = await readConfig(source, img);
  const c: ImageConfig = config;
  const diffIds = Array.isArray(c.rootfs?.diff_ids) ? c.rootfs!.diff_ids : [];
  const layers = (img.manifest.layers ?? []).map((l: Descriptor, i: number) => ({
    digest: l.digest,
    diffId: diffIds[i] ?? null,
    size: l.size,
    mediaType: l.mediaType,
    ...(l.annotations && Object.keys(l.annotations).length ? { annotations: l.annotations } : {}),
  }));
  const platform: Platform | undefined = img.platform ?? (c.os && c.architecture ? { os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) } : undefined);
  const cc = c.config ?? {};
  return {
    digest: img.descriptor.digest,
    mediaType: img.descriptor.mediaType,
    platform: platformOf(platform),
    os: c.os ?? null,
    architecture: c.architecture ?? null,
    variant: c.variant ?? null,
    created: c.created ?? null,
    author: c.author ?? null,
    size: img.bytes.length + img.manifest.config.size + layers.reduce((a, l) => a + l.size, 0),
    config: { digest: img.manifest.config.digest, mediaType: img.manifest.config.mediaType, size: img.manifest.config.size },
    labels: (cc.Labels as Record<string, string> | undefined) ?? {},
    annotations: img.manifest.annotations ?? {},
    env: cc.Env ?? [],
    entrypoint: cc.Entrypoint ?? null,
    cmd: cc.Cmd ?? null,
    user: cc.User || null,
    workingDir: cc.WorkingDir || null,
    exposedPorts: Object.keys(cc.ExposedPorts ?? {}),
    layers,
    history: (c.history ?? []).map((h) => ({
      created: h.created ?? null,
      createdBy: h.created_by ?? null,
      comment: h.comment ?? null,
      emptyLayer: h.empty_layer === true,
    })),
  };
}

export async function inspect(source: ImageSource, platform: PlatformChoice): Promise<InspectResult> {
  const root = await resolveRoot(source);
  const selected = await selectImages(source, root, platform);
  const images: ImageInfo[] = [];
  for (const img of selected) images.push(await describeImage(source, img));
  const manifests = root.kind === 'index'
    ? root.index.manifests.map((d) => ({
        digest: d.digest,
        mediaType: d.mediaType,
        size: d.size,
        platform: platformOf(d.platform),
        ...(d.annotations && Object.keys(d.annotations).length ? { annotations: d.annotations } : {}),
      }))
    : [];
  return {
    reference: source.description,
    transport: source.transport,
    digest: root.descriptor.digest,
    mediaType: root.descriptor.mediaType,
    size: root.bytes.length,
    platforms: root.kind === 'index' ? root.index.manifests.filter(isPlatformEntry).map((d) => platformOf(d.platform) ?? d.digest) : [],
    manifests,
    annotations: (root.kind === 'index' ? root.index.annotations : root.manifest.annotations) ?? {},
    images,
  };
}
