/** One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1). Parameter names are lower case. */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
  token68?: string;
}

/** The parameters of a Bearer challenge (RFC 6750 §3). */
export interface BearerChallenge {
  realm?: string;
  error?: string;
  errorDescription?: string;
  errorUri?: string;
  /** Space-separated scopes the resource needs (RFC 6750 §3: `scope`). */
  scope?: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*/;

/**
 * Parses `WWW-Authenticate` into its challenges (RFC 9110 §11.6.1 grammar): several challenges
 * separated by commas, parameters as tokens or quoted strings with backslash escapes, or a token68.
 * Lenient: text it cannot read ends the parse instead of throwing.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const challenges: AuthChallenge[] = [];
  let rest = header;
  const skip = (pattern: RegExp): void => {
    rest = rest.replace(pattern, '');
  };
  for (;;) {
    skip(/^[\s,]+/);
    const scheme = TOKEN.exec(rest)?.[0];
    if (scheme === undefined) break;
    rest = rest.slice(scheme.length);
    const challenge: AuthChallenge = { scheme, params: {} };
    challenges.push(challenge);
    if (!/^[ \t]+/.test(rest)) continue;
    skip(/^[ \t]+/);
    const token68 = TOKEN68.exec(rest)?.[0];
    if (token68 !== undefined && /^[ \t]*(,|$)/.test(rest.slice(token68.length)) && !isParamStart(rest)) {
      challenge.token68 = token68;
      rest = rest.slice(token68.length);
      continue;
    }
    // auth-params until something that is not `name = value` (the next challenge's scheme).
    for (;;) {
      skip(/^[\s,]+/);
      if (!isParamStart(rest)) break;
      const name = TOKEN.exec(rest)?.[0] ?? '';
      rest = rest.slice(name.length).replace(/^[ \t]*=[ \t]*/, '');
      const value = readValue();
      if (value === undefined) return challenges;
      challenge.params[name.toLowerCase()] = value;
    }
  }
  return challenges;

  function readValue(): string | undefined {
    if (rest.startsWith('"')) {
      let value = '';
      let index = 1;
      while (index < rest.length) {
        const char = rest[index];
        if (char === '\\' && index + 1 < rest.length) {
          value += rest[index + 1];
          index += 2;
        } else if (char === '"') {
          rest = rest.slice(index + 1);
          return value;
        } else {
          value += char;
          index += 1;
        }
      }
      rest = '';
      return value; // unterminated: keep what was there
    }
    const token = TOKEN.exec(rest)?.[0];
    if (token === undefined) return undefined;
    rest = rest.slice(token.length);
    return token;
  }
}

/** A parameter is `token BWS "=" BWS value`; `abc==` at the end of a challenge is token68 padding. */
function isParamStart(text: string): boolean {
  const match = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=[ \t]*/.exec(text);
  if (match === null) return false;
  return /^("|[!#$%&'*+\-.^_`|~0-9A-Za-z])/.test(text.slice(match[0].length));
}

/** The first Bearer challenge of a `WWW-Authenticate` header, or null. */
export function parseBearerChallenge(
  header: string | null | undefined,
  scheme: 'bearer' | 'dpop' = 'bearer',
): BearerChallenge | null {
  if (header === null || header === undefined) return null;
  // RFC 9449 §7.1: a DPoP challenge has the parameters of a Bearer one (RFC 6750 §3).
  const bearer = parseWwwAuthenticate(header).find((challenge) => challenge.scheme.toLowerCase() === scheme);
  if (bearer === undefined) return null;
  const result: BearerChallenge = {};
  const { realm, error, error_description: errorDescription, error_uri: errorUri, scope } = bearer.params;
  if (realm !== undefined) result.realm = realm;
  if (error !== undefined) result.error = error;
  if (errorDescription !== undefined) result.errorDescription = errorDescription;
  if (errorUri !== undefined) result.errorUri = errorUri;
  if (scope !== undefined) result.scope = scope;
  return result;
}
