/**
 * An API key from the console, in Chromium: created from a REST API connector's sidebar
 * (Authentication › Create Authentication · API Key), attached, and tested against a real HTTPS
 * API that accepts only that key in that header; a wrong key is explained, naming the kind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from '../support/api-server.js';
import { ensureWebBuild, launchChromium } from '../support/browser.js';
import { freePort, type GrantryHandle, startGrantry } from '../support/grantry.js';

const API_KEY = 'live-KEY-0b6e41';

function visibleText(locator: Locator): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText keeps the layout's separators.
  return locator.innerText();
}

describe('an API key from the console, in Chromium', { timeout: 120_000 }, () => {
  let api: ApiFixture;
  let grantry: GrantryHandle;
  let browser: Browser;
  let page: Page;
  let ui: string;
  const pageErrors: string[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'grantry-e2e-static-'));

  beforeAll(async () => {
    await ensureWebBuild();
    const port = await freePort();
    ui = `http://localhost:${port}`;
    api = await startApiServer({
      verify: async () => false,
      authenticate: async ({ headers }) =>
        headers['x-api-key'] === API_KEY
          ? true
          : { ok: false, status: 401, wwwAuthenticate: 'ApiKey realm="billing"' },
    });
    grantry = await startGrantry({ port, dataDir, env: { GRANTRY_PUBLIC_URL: ui } });
    browser = await launchChromium();
    page = await (
      await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-US' })
    ).newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(ui);
    await page.getByLabel('API key').fill(grantry.apiKey);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Authorization', level: 1 }).waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    await grantry?.stop();
    await api?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates an API Key authentication from a connector, attaches it and tests a call', async () => {
    await page.getByRole('link', { name: 'REST API connectors' }).click();
    await page.getByRole('button', { name: '+ New Connector' }).click();
    const sidebar = page.getByRole('dialog');
    await sidebar.getByLabel('Name', { exact: true }).fill('Billing API');
    await sidebar.getByLabel('Base URL').fill(api.url);
    await sidebar.getByLabel('Authentication', { exact: true }).selectOption({
      label: 'Create Authentication · API Key…',
    });
    const inline = sidebar.getByRole('form', { name: 'Create Authentication · API Key' });
    await inline.getByLabel('Name', { exact: true }).fill('Billing key');
    // The kind's own fields, from the catalogue; no OAuth field in sight.
    expect(await inline.getByLabel('Token URL').count()).toBe(0);
    await inline.getByLabel('API Key', { exact: true }).fill(API_KEY);
    await inline.getByLabel('Header or parameter name').fill('X-API-Key');
    await inline.getByRole('button', { name: 'Save authentication' }).click();
    await expect.poll(() => inline.count()).toBe(0);
    await sidebar.getByRole('button', { name: 'Create connector' }).click();
    await sidebar.getByRole('heading', { name: 'Billing API' }).waitFor();

    await sidebar.getByLabel('Path').fill('/status/200');
    await sidebar.getByRole('button', { name: 'Test', exact: true }).click();
    const result = sidebar.locator('.test-output .result');
    await result.getByText('The API accepted the credential.').waitFor();
    const text = await visibleText(result);
    expect(text).toMatch(/1\. Credential[\s\S]*Kind\s+API Key[\s\S]*Sent as\s+header X-API-Key/);
    expect(text).toMatch(/2\. API call[\s\S]*Status\s+200/);
    expect(text).not.toContain(API_KEY);
    const reached = api.requests.filter((request) => request.path === '/status/200');
    expect(reached).toHaveLength(1);
    expect(reached[0]?.headers['x-api-key']).toBe(API_KEY);
    // The key is write-only in the console too.
    expect(await page.content()).not.toContain(API_KEY);
  });

  it('explains a refused key, naming the kind and where it was sent', async () => {
    const auth = (await grantry.api('GET', '/api/authentications')).body.items.find(
      (item: { name: string }) => item.name === 'Billing key',
    );
    await grantry.api('PATCH', `/api/authentications/${auth.id}`, { apiKey: 'revoked-KEY-000' });
    const sidebar = page.getByRole('dialog');
    await sidebar.getByRole('button', { name: 'Test', exact: true }).click();
    const result = sidebar.locator('.test-output .result.failed');
    await result
      .getByText('The API answered 401 Unauthorized to the API key (sent as header X-API-Key).')
      .waitFor();
    expect(await visibleText(result)).toMatch(/Check the key itself/);
    expect(await page.content()).not.toContain('revoked-KEY-000');
  });

  it('shows where the key may go: unbound after it was given again, bound once a connector attaches it', async () => {
    const auth = (await grantry.api('GET', '/api/authentications')).body.items.find(
      (item: { name: string }) => item.name === 'Billing key',
    );
    await page.keyboard.press('Escape');
    await page.getByRole('link', { name: 'Authorization', exact: true }).click();
    await page.getByRole('button', { name: 'Billing key' }).click();
    // The previous test gave the key again, which unbinds it until a connector attaches it anew.
    await page.getByRole('dialog').getByText('Not bound yet').waitFor();
    await page.keyboard.press('Escape');

    const attached = await grantry.api('POST', '/api/connectors', {
      name: 'Billing API (reports)',
      baseUrl: `${api.url}/reports`,
      authenticationId: auth.id,
    });
    expect(attached.status, attached.text).toBe(201);
    await page.reload();
    await page.getByRole('button', { name: 'Billing key' }).click();
    await page
      .getByRole('dialog')
      .getByText(`Sent only to ${new URL(api.url).origin}.`, { exact: false })
      .waitFor();
  });

  it('ran without a script error in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
