import { describe, expect, it } from 'vitest';
import { diagnose } from './diagnosis.js';
import { OAuthError } from './oauth-error.js';
import {
  MAX_SCOPE_LENGTH,
  MAX_TOKEN_LENGTH,
  MAX_TOKEN_TYPE_LENGTH,
  parseTokenResponse,
  type RawTokenResponse,
} from './token-response.js';

const JSON_TYPE = 'application/json';
const SECRET_TOKEN = 'at-SECRET-9f8e7d6c5b4a';

function json(body: unknown, status = 200, contentType: string | null = JSON_TYPE): RawTokenResponse {
  return { status, contentType, bodyText: JSON.stringify(body) };
}

function refusal(response: RawTokenResponse): OAuthError {
  try {
    parseTokenResponse(response);
  } catch (error) {
    expect(error).toBeInstanceOf(OAuthError);
    const oauthError = error as OAuthError;
    // No token or body text may leak into what a person sees.
    expect(JSON.stringify(oauthError.toJSON())).not.toContain('SECRET');
    expect(oauthError.message).not.toContain('SECRET');
    return oauthError;
  }
  throw new Error('expected parseTokenResponse to throw');
}

describe('parseTokenResponse: successes', () => {
  it('reads a conforming RFC 6749 §5.1 JSON response', () => {
    const tokens = parseTokenResponse(
      json({
        access_token: SECRET_TOKEN,
        token_type: 'Bearer',
        expires_in: 3600,
        refresh_token: 'rt-1',
        scope: 'read write',
        id_token: 'header.payload.sig',
      }),
    );
    expect(tokens).toEqual({
      accessToken: SECRET_TOKEN,
      tokenType: 'Bearer',
      expiresIn: 3600,
      refreshToken: 'rt-1',
      scope: 'read write',
      idToken: 'header.payload.sig',
    });
  });

  it('GitHub without Accept: application/json answers form-urlencoded', () => {
    const tokens = parseTokenResponse({
      status: 200,
      contentType: 'application/x-www-form-urlencoded; charset=utf-8',
      bodyText: `access_token=${SECRET_TOKEN}&scope=repo%2Cgist&token_type=bearer`,
    });
    expect(tokens).toMatchObject({
      accessToken: SECRET_TOKEN,
      tokenType: 'bearer',
      scope: 'repo,gist',
      expiresIn: null,
    });
  });

  it('old Facebook: form body labelled text/plain with `expires` instead of `expires_in`', () => {
    const tokens = parseTokenResponse({
      status: 200,
      contentType: 'text/plain',
      bodyText: `access_token=${SECRET_TOKEN}&expires=5183999`,
    });
    expect(tokens).toMatchObject({ accessToken: SECRET_TOKEN, expiresIn: 5183999 });
  });

  it('Azure AD v1 sends expires_in as a string', () => {
    const tokens = parseTokenResponse(
      json({ access_token: SECRET_TOKEN, token_type: 'Bearer', expires_in: '3599', ext_expires_in: '3599' }),
    );
    expect(tokens.expiresIn).toBe(3599);
  });

  it('Salesforce omits expires_in (expiresIn null) and adds extra fields', () => {
    const tokens = parseTokenResponse(
      json({
        access_token: SECRET_TOKEN,
        instance_url: 'https://example.my.salesforce.com',
        id: 'https://login.salesforce.com/id/00D/005',
        token_type: 'Bearer',
        issued_at: '1700000000000',
        signature: 'abc=',
      }),
    );
    expect(tokens).toMatchObject({
      accessToken: SECRET_TOKEN,
      expiresIn: null,
      refreshToken: null,
      scope: null,
    });
  });

  it('Zendesk omits expires_in (expiresIn null)', () => {
    const tokens = parseTokenResponse(
      json({ access_token: SECRET_TOKEN, token_type: 'bearer', scope: 'read' }),
    );
    expect(tokens.expiresIn).toBeNull();
  });

  it('Keycloak sends token_type in lower case, kept as said', () => {
    const tokens = parseTokenResponse(
      json({ access_token: SECRET_TOKEN, token_type: 'bearer', expires_in: 300, 'not-before-policy': 0 }),
    );
    expect(tokens.tokenType).toBe('bearer');
  });

  it('a provider without token_type gets Bearer', () => {
    expect(parseTokenResponse(json({ access_token: SECRET_TOKEN })).tokenType).toBe('Bearer');
  });

  it('JSON with a charset parameter', () => {
    const tokens = parseTokenResponse(
      json({ access_token: SECRET_TOKEN }, 200, 'application/json; charset=UTF-8'),
    );
    expect(tokens.accessToken).toBe(SECRET_TOKEN);
  });

  it('JSON labelled text/javascript (old Google endpoints)', () => {
    expect(parseTokenResponse(json({ access_token: SECRET_TOKEN }, 200, 'text/javascript')).accessToken).toBe(
      SECRET_TOKEN,
    );
  });

  it('JSON labelled text/plain (Dropbox-style legacy) and with a BOM', () => {
    const response = {
      status: 200,
      contentType: 'text/plain',
      bodyText: `\uFEFF${JSON.stringify({ access_token: SECRET_TOKEN })}`,
    };
    expect(parseTokenResponse(response).accessToken).toBe(SECRET_TOKEN);
  });

  it('Slack answers {"ok":true,…} with extra fields', () => {
    const tokens = parseTokenResponse(
      json({ ok: true, access_token: SECRET_TOKEN, scope: 'chat:write', team: { id: 'T1' } }),
    );
    expect(tokens).toMatchObject({ accessToken: SECRET_TOKEN, scope: 'chat:write' });
  });

  it('Strava-style scope arrays are joined with spaces', () => {
    expect(
      parseTokenResponse(json({ access_token: SECRET_TOKEN, scope: ['read', 'activity:read'] })).scope,
    ).toBe('read activity:read');
  });

  it('expires_in that is not a number becomes null rather than a wrong expiry', () => {
    expect(parseTokenResponse(json({ access_token: SECRET_TOKEN, expires_in: 'soon' })).expiresIn).toBeNull();
  });
});

describe('parseTokenResponse: hostile lifetimes are clamped to [0, one year]', () => {
  const ONE_YEAR = 365 * 24 * 60 * 60;
  const form = (body: string): RawTokenResponse => ({
    status: 200,
    contentType: 'application/x-www-form-urlencoded',
    bodyText: body,
  });
  const jsonText = (body: string): RawTokenResponse => ({
    status: 200,
    contentType: JSON_TYPE,
    bodyText: body,
  });

  it('8640000000000 s as a JSON number (past the end of dates) is one year; a year or less is kept', () => {
    const lifetime = (seconds: number) =>
      parseTokenResponse(json({ access_token: SECRET_TOKEN, expires_in: seconds })).expiresIn;
    expect(lifetime(8640000000000)).toBe(ONE_YEAR);
    expect(lifetime(ONE_YEAR + 1)).toBe(ONE_YEAR);
    expect(lifetime(ONE_YEAR)).toBe(ONE_YEAR);
    expect(lifetime(ONE_YEAR - 1)).toBe(ONE_YEAR - 1);
  });

  it('1e20 as a JSON number literal is one year', () => {
    expect(
      parseTokenResponse(jsonText(`{"access_token":"${SECRET_TOKEN}","expires_in":1e20}`)).expiresIn,
    ).toBe(ONE_YEAR);
  });

  it('1e400 (JSON parses it to Infinity) is one year', () => {
    expect(
      parseTokenResponse(jsonText(`{"access_token":"${SECRET_TOKEN}","expires_in":1e400}`)).expiresIn,
    ).toBe(ONE_YEAR);
  });

  it('"8640000000000" and "1e20" as strings, JSON or form-encoded, are one year', () => {
    expect(
      parseTokenResponse(json({ access_token: SECRET_TOKEN, expires_in: '8640000000000' })).expiresIn,
    ).toBe(ONE_YEAR);
    expect(parseTokenResponse(form(`access_token=${SECRET_TOKEN}&expires_in=8640000000000`)).expiresIn).toBe(
      ONE_YEAR,
    );
    expect(parseTokenResponse(form(`access_token=${SECRET_TOKEN}&expires_in=1e20`)).expiresIn).toBe(ONE_YEAR);
    expect(parseTokenResponse(form(`access_token=${SECRET_TOKEN}&expires=1E20`)).expiresIn).toBe(ONE_YEAR);
  });

  it('0 and negative values mean "expires now" (0), never "never" (null)', () => {
    expect(parseTokenResponse(json({ access_token: SECRET_TOKEN, expires_in: 0 })).expiresIn).toBe(0);
    expect(parseTokenResponse(json({ access_token: SECRET_TOKEN, expires_in: -5 })).expiresIn).toBe(0);
    expect(parseTokenResponse(json({ access_token: SECRET_TOKEN, expires_in: '-5' })).expiresIn).toBe(0);
    expect(parseTokenResponse(form(`access_token=${SECRET_TOKEN}&expires_in=-5`)).expiresIn).toBe(0);
    expect(
      parseTokenResponse(jsonText(`{"access_token":"${SECRET_TOKEN}","expires_in":-1e20}`)).expiresIn,
    ).toBe(0);
    // A fraction is cut to whole seconds: 0.5 s is "expires now" too.
    expect(parseTokenResponse(json({ access_token: SECRET_TOKEN, expires_in: '0.5' })).expiresIn).toBe(0);
  });
});

describe('parseTokenResponse: an access token that cannot go in an HTTP header is refused', () => {
  const withToken = (token: string) => json({ access_token: token, token_type: 'Bearer', expires_in: 3600 });

  it.each([
    ['CR LF (header injection)', `${SECRET_TOKEN}\r\nX-Injected: 1`],
    ['a lone LF', `${SECRET_TOKEN}\nmore`],
    ['NUL', `${SECRET_TOKEN}\u0000`],
    ['another control character (ESC)', `${SECRET_TOKEN}\u001b[0m`],
    ['DEL', `${SECRET_TOKEN}\u007f`],
    ['a character above Latin-1 (€)', `${SECRET_TOKEN}€`],
    ['an emoji (a surrogate pair)', `${SECRET_TOKEN}🔑`],
  ])('%s: token_fetch_failed at parse time, the token not quoted', (_name, token) => {
    const error = refusal(withToken(token));
    expect(error.code).toBe('token_fetch_failed');
    expect(error.facts).toEqual({ reason: 'unsafe_access_token', contentType: 'application/json' });
    expect(error.provider).toEqual({ status: 200 });
    expect(error.message).toMatch(/cannot be sent in an HTTP header/);
  });

  it('the line is drawn at what a header can carry: Latin-1 é, spaces and tabs pass, € does not', () => {
    for (const token of [`${SECRET_TOKEN}é`, `${SECRET_TOKEN} with space`, `${SECRET_TOKEN}\tx`]) {
      expect(parseTokenResponse(withToken(token)).accessToken).toBe(token);
    }
    expect(refusal(withToken(`${SECRET_TOKEN}é€`)).facts.reason).toBe('unsafe_access_token');
  });

  it('the same from a form-encoded body', () => {
    const error = refusal({
      status: 200,
      contentType: 'application/x-www-form-urlencoded',
      bodyText: `access_token=${SECRET_TOKEN}%0D%0AX-Injected%3A+1&token_type=bearer`,
    });
    expect(error.facts.reason).toBe('unsafe_access_token');
  });
});

describe('parseTokenResponse: a hostile provider cannot make Grantry store unbounded strings', () => {
  const token = (fields: Record<string, unknown>) => json({ access_token: SECRET_TOKEN, ...fields });

  it(`access and refresh tokens up to ${MAX_TOKEN_LENGTH} characters are kept as sent`, () => {
    const accessToken = 'a'.repeat(MAX_TOKEN_LENGTH);
    const refreshToken = 'r'.repeat(MAX_TOKEN_LENGTH);
    expect(
      parseTokenResponse(json({ access_token: accessToken, refresh_token: refreshToken })),
    ).toMatchObject({
      accessToken,
      refreshToken,
    });
  });

  it(`a token_type up to ${MAX_TOKEN_TYPE_LENGTH} characters and a scope up to ${MAX_SCOPE_LENGTH} are kept as sent`, () => {
    const tokenType = 'B'.repeat(MAX_TOKEN_TYPE_LENGTH);
    const scope = 's'.repeat(MAX_SCOPE_LENGTH);
    expect(parseTokenResponse(token({ token_type: tokenType, scope }))).toMatchObject({ tokenType, scope });
  });

  it.each([
    ['token_type', { token_type: `Bearer${'X'.repeat(5_000)}SECRET` }, 5_012, MAX_TOKEN_TYPE_LENGTH],
    ['scope (a string)', { scope: `read ${'x'.repeat(100_000)}SECRET` }, 100_011, MAX_SCOPE_LENGTH],
    [
      'scope (an array, joined)',
      { scope: Array.from({ length: 700 }, () => 'SECRET') },
      700 * 7 - 1,
      MAX_SCOPE_LENGTH,
    ],
    [
      'access_token',
      { access_token: `SECRET${'a'.repeat(MAX_TOKEN_LENGTH)}` },
      MAX_TOKEN_LENGTH + 6,
      MAX_TOKEN_LENGTH,
    ],
    ['refresh_token', { refresh_token: `SECRET${'r'.repeat(100_000)}` }, 100_006, MAX_TOKEN_LENGTH],
  ])(
    'an oversized %s is refused as token_fetch_failed, naming the field and its length, never its text',
    (_name, fields, length, limit) => {
      const error = refusal(token(fields));
      const name = _name.startsWith('scope') ? 'scope' : _name;
      expect(error.code).toBe('token_fetch_failed');
      expect(error.facts).toEqual({
        reason: 'oversized_field',
        contentType: 'application/json',
        field: { name, length, limit },
      });
      expect(error.message).toBe(
        `The endpoint answered HTTP 200 with a ${name} of ${length} characters; Grantry accepts at most ${limit}.`,
      );
      const diagnosed = diagnose(error, { step: 'token', tokenUrl: 'https://login.example.com/token' });
      expect(diagnosed.message).toBe(
        `The token endpoint answered HTTP 200 with a ${name} of ${length} characters; Grantry accepts at most ${limit}, and refused the token rather than store it.`,
      );
      expect(diagnosed.hint).toContain('(https://login.example.com/token)');
      expect(JSON.stringify(diagnosed.toJSON())).not.toContain('SECRET');
    },
  );
});

describe('parseTokenResponse: OAuth error bodies are errors whatever the status', () => {
  it('RFC 6749 §5.2 error at HTTP 400 keeps status, error, description and URI', () => {
    const error = refusal(
      json(
        {
          error: 'invalid_client',
          error_description: 'client authentication failed',
          error_uri: 'https://x/doc',
        },
        400,
      ),
    );
    expect(error.code).toBe('invalid_client');
    expect(error.provider).toEqual({
      status: 400,
      error: 'invalid_client',
      errorDescription: 'client authentication failed',
      errorUri: 'https://x/doc',
    });
  });

  it('GitHub answers HTTP 200 with an error body (bad_verification_code → invalid_grant)', () => {
    const error = refusal(
      json({ error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' }),
    );
    expect(error.code).toBe('invalid_grant');
    expect(error.provider.status).toBe(200);
    expect(error.provider.error).toBe('bad_verification_code');
  });

  it('GitHub form-encoded error at HTTP 200 (incorrect_client_credentials → invalid_client)', () => {
    const error = refusal({
      status: 200,
      contentType: 'application/x-www-form-urlencoded',
      bodyText:
        'error=incorrect_client_credentials&error_description=The+client_id+and%2For+client_secret+passed+are+incorrect.',
    });
    expect(error.code).toBe('invalid_client');
    expect(error.provider.errorDescription).toBe('The client_id and/or client_secret passed are incorrect.');
  });

  it('Slack {"ok":false,"error":"invalid_client"} at HTTP 200', () => {
    expect(refusal(json({ ok: false, error: 'invalid_client' })).code).toBe('invalid_client');
  });

  it('Google redirect_uri_mismatch → invalid_redirect_uri', () => {
    expect(
      refusal(json({ error: 'redirect_uri_mismatch', error_description: 'Bad Request' }, 400)).code,
    ).toBe('invalid_redirect_uri');
  });

  it('Azure AD invalid_request naming the redirect_uri → invalid_redirect_uri', () => {
    const error = refusal(
      json(
        {
          error: 'invalid_request',
          error_description: "AADSTS50011: The redirect URI 'x' specified in the request does not match",
        },
        400,
      ),
    );
    expect(error.code).toBe('invalid_redirect_uri');
  });

  it('an error even alongside an access_token wins (never use a token from an error answer)', () => {
    expect(refusal(json({ error: 'invalid_scope', access_token: SECRET_TOKEN }, 200)).code).toBe(
      'invalid_scope',
    );
  });

  it('an unknown error code (server_error) is token_fetch_failed with the provider error kept', () => {
    const error = refusal(json({ error: 'server_error' }, 500));
    expect(error.code).toBe('token_fetch_failed');
    expect(error.facts.reason).toBe('provider_error');
    expect(error.provider).toEqual({ status: 500, error: 'server_error' });
  });

  it('Google APIs-style nested error object is token_fetch_failed with its message', () => {
    const error = refusal(
      json({ error: { code: 'UNAUTHENTICATED', message: 'Request had invalid credentials.' } }, 401),
    );
    expect(error.code).toBe('token_fetch_failed');
    expect(error.provider).toMatchObject({
      status: 401,
      error: 'UNAUTHENTICATED',
      errorDescription: 'Request had invalid credentials.',
    });
  });
});

describe('parseTokenResponse: unusable answers are token_fetch_failed with the status', () => {
  const html = `<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>${SECRET_TOKEN}</body></html>`;

  it('an HTML sign-in page at HTTP 200 (Token URL pointing at the Azure AD login page)', () => {
    const error = refusal({ status: 200, contentType: 'text/html; charset=utf-8', bodyText: html });
    expect(error.code).toBe('token_fetch_failed');
    expect(error.provider.status).toBe(200);
    expect(error.facts).toEqual({
      reason: 'html',
      contentType: 'text/html',
      htmlTitle: 'Sign in to your account',
    });
  });

  it('HTML labelled as JSON (misconfigured reverse proxy)', () => {
    const error = refusal({
      status: 502,
      contentType: JSON_TYPE,
      bodyText: '<html><title>502 Bad Gateway</title></html>',
    });
    expect(error.facts.reason).toBe('html');
    expect(error.provider.status).toBe(502);
  });

  it('HTTP 200 JSON without access_token', () => {
    const error = refusal(json({ token_type: 'Bearer', refresh: SECRET_TOKEN }));
    expect(error.code).toBe('token_fetch_failed');
    expect(error.facts.reason).toBe('no_access_token');
  });

  it('HTTP 200 with an empty access_token', () => {
    expect(refusal(json({ access_token: '' })).facts.reason).toBe('no_access_token');
  });

  it('an empty body', () => {
    const error = refusal({ status: 200, contentType: null, bodyText: '' });
    expect(error.facts.reason).toBe('empty');
    expect(error.provider.status).toBe(200);
  });

  it('a 404 page (nginx) is not_found', () => {
    const error = refusal({ status: 404, contentType: 'text/plain', bodyText: '404 page not found' });
    expect(error.facts.reason).toBe('not_found');
    expect(error.provider.status).toBe(404);
  });

  it('a 404 JSON body without an OAuth error (Spring Boot) is not_found', () => {
    expect(refusal(json({ status: 404, message: 'Not Found', path: '/oauth/tokn' }, 404)).facts.reason).toBe(
      'not_found',
    );
  });

  it('a 500 with a stack trace in text/plain', () => {
    const error = refusal({
      status: 500,
      contentType: 'text/plain',
      bodyText: `Internal error ${SECRET_TOKEN}`,
    });
    expect(error.facts.reason).toBe('http_status');
    expect(error.provider.status).toBe(500);
  });

  it('a redirect keeps only the origin and path of its Location', () => {
    const error = refusal({
      status: 302,
      contentType: null,
      bodyText: '',
      headers: new Headers({ location: `https://login.example.com/login?next=${SECRET_TOKEN}` }),
    });
    expect(error.facts).toEqual({ reason: 'redirect', location: 'https://login.example.com/login' });
  });

  it('a 200 body that is neither JSON nor a form', () => {
    expect(refusal({ status: 200, contentType: 'text/plain', bodyText: 'OK' }).facts.reason).toBe(
      'not_oauth',
    );
  });

  it('a content type that is not a plain media type is not echoed', () => {
    const error = refusal({ status: 500, contentType: 'text/plain\r\nX-Evil: 1', bodyText: 'x' });
    expect(error.facts.contentType).toBeUndefined();
  });
});
