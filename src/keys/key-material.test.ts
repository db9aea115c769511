import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, compactVerify, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { decodeJws, signJws } from './jws.js';
import {
  algProblem,
  algsFor,
  generatePrivateKey,
  jwkThumbprint,
  keyThumbprint,
  privateKeyPem,
  publicJwkOf,
  publicKeyPem,
  readPrivateKey,
  SIGNING_ALGS,
} from './key-material.js';

describe('key material', () => {
  it.each(SIGNING_ALGS)(
    'makes a %s key whose public JWK verifies what it signs (checked with jose)',
    async (alg) => {
      const key = generatePrivateKey(alg);
      expect(algsFor(key)).toContain(alg);
      const jwk = publicJwkOf(key, { kid: 'k1', alg, use: 'sig' });
      expect(Object.keys(jwk)).not.toContain('d');
      const jws = signJws({ kid: 'k1', typ: 'JWT' }, { hello: 'world' }, { alg, key });
      const verified = await compactVerify(jws, await importJWK(jwk, alg));
      expect(verified.protectedHeader).toMatchObject({ alg, kid: 'k1', typ: 'JWT' });
      expect(JSON.parse(new TextDecoder().decode(verified.payload))).toEqual({ hello: 'world' });
      expect(decodeJws(jws)?.payload).toEqual({ hello: 'world' });
    },
  );

  it('HS256 signs with the shared secret (client_secret_jwt)', async () => {
    const jws = signJws({}, { a: 1 }, { alg: 'HS256', secret: 'a shared secret of some length' });
    const verified = await compactVerify(jws, new TextEncoder().encode('a shared secret of some length'));
    expect(verified.protectedHeader.alg).toBe('HS256');
  });

  it('computes the RFC 7638 thumbprint as jose does, and the RFC 7638 §3.1 example', async () => {
    for (const alg of SIGNING_ALGS) {
      const jwk = publicJwkOf(generatePrivateKey(alg));
      expect(jwkThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk));
    }
    const example = {
      kty: 'RSA',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      e: 'AQAB',
    };
    expect(jwkThumbprint(example)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it('reads PKCS#8, PKCS#1 and SEC 1 PEM private keys', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    for (const pem of [
      privateKeyPem(rsa),
      rsa.export({ type: 'pkcs1', format: 'pem' }).toString(),
      ec.export({ type: 'sec1', format: 'pem' }).toString(),
      privateKeyPem(generatePrivateKey('EdDSA')),
    ]) {
      const reading = readPrivateKey(`\n  ${pem}\n`);
      expect(reading.ok, pem.slice(0, 40)).toBe(true);
    }
  });

  it.each([
    ['garbage', 'must be a PEM private key'],
    ['-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----', 'the PEM does not parse'],
    ['-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----', 'passphrase'],
    [publicKeyPem(generatePrivateKey('ES256')), 'is a public key'],
  ])('refuses %#: %s', (pem, problem) => {
    const reading = readPrivateKey(pem);
    expect(reading.ok).toBe(false);
    if (!reading.ok) expect(reading.problem).toContain(problem);
  });

  it('refuses RSA keys under 2048 bits and curves other than P-256', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const small1 = readPrivateKey(privateKeyPem(small));
    expect(small1).toEqual({ ok: false, problem: expect.stringContaining('RSA key of 1024 bits') });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    expect(readPrivateKey(privateKeyPem(p384))).toEqual({
      ok: false,
      problem: expect.stringContaining('secp384r1'),
    });
  });

  it('says when an algorithm does not fit the key', () => {
    const ec = generatePrivateKey('ES256');
    expect(algProblem(ec, 'ES256')).toBeNull();
    expect(algProblem(ec, 'RS256')).toBe('RS256 needs an RSA key, and the key is an EC P-256 key');
    expect(algProblem(generatePrivateKey('RS256'), 'PS256')).toBeNull();
  });

  it('the thumbprint of a key read back from its PEM is the same', () => {
    const key = generatePrivateKey('EdDSA');
    expect(keyThumbprint(createPrivateKey(privateKeyPem(key)))).toBe(keyThumbprint(key));
  });

  it('reads a private key given as a JWK (docs/api.md: "PEM PKCS#8, or a JWK"), with the PEM checks', () => {
    for (const alg of SIGNING_ALGS) {
      const key = generatePrivateKey(alg);
      const reading = readPrivateKey(JSON.stringify(key.export({ format: 'jwk' })));
      expect(reading.ok, alg).toBe(true);
      if (reading.ok) expect(keyThumbprint(reading.key)).toBe(keyThumbprint(key));
    }
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    expect(readPrivateKey(JSON.stringify(small.export({ format: 'jwk' })))).toEqual({
      ok: false,
      problem: 'is an RSA key of 1024 bits: at least 2048 bits are required',
    });
    const publicOnly = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    expect(readPrivateKey(JSON.stringify(publicOnly))).toMatchObject({
      ok: false,
      problem: expect.stringContaining('is a public JWK'),
    });
    expect(readPrivateKey('{"kty":"RSA",')).toMatchObject({
      ok: false,
      problem: expect.stringContaining('JSON'),
    });
    expect(readPrivateKey('{"kty":"EC","crv":"P-256","d":"AA"}')).toMatchObject({ ok: false });
    expect(readPrivateKey('{"d":"AA"}')).toMatchObject({ ok: false, problem: 'is a JWK without kty' });
  });
});
