import { randomBytes } from 'node:crypto';
import type { ProblemBody } from '../problem.js';

/** What `/oauth/redirect` posts to its opener (web/src/oauth-connect.ts reads exactly this). */
export interface OAuthRedirectMessage {
  type: 'grantry:oauth';
  authenticationId: string;
  ok: boolean;
  error?: { code: string; message: string; hint?: string };
}

export interface RedirectPageInput {
  ok: boolean;
  /** null when the response could not be tied to an authentication: then nothing is posted. */
  authenticationId: string | null;
  authenticationName: string | null;
  problem: ProblemBody | null;
  /** Grantry's own origin (from GRANTRY_PUBLIC_URL): the only target of the postMessage. */
  grantryOrigin: string;
  /** Where "Back to Grantry" leads when the page is not a popup. */
  homeUrl: string;
}

export interface RedirectPage {
  html: string;
  headers: Record<string, string>;
}

/**
 * The small, self-contained page that ends an authorization in the browser. It says what happened in
 * plain words, tells the opener (Grantry's UI) the outcome by postMessage to Grantry's own origin only,
 * and closes itself after a success when it is a popup. Nothing it shows comes from the request
 * unescaped, and it never shows the code or the state. One nonce allows its one script and style.
 */
export function renderRedirectPage(input: RedirectPageInput): RedirectPage {
  const nonce = randomBytes(16).toString('base64');
  const message: OAuthRedirectMessage | null =
    input.authenticationId === null
      ? null
      : {
          type: 'grantry:oauth',
          authenticationId: input.authenticationId,
          ok: input.ok,
          ...(input.problem !== null ? { error: errorOf(input.problem) } : {}),
        };
  const title = input.ok ? 'Connected' : 'Not connected';
  const name = input.authenticationName === null ? '' : ` “${escapeHtml(input.authenticationName)}”`;
  const body: string[] = [];
  if (input.ok) {
    // A popup closes itself (script below); a full-page flow goes on with the link at the bottom.
    body.push(
      `<p>The authentication${name} is connected: the provider granted access, and Grantry now holds its tokens and keeps them fresh.</p>`,
    );
  } else {
    const problem = input.problem;
    body.push(`<p>Nothing was connected${name}.</p>`);
    if (problem !== null) {
      body.push(`<p>${escapeHtml(problem.message)}</p>`);
      const provider = problem.provider;
      const alreadySaid =
        provider?.error !== undefined &&
        problem.message.includes(provider.error) &&
        (provider.errorDescription === undefined || problem.message.includes(provider.errorDescription));
      if (provider?.error !== undefined && !alreadySaid) {
        const description =
          provider.errorDescription === undefined ? '' : `: ${escapeHtml(provider.errorDescription)}`;
        body.push(`<p>The provider said <code>${escapeHtml(provider.error)}</code>${description}</p>`);
      }
      if (problem.hint !== undefined) body.push(`<p class="hint">${escapeHtml(problem.hint)}</p>`);
    }
  }
  body.push(`<p><a href="${escapeHtml(input.homeUrl)}">Back to Grantry</a></p>`);

  const script = `(function () {
  var message = ${scriptJson(message)};
  var origin = ${scriptJson(input.grantryOrigin)};
  var opener = window.opener;
  if (!opener || opener === window) return;
  if (message !== null) {
    try { opener.postMessage(message, origin); } catch (e) { return; }
  }
  if (message !== null && message.ok) window.close();
})();`;
  const style = `body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.4rem}.ok{color:#14632d}.failed{color:#9b1c1c}.hint{background:#f4f4f4;padding:.6rem .8rem;border-radius:4px}
code{font-size:.95em}`;

  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title} · Grantry</title>
<style nonce="${nonce}">${style}</style>
</head>
<body>
<main>
<h1 class="${input.ok ? 'ok' : 'failed'}">${title}</h1>
${body.join('\n')}
</main>
<script nonce="${nonce}">${script}</script>
</body>
</html>
`;
  return {
    html,
    headers: lockedDownPageHeaders(nonce, { script: true }),
  };
}

/** A plain page that says one thing (a connect link that cannot be used): no script, nothing from the request. */
export function renderNoticePage(input: {
  title: string;
  paragraphs: readonly string[];
  homeUrl: string;
}): RedirectPage {
  const nonce = randomBytes(16).toString('base64');
  const style =
    'body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}h1{font-size:1.4rem}';
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(input.title)} · Grantry</title>
<style nonce="${nonce}">${style}</style>
</head>
<body>
<main>
<h1>${escapeHtml(input.title)}</h1>
${input.paragraphs.map((p) => `<p>${escapeHtml(p)}</p>`).join('\n')}
<p><a href="${escapeHtml(input.homeUrl)}">Grantry</a></p>
</main>
</body>
</html>
`;
  return {
    html,
    headers: lockedDownPageHeaders(nonce, { script: false }),
  };
}

/**
 * The fields of a page Grantry serves outside the console: nothing loads but its own inline style
 * (and script, when it has one) by nonce, it cannot be framed, posts nowhere, and is never cached.
 */
function lockedDownPageHeaders(nonce: string, page: { script: boolean }): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'content-security-policy': [
      "default-src 'none'",
      ...(page.script ? [`script-src 'nonce-${nonce}'`] : []),
      `style-src 'nonce-${nonce}'`,
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  };
}

function errorOf(problem: ProblemBody): NonNullable<OAuthRedirectMessage['error']> {
  return {
    code: problem.code,
    message: problem.message,
    ...(problem.hint !== undefined ? { hint: problem.hint } : {}),
  };
}

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/** JSON that is safe inside a <script> element: no `</script>`, no `<!--`, no line separators. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}
