import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics.js';

/** One sample line of the exposition, e.g. `grantry_token_requests_total{outcome="success"} 2`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Metrics', () => {
  it('counts token requests by outcome, successful refreshes, and lock waits in seconds', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.observeTokens({ kind: 'token_request', outcome: 'success', grant: 'initial' });
    metrics.observeTokens({ kind: 'token_request', outcome: 'success', grant: 'refresh' });
    metrics.observeTokens({ kind: 'token_request', outcome: 'failure', grant: 'refresh' });
    metrics.observeTokens({ kind: 'lock_wait', ms: 2 });
    metrics.observeTokens({ kind: 'lock_wait', ms: 1500 });
    const { body } = await metrics.exposition();
    expect(sample(body, 'grantry_token_requests_total{outcome="success"}')).toBe(2);
    expect(sample(body, 'grantry_token_requests_total{outcome="failure"}')).toBe(1);
    expect(sample(body, 'grantry_token_refreshes_total')).toBe(1);
    expect(sample(body, 'grantry_lock_wait_seconds_count')).toBe(2);
    expect(sample(body, 'grantry_lock_wait_seconds_sum')).toBeCloseTo(1.502, 6);
    expect(sample(body, 'grantry_lock_wait_seconds_bucket{le="0.005"}')).toBe(1);
    expect(sample(body, 'grantry_lock_wait_seconds_bucket{le="2.5"}')).toBe(2);
  });

  it('reads cache hits from the counter the token manager keeps, at scrape time', async () => {
    let hits = 0;
    const metrics = new Metrics({ processMetrics: false, cacheHits: () => hits });
    hits = 41;
    expect(sample((await metrics.exposition()).body, 'grantry_token_cache_hits_total')).toBe(41);
    hits = 1000;
    expect(sample((await metrics.exposition()).body, 'grantry_token_cache_hits_total')).toBe(1000);
  });

  it('counts upstream answers by status class and answerless requests as "error"', async () => {
    const metrics = new Metrics({ processMetrics: false });
    for (const status of [200, 204, 301, 401, 403, 404, 503]) metrics.upstreamResponded(status);
    metrics.upstreamFailed();
    metrics.upstreamResponded(0);
    const { body } = await metrics.exposition();
    expect(sample(body, 'grantry_upstream_requests_total{status_class="2xx"}')).toBe(2);
    expect(sample(body, 'grantry_upstream_requests_total{status_class="3xx"}')).toBe(1);
    expect(sample(body, 'grantry_upstream_requests_total{status_class="4xx"}')).toBe(3);
    expect(sample(body, 'grantry_upstream_requests_total{status_class="5xx"}')).toBe(1);
    expect(sample(body, 'grantry_upstream_requests_total{status_class="error"}')).toBe(2);
  });

  it('records proxy durations in a histogram', async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.observeProxyDuration(0.02);
    metrics.observeProxyDuration(3);
    const { body, contentType } = await metrics.exposition();
    expect(contentType).toMatch(/^text\/plain/);
    expect(body).toContain('# TYPE grantry_proxy_duration_seconds histogram');
    expect(sample(body, 'grantry_proxy_duration_seconds_count')).toBe(2);
    expect(sample(body, 'grantry_proxy_duration_seconds_bucket{le="0.025"}')).toBe(1);
    expect(sample(body, 'grantry_proxy_duration_seconds_bucket{le="+Inf"}')).toBe(2);
  });

  it('keeps each instance in its own registry, with the process metrics when asked', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.observeTokens({ kind: 'token_request', outcome: 'success', grant: 'initial' });
    expect(sample((await b.exposition()).body, 'grantry_token_requests_total{outcome="success"}')).toBe(
      undefined,
    );
    const { body } = await a.exposition();
    expect(body).toContain('process_cpu_seconds_total');
    expect(body).toContain('nodejs_heap_size_used_bytes');
  });
});
