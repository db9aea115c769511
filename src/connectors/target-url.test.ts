import { describe, expect, it } from 'vitest';
import { compileBaseTarget, resolveCallPath } from './target-url.js';

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
  ])('refuses %s', (raw, why) => {
    const result = resolveCallPath(base, raw);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(new RegExp(why === '//host' ? '//host' : why, 'i'));
  });
});
