import { type FieldError, Problem } from '../problem.js';
import type { AuthenticationRecord, Store } from '../store/contract.js';

/**
 * A static credential (API key, Basic, bearer token) is a write-only secret that goes out as it is
 * on every call — so whoever can point a connector somewhere could collect it there. It is bound
 * to the origins of the connectors that use it: the first connector that attaches it binds it to
 * its origin (with those of any connector already using it), and attaching it to a connector on
 * another origin, or moving such a connector's base URL there, needs the secret given again on the
 * authentication (which unbinds it: authentication-service.ts). OAuth 2.0 access tokens are not
 * bound: they are short-lived, and the client secret itself never goes to the API.
 */

/** Where a connector that uses the authentication would send it: the origin of its base URL. */
export function originOf(baseUrl: string): string {
  return new URL(baseUrl).origin;
}

/** Why `origin` may not receive this credential, or null when it may (or will be bound to it). */
export function bindingProblem(
  authentication: AuthenticationRecord,
  origin: string,
  field: '/authenticationId' | '/baseUrl',
): FieldError | null {
  if (authentication.type === 'oauth2') return null;
  const bound = authentication.settings.boundOrigins;
  if (bound === undefined || bound.includes(origin)) return null;
  return {
    path: field,
    message: `authentication "${authentication.name}" sends its credential only to ${bound.join(', ')}; to use it with ${origin}, give its secret again (PATCH /api/authentications/${authentication.id}) or create another authentication`,
  };
}

/**
 * Binds the credential of `authId` to `origin` before a connector starts sending it there: a
 * compare-and-swap on the settings, so two connectors attaching an unbound credential at once
 * cannot both bind it their way, and a secret given again meanwhile is decided on afresh.
 * `connectorId` is the connector being saved (its old origin no longer counts).
 */
export async function bindCredential(
  store: Store,
  authId: string,
  origin: string,
  field: '/authenticationId' | '/baseUrl',
  connectorId: string,
): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const authentication = await store.authentications.get(authId);
    if (authentication === null || authentication.type === 'oauth2') return;
    const problem = bindingProblem(authentication, origin, field);
    if (problem !== null) {
      throw new Problem('validation_failed', 'The request is not valid.', { errors: [problem] });
    }
    if (authentication.settings.boundOrigins !== undefined) return;
    const users = await store.connectors.listByAuthentication(authId);
    const origins = new Set(
      users.filter((user) => user.id !== connectorId).map((user) => originOf(user.baseUrl)),
    );
    origins.add(origin);
    const next = { ...authentication.settings, boundOrigins: [...origins].sort() };
    if (await store.authentications.replaceSettings(authId, authentication.settings, next)) return;
  }
  throw new Problem(
    'conflict',
    'The authentication changed while this connector was being saved; try again.',
  );
}
