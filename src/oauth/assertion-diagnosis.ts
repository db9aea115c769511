/**
 * Why a provider refused a signed request, in words a person can act on. A provider that refuses a
 * client assertion says little (oidc-provider, Okta and Entra answer `invalid_client` with at most a
 * generic description), so the likely causes are listed in the order they usually are to blame, and
 * one that the evidence proves moves to the front: a clock that differs from the provider's by more
 * than the assertion's lifetime, an algorithm the provider's metadata does not list.
 */

/** What an assertion Grantry signed said (never the assertion itself). */
export interface AssertionFacts {
  method: 'client_secret_jwt' | 'private_key_jwt' | 'jwt_bearer';
  alg: string;
  kid?: string | undefined;
  audience: string;
  /** Seconds since the epoch, as the assertion said. */
  issuedAt: number;
  expiresAt: number;
}

/** What is known about the provider when it refused. */
export interface RefusalContext {
  /** The provider's `Date` header, if it sent one. */
  providerDate?: string | null | undefined;
  /** Our clock when the answer arrived, in ms. */
  receivedAt: number;
  /** The provider's issuer from its metadata, when found (a common other `aud`). */
  issuer?: string | null | undefined;
  /** `token_endpoint_auth_signing_alg_values_supported` from its metadata, when found. */
  allowedAlgs?: readonly string[] | null | undefined;
  /** During a rotation: the key waiting to be activated, and the key retiring. */
  nextKid?: string | null | undefined;
  retiringKid?: string | null | undefined;
  /** Whether the keys are published at a JWKS URL (the provider fetches them) or registered by hand. */
  jwksUri?: string | null | undefined;
}

/** A provider's clock may differ from ours by this much before it is named as the cause. */
export const CLOCK_TOLERANCE_SECONDS = 30;

/**
 * How far our clock is ahead of the provider's, in whole seconds (negative: behind), from the
 * `Date` header of its answer (RFC 9110 §6.6.1, one-second resolution); null without a usable one.
 */
export function clockSkewSeconds(providerDate: string | null | undefined, receivedAt: number): number | null {
  if (providerDate === null || providerDate === undefined || providerDate === '') return null;
  const theirs = Date.parse(providerDate);
  if (Number.isNaN(theirs)) return null;
  return Math.round((receivedAt - theirs) / 1000);
}

function describeSkew(skew: number): string {
  const amount = Math.abs(skew);
  const unit = amount === 1 ? 'second' : 'seconds';
  // A Date header has one-second resolution: a second either way is no difference.
  if (amount <= 1) return 'the clocks agree to within a second';
  return `our clock is ${amount} ${unit} ${skew > 0 ? 'ahead of' : 'behind'} the provider's`;
}

/**
 * The causes of a refused assertion, most likely first, each a sentence that says what to check and
 * what Grantry sent. Numbered by the caller (the hint joins them).
 */
export function assertionRefusalCauses(facts: AssertionFacts, context: RefusalContext): string[] {
  const skew = clockSkewSeconds(context.providerDate, context.receivedAt);
  const lifetime = facts.expiresAt - facts.issuedAt;
  const causes: { text: string; proven: boolean }[] = [];

  // 1. The key (or the secret) is not the one the provider has.
  if (facts.method === 'client_secret_jwt') {
    causes.push({
      text: 'The client secret is not the one the provider has (client_secret_jwt signs with it, HS256): check the Client Secret.',
      proven: false,
    });
  } else {
    const where =
      context.jwksUri !== null && context.jwksUri !== undefined
        ? `the provider has not fetched the JWKS at ${context.jwksUri} since the key changed, or was never given that URL`
        : 'the public key shown under Keys is not registered at the provider';
    const rotation =
      context.retiringKid !== null && context.retiringKid !== undefined
        ? ` A rotation switched signing to key ${facts.kid ?? '(no kid)'} and key ${context.retiringKid} is retiring: if the provider does not have the new key yet, register it, or finish later.`
        : context.nextKid !== null && context.nextKid !== undefined
          ? ` Key ${context.nextKid} is waiting in a rotation; the provider must have the key that signs now (${facts.kid ?? 'no kid'}).`
          : '';
    causes.push({
      text: `The key that signed (kid ${facts.kid ?? '(none)'}, ${facts.alg}) is not the one the provider has: ${where}, or it was replaced there.${rotation}`,
      proven: false,
    });
  }

  // 2. The audience.
  const otherAud =
    context.issuer !== null && context.issuer !== undefined && context.issuer !== facts.audience
      ? ` Its metadata names the issuer ${context.issuer}: some providers want that as aud.`
      : '';
  causes.push({
    text:
      facts.method === 'jwt_bearer'
        ? `The assertion's aud was ${facts.audience}: it must be exactly what the provider expects (Google: its token URI; Salesforce: its login URL) — set assertion.aud.${otherAud}`
        : `The assertion's aud was ${facts.audience}: the provider may expect another value — set clientAssertionAudience.${otherAud}`,
    proven: false,
  });

  // 3. The clocks.
  if (skew === null) {
    causes.push({
      text: `Clock skew: the assertion was valid for ${lifetime} seconds from ${new Date(facts.issuedAt * 1000).toISOString()}; the provider sent no Date header, so the difference between the clocks could not be measured — check this machine's time (NTP).`,
      proven: false,
    });
  } else {
    const beyond = Math.abs(skew) > CLOCK_TOLERANCE_SECONDS;
    causes.push({
      text: beyond
        ? `Clock skew: ${describeSkew(skew)} (its Date header), more than the provider's usual tolerance — the assertion ${skew > 0 ? 'looks issued in the future' : `looks expired (it was valid for ${lifetime} seconds)`} to it. Set this machine's clock right (NTP).`
        : `Clock skew is unlikely: ${describeSkew(skew)} (its Date header).`,
      proven: beyond,
    });
  }

  // 4. The algorithm.
  const allowed = context.allowedAlgs;
  const excluded =
    allowed !== null && allowed !== undefined && allowed.length > 0 && !allowed.includes(facts.alg);
  causes.push({
    text: excluded
      ? `The provider does not accept ${facts.alg} for client assertions (its metadata lists ${allowed.join(', ')}): use a key of an algorithm it lists (signingAlg), and register the algorithm on the client if it asks.`
      : `The client's registration at the provider may not allow ${facts.alg}: check the signing algorithm registered for the client${facts.method === 'client_secret_jwt' ? '' : ' (or set signingAlg to the one it allows, with a key of that type)'}.`,
    proven: excluded,
  });

  return [...causes.filter((c) => c.proven), ...causes.filter((c) => !c.proven)].map((c) => c.text);
}

/** The causes as one hint: "Likely causes, in order: 1. … 2. …". */
export function assertionRefusalHint(facts: AssertionFacts, context: RefusalContext): string {
  const causes = assertionRefusalCauses(facts, context);
  return `Likely causes, in order: ${causes.map((cause, index) => `${index + 1}. ${cause}`).join(' ')}`;
}

/** The claims of a DPoP proof a server may refuse (RFC 9449 §4.2, §4.3), and the header members. */
export const DPOP_PROOF_CLAIMS = ['htm', 'htu', 'iat', 'jti', 'ath', 'nonce', 'jwk', 'alg', 'typ'] as const;
export type DpopProofClaim = (typeof DPOP_PROOF_CLAIMS)[number];

/**
 * The proof claim a refusal names, read from the error description (oidc-provider: "DPoP proof htu
 * mismatch", "DPoP proof iat is not recent enough", "DPoP proof JWT Replay detected", "invalid DPoP
 * key binding"), or null when it names none.
 */
export function refusedDpopClaim(description: string | null | undefined): DpopProofClaim | null {
  if (description === null || description === undefined) return null;
  const text = description.toLowerCase();
  for (const claim of ['htm', 'htu', 'ath', 'iat', 'jti', 'nonce', 'typ', 'alg'] as const) {
    if (new RegExp(`\\b${claim}\\b`).test(text)) return claim;
  }
  if (/replay/.test(text)) return 'jti';
  if (/key binding|jkt|cnf|thumbprint|\bjwk\b/.test(text)) return 'jwk';
  if (/recent|expired|future|too old|clock/.test(text)) return 'iat';
  if (/signature/.test(text)) return 'alg';
  return null;
}

/** What a DPoP proof Grantry sent said about the claim a server refused, and what to do. */
export interface SentProofFacts {
  htm: string;
  htu: string;
  iat: number;
  ath: boolean;
  nonce: boolean;
  alg: string;
}

/**
 * A sentence naming the refused claim, what the proof said for it, and what to check. `where` is
 * "token endpoint" or "API".
 */
export function dpopRefusalHint(
  claim: DpopProofClaim | null,
  sent: SentProofFacts,
  context: { where: string; providerDate?: string | null | undefined; receivedAt: number },
): string {
  const skew = clockSkewSeconds(context.providerDate, context.receivedAt);
  switch (claim) {
    case 'htm':
      return `The ${context.where} refused the DPoP proof's htm (${sent.htm}): it must be the method of the request; a proxy between Grantry and the server may change the method.`;
    case 'htu':
      return `The ${context.where} refused the DPoP proof's htu (${sent.htu}): it must be the URL the server sees, without query and fragment; a proxy or a rewritten path (another host, port or prefix) makes them differ — configure the URL the server itself uses.`;
    case 'iat':
      return `The ${context.where} refused the DPoP proof's iat (${new Date(sent.iat * 1000).toISOString()}) as not recent: ${skew === null ? 'check this machine’s clock (NTP); the server sent no Date header to compare with' : `${describeSkew(skew)}, by its Date header — set the clock right (NTP)`}.`;
    case 'jti':
      return `The ${context.where} refused the DPoP proof's jti as replayed: each proof is made once; a proxy that retries requests resends the same proof.`;
    case 'ath':
      return `The ${context.where} refused the DPoP proof's ath (the hash of the access token): the token sent is not the one the proof names; a proxy may rewrite the Authorization header.`;
    case 'nonce':
      return `The ${context.where} refused the DPoP proof's nonce${sent.nonce ? ' (Grantry sent the one it was given, and retried once with a new one)' : ''}: it wants a fresh DPoP-Nonce on every request, or several instances share a server that issues nonces per connection.`;
    case 'jwk':
      return `The ${context.where} refused the DPoP proof's key (jwk): the token is bound to another DPoP key (its jkt) — the authentication's DPoP key changed after the token was issued; fetch a new token (Test).`;
    case 'typ':
    case 'alg':
      return `The ${context.where} refused the DPoP proof's ${claim} (typ dpop+jwt, alg ${sent.alg}): the server may not accept ${sent.alg} for DPoP proofs; check its dpop_signing_alg_values_supported.`;
    default:
      return `The ${context.where} refused the DPoP proof without naming a claim: check the clock (iat), that the URL Grantry calls is the one the server sees (htu), and that the token is bound to this authentication's DPoP key.`;
  }
}
