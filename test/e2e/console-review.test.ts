/**
 * What a reviewer met using the console as a new user, each checked in Debian's Chromium against a
 * real Grantry: items beyond the first 500 that would not open, a cleared connector timeout that
 * kept the old value, a Connect button that kept its state for the next authentication, a provider
 * preset that wiped the client id and secret, a deliveries problem that never went, a webhooks list
 * stuck after the API key was replaced, errors of hidden fields, and unlabelled or unassociated
 * controls and errors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuild, launchChromium } from '../support/browser.js';
import { freePort, type GrantryHandle, startGrantry } from '../support/grantry.js';

/** More than the 500 the console reads for its names and pickers. */
const BULK = 505;

describe('console in Chromium: the reviewer’s findings', { timeout: 180_000 }, () => {
  let grantry: GrantryHandle;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ui: string;
  const pageErrors: string[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'grantry-e2e-review-'));
  const ids: Record<string, string> = {};

  async function create(path: string, body: unknown): Promise<string> {
    const answer = await grantry.api('POST', path, body);
    expect(answer.status, answer.text).toBe(201);
    return answer.body.id;
  }

  beforeAll(async () => {
    await ensureWebBuild();
    const port = await freePort();
    ui = `http://localhost:${port}`;
    grantry = await startGrantry({ port, dataDir, env: { GRANTRY_PUBLIC_URL: ui } });

    const numbered = (n: number) => String(n).padStart(4, '0');
    for (let start = 1; start <= BULK; start += 25) {
      const batch = [];
      for (let n = start; n < start + 25 && n <= BULK; n += 1) {
        batch.push(
          create('/api/authentications', { name: `Bulk auth ${numbered(n)}`, type: 'bearer', token: 't' }),
          create('/api/connectors', {
            name: `Bulk connector ${numbered(n)}`,
            baseUrl: 'https://api.example.test',
          }),
        );
      }
      await Promise.all(batch);
    }
    // Sorted by name, these come after the first 500.
    ids.zuluAuth = await create('/api/authentications', { name: 'Zulu auth', type: 'bearer', token: 't' });
    ids.zuluConnector = await create('/api/connectors', {
      name: 'Zulu connector',
      baseUrl: 'https://api.example.test',
      authenticationId: ids.zuluAuth,
      timeoutMs: 5000,
    });
    // Sorted first: among the loaded ones.
    const code = (name: string) => ({
      name,
      type: 'oauth2',
      grantType: 'authorization_code',
      authorizationUrl: 'https://login.example.test/authorize',
      tokenUrl: 'https://login.example.test/token',
      revocationUrl: 'https://login.example.test/revoke',
      clientId: 'app',
      clientSecret: 'secret',
    });
    ids.codeA = await create('/api/authentications', code('Aardvark code A'));
    ids.codeB = await create('/api/authentications', code('Aardvark code B'));
    ids.webhook = await create('/api/webhooks', {
      url: 'https://hooks.example.test/grantry',
      events: ['authentication.needs_attention'],
      description: 'On-call pager',
    });

    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-US' });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(ui);
    await page.getByLabel('API key').fill(grantry.apiKey);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { name: 'Authorization', level: 1 }).waitFor();
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await grantry?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const panel = () => page.getByRole('dialog');
  const focusedId = () => page.evaluate(() => document.activeElement?.id ?? '');

  it('the authentications list pages by cursor, and one beyond the first 500 opens (read by id)', async () => {
    const rows = page.locator('table.list tbody tr');
    await expect.poll(() => rows.count()).toBe(100);
    await page.getByRole('button', { name: 'Show more' }).click();
    await expect.poll(() => rows.count()).toBe(200);

    const reads: string[] = [];
    page.on('request', (request) => {
      if (request.method() === 'GET') reads.push(new URL(request.url()).pathname);
    });
    await page.getByLabel('Search authentications').fill('Zulu');
    await page.getByRole('button', { name: 'Zulu auth', exact: true }).click();
    await panel().getByRole('heading', { name: 'Zulu auth' }).waitFor();
    expect(reads).toContain(`/api/authentications/${ids.zuluAuth}`);
    // Its user, a connector beyond the first 500 too, is named, not shown as an id.
    await expect.poll(() => page.locator('table.list tbody').textContent()).toContain('Zulu connector');
    await page.keyboard.press('Escape');
    await page.getByLabel('Search authentications').fill('');
  });

  it('a delete confirmation stays with the authentication it was asked for', async () => {
    await page.getByRole('button', { name: 'Aardvark code A', exact: true }).click();
    await panel().getByRole('heading', { name: 'Aardvark code A' }).waitFor();
    await panel().getByRole('button', { name: 'Delete authentication…' }).click();
    await panel().getByRole('button', { name: 'Delete', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Aardvark code B', exact: true }).click();
    await panel().getByRole('heading', { name: 'Aardvark code B' }).waitFor();
    expect(await panel().getByRole('button', { name: 'Delete', exact: true }).count()).toBe(0);
    await panel().getByRole('button', { name: 'Delete authentication…' }).waitFor();
    await page.keyboard.press('Escape');
  });

  it('a connector beyond the first 500 opens, names its authentication, and the picker searches the server', async () => {
    await page.getByRole('link', { name: 'REST API connectors' }).click();
    await page.getByLabel('Search connectors').fill('Zulu');
    const row = page.locator('table.list tbody tr', { hasText: 'Zulu connector' });
    await expect.poll(() => row.textContent()).toContain('Zulu auth');
    await page.getByRole('button', { name: 'Zulu connector', exact: true }).click();
    const form = panel();
    await form.getByRole('heading', { name: 'Zulu connector' }).waitFor();
    const select = form.getByLabel('Authentication', { exact: true });
    expect(await select.inputValue()).toBe(ids.zuluAuth);
    expect(await select.locator('option:checked').textContent()).toContain('Zulu auth');

    // The dropdown holds the first 500: beyond them, a search box finds the rest on the server.
    await form.getByLabel('Find an authentication').fill('Bulk auth 0503');
    await form.getByText('1 found: choose one below.').waitFor();
    const found = await select.locator('option', { hasText: 'Bulk auth 0503' }).getAttribute('value');
    await select.selectOption(found ?? '');
    await form.getByRole('button', { name: 'Save connector' }).click();
    await form.getByText('All changes saved.').waitFor();
    const saved = await grantry.api('GET', `/api/connectors/${ids.zuluConnector}`);
    expect(saved.body.authenticationId).toBe(found);
  });

  it('clearing the timeout means the default, says so, and saves it; a non-number is explained', async () => {
    const form = panel();
    const timeout = form.getByLabel('Timeout (milliseconds)');
    expect(await timeout.inputValue()).toBe('5000');
    await timeout.fill('');
    await form.getByText('Calls will time out after 30 s (the default).').waitFor();
    await form.getByRole('button', { name: 'Save connector' }).click();
    await form.getByText('All changes saved.').waitFor();
    expect((await grantry.api('GET', `/api/connectors/${ids.zuluConnector}`)).body.timeoutMs).toBe(30000);
    expect(await timeout.inputValue()).toBe('30000');

    // Typed wrong: the server names the field, and focus goes to it (not silently the default).
    await timeout.fill('ten seconds');
    await form.getByText('Not a valid timeout yet.').waitFor();
    await form.getByRole('button', { name: 'Save connector' }).click();
    await form.locator('.error-summary').waitFor();
    const describedBy = (await timeout.getAttribute('aria-describedby')) ?? '';
    expect(describedBy).toContain('timeoutMs-error');
    expect(await timeout.getAttribute('aria-invalid')).toBe('true');
    await expect.poll(focusedId).toBe(await timeout.getAttribute('id'));
    expect((await grantry.api('GET', `/api/connectors/${ids.zuluConnector}`)).body.timeoutMs).toBe(30000);
    await timeout.fill('30000');
    await page.keyboard.press('Escape');
    await page.getByLabel('Search connectors').fill('');
  });

  it('the Connect button starts over for another authentication', async () => {
    await page.getByRole('button', { name: '+ New Connector' }).click();
    const form = panel();
    const select = form.getByLabel('Authentication', { exact: true });
    await select.selectOption(ids.codeA ?? '');
    const popupOpened = page.waitForEvent('popup');
    await form.getByRole('button', { name: 'Connect', exact: true }).click();
    const popup = await popupOpened;
    await form.getByRole('button', { name: 'Waiting for the provider…' }).waitFor();

    await select.selectOption(ids.codeB ?? '');
    await form.getByRole('button', { name: 'Connect', exact: true }).waitFor();
    expect(await form.getByRole('button', { name: 'Waiting for the provider…' }).count()).toBe(0);
    expect(await form.getByRole('button', { name: 'Stop waiting' }).count()).toBe(0);
    await popup.close();
    await page.keyboard.press('Escape');
  });

  it('a provider preset keeps the client id and secret already typed; Start from scratch keeps them too', async () => {
    await page.getByRole('link', { name: 'Authorization', exact: true }).click();
    await page.getByRole('button', { name: '+ New Authentication' }).click();
    await page.getByRole('button', { name: 'OAuth 2.0', exact: true }).click();
    const form = panel();
    await form.getByLabel('Client ID').fill('my-app');
    await form.getByLabel('Client Secret').fill('my-secret');
    const search = form.getByRole('combobox', { name: 'Start from a provider' });
    await search.fill('entra');
    await form.getByRole('option', { name: /Microsoft Entra ID/ }).click();
    await form.getByRole('region', { name: /Provider: Microsoft Entra ID/ }).waitFor();
    expect(await form.getByLabel('Token URL').inputValue()).toContain('login.microsoftonline.com');
    expect(await form.getByLabel('Client ID').inputValue()).toBe('my-app');
    expect(await form.getByLabel('Client Secret').inputValue()).toBe('my-secret');

    await form.getByRole('button', { name: 'Start from scratch' }).click();
    expect(await form.getByLabel('Token URL').inputValue()).toBe('');
    expect(await form.getByLabel('Client ID').inputValue()).toBe('my-app');
    expect(await form.getByLabel('Client Secret').inputValue()).toBe('my-secret');
  });

  it('errors of fields a new grant hides go; focus goes to the first field in error', async () => {
    const form = panel();
    await form.getByLabel('Password Grant').check();
    await form.getByLabel('Name', { exact: true }).fill('Legacy CRM');
    await form.getByLabel('Client ID').fill('');
    await form.getByRole('button', { name: 'Save authentication' }).click();
    const summary = form.locator('.error-summary');
    await summary.waitFor();
    expect(await summary.textContent()).toContain('Username');
    // The first field in error, in the form's order, has focus, and its error is tied to it.
    const tokenUrl = form.getByLabel('Token URL');
    await expect.poll(focusedId).toBe(await tokenUrl.getAttribute('id'));
    expect(await tokenUrl.getAttribute('aria-describedby')).toContain('tokenUrl-error');

    await form.getByLabel('Client Credentials').check();
    await expect.poll(() => summary.textContent()).not.toContain('Username');
    expect(await summary.textContent()).not.toContain('Password');
    expect(await summary.textContent()).toContain('Token URL');
    expect(await form.locator('[id$="-username-error"], [id$="-password-error"]').count()).toBe(0);
  });

  /** Controls without a name, buttons without a name, and errors no control points to. */
  function accessibilityGaps(): Promise<string[]> {
    return page.evaluate(() => {
      const gaps: string[] = [];
      const root = document.querySelector('[role="dialog"]') ?? document.body;
      for (const control of root.querySelectorAll<HTMLInputElement>(
        'input:not([type="hidden"]), select, textarea',
      )) {
        const named =
          (control.labels?.length ?? 0) > 0 ||
          control.getAttribute('aria-label') ||
          control.getAttribute('aria-labelledby');
        if (!named) gaps.push(`unlabelled ${control.tagName.toLowerCase()}#${control.id}`);
      }
      for (const button of root.querySelectorAll('button')) {
        if (!(button.getAttribute('aria-label') || button.textContent?.trim()))
          gaps.push(`nameless button in ${button.parentElement?.className}`);
      }
      const described = new Set(
        [...root.querySelectorAll('[aria-describedby]')].flatMap((element) =>
          (element.getAttribute('aria-describedby') ?? '').split(/\s+/),
        ),
      );
      for (const error of root.querySelectorAll('.field-error')) {
        if (!error.id || !described.has(error.id)) gaps.push(`unassociated error: ${error.textContent}`);
      }
      return gaps;
    });
  }

  it('every control and button in the panels has a name, and every field error is tied to its control', async () => {
    // The authentication form with errors showing and Advanced open.
    const form = panel();
    await form.getByText('Advanced', { exact: true }).click();
    expect(await accessibilityGaps()).toEqual([]);
    await page.keyboard.press('Escape');

    await page.getByRole('link', { name: 'REST API connectors' }).click();
    await page.getByRole('button', { name: '+ New Connector' }).click();
    await panel().getByRole('button', { name: 'Create connector' }).click();
    await panel().locator('.error-summary').waitFor();
    await expect.poll(focusedId).toMatch(/-name$/);
    expect(await accessibilityGaps()).toEqual([]);
    await page.keyboard.press('Escape');

    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('button', { name: '+ New Webhook' }).click();
    await panel().getByRole('button', { name: 'Create webhook' }).click();
    await panel().locator('.error-summary').waitFor();
    expect(await accessibilityGaps()).toEqual([]);
    await page.keyboard.press('Escape');
  });

  it('a deliveries problem goes once the deliveries read again', async () => {
    await page.getByRole('button', { name: 'On-call pager' }).click();
    const form = panel();
    await form.getByText('Nothing sent yet.').waitFor();
    await page.route('**/api/webhooks/*/deliveries', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'unavailable', message: 'The store did not answer.' } }),
      }),
    );
    await form.getByRole('button', { name: 'Refresh' }).click();
    await form.getByText('The store did not answer.').waitFor();
    await page.unroute('**/api/webhooks/*/deliveries');
    await form.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => form.getByText('The store did not answer.').count()).toBe(0);
    await page.keyboard.press('Escape');
  });

  it('the webhooks list is read again after the API key is replaced', async () => {
    await page.evaluate(() => sessionStorage.setItem('grantry.apiKey', 'not-the-key'));
    await page.reload();
    const keyField = page.getByRole('textbox', { name: 'API key' });
    await keyField.waitFor();
    expect(await page.getByText('Loading webhooks…').count()).toBe(1);
    await keyField.fill(grantry.apiKey);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('button', { name: 'On-call pager' }).waitFor();
    expect(await page.getByText('Loading webhooks…').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });
});
