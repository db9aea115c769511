import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { Problem } from '../../problem.js';
import type { ApiContext } from '../context.js';
import { ErrorResponseSchema, ProviderPresetListSchema, ProviderPresetSchema } from '../schemas.js';
import type { TypeBoxProvider } from '../type-provider.js';

const tags = ['Providers'];

/** Provider presets (docs/api.md "Provider presets"): what the console's picker starts from. */
export async function providerRoutes(app: FastifyInstance, context: ApiContext): Promise<void> {
  const server = app.withTypeProvider<TypeBoxProvider>();
  const { providers } = context;

  server.get(
    '/api/providers',
    {
      config: { access: 'runtime' },
      schema: {
        tags,
        operationId: 'listProviders',
        summary: 'List the provider presets',
        description:
          'Presets pre-fill an authentication (POST /api/authentications with provider and providerParams). Each names the provider documentation it was taken from. redirectUri is what to register at the provider for Authorization Code.',
        response: { 200: ProviderPresetListSchema },
      },
    },
    async () => ({ items: providers.list(), redirectUri: context.redirectUri }),
  );

  server.get(
    '/api/providers/:id',
    {
      config: { access: 'runtime' },
      schema: {
        tags,
        operationId: 'getProvider',
        summary: 'Get a provider preset',
        params: Type.Object({ id: Type.String() }),
        response: { 200: ProviderPresetSchema, 404: ErrorResponseSchema },
      },
    },
    async (request) => {
      const preset = providers.get(request.params.id);
      if (preset === undefined) throw new Problem('not_found', 'No provider preset with this id.');
      return preset;
    },
  );
}
