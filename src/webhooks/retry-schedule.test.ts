import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_SCHEDULE, nextAttemptAt } from './retry-schedule.js';

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

describe('webhook retry schedule', () => {
  it('draws each delay from [1 s, min(2 h, 30 s × 2^(n−1))]: full jitter under an exponential ceiling', () => {
    const ceilings = [
      30_000,
      60_000,
      120_000,
      240_000,
      480_000,
      960_000,
      1_920_000,
      3_840_000,
      2 * HOUR,
      2 * HOUR,
    ];
    ceilings.forEach((ceiling, index) => {
      const attempt = index + 1;
      expect(nextAttemptAt(DEFAULT_RETRY_SCHEDULE, attempt, 0, 1_000, () => 0)).toBe(1_000 + 1_000);
      const highest = nextAttemptAt(DEFAULT_RETRY_SCHEDULE, attempt, 0, 1_000, () => 0.999_999_999) as number;
      expect(highest - 1_000).toBeLessThanOrEqual(ceiling);
      expect(highest - 1_000).toBeGreaterThan(ceiling - 10);
    });
    // Far beyond any ceiling the exponent stays finite.
    expect(nextAttemptAt(DEFAULT_RETRY_SCHEDULE, 5_000, 0, 1_000, () => 0.5)).toBe(
      1_000 + 1_000 + (2 * HOUR - 1_000) / 2,
    );
  });

  it('spreads deliveries that failed together', () => {
    const draws = new Set(Array.from({ length: 50 }, () => nextAttemptAt(DEFAULT_RETRY_SCHEDULE, 6, 0, 0)));
    expect(draws.size).toBeGreaterThan(40);
  });

  it('retries for at least a day after the event, and gives up at the first failure after that', () => {
    expect(nextAttemptAt(DEFAULT_RETRY_SCHEDULE, 30, 0, DAY - 1)).not.toBeNull();
    expect(nextAttemptAt(DEFAULT_RETRY_SCHEDULE, 30, 0, DAY)).toBeNull();
    expect(nextAttemptAt(DEFAULT_RETRY_SCHEDULE, 1, 5_000, DAY + 4_999)).not.toBeNull();
  });

  it('keeps trying through a day even when every draw is the longest: no attempt count ends it early', () => {
    let now = 0;
    let attempt = 1;
    let previous = 0;
    for (;;) {
      const next = nextAttemptAt(DEFAULT_RETRY_SCHEDULE, attempt, 0, now, () => 0.999_999);
      if (next === null) break;
      previous = now;
      now = next;
      attempt += 1;
    }
    expect(now).toBeGreaterThanOrEqual(DAY);
    expect(previous).toBeLessThan(DAY);
    // About 20 attempts at the longest delays; the expected (random) schedule makes about 30.
    expect(attempt).toBeGreaterThan(15);
    expect(attempt).toBeLessThan(25);
  });

  it('honours short test schedules, the floor included', () => {
    const schedule = { baseDelayMs: 100, maxDelayMs: 400, retryForMs: DAY };
    expect(nextAttemptAt(schedule, 1, 0, 0, () => 0)).toBe(100);
    expect(nextAttemptAt(schedule, 9, 0, 0, () => 0.999_999)).toBeLessThanOrEqual(400);
  });
});
