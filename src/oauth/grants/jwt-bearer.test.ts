import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { generatePrivateKey, publicJwkOf } from '../../keys/key-material.js';
import { JWT_BEARER_LIFETIME_SECONDS, jwtBearerAssertion } from './jwt-bearer.js';

describe('JWT-bearer assertions (RFC 7523 §2.1, §3)', () => {
  it('carry iss, sub, aud, iat, exp within the hour, the extra claims, and the kid', async () => {
    const key = generatePrivateKey('RS256');
    const { assertion, sent } = jwtBearerAssertion(
      {
        iss: 'sa@project.iam.gserviceaccount.com',
        sub: 'user@example.com',
        aud: 'https://oauth2.googleapis.com/token',
        extra: { scope: 'https://www.googleapis.com/auth/drive.readonly', exp: '1', jti: 'fixed' },
      },
      { signer: { alg: 'RS256', key }, kid: 'google-key-id' },
    );
    const { payload } = await jwtVerify(assertion, await importJWK(publicJwkOf(key), 'RS256'), {
      issuer: 'sa@project.iam.gserviceaccount.com',
      subject: 'user@example.com',
      audience: 'https://oauth2.googleapis.com/token',
      maxTokenAge: '1h',
    });
    expect(payload.scope).toBe('https://www.googleapis.com/auth/drive.readonly');
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(JWT_BEARER_LIFETIME_SECONDS);
    expect(payload.jti).not.toBe('fixed');
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'google-key-id' });
    expect(sent.audience).toBe('https://oauth2.googleapis.com/token');
  });

  it('leaves sub out when none is given (no domain-wide delegation)', async () => {
    const key = generatePrivateKey('ES256');
    const { assertion } = jwtBearerAssertion(
      { iss: 'i', aud: 'a', sub: '' },
      { signer: { alg: 'ES256', key } },
    );
    const { payload } = await jwtVerify(assertion, await importJWK(publicJwkOf(key), 'ES256'));
    expect(payload).not.toHaveProperty('sub');
  });
});
