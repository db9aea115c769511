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
});
