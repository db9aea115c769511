import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleLikeTokenEndpoint } from './support/google-token-endpoint.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';
import { issueClientCertificate, issueServerCertificate } from './support/tls.js';

/**
 * Keys instead of shared secrets (issue 17, docs/keys.md), end to end: Grantry against a real
 * oidc-provider over HTTPS with mutual TLS and DPoP on, every client authentication method, keys
 * Grantry makes (the test registers their public JWK, read from the public jwks_uri) and keys the
 * test brings, a rotation with both keys live and then only the new one, DPoP-bound tokens used at an
 * API that checks every proof, and the JWT-bearer grant at a token endpoint that checks the assertion
 * the way Google's does.
 */

type Json = Record<string, any>;

const HOUR = 3600;

/** What the test's API saw of one request. */
interface ApiSeen {
  path: string;
  clientCertificateSha256: string | null;
  outcome: 'ok' | 'nonce_challenge' | 'refused';
  reason?: string;
}

/**
 * The test's protected API: checks tokens at the provider and, for DPoP-bound ones, the proof as
 * RFC 9449 §7.1 says — signature over the embedded key, typ, htm, htu, iat, a jti never seen before,
 * ath of the token, the key being the one the token is bound to (jkt), and a nonce it gave: the first
 * request of each key is answered with a nonce challenge (`use_dpop_nonce`) once. For certificate-bound
 * tokens (RFC 8705 §3), the certificate presented must be the one the token is bound to. It asks for
 * client certificates and records whether one came.
 */
async function startProtectedApi(oidc: OidcFixture): Promise<{
  url: string;
  seen: ApiSeen[];
  challenges: number;
  forceRefusal: string | null;
  close(): Promise<void>;
}> {
  const tls = issueServerCertificate(['localhost', '127.0.0.1']);
  const nonce = `n-${randomBytes(8).toString('hex')}`;
  const challenged = new Set<string>();
  const jtis = new Set<string>();
  const state = {
    url: '',
    seen: [] as ApiSeen[],
    challenges: 0,
    forceRefusal: null as string | null,
    close: async () => {},
  };
  const server: Server = createServer(
    { cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: false },
    (req: IncomingMessage, res: ServerResponse) => {
      void (async () => {
        const peer = (req.socket as TLSSocket).getPeerX509Certificate?.();
        const record: ApiSeen = {
          path: req.url ?? '/',
          clientCertificateSha256:
            peer === undefined ? null : createHash('sha256').update(peer.raw).digest('base64url'),
          outcome: 'refused',
        };
        state.seen.push(record);
        const refuse = (scheme: string, error: string, reason: string) => {
          record.reason = reason;
          res.writeHead(401, {
            'www-authenticate': `${scheme} error="${error}", error_description="${reason}"`,
          });
          res.end();
        };
        const [scheme, token] = (req.headers.authorization ?? '').split(' ');
        if (token === undefined) return refuse('Bearer', 'invalid_token', 'no token');
        const verified = await oidc.verifyAccessToken(token);
        if (!verified.active) return refuse(scheme ?? 'Bearer', 'invalid_token', 'token not active');
        if (verified.x5tS256 !== undefined && verified.x5tS256 !== record.clientCertificateSha256) {
          return refuse('Bearer', 'invalid_token', 'certificate binding');
        }
        if (verified.jkt !== undefined) {
          if (scheme !== 'DPoP')
            return refuse('DPoP', 'invalid_token', 'a DPoP-bound token needs the DPoP scheme');
          const proof = req.headers.dpop;
          if (typeof proof !== 'string') return refuse('DPoP', 'invalid_dpop_proof', 'no DPoP proof');
          if (state.forceRefusal !== null) return refuse('DPoP', 'invalid_dpop_proof', state.forceRefusal);
          let payload: Json;
          let jwk: Json;
          try {
            const verifiedProof = await jwtVerify(proof, EmbeddedJWK, {
              typ: 'dpop+jwt',
              algorithms: ['ES256'],
            });
            payload = verifiedProof.payload as Json;
            jwk = verifiedProof.protectedHeader.jwk as Json;
          } catch {
            return refuse('DPoP', 'invalid_dpop_proof', 'DPoP proof signature');
          }
          if (payload.htm !== req.method)
            return refuse('DPoP', 'invalid_dpop_proof', 'DPoP proof htm mismatch');
          const htu = `${state.url}${(req.url ?? '/').split('?')[0]}`;
          if (payload.htu !== htu) return refuse('DPoP', 'invalid_dpop_proof', 'DPoP proof htu mismatch');
          if (Math.abs(Date.now() / 1000 - payload.iat) > 60)
            return refuse('DPoP', 'invalid_dpop_proof', 'iat');
          if (jtis.has(payload.jti))
            return refuse('DPoP', 'invalid_dpop_proof', 'DPoP proof JWT Replay detected');
          jtis.add(payload.jti);
          const ath = createHash('sha256').update(token).digest('base64url');
          if (payload.ath !== ath) return refuse('DPoP', 'invalid_dpop_proof', 'DPoP proof ath mismatch');
          if ((await calculateJwkThumbprint(jwk as never)) !== verified.jkt) {
            return refuse('DPoP', 'invalid_dpop_proof', 'invalid DPoP key binding');
          }
          if (payload.nonce !== nonce) {
            // RFC 9449 §9: the resource server's nonce, asked for once per key.
            if (challenged.has(verified.jkt)) return refuse('DPoP', 'invalid_dpop_proof', 'wrong nonce');
            challenged.add(verified.jkt);
            state.challenges += 1;
            record.outcome = 'nonce_challenge';
            res.writeHead(401, {
              'www-authenticate':
                'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"',
              'dpop-nonce': nonce,
            });
            res.end();
            return;
          }
        } else if (scheme !== 'Bearer') {
          return refuse('Bearer', 'invalid_token', `scheme ${scheme}`);
        }
        record.outcome = 'ok';
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: true, client: verified.clientId }));
      })().catch(() => {
        res.writeHead(500);
        res.end();
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `https://localhost:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return state;
}

describe('keys instead of shared secrets, against a real oidc-provider over HTTPS', () => {
  let oidc: OidcFixture;
  let g: GrantryHandle;
  let api: Awaited<ReturnType<typeof startProtectedApi>>;

  beforeAll(async () => {
    oidc = await startOidcProvider({
      mtls: true,
      dpop: { requireNonce: true },
      clients: [
        {
          client_id: 'csj-client',
          client_secret: 'a client secret that signs HS256 assertions, long enough',
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_jwt',
        },
        {
          client_id: 'dpop-client',
          client_secret: 'dpop-client-secret-1234567890',
          grant_types: ['client_credentials', 'password', 'refresh_token'],
          token_endpoint_auth_method: 'client_secret_basic',
          dpop_bound_access_tokens: true,
        },
      ],
    });
    g = await startGrantry();
    api = await startProtectedApi(oidc);
  });
  afterAll(async () => {
    await api?.close();
    await g?.stop();
    await oidc?.close();
  });

  const create = async (body: Json) => {
    const answer = await g.api('POST', '/api/authentications', {
      name: `keys ${randomBytes(4).toString('hex')}`,
      type: 'oauth2',
      ...body,
    });
    expect(answer.status, answer.text).toBe(201);
    return answer.body as Json;
  };
  const test = async (id: string) => (await g.api('POST', `/api/authentications/${id}/test`)).body as Json;
  /** The published JWK Set, fetched as a provider would: the public route, no API key. */
  const publishedJwks = async (id: string) => {
    const answer = await fetch(`${g.url}/oauth/jwks/${id}`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toContain('application/jwk-set+json');
    return (await answer.json()) as { keys: Json[] };
  };

  it('client_secret_jwt: an HS256 assertion with the client secret gets a token; a wrong secret is explained', async () => {
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'csj-client',
      clientSecret: 'a client secret that signs HS256 assertions, long enough',
      clientAuthMethod: 'client_secret_jwt',
    });
    const ok = await test(auth.id);
    expect(ok, JSON.stringify(ok)).toMatchObject({ ok: true, token: { source: 'fetched' } });

    const wrong = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'csj-client',
      clientSecret: 'not the secret the provider has, but long',
      clientAuthMethod: 'client_secret_jwt',
    });
    const refused = await test(wrong.id);
    expect(refused.ok).toBe(false);
    expect(refused.error.code).toBe('invalid_client');
    expect(refused.error.message).toContain('refused the client assertion (client_secret_jwt)');
    expect(refused.error.hint).toMatch(/^Likely causes, in order: 1\. The client secret is not the one/);
    expect(refused.error.hint).toContain(`aud was ${oidc.tokenUrl}`);
    expect(refused.error.hint).toMatch(
      /Clock skew is unlikely: the clocks agree to within a second \(its Date header\)/,
    );
  });

  it.each(['RS256', 'PS256', 'ES256', 'EdDSA'] as const)(
    'private_key_jwt with %s: a key Grantry makes, its public JWK registered from the jwks_uri, on token, refresh and revocation requests',
    async (alg) => {
      const auth = await create({
        grantType: 'password',
        tokenUrl: oidc.tokenUrl,
        revocationUrl: oidc.revocationUrl,
        clientId: `pkj-${alg.toLowerCase()}`,
        clientAuthMethod: 'private_key_jwt',
        signingAlg: alg,
        generateKey: true,
        publishJwks: true,
        username: 'alice',
        password: 'wonderland',
      });
      expect(auth.privateKeySet).toBe(true);
      expect(auth.keys).toHaveLength(1);
      expect(auth.keys[0]).toMatchObject({ alg, status: 'current', origin: 'generated' });
      expect(auth.jwksUri).toBe(`http://localhost:${new URL(g.url).port}/jwks/${auth.id}.json`);
      expect(JSON.stringify(auth)).not.toMatch(/PRIVATE KEY|"d":/);
      const jwks = await publishedJwks(auth.id);
      expect(jwks.keys).toEqual([auth.keys[0].publicJwk]);
      await oidc.registerClient({
        client_id: `pkj-${alg.toLowerCase()}`,
        grant_types: ['password', 'refresh_token'],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: alg,
        jwks,
      });

      const fetched = await test(auth.id);
      expect(fetched, JSON.stringify(fetched)).toMatchObject({
        ok: true,
        token: { source: 'fetched', hasRefreshToken: true },
      });
      // The refresh request authenticates with a fresh assertion too.
      await g.api('POST', `/api/authentications/${auth.id}/invalidate`);
      const refreshed = await test(auth.id);
      expect(refreshed, JSON.stringify(refreshed)).toMatchObject({
        ok: true,
        token: { source: 'refreshed' },
      });
      // And so does the revocation at delete.
      const before = oidc.revocations;
      expect((await g.api('DELETE', `/api/authentications/${auth.id}`)).status).toBe(204);
      expect(oidc.revocations).toBeGreaterThan(before);
      const events = await g.api('GET', `/api/authentications/${auth.id}/events`);
      expect(events.status).toBe(404);
    },
  );

  it('private_key_jwt with an imported key and kid; a key the provider does not have is explained', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'pkj-imported',
      clientAuthMethod: 'private_key_jwt',
      privateKey: privateKey.export({ type: 'sec1', format: 'pem' }).toString(),
      keyId: 'imported-key-1',
    });
    // The algorithm follows the key: an EC P-256 key signs ES256.
    expect(auth).toMatchObject({ signingAlg: 'ES256', privateKeySet: true });
    expect(auth.keys[0]).toMatchObject({ kid: 'imported-key-1', origin: 'imported', alg: 'ES256' });
    await oidc.registerClient({
      client_id: 'pkj-imported',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: {
        keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'imported-key-1', alg: 'ES256', use: 'sig' }],
      },
    });
    expect(await test(auth.id)).toMatchObject({ ok: true });

    // Registered with another key: refused, and the causes are listed in order.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    await oidc.registerClient({
      client_id: 'pkj-imported',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...other.export({ format: 'jwk' }), kid: 'imported-key-1', alg: 'ES256' }] },
    });
    await g.api('POST', `/api/authentications/${auth.id}/invalidate`);
    const refused = await test(auth.id);
    expect(refused.error.code).toBe('invalid_client');
    expect(refused.error.message).toContain('refused the client assertion (private_key_jwt)');
    const hint: string = refused.error.hint;
    const order = [
      '1. The key that signed (kid imported-key-1, ES256)',
      "2. The assertion's aud",
      '3. Clock skew',
      '4. The client',
    ];
    const positions = order.map((part) => hint.indexOf(part));
    expect(
      positions.every((p) => p >= 0),
      hint,
    ).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(hint).toContain(`names the issuer ${oidc.issuer}`);
  });

  it('refuses imported keys that cannot work, naming the field', async () => {
    const base = {
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'x',
      clientAuthMethod: 'private_key_jwt',
    };
    const bad = async (body: Json) => {
      const answer = await g.api('POST', '/api/authentications', {
        name: `bad ${randomBytes(3).toString('hex')}`,
        type: 'oauth2',
        ...base,
        ...body,
      });
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('validation_failed');
      return answer.body.error.errors as { path: string; message: string }[];
    };
    expect(
      await bad({ privateKey: '-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----' }),
    ).toEqual([{ path: '/privateKey', message: expect.stringContaining('does not parse') }]);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    expect(await bad({ privateKey: small.export({ type: 'pkcs8', format: 'pem' }).toString() })).toEqual([
      { path: '/privateKey', message: 'is an RSA key of 1024 bits: at least 2048 bits are required' },
    ]);
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const certificate = issueClientCertificate(
      otherKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      'someone else',
    );
    expect(
      await bad({
        privateKey: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        certificate,
      }),
    ).toEqual([
      { path: '/certificate', message: 'does not match the private key: it was issued for another key pair' },
    ]);
    expect(
      await bad({
        privateKey: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        signingAlg: 'ES256',
      }),
    ).toEqual([
      {
        path: '/signingAlg',
        message: expect.stringContaining('ES256 needs an EC P-256 key, and the key is an RSA key'),
      },
    ]);
    // Nothing given at all: the key is missing, and so is the way to make one.
    expect(await bad({})).toEqual([
      { path: '/privateKey', message: expect.stringContaining('set generateKey') },
    ]);
  });

  it('tls_client_auth: a CA-issued certificate authenticates at the token endpoint only; the API never sees it', async () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const certificate = issueClientCertificate(
      key.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      'grantry-mtls-client',
    );
    await oidc.registerClient({
      client_id: 'mtls-ca',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: 'CN=grantry-mtls-client',
    });
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'mtls-ca',
      clientAuthMethod: 'tls_client_auth',
      privateKey: key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      certificate,
    });
    expect(auth.keys[0].certificateSha256).toBe(new X509Certificate(certificate).fingerprint256);
    expect(await test(auth.id)).toMatchObject({ ok: true, token: { source: 'fetched' } });

    const connector = await g.api('POST', '/api/connectors', {
      name: `mtls ${auth.id}`,
      baseUrl: api.url,
      authenticationId: auth.id,
    });
    const seenBefore = api.seen.length;
    const call = await g.api('POST', `/api/connectors/${connector.body.id}/execute`, {
      method: 'GET',
      path: '/orders',
    });
    expect(call.body.status, JSON.stringify(call.body)).toBe(200);
    expect(api.seen.slice(seenBefore).map((s) => s.clientCertificateSha256)).toEqual([null]);

    // Another subject: refused, and the hint names the certificate Grantry sent.
    await oidc.registerClient({
      client_id: 'mtls-ca',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: 'CN=someone else',
    });
    await g.api('POST', `/api/authentications/${auth.id}/invalidate`);
    const refused = await test(auth.id);
    expect(refused.error.code).toBe('invalid_client');
    expect(refused.error.hint).toContain('tls_client_auth, RFC 8705 §2.1');
    expect(refused.error.hint).toContain(new X509Certificate(certificate).fingerprint256);
  });

  it('self_signed_tls_client_auth with a certificate Grantry makes; certificate-bound tokens take the certificate to the API', async () => {
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'mtls-self',
      clientAuthMethod: 'self_signed_tls_client_auth',
      generateKey: true,
      certificateBoundTokens: true,
    });
    const [key] = auth.keys;
    expect(key.certificate).toContain('BEGIN CERTIFICATE');
    const certificate = new X509Certificate(key.certificate);
    expect(certificate.subject).toBe(`CN=grantry ${auth.id}`);
    expect(key.publicJwk.x5c).toEqual([certificate.raw.toString('base64')]);
    await oidc.registerClient({
      client_id: 'mtls-self',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      tls_client_certificate_bound_access_tokens: true,
      jwks: { keys: [key.publicJwk] },
    });
    expect(await test(auth.id)).toMatchObject({ ok: true });

    const connector = await g.api('POST', '/api/connectors', {
      name: `bound ${auth.id}`,
      baseUrl: api.url,
      authenticationId: auth.id,
    });
    const seenBefore = api.seen.length;
    const call = await g.api('POST', `/api/connectors/${connector.body.id}/execute`, {
      method: 'GET',
      path: '/bound',
    });
    expect(call.body.status, JSON.stringify(call.body)).toBe(200);
    const thumbprint = createHash('sha256').update(certificate.raw).digest('base64url');
    expect(api.seen.slice(seenBefore)).toEqual([
      { path: '/bound', clientCertificateSha256: thumbprint, outcome: 'ok' },
    ]);
  });

  it('DPoP: bound tokens from the token endpoint (its nonce asked for and given), proofs checked by the API, one nonce challenge', async () => {
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'dpop-client',
      clientSecret: 'dpop-client-secret-1234567890',
      clientAuthMethod: 'client_secret_basic',
      dpop: true,
    });
    expect(auth.dpopKey).toMatchObject({ alg: 'ES256', publicJwk: { kty: 'EC', crv: 'P-256' } });
    expect(auth.dpopKey.publicJwk).not.toHaveProperty('d');
    oidc.resetCounts();
    const fetched = await test(auth.id);
    expect(fetched, JSON.stringify(fetched)).toMatchObject({ ok: true, token: { tokenType: 'DPoP' } });
    // The provider requires nonces: the first request got `use_dpop_nonce`, the one retry got the token.
    expect(oidc.tokenRequests.client_credentials).toBe(2);

    const connector = await g.api('POST', '/api/connectors', {
      name: `dpop ${auth.id}`,
      baseUrl: api.url,
      authenticationId: auth.id,
    });
    const seenBefore = api.seen.length;
    const first = await g.api('POST', `/api/connectors/${connector.body.id}/execute`, {
      method: 'GET',
      path: '/dpop/1?x=1',
    });
    expect(first.body.status, JSON.stringify(first.body)).toBe(200);
    const second = await g.api('POST', `/api/connectors/${connector.body.id}/execute`, {
      method: 'POST',
      path: '/dpop/2',
      body: { a: 1 },
    });
    expect(second.body.status, JSON.stringify(second.body)).toBe(200);
    expect(api.seen.slice(seenBefore).map((s) => s.outcome)).toEqual(['nonce_challenge', 'ok', 'ok']);
    expect(api.challenges).toBe(1);
    // The nonce challenge was no refused token: nothing was refreshed.
    expect(first.body.tokenRefreshed).toBe(false);

    // The proxy sends proofs too.
    const proxied = await fetch(`${g.url}/proxy/${connector.body.id}/dpop/3`, {
      headers: { authorization: `Bearer ${g.apiKey}` },
    });
    expect(proxied.status).toBe(200);

    // A refused proof is named by its claim.
    api.forceRefusal = 'DPoP proof htu mismatch';
    try {
      const refused = await g.api('POST', `/api/connectors/${connector.body.id}/execute`, {
        method: 'GET',
        path: '/dpop/4',
      });
      expect(refused.body.status).toBe(401);
      expect(refused.body.error.code).toBe('invalid_dpop_proof');
      expect(refused.body.error.message).toContain("refused the DPoP proof's htu");
      expect(refused.body.error.hint).toContain(`htu (${api.url}/dpop/4)`);
      // A refused proof is no refused token: no new token was fetched for it.
      expect(refused.body.tokenRefreshed).toBe(false);
      expect(oidc.tokenRequests.client_credentials).toBe(2);
      const viaProxy = await fetch(`${g.url}/proxy/${connector.body.id}/dpop/5`, {
        headers: { authorization: `Bearer ${g.apiKey}` },
      });
      expect(viaProxy.status).toBe(401);
      expect(viaProxy.headers.get('x-grantry-error')).toBe('invalid_dpop_proof');
    } finally {
      api.forceRefusal = null;
    }
  });

  it('rotation: the next key is published beside the old one, signs once activated, and the old one goes at finish', async () => {
    const clientId = 'rotating-client';
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId,
      clientAuthMethod: 'private_key_jwt',
      signingAlg: 'ES256',
      generateKey: true,
      publishJwks: true,
    });
    const register = async (keys: Json[]) =>
      oidc.registerClient({
        client_id: clientId,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys },
      });
    const fresh = async () => {
      await g.api('POST', `/api/authentications/${auth.id}/invalidate`);
      return test(auth.id);
    };
    const oldKid = auth.keys[0].kid as string;
    await register((await publishedJwks(auth.id)).keys);
    expect(await fresh()).toMatchObject({ ok: true });

    // Step 1: a next key, published with the old one; the old one still signs.
    const rotated = await g.api('POST', `/api/authentications/${auth.id}/rotate-key`);
    expect(rotated.status, rotated.text).toBe(200);
    const newKid = rotated.body.keys[1].kid as string;
    expect(rotated.body.keys.map((k: Json) => [k.kid, k.status])).toEqual([
      [oldKid, 'current'],
      [newKid, 'next'],
    ]);
    const both = await publishedJwks(auth.id);
    expect(both.keys.map((k) => k.kid)).toEqual([oldKid, newKid]);
    expect(await fresh()).toMatchObject({ ok: true });
    expect((await g.api('POST', `/api/authentications/${auth.id}/rotate-key`)).status).toBe(409);

    // Activating before the provider has the new key: checked, refused, and the old key signs again.
    const early = await g.api('POST', `/api/authentications/${auth.id}/rotate-key/activate`);
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('invalid_client');
    expect(early.body.error.message).toContain(`signed with the new key ${newKid}; the old key signs again`);
    const after = await g.api('GET', `/api/authentications/${auth.id}`);
    expect(after.body.keys.map((k: Json) => k.status)).toEqual(['current', 'next']);
    expect(after.body.status).toBe('ready');
    expect(await fresh()).toMatchObject({ ok: true });

    // Step 2: the provider fetched the JWKS with both keys: both live; activation switches signing.
    await register(both.keys);
    const activated = await g.api('POST', `/api/authentications/${auth.id}/rotate-key/activate`);
    expect(activated.status, activated.text).toBe(200);
    expect(activated.body.keys.map((k: Json) => [k.kid, k.status])).toEqual([
      [newKid, 'current'],
      [oldKid, 'retiring'],
    ]);
    expect(await fresh()).toMatchObject({ ok: true });

    // Step 3: only the new key is left, published and registered.
    const finished = await g.api('POST', `/api/authentications/${auth.id}/rotate-key/finish`);
    expect(finished.status, finished.text).toBe(200);
    const onlyNew = await publishedJwks(auth.id);
    expect(onlyNew.keys.map((k) => k.kid)).toEqual([newKid]);
    await register(onlyNew.keys);
    expect(await fresh()).toMatchObject({ ok: true });
    const events = (await g.api('GET', `/api/authentications/${auth.id}/events`)).body.items.map(
      (e: Json) => e.type,
    );
    expect(events).toEqual(
      expect.arrayContaining([
        'key_rotation_started',
        'key_activation_failed',
        'key_activated',
        'key_rotation_finished',
      ]),
    );
  });

  it('a published JWKS is public, and nothing is published without publishJwks', async () => {
    const quiet = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'quiet',
      clientAuthMethod: 'private_key_jwt',
      generateKey: true,
    });
    expect(quiet).not.toHaveProperty('jwksUri');
    expect((await fetch(`${g.url}/oauth/jwks/${quiet.id}`)).status).toBe(404);
    expect((await fetch(`${g.url}/oauth/jwks/auth_nope`)).status).toBe(404);
  });
});

describe('the JWT-bearer grant (RFC 7523 §2.1) with a Google service-account key file', () => {
  let g: GrantryHandle;
  let google: Awaited<ReturnType<typeof startGoogleLikeTokenEndpoint>>;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = 'reporting@grantry-test.iam.gserviceaccount.com';
  const keyId = randomBytes(20).toString('hex');

  beforeAll(async () => {
    google = await startGoogleLikeTokenEndpoint({
      email,
      keyId,
      publicJwk: publicKey.export({ format: 'jwk' }) as Json,
    });
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
    await google?.close();
  });

  const keyFile = (overrides: Json = {}) =>
    JSON.stringify({
      type: 'service_account',
      project_id: 'grantry-test',
      private_key_id: keyId,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: email,
      client_id: '109876543210987654321',
      token_uri: google.url,
      ...overrides,
    });

  it('imports the key file in one step and gets a token for the scope in the assertion', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: 'google reporting',
      type: 'oauth2',
      serviceAccountJson: keyFile(),
      assertion: { scope: 'https://www.googleapis.com/auth/analytics.readonly' },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      grantType: 'jwt_bearer',
      tokenUrl: google.url,
      clientAuthMethod: 'none',
      signingAlg: 'RS256',
      privateKeySet: true,
      assertion: {
        iss: email,
        aud: google.url,
        claims: { scope: 'https://www.googleapis.com/auth/analytics.readonly' },
      },
    });
    expect(created.body.keys[0]).toMatchObject({ kid: keyId, origin: 'imported' });
    expect(created.body).not.toHaveProperty('serviceAccountJson');
    expect(created.text).not.toContain('PRIVATE KEY');

    const tested = (await g.api('POST', `/api/authentications/${created.body.id}/test`)).body;
    expect(tested, JSON.stringify(tested)).toMatchObject({
      ok: true,
      token: { source: 'fetched', tokenType: 'Bearer' },
    });
    const [claims] = google.assertions.slice(-1);
    expect(claims).toMatchObject({
      iss: email,
      aud: google.url,
      scope: 'https://www.googleapis.com/auth/analytics.readonly',
    });
    expect(claims).not.toHaveProperty('sub');
    expect(claims?.exp - claims?.iat).toBeLessThanOrEqual(HOUR);
  });

  it('acts as a user with domain-wide delegation through assertion.sub', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: 'google as alice',
      type: 'oauth2',
      serviceAccountJson: keyFile(),
      assertion: { scope: 'https://www.googleapis.com/auth/gmail.readonly', sub: 'alice@example.com' },
    });
    expect(created.status, created.text).toBe(201);
    expect((await g.api('POST', `/api/authentications/${created.body.id}/test`)).body).toMatchObject({
      ok: true,
    });
    expect(google.assertions.slice(-1)[0]).toMatchObject({ sub: 'alice@example.com', iss: email });
  });

  it('a key Google no longer has is explained as the refused assertion, with its causes', async () => {
    const revoked = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const created = await g.api('POST', '/api/authentications', {
      name: 'google old key',
      type: 'oauth2',
      serviceAccountJson: keyFile({
        private_key: revoked.export({ type: 'pkcs8', format: 'pem' }).toString(),
      }),
      assertion: { scope: 'https://www.googleapis.com/auth/drive.readonly' },
    });
    const tested = (await g.api('POST', `/api/authentications/${created.body.id}/test`)).body;
    expect(tested.ok).toBe(false);
    expect(tested.error.code).toBe('invalid_grant');
    expect(tested.error.message).toBe(
      'The provider refused the JWT-bearer assertion (invalid_grant: "Invalid JWT Signature.").',
    );
    expect(tested.error.hint).toMatch(
      new RegExp(`^Likely causes, in order: 1\\. The key that signed \\(kid ${keyId}, RS256\\)`),
    );
  });

  it('refuses a key file that is not one, naming the field', async () => {
    const answer = await g.api('POST', '/api/authentications', {
      name: 'not a key file',
      type: 'oauth2',
      serviceAccountJson: JSON.stringify({ type: 'authorized_user', client_id: 'x' }),
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.errors).toEqual(
      expect.arrayContaining([
        { path: '/serviceAccountJson', message: expect.stringContaining('"authorized_user"') },
      ]),
    );
  });
});

describe('clientAuthMethod auto with a provider that takes the secret only in an assertion', () => {
  let oidc: OidcFixture;
  let g: GrantryHandle;
  beforeAll(async () => {
    oidc = await startOidcProvider({
      clientAuthMethods: ['client_secret_jwt', 'private_key_jwt', 'none'],
      clients: [
        {
          client_id: 'jwt-only',
          client_secret: 'a secret this provider only accepts inside an HS256 assertion',
          grant_types: ['client_credentials'],
          token_endpoint_auth_method: 'client_secret_jwt',
        },
      ],
    });
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
    await oidc?.close();
  });

  it('reads the metadata, signs an assertion with the secret, and keeps what worked', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: 'auto jwt',
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'jwt-only',
      clientSecret: 'a secret this provider only accepts inside an HS256 assertion',
      clientAuthMethod: 'auto',
    });
    expect(created.status, created.text).toBe(201);
    oidc.resetCounts();
    const tested = (await g.api('POST', `/api/authentications/${created.body.id}/test`)).body;
    expect(tested, JSON.stringify(tested)).toMatchObject({ ok: true });
    // One request: the metadata said how, nothing was guessed.
    expect(oidc.tokenRequests.client_credentials).toBe(1);
    const view = await g.api('GET', `/api/authentications/${created.body.id}`);
    expect(view.body.detectedClientAuthMethod).toBe('client_secret_jwt');
  });
});
