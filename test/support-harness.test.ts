import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { authorizeThroughDevInteractions, type OidcFixture, startOidcProvider } from './support/oidc.js';
import { selfSignedCertificate, testCaPem } from './support/tls.js';

interface TokenResponse {
  access_token?: string;
  refresh_token?: string;
  token_type?: string;
  expires_in?: number;
  scope?: string;
  error?: string;
  error_description?: string;
}

const API = 'https://api.example.test';
const JWT_API = 'https://jwt-api.example.test';

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function tokenRequest(
  op: OidcFixture,
  form: Record<string, string>,
  authorization?: string,
): Promise<{ status: number; body: TokenResponse }> {
  const res = await fetch(op.tokenUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(authorization ? { authorization } : {}),
    },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as TokenResponse };
}

describe('test harness', () => {
  let op: OidcFixture;
  let api: ApiFixture;

  beforeAll(async () => {
    op = await startOidcProvider({
      clients: [
        { client_id: 'm2m-basic', client_secret: 'basic-secret', grant_types: ['client_credentials'] },
        {
          client_id: 'm2m-post',
          client_secret: 'post-secret',
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_post',
        },
        {
          client_id: 'limited',
          client_secret: 'limited-secret',
          grant_types: ['client_credentials'],
          scope: 'read',
        },
        {
          client_id: 'ropc',
          client_secret: 'ropc-secret',
          grant_types: ['password', 'refresh_token'],
        },
        {
          client_id: 'spa',
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code'],
          redirect_uris: ['https://localhost:9/oauth/redirect'],
        },
        {
          client_id: 'web',
          client_secret: 'web-secret',
          grant_types: ['authorization_code', 'refresh_token'],
          redirect_uris: ['https://localhost:9/oauth/redirect'],
        },
      ],
      resources: {
        [API]: { scope: 'read write' },
        [JWT_API]: { scope: 'api:read', accessTokenFormat: 'jwt' },
      },
    });
    api = await startApiServer({
      verify: async (token) => (await op.verifyAccessToken(token)).active,
    });
  });

  afterAll(async () => {
    await api?.close();
    await op?.close();
  });

  beforeEach(() => {
    op.resetCounts();
    op.setTokenDelay(0);
    api.setBehaviour('normal');
    api.reset();
  });

  describe('TLS', () => {
    it('makes every worker trust the test CA, so plain fetch reaches the provider', async () => {
      expect(process.env.NODE_EXTRA_CA_CERTS).toBeTruthy();
      expect(testCaPem()).toContain('BEGIN CERTIFICATE');
      const res = await fetch(op.discoveryUrl);
      expect(res.status).toBe(200);
      const metadata = (await res.json()) as Record<string, unknown>;
      expect(metadata.issuer).toBe(op.issuer);
      expect(metadata.token_endpoint).toBe(op.tokenUrl);
      expect(metadata.grant_types_supported).toEqual(
        expect.arrayContaining(['client_credentials', 'password', 'refresh_token', 'authorization_code']),
      );
      expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
    });

    it('serves on 127.0.0.1 as a host name too', async () => {
      const byAddress = await startOidcProvider({ hostname: '127.0.0.1' });
      try {
        const res = await fetch(byAddress.discoveryUrl);
        expect(((await res.json()) as { issuer: string }).issuer).toBe(`https://127.0.0.1:${byAddress.port}`);
      } finally {
        await byAddress.close();
      }
    });

    it('passes the trust on to child processes', async () => {
      const script = `fetch(${JSON.stringify(op.discoveryUrl)}).then((r) => process.stdout.write(String(r.status)))`;
      const { stdout } = await promisify(execFile)(process.execPath, ['-e', script]);
      expect(stdout).toBe('200');
    });

    it('serves the same metadata at the RFC 8414 location', async () => {
      const res = await fetch(`${op.issuer}/.well-known/oauth-authorization-server`);
      expect(((await res.json()) as { issuer: string }).issuer).toBe(op.issuer);
    });

    it('does not trust a self-signed certificate', async () => {
      const { cert, key } = selfSignedCertificate();
      const server = createServer({ cert, key }, (_req, res) => res.end('ok'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as AddressInfo;
        const error = await fetch(`https://localhost:${port}/`).then(
          () => undefined,
          (e: unknown) => e as Error & { cause?: { code?: string } },
        );
        expect(error?.cause?.code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });
  });

  describe('client_credentials', () => {
    it('issues a token to a client_secret_basic client', async () => {
      const { status, body } = await tokenRequest(
        op,
        { grant_type: 'client_credentials', scope: 'read' },
        basic('m2m-basic', 'basic-secret'),
      );
      expect(status).toBe(200);
      expect(body.token_type).toBe('Bearer');
      expect(body.expires_in).toBe(3600);
      expect(body.scope).toBe('read');
      expect(await op.verifyAccessToken(body.access_token ?? '')).toMatchObject({
        active: true,
        clientId: 'm2m-basic',
        scope: 'read',
      });
    });

    it('issues a token to a client_secret_post client and refuses it the other method', async () => {
      const post = await tokenRequest(op, {
        grant_type: 'client_credentials',
        client_id: 'm2m-post',
        client_secret: 'post-secret',
      });
      expect(post.status).toBe(200);
      const viaBasic = await tokenRequest(
        op,
        { grant_type: 'client_credentials' },
        basic('m2m-post', 'post-secret'),
      );
      expect(viaBasic.status).toBe(401);
      expect(viaBasic.body.error).toBe('invalid_client');
    });

    it('accepts either method when strictClientAuthMethod is off', async () => {
      const lenient = await startOidcProvider({
        strictClientAuthMethod: false,
        clients: [{ client_id: 'c', client_secret: 's', grant_types: ['client_credentials'] }],
      });
      try {
        const viaPost = await tokenRequest(lenient, {
          grant_type: 'client_credentials',
          client_id: 'c',
          client_secret: 's',
        });
        expect(viaPost.status).toBe(200);
      } finally {
        await lenient.close();
      }
    });

    it('rejects a wrong secret with invalid_client', async () => {
      const { status, body } = await tokenRequest(
        op,
        { grant_type: 'client_credentials' },
        basic('m2m-basic', 'wrong'),
      );
      expect(status).toBe(401);
      expect(body.error).toBe('invalid_client');
    });

    it('answers invalid_scope for an unknown scope and for a scope the client may not use', async () => {
      const unknown = await tokenRequest(
        op,
        { grant_type: 'client_credentials', scope: 'read admin' },
        basic('m2m-basic', 'basic-secret'),
      );
      expect(unknown.status).toBe(400);
      expect(unknown.body.error).toBe('invalid_scope');
      const notAllowed = await tokenRequest(
        op,
        { grant_type: 'client_credentials', scope: 'write' },
        basic('limited', 'limited-secret'),
      );
      expect(notAllowed.body.error).toBe('invalid_scope');
    });

    it('honours RFC 8707 resource indicators and the audience parameter', async () => {
      const withResource = await tokenRequest(
        op,
        { grant_type: 'client_credentials', scope: 'read write', resource: API },
        basic('m2m-basic', 'basic-secret'),
      );
      expect(withResource.status).toBe(200);
      expect(await op.verifyAccessToken(withResource.body.access_token ?? '')).toMatchObject({
        active: true,
        aud: API,
        scope: 'read write',
      });

      const withAudience = await tokenRequest(
        op,
        { grant_type: 'client_credentials', scope: 'api:read', audience: JWT_API },
        basic('m2m-basic', 'basic-secret'),
      );
      expect(withAudience.status).toBe(200);
      expect(withAudience.body.access_token?.split('.')).toHaveLength(3);
      expect(await op.verifyAccessToken(withAudience.body.access_token ?? '')).toMatchObject({
        active: true,
        aud: JWT_API,
        clientId: 'm2m-basic',
      });

      const unknown = await tokenRequest(
        op,
        { grant_type: 'client_credentials', resource: 'https://unknown.example.test' },
        basic('m2m-basic', 'basic-secret'),
      );
      expect(unknown.body.error).toBe('invalid_target');
    });
  });

  describe('password grant', () => {
    it('issues access and refresh tokens for the right password', async () => {
      const { status, body } = await tokenRequest(
        op,
        { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'read' },
        basic('ropc', 'ropc-secret'),
      );
      expect(status).toBe(200);
      expect(body.refresh_token).toBeTruthy();
      expect(body.scope).toBe('read');
      expect(await op.verifyAccessToken(body.access_token ?? '')).toMatchObject({
        active: true,
        clientId: 'ropc',
      });
    });

    it('answers invalid_grant for a wrong password', async () => {
      const { status, body } = await tokenRequest(
        op,
        { grant_type: 'password', username: 'alice', password: 'looking-glass' },
        basic('ropc', 'ropc-secret'),
      );
      expect(status).toBe(400);
      expect(body.error).toBe('invalid_grant');
    });

    it('refuses the grant to a client not registered for it', async () => {
      const { body } = await tokenRequest(
        op,
        { grant_type: 'password', username: 'alice', password: 'wonderland' },
        basic('m2m-basic', 'basic-secret'),
      );
      expect(body.error).toMatch(/unauthorized_client|invalid_request/);
    });
  });

  describe('refresh_token', () => {
    it('rotates refresh tokens and revokes the grant when an old one is replayed', async () => {
      const auth = basic('ropc', 'ropc-secret');
      const first = await tokenRequest(
        op,
        { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'read' },
        auth,
      );
      const rt1 = first.body.refresh_token ?? '';

      const second = await tokenRequest(op, { grant_type: 'refresh_token', refresh_token: rt1 }, auth);
      expect(second.status).toBe(200);
      const rt2 = second.body.refresh_token ?? '';
      expect(rt2).not.toBe(rt1);
      expect(second.body.scope).toBe('read');
      expect(await op.verifyAccessToken(second.body.access_token ?? '')).toMatchObject({ active: true });

      const replay = await tokenRequest(op, { grant_type: 'refresh_token', refresh_token: rt1 }, auth);
      expect(replay.body.error).toBe('invalid_grant');
      // Reuse detection revoked the whole grant: the newest refresh token and its access token die too.
      const afterReuse = await tokenRequest(op, { grant_type: 'refresh_token', refresh_token: rt2 }, auth);
      expect(afterReuse.body.error).toBe('invalid_grant');
      expect(await op.verifyAccessToken(second.body.access_token ?? '')).toMatchObject({ active: false });
    });

    it('keeps the resource of a password grant across refreshes', async () => {
      const auth = basic('ropc', 'ropc-secret');
      const first = await tokenRequest(
        op,
        { grant_type: 'password', username: 'alice', password: 'wonderland', scope: 'write', resource: API },
        auth,
      );
      expect(await op.verifyAccessToken(first.body.access_token ?? '')).toMatchObject({
        aud: API,
        scope: 'write',
      });
      const refreshed = await tokenRequest(
        op,
        { grant_type: 'refresh_token', refresh_token: first.body.refresh_token ?? '' },
        auth,
      );
      expect(refreshed.status).toBe(200);
      expect(await op.verifyAccessToken(refreshed.body.access_token ?? '')).toMatchObject({ aud: API });
    });
  });

  describe('authorization_code', () => {
    it('completes the dev login and consent pages and exchanges the code with PKCE', async () => {
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const url = new URL(op.authorizationUrl);
      url.search = new URLSearchParams({
        client_id: 'web',
        response_type: 'code',
        redirect_uri: 'https://localhost:9/oauth/redirect',
        scope: 'openid read',
        state: 'state-123',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }).toString();

      const callback = await authorizeThroughDevInteractions(url.toString(), 'alice');
      expect(callback.origin + callback.pathname).toBe('https://localhost:9/oauth/redirect');
      expect(callback.searchParams.get('state')).toBe('state-123');
      expect(callback.searchParams.get('iss')).toBe(op.issuer);
      const code = callback.searchParams.get('code') ?? '';
      expect(code).not.toBe('');

      const { status, body } = await tokenRequest(
        op,
        {
          grant_type: 'authorization_code',
          code,
          redirect_uri: 'https://localhost:9/oauth/redirect',
          code_verifier: verifier,
        },
        basic('web', 'web-secret'),
      );
      expect(status).toBe(200);
      expect(body.refresh_token).toBeTruthy();
      expect(op.tokenRequests.authorization_code).toBe(1);
    });

    function authorizationRequest(params: Record<string, string>): string {
      const url = new URL(op.authorizationUrl);
      url.search = new URLSearchParams({
        response_type: 'code',
        redirect_uri: 'https://localhost:9/oauth/redirect',
        state: 's',
        ...params,
      }).toString();
      return url.toString();
    }

    it('requires PKCE from a public client but not from a confidential one', async () => {
      const publicClient = await authorizeThroughDevInteractions(
        authorizationRequest({ client_id: 'spa', scope: 'read' }),
      );
      expect(publicClient.searchParams.get('error')).toBe('invalid_request');
      expect(publicClient.searchParams.get('code')).toBeNull();

      const confidential = await authorizeThroughDevInteractions(
        authorizationRequest({ client_id: 'web', scope: 'read' }),
      );
      const { status, body } = await tokenRequest(
        op,
        {
          grant_type: 'authorization_code',
          code: confidential.searchParams.get('code') ?? '',
          redirect_uri: 'https://localhost:9/oauth/redirect',
        },
        basic('web', 'web-secret'),
      );
      expect(status).toBe(200);
      expect(await op.verifyAccessToken(body.access_token ?? '')).toMatchObject({
        active: true,
        scope: 'read',
      });
    });

    it('turns an Auth0-style audience on the authorization request into the token audience', async () => {
      const callback = await authorizeThroughDevInteractions(
        authorizationRequest({ client_id: 'web', scope: 'read', audience: API }),
      );
      const { status, body } = await tokenRequest(
        op,
        {
          grant_type: 'authorization_code',
          code: callback.searchParams.get('code') ?? '',
          redirect_uri: 'https://localhost:9/oauth/redirect',
        },
        basic('web', 'web-secret'),
      );
      expect(status).toBe(200);
      expect(await op.verifyAccessToken(body.access_token ?? '')).toMatchObject({ active: true, aud: API });
    });
  });

  describe('counting and delay', () => {
    it('counts token requests by grant type, including failed ones, and revocations', async () => {
      op.setTokenDelay(50);
      const auth = basic('m2m-basic', 'basic-secret');
      await Promise.all([
        tokenRequest(op, { grant_type: 'client_credentials' }, auth),
        tokenRequest(op, { grant_type: 'client_credentials' }, auth),
        tokenRequest(
          op,
          { grant_type: 'password', username: 'alice', password: 'x' },
          basic('ropc', 'ropc-secret'),
        ),
      ]);
      expect(op.tokenRequests).toMatchObject({
        total: 3,
        client_credentials: 2,
        password: 1,
        refresh_token: 0,
      });

      const { body } = await tokenRequest(op, { grant_type: 'client_credentials' }, auth);
      const revoked = await fetch(op.revocationUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth },
        body: new URLSearchParams({ token: body.access_token ?? '' }),
      });
      expect(revoked.status).toBe(200);
      expect(op.revocations).toBe(1);
      expect(await op.verifyAccessToken(body.access_token ?? '')).toEqual({ active: false });

      op.resetCounts();
      expect(op.tokenRequests.total).toBe(0);
      expect(op.revocations).toBe(0);
    });

    it('reports an expired token as expired', async () => {
      const shortLived = await startOidcProvider({
        accessTokenTtl: 1,
        clients: [{ client_id: 'c', client_secret: 's', grant_types: ['client_credentials'] }],
      });
      try {
        const { body } = await tokenRequest(
          shortLived,
          { grant_type: 'client_credentials' },
          basic('c', 's'),
        );
        expect(body.expires_in).toBe(1);
        await new Promise((resolve) => setTimeout(resolve, 2100));
        expect(await shortLived.verifyAccessToken(body.access_token ?? '')).toMatchObject({
          active: false,
          expired: true,
        });
      } finally {
        await shortLived.close();
      }
    });
  });

  describe('API server', () => {
    async function clientCredentialsToken(): Promise<string> {
      const { body } = await tokenRequest(
        op,
        { grant_type: 'client_credentials', scope: 'read' },
        basic('m2m-basic', 'basic-secret'),
      );
      return body.access_token ?? '';
    }

    it('accepts a valid token and echoes the request', async () => {
      const token = await clientCredentialsToken();
      const res = await fetch(`${api.url}/echo?x=1`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
        body: 'hello',
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        method: 'POST',
        path: '/echo',
        query: { x: '1' },
        body: 'hello',
      });
      expect(api.requests).toHaveLength(1);
      expect(api.requests[0]).toMatchObject({ method: 'POST', path: '/echo', size: 5, token });
    });

    it('answers 401 invalid_token to a missing or unknown token', async () => {
      const missing = await fetch(`${api.url}/echo`);
      expect(missing.status).toBe(401);
      expect(missing.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
      const unknown = await fetch(`${api.url}/echo`, { headers: { authorization: 'Bearer not-a-token' } });
      expect(unknown.status).toBe(401);
    });

    it('can be forced to refuse a valid token', async () => {
      const token = await clientCredentialsToken();
      api.setBehaviour('always-401');
      expect((await fetch(`${api.url}/text`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
        401,
      );
      api.setBehaviour({ kind: 'unauthorized-next', count: 1 });
      expect((await fetch(`${api.url}/text`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
        401,
      );
      expect((await fetch(`${api.url}/text`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
        200,
      );
      api.setBehaviour({ kind: 'insufficient-scope', scope: 'write' });
      const forbidden = await fetch(`${api.url}/text`, { headers: { authorization: `Bearer ${token}` } });
      expect(forbidden.status).toBe(403);
      expect(forbidden.headers.get('www-authenticate')).toBe(
        'Bearer error="insufficient_scope", scope="write"',
      );
    });

    it('streams large responses and counts large uploads without keeping them', async () => {
      const token = await clientCredentialsToken();
      const headers = { authorization: `Bearer ${token}` };
      const large = await fetch(`${api.url}/large/3000000`, { headers });
      expect((await large.arrayBuffer()).byteLength).toBe(3_000_000);

      const sink = await fetch(`${api.url}/sink`, {
        method: 'POST',
        headers,
        body: Buffer.alloc(2_000_000, 1),
      });
      expect(await sink.json()).toEqual({ bytes: 2_000_000 });
      const recorded = api.requests.at(-1);
      expect(recorded).toMatchObject({ path: '/sink', size: 2_000_000, body: '' });

      const status = await fetch(`${api.url}/status/503`, { headers });
      expect(status.status).toBe(503);
      const redirect = await fetch(`${api.url}/redirect?to=${encodeURIComponent('https://localhost:9/x')}`, {
        headers,
        redirect: 'manual',
      });
      expect(redirect.status).toBe(302);
      expect(redirect.headers.get('location')).toBe('https://localhost:9/x');
    });

    it('serves plain HTTP when asked', async () => {
      const plain = await startApiServer({ http: true, verify: async () => true });
      try {
        expect(plain.url.startsWith('http://127.0.0.1:')).toBe(true);
        const res = await fetch(`${plain.url}/text`, { headers: { authorization: 'Bearer anything' } });
        expect(await res.text()).toBe('hello from the test API');
      } finally {
        await plain.close();
      }
    });
  });
});
