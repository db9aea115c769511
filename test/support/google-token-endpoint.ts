import { randomBytes } from 'node:crypto';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { importJWK, jwtVerify } from 'jose';
import { issueServerCertificate } from './tls.js';

type Json = Record<string, any>;

const HOUR = 3600;

/**
 * A token endpoint that does what Google's does with the JWT-bearer grant
 * (https://developers.google.com/identity/protocols/oauth2/service-account): the assertion's
 * signature with the service account's public key (found by the header's kid), `iss` the service
 * account's email, `aud` the token URI, `exp` at most an hour after `iat`, `iat` not in the future,
 * and a `scope` claim. Refusals are Google's: `invalid_grant` with its descriptions.
 */
export async function startGoogleLikeTokenEndpoint(account: {
  email: string;
  keyId: string;
  publicJwk: Json;
}): Promise<{
  url: string;
  assertions: Json[];
  close(): Promise<void>;
}> {
  const tls = issueServerCertificate(['localhost', '127.0.0.1']);
  const assertions: Json[] = [];
  let url = '';
  const server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        const refuse = (error: string, description: string) => {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error, error_description: description }));
        };
        if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
          return refuse('unsupported_grant_type', 'Invalid grant_type');
        }
        const assertion = form.get('assertion') ?? '';
        let payload: Json;
        try {
          const verified = await jwtVerify(
            assertion,
            async (header) => {
              if (header.kid !== account.keyId) throw new Error('unknown kid');
              return importJWK(account.publicJwk, 'RS256');
            },
            { algorithms: ['RS256'], audience: url, issuer: account.email },
          );
          payload = verified.payload as Json;
        } catch {
          return refuse('invalid_grant', 'Invalid JWT Signature.');
        }
        const now = Math.floor(Date.now() / 1000);
        if (
          typeof payload.iat !== 'number' ||
          typeof payload.exp !== 'number' ||
          payload.exp - payload.iat > HOUR ||
          payload.iat > now + 5
        ) {
          return refuse(
            'invalid_grant',
            'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.',
          );
        }
        if (typeof payload.scope !== 'string' || payload.scope === '') {
          return refuse('invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
        }
        assertions.push(payload);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            access_token: `ya29.${randomBytes(24).toString('base64url')}`,
            token_type: 'Bearer',
            expires_in: 3599,
          }),
        );
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://localhost:${(server.address() as AddressInfo).port}/token`;
  return {
    url,
    assertions,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
