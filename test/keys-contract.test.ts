import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGoogleLikeTokenEndpoint } from './support/google-token-endpoint.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';
import { type OidcFixture, startOidcProvider } from './support/oidc.js';
import { issueClientCertificate } from './support/tls.js';

/**
 * The key fields exactly as the HTTP contract spells them (/work/shared/API.md, docs/api.md
 * "Authentications": the `type: "oauth2"` table and the paragraph after it), against a real running
 * Grantry over HTTP and a real oidc-provider over HTTPS with mutual TLS: `generateKey` as
 * `{"alg": …}`, `publicJwk` and `keyId` at the top of the answer, `GET …/jwks` with an API key and
 * `/jwks/<id>.json` without one only while `publishJwks` is on, `privateKey` as a JWK,
 * `clientCertificate`, `rotate-key` and `rotate-key/finish`, and the JWT Bearer grant without a
 * clientId, with the `assertion` object and with `serviceAccountJson`. Guards issue 17's review:
 * the first release took other spellings (`generateKey: true` + `signingAlg`, `certificate`, a flat
 * assertion, `/oauth/jwks/<id>`), which stay accepted and are covered by test/keys.test.ts.
 */

type Json = Record<string, any>;
type FieldErrors = { path: string; message: string }[];

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi'];

function pkcs8(key: { export(options: { type: 'pkcs8'; format: 'pem' }): string | Buffer }): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

describe('key fields as API.md spells them, against a real oidc-provider over HTTPS', () => {
  let oidc: OidcFixture;
  let g: GrantryHandle;

  beforeAll(async () => {
    oidc = await startOidcProvider({ mtls: true });
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
    await oidc?.close();
  });

  const create = async (body: Json) => {
    const answer = await g.api('POST', '/api/authentications', {
      name: `contract ${randomBytes(4).toString('hex')}`,
      type: 'oauth2',
      ...body,
    });
    expect(answer.status, answer.text).toBe(201);
    return answer.body as Json;
  };
  const patch = async (id: string, body: Json) => {
    const answer = await g.api('PATCH', `/api/authentications/${id}`, body);
    expect(answer.status, answer.text).toBe(200);
    return answer.body as Json;
  };
  const refused = async (method: 'POST' | 'PATCH', path: string, body: Json): Promise<FieldErrors> => {
    const answer = await g.api(method, path, body);
    expect(answer.status, answer.text).toBe(400);
    expect(answer.body.error.code).toBe('validation_failed');
    return answer.body.error.errors as FieldErrors;
  };
  const test = async (id: string) => (await g.api('POST', `/api/authentications/${id}/test`)).body as Json;
  /** The JWK Set read with the API key. */
  const keySet = async (id: string) => {
    const answer = await g.api('GET', `/api/authentications/${id}/jwks`);
    expect(answer.status, answer.text).toBe(200);
    return answer.body as { keys: Json[] };
  };
  /** The published JWK Set, fetched as a provider would: no API key. */
  const published = (id: string) => fetch(`${g.url}/jwks/${id}.json`);
  const expectPublicOnly = (jwk: Json) => {
    for (const member of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(member);
  };

  it('generateKey {"alg"}: publicJwk and keyId (the RFC 7638 thumbprint) in the answer, the JWKS with a key, /jwks/<id>.json without one, and a token', async () => {
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'contract-es256',
      clientAuthMethod: 'private_key_jwt',
      generateKey: { alg: 'ES256' },
      publishJwks: true,
    });
    expect(auth).toMatchObject({ privateKeySet: true, publishJwks: true, signingAlg: 'ES256' });
    expect(auth).not.toHaveProperty('clientSecretSet', true);
    expect(auth.publicJwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: auth.keyId, alg: 'ES256' });
    expectPublicOnly(auth.publicJwk);
    expect(auth.keyId).toBe(await calculateJwkThumbprint(auth.publicJwk));
    expect(auth).not.toHaveProperty('clientCertificate');
    expect(JSON.stringify(auth)).not.toMatch(/PRIVATE KEY|"d":/);
    // Read back, the same.
    const read = (await g.api('GET', `/api/authentications/${auth.id}`)).body as Json;
    expect(read.publicJwk).toEqual(auth.publicJwk);
    expect(read.keyId).toBe(auth.keyId);

    const withKey = await keySet(auth.id);
    expect(withKey).toEqual({ keys: [auth.publicJwk] });
    const noKey = await fetch(`${g.url}/api/authentications/${auth.id}/jwks`);
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as Json).error.code).toBe('unauthorized');

    const answer = await published(auth.id);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toContain('application/jwk-set+json');
    const jwks = (await answer.json()) as { keys: Json[] };
    expect(jwks).toEqual(withKey);
    expect(auth.jwksUri).toBe(`http://localhost:${new URL(g.url).port}/jwks/${auth.id}.json`);

    await oidc.registerClient({
      client_id: 'contract-es256',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks,
    });
    expect(await test(auth.id)).toMatchObject({ ok: true, token: { source: 'fetched' } });
  });

  it('/jwks/<id>.json is public only while publishJwks is true; the API-key route answers either way', async () => {
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'contract-quiet',
      clientAuthMethod: 'private_key_jwt',
      generateKey: { alg: 'RS256' },
    });
    expect(auth.publishJwks).toBe(false);
    expect(auth).not.toHaveProperty('jwksUri');
    const hidden = await published(auth.id);
    expect(hidden.status).toBe(404);
    expect(((await hidden.json()) as Json).error.code).toBe('not_found');
    expect((await keySet(auth.id)).keys).toEqual([auth.publicJwk]);

    await patch(auth.id, { publishJwks: true });
    expect((await published(auth.id)).status).toBe(200);
    await patch(auth.id, { publishJwks: false });
    expect((await published(auth.id)).status).toBe(404);
    expect((await fetch(`${g.url}/jwks/auth_nope.json`)).status).toBe(404);
    // Only the GET of that exact address is public: the API-key route stays behind the key.
    expect((await fetch(`${g.url}/jwks/${auth.id}.json`, { method: 'POST' })).status).not.toBe(200);
    expect((await fetch(`${g.url}/api/authentications/${auth.id}/jwks`)).status).toBe(401);
    // An authentication without keys has an empty set, and an unknown id is not_found.
    const plain = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'plain',
      clientSecret: 'plain-secret-123456',
    });
    expect(plain).not.toHaveProperty('publicJwk');
    expect(plain).not.toHaveProperty('keyId');
    expect(await keySet(plain.id)).toEqual({ keys: [] });
    expect((await g.api('GET', '/api/authentications/auth_nope/jwks')).status).toBe(404);
  });

  it('PATCH privateKey as a JWK (object, then JSON text) with keyId, and generateKey {"alg"} on PATCH', async () => {
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'contract-jwk',
      clientAuthMethod: 'private_key_jwt',
      generateKey: { alg: 'RS256' },
    });
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const privateJwk = privateKey.export({ format: 'jwk' }) as Json;
    const changed = await patch(auth.id, { privateKey: privateJwk, keyId: 'contract-key-1' });
    expect(changed.keyId).toBe('contract-key-1');
    const publicJwk = publicKey.export({ format: 'jwk' }) as Json;
    expect(changed.publicJwk).toMatchObject({
      kty: 'RSA',
      n: publicJwk.n,
      e: publicJwk.e,
      kid: 'contract-key-1',
    });
    expectPublicOnly(changed.publicJwk);
    expect(changed.keys).toHaveLength(1);
    expect(changed.keys[0]).toMatchObject({ origin: 'imported', kid: 'contract-key-1' });
    expect(JSON.stringify(changed)).not.toContain(privateJwk.d);

    await oidc.registerClient({
      client_id: 'contract-jwk',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: await keySet(auth.id),
    });
    expect(await test(auth.id)).toMatchObject({ ok: true });

    // A JWK as JSON text, with its own kid: the kid becomes keyId when none is given.
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const ecJwk: Json = { ...(ec.export({ format: 'jwk' }) as Json), kid: 'ec-from-jwk' };
    const fromText = await patch(auth.id, { privateKey: JSON.stringify(ecJwk), signingAlg: 'ES256' });
    expect(fromText).toMatchObject({ keyId: 'ec-from-jwk', signingAlg: 'ES256' });
    expect(fromText.publicJwk).toMatchObject({ kty: 'EC', x: ecJwk.x, y: ecJwk.y });

    // generateKey {"alg"} on PATCH: Grantry makes a new key of that type, its kid the thumbprint.
    const generated = await patch(auth.id, { generateKey: { alg: 'EdDSA' } });
    expect(generated.signingAlg).toBe('EdDSA');
    expect(generated.publicJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(generated.keyId).toBe(await calculateJwkThumbprint(generated.publicJwk));
    expect(generated.keys[0]).toMatchObject({ origin: 'generated', alg: 'EdDSA' });
    // Asked again, over a key Grantry made: another new key (the console's generateKey: true keeps it).
    const again = await patch(auth.id, { generateKey: { alg: 'EdDSA' } });
    expect(again.keyId).not.toBe(generated.keyId);
    const kept = await patch(auth.id, { generateKey: true });
    expect(kept.keyId).toBe(again.keyId);
  });

  it('mutual TLS with clientCertificate: the CA-issued certificate is answered and authenticates; a generated key gets a self-signed one', async () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const certificate = issueClientCertificate(
      key.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      'grantry-contract-mtls',
    );
    await oidc.registerClient({
      client_id: 'contract-mtls',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: 'CN=grantry-contract-mtls',
    });
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'contract-mtls',
      clientAuthMethod: 'tls_client_auth',
      privateKey: pkcs8(key.privateKey),
      clientCertificate: certificate,
    });
    expect(auth.clientCertificate.trim()).toBe(certificate.trim());
    expect(auth).not.toHaveProperty('clientSecretSet', true);
    expect(auth.keyId).toBe(auth.publicJwk.kid);
    expect(await test(auth.id)).toMatchObject({ ok: true, token: { source: 'fetched' } });

    const selfSigned = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'contract-mtls-self',
      clientAuthMethod: 'self_signed_tls_client_auth',
      generateKey: { alg: 'ES256' },
    });
    const made = new X509Certificate(selfSigned.clientCertificate);
    expect(made.subject).toBe(`CN=grantry ${selfSigned.id}`);
    expect(made.checkPrivateKey).toBeDefined();
    expect(selfSigned.publicJwk.x5c).toEqual([made.raw.toString('base64')]);
    await oidc.registerClient({
      client_id: 'contract-mtls-self',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      jwks: { keys: [selfSigned.publicJwk] },
    });
    expect(await test(selfSigned.id)).toMatchObject({ ok: true });
  });

  it('rotate-key keeps the old public key in the JWKS until rotate-key/finish', async () => {
    const auth = await create({
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'contract-rotate',
      clientAuthMethod: 'private_key_jwt',
      generateKey: { alg: 'ES256' },
      publishJwks: true,
    });
    const register = async () =>
      oidc.registerClient({
        client_id: 'contract-rotate',
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: (await (await published(auth.id)).json()) as { keys: Json[] },
      });
    await register();
    expect(await test(auth.id)).toMatchObject({ ok: true });

    const rotating = await g.api('POST', `/api/authentications/${auth.id}/rotate-key`);
    expect(rotating.status, rotating.text).toBe(200);
    expect(rotating.body.keyId).toBe(auth.keyId);
    const both = await keySet(auth.id);
    expect(both.keys.map((k) => k.kid)).toEqual([auth.keyId, expect.any(String)]);
    const newKid = both.keys[1]?.kid as string;
    expect(newKid).not.toBe(auth.keyId);
    await register();

    const finished = await g.api('POST', `/api/authentications/${auth.id}/rotate-key/finish`);
    expect(finished.status, finished.text).toBe(200);
    expect(finished.body.keyId).toBe(newKid);
    expect((await keySet(auth.id)).keys.map((k) => k.kid)).toEqual([newKid]);
    expect(((await (await published(auth.id)).json()) as Json).keys.map((k: Json) => k.kid)).toEqual([
      newKid,
    ]);

    // A key brought to a rotation as a JWK: its kid names it.
    const brought = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const jwkRotation = await g.api('POST', `/api/authentications/${auth.id}/rotate-key`, {
      privateKey: { ...(brought.export({ format: 'jwk' }) as Json), kid: 'brought-as-jwk' },
    });
    expect(jwkRotation.status, jwkRotation.text).toBe(200);
    expect((await keySet(auth.id)).keys.map((k) => k.kid)).toEqual([newKid, 'brought-as-jwk']);
    await register();
    const done = await g.api('POST', `/api/authentications/${auth.id}/rotate-key/finish`);
    expect(done.status, done.text).toBe(200);
    expect(done.body.keyId).toBe('brought-as-jwk');

    // generateKey {"alg"} names the next key's algorithm, as on create and PATCH.
    const badAlg = await g.api('POST', `/api/authentications/${auth.id}/rotate-key`, {
      generateKey: { alg: 'HS256' },
    });
    expect(badAlg.status).toBe(400);
    expect(badAlg.body.error.errors.map((e: { path: string }) => e.path)).toContain('/generateKey/alg');
    const both2 = await g.api('POST', `/api/authentications/${auth.id}/rotate-key`, {
      generateKey: { alg: 'ES256' },
      privateKey: { ...(brought.export({ format: 'jwk' }) as Json) },
    });
    expect(both2.status).toBe(400);
    const generated = await g.api('POST', `/api/authentications/${auth.id}/rotate-key`, {
      generateKey: { alg: 'ES256' },
    });
    expect(generated.status, generated.text).toBe(200);
    const next = (await keySet(auth.id)).keys[1];
    expect(next).toMatchObject({ alg: 'ES256', kty: 'EC' });
    await register();
    const last = await g.api('POST', `/api/authentications/${auth.id}/rotate-key/finish`);
    expect(last.body.keyId).toBe(next?.kid);
    expect(await test(auth.id)).toMatchObject({ ok: true });
  });

  it('validation_failed lists every problem, each named by its field', async () => {
    const base = {
      name: `bad ${randomBytes(3).toString('hex')}`,
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: oidc.tokenUrl,
      clientId: 'x',
      clientAuthMethod: 'private_key_jwt',
    };
    // A bad alg, and a bad value elsewhere in the same request: both.
    const badAlg = await refused('POST', '/api/authentications', {
      ...base,
      generateKey: { alg: 'HS256' },
      publishJwks: 'yes',
    });
    expect(badAlg).toEqual(
      expect.arrayContaining([
        { path: '/generateKey/alg', message: 'must be one of RS256, PS256, ES256, EdDSA' },
        { path: '/publishJwks', message: expect.any(String) },
      ]),
    );
    expect(badAlg).toHaveLength(2);

    // A PEM that does not parse, and an insecure token URL, at once.
    const malformed = await refused('POST', '/api/authentications', {
      ...base,
      tokenUrl: 'ftp://login.example.test/token',
      privateKey: '-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----',
    });
    expect(malformed).toEqual(
      expect.arrayContaining([
        { path: '/privateKey', message: expect.stringContaining('does not parse') },
        { path: '/tokenUrl', message: expect.any(String) },
      ]),
    );

    // RSA 1024, as PEM and as a JWK.
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    const rsa1024 = {
      path: '/privateKey',
      message: 'is an RSA key of 1024 bits: at least 2048 bits are required',
    };
    expect(await refused('POST', '/api/authentications', { ...base, privateKey: pkcs8(small) })).toEqual([
      rsa1024,
    ]);
    expect(
      await refused('POST', '/api/authentications', { ...base, privateKey: small.export({ format: 'jwk' }) }),
    ).toEqual([rsa1024]);
    // A public JWK is not a private key.
    const publicOnly = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    expect(await refused('POST', '/api/authentications', { ...base, privateKey: publicOnly })).toEqual([
      { path: '/privateKey', message: expect.stringContaining('is a public JWK') },
    ]);

    // A certificate of another key.
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const foreign = issueClientCertificate(
      other.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      'someone else',
    );
    expect(
      await refused('POST', '/api/authentications', {
        ...base,
        clientAuthMethod: 'tls_client_auth',
        privateKey: pkcs8(key.privateKey),
        clientCertificate: foreign,
      }),
    ).toEqual([
      {
        path: '/clientCertificate',
        message: 'does not match the private key: it was issued for another key pair',
      },
    ]);

    // On PATCH too: a bad alg and a malformed JWK in separate fields of one request.
    const auth = await create({
      ...base,
      name: `ok ${randomBytes(3).toString('hex')}`,
      generateKey: { alg: 'RS256' },
    });
    const both = await refused('PATCH', `/api/authentications/${auth.id}`, {
      generateKey: { alg: 'none' },
      keyId: 7,
    });
    expect(both).toEqual(
      expect.arrayContaining([
        { path: '/generateKey/alg', message: 'must be one of RS256, PS256, ES256, EdDSA' },
        { path: '/keyId', message: expect.any(String) },
      ]),
    );
    expect(
      await refused('PATCH', `/api/authentications/${auth.id}`, { privateKey: '{"kty":"RSA",' }),
    ).toEqual([{ path: '/privateKey', message: expect.stringContaining('JSON does not parse') }]);
  });
});

describe('the JWT Bearer grant as API.md spells it: no clientId, the assertion object, serviceAccountJson', () => {
  let g: GrantryHandle;
  let google: Awaited<ReturnType<typeof startGoogleLikeTokenEndpoint>>;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const email = 'contract@grantry-test.iam.gserviceaccount.com';
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

  it('jwt_bearer without clientId: privateKey as a JWK, assertion {iss, claims}, aud defaulting to tokenUrl, clientAuthMethod none', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: 'contract jwt bearer',
      type: 'oauth2',
      grantType: 'jwt_bearer',
      tokenUrl: google.url,
      privateKey: { ...(privateKey.export({ format: 'jwk' }) as Json), kid: keyId },
      assertion: { iss: email, claims: { scope: 'https://www.googleapis.com/auth/calendar.readonly' } },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      grantType: 'jwt_bearer',
      clientAuthMethod: 'none',
      keyId,
      assertion: { iss: email, claims: { scope: 'https://www.googleapis.com/auth/calendar.readonly' } },
    });
    expect(created.body).not.toHaveProperty('clientId');
    expect(created.body).not.toHaveProperty('clientSecretSet', true);
    expect(created.body.publicJwk).toMatchObject({ kty: 'RSA', kid: keyId });

    const tested = (await g.api('POST', `/api/authentications/${created.body.id}/test`)).body;
    expect(tested, JSON.stringify(tested)).toMatchObject({ ok: true, token: { source: 'fetched' } });
    expect(google.assertions.slice(-1)[0]).toMatchObject({
      iss: email,
      aud: google.url,
      scope: 'https://www.googleapis.com/auth/calendar.readonly',
    });

    // An issuer is needed from somewhere: without clientId, assertion.iss.
    const noIssuer = await g.api('POST', '/api/authentications', {
      name: 'contract jwt bearer without issuer',
      type: 'oauth2',
      grantType: 'jwt_bearer',
      tokenUrl: google.url,
      generateKey: { alg: 'RS256' },
      assertion: { claims: { scope: 'x' } },
    });
    expect(noIssuer.status).toBe(400);
    expect(noIssuer.body.error.errors).toEqual([{ path: '/assertion/iss', message: expect.any(String) }]);
  });

  it('serviceAccountJson fills grantType, tokenUrl, privateKey, keyId and assertion.iss; assertion.sub for domain-wide delegation', async () => {
    const created = await g.api('POST', '/api/authentications', {
      name: 'contract google as bob',
      type: 'oauth2',
      serviceAccountJson: JSON.stringify({
        type: 'service_account',
        project_id: 'grantry-test',
        private_key_id: keyId,
        private_key: pkcs8(privateKey),
        client_email: email,
        client_id: '109876543210987654321',
        token_uri: google.url,
      }),
      assertion: {
        sub: 'bob@example.com',
        claims: { scope: 'https://www.googleapis.com/auth/gmail.readonly' },
      },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.body).toMatchObject({
      grantType: 'jwt_bearer',
      tokenUrl: google.url,
      clientAuthMethod: 'none',
      privateKeySet: true,
      keyId,
      assertion: {
        iss: email,
        sub: 'bob@example.com',
        claims: { scope: 'https://www.googleapis.com/auth/gmail.readonly' },
      },
    });
    expect(created.body).not.toHaveProperty('serviceAccountJson');
    expect(created.body).not.toHaveProperty('clientId');
    expect(created.text).not.toContain('PRIVATE KEY');

    const tested = (await g.api('POST', `/api/authentications/${created.body.id}/test`)).body;
    expect(tested, JSON.stringify(tested)).toMatchObject({ ok: true });
    expect(google.assertions.slice(-1)[0]).toMatchObject({
      iss: email,
      sub: 'bob@example.com',
      aud: google.url,
      scope: 'https://www.googleapis.com/auth/gmail.readonly',
    });

    // PATCH with the assertion object: sub dropped (null), a claim changed; iss and aud kept.
    const changed = await g.api('PATCH', `/api/authentications/${created.body.id}`, {
      assertion: {
        iss: email,
        aud: google.url,
        claims: { scope: 'https://www.googleapis.com/auth/drive.readonly' },
      },
    });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body.assertion).toEqual({
      iss: email,
      aud: google.url,
      claims: { scope: 'https://www.googleapis.com/auth/drive.readonly' },
    });
    expect((await g.api('POST', `/api/authentications/${created.body.id}/test`)).body).toMatchObject({
      ok: true,
    });
    expect(google.assertions.slice(-1)[0]).not.toHaveProperty('sub');
  });
});
