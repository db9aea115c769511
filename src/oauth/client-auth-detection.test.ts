import { describe, expect, it } from 'vitest';
import { Problem } from '../problem.js';
import {
  clientAuthCandidates,
  isClientAuthRefusal,
  withClientAuthDetection,
} from './client-auth-detection.js';
import type { ClientAuthMethod } from './client-config.js';
import { diagnose } from './diagnosis.js';
import { OAuthError } from './oauth-error.js';

function invalidClient(): OAuthError {
  return new OAuthError('invalid_client', 'refused', {
    provider: { status: 401, error: 'invalid_client', errorDescription: 'client authentication failed' },
    facts: { reason: 'oauth_error' },
  });
}

function bare401(): OAuthError {
  return new OAuthError('token_fetch_failed', 'refused', {
    provider: { status: 401 },
    facts: { reason: 'empty' },
  });
}

describe('clientAuthCandidates', () => {
  it('tries only the configured method when one is configured', () => {
    expect(
      clientAuthCandidates('client_secret_post', 'client_secret_basic', ['client_secret_basic']),
    ).toEqual(['client_secret_post']);
  });

  it('auto without metadata: Basic (RFC 6749 §2.3.1 MUST), then the body', () => {
    expect(clientAuthCandidates('auto', null, null)).toEqual(['client_secret_basic', 'client_secret_post']);
    expect(clientAuthCandidates('auto', null, ['private_key_jwt'])).toEqual([
      'client_secret_basic',
      'client_secret_post',
    ]);
  });

  it('auto lets token_endpoint_auth_methods_supported decide when it names one of the two', () => {
    expect(clientAuthCandidates('auto', null, ['client_secret_post', 'private_key_jwt'])).toEqual([
      'client_secret_post',
    ]);
    expect(clientAuthCandidates('auto', null, ['client_secret_post', 'client_secret_basic'])).toEqual([
      'client_secret_basic',
      'client_secret_post',
    ]);
  });

  it('auto signs an HS256 assertion with the secret when the metadata lists only client_secret_jwt', () => {
    expect(clientAuthCandidates('auto', null, ['client_secret_jwt', 'private_key_jwt'])).toEqual([
      'client_secret_jwt',
    ]);
    expect(clientAuthCandidates('auto', 'client_secret_jwt', null)).toEqual([
      'client_secret_jwt',
      'client_secret_basic',
      'client_secret_post',
    ]);
  });

  it('auto with a detected method starts with it, and keeps the other as the one retry', () => {
    expect(clientAuthCandidates('auto', 'client_secret_post', ['client_secret_basic'])).toEqual([
      'client_secret_post',
      'client_secret_basic',
    ]);
  });
});

describe('isClientAuthRefusal', () => {
  it('is invalid_client, or a 401 without an OAuth error; nothing else', () => {
    expect(isClientAuthRefusal(invalidClient())).toBe(true);
    expect(isClientAuthRefusal(bare401())).toBe(true);
    const grant = new OAuthError('invalid_grant', 'x', {
      provider: { status: 400, error: 'invalid_grant' },
      facts: { reason: 'oauth_error' },
    });
    const html401 = new OAuthError('token_fetch_failed', 'x', {
      provider: { status: 401 },
      facts: { reason: 'html' },
    });
    const server = new OAuthError('token_fetch_failed', 'x', {
      provider: { status: 500 },
      facts: { reason: 'http_status' },
    });
    for (const other of [grant, html401, server, new Problem('token_fetch_failed', 'x'), new Error('x')]) {
      expect(isClientAuthRefusal(other)).toBe(false);
    }
  });
});

describe('withClientAuthDetection', () => {
  it('returns the first method that works, having tried the other only after a refusal of the client', async () => {
    const sent: ClientAuthMethod[] = [];
    const run = await withClientAuthDetection(
      ['client_secret_basic', 'client_secret_post'],
      async (method) => {
        sent.push(method);
        if (method === 'client_secret_basic') throw invalidClient();
        return 'token';
      },
    );
    expect(run).toEqual({ value: 'token', method: 'client_secret_post', tried: sent });
    expect(sent).toEqual(['client_secret_basic', 'client_secret_post']);
  });

  it('makes one request when the first method works', async () => {
    let calls = 0;
    const run = await withClientAuthDetection(['client_secret_basic', 'client_secret_post'], async () => {
      calls++;
      return 'token';
    });
    expect(calls).toBe(1);
    expect(run.method).toBe('client_secret_basic');
  });

  it('does not retry any other failure', async () => {
    let calls = 0;
    const failure = new OAuthError('invalid_grant', 'x', {
      provider: { status: 400, error: 'invalid_grant' },
      facts: { reason: 'oauth_error' },
    });
    await expect(
      withClientAuthDetection(['client_secret_basic', 'client_secret_post'], async () => {
        calls++;
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(calls).toBe(1);
  });

  it('when both are refused, the diagnosis says both were tried', async () => {
    let calls = 0;
    const error = await withClientAuthDetection(['client_secret_basic', 'client_secret_post'], async () => {
      calls++;
      throw invalidClient();
    }).catch((caught: unknown) => caught);
    expect(calls).toBe(2);
    expect((error as OAuthError).facts.clientAuthMethods).toEqual([
      'client_secret_basic',
      'client_secret_post',
    ]);
    const problem = diagnose(error, { clientAuthMethod: 'auto', step: 'token' });
    expect(problem.code).toBe('invalid_client');
    expect(problem.hint).toMatch(/both ways/);
    expect(problem.hint).toContain('client_secret_basic');
    expect(problem.hint).toContain('client_secret_post');
    expect(problem.hint).not.toMatch(/set the client authentication method/);
  });

  it('a 401 without a body for both methods says both were tried too', async () => {
    const error = await withClientAuthDetection(['client_secret_basic', 'client_secret_post'], async () => {
      throw bare401();
    }).catch((caught: unknown) => caught);
    const problem = diagnose(error, { clientAuthMethod: 'auto', step: 'token' });
    expect(problem.code).toBe('token_fetch_failed');
    expect(problem.hint).toMatch(/both ways \(client_secret_basic and client_secret_post\)/);
  });

  it('a single method refused (metadata decided) names it and does not suggest the other', async () => {
    const error = await withClientAuthDetection(['client_secret_post'], async () => {
      throw invalidClient();
    }).catch((caught: unknown) => caught);
    const problem = diagnose(error, { clientAuthMethod: 'auto', step: 'token' });
    expect(problem.hint).toMatch(/metadata lists only client_secret_post/);
  });
});
