import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Problem } from '../../problem.js';
import type { OAuthClientConfig } from '../client-config.js';
import {
  buildAuthorizationUrl,
  createPkcePair,
  createState,
  startAuthorization,
  validateAuthorizationCallback,
} from './authorization-code.js';

const REDIRECT_URI = 'https://grantry.example.com/oauth/redirect';

const config: OAuthClientConfig = {
  tokenUrl: 'https://auth.example.com/oauth/token',
  authorizationUrl: 'https://auth.example.com/authorize?tenant=acme',
  clientId: 'client-1',
  clientSecret: 'unused',
  clientAuthMethod: 'client_secret_basic',
  audienceParam: 'audience',
  scope: 'openid read',
};

describe('createPkcePair (RFC 7636)', () => {
  it('makes a 43-character verifier and its S256 challenge', async () => {
    const pair = await createPkcePair();
    expect(pair.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const expected = createHash('sha256').update(pair.codeVerifier).digest('base64url');
    expect(pair.codeChallenge).toBe(expected);
    expect(pair.codeChallengeMethod).toBe('S256');
    expect((await createPkcePair()).codeVerifier).not.toBe(pair.codeVerifier);
  });

  it('createState is unguessable and fresh', () => {
    expect(createState()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(createState()).not.toBe(createState());
  });
});

describe('buildAuthorizationUrl (RFC 6749 §4.1.1)', () => {
  it('sets the protocol parameters, PKCE S256 and keeps the configured query', async () => {
    const { codeChallenge } = await createPkcePair();
    const url = buildAuthorizationUrl(config, { redirectUri: REDIRECT_URI, state: 'st-1', codeChallenge });
    expect(url.origin + url.pathname).toBe('https://auth.example.com/authorize');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      tenant: 'acme',
      response_type: 'code',
      client_id: 'client-1',
      redirect_uri: REDIRECT_URI,
      scope: 'openid read',
      state: 'st-1',
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
    });
  });

  it('sends the audience as `audience`, or as RFC 8707 `resource`', () => {
    const audience = buildAuthorizationUrl(
      { ...config, audience: 'https://api.example.com' },
      { redirectUri: REDIRECT_URI, state: 's' },
    );
    expect(audience.searchParams.get('audience')).toBe('https://api.example.com');
    expect(audience.searchParams.has('resource')).toBe(false);
    const resource = buildAuthorizationUrl(
      { ...config, audience: 'https://api.example.com', audienceParam: 'resource' },
      { redirectUri: REDIRECT_URI, state: 's' },
    );
    expect(resource.searchParams.get('resource')).toBe('https://api.example.com');
    expect(resource.searchParams.has('audience')).toBe(false);
  });

  it('without a challenge sends no PKCE parameters', () => {
    const url = buildAuthorizationUrl(config, { redirectUri: REDIRECT_URI, state: 's' });
    expect(url.searchParams.has('code_challenge')).toBe(false);
    expect(url.searchParams.has('code_challenge_method')).toBe(false);
  });

  it('extraAuthorizationParams are added but cannot override protocol parameters', () => {
    const url = buildAuthorizationUrl(
      {
        ...config,
        authorizationUrl: 'https://auth.example.com/authorize?redirect_uri=https%3A%2F%2Fevil.example.com%2F',
        extraAuthorizationParams: {
          prompt: 'consent',
          access_type: 'offline',
          redirect_uri: 'https://evil.example.com/',
          client_id: 'other',
          response_type: 'token',
          state: 'fixed',
          code_challenge_method: 'plain',
          scope: 'admin',
        },
      },
      { redirectUri: REDIRECT_URI, state: 'st-2', codeChallenge: 'ch' },
    );
    const query = url.searchParams;
    expect(query.get('prompt')).toBe('consent');
    expect(query.get('access_type')).toBe('offline');
    expect(query.getAll('redirect_uri')).toEqual([REDIRECT_URI]);
    expect(query.get('client_id')).toBe('client-1');
    expect(query.get('response_type')).toBe('code');
    expect(query.get('state')).toBe('st-2');
    expect(query.get('code_challenge_method')).toBe('S256');
    expect(query.get('scope')).toBe('openid read');
  });

  it('refuses a config without authorizationUrl', () => {
    expect(() =>
      buildAuthorizationUrl(
        { ...config, authorizationUrl: undefined },
        { redirectUri: REDIRECT_URI, state: 's' },
      ),
    ).toThrow(Problem);
  });
});

describe('startAuthorization', () => {
  it('uses PKCE S256 by default and puts the challenge of the returned verifier in the URL', async () => {
    const start = await startAuthorization(config, REDIRECT_URI);
    expect(start.codeVerifier).not.toBeNull();
    const query = start.authorizationUrl.searchParams;
    expect(query.get('state')).toBe(start.state);
    expect(query.get('code_challenge')).toBe(
      createHash('sha256')
        .update(start.codeVerifier ?? '')
        .digest('base64url'),
    );
    expect(query.get('code_challenge_method')).toBe('S256');
  });

  it('leaves PKCE out when pkce is false', async () => {
    const start = await startAuthorization({ ...config, pkce: false }, REDIRECT_URI);
    expect(start.codeVerifier).toBeNull();
    expect(start.authorizationUrl.searchParams.has('code_challenge')).toBe(false);
  });
});

describe('validateAuthorizationCallback (RFC 6749 §4.1.2, RFC 9207)', () => {
  const expected = { state: 'st-1', clientId: 'client-1', redirectUri: REDIRECT_URI };

  it('returns the code when state matches', () => {
    expect(
      validateAuthorizationCallback(new URLSearchParams({ code: 'c-1', state: 'st-1' }), expected),
    ).toEqual({
      code: 'c-1',
    });
  });

  it('refuses a wrong or missing state as invalid_state', () => {
    for (const params of [{ code: 'c', state: 'other' }, { code: 'c' }]) {
      expect(() => validateAuthorizationCallback(new URLSearchParams(params), expected)).toThrow(
        expect.objectContaining({ code: 'invalid_state' }),
      );
    }
  });

  it('checks iss against a known issuer, and requires it when the issuer says it sends it', () => {
    const issuer = 'https://auth.example.com';
    expect(
      validateAuthorizationCallback(new URLSearchParams({ code: 'c', state: 'st-1', iss: issuer }), {
        ...expected,
        issuer,
      }),
    ).toEqual({ code: 'c' });
    expect(() =>
      validateAuthorizationCallback(
        new URLSearchParams({ code: 'c', state: 'st-1', iss: 'https://evil.example.com' }),
        {
          ...expected,
          issuer,
        },
      ),
    ).toThrow(expect.objectContaining({ code: 'invalid_state', message: expect.stringContaining('issuer') }));
    expect(() =>
      validateAuthorizationCallback(new URLSearchParams({ code: 'c', state: 'st-1' }), {
        ...expected,
        issuer,
        issParameterSupported: true,
      }),
    ).toThrow(expect.objectContaining({ code: 'invalid_state' }));
  });

  it('turns error=access_denied into a diagnosed access_denied with the description', () => {
    try {
      validateAuthorizationCallback(
        new URLSearchParams({ error: 'access_denied', error_description: 'The user said no', state: 'st-1' }),
        expected,
      );
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({
        code: 'access_denied',
        provider: { error: 'access_denied', errorDescription: 'The user said no' },
      });
      expect((error as Problem).hint).toContain('Authorize again');
    }
  });

  it('turns error=redirect_uri_mismatch into invalid_redirect_uri naming our URI', () => {
    expect(() =>
      validateAuthorizationCallback(
        new URLSearchParams({ error: 'redirect_uri_mismatch', state: 'st-1' }),
        expected,
      ),
    ).toThrow(
      expect.objectContaining({ code: 'invalid_redirect_uri', hint: expect.stringContaining(REDIRECT_URI) }),
    );
  });
});
