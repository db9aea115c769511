import { isSigningAlg, SIGNING_ALGS } from '../keys/key-material.js';
import type { FieldError } from '../problem.js';
import { ASSERTION_NAMED_CLAIMS, SECRET_CLIENT_AUTH_METHODS } from './catalogue/oauth2.js';

/**
 * The key fields as docs/api.md spells them, read into the one form the rest of the service works
 * with (the catalogue's fields), before anything else looks at the body:
 *
 * - `generateKey: {"alg": "ES256"}` → `generateKey: true` and `signingAlg: "ES256"` (the console's
 *   `generateKey: true` with `signingAlg` is the same request, and stays accepted);
 * - `certificate` (the name the first release used) → `clientCertificate`, the contract's name;
 * - `privateKey` given as a JWK object → its JSON text (a JWK in a string is read as it is); a
 *   `kid` in the JWK becomes `keyId` when the request gives none;
 * - `assertion: {"iss","sub","aud","claims"}` → one map of claims (the flat map the first release
 *   took — `{"iss":…, "scope":…}` — is read as it is);
 * - with the JWT Bearer grant, `clientAuthMethod` defaults to `none` when no client secret is
 *   given or stored: the assertion is the proof (RFC 7523 §2.1), and `client_secret_basic` — the
 *   default of the other grants — would demand a secret nobody has.
 *
 * Problems are named by the field the request used, so one `validation_failed` lists them with the
 * schema's and the rules'.
 */
export interface KeyFieldSpellings {
  body: Record<string, unknown>;
  errors: FieldError[];
  /** The name the request gave the certificate under, for the problems found in it later. */
  certificateField: 'clientCertificate' | 'certificate';
  /**
   * The request asked for a new key in the contract's form (`generateKey: {"alg"}`): on PATCH that
   * makes a new key even when Grantry made the current one. `generateKey: true` does not — the
   * console sends it with every save of a form whose box is ticked.
   */
  newKeyAsked: boolean;
}

/** What a PATCH needs to know of the stored authentication (null on create). */
export interface StoredKeyFacts {
  grantType: string | null;
  clientAuthMethod: string | undefined;
  clientSecretStored: boolean;
  /** The key signing now was made by Grantry (`generateKey` stored as true). */
  generateKeyStored: boolean;
}

const ALG_LIST = SIGNING_ALGS.join(', ');

export function readKeyFieldSpellings(
  input: Record<string, unknown>,
  stored: StoredKeyFacts | null,
): KeyFieldSpellings {
  const body: Record<string, unknown> = { ...input };
  const errors: FieldError[] = [];
  const certificateField =
    Object.hasOwn(body, 'certificate') && !Object.hasOwn(body, 'clientCertificate')
      ? 'certificate'
      : 'clientCertificate';

  const newKeyAsked = readGenerateKey(body, errors);
  readCertificateAlias(body, errors);
  readPrivateKeyJwk(body);
  // A key given on PATCH replaces one Grantry made: the stored `generateKey` no longer holds.
  if (
    stored?.generateKeyStored === true &&
    body.generateKey === undefined &&
    typeof body.privateKey === 'string' &&
    body.privateKey !== ''
  )
    body.generateKey = false;
  readAssertion(body, errors);
  defaultJwtBearerClientAuth(body, stored);
  return { body, errors, certificateField, newKeyAsked };
}

function readGenerateKey(body: Record<string, unknown>, errors: FieldError[]): boolean {
  const value = body.generateKey;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { alg, ...rest } = value as Record<string, unknown>;
  for (const name of Object.keys(rest)) {
    errors.push({ path: `/generateKey/${name}`, message: 'is not a member of generateKey (only alg)' });
  }
  if (alg === undefined) {
    errors.push({ path: '/generateKey/alg', message: `is required: one of ${ALG_LIST}` });
  } else if (!isSigningAlg(alg)) {
    errors.push({ path: '/generateKey/alg', message: `must be one of ${ALG_LIST}` });
  } else if (body.signingAlg !== undefined && body.signingAlg !== null && body.signingAlg !== alg) {
    errors.push({
      path: '/signingAlg',
      message: `says ${String(body.signingAlg)} and generateKey.alg says ${alg}: give one of them`,
    });
  } else {
    body.signingAlg = alg;
  }
  body.generateKey = true;
  return true;
}

function readCertificateAlias(body: Record<string, unknown>, errors: FieldError[]): void {
  if (!Object.hasOwn(body, 'certificate')) return;
  const { certificate } = body;
  delete body.certificate;
  if (Object.hasOwn(body, 'clientCertificate')) {
    if (body.clientCertificate !== certificate) {
      errors.push({
        path: '/certificate',
        message: 'is the old name of clientCertificate: give the certificate once, as clientCertificate',
      });
    }
    return;
  }
  body.clientCertificate = certificate;
}

function readPrivateKeyJwk(body: Record<string, unknown>): void {
  const value = body.privateKey;
  let jwk: Record<string, unknown> | null = null;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    jwk = value as Record<string, unknown>;
    body.privateKey = JSON.stringify(jwk);
  } else if (typeof value === 'string' && value.trim().startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
        jwk = parsed as Record<string, unknown>;
    } catch {
      // Reported by the key check (key-material.ts), with the other problems of privateKey.
    }
  }
  if (jwk !== null && typeof jwk.kid === 'string' && jwk.kid !== '' && body.keyId === undefined) {
    body.keyId = jwk.kid;
  }
}

function readAssertion(body: Record<string, unknown>, errors: FieldError[]): void {
  const value = body.assertion;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  const flat: Record<string, string> = {};
  let wellFormed = true;
  for (const [name, member] of Object.entries(value as Record<string, unknown>)) {
    if (name === 'claims') {
      if (member === null || member === undefined) continue;
      if (typeof member !== 'object' || Array.isArray(member)) {
        errors.push({ path: '/assertion/claims', message: 'must be an object of string claims' });
        wellFormed = false;
        continue;
      }
      for (const [claim, claimValue] of Object.entries(member as Record<string, unknown>)) {
        if ((ASSERTION_NAMED_CLAIMS as readonly string[]).includes(claim)) {
          errors.push({
            path: `/assertion/claims/${claim}`,
            message: `is a member of assertion itself: give it as assertion.${claim}`,
          });
          wellFormed = false;
        } else if (typeof claimValue !== 'string') {
          errors.push({ path: `/assertion/claims/${claim}`, message: 'must be a string' });
          wellFormed = false;
        } else {
          flat[claim] = claimValue;
        }
      }
    } else if (member === null || member === undefined) {
      // An absent member: `aud` null means the default (the Token URL), as if it were left out.
    } else if (typeof member !== 'string') {
      errors.push({ path: `/assertion/${name}`, message: 'must be a string' });
      wellFormed = false;
    } else {
      flat[name] = member;
    }
  }
  // A malformed assertion is reported here; the catalogue's own check must not report it again.
  body.assertion = wellFormed ? flat : {};
}

function defaultJwtBearerClientAuth(body: Record<string, unknown>, stored: StoredKeyFacts | null): void {
  const grant =
    typeof body.serviceAccountJson === 'string'
      ? 'jwt_bearer'
      : typeof body.grantType === 'string'
        ? body.grantType
        : stored?.grantType;
  if (grant !== 'jwt_bearer') return;
  if (body.clientAuthMethod !== undefined && body.clientAuthMethod !== null) return;
  if (typeof body.clientSecret === 'string' && body.clientSecret !== '') return;
  if (stored !== null) {
    // A PATCH keeps the method it has, unless the grant changes and no secret would go with it.
    if (body.clientAuthMethod === undefined && stored.grantType === 'jwt_bearer') return;
    if (
      stored.clientSecretStored &&
      (SECRET_CLIENT_AUTH_METHODS as readonly string[]).includes(
        stored.clientAuthMethod ?? 'client_secret_basic',
      )
    )
      return;
  }
  body.clientAuthMethod = 'none';
}
