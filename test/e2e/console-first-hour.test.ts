/**
 * The console's rough edges a newcomer met in the first hour (issue 13), each checked in Debian's
 * Chromium against a real Grantry, a real oidc-provider on HTTPS and a real HTTPS API: a test
 * result that followed the person to another authentication, field errors that stayed after the
 * fix, a phone-width page that scrolled sideways, results below the fold, a delete that did not say
 * which connectors it detaches, "Ready" beside "Expired", the key screen, and the tab's title.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from '../support/api-server.js';
import { ensureWebBuild, launchChromium } from '../support/browser.js';
import { freePort, type GrantryHandle, startGrantry } from '../support/grantry.js';
import { type OidcFixture, startOidcProvider } from '../support/oidc.js';

const API_AUDIENCE = 'https://api.example.test';
/** A second API whose tokens live two seconds, so that one is seen expired in the list. */
const SHORT_AUDIENCE = 'https://short-lived.example.test';
const DESKTOP = { width: 1440, height: 900 };
const PHONE = { width: 390, height: 844 };

/** The text as laid out (cells and terms separated by whitespace), which is what a person reads. */
function visibleText(locator: Locator): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText keeps the layout's separators.
  return locator.innerText();
}

/** Whether the element's box lies inside the browser window (not only inside its scroll container). */
function inWindow(locator: Locator): Promise<boolean> {
  return locator.evaluate((element) => {
    const box = element.getBoundingClientRect();
    return box.top >= 0 && box.top < window.innerHeight && box.left >= 0 && box.right <= window.innerWidth;
  });
}

/** Whether the element fits across the window: not cut at either edge (it may be further down). */
function fitsAcross(locator: Locator): Promise<boolean> {
  return locator.evaluate((element) => {
    const box = element.getBoundingClientRect();
    return box.width > 0 && box.left >= 0 && box.right <= window.innerWidth;
  });
}

/** How far the page scrolls sideways: 0 when nothing is wider than the window. */
function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
}

describe('console in Chromium: the first hour', { timeout: 120_000 }, () => {
  let oidc: OidcFixture;
  let api: ApiFixture;
  let grantry: GrantryHandle;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ui: string;
  const pageErrors: string[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'grantry-e2e-first-hour-'));
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    await ensureWebBuild();
    const port = await freePort();
    ui = `http://localhost:${port}`;
    oidc = await startOidcProvider({
      clients: [
        { client_id: 'reporting-service', client_secret: 'cc-secret', grant_types: ['client_credentials'] },
      ],
      resources: {
        [API_AUDIENCE]: { scope: 'read write' },
        [SHORT_AUDIENCE]: { scope: 'read', accessTokenTTL: 2 },
      },
    });
    api = await startApiServer({ verify: async (token) => (await oidc.verifyAccessToken(token)).active });
    grantry = await startGrantry({ port, dataDir, env: { GRANTRY_PUBLIC_URL: ui } });

    const oauth = (name: string, audience: string) => ({
      name,
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'reporting-service',
      clientSecret: 'cc-secret',
      audience,
      scope: 'read',
    });
    for (const [key, body] of [
      ['reports', oauth('Reports', API_AUDIENCE)],
      ['ledger', oauth('Ledger', API_AUDIENCE)],
      ['shortLived', oauth('Short-lived tokens', SHORT_AUDIENCE)],
      ['shared', oauth('Shared by two connectors', API_AUDIENCE)],
    ] as const) {
      const created = await grantry.api('POST', '/api/authentications', body);
      expect(created.status).toBe(201);
      ids[key] = created.body.id;
    }
    for (const name of ['Billing API', 'Invoices API']) {
      const connector = await grantry.api('POST', '/api/connectors', {
        name,
        baseUrl: api.url,
        authenticationId: ids.shared,
      });
      expect(connector.status).toBe(201);
      ids[name] = connector.body.id;
    }
    const reportsApi = await grantry.api('POST', '/api/connectors', {
      name: 'Reports API',
      baseUrl: api.url,
      authenticationId: ids.reports,
    });
    ids.reportsApi = reportsApi.body.id;

    browser = await launchChromium();
    context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: DESKTOP, locale: 'en-US' });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    await grantry?.stop();
    await api?.close();
    await oidc?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const panel = () => page.getByRole('dialog');

  async function signIn(target: Page): Promise<void> {
    await target.goto(ui);
    await target.getByLabel('API key').fill(grantry.apiKey);
    await target.getByRole('button', { name: 'Continue' }).click();
    await target.getByRole('heading', { name: 'Authorization', level: 1 }).waitFor();
  }

  it('the key screen names the key npm start printed, in words and code, not backticks', async () => {
    await page.goto(ui);
    const card = page.locator('.key-card');
    await card.getByRole('heading', { name: 'Sign in with an API key' }).waitFor();
    const text = await visibleText(card);
    expect(text).toContain('npm start printed one');
    expect(text).toContain('GRANTRY_API_KEY');
    expect(text).toContain('npx grantry api-keys create');
    expect(text).not.toContain('`');
    expect(await card.locator('code', { hasText: 'npm start' }).count()).toBe(1);
  });

  it('the tab title says which page is open', async () => {
    await signIn(page);
    await expect.poll(() => page.title()).toBe('Authorization · Security — Grantry');
    await page.getByRole('link', { name: 'REST API connectors' }).click();
    await expect.poll(() => page.title()).toBe('REST API connectors · Integrations — Grantry');
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await expect.poll(() => page.title()).toBe('Webhooks · Settings — Grantry');
    await page.goBack();
    await expect.poll(() => page.title()).toBe('REST API connectors · Integrations — Grantry');
    await page.getByRole('link', { name: 'Authorization' }).click();
  });

  it('a test result stays with the authentication it was made for', async () => {
    await page.getByRole('button', { name: 'Reports', exact: true }).click();
    await panel().getByRole('heading', { name: 'Reports' }).waitFor();
    await panel().getByRole('button', { name: 'Test', exact: true }).click();
    await panel().locator('.test-output').getByText('Grantry has a valid access token.').waitFor();

    await page.getByRole('button', { name: 'Ledger', exact: true }).click();
    await panel().getByRole('heading', { name: 'Ledger' }).waitFor();
    expect(await panel().locator('.test-output .result').count()).toBe(0);

    // Back to the first one: its panel starts clean too (the result is not kept against the wrong id).
    await page.getByRole('button', { name: 'Reports', exact: true }).click();
    await panel().getByRole('heading', { name: 'Reports' }).waitFor();
    expect(await panel().locator('.test-output .result').count()).toBe(0);
    await page.keyboard.press('Escape');
  });

  it('a test result below the fold is scrolled into view', async () => {
    await page.setViewportSize({ width: 1280, height: 520 });
    try {
      await page.getByRole('button', { name: 'Ledger', exact: true }).click();
      const form = panel();
      await form.getByRole('heading', { name: 'Ledger' }).waitFor();
      const test = form.getByRole('button', { name: 'Test', exact: true });
      await test.scrollIntoViewIfNeeded();
      await test.click();
      const result = form.locator('.test-output .result');
      await result.getByText('Grantry has a valid access token.').waitFor();
      await expect.poll(() => inWindow(result)).toBe(true);
      await page.keyboard.press('Escape');

      // The same for a connector's test call, whose result (token, request, response) is long.
      await page.getByRole('link', { name: 'REST API connectors' }).click();
      await page.getByRole('button', { name: 'Reports API', exact: true }).click();
      const sidebar = panel();
      const send = sidebar.locator('.test-form').getByRole('button', { name: 'Test', exact: true });
      await send.scrollIntoViewIfNeeded();
      await send.click();
      const outcome = sidebar.locator('.test-output .result');
      await outcome.getByText('Token and API call both worked.').waitFor();
      await expect.poll(() => inWindow(outcome)).toBe(true);
      await page.keyboard.press('Escape');
      await page.getByRole('link', { name: 'Authorization' }).click();
    } finally {
      await page.setViewportSize(DESKTOP);
    }
  });

  it('a field error goes as soon as the field is changed, also when filled from the issuer URL', async () => {
    await page.getByRole('button', { name: '+ New Authentication' }).click();
    await page.getByRole('button', { name: 'OAuth 2.0', exact: true }).click();
    const form = panel();
    await form.getByLabel('Name', { exact: true }).fill('Fixed in place');
    await form.getByLabel('Token URL').fill('http://plain.example.com/token');
    await form.getByLabel('Client ID').fill('reporting-service');
    const tokenUrl = form.getByLabel('Token URL');
    const secret = form.getByLabel('Client Secret');

    // The missing secret is caught before anything is sent; typing it clears the error at once.
    await form.getByRole('button', { name: 'Save authentication' }).click();
    await expect.poll(() => secret.getAttribute('aria-invalid')).toBe('true');
    await secret.fill('cc-secret');
    await expect.poll(() => secret.getAttribute('aria-invalid')).toBeNull();
    expect(await form.locator('.error-summary').count()).toBe(0);

    // The server's error on the Token URL goes as soon as the URL is changed, before any save.
    await form.getByRole('button', { name: 'Save authentication' }).click();
    await form
      .getByText(/must be an https URL/)
      .first()
      .waitFor();
    expect(await tokenUrl.getAttribute('aria-invalid')).toBe('true');
    await tokenUrl.fill('https://plain.example.com/token');
    await expect.poll(() => tokenUrl.getAttribute('aria-invalid')).toBeNull();
    expect(await form.getByText(/must be an https URL/).count()).toBe(0);

    // A wrong value again, then "Fill from issuer URL" replaces it: the error goes with it.
    await tokenUrl.fill('http://plain.example.com/token');
    await form.getByRole('button', { name: 'Save authentication' }).click();
    await form
      .getByText(/must be an https URL/)
      .first()
      .waitFor();
    await form.getByText('Advanced', { exact: true }).click();
    await form.getByLabel('Issuer URL').fill(oidc.issuer);
    await form.getByRole('button', { name: 'Fill from issuer URL' }).click();
    await expect.poll(() => tokenUrl.inputValue()).toBe(oidc.tokenUrl);
    await expect.poll(() => tokenUrl.getAttribute('aria-invalid')).toBeNull();
    expect(await form.getByText(/must be an https URL/).count()).toBe(0);
    await page.keyboard.press('Escape');

    // The connector form does the same.
    await page.getByRole('link', { name: 'REST API connectors' }).click();
    await page.getByRole('button', { name: '+ New Connector' }).click();
    const sidebar = panel();
    await sidebar.getByLabel('Base URL').fill('ftp://files.example.com');
    await sidebar.getByRole('button', { name: 'Create connector' }).click();
    const name = sidebar.getByLabel('Name', { exact: true });
    await expect.poll(() => name.getAttribute('aria-invalid')).toBe('true');
    const baseUrl = sidebar.getByLabel('Base URL');
    expect(await baseUrl.getAttribute('aria-invalid')).toBe('true');
    await name.fill('Named now');
    await expect.poll(() => name.getAttribute('aria-invalid')).toBeNull();
    expect(await baseUrl.getAttribute('aria-invalid')).toBe('true');
    await baseUrl.fill(api.url);
    await expect.poll(() => baseUrl.getAttribute('aria-invalid')).toBeNull();
    expect(await sidebar.locator('.error-summary').count()).toBe(0);
    await page.keyboard.press('Escape');
    await page.getByRole('link', { name: 'Authorization' }).click();
  });

  it('an expired token says what happens next, not "Ready" beside "Expired"', async () => {
    const tested = await grantry.api('POST', `/api/authentications/${ids.shortLived}/test`);
    expect(tested.body.ok).toBe(true);
    const expiresAt = Date.parse(tested.body.token.expiresAt);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 500));
    await page.reload();
    const row = page.getByRole('row', { name: /Short-lived tokens/ });
    await row.waitFor();
    expect(await visibleText(row)).toMatch(/Ready\s+Expired .+ ago; a new one is fetched on the next call/);
  });

  it('deleting an authentication in use names its connectors and says they will call without credentials', async () => {
    await page.getByRole('button', { name: 'Shared by two connectors', exact: true }).click();
    const form = panel();
    await form.getByRole('button', { name: 'Delete authentication…' }).click();
    const zone = form.locator('.danger-zone');
    const text = await visibleText(zone);
    expect(text).toContain('is used by 2 connectors');
    expect(text).toContain('Billing API');
    expect(text).toContain('Invoices API');
    expect(text).toMatch(/call their APIs without\s+credentials/);
    // The console's words, not the API's.
    expect(text).not.toContain('force');
    await zone.getByRole('button', { name: 'Delete and detach from 2 connectors' }).click();

    await expect.poll(() => panel().count()).toBe(0);
    const notice = page.locator('.page-notice');
    expect(await visibleText(notice)).toMatch(
      /Shared by two connectors deleted\. Billing API and Invoices API now have no authentication/,
    );
    for (const name of ['Billing API', 'Invoices API']) {
      const connector = await grantry.api('GET', `/api/connectors/${ids[name]}`);
      expect(connector.body.authenticationId).toBeNull();
    }
    expect((await grantry.api('GET', `/api/authentications/${ids.shared}`)).status).toBe(404);
  });

  it('a deletion refused because a connector attached meanwhile shows the new list and asks again', async () => {
    await page.getByRole('button', { name: 'Ledger', exact: true }).click();
    const form = panel();
    await form.getByRole('button', { name: 'Delete authentication…' }).click();
    const zone = form.locator('.danger-zone');
    expect(await visibleText(zone)).toContain('No connector uses it');
    // Someone else attaches it while the dialog is open.
    const late = await grantry.api('POST', '/api/connectors', {
      name: 'Late Connector',
      baseUrl: api.url,
      authenticationId: ids.ledger,
    });
    expect(late.status).toBe(201);
    await zone.getByRole('button', { name: 'Delete', exact: true }).click();
    await zone.getByText('Connectors started using it meanwhile.').waitFor();
    expect(await visibleText(zone)).toContain('Late Connector');
    // Nothing was deleted behind the person's back.
    expect((await grantry.api('GET', `/api/authentications/${ids.ledger}`)).status).toBe(200);
    await zone.getByRole('button', { name: 'Cancel' }).click();
    await page.keyboard.press('Escape');
  });

  it('at 390 px wide nothing scrolls sideways, the main button and every column show, and the panel opens in view', async () => {
    const phone = await browser.newContext({ ignoreHTTPSErrors: true, viewport: PHONE, locale: 'en-US' });
    try {
      const small = await phone.newPage();
      small.on('pageerror', (error) => pageErrors.push(error.message));
      await signIn(small);
      expect(await sidewaysOverflow(small)).toBe(0);
      const newButton = small.getByRole('button', { name: '+ New Authentication' });
      expect(await inWindow(newButton)).toBe(true);

      // Every column of a row is readable, each value under its column's name.
      const row = small.getByRole('row', { name: /Reports/ }).first();
      expect(await visibleText(row)).toContain('Reports API');
      const labels = await row
        .locator('td')
        .evaluateAll((cells) => cells.map((cell) => getComputedStyle(cell, '::before').content));
      expect(labels).toEqual(['"Type"', '"Status"', '"Token expiry"', '"Used by"']);
      for (const cell of await row.locator('td').all()) expect(await fitsAcross(cell)).toBe(true);

      // The panel opened from the bottom of the list covers the screen instead of opening below it.
      await small.getByRole('button', { name: 'Short-lived tokens', exact: true }).click();
      const sheet = small.getByRole('dialog');
      const heading = sheet.getByRole('heading', { name: 'Short-lived tokens' });
      await heading.waitFor();
      expect(await inWindow(heading)).toBe(true);
      expect(await sidewaysOverflow(small)).toBe(0);
      await sheet.getByRole('button', { name: 'Close panel' }).click();
      await expect.poll(() => sheet.count()).toBe(0);

      // The menu fits too.
      await newButton.click();
      for (const item of await small.locator('#new-authentication-menu .menu-item').all()) {
        expect(await inWindow(item)).toBe(true);
      }
      await small.keyboard.press('Escape');

      for (const [link, heading] of [
        ['REST API connectors', 'REST API connectors'],
        ['Webhooks', 'Webhooks'],
      ] as const) {
        await small.getByRole('link', { name: link }).click();
        await small.getByRole('heading', { name: heading, level: 1 }).waitFor();
        expect(await sidewaysOverflow(small)).toBe(0);
      }
      const connectorRow = small.getByRole('row', { name: /Reports API/ });
      await small.getByRole('link', { name: 'REST API connectors' }).click();
      await connectorRow.waitFor();
      for (const cell of await connectorRow.locator('td').all()) {
        expect(await fitsAcross(cell)).toBe(true);
      }
      await small.getByRole('button', { name: 'Reports API', exact: true }).click();
      await small.getByRole('dialog').getByRole('heading', { name: 'Reports API' }).waitFor();
      expect(await sidewaysOverflow(small)).toBe(0);
    } finally {
      await phone.close();
    }
  });

  it('ran without a script error in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
