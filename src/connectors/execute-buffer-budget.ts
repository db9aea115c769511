/**
 * One call's share of the budget: it grows as the call's upstream body arrives and is given back
 * whole when the call ends.
 */
export interface BufferLease {
  /**
   * Makes this call's share at least `bytes` in total. False, and nothing more reserved, when that
   * would pass the budget's limit, or when the lease was already released (the caller is gone).
   */
  reserve(bytes: number): boolean;
  /** Gives the whole share back; `reserve` fails from then on. Safe to call more than once. */
  release(): void;
}

/**
 * The bytes of upstream answers that execute and test hold in memory at once, across every call
 * of this Grantry (GRANTRY_EXECUTE_BUFFER_LIMIT). Each call may buffer up to
 * GRANTRY_EXECUTE_MAX_BODY, but nothing bounded how many did so at the same time: 150 concurrent
 * executes of 20 MB answers reached 1.2 GB RSS. A call reserves its share before it reads (the
 * declared Content-Length) and as chunks arrive (a body without one, or one longer than declared),
 * and gives it back when its answer has been written or its caller is gone; a call that cannot
 * have its share answers 503 with Retry-After instead of growing the heap.
 *
 * What is counted is upstream bytes. While an answer is written the process briefly holds a small
 * multiple of them (the text decoded from the bytes, the JSON of the result), so the limit bounds
 * memory in proportion, not to the byte.
 *
 * The proxy takes no part: it streams each answer to its caller as it arrives, and backpressure
 * bounds what it holds per call, so it never holds a whole body.
 */
export class ExecuteBufferBudget {
  readonly limitBytes: number;
  #reservedBytes = 0;

  constructor(limitBytes: number) {
    this.limitBytes = limitBytes;
  }

  /** Bytes reserved right now, by every call together. */
  get reservedBytes(): number {
    return this.#reservedBytes;
  }

  /** Whether `bytes` more would fit right now (nothing is reserved by asking). */
  hasRoomFor(bytes: number): boolean {
    return this.#reservedBytes + bytes <= this.limitBytes;
  }

  lease(): BufferLease {
    let held = 0;
    let released = false;
    return {
      reserve: (bytes) => {
        if (released) return false;
        if (bytes <= held) return true;
        const more = bytes - held;
        if (this.#reservedBytes + more > this.limitBytes) return false;
        this.#reservedBytes += more;
        held = bytes;
        return true;
      },
      release: () => {
        if (released) return;
        released = true;
        this.#reservedBytes -= held;
        held = 0;
      },
    };
  }
}
