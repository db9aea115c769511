import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from './contract.js';
import { openStore } from './open-store.js';

describe('openStore', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function opened(url: string): Promise<Store> {
    const store = await openStore(url);
    cleanups.push(() => store.close());
    return store;
  }

  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'grantry-open-store-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  it('opens sqlite::memory: as a private database', async () => {
    const first = await opened('sqlite::memory:');
    const second = await opened('sqlite::memory:');
    await first.migrate();
    await second.migrate();
    await first.setSetting('k', 'v');
    expect(first.dialect).toBe('sqlite');
    expect(await first.getSetting('k')).toBe('v');
    expect(await second.getSetting('k')).toBeNull();
  });

  it('opens sqlite:<relative path> from the working directory, creating missing folders', async () => {
    const file = join(tempDir(), 'a', 'b', 'grantry.db');
    const store = await opened(`sqlite:${relative(process.cwd(), file)}`);
    await store.migrate();
    expect(existsSync(file)).toBe(true);
  });

  it('keeps data in the file across openings, and reads sqlite:///absolute paths', async () => {
    const file = join(tempDir(), 'grantry.db');
    const writer = await openStore(`sqlite:${file}`);
    await writer.migrate();
    await writer.setSetting('kept', 'yes');
    await writer.close();
    const reader = await opened(`sqlite://${file}`);
    await reader.migrate();
    expect(await reader.getSetting('kept')).toBe('yes');
  });

  it('rejects other URLs without echoing them (they may hold a password)', async () => {
    await expect(openStore('mysql://user:hunter2@localhost/db')).rejects.toThrow(/expected sqlite:<path>/);
    await expect(openStore('mysql://user:hunter2@localhost/db')).rejects.not.toThrow(/hunter2/);
    await expect(openStore('sqlite:')).rejects.toThrow(/needs a path/);
  });
});
