/**
 * An in-process mutual exclusion per key: `run(key, fn)` calls with the same key run one after
 * another in call order; different keys do not wait for each other. Keys leave the map once idle,
 * so the map never grows with the number of keys ever seen.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => held);
    this.#tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  /** Keys currently held or awaited (for tests and metrics). */
  get activeKeys(): number {
    return this.#tails.size;
  }
}
