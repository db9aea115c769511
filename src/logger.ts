import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Structured JSON logs. Redaction is the second line of defence — the first is never putting a
 * secret into a log call — and covers every field name a secret could travel under. It cannot see
 * a secret inside free text, such as a provider's error description echoing our request: such texts
 * are cut where they are read (oauth/secret-redaction.ts), and log calls name error codes, not them.
 *
 * `code` is not among them: it is how errors name themselves (`ECONNRESET`, `invalid_client`), and
 * hiding it hid the one word an operator needs. OAuth authorization codes are redacted where they
 * travel instead (query and callback parameters, below).
 */
const SECRET_FIELDS = [
  'authorization',
  'Authorization',
  'cookie',
  'clientSecret',
  'client_secret',
  'password',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'code_verifier',
  'codeVerifier',
  'token',
  'apiKey',
  'state',
  // Webhook signing secrets (whsec_…).
  'secret',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const paths = [
    ...SECRET_FIELDS,
    ...SECRET_FIELDS.map((f) => `*.${f}`),
    ...SECRET_FIELDS.map((f) => `*.*.${f}`),
    // Authorization codes (RFC 6749 §4.1.2) travel as a query or callback parameter.
    'query.code',
    '*.query.code',
    'parameters.code',
    '*.parameters.code',
    'req.headers.authorization',
    'req.headers.cookie',
    'headers.authorization',
    'headers.cookie',
  ];
  const options = { level, base: { service: 'grantry' }, redact: { paths, censor: '[redacted]' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}
