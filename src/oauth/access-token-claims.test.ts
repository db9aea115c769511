import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readAccessTokenClaims } from './access-token-claims.js';

function jwt(payload: unknown, header: unknown = { alg: 'RS256', typ: 'at+jwt' }): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part(header)}.${part(payload)}.c2lnbmF0dXJl`;
}

describe('readAccessTokenClaims', () => {
  it('reads audience, scope, issuer and times, and nothing about the person', () => {
    const claims = readAccessTokenClaims(
      jwt({
        iss: 'https://login.example.test',
        aud: 'https://api.example.test',
        scope: 'read  write',
        exp: 1_800_000_060,
        nbf: 1_800_000_000,
        iat: 1_800_000_000,
        sub: 'canary-sub',
        email: 'canary@example.test',
        name: 'Canary Person',
        client_id: 'client-1',
      }),
    );
    expect(claims).toEqual({
      issuer: 'https://login.example.test',
      audiences: ['https://api.example.test'],
      scopes: ['read', 'write'],
      expiresAt: 1_800_000_060,
      notBefore: 1_800_000_000,
      issuedAt: 1_800_000_000,
    });
    expect(JSON.stringify(claims)).not.toMatch(/canary|Canary|client-1/);
  });

  it('takes aud as an array and scp as an array or a string (Okta, Azure AD)', () => {
    expect(readAccessTokenClaims(jwt({ aud: ['a', 'b', 'a'], scp: ['read', 'write'] }))).toEqual({
      audiences: ['a', 'b'],
      scopes: ['read', 'write'],
    });
    expect(readAccessTokenClaims(jwt({ scp: 'User.Read Mail.Send' }))?.scopes).toEqual([
      'User.Read',
      'Mail.Send',
    ]);
  });

  it('cleans what could break a sentence, and shortens long values', () => {
    const claims = readAccessTokenClaims(jwt({ aud: `"quoted"\n${'x'.repeat(500)}` }));
    expect(claims?.audiences?.[0]).not.toMatch(/["\n]/);
    expect(claims?.audiences?.[0]?.length).toBeLessThanOrEqual(200);
  });

  it('reads opaque tokens, JWEs and garbage as null', () => {
    for (const token of [
      'opaque-token-abc',
      'a.b',
      'a.b.c.d.e',
      `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.not json!.sig`,
      `${Buffer.from('not json').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.sig`,
      jwt({}, { typ: 'JWT' }),
      jwt(['an', 'array']),
      jwt('a string'),
      'x'.repeat(20_000),
      '',
    ]) {
      expect(readAccessTokenClaims(token), token.slice(0, 40)).toBeNull();
    }
  });

  it('never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        readAccessTokenClaims(text);
        readAccessTokenClaims(`${text}.${text}.${text}`);
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const claims = readAccessTokenClaims(jwt(value));
        if (claims !== null) expect(typeof claims).toBe('object');
      }),
    );
  });
});
