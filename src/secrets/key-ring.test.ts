import { describe, expect, it } from 'vitest';
import { generateMasterKey, KeyRing, MasterKeyError, parseMasterKey } from './key-ring.js';

const ctx = { table: 'authentications', id: 'auth_1', column: 'client_secret' };

describe('KeyRing', () => {
  const key = parseMasterKey(generateMasterKey(), 'test');

  it('seals and opens a value, with a fresh IV every time', () => {
    const ring = new KeyRing(key);
    const a = ring.seal('s3cret', ctx);
    const b = ring.seal('s3cret', ctx);
    expect(a).not.toBe(b);
    expect(a).not.toContain('s3cret');
    expect(ring.open(a, ctx)).toBe('s3cret');
  });

  it('refuses a ciphertext moved to another row or column (AAD binding)', () => {
    const ring = new KeyRing(key);
    const sealed = ring.seal('s3cret', ctx);
    expect(() => ring.open(sealed, { ...ctx, id: 'auth_2' })).toThrow(MasterKeyError);
    expect(() => ring.open(sealed, { ...ctx, column: 'password' })).toThrow(/integrity/);
  });

  it('names a wrong master key as exactly that', () => {
    const sealed = new KeyRing(key).seal('x', ctx);
    const other = new KeyRing(parseMasterKey(generateMasterKey(), 'test'));
    expect(() => other.open(sealed, ctx)).toThrow(/master key/);
  });

  it('reads values sealed under a previous key during rotation', () => {
    const oldRing = new KeyRing(key);
    const sealed = oldRing.seal('x', ctx);
    const next = new KeyRing(parseMasterKey(generateMasterKey(), 'test'), [key]);
    expect(next.needsReseal(sealed)).toBe(true);
    expect(next.open(sealed, ctx)).toBe('x');
    expect(next.needsReseal(next.seal('x', ctx))).toBe(false);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => parseMasterKey(Buffer.alloc(16).toString('base64'), 'GRANTRY_MASTER_KEY')).toThrow(
      /32 bytes/,
    );
  });
});
