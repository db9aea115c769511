import { randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startGrantry } from './support/grantry.js';
import { authorizeThroughDevInteractions, type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * The console and the deployment: a strict CSP and no framing on the console's pages, no source
 * maps in production, the flow cookie under the public URL's path prefix (a prefixed deployment
 * connects end to end), error codes visible in logs, and a database file only its owner can read.
 */
const distAssets = join('web', 'dist', 'assets');

describe('the console’s pages', () => {
  let g: Awaited<ReturnType<typeof startGrantry>>;
  beforeAll(async () => {
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
  });

  it('carry a strict Content-Security-Policy and refuse to be framed, on / and on the console’s own routes', async () => {
    for (const path of ['/', '/security/authorization', '/integrations/connectors']) {
      const response = await fetch(`${g.url}${path}`);
      expect(response.status).toBe(200);
      const csp = response.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("object-src 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const html = await response.text();
      // Nothing inline that the policy would have to allow.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/\sstyle="/);
    }
  });

  it('serves source maps in development only', async () => {
    const map = readdirSync(distAssets).find((name) => name.endsWith('.js.map'));
    expect(map).toBeDefined();
    const served = await fetch(`${g.url}/assets/${map}`);
    expect(served.status).toBe(200);
    await served.arrayBuffer();
    const production = await startGrantry({ env: { NODE_ENV: 'production' } });
    try {
      const refused = await fetch(`${production.url}/assets/${map}`);
      expect(refused.status).toBe(404);
      expect(await refused.text()).not.toContain('sourcesContent');
      const script = map?.replace(/\.map$/, '') ?? '';
      const scriptAnswer = await fetch(`${production.url}/assets/${script}`);
      expect(scriptAnswer.status).toBe(200);
      await scriptAnswer.arrayBuffer();
    } finally {
      await production.stop();
    }
  });
});

describe('a deployment under a path prefix (GRANTRY_PUBLIC_URL=https://host/grantry)', () => {
  const CLIENT = { client_id: 'prefixed-app', client_secret: 'prefixed-secret' };
  let oidc: OidcFixture;
  let g: Awaited<ReturnType<typeof startGrantry>>;
  let proxy: Server;
  let publicUrl: string;

  beforeAll(async () => {
    // The reverse proxy in front: /grantry/<x> → Grantry's /<x>.
    const proxyPort = await freePort();
    publicUrl = `http://localhost:${proxyPort}/grantry`;
    oidc = await startOidcProvider({
      clients: [
        {
          ...CLIENT,
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [`${publicUrl}/oauth/redirect`],
          scope: 'openid',
        },
      ],
    });
    g = await startGrantry({ env: { GRANTRY_PUBLIC_URL: publicUrl } });
    const upstream = new URL(g.url);
    proxy = createServer((req, res) => {
      const path = req.url ?? '/';
      if (!path.startsWith('/grantry/')) {
        res.writeHead(404).end();
        return;
      }
      const forward = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: path.slice('/grantry'.length),
          headers: req.headers,
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(forward);
    });
    await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    proxy?.closeAllConnections();
    await new Promise((resolve) => proxy?.close(resolve));
    await g?.stop();
    await oidc?.close();
  });

  it('binds the flow with a cookie the browser sends back to <prefix>/oauth/redirect, and connects', async () => {
    const { port } = proxy.address() as AddressInfo;
    const base = `http://localhost:${port}/grantry`;
    const created = await fetch(`${base}/api/authentications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${g.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'prefixed',
        type: 'oauth2',
        grantType: 'authorization_code',
        authorizationUrl: oidc.authorizationUrl,
        tokenUrl: oidc.tokenUrl,
        clientId: CLIENT.client_id,
        clientSecret: CLIENT.client_secret,
        scope: 'openid',
      }),
    });
    const auth = (await created.json()) as { id: string; redirectUri: string };
    expect(auth.redirectUri).toBe(`${publicUrl}/oauth/redirect`);
    const started = await fetch(`${base}/api/authentications/${auth.id}/authorize`, {
      method: 'POST',
      headers: { authorization: `Bearer ${g.apiKey}` },
    });
    const setCookie = started.headers.getSetCookie();
    expect(setCookie).toHaveLength(1);
    expect(setCookie[0]).toContain('Path=/grantry/oauth;');

    // A browser sends a cookie only to paths below its Path (RFC 6265 §5.1.4).
    const jar = setCookie.map((line) => {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const path = attributes.find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      return { pair, path };
    });
    const { authorizationUrl } = (await started.json()) as { authorizationUrl: string };
    const callback = await authorizeThroughDevInteractions(authorizationUrl);
    expect(callback.pathname).toBe('/grantry/oauth/redirect');
    const cookie = jar
      .filter((c) => callback.pathname === c.path || callback.pathname.startsWith(`${c.path}/`))
      .map((c) => c.pair)
      .join('; ');
    const finished = await fetch(callback, { headers: cookie === '' ? {} : { cookie } });
    expect(finished.status, await finished.clone().text()).toBe(200);
    const after = await fetch(`${base}/api/authentications/${auth.id}`, {
      headers: { authorization: `Bearer ${g.apiKey}` },
    });
    expect(((await after.json()) as { status: string }).status).toBe('connected');
  });
});

describe('logs and files', () => {
  it('keeps error codes in the log and never an authorization code', async () => {
    const g = await startGrantry();
    try {
      // A revocation endpoint that refuses: the failure is logged with its code.
      const revocation = createServer((_req, res) => {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":"unsupported_token_type"}');
      });
      await new Promise<void>((resolve) => revocation.listen(0, '127.0.0.1', resolve));
      const { port } = revocation.address() as AddressInfo;
      const created = await g.api('POST', '/api/authentications', {
        name: 'log-codes',
        type: 'oauth2',
        grantType: 'client_credentials',
        tokenUrl: `http://127.0.0.1:${port}/token`,
        revocationUrl: `http://127.0.0.1:${port}/revoke`,
        clientId: 'id',
        clientSecret: 'secret',
      });
      await g.app.store.tokens.compareAndSwap(created.body.id, null, {
        accessToken: g.app.keyRing.seal('at', {
          table: 'tokens',
          id: created.body.id,
          column: 'access_token',
        }),
        tokenType: 'Bearer',
        scope: null,
        obtainedAt: Date.now(),
        expiresAt: Date.now() + 60_000,
        refreshToken: null,
        generation: 1,
      });
      expect((await g.api('DELETE', `/api/authentications/${created.body.id}`)).status).toBe(204);
      const code = `oauth-code-${randomBytes(8).toString('hex')}`;
      await fetch(`${g.url}/oauth/redirect?code=${code}&state=nothing`);
      g.app.logger.info({ query: { code } }, 'a line that carries an authorization code');
      await new Promise((resolve) => revocation.close(resolve));
      await g.stop();
      const log = readFileSync(g.logFile, 'utf8');
      const revocationLine = log.split('\n').find((line) => line.includes('"revocation_failed"'));
      expect(revocationLine).toBeDefined();
      expect(JSON.parse(revocationLine ?? '{}').code).toMatch(/^[a-z_]+$/);
      expect(log).not.toContain(code);
    } finally {
      await g.stop().catch(() => {});
    }
  });

  it('creates the SQLite database readable by its owner only, and tightens an old one', async () => {
    const masterKey = randomBytes(32).toString('base64');
    const g = await startGrantry({ masterKey });
    const db = join(g.dataDir, 'grantry.db');
    await g.api('POST', '/api/connectors', { name: 'x', baseUrl: 'https://api.example.test' });
    try {
      for (const file of [db, `${db}-wal`]) expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      await g.stop();
    }
    // A database an older version left world-readable is tightened at the next start.
    chmodSync(db, 0o644);
    const again = await startGrantry({ masterKey, dataDir: g.dataDir });
    try {
      expect(statSync(db).mode & 0o777).toBe(0o600);
    } finally {
      await again.stop();
    }
  });
});
