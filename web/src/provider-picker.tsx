import { useEffect, useId, useMemo, useState } from 'react';
import type { ApiClient, AuthenticationView, ProviderPreset } from './api-client.js';
import type { AuthenticationDraft } from './authentication-draft.js';
import { RedirectUri } from './connect-panel.js';
import { useConsoleData } from './console-data.js';
import { errorFor, type FieldErrors, TextField } from './field.js';
import { ServiceAccountImport } from './service-account-import.js';

interface Catalogue {
  items: ProviderPreset[];
  redirectUri: string;
}

/** The presets, read once per page: they change only with a new version of Grantry. */
let catalogue: Promise<Catalogue> | null = null;

function loadCatalogue(api: ApiClient): Promise<Catalogue> {
  catalogue ??= api.listProviders().catch((error: unknown) => {
    catalogue = null;
    throw error;
  });
  return catalogue;
}

export function useProviderCatalogue(): Catalogue | null {
  const { api } = useConsoleData();
  const [loaded, setLoaded] = useState<Catalogue | null>(null);
  useEffect(() => {
    let live = true;
    loadCatalogue(api)
      .then((value) => live && setLoaded(value))
      .catch(() => {});
    return () => {
      live = false;
    };
  }, [api]);
  return loaded;
}

const KIND_NAMES: Record<ProviderPreset['type'], string> = {
  oauth2: 'OAuth 2.0',
  api_key: 'API Key',
  basic: 'Basic Auth',
  bearer: 'Bearer Token',
};

function matches(preset: ProviderPreset, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const text = `${preset.name} ${preset.id}`.toLowerCase();
  return words.every((word) => text.includes(word));
}

/**
 * "Start from a provider": a search over the presets above a new authentication's form. Picking
 * one fills the form (onPick); the card then asks for the preset's placeholders and shows where to
 * register the app, the redirect URI to register there, the provider's notes and its common scopes.
 */
export function ProviderPicker(props: {
  idPrefix: string;
  draft: AuthenticationDraft;
  errors: FieldErrors;
  /** A preset picked, or null to start from scratch (`previous`: the preset given up). */
  onPick: (preset: ProviderPreset | null, previous: ProviderPreset | null) => void;
  onParam: (name: string, value: string) => void;
  onAddScope: (scope: string) => void;
  /** An authentication saved from the picker itself (Google's "Import Google service account"). */
  onImported?: (view: AuthenticationView) => void;
}) {
  const { idPrefix, draft, errors, onPick, onParam, onAddScope, onImported } = props;
  const loaded = useProviderCatalogue();
  const [query, setQuery] = useState('');
  const [active, setActive] = useState(0);
  const listId = useId();
  const chosen = loaded?.items.find((preset) => preset.id === draft.provider) ?? null;
  const found = useMemo(
    () =>
      loaded === null || query.trim() === '' ? [] : loaded.items.filter((p) => matches(p, query)).slice(0, 8),
    [loaded, query],
  );

  const pick = (preset: ProviderPreset) => {
    setQuery('');
    setActive(0);
    onPick(preset, null);
  };

  if (chosen !== null) {
    const grants = chosen.grantTypes;
    return (
      <section className="provider-card" aria-label={`Provider: ${chosen.name}`}>
        <div className="provider-card-head">
          <p>
            Starting from <strong>{chosen.name}</strong>{' '}
            <span className="muted">({KIND_NAMES[chosen.type]})</span>
          </p>
          <button type="button" className="button ghost small" onClick={() => onPick(null, chosen)}>
            Start from scratch
          </button>
        </div>
        <p>
          <a href={chosen.docs.setup} target="_blank" rel="noreferrer noopener">
            Register your app at {chosen.name}
          </a>{' '}
          ·{' '}
          <a href={chosen.docs.endpoints} target="_blank" rel="noreferrer noopener">
            Where these endpoints come from
          </a>
        </p>
        {grants.includes('authorization_code') && loaded && (
          <RedirectUri id={`${idPrefix}-preset-redirect`} uri={loaded.redirectUri} />
        )}
        {chosen.id === 'google' && onImported && (
          <ServiceAccountImport idPrefix={idPrefix} name={draft.name} onImported={onImported} />
        )}
        {chosen.placeholders.map((placeholder) => (
          <TextField
            key={placeholder.name}
            id={`${idPrefix}-providerParams-${placeholder.name}`}
            label={placeholder.label}
            value={draft.providerParams[placeholder.name] ?? ''}
            onChange={(value) => onParam(placeholder.name, value)}
            placeholder={placeholder.example}
            hint={`Fills {${placeholder.name}} in the URLs below, for example ${placeholder.example}.`}
            error={errorFor(errors, `/providerParams/${placeholder.name}`, placeholder.label)}
          />
        ))}
        {chosen.notes.length > 0 && (
          <details className="provider-notes" open>
            <summary>What to know about {chosen.name}</summary>
            <ul>
              {chosen.notes.map((note) => (
                <li key={note}>{note}</li>
              ))}
            </ul>
          </details>
        )}
        {chosen.scopes.length > 0 && (
          <details className="provider-scopes">
            <summary>Common scopes</summary>
            <ul>
              {chosen.scopes.map((scope) => (
                <li key={scope.value}>
                  <button
                    type="button"
                    className="button ghost small"
                    onClick={() => onAddScope(scope.value)}
                  >
                    + <code>{scope.value}</code>
                  </button>{' '}
                  <span className="muted">{scope.description}</span>
                </li>
              ))}
            </ul>
          </details>
        )}
      </section>
    );
  }

  return (
    <div className="field provider-picker">
      <label htmlFor={`${idPrefix}-provider-search`}>Start from a provider</label>
      <p className="field-hint" id={`${idPrefix}-provider-hint`}>
        {loaded === null
          ? 'Loading the provider presets…'
          : `Search ${loaded.items.length} providers (Google, Salesforce, Stripe…) to fill the endpoints, or fill the form yourself.`}
      </p>
      <input
        id={`${idPrefix}-provider-search`}
        type="search"
        role="combobox"
        aria-expanded={found.length > 0}
        aria-controls={listId}
        aria-autocomplete="list"
        aria-describedby={`${idPrefix}-provider-hint`}
        aria-activedescendant={found.length > 0 ? `${listId}-${active}` : undefined}
        autoComplete="off"
        value={query}
        placeholder="e.g. Salesforce"
        onChange={(event) => {
          setQuery(event.target.value);
          setActive(0);
        }}
        onKeyDown={(event) => {
          if (event.key === 'ArrowDown') {
            event.preventDefault();
            setActive((index) => Math.min(index + 1, found.length - 1));
          } else if (event.key === 'ArrowUp') {
            event.preventDefault();
            setActive((index) => Math.max(index - 1, 0));
          } else if (event.key === 'Enter' && found[active] !== undefined) {
            event.preventDefault();
            pick(found[active]);
          } else if (event.key === 'Escape') {
            setQuery('');
          }
        }}
      />
      {found.length > 0 && (
        <div className="provider-results" role="listbox" id={listId} aria-label="Providers">
          {found.map((preset, index) => (
            <div
              key={preset.id}
              id={`${listId}-${index}`}
              role="option"
              tabIndex={-1}
              aria-selected={index === active}
              className={index === active ? 'active' : undefined}
              onMouseDown={(event) => event.preventDefault()}
              onClick={() => pick(preset)}
              onKeyDown={(event) => {
                if (event.key === 'Enter') pick(preset);
              }}
            >
              <span>{preset.name}</span> <span className="muted">{KIND_NAMES[preset.type]}</span>
            </div>
          ))}
        </div>
      )}
      {query.trim() !== '' && loaded !== null && found.length === 0 && (
        <p className="muted">No preset matches; fill the form yourself.</p>
      )}
    </div>
  );
}
