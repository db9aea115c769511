import { describe, expect, it } from 'vitest';
import { ProviderCatalogue } from '../src/providers/provider-catalogue.js';
import type { AuthenticationView } from '../src/services/authentication-view.js';
import {
  createRequestOf,
  draftFromAuthentication,
  draftFromPreset,
  emptyAuthenticationDraft,
  patchRequestOf,
} from '../web/src/authentication-draft.js';

/**
 * The console's authentication form state (web/src/authentication-draft.ts), read off the same
 * catalogue as the server: what a new authentication starts with, and the requests made from it.
 */
function view(overrides: Partial<AuthenticationView> = {}): AuthenticationView {
  return {
    id: 'auth_1',
    name: 'Calendar',
    type: 'oauth2',
    grantType: 'authorization_code',
    authorizationUrl: 'https://login.example.test/authorize',
    tokenUrl: 'https://login.example.test/token',
    clientId: 'client',
    clientSecretSet: true,
    headerPrefix: 'Bearer',
    clientAuthMethod: 'client_secret_basic',
    audienceParam: 'audience',
    pkce: true,
    status: 'connected',
    token: null,
    lastError: null,
    usedBy: [],
    usage: { calls: 0, unauthorized: 0, refreshes: 0 },
    warnings: [],
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  } as AuthenticationView;
}

describe('the console’s authentication draft', () => {
  it('starts a new OAuth 2.0 authentication with clientAuthMethod auto, and sends it', () => {
    const draft = emptyAuthenticationDraft('oauth2');
    expect(draft.values.clientAuthMethod).toBe('auto');
    draft.name = 'Billing';
    Object.assign(draft.values, {
      grantType: 'client_credentials',
      tokenUrl: 'https://login.example.test/token',
      clientId: 'c',
      clientSecret: 's',
    });
    expect(createRequestOf(draft)).toMatchObject({ clientAuthMethod: 'auto' });
  });

  it('leaves an existing authentication’s method as it is stored: opening and saving changes nothing', () => {
    const existing = view();
    const draft = draftFromAuthentication(existing);
    expect(draft.values.clientAuthMethod).toBe('client_secret_basic');
    expect(patchRequestOf(draft, existing)).toEqual({});
  });

  it('sends keepAliveDays as a number, and an emptied one as null', () => {
    const existing = view({ keepAliveDays: 45 });
    const draft = draftFromAuthentication(existing);
    expect(draft.values.keepAliveDays).toBe('45');
    draft.values.keepAliveDays = '30';
    expect(patchRequestOf(draft, existing)).toEqual({ keepAliveDays: 30 });
    draft.values.keepAliveDays = '';
    expect(patchRequestOf(draft, existing)).toEqual({ keepAliveDays: null });
  });

  it('fills keepAliveDays from a preset as the server does', () => {
    const catalogue = new ProviderCatalogue();
    const xero = catalogue.get('xero');
    expect(xero?.refreshTokenIdleExpiryDays).toBe(60);
    const draft = draftFromPreset(xero as NonNullable<typeof xero>, emptyAuthenticationDraft('oauth2'));
    expect(draft.values.keepAliveDays).toBe('45');
    expect(catalogue.fill({ provider: 'xero' }).body.keepAliveDays).toBe(45);
    // GitHub documents no idle expiry: nothing is filled.
    const github = catalogue.get('github');
    expect(github?.refreshTokenIdleExpiryDays).toBeNull();
    const plain = draftFromPreset(github as NonNullable<typeof github>, emptyAuthenticationDraft('oauth2'));
    expect(plain.values.keepAliveDays).toBe('');
  });
});
