import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presetProblems, readPresetFiles } from '../src/providers/provider-catalogue.js';
import type { ProviderPreset } from '../src/providers/provider-preset.js';
import { renderProvidersDoc } from '../src/providers/providers-doc.js';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { issueServerCertificate } from './support/tls.js';

const presets = readPresetFiles();
const byId = new Map(presets.map((p) => [p.id, p]));

describe('the provider preset files', () => {
  it('are at least 60, each valid against the JSON Schema, with its documentation pages', () => {
    expect(presets.length).toBeGreaterThanOrEqual(60);
    for (const preset of presets) {
      expect(preset.docs.setup, preset.id).toMatch(/^https:\/\//);
      expect(preset.docs.endpoints, preset.id).toMatch(/^https:\/\//);
    }
  });

  it('cover the providers people arrive with, of every kind', () => {
    for (const id of [
      'google',
      'microsoft-entra-id',
      'salesforce',
      'salesforce-sandbox',
      'hubspot',
      'github',
      'gitlab',
      'slack',
      'atlassian',
      'xero',
      'zoom',
      'okta',
      'auth0',
      'keycloak',
      'quickbooks',
      'zendesk',
      'box',
      'docusign',
      'linkedin',
      'notion',
      'asana',
      'shopify',
      'servicenow',
      'spotify',
      'discord',
      'twitch',
      'calendly',
      'miro',
      'linear',
      'monday',
      'pipedrive',
      'zoho',
      'stripe',
      'sendgrid',
      'twilio',
      'mailchimp',
    ]) {
      expect(byId.has(id), id).toBe(true);
    }
    expect(new Set(presets.map((p) => p.type))).toEqual(new Set(['oauth2', 'api_key', 'basic', 'bearer']));
    expect(byId.get('stripe')?.type).toBe('api_key');
    expect(byId.get('sendgrid')?.type).toBe('api_key');
    expect(byId.get('twilio')?.type).toBe('basic');
  });

  it('are checked: a duplicate id, an http URL, an undescribed placeholder or a missing docs link is a problem', () => {
    const good = structuredClone(byId.get('microsoft-entra-id') as ProviderPreset);
    const entries = presets.map((value) => ({ file: `${value.id}.json`, value }));
    expect(presetProblems(entries)).toEqual([]);
    const http = { ...structuredClone(good), tokenUrl: 'http://login.example.test/token' };
    const unknown = { ...structuredClone(good), tokenUrl: 'https://login.example.test/{region}/token' };
    const unused = {
      ...structuredClone(good),
      placeholders: [...good.placeholders, { name: 'region', label: 'Region', example: 'eu' }],
    };
    const noDocs = { ...structuredClone(good), docs: { setup: 'https://x.example/setup' } };
    const problems = presetProblems([
      { file: 'microsoft-entra-id.json', value: good },
      { file: 'copy.json', value: { ...structuredClone(good), id: 'microsoft-entra-id' } },
      { file: 'microsoft-entra-id.json', value: http },
      { file: 'microsoft-entra-id.json', value: unknown },
      { file: 'microsoft-entra-id.json', value: unused },
      { file: 'microsoft-entra-id.json', value: noDocs },
    ]);
    expect(problems.join('\n')).toMatch(/copy\.json: id "microsoft-entra-id" is not the file name/);
    expect(problems.join('\n')).toMatch(/also the id of/);
    expect(problems.join('\n')).toMatch(/\/tokenUrl/);
    expect(problems.join('\n')).toMatch(/\{region\} is used but not described/);
    expect(problems.join('\n')).toMatch(/placeholder region is never used/);
    expect(problems.join('\n')).toMatch(/\/docs\/endpoints/);
  });

  it('docs/providers.md is generated from them and up to date (npm run docs:providers)', () => {
    const committed = readFileSync(new URL('../docs/providers.md', import.meta.url), 'utf8');
    expect(committed).toBe(renderProvidersDoc(presets));
  });
});

/**
 * A token endpoint that behaves as the named preset's provider documents (its `quirks`), and that
 * refuses a request whose client authentication is not the one the preset says the provider takes:
 * so a preset is proven to work with the behaviour it claims. Route: /<preset id>/token.
 */
interface QuirkServer {
  url: string;
  refreshTokensSeen: Map<string, string[]>;
  close(): Promise<void>;
}

async function startQuirkServer(): Promise<QuirkServer> {
  const refreshTokensSeen = new Map<string, string[]>();
  let issued = 0;
  const server: Server = createServer(issueServerCertificate(['localhost']), (req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      const id = (req.url ?? '').split('/')[1] ?? '';
      const preset = byId.get(id);
      const form = new URLSearchParams(body);
      const answer = (status: number, type: string, text: string) => {
        res.writeHead(status, { 'content-type': type });
        res.end(text);
      };
      if (preset === undefined) return answer(404, 'text/plain', 'no such preset');
      const basic = (req.headers.authorization ?? '').startsWith('Basic ');
      const post = form.has('client_secret');
      const method = preset.clientAuthMethod;
      if (
        (method === 'client_secret_post' && (!post || basic)) ||
        (method === 'client_secret_basic' && !basic)
      ) {
        return answer(
          401,
          'application/json',
          '{"error":"invalid_client","error_description":"wrong client auth"}',
        );
      }
      issued += 1;
      const quirks = new Set(preset.quirks);
      const fields: Record<string, string | number> = {
        access_token: `${id}-access-${issued}`,
        token_type: quirks.has('lowercase_token_type') ? 'bearer' : 'Bearer',
      };
      if (!quirks.has('no_expires_in')) fields.expires_in = quirks.has('string_expires_in') ? '3600' : 3600;
      if (form.get('grant_type') === 'refresh_token') {
        const seen = refreshTokensSeen.get(id) ?? [];
        seen.push(form.get('refresh_token') ?? '');
        refreshTokensSeen.set(id, seen);
        if (!quirks.has('keeps_refresh_token')) fields.refresh_token = `${id}-refresh-${issued}`;
      } else {
        fields.refresh_token = `${id}-refresh-${issued}`;
      }
      if (quirks.has('form_encoded_response')) {
        const text = new URLSearchParams(Object.entries(fields).map(([k, v]) => [k, String(v)])).toString();
        return answer(200, 'application/x-www-form-urlencoded', text);
      }
      return answer(200, 'application/json', JSON.stringify(fields));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://localhost:${port}`,
    refreshTokensSeen,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function exampleParams(preset: ProviderPreset): Record<string, string> {
  return Object.fromEntries(
    preset.placeholders.map((p) => [p.name, p.example.replace(/[^A-Za-z0-9._:-]/g, '')]),
  );
}

describe('provider presets through the API', () => {
  let g: GrantryHandle;
  let quirks: QuirkServer;
  let api: ApiFixture;
  beforeAll(async () => {
    g = await startGrantry();
    quirks = await startQuirkServer();
    api = await startApiServer({ verify: async (token) => token.includes('-access-') });
  });
  afterAll(async () => {
    await g?.stop();
    await quirks?.close();
    await api?.close();
  });

  it('lists every preset with the redirect URI to register, and answers one by id', async () => {
    const list = await g.api('GET', '/api/providers');
    expect(list.status).toBe(200);
    expect(list.body.items).toHaveLength(presets.length);
    expect(list.body.redirectUri).toMatch(/\/oauth\/redirect$/);
    const one = await g.api('GET', '/api/providers/microsoft-entra-id');
    expect(one.body).toEqual(byId.get('microsoft-entra-id'));
    const missing = await g.api('GET', '/api/providers/nope');
    expect(missing.status).toBe(404);
  });

  it('creates from a preset with placeholders; explicit fields win; the authentication keeps its provider', async () => {
    const created = await g.api('POST', '/api/authentications', {
      provider: 'microsoft-entra-id',
      providerParams: { tenant: 'contoso.onmicrosoft.com' },
      name: 'Graph (contoso)',
      clientId: 'app-id',
      clientSecret: 'app-secret',
      scope: 'https://graph.microsoft.com/.default',
      grantType: 'client_credentials',
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
      clientAuthMethod: 'client_secret_post',
      scope: 'https://graph.microsoft.com/.default',
      provider: 'microsoft-entra-id',
      providerParams: { tenant: 'contoso.onmicrosoft.com' },
    });
    const patched = await g.api('PATCH', `/api/authentications/${created.body.id}`, { provider: 'google' });
    expect(patched.body.error.errors).toEqual([
      { path: '/provider', message: expect.stringContaining('cannot change') },
    ]);

    const stripe = await g.api('POST', '/api/authentications', { provider: 'stripe', apiKey: 'sk_test_123' });
    expect(stripe.status, stripe.text).toBe(201);
    expect(stripe.body).toMatchObject({
      name: byId.get('stripe')?.name,
      type: 'api_key',
      apiKeyIn: 'header',
      apiKeyName: 'Authorization',
      apiKeyPrefix: 'Bearer',
      apiKeySet: true,
    });
  });

  it('names an unknown preset, a missing or malformed placeholder, an unknown one, and a type the preset is not', async () => {
    const unknown = await g.api('POST', '/api/authentications', { provider: 'nope', clientId: 'x' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.errors).toEqual(
      expect.arrayContaining([
        { path: '/provider', message: expect.stringContaining('not a known provider preset') },
      ]),
    );
    const missing = await g.api('POST', '/api/authentications', {
      provider: 'microsoft-entra-id',
      clientId: 'x',
      clientSecret: 'y',
      providerParams: { region: 'eu' },
    });
    expect(missing.status).toBe(400);
    expect(missing.body.error.errors).toEqual(
      expect.arrayContaining([
        { path: '/providerParams/tenant', message: expect.stringContaining('is required by the') },
        { path: '/providerParams/region', message: expect.stringContaining('is not a placeholder') },
      ]),
    );
    const hostile = await g.api('POST', '/api/authentications', {
      provider: 'okta',
      clientId: 'x',
      clientSecret: 'y',
      providerParams: { ...exampleParams(byId.get('okta') as ProviderPreset), domain: 'evil.example/x?' },
    });
    expect(hostile.status).toBe(400);
    expect(hostile.body.error.errors).toEqual(
      expect.arrayContaining([
        { path: '/providerParams/domain', message: expect.stringContaining('letters, digits') },
      ]),
    );
    const wrongType = await g.api('POST', '/api/authentications', { provider: 'stripe', type: 'basic' });
    expect(wrongType.body.error.errors).toEqual(
      expect.arrayContaining([
        { path: '/type', message: expect.stringContaining('is a api_key authentication') },
      ]),
    );
  });

  const quirky = presets.filter((p) => p.type === 'oauth2' && p.quirks.length > 0);

  it('has presets that claim a quirk the engine handles', () => {
    expect(quirky.length).toBeGreaterThan(3);
  });

  it.each(quirky.map((p) => [p.id, p.quirks.join(', ')]))(
    '%s works with the behaviour it claims (%s), with its own client authentication',
    async (id) => {
      const preset = byId.get(id) as ProviderPreset;
      const created = await g.api('POST', '/api/authentications', {
        provider: id,
        providerParams: exampleParams(preset),
        name: `quirk ${id}`,
        // The preset's configuration, pointed at the endpoint that behaves like the provider; the
        // Client Credentials grant gets a token without a person (the quirks are of the token answer).
        grantType: 'client_credentials',
        tokenUrl: `${quirks.url}/${id}/token`,
        clientId: `${id}-client`,
        clientSecret: `${id}-secret`,
      });
      expect(created.status, created.text).toBe(201);
      const authId = created.body.id;
      const tested = await g.api('POST', `/api/authentications/${authId}/test`);
      expect(tested.body.ok, JSON.stringify(tested.body)).toBe(true);
      expect(tested.body.token.hasRefreshToken).toBe(true);
      if (preset.quirks.includes('no_expires_in')) expect(tested.body.token.expiresAt).toBeNull();
      else expect(tested.body.token.expiresAt).not.toBeNull();

      // The token goes out with the configured prefix, whatever case the provider spelled its type in.
      const connector = await g.api('POST', '/api/connectors', {
        name: `quirk api ${id}`,
        baseUrl: api.url,
        authenticationId: authId,
      });
      await g.api('POST', `/api/connectors/${connector.body.id}/execute`, { method: 'GET', path: '/echo' });
      expect(api.requests.at(-1)?.headers.authorization).toMatch(new RegExp(`^Bearer ${id}-access-\\d+$`));

      // A refresh without a new refresh token keeps the old one (Google and others).
      await g.api('POST', `/api/authentications/${authId}/invalidate`);
      const refreshed = await g.api('POST', `/api/authentications/${authId}/test`);
      expect(refreshed.body.token.source).toBe('refreshed');
      expect(refreshed.body.token.hasRefreshToken).toBe(true);
      if (preset.quirks.includes('keeps_refresh_token')) {
        await g.api('POST', `/api/authentications/${authId}/invalidate`);
        expect((await g.api('POST', `/api/authentications/${authId}/test`)).body.token.source).toBe(
          'refreshed',
        );
        const seen = quirks.refreshTokensSeen.get(id) ?? [];
        expect(seen).toHaveLength(2);
        expect(seen[0]).toBe(seen[1]);
      }
    },
  );
});
