/** Plinth's library surface: everything the CLI does is available here. */
export * from './util/errors.js';
export * from './oci/digest.js';
export * from './oci/reference.js';
export * from './oci/mediatypes.js';
export * from './oci/types.js';
export * from './oci/validate.js';
export { RegistryClient, referrersTag, MANIFEST_LIMIT, type RegistryOptions } from './registry/client.js';
export { resolveCredential, type Credential } from './registry/credentials.js';
export { startLocalRegistry, type LocalRegistry } from './registry/local.js';
export * from './source/types.js';
export { openSource, openDestination, parseLocation, type ImageLocation } from './source/open.js';
export { resolveRoot, selectImages, readConfig, type ImageNode, type IndexNode, type PlatformChoice } from './source/image.js';
export { copyImage, type CopyEvent, type CopyResult } from './source/copy.js';
export { buildImage, buildIndex, MemorySource, makeLayerTar } from './source/memory.js';
export { inspect, type InspectResult, type ImageInfo } from './inspect/inspect.js';
export { compareVersions, parseVersion, isValidVersion, type VersionKind } from './vuln/version.js';
export * from './admission/wire.js';
export { createCertificates, type CertificateOptions, type Certificates } from './admission/certs.js';
