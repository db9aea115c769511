import type { TSchema } from '@sinclair/typebox';

/** Where {@link named} keeps a schema's component name. */
export const ComponentName: unique symbol = Symbol.for('grantry.openapi.componentName');

/**
 * Gives a schema a name in the OpenAPI document: wherever a route's schema contains it, the
 * document says `{"$ref":"#/components/schemas/<name>"}` and holds the schema once under
 * `components.schemas`, so a client generated from the document has a type of that name.
 *
 * The name is a symbol, which JSON, Ajv and fast-json-stringify do not see, rather than `$id`,
 * which they act on: with `$id: 'Problem'`, this server failed to start, because a response schema
 * that holds a `Problem` twice (`token.error` and `error` of a connector test) no longer compiles
 * ("reference "Problem" resolves to more than one schema"); and @fastify/ajv-compiler looks a
 * top-level `$id` up among the schemas its shared Ajv instance has seen before compiling. TypeBox
 * drops `$id` from derived types (`Type.Partial`) but copies symbols, so a derived schema carries
 * its origin's name until it is given its own: `buildOpenApiDocument` refuses two different
 * schemas under one name.
 */
export function named<T extends TSchema>(name: string, schema: T): T {
  return { ...schema, [ComponentName]: name };
}

/** The component name given to a schema, if any. */
export function componentNameOf(schema: object): string | undefined {
  const name = (schema as { [ComponentName]?: unknown })[ComponentName];
  return typeof name === 'string' ? name : undefined;
}
