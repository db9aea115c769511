import type { PublicJwk } from '../keys/key-material.js';
import type { PublicKeyView } from '../keys/key-set.js';
import { isClientAuthMethod } from '../oauth/client-auth-detection.js';
import { boundedExpiresAt } from '../oauth/token-lifetime.js';
import type { ProblemBody } from '../problem.js';
import type { AuthenticationRecord, AuthStatus, EventRecord, TokenRecord } from '../store/contract.js';
import { secretColumn } from './authentication-draft.js';
import {
  type AssertionClaims,
  type AuthenticationSettingValues,
  type AuthenticationType,
  appliesWith,
  assertionOf,
  type FieldSpec,
  type GrantType,
  KINDS,
  type SecretFlags,
  secretFlag,
} from './catalogue/index.js';
import { MTLS_CLIENT_AUTH_METHODS } from './catalogue/oauth2.js';

function isMtls(method: unknown): boolean {
  return (MTLS_CLIENT_AUTH_METHODS as readonly unknown[]).includes(method);
}

/** What is known of a stored access token: never the token itself. */
export interface TokenMetadata {
  tokenType: string;
  obtainedAt: string;
  /** Null when the provider did not say. */
  expiresAt: string | null;
  scope: string | null;
  hasRefreshToken: boolean;
}

/** An authentication as the API answers it (docs/api.md "Authentications"), derived from the catalogue. */
export type AuthenticationView = {
  id: string;
  name: string;
  type: AuthenticationType;
  grantType?: GrantType;
} & Omit<AuthenticationSettingValues, 'assertion'> &
  SecretFlags & {
    /** authorization_code: the exact redirect URI to register at the provider. */
    redirectUri?: string;
    /** The public half of every signing key (current, next, retiring), for authentications that use keys. */
    keys?: PublicKeyView[];
    /** The public JWK of the key that signs now (docs/api.md). */
    publicJwk?: PublicJwk;
    /** The `kid` of the key that signs now: as given, else its RFC 7638 thumbprint. */
    keyId?: string;
    /** Mutual TLS: the certificate presented now (PEM, leaf first). */
    clientCertificate?: string;
    /** The JWT Bearer grant's assertion claims, `{"iss","sub","aud","claims"}`. */
    assertion?: AssertionClaims;
    /** Where the public keys are published (`publishJwks`). */
    jwksUri?: string;
    /** The DPoP key's thumbprint and public JWK (`dpop`). */
    dpopKey?: { jkt: string; alg: string; publicJwk: PublicJwk };
    /** `clientAuthMethod: auto`: the method detection found (kept with the tokens), or null. */
    detectedClientAuthMethod?: 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | null;
    /** Static kinds: the origins the credential may be sent to ([] until a connector attaches it). */
    boundOrigins?: string[];
    status: AuthStatus;
    token: TokenMetadata | null;
    lastError: ProblemBody | null;
    usedBy: string[];
    usage: { calls: number; unauthorized: number; refreshes: number };
    warnings: string[];
    createdAt: string;
    updatedAt: string;
  };

export interface EventView {
  at: string;
  type: string;
  detail: Record<string, unknown>;
}

const iso = (ms: number) => new Date(ms).toISOString();

export const PASSWORD_GRANT_WARNING =
  'The Password grant shares a person’s password with this service. Prefer Authorization Code or Client Credentials when the provider supports them.';

export function tokenMetadata(record: AuthenticationRecord, row: TokenRecord | null): TokenMetadata | null {
  if (row === null || row.generation !== record.generation || row.accessToken === null) return null;
  // Read within the bounds a new expiry is written with: an older row may hold one past the end of dates.
  const expiresAt = boundedExpiresAt(row.obtainedAt, row.expiresAt);
  return {
    tokenType: row.tokenType ?? 'Bearer',
    obtainedAt: iso(row.obtainedAt),
    expiresAt: expiresAt === null ? null : iso(expiresAt),
    scope: row.scope,
    hasRefreshToken: row.refreshToken !== null,
  };
}

/**
 * A record as the API shows it, built from the catalogue as an allow-list: every non-secret field
 * of the kind that applies to its grant, and for each secret only whether it is stored. A secret is
 * never copied; the response schema drops anything not named there as a second line of defence.
 */
export function authenticationView(
  record: AuthenticationRecord,
  token: TokenRecord | null,
  usedBy: string[],
  redirectUri: string,
  keys: AuthenticationKeysView | null = null,
): AuthenticationView {
  const view: Record<string, unknown> = { id: record.id, name: record.name, type: record.type };
  const grant = record.grantType ?? undefined;
  const settings = record.settings as Record<string, unknown>;
  if (settings.provider !== undefined) view.provider = settings.provider;
  if (settings.providerParams !== undefined) view.providerParams = settings.providerParams;
  const fields = KINDS[record.type].fields as readonly FieldSpec[];
  for (const field of fields) {
    if (!appliesWith(field, grant, settings, fields)) continue;
    if (field.inputOnly === true) continue;
    if (field.name === 'grantType') {
      if (grant !== undefined) view.grantType = grant;
    } else if (field.keyMaterial === true) {
      // Answered through `keys`: the private key only as whether one is stored.
      if (field.type === 'secret') view[secretFlag(field.name)] = (keys?.keys.length ?? 0) > 0;
    } else if (field.type === 'secret') {
      view[secretFlag(field.name)] = record.secrets[secretColumn(field.name)] !== undefined;
    } else if (field.name === 'assertion') {
      // Stored as one map of claims (as signed); answered as docs/api.md shapes it.
      const value = settings.assertion;
      if (value !== undefined) view.assertion = assertionOf(value as Record<string, string>);
    } else {
      const value = settings[field.name] ?? field.default;
      if (value !== undefined) view[field.name] = value;
    }
  }
  if (grant === 'authorization_code') view.redirectUri = redirectUri;
  if (keys !== null) {
    if (view.privateKeySet !== undefined) {
      view.keys = keys.keys;
      // docs/api.md: the signing key's public JWK, its kid and, for mutual TLS, its certificate.
      const current = keys.keys.find((key) => key.status === 'current');
      if (current !== undefined) {
        view.publicJwk = current.publicJwk;
        view.keyId = current.kid;
        if (isMtls(settings.clientAuthMethod) && current.certificate !== null)
          view.clientCertificate = current.certificate;
      }
    }
    if (keys.jwksUri !== undefined && settings.publishJwks === true && view.privateKeySet !== undefined)
      view.jwksUri = keys.jwksUri;
    if (keys.dpopKey !== undefined && settings.dpop === true) view.dpopKey = keys.dpopKey;
  }
  if (record.type === 'oauth2' && settings.clientAuthMethod === 'auto') {
    const current = token !== null && token.generation === record.generation ? token.clientAuthMethod : null;
    view.detectedClientAuthMethod =
      isClientAuthMethod(current) &&
      (current === 'client_secret_basic' ||
        current === 'client_secret_post' ||
        current === 'client_secret_jwt')
        ? current
        : null;
  }
  if (record.type !== 'oauth2') view.boundOrigins = record.settings.boundOrigins ?? [];
  Object.assign(view, {
    status: record.status,
    token: tokenMetadata(record, token),
    lastError: (record.lastError as ProblemBody | null) ?? null,
    usedBy,
    usage: { calls: record.calls, unauthorized: record.unauthorizedCount, refreshes: record.refreshCount },
    warnings: grant === 'password' ? [PASSWORD_GRANT_WARNING] : [],
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  });
  return view as AuthenticationView;
}

/** What the view shows of an authentication's keys (built by the service from the opened key set). */
export interface AuthenticationKeysView {
  keys: PublicKeyView[];
  jwksUri?: string;
  dpopKey?: { jkt: string; alg: string; publicJwk: PublicJwk };
}

export function eventView(event: EventRecord): EventView {
  return { at: iso(event.at), type: event.type, detail: event.detail };
}
