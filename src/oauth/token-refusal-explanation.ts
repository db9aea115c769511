import { Problem } from '../problem.js';
import { type AccessTokenClaims, readAccessTokenClaims } from './access-token-claims.js';
import { type DiagnosisContext, refreshPauseSentence } from './diagnosis.js';
import { parseBearerChallenge } from './www-authenticate.js';

/**
 * How far clocks may disagree before a time claim is worth naming (RFC 9068 §4 leaves the leeway to
 * the API; a minute is what most resource servers allow).
 */
export const CLOCK_SKEW_MS = 60_000;

/** What the API answered and what the authentication asked for, to compare a token's claims with. */
export interface RefusalFacts {
  status: number;
  /** `error` of the Bearer challenge (RFC 6750 §3): `invalid_token`, `insufficient_scope`… */
  error?: string | undefined;
  /** `scope` of the Bearer challenge: what the API needs. */
  requiredScope?: string | undefined;
  /** The authentication's Audience and Scope, and the connector's base URL. */
  audience?: string | undefined;
  scope?: string | undefined;
  baseUrl?: string | undefined;
  /** Grantry's clock, ms. */
  now: number;
}

/**
 * The mismatches between a refused token's claims and what the API said or the authentication
 * asked for, each as a sentence a person can act on: the audience (against the configured one and
 * the API's base URL), the scope (against the challenge's and the configured one), and the times
 * (against the clock, with {@link CLOCK_SKEW_MS} of leeway). Empty when nothing explains it.
 * Sentences name only audiences, scopes and times — never the token, never a claim about a person.
 */
export function explainRefusedToken(claims: AccessTokenClaims, facts: RefusalFacts): string[] {
  const findings: string[] = [];
  const invalidToken = facts.status === 401 || facts.error === 'invalid_token';
  if (invalidToken) findings.push(...timeFindings(claims, facts.now));
  if (invalidToken) {
    const audience = audienceFinding(claims, facts);
    if (audience !== null) findings.push(audience);
  }
  findings.push(...scopeFindings(claims, facts));
  return findings;
}

function timeFindings(claims: AccessTokenClaims, now: number): string[] {
  const findings: string[] = [];
  const at = (seconds: number) => new Date(seconds * 1000).toISOString();
  const apart = (ms: number) => `${Math.round(Math.abs(ms) / 1000)} s`;
  if (claims.expiresAt !== undefined) {
    const left = claims.expiresAt * 1000 - now;
    if (left <= 0) {
      findings.push(
        `The token expired at ${at(claims.expiresAt)} (exp), ${apart(left)} before the API refused it, although Grantry still counted it valid: the provider's expires_in promised more than the token's own exp, or Grantry's clock is behind — check that the clocks are in sync (NTP).`,
      );
    } else if (left < CLOCK_SKEW_MS) {
      findings.push(
        `The token expires at ${at(claims.expiresAt)} (exp), only ${apart(left)} from now: an API whose clock is ahead of Grantry's sees it expired — check that the clocks are in sync (NTP).`,
      );
    }
  }
  if (claims.notBefore !== undefined && claims.notBefore * 1000 - now > 0) {
    findings.push(
      `The token is not valid before ${at(claims.notBefore)} (nbf), ${apart(claims.notBefore * 1000 - now)} from now by Grantry's clock: the provider's clock is ahead of the API's — check that the clocks are in sync (NTP).`,
    );
  } else if (claims.issuedAt !== undefined && claims.issuedAt * 1000 - now > CLOCK_SKEW_MS) {
    findings.push(
      `The token was issued at ${at(claims.issuedAt)} (iat), ${apart(claims.issuedAt * 1000 - now)} ahead of Grantry's clock: the provider's clock is ahead — an API that checks iat refuses such tokens. Check that the clocks are in sync (NTP).`,
    );
  }
  return findings;
}

/**
 * The audience, for an `invalid_token`: named when the token was not issued for the configured
 * Audience (the provider ignored it), or when no audience of the token names the API being called
 * — the example of the issue: "issued for X; this API refused it".
 */
function audienceFinding(claims: AccessTokenClaims, facts: RefusalFacts): string | null {
  const audiences = claims.audiences;
  if (audiences === undefined) return null;
  const named = audiences.map((aud) => `"${aud}"`).join(', ');
  const configured = facts.audience === undefined || facts.audience === '' ? null : facts.audience;
  if (configured !== null && !audiences.includes(configured)) {
    return `The token was issued for audience ${named}, not for the configured Audience "${configured}": the provider did not apply it — check that it knows this audience, and audienceParam (audience or resource).`;
  }
  if (facts.baseUrl !== undefined && audiences.some((aud) => namesApi(aud, facts.baseUrl as string)))
    return null;
  const refused = facts.error === undefined ? `with ${facts.status}` : `as ${facts.error}`;
  const api = facts.baseUrl === undefined ? 'this API' : `this API (${facts.baseUrl})`;
  return configured === null
    ? `The token was issued for audience ${named}; ${api} refused it ${refused} — set Audience to the API's identifier (the provider's name for this API), so the token is issued for it.`
    : `The token was issued for audience ${named} (the configured Audience); ${api} refused it ${refused} — set Audience to the API's identifier, if it is not "${configured}".`;
}

/** Whether an audience names the API at `baseUrl`: its origin, or a URL the base URL lies under (or above). */
function namesApi(audience: string, baseUrl: string): boolean {
  const trim = (url: string) => url.replace(/\/+$/, '').toLowerCase();
  const aud = trim(audience);
  const base = trim(baseUrl);
  if (aud === '' || !/^https?:\/\//.test(aud)) return false;
  return base === aud || base.startsWith(`${aud}/`) || aud.startsWith(`${base}/`);
}

function scopeFindings(claims: AccessTokenClaims, facts: RefusalFacts): string[] {
  const granted = claims.scopes;
  if (granted === undefined) return [];
  const findings: string[] = [];
  const has = new Set(granted);
  const asked = words(facts.scope);
  const carries = `The token carries scope "${granted.join(' ')}"`;
  const required = words(facts.requiredScope);
  const missing = required.filter((scope) => !has.has(scope));
  if (missing.length > 0) {
    const list = `"${missing.join(' ')}"`;
    const alreadyAsked = missing.filter((scope) => asked.includes(scope));
    findings.push(
      alreadyAsked.length === missing.length
        ? `${carries}; the API needs ${list}${facts.error === undefined ? '' : ` (${facts.error})`}. Scope already asks for it, so the provider did not grant it: allow ${list} for this client (or user) at the provider.`
        : `${carries}; the API needs ${list}${facts.error === undefined ? '' : ` (${facts.error})`}: add ${list} to the authentication's Scope, and make sure the provider grants it to this client.`,
    );
    return findings;
  }
  const notGranted = asked.filter((scope) => !has.has(scope));
  if (notGranted.length > 0 && (facts.status === 403 || facts.error === 'insufficient_scope')) {
    findings.push(
      `${carries}, although Scope asks for "${asked.join(' ')}": the provider did not grant "${notGranted.join(' ')}" — allow it for this client (or user) at the provider.`,
    );
  }
  return findings;
}

function words(text: string | undefined): string[] {
  return text === undefined ? [] : text.split(' ').filter((word) => word !== '');
}

/**
 * The diagnosis of an API's 401/403 (`diagnoseApiResponse`), sharpened by what the refused access
 * token says about itself when it is a JWT: the hint names the mismatch found (and keeps the pause
 * of forced refreshes, if one holds). An opaque token, or a JWT whose claims explain nothing, keeps
 * the diagnosis as it was. Called where a refusal is diagnosed, with the token in hand.
 */
export function explainWithAccessToken(
  problem: Problem,
  accessToken: string,
  context: DiagnosisContext,
  now: number,
): Problem {
  if (problem.code !== 'upstream_unauthorized' && problem.code !== 'upstream_forbidden') return problem;
  const claims = readAccessTokenClaims(accessToken);
  if (claims === null) return problem;
  const challenge = parseBearerChallenge(problem.provider?.wwwAuthenticate);
  const findings = explainRefusedToken(claims, {
    status: problem.provider?.status ?? (problem.code === 'upstream_unauthorized' ? 401 : 403),
    error: challenge?.error,
    requiredScope: challenge?.scope,
    audience: context.audience,
    scope: context.scope,
    baseUrl: context.baseUrl,
    now,
  });
  if (findings.length === 0) return problem;
  const pause = refreshPauseSentence(context.tokenRefreshPausedUntil);
  return new Problem(problem.code, problem.message, {
    hint: `${findings.join(' ')}${pause}`,
    provider: problem.provider,
    status: problem.status,
    cause: problem.cause,
  });
}
