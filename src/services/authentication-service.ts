import { createPrivateKey } from 'node:crypto';
import { jwkThumbprint, type PublicJwk, publicJwkOf, type SigningAlg } from '../keys/key-material.js';
import {
  activate,
  EMPTY_KEY_SET,
  finish,
  generatedKey,
  isEmptyKeySet,
  jwksOf,
  type KeySet,
  publicKeyViews,
  rotate,
  type StoredKey,
  serializeKeySet,
} from '../keys/key-set.js';
import { type FieldError, Problem, type ProblemBody } from '../problem.js';
import type { ProviderCatalogue } from '../providers/provider-catalogue.js';
import type { KeyRing } from '../secrets/key-ring.js';
import type {
  AuthenticationRecord,
  AuthenticationSettings,
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
import { KEYS_COLUMN, openAuthenticationSecret, openKeySet, sealContext } from '../tokens/sealed-columns.js';
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
import { expandServiceAccount, importedRotationKey, planKeySet, usesKeys } from './authentication-key-set.js';
import {
  checkAuthenticationDraft,
  checkCredentialDestinations,
  tokenShapingFields,
} from './authentication-rules.js';
import {
  type AuthenticationKeysView,
  type AuthenticationView,
  authenticationView,
  type EventView,
  eventView,
  type TokenMetadata,
  tokenMetadata,
} from './authentication-view.js';
import { type AllowHttp, escapePointer, throwIfInvalid } from './field-checks.js';
import { newId } from './ids.js';
import { readKeyFieldSpellings } from './key-field-spellings.js';
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
  /** `<GRANTRY_PUBLIC_URL>/jwks`: where published public keys are served as `<id>.json` (`publishJwks`). */
  jwksBaseUrl?: string;
  clock?: () => number;
}

/**
 * The lifecycle of authentications, whoever asks (the HTTP API, the CLI): create, change, delete,
 * test, connect — and every rule of it that is not HTTP. A change that shapes the token request
 * bumps the generation, resets the status, drops the tokens, records the event and tells every
 * instance; a delete detaches, revokes and tells every instance.
 */
/** How many opened key sets' public views are kept (a list page is at most 500 rows). */
const KEYS_VIEW_CACHE_SIZE = 1000;

export class AuthenticationService {
  readonly #store: Store;
  readonly #ring: KeyRing;
  /** The public side of key sets already opened, by their sealed value (oldest dropped first). */
  readonly #keysViews = new Map<string, AuthenticationKeysView>();
  readonly #tokens: TokenManager;
  readonly #flows: AuthorizationFlows;
  readonly #revokeOnDelete: AuthenticationServiceOptions['revokeOnDelete'];
  readonly #redirectUri: string;
  readonly #allowHttp: AllowHttp;
  readonly #providers: ProviderCatalogue;
  readonly #connectBaseUrl: string;
  readonly #jwksBaseUrl: string;
  readonly #clock: () => number;

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
    this.#jwksBaseUrl = options.jwksBaseUrl ?? options.connectBaseUrl.replace(/\/oauth\/connect$/, '/jwks');
    this.#clock = options.clock ?? Date.now;
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
        authenticationView(
          r,
          tokensByAuth.get(r.id) ?? null,
          usedBy.get(r.id) ?? [],
          this.#redirectUri,
          this.#keysView(r),
        ),
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
    // The key fields as docs/api.md spells them (and as the first release did), read into one form.
    const spelled = readKeyFieldSpellings(preset.body, null);
    // A Google key file stands for several fields; it is read here and never stored.
    const account = expandServiceAccount(spelled.body, null);
    const request = readAuthenticationRequest(account.body);
    const draft = draftForCreate(request);
    const rules = checkAuthenticationDraft(draft, this.#allowHttp);
    const id = newId('auth');
    const now = this.#clock();
    // Keys are checked with everything else, so one answer lists every problem.
    const plan =
      draft.type === 'oauth2'
        ? planKeySet({
            draft,
            stored: EMPTY_KEY_SET,
            signingAlgGiven: Object.hasOwn(request.values, 'signingAlg'),
            regenerate: false,
            commonName: `grantry ${id}`,
            now,
          })
        : null;
    const keyErrors = (plan?.errors ?? []).filter((e) => !rules.errors.some((r) => r.path === e.path));
    throwIfInvalid(
      schemaErrors,
      namedAsGiven(
        [...preset.errors, ...spelled.errors, ...account.errors, ...rules.errors, ...keyErrors],
        spelled.certificateField,
      ),
      rules.onlyInsecureUrls &&
        preset.errors.length === 0 &&
        spelled.errors.length === 0 &&
        account.errors.length === 0 &&
        keyErrors.length === 0,
    );
    const valid = draft as AuthenticationDraft & {
      type: NonNullable<AuthenticationDraft['type']>;
      name: string;
    };
    await this.#assertNameFree(valid.name);
    const record: AuthenticationRecord = {
      id,
      name: valid.name,
      type: valid.type,
      grantType: valid.type === 'oauth2' ? (valid.grantType ?? null) : null,
      settings: withSigningAlg(settingsOf(valid), valid, plan?.signingAlg),
      secrets: this.#sealSecrets(id, valid, {}, plan?.keys ?? EMPTY_KEY_SET),
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
    const spelled = readKeyFieldSpellings(body, {
      grantType: record.grantType,
      clientAuthMethod: record.settings.clientAuthMethod,
      clientSecretStored: record.secrets[secretColumn('clientSecret')] !== undefined,
      generateKeyStored: record.settings.generateKey === true,
    });
    const account = expandServiceAccount(spelled.body, record.settings);
    const request = readAuthenticationRequest(account.body);
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
            {
              clientAuthMethod: draft.values.clientAuthMethod as string | undefined,
              generateKey: request.values.generateKey === true,
            },
          )
        : { errors: [], moved: [] };
    const plan =
      record.type === 'oauth2'
        ? planKeySet({
            draft,
            stored: openKeySet(this.#ring, record),
            signingAlgGiven: Object.hasOwn(request.values, 'signingAlg'),
            regenerate:
              spelled.newKeyAsked || (destinations.moved.length > 0 && request.values.generateKey === true),
            commonName: `grantry ${record.id}`,
            now: this.#clock(),
          })
        : null;
    const ruleErrors = [...rules.errors, ...destinations.errors];
    const keyErrors = (plan?.errors ?? []).filter((e) => !ruleErrors.some((r) => r.path === e.path));
    throwIfInvalid(
      schemaErrors,
      namedAsGiven(
        [...spelled.errors, ...account.errors, ...ruleErrors, ...keyErrors],
        spelled.certificateField,
      ),
      rules.onlyInsecureUrls &&
        destinations.errors.length === 0 &&
        spelled.errors.length === 0 &&
        account.errors.length === 0 &&
        keyErrors.length === 0,
    );
    if (draft.name !== undefined && draft.name !== record.name)
      await this.#assertNameFree(draft.name, record.id);

    const settings = withBinding(
      withSigningAlg(settingsOf(draft), draft, plan?.signingAlg),
      record,
      Object.keys(draft.givenSecrets).length > 0,
    );
    const secrets = this.#sealSecrets(record.id, draft, record.secrets, plan?.keys ?? EMPTY_KEY_SET);
    const endpointsMoved = destinations.moved.length > 0;
    const shapesTokens =
      endpointsMoved ||
      plan?.changed === true ||
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

  /**
   * Step 1 of a rotation without downtime (docs/keys.md): a next key is added — made here, or the
   * one given (`privateKey`, `certificate`, `keyId`, checked like an import) — and published beside
   * the current one; the current key keeps signing. Tokens are kept.
   */
  async rotateKey(id: string, body: Record<string, unknown>): Promise<AuthenticationView> {
    const record = await this.#keyRecord(id);
    const keys = openKeySet(this.#ring, record);
    const settings = record.settings;
    const method = settings.clientAuthMethod;
    const mtls =
      method === 'tls_client_auth' ? 'ca' : method === 'self_signed_tls_client_auth' ? 'self_signed' : null;
    const errors: FieldError[] = [];
    const text = (name: string): string | undefined => {
      const value = body[name];
      // A private key may come as a JWK object (docs/api.md): read as its JSON text.
      if (name === 'privateKey' && typeof value === 'object' && value !== null && !Array.isArray(value))
        return JSON.stringify(value);
      if (value === undefined || value === null) return undefined;
      if (typeof value === 'string') return value;
      errors.push({ path: `/${name}`, message: 'must be a string' });
      return undefined;
    };
    const privateKey = text('privateKey');
    // `clientCertificate` as docs/api.md names it; `certificate` as the first release did.
    const certificateField = Object.hasOwn(body, 'clientCertificate') ? 'clientCertificate' : 'certificate';
    const certificate = text(certificateField);
    // A JWK's own kid names the key when keyId does not (as on create and PATCH).
    const keyId = text('keyId') ?? (privateKey === undefined ? undefined : jwkKid(privateKey));
    // `generateKey: {"alg"}` as on create and PATCH (docs/api.md); `signingAlg` as the first release took it.
    const generate = body.generateKey;
    const generatedAlg =
      typeof generate === 'object' && generate !== null && !Array.isArray(generate)
        ? (generate as { alg?: unknown }).alg
        : undefined;
    if (generate !== undefined && typeof generatedAlg !== 'string') {
      errors.push({ path: '/generateKey/alg', message: 'must be one of RS256, PS256, ES256, EdDSA' });
    }
    if (generate !== undefined && privateKey !== undefined) {
      errors.push({ path: '/generateKey', message: 'give either privateKey or generateKey, not both' });
    }
    const algInput = typeof generatedAlg === 'string' ? generatedAlg : text('signingAlg');
    const alg =
      algInput === undefined
        ? undefined
        : (['RS256', 'PS256', 'ES256', 'EdDSA'] as const).find((a) => a === algInput);
    if (algInput !== undefined && alg === undefined) {
      const field = typeof generatedAlg === 'string' ? '/generateKey/alg' : '/signingAlg';
      errors.push({ path: field, message: 'must be one of RS256, PS256, ES256, EdDSA' });
    }
    for (const name of Object.keys(body)) {
      if (
        !['privateKey', 'clientCertificate', 'certificate', 'keyId', 'signingAlg', 'generateKey'].includes(
          name,
        )
      ) {
        errors.push({
          path: `/${escapePointer(name)}`,
          message: 'is not a field of a key rotation; remove it',
        });
      }
    }
    const now = this.#clock();
    const commonName = `grantry ${record.id}`;
    let next: StoredKey | null = null;
    if (privateKey !== undefined) {
      const imported = importedRotationKey(
        { privateKey, certificate, keyId },
        { alg: alg ?? undefined, mtls, commonName, now },
      );
      errors.push(...imported.errors);
      next = imported.key;
    } else {
      if (certificate !== undefined || keyId !== undefined) {
        errors.push({
          path: certificate !== undefined ? `/${certificateField}` : '/keyId',
          message: 'goes with privateKey: without one, Grantry makes the next key (and its certificate)',
        });
      }
      if (mtls === 'ca') {
        errors.push({
          path: '/privateKey',
          message:
            'is required with tls_client_auth: the next key needs a certificate a CA issued, so give both',
        });
      }
      if (errors.length === 0) {
        next = generatedKey({
          alg: alg ?? settings.signingAlg ?? keys.current?.alg ?? 'RS256',
          selfSigned: mtls === null ? undefined : { commonName },
          now,
        });
      }
    }
    throwIfInvalid([], namedAsGiven(errors, certificateField));
    const rotated = rotate(keys, next as StoredKey);
    if (!rotated.ok) throw new Problem('conflict', rotated.problem);
    const updated = await this.#saveKeys(record, rotated.set, {
      generateKey: next?.origin === 'generated',
    });
    await recordEvent(this.#store, record.id, 'key_rotation_started', {
      nextKid: next?.kid,
      alg: next?.alg,
      origin: next?.origin,
    });
    return this.#view(updated);
  }

  /**
   * Step 2: the provider has the new key, so it signs from now on; the old one stays published
   * until `finishKeyRotation`. How Grantry knows the provider has it: a person says so by calling
   * this, and Grantry checks it at once with a real token request signed with the new key (a new
   * token, or a refresh for Authorization Code) — refused, the old key signs again and the answer
   * is the diagnosis. An Authorization Code authentication without a refresh token cannot be
   * checked without a person: the switch is made unchecked (`key_activated` says `verified: false`).
   */
  async activateKey(id: string): Promise<AuthenticationView> {
    const record = await this.#keyRecord(id);
    const keys = openKeySet(this.#ring, record);
    const activated = activate(keys);
    if (!activated.ok) throw new Problem('conflict', activated.problem);
    const updated = await this.#switchVerified(record, keys, activated.set);
    return this.#view(updated);
  }

  /**
   * Step 3: drops the retiring key; the JWKS lists the new key only. Called during step 1, it
   * activates the next key first (checked as `activateKey` does), then drops the old one.
   */
  async finishKeyRotation(id: string): Promise<AuthenticationView> {
    let record = await this.#keyRecord(id);
    let keys = openKeySet(this.#ring, record);
    if (keys.next !== null) {
      const activated = activate(keys);
      if (!activated.ok) throw new Problem('conflict', activated.problem);
      record = await this.#switchVerified(record, keys, activated.set);
      keys = openKeySet(this.#ring, record);
    }
    const finished = finish(keys);
    if (!finished.ok) throw new Problem('conflict', finished.problem);
    const updated = await this.#saveKeys(record, finished.set);
    await recordEvent(this.#store, record.id, 'key_rotation_finished', {
      kid: finished.set.current?.kid,
      dropped: keys.retiring?.kid,
    });
    return this.#view(updated);
  }

  /**
   * The published JWK Set of an authentication (`publishJwks`): the public half of its signing keys,
   * the next and retiring ones included. Not published (or no such authentication): `not_found`,
   * the same answer either way.
   */
  /**
   * `GET /api/authentications/:id/jwks`: the public keys of an authentication, published or not —
   * the current key, and during a rotation the next and the retiring one; `{"keys":[]}` for one
   * that signs with no key of its own.
   */
  async keySet(id: string): Promise<{ keys: PublicJwk[] }> {
    const record = await this.record(id);
    if (
      record.type !== 'oauth2' ||
      record.secrets[KEYS_COLUMN] === undefined ||
      !usesKeys(record.settings as Record<string, unknown>, record.grantType ?? undefined)
    ) {
      return { keys: [] };
    }
    return jwksOf(openKeySet(this.#ring, record));
  }

  /** The published JWK Set (`publishJwks`, no API key): `not_found` unless it is published. */
  async jwks(id: string): Promise<{ keys: PublicJwk[] }> {
    const record = await this.#store.authentications.get(id);
    if (
      record === null ||
      record.type !== 'oauth2' ||
      record.settings.publishJwks !== true ||
      !usesKeys(record.settings as Record<string, unknown>, record.grantType ?? undefined)
    ) {
      throw new Problem('not_found', 'No published keys at this address.');
    }
    return jwksOf(openKeySet(this.#ring, record));
  }

  /** An authentication whose keys may rotate, or the problem that says why not. */
  async #keyRecord(id: string): Promise<AuthenticationRecord> {
    const record = await this.record(id);
    if (
      record.type !== 'oauth2' ||
      !usesKeys(record.settings as Record<string, unknown>, record.grantType ?? undefined)
    ) {
      throw new Problem(
        'not_supported',
        'This authentication signs with no key of its own: there is nothing to rotate.',
        {
          hint: 'Keys are used with clientAuthMethod private_key_jwt, tls_client_auth or self_signed_tls_client_auth, and with the JWT Bearer grant (docs/keys.md).',
        },
      );
    }
    if (record.secrets[KEYS_COLUMN] === undefined) {
      throw new Problem(
        'conflict',
        'This authentication has no key yet: give privateKey or set generateKey first.',
      );
    }
    return record;
  }

  /** Stores a new key set without touching the tokens (a rotation is no change of configuration). */
  async #saveKeys(
    record: AuthenticationRecord,
    keys: KeySet,
    settings: { generateKey?: boolean } = {},
  ): Promise<AuthenticationRecord> {
    const secrets: Record<string, Sealed> = { ...record.secrets };
    secrets[KEYS_COLUMN] = this.#ring.seal(serializeKeySet(keys), sealContext.keys(record.id));
    const updated: AuthenticationRecord = {
      ...record,
      settings: settings.generateKey === true ? { ...record.settings, generateKey: true } : record.settings,
      secrets,
      updatedAt: this.#clock(),
    };
    await this.#store.authentications.update(updated);
    this.#tokens.forget(record.id);
    await this.#store.publish({ kind: 'authentication_changed', authId: record.id });
    return updated;
  }

  /** Switches the signing key and proves the provider has it; back to `before` when it does not. */
  async #switchVerified(
    record: AuthenticationRecord,
    before: KeySet,
    after: KeySet,
  ): Promise<AuthenticationRecord> {
    const updated = await this.#saveKeys(record, after);
    const tokens = await this.#store.tokens.get(record.id);
    const checkable =
      record.grantType !== 'authorization_code' ||
      (tokens !== null && tokens.generation === record.generation && tokens.refreshToken !== null);
    if (checkable) {
      try {
        await this.#tokens.acquire(record.id, { force: true, ignoreBackoff: true });
      } catch (error) {
        const fresh = (await this.#store.authentications.get(record.id)) ?? updated;
        await this.#saveKeys(fresh, before);
        // The refusal was the new key's: the old one works, so no back-off and no error status stay.
        await this.#store.tokenFailures.clear(record.id);
        await this.#store.authentications.setStatus(record.id, record.status, record.lastError);
        await recordEvent(this.#store, record.id, 'key_activation_failed', {
          kid: after.current?.kid,
          code: error instanceof Problem ? error.code : 'internal_error',
        });
        if (error instanceof Problem) {
          throw new Problem(
            error.code,
            `The provider refused a token request signed with the new key ${after.current?.kid ?? ''}; the old key signs again. ${error.message}`,
            { hint: error.hint, provider: error.provider, status: 409, cause: error },
          );
        }
        throw error;
      }
    }
    await recordEvent(this.#store, record.id, 'key_activated', {
      kid: after.current?.kid,
      retiring: after.retiring?.kid,
      verified: checkable,
    });
    return updated;
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
    return authenticationView(record, row, users, this.#redirectUri, this.#keysView(record));
  }

  /** The public side of an authentication's keys, for its view; null when it has none. */
  #keysView(record: AuthenticationRecord): AuthenticationKeysView | null {
    const sealed = record.secrets[KEYS_COLUMN];
    if (sealed === undefined) return null;
    // Opening a key set decrypts it and derives PEMs and thumbprints: a list page of keyed
    // authentications did that per row, per read. The view holds public parts only, and a sealed
    // value is never written twice (a fresh IV each time), so it keys the cache exactly.
    const cached = this.#keysViews.get(sealed);
    if (cached !== undefined) return cached;
    const keys = openKeySet(this.#ring, record);
    const view: AuthenticationKeysView = { keys: publicKeyViews(keys), jwksUri: this.jwksUriOf(record.id) };
    if (keys.dpop !== null) {
      const publicJwk = publicJwkOf(createPrivateKey(keys.dpop.privateKey));
      view.dpopKey = { jkt: jwkThumbprint(publicJwk), alg: keys.dpop.alg, publicJwk };
    }
    if (this.#keysViews.size >= KEYS_VIEW_CACHE_SIZE) {
      this.#keysViews.delete(this.#keysViews.keys().next().value as string);
    }
    this.#keysViews.set(sealed, view);
    return view;
  }

  /** Where an authentication's public keys are published when `publishJwks` is on. */
  jwksUriOf(id: string): string {
    return `${this.#jwksBaseUrl}/${encodeURIComponent(id)}.json`;
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
    keys: KeySet,
  ): Record<string, Sealed> {
    const secrets: Record<string, Sealed> = {};
    if (!isEmptyKeySet(keys)) {
      secrets[KEYS_COLUMN] = this.#ring.seal(serializeKeySet(keys), sealContext.keys(id));
    }
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
    // The key set is compared by the key plan (planKeySet's `changed`), not here.
    const kept = new Set([KEYS_COLUMN, ...secretFieldsOf(draft).map((field) => secretColumn(field.name))]);
    return Object.keys(record.secrets).some((column) => !kept.has(column));
  }
}

/**
 * A static credential keeps the origins it is bound to (connector-service.ts binds them) through a
 * PATCH, unless the PATCH gives its secret again: whoever knows the secret may send it anywhere, so
 * the next connector that attaches it binds it anew.
 */
function withBinding(
  settings: AuthenticationSettings,
  record: AuthenticationRecord,
  secretGiven: boolean,
): AuthenticationSettings {
  const bound = record.settings.boundOrigins;
  if (record.type === 'oauth2' || secretGiven || bound === undefined) return settings;
  return { ...settings, boundOrigins: bound };
}

/** The settings with the algorithm the key plan settled on (an imported EC key signs ES256). */
function withSigningAlg(
  settings: AuthenticationSettings,
  draft: AuthenticationDraft,
  alg: SigningAlg | undefined,
): AuthenticationSettings {
  if (alg === undefined || !usesKeys(draft.values, draft.grantType)) return settings;
  return { ...settings, signingAlg: alg };
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

/** Problems of the certificate named as the request named it (`certificate`, the first release's name). */
function namedAsGiven(
  errors: FieldError[],
  certificateField: 'clientCertificate' | 'certificate',
): FieldError[] {
  if (certificateField === 'clientCertificate') return errors;
  return errors.map((error) =>
    error.path === '/clientCertificate' ? { ...error, path: '/certificate' } : error,
  );
}

/** The `kid` of a private key given as a JWK, if it has one. */
function jwkKid(privateKey: string): string | undefined {
  if (!privateKey.trim().startsWith('{')) return undefined;
  try {
    const kid = (JSON.parse(privateKey) as { kid?: unknown }).kid;
    return typeof kid === 'string' && kid !== '' ? kid : undefined;
  } catch {
    return undefined;
  }
}
