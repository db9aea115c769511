import { LockTimeoutError } from './lock-timeout.js';

/**
 * An in-process mutual exclusion per key: `run(key, fn)` calls with the same key run one after
 * another in call order; different keys do not wait for each other. Keys leave the map once idle,
 * so the map never grows with the number of keys ever seen.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  /**
   * Runs `fn` once every earlier caller of `key` is done. With `timeoutMs`, a caller whose turn has
   * not come within that time is refused with `LockTimeoutError` and `fn` never runs; its place in
   * the queue is passed on the moment its turn comes, so the callers behind it do not wait for it.
   */
  async run<T>(key: string, fn: () => Promise<T>, timeoutMs?: number): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => held);
    this.#tails.set(key, tail);
    const done = (): void => {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
    if (timeoutMs === undefined) {
      await previous;
    } else if (!(await settlesWithin(previous, timeoutMs))) {
      void previous.then(done);
      throw new LockTimeoutError(timeoutMs);
    }
    try {
      return await fn();
    } finally {
      done();
    }
  }
}

/**
 * Whether `promise` settles within `ms`. A promise that has already settled wins even with 0 ms:
 * its continuation runs before any timer.
 */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}
