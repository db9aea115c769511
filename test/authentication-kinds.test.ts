import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../src/keys/certificate.js';
import { generatePrivateKey, privateKeyPem } from '../src/keys/key-material.js';
import {
  AUTHENTICATION_TYPES,
  type AuthenticationType,
  type FieldSpec,
  GRANT_TYPES,
  type GrantType,
  isRequired,
  KINDS,
  secretFlag,
} from '../src/services/catalogue/index.js';
import { type GrantryHandle, startGrantry } from './support/grantry.js';

/**
 * Every kind of authentication through the API, with the catalogue as the oracle: what each kind
 * requires, what it refuses, and that `null` clears every optional field (one test per field,
 * generated from the catalogue, so a field added later is covered without touching this file).
 */
const SAMPLES: Record<string, unknown> = {
  authorizationUrl: 'https://login.example.test/authorize',
  tokenUrl: 'https://login.example.test/token',
  revocationUrl: 'https://login.example.test/revoke',
  clientId: 'client-1',
  clientSecret: 'client secret +:%/é',
  headerPrefix: 'Token',
  audience: 'https://api.example.test',
  audienceParam: 'resource',
  scope: 'read write',
  username: 'alice@example.test',
  password: 'pass: wörd',
  clientAuthMethod: 'client_secret_post',
  keepAliveDays: 30,
  pkce: false,
  extraAuthorizationParams: { prompt: 'consent' },
  extraTokenParams: { tenant: 'acme' },
  apiKey: 'key-123',
  apiKeyIn: 'header',
  apiKeyName: 'X-Api-Key',
  apiKeyPrefix: 'Key',
  token: 'static-token-abc',
  signingAlg: 'PS256',
  generateKey: true,
  publishJwks: true,
  clientAssertionAudience: 'https://login.example.test',
  certificateBoundTokens: true,
  dpop: true,
  // As docs/api.md shapes it, asked and answered: {"iss","sub","aud","claims"}.
  assertion: { claims: { scope: 'https://www.googleapis.com/auth/drive.readonly' } },
};

// Key material: a real key, its certificate, and a service-account file holding it.
const sampleKey = generatePrivateKey('ES256');
SAMPLES.privateKey = privateKeyPem(sampleKey);
SAMPLES.clientCertificate = selfSignedCertificate(sampleKey, { commonName: 'sample' });
SAMPLES.keyId = 'sample-key-1';
SAMPLES.serviceAccountJson = JSON.stringify({
  type: 'service_account',
  private_key_id: 'sa-key-1',
  private_key: privateKeyPem(generatePrivateKey('RS256')),
  client_email: 'reader@sample.iam.gserviceaccount.com',
  token_uri: 'https://login.example.test/token',
});

/**
 * What makes a conditional field apply (its `when`), so the generic tests below can exercise it:
 * the key fields need a method that uses a key (and a key, made by Grantry), the certificate
 * binding needs mutual TLS, the assertion audience a JWT client authentication.
 */
function contextFor(field: FieldSpec | undefined): Record<string, unknown> {
  if (field === undefined || field.when === undefined) return {};
  if (field.name === 'clientAssertionAudience') return { clientAuthMethod: 'client_secret_jwt' };
  if (field.name === 'certificateBoundTokens')
    return { clientAuthMethod: 'self_signed_tls_client_auth', generateKey: true };
  if (field.name === 'clientSecret') return {};
  return { clientAuthMethod: 'private_key_jwt', generateKey: true };
}

/** What a grant needs beyond its required fields: the JWT Bearer grant signs with a key. */
const GRANT_CONTEXT: Partial<Record<GrantType, Record<string, unknown>>> = {
  jwt_bearer: { clientAuthMethod: 'none', generateKey: true, clientId: 'sa@example.test' },
};

/** Problems an empty create of a grant has beyond its required fields (rules between fields). */
const GRANT_RULE_PROBLEMS: Partial<Record<GrantType, string[]>> = {
  // clientAuthMethod defaults to none without a client secret (docs/api.md): the assertion needs an
  // issuer (assertion.iss, or a clientId) and a key to sign with.
  jwt_bearer: ['/assertion/iss', '/privateKey'],
};

/** Required fields a grant's defaults make unneeded: jwt_bearer defaults to clientAuthMethod none, which sends no secret. */
const GRANT_UNNEEDED: Partial<Record<GrantType, string[]>> = {
  jwt_bearer: ['/clientSecret'],
};

/** The grant a field needs (or the first grant) for OAuth 2.0; undefined for the other kinds. */
function grantFor(type: AuthenticationType, field?: FieldSpec): GrantType | undefined {
  if (type !== 'oauth2') return undefined;
  return field?.grants?.[0] ?? 'client_credentials';
}

/** A valid create request of a kind (and grant), with every required field from SAMPLES. */
function validBody(
  type: AuthenticationType,
  grant: GrantType | undefined,
  extra: Record<string, unknown> = {},
) {
  const body: Record<string, unknown> = { name: `${type}-${Math.random().toString(36).slice(2)}`, type };
  if (grant !== undefined) body.grantType = grant;
  const context = grant === undefined ? {} : (GRANT_CONTEXT[grant] ?? {});
  const method = (extra.clientAuthMethod ?? context.clientAuthMethod) as string | undefined;
  for (const field of KINDS[type].fields as readonly FieldSpec[]) {
    if (field.name === 'grantType') continue;
    // A client secret is required only with a method that sends it.
    if (field.name === 'clientSecret' && method !== undefined && !/^(client_secret|auto)/.test(method))
      continue;
    if (isRequired(field, grant)) body[field.name] = SAMPLES[field.name];
  }
  return { ...body, ...context, ...extra };
}

// Key material (a private key, its certificate and id) and a key file are not settings: they go
// into the key set and are answered through `keys`; test/keys.test.ts covers them.
const optionalFields: [AuthenticationType, FieldSpec][] = AUTHENTICATION_TYPES.flatMap((type) =>
  (KINDS[type].fields as readonly FieldSpec[])
    .filter((field) => !isRequired(field, grantFor(type, field)) && field.name !== 'grantType')
    .filter((field) => field.keyMaterial !== true && field.inputOnly !== true)
    .map((field): [AuthenticationType, FieldSpec] => [type, field]),
);

describe('authentication kinds, driven by the catalogue', () => {
  let g: GrantryHandle;
  beforeAll(async () => {
    g = await startGrantry();
  });
  afterAll(async () => {
    await g?.stop();
  });

  it('has a sample for every field of every kind (so the tests below cover them all)', () => {
    for (const type of AUTHENTICATION_TYPES) {
      for (const field of KINDS[type].fields as readonly FieldSpec[]) {
        if (field.name !== 'grantType') expect(SAMPLES, `${type}.${field.name}`).toHaveProperty(field.name);
      }
    }
    expect(optionalFields.length).toBeGreaterThanOrEqual(12);
  });

  it.each(
    AUTHENTICATION_TYPES.flatMap((type): [string, string | undefined][] =>
      type === 'oauth2' ? GRANT_TYPES.map((g): [string, string] => [type, g]) : [[type, undefined]],
    ),
  )(
    'creates %s (%s) with its required fields, answers secrets as flags only, and lists every missing one',
    async (type, grant) => {
      const kind = type as AuthenticationType;
      const body = validBody(kind, grant as GrantType | undefined);
      const created = await g.api('POST', '/api/authentications', body);
      expect(created.status, created.text).toBe(201);
      expect(created.body.type).toBe(kind);
      for (const field of KINDS[kind].fields as readonly FieldSpec[]) {
        if (field.type === 'secret' && body[field.name] !== undefined) {
          expect(created.body[secretFlag(field.name)]).toBe(true);
          expect(created.text).not.toContain(String(body[field.name]));
        }
      }
      const required = (KINDS[kind].fields as readonly FieldSpec[])
        .filter((f) => f.name !== 'grantType' && isRequired(f, grant as GrantType | undefined))
        .map((f) => `/${f.name}`)
        .filter((path) => !(GRANT_UNNEEDED[grant as GrantType] ?? []).includes(path))
        .concat(GRANT_RULE_PROBLEMS[grant as GrantType] ?? []);
      const empty = await g.api('POST', '/api/authentications', {
        name: `empty-${kind}`,
        type: kind,
        ...(grant ? { grantType: grant } : {}),
      });
      expect(empty.status).toBe(400);
      expect(empty.body.error.errors.map((e: { path: string }) => e.path).sort()).toEqual(required.sort());
    },
  );

  it.each(optionalFields.map(([type, field]) => [type, field.name, field] as const))(
    'PATCH %s.%s: null clears it (its default, if any, applies again)',
    async (type, name, field) => {
      const grant = grantFor(type, field);
      const created = await g.api(
        'POST',
        '/api/authentications',
        validBody(type, grant, { ...contextFor(field), [name]: SAMPLES[name] }),
      );
      expect(created.status, created.text).toBe(201);
      const flag = field.type === 'secret' ? secretFlag(name) : name;
      expect(created.body[flag]).toEqual(field.type === 'secret' ? true : SAMPLES[name]);
      const cleared = await g.api('PATCH', `/api/authentications/${created.body.id}`, { [name]: null });
      expect(cleared.status, cleared.text).toBe(200);
      const again = await g.api('GET', `/api/authentications/${created.body.id}`);
      const expected = field.type === 'secret' ? false : (field.default ?? undefined);
      expect(again.body[flag]).toEqual(expected);
    },
  );

  it('refuses to clear a required field, with a message that says so', async () => {
    const created = await g.api('POST', '/api/authentications', validBody('api_key', undefined));
    const answer = await g.api('PATCH', `/api/authentications/${created.body.id}`, {
      apiKeyName: null,
      apiKey: null,
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.errors).toEqual(
      expect.arrayContaining([
        { path: '/apiKeyName', message: 'is required; it cannot be cleared' },
        { path: '/apiKey', message: 'is required; it cannot be cleared' },
      ]),
    );
  });

  it('refuses fields of another kind, a change of type, and values a header cannot carry', async () => {
    const mixed = await g.api('POST', '/api/authentications', {
      ...validBody('bearer', undefined),
      tokenUrl: 'https://login.example.test/token',
      apiKeyIn: 'query',
    });
    expect(mixed.status).toBe(400);
    expect(mixed.body.error.errors).toEqual(
      expect.arrayContaining([
        {
          path: '/tokenUrl',
          message: expect.stringContaining('does not apply to Bearer Token authentications'),
        },
        { path: '/apiKeyIn', message: expect.stringContaining('only to API Key') },
      ]),
    );
    const created = await g.api('POST', '/api/authentications', validBody('basic', undefined));
    const retype = await g.api('PATCH', `/api/authentications/${created.body.id}`, { type: 'bearer' });
    expect(retype.body.error.errors).toEqual([
      { path: '/type', message: expect.stringContaining('cannot change') },
    ]);

    const badKey = await g.api(
      'POST',
      '/api/authentications',
      validBody('api_key', undefined, { apiKey: 'line\nbreak🙂' }),
    );
    expect(badKey.body.error.errors).toEqual([
      { path: '/apiKey', message: expect.stringContaining('HTTP header') },
    ]);
    const queryPrefix = await g.api(
      'POST',
      '/api/authentications',
      validBody('api_key', undefined, { apiKeyIn: 'query', apiKeyName: 'api_key', apiKeyPrefix: 'Token' }),
    );
    expect(queryPrefix.body.error.errors).toEqual([
      { path: '/apiKeyPrefix', message: 'applies only to a key sent in a header; remove it' },
    ]);
    const badName = await g.api(
      'POST',
      '/api/authentications',
      validBody('api_key', undefined, { apiKeyName: 'X Api Key' }),
    );
    expect(badName.body.error.errors).toEqual([
      { path: '/apiKeyName', message: expect.stringContaining('header name') },
    ]);
  });

  it('a Basic or Bearer secret replaced by PATCH is kept write-only, and test answers token null', async () => {
    const created = await g.api('POST', '/api/authentications', validBody('basic', undefined));
    const patched = await g.api('PATCH', `/api/authentications/${created.body.id}`, {
      password: 'new: pässword',
    });
    expect(patched.status).toBe(200);
    expect(patched.body.passwordSet).toBe(true);
    expect(patched.text).not.toContain('pässword');
    const tested = await g.api('POST', `/api/authentications/${created.body.id}/test`);
    expect(tested.body).toEqual({ ok: true, token: null });
  });

  it('clears revocationUrl with null (it could never be cleared) and with an empty string', async () => {
    const created = await g.api(
      'POST',
      '/api/authentications',
      validBody('oauth2', 'client_credentials', { revocationUrl: SAMPLES.revocationUrl }),
    );
    const viaNull = await g.api('PATCH', `/api/authentications/${created.body.id}`, { revocationUrl: null });
    expect(viaNull.status).toBe(200);
    expect(viaNull.body).not.toHaveProperty('revocationUrl');
    await g.api('PATCH', `/api/authentications/${created.body.id}`, { revocationUrl: SAMPLES.revocationUrl });
    const viaEmpty = await g.api('PATCH', `/api/authentications/${created.body.id}`, { revocationUrl: '' });
    expect(viaEmpty.status).toBe(200);
    expect(viaEmpty.body).not.toHaveProperty('revocationUrl');
  });
});
