import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../src/app.js';
import { type ChildServer, startChild } from './child-process.js';
import { loadGrantry } from './grantry-build.js';

/** The one OAuth client registered at the suite's oidc-provider. */
export const BENCH_CLIENT = { id: 'grantry-bench', secret: 'bench-client-secret-not-a-real-one' };

export interface OidcInfo {
  issuer: string;
  tokenUrl: string;
}

export type OidcServer = ChildServer<OidcInfo> & { tokenRequests(): Promise<number> };

export async function startOidc(): Promise<OidcServer> {
  const child = await startChild<OidcInfo>('servers/oidc.ts');
  return Object.assign(child, { tokenRequests: () => child.ask<number>('tokenRequests') });
}

/** The upstream API: HTTPS with the test CA, or plain HTTP on loopback. */
export function startUpstream(scheme: 'https' | 'http'): Promise<ChildServer<{ url: string }>> {
  return startChild<{ url: string }>('servers/upstream.ts', { args: scheme === 'http' ? ['--http'] : [] });
}

/** The body of `POST /api/authentications` for the bench client. */
export function authenticationBody(tokenUrl: string, name: string): Record<string, unknown> {
  return {
    name,
    type: 'oauth2',
    grantType: 'client_credentials',
    tokenUrl,
    clientId: BENCH_CLIENT.id,
    clientSecret: BENCH_CLIENT.secret,
  };
}

/** The environment of a Grantry instance of the suite (plain http to loopback allowed, quiet log). */
export function grantryEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    GRANTRY_PORT: '0',
    GRANTRY_HOST: '127.0.0.1',
    GRANTRY_DATABASE_URL: `sqlite:${join(dataDir, 'grantry.db')}`,
    GRANTRY_MASTER_KEY: randomBytes(32).toString('base64'),
    GRANTRY_API_KEY: `grk_bench_${randomBytes(16).toString('hex')}`,
    GRANTRY_ALLOW_HTTP: 'loopback',
    GRANTRY_LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** The management API of a Grantry listening at `url`, JSON in and out; a status ≥ 400 throws. */
export function managementApi(url: string, apiKey: string) {
  return async <T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T> => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (response.status >= 400) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return (text === '' ? null : JSON.parse(text)) as T;
  };
}

export interface InProcessGrantry {
  app: App;
  apiKey: string;
  /** Closes the app and removes its data folder. */
  close(): Promise<void>;
  /** Calls the management API in process (Fastify inject), JSON in and out. */
  api<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown): Promise<T>;
}

/**
 * Grantry built by its composition root (of the build in dist/, see grantry-build.ts) in this
 * process, on a SQLite file in a temp folder.
 */
export async function startInProcessGrantry(extra: Record<string, string> = {}): Promise<InProcessGrantry> {
  const dataDir = mkdtempSync(join(tmpdir(), 'grantry-bench-'));
  const env = grantryEnv(dataDir, extra);
  const { createApp, loadConfig } = await loadGrantry();
  const app = await createApp(loadConfig(env), { printBootstrapKey: false });
  const apiKey = env.GRANTRY_API_KEY as string;
  return {
    app,
    apiKey,
    async close() {
      await app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
    async api<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) {
      const response = await app.server.inject({
        method,
        url,
        headers: { authorization: `Bearer ${apiKey}` },
        ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
      });
      if (response.statusCode >= 400) {
        throw new Error(`${method} ${url} answered ${response.statusCode}: ${response.body}`);
      }
      return response.json() as T;
    },
  };
}
