import { createPrivateKey } from 'node:crypto';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { signJws } from './jws.js';
import {
  activate,
  EMPTY_KEY_SET,
  finish,
  generatedKey,
  jwksOf,
  type KeySet,
  parseKeySet,
  publicKeyViews,
  rotate,
  type StoredKey,
  serializeKeySet,
} from './key-set.js';

const now = Date.parse('2026-01-01T00:00:00Z');

function signWith(stored: StoredKey): string {
  const nowSeconds = Math.floor(Date.now() / 1000);
  return signJws(
    { kid: stored.kid, typ: 'JWT' },
    { iss: 'c', exp: nowSeconds + 60 },
    { alg: stored.alg, key: createPrivateKey(stored.privateKey) },
  );
}

describe('key sets', () => {
  const first = generatedKey({ alg: 'ES256', now });
  const second = generatedKey({ alg: 'ES256', now: now + 1 });
  const base: KeySet = { ...EMPTY_KEY_SET, current: first };

  it('a generated key is named by its thumbprint and round-trips through its stored form', () => {
    expect(first.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(parseKeySet(serializeKeySet(base))).toEqual(base);
    expect(parseKeySet('{}')).toEqual(EMPTY_KEY_SET);
  });

  it('rotates in three steps: both published while the old signs, then the new signs, then only the new', async () => {
    const rotated = rotate(base, second);
    if (!rotated.ok) throw new Error(rotated.problem);
    expect(rotated.set.current?.kid).toBe(first.kid);
    expect(jwksOf(rotated.set).keys.map((k) => k.kid)).toEqual([first.kid, second.kid]);

    const jwks = createLocalJWKSet(jwksOf(rotated.set));
    await expect(jwtVerify(signWith(first), jwks)).resolves.toBeDefined();
    await expect(jwtVerify(signWith(second), jwks)).resolves.toBeDefined();

    const active = activate(rotated.set);
    if (!active.ok) throw new Error(active.problem);
    expect(active.set.current?.kid).toBe(second.kid);
    expect(publicKeyViews(active.set).map((v) => [v.kid, v.status])).toEqual([
      [second.kid, 'current'],
      [first.kid, 'retiring'],
    ]);

    const done = finish(active.set);
    if (!done.ok) throw new Error(done.problem);
    expect(jwksOf(done.set).keys.map((k) => k.kid)).toEqual([second.kid]);
    await expect(jwtVerify(signWith(first), createLocalJWKSet(jwksOf(done.set)))).rejects.toThrow();
  });

  it('finish without activate switches and drops in one step', () => {
    const rotated = rotate(base, second);
    if (!rotated.ok) throw new Error(rotated.problem);
    const done = finish(rotated.set);
    expect(done.ok && done.set.current?.kid).toBe(second.kid);
    expect(done.ok && done.set.retiring).toBeNull();
  });

  it('refuses transitions out of order', () => {
    expect(rotate(EMPTY_KEY_SET, second)).toMatchObject({ ok: false });
    expect(activate(base)).toMatchObject({
      ok: false,
      problem: expect.stringContaining('rotate the key first'),
    });
    expect(finish(base)).toMatchObject({ ok: false, problem: expect.stringContaining('nothing to finish') });
    const rotated = rotate(base, second);
    if (!rotated.ok) throw new Error(rotated.problem);
    expect(rotate(rotated.set, second)).toMatchObject({
      ok: false,
      problem: expect.stringContaining('already'),
    });
  });

  it('publishes public members only, and the certificate of a mutual-TLS key', () => {
    const tls = generatedKey({ alg: 'RS256', selfSigned: { commonName: 'auth_x' }, now: Date.now() });
    const set: KeySet = { ...EMPTY_KEY_SET, current: tls, dpop: generatedKey({ alg: 'ES256', now }) };
    const { keys } = jwksOf(set);
    expect(keys).toHaveLength(1);
    const [jwk] = keys;
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(jwk).not.toHaveProperty(member);
    expect(jwk).toMatchObject({ kty: 'RSA', kid: tls.kid, alg: 'RS256', use: 'sig' });
    expect(jwk?.x5c).toHaveLength(1);
    const [view] = publicKeyViews(set);
    expect(view?.publicKeyPem).toContain('BEGIN PUBLIC KEY');
    expect(view?.certificateSha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(JSON.stringify(publicKeyViews(set))).not.toContain('PRIVATE KEY');
  });
});
