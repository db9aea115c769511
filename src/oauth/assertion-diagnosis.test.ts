import { describe, expect, it } from 'vitest';
import {
  type AssertionFacts,
  assertionRefusalCauses,
  assertionRefusalHint,
  clockSkewSeconds,
  dpopRefusalHint,
  refusedDpopClaim,
} from './assertion-diagnosis.js';

const issuedAt = Date.parse('2026-03-01T10:00:00Z') / 1000;
const facts: AssertionFacts = {
  method: 'private_key_jwt',
  alg: 'ES256',
  kid: 'kid-1',
  audience: 'https://as.example.com/token',
  issuedAt,
  expiresAt: issuedAt + 60,
};
const receivedAt = issuedAt * 1000 + 200;

describe('why a provider refused an assertion', () => {
  it('measures the clock skew from the Date header', () => {
    expect(clockSkewSeconds('Sun, 01 Mar 2026 09:55:00 GMT', receivedAt)).toBe(300);
    expect(clockSkewSeconds('Sun, 01 Mar 2026 10:02:00 GMT', receivedAt)).toBe(-120);
    expect(clockSkewSeconds(null, receivedAt)).toBeNull();
    expect(clockSkewSeconds('yesterday', receivedAt)).toBeNull();
  });

  it('lists key, aud, clock and algorithm in that order when nothing is proven', () => {
    const causes = assertionRefusalCauses(facts, {
      receivedAt,
      providerDate: 'Sun, 01 Mar 2026 10:00:01 GMT',
      issuer: 'https://as.example.com',
    });
    expect(causes).toHaveLength(4);
    expect(causes[0]).toMatch(/^The key that signed \(kid kid-1, ES256\) is not the one the provider has/);
    expect(causes[1]).toContain('aud was https://as.example.com/token');
    expect(causes[1]).toContain('names the issuer https://as.example.com');
    expect(causes[2]).toBe('Clock skew is unlikely: the clocks agree to within a second (its Date header).');
    expect(causes[3]).toContain('may not allow ES256');
  });

  it('puts a measured skew first and says by how much', () => {
    const causes = assertionRefusalCauses(facts, {
      receivedAt,
      providerDate: 'Sun, 01 Mar 2026 09:55:00 GMT',
    });
    expect(causes[0]).toMatch(/^Clock skew: our clock is 300 seconds ahead of the provider's/);
    expect(causes[1]).toMatch(/^The key that signed/);
  });

  it('puts an algorithm the metadata does not list first', () => {
    const causes = assertionRefusalCauses(facts, { receivedAt, allowedAlgs: ['RS256', 'PS256'] });
    expect(causes[0]).toContain(
      'does not accept ES256 for client assertions (its metadata lists RS256, PS256)',
    );
    expect(causes[3]).toContain('could not be measured');
  });

  it('names the rotation and the JWKS URL when they matter', () => {
    const hint = assertionRefusalHint(facts, {
      receivedAt,
      retiringKid: 'old-kid',
      jwksUri: 'https://grantry.example.com/oauth/jwks/auth_1',
    });
    expect(hint).toMatch(/^Likely causes, in order: 1\. /);
    expect(hint).toContain('has not fetched the JWKS at https://grantry.example.com/oauth/jwks/auth_1');
    expect(hint).toContain('key old-kid is retiring');
  });

  it('client_secret_jwt blames the secret first', () => {
    const causes = assertionRefusalCauses(
      { ...facts, method: 'client_secret_jwt', alg: 'HS256' },
      { receivedAt },
    );
    expect(causes[0]).toContain('client secret is not the one the provider has');
  });
});

describe('which DPoP proof claim was refused', () => {
  it.each([
    ['DPoP proof htm mismatch', 'htm'],
    ['DPoP proof htu mismatch', 'htu'],
    ['DPoP proof iat is not recent enough', 'iat'],
    ['DPoP proof JWT Replay detected', 'jti'],
    ['DPoP proof ath mismatch', 'ath'],
    ['invalid nonce in DPoP proof', 'nonce'],
    ['invalid DPoP key binding', 'jwk'],
    ['something else', null],
  ])('%s → %s', (description, claim) => {
    expect(refusedDpopClaim(description)).toBe(claim);
  });

  it('says what was sent for the refused claim', () => {
    const sent = {
      htm: 'GET',
      htu: 'https://api.example.com/x',
      iat: issuedAt,
      ath: true,
      nonce: false,
      alg: 'ES256',
    };
    expect(dpopRefusalHint('htu', sent, { where: 'API', receivedAt })).toContain(
      "refused the DPoP proof's htu (https://api.example.com/x)",
    );
    expect(
      dpopRefusalHint('iat', sent, {
        where: 'token endpoint',
        receivedAt,
        providerDate: 'Sun, 01 Mar 2026 10:05:00 GMT',
      }),
    ).toContain('our clock is 300 seconds behind the provider');
  });
});
