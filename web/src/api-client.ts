/**
 * The UI's only way to reach Grantry: the public HTTP API (docs/api.md), typed with the server's own
 * schemas. `import type` keeps the server's code out of the bundle; only the shapes are shared.
 */
import type {
  AuthenticationCreate,
  AuthenticationPatch,
  AuthenticationView,
  ConnectorCreate,
  ConnectorPatch,
  ConnectorTestResult,
  ConnectorView,
  DiscoveryResult,
  EventView,
  ExecuteRequest,
  ExecuteResult,
  ProblemView as ServerProblem,
  TokenTestResult,
  WebhookCreate,
  WebhookCreated,
  WebhookDeliveryView,
  WebhookEventTypeName,
  WebhookPatch,
  WebhookView,
} from '../../src/api/schemas.js';
import type { ProviderPreset } from '../../src/providers/provider-preset.js';

export type {
  AuthenticationCreate,
  AuthenticationPatch,
  AuthenticationView,
  ConnectorCreate,
  ConnectorPatch,
  ConnectorTestResult,
  ConnectorView,
  DiscoveryResult,
  EventView,
  ExecuteRequest,
  ExecuteResult,
  ProviderPreset,
  ServerProblem,
  TokenTestResult,
  WebhookCreate,
  WebhookCreated,
  WebhookDeliveryView,
  WebhookEventTypeName,
  WebhookPatch,
  WebhookView,
};

/**
 * A problem as the UI shows it: the server's own (docs/api.md "Errors"), or one the UI makes when
 * Grantry could not be reached or did not answer with its error shape.
 */
export type ProblemView = Omit<ServerProblem, 'code'> & { code: string };

export type GrantType = NonNullable<AuthenticationView['grantType']>;
export type AuthenticationStatus = AuthenticationView['status'];
export type ConnectorTestRequest = Partial<ExecuteRequest>;

/** A failed API call, carrying the server's problem (docs/api.md "Errors") for the screen to explain. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: ProblemView;

  constructor(status: number, problem: ProblemView) {
    super(problem.message);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
  }
}

/** Turns anything thrown by a call into a problem a person can read. */
export function problemOf(error: unknown): ProblemView {
  if (error instanceof ApiError) return error.problem;
  if (error instanceof TypeError) {
    return {
      code: 'network_error',
      message: 'Grantry could not be reached.',
      hint: 'Check that the Grantry server is running and that this page is served by it.',
    };
  }
  return { code: 'unexpected', message: error instanceof Error ? error.message : String(error) };
}

function isProblemBody(value: unknown): value is { error: ProblemView } {
  if (typeof value !== 'object' || value === null || !('error' in value)) return false;
  const inner = (value as { error: unknown }).error;
  return (
    typeof inner === 'object' &&
    inner !== null &&
    typeof (inner as { code?: unknown }).code === 'string' &&
    typeof (inner as { message?: unknown }).message === 'string'
  );
}

function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Response> {
  const init: RequestInit = {
    method,
    headers: { accept: 'application/json', ...headers },
    cache: 'no-store',
    // same-origin credentials: the authorize call sets a cookie that binds the flow to this browser.
    credentials: 'same-origin',
  };
  if (body !== undefined) init.body = body;
  return fetch(path, init);
}

/** The JSON body of a success, or an ApiError carrying Grantry's problem (or a stand-in for it). */
async function read<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (response.ok) return parsed as T;
  const problem: ProblemView = isProblemBody(parsed)
    ? parsed.error
    : {
        code: `http_${response.status}`,
        message: `Grantry answered ${response.status} ${response.statusText}`.trim().concat('.'),
      };
  throw new ApiError(response.status, problem);
}

/** What a list may be narrowed by: a page size, the previous page's cursor, a search in the name. */
export interface ListQuery {
  limit?: number;
  cursor?: string | null;
  q?: string;
}

function queryString(query: ListQuery): string {
  const params = new URLSearchParams();
  if (query.limit !== undefined) params.set('limit', String(query.limit));
  if (query.cursor) params.set('cursor', query.cursor);
  if (query.q) params.set('q', query.q);
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

const API_KEY_STORAGE = 'grantry.apiKey';

/**
 * The API key lives in this tab's session storage only: it survives a reload (and the full-page
 * OAuth redirect fallback) but not the tab, and it never appears in a URL.
 */
export const apiKeyStore = {
  read(): string | null {
    try {
      return sessionStorage.getItem(API_KEY_STORAGE);
    } catch {
      return null;
    }
  },
  write(key: string): void {
    sessionStorage.setItem(API_KEY_STORAGE, key);
  },
  clear(): void {
    sessionStorage.removeItem(API_KEY_STORAGE);
  },
};

export class ApiClient {
  readonly #key: () => string | null;
  readonly #onUnauthorized: () => void;

  constructor(key: () => string | null, onUnauthorized: () => void) {
    this.#key = key;
    this.#onUnauthorized = onUnauthorized;
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    const key = this.#key();
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await send(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
    if (response.status === 401) this.#onUnauthorized();
    return read<T>(response);
  }

  /** Checks a key without reporting 401 to the app: the key screen explains it instead. */
  async checkKey(key: string): Promise<boolean> {
    const response = await send('GET', '/api/authentications', { authorization: `Bearer ${key}` });
    if (response.status === 401) return false;
    await read(response);
    return true;
  }

  listAuthentications(
    query: ListQuery = {},
  ): Promise<{ items: AuthenticationView[]; nextCursor: string | null }> {
    return this.#request('GET', `/api/authentications${queryString(query)}`);
  }

  getAuthentication(id: string): Promise<AuthenticationView> {
    return this.#request('GET', `/api/authentications/${encodeURIComponent(id)}`);
  }

  createAuthentication(body: AuthenticationCreate): Promise<AuthenticationView> {
    return this.#request('POST', '/api/authentications', body);
  }

  updateAuthentication(id: string, patch: AuthenticationPatch): Promise<AuthenticationView> {
    return this.#request('PATCH', `/api/authentications/${encodeURIComponent(id)}`, patch);
  }

  deleteAuthentication(id: string, force = false): Promise<void> {
    const query = force ? '?force=true' : '';
    return this.#request('DELETE', `/api/authentications/${encodeURIComponent(id)}${query}`);
  }

  testAuthentication(id: string): Promise<TokenTestResult> {
    return this.#request('POST', `/api/authentications/${encodeURIComponent(id)}/test`, {});
  }

  invalidateAuthentication(id: string): Promise<void> {
    return this.#request('POST', `/api/authentications/${encodeURIComponent(id)}/invalidate`, {});
  }

  authorize(
    id: string,
    expiresInSeconds?: number,
  ): Promise<{ authorizationUrl: string; connectUrl: string; expiresAt: string }> {
    const body = expiresInSeconds === undefined ? {} : { expiresInSeconds };
    return this.#request('POST', `/api/authentications/${encodeURIComponent(id)}/authorize`, body);
  }

  listEvents(id: string): Promise<{ items: EventView[] }> {
    return this.#request('GET', `/api/authentications/${encodeURIComponent(id)}/events`);
  }

  listProviders(): Promise<{ items: ProviderPreset[]; redirectUri: string }> {
    return this.#request('GET', '/api/providers');
  }

  discover(issuer: string): Promise<DiscoveryResult> {
    return this.#request('GET', `/api/discovery?issuer=${encodeURIComponent(issuer)}`);
  }

  listConnectors(query: ListQuery = {}): Promise<{ items: ConnectorView[]; nextCursor: string | null }> {
    return this.#request('GET', `/api/connectors${queryString(query)}`);
  }

  createConnector(body: ConnectorCreate): Promise<ConnectorView> {
    return this.#request('POST', '/api/connectors', body);
  }

  updateConnector(id: string, patch: ConnectorPatch): Promise<ConnectorView> {
    return this.#request('PATCH', `/api/connectors/${encodeURIComponent(id)}`, patch);
  }

  deleteConnector(id: string): Promise<void> {
    return this.#request('DELETE', `/api/connectors/${encodeURIComponent(id)}`);
  }

  testConnector(id: string, request: ConnectorTestRequest): Promise<ConnectorTestResult> {
    return this.#request('POST', `/api/connectors/${encodeURIComponent(id)}/test`, request);
  }

  listWebhooks(): Promise<{ items: WebhookView[]; nextCursor: string | null }> {
    return this.#request('GET', '/api/webhooks?limit=500');
  }

  /** The answer carries the signing secret: the only time it is shown. */
  createWebhook(body: WebhookCreate): Promise<WebhookCreated> {
    return this.#request('POST', '/api/webhooks', body);
  }

  updateWebhook(id: string, patch: WebhookPatch): Promise<WebhookView> {
    return this.#request('PATCH', `/api/webhooks/${encodeURIComponent(id)}`, patch);
  }

  deleteWebhook(id: string): Promise<void> {
    return this.#request('DELETE', `/api/webhooks/${encodeURIComponent(id)}`);
  }

  listWebhookDeliveries(id: string): Promise<{ items: WebhookDeliveryView[] }> {
    return this.#request('GET', `/api/webhooks/${encodeURIComponent(id)}/deliveries`);
  }

  sendTestWebhook(id: string): Promise<WebhookDeliveryView> {
    return this.#request('POST', `/api/webhooks/${encodeURIComponent(id)}/test`, {});
  }
}
