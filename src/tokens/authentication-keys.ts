import { createPrivateKey, X509Certificate } from 'node:crypto';
import { certificateThumbprints } from '../keys/certificate.js';
import { jwkThumbprint } from '../keys/key-material.js';
import type { KeySet, StoredKey } from '../keys/key-set.js';
import type { DpopBinding, KeyFacts, SigningKey } from '../oauth/client-config.js';
import { type DpopNonces, dpopKey } from '../oauth/dpop.js';

/**
 * An authentication's stored keys as the protocol uses them: the signing key of a client assertion or
 * a JWT-bearer grant, the DPoP key, and the certificate and key presented in a mutual-TLS handshake.
 * Private keys are parsed here, just before a request, from the key set opened with the other secrets.
 */

/** The key that signs now, with its certificate's thumbprints (Microsoft Entra ID's `x5t#S256`). */
export function signingKeyOf(keys: KeySet): SigningKey | undefined {
  const current = keys.current;
  if (current === null) return undefined;
  const key: SigningKey = { alg: current.alg, key: createPrivateKey(current.privateKey), kid: current.kid };
  if (current.certificate !== null) {
    const { x5t, x5tS256 } = certificateThumbprints(new X509Certificate(current.certificate));
    key.x5t = x5t;
    key.x5tS256 = x5tS256;
  }
  return key;
}

/** The DPoP binding, when the authentication has a DPoP key. */
export function dpopBindingOf(keys: KeySet, nonces: DpopNonces): DpopBinding | undefined {
  if (keys.dpop === null) return undefined;
  const key = dpopKey(createPrivateKey(keys.dpop.privateKey), keys.dpop.alg);
  return { key, jkt: jwkThumbprint(key.jwk), nonces };
}

/** What a TLS client presents: the private key and the certificate chain, PEM. */
export interface ClientCertificate {
  key: string;
  cert: string;
  /** SHA-256 fingerprint, hex pairs: the cache key of its connections, and what diagnoses name. */
  sha256: string;
}

/** The client certificate of the signing key, for mutual TLS; null when it has none. */
export function clientCertificateOf(keys: KeySet): ClientCertificate | null {
  return certificateOf(keys.current);
}

export function certificateOf(stored: StoredKey | null): ClientCertificate | null {
  if (stored === null || stored.certificate === null) return null;
  return {
    key: stored.privateKey,
    cert: stored.certificate,
    sha256: new X509Certificate(stored.certificate).fingerprint256,
  };
}

/** What a refusal's diagnosis says about the keys. */
export function keyFactsOf(keys: KeySet, jwksUri: string | null): KeyFacts {
  return {
    nextKid: keys.next?.kid ?? null,
    retiringKid: keys.retiring?.kid ?? null,
    jwksUri,
    certificateSha256:
      keys.current?.certificate === null || keys.current === null
        ? null
        : new X509Certificate(keys.current.certificate).fingerprint256,
  };
}
