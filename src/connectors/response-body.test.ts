import { describe, expect, it } from 'vitest';
import { BodyCollector } from './response-body.js';

/** A body read through a collector, chunk by chunk, as execute reads it. */
function collected(chunks: string[], contentType: string | undefined, maxBytes: number) {
  const collector = new BodyCollector(maxBytes);
  for (const chunk of chunks) if (!collector.add(Buffer.from(chunk))) break;
  return collector.result(contentType);
}

describe('BodyCollector', () => {
  it('parses JSON, keeps text, marks a cut body truncated and returns it as text', () => {
    expect(collected(['{"a":1}'], 'application/problem+json', 100)).toEqual({
      body: { a: 1 },
      truncated: false,
    });
    expect(collected(['hi'], 'text/plain', 100)).toEqual({ body: 'hi', truncated: false });
    expect(collected(['{"a":', '"long"}'], 'application/json', 5)).toEqual({
      body: '{"a":',
      truncated: true,
    });
    expect(collected([], 'application/json', 5)).toEqual({ body: null, truncated: false });
    expect(collected(['<html>'], 'application/json', 50)).toEqual({ body: '<html>', truncated: false });
  });

  it('reports the bytes held before keeping each chunk, never more than the cap', () => {
    const told: number[] = [];
    const collector = new BodyCollector(25, (held) => told.push(held));
    const chunk = Buffer.alloc(10, 0x61);
    expect([collector.add(chunk), collector.add(chunk), collector.add(chunk)]).toEqual([true, true, false]);
    expect(told).toEqual([10, 20, 25]);
    expect(collector.result('text/plain').truncated).toBe(true);
  });

  it('keeps nothing of a chunk whose reservation is refused', () => {
    const refused = new Error('over budget');
    const collector = new BodyCollector(100, (held) => {
      if (held > 20) throw refused;
    });
    const chunk = Buffer.alloc(10, 0x61);
    collector.add(chunk);
    collector.add(chunk);
    expect(() => collector.add(chunk)).toThrow(refused);
    expect(collector.result('text/plain')).toEqual({ body: 'a'.repeat(20), truncated: false });
  });
});
