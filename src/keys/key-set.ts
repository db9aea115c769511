import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { certificateThumbprints, selfSignedCertificate, x5cOf } from './certificate.js';
import {
  generatePrivateKey,
  keyThumbprint,
  type PublicJwk,
  privateKeyPem,
  publicJwkOf,
  publicKeyPem,
  type SigningAlg,
} from './key-material.js';

/**
 * The keys of one authentication, as one document sealed with its other secrets: the key that
 * signs (and, for mutual TLS, is presented with its certificate), the key a rotation brings in, the
 * key a rotation retires, and the DPoP key. Pure data and pure transitions; the services seal it and
 * decide when a transition happens.
 *
 * A rotation without downtime (docs/keys.md) is three steps:
 *   1. `rotate` — a `next` key is added; the JWKS lists both; the `current` key still signs.
 *   2. `activate` — once the provider has the new key, it signs; the old one becomes `retiring`
 *      and stays in the JWKS (a provider that cached the JWKS, or a token bound to the old
 *      certificate, still finds it).
 *   3. `finish` — the retiring key is dropped; the JWKS lists the new key only.
 */

export type KeyOrigin = 'generated' | 'imported';

/** One stored key pair: the private key as PKCS#8 PEM, its certificate chain for mutual TLS. */
export interface StoredKey {
  kid: string;
  alg: SigningAlg;
  privateKey: string;
  /** PEM, leaf first; null when the key has none (plain private_key_jwt or JWT-bearer). */
  certificate: string | null;
  origin: KeyOrigin;
  createdAt: number;
}

export interface KeySet {
  current: StoredKey | null;
  next: StoredKey | null;
  retiring: StoredKey | null;
  /** The DPoP proof key (RFC 9449): one per authentication, never rotated with the others. */
  dpop: StoredKey | null;
}

export const EMPTY_KEY_SET: KeySet = { current: null, next: null, retiring: null, dpop: null };

export type KeyStatus = 'current' | 'next' | 'retiring';

/** What the API and the console show of a key: public material only. */
export interface PublicKeyView {
  kid: string;
  alg: SigningAlg;
  status: KeyStatus;
  origin: KeyOrigin;
  publicJwk: PublicJwk;
  publicKeyPem: string;
  certificate: string | null;
  /** SHA-256 fingerprint of the certificate as hex pairs, what provider consoles show; null without one. */
  certificateSha256: string | null;
  certificateExpiresAt: string | null;
  createdAt: string;
}

export interface NewKeyOptions {
  alg: SigningAlg;
  /** A self-signed certificate is made with the key (mutual TLS). */
  selfSigned?: { commonName: string } | undefined;
  now: number;
}

/** A key pair made inside Grantry; its `kid` is its RFC 7638 thumbprint. */
export function generatedKey(options: NewKeyOptions): StoredKey {
  const key = generatePrivateKey(options.alg);
  return {
    kid: keyThumbprint(key),
    alg: options.alg,
    privateKey: privateKeyPem(key),
    certificate:
      options.selfSigned === undefined
        ? null
        : selfSignedCertificate(key, { commonName: options.selfSigned.commonName, now: options.now }),
    origin: 'generated',
    createdAt: options.now,
  };
}

/** A key a person brought (already checked by the caller); `kid` defaults to its thumbprint. */
export function importedKey(
  key: KeyObject,
  options: { alg: SigningAlg; kid?: string | undefined; certificate?: string | null; now: number },
): StoredKey {
  return {
    kid: options.kid ?? keyThumbprint(key),
    alg: options.alg,
    privateKey: privateKeyPem(key),
    certificate: options.certificate ?? null,
    origin: 'imported',
    createdAt: options.now,
  };
}

export function parseKeySet(json: string): KeySet {
  const value = JSON.parse(json) as Partial<KeySet>;
  return {
    current: value.current ?? null,
    next: value.next ?? null,
    retiring: value.retiring ?? null,
    dpop: value.dpop ?? null,
  };
}

export function serializeKeySet(set: KeySet): string {
  return JSON.stringify(set);
}

export function isEmptyKeySet(set: KeySet): boolean {
  return set.current === null && set.next === null && set.retiring === null && set.dpop === null;
}

export type KeySetTransition = { ok: true; set: KeySet } | { ok: false; problem: string };

/** Step 1: bring in `next` while `current` keeps signing. */
export function rotate(set: KeySet, next: StoredKey): KeySetTransition {
  if (set.current === null) return { ok: false, problem: 'There is no key to rotate yet.' };
  if (set.next !== null) {
    return {
      ok: false,
      problem: `A rotation is already under way (next key ${set.next.kid}): activate or finish it first.`,
    };
  }
  if (set.retiring !== null) {
    return {
      ok: false,
      problem: `The previous rotation is not finished (key ${set.retiring.kid} is retiring): finish it first.`,
    };
  }
  return { ok: true, set: { ...set, next } };
}

/** Step 2: the next key signs; the old one retires but stays published. */
export function activate(set: KeySet): KeySetTransition {
  if (set.next === null) return { ok: false, problem: 'No rotation is under way: rotate the key first.' };
  return { ok: true, set: { ...set, current: set.next, next: null, retiring: set.current } };
}

/** Step 3: drop the retiring key (activating the next one first if that step was skipped). */
export function finish(set: KeySet): KeySetTransition {
  if (set.next === null && set.retiring === null) {
    return { ok: false, problem: 'No rotation is under way: there is nothing to finish.' };
  }
  const activated =
    set.next === null ? set : { ...set, current: set.next, next: null, retiring: set.current };
  return { ok: true, set: { ...activated, retiring: null } };
}

/** The keys that sign, in the order the JWKS lists them: current, next, retiring. */
export function publishedKeys(set: KeySet): { key: StoredKey; status: KeyStatus }[] {
  const keys: { key: StoredKey; status: KeyStatus }[] = [];
  if (set.current !== null) keys.push({ key: set.current, status: 'current' });
  if (set.next !== null) keys.push({ key: set.next, status: 'next' });
  if (set.retiring !== null) keys.push({ key: set.retiring, status: 'retiring' });
  return keys;
}

/** The public JWK of a stored key, with `kid`, `alg`, `use` and, when it has a certificate, `x5c` and `x5t#S256`. */
export function storedPublicJwk(stored: StoredKey): PublicJwk {
  const jwk = publicJwkOf(createPrivateKey(stored.privateKey), {
    kid: stored.kid,
    alg: stored.alg,
    use: 'sig',
  });
  if (stored.certificate !== null) {
    jwk.x5c = x5cOf(stored.certificate);
    jwk['x5t#S256'] = certificateThumbprints(new X509Certificate(stored.certificate)).x5tS256;
  }
  return jwk;
}

/**
 * The JWK Set (RFC 7517 §5) a provider fetches from `jwks_uri`: the public half of every signing
 * key of the set, never the DPoP key (a provider learns that one from each proof's `jwk` header).
 */
export function jwksOf(set: KeySet): { keys: PublicJwk[] } {
  return { keys: publishedKeys(set).map(({ key }) => storedPublicJwk(key)) };
}

/** The public view of every signing key, for the API and the console. */
export function publicKeyViews(set: KeySet): PublicKeyView[] {
  return publishedKeys(set).map(({ key, status }) => {
    const certificate = key.certificate === null ? null : new X509Certificate(key.certificate);
    return {
      kid: key.kid,
      alg: key.alg,
      status,
      origin: key.origin,
      publicJwk: storedPublicJwk(key),
      publicKeyPem: publicKeyPem(createPrivateKey(key.privateKey)),
      certificate: key.certificate,
      certificateSha256: certificate === null ? null : certificate.fingerprint256,
      certificateExpiresAt:
        certificate === null ? null : new Date(Date.parse(certificate.validTo)).toISOString(),
      createdAt: new Date(key.createdAt).toISOString(),
    };
  });
}
