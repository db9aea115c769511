import { generateKeyPairSync } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { pki } from 'node-forge';
import * as oauth from 'oauth4webapi';
import { request as undiciRequest } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EgressPolicy } from './address-policy.js';
import {
  type AddressResolver,
  classifyNetworkError,
  createPolicyConnector,
  createPolicyLookup,
  Egress,
  type EgressOptions,
  type EgressResponse,
  isRedirect,
  redirectTarget,
} from './egress.js';
import { EgressError } from './egress-error.js';

// node-forge is CommonJS with a dynamically built export object, so ESM named imports do not see it.
const forge = createRequire(import.meta.url)('node-forge') as typeof import('node-forge');

const BIG_BODY_BYTES = 2 * 1024 * 1024;
const SECRET = 'do-not-show-this-value';

/** A loopback HTTP server that counts what reaches it. */
interface CountingServer {
  server: Server | HttpsServer;
  port: number;
  connections: number;
  requests: string[];
  reset(): void;
}

function listen(server: Server | HttpsServer): Promise<CountingServer> {
  const counting: CountingServer = {
    server,
    port: 0,
    connections: 0,
    requests: [],
    reset() {
      this.connections = 0;
      this.requests.length = 0;
    },
  };
  server.on('connection', () => {
    counting.connections += 1;
  });
  server.on('request', (req: IncomingMessage) => {
    counting.requests.push(req.url ?? '');
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      counting.port = (server.address() as AddressInfo).port;
      resolve(counting);
    });
  });
}

function route(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/hello':
      res.end('hello');
      return;
    case '/echo': {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        res.setHeader('x-method', req.method ?? '');
        res.setHeader('x-authorization', req.headers.authorization ?? '');
        res.end(Buffer.concat(chunks));
      });
      return;
    }
    case '/.well-known/oauth-authorization-server': {
      const issuer = `http://${req.headers.host}`;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer, token_endpoint: `${issuer}/token` }));
      return;
    }
    case '/redirect':
      res.writeHead(302, { location: '/hello' });
      res.end('moved');
      return;
    case '/big': {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const write = (): void => {
        while (sent < BIG_BODY_BYTES) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', write);
            return;
          }
        }
        res.end();
      };
      write();
      return;
    }
    case '/big-declared':
      res.writeHead(200, { 'content-length': String(BIG_BODY_BYTES) });
      res.write('x');
      return; // never finishes: the client must not wait for it
    case '/never':
      return; // never answers
    case '/headers-then-silence':
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      return;
    case '/drop':
      req.socket.destroy();
      return;
    default:
      res.writeHead(404);
      res.end();
  }
}

function selfSignedCertificate(): { cert: string; key: string } {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  const forgeKey = forge.pki.privateKeyFromPem(privateKey) as pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e);
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const subject = [{ name: 'commonName', value: 'localhost' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    {
      name: 'subjectAltName',
      altNames: [
        { type: 2, value: 'localhost' },
        { type: 7, ip: '127.0.0.1' },
      ],
    },
  ]);
  cert.sign(forgeKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey };
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function egressFailure(promise: Promise<unknown>): Promise<EgressError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(EgressError);
  return err as EgressError;
}

/** A resolver answering from a fixed table, so no query leaves the machine. */
/** The whole body of a response, a failure to read it classified as egress failures are. */
async function bodyOf(response: EgressResponse): Promise<Buffer> {
  try {
    return Buffer.from(await response.body.arrayBuffer());
  } catch (error) {
    throw classifyNetworkError(error, response.host);
  }
}

function fixedResolver(table: Record<string, string[]>): AddressResolver {
  return (hostname, _options, callback) => {
    const addresses = table[hostname];
    if (addresses === undefined) {
      const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      err.code = 'ENOTFOUND';
      process.nextTick(() => callback(err, []));
      return;
    }
    const entries = addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    process.nextTick(() => callback(null, entries));
  };
}

let http: CountingServer;
let https: CountingServer;
const clients: Egress[] = [];

function egress(options: Partial<EgressOptions> = {}): Egress {
  const client = new Egress({ mode: 'default', allowHttp: 'loopback', ...options });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  http = await listen(createServer(route));
  https = await listen(createHttpsServer(selfSignedCertificate(), route));
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.dispatcher.destroy()));
  http.server.closeAllConnections();
  https.server.closeAllConnections();
  http.reset();
  https.reset();
});

afterAll(async () => {
  await new Promise((resolve) => http.server.close(resolve));
  await new Promise((resolve) => https.server.close(resolve));
});

describe('checkUrl', () => {
  const loopbackHttp = new Egress({ mode: 'default', allowHttp: 'loopback' });
  const httpsOnly = new Egress({ mode: 'default', allowHttp: 'off' });
  afterAll(async () => {
    await loopbackHttp.close();
    await httpsOnly.close();
  });

  it.each([
    'https://api.example.com/v1',
    'https://127.0.0.1:8443/',
    'https://[::1]/',
    'HTTPS://API.EXAMPLE.COM',
  ])('accepts https: %s', (url) => {
    expect(httpsOnly.checkUrl(url).protocol).toBe('https:');
    expect(loopbackHttp.checkUrl(url).protocol).toBe('https:');
  });

  it.each([
    'http://127.0.0.1:8080/token',
    'http://127.8.9.10/',
    'http://[::1]:3000/',
    'http://localhost:3000/',
    'http://LOCALHOST/',
  ])('accepts http to loopback only when allowHttp is loopback: %s', (url) => {
    expect(loopbackHttp.checkUrl(url).protocol).toBe('http:');
    expect(() => httpsOnly.checkUrl(url)).toThrow(EgressError);
  });

  it.each([
    'http://api.example.com/',
    'http://10.0.0.1/',
    'http://128.0.0.1/',
    'http://localhost.example.com/',
    'http://127.0.0.1.nip.io/',
    'http://[::2]/',
    'ftp://127.0.0.1/',
    'file:///etc/passwd',
    'ws://127.0.0.1/',
    'javascript:alert(1)',
    'data:text/plain,hello',
    '/relative/path',
    'not a url',
    '',
  ])('refuses %s with kind insecure_url', (url) => {
    for (const client of [loopbackHttp, httpsOnly]) {
      try {
        client.checkUrl(url);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(EgressError);
        expect((err as EgressError).kind).toBe('insecure_url');
      }
    }
  });

  it('returns the URL object it was given (no re-parsing)', () => {
    const url = new URL('https://api.example.com/v1?x=1');
    expect(httpsOnly.checkUrl(url)).toBe(url);
  });

  it('never puts the query string or path into the message', () => {
    try {
      httpsOnly.checkUrl(`http://api.example.com/secret-path?token=${SECRET}`);
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain(SECRET);
      expect((err as Error).message).not.toContain('secret-path');
      expect((err as EgressError).host).toBe('api.example.com');
    }
  });

  it('is applied by request and fetch before anything is sent', async () => {
    const client = egress({ allowHttp: 'off' });
    const url = `http://127.0.0.1:${http.port}/hello`;
    expect((await egressFailure(client.request({ url, method: 'GET' }))).kind).toBe('insecure_url');
    expect((await egressFailure(client.fetch(url))).kind).toBe('insecure_url');
    expect((await egressFailure(client.fetch(new Request(url)))).kind).toBe('insecure_url');
    expect(http.connections).toBe(0);
  });
});

describe('createPolicyLookup', () => {
  function lookupWith(
    mode: 'default' | 'strict',
    resolver: AddressResolver,
    all: boolean,
  ): Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number }> {
    const lookup = createPolicyLookup(new EgressPolicy(mode), resolver);
    return new Promise((resolve) => {
      lookup('api.test', all ? { all: true } : {}, (err, address, family) => {
        resolve(family === undefined ? { err, address } : { err, address, family });
      });
    });
  }

  it.each([
    [['169.254.169.254'], 'metadata'],
    [['100.100.100.200'], 'Alibaba'],
    [['fd00:ec2::254'], 'metadata'],
    [['::ffff:169.254.169.254'], 'IPv4-mapped'],
    [['64:ff9b::a9fe:a9fe'], 'NAT64'],
    [['fe80::1'], 'link-local'],
    [['0.0.0.0'], 'unspecified'],
    [['93.184.216.34', '169.254.169.254'], 'metadata'],
    [['2606:4700::1', 'fe80::1'], 'link-local'],
  ])('refuses a name resolving to %j (never connects)', async (addresses, reasonWord) => {
    for (const all of [true, false]) {
      const { err } = await lookupWith('default', fixedResolver({ 'api.test': addresses }), all);
      expect(err).toBeInstanceOf(EgressError);
      expect((err as EgressError).kind).toBe('denied');
      expect((err as EgressError).message).toContain(reasonWord);
      expect((err as EgressError).message).toContain('api.test');
    }
  });

  it('returns every address when asked for all, the first one otherwise', async () => {
    const resolver = fixedResolver({ 'api.test': ['93.184.216.34', '2606:2800:220:1::1'] });
    const all = await lookupWith('strict', resolver, true);
    expect(all.err).toBeNull();
    expect(all.address).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
    const one = await lookupWith('strict', resolver, false);
    expect(one).toEqual({ err: null, address: '93.184.216.34', family: 4 });
  });

  it('allows loopback in default mode and refuses it in strict mode', async () => {
    const resolver = fixedResolver({ 'api.test': ['127.0.0.1'] });
    expect((await lookupWith('default', resolver, true)).err).toBeNull();
    const strict = await lookupWith('strict', resolver, true);
    expect((strict.err as EgressError).kind).toBe('denied');
    expect(
      (await lookupWith('strict', fixedResolver({ 'api.test': ['10.1.2.3'] }), false)).err,
    ).toBeInstanceOf(EgressError);
  });

  it('passes resolver failures through and treats an empty answer as not found', async () => {
    const failed = await lookupWith('default', fixedResolver({}), true);
    expect(failed.err?.code).toBe('ENOTFOUND');
    const empty = await lookupWith('default', fixedResolver({ 'api.test': [] }), true);
    expect(empty.err?.code).toBe('ENOTFOUND');
  });

  it('asks the resolver for every address of the family the socket wants', async () => {
    const seen: unknown[] = [];
    const resolver: AddressResolver = (_hostname, options, callback) => {
      seen.push(options);
      callback(null, [{ address: '93.184.216.34', family: 4 }]);
    };
    const lookup = createPolicyLookup(new EgressPolicy('default'), resolver);
    await new Promise<void>((resolve) => lookup('api.test', { family: 'IPv4', hints: 32 }, () => resolve()));
    await new Promise<void>((resolve) => lookup('api.test', { family: 6, all: true }, () => resolve()));
    expect(seen).toEqual([
      { all: true, family: 4, hints: 32 },
      { all: true, family: 6 },
    ]);
  });
});

describe('createPolicyConnector', () => {
  function connectTo(mode: 'default' | 'strict', hostname: string, port: number, resolver?: AddressResolver) {
    const connect = createPolicyConnector({
      policy: new EgressPolicy(mode),
      allowHttp: 'loopback',
      connectTimeoutMs: 5_000,
      resolver: resolver ?? fixedResolver({}),
    });
    return new Promise<{ err: Error | null }>((resolve) => {
      connect(
        { hostname, host: `${hostname}:${port}`, protocol: 'http:', port: String(port) },
        (err, socket) => {
          socket?.destroy();
          resolve({ err });
        },
      );
    });
  }

  it('refuses a literal address before connecting', async () => {
    // 0.0.0.0 is refused in both modes; were the check missing, Linux would route it to loopback.
    const { err } = await connectTo('default', '0.0.0.0', http.port);
    expect((err as EgressError).kind).toBe('denied');
    const strict = await connectTo('strict', '127.0.0.1', http.port);
    expect((strict.err as EgressError).kind).toBe('denied');
    expect(http.connections).toBe(0);
  });

  it('checks the addresses a name resolves to (a rebinding resolver gains nothing)', async () => {
    const { err } = await connectTo(
      'strict',
      'rebind.test',
      http.port,
      fixedResolver({ 'rebind.test': ['127.0.0.1'] }),
    );
    expect((err as EgressError).kind).toBe('denied');
    expect(http.connections).toBe(0);
    const allowed = await connectTo(
      'default',
      'rebind.test',
      http.port,
      fixedResolver({ 'rebind.test': ['127.0.0.1'] }),
    );
    expect(allowed.err).toBeNull();
  });
});

describe('request and fetch on loopback', () => {
  it('sends requests and reuses the keep-alive connection', async () => {
    const client = egress();
    for (let i = 0; i < 3; i++) {
      const response = await client.request({ url: `http://127.0.0.1:${http.port}/hello`, method: 'GET' });
      expect(response.status).toBe(200);
      expect(response.host).toBe(`127.0.0.1:${http.port}`);
      expect((await bodyOf(response)).toString()).toBe('hello');
      // undici hands the connection back to the pool one macrotask after the body ends.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(http.connections).toBe(1);
    expect(http.requests).toEqual(['/hello', '/hello', '/hello']);
  });

  it('sends string, byte and stream bodies with the given headers', async () => {
    const client = egress();
    const url = new URL(`http://localhost:${http.port}/echo?x=1`);
    const bodies = ['plain text', new TextEncoder().encode('some bytes'), Readable.from(['a ', 'stream'])];
    const expected = ['plain text', 'some bytes', 'a stream'];
    for (const [index, body] of bodies.entries()) {
      const response = await client.request({
        url,
        method: 'POST',
        headers: { authorization: 'Bearer t' },
        body,
      });
      expect(response.headers['x-method']).toBe('POST');
      expect(response.headers['x-authorization']).toBe('Bearer t');
      expect((await bodyOf(response)).toString()).toBe(expected[index]);
    }
    expect(http.requests).toEqual(['/echo?x=1', '/echo?x=1', '/echo?x=1']);
  });

  it('fetch works as a WHATWG fetch (string, URL and Request inputs)', async () => {
    const client = egress();
    const url = `http://127.0.0.1:${http.port}/echo`;
    const fromString = await client.fetch(url, { method: 'POST', body: new URLSearchParams({ a: '1' }) });
    expect(fromString.status).toBe(200);
    expect(await fromString.text()).toBe('a=1');
    const fromUrl = await client.fetch(new URL(url), { method: 'PUT', body: 'x' });
    expect(fromUrl.headers.get('x-method')).toBe('PUT');
    expect(await fromUrl.text()).toBe('x');
    const fromRequest = await client.fetch(new Request(url, { method: 'POST', body: 'from request' }));
    expect(await fromRequest.text()).toBe('from request');
    // The global Response check oauth4webapi makes (by Symbol.toStringTag) holds.
    expect(Object.prototype.toString.call(fromString)).toBe('[object Response]');
  });

  it('fetch serves as oauth4webapi customFetch', async () => {
    const client = egress();
    const issuer = new URL(`http://127.0.0.1:${http.port}`);
    const options = { [oauth.customFetch]: client.fetch, [oauth.allowInsecureRequests]: true };
    const response = await oauth.discoveryRequest(issuer, { ...options, algorithm: 'oauth2' });
    // Also usable wherever a global fetch is expected (a compile-time check).
    const asGlobalFetch: typeof globalThis.fetch = client.fetch;
    expect(typeof asGlobalFetch).toBe('function');
    const metadata = await oauth.processDiscoveryResponse(issuer, response);
    expect(metadata.token_endpoint).toBe(`${issuer.origin}/token`);
  });

  it('fetch returns a redirect as is and does not follow it', async () => {
    const client = egress();
    const response = await client.fetch(`http://127.0.0.1:${http.port}/redirect`, { redirect: 'follow' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/hello');
    expect(await response.text()).toBe('moved');
    expect(http.requests).toEqual(['/redirect']);
  });

  it('request returns a redirect as is and does not follow it', async () => {
    const client = egress();
    const base = new URL(`http://127.0.0.1:${http.port}/redirect`);
    const response = await client.request({ url: base, method: 'GET' });
    expect(response.status).toBe(302);
    expect(isRedirect(response.status)).toBe(true);
    await bodyOf(response);
    const target = redirectTarget(base, String(response.headers.location));
    expect(target.href).toBe(`http://127.0.0.1:${http.port}/hello`);
    expect(target.origin).toBe(base.origin);
    expect(http.requests).toEqual(['/redirect']);
  });

  it('strict mode refuses loopback with kind denied and the server sees no connection', async () => {
    const client = egress({ mode: 'strict' });
    for (const url of [
      `http://127.0.0.1:${http.port}/hello`,
      `http://localhost:${http.port}/hello`,
      `http://[::1]:${http.port}/hello`,
    ]) {
      const failure = await egressFailure(client.request({ url, method: 'GET' }));
      expect(failure.kind).toBe('denied');
      expect(failure.message).toContain('loopback');
      expect((await egressFailure(client.fetch(url))).kind).toBe('denied');
    }
    expect((await egressFailure(client.fetch(`https://127.0.0.1:${https.port}/hello`))).kind).toBe('denied');
    expect(http.connections).toBe(0);
    expect(https.connections).toBe(0);
  });

  it('uses the injected resolver and checks what it returns', async () => {
    const resolver = fixedResolver({ 'api.test': ['127.0.0.1'] });
    const strict = egress({ mode: 'strict', resolver });
    const denied = await egressFailure(
      strict.request({ url: `https://api.test:${https.port}/`, method: 'GET' }),
    );
    expect(denied.kind).toBe('denied');
    expect(https.connections).toBe(0);

    // In default mode the name reaches the loopback TLS server (whose certificate is not trusted).
    const lenient = egress({ mode: 'default', resolver });
    const tls = await egressFailure(
      lenient.request({ url: `https://api.test:${https.port}/`, method: 'GET' }),
    );
    expect(tls.kind).toBe('tls');
    expect(https.connections).toBe(1);
  });

  it('refuses plain http on the dispatcher itself when allowHttp is off (no request is sent)', async () => {
    const client = egress({ allowHttp: 'off' });
    const err = await rejection(
      undiciRequest(`http://127.0.0.1:${http.port}/hello`, { dispatcher: client.dispatcher }),
    );
    expect((err as EgressError).kind).toBe('insecure_url');
    expect(http.requests).toEqual([]);
  });
});

describe('failures on loopback', () => {
  it('connection refused on a closed port', async () => {
    const client = egress();
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/token?code=${SECRET}`;
    const viaRequest = await egressFailure(client.request({ url, method: 'POST' }));
    expect(viaRequest.kind).toBe('refused');
    expect(viaRequest.host).toBe(`127.0.0.1:${port}`);
    expect(viaRequest.message).toContain(`127.0.0.1:${port}`);
    expect(viaRequest.message).not.toContain(SECRET);
    const viaFetch = await egressFailure(client.fetch(`http://localhost:${port}/token?code=${SECRET}`));
    expect(viaFetch.kind).toBe('refused');
    expect(viaFetch.message).not.toContain(SECRET);
  });

  it('a name that does not resolve is kind dns', async () => {
    const client = egress({ resolver: fixedResolver({}) });
    const failure = await egressFailure(client.request({ url: 'https://nowhere.test/', method: 'GET' }));
    expect(failure.kind).toBe('dns');
    expect((await egressFailure(client.fetch('https://nowhere.test/'))).kind).toBe('dns');
  });

  it('a server that never answers times out (headers timeout)', async () => {
    const client = egress({ headersTimeoutMs: 300 });
    const url = `http://127.0.0.1:${http.port}/never`;
    const viaRequest = await egressFailure(client.request({ url, method: 'GET' }));
    expect(viaRequest.kind).toBe('timeout');
    expect(viaRequest.message).toContain('UND_ERR_HEADERS_TIMEOUT');
    expect((await egressFailure(client.fetch(url))).kind).toBe('timeout');
  });

  it('a server that never answers times out (per-call deadline and AbortSignal.timeout)', async () => {
    const client = egress();
    const url = `http://127.0.0.1:${http.port}/never`;
    expect((await egressFailure(client.request({ url, method: 'GET', timeoutMs: 200 }))).kind).toBe(
      'timeout',
    );
    expect((await egressFailure(client.fetch(url, { signal: AbortSignal.timeout(200) }))).kind).toBe(
      'timeout',
    );
  });

  it('a body that stops arriving times out while reading', async () => {
    const client = egress({ bodyTimeoutMs: 300 });
    const response = await client.request({
      url: `http://127.0.0.1:${http.port}/headers-then-silence`,
      method: 'GET',
    });
    expect(response.status).toBe(200);
    expect((await egressFailure(bodyOf(response))).kind).toBe('timeout');
  });

  it('an abort by the caller stays an abort', async () => {
    const client = egress();
    const controller = new AbortController();
    const url = `http://127.0.0.1:${http.port}/never`;
    const pending = rejection(client.request({ url, method: 'GET', signal: controller.signal }));
    const pendingFetch = rejection(client.fetch(url, { signal: controller.signal }));
    setTimeout(() => controller.abort(), 50);
    for (const err of [await pending, await pendingFetch]) {
      expect(err).not.toBeInstanceOf(EgressError);
      expect((err as Error).name).toBe('AbortError');
    }
  });

  it('a connection dropped by the server is kind reset', async () => {
    const client = egress();
    const url = `http://127.0.0.1:${http.port}/drop`;
    expect((await egressFailure(client.request({ url, method: 'GET' }))).kind).toBe('reset');
    expect((await egressFailure(client.fetch(url))).kind).toBe('reset');
  });

  it('a self-signed certificate that is not trusted is kind tls', async () => {
    const client = egress();
    for (const host of ['127.0.0.1', 'localhost']) {
      const url = `https://${host}:${https.port}/hello`;
      const viaRequest = await egressFailure(client.request({ url, method: 'GET' }));
      expect(viaRequest.kind).toBe('tls');
      expect(viaRequest.message).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
      expect((await egressFailure(client.fetch(url))).kind).toBe('tls');
    }
    expect(https.requests).toEqual([]);
  });

  it('https to a plain http server is kind tls', async () => {
    const client = egress();
    const failure = await egressFailure(
      client.request({ url: `https://127.0.0.1:${http.port}/`, method: 'GET' }),
    );
    expect(failure.kind).toBe('tls');
  });
});

describe('response size caps', () => {
  it('fetch bodies are capped too', async () => {
    const client = egress({ maxResponseBytes: 64 * 1024 });
    const response = await client.fetch(`http://127.0.0.1:${http.port}/big`);
    expect(response.status).toBe(200);
    expect((await egressFailure(response.arrayBuffer())).kind).toBe('too_large');
    const small = await client.fetch(`http://127.0.0.1:${http.port}/hello`);
    expect(await small.text()).toBe('hello');
  });
});

describe('classifyNetworkError', () => {
  const withCode = (code: string, message = 'boom'): Error => Object.assign(new Error(message), { code });

  it.each([
    ['ENOTFOUND', 'dns'],
    ['EAI_AGAIN', 'dns'],
    ['ECONNREFUSED', 'refused'],
    ['EHOSTUNREACH', 'unreachable'],
    ['ENETUNREACH', 'unreachable'],
    ['ECONNRESET', 'reset'],
    ['UND_ERR_SOCKET', 'reset'],
    ['UND_ERR_CLOSED', 'reset'],
    ['EPIPE', 'reset'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'tls'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'tls'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'tls'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 'tls'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls'],
    ['CERT_HAS_EXPIRED', 'tls'],
    ['CERT_NOT_YET_VALID', 'tls'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'tls'],
    ['ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE', 'tls'],
    ['EPROTO', 'tls'],
    ['UND_ERR_CONNECT_TIMEOUT', 'timeout'],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout'],
    ['UND_ERR_BODY_TIMEOUT', 'timeout'],
    ['ETIMEDOUT', 'timeout'],
    ['UND_ERR_RES_EXCEEDED_MAX_SIZE', 'too_large'],
    ['UND_ERR_ABORTED', 'other'],
    ['SOMETHING_ELSE', 'other'],
  ] as const)('%s → %s', (code, kind) => {
    const classified = classifyNetworkError(withCode(code), 'api.example.com');
    expect(classified.kind).toBe(kind);
    expect(classified.host).toBe('api.example.com');
    expect(classified.message).toContain('api.example.com');
    expect(classified.message).toContain(code);
  });

  it('looks through fetch causes and AggregateErrors', () => {
    const fetchFailed = new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') });
    expect(classifyNetworkError(fetchFailed, 'h').kind).toBe('refused');
    const dualStack = new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')], 'all failed');
    expect(classifyNetworkError(dualStack, 'h').kind).toBe('refused');
    const deep = new TypeError('terminated', {
      cause: new Error('wrapped', { cause: withCode('UND_ERR_SOCKET') }),
    });
    expect(classifyNetworkError(deep, 'h').kind).toBe('reset');
  });

  it('keeps an EgressError found anywhere in the chain', () => {
    const denied = new EgressError('denied', 'h:1', 'refused by policy');
    expect(classifyNetworkError(denied, 'other')).toBe(denied);
    expect(classifyNetworkError(new TypeError('fetch failed', { cause: denied }), 'other')).toBe(denied);
  });

  it('an AbortSignal timeout is kind timeout', () => {
    expect(classifyNetworkError(new DOMException('timed out', 'TimeoutError'), 'h').kind).toBe('timeout');
  });

  it('never copies an unsafe code or the original message into its own message', () => {
    const weird = withCode(`https://x.test/?token=${SECRET}`, `failed for https://x.test/?token=${SECRET}`);
    const classified = classifyNetworkError(weird, 'x.test');
    expect(classified.kind).toBe('other');
    expect(classified.message).not.toContain(SECRET);
    expect(classified.cause).toBe(weird);
    expect(classifyNetworkError('a string', 'h').kind).toBe('other');
    expect(classifyNetworkError(undefined, 'h').kind).toBe('other');
  });
});

describe('redirect helpers', () => {
  it.each([
    [301, true],
    [302, true],
    [303, true],
    [307, true],
    [308, true],
    [300, false],
    [304, false],
    [305, false],
    [200, false],
    [404, false],
  ] as const)('isRedirect(%i) is %s', (status, expected) => {
    expect(isRedirect(status)).toBe(expected);
  });

  it('resolves Location against the URL that answered and spots origin changes', () => {
    const base = new URL('https://api.example.com/v1/items?page=2');
    expect(redirectTarget(base, '/v2/items').href).toBe('https://api.example.com/v2/items');
    expect(redirectTarget(base, 'next').href).toBe('https://api.example.com/v1/next');
    expect(redirectTarget(base, '//cdn.example.com/x').href).toBe('https://cdn.example.com/x');
    expect(redirectTarget(base, '/other').origin).toBe(base.origin);
    expect(redirectTarget(base, 'https://evil.example.net/').origin).not.toBe(base.origin);
    expect(redirectTarget(base, 'http://api.example.com/').origin).not.toBe(base.origin);
    expect(redirectTarget(base, 'https://api.example.com:8443/').origin).not.toBe(base.origin);
    expect(() => redirectTarget(base, 'https://[bad')).toThrow(EgressError);
  });
});

describe('close', () => {
  it('closes the pools', async () => {
    const client = new Egress({ mode: 'default', allowHttp: 'loopback' });
    const response = await client.request({ url: `http://127.0.0.1:${http.port}/hello`, method: 'GET' });
    await bodyOf(response);
    await client.close();
    expect(client.dispatcher.closed).toBe(true);
  });
});
