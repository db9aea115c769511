import {
  type AuthorizationServer,
  allowInsecureRequests,
  customFetch,
  discoveryRequest,
  processDiscoveryResponse,
} from 'oauth4webapi';
import { Problem } from '../problem.js';
import { DEFAULT_TOKEN_TIMEOUT_MS, type TokenRequestOptions } from './client-config.js';
import { diagnose } from './diagnosis.js';
import { requestTimeout } from './request-timeout.js';

/** What Grantry uses of an authorization server's metadata (RFC 8414 §2); null when not published. */
export interface DiscoveredMetadata {
  issuer: string;
  authorizationUrl: string | null;
  tokenUrl: string | null;
  revocationUrl: string | null;
  grantTypes: string[] | null;
  clientAuthMethods: string[] | null;
  /** `token_endpoint_auth_signing_alg_values_supported`: the algorithms client assertions may use. */
  clientAssertionAlgs: string[] | null;
  /** RFC 8705 §3.3 `tls_client_certificate_bound_access_tokens`. */
  certificateBoundAccessTokens: boolean;
  /** RFC 9449 §5.1 `dpop_signing_alg_values_supported`. */
  dpopAlgs: string[] | null;
  scopes: string[] | null;
  /** RFC 9207 `authorization_response_iss_parameter_supported`. */
  issParameterSupported: boolean;
}

export type DiscoveryAlgorithm = 'oidc' | 'oauth2';

/**
 * The metadata URLs for an issuer, in the order {@link discover} tries them. OpenID Connect Discovery
 * 1.0 §4 appends `/.well-known/openid-configuration` to the issuer; RFC 8414 §3.1 inserts
 * `/.well-known/oauth-authorization-server` between the host and the issuer's path. OIDC goes first:
 * most providers that publish metadata at all publish that document; fewer publish RFC 8414.
 */
export function discoveryUrls(issuer: string): { algorithm: DiscoveryAlgorithm; url: string }[] {
  const base = new URL(issuer);
  const path = base.pathname.replace(/\/$/, '');
  const oidc = new URL(base.href);
  oidc.pathname = `${path}/.well-known/openid-configuration`;
  const oauth2 = new URL(base.href);
  oauth2.pathname = `/.well-known/oauth-authorization-server${path}`;
  return [
    { algorithm: 'oidc', url: oidc.href },
    { algorithm: 'oauth2', url: oauth2.href },
  ];
}

/** People paste the metadata URL itself; the issuer is what precedes (OIDC) or follows (RFC 8414) it. */
function issuerFromInput(input: string): string {
  const url = new URL(input.trim());
  url.search = '';
  url.hash = '';
  const oidcSuffix = '/.well-known/openid-configuration';
  const oauth2Prefix = '/.well-known/oauth-authorization-server';
  if (url.pathname.endsWith(oidcSuffix)) url.pathname = url.pathname.slice(0, -oidcSuffix.length) || '/';
  else if (url.pathname.startsWith(oauth2Prefix))
    url.pathname = url.pathname.slice(oauth2Prefix.length) || '/';
  return url.pathname === '/' ? url.origin : url.href;
}

/**
 * Reads an issuer's metadata: OpenID Connect Discovery first, then RFC 8414. The document's `issuer`
 * must equal the issuer asked for (RFC 8414 §3.3; checked by oauth4webapi) — a mismatch is refused
 * with the issuer the document names, so the person can correct the input.
 */
export async function discover(
  issuerInput: string,
  options: TokenRequestOptions,
): Promise<DiscoveredMetadata> {
  let issuer: string;
  try {
    issuer = issuerFromInput(issuerInput);
  } catch {
    throw new Problem('validation_failed', 'The issuer is not a valid URL.', {
      errors: [{ path: '/issuer', message: 'must be an absolute https URL' }],
    });
  }
  const expected = new URL(issuer);
  const tried: string[] = [];
  let namedIssuer: string | undefined;
  for (const { algorithm, url } of discoveryUrls(issuer)) {
    const timeout = requestTimeout(url, options, 'The metadata request timed out.');
    let response: Response;
    try {
      response = await discoveryRequest(expected, {
        algorithm,
        signal: timeout.signal,
        // The https rule is Egress's (it knows GRANTRY_ALLOW_HTTP); do not enforce a second one here.
        [allowInsecureRequests]: true,
        [customFetch]: (target, { body: _body, ...init }) => options.fetch(target, init),
      });
    } catch (error) {
      if (timeout.callerAborted()) throw error;
      throw diagnose(timeout.failure(error), { step: 'discovery' });
    }
    if (response.status !== 200) {
      tried.push(`${url} (HTTP ${response.status})`);
      await response.body?.cancel();
      continue;
    }
    try {
      const metadata = await processDiscoveryResponse(expected, response);
      return metadataOf(metadata);
    } catch (error) {
      const named = namedIssuerOf(error);
      if (named !== undefined) namedIssuer = named;
      tried.push(`${url} (${named === undefined ? 'not a metadata document' : 'different issuer'})`);
    }
  }
  if (namedIssuer !== undefined) {
    throw new Problem('upstream_failed', `The metadata names a different issuer than ${issuer}.`, {
      hint: `The provider's metadata names the issuer "${namedIssuer}": enter exactly that as the issuer.`,
    });
  }
  throw new Problem('upstream_failed', `No OAuth metadata found for ${issuer}. Tried: ${tried.join(', ')}.`, {
    hint: 'Check the issuer URL: it is the base URL of the authorization server (for example https://login.example.com/realms/main), without /.well-known/…. Some providers publish no metadata: then enter the endpoints by hand.',
  });
}

/**
 * Best effort for a revocation URL when only the token URL is known: tries the issuers a token URL
 * usually sits under (Keycloak realm, Okta authorization server, the parent path, the origin) and
 * trusts a document only if its `token_endpoint` is this very token URL. `timeoutMs` bounds the
 * whole lookup. Never throws.
 */
export async function discoverFromTokenUrl(
  tokenUrl: string,
  options: TokenRequestOptions,
): Promise<DiscoveredMetadata | null> {
  let target: URL;
  try {
    target = new URL(tokenUrl);
  } catch {
    return null;
  }
  // One timeout for the whole lookup: up to four issuers, two documents each, would otherwise
  // take eight timeouts against a host that never answers.
  const overall = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TOKEN_TIMEOUT_MS);
  const signal = options.signal === undefined ? overall : AbortSignal.any([overall, options.signal]);
  for (const issuer of issuerCandidates(target)) {
    if (signal.aborted) return null;
    try {
      const metadata = await discover(issuer, { ...options, signal });
      if (metadata.tokenUrl !== null && sameUrl(metadata.tokenUrl, target)) return metadata;
    } catch {
      // Best effort: the next candidate, or none.
    }
  }
  return null;
}

export function issuerCandidates(tokenUrl: URL): string[] {
  const path = tokenUrl.pathname.replace(/\/$/, '');
  const candidates: string[] = [];
  const keycloak = path.indexOf('/protocol/openid-connect/');
  if (keycloak > 0) candidates.push(tokenUrl.origin + path.slice(0, keycloak));
  if (path.endsWith('/v1/token')) candidates.push(tokenUrl.origin + path.slice(0, -'/v1/token'.length));
  const parent = path.slice(0, path.lastIndexOf('/'));
  if (parent !== '') candidates.push(tokenUrl.origin + parent);
  candidates.push(tokenUrl.origin);
  return [...new Set(candidates)];
}

function sameUrl(a: string, b: URL): boolean {
  try {
    return new URL(a).href === b.href;
  } catch {
    return false;
  }
}

function namedIssuerOf(error: unknown): string | undefined {
  if (!(error instanceof Error) || !(error.cause instanceof Object)) return undefined;
  const cause = error.cause as { attribute?: unknown; body?: { issuer?: unknown } };
  if (cause.attribute !== 'issuer') return undefined;
  const issuer = cause.body?.issuer;
  return typeof issuer === 'string' ? issuer.slice(0, 300) : undefined;
}

function metadataOf(metadata: AuthorizationServer): DiscoveredMetadata {
  return {
    issuer: metadata.issuer,
    authorizationUrl: stringOrNull(metadata.authorization_endpoint),
    tokenUrl: stringOrNull(metadata.token_endpoint),
    revocationUrl: stringOrNull(metadata.revocation_endpoint),
    grantTypes: stringsOrNull(metadata.grant_types_supported),
    clientAuthMethods: stringsOrNull(metadata.token_endpoint_auth_methods_supported),
    clientAssertionAlgs: stringsOrNull(metadata.token_endpoint_auth_signing_alg_values_supported),
    certificateBoundAccessTokens: metadata.tls_client_certificate_bound_access_tokens === true,
    dpopAlgs: stringsOrNull(metadata.dpop_signing_alg_values_supported),
    scopes: stringsOrNull(metadata.scopes_supported),
    issParameterSupported: metadata.authorization_response_iss_parameter_supported === true,
  };
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function stringsOrNull(value: unknown): string[] | null {
  return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : null;
}
