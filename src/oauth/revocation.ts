import { allowInsecureRequests, type ClientAuth, customFetch, revocationRequest } from 'oauth4webapi';
import { Problem } from '../problem.js';
import { applyClientAuthentication, clientOf } from './client-authentication.js';
import type { OAuthClientConfig, TokenRequestOptions } from './client-config.js';
import { diagnose } from './diagnosis.js';
import { requestTimeout } from './request-timeout.js';
import { secretRedaction, sentSecretsOf } from './secret-redaction.js';
import { oauthErrorOfResponse, unusableResponse } from './token-response.js';

export interface RevocationRequest {
  token: string;
  tokenTypeHint: 'refresh_token' | 'access_token';
}

/**
 * Token Revocation, RFC 7009 §2.1, with the client authentication of the token requests. Any 2xx is
 * success (§2.2: the server answers 200 also for tokens it does not know). An error answer (§2.2.1,
 * e.g. `unsupported_token_type`) or an unusable one becomes a diagnosed `Problem`, with the token
 * and the client's credentials cut out of it in every form they were sent in, should the endpoint
 * echo the request (secret-redaction.ts).
 */
export async function revokeToken(
  config: Pick<OAuthClientConfig, 'clientId' | 'clientSecret' | 'clientAuthMethod' | 'revocationUrl'> &
    Partial<Pick<OAuthClientConfig, 'tokenUrl' | 'clientAssertionAudience' | 'signingKey'>>,
  request: RevocationRequest,
  options: TokenRequestOptions,
): Promise<void> {
  const revocationUrl = config.revocationUrl;
  if (revocationUrl === undefined || revocationUrl === '') {
    throw new Problem('not_supported', 'No revocation endpoint is known for this authentication.', {
      hint: 'Set revocationUrl, or use an issuer whose metadata names a revocation_endpoint.',
    });
  }
  let redaction = secretRedaction({ values: [request.token], client: config });
  const authenticate: ClientAuth = async (_server, _client, body, headers) => {
    await applyClientAuthentication(config, body, headers);
    // The request as it goes out: the token in the body, the secret in the body or the Basic header.
    redaction = secretRedaction(sentSecretsOf(body, headers, config));
  };
  const timeout = requestTimeout(revocationUrl, options, 'The revocation request timed out.');
  const context = {
    step: 'revocation',
    tokenUrl: revocationUrl,
    clientAuthMethod: config.clientAuthMethod,
  } as const;
  let status: number;
  let bodyText: string;
  let headers: Headers;
  try {
    const response = await revocationRequest(
      { issuer: 'urn:grantry:unused', revocation_endpoint: revocationUrl },
      clientOf(config),
      authenticate,
      request.token,
      {
        additionalParameters: { token_type_hint: request.tokenTypeHint },
        signal: timeout.signal,
        // The https rule is Egress's (it knows GRANTRY_ALLOW_HTTP); do not enforce a second one here.
        [allowInsecureRequests]: true,
        [customFetch]: (target, init) => options.fetch(target, init),
      },
    );
    status = response.status;
    headers = response.headers;
    bodyText = await response.text();
  } catch (error) {
    if (timeout.callerAborted()) throw error;
    throw redaction.problem(diagnose(timeout.failure(error), context));
  }
  if (status >= 200 && status < 300) return;
  const raw = { status, contentType: headers.get('content-type'), bodyText, headers };
  const reading = { redact: redaction.text };
  const answer = oauthErrorOfResponse(raw, reading) ?? unusableResponse(raw, reading);
  throw redaction.problem(diagnose(answer, context));
}
