import type { ProviderPreset } from './provider-preset.js';

const GRANT_NAMES: Record<string, string> = {
  authorization_code: 'Authorization Code',
  client_credentials: 'Client Credentials',
  password: 'Password',
  jwt_bearer: 'JWT bearer',
};
const TYPE_NAMES: Record<string, string> = {
  oauth2: 'OAuth 2.0',
  api_key: 'API key',
  basic: 'Basic',
  bearer: 'Bearer token',
};

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/**
 * docs/providers.md, generated from the preset files (`npm run docs:providers`); a test checks that
 * the committed page is what this renders, so the page cannot drift from the presets.
 */
export function renderProvidersDoc(presets: readonly ProviderPreset[]): string {
  const rows = [...presets]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((p) => {
      const kinds = TYPE_NAMES[p.type] ?? p.type;
      const grants = p.grantTypes.map((g) => GRANT_NAMES[g] ?? g).join(', ') || '—';
      const placeholders = p.placeholders.map((ph) => `\`{${ph.name}}\``).join(' ');
      const notes = p.notes.slice(0, 2).join(' ');
      const links = `[set-up](${p.docs.setup}) · [endpoints](${p.docs.endpoints})`;
      return `| ${cell(p.name)} (\`${p.id}\`) | ${kinds} | ${grants} | ${placeholders || '—'} | ${cell(notes)} | ${links} |`;
    });
  return [
    '# Provider presets',
    '',
    '<!-- Generated from src/providers/presets/*.json by `npm run docs:providers`; do not edit by hand. -->',
    '',
    `Grantry ships ${presets.length} presets. Start an authentication from one in the console (New`,
    'Authentication › Start from a provider) or with `POST /api/authentications` and `"provider": "<id>"`',
    '(plus `"providerParams"` for the placeholders): the preset fills every field the request leaves out.',
    'Each preset was taken from the provider documentation it links to; the full entry, with scopes',
    'and every note, is `GET /api/providers/<id>`.',
    '',
    '| provider | kind | grants | placeholders | notes | documentation |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
