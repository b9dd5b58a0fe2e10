import type { Descriptor, ImageConfig } from '../oci/types.js';
import { parseImageReference, type ImageReference } from '../oci/reference.js';
import { isDigest } from '../oci/digest.js';
import type { ImageNode, IndexNode } from '../source/image.js';
import type { ImageSource } from '../source/types.js';

/**
 * Evidence of an image's base, read from every place builders write it. Each claim says which
 * field of which document it came from. Hostile or malformed metadata becomes a finding, never an
 * exception.
 */
export type EvidenceKind =
  | 'manifest-annotation'
  | 'index-entry-annotation'
  | 'index-annotation'
  | 'config-label'
  | 'buildkit-buildinfo'
  | 'slsa-provenance'
  | 'buildpacks'
  | 'fingerprint';

export interface BaseClaim {
  kind: EvidenceKind;
  /** Where exactly: document and field. */
  source: string;
  /** Normalised reference name (registry/repository), when the evidence names one. */
  name?: string;
  /** The reference as written. */
  reference?: string;
  tag?: string;
  digest?: string;
  /** The claim names the base itself (annotations, buildpacks) or only lists an image used by the build (buildinfo, SLSA materials). */
  role: 'base' | 'material';
  /** buildpacks: the run image's top layer diff_id. */
  topLayer?: string;
}

export interface Finding {
  severity: 'warning' | 'info';
  source: string;
  message: string;
  /** A base image could not be fetched (network, auth, registry error): the answer is incomplete, not negative. */
  lookupError?: boolean;
}

export interface Materials {
  /** Every material / source the build declared (images, git, http…). */
  items: Array<{ uri: string; digest?: Record<string, string>; type?: string }>;
  builderId?: string;
  buildType?: string;
  configSource?: { uri?: string; digest?: Record<string, string>; entryPoint?: string };
  reproducible?: boolean;
  startedOn?: string;
  finishedOn?: string;
}

export interface Evidence {
  claims: BaseClaim[];
  findings: Finding[];
  materials: Materials[];
  builderHints: Array<{ builder: 'ko' | 'buildkit' | 'buildpacks'; source: string }>;
}

export const BASE_NAME = 'org.opencontainers.image.base.name';
export const BASE_DIGEST = 'org.opencontainers.image.base.digest';
export const BUILDINFO_KEYS = ['moby.buildkit.buildinfo.v1', 'moby.buildkit.buildinfo.v0'];
export const CNB_LABEL = 'io.buildpacks.lifecycle.metadata';
const MAX_METADATA = 1024 * 1024;

function tryRef(s: string, source: string, findings: Finding[]): ImageReference | undefined {
  try {
    return parseImageReference(s);
  } catch (e) {
    findings.push({ severity: 'warning', source, message: `"${s.slice(0, 200)}" is not a valid image reference: ${(e as Error).message}` });
    return undefined;
  }
}

function claimFromRef(kind: EvidenceKind, source: string, ref: string, digest: string | undefined, role: 'base' | 'material', findings: Finding[]): BaseClaim | undefined {
  const r = tryRef(ref, source, findings);
  if (!r) return undefined;
  let d = digest ?? r.digest;
  if (d !== undefined && !isDigest(d)) {
    findings.push({ severity: 'warning', source, message: `base digest "${d.slice(0, 100)}" is not a valid digest; ignored` });
    d = undefined;
  }
  if (digest && r.digest && digest !== r.digest) {
    findings.push({ severity: 'warning', source, message: `reference ${ref} pins ${r.digest} but the digest field says ${digest}` });
  }
  return {
    kind,
    source,
    name: r.name,
    reference: ref,
    ...(r.tagDefaulted ? {} : r.tag ? { tag: r.tag } : {}),
    ...(d ? { digest: d } : {}),
    role,
  };
}

function fromAnnotations(kind: EvidenceKind, where: string, ann: Record<string, unknown> | undefined, ev: Evidence): void {
  if (!ann) return;
  const name = ann[BASE_NAME];
  const digest = ann[BASE_DIGEST];
  if (name === undefined && digest === undefined) return;
  const src = `${where} ${BASE_NAME}`;
  if (typeof name !== 'string' || name.length > 4096) {
    if (name !== undefined) ev.findings.push({ severity: 'warning', source: src, message: 'base name annotation is not a usable string' });
    if (typeof digest === 'string' && isDigest(digest)) ev.claims.push({ kind, source: `${where} ${BASE_DIGEST}`, digest, role: 'base' });
    return;
  }
  const c = claimFromRef(kind, src + (digest !== undefined ? ` + ${BASE_DIGEST}` : ''), name, typeof digest === 'string' ? digest : undefined, 'base', ev.findings);
  if (c) ev.claims.push(c);
}

function decodeJson(text: string, source: string, ev: Evidence): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    ev.findings.push({ severity: 'warning', source, message: `not valid JSON: ${(e as Error).message.slice(0, 200)}` });
    return undefined;
  }
}

function fromBuildinfo(config: ImageConfig, ev: Evidence): void {
  const cfg = config as unknown as Record<string, unknown>;
  for (const key of BUILDINFO_KEYS) {
    const raw = cfg[key];
    if (raw === undefined) continue;
    const source = `image config ${key}`;
    ev.builderHints.push({ builder: 'buildkit', source });
    if (typeof raw !== 'string' || raw.length > MAX_METADATA) {
      ev.findings.push({ severity: 'warning', source, message: 'build info is not a base64 string of a sensible size; ignored' });
      continue;
    }
    if (!/^[A-Za-z0-9+/=\s_-]*$/.test(raw)) {
      ev.findings.push({ severity: 'warning', source, message: 'build info is not valid base64; ignored' });
      continue;
    }
    const doc = decodeJson(Buffer.from(raw, 'base64').toString('utf8'), source, ev) as { sources?: unknown } | undefined;
    if (!doc || typeof doc !== 'object') continue;
    if (!Array.isArray(doc.sources)) {
      ev.findings.push({ severity: 'warning', source, message: 'build info has no sources list' });
      continue;
    }
    const items: Materials['items'] = [];
    for (const [i, s] of (doc.sources as unknown[]).entries()) {
      const src = s as { type?: unknown; ref?: unknown; pin?: unknown } | null;
      if (!src || typeof src.ref !== 'string') continue;
      items.push({ uri: src.ref, type: String(src.type ?? ''), ...(typeof src.pin === 'string' ? { digest: { pin: src.pin } } : {}) });
      if (src.type !== 'docker-image') continue;
      const c = claimFromRef('buildkit-buildinfo', `${source} sources[${i}]`, src.ref, typeof src.pin === 'string' ? src.pin : undefined, 'material', ev.findings);
      if (c) ev.claims.push(c);
    }
    ev.materials.push({ items });
  }
}

/** pkg:docker/<namespace>/<name>@<version>?digest=…&platform=… → an image reference. */
export function dockerPurlToRef(purl: string): { ref: string; digest?: string; platform?: string } | undefined {
  const m = /^pkg:docker\/([^@?#]+)(?:@([^?#]+))?(?:\?([^#]*))?/.exec(purl);
  if (!m) return undefined;
  let path: string;
  try {
    path = m[1]!.split('/').map(decodeURIComponent).join('/');
  } catch {
    return undefined;
  }
  const q = new URLSearchParams(m[3] ?? '');
  let version = m[2] ? safeDecode(m[2]) : undefined;
  if (version === undefined && m[2]) return undefined;
  const digest = q.get('digest') ?? (version && /^sha\d+:/.test(version) ? version : undefined);
  if (version && version === digest) version = undefined;
  const ref = `${path}${version ? `:${version}` : ''}${digest ? `@${digest}` : ''}`;
  return { ref, ...(digest ? { digest } : {}), ...(q.get('platform') ? { platform: q.get('platform')! } : {}) };
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

interface Statement {
  predicateType?: unknown;
  subject?: unknown;
  predicate?: {
    materials?: unknown;
    builder?: { id?: unknown };
    buildType?: unknown;
    invocation?: { configSource?: unknown };
    metadata?: { reproducible?: unknown; buildStartedOn?: unknown; buildFinishedOn?: unknown };
    buildDefinition?: { buildType?: unknown; resolvedDependencies?: unknown; externalParameters?: { configSource?: unknown } };
    runDetails?: { builder?: { id?: unknown }; metadata?: { buildkit_reproducible?: unknown; startedOn?: unknown; finishedOn?: unknown } };
  };
}

function fromStatement(st: Statement, where: string, ev: Evidence): void {
  const pt = String(st.predicateType ?? '');
  const p = st.predicate ?? {};
  let list: unknown;
  let field: string;
  const mat: Materials = { items: [] };
  if (pt.startsWith('https://slsa.dev/provenance/v0.')) {
    list = p.materials;
    field = 'predicate.materials';
    if (typeof p.builder?.id === 'string') mat.builderId = p.builder.id;
    if (typeof p.buildType === 'string') mat.buildType = p.buildType;
    if (p.invocation?.configSource && typeof p.invocation.configSource === 'object') mat.configSource = p.invocation.configSource as Materials['configSource'];
    if (typeof p.metadata?.reproducible === 'boolean') mat.reproducible = p.metadata.reproducible;
    if (typeof p.metadata?.buildStartedOn === 'string') mat.startedOn = p.metadata.buildStartedOn;
    if (typeof p.metadata?.buildFinishedOn === 'string') mat.finishedOn = p.metadata.buildFinishedOn;
  } else if (pt.startsWith('https://slsa.dev/provenance/v1')) {
    list = p.buildDefinition?.resolvedDependencies;
    field = 'predicate.buildDefinition.resolvedDependencies';
    if (typeof p.runDetails?.builder?.id === 'string') mat.builderId = p.runDetails.builder.id;
    if (typeof p.buildDefinition?.buildType === 'string') mat.buildType = p.buildDefinition.buildType;
    const cs = p.buildDefinition?.externalParameters?.configSource;
    if (cs && typeof cs === 'object') {
      const c = cs as { uri?: string; digest?: Record<string, string>; path?: string };
      mat.configSource = { ...(c.uri ? { uri: c.uri } : {}), ...(c.digest ? { digest: c.digest } : {}), ...(c.path ? { entryPoint: c.path } : {}) };
    }
    if (typeof p.runDetails?.metadata?.buildkit_reproducible === 'boolean') mat.reproducible = p.runDetails.metadata.buildkit_reproducible;
    if (typeof p.runDetails?.metadata?.startedOn === 'string') mat.startedOn = p.runDetails.metadata.startedOn;
    if (typeof p.runDetails?.metadata?.finishedOn === 'string') mat.finishedOn = p.runDetails.metadata.finishedOn;
  } else {
    return;
  }
  if (!Array.isArray(list)) {
    ev.findings.push({ severity: 'warning', source: `${where} ${field}`, message: 'not a list; ignored' });
    return;
  }
  for (const [i, m] of (list as unknown[]).entries()) {
    const item = m as { uri?: unknown; digest?: unknown } | null;
    if (!item || typeof item.uri !== 'string') continue;
    const digest = item.digest && typeof item.digest === 'object' ? (item.digest as Record<string, string>) : undefined;
    mat.items.push({ uri: item.uri, ...(digest ? { digest } : {}) });
    if (!item.uri.startsWith('pkg:docker/')) continue;
    const parsed = dockerPurlToRef(item.uri);
    const source = `${where} ${field}[${i}]`;
    if (!parsed) {
      ev.findings.push({ severity: 'warning', source, message: `purl "${item.uri.slice(0, 200)}" does not parse` });
      continue;
    }
    const d = typeof digest?.sha256 === 'string' ? `sha256:${digest.sha256}` : parsed.digest;
    const c = claimFromRef('slsa-provenance', source, parsed.ref.replace(/@sha\d+:[a-f0-9]+$/, ''), d, 'material', ev.findings);
    if (c) ev.claims.push(c);
  }
  ev.materials.push(mat);
}

/** BuildKit attestation manifests for this image (`vnd.docker.reference.digest` = the image's digest). */
async function fromAttestations(source: ImageSource, index: IndexNode | undefined, image: ImageNode, ev: Evidence): Promise<void> {
  if (!index) return;
  const atts = index.index.manifests.filter(
    (d) => d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest' && d.annotations?.['vnd.docker.reference.digest'] === image.descriptor.digest,
  );
  for (const att of atts) {
    ev.builderHints.push({ builder: 'buildkit', source: `attestation manifest ${att.digest}` });
    let manifest: { layers?: Descriptor[] };
    try {
      manifest = JSON.parse((await source.fetchManifest(att)).toString('utf8')) as { layers?: Descriptor[] };
    } catch (e) {
      ev.findings.push({ severity: 'warning', source: `attestation manifest ${att.digest}`, message: `unreadable: ${(e as Error).message}` });
      continue;
    }
    for (const layer of Array.isArray(manifest.layers) ? manifest.layers : []) {
      const pt = layer.annotations?.['in-toto.io/predicate-type'] ?? '';
      if (!pt.startsWith('https://slsa.dev/provenance/')) continue;
      const where = `attestation ${att.digest} layer ${layer.digest}`;
      if (layer.size > 16 * 1024 * 1024) {
        ev.findings.push({ severity: 'warning', source: where, message: 'provenance statement larger than 16 MiB; ignored' });
        continue;
      }
      try {
        const st = decodeJson((await source.readBlob(layer, 16 * 1024 * 1024)).toString('utf8'), where, ev) as Statement | undefined;
        if (st && typeof st === 'object') fromStatement(st, where, ev);
      } catch (e) {
        ev.findings.push({ severity: 'warning', source: where, message: `unreadable: ${(e as Error).message}` });
      }
    }
  }
}

function fromBuildpacks(labels: Record<string, string>, ev: Evidence): void {
  const raw = labels[CNB_LABEL];
  if (raw === undefined) return;
  const source = `config label ${CNB_LABEL}`;
  ev.builderHints.push({ builder: 'buildpacks', source });
  if (typeof raw !== 'string' || raw.length > MAX_METADATA) {
    ev.findings.push({ severity: 'warning', source, message: 'label is not a string of a sensible size; ignored' });
    return;
  }
  const doc = decodeJson(raw, source, ev) as { runImage?: Record<string, unknown>; stack?: { runImage?: Record<string, unknown> } } | undefined;
  if (!doc || typeof doc !== 'object') return;
  const run = doc.runImage && typeof doc.runImage === 'object' ? doc.runImage : undefined;
  const topLayer = typeof run?.topLayer === 'string' && isDigest(run.topLayer) ? run.topLayer : undefined;
  const reference = typeof run?.reference === 'string' ? run.reference : undefined;
  const image = typeof run?.image === 'string' ? run.image : typeof doc.stack?.runImage?.image === 'string' ? (doc.stack.runImage.image as string) : undefined;
  // runImage.reference is repo@manifest-digest, or just an image ID (config digest).
  if (reference && reference.includes('@')) {
    const c = claimFromRef('buildpacks', `${source} runImage.reference`, reference.split('@')[0]!, reference.split('@')[1], 'base', ev.findings);
    if (c) {
      if (topLayer) c.topLayer = topLayer;
      if (image) c.reference = image;
      ev.claims.push(c);
      return;
    }
  }
  if (image) {
    const c = claimFromRef('buildpacks', `${source} ${run?.image ? 'runImage.image' : 'stack.runImage.image'}`, image, undefined, 'base', ev.findings);
    if (c) {
      if (topLayer) c.topLayer = topLayer;
      ev.claims.push(c);
    }
  } else if (topLayer) {
    ev.claims.push({ kind: 'buildpacks', source: `${source} runImage.topLayer`, role: 'base', topLayer });
  }
}

export async function collectEvidence(
  source: ImageSource,
  image: ImageNode,
  config: ImageConfig,
  index: IndexNode | undefined,
): Promise<Evidence> {
  const ev: Evidence = { claims: [], findings: [], materials: [], builderHints: [] };
  fromAnnotations('manifest-annotation', 'manifest annotation', image.manifest.annotations, ev);
  if (index) {
    fromAnnotations('index-entry-annotation', 'index entry annotation', image.descriptor.annotations, ev);
    fromAnnotations('index-annotation', 'index annotation', index.index.annotations, ev);
  }
  const labels: Record<string, string> = {};
  const rawLabels = config.config?.Labels;
  if (rawLabels && typeof rawLabels === 'object') {
    for (const [k, v] of Object.entries(rawLabels)) {
      if (typeof v !== 'string') continue;
      if (v.length > MAX_METADATA) {
        ev.findings.push({ severity: 'warning', source: `config label ${k.slice(0, 100)}`, message: `label value is ${v.length} bytes; ignored` });
        continue;
      }
      labels[k] = v;
    }
  }
  fromAnnotations('config-label', 'config label', labels, ev);
  fromBuildinfo(config, ev);
  await fromAttestations(source, index, image, ev);
  fromBuildpacks(labels, ev);
  if (typeof config.author === 'string' && /ko-build\/ko|google\/ko/.test(config.author)) ev.builderHints.push({ builder: 'ko', source: `image config author "${config.author}"` });
  if ((config.history ?? []).some((h) => typeof h.comment === 'string' && h.comment.startsWith('buildkit.dockerfile'))) {
    ev.builderHints.push({ builder: 'buildkit', source: 'image config history comment buildkit.dockerfile.v0' });
  }
  return ev;
}
