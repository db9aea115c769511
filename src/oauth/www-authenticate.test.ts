import { describe, expect, it } from 'vitest';
import { parseBearerChallenge, parseWwwAuthenticate } from './www-authenticate.js';

describe('parseWwwAuthenticate (RFC 9110 §11.6.1, RFC 6750 §3)', () => {
  it('reads the RFC 6750 §3 example', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="example", error="invalid_token", error_description="The access token expired"',
      ),
    ).toEqual([
      {
        scheme: 'Bearer',
        params: { realm: 'example', error: 'invalid_token', error_description: 'The access token expired' },
      },
    ]);
  });

  it('unescapes quoted strings and keeps commas inside them', () => {
    const [challenge] = parseWwwAuthenticate(
      'Bearer error_description="say \\"hi\\", then \\\\ go", scope="a b"',
    );
    expect(challenge?.params).toEqual({ error_description: 'say "hi", then \\ go', scope: 'a b' });
  });

  it('reads several challenges, token and quoted values, and lower-cases parameter names', () => {
    const challenges = parseWwwAuthenticate(
      'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple", Bearer ERROR=insufficient_scope',
    );
    expect(challenges).toEqual([
      { scheme: 'Newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'Basic', params: { realm: 'simple' } },
      { scheme: 'Bearer', params: { error: 'insufficient_scope' } },
    ]);
  });

  it('reads token68 challenges and bare schemes', () => {
    expect(parseWwwAuthenticate('Negotiate abc123==, Bearer')).toEqual([
      { scheme: 'Negotiate', params: {}, token68: 'abc123==' },
      { scheme: 'Bearer', params: {} },
    ]);
  });

  it('tolerates spaces around = and an unterminated quoted string', () => {
    expect(parseWwwAuthenticate('Bearer realm = "x", error="invalid_tok')).toEqual([
      { scheme: 'Bearer', params: { realm: 'x', error: 'invalid_tok' } },
    ]);
  });

  it('gives nothing for an empty header', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
  });
});

describe('parseBearerChallenge', () => {
  it('picks the Bearer challenge among others, case-insensitively', () => {
    expect(
      parseBearerChallenge(
        'Basic realm="x", bearer error="insufficient_scope", scope="orders:read orders:write"',
      ),
    ).toEqual({ error: 'insufficient_scope', scope: 'orders:read orders:write' });
  });

  it('maps every RFC 6750 attribute', () => {
    expect(
      parseBearerChallenge(
        'Bearer realm="api", error="invalid_token", error_description="bad aud", error_uri="https://d/x"',
      ),
    ).toEqual({ realm: 'api', error: 'invalid_token', errorDescription: 'bad aud', errorUri: 'https://d/x' });
  });

  it('is null without a Bearer challenge or header', () => {
    expect(parseBearerChallenge('Basic realm="x"')).toBeNull();
    expect(parseBearerChallenge(null)).toBeNull();
  });
});
