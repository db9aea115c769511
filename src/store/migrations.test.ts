import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from './dialect.js';
import { buildMigrations, runMigrations } from './migrations.js';
import { openSqliteEngine } from './sqlite-engine.js';

describe('runMigrations', () => {
  let engine: Engine;
  afterEach(async () => {
    await engine.close();
  });

  it('runs each migration once, in name order, and records it', async () => {
    engine = openSqliteEngine(':memory:');
    const migrations = buildMigrations(engine);
    expect(await runMigrations(engine.db, migrations, () => 42)).toEqual(Object.keys(migrations).sort());
    expect(await runMigrations(engine.db, migrations)).toEqual([]);

    const order: string[] = [];
    const later = {
      ...migrations,
      '0003_third': { up: async () => void order.push('0003_third') },
      '0002_second': { up: async () => void order.push('0002_second') },
    };
    expect(await runMigrations(engine.db, later)).toEqual(['0002_second', '0003_third']);
    expect(order).toEqual(['0002_second', '0003_third']);
  });

  it('records nothing for a migration that fails, so it runs again next time', async () => {
    engine = openSqliteEngine(':memory:');
    const failing = {
      ...buildMigrations(engine),
      '9999_broken': {
        up: async () => {
          throw new Error('broken migration');
        },
      },
    };
    await expect(runMigrations(engine.db, failing)).rejects.toThrow('broken migration');
    await expect(runMigrations(engine.db, failing)).rejects.toThrow('broken migration');
    expect(await runMigrations(engine.db, buildMigrations(engine))).toEqual([]);
  });

  it('0003 moves the client secret and password into the secrets document, ciphertexts unchanged', async () => {
    engine = openSqliteEngine(':memory:');
    const all = buildMigrations(engine);
    const before = Object.fromEntries(Object.entries(all).filter(([name]) => name < '0003'));
    await runMigrations(engine.db, before);
    const old = engine.db as any;
    const row = {
      type: 'oauth2',
      settings: '{"tokenUrl":"https://idp.example.test/token","clientId":"c"}',
      status: 'ready',
      last_error: null,
      generation: 1,
      created_at: 1,
      updated_at: 1,
    };
    await old
      .insertInto('authentications')
      .values([
        { ...row, id: 'a1', name: 'pw', grant_type: 'password', client_secret: 'v1:cs', password: 'v1:pw' },
        {
          ...row,
          id: 'a2',
          name: 'cc',
          grant_type: 'client_credentials',
          client_secret: 'v1:cs2',
          password: null,
        },
      ])
      .execute();
    await old
      .insertInto('connectors')
      .values({
        id: 'c1',
        name: 'c',
        base_url: 'https://api.example.test',
        authentication_id: 'a1',
        headers: '{}',
        query: '{}',
        timeout_ms: 1000,
        created_at: 1,
        updated_at: 1,
      })
      .execute();
    await runMigrations(engine.db, all);
    const rows = await engine.db
      .selectFrom('authentications')
      .select(['id', 'secrets', 'grant_type'])
      .orderBy('id')
      .execute();
    expect(rows).toEqual([
      { id: 'a1', secrets: '{"client_secret":"v1:cs","password":"v1:pw"}', grant_type: 'password' },
      { id: 'a2', secrets: '{"client_secret":"v1:cs2"}', grant_type: 'client_credentials' },
    ]);
    const connector = await engine.db.selectFrom('connectors').select('secret_headers').executeTakeFirst();
    expect(connector?.secret_headers).toBe('{}');
  });

  it('0009 fills the folded names of the rows already stored, for search beyond ASCII', async () => {
    engine = openSqliteEngine(':memory:');
    const all = buildMigrations(engine);
    await runMigrations(engine.db, Object.fromEntries(Object.entries(all).filter(([name]) => name < '0009')));
    const old = engine.db as any;
    await old
      .insertInto('authentications')
      .values({
        id: 'a1',
        name: 'Émile ZOË',
        type: 'bearer',
        grant_type: '',
        settings: '{}',
        secrets: '{}',
        status: 'ready',
        last_error: null,
        generation: 1,
        created_at: 1,
        updated_at: 1,
      })
      .execute();
    await old
      .insertInto('connectors')
      .values({
        id: 'c1',
        name: 'ÄPI Café',
        base_url: 'https://api.example.test',
        authentication_id: null,
        headers: '{}',
        secret_headers: '{}',
        query: '{}',
        timeout_ms: 1000,
        created_at: 1,
        updated_at: 1,
      })
      .execute();
    expect(await runMigrations(engine.db, all)).toContain('0009_name_search');
    const auth = await engine.db.selectFrom('authentications').select('name_folded').executeTakeFirst();
    expect(auth?.name_folded).toBe('émile zoë');
    const connector = await engine.db.selectFrom('connectors').select('name_folded').executeTakeFirst();
    expect(connector?.name_folded).toBe('äpi café');
  });
});
