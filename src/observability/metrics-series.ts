// The per-request series: plain numbers behind objects resolved once per label set, so a request costs a few
// additions and no string building. prom-client's own children hash their labels on every `inc`/`observe`;
// these families instead hand the registry their values when it is scraped (the shape prom-client's metrics
// return from `get()`, so its Registry formats them and its AggregatorRegistry sums them across workers).
import type { Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** One label set of a counter. */
export class CounterChild {
  value = 0;
  readonly labels: Labels;
  constructor(labels: Labels) {
    this.labels = labels;
  }
  inc(by = 1): void {
    this.value += by;
  }
}

/** One label set of a histogram: bucket counts (not cumulative), sum and count. */
export class HistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly labels: Labels;
  private readonly bounds: readonly number[];
  constructor(labels: Labels, bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const bounds = this.bounds;
    // Linear search: a dozen bounds, most requests land in the first few.
    for (let i = 0; i < bounds.length; i++) {
      if (v <= bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }
}

abstract class Family<C extends { labels: Labels }> {
  protected readonly children = new Map<string, C>();
  /** How a multi-worker primary combines the workers' values (AggregatorRegistry): sum, or max for counts
   *  every worker makes alike (reloads). */
  readonly aggregator: 'sum' | 'max';
  readonly name: string;
  readonly help: string;
  constructor(name: string, help: string, registry: Registry, aggregator: 'sum' | 'max' = 'sum') {
    this.name = name;
    this.help = help;
    this.aggregator = aggregator;
    // The registry reads `name` and calls `get()`, the contract of prom-client's own metrics.
    registry.registerMetric(this as never);
  }

  /** The child for `labels`, made on first use; `key` identifies the label set (callers cache the child). */
  child(key: string, labels: Labels): C {
    let c = this.children.get(key);
    if (c === undefined) {
      c = this.make(labels);
      this.children.set(key, c);
    }
    return c;
  }

  protected abstract make(labels: Labels): C;
  abstract get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }>;
}

export class CounterFamily extends Family<CounterChild> {
  readonly type = 'counter';
  protected make(labels: Labels): CounterChild {
    return new CounterChild(labels);
  }
  async get() {
    const values: Sample[] = [];
    for (const c of this.children.values()) values.push({ value: c.value, labels: { ...c.labels } });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export class HistogramFamily extends Family<HistogramChild> {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];
  constructor(name: string, help: string, registry: Registry, bounds: readonly number[]) {
    super(name, help, registry);
    this.bounds = bounds;
  }
  protected make(labels: Labels): HistogramChild {
    return new HistogramChild(labels, this.bounds);
  }
  async get() {
    const values: Sample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.children.values()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += c.counts[i]!;
        values.push({ value: acc, labels: { ...c.labels, le: this.bounds[i]! }, metricName: bucket });
      }
      values.push({ value: c.count, labels: { ...c.labels, le: '+Inf' }, metricName: bucket });
      values.push({ value: c.sum, labels: { ...c.labels }, metricName: `${this.name}_sum` });
      values.push({ value: c.count, labels: { ...c.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
