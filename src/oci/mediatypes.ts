/**
 * Media types Plinth understands: OCI image-spec v1.1 and Docker image manifest v2 schema 2.
 * Docker schema 1 types are listed only so they can be recognised and refused with a clear message.
 */

// ---- OCI (image-spec v1.1) ----
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_DESCRIPTOR = 'application/vnd.oci.descriptor.v1+json';
export const OCI_LAYOUT_HEADER = 'application/vnd.oci.layout.header.v1+json';
/** The empty descriptor's media type (`{}`, 2 bytes), used as a placeholder config/layer by artifacts. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const OCI_EMPTY_DIGEST = 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
export const OCI_EMPTY_SIZE = 2;

export const OCI_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar';
export const OCI_LAYER_TAR_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const OCI_LAYER_TAR_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
/** Non-distributable layers are deprecated in image-spec v1.1 but must still be understood. */
export const OCI_LAYER_NONDIST_TAR = 'application/vnd.oci.image.layer.nondistributable.v1.tar';
export const OCI_LAYER_NONDIST_TAR_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
export const OCI_LAYER_NONDIST_TAR_ZSTD = 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd';

// ---- Docker image manifest v2, schema 2 ----
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const DOCKER_LAYER_TAR_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** Uncompressed Docker layer: not in the Docker spec, but written by some tools and accepted by containerd. */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
/** zstd Docker layer: a containerd extension, seen in the wild. */
export const DOCKER_LAYER_TAR_ZSTD = 'application/vnd.docker.image.rootfs.diff.tar.zstd';
/** Foreign (e.g. Windows base) layers: pulled from `urls`, not pushed to registries. */
export const DOCKER_FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
export const DOCKER_PLUGIN_CONFIG = 'application/vnd.docker.plugin.v1+json';

// ---- Docker schema 1 (deprecated, unsupported: recognised only to refuse) ----
export const DOCKER_SCHEMA1_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+json';
export const DOCKER_SCHEMA1_SIGNED_MANIFEST = 'application/vnd.docker.distribution.manifest.v1+prettyjws';

export const INDEX_MEDIA_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST];
export const MANIFEST_MEDIA_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST];
export const CONFIG_MEDIA_TYPES: readonly string[] = [OCI_CONFIG, DOCKER_CONFIG];
export const SCHEMA1_MEDIA_TYPES: readonly string[] = [DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST];

export type LayerCompression = 'gzip' | 'zstd' | 'none' | 'unknown';

const LAYER_COMPRESSION: ReadonlyMap<string, Exclude<LayerCompression, 'unknown'>> = new Map([
  [OCI_LAYER_TAR, 'none'],
  [OCI_LAYER_TAR_GZIP, 'gzip'],
  [OCI_LAYER_TAR_ZSTD, 'zstd'],
  [OCI_LAYER_NONDIST_TAR, 'none'],
  [OCI_LAYER_NONDIST_TAR_GZIP, 'gzip'],
  [OCI_LAYER_NONDIST_TAR_ZSTD, 'zstd'],
  [DOCKER_LAYER_TAR, 'none'],
  [DOCKER_LAYER_TAR_GZIP, 'gzip'],
  [DOCKER_LAYER_TAR_ZSTD, 'zstd'],
  [DOCKER_FOREIGN_LAYER, 'gzip'],
]);

/** The media type without parameters (`; charset=…`), trimmed. Media types are compared exactly otherwise. */
export function baseMediaType(mediaType: string): string {
  const i = mediaType.indexOf(';');
  return (i === -1 ? mediaType : mediaType.slice(0, i)).trim();
}

/** OCI image index or Docker manifest list. */
export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && INDEX_MEDIA_TYPES.includes(baseMediaType(mediaType));
}

/** OCI image manifest or Docker schema 2 manifest (schema 1 is not a manifest Plinth handles). */
export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && MANIFEST_MEDIA_TYPES.includes(baseMediaType(mediaType));
}

/** Docker schema 1 manifest media types (refused by Plinth). */
export function isSchema1MediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && SCHEMA1_MEDIA_TYPES.includes(baseMediaType(mediaType));
}

/** An OCI or Docker image config. */
export function isConfigMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && CONFIG_MEDIA_TYPES.includes(baseMediaType(mediaType));
}

/** A filesystem layer media type Plinth knows (OCI, OCI non-distributable, Docker, Docker foreign). */
export function isLayerMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && LAYER_COMPRESSION.has(baseMediaType(mediaType));
}

/** Non-distributable / foreign layers: content is normally fetched from `urls`, not from the registry. */
export function isNonDistributableMediaType(mediaType: string | undefined): boolean {
  if (mediaType === undefined) return false;
  const m = baseMediaType(mediaType);
  return m === DOCKER_FOREIGN_LAYER || m.startsWith('application/vnd.oci.image.layer.nondistributable.');
}

/**
 * How a layer blob is compressed, from its media type. Known layer types map exactly; other media
 * types are judged by their `+gzip` / `+zstd` structured-syntax suffix (or `.gzip` / `.zstd`), and
 * anything else is 'unknown' (never guessed as 'none').
 */
export function layerCompression(mediaType: string): LayerCompression {
  const m = baseMediaType(mediaType);
  const known = LAYER_COMPRESSION.get(m);
  if (known) return known;
  if (m.endsWith('+gzip') || m.endsWith('.gzip')) return 'gzip';
  if (m.endsWith('+zstd') || m.endsWith('.zstd')) return 'zstd';
  return 'unknown';
}
