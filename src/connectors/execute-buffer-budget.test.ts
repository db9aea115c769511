import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ExecuteBufferBudget } from './execute-buffer-budget.js';
import { readResponseBody } from './response-body.js';

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

describe('readResponseBody with a reservation', () => {
  const chunks = (count: number, size: number) =>
    Readable.from(Array.from({ length: count }, () => Buffer.alloc(size, 0x61)));

  it('reports the bytes held before keeping each chunk, never more than the cap', async () => {
    const told: number[] = [];
    const read = await readResponseBody(chunks(3, 10), 'text/plain', 25, (held) => told.push(held));
    expect(told).toEqual([10, 20, 25]);
    expect(read.truncated).toBe(true);
  });

  it('stops reading, and destroys the stream, when the reservation is refused', async () => {
    const stream = chunks(5, 10);
    const refused = new Error('over budget');
    await expect(
      readResponseBody(stream, 'text/plain', 100, (held) => {
        if (held > 20) throw refused;
      }),
    ).rejects.toBe(refused);
    expect(stream.destroyed).toBe(true);
  });
});
