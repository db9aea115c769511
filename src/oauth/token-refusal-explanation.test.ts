import { describe, expect, it } from 'vitest';
import { diagnoseApiResponse } from './diagnosis.js';
import { explainRefusedToken, explainWithAccessToken } from './token-refusal-explanation.js';

const NOW = 1_800_000_000_000;
const SECONDS = NOW / 1000;

function jwt(payload: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'at+jwt' })}.${part({
    sub: 'canary-sub-5b1e',
    email: 'canary-5b1e@example.test',
    name: 'Canary Person',
    exp: SECONDS + 3600,
    iat: SECONDS - 10,
    ...payload,
  })}.c2lnbmF0dXJl`;
}

describe('explainRefusedToken', () => {
  const base = { status: 401, error: 'invalid_token', now: NOW, baseUrl: 'https://api.example.test/v2' };

  it('names the audience the token was issued for when it is not the API being called', () => {
    const [finding] = explainRefusedToken({ audiences: ['https://other.example.test'] }, base);
    expect(finding).toBe(
      `The token was issued for audience "https://other.example.test"; this API (https://api.example.test/v2) refused it as invalid_token — set Audience to the API's identifier (the provider's name for this API), so the token is issued for it.`,
    );
  });

  it('says when the provider ignored the configured Audience', () => {
    const [finding] = explainRefusedToken(
      { audiences: ['https://default.example.test'] },
      { ...base, audience: 'https://api.example.test' },
    );
    expect(finding).toMatch(/not for the configured Audience "https:\/\/api\.example\.test"/);
  });

  it('says nothing about an audience that names the API (its origin, or a URL above the base URL)', () => {
    for (const aud of [
      'https://api.example.test',
      'https://api.example.test/',
      'https://api.example.test/v2',
    ]) {
      expect(explainRefusedToken({ audiences: [aud] }, base)).toEqual([]);
    }
  });

  it('names the scope the API needs and the token lacks, and whether Scope already asks for it', () => {
    const forbidden = { status: 403, error: 'insufficient_scope', requiredScope: 'write', now: NOW };
    expect(explainRefusedToken({ scopes: ['read'] }, { ...forbidden, scope: 'read' })).toEqual([
      'The token carries scope "read"; the API needs "write" (insufficient_scope): add "write" to the authentication\'s Scope, and make sure the provider grants it to this client.',
    ]);
    expect(explainRefusedToken({ scopes: ['read'] }, { ...forbidden, scope: 'read write' })[0]).toMatch(
      /Scope already asks for it, so the provider did not grant it/,
    );
    expect(explainRefusedToken({ scopes: ['read', 'write'] }, forbidden)).toEqual([]);
  });

  it('names a scope asked for but not granted, on a 403 that does not say which one it needs', () => {
    const [finding] = explainRefusedToken(
      { scopes: ['read'] },
      { status: 403, now: NOW, scope: 'read admin' },
    );
    expect(finding).toMatch(/the provider did not grant "admin"/);
  });

  it('compares exp, nbf and iat with the clock, with a minute of skew', () => {
    expect(explainRefusedToken({ expiresAt: SECONDS - 30 }, base)[0]).toMatch(/expired at .*30 s before/);
    expect(explainRefusedToken({ expiresAt: SECONDS + 20 }, base)[0]).toMatch(/only 20 s from now/);
    expect(explainRefusedToken({ expiresAt: SECONDS + 600 }, base)).toEqual([]);
    expect(explainRefusedToken({ notBefore: SECONDS + 90 }, base)[0]).toMatch(
      /not valid before .*90 s from now/,
    );
    expect(explainRefusedToken({ issuedAt: SECONDS + 120 }, base)[0]).toMatch(/issued at .*ahead/);
    expect(explainRefusedToken({ issuedAt: SECONDS + 30 }, base)).toEqual([]);
  });
});

describe('explainWithAccessToken', () => {
  const context = { step: 'api' as const, baseUrl: 'https://api.example.test', scope: 'read' };

  it('rewords the hint with what the JWT says, and never with the token or a personal claim', () => {
    const token = jwt({ aud: 'https://other.example.test', scope: 'read' });
    const diagnosis = diagnoseApiResponse(401, 'Bearer error="invalid_token"', context);
    const problem = explainWithAccessToken(diagnosis!, token, context, NOW);
    expect(problem.code).toBe('upstream_unauthorized');
    expect(problem.hint).toMatch(/issued for audience "https:\/\/other\.example\.test"/);
    expect(problem.provider).toEqual(diagnosis!.provider);
    const shown = JSON.stringify(problem.toJSON());
    for (const secret of [token, token.split('.')[1] as string, 'canary', 'Canary']) {
      expect(shown).not.toContain(secret);
    }
  });

  it('keeps the pause of forced refreshes in the hint', () => {
    const paused = { ...context, tokenRefreshPausedUntil: NOW + 60_000 };
    const diagnosis = diagnoseApiResponse(401, 'Bearer error="invalid_token"', paused);
    const problem = explainWithAccessToken(diagnosis!, jwt({ aud: 'x' }), paused, NOW);
    expect(problem.hint).toMatch(/not fetching new tokens for this authentication until/);
  });

  it('leaves an opaque token, and a JWT that explains nothing, with the diagnosis as it was', () => {
    const diagnosis = diagnoseApiResponse(401, 'Bearer error="invalid_token"', context)!;
    expect(explainWithAccessToken(diagnosis, 'opaque-token', context, NOW)).toBe(diagnosis);
    expect(
      explainWithAccessToken(
        diagnosis,
        jwt({ aud: 'https://api.example.test', scope: 'read' }),
        context,
        NOW,
      ),
    ).toBe(diagnosis);
  });
});
