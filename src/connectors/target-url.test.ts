import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileBaseTarget, isBelowBase, resolveCallPath, resolveCallPathInFull } from './target-url.js';

const base = compileBaseTarget(new URL('https://api.example.test/v1/'), { key: 'a b', n: '1' });
const root = compileBaseTarget(new URL('https://api.example.test'), {});

function resolved(target: typeof base, raw: string, extra = ''): string {
  const result = resolveCallPath(target, raw, extra);
  if (!result.ok) throw new Error(`refused ${raw}: ${result.message}`);
  return result.pathAndQuery;
}

describe('resolveCallPath', () => {
  it('joins the path below the base path with the static query first', () => {
    expect(resolved(base, '/users/1')).toBe('/v1/users/1?key=a+b&n=1');
    expect(resolved(base, 'users/1', 'x=2')).toBe('/v1/users/1?key=a+b&n=1&x=2');
    expect(resolved(base, '')).toBe('/v1/?key=a+b&n=1');
    expect(resolved(root, '')).toBe('/');
    expect(resolved(root, '/a/?q=1')).toBe('/a/?q=1');
  });

  it('resolves dot segments that stay below the base path (RFC 3986 §5.2.4)', () => {
    expect(resolved(root, '/a/../b/./c')).toBe('/b/c');
    expect(resolved(base, 'a/b/..')).toBe('/v1/a/?key=a+b&n=1');
  });

  it('percent-encodes characters that may not appear raw, keeping existing escapes', () => {
    expect(resolved(root, '/search/a b/é')).toBe('/search/a%20b/%C3%A9');
    expect(resolved(root, '/name%20x?q=a b')).toBe('/name%20x?q=a%20b');
    expect(resolved(root, '/projects:list')).toBe('/projects:list');
  });

  it.each([
    ['..', 'climb'],
    ['/../admin', 'climb'],
    ['a/../../x', 'climb'],
    ['//evil.example/x', '//host'],
    ['https://evil.example/x', 'absolute'],
    ['/https://evil.example/x', 'absolute'],
    ['/%2e%2e/admin', 'encoded'],
    ['/%2E%2E/admin', 'encoded'],
    ['/.%2e/admin', 'encoded'],
    ['/a%2fb', 'encoded'],
    ['/a%5c..%5cb', 'encoded'],
    ['/%252e%252e/admin', 'encoded'],
    ['/%c0%ae%c0%ae/admin', 'encoded'],
    ['/a%00b', 'encoded'],
    ['\\\\evil.example\\x', 'backslash'],
    ['/a\\..\\b', 'backslash'],
    ['/a\r\nHost: evil', 'control'],
    ['/a#frag', 'fragment'],
    ['/a%zz', 'malformed'],
    ['/..;/admin', 'disguised'],
    ['/a/.;x/b', 'disguised'],
    ['/\uff0e\uff0e/admin', 'disguised'],
    ['/a\uff0fb', 'disguised'],
    ['/%ef%bc%8e%ef%bc%8e/admin', 'disguised'],
    ['/a%EF%BC%8Fb', 'disguised'],
    ['/..%3b/admin', 'disguised'],
    ['/a\ud800b', 'unicode'],
    ['/a?q=\udc00', 'unicode'],
  ])('refuses %s', (raw, why) => {
    const result = resolveCallPath(base, raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(new RegExp(why === '//host' ? '//host' : why, 'i'));
  });
});

describe('resolveCallPath: a result that reads as //host', () => {
  it.each(['/x/..//evil.example/y', '/.//evil.example/y', 'a/..//evil.example', '/x/../'.concat('/y')])(
    'refuses %s below a root base path, whose result would start with //',
    (raw) => {
      const result = resolveCallPath(root, raw);
      expect(result).toEqual({ ok: false, message: expect.stringMatching(/\/\/host/) });
    },
  );

  it('keeps such a path below a base path, where it cannot start with //', () => {
    expect(resolved(compileBaseTarget(new URL('https://api.example.test/v1'), {}), '/x/..//y')).toBe(
      '/v1//y',
    );
  });

  it('refuses every path below a base URL whose own path starts with //', () => {
    const doubled = compileBaseTarget(new URL('https://api.example.test//evil.example/v1'), {});
    expect(resolveCallPath(doubled, '/items').ok).toBe(false);
  });
});

describe('isBelowBase (where a redirect may take credentials)', () => {
  const v2 = compileBaseTarget(new URL('https://api.example.test/api/v2'), {});
  const at = (target: typeof v2, location: string) =>
    isBelowBase(target, new URL(location, 'https://api.example.test/api/v2/hop'));

  it.each([
    '/api/v2',
    '/api/v2/',
    '/api/v2/users/1?x=1',
    'sibling',
    '/api/v2/a/../b',
    'https://api.example.test/api/v2/deeper',
    '/api/v2/name%20x',
  ])('%s is below /api/v2', (location) => {
    expect(at(v2, location)).toBe(true);
  });

  it.each([
    '/admin/secret',
    '/api/v2/../admin',
    '/api/v2/%2e%2e/admin',
    '/api/v2/.%2E/admin',
    '/api/v2/..%2fadmin',
    '/api/v2/%2e%2e%2fadmin',
    '/api/v2/%252e%252e/admin',
    '/api/v2/..;/admin',
    '/api/v2/%ef%bc%8e%ef%bc%8e/admin',
    '/api/v2evil',
    '/api',
    'https://api.example.test/admin',
    '//api.example.test/admin',
    'https://other.example.test/api/v2/x',
    'http://api.example.test/api/v2/x',
    'https://api.example.test:8443/api/v2/x',
  ])('%s is outside /api/v2', (location) => {
    expect(at(v2, location)).toBe(false);
  });

  it('takes the whole origin for a base URL at the root', () => {
    expect(at(root, 'https://api.example.test/anything/at/all')).toBe(true);
    expect(at(root, 'https://other.example.test/')).toBe(false);
  });
});

describe('resolveCallPath on plain paths', () => {
  // Characters that matter to some rule: separators, dots, escapes, schemes, non-ASCII, controls.
  const alphabet = [
    'a',
    'Z',
    '0',
    '/',
    '.',
    '..',
    '%',
    '%2e',
    '%2F',
    ';',
    ':',
    '?',
    '=',
    '&',
    '#',
    '\\',
    ' ',
    'é',
    '~',
    '@',
    '\u0000',
    "'",
  ];
  const raws = fc.array(fc.constantFrom(...alphabet), { maxLength: 12 }).map((parts) => parts.join(''));

  it('gives what the full rules give, for any path (property)', () => {
    fc.assert(
      fc.property(raws, fc.constantFrom('', 'x=1'), (raw, extra) => {
        for (const target of [base, root]) {
          expect(resolveCallPath(target, raw, extra)).toEqual(resolveCallPathInFull(target, raw, extra));
          expect(resolveCallPath(target, `/${raw}`, extra)).toEqual(
            resolveCallPathInFull(target, `/${raw}`, extra),
          );
        }
      }),
      { numRuns: 3000 },
    );
  });
});
