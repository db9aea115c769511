import { createPrivateKey, type KeyObject } from 'node:crypto';
import { certificateMatchesKey, readCertificateChain, selfSignedCertificate } from '../keys/certificate.js';
import { algProblem, algsFor, isSigningAlg, readPrivateKey, type SigningAlg } from '../keys/key-material.js';
import { generatedKey, importedKey, type KeySet, type StoredKey } from '../keys/key-set.js';
import { DPOP_ALG } from '../oauth/dpop.js';
import type { FieldError } from '../problem.js';
import { readServiceAccountJson } from '../providers/google-service-account.js';
import type { AuthenticationSettings } from '../store/contract.js';
import type { AuthenticationDraft } from './authentication-draft.js';
import { KEY_CLIENT_AUTH_METHODS, MTLS_CLIENT_AUTH_METHODS } from './catalogue/oauth2.js';

/**
 * The keys of an authentication as a create or a change leaves them (docs/keys.md): a key Grantry
 * makes (`generateKey`), one a person imports (`privateKey`, `clientCertificate`, `keyId`) — checked here
 * at save time, so a bad PEM is a `validation_failed` naming the field, never a failed call later —
 * a Google service-account key file, and the DPoP key. Rotation has routes of its own
 * (authentication-service.ts); this is what a POST or a PATCH does.
 */

/** Whether an authentication with these values signs or shows a key of its own. */
export function usesKeys(values: Readonly<Record<string, unknown>>, grantType: string | undefined): boolean {
  return (
    grantType === 'jwt_bearer' ||
    (KEY_CLIENT_AUTH_METHODS as readonly string[]).includes(String(values.clientAuthMethod))
  );
}

function usesMtls(values: Readonly<Record<string, unknown>>): boolean {
  return (MTLS_CLIENT_AUTH_METHODS as readonly string[]).includes(String(values.clientAuthMethod));
}

/**
 * Expands `serviceAccountJson` (a Google key file) into the fields it stands for: the JWT Bearer
 * grant, the Token URL, the assertion's `iss` (the service account's email) and `aud` (the token
 * URI), the private key and its id, RS256, and no client authentication (Google authenticates the
 * assertion). What the request gives explicitly wins, as with a provider preset; the claims the
 * request or the stored authentication already has (`scope`, `sub`) are kept.
 */
export function expandServiceAccount(
  body: Record<string, unknown>,
  stored: AuthenticationSettings | null,
): { body: Record<string, unknown>; errors: FieldError[] } {
  const file = body.serviceAccountJson;
  if (typeof file !== 'string') return { body, errors: [] };
  const { serviceAccountJson: _, ...rest } = body;
  const reading = readServiceAccountJson(file);
  if (!reading.ok) return { body: rest, errors: reading.errors };
  const { account } = reading;
  const expanded: Record<string, unknown> = { ...rest };
  const fill = (name: string, value: unknown) => {
    if (expanded[name] === undefined || expanded[name] === null) expanded[name] = value;
  };
  fill('grantType', 'jwt_bearer');
  fill('tokenUrl', account.tokenUri);
  fill('clientAuthMethod', 'none');
  fill('signingAlg', 'RS256');
  fill('privateKey', account.privateKey);
  fill('keyId', account.privateKeyId);
  expanded.generateKey = false;
  const claims =
    typeof rest.assertion === 'object' && rest.assertion !== null
      ? (rest.assertion as Record<string, string>)
      : (stored?.assertion ?? {});
  expanded.assertion = { ...claims, iss: account.clientEmail, aud: claims.aud ?? account.tokenUri };
  return { body: expanded, errors: [] };
}

export interface KeySetPlan {
  keys: KeySet;
  errors: FieldError[];
  /** The signing key or the DPoP key changed (or went): tokens bound to the old one are dropped. */
  changed: boolean;
  /** The algorithm the authentication signs with after this change (an imported key may decide it). */
  signingAlg: SigningAlg | undefined;
}

export interface KeySetInput {
  draft: AuthenticationDraft;
  stored: KeySet;
  /** Whether this request gave `signingAlg` itself (else an imported key may set it). */
  signingAlgGiven: boolean;
  /**
   * A new key is made even over one Grantry made: `generateKey: {"alg"}` given in this request, or
   * `generateKey: true` with the token URL moving.
   */
  regenerate: boolean;
  /** Names the self-signed certificate (the authentication's id). */
  commonName: string;
  now: number;
}

/**
 * The key set after a create or a PATCH. Every problem is named by field:
 * `/privateKey` (a PEM that does not parse, an RSA key under 2048 bits, a key of another type than
 * `signingAlg`), `/clientCertificate` (not a certificate, expired, not the private key's), `/generateKey`.
 */
export function planKeySet(input: KeySetInput): KeySetPlan {
  const { draft, stored, now } = input;
  const errors: FieldError[] = [];
  const values = draft.values;
  const dpop = values.dpop === true ? (stored.dpop ?? generatedKey({ alg: DPOP_ALG, now })) : null;
  let signingAlg = isSigningAlg(values.signingAlg) ? values.signingAlg : undefined;

  if (!usesKeys(values, draft.grantType)) {
    const keys: KeySet = { current: null, next: null, retiring: null, dpop };
    return { keys, errors, changed: changedKeys(stored, keys), signingAlg };
  }

  const mtls = usesMtls(values);
  const givenPem = draft.givenSecrets.privateKey;
  const givenCertificate =
    typeof values.clientCertificate === 'string' && values.clientCertificate !== ''
      ? values.clientCertificate
      : undefined;
  const givenKid = typeof values.keyId === 'string' && values.keyId !== '' ? values.keyId : undefined;
  let current: StoredKey | null = stored.current;
  let rotationKept = true;

  if (givenPem !== undefined && givenPem !== '') {
    const reading = readPrivateKey(givenPem);
    if (!reading.ok) {
      errors.push({ path: '/privateKey', message: reading.problem });
      return { keys: stored, errors, changed: false, signingAlg };
    }
    const alg = fittingAlg(reading.key, signingAlg, input.signingAlgGiven, errors);
    signingAlg = alg;
    const certificate = checkedCertificate(givenCertificate, reading.key, now, errors);
    if (mtls && certificate === null && givenCertificate === undefined) {
      if (values.clientAuthMethod === 'tls_client_auth') {
        errors.push({
          path: '/clientCertificate',
          message:
            'is required with tls_client_auth: give the certificate the CA issued for this private key',
        });
      }
    }
    if (alg === undefined || errors.length > 0) return { keys: stored, errors, changed: false, signingAlg };
    current = importedKey(reading.key, { alg, kid: givenKid, certificate, now });
    if (mtls && current.certificate === null) {
      current.certificate = selfSignedCertificate(reading.key, { commonName: input.commonName, now });
    }
    rotationKept = false;
  } else if (
    values.generateKey === true &&
    (current === null || current.origin !== 'generated' || input.regenerate)
  ) {
    if (values.clientAuthMethod === 'tls_client_auth')
      return { keys: stored, errors, changed: false, signingAlg };
    const alg = signingAlg ?? 'RS256';
    current = generatedKey({ alg, selfSigned: mtls ? { commonName: input.commonName } : undefined, now });
    signingAlg = alg;
    rotationKept = false;
  } else if (current === null) {
    errors.push({
      path: '/privateKey',
      message: `is required with ${draft.grantType === 'jwt_bearer' ? 'the JWT Bearer grant' : `clientAuthMethod ${String(values.clientAuthMethod)}`}: give the private key (PEM), set generateKey to let Grantry make one${draft.grantType === 'jwt_bearer' ? ', or give serviceAccountJson' : ''}`,
    });
    return { keys: stored, errors, changed: false, signingAlg };
  } else {
    // The stored key stays; what this request says about it is checked against it.
    const key = createPrivateKey(current.privateKey);
    if (signingAlg !== undefined && signingAlg !== current.alg) {
      const problem = algProblem(key, signingAlg);
      if (problem !== null) {
        errors.push({
          path: '/signingAlg',
          message: `cannot change: ${problem}; rotate the key to change its type (POST …/rotate-key with signingAlg)`,
        });
      } else {
        current = { ...current, alg: signingAlg };
      }
    }
    if (givenCertificate !== undefined) {
      const certificate = checkedCertificate(givenCertificate, key, now, errors);
      if (certificate !== null) current = { ...current, certificate };
    } else if (mtls && current.certificate === null) {
      if (values.clientAuthMethod === 'tls_client_auth') {
        errors.push({
          path: '/clientCertificate',
          message: 'is required with tls_client_auth: give the certificate the CA issued for the private key',
        });
      } else {
        current = {
          ...current,
          certificate: selfSignedCertificate(key, { commonName: input.commonName, now }),
        };
      }
    }
    if (givenKid !== undefined && givenKid !== current.kid) current = { ...current, kid: givenKid };
    if (errors.length > 0) return { keys: stored, errors, changed: false, signingAlg };
  }
  const keys: KeySet = {
    current,
    next: rotationKept ? stored.next : null,
    retiring: rotationKept ? stored.retiring : null,
    dpop,
  };
  return { keys, errors, changed: changedKeys(stored, keys), signingAlg };
}

/** The algorithm an imported key signs with: the one asked for when it fits, else the key's own. */
function fittingAlg(
  key: KeyObject,
  asked: SigningAlg | undefined,
  askedNow: boolean,
  errors: FieldError[],
): SigningAlg | undefined {
  const fits = algsFor(key);
  if (asked !== undefined && fits.includes(asked)) return asked;
  if (asked !== undefined && askedNow) {
    errors.push({ path: '/signingAlg', message: `does not fit the private key: ${algProblem(key, asked)}` });
    return undefined;
  }
  return fits[0];
}

function checkedCertificate(
  pem: string | undefined,
  key: KeyObject,
  now: number,
  errors: FieldError[],
): string | null {
  if (pem === undefined) return null;
  const reading = readCertificateChain(pem, now);
  if (!reading.ok) {
    errors.push({ path: '/clientCertificate', message: reading.problem });
    return null;
  }
  if (!certificateMatchesKey(reading.leaf, key)) {
    errors.push({
      path: '/clientCertificate',
      message: 'does not match the private key: it was issued for another key pair',
    });
    return null;
  }
  return reading.chainPem;
}

function changedKeys(before: KeySet, after: KeySet): boolean {
  const id = (key: StoredKey | null) =>
    key === null ? null : `${key.kid} ${key.privateKey} ${key.certificate}`;
  return id(before.current) !== id(after.current) || id(before.dpop) !== id(after.dpop);
}

/** Checks a key brought for a rotation (`POST …/rotate-key` with `privateKey`), like an import. */
export function importedRotationKey(
  body: { privateKey?: string | undefined; certificate?: string | undefined; keyId?: string | undefined },
  options: {
    alg: SigningAlg | undefined;
    mtls: 'ca' | 'self_signed' | null;
    commonName: string;
    now: number;
  },
): { key: StoredKey | null; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const reading = readPrivateKey(body.privateKey ?? '');
  if (!reading.ok) return { key: null, errors: [{ path: '/privateKey', message: reading.problem }] };
  const alg = fittingAlg(reading.key, options.alg, options.alg !== undefined, errors);
  const certificate = checkedCertificate(body.certificate, reading.key, options.now, errors);
  if (options.mtls === 'ca' && body.certificate === undefined) {
    errors.push({ path: '/clientCertificate', message: 'is required with tls_client_auth' });
  }
  if (alg === undefined || errors.length > 0) return { key: null, errors };
  const key = importedKey(reading.key, { alg, kid: body.keyId, certificate, now: options.now });
  if (options.mtls === 'self_signed' && key.certificate === null) {
    key.certificate = selfSignedCertificate(reading.key, {
      commonName: options.commonName,
      now: options.now,
    });
  }
  return { key, errors };
}
