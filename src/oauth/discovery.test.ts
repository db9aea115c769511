import { describe, expect, it } from 'vitest';
import { discoveryUrls, issuerCandidates } from './discovery.js';

describe('discoveryUrls', () => {
  it('for an issuer without a path: OIDC then RFC 8414 at the root', () => {
    expect(discoveryUrls('https://auth.example.com')).toEqual([
      { algorithm: 'oidc', url: 'https://auth.example.com/.well-known/openid-configuration' },
      { algorithm: 'oauth2', url: 'https://auth.example.com/.well-known/oauth-authorization-server' },
    ]);
  });

  it('for an issuer with a path: OIDC appends, RFC 8414 §3.1 inserts the well-known before the path', () => {
    expect(discoveryUrls('https://auth.example.com/realms/main/')).toEqual([
      { algorithm: 'oidc', url: 'https://auth.example.com/realms/main/.well-known/openid-configuration' },
      {
        algorithm: 'oauth2',
        url: 'https://auth.example.com/.well-known/oauth-authorization-server/realms/main',
      },
    ]);
  });
});

describe('issuerCandidates', () => {
  it('Keycloak realm, parent path and origin', () => {
    expect(
      issuerCandidates(new URL('https://kc.example.com/realms/main/protocol/openid-connect/token')),
    ).toEqual([
      'https://kc.example.com/realms/main',
      'https://kc.example.com/realms/main/protocol/openid-connect',
      'https://kc.example.com',
    ]);
  });

  it('Okta custom authorization server', () => {
    expect(issuerCandidates(new URL('https://x.okta.com/oauth2/default/v1/token'))[0]).toBe(
      'https://x.okta.com/oauth2/default',
    );
  });

  it('a token endpoint at the root path of the issuer', () => {
    expect(issuerCandidates(new URL('https://auth.example.com/token'))).toEqual(['https://auth.example.com']);
  });
});
