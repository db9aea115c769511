import { describe, expect, it } from 'vitest';
import { Problem } from '../problem.js';
import { authorizationHeaderValue, isHeaderSafeValue } from './header-value.js';

const TOKEN = 'at-SECRET-1a2b3c';

describe('isHeaderSafeValue (RFC 9110 §5.5)', () => {
  it.each([
    ['visible ASCII', 'Bearer abc.DEF-123_~+/='],
    ['spaces and a tab', 'a b\tc'],
    ['Latin-1 obs-text', 'café ÿ'],
    ['empty', ''],
  ])('accepts %s', (_name, value) => {
    expect(isHeaderSafeValue(value)).toBe(true);
  });

  it.each([
    ['CR', 'a\rb'],
    ['LF', 'a\nb'],
    ['CR LF', 'a\r\nX-Injected: 1'],
    ['NUL', 'a\u0000b'],
    ['ESC', 'a\u001bb'],
    ['DEL', 'a\u007fb'],
    ['€ (above Latin-1)', 'a€b'],
    ['U+2028 line separator', 'a\u2028b'],
    ['an emoji', 'a🔑b'],
  ])('refuses %s', (_name, value) => {
    expect(isHeaderSafeValue(value)).toBe(false);
  });

  it('agrees with what Node itself refuses to send', async () => {
    const { validateHeaderValue } = await import('node:http');
    for (let code = 0; code <= 0x1ff; code++) {
      const value = `x${String.fromCharCode(code)}y`;
      let nodeAccepts = true;
      try {
        validateHeaderValue('authorization', value);
      } catch {
        nodeAccepts = false;
      }
      expect(isHeaderSafeValue(value), `U+${code.toString(16)}`).toBe(nodeAccepts && code <= 0xff);
    }
  });
});

describe('authorizationHeaderValue', () => {
  it('is "<prefix> <token>", or the bare token for an empty prefix', () => {
    expect(authorizationHeaderValue('Bearer', TOKEN)).toBe(`Bearer ${TOKEN}`);
    expect(authorizationHeaderValue('Token', TOKEN)).toBe(`Token ${TOKEN}`);
    expect(authorizationHeaderValue('', TOKEN)).toBe(TOKEN);
  });

  function refusal(prefix: string, token: string): Problem {
    try {
      authorizationHeaderValue(prefix, token);
    } catch (error) {
      expect(error).toBeInstanceOf(Problem);
      const problem = error as Problem;
      expect(JSON.stringify(problem.toJSON())).not.toContain('SECRET');
      return problem;
    }
    throw new Error('expected a refusal');
  }

  it('refuses a token that cannot be sent, without quoting it', () => {
    const problem = refusal('Bearer', `${TOKEN}\r\nX-Injected: 1`);
    expect(problem.code).toBe('token_fetch_failed');
    expect(problem.message).toMatch(/access token contains a character/);
    expect(problem.hint).toMatch(/malformed access token/);
    expect(refusal('', `${TOKEN}€`).code).toBe('token_fetch_failed');
  });

  it('refuses a prefix that cannot be sent, naming the prefix', () => {
    const problem = refusal('Bearer\r\nX-Injected:', TOKEN);
    expect(problem.code).toBe('token_fetch_failed');
    expect(problem.message).toMatch(/header prefix/);
    expect(problem.hint).toMatch(/headerPrefix/);
  });
});
