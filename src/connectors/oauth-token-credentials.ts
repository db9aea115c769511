import type { Dispatcher } from 'undici';
import type { ClientCertificate } from '../tokens/authentication-keys.js';
import type { CachedToken, TokenManager } from '../tokens/token-manager.js';
import type {
  Credential,
  CredentialNames,
  CredentialSource,
  CredentialStep,
  RefusalVerdict,
} from './credential-source.js';
import { DpopRequestProof } from './dpop-request-proof.js';
import { asGatewayProblem } from './gateway-problem.js';

/** An OAuth access token as a credential: `Authorization: <headerPrefix> <token>`. */
export interface OAuthCredential extends Credential {
  readonly token: CachedToken;
}

/**
 * The credentials of an OAuth 2.0 authentication (RFC 6750 §2.1: the token in the Authorization
 * header), from the TokenManager: the cached token without I/O, one fresh token shared by every
 * caller refused at the same time, and the refused-token back-off (RefusedTokenBackoff) deciding
 * whether a refusal may force a new one.
 */
/** A token goes in the Authorization header, and nowhere else. */
const OAUTH_NAMES: CredentialNames = { headers: new Set(['authorization']), query: new Set() };

export class OAuthTokenCredentials implements CredentialSource<OAuthCredential> {
  readonly authenticationId: string;
  readonly names = OAUTH_NAMES;
  readonly #tokens: TokenManager;
  /** The credential of the token handed out last: the hot path builds no object per call. */
  #last: OAuthCredential | null = null;

  readonly #certificateDispatcher: ((certificate: ClientCertificate) => Dispatcher) | undefined;

  /**
   * `certificateDispatcher`: the pool that presents a client certificate, for tokens bound to it
   * (RFC 8705 §3); without it such a token is sent through the shared pool (and refused).
   */
  constructor(
    tokens: TokenManager,
    authenticationId: string,
    certificateDispatcher?: (certificate: ClientCertificate) => Dispatcher,
  ) {
    this.#tokens = tokens;
    this.authenticationId = authenticationId;
    this.#certificateDispatcher = certificateDispatcher;
  }

  peek(): OAuthCredential | undefined {
    const token = this.#tokens.peek(this.authenticationId);
    return token === undefined ? undefined : this.#credentialOf(token);
  }

  async get(): Promise<OAuthCredential> {
    const token = this.#tokens.peek(this.authenticationId);
    if (token !== undefined) return this.#credentialOf(token);
    try {
      return this.#credentialOf(await this.#tokens.get(this.authenticationId));
    } catch (error) {
      throw asGatewayProblem(error);
    }
  }

  refused(credential: OAuthCredential, replacedForThisCall: boolean): RefusalVerdict {
    const pausedUntil = this.#tokens.refusalBackoff.refused(credential.token, replacedForThisCall);
    return { mayReplace: pausedUntil === null && !replacedForThisCall, pausedUntil };
  }

  async replace(refused: OAuthCredential): Promise<OAuthCredential> {
    let token: CachedToken;
    try {
      token = await this.#tokens.get(this.authenticationId, { force: true, rejected: refused.token });
    } catch (error) {
      throw asGatewayProblem(error);
    }
    // Its refusal, soon, starts a pause of forced refreshes.
    this.#tokens.refusalBackoff.replaced(token);
    return this.#credentialOf(token);
  }

  pausedUntil(credential: OAuthCredential): number | null {
    return this.#tokens.refusalBackoff.pausedUntil(credential.token);
  }

  async acquireForTest(): Promise<{ credential: OAuthCredential; step: CredentialStep }> {
    let acquired: Awaited<ReturnType<TokenManager['acquire']>>;
    try {
      acquired = await this.#tokens.acquire(this.authenticationId, { ignoreBackoff: true });
    } catch (error) {
      throw asGatewayProblem(error);
    }
    const { token } = acquired;
    return {
      credential: this.#credentialOf(token),
      step: {
        ok: true,
        source: acquired.source,
        tokenType: token.tokenType,
        expiresAt: token.expiresAt === null ? null : new Date(token.expiresAt).toISOString(),
        scope: token.scope,
      },
    };
  }

  #credentialOf(token: CachedToken): OAuthCredential {
    const last = this.#last;
    if (last !== null && last.token === token) return last;
    const credential: OAuthCredential = {
      headers: ['authorization', token.authorization],
      query: '',
      refreshable: true,
      bearerToken: token.accessToken,
      token,
      // RFC 9449 §7: a DPoP-bound token needs a proof of the key on every call.
      ...(token.dpopBinding === undefined
        ? {}
        : { proof: new DpopRequestProof(token.dpopBinding, token.accessToken) }),
      ...(token.clientCertificate === undefined || this.#certificateDispatcher === undefined
        ? {}
        : { dispatcher: this.#certificateDispatcher(token.clientCertificate) }),
    };
    this.#last = credential;
    return credential;
  }
}
