import { X509Certificate } from 'node:crypto';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { certificateThumbprints, selfSignedCertificate } from '../keys/certificate.js';
import { generatePrivateKey, publicJwkOf, SIGNING_ALGS } from '../keys/key-material.js';
import {
  addClientAssertion,
  CLIENT_ASSERTION_LIFETIME_SECONDS,
  CLIENT_ASSERTION_TYPE,
  clientAssertion,
} from './client-assertion.js';

const TOKEN_URL = 'https://login.example.com/oauth2/token';

describe('client assertions (RFC 7523 §2.2, OpenID Connect Core §9)', () => {
  it.each(SIGNING_ALGS)(
    'private_key_jwt with %s: iss = sub = client id, aud, jti, short exp',
    async (alg) => {
      const key = generatePrivateKey(alg);
      const now = Date.now();
      const { assertion, sent } = clientAssertion(
        { clientId: 'client-1', audience: TOKEN_URL, now },
        { signer: { alg, key }, kid: 'kid-1' },
      );
      const { payload, protectedHeader } = await jwtVerify(
        assertion,
        await importJWK(publicJwkOf(key), alg),
        { issuer: 'client-1', subject: 'client-1', audience: TOKEN_URL },
      );
      expect(protectedHeader).toEqual({ alg, typ: 'JWT', kid: 'kid-1' });
      expect(payload.exp).toBe(Math.floor(now / 1000) + CLIENT_ASSERTION_LIFETIME_SECONDS);
      expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(sent).toMatchObject({ alg, kid: 'kid-1', audience: TOKEN_URL });
    },
  );

  it('every assertion has its own jti', () => {
    const signer = { signer: { alg: 'HS256' as const, secret: 'secret-of-the-client' } };
    const a = clientAssertion({ clientId: 'c', audience: TOKEN_URL }, signer).assertion;
    const b = clientAssertion({ clientId: 'c', audience: TOKEN_URL }, signer).assertion;
    expect(a).not.toBe(b);
  });

  it('client_secret_jwt signs HS256 with the client secret', async () => {
    const { assertion } = clientAssertion(
      { clientId: 'c', audience: TOKEN_URL },
      { signer: { alg: 'HS256', secret: 'the-client-secret' } },
    );
    await expect(jwtVerify(assertion, new TextEncoder().encode('the-client-secret'))).resolves.toBeDefined();
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'HS256', typ: 'JWT' });
  });

  it('carries the certificate thumbprints Microsoft Entra ID looks the key up by', () => {
    const key = generatePrivateKey('PS256');
    const certificate = new X509Certificate(selfSignedCertificate(key, { commonName: 'entra' }));
    const { x5t, x5tS256 } = certificateThumbprints(certificate);
    const { assertion } = clientAssertion(
      { clientId: 'c', audience: TOKEN_URL },
      { signer: { alg: 'PS256', key }, kid: 'k', x5t, x5tS256 },
    );
    expect(decodeProtectedHeader(assertion)).toMatchObject({ x5t, 'x5t#S256': x5tS256 });
  });

  it('goes in the body with its type and the client id, replacing a client secret', () => {
    const body = new URLSearchParams({ grant_type: 'client_credentials', client_secret: 'x' });
    addClientAssertion(body, 'client-1', 'a.b.c');
    expect(Object.fromEntries(body)).toEqual({
      grant_type: 'client_credentials',
      client_id: 'client-1',
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: 'a.b.c',
    });
  });
});
