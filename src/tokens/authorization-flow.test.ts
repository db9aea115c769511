import { createHash, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord, Store } from '../store/contract.js';
import { openStore } from '../store/open-store.js';
import { AuthorizationFlows, browserCookieNameForState, FLOW_LIFETIME_MS } from './authorization-flow.js';
import { ProviderMetadata } from './provider-metadata.js';
import { sealContext } from './sealed-columns.js';
import { TokenManager } from './token-manager.js';

/**
 * The flow's bookkeeping against a real (in-memory SQLite) store. No provider is reachable here:
 * every outbound request fails the test, since none of these cases may reach the token endpoint.
 */
const REDIRECT_URI = 'https://grantry.example.com/oauth/redirect';

describe('AuthorizationFlows', () => {
  let store: Store;
  let ring: KeyRing;
  let tokens: TokenManager;
  let flows: AuthorizationFlows;
  let now: number;
  let outbound: string[];

  beforeEach(async () => {
    store = await openStore('sqlite::memory:');
    await store.migrate();
    ring = new KeyRing(randomBytes(32));
    now = Date.UTC(2026, 0, 1);
    outbound = [];
    const fetch: typeof globalThis.fetch = async (input) => {
      outbound.push(String(input instanceof Request ? input.url : input));
      throw new Error('no network in this test');
    };
    tokens = new TokenManager({
      store,
      keyRing: ring,
      fetch,
      tokenTimeoutMs: 1000,
      redirectUri: REDIRECT_URI,
    });
    flows = new AuthorizationFlows({
      store,
      keyRing: ring,
      tokens,
      metadata: new ProviderMetadata({ fetch, timeoutMs: 1000 }),
      redirectUri: REDIRECT_URI,
      clock: () => now,
    });
  });
  afterEach(async () => {
    tokens.close();
    await store.close();
  });

  async function authentication(
    overrides: Partial<AuthenticationRecord> = {},
  ): Promise<AuthenticationRecord> {
    const id = `auth_${randomBytes(6).toString('hex')}`;
    const record: AuthenticationRecord = {
      id,
      name: id,
      type: 'oauth2',
      grantType: 'authorization_code',
      settings: {
        authorizationUrl: 'https://login.example.com/authorize',
        tokenUrl: 'https://login.example.com/token',
        clientId: 'client',
        headerPrefix: 'Bearer',
        audienceParam: 'audience',
        clientAuthMethod: 'client_secret_basic',
        scope: 'read',
      },
      secrets: { client_secret: ring.seal('secret', sealContext.clientSecret(id)) },
      status: 'needs_authorization',
      lastError: null,
      generation: 1,
      calls: 0,
      unauthorizedCount: 0,
      refreshCount: 0,
      createdAt: now,
      updatedAt: now,
      ...overrides,
    };
    await store.authentications.insert(record);
    return record;
  }

  function startedParameters(authorizationUrl: string) {
    const url = new URL(authorizationUrl);
    return { state: url.searchParams.get('state') ?? '', challenge: url.searchParams.get('code_challenge') };
  }

  it('stores only hashes of the state and the browser binding, and the verifier sealed, for 10 minutes', async () => {
    const record = await authentication();
    const started = await flows.start(record);
    const { state, challenge } = startedParameters(started.authorizationUrl);
    const stateHash = createHash('sha256').update(state).digest('hex');
    expect(started.browserBinding.name).toBe(browserCookieNameForState(state));

    const flow = await store.oauthStates.consumeOne(stateHash, now);
    expect(flow).toMatchObject({
      authId: record.id,
      browserHash: createHash('sha256').update(started.browserBinding.value).digest('hex'),
      redirectUri: REDIRECT_URI,
      generation: 1,
      expiresAt: now + FLOW_LIFETIME_MS,
    });
    const verifier = ring.open(flow?.codeVerifier ?? '', sealContext.codeVerifier(stateHash));
    expect(verifier).toMatch(/^[\w-]{43}$/);
    expect(createHash('sha256').update(verifier).digest('base64url')).toBe(challenge);
    expect(JSON.stringify(flow)).not.toContain(state);
    expect(JSON.stringify(flow)).not.toContain(verifier);
  });

  it('refuses to start a flow for another grant type', async () => {
    const record = await authentication({ grantType: 'client_credentials' });
    await expect(flows.start(record)).rejects.toMatchObject({ code: 'validation_failed' });
  });

  it('refuses an expired flow, and a flow whose settings changed meanwhile, without any request', async () => {
    const record = await authentication();
    const late = await flows.start(record);
    now += FLOW_LIFETIME_MS + 1;
    const expired = await flows.finish(
      new URLSearchParams({ code: 'c', state: startedParameters(late.authorizationUrl).state }),
      { [late.browserBinding.name]: late.browserBinding.value },
    );
    expect(expired).toMatchObject({ ok: false, stage: 'state', problem: { code: 'invalid_state' } });

    const changed = await flows.start(record);
    await store.authentications.update({ ...record, generation: 2 });
    const outcome = await flows.finish(
      new URLSearchParams({ code: 'c', state: startedParameters(changed.authorizationUrl).state }),
      { [changed.browserBinding.name]: changed.browserBinding.value },
    );
    expect(outcome).toMatchObject({
      ok: false,
      authenticationId: record.id,
      problem: { code: 'invalid_state' },
    });
    expect(outcome.ok || outcome.problem.message).toMatch(/settings changed/);
    expect(outbound.filter((url) => url.endsWith('/token'))).toEqual([]);
  });

  it('consumes a state once: a second finish, even with the right cookie, is refused', async () => {
    const record = await authentication();
    const started = await flows.start(record);
    const parameters = new URLSearchParams({
      error: 'access_denied',
      state: startedParameters(started.authorizationUrl).state,
    });
    const cookies = { [started.browserBinding.name]: started.browserBinding.value };
    expect(await flows.finish(parameters, cookies)).toMatchObject({
      ok: false,
      stage: 'provider',
      problem: { code: 'access_denied' },
    });
    expect(await flows.finish(parameters, cookies)).toMatchObject({
      ok: false,
      authenticationId: null,
      problem: { code: 'invalid_state' },
    });
    const [event] = await store.events.list(record.id, 1);
    expect(event).toMatchObject({ type: 'authorization_failed', detail: { code: 'access_denied' } });
  });

  it('refuses a response without exactly one state', async () => {
    expect(await flows.finish(new URLSearchParams({ code: 'c' }), {})).toMatchObject({
      ok: false,
      problem: { code: 'invalid_state' },
    });
    expect(await flows.finish(new URLSearchParams('code=c&state=a&state=b'), {})).toMatchObject({
      ok: false,
      problem: { code: 'invalid_state' },
    });
  });
});
