import { type FieldError, Problem, type ProblemBody } from '../problem.js';
import type { ProviderCatalogue } from '../providers/provider-catalogue.js';
import type { KeyRing } from '../secrets/key-ring.js';
import type {
  AuthenticationRecord,
  AuthenticationType,
  AuthStatus,
  Sealed,
  Store,
  TokenRecord,
} from '../store/contract.js';
import { recordEvent } from '../tokens/auth-events.js';
import {
  type AuthorizationFlows,
  CONNECT_LINK_DEFAULT_MS,
  type ConnectLinkOutcome,
  type FlowOutcome,
  type StartedFlow,
} from '../tokens/authorization-flow.js';
import { openAuthenticationSecret, sealContext } from '../tokens/sealed-columns.js';
import type { TokenManager, TokenSource } from '../tokens/token-manager.js';
import {
  type AuthenticationDraft,
  draftForCreate,
  draftForPatch,
  readAuthenticationRequest,
  secretColumn,
  secretFieldsOf,
  settingsOf,
} from './authentication-draft.js';
import {
  checkAuthenticationDraft,
  checkCredentialDestinations,
  tokenShapingFields,
} from './authentication-rules.js';
import {
  type AuthenticationView,
  authenticationView,
  type EventView,
  eventView,
  type TokenMetadata,
  tokenMetadata,
} from './authentication-view.js';
import { type AllowHttp, throwIfInvalid } from './field-checks.js';
import { newId } from './ids.js';
import { DEFAULT_PAGE_SIZE, decodeCursor, type Page, pageOf } from './list-page.js';

/** What a list of authentications may be narrowed by (docs/api.md). */
export interface ListQuery {
  limit?: number | undefined;
  cursor?: string | undefined;
  /** Case-insensitive substring of the name. */
  q?: string | undefined;
  type?: AuthenticationType | undefined;
  status?: AuthStatus | undefined;
}

export interface TokenTestResult {
  ok: boolean;
  /** What was fetched (never the token); null for a static credential, which has nothing to fetch. */
  token?: (TokenMetadata & { source: TokenSource }) | null;
  error?: ProblemBody;
}

export interface AuthenticationServiceOptions {
  store: Store;
  keyRing: KeyRing;
  tokens: TokenManager;
  flows: AuthorizationFlows;
  /** Revokes an authentication's tokens at the provider before it is deleted (RFC 7009). */
  revokeOnDelete: (record: AuthenticationRecord) => Promise<void>;
  /** `<GRANTRY_PUBLIC_URL>/oauth/redirect`, shown on Authorization Code authentications. */
  redirectUri: string;
  allowHttp: AllowHttp;
  /** Provider presets a create request may start from (`provider`, `providerParams`). */
  providers: ProviderCatalogue;
  /** `<GRANTRY_PUBLIC_URL>/oauth/connect`: where connect links point. */
  connectBaseUrl: string;
}

/**
 * The lifecycle of authentications, whoever asks (the HTTP API, the CLI): create, change, delete,
 * test, connect — and every rule of it that is not HTTP. A change that shapes the token request
 * bumps the generation, resets the status, drops the tokens, records the event and tells every
 * instance; a delete detaches, revokes and tells every instance.
 */
export class AuthenticationService {
  readonly #store: Store;
  readonly #ring: KeyRing;
  readonly #tokens: TokenManager;
  readonly #flows: AuthorizationFlows;
  readonly #revokeOnDelete: AuthenticationServiceOptions['revokeOnDelete'];
  readonly #redirectUri: string;
  readonly #allowHttp: AllowHttp;
  readonly #providers: ProviderCatalogue;
  readonly #connectBaseUrl: string;

  constructor(options: AuthenticationServiceOptions) {
    this.#store = options.store;
    this.#ring = options.keyRing;
    this.#tokens = options.tokens;
    this.#flows = options.flows;
    this.#revokeOnDelete = options.revokeOnDelete;
    this.#redirectUri = options.redirectUri;
    this.#allowHttp = options.allowHttp;
    this.#providers = options.providers;
    this.#connectBaseUrl = options.connectBaseUrl;
  }

  /** The record, or `not_found`. */
  async record(id: string): Promise<AuthenticationRecord> {
    const record = await this.#store.authentications.get(id);
    if (record === null) throw new Problem('not_found', 'No authentication with this id.');
    return record;
  }

  async get(id: string): Promise<AuthenticationView> {
    return this.#view(await this.record(id));
  }

  /**
   * A page of authentications ordered by name, then id, in three queries whatever the page size
   * (the page, its tokens, the connectors using them): no query per row, and keyset pagination, so
   * a page deep in 100,000 rows costs what the first one does.
   */
  async list(query: ListQuery = {}): Promise<Page<AuthenticationView>> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const records = await this.#store.authentications.page({
      limit: limit + 1,
      after: decodeCursor(query.cursor),
      nameContains: query.q,
      type: query.type,
      status: query.status,
    });
    const ids = records.slice(0, limit).map((r) => r.id);
    const [tokenRows, users] = await Promise.all([
      this.#store.tokens.getMany(ids),
      this.#store.connectors.usersOf(ids),
    ]);
    const tokensByAuth = new Map(tokenRows.map((t) => [t.authId, t]));
    const usedBy = new Map<string, string[]>();
    for (const user of users) {
      const list = usedBy.get(user.authenticationId) ?? [];
      list.push(user.id);
      usedBy.set(user.authenticationId, list);
    }
    return pageOf(records, limit, (shown) =>
      shown.map((r) =>
        authenticationView(r, tokensByAuth.get(r.id) ?? null, usedBy.get(r.id) ?? [], this.#redirectUri),
      ),
    );
  }

  /**
   * Creates an authentication from a request body. `schemaErrors` are what the transport's schema
   * check found, so that one `validation_failed` lists every problem at once.
   */
  async create(body: Record<string, unknown>, schemaErrors: FieldError[] = []): Promise<AuthenticationView> {
    // A preset fills what the request leaves out; what it gives explicitly wins.
    const preset = this.#providers.fill(body);
    const draft = draftForCreate(readAuthenticationRequest(preset.body));
    const rules = checkAuthenticationDraft(draft, this.#allowHttp);
    throwIfInvalid(
      schemaErrors,
      [...preset.errors, ...rules.errors],
      rules.onlyInsecureUrls && preset.errors.length === 0,
    );
    const valid = draft as AuthenticationDraft & {
      type: NonNullable<AuthenticationDraft['type']>;
      name: string;
    };
    await this.#assertNameFree(valid.name);
    const id = newId('auth');
    const now = Date.now();
    const record: AuthenticationRecord = {
      id,
      name: valid.name,
      type: valid.type,
      grantType: valid.type === 'oauth2' ? (valid.grantType ?? null) : null,
      settings: settingsOf(valid),
      secrets: this.#sealSecrets(id, valid, {}),
      status: initialStatus(valid),
      lastError: null,
      generation: 1,
      calls: 0,
      unauthorizedCount: 0,
      refreshCount: 0,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.#store.authentications.insert(record);
    } catch (error) {
      throw nameTaken(error, valid.name);
    }
    return this.#view(record, null, []);
  }

  /**
   * Applies a PATCH: omitted fields keep their value, `null` clears an optional one. A change to a
   * field that shapes the token request — or moving a credential endpoint to another origin, which
   * also needs the secrets again — drops the cached and stored tokens.
   */
  async update(
    id: string,
    body: Record<string, unknown>,
    schemaErrors: FieldError[] = [],
  ): Promise<AuthenticationView> {
    const record = await this.record(id);
    const request = readAuthenticationRequest(body);
    const draft = draftForPatch(record, request);
    const rules = checkAuthenticationDraft(draft, this.#allowHttp);
    const destinations =
      record.type === 'oauth2'
        ? checkCredentialDestinations(
            record.settings,
            {
              tokenUrl: draft.values.tokenUrl as string | undefined,
              authorizationUrl: draft.values.authorizationUrl as string | undefined,
              revocationUrl: draft.values.revocationUrl as string | undefined,
            },
            draft.grantType,
            draft.givenSecrets,
          )
        : { errors: [], moved: [] };
    throwIfInvalid(
      schemaErrors,
      [...rules.errors, ...destinations.errors],
      rules.onlyInsecureUrls && destinations.errors.length === 0,
    );
    if (draft.name !== undefined && draft.name !== record.name)
      await this.#assertNameFree(draft.name, record.id);

    const settings = settingsOf(draft);
    const secrets = this.#sealSecrets(record.id, draft, record.secrets);
    const endpointsMoved = destinations.moved.length > 0;
    const shapesTokens =
      endpointsMoved ||
      draft.grantType !== (record.grantType ?? undefined) ||
      this.#secretsChanged(record, draft) ||
      tokenShapingFields(draft).some(
        (field) =>
          JSON.stringify((settings as Record<string, unknown>)[field]) !==
          JSON.stringify((record.settings as Record<string, unknown>)[field]),
      );

    const updated: AuthenticationRecord = {
      ...record,
      name: draft.name ?? record.name,
      grantType: record.type === 'oauth2' ? (draft.grantType ?? null) : null,
      settings,
      secrets,
      updatedAt: Date.now(),
    };
    // A static credential has no generation of tokens, but its secret changed: callers must pick
    // the new one up, which the change notice below makes them do.
    if (shapesTokens) {
      updated.generation = record.generation + 1;
      updated.status = initialStatus(draft);
      updated.lastError = null;
    }
    try {
      await this.#store.authentications.update(updated);
    } catch (error) {
      throw nameTaken(error, updated.name);
    }
    if (shapesTokens && record.type === 'oauth2') {
      await this.#store.tokens.delete(record.id);
      await recordEvent(this.#store, record.id, 'configuration_changed', {
        tokensDropped: true,
        ...(endpointsMoved ? { endpointsMovedToAnotherOrigin: destinations.moved } : {}),
      });
    }
    this.#tokens.forget(record.id);
    await this.#store.publish({ kind: 'authentication_changed', authId: record.id });
    return this.#view(updated);
  }

  /**
   * Deletes an authentication. While connectors use it, `conflict` names them, unless `force`
   * detaches them first (they then call their APIs without credentials). Stored tokens are revoked
   * at the provider when it has a revocation endpoint.
   */
  async delete(id: string, options: { force?: boolean } = {}): Promise<{ detached: string[] }> {
    const record = await this.record(id);
    const users = await this.#store.connectors.listByAuthentication(record.id);
    if (users.length > 0 && options.force !== true) {
      const names = users.map((c) => `"${c.name}"`).join(', ');
      throw new Problem(
        'conflict',
        `This authentication is used by ${users.length === 1 ? 'the connector' : `${users.length} connectors:`} ${names}.`,
        {
          hint: `Attach another authentication to ${names} first, or delete it anyway (DELETE …?force=true): ${users.length === 1 ? 'the connector is' : 'they are'} then detached and call ${users.length === 1 ? 'its API' : 'their APIs'} without credentials.`,
        },
      );
    }
    let detached: string[] = [];
    if (users.length > 0) {
      detached = await this.#store.connectors.detachAuthentication(record.id);
      for (const connectorId of detached)
        await this.#store.publish({ kind: 'connector_changed', connectorId });
    }
    await this.#revokeOnDelete(record);
    await this.#store.authentications.delete(record.id);
    this.#tokens.forget(record.id);
    await this.#store.publish({ kind: 'authentication_deleted', authId: record.id });
    return { detached };
  }

  /**
   * The Test button: a real token request (the remembered back-off is ignored: a person wants an
   * attempt), reported as metadata or as the diagnosis. A static credential has nothing to fetch.
   */
  async test(id: string): Promise<TokenTestResult> {
    const record = await this.record(id);
    if (record.type !== 'oauth2') return { ok: true, token: null };
    try {
      const { source } = await this.#tokens.acquire(record.id, { ignoreBackoff: true });
      const [fresh, row] = await Promise.all([
        this.#store.authentications.get(record.id),
        this.#store.tokens.get(record.id),
      ]);
      const metadata = tokenMetadata(fresh ?? record, row);
      if (metadata === null)
        throw new Problem('token_fetch_failed', 'The token vanished right after it was fetched.');
      return { ok: true, token: { ...metadata, source } };
    } catch (error) {
      if (error instanceof Problem && error.code === 'not_found') throw error;
      if (error instanceof Problem) return { ok: false, error: error.toJSON() };
      throw error;
    }
  }

  /** Drops the access token everywhere (keeps a refresh token), so the next use refreshes. */
  async invalidate(id: string): Promise<void> {
    const record = await this.record(id);
    if (record.type !== 'oauth2') return;
    await this.#tokens.invalidate(record.id);
  }

  async events(id: string, limit: number): Promise<EventView[]> {
    const record = await this.record(id);
    await this.#tokens.settled();
    return (await this.#store.events.list(record.id, limit)).map(eventView);
  }

  /**
   * Starts the Authorization Code flow: an authorization URL bound to the asking browser, and a
   * one-time connect link any browser can open (default 15 minutes, at most 7 days).
   */
  async authorize(
    id: string,
    options: { expiresInSeconds?: number | undefined } = {},
  ): Promise<StartedFlow & { connectUrl: string; expiresAt: number }> {
    const record = await this.record(id);
    const lifetimeMs = (options.expiresInSeconds ?? CONNECT_LINK_DEFAULT_MS / 1000) * 1000;
    const started = await this.#flows.start(record);
    const link = await this.#flows.createConnectLink(record, lifetimeMs);
    return { ...started, connectUrl: `${this.#connectBaseUrl}/${link.token}`, expiresAt: link.expiresAt };
  }

  /** Opens a connect link (GET /oauth/connect/<token>). */
  openConnectLink(token: string): Promise<ConnectLinkOutcome> {
    return this.#flows.openConnectLink(token);
  }

  /** Finishes the flow from the provider's redirect; names the authentication for the page. */
  async finishAuthorization(
    parameters: URLSearchParams,
    cookies: Readonly<Record<string, string>>,
  ): Promise<{ outcome: FlowOutcome; name: string | null }> {
    const outcome = await this.#flows.finish(parameters, cookies);
    const name =
      outcome.authenticationId === null
        ? null
        : ((await this.#store.authentications.get(outcome.authenticationId).catch(() => null))?.name ?? null);
    return { outcome, name };
  }

  async #view(
    record: AuthenticationRecord,
    token?: TokenRecord | null,
    usedBy?: string[],
  ): Promise<AuthenticationView> {
    const [row, users] = await Promise.all([
      token === undefined ? this.#store.tokens.get(record.id) : token,
      usedBy ?? this.#store.connectors.listByAuthentication(record.id).then((list) => list.map((c) => c.id)),
    ]);
    return authenticationView(record, row, users, this.#redirectUri);
  }

  async #assertNameFree(name: string, exceptId?: string): Promise<void> {
    const existing = await this.#store.authentications.getByName(name);
    if (existing !== null && existing.id !== exceptId) {
      throw new Problem('conflict', `An authentication named "${name}" already exists.`, {
        errors: [{ path: '/name', message: 'is already used by another authentication' }],
      });
    }
  }

  /** The stored secrets after this request: given ones sealed, kept ones as they were, others gone. */
  #sealSecrets(
    id: string,
    draft: AuthenticationDraft,
    stored: Readonly<Record<string, Sealed>>,
  ): Record<string, Sealed> {
    const secrets: Record<string, Sealed> = {};
    for (const field of secretFieldsOf(draft)) {
      const column = secretColumn(field.name);
      const given = draft.givenSecrets[field.name];
      if (given !== undefined)
        secrets[column] = this.#ring.seal(given, sealContext.authenticationSecret(id, column));
      else if (draft.storedSecrets.has(field.name) && stored[column] !== undefined)
        secrets[column] = stored[column];
    }
    return secrets;
  }

  /** True when a given secret differs from the stored one, or one was cleared or dropped. */
  #secretsChanged(record: AuthenticationRecord, draft: AuthenticationDraft): boolean {
    for (const field of secretFieldsOf(draft)) {
      const given = draft.givenSecrets[field.name];
      if (
        given !== undefined &&
        given !== openAuthenticationSecret(this.#ring, record, secretColumn(field.name))
      ) {
        return true;
      }
    }
    const kept = new Set(secretFieldsOf(draft).map((field) => secretColumn(field.name)));
    return Object.keys(record.secrets).some((column) => !kept.has(column));
  }
}

function initialStatus(draft: Pick<AuthenticationDraft, 'type' | 'grantType'>): AuthStatus {
  return draft.type === 'oauth2' && draft.grantType === 'authorization_code'
    ? 'needs_authorization'
    : 'ready';
}

function nameTaken(error: unknown, name: string): unknown {
  if (error instanceof Error && error.name === 'UniqueViolation') {
    return new Problem('conflict', `An authentication named "${name}" already exists.`, {
      errors: [{ path: '/name', message: 'is already used by another authentication' }],
    });
  }
  return error;
}
