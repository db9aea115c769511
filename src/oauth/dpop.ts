import { createHash, type KeyObject, randomBytes } from 'node:crypto';
import { signJws } from '../keys/jws.js';
import { type PublicJwk, publicJwkOf, type SigningAlg } from '../keys/key-material.js';
import { parseWwwAuthenticate } from './www-authenticate.js';

/**
 * DPoP, RFC 9449: every request that uses or obtains a DPoP-bound token carries a proof — a JWT
 * signed by the authentication's DPoP key, with the public key in its header — bound to the method
 * and URL of that request (§4.2), to the access token when one is sent (`ath`, §4.3), and to a
 * server-provided nonce when the server asks for one (§8, §9).
 */

/** The algorithm of DPoP keys Grantry makes: ES256, which every DPoP server supports (RFC 9449 §10). */
export const DPOP_ALG: SigningAlg = 'ES256';

export interface DpopKey {
  alg: SigningAlg;
  key: KeyObject;
  /** The public JWK sent in each proof's header. */
  jwk: PublicJwk;
}

export function dpopKey(key: KeyObject, alg: SigningAlg): DpopKey {
  return { alg, key, jwk: publicJwkOf(key) };
}

export interface ProofRequest {
  /** The HTTP method, as sent (§4.2 `htm`). */
  method: string;
  /** The request URL; the proof carries it without query and fragment (§4.2 `htu`). */
  url: string | URL;
  /** The access token the request sends, hashed into `ath` (§4.2, §7.1). */
  accessToken?: string | undefined;
  nonce?: string | undefined;
  /** Milliseconds since the epoch; default now. */
  now?: number | undefined;
}

/** What a proof said, for the diagnosis of a refusal (never the proof itself). */
export interface SentProof {
  htm: string;
  htu: string;
  iat: number;
  ath: boolean;
  nonce: boolean;
}

/** A DPoP proof JWT (RFC 9449 §4.2): `typ: dpop+jwt`, the public `jwk`, `jti`, `htm`, `htu`, `iat`, and `ath`/`nonce` when given. */
export function dpopProof(key: DpopKey, request: ProofRequest): { proof: string; sent: SentProof } {
  const iat = Math.floor((request.now ?? Date.now()) / 1000);
  const htu = htuOf(request.url);
  const htm = request.method.toUpperCase();
  const payload: Record<string, unknown> = {
    jti: randomBytes(32).toString('base64url'),
    htm,
    htu,
    iat,
  };
  if (request.accessToken !== undefined) payload.ath = accessTokenHash(request.accessToken);
  if (request.nonce !== undefined) payload.nonce = request.nonce;
  const proof = signJws({ typ: 'dpop+jwt', jwk: key.jwk }, payload, { alg: key.alg, key: key.key });
  return {
    proof,
    sent: { htm, htu, iat, ath: request.accessToken !== undefined, nonce: request.nonce !== undefined },
  };
}

/** The `htu` of a request: its URL without query and fragment (RFC 9449 §4.2, §4.3 item 9). */
export function htuOf(url: string | URL): string {
  const parsed = new URL(url);
  return `${parsed.origin}${parsed.pathname}`;
}

/** `ath`: base64url of the SHA-256 of the access token's ASCII bytes (RFC 9449 §4.2). */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/** `Authorization` for a DPoP-bound token (RFC 9449 §7.1). */
export function dpopAuthorization(accessToken: string): string {
  return `DPoP ${accessToken}`;
}

/** Whether a token response's `token_type` says the token is DPoP-bound (RFC 9449 §5; case-insensitive, RFC 6749 §5.1). */
export function isDpopTokenType(tokenType: string | null | undefined): boolean {
  return typeof tokenType === 'string' && tokenType.toLowerCase() === 'dpop';
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | null {
  // Duck-typed: the npm undici's Headers (what Egress.fetch answers with) is not Node's global class.
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
  const record = headers as Record<string, string | string[] | undefined>;
  const value = record[name] ?? record[name.toLowerCase()];
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

/** The `DPoP-Nonce` a response carries (RFC 9449 §8.1, §9), when it is a valid nonce. */
export function nonceOf(headers: HeaderSource): string | null {
  const value = header(headers, 'dpop-nonce');
  // §8.1: nonce = 1*NQCHAR (%x21 / %x23-5B / %x5D-7E).
  return value !== null && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(value) ? value : null;
}

/**
 * Whether an answer asks for a (new) nonce: the authorization server's `use_dpop_nonce` error
 * (400, RFC 9449 §8), or a resource server's 401 with a `DPoP` challenge carrying it (§9).
 */
export function asksForNonce(answer: {
  status: number;
  oauthError?: string | undefined;
  wwwAuthenticate?: string | null | undefined;
}): boolean {
  if (answer.oauthError === 'use_dpop_nonce') return true;
  if (answer.status !== 401 || answer.wwwAuthenticate === null || answer.wwwAuthenticate === undefined)
    return false;
  return parseWwwAuthenticate(answer.wwwAuthenticate).some(
    (challenge) => challenge.scheme.toLowerCase() === 'dpop' && challenge.params.error === 'use_dpop_nonce',
  );
}

/**
 * The nonces servers gave, per DPoP key and origin (a nonce belongs to the server that issued it,
 * RFC 9449 §8.1), kept in memory: a nonce is short-lived, and an instance that has none simply gets
 * one with its first refusal. Bounded, oldest forgotten first.
 */
export class DpopNonces {
  readonly #nonces = new Map<string, string>();
  readonly #max: number;

  constructor(max = 1_000) {
    this.#max = max;
  }

  get(jkt: string, url: string | URL): string | undefined {
    return this.#nonces.get(entryKey(jkt, url));
  }

  /** Keeps the nonce a response carries, if any; returns it. */
  learn(jkt: string, url: string | URL, headers: HeaderSource): string | null {
    const nonce = nonceOf(headers);
    if (nonce === null) return null;
    const key = entryKey(jkt, url);
    this.#nonces.delete(key);
    if (this.#nonces.size >= this.#max) {
      const oldest = this.#nonces.keys().next().value;
      if (oldest !== undefined) this.#nonces.delete(oldest);
    }
    this.#nonces.set(key, nonce);
    return nonce;
  }
}

function entryKey(jkt: string, url: string | URL): string {
  return `${jkt} ${new URL(url).origin}`;
}
