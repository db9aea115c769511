import { describe, expect, it } from 'vitest';
import { EgressError, type EgressFailureKind } from '../egress/egress-error.js';
import { Problem } from '../problem.js';
import { DIAGNOSIS_CODES, DIAGNOSIS_HINTS, diagnose, diagnoseApiResponse } from './diagnosis.js';
import { OAuthError } from './oauth-error.js';
import { parseTokenResponse } from './token-response.js';

const TOKEN_URL = 'https://auth.example.com/oauth/token';
const REDIRECT_URI = 'https://grantry.example.com/oauth/redirect';

/** What the provider answered, through the real parser. */
function providerAnswer(body: Record<string, unknown>, status = 400): OAuthError {
  try {
    parseTokenResponse({ status, contentType: 'application/json', bodyText: JSON.stringify(body) });
  } catch (error) {
    if (error instanceof OAuthError) return error;
  }
  throw new Error('expected an OAuthError');
}

function raw(status: number, contentType: string | null, bodyText: string, headers?: Headers): OAuthError {
  try {
    parseTokenResponse({ status, contentType, bodyText, headers });
  } catch (error) {
    if (error instanceof OAuthError) return error;
  }
  throw new Error('expected an OAuthError');
}

describe('DIAGNOSIS_HINTS', () => {
  it('has a non-empty hint for every code', () => {
    for (const code of DIAGNOSIS_CODES) expect(DIAGNOSIS_HINTS[code].length).toBeGreaterThan(20);
    expect(Object.keys(DIAGNOSIS_HINTS).sort()).toEqual([...DIAGNOSIS_CODES].sort());
  });
});

describe('diagnose: provider OAuth errors', () => {
  it('invalid_client with Basic suggests client_secret_post, and keeps the provider answer', () => {
    const problem = diagnose(
      providerAnswer({ error: 'invalid_client', error_description: 'client authentication failed' }, 401),
      {
        tokenUrl: TOKEN_URL,
        clientAuthMethod: 'client_secret_basic',
      },
    );
    expect(problem).toBeInstanceOf(OAuthError);
    expect(problem.code).toBe('invalid_client');
    expect(problem.hint).toContain('Check the Client ID and Client Secret');
    expect(problem.hint).toContain('(clientAuthMethod, under Advanced) to client_secret_post');
    expect(problem.toJSON().provider).toEqual({
      status: 401,
      error: 'invalid_client',
      errorDescription: 'client authentication failed',
    });
  });

  it('invalid_client with post suggests client_secret_basic', () => {
    const problem = diagnose(providerAnswer({ error: 'invalid_client' }, 401), {
      clientAuthMethod: 'client_secret_post',
    });
    expect(problem.hint).toContain('(clientAuthMethod, under Advanced) to client_secret_basic');
  });

  it('invalid_grant for the password grant names the username and password', () => {
    const problem = diagnose(providerAnswer({ error: 'invalid_grant' }), {
      grantType: 'password',
      step: 'token',
    });
    expect(problem.code).toBe('invalid_grant');
    expect(problem.message).toContain('username or password');
    expect(problem.hint).toContain('username and password');
  });

  it('invalid_grant for a code says expired or used, authorize again', () => {
    const problem = diagnose(providerAnswer({ error: 'invalid_grant' }), {
      grantType: 'authorization_code',
      redirectUri: REDIRECT_URI,
    });
    expect(problem.hint).toMatch(/expired or was already used/);
    expect(problem.hint).toContain('authorize again');
  });

  it('invalid_grant on refresh says revoked and reconnect', () => {
    const problem = diagnose(providerAnswer({ error: 'invalid_grant' }), {
      grantType: 'refresh_token',
      step: 'refresh',
    });
    expect(problem.hint).toContain('revoked');
    expect(problem.hint).toContain('reconnect');
  });

  it('invalid_redirect_uri shows the exact URI to register (Google redirect_uri_mismatch)', () => {
    const problem = diagnose(providerAnswer({ error: 'redirect_uri_mismatch' }), {
      redirectUri: REDIRECT_URI,
    });
    expect(problem.code).toBe('invalid_redirect_uri');
    expect(problem.hint).toBe(`Register exactly this redirect URI at the provider: ${REDIRECT_URI}`);
  });

  it('invalid_request mentioning redirect_uri (Okta) is invalid_redirect_uri', () => {
    const problem = diagnose(
      providerAnswer({
        error: 'invalid_request',
        error_description: "The 'redirect_uri' parameter must be a Login redirect URI",
      }),
      { redirectUri: REDIRECT_URI },
    );
    expect(problem.code).toBe('invalid_redirect_uri');
    expect(problem.hint).toContain(REDIRECT_URI);
  });

  it('invalid_scope names the scope and asks for the minimum', () => {
    const problem = diagnose(providerAnswer({ error: 'invalid_scope' }), { scope: 'admin:all' });
    expect(problem.code).toBe('invalid_scope');
    expect(problem.hint).toContain('does not allow scope "admin:all" for this client');
    expect(problem.hint).toContain('minimum');
  });

  it('unauthorized_client and unsupported_grant_type say to enable the grant at the provider', () => {
    for (const error of ['unauthorized_client', 'unsupported_grant_type']) {
      const problem = diagnose(providerAnswer({ error }), { grantType: 'client_credentials' });
      expect(problem.code).toBe(error);
      expect(problem.hint).toContain('not allowed this grant at the provider');
      expect(problem.hint).toContain('enable the client_credentials grant');
    }
  });

  it('invalid_request, access_denied and invalid_target carry the provider description', () => {
    const request = diagnose(
      providerAnswer({ error: 'invalid_request', error_description: 'Missing parameter: tenant' }),
    );
    expect(request.code).toBe('invalid_request');
    expect(request.hint).toContain('Missing parameter: tenant');
    const denied = diagnose(providerAnswer({ error: 'access_denied', error_description: 'User declined' }), {
      step: 'authorize',
    });
    expect(denied.code).toBe('access_denied');
    expect(denied.hint).toContain('User declined');
    expect(denied.hint).toContain('Authorize again');
    const target = diagnose(
      providerAnswer({ error: 'invalid_target', error_description: 'unknown resource' }),
      {
        audience: 'https://api.example.com',
        audienceParam: 'resource',
      },
    );
    expect(target.code).toBe('invalid_target');
    expect(target.hint).toContain('resource="https://api.example.com"');
    expect(target.hint).toContain('unknown resource');
  });
});

describe('diagnose: unusable token endpoint answers', () => {
  it('a 404 says check the Token URL path', () => {
    const problem = diagnose(raw(404, 'text/html', ''), { tokenUrl: TOKEN_URL });
    expect(problem.code).toBe('token_fetch_failed');
    expect(problem.hint).toContain('Check the Token URL path');
    expect(problem.hint).toContain(TOKEN_URL);
    expect(problem.provider?.status).toBe(404);
  });

  it('HTML says the URL is probably a web page, with its title', () => {
    const problem = diagnose(raw(200, 'text/html', '<html><title>Sign in</title></html>'), {
      tokenUrl: TOKEN_URL,
    });
    expect(problem.message).toContain('titled "Sign in"');
    expect(problem.hint).toContain('probably a web page');
  });

  it('a redirect says to use the final URL', () => {
    const problem = diagnose(
      raw(301, null, '', new Headers({ location: 'https://auth.example.com/oauth2/token' })),
    );
    expect(problem.hint).toContain('does not follow redirects');
    expect(problem.hint).toContain('https://auth.example.com/oauth2/token');
  });

  it('200 without access_token, and 500, have their own hints', () => {
    expect(diagnose(raw(200, 'application/json', '{}')).message).toContain('without an access_token');
    expect(diagnose(raw(503, 'text/plain', 'down')).hint).toContain('try again later');
    expect(diagnose(raw(401, 'text/plain', 'no')).hint).toContain('clientAuthMethod');
  });
});

describe('diagnose: network failures (EgressError kinds)', () => {
  const cases: [EgressFailureKind, RegExp, RegExp][] = [
    ['dns', /could not be resolved/, /host name in the Token URL/],
    ['refused', /refused/, /Token URL/],
    ['unreachable', /unreachable/, /Token URL/],
    ['tls', /certificate is not trusted/, /NODE_EXTRA_CA_CERTS/],
    ['timeout', /did not answer in time/, /Token URL/],
    ['reset', /closed before/, /Try again/],
    ['too_large', /larger than allowed/, /web page or a file/],
  ];
  for (const [kind, message, hint] of cases) {
    it(`${kind} → token_fetch_failed with its own message and hint`, () => {
      const problem = diagnose(new EgressError(kind, 'auth.example.com', 'x'), {
        tokenUrl: TOKEN_URL,
        step: 'token',
      });
      expect(problem.code).toBe('token_fetch_failed');
      expect(problem.message).toMatch(message);
      expect(problem.message).toContain('auth.example.com');
      expect(problem.hint).toMatch(hint);
    });
  }

  it('denied → egress_denied, insecure_url → insecure_url', () => {
    expect(diagnose(new EgressError('denied', '169.254.169.254', 'x')).code).toBe('egress_denied');
    expect(diagnose(new EgressError('insecure_url', 'auth.example.com', 'x')).code).toBe('insecure_url');
  });

  it('the API step words failures as upstream_failed about the base URL', () => {
    const problem = diagnose(new EgressError('dns', 'api.example.com', 'x'), { step: 'api' });
    expect(problem.code).toBe('upstream_failed');
    expect(problem.hint).toContain("connector's base URL");
  });

  it("a plain fetch's TypeError is classified like Egress would", () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const problem = diagnose(new TypeError('fetch failed', { cause: refused }), {
      tokenUrl: 'https://127.0.0.1:9/token',
    });
    expect(problem.code).toBe('token_fetch_failed');
    expect(problem.message).toContain('refused');
    expect(problem.message).toContain('127.0.0.1:9');
  });

  it('a Problem that is not about the provider passes through', () => {
    const problem = new Problem('validation_failed', 'x');
    expect(diagnose(problem)).toBe(problem);
  });
});

describe('diagnoseApiResponse (RFC 6750 §3)', () => {
  it('says until when Grantry is not fetching new tokens, when fresh tokens were refused too', () => {
    const until = Date.parse('2026-03-01T12:00:00Z');
    const paused = diagnoseApiResponse(401, 'Bearer error="invalid_token"', {
      tokenRefreshPausedUntil: until,
    });
    expect(paused?.hint).toContain(
      'Grantry is not fetching new tokens for this authentication until 2026-03-01T12:00:00.000Z because fresh tokens were refused too',
    );
    expect(diagnoseApiResponse(401, 'Bearer', { tokenRefreshPausedUntil: null })?.hint).not.toMatch(
      /not fetching/,
    );
  });
  it('while forced refreshes are paused, a 401 is not said to be "even with a fresh token" (regression)', () => {
    const until = Date.parse('2026-03-01T12:00:00Z');
    for (const header of ['Bearer error="invalid_token"', 'Bearer']) {
      const paused = diagnoseApiResponse(401, header, { tokenRefreshPausedUntil: until });
      expect(paused?.message).not.toMatch(/fresh token/);
      expect(paused?.message).toMatch(
        /^The API answered 401 Unauthorized.*: it refuses this authentication's tokens, fresh ones too\.$/,
      );
      expect(paused?.hint).not.toMatch(/just issued|freshly fetched/);
    }
    const fresh = diagnoseApiResponse(401, 'Bearer error="invalid_token"', { tokenRefreshPausedUntil: null });
    expect(fresh?.message).toBe('The API answered 401 Unauthorized even with a fresh token (invalid_token).');
    expect(fresh?.hint).toMatch(/^The API says the token is invalid although it was just issued:/);
  });

  it('names a missing scope as "none", never "((none))" (regression)', () => {
    const texts = [
      diagnoseApiResponse(401, 'Bearer')?.hint,
      diagnoseApiResponse(401, 'Bearer error="invalid_token"')?.hint,
      diagnoseApiResponse(403, 'Bearer error="insufficient_scope"')?.hint,
      diagnoseApiResponse(403, 'Bearer error="insufficient_scope", scope="orders:write"')?.hint,
    ];
    for (const text of texts) expect(text).not.toContain('((none))');
    expect(texts[0]).toContain('Also check the scope (none) and');
    expect(texts[1]).toContain('Configured scope: none.');
    expect(texts[2]).toContain('(currently none)');
  });

  it('401 invalid_token → upstream_unauthorized naming the configured audience', () => {
    const problem = diagnoseApiResponse(
      401,
      'Bearer error="invalid_token", error_description="aud mismatch"',
      {
        audience: 'https://api.example.com',
        audienceParam: 'audience',
        scope: 'read',
      },
    );
    expect(problem?.code).toBe('upstream_unauthorized');
    expect(problem?.hint).toContain('another audience or scope, or revoked');
    expect(problem?.hint).toContain('"https://api.example.com"');
    expect(problem?.provider).toMatchObject({
      status: 401,
      error: 'invalid_token',
      errorDescription: 'aud mismatch',
    });
  });

  it('401 without an audience configured says to set one', () => {
    expect(diagnoseApiResponse(401, null)?.hint).toContain('No audience is configured');
  });

  it('403 insufficient_scope → upstream_forbidden naming the scope to add', () => {
    const problem = diagnoseApiResponse(403, 'Bearer error="insufficient_scope", scope="orders:write"', {
      scope: 'read',
    });
    expect(problem?.code).toBe('upstream_forbidden');
    expect(problem?.hint).toContain('Add the scope "orders:write"');
    expect(problem?.provider?.wwwAuthenticate).toContain('insufficient_scope');
  });

  it('403 without a challenge still gets a hint; other statuses are data (null)', () => {
    expect(diagnoseApiResponse(403, undefined)?.hint).toBe(DIAGNOSIS_HINTS.upstream_forbidden);
    expect(diagnoseApiResponse(404, null)).toBeNull();
    expect(diagnoseApiResponse(500, 'Bearer error="invalid_token"')).toBeNull();
  });
});
