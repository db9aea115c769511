/**
 * The console's API types (web/src/generated/grantry-api.ts) are generated from the document the
 * server serves; this keeps the committed file from drifting from the server it talks to.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLIENT_TYPES_FILE, generateClientTypes, servedOpenApiDocument } from '../scripts/openapi-client.js';
import { startGrantry } from './support/grantry.js';

describe('the generated TypeScript client', () => {
  it('is generated from the very document a running server serves', async () => {
    const g = await startGrantry();
    try {
      const served = (await (await fetch(`${g.url}/openapi.json`)).json()) as Record<string, unknown>;
      const built = JSON.parse(await servedOpenApiDocument()) as Record<string, unknown>;
      // Only the server's address (GRANTRY_PUBLIC_URL) may differ.
      expect({ ...built, servers: [] }).toEqual({ ...served, servers: [] });
    } finally {
      await g.stop();
    }
  });

  it('is what the current document generates (run `npm run openapi:client` after changing the API)', async () => {
    const expected = await generateClientTypes(await servedOpenApiDocument());
    const committed = readFileSync(CLIENT_TYPES_FILE, 'utf8');
    expect(committed).toBe(expected);
    for (const name of ['Authentication', 'Connector', 'Error', 'ExecuteRequest', 'WebhookDelivery']) {
      expect(committed).toContain(`        ${name}: {`);
    }
    expect(committed).toContain('listAuthentications: {');
  });
});
