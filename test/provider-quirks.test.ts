import { createServer, type Server } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { issueServerCertificate } from './support/tls.js';

/**
 * Real providers break strict OAuth parsers. Each route of this small HTTPS token endpoint
 * answers the way the named provider does; Grantry must use (or refuse, with the right words)
 * every answer through the whole engine: POST /api/authentications/:id/test.
 */
type Answer = { status: number; type: string; body: string; headers?: Record<string, string> };

const quirks: Record<string, (hit: number) => Answer> = {
  // GitHub without Accept: application/json answers a form-encoded body.
  'github-form': () => ({
    status: 200,
    type: 'application/x-www-form-urlencoded; charset=utf-8',
    body: 'access_token=gho_form_token&scope=repo&token_type=bearer',
  }),
  // GitHub and Slack answer errors with HTTP 200.
  'github-error-200': () => ({
    status: 200,
    type: 'application/json',
    body: '{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect."}',
  }),
  'slack-ok-false': () => ({
    status: 200,
    type: 'application/json',
    body: '{"ok":false,"error":"bad_client_secret"}',
  }),
  // Azure AD v1 sends expires_in as a string.
  'azure-v1': () => ({
    status: 200,
    type: 'application/json; charset=utf-8',
    body: '{"token_type":"Bearer","expires_in":"3599","ext_expires_in":"3599","access_token":"azure-token"}',
  }),
  // Salesforce (and Zendesk) send no expires_in: the expiry is unknown.
  salesforce: () => ({
    status: 200,
    type: 'application/json',
    body: '{"access_token":"00D-sf-token","instance_url":"https://x.my.salesforce.com","token_type":"Bearer","issued_at":"1700000000000"}',
  }),
  // Keycloak spells the token type in lower case.
  keycloak: () => ({
    status: 200,
    type: 'application/json',
    body: '{"access_token":"kc-token","expires_in":300,"token_type":"bearer","not-before-policy":0,"scope":"profile"}',
  }),
  // A web page instead of a token endpoint (a wrong Token URL).
  'html-page': () => ({
    status: 200,
    type: 'text/html',
    body: '<!doctype html><html><head><title>Sign in</title></head><body>Welcome</body></html>',
  }),
  // A gateway answering HTML labelled as JSON.
  'html-as-json': () => ({
    status: 502,
    type: 'application/json',
    body: '<html><body>Bad Gateway</body></html>',
  }),
  'no-access-token': () => ({
    status: 200,
    type: 'application/json',
    body: '{"token_type":"Bearer","expires_in":60}',
  }),
  // A busy provider that says when to come back (Okta and Auth0 rate limits).
  'busy-then-ok': (hit) =>
    hit < 3
      ? { status: 503, type: 'text/plain', body: 'busy', headers: { 'retry-after': '1' } }
      : { status: 200, type: 'application/json', body: '{"access_token":"after-busy","expires_in":60}' },
  'rate-limited-long': () => ({
    status: 429,
    type: 'application/json',
    body: '{"error":"too_many_requests"}',
    headers: { 'retry-after': '120' },
  }),
};

describe('provider quirks through the token engine', () => {
  let server: Server;
  let base = '';
  const hits = new Map<string, number>();
  let g: GrantryHandle;

  beforeAll(async () => {
    const { cert, key } = issueServerCertificate();
    server = createServer({ cert, key }, (req, res) => {
      const name = (req.url ?? '').split('/')[1] ?? '';
      const hit = (hits.get(name) ?? 0) + 1;
      hits.set(name, hit);
      req.resume();
      const quirk = quirks[name];
      if (quirk === undefined) {
        res.writeHead(404).end();
        return;
      }
      const answer = quirk(hit);
      res.writeHead(answer.status, { 'content-type': answer.type, ...answer.headers }).end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    base = `https://localhost:${typeof address === 'object' && address !== null ? address.port : 0}`;
    g = await startGrantry();
  });
  afterAll(async () => {
    await g.stop();
    server.close();
  });

  async function test(name: string, extra: Record<string, unknown> = {}) {
    const auth = await g.api('POST', '/api/authentications', {
      name,
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: `${base}/${name}/token`,
      clientId: 'c',
      clientSecret: 's',
      ...extra,
    });
    expect(auth.status, auth.text).toBe(201);
    const result = await g.api('POST', `/api/authentications/${auth.body.id}/test`);
    return { id: auth.body.id as string, result: result.body };
  }

  it('GitHub: accepts a form-encoded token response', async () => {
    const { result } = await test('github-form');
    expect(result).toMatchObject({ ok: true, token: { scope: 'repo', expiresAt: null } });
  });

  it('GitHub: an error body with HTTP 200 is an error', async () => {
    const { result } = await test('github-error-200');
    expect(result.ok).toBe(false);
    expect(result.error).toMatchObject({
      code: 'invalid_client',
      provider: { status: 200, error: 'incorrect_client_credentials' },
    });
  });

  it('Slack: {"ok":false,"error":…} with HTTP 200 is an error', async () => {
    const { result } = await test('slack-ok-false');
    expect(result.error.code).toBe('invalid_client');
  });

  it('Azure AD v1: expires_in as a string still gives an expiry', async () => {
    const { result } = await test('azure-v1');
    expect(result.ok).toBe(true);
    const lifetime = Date.parse(result.token.expiresAt) - Date.parse(result.token.obtainedAt);
    expect(lifetime).toBeGreaterThan(3_500_000);
    expect(lifetime).toBeLessThanOrEqual(3_599_000);
  });

  it('Salesforce: no expires_in means an unknown expiry, and the token is used until a 401', async () => {
    const { id, result } = await test('salesforce');
    expect(result).toMatchObject({ ok: true, token: { expiresAt: null } });
    const before = hits.get('salesforce');
    const token = await (g as any).app.tokens.get(id);
    expect(token.authorization).toBe('Bearer 00D-sf-token');
    expect(hits.get('salesforce')).toBe(before);
  });

  it('Keycloak: a lower-case token_type does not change the configured header prefix', async () => {
    const { id, result } = await test('keycloak');
    expect(result.ok).toBe(true);
    expect((await (g as any).app.tokens.get(id)).authorization).toBe('Bearer kc-token');
    await g.api('PATCH', `/api/authentications/${id}`, { headerPrefix: 'Token' });
    expect((await (g as any).app.tokens.get(id)).authorization).toBe('Token kc-token');
  });

  it('an HTML page is refused with token_fetch_failed and a hint about the Token URL', async () => {
    const { result } = await test('html-page');
    expect(result.error).toMatchObject({ code: 'token_fetch_failed', provider: { status: 200 } });
    expect(result.error.message).toMatch(/HTML/);
    expect(result.error.hint).toMatch(/web page|Token URL/i);
  });

  it('HTML labelled as JSON is refused with the HTTP status', async () => {
    const { result } = await test('html-as-json');
    expect(result.error).toMatchObject({ code: 'token_fetch_failed', provider: { status: 502 } });
  });

  it('a 200 without access_token is refused', async () => {
    const { result } = await test('no-access-token');
    expect(result.error).toMatchObject({ code: 'token_fetch_failed', provider: { status: 200 } });
  });

  it('a 503 with Retry-After is retried after the delay it asks for, within bounds', async () => {
    const { result } = await test('busy-then-ok');
    expect(result.ok).toBe(true);
    expect(hits.get('busy-then-ok')).toBe(3);
  });

  it('a 429 asking for minutes is not waited for: reported at once, then backed off', async () => {
    const { id, result } = await test('rate-limited-long');
    expect(result.ok).toBe(false);
    expect(result.error.code).toBe('token_fetch_failed');
    expect(hits.get('rate-limited-long')).toBe(1);
    await expect((g as any).app.tokens.get(id)).rejects.toMatchObject({ code: 'token_fetch_failed' });
    expect(hits.get('rate-limited-long')).toBe(1);
  });
});
