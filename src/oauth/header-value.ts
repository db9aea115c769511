import { Problem } from '../problem.js';

/**
 * RFC 9110 §5.5: a field value is visible ASCII, spaces, horizontal tabs and obs-text (0x80–0xFF);
 * CR, LF and NUL in it are "invalid and dangerous" (they can split the header). This is exactly the
 * set Node's http accepts (`checkInvalidHeaderChar`); undici's fetch refuses CR, LF and NUL, and a
 * character above 0xFF cannot be written as one byte at all.
 */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Whether a string can be sent as an HTTP header value exactly as it is. */
export function isHeaderSafeValue(value: string): boolean {
  return HEADER_VALUE.test(value);
}

/**
 * The `Authorization` value Grantry sends with an access token: `<headerPrefix> <token>`, or the bare
 * token for an empty prefix. The access token is checked when it arrives (token-response.ts); this
 * checks what is actually sent, the prefix included, so that a value the HTTP stack would refuse is
 * reported as the token's problem here and not as a confusing network error on some later API call.
 * The message and hint name the prefix but never the token.
 */
export function authorizationHeaderValue(headerPrefix: string, accessToken: string): string {
  const value = headerPrefix === '' ? accessToken : `${headerPrefix} ${accessToken}`;
  if (isHeaderSafeValue(value)) return value;
  const prefixAtFault = !isHeaderSafeValue(headerPrefix);
  throw new Problem(
    'token_fetch_failed',
    prefixAtFault
      ? 'The Authorization header cannot be built: the header prefix contains a character that is not allowed in an HTTP header.'
      : 'The Authorization header cannot be built: the access token contains a character that is not allowed in an HTTP header (a line break, a control character or a character outside Latin-1).',
    {
      hint: prefixAtFault
        ? 'Set the header prefix (headerPrefix) to plain visible text such as Bearer, or to "" to send the bare token.'
        : "The provider issued a malformed access token: check that the Token URL is the provider's token endpoint; if it is, report the malformed token to the provider.",
    },
  );
}
