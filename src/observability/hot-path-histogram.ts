import type { Metric, Registry } from 'prom-client';

type Sample = { value: number; labels: { le?: number | string }; metricName: string };

/**
 * A label-less histogram observed with plain arithmetic: bucket counts, a sum and a count.
 * prom-client's Histogram hashes labels and looks its series up on every `observe`, about a
 * microsecond per proxied request; here presenting the series is left to the scrape.
 *
 * It registers itself as a prom-client metric: the registry renders it with the others (the same
 * `_bucket{le=…}`, `_sum` and `_count` samples a prom-client Histogram gives). The registry
 * needs a metric's name, help, type, `get()` and `reset()` — nothing else — so this object is
 * handed to it as one.
 */
export class HotPathHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #bounds: readonly number[];
  /** Observations per bucket, not cumulative; the last slot is above every bound (+Inf). */
  readonly #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(options: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = options.name;
    this.help = options.help;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    this.#counts = new Array<number>(this.#bounds.length + 1).fill(0);
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric<string>);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let index = 0;
    while (index < bounds.length && value > (bounds[index] as number)) index++;
    this.#counts[index] = (this.#counts[index] as number) + 1;
    this.#sum += value;
    this.#count++;
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sum = 0;
    this.#count = 0;
  }

  async get() {
    const values: Sample[] = [];
    let cumulative = 0;
    const bucket = `${this.name}_bucket`;
    this.#bounds.forEach((bound, index) => {
      cumulative += this.#counts[index] as number;
      values.push({ value: cumulative, labels: { le: bound }, metricName: bucket });
    });
    values.push({ value: this.#count, labels: { le: '+Inf' }, metricName: bucket });
    values.push({ value: this.#sum, labels: {}, metricName: `${this.name}_sum` });
    values.push({ value: this.#count, labels: {}, metricName: `${this.name}_count` });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
