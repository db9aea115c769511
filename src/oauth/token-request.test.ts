import { describe, expect, it } from 'vitest';
import { Problem } from '../problem.js';
import type { ClientAuthMethod, OAuthClientConfig, OAuthFetch } from './client-config.js';
import { authorizationCodeGrant } from './grants/authorization-code.js';
import { clientCredentialsGrant } from './grants/client-credentials.js';
import { passwordGrant } from './grants/password.js';
import { refreshTokenGrant } from './grants/refresh-token.js';
import { revokeToken } from './revocation.js';
import type { TokenSet } from './token-set.js';

/**
 * Every path that sends a secret to a provider, against an endpoint that echoes the whole request
 * (body and Authorization header) in its error: the problem that comes back names none of them, in
 * any form they were sent in.
 */
const CLIENT_ID = 'echo client:1';
const CLIENT_SECRET = 'Cs ec+r:t%/é€~1';
const PASSWORD = 'Pw d+x:%2F/ü€!2';
const REFRESH_TOKEN = 'rt-R3fr+sh/t0k=n~';
const CODE = 'code-C0d+e/x=y';
const CODE_VERIFIER = 'verifier-4d8f_2b9c-1e7a~88';

/** Forms computed here, apart from the code under test. */
function forms(value: string): string[] {
  const formPlus = new URLSearchParams({ v: value }).toString().slice(2);
  const strict = encodeURIComponent(value)
    .replace(/[-_.!~*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
  return [value, formPlus, formPlus.replaceAll('+', '%20'), encodeURIComponent(value), strict];
}

function basicForms(): string[] {
  const strict = (v: string) => forms(v)[4] as string;
  return [`${strict(CLIENT_ID)}:${strict(CLIENT_SECRET)}`, `${CLIENT_ID}:${CLIENT_SECRET}`].flatMap(
    (pair) => [Buffer.from(pair).toString('base64'), Buffer.from(pair).toString('base64url')],
  );
}

const FORBIDDEN = [
  ...[CLIENT_SECRET, PASSWORD, REFRESH_TOKEN, CODE, CODE_VERIFIER].flatMap(forms),
  ...basicForms(),
];

type Echo = (body: string, authorization: string) => { status: number; body: unknown; type?: string };

function echoingFetch(echo: Echo): OAuthFetch {
  return async (_input, init) => {
    const body = String(init?.body ?? '');
    const authorization = new Headers(init?.headers).get('authorization') ?? '';
    const answer = echo(body, authorization);
    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    return new Response(text, {
      status: answer.status,
      headers: { 'content-type': answer.type ?? 'application/json' },
    });
  };
}

const wholeRequest: Echo = (body, authorization) => ({
  status: 400,
  body: {
    error: 'invalid_request',
    error_description: `received ${body} with ${authorization}`,
    error_uri: `https://provider.example/e?${body}`,
  },
});

function config(clientAuthMethod: ClientAuthMethod): OAuthClientConfig {
  return {
    tokenUrl: 'https://provider.example/token',
    revocationUrl: 'https://provider.example/revoke',
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    clientAuthMethod,
    audienceParam: 'audience',
  };
}

async function refusal(attempt: Promise<unknown>): Promise<Problem> {
  const error = await attempt.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Problem);
  const problem = error as Problem;
  const shown = JSON.stringify(problem.toJSON());
  expect(shown).toContain('[redacted]');
  for (const form of FORBIDDEN) expect(shown.includes(form), `${form} in ${shown}`).toBe(false);
  expect(problem.message.includes('[redacted]') || problem.hint?.includes('[redacted]')).toBe(true);
  return problem;
}

const grants: Record<string, (c: OAuthClientConfig, fetch: OAuthFetch) => Promise<TokenSet>> = {
  'client credentials': (c, fetch) => clientCredentialsGrant(c, { fetch }),
  password: (c, fetch) => passwordGrant(c, { username: 'alice', password: PASSWORD }, { fetch }),
  'refresh token': (c, fetch) => refreshTokenGrant(c, REFRESH_TOKEN, { fetch }),
  'authorization code with PKCE': (c, fetch) =>
    authorizationCodeGrant(
      c,
      { code: CODE, codeVerifier: CODE_VERIFIER, redirectUri: 'https://grantry.example/oauth/redirect' },
      { fetch },
    ),
};

describe('token requests: an endpoint echoing the request gets no secret out', () => {
  for (const [name, grant] of Object.entries(grants)) {
    for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
      it(`${name}, ${method}`, async () => {
        await refusal(grant(config(method), echoingFetch(wholeRequest)));
      });
    }
  }

  it('a secret cut in two by the description length limit does not show half of itself', async () => {
    const fetch = echoingFetch((body) => {
      const at = body.indexOf('client_secret=');
      return {
        status: 400,
        body: { error: 'server_error', error_description: `${'x'.repeat(471)}${body.slice(at)}` },
      };
    });
    const problem = await refusal(clientCredentialsGrant(config('client_secret_post'), { fetch }));
    const description = problem.provider?.errorDescription ?? '';
    expect(description.length).toBeLessThanOrEqual(500);
    expect(description).not.toContain('Cs+ec');
  });

  it('an HTML error page whose title echoes the password', async () => {
    const fetch = echoingFetch((body) => ({
      status: 400,
      type: 'text/html',
      body: `<html><title>No access for ${new URLSearchParams(body).get('password')}</title></html>`,
    }));
    const problem = await refusal(
      passwordGrant(config('client_secret_basic'), { username: 'alice', password: PASSWORD }, { fetch }),
    );
    expect(problem.code).toBe('token_fetch_failed');
  });
});

describe('revocation (RFC 7009): an endpoint echoing the request gets no secret or token out', () => {
  for (const method of ['client_secret_basic', 'client_secret_post'] as const) {
    it(method, async () => {
      const problem = await refusal(
        revokeToken(
          config(method),
          { token: REFRESH_TOKEN, tokenTypeHint: 'refresh_token' },
          { fetch: echoingFetch(wholeRequest) },
        ),
      );
      expect(problem.code).toBe('invalid_request');
    });
  }
});
