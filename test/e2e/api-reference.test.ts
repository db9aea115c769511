/**
 * GET /docs in a real browser (Debian's Chromium, driven by playwright-core): the API reference is
 * drawn from this server's own /openapi.json with files this server serves, with every request to
 * another origin refused, under the Content-Security-Policy Grantry sends.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../src/api/routes/web-ui.js';
import { freePort, type GrantryHandle, startGrantry } from '../support/grantry.js';

const CHROMIUM = '/usr/bin/chromium';

describe('the API reference at /docs in Chromium', { timeout: 120_000 }, () => {
  let grantry: GrantryHandle;
  let browser: Browser;
  let page: Page;
  let origin: string;
  const offOrigin: string[] = [];
  const pageErrors: string[] = [];
  const consoleErrors: string[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'grantry-docs-'));

  beforeAll(async () => {
    const port = await freePort();
    // Opened at the public URL, the document's server: "Try it out" then stays on this origin.
    origin = `http://localhost:${port}`;
    grantry = await startGrantry({ port, dataDir, env: { GRANTRY_PUBLIC_URL: origin } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
    // Offline, as far as the page can tell: anything not from Grantry's origin is refused and noted.
    await context.route('**/*', async (route) => {
      const url = route.request().url();
      if (new URL(url).origin === origin || url.startsWith('data:')) await route.continue();
      else {
        offOrigin.push(url);
        await route.abort('blockedbyclient');
      }
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Chromium reports each Content-Security-Policy violation as a console error.
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(message.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await grantry?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('is served as a public page under the console’s Content-Security-Policy', async () => {
    const answer = await fetch(`${grantry.url}/docs`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(answer.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(answer.headers.get('x-frame-options')).toBe('DENY');
    const script = await fetch(`${grantry.url}/docs/swagger-ui-bundle.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    const etag = script.headers.get('etag') as string;
    await script.arrayBuffer();
    expect(
      (await fetch(`${grantry.url}/docs/swagger-ui-bundle.js`, { headers: { 'if-none-match': etag } }))
        .status,
    ).toBe(304);
    const unknown = await fetch(`${grantry.url}/docs/index.html`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('not_found');
    // Not part of the API: left out of the document.
    const doc = (await (await fetch(`${grantry.url}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(doc.paths).filter((path) => path.startsWith('/docs'))).toEqual([]);
  });

  it('renders every operation of /openapi.json, offline, with no CSP violation or script error', async () => {
    const doc = (await (await fetch(`${grantry.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { operationId: string; summary: string }>>;
    };
    const operations = Object.values(doc.paths).flatMap((ops) => Object.values(ops));
    await page.goto(`${origin}/docs`);
    await page.getByText('listAuthentications', { exact: true }).waitFor();
    for (const operationId of ['listAuthentications', 'createAuthentication', 'testConnector', 'proxyGet']) {
      expect(await page.getByText(operationId, { exact: true }).count(), operationId).toBe(1);
    }
    for (const summary of [
      'List authentications',
      'Create an authentication',
      'Test token fetch and API call in one',
    ]) {
      expect(await page.getByText(summary, { exact: true }).count(), summary).toBeGreaterThan(0);
    }
    expect(await page.locator('.opblock').count()).toBe(operations.length);
    // The named shapes are listed as such.
    const schemas = page.locator('section.models');
    await schemas.getByText('ConnectorTestResult', { exact: true }).waitFor();
    await page.screenshot({ path: join(process.env.DOCS_SCREENSHOT_DIR ?? dataDir, 'docs.png') });

    expect(offOrigin).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  it('calls the API from "Try it out" on the same origin', async () => {
    const health = page.locator('#operations-Service-getHealth');
    await health.locator('.opblock-summary').click();
    await health.getByRole('button', { name: 'Try it out' }).click();
    await health.getByRole('button', { name: 'Execute' }).click();
    await health.locator('.live-responses-table tr.response .response-col_status').first().waitFor();
    expect(
      await health.locator('.live-responses-table tr.response .response-col_status').first().textContent(),
    ).toContain('200');
    expect(await health.locator('.live-responses-table .microlight').first().textContent()).toContain('"ok"');
    expect(offOrigin).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
