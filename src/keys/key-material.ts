import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';

/**
 * Key pairs for signing (client assertions, JWT-bearer assertions, DPoP proofs) and for mutual TLS:
 * made here, or read from a PEM a person pasted, checked, and described as the public JWK and PEM a
 * provider registers. Node's `crypto` does all of it; nothing here knows OAuth.
 *
 * The private key is kept as PKCS#8 PEM (`privateKeyPem`): one format for every key type, readable
 * by `createPrivateKey` and by every TLS stack.
 */

/** The JWS algorithms Grantry signs with (RFC 7518 §3.3, §3.5, §3.4; RFC 8037 §3.1). */
export const SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;
export type SigningAlg = (typeof SIGNING_ALGS)[number];

/** The smallest RSA modulus accepted (NIST SP 800-57 Part 1 §5.6.1, RFC 7518 §3.3). */
export const MIN_RSA_BITS = 2048;

/** The key type an algorithm needs: RSA for RS256 and PS256, P-256 for ES256, Ed25519 for EdDSA. */
export type KeyType = 'RSA' | 'P-256' | 'Ed25519';

export function keyTypeFor(alg: SigningAlg): KeyType {
  switch (alg) {
    case 'RS256':
    case 'PS256':
      return 'RSA';
    case 'ES256':
      return 'P-256';
    case 'EdDSA':
      return 'Ed25519';
  }
}

export function isSigningAlg(value: unknown): value is SigningAlg {
  return typeof value === 'string' && (SIGNING_ALGS as readonly string[]).includes(value);
}

/** A fresh key pair for `alg`; RSA keys are 2048 bits (what Google and Microsoft Entra issue). */
export function generatePrivateKey(alg: SigningAlg): KeyObject {
  switch (keyTypeFor(alg)) {
    case 'RSA':
      return generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS }).privateKey;
    case 'P-256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'Ed25519':
      return generateKeyPairSync('ed25519').privateKey;
  }
}

/** PKCS#8 PEM of a private key: the one form Grantry stores (sealed). */
export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** SPKI PEM of the public half ("-----BEGIN PUBLIC KEY-----"), for providers that take a PEM. */
export function publicKeyPem(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

/** The key type of a key object, or null for one Grantry does not sign with (DSA, P-384, X25519…). */
export function keyTypeOf(key: KeyObject): KeyType | null {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RSA';
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'P-256' : null;
    case 'ed25519':
      return 'Ed25519';
    default:
      return null;
  }
}

/** The algorithms a key can sign with, most common first. */
export function algsFor(key: KeyObject): SigningAlg[] {
  switch (keyTypeOf(key)) {
    case 'RSA':
      return ['RS256', 'PS256'];
    case 'P-256':
      return ['ES256'];
    case 'Ed25519':
      return ['EdDSA'];
    default:
      return [];
  }
}

export type PrivateKeyReading = { ok: true; key: KeyObject } | { ok: false; problem: string };

/**
 * Reads a private key pasted as PEM (PKCS#8 "PRIVATE KEY", PKCS#1 "RSA PRIVATE KEY" or SEC 1
 * "EC PRIVATE KEY") and checks it can sign for Grantry. The problem is a sentence that reads after
 * the field's name ("privateKey is a public key…") and never quotes the key.
 */
export function readPrivateKey(pem: string): PrivateKeyReading {
  const text = pem.trim();
  if (text.startsWith('{')) return readPrivateJwk(text);
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text)) {
    return {
      ok: false,
      problem:
        'is encrypted with a passphrase: export it without one (openssl pkcs8 -topk8 -nocrypt), Grantry encrypts it at rest',
    };
  }
  if (/-----BEGIN (RSA )?PUBLIC KEY-----/.test(text)) {
    return {
      ok: false,
      problem: 'is a public key: give the private key (the public one is derived from it)',
    };
  }
  if (/-----BEGIN CERTIFICATE-----/.test(text) && !/PRIVATE KEY-----/.test(text)) {
    return {
      ok: false,
      problem: 'is a certificate: give the private key here and the certificate in clientCertificate',
    };
  }
  if (!/-----BEGIN ((RSA|EC) )?PRIVATE KEY-----/.test(text)) {
    return {
      ok: false,
      problem: 'must be a PEM private key ("-----BEGIN PRIVATE KEY-----" … "-----END PRIVATE KEY-----")',
    };
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem' });
  } catch {
    return { ok: false, problem: 'is not a PEM private key that can be read (the PEM does not parse)' };
  }
  const problem = keyProblem(key);
  return problem === null ? { ok: true, key } : { ok: false, problem };
}

/**
 * Reads a private key given as a JWK (RFC 7517 §4; the members of RFC 7518 §6 and RFC 8037 §2), the
 * other form docs/api.md allows for `privateKey`. A public JWK (no `d`) is refused like a public PEM.
 */
function readPrivateJwk(text: string): PrivateKeyReading {
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'is neither a PEM private key nor a JWK (the JSON does not parse)' };
  }
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
    return { ok: false, problem: 'must be a PEM private key or a JWK object' };
  }
  const members = jwk as Record<string, unknown>;
  if (typeof members.kty !== 'string') return { ok: false, problem: 'is a JWK without kty' };
  if (members.d === undefined) {
    return {
      ok: false,
      problem: 'is a public JWK: give the private key (with "d"); the public one is derived from it',
    };
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: members as JsonWebKey, format: 'jwk' });
  } catch {
    return { ok: false, problem: `is not a private JWK that can be read (kty ${members.kty})` };
  }
  const problem = keyProblem(key);
  return problem === null ? { ok: true, key } : { ok: false, problem };
}

/** Why a key cannot sign for Grantry, or null: RSA under 2048 bits, a curve other than P-256. */
export function keyProblem(key: KeyObject): string | null {
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    return bits < MIN_RSA_BITS
      ? `is an RSA key of ${bits} bits: at least ${MIN_RSA_BITS} bits are required`
      : null;
  }
  if (key.asymmetricKeyType === 'rsa-pss') {
    return 'is an RSA-PSS-only key: export it as a plain RSA key (it still signs PS256)';
  }
  if (keyTypeOf(key) === null) {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    return `is a ${key.asymmetricKeyType ?? 'unknown'}${curve === undefined ? '' : ` ${curve}`} key: use RSA (2048 bits or more), EC P-256 or Ed25519`;
  }
  return null;
}

/** Why `alg` cannot be used with `key`, or null. */
export function algProblem(key: KeyObject, alg: SigningAlg): string | null {
  if (algsFor(key).includes(alg)) return null;
  const type = keyTypeOf(key);
  return `${alg} needs ${describeKeyType(keyTypeFor(alg))}, and the key is ${type === null ? 'of another type' : describeKeyType(type)}`;
}

function describeKeyType(type: KeyType): string {
  switch (type) {
    case 'RSA':
      return 'an RSA key';
    case 'P-256':
      return 'an EC P-256 key';
    case 'Ed25519':
      return 'an Ed25519 key';
  }
}

/** The members of a public JWK, in no particular order; private members are never included. */
export type PublicJwk = Record<string, string | string[]>;

const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  RSA: ['kty', 'n', 'e'],
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
};

/**
 * The public JWK of a key (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2), with `kid`, `alg` and
 * `use: "sig"` when given. Built member by member from an allow-list, so a private member (`d`,
 * `p`, `q`, `dp`, `dq`, `qi`) can never be in it.
 */
export function publicJwkOf(
  key: KeyObject,
  extra: { kid?: string | undefined; alg?: string | undefined; use?: 'sig' } = {},
): PublicJwk {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const full = publicKey.export({ format: 'jwk' }) as JsonWebKey;
  const members = PUBLIC_MEMBERS[full.kty ?? ''] ?? [];
  const jwk: PublicJwk = {};
  for (const name of members) {
    const value = (full as Record<string, unknown>)[name];
    if (typeof value === 'string') jwk[name] = value;
  }
  if (extra.kid !== undefined) jwk.kid = extra.kid;
  if (extra.use !== undefined) jwk.use = extra.use;
  if (extra.alg !== undefined) jwk.alg = extra.alg;
  return jwk;
}

/**
 * The JWK SHA-256 thumbprint (RFC 7638 §3): the required members in lexicographic order, no
 * whitespace, hashed. Used as the `kid` of keys Grantry makes and as DPoP's `jkt` (RFC 9449 §6.1).
 */
export function jwkThumbprint(jwk: PublicJwk): string {
  const required = PUBLIC_MEMBERS[String(jwk.kty)];
  if (required === undefined) throw new TypeError(`no thumbprint for key type ${String(jwk.kty)}`);
  const members = [...required].sort();
  const canonical = `{${members.map((name) => `${JSON.stringify(name)}:${JSON.stringify(jwk[name])}`).join(',')}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/** The RFC 7638 thumbprint of a key object. */
export function keyThumbprint(key: KeyObject): string {
  return jwkThumbprint(publicJwkOf(key));
}

/** True when two keys have the same public half. */
export function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  return keyThumbprint(a) === keyThumbprint(b);
}
