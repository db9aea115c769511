import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GrantryHandle, startGrantry } from './support/grantry.js';

/**
 * Lists are read a page at a time, ordered by name then id, searched and filtered by the server:
 * every item comes exactly once however the pages fall, and a bad limit or cursor is a 400.
 */
describe('lists: pages, search and filters', () => {
  let g: GrantryHandle;
  const names: string[] = [];

  beforeAll(async () => {
    g = await startGrantry();
    for (let i = 0; i < 230; i++) {
      const name = `${i % 2 === 0 ? 'Billing' : 'crm'} ${String(i).padStart(3, '0')}${i === 7 ? ' 100%_done' : ''}`;
      names.push(name);
      const kind =
        i % 3 === 0
          ? { type: 'api_key', apiKey: 'k', apiKeyName: 'X-Key' }
          : {
              type: 'oauth2',
              grantType: i % 3 === 1 ? 'client_credentials' : 'authorization_code',
              authorizationUrl: i % 3 === 1 ? undefined : 'https://login.example.test/authorize',
              tokenUrl: 'https://login.example.test/token',
              clientId: 'c',
              clientSecret: 's',
            };
      const created = await g.api('POST', '/api/authentications', { name, ...kind });
      expect(created.status, created.text).toBe(201);
    }
  });
  afterAll(async () => {
    await g?.stop();
  });

  async function everyPage(query: string, limit: number): Promise<{ names: string[]; pages: number }> {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const path: string = `/api/authentications?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page: {
        status: number;
        text: string;
        body: { items: { name: string }[]; nextCursor: string | null };
      } = await g.api('GET', path);
      expect(page.status, page.text).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(limit);
      seen.push(...page.body.items.map((a: { name: string }) => a.name));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor !== null);
    return { names: seen, pages };
  }

  it('pages through every authentication once, in name order, 100 at a time by default', async () => {
    const first = await g.api('GET', '/api/authentications');
    expect(first.body.items).toHaveLength(100);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const all = await everyPage('', 100);
    expect(all.pages).toBe(3);
    expect(all.names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const small = await everyPage('', 7);
    expect(small.names).toEqual(all.names);
  });

  it('searches the name case-insensitively, LIKE wildcards taken literally, and filters by type and status', async () => {
    const billing = await everyPage('&q=BILLING', 500);
    expect(billing.names).toHaveLength(115);
    expect(billing.names.every((n) => n.startsWith('Billing'))).toBe(true);
    const literal = await everyPage(`&q=${encodeURIComponent('100%_')}`, 500);
    expect(literal.names).toEqual(['crm 007 100%_done']);
    expect((await everyPage(`&q=${encodeURIComponent('%')}`, 500)).names).toEqual(['crm 007 100%_done']);
    const keys = await everyPage('&type=api_key', 50);
    expect(keys.names).toHaveLength(77);
    const waiting = await everyPage('&status=needs_authorization&q=crm', 500);
    expect(waiting.names.length).toBeGreaterThan(0);
    for (const name of waiting.names) {
      const i = Number(/\d{3}/.exec(name)?.[0]);
      expect(i % 3).toBe(2);
      expect(i % 2).toBe(1);
    }
  });

  it('answers 400 to a bad limit, a bad cursor or an unknown filter, naming the parameter', async () => {
    for (const [query, path] of [
      ['limit=0', '/query/limit'],
      ['limit=501', '/query/limit'],
      ['limit=ten', '/query/limit'],
      ['cursor=not-ours', '/query/cursor'],
      ['type=saml', '/query/type'],
      ['status=fine', '/query/status'],
      ['colour=blue', '/query/colour'],
    ]) {
      const answer = await g.api('GET', `/api/authentications?${query}`);
      expect({ query, status: answer.status }).toEqual({ query, status: 400 });
      expect(answer.body.error.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
  });

  it('lists connectors the same way, with an authentication filter', async () => {
    const auths = (await g.api('GET', '/api/authentications?limit=2')).body.items;
    for (let i = 0; i < 12; i++) {
      const created = await g.api('POST', '/api/connectors', {
        name: `Connector ${String(i).padStart(2, '0')}`,
        baseUrl: 'https://api.example.test',
        authenticationId: auths[i % 2].id,
      });
      expect(created.status).toBe(201);
    }
    const page = await g.api('GET', '/api/connectors?limit=5');
    expect(page.body.items.map((c: { name: string }) => c.name)).toEqual([
      'Connector 00',
      'Connector 01',
      'Connector 02',
      'Connector 03',
      'Connector 04',
    ]);
    const next = await g.api(
      'GET',
      `/api/connectors?limit=5&cursor=${encodeURIComponent(page.body.nextCursor)}`,
    );
    expect(next.body.items[0].name).toBe('Connector 05');
    const filtered = await g.api('GET', `/api/connectors?authenticationId=${auths[1].id}&q=connector`);
    expect(filtered.body.items).toHaveLength(6);
    expect(filtered.body.nextCursor).toBeNull();
    // usedBy comes with each page in one query, not a query per row.
    const used = (await g.api('GET', '/api/authentications?limit=2')).body.items;
    expect(used[1].usedBy).toHaveLength(6);
  });
});
