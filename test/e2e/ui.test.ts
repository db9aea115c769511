/**
 * The web UI end to end, in a real browser: Debian's Chromium driven by playwright-core, against a
 * real Grantry (in this process, serving web/dist at `/`), a real oidc-provider on HTTPS and a real
 * HTTPS API that accepts only the provider's tokens.
 *
 * Screenshots of each screen go to docs/screenshots/ when UPDATE_SCREENSHOTS=1 (that is how the
 * committed ones are made), else to a temporary directory, so a plain test run leaves the checkout
 * untouched.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from '../support/api-server.js';
import { ensureWebBuild, launchChromium } from '../support/browser.js';
import { freePort, type GrantryHandle, startGrantry } from '../support/grantry.js';
import { type OidcFixture, startOidcProvider } from '../support/oidc.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const UPDATE_SCREENSHOTS = Boolean(process.env.UPDATE_SCREENSHOTS);
const SCREENSHOTS = UPDATE_SCREENSHOTS
  ? resolve('docs', 'screenshots')
  : mkdtempSync(join(tmpdir(), 'grantry-screenshots-'));
const VIEWPORT = { width: 1440, height: 900 };
const API_AUDIENCE = 'https://api.example.test';

/** The text as laid out (cells and terms separated by whitespace), which is what a person reads. */
function visibleText(locator: Locator): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText keeps the layout's separators.
  return locator.innerText();
}

describe('web UI in Chromium', { timeout: 120_000 }, () => {
  let oidc: OidcFixture;
  let api: ApiFixture;
  let receiver: WebhookReceiver;
  let grantry: GrantryHandle;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ui: string;
  const pageErrors: string[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'grantry-e2e-'));

  beforeAll(async () => {
    await ensureWebBuild();
    mkdirSync(SCREENSHOTS, { recursive: true });
    const port = await freePort();
    // The public URL is where the browser opens the UI: the redirect page posts to that origin.
    ui = `http://localhost:${port}`;
    oidc = await startOidcProvider({
      clients: [
        { client_id: 'reporting-service', client_secret: 'cc-secret', grant_types: ['client_credentials'] },
        {
          client_id: 'legacy-crm',
          client_secret: 'pw-secret',
          grant_types: ['password', 'refresh_token'],
        },
        {
          client_id: 'calendar-sync',
          client_secret: 'ac-secret',
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [`${ui}/oauth/redirect`],
        },
      ],
      resources: { [API_AUDIENCE]: { scope: 'read write' } },
      users: { alice: 'wonderland' },
    });
    api = await startApiServer({ verify: async (token) => (await oidc.verifyAccessToken(token)).active });
    receiver = await startWebhookReceiver();
    grantry = await startGrantry({ port, dataDir, env: { GRANTRY_PUBLIC_URL: ui } });
    browser = await launchChromium();
    // The provider's certificate comes from the test CA, which Chromium does not know.
    context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: VIEWPORT,
      locale: 'en-US',
      // The Copy buttons write to the clipboard; the tests read it back.
      permissions: ['clipboard-read', 'clipboard-write'],
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
  });

  afterAll(async () => {
    await browser?.close();
    await grantry?.stop();
    await receiver?.close();
    await api?.close();
    await oidc?.close();
    rmSync(dataDir, { recursive: true, force: true });
    if (!UPDATE_SCREENSHOTS) rmSync(SCREENSHOTS, { recursive: true, force: true });
  });

  /** A screenshot of the whole screen, tall enough for the side panel to show all it holds. */
  async function snap(name: string): Promise<void> {
    const height = await page.evaluate(() => {
      const panel = document.querySelector('.side-panel');
      const header = document.querySelector('.side-panel-header');
      const body = document.querySelector('.side-panel-body');
      const main = document.querySelector('.page-main');
      const panelHeight = panel && header && body ? header.scrollHeight + body.scrollHeight : 0;
      return Math.max(panelHeight, main?.scrollHeight ?? 0, document.documentElement.scrollHeight);
    });
    await page.setViewportSize({
      width: VIEWPORT.width,
      height: Math.min(Math.max(height, VIEWPORT.height), 3000),
    });
    await page.evaluate(() => document.querySelector('.side-panel')?.scrollTo(0, 0));
    await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), animations: 'disabled', caret: 'hide' });
    await page.setViewportSize(VIEWPORT);
  }

  const panel = () => page.getByRole('dialog');
  const field = (scope: Locator, label: string) => scope.getByLabel(label, { exact: true });

  it('asks for an API key first and keeps it out of the URL', async () => {
    await page.goto(ui);
    await expect
      .poll(() => page.getByRole('heading', { name: 'Sign in with an API key' }).isVisible())
      .toBe(true);
    await snap('01-api-key');

    await page.getByLabel('API key').fill('wrong-key');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByText('Grantry did not accept this API key.').waitFor();

    await page.getByLabel('API key').fill(grantry.apiKey);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Authorization', level: 1 }).waitFor();
    expect(page.url()).toBe(`${ui}/security/authorization`);
    expect(page.url()).not.toContain(grantry.apiKey);
    const stored = await page.evaluate(() => sessionStorage.getItem('grantry.apiKey'));
    expect(stored).toBe(grantry.apiKey);
  });

  it('Path A: creates a Client Credentials authentication, keeps the form on a failed save, and tests it', async () => {
    await page.getByRole('button', { name: '+ New Authentication' }).click();
    await page.getByRole('button', { name: 'OAuth 2.0', exact: true }).click();
    const form = panel();
    await expect.poll(() => form.getByRole('heading', { name: 'OAuth 2.0' }).isVisible()).toBe(true);
    // Focus moves to the panel's heading so that a screen reader announces it.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('side-panel-title');

    // Fields follow the grant type: no Authorization URL and no Username for Client Credentials.
    expect(await form.getByLabel('Authorization URL').count()).toBe(0);
    expect(await form.getByLabel('Username').count()).toBe(0);
    await field(form, 'Name').fill('Reporting API (client credentials)');
    await form.getByLabel('Token URL').fill('http://auth.example.com/token');
    await form.getByLabel('Client ID').fill('reporting-service');
    await form.getByLabel('Client Secret', { exact: true }).fill('cc-secret');
    await form.getByRole('textbox', { name: /^Audience/ }).fill(API_AUDIENCE);
    await form.getByRole('textbox', { name: /^Scope/ }).fill('read');
    await snap('02-new-authentication-client-credentials');

    await form.getByRole('button', { name: 'Save authentication' }).click();
    // The API's error, next to its field; nothing typed is lost.
    const tokenUrl = form.getByLabel('Token URL');
    await form
      .getByText(/must be an https URL/)
      .first()
      .waitFor();
    expect(await tokenUrl.getAttribute('aria-invalid')).toBe('true');
    expect(await form.getByLabel('Client ID').inputValue()).toBe('reporting-service');
    expect(await form.getByLabel('Client Secret', { exact: true }).inputValue()).toBe('cc-secret');
    await snap('03-validation-error');

    await tokenUrl.fill(oidc.tokenUrl);
    await form.getByRole('button', { name: 'Save authentication' }).click();
    await form.getByRole('heading', { name: 'Reporting API (client credentials)' }).waitFor();
    // The secret is write-only: shown as set, replaceable, never read back.
    await form.getByText('Stored encrypted; it is never shown again.').waitFor();
    expect(await form.getByLabel('Client Secret', { exact: true }).count()).toBe(0);

    await form.getByRole('button', { name: 'Test', exact: true }).click();
    const result = form.locator('.test-output .result');
    await result.getByText('Grantry has a valid access token.').waitFor();
    expect(await visibleText(result)).toMatch(/Scope\s+read/);
    expect(await visibleText(result)).toContain('Fetched from the token endpoint');
    expect(oidc.tokenRequests.client_credentials).toBe(1);

    // Expire now, then test again: the token is fetched anew (client credentials has no refresh token).
    await form.getByRole('button', { name: 'Expire now' }).click();
    await form.getByText('The access token was dropped.', { exact: false }).waitFor();
    await form.getByRole('button', { name: 'Test', exact: true }).click();
    await result.getByText('Fetched from the token endpoint').waitFor();
    expect(oidc.tokenRequests.client_credentials).toBe(2);
    await form.locator('.timeline').getByText('Token expired by hand').waitFor();
    await snap('04-client-credentials-tested');

    await page.keyboard.press('Escape');
    await expect.poll(() => panel().count()).toBe(0);
    const row = page.getByRole('row', { name: /Reporting API \(client credentials\)/ });
    expect(await visibleText(row)).toMatch(/Client Credentials\s+Ready\s+Expires in/);
  });

  it('explains a wrong client secret', async () => {
    await page.getByRole('button', { name: 'Reporting API (client credentials)' }).click();
    const form = panel();
    await form.getByRole('button', { name: 'Replace' }).first().click();
    await form.getByLabel('Client Secret', { exact: true }).fill('not-the-secret');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await form.getByText('All changes saved.').waitFor();

    await form.getByRole('button', { name: 'Test', exact: true }).click();
    const failure = form.locator('.test-output .result.failed');
    await failure.getByText('Invalid client').waitFor();
    const text = await visibleText(failure);
    expect(text).toContain('invalid_client');
    expect(text).toMatch(/What to do: .*Client ID and Client Secret/);
    // The provider's own words, not only ours.
    expect(text).toContain('client authentication failed');
    expect(text).not.toContain('not-the-secret');
    await snap('06-wrong-client-secret');

    // Put the right secret back for the list screenshot and later steps.
    await form.getByRole('button', { name: 'Replace' }).first().click();
    await form.getByLabel('Client Secret', { exact: true }).fill('cc-secret');
    await form.getByRole('button', { name: 'Save changes' }).click();
    await form.getByText('All changes saved.').waitFor();
    await form.getByRole('button', { name: 'Test', exact: true }).click();
    await form.locator('.test-output').getByText('Grantry has a valid access token.').waitFor();
    await form.getByRole('button', { name: 'Close panel' }).click();
  });

  it('Path B: creates a connector, a Password-grant authentication inline, saves and tests the API call', async () => {
    await page.getByRole('link', { name: 'REST API connectors' }).click();
    await page.getByRole('heading', { name: 'REST API connectors', level: 1 }).waitFor();
    expect(page.url()).toBe(`${ui}/integrations/connectors`);
    await page.getByRole('button', { name: '+ New Connector' }).click();
    const sidebar = panel();
    await field(sidebar, 'Name').fill('CRM API');
    await sidebar.getByLabel('Base URL').fill(api.url);
    await sidebar.getByRole('button', { name: '+ Add header' }).click();
    await sidebar.getByRole('textbox', { name: 'Header 1' }).fill('X-Tenant');
    await sidebar.getByRole('textbox', { name: 'Value 1' }).fill('acme');
    await sidebar.getByRole('button', { name: '+ Add parameter' }).click();
    await sidebar.getByRole('textbox', { name: 'Parameter 1' }).fill('version');
    await sidebar.getByRole('textbox', { name: 'Value 1' }).last().fill('2');

    await field(sidebar, 'Authentication').selectOption({ label: 'Create Authentication · OAuth 2.0…' });
    const inline = sidebar.getByRole('form', { name: 'Create Authentication · OAuth 2.0' });
    await field(inline, 'Name').fill('CRM (password grant)');
    await inline.getByLabel('Password Grant').check();
    // The product page's advice appears with the Password grant.
    await inline.getByText('Prefer Authorization Code or Client Credentials when possible.').waitFor();
    await inline.getByLabel('Token URL').fill(oidc.tokenUrl);
    await inline.getByLabel('Client ID').fill('legacy-crm');
    await inline.getByLabel('Client Secret', { exact: true }).fill('pw-secret');
    await inline.getByRole('textbox', { name: /^Audience/ }).fill(API_AUDIENCE);
    await inline.getByRole('textbox', { name: /^Scope/ }).fill('read');
    await inline.getByLabel('Username').fill('alice');
    await field(inline, 'Password').fill('wonderland');
    await snap('07-connector-create-authentication-inline');

    await inline.getByRole('button', { name: 'Save authentication' }).click();
    // Saved and selected in the dropdown; the inline form closes.
    await expect.poll(() => inline.count()).toBe(0);
    const selected = await field(sidebar, 'Authentication').evaluate(
      (select) => (select as HTMLSelectElement).selectedOptions[0]?.textContent ?? '',
    );
    expect(selected).toContain('CRM (password grant)');
    // This CRM answers 403 to an expired token: one fresh token and one retry then too.
    await sidebar.getByLabel('Also refresh on 403').check();

    await sidebar.getByRole('button', { name: 'Create connector' }).click();
    await sidebar.getByRole('heading', { name: 'CRM API' }).waitFor();
    const saved = (await grantry.api('GET', '/api/connectors')).body.items.find(
      (item: { name: string }) => item.name === 'CRM API',
    );
    expect(saved?.refreshOn).toEqual([401, 403]);
    expect(await sidebar.getByLabel('Also refresh on 403').isChecked()).toBe(true);
    // /status/200 answers JSON without echoing the request (an echo would show the bearer token).
    await sidebar.getByLabel('Path').fill('/status/200');
    await sidebar.getByRole('button', { name: 'Test', exact: true }).click();
    const result = sidebar.locator('.test-output .result');
    await result.getByText('Token and API call both worked.').waitFor();
    const text = await visibleText(result);
    expect(text).toMatch(/1\. Token[\s\S]*OK\s+fetched/);
    expect(text).toMatch(/2\. API call[\s\S]*Status\s+200/);
    expect(text).not.toContain('wonderland');
    const payload = await visibleText(result.locator('pre.payload'));
    expect(payload).toBe(JSON.stringify({ status: 200 }, null, 2));
    // What reached the API: the provider's token, our static header and query parameter.
    const reached = api.requests.filter((request) => request.path === '/status/200');
    expect(reached).toHaveLength(1);
    expect(reached[0]?.headers['x-tenant']).toBe('acme');
    expect(reached[0]?.query).toEqual({ version: '2' });
    expect((await oidc.verifyAccessToken(reached[0]?.token ?? '')).clientId).toBe('legacy-crm');
    expect(oidc.tokenRequests.password).toBe(1);
    await snap('08-connector-tested');

    await page.keyboard.press('Escape');
    await page.getByRole('row', { name: /CRM API/ }).waitFor();
    await snap('09-connectors-list');
  });

  it('Authorization Code: Connect in a popup, log in and consent, see it connected, and test a call', async () => {
    await page.getByRole('link', { name: 'Authorization', exact: true }).click();
    await page.getByRole('button', { name: '+ New Authentication' }).click();
    await page.getByRole('button', { name: 'OAuth 2.0', exact: true }).click();
    const form = panel();
    await field(form, 'Name').fill('Calendar (authorization code)');
    await form.getByLabel('Authorization Code').check();

    // Fill from issuer URL reads the provider's metadata (GET /api/discovery).
    await form.getByText('Advanced', { exact: true }).click();
    await form.getByLabel('Issuer URL').fill(oidc.issuer);
    await form.getByRole('button', { name: 'Fill from issuer URL' }).click();
    await form.getByText(/^Filled .*Token URL/).waitFor();
    expect(await form.getByLabel('Authorization URL').inputValue()).toBe(oidc.authorizationUrl);
    expect(await form.getByLabel('Token URL').inputValue()).toBe(oidc.tokenUrl);
    expect(await form.getByLabel('Use PKCE (S256, RFC 7636)').isChecked()).toBe(true);

    await form.getByLabel('Client ID').fill('calendar-sync');
    await form.getByLabel('Client Secret', { exact: true }).fill('ac-secret');
    await form.getByRole('textbox', { name: /^Audience/ }).fill(API_AUDIENCE);
    await form.getByRole('textbox', { name: /^Scope/ }).fill('read');
    await form.getByRole('button', { name: 'Save authentication' }).click();
    await form.getByRole('heading', { name: 'Calendar (authorization code)' }).waitFor();

    // The exact redirect URI to register at the provider, with a copy button.
    const redirect = form.getByLabel('Redirect URI', { exact: true });
    expect(await redirect.inputValue()).toBe(`${ui}/oauth/redirect`);
    await form.getByRole('button', { name: 'Copy' }).waitFor();
    expect(await visibleText(form.locator('.panel-meta'))).toContain('Needs authorization');
    await snap('10-authorization-code-saved');

    const popupOpened = page.waitForEvent('popup');
    await form.getByRole('button', { name: 'Connect', exact: true }).click();
    const popup = await popupOpened;
    await popup.waitForURL((url) => url.origin === oidc.issuer);
    await form.getByRole('button', { name: 'Waiting for the provider…' }).waitFor();
    await snap('11-waiting-for-provider');
    await popup.locator('input[name="login"]').fill('alice');
    await popup.locator('input[name="password"]').fill('wonderland');
    await popup.screenshot({ path: join(SCREENSHOTS, '12-provider-login-popup.png') });
    await popup.getByRole('button', { name: 'Sign-in' }).click();
    await popup.getByRole('button', { name: 'Continue' }).click();

    await form.getByText('Grantry holds a token for this authentication.').waitFor();
    await expect.poll(() => visibleText(form.locator('.panel-meta'))).toContain('Connected');
    expect(oidc.tokenRequests.authorization_code).toBe(1);
    await snap('13-authorization-code-connected');

    await form.getByRole('button', { name: 'Test', exact: true }).click();
    await form.locator('.test-output').getByText('From cache (a stored token was still valid)').waitFor();
    // Expire now, then test: the refresh token gets a new access token without the person.
    await form.getByRole('button', { name: 'Expire now' }).click();
    await form.getByText('The next test uses the refresh token.', { exact: false }).waitFor();
    await form.getByRole('button', { name: 'Test', exact: true }).click();
    await form.locator('.test-output').getByText('Refreshed with the refresh token').waitFor();
    expect(oidc.tokenRequests.refresh_token).toBe(1);
    await form.locator('.timeline').getByText('Token refreshed').waitFor();

    // A call through a connector with this authentication.
    await page.keyboard.press('Escape');
    await page.getByRole('link', { name: 'REST API connectors' }).click();
    await page.getByRole('button', { name: 'CRM API' }).click();
    const sidebar = panel();
    await field(sidebar, 'Authentication').selectOption({
      label: 'Calendar (authorization code) — OAuth 2.0 · Authorization Code',
    });
    await sidebar.getByText('Unsaved changes.').waitFor();
    await sidebar.getByRole('button', { name: 'Save connector' }).click();
    await sidebar.getByText('All changes saved.').waitFor();
    await sidebar.getByLabel('Path').fill('/status/200');
    await sidebar.getByRole('button', { name: 'Test', exact: true }).click();
    await sidebar.locator('.test-output').getByText('Token and API call both worked.').waitFor();
    const reached = api.requests.at(-1);
    expect((await oidc.verifyAccessToken(reached?.token ?? '')).clientId).toBe('calendar-sync');
    expect(await visibleText(sidebar.locator('.test-output'))).toMatch(/Status\s+200/);
    expect(oidc.tokenRequests.authorization_code).toBe(1);
    await snap('14-connector-with-authorization-code');

    // When the API refuses the token, the API step says why in words, beside the provider's challenge.
    api.setBehaviour({ kind: 'insufficient-scope', scope: 'write' });
    try {
      await sidebar.getByRole('button', { name: 'Test', exact: true }).click();
      const failed = sidebar.locator('.test-output .result.failed');
      await failed.getByText('The test did not succeed.').waitFor();
      const text = await visibleText(failed);
      expect(text).toMatch(/Status\s+403/);
      expect(text).toContain('upstream_forbidden');
      await snap('15-connector-test-api-refused');
    } finally {
      api.setBehaviour('normal');
    }
  });

  /** Plays the person at oidc-provider's login and consent pages until it sends the browser back. */
  async function completeAtProvider(target: Page): Promise<void> {
    for (let step = 0; step < 6; step += 1) {
      await target.waitForLoadState();
      if (new URL(target.url()).origin !== oidc.issuer) return;
      const before = target.url();
      const login = target.locator('input[name="login"]');
      const consent = target.getByRole('button', { name: 'Continue' });
      if (await login.count()) {
        await login.fill('alice');
        await target.locator('input[name="password"]').fill('wonderland');
        await target.getByRole('button', { name: 'Sign-in' }).click();
      } else if (await consent.count()) {
        await consent.click();
      }
      await target.waitForURL((url) => url.href !== before);
    }
  }

  it('falls back to a full-page redirect when popups are blocked, and comes back connected', async () => {
    await page.keyboard.press('Escape');
    await page.getByRole('link', { name: 'Authorization', exact: true }).click();
    await page.getByRole('button', { name: 'Calendar (authorization code)' }).click();
    // What a popup blocker does: window.open answers null.
    await page.evaluate(() => {
      window.open = () => null;
    });
    await panel().getByRole('button', { name: 'Reconnect' }).click();
    await page.waitForURL((url) => url.origin === oidc.issuer || url.pathname === '/oauth/redirect');
    await completeAtProvider(page);
    await page.waitForURL((url) => url.pathname === '/oauth/redirect');
    await page.getByRole('heading', { name: 'Connected' }).waitFor();
    expect(page.url()).not.toContain(grantry.apiKey);
    await snap('16-redirect-page-after-full-page-flow');

    await page.getByRole('link', { name: 'Back to Grantry' }).click();
    // The key is still in this tab's session storage: no second sign-in.
    await page.getByRole('heading', { name: 'Authorization', level: 1 }).waitFor();
    const row = page.getByRole('row', { name: /Calendar \(authorization code\)/ });
    expect(await visibleText(row)).toContain('Connected');
    expect(oidc.tokenRequests.authorization_code).toBe(2);
    await snap('05-authentications-list');
  });

  it('asks for a key again when the stored one stops working, keeping the console behind', async () => {
    await page.evaluate(() => sessionStorage.setItem('grantry.apiKey', 'grk_revoked'));
    await page.reload();
    const dialog = page.getByRole('dialog', { name: 'Your API key is no longer accepted' });
    await dialog.waitFor();
    await snap('17-api-key-no-longer-accepted');
    await dialog.getByLabel('API key').fill(grantry.apiKey);
    await dialog.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => dialog.count()).toBe(0);
    await page.getByRole('row', { name: /Reporting API/ }).waitFor();
  });

  it('works with the keyboard: menu, panel focus, Escape, and nothing typed is lost', async () => {
    const focused = () =>
      page.evaluate(() => {
        const element = document.activeElement;
        if (!element) return '';
        const label = 'labels' in element ? (element as HTMLInputElement).labels?.[0]?.textContent : null;
        return element.getAttribute('aria-label') ?? label ?? element.textContent ?? '';
      });
    const newButton = page.getByRole('button', { name: '+ New Authentication' });
    await newButton.focus();
    await page.keyboard.press('Enter');
    await expect.poll(focused).toBe('OAuth 2.0');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('side-panel-title');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('Close panel');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('Start from a provider');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('Name');
    await page.keyboard.type('Typed by keyboard');
    await page.keyboard.press('Tab');
    expect(await focused()).toBe('Client Credentials');
    // Arrow keys move within the grant type radio group; the fields follow.
    await page.keyboard.press('ArrowRight');
    expect(await focused()).toBe('Password Grant');
    await panel().getByLabel('Username').waitFor();

    await page.keyboard.press('Escape');
    await expect.poll(() => panel().count()).toBe(0);
    await expect.poll(focused).toBe('+ New Authentication');

    // Going to another page and back, then reopening, shows the draft as it was left.
    await page.getByRole('link', { name: 'REST API connectors' }).click();
    await page.getByRole('heading', { name: 'REST API connectors', level: 1 }).waitFor();
    await page.getByRole('link', { name: 'Authorization', exact: true }).click();
    await page.getByRole('button', { name: '+ New Authentication' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(focused).toBe('OAuth 2.0');
    await page.keyboard.press('Enter');
    const form = panel();
    expect(await field(form, 'Name').inputValue()).toBe('Typed by keyboard');
    expect(await form.getByLabel('Password Grant').isChecked()).toBe(true);
  });

  it('starts a new authentication from a provider preset: search, placeholders, notes, redirect URI', async () => {
    await page.getByRole('link', { name: 'Authorization', exact: true }).click();
    await page.getByRole('button', { name: '+ New Authentication' }).click();
    await page.getByRole('button', { name: 'OAuth 2.0', exact: true }).click();
    const form = panel();
    await form
      .getByRole('button', { name: 'Start from scratch' })
      .click({ timeout: 1000 })
      .catch(() => {});
    const search = form.getByRole('combobox', { name: 'Start from a provider' });
    await search.fill('entra');
    await form.getByRole('option', { name: /Microsoft Entra ID/ }).waitFor();
    await search.press('Enter');
    const card = form.getByRole('region', { name: /Provider: Microsoft Entra ID/ });
    await card.getByRole('link', { name: /Register your app at Microsoft Entra ID/ }).waitFor();
    // Authorization Code is the preset's first grant: the redirect URI to register is shown beside the link.
    expect(await card.getByLabel('Redirect URI', { exact: true }).inputValue()).toBe(`${ui}/oauth/redirect`);
    expect(await visibleText(card)).toContain('offline_access');
    const tenant = card.getByRole('textbox', { name: /tenant/i });
    await tenant.fill('contoso.onmicrosoft.com');
    expect(await form.getByLabel('Token URL').inputValue()).toBe(
      'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
    );
    await snap('21-start-from-a-provider');

    await form.getByLabel('Client Credentials').check();
    await field(form, 'Name').fill('Graph (contoso)');
    await form.getByLabel('Client ID').fill('graph-app');
    await form.getByLabel('Client Secret', { exact: true }).fill('graph-secret');
    await card.getByText('Common scopes').click();
    await card.getByRole('button', { name: /\.default/ }).click();
    expect(await form.getByRole('textbox', { name: /^Scope/ }).inputValue()).toContain(
      'https://graph.microsoft.com/.default',
    );
    await form.getByRole('button', { name: 'Save authentication' }).click();
    await form.getByRole('heading', { name: 'Graph (contoso)' }).waitFor();
    await form.getByText('Created from the microsoft-entra-id provider preset.').waitFor();
    const saved = (await grantry.api('GET', '/api/authentications')).body.items.find(
      (a: { name: string }) => a.name === 'Graph (contoso)',
    );
    expect(saved).toMatchObject({
      provider: 'microsoft-entra-id',
      providerParams: { tenant: 'contoso.onmicrosoft.com' },
      clientAuthMethod: 'client_secret_post',
    });
    await page.keyboard.press('Escape');

    // A preset of another kind switches the form to that kind.
    await page.getByRole('button', { name: '+ New Authentication' }).click();
    await page.getByRole('button', { name: 'OAuth 2.0', exact: true }).click();
    const next = panel();
    const nextSearch = next.getByRole('combobox', { name: 'Start from a provider' });
    await nextSearch.fill('stripe');
    await next.getByRole('option', { name: /Stripe/ }).click();
    await next.getByRole('heading', { name: 'API Key' }).waitFor();
    expect(await next.getByLabel('Header or parameter name').inputValue()).toBe('Authorization');
    expect(await next.getByRole('textbox', { name: /^Value prefix/ }).inputValue()).toBe('Bearer');
    await page.keyboard.press('Escape');
  });

  it('a connect link, opened in a browser that never saw the console, connects the authentication once', async () => {
    await page.getByRole('link', { name: 'Authorization', exact: true }).click();
    await page.getByRole('button', { name: 'Calendar (authorization code)' }).click();
    const form = panel();
    await form.getByText('Someone else signs in? Send a connect link').click();
    await form.getByRole('button', { name: 'Make connect link' }).click();
    const link = await form.getByLabel('Connect link', { exact: true }).inputValue();
    expect(link).toMatch(new RegExp(`^${ui}/oauth/connect/[A-Za-z0-9_-]+$`));
    await form.getByText(/Works once, until/).waitFor();
    await snap('20-connect-link');
    const exchanges = oidc.tokenRequests.authorization_code;

    // The account owner's browser: a separate context, with none of the console's cookies.
    const owner = await browser.newContext({ ignoreHTTPSErrors: true, viewport: VIEWPORT, locale: 'en-US' });
    try {
      const ownerPage = await owner.newPage();
      await ownerPage.goto(link);
      await ownerPage.waitForURL((url) => url.origin === oidc.issuer);
      await ownerPage.locator('input[name="login"]').fill('alice');
      await ownerPage.locator('input[name="password"]').fill('wonderland');
      await ownerPage.getByRole('button', { name: 'Sign-in' }).click();
      await ownerPage.getByRole('button', { name: 'Continue' }).click();
      await ownerPage.getByText('is connected').waitFor();
      expect(oidc.tokenRequests.authorization_code).toBe(exchanges + 1);

      const again = await ownerPage.goto(link);
      expect(again?.status()).toBe(410);
      await ownerPage.getByRole('heading', { name: 'This link was already used' }).waitFor();
    } finally {
      await owner.close();
    }
    await page.keyboard.press('Escape');
  });

  it('Webhooks: creates one, shows its secret once with a Copy button, sends a test event and shows it delivered', async () => {
    await page.keyboard.press('Escape');
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
    expect(page.url()).toBe(`${ui}/settings/webhooks`);
    await page.getByText('No webhooks yet.').waitFor();

    await page.getByRole('button', { name: '+ New Webhook' }).click();
    const form = panel();
    await form.getByLabel('URL', { exact: true }).fill('http://hooks.example.com/grantry');
    await form.getByLabel('Description').fill('On-call pager');
    await form.getByLabel(/^Connected/).uncheck();
    await form.getByRole('button', { name: 'Create webhook' }).click();
    await form
      .getByText(/must be an https URL/)
      .first()
      .waitFor();
    expect(await form.getByLabel('URL', { exact: true }).getAttribute('aria-invalid')).toBe('true');

    await form.getByLabel('URL', { exact: true }).fill(receiver.url);
    await form.getByRole('button', { name: 'Create webhook' }).click();
    const secretField = form.getByLabel('Signing secret', { exact: true });
    await secretField.waitFor();
    const secret = await secretField.inputValue();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    await form.getByText('Copy it now: Grantry shows it only this once.', { exact: false }).waitFor();
    await form.getByRole('button', { name: 'Copy' }).click();
    await form.getByRole('button', { name: 'Copied' }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    receiver.verifyWith(secret);
    await snap('18-webhook-created-secret-once');

    await form.getByRole('button', { name: 'Send test event' }).click();
    const delivered = form.locator('.deliveries .timeline-item').first();
    await delivered.getByText('Delivered').waitFor();
    expect(await visibleText(delivered)).toMatch(/webhook\.test[\s\S]*Delivered\s+HTTP 204\s+1 attempt/);
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0]).toMatchObject({ verified: true, answered: 204 });
    expect(receiver.received[0]?.payload?.type).toBe('webhook.test');
    await snap('19-webhook-test-delivered');

    // Once only: closed and opened again, the panel has no secret to show.
    await page.keyboard.press('Escape');
    const row = page.getByRole('row', { name: /On-call pager/ });
    expect(await visibleText(row)).toMatch(/Needs attention, Recovered\s+Enabled/);
    await row.getByRole('button', { name: 'On-call pager' }).click();
    await panel().getByRole('heading', { name: 'Deliveries' }).waitFor();
    expect(await panel().getByLabel('Signing secret', { exact: true }).count()).toBe(0);
    expect(await page.content()).not.toContain(secret);
    await page.keyboard.press('Escape');
  });

  it('ran without a script error in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
