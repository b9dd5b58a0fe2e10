import { parseImageReference } from '../oci/reference.js';
import { describeError } from '../util/errors.js';
import type { DecisionRecord, DeploymentRecord, MetaStore } from './store.js';
import type { StoreConnector } from './connector.js';

/**
 * The webhook's way into the store: the request path only pushes an event onto a bounded queue
 * and returns; a timer writes the queue in batches (one transaction per batch). When the queue is
 * full, or the store fails (PostgreSQL gone), events are dropped and counted — admission never
 * waits for, nor fails because of, the store.
 */

export interface AdmissionEvent {
  time: number;
  endpoint: 'validate' | 'imagepolicy';
  namespace: string;
  /** Workload kind and name as the request names them. */
  kind: string;
  name: string;
  containers: ReadonlyArray<{ name: string; image: string }>;
  verdicts: ReadonlyArray<{ image: string; allowed: boolean; denials: readonly string[]; warnings: readonly string[]; digest?: string | null }>;
  policyVersion: string;
  /** Whether the request as a whole was admitted (only then do its images run). */
  admitted: boolean;
}

type Verdict = AdmissionEvent['verdicts'][number];

export interface RecorderStats {
  queued: number;
  written: number;
  dropped: { queueFull: number; storeError: number };
  batches: number;
  lastError: string | null;
}

export interface RecorderOptions {
  cluster?: string;
  maxQueue?: number;
  maxBatch?: number;
  intervalMs?: number;
  onError?: (message: string, dropped: number) => void;
}

export class AdmissionRecorder {
  private queue: AdmissionEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;
  readonly stats: RecorderStats = { queued: 0, written: 0, dropped: { queueFull: 0, storeError: 0 }, batches: 0, lastError: null };
  private readonly maxQueue: number;
  private readonly maxBatch: number;
  private readonly intervalMs: number;

  constructor(private readonly store: MetaStore | StoreConnector, private readonly o: RecorderOptions = {}) {
    this.maxQueue = o.maxQueue ?? 10_000;
    this.maxBatch = o.maxBatch ?? 1000;
    this.intervalMs = o.intervalMs ?? 250;
  }

  /** Queue one admission (never blocks; false when it was dropped). */
  record(e: AdmissionEvent): boolean {
    if (this.closed || this.queue.length >= this.maxQueue) {
      this.stats.dropped.queueFull++;
      return false;
    }
    this.queue.push(e);
    this.stats.queued = this.queue.length;
    if (!this.timer && !this.writing) this.timer = setTimeout(() => void this.drain(), this.intervalMs);
    return true;
  }

  private async drain(): Promise<void> {
    this.timer = undefined;
    if (this.writing) return;
    this.writing = (async () => {
      while (this.queue.length) {
        const batch = this.queue.splice(0, this.maxBatch);
        this.stats.queued = this.queue.length;
        try {
          await this.write(batch);
          this.stats.written += batch.length;
          this.stats.batches++;
        } catch (e) {
          this.stats.dropped.storeError += batch.length;
          this.stats.lastError = describeError(e);
          this.o.onError?.(this.stats.lastError, batch.length);
        }
      }
    })();
    try {
      await this.writing;
    } finally {
      this.writing = undefined;
    }
  }

  private async write(batch: AdmissionEvent[]): Promise<void> {
    const cluster = this.o.cluster ?? 'default';
    // Identical decisions of one batch (a busy webhook sees the same pod spec many times) become one
    // row with a count and the time of the last: the audit log stays complete and small. A cached
    // verdict is one object, so "identical" is the verdict object plus the request's context; the
    // reference is parsed once per group, not once per request.
    type Group = { e: AdmissionEvent; v: Verdict; count: number; last: number };
    const groups = new Map<Verdict, Map<string, Group>>();
    for (let i = 0; i < batch.length; i++) {
      // Long batches give the event loop back now and then: admissions keep being answered.
      if (i > 0 && (i & 255) === 0) await new Promise((r) => setImmediate(r));
      const e = batch[i]!;
      const ctx = `${e.endpoint}\u0000${e.namespace}\u0000${e.kind}\u0000${e.name}\u0000${e.policyVersion}\u0000${e.admitted}`;
      for (const v of e.verdicts) {
        let byCtx = groups.get(v);
        if (!byCtx) groups.set(v, (byCtx = new Map()));
        const g = byCtx.get(ctx);
        if (g) {
          g.count++;
          if (e.time > g.last) g.last = e.time;
        } else byCtx.set(ctx, { e, v, count: 1, last: e.time });
      }
    }
    const decisions = new Map<string, DecisionRecord>();
    const deployments = new Map<string, DeploymentRecord>();
    for (const byCtx of groups.values()) {
      for (const { e, v, count, last } of byCtx.values()) {
        let repository: string | null = null;
        let digest = v.digest ?? null;
        try {
          const ref = parseImageReference(v.image);
          repository = ref.name;
          if (ref.digest) digest ??= ref.digest;
        } catch {
          /* an invalid reference was denied; it is still in the audit log */
        }
        const time = new Date(e.time).toISOString();
        const lastTime = new Date(last).toISOString();
        const workload = `${e.kind}/${e.name}`;
        const source = e.endpoint === 'imagepolicy' ? 'imagereview' : 'admission';
        const messages = [...v.denials, ...v.warnings];
        // Two verdict objects with the same content (a refreshed cache entry) still fold together.
        const dkey = `${source}\u0000${v.image}\u0000${digest ?? ''}\u0000${e.namespace}\u0000${workload}\u0000${v.allowed}\u0000${e.policyVersion}\u0000${messages.join('\u0001')}`;
        const same = decisions.get(dkey);
        if (same) {
          same.count = (same.count ?? 1) + count;
          if (lastTime > (same.lastTime ?? '')) same.lastTime = lastTime;
          if (time < same.time) same.time = time;
        } else decisions.set(dkey, { time, source, image: v.image, digest, repository, allowed: v.allowed, mode: null, policyVersion: e.policyVersion, cluster, namespace: e.namespace, workload, messages, count, lastTime });
        if (!e.admitted || !e.name) continue;
        // An admitted workload runs (or will run) these images: where each runs, deduplicated per batch.
        for (const c of e.containers) {
          if (c.image !== v.image) continue;
          const key = `${e.namespace}\u0000${workload}\u0000${c.name}\u0000${v.image}`;
          deployments.set(key, { cluster, namespace: e.namespace, kind: e.kind, name: e.name, container: c.name || null, image: v.image, digest, repository, tag: null, at: lastTime, via: 'admission' });
        }
      }
    }
    const store = 'get' in this.store ? await this.store.get() : this.store;
    await store.recordDecisions([...decisions.values()]);
    if (deployments.size) await store.recordDeployments([...deployments.values()]);
  }

  /** Write what is queued (tests, shutdown). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.writing) await this.writing;
    await this.drain();
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }
}
