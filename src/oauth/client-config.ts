import type { KeyObject } from 'node:crypto';
import type { SigningAlg } from '../keys/key-material.js';
import type { DpopKey, DpopNonces } from './dpop.js';

/**
 * How the client authenticates at the token endpoint: with its secret (RFC 6749 §2.3.1), a JWT
 * signed with the secret or a private key (RFC 7523 §2.2, OpenID Connect Core §9), its TLS
 * certificate (RFC 8705 §2), or not at all (`none`: a public client, or a JWT-bearer grant whose
 * assertion is the proof).
 */
export type ClientAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'client_secret_jwt'
  | 'private_key_jwt'
  | 'tls_client_auth'
  | 'self_signed_tls_client_auth'
  | 'none';

/** RFC 7523 §2.1: the grant type URI of a JWT used as an authorization grant. */
export const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** The key a client signs assertions with, as the protocol needs it. */
export interface SigningKey {
  alg: SigningAlg;
  key: KeyObject;
  kid: string;
  /** Thumbprints of its certificate, when it has one (the `x5t`, `x5t#S256` headers). */
  x5t?: string | undefined;
  x5tS256?: string | undefined;
}

/** DPoP (RFC 9449) for one authentication: its key, and where server nonces are kept. */
export interface DpopBinding {
  key: DpopKey;
  /** The key's RFC 7638 thumbprint (`jkt`), which the nonces are kept under. */
  jkt: string;
  nonces: DpopNonces;
}

/**
 * What the provider published about itself (RFC 8414), looked up only when a refusal needs
 * explaining (the issuer, the algorithms it accepts for client assertions); null when it publishes none.
 */
export type MetadataLookup = () => Promise<{
  issuer: string;
  clientAssertionAlgs: string[] | null;
} | null>;

/** Facts about the keys a refusal's diagnosis names: a rotation under way, a published JWKS. */
export interface KeyFacts {
  nextKid?: string | null | undefined;
  retiringKid?: string | null | undefined;
  jwksUri?: string | null | undefined;
  /** The SHA-256 fingerprint of the client certificate (mutual TLS), as provider consoles show it. */
  certificateSha256?: string | null | undefined;
}

/** The token request parameter that carries `audience`: Auth0-style `audience`, or RFC 8707 `resource`. */
export type AudienceParam = 'audience' | 'resource';

/**
 * One OAuth 2.0 client as the protocol needs it: endpoints, credentials and the shape of the token
 * request. Secrets are in the clear here; callers decrypt them just before a request.
 */
export interface OAuthClientConfig {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  clientAuthMethod: ClientAuthMethod;
  audience?: string | undefined;
  audienceParam: AudienceParam;
  /** Space-separated, sent exactly as given (RFC 6749 §3.3). */
  scope?: string | undefined;
  /** Added to every token request; never overrides a protocol parameter. */
  extraTokenParams?: Record<string, string> | undefined;
  authorizationUrl?: string | undefined;
  /** Added to the authorization URL; never overrides a protocol parameter. */
  extraAuthorizationParams?: Record<string, string> | undefined;
  /** RFC 7636 with S256; on unless explicitly false. */
  pkce?: boolean | undefined;
  revocationUrl?: string | undefined;
  /** `private_key_jwt` and the JWT-bearer grant: the key that signs. */
  signingKey?: SigningKey | undefined;
  /** The `aud` of client assertions; default the token URL (OpenID Connect Core §9). */
  clientAssertionAudience?: string | undefined;
  /** The JWT-bearer grant's claims (`iss`, `sub`, `aud` and others; RFC 7523 §3). */
  assertion?: Record<string, string> | undefined;
  /** DPoP-bound tokens (RFC 9449): a proof goes with every token request. */
  dpop?: DpopBinding | undefined;
  metadata?: MetadataLookup | undefined;
  keyFacts?: KeyFacts | undefined;
}

/** Every outbound call goes through this; in production it is `Egress.fetch` (no redirects, policy). */
export type OAuthFetch = typeof globalThis.fetch;

export interface TokenRequestOptions {
  fetch: OAuthFetch;
  /** Whole request including the body; default {@link DEFAULT_TOKEN_TIMEOUT_MS}. */
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

export const DEFAULT_TOKEN_TIMEOUT_MS = 15_000;

/**
 * Parameters that belong to the protocol (RFC 6749 §4, §6; RFC 7636). Caller-supplied extra parameters
 * (`extraTokenParams`, `extraAuthorizationParams`) may never set them: a configured extra must not be
 * able to swap the grant, the redirect URI or the client identity. The API validation reuses this list.
 */
export const PROTOCOL_PARAMETERS = [
  'grant_type',
  'code',
  'redirect_uri',
  'client_id',
  'client_secret',
  'refresh_token',
  'code_verifier',
  'username',
  'password',
  'scope',
  'state',
  'response_type',
  'code_challenge',
  'code_challenge_method',
  'client_assertion',
  'client_assertion_type',
  'assertion',
] as const;

export type ProtocolParameter = (typeof PROTOCOL_PARAMETERS)[number];

const protocolParameterSet: ReadonlySet<string> = new Set(PROTOCOL_PARAMETERS);

export function isProtocolParameter(name: string): boolean {
  return protocolParameterSet.has(name.toLowerCase());
}
