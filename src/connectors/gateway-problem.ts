import { diagnose } from '../oauth/diagnosis.js';
import { Problem } from '../problem.js';

/**
 * Execute and proxy answer for the gateway: when a token or the upstream could not be had, the
 * status is 424 (needs_authorization) or 502 — never the 400 a management route would give.
 */
export function asGatewayProblem(error: unknown): Problem {
  const problem = error instanceof Problem ? error : diagnose(error, { step: 'api' });
  if (problem.code === 'server_busy') return problem;
  if (problem.code === 'not_found') {
    return new Problem('not_found', "The connector's authentication no longer exists.", { status: 404 });
  }
  const status = problem.code === 'needs_authorization' ? 424 : 502;
  if (problem.status === status) return problem;
  return new Problem(problem.code, problem.message, {
    hint: problem.hint,
    provider: problem.provider,
    errors: problem.errors,
    status,
    cause: problem,
  });
}
