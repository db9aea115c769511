import type { Static, TSchema } from '@sinclair/typebox';
import type { FastifyTypeProvider } from 'fastify';

/**
 * Types a route's request and answer from its TypeBox schemas, so handlers read `request.params.id`
 * without casts. Our own, in ten lines: @fastify/type-provider-typebox 6 is written for the new
 * `typebox` package, whose types do not see this project's `@sinclair/typebox` schemas (an
 * `Unsafe` schema, for one, comes out `unknown`).
 */
export interface TypeBoxProvider extends FastifyTypeProvider {
  readonly validator: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
  readonly serializer: this['schema'] extends TSchema ? Static<this['schema']> : unknown;
}
