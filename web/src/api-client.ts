/**
 * The UI's only way to reach Grantry: the public HTTP API (docs/api.md), through openapi-fetch typed
 * by `generated/grantry-api.ts` — the types openapi-typescript makes from GET /openapi.json
 * (`npm run openapi:client`; a test fails when they fall behind the server). Paths, parameters,
 * bodies and answers are checked against the document the server serves, and nothing of the
 * server's code reaches the bundle.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './generated/grantry-api.js';

type Schemas = components['schemas'];

export type AuthenticationView = Schemas['Authentication'];
/**
 * The document says every field is optional: `name` and `type` are required unless a provider
 * preset supplies them, a rule the server's rules check (and report with every other problem)
 * and that its schema leaves out on purpose. The console's drafts always send them.
 */
export type AuthenticationCreate = Schemas['AuthenticationCreate'];
export type AuthenticationPatch = Schemas['AuthenticationPatch'];
export type ConnectorCreate = Schemas['ConnectorCreate'];
export type ConnectorPatch = Schemas['ConnectorPatch'];
export type ConnectorTestResult = Schemas['ConnectorTestResult'];
export type ConnectorView = Schemas['Connector'];
export type DiscoveryResult = Schemas['DiscoveryResult'];
export type EventView = Schemas['Event'];
export type ExecuteRequest = Schemas['ExecuteRequest'];
export type ExecuteResult = Schemas['ExecuteResult'];
export type ProviderPreset = Schemas['ProviderPreset'];
export type PublicKeyView = Schemas['PublicKey'];
export type ServerProblem = Schemas['Problem'];
export type TokenTestResult = Schemas['TokenTestResult'];
export type WebhookCreate = Schemas['WebhookCreate'];
export type WebhookCreated = Schemas['WebhookCreated'];
export type WebhookDeliveryView = Schemas['WebhookDelivery'];
export type WebhookEventTypeName = Schemas['WebhookEventType'];
export type WebhookPatch = Schemas['WebhookPatch'];
export type WebhookView = Schemas['Webhook'];

/**
 * A problem as the UI shows it: the server's own (docs/api.md "Errors"), or one the UI makes when
 * Grantry could not be reached or did not answer with its error shape.
 */
export type ProblemView = Omit<ServerProblem, 'code'> & { code: string };

export type GrantType = NonNullable<AuthenticationView['grantType']>;
export type AuthenticationStatus = Schemas['AuthenticationStatus'];
export type ConnectorTestRequest = Schemas['ConnectorTestRequest'];

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

/** What openapi-fetch answers: the parsed body of a success, or of a failure, and the response. */
interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The body of a success, or an ApiError carrying Grantry's problem (or a stand-in for it). */
async function read<T>(call: Promise<Answer<T>>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok) return data as T;
  const problem: ProblemView = isProblemBody(error)
    ? error.error
    : {
        code: `http_${response.status}`,
        message: `Grantry answered ${response.status} ${response.statusText}`.trim().concat('.'),
      };
  throw new ApiError(response.status, problem);
}

/** Same origin, never cached, with this browser's cookies (authorize sets one that binds the flow). */
function grantryClient(): Client<paths> {
  return createClient<paths>({
    headers: { accept: 'application/json' },
    cache: 'no-store',
    credentials: 'same-origin',
  });
}

/** What a list may be narrowed by: a page size, the previous page's cursor, a search in the name. */
export interface ListQuery {
  limit?: number;
  cursor?: string | null;
  q?: string;
}

function listQuery(query: ListQuery): { limit?: string; cursor?: string; q?: string } {
  const params: { limit?: string; cursor?: string; q?: string } = {};
  if (query.limit !== undefined) params.limit = String(query.limit);
  if (query.cursor) params.cursor = query.cursor;
  if (query.q) params.q = query.q;
  return params;
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
  /** Sends the key of the moment and reports every 401 to the app. */
  readonly #api = grantryClient();
  /** Without either: for checking a key the person has just typed. */
  readonly #bare = grantryClient();

  constructor(key: () => string | null, onUnauthorized: () => void) {
    this.#api.use({
      onRequest({ request }) {
        const current = key();
        if (current) request.headers.set('authorization', `Bearer ${current}`);
        return request;
      },
      onResponse({ response }) {
        if (response.status === 401) onUnauthorized();
        return response;
      },
    });
  }

  /** Checks a key without reporting 401 to the app: the key screen explains it instead. */
  async checkKey(key: string): Promise<boolean> {
    const answer = await this.#bare.GET('/api/authentications', {
      headers: { authorization: `Bearer ${key}` },
    });
    if (answer.response.status === 401) return false;
    await read(Promise.resolve(answer));
    return true;
  }

  listAuthentications(query: ListQuery = {}): Promise<Schemas['AuthenticationList']> {
    return read(this.#api.GET('/api/authentications', { params: { query: listQuery(query) } }));
  }

  getAuthentication(id: string): Promise<AuthenticationView> {
    return read(this.#api.GET('/api/authentications/{id}', { params: { path: { id } } }));
  }

  createAuthentication(body: AuthenticationCreate): Promise<AuthenticationView> {
    return read(this.#api.POST('/api/authentications', { body }));
  }

  updateAuthentication(id: string, patch: AuthenticationPatch): Promise<AuthenticationView> {
    return read(this.#api.PATCH('/api/authentications/{id}', { params: { path: { id } }, body: patch }));
  }

  async deleteAuthentication(id: string, force = false): Promise<void> {
    const query = force ? { force: 'true' as const } : {};
    await read(this.#api.DELETE('/api/authentications/{id}', { params: { path: { id }, query } }));
  }

  testAuthentication(id: string): Promise<TokenTestResult> {
    return read(this.#api.POST('/api/authentications/{id}/test', { params: { path: { id } } }));
  }

  /** Key rotation (docs/keys.md): add the next key (made by Grantry without a body). */
  rotateKey(id: string, body: Schemas['RotateKeyRequest'] = {}): Promise<AuthenticationView> {
    return read(this.#api.POST('/api/authentications/{id}/rotate-key', { params: { path: { id } }, body }));
  }

  /** Key rotation: the next key signs (checked with a token request). */
  activateKey(id: string): Promise<AuthenticationView> {
    return read(
      this.#api.POST('/api/authentications/{id}/rotate-key/activate', { params: { path: { id } } }),
    );
  }

  /** Key rotation: the retiring key is dropped. */
  finishKeyRotation(id: string): Promise<AuthenticationView> {
    return read(this.#api.POST('/api/authentications/{id}/rotate-key/finish', { params: { path: { id } } }));
  }

  async invalidateAuthentication(id: string): Promise<void> {
    await read(this.#api.POST('/api/authentications/{id}/invalidate', { params: { path: { id } } }));
  }

  authorize(id: string, expiresInSeconds?: number): Promise<Schemas['AuthorizeResult']> {
    const body = expiresInSeconds === undefined ? {} : { expiresInSeconds };
    return read(this.#api.POST('/api/authentications/{id}/authorize', { params: { path: { id } }, body }));
  }

  listEvents(id: string): Promise<Schemas['EventList']> {
    return read(this.#api.GET('/api/authentications/{id}/events', { params: { path: { id } } }));
  }

  listProviders(): Promise<Schemas['ProviderPresetList']> {
    return read(this.#api.GET('/api/providers'));
  }

  discover(issuer: string): Promise<DiscoveryResult> {
    return read(this.#api.GET('/api/discovery', { params: { query: { issuer } } }));
  }

  listConnectors(query: ListQuery = {}): Promise<Schemas['ConnectorList']> {
    return read(this.#api.GET('/api/connectors', { params: { query: listQuery(query) } }));
  }

  getConnector(id: string): Promise<ConnectorView> {
    return read(this.#api.GET('/api/connectors/{id}', { params: { path: { id } } }));
  }

  createConnector(body: ConnectorCreate): Promise<ConnectorView> {
    return read(this.#api.POST('/api/connectors', { body }));
  }

  updateConnector(id: string, patch: ConnectorPatch): Promise<ConnectorView> {
    return read(this.#api.PATCH('/api/connectors/{id}', { params: { path: { id } }, body: patch }));
  }

  async deleteConnector(id: string): Promise<void> {
    await read(this.#api.DELETE('/api/connectors/{id}', { params: { path: { id } } }));
  }

  testConnector(id: string, request: ConnectorTestRequest): Promise<ConnectorTestResult> {
    return read(this.#api.POST('/api/connectors/{id}/test', { params: { path: { id } }, body: request }));
  }

  /** Webhooks are paged by cursor only (the API has no name search for them). */
  listWebhooks(query: ListQuery = {}): Promise<Schemas['WebhookList']> {
    const { q: _ignored, ...page } = listQuery(query);
    return read(this.#api.GET('/api/webhooks', { params: { query: page } }));
  }

  getWebhook(id: string): Promise<WebhookView> {
    return read(this.#api.GET('/api/webhooks/{id}', { params: { path: { id } } }));
  }

  /** The answer carries the signing secret: the only time it is shown. */
  createWebhook(body: WebhookCreate): Promise<WebhookCreated> {
    return read(this.#api.POST('/api/webhooks', { body }));
  }

  updateWebhook(id: string, patch: WebhookPatch): Promise<WebhookView> {
    return read(this.#api.PATCH('/api/webhooks/{id}', { params: { path: { id } }, body: patch }));
  }

  async deleteWebhook(id: string): Promise<void> {
    await read(this.#api.DELETE('/api/webhooks/{id}', { params: { path: { id } } }));
  }

  listWebhookDeliveries(id: string): Promise<Schemas['WebhookDeliveryList']> {
    return read(this.#api.GET('/api/webhooks/{id}/deliveries', { params: { path: { id } } }));
  }

  sendTestWebhook(id: string): Promise<WebhookDeliveryView> {
    return read(this.#api.POST('/api/webhooks/{id}/test', { params: { path: { id } } }));
  }
}
