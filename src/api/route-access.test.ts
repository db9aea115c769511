import { describe, expect, it } from 'vitest';
import { canonicalPath, isPublicRoute, looksProtected, scopeAllows } from './route-access.js';

describe('route access', () => {
  it('public routes are the short list only; HEAD is GET', () => {
    expect(isPublicRoute('GET', '/healthz')).toBe(true);
    expect(isPublicRoute('HEAD', '/healthz')).toBe(true);
    expect(isPublicRoute('GET', '/oauth/redirect')).toBe(true);
    expect(isPublicRoute('GET', '/oauth/jwks/:id')).toBe(true);
    expect(isPublicRoute('POST', '/oauth/jwks/:id')).toBe(false);
    // docs/api.md: the published JWKS, GET only; the API-key route beside it stays protected.
    expect(isPublicRoute('GET', '/jwks/:id.json')).toBe(true);
    expect(isPublicRoute('HEAD', '/jwks/:id.json')).toBe(true);
    expect(isPublicRoute('POST', '/jwks/:id.json')).toBe(false);
    expect(isPublicRoute('GET', '/api/authentications/:id/jwks')).toBe(false);
    expect(isPublicRoute('POST', '/api/authentications/:id/rotate-key')).toBe(false);
    expect(isPublicRoute('GET', '/docs')).toBe(true);
    expect(isPublicRoute('HEAD', '/docs/:asset')).toBe(true);
    expect(isPublicRoute('POST', '/docs')).toBe(false);
    expect(isPublicRoute('POST', '/healthz')).toBe(false);
    expect(isPublicRoute('GET', '/api/authentications')).toBe(false);
    expect(isPublicRoute('GET', '/metrics')).toBe(false);
  });

  it('admin may do everything; runtime and metrics only what they name', () => {
    expect(scopeAllows('admin', 'admin')).toBe(true);
    expect(scopeAllows('admin', 'metrics')).toBe(true);
    expect(scopeAllows('runtime', 'runtime')).toBe(true);
    expect(scopeAllows('runtime', 'admin')).toBe(false);
    expect(scopeAllows('runtime', 'metrics')).toBe(false);
    expect(scopeAllows('metrics', 'runtime')).toBe(false);
  });

  it.each([
    ['/%61pi/authentications', '/api/authentications'],
    ['/%2561pi/x', '/api/x'],
    ['http://h:1/API//x/../y?q#f', '/api/y'],
    ['/.\\api;p=1/x', '/api/x'],
    ['/metrics#x', '/metrics'],
    ['/%6detrics%23frag', '/metrics'],
    ['/api%3Fx', '/api'],
    ['/proxy/%2e%2e/%2e/api', '/api'],
  ])('reads %s as %s', (raw, canonical) => {
    expect(canonicalPath(raw)).toBe(canonical);
  });

  it('looksProtected names /api, /proxy and /metrics at a segment boundary only', () => {
    expect(looksProtected('/API')).toBe(true);
    expect(looksProtected('//proxy/con_1/x')).toBe(true);
    expect(looksProtected('/apis')).toBe(false);
    expect(looksProtected('/security/authorization')).toBe(false);
  });
});
