/**
 * The console's side of keys (docs/keys.md), in Chromium: the client authentication choice under
 * Advanced, a key Grantry makes shown under "Keys" with Copy buttons (the test registers what it
 * copied at a real oidc-provider and tests the authentication), the three rotation steps, and
 * "Import Google service account" in the Google preset.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureWebBuild, launchChromium } from '../support/browser.js';
import { freePort, type GrantryHandle, startGrantry } from '../support/grantry.js';
import { type OidcFixture, startOidcProvider } from '../support/oidc.js';

describe('keys in the console (Chromium)', { timeout: 120_000 }, () => {
  let oidc: OidcFixture;
  let grantry: GrantryHandle;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ui: string;
  const pageErrors: string[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'grantry-e2e-keys-'));

  beforeAll(async () => {
    await ensureWebBuild();
    const port = await freePort();
    ui = `http://localhost:${port}`;
    oidc = await startOidcProvider();
    grantry = await startGrantry({ port, dataDir, env: { GRANTRY_PUBLIC_URL: ui } });
    browser = await launchChromium();
    context = await browser.newContext({
      viewport: { width: 1440, height: 900 },
      locale: 'en-US',
      permissions: ['clipboard-read', 'clipboard-write'],
    });
    page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(ui);
    await page.getByLabel('API key').fill(grantry.apiKey);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('link', { name: 'Authorization', exact: true }).waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    await grantry?.stop();
    await oidc?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const panel = () => page.getByRole('dialog');
  const clipboard = () => page.evaluate(() => navigator.clipboard.readText());

  it('private_key_jwt with a key Grantry makes: the public JWK copied from Keys and registered works; a rotation in three steps', async () => {
    await page.getByRole('link', { name: 'Authorization', exact: true }).click();
    await page.getByRole('button', { name: '+ New Authentication' }).click();
    await page.getByRole('button', { name: 'OAuth 2.0', exact: true }).click();
    const form = panel();
    await form.getByLabel('Name', { exact: true }).fill('Billing (private key)');
    await form.getByLabel('Token URL').fill(oidc.tokenUrl);
    await form.getByLabel('Client ID').fill('billing-pkj');
    await form.getByText('Advanced', { exact: true }).click();
    await form.getByLabel('Client authentication method').selectOption('private_key_jwt');
    // No secret with a private key: the field goes, the key fields come.
    expect(await form.getByLabel('Client Secret', { exact: true }).count()).toBe(0);
    await form.getByLabel('Signing algorithm').selectOption('ES256');
    await form.getByLabel('Let Grantry make the key pair').check();
    await form.getByLabel('Publish the public keys (JWKS)').check();
    await form.getByRole('button', { name: 'Save authentication' }).click();
    await form.getByRole('heading', { name: 'Billing (private key)' }).waitFor();

    const keys = form.getByRole('region', { name: 'Keys' });
    await keys.getByText('Signing').first().waitFor();
    const jwkField = keys.getByLabel('Public key (JWK)', { exact: true });
    expect(await jwkField.inputValue()).not.toContain('"d"');
    await keys.locator('.key-card').first().getByRole('button', { name: 'Copy' }).nth(1).click();
    const copied = JSON.parse(await clipboard()) as Record<string, string>;
    expect(copied).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(
      (await keys.getByLabel('Public key (PEM)', { exact: true }).inputValue()).startsWith(
        '-----BEGIN PUBLIC KEY-----',
      ),
    ).toBe(true);
    const jwksUri = await keys.getByLabel('JWKS URL (jwks_uri)', { exact: true }).inputValue();
    expect(jwksUri).toMatch(new RegExp(`^${ui}/jwks/auth_[^/]+\\.json$`));

    await oidc.registerClient({
      client_id: 'billing-pkj',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [copied] },
    });
    await form.getByRole('button', { name: 'Test', exact: true }).click();
    await form.locator('.test-output .result').getByText('Grantry has a valid access token.').waitFor();

    // Rotation: add, register both (as a provider fetching the JWKS would), activate, finish.
    await keys.getByRole('button', { name: 'Add next key' }).click();
    await keys.getByText('Next: waiting to be activated').waitFor();
    const both = (await (await fetch(jwksUri)).json()) as { keys: Record<string, string>[] };
    expect(both.keys).toHaveLength(2);
    await oidc.registerClient({
      client_id: 'billing-pkj',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: both,
    });
    await keys.getByRole('button', { name: 'Activate next key' }).click();
    await keys.getByText('Retiring: still published').waitFor();
    await keys.getByRole('button', { name: 'Finish rotation' }).click();
    await expect.poll(() => keys.locator('.key-card').filter({ hasText: 'Key ID' }).count()).toBe(1);
    const after = (await (await fetch(jwksUri)).json()) as { keys: Record<string, string>[] };
    expect(after.keys.map((k) => k.kid)).toEqual([both.keys[1]?.kid]);
    await page.keyboard.press('Escape');
  });

  it('an activation the provider refuses says so, and the old key keeps signing', async () => {
    await page.getByRole('button', { name: 'Billing (private key)' }).click();
    const keys = panel().getByRole('region', { name: 'Keys' });
    await keys.getByRole('button', { name: 'Add next key' }).click();
    await keys.getByRole('button', { name: 'Activate next key' }).click();
    await keys.getByText(/the old key signs again/).waitFor();
    expect(await keys.getByText('Next: waiting to be activated').count()).toBe(1);
    await keys.getByRole('button', { name: 'Finish rotation' }).waitFor();
    await page.keyboard.press('Escape');
  });

  it('imports a Google service account from the Google preset in one step', async () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const keyId = randomBytes(20).toString('hex');
    const file = JSON.stringify({
      type: 'service_account',
      project_id: 'console-test',
      private_key_id: keyId,
      private_key: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: 'reader@console-test.iam.gserviceaccount.com',
      token_uri: 'https://oauth2.googleapis.com/token',
    });
    await page.getByRole('button', { name: '+ New Authentication' }).click();
    await page.getByRole('button', { name: 'OAuth 2.0', exact: true }).click();
    const form = panel();
    const search = form.getByRole('combobox', { name: 'Start from a provider' });
    await search.fill('google');
    await form
      .getByRole('option', { name: /^Google/ })
      .first()
      .click();
    await form.getByRole('button', { name: 'Import Google service account' }).click();
    const importer = form.getByRole('group', { name: 'Import Google service account' });
    await importer.getByLabel('Name', { exact: true }).fill('Drive reader');
    await importer.getByLabel('…or paste its contents').fill(file);
    await importer.getByLabel('Scopes').fill('https://www.googleapis.com/auth/drive.readonly');
    await importer.getByRole('button', { name: 'Import and save' }).click();
    await form.getByRole('heading', { name: 'Drive reader' }).waitFor();
    const keys = form.getByRole('region', { name: 'Keys' });
    expect(await keys.getByLabel('Key ID (kid)', { exact: true }).inputValue()).toBe(keyId);
    const saved = (await grantry.api('GET', '/api/authentications?q=Drive')).body.items[0];
    expect(saved).toMatchObject({
      grantType: 'jwt_bearer',
      clientAuthMethod: 'none',
      assertion: {
        iss: 'reader@console-test.iam.gserviceaccount.com',
        aud: 'https://oauth2.googleapis.com/token',
        claims: { scope: 'https://www.googleapis.com/auth/drive.readonly' },
      },
    });
    expect(JSON.stringify(saved)).not.toContain('PRIVATE KEY');
    await page.keyboard.press('Escape');
  });

  it('ran without a script error in the page', () => {
    expect(pageErrors).toEqual([]);
  });
});
