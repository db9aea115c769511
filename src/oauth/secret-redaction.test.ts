import { describe, expect, it } from 'vitest';
import { Problem } from '../problem.js';
import { applyClientAuthentication } from './client-authentication.js';
import { OAuthError } from './oauth-error.js';
import {
  MIN_REDACTED_LENGTH,
  REDACTED,
  type SentSecrets,
  secretForms,
  secretRedaction,
  sentSecretsOf,
} from './secret-redaction.js';

// A space, `+`, `:`, `%`, `/`, `~`, `*`, `'` and non-ASCII (Latin-1 and beyond): every encoding differs.
const SECRET = "s3c r+t:5%/~é€*'q";
const CLIENT_ID = 'id 1:x';

/** Each form written out by hand, so the test does not share the code under test. */
const SECRET_FORMS: Record<string, string> = {
  raw: SECRET,
  'form-urlencoded, + for space (WHATWG, what the body carries)':
    's3c+r%2Bt%3A5%25%2F%7E%C3%A9%E2%82%AC*%27q',
  'form-urlencoded, %20 for space': 's3c%20r%2Bt%3A5%25%2F%7E%C3%A9%E2%82%AC*%27q',
  encodeURIComponent: "s3c%20r%2Bt%3A5%25%2F~%C3%A9%E2%82%AC*'q",
  'RFC 6749 Appendix B (inside the Basic credentials)': 's3c+r%2Bt%3A5%25%2F%7E%C3%A9%E2%82%AC%2A%27q',
  'RFC 6749 Appendix B with %20': 's3c%20r%2Bt%3A5%25%2F%7E%C3%A9%E2%82%AC%2A%27q',
  'lower-case percent-encoding': 's3c+r%2bt%3a5%25%2f%7e%c3%a9%e2%82%ac*%27q',
  'JSON with non-ASCII escaped (Python)': "s3c r+t:5%/~\\u00e9\\u20ac*'q",
  'JSON with upper-case \\u escapes': "s3c r+t:5%/~\\u00E9\\u20AC*'q",
  'JSON with / escaped (PHP)': "s3c r+t:5%\\/~é€*'q",
};

function redactor(sent: Partial<SentSecrets> = {}) {
  return secretRedaction({ values: [SECRET], ...sent });
}

describe('secretRedaction: every form of a secret value', () => {
  for (const [name, form] of Object.entries(SECRET_FORMS)) {
    it(`${name}: ${form}`, () => {
      expect(redactor().text(`before ${form} after`)).toBe(`before ${REDACTED} after`);
    });
  }

  it('a value in a JSON document with quotes and backslashes', () => {
    const quoted = 'quo"te\\back/slash';
    const text = `echo ${JSON.stringify({ client_secret: quoted })}`;
    expect(secretRedaction({ values: [quoted] }).text(text)).toBe(`echo {"client_secret":"${REDACTED}"}`);
  });

  it('every occurrence, and the longest form first (a password containing the secret is cut whole)', () => {
    const redaction = secretRedaction({ values: ['abcdef12', 'abcdef12xyz'] });
    expect(redaction.text('a=abcdef12xyz b=abcdef12 c=abcdef12')).toBe(
      `a=${REDACTED} b=${REDACTED} c=${REDACTED}`,
    );
  });

  it(`leaves values shorter than ${MIN_REDACTED_LENGTH} characters alone, so ordinary words survive`, () => {
    const redaction = secretRedaction({ values: ['test', '12345', 'abcdef'] });
    expect(redaction.text('the test user 12345 has abcdef')).toBe(`the test user 12345 has ${REDACTED}`);
  });

  it('leaves text without secrets unchanged', () => {
    expect(redactor().text('invalid client')).toBe('invalid client');
  });
});

describe('secretRedaction: the Basic credentials (RFC 6749 §2.3.1)', () => {
  async function sentBasic(clientId: string, clientSecret: string) {
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    const headers = new Headers();
    await applyClientAuthentication(
      { clientId, clientSecret, clientAuthMethod: 'client_secret_basic' },
      body,
      headers,
    );
    const authorization = headers.get('authorization') ?? '';
    return { body, headers, authorization, payload: authorization.replace(/^Basic /, '') };
  }

  it('the header as sent, its payload decoded, and base64/base64url of the raw id:secret', async () => {
    const secret = 'se cr~~?t:+%/é€x';
    const sent = await sentBasic(CLIENT_ID, secret);
    const redaction = secretRedaction(
      sentSecretsOf(sent.body, sent.headers, { clientId: CLIENT_ID, clientSecret: secret }),
    );
    const decoded = Buffer.from(sent.payload, 'base64').toString('utf8');
    // RFC 6749 §2.3.1 form-urlencodes both before base64: what a conforming server decodes.
    expect(decoded).toBe('id+1%3Ax:se+cr%7E%7E%3Ft%3A%2B%25%2F%C3%A9%E2%82%ACx');
    const raw = Buffer.from(`${CLIENT_ID}:${secret}`, 'utf8');
    expect(raw.toString('base64')).not.toBe(raw.toString('base64url'));

    expect(redaction.text(`got ${sent.authorization}`)).toBe(`got Basic ${REDACTED}`);
    expect(redaction.text(`got ${encodeURIComponent(sent.authorization)}`)).toBe(`got Basic%20${REDACTED}`);
    expect(redaction.text(`credentials ${decoded}`)).toBe(`credentials id+1%3Ax:${REDACTED}`);
    expect(redaction.text(`raw ${raw.toString('base64')}`)).toBe(`raw ${REDACTED}`);
    expect(redaction.text(`url ${raw.toString('base64url')}`)).toBe(`url ${REDACTED}`);
    expect(redaction.text(`unpadded ${raw.toString('base64').replace(/=+$/, '')}`)).toBe(
      `unpadded ${REDACTED}`,
    );
  });

  it('from the client alone, before the header is built', () => {
    const secret = 'Cs3 cr+t:50%/é€~zz';
    const raw = Buffer.from(`${CLIENT_ID}:${secret}`, 'utf8').toString('base64');
    const redaction = secretRedaction({ values: [], client: { clientId: CLIENT_ID, clientSecret: secret } });
    expect(redaction.text(`x ${raw} y ${secret}`)).toBe(`x ${REDACTED} y ${REDACTED}`);
  });

  it('a short client secret is not blanked, but the longer Basic credentials as sent are', async () => {
    const sent = await sentBasic('client-1', 'abc');
    const redaction = secretRedaction(
      sentSecretsOf(sent.body, sent.headers, { clientId: 'client-1', clientSecret: 'abc' }),
    );
    expect(redaction.text(`secret abc in ${sent.authorization}`)).toBe(`secret abc in Basic ${REDACTED}`);
  });
});

describe('sentSecretsOf', () => {
  it('takes the secret parameters of a token or revocation body and the Authorization header', () => {
    const body = new URLSearchParams({
      grant_type: 'authorization_code',
      username: 'alice',
      password: 'pw-123456',
      code: 'code-123456',
      code_verifier: 'verifier-123456',
      refresh_token: 'rt-123456',
      token: 'revoked-123456',
      client_secret: 'secret-123456',
      redirect_uri: 'https://grantry.example/oauth/redirect',
    });
    const headers = new Headers({ authorization: 'Basic Y2xpZW50OnNlY3JldA==' });
    const sent = sentSecretsOf(body, headers, { clientId: 'client', clientSecret: 'secret-123456' });
    expect([...sent.values].sort()).toEqual(
      ['client_secret', 'password', 'code', 'code_verifier', 'refresh_token', 'token']
        .map((name) => body.get(name))
        .sort(),
    );
    expect(sent.authorization).toBe('Basic Y2xpZW50OnNlY3JldA==');
    expect(secretForms(sent)).not.toContain('alice');
  });
});

describe('secretRedaction.problem: every string field of an error', () => {
  const form = SECRET_FORMS['form-urlencoded, + for space (WHATWG, what the body carries)'] as string;

  it('an OAuthError keeps its class, code, status, reason and retry hint, with every text redacted', () => {
    const original = new OAuthError('token_fetch_failed', `message ${SECRET}`, {
      hint: `hint ${form}`,
      provider: {
        status: 503,
        error: `error ${SECRET}`,
        errorDescription: `description ${form}`,
        errorUri: `https://x.example/?e=${form}`,
        wwwAuthenticate: `Bearer error_description="${SECRET}"`,
      },
      facts: {
        reason: 'html',
        htmlTitle: `title ${SECRET}`,
        location: `https://x.example/${form}`,
        retryAfterSeconds: 3,
      },
    });
    const redacted = redactor().problem(original);
    expect(redacted).toBeInstanceOf(OAuthError);
    expect(redacted.code).toBe('token_fetch_failed');
    expect(redacted.status).toBe(original.status);
    expect(redacted.message).toBe(`message ${REDACTED}`);
    expect(redacted.hint).toBe(`hint ${REDACTED}`);
    expect(redacted.provider).toEqual({
      status: 503,
      error: `error ${REDACTED}`,
      errorDescription: `description ${REDACTED}`,
      errorUri: `https://x.example/?e=${REDACTED}`,
      wwwAuthenticate: `Bearer error_description="${REDACTED}"`,
    });
    expect((redacted as OAuthError).facts).toEqual({
      reason: 'html',
      htmlTitle: `title ${REDACTED}`,
      location: `https://x.example/${REDACTED}`,
      retryAfterSeconds: 3,
    });
    expect(JSON.stringify(redacted.toJSON())).not.toContain('s3c');
  });

  it('a plain Problem keeps its status and cause, with field errors redacted too', () => {
    const cause = new Error('cause');
    const original = new Problem('upstream_failed', `failed ${SECRET}`, {
      errors: [{ path: `/${form}`, message: `bad ${SECRET}` }],
      status: 502,
      cause,
    });
    const redacted = redactor().problem(original);
    expect(redacted).toBeInstanceOf(Problem);
    expect(redacted.status).toBe(502);
    expect(redacted.cause).toBe(cause);
    expect(redacted.toJSON()).toEqual({
      code: 'upstream_failed',
      message: `failed ${REDACTED}`,
      errors: [{ path: `/${REDACTED}`, message: `bad ${REDACTED}` }],
    });
  });

  it('a problem with nothing to cut is returned as it is', () => {
    const problem = new OAuthError('invalid_client', 'The provider rejected the client credentials.', {
      provider: { status: 401, error: 'invalid_client' },
      facts: { reason: 'oauth_error' },
    });
    expect(redactor().problem(problem)).toBe(problem);
  });
});
