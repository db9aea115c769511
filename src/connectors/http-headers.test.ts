import { describe, expect, it } from 'vitest';
import { retryAfterMs } from '../egress/retry-after.js';
import { forwardableResponseHeaders, headerValueProblem, proxyResponseHeaders } from './http-headers.js';

describe('headerValueProblem (RFC 9110 §5.5)', () => {
  it.each(['plain', 'with space\tand tab', 'café', '\u00ff', '', '!~'])('accepts %j', (value) => {
    expect(headerValueProblem(value)).toBeNull();
  });

  it.each([
    ['a\r\nInjected: 1', /control/],
    ['nul\u0000', /control/],
    ['del\u007f', /control/],
    ['🙂', /U\+00FF/],
    ['\u0100', /U\+00FF/],
    ['snow ☃', /U\+00FF/],
  ])('refuses %j, without quoting it', (value, why) => {
    const problem = headerValueProblem(value);
    expect(problem).toMatch(why);
    expect(problem).not.toContain(value);
  });
});

describe('forwardableResponseHeaders', () => {
  it('drops hop-by-hop fields and set-cookie', () => {
    const upstream = {
      connection: 'close, x-hop',
      'x-hop': '1',
      'transfer-encoding': 'chunked',
      'set-cookie': ['a=1', 'b=2'],
      'content-type': 'application/json',
    };
    expect(forwardableResponseHeaders(upstream)).toEqual({ 'content-type': 'application/json' });
  });
});

describe('proxyResponseHeaders', () => {
  it("drops what would speak for Grantry's origin and adds the sandbox policy", () => {
    const out = proxyResponseHeaders({
      'content-type': 'text/html',
      'set-cookie': ['a=1', 'b=2'],
      'set-cookie2': 'c=3',
      'clear-site-data': '"*"',
      'strict-transport-security': 'max-age=63072000; includeSubDomains',
      'alt-svc': 'h3=":443"',
      'cache-control': ['public', 'max-age=60'],
      'x-request-id': 'theirs',
      'x-grantry-error': 'forged',
      'transfer-encoding': 'chunked',
      etag: '"v1"',
    });
    expect(out).toEqual({
      'content-type': 'text/html',
      etag: '"v1"',
      'content-security-policy': 'sandbox',
    });
  });

  it("keeps the upstream's policies beside ours, and joins names in any case", () => {
    const out = proxyResponseHeaders({
      'content-security-policy': ["default-src 'self'", 'sandbox allow-scripts'],
      'Content-Security-Policy': 'img-src *',
      'X-Trace': 'a',
      'x-trace': 'b',
      'Set-Cookie': 'late=1',
      'X-Request-Id': 'theirs',
    });
    expect(out['content-security-policy']).toEqual([
      "default-src 'self'",
      'sandbox allow-scripts',
      'img-src *',
      'sandbox',
    ]);
    expect(out['x-trace']).toEqual(['a', 'b']);
    expect(out).not.toHaveProperty('set-cookie');
    expect(out).not.toHaveProperty('Set-Cookie');
    expect(out).not.toHaveProperty('X-Request-Id');
  });
});

describe('retryAfterMs (RFC 9110 §10.2.3)', () => {
  it('reads delay-seconds and HTTP-dates', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(undefined)).toBeNull();
    expect(retryAfterMs('soon')).toBeNull();
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
    expect(retryAfterMs('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
  });
});
