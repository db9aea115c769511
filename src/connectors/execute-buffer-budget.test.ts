import { describe, expect, it } from 'vitest';
import { ExecuteBufferBudget } from './execute-buffer-budget.js';

describe('ExecuteBufferBudget', () => {
  it('lets shares grow up to the limit together, and refuses what would pass it', () => {
    const budget = new ExecuteBufferBudget(100);
    const a = budget.lease();
    const b = budget.lease();
    expect(a.reserve(60)).toBe(true);
    expect(a.reserve(40)).toBe(true); // already held: nothing more taken
    expect(budget.reservedBytes).toBe(60);
    expect(b.reserve(50)).toBe(false);
    expect(budget.reservedBytes).toBe(60); // a refusal takes nothing
    expect(b.reserve(40)).toBe(true);
    expect(budget.hasRoomFor(1)).toBe(false);
  });

  it('gives a share back whole, once, and refuses a released lease', () => {
    const budget = new ExecuteBufferBudget(100);
    const a = budget.lease();
    a.reserve(70);
    a.release();
    a.release();
    expect(budget.reservedBytes).toBe(0);
    expect(a.reserve(1)).toBe(false);
    expect(budget.reservedBytes).toBe(0);
  });
});
