import { PlinthError } from '../util/errors.js';
import { parseImageReference, type ImageReference } from '../oci/reference.js';
import type { RegistryOptions } from '../registry/client.js';
import type { ImageDestination, ImageSource, RootDocument, Transport } from './types.js';
import type { RegistrySource } from './registry.js';

/**
 * Image names as skopeo users write them: `docker://REF` or a bare reference for a registry,
 * `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:REF]`.
 */
export type ImageLocation =
  | { transport: 'registry'; ref: ImageReference; input: string }
  | { transport: 'oci' | 'oci-archive' | 'docker-archive'; path: string; ref?: string; input: string };

const PREFIXES: Array<[string, Transport]> = [
  ['oci-archive:', 'oci-archive'],
  ['docker-archive:', 'docker-archive'],
  ['oci:', 'oci'],
];

export function parseLocation(input: string): ImageLocation {
  if (typeof input !== 'string' || input.trim() === '') throw new PlinthError('USAGE', 'no image given');
  if (input.startsWith('docker://')) {
    return { transport: 'registry', ref: parseImageReference(input.slice('docker://'.length)), input };
  }
  for (const [prefix, transport] of PREFIXES) {
    if (input.startsWith(prefix)) {
      const rest = input.slice(prefix.length);
      if (!rest) throw new PlinthError('USAGE', `${prefix} needs a path: ${prefix}PATH[:REF]`);
      const i = rest.indexOf(':');
      const p = i >= 0 ? rest.slice(0, i) : rest;
      const ref = i >= 0 ? rest.slice(i + 1) : undefined;
      if (!p) throw new PlinthError('USAGE', `${prefix} needs a path before the reference: ${prefix}PATH[:REF]`);
      return { transport: transport as 'oci', path: p, ...(ref ? { ref } : {}), input };
    }
  }
  const m = /^([a-z][a-z0-9+.-]*):\/\//.exec(input);
  if (m) throw new PlinthError('TRANSPORT_INVALID', `unknown transport "${m[1]}://" in "${input}" (use docker://, oci:, oci-archive: or docker-archive:)`);
  const t = /^(dir|containers-storage|docker-daemon|ostree|sif):/.exec(input);
  if (t) throw new PlinthError('TRANSPORT_INVALID', `transport "${t[1]}:" is not supported by Plinth (use docker://, oci:, oci-archive: or docker-archive:)`);
  return { transport: 'registry', ref: parseImageReference(input), input };
}

export interface OpenOptions extends RegistryOptions {}

/** A location that is a registry reference whatever it looks like (names from image metadata, never local paths). */
export function registryLocation(name: string): ImageLocation {
  return { transport: 'registry', ref: parseImageReference(name), input: name };
}

export async function openSource(input: string | ImageLocation, opts: OpenOptions = {}): Promise<ImageSource> {
  const loc = typeof input === 'string' ? parseLocation(input) : input;
  switch (loc.transport) {
    case 'registry': {
      // The registry stack (http, https, tls, credential helpers) loads only when a registry is used.
      const [{ RegistrySource }, { RegistryClient }] = await Promise.all([import('./registry.js'), import('../registry/client.js')]);
      return new RegistrySource(loc.ref, new RegistryClient(loc.ref.registry, opts));
    }
    case 'oci': {
      // Layouts and archives load their code (tar-stream, the writers) only when named.
      const [{ LayoutSource }, { DirStore }] = await Promise.all([import('./layout.js'), import('./store.js')]);
      return new LayoutSource('oci', new DirStore(loc.path), loc.ref, loc.input);
    }
    case 'oci-archive': {
      const [{ openTar }, { LayoutSource }, { TarStore }] = await Promise.all([import('../util/tarindex.js'), import('./layout.js'), import('./store.js')]);
      const tar = await openTar(loc.path, 'oci-archive');
      if (!tar.has('index.json')) {
        await tar.close();
        throw new PlinthError('ARCHIVE_INVALID', `${loc.path} is not an OCI archive (no index.json)${tar.has('manifest.json') ? '; it looks like a docker save archive: use docker-archive:' : ''}`);
      }
      return new LayoutSource('oci-archive', new TarStore(tar), loc.ref, loc.input);
    }
    case 'docker-archive': {
      const { DockerArchiveSource } = await import('./dockerarchive.js');
      return DockerArchiveSource.open(loc.path, loc.ref);
    }
  }
}

export async function openDestination(input: string | ImageLocation, opts: OpenOptions = {}): Promise<ImageDestination> {
  const loc = typeof input === 'string' ? parseLocation(input) : input;
  switch (loc.transport) {
    case 'registry': {
      const [{ RegistryDestination }, { RegistryClient }] = await Promise.all([import('./registry.js'), import('../registry/client.js')]);
      return new RegistryDestination(loc.ref, new RegistryClient(loc.ref.registry, opts));
    }
    case 'oci': {
      const { LayoutDestination } = await import('./writers.js');
      return new LayoutDestination(loc.path, loc.ref);
    }
    case 'oci-archive':
    case 'docker-archive': {
      const { ArchiveDestination } = await import('./writers.js');
      return new ArchiveDestination(loc.transport, loc.path, loc.ref);
    }
  }
}

/**
 * Open the registry image `reference` names, resolve it once, run `fn`, close it. `early`, when
 * given, starts at the same time as the resolution (work that needs only the source, e.g. a
 * lookup by the digest the reference names: one round trip less); `fn` gets its promise. When
 * the resolution fails, its error is the one thrown.
 */
export async function withRegistryImage<T, E = never>(
  reference: string,
  opts: OpenOptions | undefined,
  fn: (src: RegistrySource, root: RootDocument, early?: Promise<E>) => Promise<T>,
  early?: (src: RegistrySource) => Promise<E> | undefined,
): Promise<T> {
  const loc = parseLocation(reference);
  if (loc.transport !== 'registry') throw new PlinthError('USAGE', `${reference}: signatures live next to images in a registry; name a registry image (REGISTRY/REPO:TAG or @DIGEST)`);
  const src = (await openSource(loc, opts ?? {})) as RegistrySource;
  let started: Promise<E> | undefined;
  try {
    started = early?.(src);
    started?.catch(() => {});
    return await fn(src, await src.resolve(), started);
  } finally {
    // A lookup still under way (the resolution failed) ends with the client: its requests and
    // retry waits (its failure is already caught; nothing waits for it).
    await src.close();
  }
}

