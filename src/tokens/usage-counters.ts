import type { Store } from '../store/contract.js';

interface Delta {
  calls: number;
  unauthorized: number;
  refreshes: number;
}

/**
 * Per-authentication call counters (calls, 401s, refreshes), counted in memory on the hot path
 * and written to the store in one batch every few seconds: a counter must never cost a database
 * write per API call.
 */
export class UsageCounters {
  readonly #store: Store;
  readonly #pending = new Map<string, Delta>();
  readonly #timer: NodeJS.Timeout;
  #flushing: Promise<void> = Promise.resolve();

  constructor(store: Store, flushEveryMs = 2_000) {
    this.#store = store;
    this.#timer = setInterval(() => void this.flush(), flushEveryMs);
    this.#timer.unref();
  }

  count(authId: string, field: keyof Delta, by = 1): void {
    let delta = this.#pending.get(authId);
    if (delta === undefined) {
      delta = { calls: 0, unauthorized: 0, refreshes: 0 };
      this.#pending.set(authId, delta);
    }
    delta[field] += by;
  }

  /** Writes what was counted; safe to call at any time (flushes run one after another). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const batch = [...this.#pending];
      this.#pending.clear();
      for (const [authId, delta] of batch) {
        await this.#store.authentications.addUsage(authId, delta).catch(() => {
          // The authentication was deleted meanwhile: its counters go with it.
        });
      }
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
