import autocannon from 'autocannon';
import { quantile } from './statistics.js';

export interface HttpLoadResult {
  requestsPerSecond: number;
  /** Requests answered. */
  requests: number;
  /** Milliseconds, from every response's own time (autocannon's histogram rounds to whole ms). */
  p50: number;
  p99: number;
  /** Responses other than 2xx, plus connection errors and timeouts: a valid run has none. */
  failures: number;
}

export interface HttpLoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  durationSeconds: number;
  /**
   * Requests per second across all connections; absent: as fast as the server answers (a closed
   * loop). At a fixed rate, both sides of a comparison serve the same load, so their CPU time per
   * request is compared at equal batching of socket reads and writes.
   */
  ratePerSecond?: number;
}

/** One autocannon run (HTTP/1.1 keep-alive, no pipelining). */
export async function httpLoad(options: HttpLoadOptions): Promise<HttpLoadResult> {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
        ...(options.body === undefined ? {} : { body: options.body }),
        connections: options.connections,
        duration: options.durationSeconds,
        ...(options.ratePerSecond === undefined ? {} : { overallRate: options.ratePerSecond }),
      },
      (error, finished) => (error ? reject(error) : resolve(finished)),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => {
      latencies.push(responseTime);
    });
  });
  return {
    requestsPerSecond: result.requests.total / (result.duration || options.durationSeconds),
    requests: result.requests.total,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    failures: result.non2xx + result.errors + result.timeouts,
  };
}

export interface ClosedLoopResult {
  callsPerSecond: number;
  calls: number;
  /** CPU time (user + system) of this whole process per call. */
  cpuMicrosPerCall: number;
}

/**
 * `concurrency` callers, each making the next call as soon as its previous one is answered, for
 * `durationMs`: the throughput of an in-process client.
 */
export async function closedLoop(
  call: () => Promise<void>,
  options: { concurrency: number; durationMs: number },
): Promise<ClosedLoopResult> {
  let calls = 0;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const deadline = start + options.durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await call();
      calls++;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const elapsed = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    callsPerSecond: (calls * 1000) / elapsed,
    calls,
    cpuMicrosPerCall: (cpu.user + cpu.system) / calls,
  };
}

/** Latencies (ms) of `count` calls started at the same moment. */
export async function burst(count: number, call: (index: number) => Promise<void>): Promise<number[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const start = performance.now();
      await call(index);
      return performance.now() - start;
    }),
  );
}
