import { constants, createHmac, type KeyObject, sign } from 'node:crypto';
import type { SigningAlg } from './key-material.js';

/**
 * Compact JWS (RFC 7515 §7.1) signing with Node's `crypto`, for the four algorithms Grantry signs
 * with and HS256 for `client_secret_jwt`. Signatures are in the form RFC 7518 defines: PKCS #1 v1.5
 * (RS256, §3.3), PSS with MGF1 and a 32-byte salt (PS256, §3.5), the 64-byte R‖S concatenation
 * rather than DER (ES256, §3.4), and Ed25519 over the input itself (EdDSA, RFC 8037 §3.1).
 */
export type JwsKey = { alg: SigningAlg; key: KeyObject } | { alg: 'HS256'; secret: string };

export type JwsHeader = Record<string, unknown> & { alg?: never };

export function signJws(header: JwsHeader, payload: Record<string, unknown>, signer: JwsKey): string {
  const input = `${b64json({ alg: signer.alg, ...header })}.${b64json(payload)}`;
  return `${input}.${signature(input, signer).toString('base64url')}`;
}

function signature(input: string, signer: JwsKey): Buffer {
  const data = Buffer.from(input, 'ascii');
  switch (signer.alg) {
    case 'HS256':
      return createHmac('sha256', signer.secret).update(data).digest();
    case 'RS256':
      return sign('sha256', data, signer.key);
    case 'PS256':
      return sign('sha256', data, {
        key: signer.key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32,
      });
    case 'ES256':
      return sign('sha256', data, { key: signer.key, dsaEncoding: 'ieee-p1363' });
    case 'EdDSA':
      return sign(null, data, signer.key);
  }
}

function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/**
 * The header and payload of a compact JWS, without checking anything: for diagnosis of what Grantry
 * itself sent, never to trust a token.
 */
export function decodeJws(
  jws: string,
): { header: Record<string, unknown>; payload: Record<string, unknown> } | null {
  const [header, payload] = jws.split('.');
  if (header === undefined || payload === undefined) return null;
  try {
    return {
      header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>,
      payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>,
    };
  } catch {
    return null;
  }
}
