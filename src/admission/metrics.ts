import { Counter, type Registry } from 'prom-client';

/**
 * Metrics for the webhook's hot path. prom-client hashes and validates the labels on every
 * `inc`/`observe` (a few hundred ns to µs each, several times per request); here the counters and
 * the latency histogram for a fixed set of label values are plain numbers, and prom-client reads
 * them when /metrics is scraped. The exposition format is prom-client's, unchanged.
 */

/** A counter child for fixed label values: `inc` is an addition. */
export interface FastCounterChild {
  inc(n?: number): void;
}

/**
 * A prom-client Counter whose children for known label values are counted in plain numbers and
 * added to the Counter when it is collected. Labels not declared up front go through `inc(labels)`,
 * prom-client's own path (for rarer events such as rule outcomes on a cache miss).
 */
export class FastCounter<L extends string> {
  readonly counter: Counter<L>;
  private readonly pending: Array<{ labels: Partial<Record<L, string>>; n: number }> = [];

  constructor(o: { name: string; help: string; labelNames?: readonly L[]; registry: Registry }) {
    const pending = this.pending;
    this.counter = new Counter<L>({
      name: o.name,
      help: o.help,
      labelNames: o.labelNames ?? [],
      registers: [o.registry],
      collect() {
        for (const p of pending) {
          if (p.n > 0) {
            this.inc(p.labels, p.n);
            p.n = 0;
          }
        }
      },
    });
  }

  /** A child for these label values (create them once, outside the hot path). Shows 0 until it counts. */
  child(labels: Partial<Record<L, string>> = {}): FastCounterChild {
    const p = { labels, n: 0 };
    this.pending.push(p);
    this.counter.inc(labels, 0);
    return {
      inc(n = 1) {
        p.n += n;
      },
    };
  }

  inc(labels: Partial<Record<L, string>>, n = 1): void {
    this.counter.inc(labels, n);
  }
}

interface HistogramSeries {
  labels: Record<string, string>;
  /** Count per bucket (not cumulative); the last is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram for fixed label values, registered with a prom-client Registry as a
 * custom metric (prom-client renders `get()`'s values). `observe` finds the bucket by a short
 * linear scan and adds.
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series: HistogramSeries[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  /** The observer for these label values (create it once). */
  child(labels: Record<string, string>): (seconds: number) => void {
    const s: HistogramSeries = { labels, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
    this.series.push(s);
    const b = this.buckets;
    return (v: number) => {
      let i = 0;
      while (i < b.length && v > b[i]!) i++;
      s.counts[i]!++;
      s.sum += v;
      s.count++;
    };
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> } {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const s of this.series) {
      let acc = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { ...s.labels, le: i < this.buckets.length ? this.buckets[i]! : '+Inf' }, value: acc, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.series) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
