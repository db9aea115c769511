import { describe, expect, it } from 'vitest';
import { GOOGLE_TOKEN_URI, readServiceAccountJson } from './google-service-account.js';

const file = {
  type: 'service_account',
  project_id: 'demo-project',
  private_key_id: 'abc123',
  private_key: '-----BEGIN PRIVATE KEY-----\nMII…\n-----END PRIVATE KEY-----\n',
  client_email: 'reader@demo-project.iam.gserviceaccount.com',
  client_id: '1234567890',
  token_uri: 'https://oauth2.googleapis.com/token',
};

describe('Google service-account key files', () => {
  it('reads the email, key, key id and token URI', () => {
    expect(readServiceAccountJson(JSON.stringify(file))).toEqual({
      ok: true,
      account: {
        clientEmail: 'reader@demo-project.iam.gserviceaccount.com',
        privateKey: file.private_key,
        privateKeyId: 'abc123',
        tokenUri: 'https://oauth2.googleapis.com/token',
        projectId: 'demo-project',
      },
    });
    const { token_uri: _, ...withoutUri } = file;
    const reading = readServiceAccountJson(JSON.stringify(withoutUri));
    expect(reading.ok && reading.account.tokenUri).toBe(GOOGLE_TOKEN_URI);
  });

  it('names every problem without quoting the key', () => {
    expect(readServiceAccountJson('{not json')).toEqual({
      ok: false,
      errors: [{ path: '/serviceAccountJson', message: expect.stringContaining('is not JSON') }],
    });
    expect(readServiceAccountJson(JSON.stringify({ ...file, type: 'authorized_user' }))).toMatchObject({
      ok: false,
      errors: [{ message: expect.stringContaining('"authorized_user"') }],
    });
    const broken = readServiceAccountJson(
      JSON.stringify({ ...file, private_key: '', client_email: 'nope', token_uri: 'not a url' }),
    );
    expect(broken.ok).toBe(false);
    if (!broken.ok) {
      expect(broken.errors.map((e) => e.message)).toEqual([
        'has no "private_key"',
        'has a "token_uri" that is not a URL',
        'has a "client_email" that is not an email address',
      ]);
      expect(JSON.stringify(broken.errors)).not.toContain('BEGIN PRIVATE KEY');
    }
  });
});
