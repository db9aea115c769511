import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { throwIfInvalid } from '../../services/field-checks.js';
import { searchTextProblems } from '../../services/list-page.js';
import type { ApiContext } from '../context.js';
import { objectBody, schemaErrorsOf } from '../request-validation.js';
import {
  ConnectorCreateSchema,
  ConnectorListQuerySchema,
  ConnectorListSchema,
  ConnectorPatchSchema,
  ConnectorViewSchema,
  ErrorResponseSchema,
} from '../schemas.js';
import type { TypeBoxProvider } from '../type-provider.js';

const IdParams = Type.Object({ id: Type.String() });
const tags = ['Connectors'];
const errors = { 400: ErrorResponseSchema, 404: ErrorResponseSchema, 409: ErrorResponseSchema };

/** REST API connectors (docs/api.md "Connectors"): HTTP in and out of the ConnectorService. */
export async function connectorRoutes(app: FastifyInstance, context: ApiContext): Promise<void> {
  const server = app.withTypeProvider<TypeBoxProvider>();
  const service = context.connectors;

  server.post(
    '/api/connectors',
    {
      attachValidation: true,
      schema: {
        tags,
        operationId: 'createConnector',
        summary: 'Create a connector',
        body: ConnectorCreateSchema,
        response: { 201: ConnectorViewSchema, ...errors },
      },
    },
    async (request, reply) => {
      const created = await service.create(objectBody(request.body), schemaErrorsOf(request));
      return reply.status(201).send(created);
    },
  );

  server.get(
    '/api/connectors',
    {
      config: { access: 'runtime' },
      attachValidation: true,
      schema: {
        tags,
        operationId: 'listConnectors',
        summary: 'List connectors',
        description:
          'Ordered by name, then id, a page at a time (limit, cursor); q searches the name; authenticationId filters.',
        querystring: ConnectorListQuerySchema,
        response: { 200: ConnectorListSchema, 400: ErrorResponseSchema },
      },
    },
    async (request) => {
      const query = request.query;
      throwIfInvalid(schemaErrorsOf(request, '/query'), searchTextProblems(query.q));
      return service.list({
        limit: query.limit === undefined ? undefined : Number(query.limit),
        cursor: query.cursor,
        q: query.q,
        authenticationId: query.authenticationId,
      });
    },
  );

  server.get(
    '/api/connectors/:id',
    {
      config: { access: 'runtime' },
      schema: {
        tags,
        operationId: 'getConnector',
        summary: 'Get a connector',
        params: IdParams,
        response: { 200: ConnectorViewSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => service.get(request.params.id),
  );

  server.patch(
    '/api/connectors/:id',
    {
      attachValidation: true,
      schema: {
        tags,
        operationId: 'updateConnector',
        summary: 'Change a connector',
        description:
          'Omitted fields keep their value; null clears an optional one. In secretHeaders a value sets a header, null removes it, and headers not named are kept.',
        params: IdParams,
        body: ConnectorPatchSchema,
        response: { 200: ConnectorViewSchema, ...errors },
      },
    },
    async (request) => service.update(request.params.id, objectBody(request.body), schemaErrorsOf(request)),
  );

  server.delete(
    '/api/connectors/:id',
    {
      schema: {
        tags,
        operationId: 'deleteConnector',
        summary: 'Delete a connector',
        params: IdParams,
        response: { 204: Type.Null({ description: 'Deleted.' }), 404: ErrorResponseSchema },
      },
    },
    async (request, reply) => {
      await service.delete(request.params.id);
      return reply.status(204).send(null);
    },
  );
}
