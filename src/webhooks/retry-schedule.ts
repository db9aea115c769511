/**
 * When a failed delivery is tried again: exponential backoff with full jitter ("Exponential Backoff
 * and Jitter", AWS Architecture Blog, 2015) — after the n-th failed attempt, a delay drawn uniformly
 * from [floor, min(maxDelay, base × 2^(n−1))] — so that many deliveries failing together (a receiver
 * that was down) do not come back together. Retries go on for at least `retryForMs` after the event:
 * the delivery is given up at the first failure that happens that long or longer after it.
 *
 * Defaults: base 30 s, ceiling 2 h, for 24 h — about 30 attempts in the day, the first within a
 * minute, then at most 2 h apart.
 */
export interface RetrySchedule {
  baseDelayMs: number;
  maxDelayMs: number;
  retryForMs: number;
}

export const DEFAULT_RETRY_SCHEDULE: RetrySchedule = {
  baseDelayMs: 30_000,
  maxDelayMs: 2 * 60 * 60 * 1000,
  retryForMs: 24 * 60 * 60 * 1000,
};

/** No retry sooner than this (or than the base, when it is shorter): full jitter can draw ~0. */
const FLOOR_MS = 1_000;

/**
 * After attempt number `attempt` (1-based) of a delivery first due at `firstDueAt` failed at `now`:
 * when to try again, or null to give up. `random` is [0, 1), like Math.random.
 */
export function nextAttemptAt(
  schedule: RetrySchedule,
  attempt: number,
  firstDueAt: number,
  now: number,
  random: () => number = Math.random,
): number | null {
  if (now - firstDueAt >= schedule.retryForMs) return null;
  const floor = Math.min(FLOOR_MS, schedule.baseDelayMs);
  // 2^(attempt−1) grows past any ceiling quickly; Math.min keeps the product finite and in range.
  const ceiling = Math.max(
    floor,
    Math.min(schedule.maxDelayMs, schedule.baseDelayMs * 2 ** Math.max(0, attempt - 1)),
  );
  return now + floor + Math.floor(random() * (ceiling - floor));
}
