import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type App, createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

/** A free TCP port on loopback (the port is released before it is used; fine on one machine). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface ApiAnswer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface GrantryHandle {
  url: string;
  apiKey: string;
  dataDir: string;
  logFile: string;
  env: Record<string, string>;
  /** Calls the API with the key; JSON in, JSON (or text) out. */
  api<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiAnswer<T>>;
  stop(): Promise<void>;
}

export interface GrantryOptions {
  env?: Record<string, string>;
  dataDir?: string;
  masterKey?: string;
  apiKey?: string;
  port?: number;
  /** The token manager's clock (ms), for tests that move time forward (startGrantry only). */
  clock?: () => number;
}

function baseEnv(options: GrantryOptions, port: number, dataDir: string): Record<string, string> {
  return {
    GRANTRY_PORT: String(port),
    GRANTRY_HOST: '127.0.0.1',
    GRANTRY_PUBLIC_URL: `http://localhost:${port}`,
    GRANTRY_DATABASE_URL: `sqlite:${join(dataDir, 'grantry.db')}`,
    GRANTRY_MASTER_KEY: options.masterKey ?? randomBytes(32).toString('base64'),
    GRANTRY_API_KEY: options.apiKey ?? `grk_test_${randomBytes(16).toString('hex')}`,
    GRANTRY_ALLOW_HTTP: 'loopback',
    GRANTRY_LOG_LEVEL: 'debug',
    ...options.env,
  };
}

function client(url: string, apiKey: string): GrantryHandle['api'] {
  return async (method, path, body, headers = {}) => {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${apiKey}`, ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const response = await fetch(`${url}${path}`, init);
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {}
    return { status: response.status, headers: response.headers, body: parsed as never, text };
  };
}

/** Grantry in this process (createApp + listen), logging to a file the test can read. */
export async function startGrantry(options: GrantryOptions = {}): Promise<GrantryHandle & { app: App }> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'grantry-test-'));
  const port = options.port ?? (await freePort());
  const env = baseEnv(options, port, dataDir);
  const logFile = join(dataDir, `grantry-${port}.log`);
  const destination = pino.destination({ dest: logFile, sync: true });
  const config = loadConfig(env);
  const app = await createApp(config, {
    logger: createLogger(config.logLevel, destination),
    ...(options.clock !== undefined ? { clock: options.clock } : {}),
  });
  await app.listen();
  const url = `http://127.0.0.1:${port}`;
  return {
    app,
    url,
    apiKey: env.GRANTRY_API_KEY as string,
    dataDir,
    logFile,
    env,
    api: client(url, env.GRANTRY_API_KEY as string),
    async stop() {
      await app.close();
      destination.flushSync();
    },
  };
}

export interface SpawnedGrantry extends GrantryHandle {
  child: ChildProcess;
  output(): string;
  kill(signal?: NodeJS.Signals): void;
}

/** Grantry as a separate process (`grantry serve` from source), for restarts and multi-instance tests. */
export async function spawnGrantry(options: GrantryOptions = {}): Promise<SpawnedGrantry> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'grantry-test-'));
  const port = options.port ?? (await freePort());
  const env = baseEnv(options, port, dataDir);
  const logFile = join(dataDir, `grantry-${port}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, ['--import', 'tsx', join('src', 'cli', 'entry.ts'), 'serve'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    log.write(chunk);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    log.write(chunk);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Grantry exited with ${child.exitCode}:\n${output}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Grantry did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    url,
    apiKey: env.GRANTRY_API_KEY as string,
    dataDir,
    logFile,
    env,
    api: client(url, env.GRANTRY_API_KEY as string),
    output: () => output,
    kill: (signal = 'SIGKILL') => child.kill(signal),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      log.end();
    },
  };
}

/** Runs `grantry <args>` from source and returns its exit code and output. */
export async function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join('src', 'cli', 'entry.ts'), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
  return { code, stdout, stderr };
}

export function readText(path: string): string {
  return readFileSync(path).toString('latin1');
}
