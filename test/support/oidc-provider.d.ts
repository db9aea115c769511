// oidc-provider ships no TypeScript declarations and @types/oidc-provider lags v9; this declares only
// the surface the test harness uses (test/support/oidc.ts).
declare module 'oidc-provider' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export type UnknownObject = { [key: string]: unknown };

  export interface ProviderClient {
    readonly clientId: string;
    readonly scope?: string;
    readonly clientAuthMethod: string;
    grantTypeAllowed(grantType: string): boolean;
  }

  export interface StoredToken {
    readonly jti: string;
    readonly clientId?: string;
    readonly accountId?: string;
    readonly grantId?: string;
    readonly scope?: string;
    readonly aud?: string | string[];
    readonly resource?: string | string[];
    readonly resourceServer?: { readonly identifier?: string; readonly audience?: string };
    readonly isExpired: boolean;
    readonly exp?: number;
  }

  /** A token being issued: set its fields, then `save()` returns its value. */
  export interface NewToken {
    scope?: string | undefined;
    grantId?: string;
    resourceServer?: unknown;
    /** Seconds until expiry, from the configured ttl. */
    readonly expiration: number;
    save(): Promise<string>;
  }

  export interface TokenModel {
    new (properties: UnknownObject): NewToken;
    find(value: string, options?: { ignoreExpiration?: boolean }): Promise<StoredToken | undefined>;
  }

  export interface GrantInstance {
    readonly jti: string;
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  }

  export interface OidcParams {
    readonly [name: string]: string | string[] | undefined;
  }

  export interface KoaContextWithOidc {
    readonly oidc: {
      readonly client: ProviderClient;
      readonly params: OidcParams;
      entity(name: string, value: unknown): void;
    };
    body: unknown;
    /** The Node request (Koa's ctx.req): its TLS socket carries the client certificate. */
    readonly req: import('node:http').IncomingMessage;
  }

  export class Provider extends EventEmitter {
    constructor(issuer: string, configuration: UnknownObject);
    readonly issuer: string;
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    /** Koa middleware around every request (the provider is a Koa application). */
    use(middleware: (ctx: { path: string; body: unknown }, next: () => Promise<void>) => Promise<void>): void;
    registerGrantType(
      name: string,
      handler: (ctx: KoaContextWithOidc) => Promise<void>,
      parameters?: Iterable<string>,
      allowedDuplicateParameters?: Iterable<string>,
    ): void;
    readonly AccessToken: TokenModel;
    readonly ClientCredentials: TokenModel;
    readonly RefreshToken: TokenModel;
    readonly Grant: new (properties: {
      accountId: string;
      clientId: string;
    }) => GrantInstance;
    readonly ResourceServer: new (
      identifier: string,
      info: UnknownObject,
    ) => unknown;
  }

  export class OIDCProviderError extends Error {
    readonly error: string;
    readonly error_description?: string;
    readonly status: number;
  }

  export const errors: {
    readonly InvalidGrant: new (detail?: string) => OIDCProviderError;
    readonly InvalidRequest: new (description?: string) => OIDCProviderError;
    readonly InvalidScope: new (description: string, scope?: string) => OIDCProviderError;
    readonly InvalidTarget: new (description?: string) => OIDCProviderError;
  };

  export default Provider;
}
