import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Structured JSON logs. Redaction is the second line of defence — the first is never putting a
 * secret into a log call — and covers every field name a secret could travel under. It cannot see
 * a secret inside free text, such as a provider's error description echoing our request: such texts
 * are cut where they are read (oauth/secret-redaction.ts), and log calls name error codes, not them.
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
  'code',
  'code_verifier',
  'codeVerifier',
  'token',
  'apiKey',
  'state',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const paths = [
    ...SECRET_FIELDS,
    ...SECRET_FIELDS.map((f) => `*.${f}`),
    ...SECRET_FIELDS.map((f) => `*.*.${f}`),
    'req.headers.authorization',
    'req.headers.cookie',
    'headers.authorization',
    'headers.cookie',
  ];
  const options = { level, base: { service: 'grantry' }, redact: { paths, censor: '[redacted]' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}
