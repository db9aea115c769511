import type { ProblemView } from './api-client.js';

const codeTitles: Record<string, string> = {
  validation_failed: 'Some fields need attention',
  insecure_url: 'An https URL is required',
  unauthorized: 'API key not accepted',
  not_found: 'Not found',
  conflict: 'Conflict',
  payload_too_large: 'Too large',
  rate_limited: 'Too many requests',
  invalid_client: 'Invalid client',
  invalid_grant: 'Invalid grant',
  invalid_scope: 'Invalid scope',
  invalid_redirect_uri: 'Invalid redirect URI',
  unauthorized_client: 'Client not allowed to use this grant',
  unsupported_grant_type: 'Grant type not supported',
  invalid_request: 'Invalid request',
  invalid_target: 'Invalid audience or resource',
  access_denied: 'Access denied',
  token_fetch_failed: 'Token fetch failed',
  needs_authorization: 'Needs authorization',
  upstream_unauthorized: 'The API answered 401 Unauthorized',
  upstream_forbidden: 'The API answered 403 Forbidden',
  egress_denied: 'Destination not allowed',
  upstream_failed: 'The API could not be reached',
  network_error: 'Grantry could not be reached',
};

export function problemTitle(problem: ProblemView): string {
  return codeTitles[problem.code] ?? problem.code.replaceAll('_', ' ');
}

interface ProblemMessageProps {
  problem: ProblemView;
  /** `alert` interrupts a screen reader; results that the user asked for use the polite default. */
  role?: 'alert' | 'status';
  /** Field errors already shown beside their fields are left out here unless asked for. */
  showFieldErrors?: boolean;
  /** Who `provider` is: the OAuth provider (default) or the API a connector called. */
  providerLabel?: string;
}

/** An error as a person should read it: what happened, what to do, and the provider's own words. */
export function ProblemMessage(props: ProblemMessageProps) {
  const { problem, role, showFieldErrors = true, providerLabel = 'The provider said' } = props;
  const provider = problem.provider;
  const providerWords = provider && (provider.error || provider.errorDescription || provider.status);
  return (
    <div className="problem" role={role}>
      <p className="problem-title">
        <span className="problem-icon" aria-hidden="true">
          !
        </span>
        {problemTitle(problem)} <code className="problem-code">{problem.code}</code>
      </p>
      <p className="problem-message">{problem.message}</p>
      {problem.hint && (
        <p className="problem-hint">
          <strong>What to do: </strong>
          {problem.hint}
        </p>
      )}
      {showFieldErrors && problem.errors && problem.errors.length > 0 && (
        <ul className="problem-fields">
          {problem.errors.map((fieldError) => (
            <li key={`${fieldError.path}:${fieldError.message}`}>
              <code>{fieldError.path || '/'}</code> {fieldError.message}
            </li>
          ))}
        </ul>
      )}
      {provider && providerWords && (
        <div className="provider-words">
          <p className="provider-label">{providerLabel}</p>
          <dl className="facts">
            {provider.status !== undefined && (
              <>
                <dt>HTTP status</dt>
                <dd>{provider.status}</dd>
              </>
            )}
            {provider.error && (
              <>
                <dt>error</dt>
                <dd>
                  <code>{provider.error}</code>
                </dd>
              </>
            )}
            {provider.errorDescription && (
              <>
                <dt>error_description</dt>
                <dd>“{provider.errorDescription}”</dd>
              </>
            )}
            {provider.wwwAuthenticate && (
              <>
                <dt>WWW-Authenticate</dt>
                <dd>
                  <code>{provider.wwwAuthenticate}</code>
                </dd>
              </>
            )}
            {provider.errorUri && (
              <>
                <dt>More</dt>
                <dd>
                  <a href={provider.errorUri} target="_blank" rel="noreferrer noopener">
                    {provider.errorUri}
                  </a>
                </dd>
              </>
            )}
          </dl>
        </div>
      )}
    </div>
  );
}
