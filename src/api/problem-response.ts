import type { ServerResponse } from 'node:http';
import type { Problem, ProblemBody } from '../problem.js';

/**
 * The error shape (API.md "Errors") built field by field from an allow-list, as the routes'
 * response schema (ErrorResponseSchema) would serialise it: for answers written without Fastify
 * (the proxy front), where no schema stands between a Problem and the wire.
 */
export function errorShapeOf(problem: Problem): ProblemBody {
  const body: ProblemBody = { code: problem.code, message: problem.message };
  if (problem.hint !== undefined) body.hint = problem.hint;
  if (problem.errors !== undefined) {
    body.errors = problem.errors.map((error) => ({ path: error.path, message: error.message }));
  }
  const provider = problem.provider;
  if (provider !== undefined) {
    body.provider = {};
    if (provider.status !== undefined) body.provider.status = provider.status;
    if (provider.error !== undefined) body.provider.error = provider.error;
    if (provider.errorDescription !== undefined) body.provider.errorDescription = provider.errorDescription;
    if (provider.errorUri !== undefined) body.provider.errorUri = provider.errorUri;
    if (provider.wwwAuthenticate !== undefined) body.provider.wwwAuthenticate = provider.wwwAuthenticate;
  }
  return body;
}

/**
 * Answers `problem` on a raw response the way the Fastify error handler does: its status, the
 * JSON error shape, `Cache-Control: no-store`, and `Retry-After` when the problem will pass.
 */
export function writeProblem(res: ServerResponse, problem: Problem, fields: Record<string, string>): void {
  const body = JSON.stringify({ error: errorShapeOf(problem) });
  const head: Record<string, string | number> = {
    ...fields,
    'cache-control': 'no-store',
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  };
  if (problem.retryAfterSeconds !== undefined) head['retry-after'] = String(problem.retryAfterSeconds);
  res.writeHead(problem.status, head);
  res.end(body);
}
