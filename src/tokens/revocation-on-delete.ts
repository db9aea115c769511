import { isClientAuthMethod } from '../oauth/client-auth-detection.js';
import type { ClientAuthMethod, OAuthFetch } from '../oauth/client-config.js';
import { type RevocationRequest, revokeToken } from '../oauth/revocation.js';
import { Problem } from '../problem.js';
import type { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord, Sealed, Store } from '../store/contract.js';
import { recordEvent } from './auth-events.js';
import { type ClientCertificate, clientCertificateOf, signingKeyOf } from './authentication-keys.js';
import { oauthOf } from './oauth-settings.js';
import type { ProviderMetadata } from './provider-metadata.js';
import { openAuthenticationSecrets, sealContext } from './sealed-columns.js';

/** A delete waits at most this long per revocation request: the provider must not hold it hostage. */
const REVOCATION_TIMEOUT_CAP_MS = 5_000;
/** …and at most this long in all (metadata lookup included); then it goes ahead and the rest is logged. */
const REVOCATION_DEADLINE_MS = 15_000;

/** Where the outcome is written for good: the events go with the deleted authentication. */
export interface RevocationLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface RevocationOnDeleteOptions {
  store: Store;
  keyRing: KeyRing;
  fetch: OAuthFetch;
  timeoutMs: number;
  metadata: ProviderMetadata;
  log: RevocationLog;
  /** A fetch that presents a client certificate (mutual TLS), for authentications that use one. */
  clientCertificateFetch?: (certificate: ClientCertificate) => OAuthFetch;
}

export interface RevocationReport {
  revocationUrl: string | null;
  revoked: RevocationRequest['tokenTypeHint'][];
  failed: { tokenType: RevocationRequest['tokenTypeHint']; code: string; message: string }[];
}

/**
 * Revokes an authentication's stored tokens at the provider before it is deleted (RFC 7009 §2.1):
 * the refresh token first (revoking it should end the grant's access tokens too), then the access
 * token. The endpoint is the configured revocationUrl, else the one the token URL's issuer
 * publishes. Each outcome is a `revoked` / `revocation_failed` event and a log line. Never throws:
 * a provider that cannot revoke must not keep a person from deleting.
 */
export function revokeOnDelete(
  options: RevocationOnDeleteOptions,
): (record: AuthenticationRecord) => Promise<void> {
  return async (record) => {
    const revocation = revokeStoredTokens(record, options).catch((error: unknown) => {
      options.log.warn(
        { authId: record.id, error: error instanceof Error ? error.name : typeof error },
        'token revocation before delete failed',
      );
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), REVOCATION_DEADLINE_MS);
      timer.unref();
    });
    const outcome = await Promise.race([revocation, deadline]);
    clearTimeout(timer);
    if (outcome === 'late') {
      options.log.warn(
        { authId: record.id },
        'token revocation is taking too long; deleting without waiting',
      );
    }
  };
}

export async function revokeStoredTokens(
  record: AuthenticationRecord,
  options: RevocationOnDeleteOptions,
): Promise<RevocationReport> {
  const { store, keyRing, log } = options;
  const report: RevocationReport = { revocationUrl: null, revoked: [], failed: [] };
  const row = await store.tokens.get(record.id);
  if (row === null || (row.refreshToken === null && row.accessToken === null)) return report;

  if (record.type !== 'oauth2') return report;
  const { settings } = oauthOf(record);
  const revocationUrl =
    settings.revocationUrl ?? (await options.metadata.forTokenUrl(settings.tokenUrl))?.revocationUrl ?? null;
  if (revocationUrl === null) {
    log.info(
      { authId: record.id },
      'no revocation endpoint known; stored tokens are dropped without revoking',
    );
    return report;
  }
  report.revocationUrl = revocationUrl;

  const stored: [
    RevocationRequest['tokenTypeHint'],
    Sealed | null,
    ReturnType<typeof sealContext.accessToken>,
  ][] = [
    ['refresh_token', row.refreshToken, sealContext.refreshToken(record.id)],
    ['access_token', row.accessToken, sealContext.accessToken(record.id)],
  ];
  for (const [tokenType, sealed, context] of stored) {
    if (sealed === null) continue;
    try {
      const { clientSecret, keys } = openAuthenticationSecrets(keyRing, record);
      // `auto`: the method that obtained these tokens is the one the provider accepts.
      const clientAuthMethod: ClientAuthMethod =
        settings.clientAuthMethod !== 'auto'
          ? settings.clientAuthMethod
          : isClientAuthMethod(row.clientAuthMethod)
            ? row.clientAuthMethod
            : 'client_secret_basic';
      // Mutual TLS: the certificate authenticates the client here too (RFC 8705 §2, RFC 7009 §2.1).
      const mtls =
        clientAuthMethod === 'tls_client_auth' || clientAuthMethod === 'self_signed_tls_client_auth';
      const certificate = mtls ? clientCertificateOf(keys) : null;
      const fetch =
        certificate !== null && options.clientCertificateFetch !== undefined
          ? options.clientCertificateFetch(certificate)
          : options.fetch;
      await revokeToken(
        {
          clientId: settings.clientId,
          clientSecret,
          clientAuthMethod,
          tokenUrl: settings.tokenUrl,
          clientAssertionAudience: settings.clientAssertionAudience,
          signingKey: signingKeyOf(keys),
          revocationUrl,
        },
        { token: keyRing.open(sealed, context), tokenTypeHint: tokenType },
        { fetch, timeoutMs: Math.min(options.timeoutMs, REVOCATION_TIMEOUT_CAP_MS) },
      );
      report.revoked.push(tokenType);
    } catch (error) {
      const problem =
        error instanceof Problem
          ? error
          : new Problem('internal_error', 'The token could not be prepared for revocation.', {
              cause: error,
            });
      const failure = { tokenType, code: problem.code, message: problem.message };
      report.failed.push(failure);
      await recordEvent(store, record.id, 'revocation_failed', {
        ...failure,
        revocationUrl,
        ...(problem.provider?.status !== undefined ? { providerStatus: problem.provider.status } : {}),
        ...(problem.hint !== undefined ? { hint: problem.hint } : {}),
      }).catch(() => {});
      log.warn({ authId: record.id, revocationUrl, tokenType, code: problem.code }, 'revocation_failed');
    }
  }
  if (report.revoked.length > 0) {
    await recordEvent(store, record.id, 'revoked', { tokens: report.revoked, revocationUrl }).catch(() => {});
    log.info({ authId: record.id, revocationUrl, tokens: report.revoked }, 'revoked');
  }
  return report;
}
