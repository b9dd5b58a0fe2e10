import type { Readable } from 'node:stream';
import { PlinthError, describeError } from '../util/errors.js';
import type { Descriptor } from '../oci/types.js';
import { formatPlatform } from '../oci/types.js';
import type { ImageReference } from '../oci/reference.js';
import { openSource, parseLocation, type ImageLocation, type OpenOptions } from '../source/open.js';
import { readConfig, resolveRoot, selectImages, type PlatformChoice } from '../source/image.js';
import type { ImageSource, RootDocument, Transport } from '../source/types.js';
import { emptyCatalog, type Catalog } from '../provenance/catalog.js';
import { provenanceOf, type ProvenanceReport } from '../provenance/report.js';
import type { ScanResult } from '../vuln/scan.js';
import type { VulnStore } from '../vuln/store.js';
import type { Material } from '../sign/discover.js';
import type { NotationMaterial } from '../notation/verify.js';
import type { RegistrySource } from '../source/registry.js';
import { ruleApplies, type PolicyContext } from './match.js';
import { RULES, registryMatch } from './rules.js';
import { parseImageReference } from '../oci/reference.js';
import { ruleKind, ruleSettings, type ImagePolicy, type RuleKind } from './schema.js';

/**
 * The facts a policy is judged on, for one image: its reference, what it resolves to, and per
 * platform its labels, provenance (base image) and scan. Only what the applicable rules need is
 * gathered: a policy of registry allowlists never touches the network.
 */
export interface FactNeeds {
  /** Resolve the reference to a digest (the registry's manifest or index). */
  manifest: boolean;
  /** Config labels and manifest annotations per platform. */
  labels: boolean;
  /** Base image detection per platform (catalog, evidence). */
  provenance: boolean;
  /** Provenance asks the registry too (base layers, whether the base tag moved). */
  registryCheck: boolean;
  /** A declared base not in the catalog is fetched from its registry to check its layers against the image's. */
  verifyBase: boolean;
  /** Vulnerability scan per platform (reads every layer). */
  scan: boolean;
  /** Signatures and attestations of the image's digest (bundle referrers, .sig and .att tags). */
  signatures: boolean;
  /** Notary Project (notation) signatures of the image's digest (referrers). */
  notation?: boolean;
  /** Docker Content Trust data of the repository, one per trust configuration (dctConfigKey). */
  dct?: string[];
}

/** What the trust server answered for one configuration: verified trust data, or why not. */
export type DctFact = { trust: import('../notary/targets.js').TrustData } | { error: string; /** The server could not be asked (not a verdict). */ lookup: boolean };

export interface PlatformFacts {
  /** os/arch[/variant], null when the config does not say. */
  platform: string | null;
  /** Digest of this platform's image manifest. */
  digest: string;
  /** Config labels (empty unless labels were needed). */
  labels: Record<string, string>;
  /** Index, index-entry and manifest annotations, the manifest's winning (empty unless needed). */
  annotations: Record<string, string>;
  provenance: ProvenanceReport | null;
  scan: ScanResult | null;
}

export type FactKind = 'reference' | 'image' | 'provenance' | 'base-lookup' | 'scan' | 'registry-check' | 'signatures' | 'deadline';

export interface FactError {
  fact: FactKind;
  message: string;
  /** PlinthError code when there is one (MANIFEST_UNKNOWN, UNAUTHORIZED, TIMEOUT…). */
  code?: string;
  /** The platform it concerns, when only one. */
  platform?: string;
}

export interface ImageFacts {
  /** The image as given (pod spec, command line). */
  image: string;
  /** The normalised reference of a registry image; null for local sources (oci:, archives) and invalid references. */
  reference: ImageReference | null;
  transport: Transport | null;
  /** Digest of what the reference resolves to (manifest or index), when it was resolved. */
  digest: string | null;
  mediaType: string | null;
  platforms: PlatformFacts[];
  /** What was asked for. */
  needs: FactNeeds;
  /** The vulnerability database scanned with (path), null when none. */
  scanDb: string | null;
  /** Signatures and attestations found for `digest` (checked by the rules against their keys). */
  signatures: Material[] | null;
  /** Size of the manifest or index `digest` names (notation and DCT sign digest and size). */
  size?: number;
  /** Notation signatures found for `digest` (when needed). */
  notation?: NotationMaterial[] | null;
  /** Docker Content Trust data by dctConfigKey (when needed). */
  dct?: Record<string, DctFact>;
  /** What could not be gathered: the rules that need it answer `error`. */
  errors: FactError[];
}

export interface GatherOptions {
  /** The policy whose applicable rules decide what is gathered (unless `needs` is given). */
  policy?: ImagePolicy;
  /** Namespace, labels, annotations of the request (decides which rules apply). */
  context?: PolicyContext;
  /** Override: gather exactly this. */
  needs?: Partial<FactNeeds>;
  /** Resolve the digest even if no rule needs it (the webhook pins tags: spec.pinDigests). */
  resolveDigest?: boolean;
  /** Credentials, TLS, timeouts for registries. */
  registryOptions?: OpenOptions;
  catalog?: Catalog;
  /** A vulnerability database: a path (opened read-only for this call) or an open store. */
  db?: string | VulnStore;
  /** Platform choice; default every platform of a multi-platform image. */
  platform?: PlatformChoice;
  /** Clock for ages (ms since the epoch). */
  now?: number;
  /** Give up after this: an AbortSignal, or a budget in ms. What is missing becomes an error fact. */
  deadline?: AbortSignal | number;
  /**
   * Signatures already fetched, by `registry/repository@digest` (the webhook shares them between
   * tags, contexts and requests); a hit skips the registry.
   */
  signatureCache?: { get(key: string): Material[] | undefined };
  /** The same for notation signatures, by `registry/repository@digest`. */
  notationCache?: { get(key: string): NotationMaterial[] | undefined };
  /** Verified Docker Content Trust data, by `dctConfigKey\u0000registry/repository`. */
  dctCache?: { get(key: string): DctFact | undefined };
}

const NONE: FactNeeds = { manifest: false, labels: false, provenance: false, registryCheck: false, verifyBase: false, scan: false, signatures: false };

function merge(a: FactNeeds, b: Partial<FactNeeds>): FactNeeds {
  return {
    manifest: a.manifest || !!b.manifest,
    labels: a.labels || !!b.labels,
    provenance: a.provenance || !!b.provenance,
    registryCheck: a.registryCheck || !!b.registryCheck,
    verifyBase: a.verifyBase || !!b.verifyBase,
    scan: a.scan || !!b.scan,
    signatures: a.signatures || !!b.signatures,
    ...(a.notation || b.notation ? { notation: true } : {}),
    ...(a.dct?.length || b.dct?.length ? { dct: [...new Set([...(a.dct ?? []), ...(b.dct ?? [])])] } : {}),
  };
}

/** The rule kinds of a policy that apply to an image in a context. */
export function applicableKinds(policy: ImagePolicy, image: string, ref: ImageReference | null, context: PolicyContext = {}): RuleKind[] {
  return [...new Set(policy.spec.rules.filter((r) => ruleApplies(r, image, ref, context).applies).map(ruleKind))];
}

/** What the rules of a policy that apply to this image need to know. */
export function factNeeds(policy: ImagePolicy, image: string, context: PolicyContext = {}): FactNeeds {
  let ref: ImageReference | null = null;
  try {
    const loc = parseLocation(image);
    if (loc.transport === 'registry') ref = loc.ref;
  } catch {
    /* invalid: nothing to gather */
  }
  let needs = { ...NONE };
  for (const rule of policy.spec.rules) {
    if (!ruleApplies(rule, image, ref, context).applies) continue;
    const kind = ruleKind(rule);
    needs = merge(needs, (RULES[kind].needs as (s: unknown) => Partial<FactNeeds>)(ruleSettings(rule, kind)));
  }
  if (needs.provenance || needs.labels || needs.scan || needs.registryCheck || needs.signatures || needs.notation || needs.dct?.length) needs.manifest = true;
  if (needs.registryCheck) needs.provenance = true;
  return needs;
}

/** Caches manifests and small blobs: provenance, labels and scan read the same documents. */
class CachingSource implements ImageSource {
  private root: Promise<RootDocument> | undefined;
  private readonly docs = new Map<string, Promise<Buffer>>();
  constructor(readonly inner: ImageSource) {}
  get transport(): Transport {
    return this.inner.transport;
  }
  get description(): string {
    return this.inner.description;
  }
  resolve(): Promise<RootDocument> {
    this.root ??= this.inner.resolve();
    return this.root;
  }
  fetchManifest(desc: Descriptor): Promise<Buffer> {
    return this.memo(`m:${desc.digest}`, () => this.inner.fetchManifest(desc));
  }
  openBlob(desc: Descriptor): Promise<Readable> {
    return this.inner.openBlob(desc);
  }
  readBlob(desc: Descriptor, limit?: number): Promise<Buffer> {
    if (desc.size > 4 * 1024 * 1024) return this.inner.readBlob(desc, limit);
    return this.memo(`b:${desc.digest}`, () => this.inner.readBlob(desc, limit));
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  private memo(key: string, f: () => Promise<Buffer>): Promise<Buffer> {
    let p = this.docs.get(key);
    if (!p) {
      p = f();
      p.catch(() => this.docs.delete(key));
      this.docs.set(key, p);
    }
    return p;
  }
}

class DeadlineExceeded extends PlinthError {
  constructor(what: string) {
    super('TIMEOUT', `deadline exceeded before Plinth finished ${what}`);
  }
}

/**
 * Gather the facts about one image that a policy's applicable rules need. Never throws for
 * problems with the image (unreadable, unknown, deadline): they become `errors`, and the rules
 * that needed the missing facts answer `error`.
 */
export async function gatherFacts(image: string, o: GatherOptions = {}): Promise<ImageFacts> {
  const facts: ImageFacts = { image, reference: null, transport: null, digest: null, mediaType: null, platforms: [], needs: { ...NONE }, scanDb: null, signatures: null, errors: [] };
  let loc: ImageLocation;
  try {
    loc = parseLocation(image);
  } catch (e) {
    facts.errors.push({ fact: 'reference', message: `"${image}" is not a valid image reference: ${describeError(e)}`, ...(e instanceof PlinthError ? { code: e.code } : {}) });
    return facts;
  }
  facts.transport = loc.transport;
  if (loc.transport === 'registry') facts.reference = loc.ref;
  let needs = o.policy ? factNeeds(o.policy, image, o.context) : { ...NONE };
  if (o.needs) needs = merge(needs, o.needs);
  if (o.resolveDigest && loc.transport === 'registry') needs.manifest = true;
  if (needs.provenance || needs.labels || needs.scan || needs.registryCheck || needs.signatures || needs.notation || needs.dct?.length) needs.manifest = true;
  if (needs.registryCheck) needs.provenance = true;
  facts.needs = needs;
  if (!needs.manifest) return facts;

  const signal = typeof o.deadline === 'number' ? AbortSignal.timeout(Math.max(0, o.deadline)) : o.deadline;
  const registryOptions: OpenOptions = { ...(o.registryOptions ?? {}) };
  // Requests in flight when the deadline passes are ended by closing the source; base look-ups
  // (their own connections) by a request timeout just past the deadline.
  if (typeof o.deadline === 'number') registryOptions.timeoutMs = Math.max(1, Math.min(registryOptions.timeoutMs ?? 60_000, o.deadline + 1000));
  const catalog = o.catalog ?? emptyCatalog();
  const now = o.now ?? Date.now();
  const baseLookupAllowed = baseLookupFilter(o.policy);
  let src: ImageSource | undefined;
  const guard = <T>(p: Promise<T>, what: string): Promise<T> => {
    if (!signal) return p;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        reject(new DeadlineExceeded(what));
        // Closing the source ends its connections: requests in flight fail and stop.
        void src?.close().catch(() => {});
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(signal.aborted ? new DeadlineExceeded(what) : e);
        },
      );
    });
  };
  const record = (fact: FactKind, e: unknown, platform?: string) => {
    const deadline = e instanceof DeadlineExceeded;
    facts.errors.push({
      fact: deadline ? 'deadline' : fact,
      message: describeError(e),
      ...(e instanceof PlinthError ? { code: e.code } : {}),
      ...(platform ? { platform } : {}),
    });
  };

  let cached: CachingSource;
  try {
    src = cached = new CachingSource(await guard(openSource(loc, registryOptions), `opening ${image}`));
  } catch (e) {
    record('image', e);
    return facts;
  }
  let store: VulnStore | undefined;
  let ownStore = false;
  try {
    const source = src;
    let images;
    let index;
    let root;
    try {
      root = await guard(resolveRoot(source), `resolving ${image}`);
      facts.digest = root.descriptor.digest;
      facts.mediaType = root.descriptor.mediaType;
      facts.size = root.descriptor.size;
    } catch (e) {
      record('image', e);
      return facts;
    }
    if (needs.signatures && loc.transport === 'registry') {
      try {
        const hit = o.signatureCache?.get(`${loc.ref.name}@${root.descriptor.digest}`);
        if (hit) facts.signatures = hit;
        else {
          const { discover } = await import('../sign/discover.js');
          const client = (cached.inner as RegistrySource).client;
          facts.signatures = await guard(discover(client, loc.ref.repository, root.descriptor.digest), `looking for the signatures of ${image}`);
        }
      } catch (e) {
        record('signatures', e);
      }
    }
    if (needs.notation && loc.transport === 'registry') {
      try {
        const hit = o.notationCache?.get(`${loc.ref.name}@${root.descriptor.digest}`);
        if (hit) facts.notation = hit;
        else {
          const { discoverNotation } = await import('../notation/verify.js');
          const client = (cached.inner as RegistrySource).client;
          facts.notation = await guard(discoverNotation(client, loc.ref.repository, root.descriptor.digest), `looking for the notation signatures of ${image}`);
        }
      } catch (e) {
        record('signatures', e);
      }
    }
    if (needs.dct?.length && loc.transport === 'registry') {
      const { updateTrust, defaultTrustServer } = await import('../notary/client.js');
      facts.dct = {};
      for (const key of needs.dct) {
        const hit = o.dctCache?.get(`${key}\u0000${loc.ref.name}`);
        if (hit) {
          facts.dct[key] = hit;
          continue;
        }
        const c = JSON.parse(key) as { server: string | null; trustDir: string | null; rootKeys: string[] };
        const server = c.server ?? defaultTrustServer(loc.ref.registry);
        const http = { ...(registryOptions.signal ? { signal: registryOptions.signal } : signal ? { signal } : {}), ...(registryOptions.network ? { network: registryOptions.network } : {}), ...(registryOptions.timeoutMs ? { timeoutMs: registryOptions.timeoutMs } : {}) };
        try {
          const trust = await guard(updateTrust(loc.ref.name, server, { trustDir: c.trustDir ?? false, rootKeyPins: c.rootKeys, ...(o.now ? { now: new Date(o.now) } : {}), http }), `reading the Docker Content Trust data of ${loc.ref.name}`);
          facts.dct[key] = { trust };
        } catch (e) {
          // A verdict on the trust data is a fact; a trust server that could not be asked is an error.
          const verdict = e instanceof PlinthError && (e.code === 'SIGNATURE_INVALID' || e.code === 'MANIFEST_UNKNOWN');
          if (!verdict) record('signatures', e);
          facts.dct[key] = { error: `${server}: ${describeError(e)}`, lookup: !verdict };
        }
      }
    }
    try {
      if (!(needs.labels || needs.provenance || needs.scan)) return facts;
      images = await guard(selectImages(source, root, o.platform ?? 'all'), `reading the platforms of ${image}`);
      index = root.kind === 'index' ? root : undefined;
    } catch (e) {
      record('image', e);
      return facts;
    }
    for (const img of images) {
      let platform: string | null = img.platform ? formatPlatform(img.platform) : null;
      const pf: PlatformFacts = { platform, digest: img.descriptor.digest, labels: {}, annotations: {}, provenance: null, scan: null };
      facts.platforms.push(pf);
      try {
        const { config } = await guard(readConfig(source, img), `reading the config of ${image}`);
        if (config.os && config.architecture) {
          platform = formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) });
          pf.platform = platform;
        }
        if (needs.labels) {
          for (const [k, v] of Object.entries(config.config?.Labels ?? {})) if (typeof v === 'string') pf.labels[k] = v;
          const ann = { ...(index?.index.annotations ?? {}), ...(img.descriptor.annotations ?? {}), ...(img.manifest.annotations ?? {}) } as Record<string, unknown>;
          for (const [k, v] of Object.entries(ann)) if (typeof v === 'string') pf.annotations[k] = v;
        }
      } catch (e) {
        record('image', e, platform ?? img.descriptor.digest);
        continue;
      }
      if (needs.provenance) {
        try {
          pf.provenance = await guard(
            provenanceOf(source, img, index, { catalog, now, registryOptions, ...(needs.registryCheck ? { checkRegistry: true } : {}), ...(needs.verifyBase ? { verifyBase: true } : {}), ...(baseLookupAllowed ? { baseLookupAllowed } : {}) }),
            `finding the base of ${image}`,
          );
          // A base that could not be fetched leaves the answer incomplete: an error (not cached).
          for (const f of pf.provenance.findings) {
            if (f.lookupError) facts.errors.push({ fact: 'base-lookup', message: f.message, ...(platform ? { platform } : {}) });
          }
          if (needs.registryCheck) {
            for (const f of pf.provenance.findings) {
              if (f.source === 'registry check') facts.errors.push({ fact: 'registry-check', message: f.message, ...(platform ? { platform } : {}) });
            }
          }
        } catch (e) {
          record('provenance', e, platform ?? img.descriptor.digest);
        }
      }
    }
    if (needs.scan && facts.platforms.length) {
      try {
        if (o.db === undefined) throw new PlinthError('IO', 'no vulnerability database is configured (plinth check --db PATH; fill it with plinth db import/update/pull)');
        if (typeof o.db === 'string') {
          const { openStore } = await import('../vuln/store.js');
          store = openStore(o.db, { readonly: true });
          ownStore = true;
        } else store = o.db;
        facts.scanDb = store.path;
        const { scan } = await import('../vuln/scan.js');
        const results = await guard(scan(source, o.platform ?? 'all', store, { catalog }), `scanning ${image} for vulnerabilities`);
        for (const r of results) {
          const pf = facts.platforms.find((p) => p.digest === r.image.digest);
          if (pf) pf.scan = r;
        }
      } catch (e) {
        record('scan', e);
      }
    }
    return facts;
  } finally {
    if (ownStore) store?.close();
    await src.close().catch(() => {});
  }
}

/**
 * A base image an image names (annotation or label) is looked up only in registries that every
 * enforce allowedRegistries rule allows: the image's author chooses that name, and the webhook
 * must not contact registries the policy does not allow. No such rule: no restriction.
 */
export function baseLookupFilter(policy: ImagePolicy | undefined): ((name: string) => boolean) | undefined {
  const lists: string[][] = [];
  for (const r of policy?.spec.rules ?? []) {
    if (r.mode === 'enforce' && r.allowedRegistries) lists.push(r.allowedRegistries.registries);
  }
  if (!lists.length) return undefined;
  return (name) => {
    let ref;
    try {
      ref = parseImageReference(name);
    } catch {
      return false;
    }
    return lists.every((l) => registryMatch(l, ref) !== undefined);
  };
}
