import { describe, expect, it } from 'vitest';
import { escapeHtml, renderRedirectPage } from './redirect-page.js';

const base = {
  authenticationId: 'auth_abc',
  authenticationName: 'CRM <prod>',
  grantryOrigin: 'https://grantry.example.com',
  homeUrl: 'https://grantry.example.com/',
};

function scriptOf(html: string): string {
  return /<script nonce="[^"]+">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
}

describe('renderRedirectPage', () => {
  it('allows only its own script and style through the CSP nonce, and sends no referrer and no cache', () => {
    const { html, headers } = renderRedirectPage({ ...base, ok: true, problem: null });
    const csp = headers['content-security-policy'] ?? '';
    expect(csp).toContain("default-src 'none'");
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain(`style-src 'nonce-${nonce}'`);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(html).toContain(`<style nonce="${nonce}">`);
    expect(headers['referrer-policy']).toBe('no-referrer');
    expect(headers['cache-control']).toBe('no-store');
    // A fresh nonce per page.
    expect(
      renderRedirectPage({ ...base, ok: true, problem: null }).headers['content-security-policy'],
    ).not.toBe(csp);
  });

  it('posts the outcome to Grantry’s own origin only, and closes a popup after a success', () => {
    const script = scriptOf(renderRedirectPage({ ...base, ok: true, problem: null }).html);
    expect(script).toContain('{"type":"grantry:oauth","authenticationId":"auth_abc","ok":true}');
    expect(script).toContain('opener.postMessage(message, origin)');
    expect(script).toContain('var origin = "https://grantry.example.com"');
    expect(script).toContain('window.close()');
    expect(script).not.toContain("'*'");
  });

  it('escapes everything that came from the provider or the configuration', () => {
    const { html } = renderRedirectPage({
      ...base,
      ok: false,
      problem: {
        code: 'access_denied',
        message: 'The provider answered "access_denied".',
        hint: 'Authorize again & approve.',
        provider: { error: 'access_denied', errorDescription: '</script><script>alert(1)</script>' },
      },
    });
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain('&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('“CRM &lt;prod&gt;”');
    expect(html).toContain('Authorize again &amp; approve.');
    // Inside the script the JSON cannot close the element either.
    const script = scriptOf(html);
    expect(script).toContain('"ok":false');
    expect(script).toContain('"error":{"code":"access_denied"');
    expect(script).not.toContain('</');
  });

  it('posts nothing when the response belongs to no authentication', () => {
    const { html } = renderRedirectPage({
      ...base,
      authenticationId: null,
      authenticationName: null,
      ok: false,
      problem: { code: 'invalid_state', message: 'No such flow.' },
    });
    expect(scriptOf(html)).toContain('var message = null');
    expect(html).toContain('Nothing was connected.');
  });
});

describe('escapeHtml', () => {
  it('escapes the five characters that matter in text and attributes', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });
});
