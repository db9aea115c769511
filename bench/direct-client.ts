import * as oauth from 'oauth4webapi';
import { BENCH_CLIENT } from './environment.js';

/**
 * The client-credentials grant (RFC 6749 §4.4) as an application would make it without Grantry:
 * oauth4webapi over Node's own fetch, nothing cached. The baseline of the token-fetch figure, and
 * — called once per API call, as simple-oauth2 is commonly used — the naive client of the storm.
 */
export function directTokenRequest(issuer: string, tokenUrl: string): () => Promise<string> {
  const server: oauth.AuthorizationServer = { issuer, token_endpoint: tokenUrl };
  const client: oauth.Client = { client_id: BENCH_CLIENT.id };
  const authentication = oauth.ClientSecretBasic(BENCH_CLIENT.secret);
  return async () => {
    const response = await oauth.clientCredentialsGrantRequest(
      server,
      client,
      authentication,
      new URLSearchParams(),
    );
    const result = await oauth.processClientCredentialsResponse(server, client, response);
    return result.access_token;
  };
}
