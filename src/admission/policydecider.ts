import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { PlinthError, describeError } from '../util/errors.js';
import { loadPolicy, type LoadedPolicy } from '../policy/load.js';
import type { Material } from '../sign/discover.js';
import { gatherFacts, type DctFact } from '../policy/facts.js';
import type { NotationMaterial } from '../notation/verify.js';
import { evaluate, type Decision } from '../policy/evaluate.js';
import { ruleKind } from '../policy/schema.js';
import { loadCatalog, emptyCatalog, type Catalog } from '../provenance/catalog.js';
import { parseLocation, type OpenOptions } from '../source/open.js';
import type { VulnStore } from '../vuln/store.js';
import { NetworkGuard, hostOnly, type NetworkPolicy } from '../registry/netguard.js';
import { TtlCache, type DecideContext, type Decider, type ImageVerdict } from './server.js';

/**
 * The webhook's Decider: Plinth's policy file and catalog, reloaded when they change (ConfigMap
 * updates swap a symlink in the mounted directory, so the directories are watched), and the
 * optional vulnerability database. A reload that fails keeps the last good policy and is logged.
 */
export interface PolicyDeciderOptions {
  policyFile: string;
  catalogFile?: string;
  dbPath?: string;
  registryOptions?: OpenOptions;
  logger?: Logger;
  /** Called after a successful reload (the server drops its cache). */
  onReload?: () => void;
  /**
   * Refuse registries (and their redirects and token servers) on loopback, private, link-local
   * and other internal addresses: a pod spec must not make the webhook call the cluster's own
   * services or the cloud metadata endpoint. Default true.
   */
  denyPrivateNetworks?: boolean;
  /** Hosts exempt from that (names, addresses or globs such as `*.registry.internal`). Hosts named literally by the policy's enforce allowedRegistries rules are exempt too. */
  allowPrivateRegistries?: string[];
  /** How long a verdict with a failed signatures rule may be cached (default 10 s). */
  signatureFailureTtlMs?: number;
  /** How long fetched signatures that satisfied every signatures rule are reused per digest (default 10 min). */
  signatureTtlMs?: number;
}

export class PolicyDecider implements Decider {
  private loaded: LoadedPolicy | undefined;
  private catalog: Catalog = emptyCatalog();
  private catalogVersion = '';
  /** Computed on (re)load: asked for on every request. */
  private versionKey = '';
  private contextLabels: string[] = [];
  /** The policy has workloadSecurity rules: decisions depend on the admitted object. */
  private workloadRules = false;
  private network: NetworkPolicy = { denyPrivate: true };
  private store: VulnStore | undefined;
  private watchers: FSWatcher[] = [];
  private reloadTimer: NodeJS.Timeout | undefined;

  /**
   * Signatures fetched per `registry/repository@digest`, reused by every tag, namespace and request
   * that resolves to the digest: kept for signatureTtlMs when every signatures rule passed with
   * them, for signatureFailureTtlMs otherwise (a signature added later is seen soon). Checking
   * them against a rule's keys is pure and runs per decision.
   */
  private readonly signatures: TtlCache<Material[]>;
  /** Notation signatures per digest, and verified Docker Content Trust data per repository and trust configuration: kept as the cosign signatures are. */
  private readonly notation: TtlCache<NotationMaterial[]>;
  private readonly dct: TtlCache<DctFact>;

  private constructor(private readonly o: PolicyDeciderOptions) {
    this.signatures = new TtlCache<Material[]>(o.signatureTtlMs ?? 10 * 60_000, 10_000);
    this.notation = new TtlCache<NotationMaterial[]>(o.signatureTtlMs ?? 10 * 60_000, 10_000);
    this.dct = new TtlCache<DctFact>(o.signatureTtlMs ?? 10 * 60_000, 1_000);
  }

  static async create(o: PolicyDeciderOptions): Promise<PolicyDecider> {
    const d = new PolicyDecider(o);
    await d.reload(true);
    if (o.dbPath) {
      const { openStore } = await import('../vuln/store.js');
      d.store = openStore(o.dbPath, { readonly: true });
    }
    d.watch();
    return d;
  }

  /** The catalog in force (the last good load of catalogFile; empty without one). */
  currentCatalog(): Catalog {
    return this.catalog;
  }

  /** Load policy and catalog; on first load errors are fatal, later they keep the last good state. */
  async reload(first = false): Promise<boolean> {
    try {
      const loaded = await loadPolicy(this.o.policyFile);
      const catalog = this.o.catalogFile ? await loadCatalog(this.o.catalogFile, { mustExist: true }) : emptyCatalog();
      const changed = !this.loaded || loaded.version !== this.loaded.version || JSON.stringify(catalog) !== this.catalogVersion;
      this.loaded = loaded;
      this.catalog = catalog;
      this.catalogVersion = JSON.stringify(catalog);
      this.versionKey = `${loaded.version}|${hash(this.catalogVersion)}`;
      const keys = new Set<string>();
      for (const r of loaded.policy.spec.rules) {
        for (const k of Object.keys(r.match?.labels ?? {})) keys.add(k);
        for (const k of Object.keys(r.match?.excludeLabels ?? {})) keys.add(k);
      }
      this.contextLabels = [...keys].sort();
      this.workloadRules = loaded.policy.spec.rules.some((r) => r.workloadSecurity !== undefined);
      this.network = networkPolicy(loaded, this.o);
      for (const w of loaded.warnings) this.o.logger?.warn({ policy: loaded.file }, w);
      if (changed && !first) {
        this.o.logger?.info({ policy: loaded.file, version: loaded.version, bases: catalog.bases.length }, 'policy reloaded');
        // Signatures kept because the old rules passed with them are fetched again.
        this.signatures.clear();
        this.notation.clear();
        this.dct.clear();
        this.o.onReload?.();
      }
      return true;
    } catch (e) {
      if (first) throw e;
      this.o.logger?.error({ error: describeError(e) }, 'policy or catalog reload failed; keeping the previous one');
      return false;
    }
  }

  private watch(): void {
    const dirs = new Set([path.dirname(path.resolve(this.o.policyFile)), ...(this.o.catalogFile ? [path.dirname(path.resolve(this.o.catalogFile))] : [])]);
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => {
          clearTimeout(this.reloadTimer);
          this.reloadTimer = setTimeout(() => void this.reload(), 200);
        });
        w.on('error', () => {});
        this.watchers.push(w);
      } catch (e) {
        this.o.logger?.warn({ dir, error: describeError(e) }, 'cannot watch for policy changes');
      }
    }
  }

  close(): void {
    clearTimeout(this.reloadTimer);
    for (const w of this.watchers) w.close();
    this.store?.close();
  }

  version(): string {
    return this.versionKey;
  }

  ready(): boolean {
    return this.loaded !== undefined;
  }

  pinDigests(): boolean {
    return this.loaded?.policy.spec.pinDigests === true;
  }

  failureMode(): 'closed' | 'open' {
    return this.loaded?.policy.spec.failurePolicy === 'open' ? 'open' : 'closed';
  }

  /**
   * Only what the policy looks at: the namespace, the label keys its rules select on, the
   * break-glass annotation; with workloadSecurity rules, the workload (its kind, annotations and spec).
   */
  cacheContext(ctx: DecideContext): string {
    const spec = this.loaded?.policy.spec;
    let labels = '';
    for (const k of this.contextLabels) labels += `${k}=${Object.prototype.hasOwnProperty.call(ctx.labels, k) ? ctx.labels[k] : ''},`;
    const bg = spec?.breakGlass ? (ctx.annotations[spec.breakGlass.annotation] ?? '') : '';
    const workload = this.workloadRules && ctx.via !== 'imagereview' ? `\u0000${workloadKey(ctx.object)}` : '';
    return `${ctx.namespace}\u0000${labels}\u0000${bg}${workload}`;
  }

  breakGlass(): string | undefined {
    // evaluate() applies the policy's break-glass annotation itself (enforce → audit).
    return undefined;
  }

  async decide(image: string, ctx: DecideContext, signal: AbortSignal): Promise<ImageVerdict> {
    const loaded = this.loaded!;
    const policy = loaded.policy;
    const now = Date.now();
    // Only the mutating webhook pins tags; the validating webhook and ImageReview see what will run.
    const context = {
      namespace: ctx.namespace,
      labels: ctx.labels,
      annotations: ctx.annotations,
      pinning: policy.spec.pinDigests === true && ctx.via === 'mutate',
      // workloadSecurity rules judge the admitted object (an ImageReview has none: they skip).
      ...(ctx.via !== 'imagereview' && ctx.object !== undefined ? { workload: ctx.object } : {}),
    };
    // Pod specs name registry images. Local transports (oci:, oci-archive:, docker-archive:) and
    // docker:// are refused before anything is opened: the webhook never reads local files.
    let loc;
    try {
      loc = parseLocation(image);
    } catch (e) {
      return { image, allowed: false, denials: [`${image} is not a valid image reference: ${describeError(e)}`], warnings: [], failures: [{ rule: 'image-reference', message: 'The image reference is not valid.', reason: describeError(e) }], cacheable: true };
    }
    if (loc.transport !== 'registry' || image.startsWith('docker://')) {
      return { image, allowed: false, denials: [`${image} is not a registry image reference`], warnings: [], failures: [{ rule: 'image-reference', message: 'Pods must name registry images (registry/repository:tag or @digest).', reason: `${image} names a local ${loc.transport} transport` }], cacheable: true };
    }
    // First the rules that need nothing from a registry (where the image may come from, how it is
    // referenced): an image they deny is never fetched — the webhook does not contact registries
    // a pod spec names unless the policy allows them.
    const offline = policy.spec.rules.filter((r) => r.mode === 'enforce' && (ruleKind(r) === 'allowedRegistries' || ruleKind(r) === 'workloadSecurity' || (ruleKind(r) === 'imageReferences' && !policy.spec.pinDigests)));
    if (offline.length) {
      const pre = { ...policy, spec: { ...policy.spec, rules: offline } };
      const preFacts = await gatherFacts(image, { policy: pre, context, catalog: this.catalog, now });
      const preDecision = evaluate(pre, preFacts, context, now);
      if (!preDecision.allowed) return verdict(image, { ...preDecision, digest: null }, true);
    }
    // A registry the network guard refuses is a denial, not an error: with failurePolicy open an
    // error would let the image in.
    if (this.network.denyPrivate) {
      try {
        await NetworkGuard.for(this.network).assertReachable(loc.ref.registry);
      } catch (e) {
        if (!(e instanceof PlinthError) || e.code !== 'DENIED') throw e;
        return { image, allowed: false, denials: [describeError(e)], warnings: [], digest: null, failures: [{ rule: 'network', message: 'The webhook does not contact registries on loopback, private or link-local addresses unless they are allowed.', reason: describeError(e) }], cacheable: true };
      }
    }
    const facts = await gatherFacts(image, {
      policy,
      context,
      catalog: this.catalog,
      ...(this.store ? { db: this.store } : {}),
      // Registry work stops when the request's deadline passes.
      registryOptions: { ...(this.o.registryOptions ?? {}), signal, network: this.network },
      resolveDigest: policy.spec.pinDigests === true,
      deadline: signal,
      now,
      signatureCache: { get: (key) => this.signatures.get(key)?.v },
      notationCache: { get: (key) => this.notation.get(key)?.v },
      dctCache: { get: (key) => this.dct.get(key)?.v },
    });
    const decision = evaluate(policy, facts, context, now);
    // A signature can be added to the same digest at any time: what a failed signatures rule saw
    // (the fetched signatures, the verdict) is kept only briefly, so a fixed image is admitted soon.
    const signaturesFailed = decision.results.some((r) => r.kind === 'signatures' && r.outcome !== 'pass' && r.outcome !== 'skip');
    const failTtl = this.o.signatureFailureTtlMs ?? SIGNATURE_FAILURE_TTL_MS;
    if (facts.signatures && facts.digest && facts.reference) {
      const key = `${facts.reference.name}@${facts.digest}`;
      if (!this.signatures.get(key)) this.signatures.set(key, facts.signatures, ...(signaturesFailed ? [failTtl] : []));
    }
    if (facts.notation && facts.digest && facts.reference) {
      const key = `${facts.reference.name}@${facts.digest}`;
      if (!this.notation.get(key)) this.notation.set(key, facts.notation, ...(signaturesFailed ? [failTtl] : []));
    }
    // Trust data that could not be fetched is not kept; a verdict on it is, briefly when a rule failed.
    for (const [k, v] of Object.entries(facts.dct ?? {})) {
      if (!facts.reference || ('error' in v && v.lookup)) continue;
      const key = `${k}\u0000${facts.reference.name}`;
      if (!this.dct.get(key)) this.dct.set(key, v, ...(signaturesFailed || 'error' in v ? [failTtl] : []));
    }
    return { ...verdict(image, decision, facts.errors.length === 0), ...(signaturesFailed ? { maxTtlMs: failTtl } : {}) };
  }
}

/** The network policy for a loaded policy: private addresses refused except for the hosts the operator or the policy names. */
function networkPolicy(loaded: LoadedPolicy, o: PolicyDeciderOptions): NetworkPolicy {
  const hosts = new Set(o.allowPrivateRegistries ?? []);
  for (const r of loaded.policy.spec.rules) {
    if (r.mode !== 'enforce') continue;
    for (const p of r.allowedRegistries?.registries ?? []) {
      const host = hostOnly(p.split('/')[0]!);
      // Only a host named literally (any port) is exempt: a glob ("*.example.com", "*:5000") would
      // lift the check for names nobody reviewed; those go to --allow-private-registry.
      if (host && !/[*?[\]{}]/.test(host)) hosts.add(host);
    }
    // A trust server the policy names is reached like the registries it allows.
    const server = r.signatures?.notaryV1?.server;
    if (server) hosts.add(new URL(server).hostname.replace(/^\[|\]$/g, ''));
  }
  return { denyPrivate: o.denyPrivateNetworks !== false, allowHosts: [...hosts] };
}

/** The server's view of a policy decision. */
function verdict(image: string, d: Decision, cacheable: boolean): ImageVerdict {
  return {
    image,
    allowed: d.allowed,
    denials: d.denials,
    warnings: d.warnings,
    digest: d.digest,
    results: d.results.map((r) => ({ rule: r.rule, outcome: r.outcome, mode: r.mode })),
    failures: d.results.filter((r) => r.action === 'deny').map((r) => ({ rule: r.rule, message: r.message, reason: r.reason })),
    cacheable,
  };
}

/** How long a verdict with a failed signatures rule is cached. */
export const SIGNATURE_FAILURE_TTL_MS = 10_000;

/** What a workloadSecurity rule reads of an object: kind, annotations, spec (not uid, resourceVersion, status). */
function workloadKey(obj: unknown): string {
  if (!obj || typeof obj !== 'object') return '';
  const o = obj as Record<string, unknown>;
  const meta = o['metadata'] && typeof o['metadata'] === 'object' ? (o['metadata'] as Record<string, unknown>) : {};
  try {
    // A cryptographic hash: a crafted object must not share a cached verdict with another.
    return createHash('sha256').update(JSON.stringify([o['kind'], meta['name'] ?? null, meta['namespace'] ?? null, meta['annotations'] ?? null, o['spec'] ?? null, o['subjects'] ?? null])).digest('base64');
  } catch {
    return String(Math.random());
  }
}

function hash(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16);
}
