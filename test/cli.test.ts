import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApiKey } from '../src/services/api-keys.js';
import { openStore } from '../src/store/open-store.js';
import { runCli, spawnGrantry } from './support/grantry.js';

const newKey = () => randomBytes(32).toString('base64');

describe('grantry command', () => {
  it('creates, lists and revokes API keys; a revoked key is refused', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'grantry-cli-'));
    const env = { GRANTRY_DATABASE_URL: `sqlite:${join(dataDir, 'g.db')}`, GRANTRY_MASTER_KEY: newKey() };
    const created = await runCli(['api-keys', 'create', '--name', 'ci'], env);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^grk_/);
    const id = /Created (key_\w+)/.exec(created.stderr)?.[1];
    expect(id).toBeDefined();

    const list = await runCli(['api-keys', 'list'], env);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toContain('ci');
    expect(list.stdout).not.toContain(key);

    const server = await spawnGrantry({
      dataDir,
      masterKey: env.GRANTRY_MASTER_KEY,
      env: { GRANTRY_DATABASE_URL: env.GRANTRY_DATABASE_URL },
    });
    try {
      const ok = await fetch(`${server.url}/api/connectors`, { headers: { authorization: `Bearer ${key}` } });
      expect(ok.status).toBe(200);
    } finally {
      await server.stop();
    }
    expect((await runCli(['api-keys', 'revoke', id!], env)).code).toBe(0);
    const again = await spawnGrantry({
      dataDir,
      masterKey: env.GRANTRY_MASTER_KEY,
      env: { GRANTRY_DATABASE_URL: env.GRANTRY_DATABASE_URL },
    });
    try {
      const refused = await fetch(`${again.url}/api/connectors`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(refused.status).toBe(401);
    } finally {
      await again.stop();
    }
  });

  it('makes keys of a scope, lists them with a header, and names a wrong scope or command (exit 2)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'grantry-cli-'));
    const env = { GRANTRY_DATABASE_URL: `sqlite:${join(dataDir, 'g.db')}`, GRANTRY_MASTER_KEY: newKey() };
    const runtime = await runCli(['api-keys', 'create', '--name', 'rules-engine', '--scope', 'runtime'], env);
    expect(runtime.code).toBe(0);
    expect(runtime.stderr).toContain('scope runtime');
    const metrics = await runCli(['api-keys', 'create', '--name', 'prometheus', '--scope', 'metrics'], env);
    expect(metrics.code).toBe(0);
    const wrong = await runCli(['api-keys', 'create', '--scope', 'root'], env);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('--scope must be one of admin, runtime, metrics (got "root")');

    const list = await runCli(['api-keys', 'list'], env);
    const [header, ...rows] = list.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+PREFIX\s+NAME\s+SCOPE\s+CREATED\s+LAST USED\s+STATE$/);
    expect(rows.find((r) => r.includes('rules-engine'))).toMatch(
      /runtime\s+\d{4}-\d\d-\d\dT[\d:]+Z\s+never\s+active/,
    );
    expect(rows.find((r) => r.includes('prometheus'))).toMatch(/\smetrics\s/);
    expect(list.stdout).not.toContain(runtime.stdout.trim());

    const unknown = await runCli(['api-key', 'list'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "api-key list"');
  });

  it('answers a mistyped option or a missing id with one line of usage and exit 2, never a stack trace', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'grantry-cli-'));
    const env = { GRANTRY_DATABASE_URL: `sqlite:${join(dataDir, 'g.db')}`, GRANTRY_MASTER_KEY: newKey() };
    const cases: [string[], RegExp][] = [
      [
        ['api-keys', 'create', '--nmae', 'x'],
        /^grantry: Unknown option '--nmae'.*Usage: grantry api-keys create/,
      ],
      [['api-keys', 'create', '--name'], /^grantry: .*--name.*Usage: grantry api-keys create/],
      [['api-keys', 'list', '--json'], /^grantry: Unknown option '--json'.*Usage: grantry api-keys list/],
      [['api-keys', 'revoke'], /^grantry: api-keys revoke needs the id of the key to revoke\. Usage:/],
      [['api-keys', 'revoke', 'key_a', 'key_b'], /^grantry: unexpected argument "key_b"/],
      [['migrate', '--force'], /^grantry: Unknown option '--force'.*Usage: grantry migrate/],
      [['--verbose', 'migrate'], /^grantry: unknown option "--verbose"\. Usage: grantry <command>/],
      [['api-keys', 'create', '--name', '   '], /^grantry: --name must contain a visible character/],
      [
        ['api-keys', 'create', '--name', 'a\u001b[2Jb'],
        /^grantry: --name must not contain control characters/,
      ],
    ];
    for (const [args, expected] of cases) {
      const answer = await runCli(args, env);
      expect(answer.code, args.join(' ')).toBe(2);
      expect(answer.stderr, args.join(' ')).toMatch(expected);
      expect(answer.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(answer.stderr).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
    }
  });

  it('escapes control characters of stored names instead of sending them to the terminal', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'grantry-cli-'));
    const env = { GRANTRY_DATABASE_URL: `sqlite:${join(dataDir, 'g.db')}`, GRANTRY_MASTER_KEY: newKey() };
    // Written past the CLI's own check, as an older version or another tool might have.
    const store = await openStore(env.GRANTRY_DATABASE_URL);
    try {
      await store.migrate();
      await createApiKey(store, 'evil\u001b]52;c;cGF5bG9hZA==\u0007\u001b[2J\u202ename', 'runtime');
    } finally {
      await store.close();
    }
    const list = await runCli(['api-keys', 'list'], env);
    expect(list.code).toBe(0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character but the line break may reach the terminal.
    expect(list.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f\u202e]/);
    expect(list.stdout).toContain('evil\\u{1b}]52;c;cGF5bG9hZA==\\u{7}\\u{1b}[2J\\u{202e}name');
  });

  it('rotates the master key: re-encrypts every secret, then runs on the new key alone', async () => {
    const oldKey = newKey();
    const first = await spawnGrantry({ masterKey: oldKey });
    const created = await first.api('POST', '/api/authentications', {
      name: 'rotating',
      type: 'oauth2',
      grantType: 'password',
      tokenUrl: 'https://login.example.test/token',
      clientId: 'c',
      clientSecret: 'rotate-me',
      username: 'u',
      password: 'p',
    });
    expect(created.status).toBe(201);
    // A key Grantry made (docs/keys.md) is a secret like any other: sealed with the others, in one value.
    const keyed = await first.api('POST', '/api/authentications', {
      name: 'rotating keys',
      type: 'oauth2',
      grantType: 'client_credentials',
      tokenUrl: 'https://login.example.test/token',
      clientId: 'k',
      clientAuthMethod: 'private_key_jwt',
      generateKey: true,
      dpop: true,
    });
    expect(keyed.status, keyed.text).toBe(201);
    await first.stop();
    const env = { GRANTRY_DATABASE_URL: first.env.GRANTRY_DATABASE_URL as string };

    const rotatedKey = newKey();
    const rotate = await runCli(['keys', 'rotate'], {
      ...env,
      GRANTRY_MASTER_KEY: rotatedKey,
      GRANTRY_PREVIOUS_MASTER_KEYS: oldKey,
    });
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(rotate.stdout).toMatch(/Re-encrypted 3 value/);

    const second = await spawnGrantry({
      dataDir: first.dataDir,
      masterKey: rotatedKey,
      apiKey: first.apiKey,
    });
    try {
      const view = await second.api('GET', `/api/authentications/${created.body.id}`);
      expect(view.body).toMatchObject({ clientSecretSet: true, passwordSet: true });
      // The secrets decrypt under the new key alone: a token request is attempted (and fails on DNS), not a key error.
      const test = await second.api('POST', `/api/authentications/${created.body.id}/test`);
      expect(test.body.error.code).not.toBe('wrong_master_key');
      const keys = await second.api('GET', `/api/authentications/${keyed.body.id}`);
      expect(keys.body.keys.map((k: { kid: string }) => k.kid)).toEqual(
        keyed.body.keys.map((k: { kid: string }) => k.kid),
      );
      expect(keys.body.dpopKey.jkt).toBe(keyed.body.dpopKey.jkt);
      const signed = await second.api('POST', `/api/authentications/${keyed.body.id}/test`);
      expect(signed.body.error.code).not.toBe('wrong_master_key');
    } finally {
      await second.stop();
    }
    await expect(
      spawnGrantry({ dataDir: first.dataDir, masterKey: oldKey, apiKey: first.apiKey }),
    ).rejects.toThrow(/master key/i);
  });

  it('creates a key file with mode 0600 when no master key is configured, and prints the first API key once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'grantry-cli-'));
    const server = await spawnGrantry({
      dataDir,
      env: { GRANTRY_MASTER_KEY: '', GRANTRY_API_KEY: '' },
    });
    try {
      expect(statSync(join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
      const key = /\n {2}(grk_\S+)\n/.exec(server.output())?.[1];
      expect(key).toBeDefined();
      expect(server.output()).toMatch(/GRANTRY_MASTER_KEY is not set/);
      const ok = await fetch(`${server.url}/api/connectors`, { headers: { authorization: `Bearer ${key}` } });
      expect(ok.status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it('refuses to start in production without a master key, and names the variable', async () => {
    const result = await runCli(['serve'], {
      NODE_ENV: 'production',
      GRANTRY_MASTER_KEY: '',
      GRANTRY_DATABASE_URL: 'sqlite::memory:',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/GRANTRY_MASTER_KEY is required/);
  });
});
