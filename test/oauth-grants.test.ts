import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Egress } from '../src/egress/egress.js';
import type { OAuthClientConfig, TokenRequestOptions } from '../src/oauth/client-config.js';
import { discover, discoverFromTokenUrl } from '../src/oauth/discovery.js';
import {
  authorizationCodeGrant,
  buildAuthorizationUrl,
  createPkcePair,
  createState,
  startAuthorization,
  validateAuthorizationCallback,
} from '../src/oauth/grants/authorization-code.js';
import { clientCredentialsGrant } from '../src/oauth/grants/client-credentials.js';
import { passwordGrant } from '../src/oauth/grants/password.js';
import { refreshTokenGrant } from '../src/oauth/grants/refresh-token.js';
import { revokeToken } from '../src/oauth/revocation.js';
import type { Problem } from '../src/problem.js';
import { authorizeThroughDevInteractions, type OidcFixture, startOidcProvider } from './support/oidc.js';
import { selfSignedCertificate } from './support/tls.js';

/** RFC 6749 §2.3.1 makes these characters meaningful in a Basic header unless form-encoded first. */
const SPECIAL_SECRET = 'p:a&s+s%w=o/r d';
const API = 'https://api.example.test';
const REDIRECT_URI = 'https://grantry.example.test/oauth/redirect';

/** What Egress does for real: never follow redirects. */
const manualFetch: typeof fetch = (input, init) => fetch(input, { ...init, redirect: 'manual' });
const options: TokenRequestOptions = { fetch: manualFetch, timeoutMs: 15_000 };

async function failure(promise: Promise<unknown>): Promise<Problem> {
  try {
    await promise;
  } catch (error) {
    return error as Problem;
  }
  throw new Error('expected the OAuth call to fail');
}

/** A diagnosed failure never carries what we sent in secret. */
function expectNoSecrets(problem: Problem, ...secrets: string[]): void {
  const shown = JSON.stringify({ ...problem.toJSON(), message: problem.message });
  for (const secret of secrets) expect(shown).not.toContain(secret);
}

describe('OAuth grants against a real oidc-provider over HTTPS', () => {
  let op: OidcFixture;
  let base: Omit<OAuthClientConfig, 'clientId' | 'clientSecret'>;

  beforeAll(async () => {
    op = await startOidcProvider({
      clients: [
        { client_id: 'cc-basic', client_secret: 'basic-secret', grant_types: ['client_credentials'] },
        {
          client_id: 'cc-post',
          client_secret: 'post-secret',
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_post',
        },
        { client_id: 'cc-special', client_secret: SPECIAL_SECRET, grant_types: ['client_credentials'] },
        {
          client_id: 'cc-limited',
          client_secret: 'limited-secret',
          grant_types: ['client_credentials'],
          scope: 'read',
        },
        { client_id: 'pw', client_secret: 'pw-secret', grant_types: ['password', 'refresh_token'] },
        {
          client_id: 'web',
          client_secret: 'web-secret',
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [REDIRECT_URI],
        },
      ],
      resources: { [API]: { scope: 'api:read', accessTokenFormat: 'jwt' } },
      users: { alice: 'wonder land:&%' },
    });
    base = { tokenUrl: op.tokenUrl, clientAuthMethod: 'client_secret_basic', audienceParam: 'audience' };
  });

  afterAll(async () => {
    await op?.close();
  });

  beforeEach(() => {
    op.resetCounts();
  });

  describe('client credentials (RFC 6749 §4.4)', () => {
    it('client_secret_basic gets a token the provider recognises as issued to that client', async () => {
      const tokens = await clientCredentialsGrant(
        { ...base, clientId: 'cc-basic', clientSecret: 'basic-secret' },
        options,
      );
      expect(tokens.tokenType).toBe('Bearer');
      expect(tokens.expiresIn).toBeGreaterThan(0);
      expect(tokens.refreshToken).toBeNull();
      expect(await op.verifyAccessToken(tokens.accessToken)).toMatchObject({
        active: true,
        clientId: 'cc-basic',
      });
      expect(op.tokenRequests.client_credentials).toBe(1);
    });

    it('client_secret_post gets a token', async () => {
      const tokens = await clientCredentialsGrant(
        { ...base, clientId: 'cc-post', clientSecret: 'post-secret', clientAuthMethod: 'client_secret_post' },
        options,
      );
      expect(await op.verifyAccessToken(tokens.accessToken)).toMatchObject({
        active: true,
        clientId: 'cc-post',
      });
    });

    it('a secret with : & + % = / and a space works with Basic (form-encoded per §2.3.1)', async () => {
      const tokens = await clientCredentialsGrant(
        { ...base, clientId: 'cc-special', clientSecret: SPECIAL_SECRET },
        options,
      );
      expect(await op.verifyAccessToken(tokens.accessToken)).toMatchObject({
        active: true,
        clientId: 'cc-special',
      });
    });

    it('a Basic-registered client sending its secret in the body is invalid_client, hint names client_secret_basic', async () => {
      // cc-special is registered for Basic; the strict harness refuses post for it, which proves that
      // the refusal below is about the method and the diagnosis points at the other one.
      const problem = await failure(
        clientCredentialsGrant(
          {
            ...base,
            clientId: 'cc-special',
            clientSecret: SPECIAL_SECRET,
            clientAuthMethod: 'client_secret_post',
          },
          options,
        ),
      );
      expect(problem.code).toBe('invalid_client');
      expect(problem.hint).toContain('(clientAuthMethod, under Advanced) to client_secret_basic');
      expectNoSecrets(problem, SPECIAL_SECRET);
    });

    it('a wrong secret is invalid_client with a hint naming client_secret_post as the other method', async () => {
      const problem = await failure(
        clientCredentialsGrant(
          { ...base, clientId: 'cc-basic', clientSecret: 'wrong-secret-value' },
          options,
        ),
      );
      expect(problem.code).toBe('invalid_client');
      expect(problem.message).toContain('rejected the client credentials');
      expect(problem.hint).toContain('Check the Client ID and Client Secret');
      expect(problem.hint).toContain('client_secret_post');
      expect(problem.provider).toMatchObject({ status: 401, error: 'invalid_client' });
      expectNoSecrets(problem, 'wrong-secret-value');
    });

    it('a scope the client may not use is invalid_scope naming it', async () => {
      const problem = await failure(
        clientCredentialsGrant(
          { ...base, clientId: 'cc-limited', clientSecret: 'limited-secret', scope: 'read write' },
          options,
        ),
      );
      expect(problem.code).toBe('invalid_scope');
      expect(problem.hint).toContain('scope "read write"');
      expect(problem.provider?.error).toBe('invalid_scope');
    });

    it('an allowed scope is granted', async () => {
      const tokens = await clientCredentialsGrant(
        { ...base, clientId: 'cc-limited', clientSecret: 'limited-secret', scope: 'read' },
        options,
      );
      expect(tokens.scope).toBe('read');
    });

    it('an RFC 8707 resource indicator yields a JWT for that audience', async () => {
      const tokens = await clientCredentialsGrant(
        {
          ...base,
          clientId: 'cc-basic',
          clientSecret: 'basic-secret',
          audience: API,
          audienceParam: 'resource',
          scope: 'api:read',
        },
        options,
      );
      expect(tokens.accessToken.split('.')).toHaveLength(3);
      expect(await op.verifyAccessToken(tokens.accessToken)).toMatchObject({
        active: true,
        aud: API,
        scope: 'api:read',
      });
    });

    it('the Auth0-style audience parameter reaches the provider too', async () => {
      const tokens = await clientCredentialsGrant(
        { ...base, clientId: 'cc-basic', clientSecret: 'basic-secret', audience: API, scope: 'api:read' },
        options,
      );
      expect(await op.verifyAccessToken(tokens.accessToken)).toMatchObject({ active: true, aud: API });
    });

    it('an unknown resource is invalid_target naming the value', async () => {
      const problem = await failure(
        clientCredentialsGrant(
          {
            ...base,
            clientId: 'cc-basic',
            clientSecret: 'basic-secret',
            audience: 'https://unknown.example.test',
            audienceParam: 'resource',
          },
          options,
        ),
      );
      expect(problem.code).toBe('invalid_target');
      expect(problem.hint).toContain('resource="https://unknown.example.test"');
    });
  });

  describe('password (RFC 6749 §4.3) and refresh (§6)', () => {
    const user = { username: 'alice', password: 'wonder land:&%' };

    it('good credentials get an access token and a refresh token', async () => {
      const tokens = await passwordGrant(
        { ...base, clientId: 'pw', clientSecret: 'pw-secret', scope: 'read' },
        user,
        options,
      );
      expect(tokens.refreshToken).not.toBeNull();
      expect(tokens.scope).toBe('read');
      expect(await op.verifyAccessToken(tokens.accessToken)).toMatchObject({ active: true, clientId: 'pw' });
      expect(op.tokenRequests.password).toBe(1);
    });

    it('a wrong password is invalid_grant diagnosed as username/password', async () => {
      const problem = await failure(
        passwordGrant(
          { ...base, clientId: 'pw', clientSecret: 'pw-secret' },
          { username: 'alice', password: 'not-her-password' },
          options,
        ),
      );
      expect(problem.code).toBe('invalid_grant');
      expect(problem.message).toContain('username or password');
      expect(problem.hint).toContain('Check the username and password');
      expectNoSecrets(problem, 'not-her-password', 'pw-secret');
    });

    it('refresh rotates the refresh token; replaying the old one is invalid_grant → reconnect', async () => {
      const config: OAuthClientConfig = { ...base, clientId: 'pw', clientSecret: 'pw-secret', scope: 'read' };
      const first = await passwordGrant(config, user, options);
      const firstRefresh = first.refreshToken ?? '';
      const second = await refreshTokenGrant(config, firstRefresh, options);
      expect(second.refreshToken).not.toBeNull();
      expect(second.refreshToken).not.toBe(firstRefresh);
      expect(second.accessToken).not.toBe(first.accessToken);
      expect(await op.verifyAccessToken(second.accessToken)).toMatchObject({ active: true, clientId: 'pw' });
      expect(op.tokenRequests.refresh_token).toBe(1);

      const problem = await failure(refreshTokenGrant(config, firstRefresh, options));
      expect(problem.code).toBe('invalid_grant');
      expect(problem.message).toContain('refresh token');
      expect(problem.hint).toContain('reconnect');
      expectNoSecrets(problem, firstRefresh);
    });
  });

  describe('authorization code (RFC 6749 §4.1) with PKCE', () => {
    it('builds the URL, validates the callback with state and iss, and exchanges the code', async () => {
      const metadata = await discover(op.issuer, options);
      const config: OAuthClientConfig = {
        ...base,
        clientId: 'web',
        clientSecret: 'web-secret',
        authorizationUrl: op.authorizationUrl,
        scope: 'openid read',
      };
      const pkce = await createPkcePair();
      const state = createState();
      const url = buildAuthorizationUrl(config, {
        redirectUri: REDIRECT_URI,
        state,
        codeChallenge: pkce.codeChallenge,
      });
      const callback = await authorizeThroughDevInteractions(url.href);
      expect(callback.origin + callback.pathname).toBe(REDIRECT_URI);
      const { code } = validateAuthorizationCallback(callback.searchParams, {
        state,
        issuer: metadata.issuer,
        issParameterSupported: metadata.issParameterSupported,
        clientId: 'web',
        redirectUri: REDIRECT_URI,
      });
      const tokens = await authorizationCodeGrant(
        config,
        { code, codeVerifier: pkce.codeVerifier, redirectUri: REDIRECT_URI },
        options,
      );
      expect(tokens.refreshToken).not.toBeNull();
      expect(tokens.idToken).not.toBeNull();
      expect(await op.verifyAccessToken(tokens.accessToken)).toMatchObject({ active: true, clientId: 'web' });

      // A code is single-use (RFC 6749 §4.1.2).
      const problem = await failure(
        authorizationCodeGrant(
          config,
          { code, codeVerifier: pkce.codeVerifier, redirectUri: REDIRECT_URI },
          options,
        ),
      );
      expect(problem.code).toBe('invalid_grant');
      expect(problem.hint).toContain('authorize again');
      expectNoSecrets(problem, code);
    });

    it('startAuthorization binds the code to its PKCE verifier: another verifier is invalid_grant', async () => {
      const config: OAuthClientConfig = {
        ...base,
        clientId: 'web',
        clientSecret: 'web-secret',
        authorizationUrl: op.authorizationUrl,
        scope: 'openid',
      };
      const start = await startAuthorization(config, REDIRECT_URI);
      const callback = await authorizeThroughDevInteractions(start.authorizationUrl.href);
      const { code } = validateAuthorizationCallback(callback.searchParams, {
        state: start.state,
        clientId: 'web',
      });
      const other = await createPkcePair();
      const problem = await failure(
        authorizationCodeGrant(
          config,
          { code, codeVerifier: other.codeVerifier, redirectUri: REDIRECT_URI },
          options,
        ),
      );
      expect(problem.code).toBe('invalid_grant');
      expect(op.tokenRequests.authorization_code).toBe(1);
    });
  });

  describe('discovery (OpenID Connect Discovery / RFC 8414)', () => {
    it("reads the provider's metadata", async () => {
      const metadata = await discover(op.issuer, options);
      expect(metadata).toMatchObject({
        issuer: op.issuer,
        authorizationUrl: op.authorizationUrl,
        tokenUrl: op.tokenUrl,
        revocationUrl: op.revocationUrl,
        issParameterSupported: true,
      });
      expect(metadata.grantTypes).toEqual(
        expect.arrayContaining(['authorization_code', 'client_credentials']),
      );
      expect(metadata.clientAuthMethods).toEqual(
        expect.arrayContaining(['client_secret_basic', 'client_secret_post']),
      );
      expect(metadata.scopes).toEqual(expect.arrayContaining(['openid', 'read']));
    });

    it('accepts the metadata URL itself as input', async () => {
      expect((await discover(op.discoveryUrl, options)).issuer).toBe(op.issuer);
    });

    it('refuses metadata whose issuer differs from the one asked, naming the right one', async () => {
      const problem = await failure(discover(`https://127.0.0.1:${op.port}`, options));
      expect(problem.code).toBe('upstream_failed');
      expect(problem.hint).toContain(`"${op.issuer}"`);
    });

    it('an issuer without metadata says so, listing what was tried', async () => {
      const problem = await failure(discover(`${op.issuer}/nothing-here`, options));
      expect(problem.code).toBe('upstream_failed');
      expect(problem.message).toContain('/nothing-here/.well-known/openid-configuration');
      expect(problem.message).toContain('/.well-known/oauth-authorization-server/nothing-here');
    });

    it('finds the revocation URL from the token URL alone', async () => {
      const metadata = await discoverFromTokenUrl(op.tokenUrl, options);
      expect(metadata?.revocationUrl).toBe(op.revocationUrl);
      expect(await discoverFromTokenUrl(`${op.issuer}/elsewhere/token`, options)).toBeNull();
    });
  });

  describe('revocation (RFC 7009)', () => {
    it('revoking a refresh token makes the provider refuse it', async () => {
      const config: OAuthClientConfig = {
        ...base,
        clientId: 'pw',
        clientSecret: 'pw-secret',
        revocationUrl: op.revocationUrl,
      };
      const tokens = await passwordGrant(config, { username: 'alice', password: 'wonder land:&%' }, options);
      await revokeToken(
        config,
        { token: tokens.refreshToken ?? '', tokenTypeHint: 'refresh_token' },
        options,
      );
      expect(op.revocations).toBe(1);
      const problem = await failure(refreshTokenGrant(config, tokens.refreshToken ?? '', options));
      expect(problem.code).toBe('invalid_grant');
    });

    it('revoking an access token makes it inactive, with client_secret_post too', async () => {
      const config: OAuthClientConfig = {
        ...base,
        clientId: 'cc-post',
        clientSecret: 'post-secret',
        clientAuthMethod: 'client_secret_post',
        revocationUrl: op.revocationUrl,
      };
      const tokens = await clientCredentialsGrant(config, options);
      expect((await op.verifyAccessToken(tokens.accessToken)).active).toBe(true);
      await revokeToken(config, { token: tokens.accessToken, tokenTypeHint: 'access_token' }, options);
      expect((await op.verifyAccessToken(tokens.accessToken)).active).toBe(false);
    });

    it('a wrong secret at the revocation endpoint is invalid_client', async () => {
      const problem = await failure(
        revokeToken(
          {
            clientId: 'pw',
            clientSecret: 'wrong-secret-value',
            clientAuthMethod: 'client_secret_basic',
            revocationUrl: op.revocationUrl,
          },
          { token: 'whatever', tokenTypeHint: 'access_token' },
          options,
        ),
      );
      expect(problem.code).toBe('invalid_client');
      expectNoSecrets(problem, 'wrong-secret-value');
    });
  });

  describe('through Egress (the production fetch)', () => {
    let egress: Egress;
    let strict: Egress;
    beforeAll(() => {
      egress = new Egress({ mode: 'default', allowHttp: 'off' });
      strict = new Egress({ mode: 'strict', allowHttp: 'off' });
    });
    afterAll(async () => {
      await egress.close();
      await strict.close();
    });

    it('fetches a token, discovers the provider and revokes the token', async () => {
      const egressOptions: TokenRequestOptions = { fetch: egress.fetch };
      const metadata = await discover(op.issuer, egressOptions);
      const config: OAuthClientConfig = {
        ...base,
        clientId: 'cc-special',
        clientSecret: SPECIAL_SECRET,
        revocationUrl: metadata.revocationUrl ?? '',
      };
      const tokens = await clientCredentialsGrant(config, egressOptions);
      expect((await op.verifyAccessToken(tokens.accessToken)).active).toBe(true);
      await revokeToken(config, { token: tokens.accessToken, tokenTypeHint: 'access_token' }, egressOptions);
      expect((await op.verifyAccessToken(tokens.accessToken)).active).toBe(false);
    });

    it('a loopback token URL under the strict policy is egress_denied', async () => {
      const problem = await failure(
        clientCredentialsGrant(
          { ...base, clientId: 'cc-basic', clientSecret: 'basic-secret' },
          { fetch: strict.fetch },
        ),
      );
      expect(problem.code).toBe('egress_denied');
      expect(op.tokenRequests.total).toBe(0);
    });

    it('an http token URL is insecure_url', async () => {
      const problem = await failure(
        clientCredentialsGrant(
          {
            ...base,
            tokenUrl: `http://localhost:${op.port}/token`,
            clientId: 'cc-basic',
            clientSecret: 'basic-secret',
          },
          { fetch: egress.fetch },
        ),
      );
      expect(problem.code).toBe('insecure_url');
    });
  });

  describe('token endpoints that cannot be used', () => {
    it('a wrong path is token_fetch_failed with a 404 hint', async () => {
      const problem = await failure(
        clientCredentialsGrant(
          {
            ...base,
            tokenUrl: `${op.issuer}/oauth/tokn`,
            clientId: 'cc-basic',
            clientSecret: 'basic-secret',
          },
          options,
        ),
      );
      expect(problem.code).toBe('token_fetch_failed');
      expect(problem.provider?.status).toBe(404);
      expect(problem.hint).toContain('Check the Token URL path');
    });

    it('a closed port is token_fetch_failed: connection refused', async () => {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((resolve) => server.close(() => resolve()));
      const problem = await failure(
        clientCredentialsGrant(
          {
            ...base,
            tokenUrl: `https://127.0.0.1:${port}/token`,
            clientId: 'cc-basic',
            clientSecret: 'basic-secret',
          },
          options,
        ),
      );
      expect(problem.code).toBe('token_fetch_failed');
      expect(problem.message).toContain('refused');
    });

    describe('an untrusted certificate', () => {
      let server: Server;
      beforeAll(async () => {
        server = createServer(selfSignedCertificate(), (_req, res) => res.end('{}'));
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      });
      afterAll(async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      });

      it('is token_fetch_failed with a NODE_EXTRA_CA_CERTS hint', async () => {
        const { port } = server.address() as AddressInfo;
        const problem = await failure(
          clientCredentialsGrant(
            { ...base, tokenUrl: `https://localhost:${port}/token`, clientId: 'x', clientSecret: 'y' },
            options,
          ),
        );
        expect(problem.code).toBe('token_fetch_failed');
        expect(problem.message).toContain('TLS');
        expect(problem.hint).toContain('NODE_EXTRA_CA_CERTS');
      });
    });
  });
});
