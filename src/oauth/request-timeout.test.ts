import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { EgressError } from '../egress/egress-error.js';
import { hostOf, requestTimeout } from './request-timeout.js';

/** The one mapping of a fired timeout to EgressError('timeout'), shared by token, revocation and metadata requests. */
describe('requestTimeout', () => {
  const aborted = new DOMException('This operation was aborted', 'AbortError');

  it('once the timeout fired, what the fetch threw becomes an EgressError timeout naming the host', async () => {
    const timeout = requestTimeout('https://login.example.com:8443/token', { timeoutMs: 5 }, 'Too slow.');
    await sleep(20);
    expect(timeout.signal.aborted).toBe(true);
    const failure = timeout.failure(aborted);
    expect(failure).toBeInstanceOf(EgressError);
    expect(failure).toMatchObject({
      kind: 'timeout',
      host: 'login.example.com:8443',
      message: 'Too slow.',
      cause: aborted,
    });
    // An EgressError already says what happened.
    const refused = new EgressError('refused', 'login.example.com', 'refused');
    expect(timeout.failure(refused)).toBe(refused);
  });

  it("before the timeout, and after the caller's own abort, the error passes unchanged", async () => {
    expect(requestTimeout('https://a.example/token', { timeoutMs: 10_000 }).failure(aborted)).toBe(aborted);
    const caller = new AbortController();
    const timeout = requestTimeout('https://a.example/token', { timeoutMs: 5, signal: caller.signal });
    caller.abort();
    await sleep(20);
    expect(timeout.callerAborted()).toBe(true);
    expect(timeout.failure(aborted)).toBe(aborted);
  });

  it('hostOf: host and port, or empty for no URL', () => {
    expect(hostOf('https://x.example:1/p')).toBe('x.example:1');
    expect(hostOf('not a url')).toBe('');
    expect(hostOf(undefined)).toBe('');
  });
});
