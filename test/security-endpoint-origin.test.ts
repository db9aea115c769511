import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { issueServerCertificate } from './support/tls.js';

/**
 * Write-only secrets stay write-only: moving an endpoint that receives a secret or a token to
 * another origin needs the secret in the same request, and drops the stored tokens, so neither the
 * client secret, the password nor the refresh token can be collected by re-pointing a URL.
 */
interface Seen {
  path: string;
  authorization: string | undefined;
  body: string;
}

interface TokenServer {
  origin: string;
  seen: Seen[];
  close(): Promise<void>;
}

async function startTokenServer(): Promise<TokenServer> {
  const seen: Seen[] = [];
  const server: Server = createServer(issueServerCertificate(['localhost']), (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      seen.push({ path: req.url ?? '', authorization: req.headers.authorization, body });
      if (req.url?.startsWith('/revoke')) {
        res.writeHead(200).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          access_token: `at-${randomBytes(8).toString('hex')}`,
          refresh_token: `rt-${randomBytes(8).toString('hex')}`,
          token_type: 'Bearer',
          expires_in: 3600,
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `https://localhost:${port}`,
    seen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const SECRET = 'client secret with spaces+:%/é';
const PASSWORD = 'p@ss word+:%/ü';

describe('moving a credential endpoint to another origin', () => {
  let g: GrantryHandle;
  let provider: TokenServer;
  let evil: TokenServer;

  beforeAll(async () => {
    g = await startGrantry();
    provider = await startTokenServer();
    evil = await startTokenServer();
  });
  afterAll(async () => {
    await g?.stop();
    await provider?.close();
    await evil?.close();
  });

  async function connectedPasswordAuthentication(): Promise<string> {
    const created = await g.api('POST', '/api/authentications', {
      name: `pw-${randomBytes(4).toString('hex')}`,
      type: 'oauth2',
      grantType: 'password',
      tokenUrl: `${provider.origin}/token`,
      revocationUrl: `${provider.origin}/revoke`,
      clientId: 'client',
      clientSecret: SECRET,
      username: 'alice',
      password: PASSWORD,
    });
    expect(created.status).toBe(201);
    const tested = await g.api('POST', `/api/authentications/${created.body.id}/test`);
    expect(tested.body.ok).toBe(true);
    expect(tested.body.token.hasRefreshToken).toBe(true);
    return created.body.id;
  }

  it('refuses to move tokenUrl or revocationUrl without the secrets, and changes nothing', async () => {
    const id = await connectedPasswordAuthentication();
    const before = (await g.api('GET', `/api/authentications/${id}`)).body;

    for (const field of ['tokenUrl', 'revocationUrl'] as const) {
      const moved = await g.api('PATCH', `/api/authentications/${id}`, {
        [field]: `${evil.origin}/${field}`,
      });
      expect(moved.status).toBe(400);
      expect(moved.body.error.code).toBe('validation_failed');
      expect(moved.body.error.errors).toEqual(
        expect.arrayContaining([
          {
            path: '/clientSecret',
            message: expect.stringContaining(`${field} (${provider.origin} → ${evil.origin})`),
          },
          { path: '/password', message: expect.stringContaining('send the password again') },
        ]),
      );
      // The secret alone is not enough for the Password grant.
      const halfway = await g.api('PATCH', `/api/authentications/${id}`, {
        [field]: `${evil.origin}/${field}`,
        clientSecret: SECRET,
      });
      expect(halfway.status).toBe(400);
      expect(halfway.body.error.errors).toEqual([{ path: '/password', message: expect.any(String) }]);
    }
    const after = (await g.api('GET', `/api/authentications/${id}`)).body;
    expect(after.tokenUrl).toBe(before.tokenUrl);
    expect(after.revocationUrl).toBe(before.revocationUrl);
    expect(after.token).toEqual(before.token);

    expect((await g.api('POST', `/api/authentications/${id}/test`)).body.ok).toBe(true);
    expect((await g.api('DELETE', `/api/authentications/${id}`)).status).toBe(204);
    expect(evil.seen).toEqual([]);
  });

  it('with the secrets in the same request it moves, drops the stored tokens, and the old refresh token never reaches the new origin', async () => {
    const id = await connectedPasswordAuthentication();
    const moved = await g.api('PATCH', `/api/authentications/${id}`, {
      revocationUrl: `${evil.origin}/revoke`,
      clientSecret: SECRET,
      password: PASSWORD,
    });
    expect(moved.status).toBe(200);
    expect(moved.body.token).toBeNull();
    const events = (await g.api('GET', `/api/authentications/${id}/events`)).body.items;
    expect(events[0]).toMatchObject({
      type: 'configuration_changed',
      detail: { tokensDropped: true, endpointsMovedToAnotherOrigin: ['revocationUrl'] },
    });
    expect((await g.api('DELETE', `/api/authentications/${id}`)).status).toBe(204);
    // Nothing was stored any more, so nothing was revoked there: no token ever went to the new origin.
    expect(evil.seen).toEqual([]);
  });

  it('refuses to move authorizationUrl of an Authorization Code authentication without the client secret', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: `ac-${randomBytes(4).toString('hex')}`,
      type: 'oauth2',
      grantType: 'authorization_code',
      authorizationUrl: `${provider.origin}/authorize`,
      tokenUrl: `${provider.origin}/token`,
      clientId: 'client',
      clientSecret: SECRET,
    });
    const id = created.body.id;
    const moved = await g.api('PATCH', `/api/authentications/${id}`, {
      authorizationUrl: `${evil.origin}/authorize`,
    });
    expect(moved.status).toBe(400);
    expect(moved.body.error.errors).toEqual([
      { path: '/clientSecret', message: expect.stringContaining('authorizationUrl') },
    ]);
    const authorize = await g.api('POST', `/api/authentications/${id}/authorize`);
    expect(new URL(authorize.body.authorizationUrl).origin).toBe(provider.origin);
  });

  it('a change within the same origin needs no secret and keeps the tokens when it does not shape them', async () => {
    const id = await connectedPasswordAuthentication();
    const token = (await g.api('GET', `/api/authentications/${id}`)).body.token;
    const samePath = await g.api('PATCH', `/api/authentications/${id}`, {
      revocationUrl: `${provider.origin}/revoke/v2`,
    });
    expect(samePath.status).toBe(200);
    expect(samePath.body.token).toEqual(token);
    const tokenPath = await g.api('PATCH', `/api/authentications/${id}`, {
      tokenUrl: `${provider.origin}/token/v2`,
    });
    expect(tokenPath.status).toBe(200);
    expect((await g.api('POST', `/api/authentications/${id}/test`)).body.ok).toBe(true);
    expect(provider.seen.at(-1)?.path).toBe('/token/v2');
    expect(evil.seen).toEqual([]);
  });
});
