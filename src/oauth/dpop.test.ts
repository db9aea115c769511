import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import { Headers as UndiciHeaders } from 'undici';
import { describe, expect, it } from 'vitest';
import { generatePrivateKey, jwkThumbprint } from '../keys/key-material.js';
import {
  accessTokenHash,
  asksForNonce,
  DPOP_ALG,
  DpopNonces,
  dpopKey,
  dpopProof,
  htuOf,
  isDpopTokenType,
  nonceOf,
} from './dpop.js';

describe('DPoP proofs (RFC 9449)', () => {
  const key = dpopKey(generatePrivateKey(DPOP_ALG), DPOP_ALG);

  it('are dpop+jwt with the public key, htm, htu without query, iat and a fresh jti (verified with jose)', async () => {
    const { proof, sent } = dpopProof(key, {
      method: 'post',
      url: 'https://as.example.com/token?x=1#frag',
      nonce: 'n-1',
    });
    const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt' });
    expect(protectedHeader.alg).toBe('ES256');
    expect(protectedHeader.jwk).toEqual(key.jwk);
    expect(protectedHeader.jwk).not.toHaveProperty('d');
    expect(payload).toMatchObject({ htm: 'POST', htu: 'https://as.example.com/token', nonce: 'n-1' });
    expect(payload).not.toHaveProperty('ath');
    expect(typeof payload.iat).toBe('number');
    expect(payload.jti).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(sent).toMatchObject({ htm: 'POST', ath: false, nonce: true });
    expect(await calculateJwkThumbprint(key.jwk)).toBe(jwkThumbprint(key.jwk));
  });

  it('binds the access token with ath = base64url(SHA-256(token)) (RFC 9449 §4.2 example)', async () => {
    // The access token and ath of RFC 9449 §7.1.
    expect(accessTokenHash('Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU')).toBe(
      'fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo',
    );
    const { proof } = dpopProof(key, { method: 'GET', url: 'https://api.example.com/r', accessToken: 'tok' });
    const { payload } = await jwtVerify(proof, EmbeddedJWK);
    expect(payload.ath).toBe(accessTokenHash('tok'));
  });

  it('htu keeps a non-default port and drops the query', () => {
    expect(htuOf('https://api.example.com:8443/a/b?c=d')).toBe('https://api.example.com:8443/a/b');
    expect(htuOf('https://API.example.com:443/x')).toBe('https://api.example.com/x');
  });

  it('recognises DPoP token types and nonce challenges from the token endpoint and an API', () => {
    expect(isDpopTokenType('DPoP')).toBe(true);
    expect(isDpopTokenType('dpop')).toBe(true);
    expect(isDpopTokenType('Bearer')).toBe(false);
    expect(asksForNonce({ status: 400, oauthError: 'use_dpop_nonce' })).toBe(true);
    expect(
      asksForNonce({
        status: 401,
        wwwAuthenticate: 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce"',
      }),
    ).toBe(true);
    expect(asksForNonce({ status: 401, wwwAuthenticate: 'DPoP error="invalid_token"' })).toBe(false);
    expect(asksForNonce({ status: 401, wwwAuthenticate: 'Bearer error="use_dpop_nonce"' })).toBe(false);
  });

  it('keeps nonces per key and origin, and refuses malformed ones', () => {
    const nonces = new DpopNonces(2);
    expect(nonces.learn('k', 'https://a.example/token', new Headers({ 'DPoP-Nonce': 'n1' }))).toBe('n1');
    expect(nonces.get('k', 'https://a.example/other')).toBe('n1');
    expect(nonces.get('other', 'https://a.example/token')).toBeUndefined();
    expect(nonceOf({ 'dpop-nonce': 'has space' })).toBeNull();
    // Regression: Egress answers with the npm undici's Headers, which is not Node's global class.
    expect(nonceOf(new UndiciHeaders({ 'DPoP-Nonce': 'from-undici' }) as unknown as Headers)).toBe(
      'from-undici',
    );
    nonces.learn('k', 'https://b.example/', { 'dpop-nonce': 'n2' });
    nonces.learn('k', 'https://c.example/', { 'dpop-nonce': 'n3' });
    expect(nonces.get('k', 'https://a.example/')).toBeUndefined();
    expect(nonces.get('k', 'https://c.example/')).toBe('n3');
  });
});
