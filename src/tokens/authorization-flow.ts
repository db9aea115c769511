import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { EMPTY_KEY_SET } from '../keys/key-set.js';
import { startAuthorization, validateAuthorizationCallback } from '../oauth/grants/authorization-code.js';
import { Problem, type ProblemBody } from '../problem.js';
import type { KeyRing } from '../secrets/key-ring.js';
import type { AuthenticationRecord, OAuthStateRecord, Store } from '../store/contract.js';
import { recordEvent } from './auth-events.js';
import { clientConfigOf } from './grant-runner.js';
import { oauthOf } from './oauth-settings.js';
import type { ProviderMetadata } from './provider-metadata.js';
import { sealContext } from './sealed-columns.js';
import type { TokenManager } from './token-manager.js';

/** A flow must be finished within this time (the state row expires; the cookie too). */
export const FLOW_LIFETIME_MS = 10 * 60 * 1000;

/** How long a connect link lives by default, and at most (docs/api.md "authorize"). */
export const CONNECT_LINK_DEFAULT_MS = 15 * 60 * 1000;
export const CONNECT_LINK_MAX_MS = 7 * 24 * 60 * 60 * 1000;

/** What opening a connect link found: a flow started in this browser, or why none was. */
export type ConnectLinkOutcome =
  | { outcome: 'started'; flow: StartedFlow; authenticationName: string }
  | { outcome: 'used' | 'expired' | 'changed' | 'unknown' };

/** Cookies binding a flow to its browser are named this plus a short digest of the flow's state. */
export const BROWSER_COOKIE_PREFIX = 'grantry_oauth_';

export interface AuthorizationFlowsOptions {
  store: Store;
  keyRing: KeyRing;
  tokens: TokenManager;
  metadata: ProviderMetadata;
  /** `<GRANTRY_PUBLIC_URL>/oauth/redirect`, from configuration only — never from request headers. */
  redirectUri: string;
  clock?: () => number;
}

/** A cookie that binds a flow to the browser that started it; only its sha256 is stored. */
export interface BrowserBinding {
  name: string;
  value: string;
}

export interface StartedFlow {
  authorizationUrl: string;
  browserBinding: BrowserBinding;
}

/**
 * Where a failed flow stopped: `state` — the response does not belong to a live flow of this browser
 * (forged, replayed, expired, another browser); `provider` — the provider answered with an error (or a
 * wrong `iss`); `exchange` — the code could not be exchanged for tokens.
 */
export type FlowStage = 'state' | 'provider' | 'exchange';

export type FlowOutcome =
  | { ok: true; authenticationId: string }
  | { ok: false; authenticationId: string | null; stage: FlowStage; problem: Problem };

/**
 * The Authorization Code flow (RFC 6749 §4.1) around the protocol functions: where its state lives,
 * who may finish it, and what is recorded. The state is kept in the store (any instance can finish a
 * flow another one started), hashed, with the PKCE verifier sealed, bound to the authentication, its
 * configuration generation and the starting browser, and consumed exactly once.
 */
export class AuthorizationFlows {
  readonly #store: Store;
  readonly #ring: KeyRing;
  readonly #tokens: TokenManager;
  readonly #metadata: ProviderMetadata;
  readonly #redirectUri: string;
  readonly #clock: () => number;

  constructor(options: AuthorizationFlowsOptions) {
    this.#store = options.store;
    this.#ring = options.keyRing;
    this.#tokens = options.tokens;
    this.#metadata = options.metadata;
    this.#redirectUri = options.redirectUri;
    this.#clock = options.clock ?? Date.now;
  }

  /**
   * Starts a flow: a fresh `state` (256 random bits, RFC 6749 §10.12) and, unless the authentication
   * turned it off, a fresh PKCE verifier (RFC 7636 §4.1, S256); both stay server-side.
   */
  async start(record: AuthenticationRecord): Promise<StartedFlow> {
    this.#assertConnectable(record);
    // The authorization request carries no secret, so none is decrypted for it.
    const config = clientConfigOf(record, { clientSecret: '', password: null, keys: EMPTY_KEY_SET });
    const { authorizationUrl, state, codeVerifier } = await startAuthorization(config, this.#redirectUri);
    const stateHash = sha256(state);
    const browserBinding = {
      name: browserCookieName(stateHash),
      value: randomBytes(32).toString('base64url'),
    };
    const now = this.#clock();
    const flow: OAuthStateRecord = {
      stateHash,
      authId: record.id,
      browserHash: sha256(browserBinding.value),
      codeVerifier:
        codeVerifier === null ? null : this.#ring.seal(codeVerifier, sealContext.codeVerifier(stateHash)),
      redirectUri: this.#redirectUri,
      generation: record.generation,
      createdAt: now,
      expiresAt: now + FLOW_LIFETIME_MS,
    };
    await this.#store.oauthStates.insert(flow);
    // Housekeeping and a warm metadata cache for the redirect; neither may fail the start.
    void this.#store.oauthStates.deleteExpired(now).catch(() => {});
    void this.#metadata.forTokenUrl(oauthOf(record).settings.tokenUrl);
    return { authorizationUrl: authorizationUrl.href, browserBinding };
  }

  /**
   * Makes a one-time link that starts this authentication's flow in whatever browser opens it, so
   * that the flow can be bound to the browser of the person who consents (the account's owner),
   * not to the one that asked for the link. The link carries 256 random bits; only its hash is kept.
   */
  async createConnectLink(
    record: AuthenticationRecord,
    lifetimeMs: number,
  ): Promise<{ token: string; expiresAt: number }> {
    this.#assertConnectable(record);
    const token = randomBytes(32).toString('base64url');
    const now = this.#clock();
    const expiresAt = now + lifetimeMs;
    await this.#store.connectLinks.insert({
      tokenHash: sha256(token),
      authId: record.id,
      generation: record.generation,
      createdAt: now,
      expiresAt,
      usedAt: null,
    });
    // Housekeeping: links are remembered a week past their expiry, so a late click still hears why.
    void this.#store.connectLinks.deleteExpired(now - CONNECT_LINK_MAX_MS).catch(() => {});
    return { token, expiresAt };
  }

  /**
   * Opens a connect link: used at most once (atomically, on any instance), then a fresh flow is
   * started and bound to the browser that opened it. A link of settings that changed since is refused.
   */
  async openConnectLink(token: string): Promise<ConnectLinkOutcome> {
    const use = await this.#store.connectLinks.use(sha256(token), this.#clock());
    if (use.outcome !== 'ok') return { outcome: use.outcome };
    const record = await this.#store.authentications.get(use.link.authId);
    if (record === null) return { outcome: 'unknown' };
    if (record.generation !== use.link.generation || record.grantType !== 'authorization_code') {
      return { outcome: 'changed' };
    }
    return { outcome: 'started', flow: await this.start(record), authenticationName: record.name };
  }

  #assertConnectable(record: AuthenticationRecord): void {
    if (record.type !== 'oauth2' || record.grantType !== 'authorization_code') {
      throw new Problem(
        'validation_failed',
        'Only Authorization Code authentications are connected in a browser.',
        {
          errors: [{ path: '/grantType', message: 'must be authorization_code to authorize' }],
          hint: 'Client Credentials and Password authentications fetch tokens on their own: use Test instead.',
        },
      );
    }
  }

  /**
   * Finishes a flow from the redirect's query parameters (RFC 6749 §4.1.2) and the cookies the browser
   * sent. The state is consumed before anything else, so a replayed or forged response never reaches
   * the token endpoint; `iss` is required and compared when the provider's metadata says it sends it
   * (RFC 9207 §2.4); the code is exchanged with the flow's verifier and the same redirect URI.
   */
  async finish(parameters: URLSearchParams, cookies: Readonly<Record<string, string>>): Promise<FlowOutcome> {
    const states = parameters.getAll('state');
    const state = states.length === 1 ? states[0] : undefined;
    if (state === undefined || state === '') {
      return stateFailure(
        null,
        'The response from the provider carries no state, so it cannot be matched to a flow.',
      );
    }
    const stateHash = sha256(state);
    const flow = await this.#store.oauthStates.consumeOne(stateHash, this.#clock());
    if (flow === null) {
      return stateFailure(
        null,
        'This authorization response has expired or was already used, or it was not started by Grantry.',
      );
    }

    const cookie = cookies[browserCookieName(stateHash)];
    if (cookie === undefined || !sameDigest(sha256(cookie), flow.browserHash)) {
      const outcome = stateFailure(
        flow.authId,
        'The authorization was finished in a different browser than the one that started it.',
        `Start and finish the connection in the same browser, with Grantry opened at ${new URL(flow.redirectUri).origin}.`,
      );
      await this.#recordFailure(flow.authId, outcome.problem, 'state', false);
      return outcome;
    }

    const record = await this.#store.authentications.get(flow.authId);
    if (record === null) {
      return {
        ok: false,
        authenticationId: flow.authId,
        stage: 'state',
        problem: new Problem('not_found', 'The authentication was deleted while it was being connected.'),
      };
    }
    if (record.generation !== flow.generation) {
      const outcome = stateFailure(
        record.id,
        'The authentication’s settings changed while it was being connected; this response belongs to the old settings.',
      );
      await this.#recordFailure(record.id, outcome.problem, 'state', false);
      return outcome;
    }

    const { settings } = oauthOf(record);
    const metadata = await this.#metadata.forTokenUrl(settings.tokenUrl);
    let code: string;
    try {
      ({ code } = validateAuthorizationCallback(parameters, {
        state,
        issuer: metadata?.issuer ?? null,
        issParameterSupported: metadata?.issParameterSupported ?? false,
        clientId: settings.clientId,
        redirectUri: flow.redirectUri,
      }));
    } catch (error) {
      const problem = asProblem(error);
      await this.#recordFailure(record.id, problem, 'provider', true);
      return { ok: false, authenticationId: record.id, stage: 'provider', problem };
    }

    try {
      const codeVerifier =
        flow.codeVerifier === null
          ? null
          : this.#ring.open(flow.codeVerifier, sealContext.codeVerifier(stateHash));
      await this.#tokens.exchangeCode(record, { code, codeVerifier, redirectUri: flow.redirectUri });
    } catch (error) {
      const problem = asProblem(error);
      await this.#recordFailure(record.id, problem, 'exchange', true);
      return { ok: false, authenticationId: record.id, stage: 'exchange', problem };
    }
    return { ok: true, authenticationId: record.id };
  }

  /**
   * An `authorization_failed` event, and the problem as lastError (the status stays: a failed
   * reconnect leaves working tokens alone). State failures set no lastError: they may come from
   * someone else's browser.
   */
  async #recordFailure(
    authId: string,
    problem: Problem,
    stage: FlowStage,
    setLastError: boolean,
  ): Promise<void> {
    const detail: Record<string, unknown> = { stage, code: problem.code, message: problem.message };
    if (problem.provider?.error !== undefined) detail.providerError = problem.provider.error;
    if (problem.provider?.errorDescription !== undefined)
      detail.providerErrorDescription = problem.provider.errorDescription;
    if (problem.provider?.status !== undefined) detail.providerStatus = problem.provider.status;
    try {
      await recordEvent(this.#store, authId, 'authorization_failed', detail, this.#clock());
      if (setLastError) {
        const current = await this.#store.authentications.get(authId);
        if (current !== null) {
          await this.#store.authentications.setStatus(
            authId,
            current.status,
            problem.toJSON() satisfies ProblemBody,
          );
        }
      }
    } catch {
      // The person sees the outcome on the page; a store hiccup must not turn it into a 500.
    }
  }
}

function browserCookieName(stateHash: string): string {
  return `${BROWSER_COOKIE_PREFIX}${stateHash.slice(0, 16)}`;
}

/** The name of the cookie that binds the flow of this `state` to its browser. */
export function browserCookieNameForState(state: string): string {
  return browserCookieName(sha256(state));
}

function stateFailure(
  authenticationId: string | null,
  message: string,
  hint = 'Start the connection again from Grantry (Connect), and finish it within 10 minutes.',
): { ok: false; authenticationId: string | null; stage: 'state'; problem: Problem } {
  return {
    ok: false,
    authenticationId,
    stage: 'state',
    problem: new Problem('invalid_state', message, { hint }),
  };
}

function asProblem(error: unknown): Problem {
  if (error instanceof Problem) return error;
  return new Problem('internal_error', 'Something went wrong inside Grantry; the details are in its log.', {
    cause: error,
  });
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

function sameDigest(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
