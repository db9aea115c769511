import type { FieldError } from '../problem.js';

/**
 * A Google service-account key file ("Create key → JSON" in the Google Cloud console), read into what
 * the JWT-bearer grant needs: Google's OAuth 2.0 for server-to-server applications signs a JWT with
 * `iss` the service account's email, `aud` the token URI, the requested `scope` as a claim and, for
 * domain-wide delegation, `sub` the user to act as
 * (https://developers.google.com/identity/protocols/oauth2/service-account).
 */
export interface GoogleServiceAccount {
  clientEmail: string;
  privateKey: string;
  privateKeyId: string;
  tokenUri: string;
  projectId: string | null;
}

export const GOOGLE_TOKEN_URI = 'https://oauth2.googleapis.com/token';

export type ServiceAccountReading =
  | { ok: true; account: GoogleServiceAccount }
  | { ok: false; errors: FieldError[] };

/**
 * Reads the key file's JSON. Problems are reported on `path` (the request field that carried the
 * file) and never quote the key. The file's `token_uri` becomes the Token URL and the assertion's
 * `aud`, and meets the same URL rules as any Token URL (https); it may name another host than
 * Google's (an emulator, a test server): the assertion it receives is signed by this very file's key,
 * so it grants nothing the file did not already.
 */
export function readServiceAccountJson(text: string, options: { path?: string } = {}): ServiceAccountReading {
  const path = options.path ?? '/serviceAccountJson';
  const problem = (message: string) => ({ ok: false as const, errors: [{ path, message }] });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return problem('is not JSON: paste the whole key file Google made ("Create key" → JSON)');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return problem('must be the JSON object of a service-account key file');
  }
  const file = value as Record<string, unknown>;
  if (file.type !== 'service_account') {
    return problem(
      `is not a service-account key file (its "type" is ${typeof file.type === 'string' ? `"${file.type.slice(0, 40)}"` : 'missing'}, not "service_account")`,
    );
  }
  const errors: FieldError[] = [];
  const text_ = (name: string): string | null => {
    const member = file[name];
    if (typeof member === 'string' && member !== '') return member;
    errors.push({ path, message: `has no "${name}"` });
    return null;
  };
  const clientEmail = text_('client_email');
  const privateKey = text_('private_key');
  const privateKeyId = text_('private_key_id');
  const tokenUri =
    typeof file.token_uri === 'string' && file.token_uri !== '' ? file.token_uri : GOOGLE_TOKEN_URI;
  if (!URL.canParse(tokenUri)) errors.push({ path, message: 'has a "token_uri" that is not a URL' });
  if (clientEmail !== null && !/^[^@\s]+@[^@\s]+$/.test(clientEmail)) {
    errors.push({ path, message: 'has a "client_email" that is not an email address' });
  }
  if (errors.length > 0 || clientEmail === null || privateKey === null || privateKeyId === null) {
    return { ok: false, errors };
  }
  return {
    ok: true,
    account: {
      clientEmail,
      privateKey,
      privateKeyId,
      tokenUri,
      projectId: typeof file.project_id === 'string' ? file.project_id : null,
    },
  };
}
