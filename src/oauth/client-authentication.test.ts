import { describe, expect, it } from 'vitest';
import { applyClientAuthentication } from './client-authentication.js';
import { isProtocolParameter, type OAuthClientConfig, PROTOCOL_PARAMETERS } from './client-config.js';
import { prepareTokenRequest } from './token-request.js';

const SPECIAL_SECRET = 'a:b&c+d%e=f/g h';

/** The RFC 6749 §2.3.1 decoding a conforming server applies to each half of the Basic credentials. */
function formDecode(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, '%20'));
}

function basicHalves(headers: Headers): [string, string] {
  const authorization = headers.get('authorization') ?? '';
  expect(authorization).toMatch(/^Basic [A-Za-z0-9+/]+=*$/);
  const decoded = Buffer.from(authorization.slice('Basic '.length), 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  return [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

const config: OAuthClientConfig = {
  tokenUrl: 'https://auth.example.com/oauth/token',
  clientId: 'client:one',
  clientSecret: SPECIAL_SECRET,
  clientAuthMethod: 'client_secret_basic',
  audienceParam: 'audience',
};

describe('client authentication (RFC 6749 §2.3.1)', () => {
  it('client_secret_basic form-urlencodes id and secret before base64, so : & + % = / and space survive', async () => {
    const body = new URLSearchParams();
    const headers = new Headers();
    await applyClientAuthentication(config, body, headers);
    const [id, secret] = basicHalves(headers);
    // Encoded halves carry no raw ':' — the first colon separates id from secret.
    expect(id).toBe('client%3Aone');
    expect(secret).toBe('a%3Ab%26c%2Bd%25e%3Df%2Fg+h');
    expect(formDecode(id)).toBe('client:one');
    expect(formDecode(secret)).toBe(SPECIAL_SECRET);
    expect([...body.keys()]).toEqual([]);
  });

  it('client_secret_basic does not also send client_id or client_secret in the body', async () => {
    const body = new URLSearchParams({ client_id: 'stale', client_secret: 'stale' });
    const headers = new Headers();
    await applyClientAuthentication(config, body, headers);
    expect(body.has('client_id')).toBe(false);
    expect(body.has('client_secret')).toBe(false);
  });

  it('client_secret_post sends both in the body and no Authorization header', async () => {
    const body = new URLSearchParams();
    const headers = new Headers();
    await applyClientAuthentication({ ...config, clientAuthMethod: 'client_secret_post' }, body, headers);
    expect(headers.has('authorization')).toBe(false);
    expect(body.get('client_id')).toBe('client:one');
    expect(body.get('client_secret')).toBe(SPECIAL_SECRET);
    // URLSearchParams does the form encoding on the wire and back.
    expect(new URLSearchParams(body.toString()).get('client_secret')).toBe(SPECIAL_SECRET);
  });
});

describe('prepareTokenRequest', () => {
  it('sends Accept: application/json and a form Content-Type', async () => {
    const { headers, url } = await prepareTokenRequest(config, {
      grantType: 'client_credentials',
      parameters: {},
      includeScope: true,
    });
    expect(url).toBe(config.tokenUrl);
    expect(headers.get('accept')).toBe('application/json');
    expect(headers.get('content-type')).toBe('application/x-www-form-urlencoded');
  });

  it('sends the audience as `audience` by default and scope as given', async () => {
    const { body } = await prepareTokenRequest(
      { ...config, audience: 'https://api.example.com', scope: 'read  write:all' },
      { grantType: 'client_credentials', parameters: {}, includeScope: true },
    );
    expect(body.get('audience')).toBe('https://api.example.com');
    expect(body.has('resource')).toBe(false);
    expect(body.get('scope')).toBe('read  write:all');
    expect(body.get('grant_type')).toBe('client_credentials');
  });

  it('sends the audience as RFC 8707 `resource` when audienceParam is resource', async () => {
    const { body } = await prepareTokenRequest(
      { ...config, audience: 'https://api.example.com', audienceParam: 'resource' },
      { grantType: 'client_credentials', parameters: {}, includeScope: true },
    );
    expect(body.get('resource')).toBe('https://api.example.com');
    expect(body.has('audience')).toBe(false);
  });

  it('leaves the scope out when the grant says so (refresh, code exchange)', async () => {
    const { body } = await prepareTokenRequest(
      { ...config, scope: 'read' },
      { grantType: 'refresh_token', parameters: { refresh_token: 'rt' }, includeScope: false },
    );
    expect(body.has('scope')).toBe(false);
    expect(body.get('refresh_token')).toBe('rt');
  });

  it('extraTokenParams are added but never override protocol parameters or the audience', async () => {
    const { body, headers } = await prepareTokenRequest(
      {
        ...config,
        audience: 'https://api.example.com',
        scope: 'read',
        extraTokenParams: {
          tenant: 'acme',
          grant_type: 'password',
          client_id: 'other-client',
          client_secret: 'other-secret',
          scope: 'admin',
          Username: 'mallory',
          audience: 'https://evil.example.com',
        },
      },
      { grantType: 'client_credentials', parameters: {}, includeScope: true },
    );
    expect(body.get('tenant')).toBe('acme');
    expect(body.get('grant_type')).toBe('client_credentials');
    expect(body.has('client_id')).toBe(false);
    expect(body.has('client_secret')).toBe(false);
    expect(body.get('scope')).toBe('read');
    expect(body.has('Username')).toBe(false);
    expect(body.get('audience')).toBe('https://api.example.com');
    const [id] = basicHalves(headers);
    expect(formDecode(id)).toBe('client:one');
  });

  it('PROTOCOL_PARAMETERS lists every RFC 6749 / RFC 7636 parameter name the API must refuse as extra', () => {
    for (const name of [
      'grant_type',
      'code',
      'redirect_uri',
      'client_id',
      'client_secret',
      'refresh_token',
      'code_verifier',
      'username',
      'password',
      'scope',
      'state',
    ]) {
      expect(PROTOCOL_PARAMETERS).toContain(name);
    }
    expect(isProtocolParameter('Grant_Type')).toBe(true);
    expect(isProtocolParameter('tenant')).toBe(false);
  });
});
