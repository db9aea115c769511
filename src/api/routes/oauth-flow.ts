import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { discover } from '../../oauth/discovery.js';
import { Problem } from '../../problem.js';
import { checkUrl, throwIfInvalid } from '../../services/field-checks.js';
import {
  type BrowserBinding,
  browserCookieNameForState,
  FLOW_LIFETIME_MS,
  type FlowOutcome,
} from '../../tokens/authorization-flow.js';
import type { ApiContext } from '../context.js';
import { renderNoticePage, renderRedirectPage } from '../redirect-page.js';
import { schemaErrorsOf } from '../request-validation.js';
import {
  AuthorizeRequestSchema,
  AuthorizeResultSchema,
  DiscoveryResultSchema,
  ErrorResponseSchema,
} from '../schemas.js';
import type { TypeBoxProvider } from '../type-provider.js';

const IdParams = Type.Object({ id: Type.String() });

/**
 * The Authorization Code flow in the browser (docs/api.md "Authentications": authorize, `/oauth/redirect`)
 * and issuer discovery for the forms (`/api/discovery`).
 */
export async function oauthFlowRoutes(app: FastifyInstance, context: ApiContext): Promise<void> {
  const server = app.withTypeProvider<TypeBoxProvider>();
  const { config } = context;
  const service = context.authentications;
  const publicUrl = new URL(config.publicUrl);
  const secureCookie = publicUrl.protocol === 'https:';
  // The browser-binding cookie is sent only to the redirect route, as the browser sees it: under
  // the public URL's path when Grantry is served below a prefix (https://host/grantry/oauth/…).
  const cookiePath = `${publicUrl.pathname.replace(/\/+$/, '')}/oauth`;
  const homeUrl = `${config.publicUrl}/`;

  server.post(
    '/api/authentications/:id/authorize',
    {
      schema: {
        tags: ['Authentications'],
        operationId: 'authorizeAuthentication',
        summary: 'Start connecting an Authorization Code authentication',
        description:
          'Answers the provider’s authorization URL (state, PKCE S256 challenge, our redirect_uri) and sets an HttpOnly cookie binding the flow to this browser (finish within 10 minutes, in the same browser); and connectUrl, a one-time link for any browser — e.g. sent to the account’s owner — that binds the flow to the browser that opens it, working once until expiresAt (body expiresInSeconds, 60 to 604800, default 900).',
        params: IdParams,
        body: Type.Optional(AuthorizeRequestSchema),
        response: { 200: AuthorizeResultSchema, 400: ErrorResponseSchema, 404: ErrorResponseSchema },
      },
      attachValidation: true,
    },
    async (request, reply) => {
      // No body at all means the defaults, which a body schema cannot say.
      throwIfInvalid(request.body === undefined || request.body === null ? [] : schemaErrorsOf(request), []);
      const started = await service.authorize(request.params.id, {
        expiresInSeconds: request.body?.expiresInSeconds,
      });
      reply.header(
        'set-cookie',
        bindingCookie(started.browserBinding, FLOW_LIFETIME_MS / 1000, secureCookie, cookiePath),
      );
      return {
        authorizationUrl: started.authorizationUrl,
        connectUrl: started.connectUrl,
        expiresAt: new Date(started.expiresAt).toISOString(),
      };
    },
  );

  server.get(
    '/oauth/connect/:token',
    {
      schema: {
        tags: ['Authentications'],
        operationId: 'openConnectLink',
        summary: 'Open a connect link',
        description:
          'Unauthenticated (the link is the proof). Binds a new flow to this browser with a cookie and redirects to the provider (302); a used or expired link answers a page that says so (410), an unknown one 404.',
        params: Type.Object({ token: Type.String({ maxLength: 200 }) }),
        response: {
          302: Type.Null({ description: 'To the provider’s authorization page (Location).' }),
          400: ErrorResponseSchema,
          404: htmlPage('There is no such link: a page that says so.'),
          410: htmlPage('The link was used, has expired or is out of date: a page that says which.'),
        },
      },
    },
    async (request, reply) => {
      const opened = await service.openConnectLink(request.params.token);
      if (opened.outcome === 'started') {
        reply.header(
          'set-cookie',
          bindingCookie(opened.flow.browserBinding, FLOW_LIFETIME_MS / 1000, secureCookie, cookiePath),
        );
        reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
        return reply.redirect(opened.flow.authorizationUrl, 302);
      }
      const page = renderNoticePage({ ...CONNECT_LINK_PAGES[opened.outcome], homeUrl });
      return reply
        .status(opened.outcome === 'unknown' ? 404 : 410)
        .headers(page.headers)
        .send(page.html);
    },
  );

  server.get(
    '/oauth/redirect',
    {
      // Parameters are read from the raw query (duplicates must be seen, not coerced); the schema documents them.
      attachValidation: true,
      schema: {
        tags: ['Authentications'],
        operationId: 'finishAuthorization',
        summary: 'Where the provider sends the browser back (Authorization Code flow)',
        description:
          'Unauthenticated. Completes the flow and answers a small HTML page that says what happened and posts {type:"grantry:oauth",authenticationId,ok,error?} to the opener (Grantry’s origin only).',
        querystring: Type.Object({
          code: Type.Optional(Type.String()),
          state: Type.Optional(Type.String()),
          iss: Type.Optional(Type.String()),
          error: Type.Optional(Type.String()),
          error_description: Type.Optional(Type.String()),
          error_uri: Type.Optional(Type.String()),
        }),
        response: {
          200: htmlPage('Connected: a page that says so and tells the console that opened it.'),
          400: htmlPage(
            'The callback is not valid (invalid_state, or the provider refused): a page that says why.',
          ),
          500: htmlPage(
            'Something went wrong inside Grantry: a page that says so (the log has the details).',
          ),
          502: htmlPage('The code could not be exchanged for a token: a page with the diagnosis.'),
        },
      },
    },
    async (request, reply) => {
      const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
      const parameters = new URLSearchParams(query);
      let outcome: FlowOutcome;
      let name: string | null = null;
      try {
        ({ outcome, name } = await service.finishAuthorization(
          parameters,
          parseCookies(request.headers.cookie),
        ));
      } catch (error) {
        outcome = {
          ok: false,
          authenticationId: null,
          stage: 'state',
          problem: new Problem(
            'internal_error',
            'Something went wrong inside Grantry; the details are in its log.',
            {
              cause: error,
            },
          ),
        };
      }
      if (!outcome.ok && outcome.problem.code === 'internal_error') {
        const cause = outcome.problem.cause;
        request.log.error(
          {
            reqId: request.id,
            err: cause instanceof Error ? { name: cause.name, stack: cause.stack } : { type: typeof cause },
          },
          'authorization redirect failed',
        );
      }
      const page = renderRedirectPage({
        ok: outcome.ok,
        authenticationId: outcome.authenticationId,
        authenticationName: name,
        problem: outcome.ok ? null : outcome.problem.toJSON(),
        grantryOrigin: publicUrl.origin,
        homeUrl,
      });
      const state = parameters.get('state');
      if (state !== null && state !== '') {
        // The flow is over either way: its cookie has nothing left to bind.
        const cookie = { name: browserCookieNameForState(state), value: '' };
        reply.header('set-cookie', bindingCookie(cookie, 0, secureCookie, cookiePath));
      }
      reply.status(pageStatus(outcome)).headers(page.headers);
      return reply.send(page.html);
    },
  );

  server.get(
    '/api/discovery',
    {
      attachValidation: true,
      schema: {
        tags: ['Discovery'],
        operationId: 'discoverIssuer',
        summary: 'Read an issuer’s OAuth metadata (RFC 8414 / OpenID Connect Discovery)',
        description:
          'Fills an authentication form from an issuer URL. Fields are null when the provider does not publish them. 502 when the metadata cannot be read or names another issuer.',
        querystring: Type.Object({ issuer: Type.String({ minLength: 1, maxLength: 2000 }) }),
        response: { 200: DiscoveryResultSchema, 400: ErrorResponseSchema, 502: ErrorResponseSchema },
      },
    },
    async (request) => {
      const schemaErrors = schemaErrorsOf(request).map((e) => ({ ...e, path: `/query${e.path}` }));
      const issuer = (request.query as { issuer?: unknown }).issuer;
      const ruleErrors = [];
      let insecure = false;
      if (typeof issuer === 'string' && schemaErrors.length === 0) {
        const result = checkUrl(issuer, config.allowHttp);
        if (result.rule !== 'ok') {
          insecure = result.rule === 'insecure';
          ruleErrors.push({ path: '/query/issuer', message: result.message ?? 'must be an https URL' });
        }
      }
      throwIfInvalid(schemaErrors, ruleErrors, insecure);
      const found = await discover(issuer as string, {
        fetch: context.egress.fetch,
        timeoutMs: config.tokenTimeoutMs,
      });
      return {
        issuer: found.issuer,
        authorizationUrl: found.authorizationUrl,
        tokenUrl: found.tokenUrl,
        revocationUrl: found.revocationUrl,
        grantTypes: found.grantTypes,
        clientAuthMethods: found.clientAuthMethods,
        scopes: found.scopes,
      };
    },
  );
}

/** An answer that is a page for a person, documented in Fastify's form for answers by media type. */
function htmlPage(description: string) {
  return { description, content: { 'text/html': { schema: Type.String() } } };
}

/** What a connect link that cannot be used says, in words for the person who clicked it. */
const CONNECT_LINK_PAGES = {
  used: {
    title: 'This link was already used',
    paragraphs: [
      'A connect link works once, and this one has been opened before.',
      'Ask whoever sent it for a new link (Connect › Copy connect link in Grantry).',
    ],
  },
  expired: {
    title: 'This link has expired',
    paragraphs: [
      'Connect links work for a limited time (15 minutes unless a longer time was chosen), and this one is past it.',
      'Ask whoever sent it for a new link.',
    ],
  },
  changed: {
    title: 'This link is out of date',
    paragraphs: [
      'The authentication’s settings changed after this link was made, so it no longer applies.',
      'Ask whoever sent it for a new link.',
    ],
  },
  unknown: {
    title: 'There is no such link',
    paragraphs: ['Check that the whole link was copied; otherwise ask whoever sent it for a new one.'],
  },
} as const;

function pageStatus(outcome: FlowOutcome): 200 | 400 | 500 | 502 {
  if (outcome.ok) return 200;
  if (outcome.problem.code === 'internal_error') return 500;
  // The provider or the network failed Grantry at the code exchange; anything earlier is a bad request.
  return outcome.stage === 'exchange' ? 502 : 400;
}

/** HttpOnly (no script reads it), SameSite=Lax (sent on the provider's top-level redirect back). */
function bindingCookie(
  binding: BrowserBinding,
  maxAgeSeconds: number,
  secure: boolean,
  path: string,
): string {
  const parts = [
    `${binding.name}=${binding.value}`,
    `Path=${path}`,
    `Max-Age=${maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Lax',
  ];
  if (secure) parts.push('Secure');
  return parts.join('; ');
}

/** RFC 6265 §5.4 `Cookie` header → name/value pairs; the first of a repeated name wins. */
export function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = Object.create(null);
  if (header === undefined) return cookies;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    if (name === '' || Object.hasOwn(cookies, name)) continue;
    cookies[name] = pair.slice(eq + 1).trim();
  }
  return cookies;
}
