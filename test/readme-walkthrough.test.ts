import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiFixture, startApiServer } from './support/api-server.js';
import { freePort, type GrantryHandle, startGrantry } from './support/grantry.js';
import { authorizeThroughDevInteractions, type OidcFixture, startOidcProvider } from './support/oidc.js';

/**
 * The README's walk-through, run as written: its shell blocks, in order, in one bash session, with
 * curl and jq, against a running Grantry, a real OAuth server (oidc-provider) and a real API. Only
 * the first block's `export` lines are replaced — by the same variables pointing at these servers.
 * If the README changes and a step stops working, this test says which block.
 */
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const SECTION = README.slice(
  README.indexOf('## A walk through the API'),
  README.indexOf('\n## ', README.indexOf('## A walk through the API') + 5),
);
const BLOCKS = [...SECTION.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);

function has(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const tools = has('curl') && has('jq') && has('bash');

/** A bash session fed block by block; each block's output is read up to a marker with its status. */
class Shell {
  readonly #child: ChildProcessWithoutNullStreams;
  #buffer = '';
  #errors = '';
  #count = 0;

  constructor(env: Record<string, string>) {
    this.#child = spawn('bash', ['--noprofile', '--norc'], { env: { PATH: process.env.PATH ?? '', ...env } });
    this.#child.stdout.on('data', (chunk: Buffer) => {
      this.#buffer += chunk.toString();
    });
    this.#child.stderr.on('data', (chunk: Buffer) => {
      this.#errors += chunk.toString();
    });
  }

  async run(script: string): Promise<string> {
    const marker = `__block_${++this.#count}_done__`;
    this.#child.stdin.write(`${script}\necho "${marker} $?"\n`);
    const deadline = Date.now() + 30_000;
    while (!this.#buffer.includes(marker)) {
      if (Date.now() > deadline)
        throw new Error(`block did not finish:\n${script}\nstderr:\n${this.#errors}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const at = this.#buffer.indexOf(marker);
    const output = this.#buffer.slice(0, at);
    this.#buffer = this.#buffer.slice(this.#buffer.indexOf('\n', at) + 1);
    return output;
  }

  close(): void {
    this.#child.stdin.end();
    this.#child.kill();
  }
}

describe.runIf(tools)('the README walk-through, run as written', () => {
  const CLIENT = { id: 'my-client', secret: 'my-secret' };
  const AUDIENCE = 'https://billing.example.com';
  let oidc: OidcFixture;
  let api: ApiFixture;
  let g: GrantryHandle;
  let shell: Shell;

  beforeAll(async () => {
    const port = await freePort();
    const publicUrl = `http://localhost:${port}`;
    oidc = await startOidcProvider({
      clients: [
        {
          client_id: CLIENT.id,
          client_secret: CLIENT.secret,
          grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: [`${publicUrl}/oauth/redirect`],
        },
      ],
      resources: { [AUDIENCE]: { scope: 'invoices:read' } },
    });
    api = await startApiServer({ verify: async (token) => (await oidc.verifyAccessToken(token)).active });
    g = await startGrantry({ port });
    shell = new Shell({
      G: publicUrl,
      KEY: g.apiKey,
      TOKEN_URL: oidc.tokenUrl,
      AUTHORIZATION_URL: oidc.authorizationUrl,
      CLIENT_ID: CLIENT.id,
      CLIENT_SECRET: CLIENT.secret,
      AUDIENCE,
      API: `${api.url}/v2`,
    });
  });
  afterAll(async () => {
    shell?.close();
    await g?.stop();
    await api?.close();
    await oidc?.close();
  });

  it('has the blocks this test knows, and its first block sets exactly the variables set here', () => {
    expect(BLOCKS).toHaveLength(9);
    const exported = [...(BLOCKS[0] ?? '').matchAll(/\b([A-Z_]+)=/g)].map((m) => m[1]).sort();
    expect(exported).toEqual(
      [
        'API',
        'AUDIENCE',
        'AUTHORIZATION_URL',
        'CLIENT_ID',
        'CLIENT_SECRET',
        'G',
        'H',
        'KEY',
        'TOKEN_URL',
      ].sort(),
    );
  });

  it('runs every step, in order, and each answers what the README says', async () => {
    const setup = (BLOCKS[0] ?? '').split('\n').filter((line) => !line.startsWith('export '));
    await shell.run(setup.join('\n'));

    const created = await shell.run(BLOCKS[1] ?? '');
    expect(created.trim()).toMatch(/^auth_\w+$/);

    const tested = JSON.parse(await shell.run(BLOCKS[2] ?? ''));
    expect(tested, JSON.stringify(tested)).toMatchObject({
      ok: true,
      token: { source: 'fetched', scope: 'invoices:read' },
    });

    await shell.run(BLOCKS[3] ?? '');
    expect((await shell.run('echo "$CON"')).trim()).toMatch(/^con_\w+$/);

    const called = (await shell.run(BLOCKS[4] ?? '')).trim().split('\n');
    expect(JSON.parse(called.slice(0, 5).join('\n'))).toEqual({
      status: 200,
      attempts: 1,
      tokenRefreshed: false,
    });
    const proxied = JSON.parse(called.slice(5).join('\n'));
    expect(proxied).toMatchObject({ method: 'GET', path: '/v2/invoices', query: { limit: '10' } });

    const retested = (await shell.run(BLOCKS[5] ?? '')).trim().split('\n');
    expect(retested[0]).toMatch(/^(fetched|refreshed)$/);
    expect(retested.slice(1)).toContain('token_invalidated');

    const link = (await shell.run(BLOCKS[6] ?? '')).trim();
    expect(link).toMatch(/^http:\/\/localhost:\d+\/oauth\/connect\/[\w-]+$/);
    // "open it in any browser": a browser of its own, with none of the shell's state.
    const opened = await fetch(link.replace(/^http:\/\/localhost:\d+/, g.url), { redirect: 'manual' });
    expect(opened.status).toBe(302);
    const cookie = opened.headers
      .getSetCookie()
      .map((line) => line.split(';')[0])
      .join('; ');
    const callback = await authorizeThroughDevInteractions(opened.headers.get('location') ?? '');
    const back = await fetch(`${g.url}${callback.pathname}${callback.search}`, { headers: { cookie } });
    expect(back.status).toBe(200);

    const connected = JSON.parse(await shell.run(BLOCKS[7] ?? ''));
    expect(connected).toEqual({ status: 'connected', refreshToken: true });

    const tuned = JSON.parse(await shell.run(BLOCKS[8] ?? ''));
    expect(tuned).toEqual({ clientAuthMethod: 'auto', detectedClientAuthMethod: null, keepAliveDays: 45 });
  });

  it('keeps its other blocks runnable: the key rotation uses a key file that exists', () => {
    const rotation = README.slice(README.indexOf('Key rotation without downtime'));
    expect(rotation).toContain('OLD=$(cat data/master.key)');
  });
});
