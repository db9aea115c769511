import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord, Store } from '../store/contract.js';
import { openStore } from '../store/open-store.js';
import { ProviderMetadata } from './provider-metadata.js';
import {
  type RevocationOnDeleteOptions,
  revokeOnDelete,
  revokeStoredTokens,
} from './revocation-on-delete.js';
import { sealContext } from './sealed-columns.js';

/**
 * Revocation before delete against a real loopback HTTP server (RFC 7009 endpoint) that accepts
 * refresh tokens and refuses access tokens with `unsupported_token_type` (§2.2.1), as some do.
 */
describe('revokeStoredTokens', () => {
  let store: Store;
  let ring: KeyRing;
  let server: Server;
  let endpoint: string;
  let received: URLSearchParams[];
  let logged: { level: string; fields: Record<string, unknown>; message: string }[];
  let options: RevocationOnDeleteOptions;

  beforeEach(async () => {
    store = await openStore('sqlite::memory:');
    await store.migrate();
    ring = new KeyRing(randomBytes(32));
    received = [];
    logged = [];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        received.push(form);
        if (form.get('token_type_hint') === 'refresh_token') {
          res.writeHead(200).end();
          return;
        }
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'unsupported_token_type' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/revoke`;
    options = {
      store,
      keyRing: ring,
      fetch: globalThis.fetch,
      timeoutMs: 2000,
      metadata: new ProviderMetadata({ fetch: globalThis.fetch, timeoutMs: 2000 }),
      log: {
        info: (fields, message) => logged.push({ level: 'info', fields, message }),
        warn: (fields, message) => logged.push({ level: 'warn', fields, message }),
      },
    };
  });
  afterEach(async () => {
    await store.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function authenticationWithTokens(revocationUrl: string | undefined): Promise<AuthenticationRecord> {
    const id = `auth_${randomBytes(6).toString('hex')}`;
    const record: AuthenticationRecord = {
      id,
      name: id,
      type: 'oauth2',
      grantType: 'authorization_code',
      settings: {
        authorizationUrl: 'http://127.0.0.1:1/authorize',
        tokenUrl: `${endpoint.replace('/revoke', '')}/token`,
        clientId: 'client',
        headerPrefix: 'Bearer',
        audienceParam: 'audience',
        clientAuthMethod: 'client_secret_post',
        ...(revocationUrl !== undefined ? { revocationUrl } : {}),
      },
      secrets: { client_secret: ring.seal('secret', sealContext.clientSecret(id)) },
      status: 'connected',
      lastError: null,
      generation: 1,
      calls: 0,
      unauthorizedCount: 0,
      refreshCount: 0,
      createdAt: 0,
      updatedAt: 0,
    };
    await store.authentications.insert(record);
    await store.tokens.compareAndSwap(id, null, {
      accessToken: ring.seal('the-access-token', sealContext.accessToken(id)),
      tokenType: 'Bearer',
      scope: null,
      obtainedAt: 0,
      expiresAt: null,
      refreshToken: ring.seal('the-refresh-token', sealContext.refreshToken(id)),
      generation: 1,
    });
    return record;
  }

  it('revokes the refresh token, then the access token, and records each outcome', async () => {
    const record = await authenticationWithTokens(endpoint);
    const report = await revokeStoredTokens(record, options);
    expect(received.map((f) => [f.get('token'), f.get('token_type_hint'), f.get('client_id')])).toEqual([
      ['the-refresh-token', 'refresh_token', 'client'],
      ['the-access-token', 'access_token', 'client'],
    ]);
    expect(report).toMatchObject({
      revocationUrl: endpoint,
      revoked: ['refresh_token'],
      failed: [{ tokenType: 'access_token', code: expect.any(String) }],
    });
    const types = (await store.events.list(record.id, 10)).map((e) => e.type);
    expect(types).toEqual(['revoked', 'revocation_failed']);
    expect(JSON.stringify(logged)).not.toMatch(/the-(access|refresh)-token|secret/);
  });

  it('asks nobody when no revocation endpoint is configured or published', async () => {
    const record = await authenticationWithTokens(undefined);
    const report = await revokeStoredTokens(record, options);
    expect(report.revocationUrl).toBeNull();
    // Only the metadata probes reached the server, never a revocation request.
    expect(received.every((f) => !f.has('token'))).toBe(true);
  });

  it('never throws, even when the endpoint cannot be reached', async () => {
    const record = await authenticationWithTokens('http://127.0.0.1:1/revoke');
    await expect(revokeOnDelete(options)(record)).resolves.toBeUndefined();
    const events = await store.events.list(record.id, 10);
    expect(events.map((e) => e.type)).toEqual(['revocation_failed', 'revocation_failed']);
    expect(logged.filter((l) => l.level === 'warn')).toHaveLength(2);
  });
});
