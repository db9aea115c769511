import { describe, expect, it } from 'vitest';
import {
  boundedExpiresAt,
  expiresAtFor,
  MAX_TOKEN_LIFETIME_SECONDS,
  tokenLifetimeSeconds,
} from './token-lifetime.js';

const YEAR_MS = MAX_TOKEN_LIFETIME_SECONDS * 1000;
const NOW = 1_700_000_000_000;

describe('MAX_TOKEN_LIFETIME_SECONDS', () => {
  it('is one year, and now plus one year is a valid date and a safe integer', () => {
    expect(MAX_TOKEN_LIFETIME_SECONDS).toBe(31_536_000);
    expect(Number.isSafeInteger(NOW + YEAR_MS)).toBe(true);
    expect(new Date(NOW + YEAR_MS).toISOString()).toBe('2024-11-13T22:13:20.000Z');
  });
});

describe('tokenLifetimeSeconds', () => {
  it.each([
    [3600, 3600],
    ['3599', 3599],
    [' 60 ', 60],
    ['1.5', 1],
    [8640000000000, MAX_TOKEN_LIFETIME_SECONDS],
    ['8640000000000', MAX_TOKEN_LIFETIME_SECONDS],
    [1e20, MAX_TOKEN_LIFETIME_SECONDS],
    ['1e20', MAX_TOKEN_LIFETIME_SECONDS],
    ['1E+20', MAX_TOKEN_LIFETIME_SECONDS],
    [Number.POSITIVE_INFINITY, MAX_TOKEN_LIFETIME_SECONDS],
    [0, 0],
    ['0', 0],
    [-5, 0],
    ['-5', 0],
    [Number.NEGATIVE_INFINITY, 0],
    [0.4, 0],
  ])('%s → %s', (value, expected) => {
    expect(tokenLifetimeSeconds(value)).toBe(expected);
  });

  it.each([[undefined], [null], ['soon'], [''], ['1e'], ['0x10'], [Number.NaN], [true], [{}], [[3600]]])(
    '%s is unknown (null)',
    (value) => {
      expect(tokenLifetimeSeconds(value)).toBeNull();
    },
  );
});

describe('boundedExpiresAt (reading what is stored)', () => {
  it('keeps a sane expiry and null', () => {
    expect(boundedExpiresAt(NOW, NOW + 3_600_000)).toBe(NOW + 3_600_000);
    expect(boundedExpiresAt(NOW, null)).toBeNull();
  });

  it('reads an expiry written before the clamp (past the end of dates, REAL 1e23, Infinity, NaN) as one year', () => {
    for (const stored of [NOW + 8_640_000_000_000_000, 1e23, Number.POSITIVE_INFINITY, Number.NaN]) {
      const bounded = boundedExpiresAt(NOW, stored);
      expect(bounded).toBe(NOW + YEAR_MS);
      expect(() => new Date(bounded ?? 0).toISOString()).not.toThrow();
    }
  });

  it('never reads an expiry before the token was obtained', () => {
    expect(boundedExpiresAt(NOW, NOW - 5_000)).toBe(NOW);
    expect(boundedExpiresAt(NOW, Number.NEGATIVE_INFINITY)).toBe(NOW);
  });
});

describe('expiresAtFor (writing)', () => {
  it('is obtainedAt plus the lifetime, null for an unknown one, and never more than a year', () => {
    expect(expiresAtFor(NOW, 60)).toBe(NOW + 60_000);
    expect(expiresAtFor(NOW, 0)).toBe(NOW);
    expect(expiresAtFor(NOW, null)).toBeNull();
    expect(expiresAtFor(NOW, 1e20)).toBe(NOW + YEAR_MS);
  });
});
