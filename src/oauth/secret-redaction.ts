import { Problem, type ProviderAnswer } from '../problem.js';
import { OAuthError, type ResponseFacts } from './oauth-error.js';

/**
 * What a request to a provider carried that is secret. Some token endpoints echo the request in
 * their error (`error_description: "invalid client_secret=…"`, the whole body, the Authorization
 * header), and what they echo reaches people: the test answer, `lastError`, the event timeline, logs.
 */
export interface SentSecrets {
  /** Secret values as given: client secret, password, refresh token, code, code_verifier, a revoked token. */
  values: readonly string[];
  /** The client, whose Basic credentials are base64 of `id:secret` (RFC 6749 §2.3.1). */
  client?: { clientId: string; clientSecret: string } | undefined;
  /** The Authorization header exactly as sent (`Basic <base64>`), when there was one. */
  authorization?: string | null | undefined;
}

export const REDACTED = '[redacted]';

/**
 * Values shorter than this are not blanked, in any form (the Basic credentials count as one value,
 * id and secret together). A secret of a few characters is also a common word, number or fragment
 * ("test", "1234", "abc"): cutting it out of a provider's description would mangle the one text that
 * explains the failure, while protecting a value too short to be a real secret (client secrets,
 * passwords worth the name, codes and tokens are longer).
 */
export const MIN_REDACTED_LENGTH = 6;

/**
 * The parameters of token requests (RFC 6749 §2.3.1, §4, §6; RFC 7636 §4.5; RFC 7521 §4.1–4.2
 * assertions) and revocation requests (RFC 7009 §2.1) whose values are secret.
 */
export const SECRET_PARAMETERS = [
  'client_secret',
  'password',
  'refresh_token',
  'code',
  'code_verifier',
  'token',
  'client_assertion',
  'assertion',
] as const;

/**
 * The secrets of a request as it is about to be sent: its secret body parameters (assertions
 * included), its DPoP proof (RFC 9449: a proof is single-use, but a copy in a log is a gift to no
 * one) and its Authorization header.
 */
export function sentSecretsOf(
  body: URLSearchParams,
  headers: Headers,
  client: { clientId: string; clientSecret: string },
): SentSecrets {
  const proof = headers.get('dpop');
  return {
    values: [...SECRET_PARAMETERS.flatMap((name) => body.getAll(name)), ...(proof === null ? [] : [proof])],
    client,
    authorization: headers.get('authorization'),
  };
}

/** Cuts every form of the secrets a request sent out of texts and errors. */
export interface SecretRedaction {
  /** The text with every known form of every secret replaced by {@link REDACTED}. */
  text(value: string): string;
  /**
   * The problem with every string a person or a log sees redacted: message, hint, the provider's
   * error, description, URI and WWW-Authenticate, the response facts (HTML title, redirect
   * location) and field errors. The same class, code, status and cause; the same object when
   * nothing needed cutting.
   */
  problem(problem: Problem): Problem;
}

export function secretRedaction(sent: SentSecrets): SecretRedaction {
  // Built on first use: most requests succeed and never have anything to redact, while building
  // every encoded form of every secret costs more than the rest of a token request's own work.
  let forms: string[] | null = null;
  const text = (value: string): string => {
    forms ??= secretForms(sent);
    let redacted = value;
    for (const form of forms) if (redacted.includes(form)) redacted = redacted.split(form).join(REDACTED);
    return redacted;
  };
  return { text, problem: (problem) => redactProblem(problem, text) };
}

/**
 * Every form in which the secrets of a request may come back, longest first (so a form that contains
 * another is cut whole). What is sent is form-urlencoded (the body, and id and secret inside the
 * Basic credentials), base64 (the Basic header); a provider may echo it as received, decode it, or
 * re-encode it its own way.
 */
export function secretForms(sent: SentSecrets): string[] {
  const forms = new Set<string>();
  const secrets = sent.values.filter(longEnough);
  const client = sent.client;
  if (client !== undefined && longEnough(client.clientSecret)) {
    secrets.push(client.clientSecret);
    for (const credentials of basicCredentialForms(client.clientId, client.clientSecret)) {
      for (const form of encodedForms(credentials)) forms.add(form);
    }
  }
  const basic = /^Basic\s+(\S+)$/i.exec(sent.authorization ?? '')?.[1];
  if (basic !== undefined && longEnough(basic)) {
    for (const credentials of base64Forms(Buffer.from(basic, 'base64'))) {
      for (const form of encodedForms(credentials)) forms.add(form);
    }
  }
  for (const secret of secrets) for (const form of encodedForms(secret)) forms.add(form);
  return [...forms].filter(longEnough).sort((a, b) => b.length - a.length);
}

/**
 * One value in every encoding it may be echoed in: raw; application/x-www-form-urlencoded as the
 * WHATWG URL standard writes it (`+` for a space) and with `%20`; `encodeURIComponent`; the strict
 * form-urlencoding of RFC 6749 Appendix B that §2.3.1 applies to Basic credentials (also `-._~!*'()`
 * escaped); each percent-encoded form with lower-case hex too; and JSON string escapes (plain,
 * non-ASCII as `\uXXXX` as Python writes JSON, `/` as `\/` as PHP does).
 */
export function encodedForms(value: string): string[] {
  const formPlus = new URLSearchParams({ v: value }).toString().slice(2);
  const strictPlus = strictFormUrlEncode(value);
  const percentForms = [
    formPlus,
    formPlus.replaceAll('+', '%20'),
    encodeURIComponent(value),
    strictPlus,
    strictPlus.replaceAll('+', '%20'),
  ];
  const json = JSON.stringify(value).slice(1, -1);
  const unicodeEscaped = (hex: (code: string) => string) =>
    json.replace(/[\u0080-\uffff]/g, (c) => `\\u${hex(c.charCodeAt(0).toString(16).padStart(4, '0'))}`);
  const jsonForms = [json, unicodeEscaped((h) => h), unicodeEscaped((h) => h.toUpperCase())];
  const forms = new Set([value, ...percentForms, ...jsonForms]);
  for (const form of percentForms) forms.add(form.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
  for (const form of jsonForms) forms.add(form.replaceAll('/', '\\/'));
  return [...forms];
}

/**
 * The Basic credentials of a client in every way they may be built: base64 and base64url of
 * `urlenc(id):urlenc(secret)` (RFC 6749 §2.3.1, as Grantry sends them, and the looser encodings
 * other clients use) and of the raw `id:secret` (RFC 7617), UTF-8.
 */
export function basicCredentialForms(clientId: string, clientSecret: string): string[] {
  const encodings: ((value: string) => string)[] = [
    strictFormUrlEncode,
    (value) => strictFormUrlEncode(value).replaceAll('+', '%20'),
    (value) => new URLSearchParams({ v: value }).toString().slice(2),
    encodeURIComponent,
    (value) => value,
  ];
  const forms = new Set<string>();
  for (const encode of encodings) {
    const pair = Buffer.from(`${encode(clientId)}:${encode(clientSecret)}`, 'utf8');
    for (const form of base64Forms(pair)) forms.add(form);
  }
  return [...forms];
}

/** base64 with and without padding, and base64url (RFC 4648 §4, §5). */
function base64Forms(bytes: Buffer): string[] {
  const padded = bytes.toString('base64');
  return [padded, padded.replace(/=+$/, ''), bytes.toString('base64url')];
}

/** RFC 6749 Appendix B: application/x-www-form-urlencoded with only ALPHA and DIGIT left as they are. */
function strictFormUrlEncode(value: string): string {
  return encodeURIComponent(value)
    .replace(/[-_.!~*'()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replaceAll('%20', '+');
}

function longEnough(value: string): boolean {
  return value.length >= MIN_REDACTED_LENGTH;
}

function redactProblem(problem: Problem, text: (value: string) => string): Problem {
  const message = text(problem.message);
  const hint = problem.hint === undefined ? undefined : text(problem.hint);
  const provider = problem.provider === undefined ? undefined : redactProvider(problem.provider, text);
  const errors = problem.errors?.map((e) => ({ path: text(e.path), message: text(e.message) }));
  if (problem instanceof OAuthError) {
    const facts = redactFacts(problem.facts, text);
    if (
      same([message, hint, provider, facts], [problem.message, problem.hint, problem.provider, problem.facts])
    )
      return problem;
    return new OAuthError(problem.code, message, {
      provider: provider ?? {},
      facts,
      hint,
      cause: problem.cause,
    });
  }
  if (
    same([message, hint, provider, errors], [problem.message, problem.hint, problem.provider, problem.errors])
  )
    return problem;
  return new Problem(problem.code, message, {
    hint,
    errors,
    provider,
    status: problem.status,
    cause: problem.cause,
  });
}

/** Plain data compared by value: the redacted parts against the originals. */
function same(redacted: unknown[], original: unknown[]): boolean {
  return JSON.stringify(redacted) === JSON.stringify(original);
}

function redactProvider(provider: ProviderAnswer, text: (value: string) => string): ProviderAnswer {
  const redacted: ProviderAnswer = { ...provider };
  if (provider.error !== undefined) redacted.error = text(provider.error);
  if (provider.errorDescription !== undefined) redacted.errorDescription = text(provider.errorDescription);
  if (provider.errorUri !== undefined) redacted.errorUri = text(provider.errorUri);
  if (provider.wwwAuthenticate !== undefined) redacted.wwwAuthenticate = text(provider.wwwAuthenticate);
  return redacted;
}

function redactFacts(facts: ResponseFacts, text: (value: string) => string): ResponseFacts {
  const redacted: ResponseFacts = { ...facts };
  if (facts.contentType !== undefined) redacted.contentType = text(facts.contentType);
  if (facts.htmlTitle !== undefined) redacted.htmlTitle = text(facts.htmlTitle);
  if (facts.location !== undefined) redacted.location = text(facts.location);
  return redacted;
}
