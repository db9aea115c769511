/**
 * A real OAuth 2.0 / OpenID Connect authorization server (oidc-provider v9) on
 * https://localhost:<port>, for integration tests.
 *
 * Deliberate choices (tests rely on them):
 * - Clients authenticate with the method they are registered with: a client registered with
 *   `client_secret_basic` (oidc-provider's default) is refused when it sends client_secret_post.
 * - A client registered without `authorization_code` gets `response_types: []` and
 *   `redirect_uris: []` by default, so machine clients need only id, secret and grant_types.
 * - Refresh tokens are issued to every client whose grant_types include `refresh_token`, for
 *   password and authorization_code grants alike, with or without `offline_access` (OAuth 2.0
 *   providers behave so; oidc-provider's OpenID default would demand offline_access + consent).
 * - PKCE (RFC 7636) is required for public clients (`token_endpoint_auth_method: 'none'`) and
 *   verified whenever a code_challenge was sent; confidential clients may omit it.
 * - Refresh token rotation (`rotateRefreshToken`, default on): replaying a rotated refresh token
 *   revokes the whole grant, so the newest refresh token stops working too (invalid_grant).
 * - Scopes: a requested scope that is neither in `scopes` nor in any resource's scope is refused
 *   with invalid_scope at the token endpoint; a client registered with `scope` may only ask for
 *   those scopes.
 * - Resource indicators (RFC 8707): `resource` selects an entry of `resources`; an unknown one is
 *   invalid_target. The Auth0-style `audience` parameter is accepted on /auth and /token and treated
 *   as `resource` when no `resource` is given.
 * - Access tokens without a resource are opaque; with a resource they are opaque or JWT as the
 *   resource's `accessTokenFormat` says (default opaque). A JWT access token carries `sub` (the
 *   account: the username for the password grant) and `extraAccessTokenClaims`.
 * - The metadata lists `token_endpoint_auth_methods_supported` (the `clientAuthMethods` the
 *   provider accepts) unless `advertiseClientAuthMethods` is false: then a client must guess.
 */
import {
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
  verify,
  type X509Certificate,
} from 'node:crypto';
import { IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import Provider, { errors, type KoaContextWithOidc, type UnknownObject } from 'oidc-provider';
import { issueServerCertificate, testCaPem } from './tls.js';

/** oidc-provider client metadata (snake_case, as registered). */
export interface OidcClientMetadata {
  client_id: string;
  client_secret?: string;
  grant_types?: string[];
  response_types?: string[];
  redirect_uris?: string[];
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'none' | (string & {});
  scope?: string;
  [metadata: string]: unknown;
}

export interface ResourceServerOptions {
  /** Space-separated scopes this API accepts; requested scopes are filtered to these. */
  scope: string;
  /** Defaults to the resource indicator itself. */
  audience?: string;
  /** Defaults to 'opaque'. */
  accessTokenFormat?: 'opaque' | 'jwt';
  /** Seconds; defaults to the provider's accessTokenTtl. */
  accessTokenTTL?: number;
}

export interface OidcProviderOptions {
  clients?: OidcClientMetadata[];
  /** Seconds; default 3600. Also used for client_credentials tokens. */
  accessTokenTtl?: number;
  /** Seconds; default 14 days. Every refresh token, rotated ones too, lives this long from its issue. */
  refreshTokenTtl?: number;
  /**
   * Seconds the grant behind the refresh tokens lives; default `refreshTokenTtl`. Longer, with a
   * short `refreshTokenTtl` and rotation, it is a provider that expires *idle* refresh tokens: one
   * used in time is replaced by a new one with a fresh lifetime, one left unused dies.
   */
  grantTtl?: number;
  /** Default true. */
  rotateRefreshToken?: boolean;
  /** Resource indicator → resource server; keys must be absolute URIs. */
  resources?: Record<string, ResourceServerOptions>;
  /** Username → password for the password grant; default `{ alice: 'wonderland' }`. */
  users?: Record<string, string>;
  /** Default `['openid', 'offline_access', 'read', 'write', 'api:read']`. */
  scopes?: string[];
  /** Delay before the token endpoint handles a request; default 0. */
  tokenDelayMs?: number;
  /**
   * Default true: the token endpoint refuses (401 invalid_client) a client that authenticates with
   * the other of client_secret_basic / client_secret_post than the one it is registered with, as
   * many real providers do. oidc-provider itself accepts either; false restores that.
   */
  strictClientAuthMethod?: boolean;
  /**
   * How clients may authenticate at the token endpoint (oidc-provider's `clientAuthMethods`); every
   * client must be registered with one of them. Default: oidc-provider's list.
   */
  clientAuthMethods?: string[];
  /** Default true. False leaves `token_endpoint_auth_methods_supported` out of the metadata. */
  advertiseClientAuthMethods?: boolean;
  /** Claims added to every JWT access token (e.g. personal ones, to prove they never leak). */
  extraAccessTokenClaims?: UnknownObject;
  /**
   * Host name in the issuer and every endpoint URL; default 'localhost'. The server listens on
   * 127.0.0.1 either way and its certificate names both.
   */
  hostname?: 'localhost' | '127.0.0.1';
  /**
   * Mutual TLS (RFC 8705): the server asks every client for a certificate (and does not refuse a
   * connection without one), `tls_client_auth` (a certificate the test CA issued, its subject DN
   * registered), `self_signed_tls_client_auth` (the certificate in the client's jwks) and
   * certificate-bound access tokens are on.
   */
  mtls?: boolean;
  /** DPoP (RFC 9449, on in oidc-provider 9 anyway): with `requireNonce`, every proof needs a DPoP-Nonce. */
  dpop?: { requireNonce: boolean };
}

export type CountedGrantType = 'client_credentials' | 'password' | 'refresh_token' | 'authorization_code';

/** POST /token requests, counted as they arrive (before any delay), by `grant_type`. */
export interface TokenRequestCounts {
  total: number;
  client_credentials: number;
  password: number;
  refresh_token: number;
  authorization_code: number;
  /** A grant_type outside the four above, or none. */
  other: number;
}

export interface AccessTokenVerification {
  active: boolean;
  clientId?: string;
  scope?: string;
  aud?: string | string[];
  expired?: boolean;
  /** RFC 9449 §6: the thumbprint of the DPoP key the token is bound to. */
  jkt?: string;
  /** RFC 8705 §3.1: the SHA-256 thumbprint of the client certificate the token is bound to. */
  x5tS256?: string;
}

export interface OidcFixture {
  /** `https://localhost:<port>` (see `hostname`) */
  readonly issuer: string;
  readonly port: number;
  readonly authorizationUrl: string;
  readonly tokenUrl: string;
  readonly revocationUrl: string;
  readonly introspectionUrl: string;
  readonly userinfoUrl: string;
  readonly jwksUrl: string;
  /** `<issuer>/.well-known/openid-configuration` (also served at `/.well-known/oauth-authorization-server`). */
  readonly discoveryUrl: string;
  readonly provider: Provider;
  /** A live view: read it after the requests you care about have been answered. */
  readonly tokenRequests: Readonly<TokenRequestCounts>;
  /** POST /token/revocation requests received. */
  readonly revocations: number;
  /**
   * What token requests carried that a client made for that one request: client assertions, grant
   * assertions (RFC 7523) and DPoP proofs — for tests that look for them where they must not be.
   */
  readonly received: { readonly assertions: string[]; readonly dpopProofs: string[] };
  resetCounts(): void;
  setTokenDelay(ms: number): void;
  /** Checks a token against the provider's own store (opaque) or signing key (JWT), in-process. */
  verifyAccessToken(token: string): Promise<AccessTokenVerification>;
  /**
   * Registers (or replaces) a client after start, as dynamic registration would: the test learns a
   * key Grantry made, then registers its public JWK. A replaced client takes effect at once.
   */
  registerClient(metadata: OidcClientMetadata): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_SCOPES = ['openid', 'offline_access', 'read', 'write', 'api:read'];
const COUNTED_GRANT_TYPES = new Set<string>([
  'client_credentials',
  'password',
  'refresh_token',
  'authorization_code',
]);
const MAX_TOKEN_BODY_BYTES = 64 * 1024;
const DAY_SECONDS = 24 * 60 * 60;

let signingKey: { jwk: UnknownObject; publicKey: KeyObject } | undefined;

/** One RSA signing key per process: generation is slow and tests do not need distinct keys. */
function providerSigningKey(): { jwk: UnknownObject; publicKey: KeyObject } {
  if (!signingKey) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    signingKey = {
      jwk: { ...privateKey.export({ format: 'jwk' }), kid: 'grantry-test-rs256', use: 'sig', alg: 'RS256' },
      publicKey,
    };
  }
  return signingKey;
}

interface StoredEntry {
  payload: UnknownObject;
  expiresAt: number | undefined;
}

// Models whose expired entries stay readable, so verifyAccessToken can say "expired" rather than
// "unknown"; the provider itself checks `exp` on every find.
const KEEP_EXPIRED = new Set(['AccessToken', 'ClientCredentials', 'RefreshToken']);

/** A per-provider in-memory adapter (oidc-provider's own one warns loudly and is process-global). */
function createMemoryAdapter(): new (name: string) => object {
  const entries = new Map<string, StoredEntry>();
  const byGrant = new Map<string, Set<string>>();
  const byUserCode = new Map<string, string>();
  const byUid = new Map<string, string>();

  return class MemoryAdapter {
    readonly #name: string;

    constructor(name: string) {
      this.#name = name;
    }

    #key(id: string): string {
      return `${this.#name}:${id}`;
    }

    #read(key: string): UnknownObject | undefined {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expiresAt !== undefined && entry.expiresAt < Date.now() && !KEEP_EXPIRED.has(this.#name)) {
        entries.delete(key);
        return undefined;
      }
      return structuredClone(entry.payload);
    }

    async upsert(id: string, payload: UnknownObject, expiresIn?: number): Promise<void> {
      const key = this.#key(id);
      entries.set(key, {
        payload: structuredClone(payload),
        expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined,
      });
      if (typeof payload.grantId === 'string') {
        const keys = byGrant.get(payload.grantId) ?? new Set<string>();
        keys.add(key);
        byGrant.set(payload.grantId, keys);
      }
      if (typeof payload.userCode === 'string') byUserCode.set(payload.userCode, id);
      if (typeof payload.uid === 'string') byUid.set(payload.uid, id);
    }

    async find(id: string): Promise<UnknownObject | undefined> {
      return this.#read(this.#key(id));
    }

    async findByUserCode(userCode: string): Promise<UnknownObject | undefined> {
      const id = byUserCode.get(userCode);
      return id === undefined ? undefined : this.#read(this.#key(id));
    }

    async findByUid(uid: string): Promise<UnknownObject | undefined> {
      const id = byUid.get(uid);
      return id === undefined ? undefined : this.#read(this.#key(id));
    }

    async consume(id: string): Promise<void> {
      const entry = entries.get(this.#key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id: string): Promise<void> {
      entries.delete(this.#key(id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      for (const key of byGrant.get(grantId) ?? []) entries.delete(key);
      byGrant.delete(grantId);
    }
  };
}

function equalSecrets(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

function stringParam(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function splitScope(scope: string | undefined): string[] {
  return scope ? scope.split(' ').filter((s) => s !== '') : [];
}

function withClientDefaults(client: OidcClientMetadata): OidcClientMetadata {
  const grantTypes = client.grant_types ?? ['authorization_code'];
  if (grantTypes.includes('authorization_code')) return client;
  return { response_types: [], redirect_uris: [], ...client };
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('token request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A fresh request carrying `body`, so the provider can parse a body we already read. */
function replayRequest(original: IncomingMessage, body: Buffer): IncomingMessage {
  const replay = new IncomingMessage(original.socket);
  replay.method = original.method ?? 'POST';
  replay.url = original.url ?? '/';
  replay.httpVersion = original.httpVersion;
  replay.httpVersionMajor = original.httpVersionMajor;
  replay.httpVersionMinor = original.httpVersionMinor;
  replay.headers = { ...original.headers, 'content-length': String(body.length) };
  delete replay.headers['transfer-encoding'];
  // Without `complete`, IncomingMessage treats its end as an abort and destroys the socket.
  replay.complete = true;
  replay.push(body);
  replay.push(null);
  return replay;
}

/** RFC 6749 §2.3.1: the Basic credentials are form-urlencoded before base64. */
function basicClientId(authorization: string | undefined): string | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(authorization ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon).replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}

function sendOAuthError(res: ServerResponse, status: number, error: string, description: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ error, error_description: description }));
}

export async function startOidcProvider(options: OidcProviderOptions = {}): Promise<OidcFixture> {
  const accessTokenTtl = options.accessTokenTtl ?? 3600;
  const refreshTokenTtl = options.refreshTokenTtl ?? 14 * DAY_SECONDS;
  const users = options.users ?? { alice: 'wonderland' };
  const scopes = options.scopes ?? DEFAULT_SCOPES;
  const resources = options.resources ?? {};
  let tokenDelayMs = options.tokenDelayMs ?? 0;
  const strictClientAuthMethod = options.strictClientAuthMethod ?? true;
  const registeredAuthMethod = new Map(
    (options.clients ?? []).map((c) => [c.client_id, c.token_endpoint_auth_method ?? 'client_secret_basic']),
  );

  const knownScopes = new Set(scopes);
  for (const resource of Object.values(resources))
    for (const s of splitScope(resource.scope)) knownScopes.add(s);

  const resourceServerInfo = (resource: string): UnknownObject => {
    const info = resources[resource];
    if (!info) throw new errors.InvalidTarget('unknown resource indicator');
    return {
      scope: info.scope,
      audience: info.audience ?? resource,
      accessTokenTTL: info.accessTokenTTL ?? accessTokenTtl,
      accessTokenFormat: info.accessTokenFormat ?? 'opaque',
      ...(info.accessTokenFormat === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
    };
  };

  const tlsMaterial = issueServerCertificate(['localhost', '127.0.0.1']);
  const server: Server = createServer({
    cert: tlsMaterial.cert,
    key: tlsMaterial.key,
    // Mutual TLS: ask for a certificate, trust the test CA's (tls_client_auth), and let a connection
    // without one or with a self-signed one through: the provider decides per client method.
    ...(options.mtls === true ? { requestCert: true, rejectUnauthorized: false, ca: [testCaPem()] } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `https://${options.hostname ?? 'localhost'}:${port}`;

  const tokenTtl = (_ctx: unknown, token: { resourceServer?: { accessTokenTTL?: number } }): number =>
    token.resourceServer?.accessTokenTTL ?? accessTokenTtl;

  const Adapter = createMemoryAdapter();
  const peerCertificate = (ctx: KoaContextWithOidc): X509Certificate | undefined => {
    const socket = ctx.req.socket as TLSSocket;
    const certificate =
      typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
    return certificate ?? undefined;
  };
  const configuration: UnknownObject = {
    adapter: Adapter,
    clients: (options.clients ?? []).map(withClientDefaults),
    jwks: { keys: [providerSigningKey().jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes,
    claims: { openid: ['sub'] },
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    ttl: {
      AccessToken: tokenTtl,
      ClientCredentials: tokenTtl,
      RefreshToken: refreshTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: DAY_SECONDS,
      Grant: options.grantTtl ?? refreshTokenTtl,
    },
    rotateRefreshToken: options.rotateRefreshToken ?? true,
    issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    allowOmittingSingleRegisteredRedirectUri: true,
    clientBasedCORS: () => true,
    renderError: async (ctx: { type: string; body: unknown }, out: Record<string, string>) => {
      ctx.type = 'text';
      ctx.body = `${out.error ?? 'error'}: ${out.error_description ?? ''}`;
    },
    extraParams: ['audience'],
    ...(options.clientAuthMethods !== undefined
      ? { clientAuthMethods: options.clientAuthMethods }
      : options.mtls === true
        ? {
            clientAuthMethods: [
              'client_secret_basic',
              'client_secret_post',
              'client_secret_jwt',
              'private_key_jwt',
              'tls_client_auth',
              'self_signed_tls_client_auth',
              'none',
            ],
          }
        : {}),
    ...(options.extraAccessTokenClaims !== undefined
      ? { extraTokenClaims: async () => options.extraAccessTokenClaims }
      : {}),
    features: {
      ...(options.mtls === true
        ? {
            mTLS: {
              enabled: true,
              certificateBoundAccessTokens: true,
              selfSignedTlsClientAuth: true,
              tlsClientAuth: true,
              getCertificate: peerCertificate,
              // Chains to the test CA (the server's `ca`), as a TLS-terminating proxy would vouch.
              certificateAuthorized: (ctx: KoaContextWithOidc) =>
                (ctx.req.socket as TLSSocket).authorized === true,
              certificateSubjectMatches: (ctx: KoaContextWithOidc, property: string, expected: string) =>
                property === 'tls_client_auth_subject_dn' && peerCertificate(ctx)?.subject === expected,
            },
          }
        : {}),
      ...(options.dpop !== undefined
        ? {
            dPoP: {
              enabled: true,
              nonceSecret: randomBytes(32),
              requireNonce: () => options.dpop?.requireNonce === true,
            },
          }
        : {}),
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true, allowedPolicy: async () => true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      rpInitiatedLogout: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // Auth0-style `audience` on the authorization request stands in for `resource`.
        defaultResource: async (ctx: KoaContextWithOidc, _client: unknown, oneOf?: string[]) =>
          oneOf ?? stringParam(ctx.oidc.params.audience),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => resourceServerInfo(resource),
      },
    },
  };

  // devInteractions are what the e2e test submits; oidc-provider warns about them on every
  // construction, which is noise in a test log.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && args[0].includes('development-only feature devInteractions')) return;
    warn(...args);
  };
  let provider: Provider;
  try {
    provider = new Provider(issuer, configuration);
  } catch (error) {
    server.close();
    throw error;
  } finally {
    console.warn = warn;
  }

  if (options.advertiseClientAuthMethods === false) {
    // A provider that publishes metadata without saying how clients authenticate (RFC 8414 §2:
    // the field is optional), so a client that wants to know has to try.
    provider.use(async (ctx, next) => {
      await next();
      if (
        ctx.path.endsWith('/.well-known/openid-configuration') &&
        typeof ctx.body === 'object' &&
        ctx.body
      ) {
        delete (ctx.body as Record<string, unknown>).token_endpoint_auth_methods_supported;
      }
    });
  }

  provider.registerGrantType(
    'password',
    async (ctx) => {
      const { client, params } = ctx.oidc;
      const username = stringParam(params.username);
      const password = stringParam(params.password);
      if (username === undefined || password === undefined) {
        throw new errors.InvalidRequest("missing required parameter 'username' or 'password'");
      }
      const expected = users[username];
      if (expected === undefined || !equalSecrets(expected, password)) {
        throw new errors.InvalidGrant('invalid resource owner credentials');
      }

      const requested = splitScope(stringParam(params.scope));
      const clientScopes = client.scope === undefined ? undefined : new Set(splitScope(client.scope));
      for (const s of requested) {
        if (!knownScopes.has(s) || (clientScopes && !clientScopes.has(s))) {
          throw new errors.InvalidScope('requested scope is not allowed', s);
        }
      }

      const resource = stringParam(params.resource) ?? stringParam(params.audience);
      const grant = new provider.Grant({ accountId: username, clientId: client.clientId });
      const at = new provider.AccessToken({ accountId: username, client, gty: 'password' });
      let scope: string;
      if (resource !== undefined) {
        const info = resourceServerInfo(resource);
        const accepted = new Set(splitScope(info.scope as string));
        scope = requested.filter((s) => accepted.has(s)).join(' ');
        grant.addResourceScope(resource, scope);
        at.resourceServer = new provider.ResourceServer(resource, info);
      } else {
        scope = requested.join(' ');
        grant.addOIDCScope(scope);
      }
      const grantId = await grant.save();
      at.grantId = grantId;
      at.scope = scope || undefined;
      ctx.oidc.entity('AccessToken', at);
      const accessToken = await at.save();

      let refreshToken: string | undefined;
      if (client.grantTypeAllowed('refresh_token')) {
        const rt = new provider.RefreshToken({
          accountId: username,
          client,
          grantId,
          gty: 'password',
          scope: scope || undefined,
          resource,
          expiresWithSession: false,
          rotations: 0,
        });
        ctx.oidc.entity('RefreshToken', rt);
        refreshToken = await rt.save();
      }

      ctx.body = {
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: at.expiration,
        ...(scope ? { scope } : {}),
        ...(refreshToken ? { refresh_token: refreshToken } : {}),
      };
    },
    ['username', 'password', 'scope', 'resource', 'audience'],
  );

  const counts: TokenRequestCounts = {
    total: 0,
    client_credentials: 0,
    password: 0,
    refresh_token: 0,
    authorization_code: 0,
    other: 0,
  };
  let revocations = 0;
  const received = { assertions: [] as string[], dpopProofs: [] as string[] };
  const handle = provider.callback();

  const handleTokenRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    counts.total += 1;
    let body: Buffer;
    try {
      body = await readBody(req, MAX_TOKEN_BODY_BYTES);
    } catch {
      if (!res.headersSent) sendOAuthError(res, 413, 'invalid_request', 'request body too large');
      return;
    }
    const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const form = new URLSearchParams(isForm ? body.toString('utf8') : '');
    const grantType = form.get('grant_type') ?? '';
    for (const name of ['client_assertion', 'assertion']) {
      const value = form.get(name);
      if (value !== null) received.assertions.push(value);
    }
    if (typeof req.headers.dpop === 'string') received.dpopProofs.push(req.headers.dpop);
    if (COUNTED_GRANT_TYPES.has(grantType)) counts[grantType as CountedGrantType] += 1;
    else counts.other += 1;

    if (tokenDelayMs > 0) await sleep(tokenDelayMs);

    if (strictClientAuthMethod) {
      const viaBasic = basicClientId(req.headers.authorization);
      const viaPost = form.has('client_secret') ? (form.get('client_id') ?? undefined) : undefined;
      if (
        (viaBasic !== undefined && registeredAuthMethod.get(viaBasic) === 'client_secret_post') ||
        (viaPost !== undefined && registeredAuthMethod.get(viaPost) === 'client_secret_basic')
      ) {
        sendOAuthError(res, 401, 'invalid_client', 'client authentication failed');
        return;
      }
    }

    // RFC 6749 §5.2: a scope the server does not know at all is invalid_scope (oidc-provider would
    // silently drop it).
    const unknownScope = splitScope(form.get('scope') ?? undefined).find((s) => !knownScopes.has(s));
    if (unknownScope !== undefined) {
      sendOAuthError(res, 400, 'invalid_scope', `requested scope is not allowed: ${unknownScope}`);
      return;
    }
    if (isForm && form.has('audience') && !form.has('resource')) {
      form.set('resource', form.get('audience') ?? '');
      form.delete('audience');
      body = Buffer.from(form.toString());
    }
    handle(replayRequest(req, body), res);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/oauth-authorization-server') {
      // RFC 8414 clients look here; the OpenID document is a superset of that metadata.
      req.url = `/.well-known/openid-configuration${url.search}`;
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      void handleTokenRequest(req, res);
      return;
    }
    if (req.method === 'POST' && url.pathname === '/token/revocation') revocations += 1;
    handle(req, res);
  });

  const verifyJwt = (token: string): AccessTokenVerification => {
    const [header, payload, signature] = token.split('.');
    if (header === undefined || payload === undefined || signature === undefined) return { active: false };
    const valid = verify(
      'RSA-SHA256',
      Buffer.from(`${header}.${payload}`),
      providerSigningKey().publicKey,
      Buffer.from(signature, 'base64url'),
    );
    if (!valid) return { active: false };
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as UnknownObject;
    if (claims.iss !== issuer) return { active: false };
    const expired = typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now();
    return {
      active: !expired,
      expired,
      ...(typeof claims.client_id === 'string' ? { clientId: claims.client_id } : {}),
      ...(typeof claims.scope === 'string' ? { scope: claims.scope } : {}),
      ...(typeof claims.aud === 'string' || Array.isArray(claims.aud)
        ? { aud: claims.aud as string | string[] }
        : {}),
    };
  };

  const verifyAccessToken = async (token: string): Promise<AccessTokenVerification> => {
    if (token.split('.').length === 3) return verifyJwt(token);
    for (const model of [provider.AccessToken, provider.ClientCredentials]) {
      const found = await model.find(token, { ignoreExpiration: true });
      if (!found) continue;
      const expired = found.isExpired;
      const aud = found.aud ?? found.resourceServer?.audience;
      const bound = found as unknown as { jkt?: string; 'x5t#S256'?: string };
      return {
        active: !expired,
        expired,
        ...(found.clientId !== undefined ? { clientId: found.clientId } : {}),
        ...(found.scope !== undefined ? { scope: found.scope } : {}),
        ...(aud !== undefined ? { aud } : {}),
        ...(bound.jkt !== undefined ? { jkt: bound.jkt } : {}),
        ...(bound['x5t#S256'] !== undefined ? { x5tS256: bound['x5t#S256'] } : {}),
      };
    }
    return { active: false };
  };

  return {
    issuer,
    port,
    authorizationUrl: `${issuer}/auth`,
    tokenUrl: `${issuer}/token`,
    revocationUrl: `${issuer}/token/revocation`,
    introspectionUrl: `${issuer}/token/introspection`,
    userinfoUrl: `${issuer}/me`,
    jwksUrl: `${issuer}/jwks`,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    provider,
    tokenRequests: counts,
    received,
    get revocations() {
      return revocations;
    },
    resetCounts() {
      for (const key of Object.keys(counts) as (keyof TokenRequestCounts)[]) counts[key] = 0;
      revocations = 0;
    },
    setTokenDelay(ms: number) {
      tokenDelayMs = ms;
    },
    verifyAccessToken,
    async registerClient(metadata: OidcClientMetadata) {
      const client = withClientDefaults(metadata);
      await (new Adapter('Client') as { upsert(id: string, payload: UnknownObject): Promise<void> }).upsert(
        client.client_id,
        client as unknown as UnknownObject,
      );
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function updateCookieJar(jar: Map<string, string>, res: Response): void {
  for (const line of res.headers.getSetCookie()) {
    const [pair = '', ...attributes] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attributes.some((a) => {
      const [key = '', attr = ''] = a.split('=').map((s) => s.trim());
      if (key.toLowerCase() === 'max-age') return Number(attr) <= 0;
      if (key.toLowerCase() === 'expires') return Date.parse(attr) <= Date.now();
      return false;
    });
    if (expired || value === '') jar.delete(name);
    else jar.set(name, value);
  }
}

function formFields(html: string): { action: string; fields: URLSearchParams } {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
  if (!action) throw new Error('expected a dev interaction form in the provider page');
  const fields = new URLSearchParams();
  for (const match of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) {
    fields.set(match[1] ?? '', match[2] ?? '');
  }
  return { action: action.replaceAll('&amp;', '&'), fields };
}

/**
 * Plays the user in a browser against oidc-provider's dev login and consent pages: follows the
 * authorization request through login (any password is accepted for `login`) and consent, with a
 * cookie jar, and returns the final redirect to the client (with `code`, `state`, `iss` or an error)
 * without requesting it.
 */
export async function authorizeThroughDevInteractions(
  authorizationRequestUrl: string,
  login = 'alice',
): Promise<URL> {
  const issuerOrigin = new URL(authorizationRequestUrl).origin;
  const jar = new Map<string, string>();
  let next: { url: string; method: 'GET' | 'POST'; body?: URLSearchParams } = {
    url: authorizationRequestUrl,
    method: 'GET',
  };
  for (let step = 0; step < 20; step += 1) {
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const res = await fetch(next.url, {
      method: next.method,
      redirect: 'manual',
      headers: {
        ...(cookie ? { cookie } : {}),
        ...(next.body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(next.body ? { body: next.body } : {}),
    });
    updateCookieJar(jar, res);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      const target = new URL(location, next.url);
      if (target.origin !== issuerOrigin) return target;
      next = { url: target.toString(), method: 'GET' };
      continue;
    }
    const html = await res.text();
    if (res.status !== 200)
      throw new Error(`provider answered ${res.status} during the dev interaction: ${html}`);
    const { action, fields } = formFields(html);
    if (fields.get('prompt') === 'login') {
      fields.set('login', login);
      fields.set('password', 'any');
    }
    next = { url: new URL(action, next.url).toString(), method: 'POST', body: fields };
  }
  throw new Error('the dev interaction did not reach the client redirect within 20 steps');
}
