/**
 * The OpenAPI document as a running Grantry serves it (issue 13, "an API a client can be generated
 * from"): every operation named, the shapes a client needs named, every answer the server can give
 * documented — and Redocly's recommended rules satisfied, with redocly.yaml saying why any is off.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/services/api-keys.js';
import { startGrantry } from './support/grantry.js';

type Json = Record<string, any>;
interface Operation {
  method: string;
  path: string;
  op: Json;
}

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'];
const run = promisify(execFile);

describe('the OpenAPI document', () => {
  let g: Awaited<ReturnType<typeof startGrantry>>;
  let text: string;
  let doc: Json;
  let operations: Operation[];

  beforeAll(async () => {
    // As deployed: the document's server is GRANTRY_PUBLIC_URL (Redocly rightly warns about a localhost one).
    g = await startGrantry({ env: { GRANTRY_PUBLIC_URL: 'https://grantry.internal' } });
    const answer = await fetch(`${g.url}/openapi.json`);
    expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
    text = await answer.text();
    doc = JSON.parse(text);
    operations = Object.entries(doc.paths as Record<string, Json>).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([method]) => METHODS.includes(method))
        .map(([method, op]) => ({ method, path, op })),
    );
  });

  afterAll(async () => {
    await g?.stop();
  });

  it('gives every documented operation a unique, camelCase operationId', () => {
    expect(operations).toHaveLength(g.app.server.openApiRoutes.length);
    const ids = operations.map(({ op }) => op.operationId);
    for (const { method, path, op } of operations) {
      expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][a-zA-Z0-9]*$/);
    }
    expect(new Set(ids).size).toBe(ids.length);
    const byRoute = Object.fromEntries(operations.map(({ method, path, op }) => [`${method} ${path}`, op]));
    expect(byRoute['get /api/authentications']?.operationId).toBe('listAuthentications');
    expect(byRoute['post /api/authentications']?.operationId).toBe('createAuthentication');
    expect(byRoute['post /api/connectors/{id}/test']?.operationId).toBe('testConnector');
    expect(byRoute['get /proxy/{connectorId}/{path}']?.operationId).toBe('proxyGet');
    expect(byRoute['head /healthz']?.operationId).toBe('headHealth');
  });

  it('names the shapes a client needs and refers to them, writing each once', () => {
    const schemas: Json = doc.components.schemas;
    for (const name of [
      'Authentication',
      'AuthenticationCreate',
      'AuthenticationPatch',
      'AuthenticationList',
      'Connector',
      'ConnectorCreate',
      'ConnectorPatch',
      'ConnectorList',
      'Error',
      'Problem',
      'ExecuteRequest',
      'ExecuteResult',
      'TokenTestResult',
      'ConnectorTestResult',
      'Webhook',
      'WebhookCreate',
      'WebhookCreated',
      'WebhookDelivery',
      'ProviderPreset',
      'ProviderPresetList',
    ]) {
      expect(schemas, name).toHaveProperty(name);
    }
    expect(schemas.Error).toEqual({
      type: 'object',
      properties: { error: { $ref: '#/components/schemas/Problem' } },
      required: ['error'],
    });
    const json = (op: Json, status: string) => op.responses[status].content['application/json'].schema;
    const list = operations.find((o) => o.op.operationId === 'listAuthentications')!.op;
    expect(json(list, '200')).toEqual({ $ref: '#/components/schemas/AuthenticationList' });
    expect(schemas.AuthenticationList.properties.items.items).toEqual({
      $ref: '#/components/schemas/Authentication',
    });
    const create = operations.find((o) => o.op.operationId === 'createConnector')!.op;
    expect(create.requestBody).toEqual({
      required: true,
      content: { 'application/json': { schema: { $ref: '#/components/schemas/ConnectorCreate' } } },
    });
    // A body that may be left out entirely (the defaults) is not required.
    const test = operations.find((o) => o.op.operationId === 'testConnector')!.op;
    expect(test.requestBody.required).toBe(false);
    // Each component's text occurs once: no operation carries a copy of a named shape inline.
    for (const [name, schema] of Object.entries(schemas)) {
      const body = JSON.stringify(schema);
      if (body.length < 80) continue;
      expect(text.split(body).length - 1, name).toBe(1);
    }
  });

  it('documents what every layer can answer, with the Error shape', () => {
    const responses = doc.components.responses as Record<string, Json>;
    for (const response of Object.values(responses)) {
      expect(response.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
    }
    const ref = (name: string) => ({ $ref: `#/components/responses/${name}` });
    for (const { method, path, op } of operations) {
      const where = `${method} ${path}`;
      const answers: Json = op.responses;
      const isProxy = path.startsWith('/proxy/');
      if (op.security.length > 0) {
        expect(answers['401'], where).toEqual(ref('Unauthorized'));
        expect(answers['403'], where).toEqual(ref('Forbidden'));
        expect(answers['429'], where).toEqual(ref('RateLimited'));
        expect(op['x-grantry-scope'], where).toMatch(/^(admin|runtime|metrics)$/);
      }
      if (op.requestBody !== undefined || (['post', 'patch', 'delete'].includes(method) && !isProxy)) {
        expect(answers['400'], where).toEqual(ref('BadRequest'));
        expect(answers['413'], where).toEqual(ref('PayloadTooLarge'));
      }
      // The connection limit answers before a route is even known.
      expect(answers['503'], where).toBeDefined();
      // What redocly.yaml turns off, checked here precisely: its exceptions are these and no more.
      const redirect = op.operationId === 'openConnectLink';
      const probe = ['getHealth', 'headHealth', 'getReadiness', 'getOpenApiDocument'].includes(
        op.operationId,
      );
      expect(Object.keys(answers).some((s) => s.startsWith('2')) || redirect, `${where}: a 2xx`).toBe(true);
      expect(Object.keys(answers).some((s) => s.startsWith('4')) || probe, `${where}: a 4xx`).toBe(true);
      if (isProxy) {
        expect(answers['200'].content, where).toEqual({ '*/*': { schema: {} } });
        expect(answers['413'], where).toBeUndefined();
        for (const status of ['404', '424', '502']) expect(answers[status], where).toBeDefined();
      }
    }
    const readiness = operations.find((o) => o.op.operationId === 'getReadiness')!.op;
    expect(readiness.responses['503'].content['application/json'].schema.anyOf).toHaveLength(2);
    expect(doc.info.description).toContain('#/components/schemas/Error');
  });

  it('says true things: a route that reads a body answers the documented 413 and 400, a key of another scope 403', async () => {
    const auth = await g.api('POST', '/api/authentications', {
      name: 'static',
      type: 'bearer',
      token: 'abc',
    });
    expect(auth.status).toBe(201);
    // `invalidate` takes no body, but Fastify reads one when it is sent: the documented 413 and 400 are real.
    const large = await g.api(
      'POST',
      `/api/authentications/${auth.body.id}/invalidate`,
      `{"x":"${'a'.repeat(1024 * 1024)}"}`,
    );
    expect(large.status).toBe(413);
    expect(large.body.error.code).toBe('payload_too_large');
    const broken = await g.api('DELETE', `/api/authentications/${auth.body.id}`, '{"force":');
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe('validation_failed');
    const runtime = await createApiKey(g.app.store, 'openapi-test', 'runtime');
    const forbidden = await fetch(`${g.url}/metrics`, {
      headers: { authorization: `Bearer ${runtime.key}` },
    });
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as Json).error.code).toBe('forbidden');
  });

  it('passes `redocly lint --extends=recommended` with no error and no warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'grantry-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, text);
      const cli = join(
        dirname(createRequire(import.meta.url).resolve('@redocly/cli/package.json')),
        'bin',
        'cli.js',
      );
      // Run from the repository root, where redocly.yaml says which rules are off and why.
      const { stdout } = await run(
        process.execPath,
        [cli, 'lint', '--extends=recommended', '--format=json', file],
        {
          cwd: resolve('.'),
          env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
          maxBuffer: 64 * 1024 * 1024,
        },
      ).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
      const report = JSON.parse(stdout) as {
        totals: { errors: number; warnings: number };
        problems: { ruleId: string; message: string; location: { pointer: string }[] }[];
      };
      const problems = report.problems.map((p) => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`);
      expect(problems).toEqual([]);
      expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
