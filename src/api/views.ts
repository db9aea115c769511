import { DEFAULT_REFRESH_ON } from '../connectors/call-policy.js';
import { boundedExpiresAt } from '../oauth/token-lifetime.js';
import type { Problem, ProblemBody } from '../problem.js';
import type { AuthenticationRecord, ConnectorRecord, EventRecord, TokenRecord } from '../store/contract.js';
import type { AuthenticationView, ConnectorView, EventView } from './schemas.js';

/**
 * Records → API views. Built field by field from an allow-list: a secret is never copied, and
 * the response schemas drop anything not named there as a second line of defence.
 */
const iso = (ms: number) => new Date(ms).toISOString();

export const PASSWORD_GRANT_WARNING =
  'The Password grant shares a person’s password with this service. Prefer Authorization Code or Client Credentials when the provider supports them.';

export function tokenMetadata(
  record: AuthenticationRecord,
  row: TokenRecord | null,
): AuthenticationView['token'] {
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

export function authenticationView(
  record: AuthenticationRecord,
  token: TokenRecord | null,
  usedBy: string[],
  redirectUri: string,
): AuthenticationView {
  const s = record.settings;
  const view: AuthenticationView = {
    id: record.id,
    name: record.name,
    type: 'oauth2',
    grantType: record.grantType,
    tokenUrl: s.tokenUrl,
    clientId: s.clientId,
    clientSecretSet: record.clientSecret !== '',
    headerPrefix: s.headerPrefix,
    audienceParam: s.audienceParam,
    clientAuthMethod: s.clientAuthMethod,
    status: record.status,
    token: tokenMetadata(record, token),
    lastError: (record.lastError as ProblemBody | null) ?? null,
    usedBy,
    usage: { calls: record.calls, unauthorized: record.unauthorizedCount, refreshes: record.refreshCount },
    warnings: record.grantType === 'password' ? [PASSWORD_GRANT_WARNING] : [],
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
  if (s.authorizationUrl !== undefined) view.authorizationUrl = s.authorizationUrl;
  if (s.audience !== undefined) view.audience = s.audience;
  if (s.scope !== undefined) view.scope = s.scope;
  if (s.username !== undefined) view.username = s.username;
  if (record.grantType === 'password') view.passwordSet = record.password !== null;
  if (s.extraAuthorizationParams !== undefined) view.extraAuthorizationParams = s.extraAuthorizationParams;
  if (s.extraTokenParams !== undefined) view.extraTokenParams = s.extraTokenParams;
  if (s.pkce !== undefined) view.pkce = s.pkce;
  if (s.revocationUrl !== undefined) view.revocationUrl = s.revocationUrl;
  if (record.grantType === 'authorization_code') view.redirectUri = redirectUri;
  return view;
}

export function connectorView(record: ConnectorRecord): ConnectorView {
  return {
    id: record.id,
    name: record.name,
    baseUrl: record.baseUrl,
    authenticationId: record.authenticationId,
    headers: record.headers,
    query: record.query,
    refreshOn: record.refreshOn ?? [...DEFAULT_REFRESH_ON],
    timeoutMs: record.timeoutMs,
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
  };
}

export function eventView(event: EventRecord): EventView {
  return { at: iso(event.at), type: event.type, detail: event.detail };
}

export function problemBody(problem: Problem): ProblemBody {
  return problem.toJSON();
}
