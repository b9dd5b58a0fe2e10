/**
 * The webhook's decision cache and metrics, driven through createWebhook (the server without its
 * HTTPS transport) with the real PolicyDecider. The decider is wrapped only to count calls and to
 * hold a decision open, so concurrency can be observed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { PolicyDecider } from '../src/admission/policydecider.js';
import { AllowedAnswer, createWebhook, type DecideContext, type Decider, type ImageVerdict, type WebhookAnswer } from '../src/admission/server.js';
import { admissionResponse } from '../src/admission/wire.js';
import { FastCounter, FastHistogram } from '../src/admission/metrics.js';
import { Registry } from 'prom-client';

const POLICY = `apiVersion: plinth.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: registries
spec:
  rules:
    - name: our-registry
      mode: enforce
      message: Images come from registry.example.com.
      allowedRegistries:
        registries: ["registry.example.com/**"]
`;

/** The real decider, counting decide() calls; `hold` makes decisions wait until released. */
class CountingDecider implements Decider {
  calls = 0;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  constructor(private readonly inner: PolicyDecider) {}
  hold(): void {
    this.gate = new Promise((r) => (this.open = r));
  }
  release(): void {
    this.open?.();
    this.gate = undefined;
  }
  async decide(image: string, ctx: DecideContext, signal: AbortSignal): Promise<ImageVerdict> {
    this.calls++;
    if (this.gate) await this.gate;
    return this.inner.decide(image, ctx, signal);
  }
  version = () => this.inner.version();
  ready = () => this.inner.ready();
  pinDigests = () => this.inner.pinDigests();
  failureMode = () => this.inner.failureMode();
  breakGlass = (a: Record<string, string>) => this.inner.breakGlass();
  cacheContext = (ctx: DecideContext) => this.inner.cacheContext(ctx);
}

function body(uid: string, images: string[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        namespace: 'prod',
        operation: 'CREATE',
        userInfo: { username: 'test' },
        object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: images.map((image, i) => ({ name: `c${i}`, image })) } },
      },
    }),
  );
}

const allowed = (a: WebhookAnswer) => (JSON.parse(JSON.stringify(a.body)) as { response: { allowed: boolean; uid: string } }).response;

describe('webhook decision cache', () => {
  let work: string;
  let inner: PolicyDecider;
  before(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'plinth-webhook-cache-'));
    await writeFile(path.join(work, 'policy.yaml'), POLICY);
    inner = await PolicyDecider.create({ policyFile: path.join(work, 'policy.yaml') });
  });
  after(async () => {
    inner.close();
    await rm(work, { recursive: true, force: true });
  });

  test('concurrent requests for an undecided image share one decision', async () => {
    const d = new CountingDecider(inner);
    const hook = createWebhook(d, { logger: pino({ level: 'silent' }) });
    d.hold();
    const pending = Array.from({ length: 12 }, (_, i) => hook.handle('validate', body(`u${i}`, ['registry.example.com/team/app:1'])));
    assert.ok(pending.every((p) => p instanceof Promise), 'uncached requests wait for a decision');
    d.release();
    const answers = await Promise.all(pending);
    assert.equal(d.calls, 1, 'one decision for twelve requests');
    answers.forEach((a, i) => {
      assert.equal(a.status, 200);
      assert.deepEqual(allowed(a), { uid: `u${i}`, allowed: true });
    });
    // Now cached: answered at once, without a promise and without deciding again.
    const warm = hook.handle('validate', body('u-warm', ['registry.example.com/team/app:1']));
    assert.ok(!(warm instanceof Promise));
    assert.equal(d.calls, 1);
    const m = await hook.metrics.metrics();
    assert.match(m, /plinth_cache_hits_total\{result="miss"\} 12\b/);
    assert.match(m, /plinth_cache_hits_total\{result="hit"\} 1\b/);
  });

  test('a cached tag decision is refreshed in the background before it expires, with no miss', async () => {
    const d = new CountingDecider(inner);
    const hook = createWebhook(d, { logger: pino({ level: 'silent' }), tagTtlMs: 400 });
    await hook.handle('validate', body('a', ['registry.example.com/team/app:2']));
    assert.equal(d.calls, 1);
    // Past 80% of the TTL: the hit is answered from the cache and starts one refresh.
    await new Promise((r) => setTimeout(r, 340));
    d.hold();
    const a = hook.handle('validate', body('b', ['registry.example.com/team/app:2']));
    const b = hook.handle('validate', body('c', ['registry.example.com/team/app:2']));
    assert.ok(!(a instanceof Promise) && !(b instanceof Promise), 'due entries still answer at once');
    assert.equal(d.calls, 2, 'one background refresh for both hits');
    d.release();
    await new Promise((r) => setTimeout(r, 50));
    // The refreshed entry lives a full TTL from now: past the old expiry it still hits.
    await new Promise((r) => setTimeout(r, 150));
    const c = hook.handle('validate', body('d', ['registry.example.com/team/app:2']));
    assert.ok(!(c instanceof Promise), 'the refreshed decision answers after the first one would have expired');
    assert.equal(d.calls, 2);
    const m = await hook.metrics.metrics();
    assert.match(m, /plinth_cache_refreshes_total 1\b/);
    assert.match(m, /plinth_cache_hits_total\{result="miss"\} 1\b/);
  });

  test('a policy change starts a new generation of cache keys', async () => {
    const d = new CountingDecider(inner);
    const hook = createWebhook(d, { logger: pino({ level: 'silent' }) });
    await hook.handle('validate', body('a', ['registry.example.com/team/app:3']));
    assert.ok(!(hook.handle('validate', body('b', ['registry.example.com/team/app:3'])) instanceof Promise));
    let v = 'other';
    d.version = () => v;
    const after = hook.handle('validate', body('c', ['registry.example.com/team/app:3']));
    assert.ok(after instanceof Promise, 'a new policy version decides again');
    await after;
    assert.equal(d.calls, 2);
    v = 'other';
    assert.ok(!(hook.handle('validate', body('d', ['registry.example.com/team/app:3'])) instanceof Promise));
  });

  test('a decision that never settles does not hold its key: the flight ends at the deadline', async () => {
    let calls = 0;
    const stuck: Decider = {
      decide: () => {
        calls++;
        return new Promise<ImageVerdict>(() => {}); // ignores the signal, never settles
      },
      version: () => 'v',
      ready: () => true,
      pinDigests: () => false,
      failureMode: () => 'closed',
      breakGlass: () => undefined,
    };
    const hook = createWebhook(stuck, { logger: pino({ level: 'silent' }), deadlineMs: 150 });
    const first = await hook.handle('validate', body('a', ['registry.example.com/team/app:9']));
    assert.equal(allowed(first).allowed, false, 'closed failure mode denies what could not be decided');
    const second = await hook.handle('validate', body('b', ['registry.example.com/team/app:9']));
    assert.equal(allowed(second).allowed, false);
    assert.equal(calls, 2, 'the second request decides again instead of joining a dead flight');
  });

  test('the templated allow answer is the same JSON as admissionResponse', () => {
    for (const uid of ['705ab4f5-6393-11e8-b7cc-42010a800002', 'quote"back\\slash', 'ünïcødé \u2028 \u0000']) {
      const a = new AllowedAnswer(uid);
      assert.equal(a.serialize(), JSON.stringify(admissionResponse(uid, { allowed: true })));
      assert.equal(JSON.stringify(a), JSON.stringify(admissionResponse(uid, { allowed: true })));
    }
  });
});

describe('hot-path metrics', () => {
  test('FastHistogram and FastCounter render as prom-client does', async () => {
    const registry = new Registry();
    const h = new FastHistogram('t_latency_seconds', 'latency', [0.001, 0.01, 0.1], registry);
    const observe = h.child({ endpoint: 'validate' });
    for (const v of [0.0005, 0.001, 0.002, 0.05, 0.5]) observe(v);
    const c = new FastCounter({ name: 't_decisions_total', help: 'decisions', labelNames: ['result'], registry });
    const allow = c.child({ result: 'allow' });
    c.child({ result: 'deny' });
    allow.inc();
    allow.inc(2);
    const text = await registry.metrics();
    assert.match(text, /# TYPE t_latency_seconds histogram/);
    // le is inclusive (0.001 falls in the 0.001 bucket), buckets are cumulative.
    assert.match(text, /t_latency_seconds_bucket\{endpoint="validate",le="0.001"\} 2\n/);
    assert.match(text, /t_latency_seconds_bucket\{endpoint="validate",le="0.01"\} 3\n/);
    assert.match(text, /t_latency_seconds_bucket\{endpoint="validate",le="0.1"\} 4\n/);
    assert.match(text, /t_latency_seconds_bucket\{endpoint="validate",le="\+Inf"\} 5\n/);
    assert.match(text, /t_latency_seconds_sum\{endpoint="validate"\} 0.5535\n/);
    assert.match(text, /t_latency_seconds_count\{endpoint="validate"\} 5\n/);
    assert.match(text, /t_decisions_total\{result="allow"\} 3\n/);
    assert.match(text, /t_decisions_total\{result="deny"\} 0\n/);
    // Counting goes on between scrapes.
    allow.inc();
    assert.match(await registry.metrics(), /t_decisions_total\{result="allow"\} 4\n/);
    const json = await registry.getMetricsAsJSON();
    assert.ok(json.some((m) => m.name === 't_latency_seconds'));
  });
});
