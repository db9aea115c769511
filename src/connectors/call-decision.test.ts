import { describe, expect, it } from 'vitest';
import { type AttemptOutcome, type CallProgress, type CallRules, decide } from './call-decision.js';
import {
  backoffMs,
  EXECUTE_RETRY,
  FOLLOW_REDIRECTS,
  isSafeToRetry,
  PASS_REDIRECTS_THROUGH,
  PROXY_RETRY,
  proxiedBodyHandling,
  REPLAYABLE_BODY_BYTES,
  refusesCredential,
} from './call-policy.js';

const EXECUTE: CallRules = { retry: EXECUTE_RETRY, redirects: FOLLOW_REDIRECTS };
const PROXY: CallRules = { retry: PROXY_RETRY, redirects: PASS_REDIRECTS_THROUGH };
const FRESH: CallProgress = { attempts: 1, retries: 0, redirects: 0, credentialReplaced: false };
const GET = { method: 'GET', replayable: true, msLeft: 30_000 };
const POST = { method: 'POST', replayable: true, msLeft: 30_000 };
/** Jitter pinned to its middle: backoff(0) = 150 ms with EXECUTE_RETRY's 200 ms base. */
const HALF = () => 0.5;

function answered(
  status: number,
  more: Partial<Extract<AttemptOutcome, { kind: 'answered' }>> = {},
): AttemptOutcome {
  return { kind: 'answered', status, refusal: null, location: undefined, retryAfter: undefined, ...more };
}

const refused = { refusal: { mayReplace: true, pausedUntil: null } };

describe('decide: connection failures', () => {
  it.each([
    ['refused', 'POST', true, 'retry'],
    ['unreachable', 'POST', true, 'retry'],
    ['reset', 'GET', true, 'retry'],
    ['reset', 'PUT', true, 'retry'],
    ['reset', 'POST', true, 'give-up'],
    ['reset', 'PATCH', true, 'give-up'],
    ['refused', 'GET', false, 'give-up'],
    ['timeout', 'GET', true, 'give-up'],
    ['tls', 'GET', true, 'give-up'],
    ['dns', 'GET', true, 'give-up'],
    ['denied', 'GET', true, 'give-up'],
  ] as const)('%s on %s (body replayable: %s) → %s', (failure, method, replayable, expected) => {
    const decision = decide(
      { kind: 'failed', failure },
      FRESH,
      { method, replayable, msLeft: 30_000 },
      PROXY,
      HALF,
    );
    expect(decision.kind).toBe(expected);
    expect(isSafeToRetry(failure, method, replayable)).toBe(expected === 'retry');
  });

  it('backs off 100–200 ms, then 200–400 ms, and stops after two retries', () => {
    expect(decide({ kind: 'failed', failure: 'reset' }, FRESH, GET, EXECUTE, HALF)).toEqual({
      kind: 'retry',
      afterMs: 150,
    });
    expect(backoffMs(EXECUTE_RETRY, 1, () => 0)).toBe(200);
    expect(backoffMs(EXECUTE_RETRY, 1, () => 1)).toBe(400);
    const twice = { ...FRESH, attempts: 3, retries: 2 };
    expect(decide({ kind: 'failed', failure: 'reset' }, twice, GET, EXECUTE, HALF).kind).toBe('give-up');
  });

  it('does not wait past the deadline', () => {
    expect(
      decide({ kind: 'failed', failure: 'refused' }, FRESH, { ...GET, msLeft: 100 }, EXECUTE, HALF).kind,
    ).toBe('give-up');
  });
});

describe('decide: a refused credential', () => {
  it('is replaced once and the call sent again, when the body can be', () => {
    expect(decide(answered(401, refused), FRESH, POST, PROXY)).toEqual({ kind: 'replace-credential' });
    const replaced = { ...FRESH, attempts: 2, credentialReplaced: true };
    expect(decide(answered(401, refused), replaced, POST, PROXY)).toEqual({
      kind: 'deliver',
      replaceCredential: false,
    });
  });

  it('is answered as it is when the body cannot be sent again, with a replacement for the next call', () => {
    expect(decide(answered(401, refused), FRESH, { ...POST, replayable: false }, PROXY)).toEqual({
      kind: 'deliver',
      replaceCredential: true,
    });
  });

  it('is answered as it is while the source pauses, or when it cannot be replaced (a static key)', () => {
    const paused = { refusal: { mayReplace: false, pausedUntil: Date.now() + 60_000 } };
    expect(decide(answered(401, paused), FRESH, GET, EXECUTE)).toEqual({
      kind: 'deliver',
      replaceCredential: false,
    });
    expect(decide(answered(401), FRESH, GET, EXECUTE)).toEqual({ kind: 'deliver', replaceCredential: false });
  });
});

describe('decide: redirects', () => {
  const to = { location: '/elsewhere' };
  it('follows GET and HEAD for execute, at most five times', () => {
    expect(decide(answered(302, to), FRESH, GET, EXECUTE)).toEqual({
      kind: 'follow',
      location: '/elsewhere',
    });
    expect(decide(answered(308, to), FRESH, { ...GET, method: 'HEAD' }, EXECUTE).kind).toBe('follow');
    expect(decide(answered(302, to), { ...FRESH, redirects: 5 }, GET, EXECUTE).kind).toBe('deliver');
    expect(decide(answered(307, to), FRESH, POST, EXECUTE).kind).toBe('deliver');
    expect(decide(answered(304, to), FRESH, GET, EXECUTE).kind).toBe('deliver');
    expect(decide(answered(302), FRESH, GET, EXECUTE).kind).toBe('deliver');
  });

  it('passes every redirect through for the proxy', () => {
    expect(decide(answered(302, to), FRESH, GET, PROXY).kind).toBe('deliver');
  });
});

describe('decide: "not now" statuses', () => {
  it('retries 429/502/503/504 of an idempotent execute call after Retry-After, within 5 s and the deadline', () => {
    expect(decide(answered(503, { retryAfter: '0' }), FRESH, GET, EXECUTE)).toEqual({
      kind: 'retry',
      afterMs: 0,
    });
    expect(decide(answered(429, { retryAfter: '2' }), FRESH, GET, EXECUTE)).toEqual({
      kind: 'retry',
      afterMs: 2000,
    });
    expect(decide(answered(502), FRESH, GET, EXECUTE, HALF)).toEqual({ kind: 'retry', afterMs: 150 });
    expect(decide(answered(429, { retryAfter: '3600' }), FRESH, GET, EXECUTE).kind).toBe('deliver');
    expect(decide(answered(503, { retryAfter: '2' }), FRESH, { ...GET, msLeft: 1000 }, EXECUTE).kind).toBe(
      'deliver',
    );
    expect(decide(answered(503, { retryAfter: '0' }), FRESH, POST, EXECUTE).kind).toBe('deliver');
    expect(decide(answered(500), FRESH, GET, EXECUTE).kind).toBe('deliver');
  });

  it('hands them to the proxy caller, Retry-After and all', () => {
    expect(decide(answered(503, { retryAfter: '0' }), FRESH, GET, PROXY).kind).toBe('deliver');
  });
});

describe('refusesCredential (refreshOn)', () => {
  const only401 = new Set([401]);
  const both = new Set([401, 403]);
  it.each([
    [401, undefined, only401, true],
    [401, 'Bearer error="invalid_token"', only401, true],
    [403, undefined, only401, false],
    [403, undefined, both, true],
    [403, 'Bearer realm="api"', both, true],
    [403, 'Bearer error="insufficient_scope", scope="write"', both, false],
    [403, ['Basic realm="x"', 'Bearer error="insufficient_scope"'], both, false],
    [401, undefined, new Set([403]), false],
    [404, undefined, both, false],
    // RFC 9449: the proof was refused, or a nonce asked for again — a new token changes nothing.
    [401, 'DPoP error="invalid_dpop_proof", error_description="DPoP proof htu mismatch"', only401, false],
    [401, 'DPoP error="use_dpop_nonce"', only401, false],
    [401, 'DPoP error="invalid_token"', only401, true],
  ] as const)('%i with %j and refreshOn %o → %s', (status, challenge, refreshOn, expected) => {
    expect(refusesCredential(status, challenge as string | string[] | undefined, refreshOn)).toBe(expected);
  });
});

describe('proxiedBodyHandling (body replay)', () => {
  it('buffers a small declared body, streams a large or chunked one, and sends none without framing', () => {
    expect(proxiedBodyHandling(undefined, false)).toBe('none');
    expect(proxiedBodyHandling('0', false)).toBe('none');
    expect(proxiedBodyHandling('10', false)).toBe('buffer');
    expect(proxiedBodyHandling(String(REPLAYABLE_BODY_BYTES), false)).toBe('buffer');
    expect(proxiedBodyHandling(String(REPLAYABLE_BODY_BYTES + 1), false)).toBe('stream');
    expect(proxiedBodyHandling(undefined, true)).toBe('stream');
  });
});
