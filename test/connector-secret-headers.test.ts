import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';

/**
 * Secret connector headers: sent on every call like plain ones, stored encrypted, never answered
 * (only their names), changed one by one with PATCH, refused when they could not be sent.
 */
const SECRET = 'SECRET-HEADER-VALUE-5c1e';

describe('connector secret headers', () => {
  let g: GrantryHandle;
  let api: ApiFixture;
  beforeAll(async () => {
    g = await startGrantry();
    api = await startApiServer({ verify: async () => true });
  });
  afterAll(async () => {
    await g?.stop();
    await api?.close();
  });

  it('are sent on every call, answered by name only, and changed one by one', async () => {
    const created = await g.api('POST', '/api/connectors', {
      name: 'with secrets',
      baseUrl: api.url,
      headers: { 'X-Tenant': 'acme', Authorization: 'Bearer plain-static' },
      secretHeaders: { 'X-Api-Key': SECRET, 'X-Second': 'second-secret-value' },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body.secretHeaderNames).toEqual(['x-api-key', 'x-second']);
    expect(created.text).not.toContain(SECRET);
    const id = created.body.id;
    const read = await g.api('GET', `/api/connectors/${id}`);
    expect(read.text).not.toContain(SECRET);
    expect((await g.api('GET', '/api/connectors')).text).not.toContain(SECRET);

    api.reset();
    const executed = await g.api('POST', `/api/connectors/${id}/execute`, { method: 'GET', path: '/echo' });
    expect(executed.status).toBe(200);
    expect(api.requests.at(-1)?.headers['x-api-key']).toBe(SECRET);
    expect(api.requests.at(-1)?.headers['x-tenant']).toBe('acme');
    const proxied = await fetch(`${g.url}/proxy/${id}/echo`, {
      headers: { authorization: `Bearer ${g.apiKey}` },
    });
    await proxied.arrayBuffer();
    expect(api.requests.at(-1)?.headers['x-api-key']).toBe(SECRET);

    // One removed, one replaced, the others kept.
    const patched = await g.api('PATCH', `/api/connectors/${id}`, {
      secretHeaders: { 'x-api-key': null, 'X-Third': 'third' },
    });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body.secretHeaderNames).toEqual(['x-second', 'x-third']);
    await g.api('POST', `/api/connectors/${id}/execute`, { method: 'GET', path: '/echo' });
    const last = api.requests.at(-1)?.headers ?? {};
    expect(last['x-api-key']).toBeUndefined();
    expect(last['x-second']).toBe('second-secret-value');
    expect(last['x-third']).toBe('third');

    // A PATCH that does not mention them keeps them; null for the whole field removes them all.
    expect(
      (await g.api('PATCH', `/api/connectors/${id}`, { name: 'renamed' })).body.secretHeaderNames,
    ).toEqual(['x-second', 'x-third']);
    expect(
      (await g.api('PATCH', `/api/connectors/${id}`, { secretHeaders: null })).body.secretHeaderNames,
    ).toEqual([]);
  });

  it('refuses a secret header that is also plain, unsendable, empty, or owned by the transport', async () => {
    const answer = await g.api('POST', '/api/connectors', {
      name: 'bad secrets',
      baseUrl: api.url,
      headers: { 'X-Key': 'plain' },
      secretHeaders: {
        'x-key': 'secret',
        'X-Emoji': '🙂',
        'X-Empty': '',
        Host: 'evil.example',
        'bad name': 'x',
      },
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.errors).toEqual(
      expect.arrayContaining([
        { path: '/secretHeaders/x-key', message: expect.stringContaining('also a plain header') },
        { path: '/secretHeaders/X-Emoji', message: expect.stringContaining('cannot be sent in a header') },
        { path: '/secretHeaders/X-Empty', message: 'must not be empty' },
        { path: '/secretHeaders/Host', message: expect.stringContaining('HTTP transport') },
        { path: '/secretHeaders/bad name', message: 'is not a valid header name' },
      ]),
    );
    expect(answer.text).not.toContain('🙂');
  });

  it('keeps the values out of the database file and the log in the clear', async () => {
    await g.api('POST', '/api/connectors', {
      name: 'canary secret header',
      baseUrl: api.url,
      secretHeaders: { 'X-Canary': 'CANARY-SECRET-HEADER-e41b' },
    });
    for (const file of readdirSync(g.dataDir)) {
      const content = readFileSync(join(g.dataDir, file)).toString('latin1');
      expect(content.includes('CANARY-SECRET-HEADER-e41b'), file).toBe(false);
      expect(content.includes(SECRET), file).toBe(false);
    }
  });
});
