/**
 * What a successful token response said (RFC 6749 §5.1), normalised. `tokenType` is informational
 * only: Grantry sends the access token with the authentication's configured header prefix.
 */
export interface TokenSet {
  accessToken: string;
  /** As the provider said; `Bearer` when the provider did not say. */
  tokenType: string;
  /** Seconds from the response, within [0, one year] (0: expires now); null when the provider did not say. */
  expiresIn: number | null;
  refreshToken: string | null;
  /** The granted scope when the provider said it (RFC 6749 §5.1: omitted means "as requested"). */
  scope: string | null;
  idToken: string | null;
}
