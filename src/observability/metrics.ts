import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import { HotPathHistogram } from './hot-path-histogram.js';

/** What the token manager reports (its `observe` option). */
export type TokenObservation =
  | { kind: 'token_request'; outcome: string; grant?: string }
  | { kind: 'lock_wait'; ms: number };

export interface MetricsOptions {
  /**
   * Reads the token manager's cache-hit count. A plain number kept by the hot path and read only
   * when scraped, so a cache hit costs an increment, not a metrics-library call.
   */
  cacheHits?: () => number;
  /** The process metrics (CPU, memory, event loop, GC) that prom-client collects. Default true. */
  processMetrics?: boolean;
}

/** Upstream answers are counted by class: a status per label value would let an API inflate the series. */
const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
/** No HTTP answer at all: connection, TLS, timeout, egress policy. */
const NO_RESPONSE = 'error';

/** Lock waits are usually near zero; a wait of seconds means another instance is refreshing slowly. */
const LOCK_WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Proxied calls span fast internal APIs to slow third-party ones (timeouts up to 300 s). */
const PROXY_DURATION_BUCKETS: number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
];

/**
 * The Prometheus metrics of one Grantry instance (GET /metrics). Each app owns its own registry, so
 * several apps in one process (tests) never share or clash over series.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #tokenRequests: Counter<'outcome'>;
  readonly #refreshes: Counter;
  readonly #lockWait: Histogram;
  readonly #proxyDuration: HotPathHistogram;
  /**
   * Upstream answers per status class (1xx–5xx), then answerless requests: plain numbers counted
   * on the hot path, read into the counter when scraped (as the cache hits are).
   */
  readonly #upstream = [0, 0, 0, 0, 0, 0];

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.#tokenRequests = new Counter({
      name: 'grantry_token_requests_total',
      help: 'Requests sent to token endpoints, by outcome (success: the provider issued a token).',
      labelNames: ['outcome'],
      registers,
    });
    this.#refreshes = new Counter({
      name: 'grantry_token_refreshes_total',
      help: 'Access tokens renewed with a refresh token (RFC 6749 §6).',
      registers,
    });
    const readCacheHits = options.cacheHits;
    new Counter({
      name: 'grantry_token_cache_hits_total',
      help: 'Tokens handed out from memory, without the store or the provider.',
      registers,
      collect() {
        this.reset();
        if (readCacheHits !== undefined) this.inc(readCacheHits());
      },
    });
    const upstream = this.#upstream;
    new Counter({
      name: 'grantry_upstream_requests_total',
      help: 'HTTP requests sent to connector APIs (every attempt), by status class; "error" when none answered.',
      labelNames: ['status_class'],
      registers,
      collect() {
        this.reset();
        STATUS_CLASSES.forEach((statusClass, index) => {
          const count = upstream[index] as number;
          if (count > 0) this.inc({ status_class: statusClass }, count);
        });
        const failed = upstream[STATUS_CLASSES.length] as number;
        if (failed > 0) this.inc({ status_class: NO_RESPONSE }, failed);
      },
    });
    this.#proxyDuration = new HotPathHistogram({
      name: 'grantry_proxy_duration_seconds',
      help: 'Time from receiving a /proxy request to the end of the upstream response.',
      buckets: PROXY_DURATION_BUCKETS,
      registers,
    });
    this.#lockWait = new Histogram({
      name: 'grantry_lock_wait_seconds',
      help: 'Time waited for the refresh lock of an authentication (shared by every instance on PostgreSQL).',
      buckets: LOCK_WAIT_BUCKETS,
      registers,
    });
    // Standard names (process_*, nodejs_*), which ready-made dashboards expect.
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Pass as the token manager's `observe` option. */
  readonly observeTokens = (event: TokenObservation): void => {
    if (event.kind === 'lock_wait') {
      this.#lockWait.observe(event.ms / 1000);
      return;
    }
    this.#tokenRequests.inc({ outcome: event.outcome });
    if (event.grant === 'refresh' && event.outcome === 'success') this.#refreshes.inc();
  };

  /** An upstream API answered with `status` (count every attempt: retries and the 401 retry too). */
  upstreamResponded(status: number): void {
    const index = Math.floor(status / 100) - 1;
    const slot = index >= 0 && index < STATUS_CLASSES.length ? index : STATUS_CLASSES.length;
    this.#upstream[slot] = (this.#upstream[slot] as number) + 1;
  }

  /** An upstream request ended without an HTTP answer (connection, TLS, timeout, egress denied). */
  upstreamFailed(): void {
    const slot = STATUS_CLASSES.length;
    this.#upstream[slot] = (this.#upstream[slot] as number) + 1;
  }

  /** One `/proxy` request took `seconds`, until the response was streamed back or failed. */
  observeProxyDuration(seconds: number): void {
    this.#proxyDuration.observe(seconds);
  }

  /** The Prometheus text exposition format, and its content type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
