/**
 * Header names that usually carry a credential (`Authorization`, `X-Api-Key`, `X-Auth-Token`…): the
 * connector form offers to move such a plain header, which anyone reading the connector sees, into
 * the secret headers, which are encrypted and never shown again.
 */
export function looksLikeCredentialHeader(name: string): boolean {
  return (
    /^(authorization|proxy-authorization|cookie)$/i.test(name) ||
    /(^|-)(key|token|secret|password|signature|apikey)$/i.test(name)
  );
}
