import { performance } from 'node:perf_hooks';

/**
 * One deadline for everything a token fetch does while it holds the refresh lock: the metadata
 * lookup of `clientAuthMethod: auto`, every token request and its retries, the second way of
 * sending the secret, the original grant after a refused refresh, the metadata a refusal is
 * explained with. Each step gets only what is left, so the lock is held for about
 * `GRANTRY_TOKEN_TIMEOUT_MS` at most, never a multiple of it (a discovery that probes four URLs
 * used to take four timeouts before the token request took a fifth).
 *
 * Measured on the monotonic clock: the token manager's injected clock may stand still in tests,
 * and the wall clock may jump.
 */
export class FetchDeadline {
  readonly #at: number;

  constructor(timeoutMs: number) {
    this.#at = performance.now() + timeoutMs;
  }

  /** Milliseconds left, at least 1 (a request given 0 would not fail as a timeout). */
  remainingMs(): number {
    return Math.max(1, Math.ceil(this.#at - performance.now()));
  }

  /** Whether `ms` more fit before the deadline (a retry's pause, say). */
  allows(ms: number): boolean {
    return performance.now() + ms < this.#at;
  }

  /**
   * Waits for `lookup` for at most `share` of the time left; `fallback` when it has not settled by
   * then or failed. The lookup itself is not cancelled: it may be shared, and a later fetch may
   * find its answer cached.
   */
  async within<T>(lookup: Promise<T>, fallback: T, share = 1): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<T>((resolve) => {
      timer = setTimeout(() => resolve(fallback), Math.max(0, (this.#at - performance.now()) * share));
    });
    try {
      return await Promise.race([lookup.catch(() => fallback), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
