import { type FormEvent, useCallback, useEffect, useRef, useState } from 'react';
import { AUTHENTICATION_TYPES, type AuthenticationType, KINDS } from '../../src/services/catalogue/index.js';
import { useAnnounce } from './announcer.js';
import {
  type AuthenticationView,
  type ConnectorCreate,
  type ConnectorPatch,
  type ConnectorTestResult,
  type ConnectorView,
  type ExecuteResult,
  type ListQuery,
  type ProblemView,
  problemOf,
} from './api-client.js';
import {
  type AuthenticationDraft,
  AuthenticationForm,
  emptyAuthenticationDraft,
} from './authentication-form.js';
import { StatusBadge } from './authorization-page.js';
import { ConnectButton, RedirectUri } from './connect-panel.js';
import { useConsoleData, useNamesOf } from './console-data.js';
import { looksLikeCredentialHeader } from './credential-headers.js';
import { DeleteSection } from './delete-section.js';
import {
  ErrorSummary,
  errorFor,
  fieldErrorsOf,
  TextField,
  useFocusFirstError,
  withoutErrorsOf,
} from './field.js';
import { formatDateTime, formatExpiry, kindLabel, prettyJson } from './format.js';
import { type KeyValueRow, KeyValueRows, newRow, recordFromRows, rowsFromRecord } from './key-value-rows.js';
import { PageHeader } from './page-header.js';
import { ProblemMessage } from './problem-message.js';
import { useRevealOnChange } from './reveal.js';
import { ListSearch, ShowMore, useServerList } from './server-list.js';
import { SidePanel } from './side-panel.js';
import { useStickyState, useUnsavedChangesGuard } from './sticky-state.js';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
type Method = (typeof METHODS)[number];
/** Option values of the Authentication dropdown that open Create Authentication for a kind. */
const CREATE_PREFIX = '__create__:';

interface ConnectorDraft {
  name: string;
  baseUrl: string;
  headers: KeyValueRow[];
  /** Secret headers typed here (new, or replacing a stored one of the same name). */
  secretHeaders: KeyValueRow[];
  /** Names of stored secret headers to remove on save. */
  removedSecretHeaders: string[];
  query: KeyValueRow[];
  timeoutMs: string;
  /** The API statuses that make Grantry fetch a fresh token and retry once (docs/api.md refreshOn). */
  refreshOn: (401 | 403)[];
  authenticationId: string;
  creatingAuthentication: boolean;
  authenticationDraft: AuthenticationDraft;
  testMethod: Method;
  testPath: string;
  testBody: string;
}

function emptyConnectorDraft(): ConnectorDraft {
  return {
    name: '',
    baseUrl: '',
    headers: [],
    secretHeaders: [],
    removedSecretHeaders: [],
    query: [],
    timeoutMs: '30000',
    refreshOn: [401],
    authenticationId: '',
    creatingAuthentication: false,
    authenticationDraft: emptyAuthenticationDraft(),
    testMethod: 'GET',
    testPath: '',
    testBody: '',
  };
}

function draftFromConnector(view: ConnectorView): ConnectorDraft {
  return {
    ...emptyConnectorDraft(),
    name: view.name,
    baseUrl: view.baseUrl,
    headers: rowsFromRecord(view.headers),
    query: rowsFromRecord(view.query),
    timeoutMs: String(view.timeoutMs),
    refreshOn: view.refreshOn,
    authenticationId: view.authenticationId ?? '',
  };
}

/** A draft kept from before refreshOn existed has none: it means the default. */
function refreshOnOf(draft: ConnectorDraft): (401 | 403)[] {
  return draft.refreshOn ?? [401];
}

function isDefaultRefreshOn(refreshOn: readonly number[]): boolean {
  return refreshOn.length === 1 && refreshOn[0] === 401;
}

/** Secret headers to send: the typed ones, and `null` for each stored one removed. */
function secretHeadersOf(draft: ConnectorDraft): Record<string, string | null> {
  const secrets: Record<string, string | null> = {};
  for (const name of draft.removedSecretHeaders) secrets[name] = null;
  for (const [name, value] of Object.entries(recordFromRows(draft.secretHeaders))) {
    if (value !== '') secrets[name] = value;
  }
  return secrets;
}

/** The connector as typed; for a new one it is a create request (no secret header is removed). */
type ConnectorRequest = ConnectorPatch & { name: string; baseUrl: string };

/** The API's timeout when a connector names none (docs/api.md "Connectors": timeoutMs). */
const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The timeout as typed: empty is the API's default (left out of a create, `null` in a PATCH, which
 * the API takes as "back to the default"); a whole number goes as a number; anything else goes as
 * typed, so that the server names what is wrong with it (never `NaN`, which JSON sends as null).
 */
function timeoutOf(draft: ConnectorDraft): number | string | null {
  const timeout = draft.timeoutMs.trim();
  if (timeout === '') return null;
  return /^\d+$/.test(timeout) ? Number(timeout) : timeout;
}

/** The timeout a connector will use with this draft, for the form to show: null when it is not valid. */
function effectiveTimeoutOf(draft: ConnectorDraft): number | null {
  const timeout = timeoutOf(draft);
  if (timeout === null) return DEFAULT_TIMEOUT_MS;
  return typeof timeout === 'number' && timeout >= 1 && timeout <= 300_000 ? timeout : null;
}

function requestOf(draft: ConnectorDraft, forUpdate = false): ConnectorRequest {
  const body: ConnectorRequest = {
    name: draft.name.trim(),
    baseUrl: draft.baseUrl.trim(),
    authenticationId: draft.authenticationId || null,
    headers: recordFromRows(draft.headers),
    query: recordFromRows(draft.query),
  };
  const secrets = secretHeadersOf(draft);
  if (Object.keys(secrets).length > 0) body.secretHeaders = secrets;
  const timeout = timeoutOf(draft);
  // The schema refuses a string with a validation error that names /timeoutMs, as it should.
  if (timeout !== null) body.timeoutMs = timeout as number;
  else if (forUpdate) body.timeoutMs = null;
  // null is the default ([401]), so a connector that never chose follows the default.
  const refreshOn = refreshOnOf(draft);
  body.refreshOn = isDefaultRefreshOn(refreshOn) ? null : refreshOn;
  return body;
}

function isConnectorDirty(draft: ConnectorDraft, view: ConnectorView | undefined): boolean {
  if (!view) return true;
  const next = requestOf(draft, true);
  const same = (a: Record<string, string> | null | undefined, b: Record<string, string>) =>
    JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b).sort());
  return (
    next.name !== view.name ||
    next.baseUrl !== view.baseUrl ||
    (next.authenticationId ?? null) !== view.authenticationId ||
    !same(next.headers, view.headers) ||
    !same(next.query, view.query) ||
    next.secretHeaders !== undefined ||
    (next.timeoutMs ?? DEFAULT_TIMEOUT_MS) !== view.timeoutMs ||
    JSON.stringify(next.refreshOn ?? [401]) !== JSON.stringify(view.refreshOn)
  );
}

const NEW = 'new';

const connectorFieldLabels: Record<string, string> = {
  '/name': 'Name',
  '/baseUrl': 'Base URL',
  '/headers': 'Headers',
  '/secretHeaders': 'Secret headers',
  '/query': 'Query parameters',
  '/timeoutMs': 'Timeout',
  '/authenticationId': 'Authentication',
  '/refreshOn': 'Also refresh on 403',
};

/** Path B: Integrations › REST API connectors — the list and the configuration sidebar. */
export function ConnectorsPage() {
  const { api, connectors, authentications, loadProblem, listVersion, ensureConnector } = useConsoleData();
  const [query, setQuery] = useStickyState<string>('connectors.query', () => '');
  const fetchPage = useCallback((page: ListQuery) => api.listConnectors(page), [api]);
  // The page's list comes from the server (searched and paged there); rows show the freshest copy.
  const list = useServerList(fetchPage, query, listVersion);
  const rows = list.items.map((item) => connectors?.find((c) => c.id === item.id) ?? item);
  const [selected, setSelected] = useStickyState<string | null>('connectors.selected', () => null);
  const [drafts, setDrafts] = useStickyState<Record<string, ConnectorDraft>>('connectors.drafts', () => ({}));
  const selectedView = selected && selected !== NEW ? connectors?.find((c) => c.id === selected) : undefined;
  // One beyond the loaded ones (the console reads the first 500) is read by id; a gone one closes.
  const missing = selected && selected !== NEW && connectors !== null && !selectedView ? selected : null;
  useEffect(() => {
    if (missing === null) return;
    void ensureConnector(missing).then((view) => {
      if (view === null) setSelected((current) => (current === missing ? null : current));
    });
  }, [missing, ensureConnector, setSelected]);
  useNamesOf(
    'authentications',
    rows.map((connector) => connector.authenticationId),
  );
  const draftKey = selected ?? '';
  const draft = drafts[draftKey] ?? (selectedView ? draftFromConnector(selectedView) : emptyConnectorDraft());
  const authName = (id: string | null) =>
    id ? (authentications?.find((a) => a.id === id)?.name ?? id) : undefined;

  return (
    <div className={selected ? 'page with-panel' : 'page'}>
      <div className="page-main">
        <PageHeader
          section="Integrations"
          title="REST API connectors"
          action={
            <button type="button" className="button primary" onClick={() => setSelected(NEW)}>
              + New Connector
            </button>
          }
        >
          Each connector is a REST API that integration steps call. Attach an authentication and Grantry adds
          a valid token to every call.
        </PageHeader>
        {loadProblem && <ProblemMessage problem={loadProblem} role="alert" />}
        {list.problem && <ProblemMessage problem={list.problem} role="alert" />}
        <ListSearch id="connectors-search" label="Search connectors" value={query} onChange={setQuery} />
        {connectors === null && !loadProblem && <p className="muted">Loading connectors…</p>}
        {query.trim() !== '' && !list.loading && rows.length === 0 && (
          <p className="muted">No connector’s name contains “{query.trim()}”.</p>
        )}
        {query.trim() === '' && connectors && connectors.length === 0 && (
          <div className="empty">
            <p>No connectors yet.</p>
            <button type="button" className="button secondary" onClick={() => setSelected(NEW)}>
              Create a REST API connector
            </button>
          </div>
        )}
        {rows.length > 0 && (
          <div className="table-wrap">
            <table className="list">
              <caption className="visually-hidden">REST API connectors</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Base URL</th>
                  <th scope="col">Authentication</th>
                  <th scope="col" className="col-secondary">
                    Timeout
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((connector) => {
                  const auth = authentications?.find((a) => a.id === connector.authenticationId);
                  return (
                    <tr key={connector.id} className={connector.id === selected ? 'selected' : undefined}>
                      <th scope="row">
                        <button
                          type="button"
                          className="link-button"
                          aria-current={connector.id === selected ? 'true' : undefined}
                          onClick={() => setSelected(connector.id)}
                        >
                          {connector.name}
                        </button>
                      </th>
                      <td className="mono url-cell" title={connector.baseUrl} data-label="Base URL">
                        {connector.baseUrl}
                      </td>
                      <td data-label="Authentication">
                        {connector.authenticationId ? (
                          <span className="auth-cell">
                            {authName(connector.authenticationId)}{' '}
                            {auth && <StatusBadge status={auth.status} />}
                          </span>
                        ) : (
                          <span className="muted">None</span>
                        )}
                      </td>
                      <td className="col-secondary" data-label="Timeout">
                        {(connector.timeoutMs / 1000).toLocaleString()} s
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            <ShowMore list={list} />
          </div>
        )}
      </div>
      {selected && (selected === NEW || selectedView) && (
        <SidePanel
          panelKey={selected}
          eyebrow={selectedView ? 'REST API connector' : 'New connector'}
          title={selectedView ? selectedView.name : 'REST API connector'}
          onClose={() => setSelected(null)}
        >
          <ConnectorSidebar
            key={selected}
            existing={selectedView}
            draft={draft}
            onDraftChange={(next) => setDrafts((all) => ({ ...all, [draftKey]: next }))}
            onSaved={(view) => {
              setDrafts((all) => {
                const next = { ...all };
                const previous = next[draftKey];
                delete next[NEW];
                next[view.id] = {
                  ...draftFromConnector(view),
                  testMethod: previous?.testMethod ?? 'GET',
                  testPath: previous?.testPath ?? '',
                  testBody: previous?.testBody ?? '',
                };
                return next;
              });
              setSelected(view.id);
            }}
            onDeleted={() => setSelected(null)}
          />
        </SidePanel>
      )}
    </div>
  );
}

interface ConnectorSidebarProps {
  existing: ConnectorView | undefined;
  draft: ConnectorDraft;
  onDraftChange: (draft: ConnectorDraft) => void;
  onSaved: (view: ConnectorView) => void;
  onDeleted: () => void;
}

function ConnectorSidebar({
  existing,
  draft,
  onDraftChange: replaceDraft,
  onSaved,
  onDeleted,
}: ConnectorSidebarProps) {
  const {
    api,
    authentications,
    authenticationsComplete,
    upsertConnector,
    upsertAuthentication,
    removeConnector,
    reload,
  } = useConsoleData();
  const announce = useAnnounce();
  const [saving, setSaving] = useState(false);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const summaryRef = useRef<HTMLDivElement>(null);
  const errors = fieldErrorsOf(problem);
  const formId = `connector-form-${existing?.id ?? NEW}`;
  const focusError = useFocusFirstError(() => document.getElementById(formId), summaryRef);
  // A field's error goes as soon as the person changes that field.
  const onDraftChange = (next: ConnectorDraft) => {
    for (const key of Object.keys(next) as (keyof ConnectorDraft)[]) {
      if (next[key] !== draft[key]) setProblem((current) => withoutErrorsOf(current, `/${key}`));
    }
    replaceDraft(next);
  };
  const id = (name: string) => `${formId}-${name}`;
  const set = <K extends keyof ConnectorDraft>(key: K, value: ConnectorDraft[K]) =>
    onDraftChange({ ...draft, [key]: value });
  const dirty = isConnectorDirty(draft, existing);
  useUnsavedChangesGuard(existing ? dirty : Boolean(draft.name.trim() || draft.baseUrl.trim()));
  const selectedAuth = authentications?.find((a) => a.id === draft.authenticationId);
  useNamesOf('authentications', [draft.authenticationId]);
  // Beyond the first 500 the dropdown cannot hold them all: the server is searched by name instead.
  const [authQuery, setAuthQuery] = useState('');
  const fetchAuthentications = useCallback((page: ListQuery) => api.listAuthentications(page), [api]);
  const authSearch = useServerList(
    fetchAuthentications,
    authQuery,
    0,
    !authenticationsComplete && authQuery.trim() !== '',
  );
  const authOptions =
    !authenticationsComplete && authQuery.trim() !== ''
      ? [
          ...(selectedAuth && !authSearch.items.some((a) => a.id === selectedAuth.id) ? [selectedAuth] : []),
          ...authSearch.items,
        ]
      : (authentications ?? []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (saving) return;
    setSaving(true);
    try {
      const body = requestOf(draft, existing !== undefined);
      const saved = existing
        ? await api.updateConnector(existing.id, body)
        : await api.createConnector(body as ConnectorCreate);
      upsertConnector(saved);
      setProblem(null);
      announce(`Connector ${saved.name} saved`);
      // usedBy on authentications changed with the attachment.
      void reload();
      onSaved(saved);
    } catch (error) {
      setProblem(problemOf(error));
      focusError();
    } finally {
      setSaving(false);
    }
  };

  const chooseAuthentication = (value: string) => {
    if (value.startsWith(CREATE_PREFIX)) {
      const type = value.slice(CREATE_PREFIX.length) as AuthenticationType;
      const authenticationDraft =
        draft.authenticationDraft.type === type ? draft.authenticationDraft : emptyAuthenticationDraft(type);
      onDraftChange({ ...draft, creatingAuthentication: true, authenticationDraft });
      window.setTimeout(() => document.getElementById(`${id('new-auth')}-title`)?.focus(), 0);
      return;
    }
    const found = authSearch.items.find((a) => a.id === value);
    if (found && !authentications?.some((a) => a.id === value)) upsertAuthentication(found);
    onDraftChange({ ...draft, authenticationId: value, creatingAuthentication: false });
  };

  const onAuthenticationCreated = (view: AuthenticationView) => {
    upsertAuthentication(view);
    onDraftChange({
      ...draft,
      authenticationId: view.id,
      creatingAuthentication: false,
      authenticationDraft: emptyAuthenticationDraft(),
    });
    announce(`Authentication ${view.name} created and selected. Save the connector to attach it.`);
    window.setTimeout(() => document.getElementById(id('authenticationId'))?.focus(), 0);
  };

  return (
    <>
      <form id={formId} className="connector-form" noValidate onSubmit={(event) => void submit(event)}>
        <ErrorSummary
          problem={problem}
          summaryRef={summaryRef}
          fields={Object.entries(connectorFieldLabels).map(([pointer, label]) => ({
            pointer,
            label,
            id: id(pointer.slice(1)),
          }))}
        />
        <TextField
          id={id('name')}
          label="Name"
          value={draft.name}
          onChange={(value) => set('name', value)}
          error={errorFor(errors, '/name', connectorFieldLabels['/name'] ?? '')}
          placeholder="e.g. Billing API"
        />
        <TextField
          id={id('baseUrl')}
          label="Base URL"
          type="url"
          inputMode="url"
          value={draft.baseUrl}
          onChange={(value) => set('baseUrl', value)}
          error={errorFor(errors, '/baseUrl', connectorFieldLabels['/baseUrl'] ?? '')}
          placeholder="https://api.example.com/v1"
        />
        <KeyValueRows
          idPrefix={id('headers')}
          legend="Headers"
          description="Static headers sent on every call. Authorization is added from the authentication."
          keyLabel="Header"
          valueLabel="Value"
          addLabel="Add header"
          rows={draft.headers}
          onChange={(rows) => set('headers', rows)}
          error={errorFor(errors, '/headers', connectorFieldLabels['/headers'] ?? '')}
          rowNote={(row) =>
            looksLikeCredentialHeader(row.key.trim()) ? (
              <p className="kv-note note warning">
                {row.key.trim()} looks like a credential: plain headers are shown to anyone who can read this
                connector.{' '}
                <button
                  type="button"
                  className="button secondary small"
                  onClick={() =>
                    onDraftChange({
                      ...draft,
                      headers: draft.headers.filter((other) => other.id !== row.id),
                      secretHeaders: [...draft.secretHeaders, row],
                    })
                  }
                >
                  Make it secret
                </button>
              </p>
            ) : null
          }
        />
        <SecretHeaders
          idPrefix={id('secretHeaders')}
          draft={draft}
          storedNames={existing?.secretHeaderNames ?? []}
          onDraftChange={onDraftChange}
          error={errorFor(errors, '/secretHeaders', connectorFieldLabels['/secretHeaders'] ?? '')}
        />
        <KeyValueRows
          idPrefix={id('query')}
          legend="Query parameters"
          description="Static query parameters added to every call."
          keyLabel="Parameter"
          valueLabel="Value"
          addLabel="Add parameter"
          rows={draft.query}
          onChange={(rows) => set('query', rows)}
          error={errorFor(errors, '/query', connectorFieldLabels['/query'] ?? '')}
        />
        <TextField
          id={id('timeoutMs')}
          label="Timeout (milliseconds)"
          inputMode="numeric"
          value={draft.timeoutMs}
          onChange={(value) => set('timeoutMs', value)}
          error={errorFor(errors, '/timeoutMs', connectorFieldLabels['/timeoutMs'] ?? '')}
          placeholder={`${DEFAULT_TIMEOUT_MS} (the default)`}
          hint={<TimeoutHint draft={draft} />}
        />
        {!authenticationsComplete && (
          <div className="field">
            <label htmlFor={id('authenticationSearch')}>Find an authentication</label>
            <p className="field-hint" id={id('authenticationSearch-hint')}>
              There are more authentications than the list below holds (it shows the first{' '}
              {(authentications ?? []).length}). Type part of a name to choose among all of them.
            </p>
            <input
              id={id('authenticationSearch')}
              type="search"
              value={authQuery}
              placeholder="Name contains…"
              autoComplete="off"
              aria-describedby={id('authenticationSearch-hint')}
              onChange={(event) => setAuthQuery(event.target.value)}
            />
            {authQuery.trim() !== '' && !authSearch.loading && (
              <p className="muted" aria-live="polite">
                {authSearch.items.length === 0
                  ? `No authentication’s name contains “${authQuery.trim()}”.`
                  : `${authSearch.items.length}${authSearch.hasMore ? '+' : ''} found: choose one below.`}
              </p>
            )}
          </div>
        )}
        <div className={errors['/authenticationId'] ? 'field has-error' : 'field'}>
          <label htmlFor={id('authenticationId')}>Authentication</label>
          <select
            id={id('authenticationId')}
            value={
              draft.creatingAuthentication
                ? `${CREATE_PREFIX}${draft.authenticationDraft.type}`
                : draft.authenticationId
            }
            aria-invalid={errors['/authenticationId'] ? true : undefined}
            aria-describedby={errors['/authenticationId'] ? id('authenticationId-error') : undefined}
            onChange={(event) => chooseAuthentication(event.target.value)}
          >
            <option value="">No authentication</option>
            {draft.authenticationId !== '' && !authOptions.some((a) => a.id === draft.authenticationId) && (
              <option value={draft.authenticationId}>{draft.authenticationId}</option>
            )}
            {authOptions.map((auth) => (
              <option key={auth.id} value={auth.id}>
                {auth.name} — {kindLabel(auth)}
              </option>
            ))}
            <optgroup label="+ Create Authentication">
              {AUTHENTICATION_TYPES.map((type) => (
                <option key={type} value={`${CREATE_PREFIX}${type}`}>
                  Create Authentication · {KINDS[type].label}…
                </option>
              ))}
            </optgroup>
          </select>
          {errors['/authenticationId'] && (
            <p className="field-error" id={id('authenticationId-error')}>
              {errorFor(errors, '/authenticationId', 'Authentication')}
            </p>
          )}
        </div>
        {!draft.creatingAuthentication && selectedAuth && (
          <SelectedAuthentication authentication={selectedAuth} />
        )}
        {(draft.authenticationId !== '' || draft.creatingAuthentication) && (
          <div className={errors['/refreshOn'] ? 'field checkbox has-error' : 'field checkbox'}>
            <input
              id={id('refreshOn')}
              type="checkbox"
              checked={refreshOnOf(draft).includes(403)}
              aria-invalid={errors['/refreshOn'] ? true : undefined}
              aria-describedby={[id('refreshOn-hint'), errors['/refreshOn'] ? id('refreshOn-error') : '']
                .filter(Boolean)
                .join(' ')}
              onChange={(event) => set('refreshOn', event.target.checked ? [401, 403] : [401])}
            />
            <label htmlFor={id('refreshOn')}>Also refresh on 403</label>
            <p className="field-hint" id={id('refreshOn-hint')}>
              A 401 always gets one fresh token and one retry. Tick this for APIs that answer 403 to an
              expired or revoked token (Django OAuth Toolkit does); a 403 that names insufficient_scope never
              refreshes.
            </p>
            {errors['/refreshOn'] && (
              <p className="field-error" id={id('refreshOn-error')}>
                {errorFor(errors, '/refreshOn', 'Also refresh on 403')}
              </p>
            )}
          </div>
        )}
      </form>

      {draft.creatingAuthentication && (
        <div className="inline-create">
          <AuthenticationForm
            idPrefix={id('new-auth')}
            title={`Create Authentication · ${KINDS[draft.authenticationDraft.type].label}`}
            existing={null}
            draft={draft.authenticationDraft}
            onDraftChange={(next) => set('authenticationDraft', next)}
            onSaved={onAuthenticationCreated}
            onCancel={() => {
              onDraftChange({ ...draft, creatingAuthentication: false });
              window.setTimeout(() => document.getElementById(id('authenticationId'))?.focus(), 0);
            }}
          />
        </div>
      )}

      <div className="form-actions sticky">
        <button type="submit" form={formId} className="button primary" disabled={saving}>
          {saving ? 'Saving…' : existing ? 'Save connector' : 'Create connector'}
        </button>
        <span className="muted" aria-live="polite">
          {draft.creatingAuthentication
            ? 'Finish or cancel the new authentication first to attach it.'
            : dirty
              ? existing
                ? 'Unsaved changes.'
                : ''
              : 'All changes saved.'}
        </span>
      </div>

      {existing ? (
        <ConnectorTest connector={existing} draft={draft} onDraftChange={onDraftChange} dirty={dirty} />
      ) : (
        <p className="note info">Save the connector to test a call through it.</p>
      )}

      {existing && (
        <DeleteConnector
          connector={existing}
          onDeleted={() => {
            removeConnector(existing.id);
            void reload();
            onDeleted();
          }}
        />
      )}
    </>
  );
}

/** The range, and the timeout the connector will actually use: an empty field means the default. */
function TimeoutHint({ draft }: { draft: ConnectorDraft }) {
  const effective = effectiveTimeoutOf(draft);
  const seconds = (ms: number) => `${(ms / 1000).toLocaleString('en-US', { maximumFractionDigits: 3 })} s`;
  return (
    <>
      From 1 to 300000; empty means the default, {DEFAULT_TIMEOUT_MS} ({seconds(DEFAULT_TIMEOUT_MS)}).{' '}
      <span className="effective-timeout">
        {effective === null
          ? 'Not a valid timeout yet.'
          : draft.timeoutMs.trim() === ''
            ? `Calls will time out after ${seconds(effective)} (the default).`
            : `Calls will time out after ${seconds(effective)}.`}
      </span>
    </>
  );
}

/**
 * Headers whose values are secret: encrypted at rest and never shown again. Stored ones are listed
 * by name with Replace and Remove; new ones are typed into password inputs.
 */
function SecretHeaders(props: {
  idPrefix: string;
  draft: ConnectorDraft;
  storedNames: string[];
  onDraftChange: (draft: ConnectorDraft) => void;
  error: string | undefined;
}) {
  const { idPrefix, draft, storedNames, onDraftChange, error } = props;
  const typed = new Set(draft.secretHeaders.map((row) => row.key.trim().toLowerCase()));
  const kept = storedNames.filter((name) => !draft.removedSecretHeaders.includes(name) && !typed.has(name));
  return (
    <div className="secret-headers">
      {kept.length > 0 && (
        <ul className="stored-secrets" aria-label="Stored secret headers">
          {kept.map((name) => (
            <li key={name}>
              <code>{name}</code>
              <span className="badge neutral">
                <span aria-hidden="true">●●●● </span>set
              </span>
              <button
                type="button"
                className="button secondary small"
                aria-label={`Replace secret header ${name}`}
                onClick={() =>
                  onDraftChange({ ...draft, secretHeaders: [...draft.secretHeaders, newRow(name, '')] })
                }
              >
                Replace
              </button>
              <button
                type="button"
                className="button ghost small"
                aria-label={`Remove secret header ${name}`}
                onClick={() =>
                  onDraftChange({ ...draft, removedSecretHeaders: [...draft.removedSecretHeaders, name] })
                }
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      <KeyValueRows
        idPrefix={idPrefix}
        legend="Secret headers"
        description="Headers whose values are credentials (API keys, tokens): encrypted at rest and never shown again."
        keyLabel="Secret header"
        valueLabel="Secret value"
        addLabel="Add secret header"
        secretValues
        rows={draft.secretHeaders}
        onChange={(rows) => onDraftChange({ ...draft, secretHeaders: rows })}
        error={error}
      />
    </div>
  );
}

/** What the chosen authentication is, and for Authorization Code, how to connect it. */
function SelectedAuthentication({ authentication }: { authentication: AuthenticationView }) {
  return (
    <div className="selected-auth">
      <p className="panel-meta">
        <StatusBadge status={authentication.status} />
        <span className="muted">{kindLabel(authentication)}</span>
        {authentication.token && (
          <span className="muted">{formatExpiry(authentication.token.expiresAt)}</span>
        )}
      </p>
      {authentication.warnings.map((warning) => (
        <p key={warning} className="note warning">
          {warning}
        </p>
      ))}
      {authentication.grantType === 'authorization_code' && authentication.redirectUri && (
        <>
          <RedirectUri id={`selected-auth-${authentication.id}-redirect`} uri={authentication.redirectUri} />
          <ConnectButton key={authentication.id} authentication={authentication} />
        </>
      )}
    </div>
  );
}

function ConnectorTest({
  connector,
  draft,
  onDraftChange,
  dirty,
}: {
  connector: ConnectorView;
  draft: ConnectorDraft;
  onDraftChange: (draft: ConnectorDraft) => void;
  dirty: boolean;
}) {
  const { api, refreshAuthentication } = useConsoleData();
  const announce = useAnnounce();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ConnectorTestResult | null>(null);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const outputRef = useRevealOnChange<HTMLDivElement>(result ?? problem);
  const prefix = `connector-test-${connector.id}`;
  const hasBody = draft.testMethod === 'POST' || draft.testMethod === 'PUT' || draft.testMethod === 'PATCH';

  const run = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setProblem(null);
    try {
      const request: { method: Method; path?: string; body?: unknown } = { method: draft.testMethod };
      if (draft.testPath.trim()) request.path = draft.testPath.trim();
      if (hasBody && draft.testBody.trim()) {
        try {
          request.body = JSON.parse(draft.testBody);
        } catch {
          request.body = draft.testBody;
        }
      }
      const outcome = await api.testConnector(connector.id, request);
      setResult(outcome);
      const status = outcome.response ? ` — HTTP ${outcome.response.status}` : '';
      announce(outcome.ok ? `Test succeeded${status}` : `Test failed${status}`);
    } catch (error) {
      setResult(null);
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
      if (connector.authenticationId) void refreshAuthentication(connector.authenticationId);
    }
  };

  return (
    <section className="panel-section" aria-labelledby={`${prefix}-title`}>
      <h3 id={`${prefix}-title`}>Test a call</h3>
      <p className="muted">
        Fetches a token through the attached authentication, then calls the API with it.
      </p>
      {dirty && <p className="note warning">The test uses the saved connector. Save to test your changes.</p>}
      <form className="test-form" onSubmit={(event) => void run(event)} noValidate>
        <div className="test-request">
          <div className="field method">
            <label htmlFor={`${prefix}-method`}>Method</label>
            <select
              id={`${prefix}-method`}
              value={draft.testMethod}
              onChange={(event) => onDraftChange({ ...draft, testMethod: event.target.value as Method })}
            >
              {METHODS.map((method) => (
                <option key={method} value={method}>
                  {method}
                </option>
              ))}
            </select>
          </div>
          <TextField
            id={`${prefix}-path`}
            label="Path"
            optional
            value={draft.testPath}
            onChange={(value) => onDraftChange({ ...draft, testPath: value })}
            placeholder="/ (the base URL itself)"
          />
        </div>
        {hasBody && (
          <div className="field">
            <label htmlFor={`${prefix}-body`}>
              Body <span className="optional">(optional, JSON or text)</span>
            </label>
            <textarea
              id={`${prefix}-body`}
              rows={5}
              className="mono"
              spellCheck={false}
              value={draft.testBody}
              onChange={(event) => onDraftChange({ ...draft, testBody: event.target.value })}
            />
          </div>
        )}
        <div className="button-row">
          <button type="submit" className="button primary" disabled={busy}>
            {busy ? 'Testing…' : 'Test'}
          </button>
        </div>
      </form>
      <div className="test-output" role="status" aria-live="polite" ref={outputRef}>
        {problem && <ProblemMessage problem={problem} />}
        {result && <ConnectorTestView result={result} />}
      </div>
    </section>
  );
}

const sourceLabels = { cache: 'from cache', fetched: 'fetched', refreshed: 'refreshed' } as const;

function statusTone(status: number): string {
  if (status >= 200 && status < 300) return 'success';
  if (status >= 400) return 'error';
  return 'info';
}

export function ConnectorTestView({ result }: { result: ConnectorTestResult }) {
  const token = result.token;
  const response = result.response;
  return (
    <div className={result.ok ? 'result ok' : 'result failed'}>
      <p className="result-title">
        {result.ok ? (
          <span className="badge success">Success</span>
        ) : (
          <span className="badge error">Failed</span>
        )}{' '}
        {result.ok
          ? token?.kind
            ? 'The API accepted the credential.'
            : 'Token and API call both worked.'
          : 'The test did not succeed.'}
      </p>
      <ol className="steps">
        <li className={token && !token.ok ? 'step failed' : 'step'}>
          <h4>{token?.kind ? '1. Credential' : '1. Token'}</h4>
          {!token && <p className="muted">No authentication attached: the call was sent without a token.</p>}
          {token?.ok && token.kind && (
            <dl className="facts">
              <dt>Kind</dt>
              <dd>{KINDS[token.kind].label}</dd>
              <dt>Sent as</dt>
              <dd>{token.sentAs}</dd>
              <dt>Fetched</dt>
              <dd className="muted">Nothing: a static credential is sent as saved.</dd>
            </dl>
          )}
          {token?.ok && !token.kind && (
            <dl className="facts">
              <dt>Result</dt>
              <dd>
                <span className="badge success">OK</span> {token.source ? sourceLabels[token.source] : ''}
              </dd>
              {token.tokenType && (
                <>
                  <dt>Type</dt>
                  <dd>{token.tokenType}</dd>
                </>
              )}
              <dt>Scope</dt>
              <dd>{token.scope ? <code>{token.scope}</code> : <span className="muted">not stated</span>}</dd>
              <dt>Expiry</dt>
              <dd>
                {token.expiresAt ? (
                  <>
                    {formatExpiry(token.expiresAt)}{' '}
                    <span className="muted">({formatDateTime(token.expiresAt)})</span>
                  </>
                ) : (
                  'No expiry given'
                )}
              </dd>
            </dl>
          )}
          {token && !token.ok && token.error && <ProblemMessage problem={token.error} />}
        </li>
        <li className={response && response.status >= 400 ? 'step failed' : 'step'}>
          <h4>2. API call</h4>
          {response ? <ResponseView response={response} /> : <p className="muted">The API was not called.</p>}
        </li>
      </ol>
      {result.error &&
        token?.error?.code !== result.error.code &&
        response?.error?.code !== result.error.code && <ProblemMessage problem={result.error} />}
    </div>
  );
}

function ResponseView({ response }: { response: ExecuteResult }) {
  const payload = prettyJson(response.body);
  const headerEntries = Object.entries(response.headers);
  return (
    <>
      <dl className="facts">
        <dt>Status</dt>
        <dd>
          <span className={`badge ${statusTone(response.status)}`}>{response.status}</span>
        </dd>
        <dt>Time</dt>
        <dd>{Math.round(response.durationMs)} ms</dd>
        <dt>Attempts</dt>
        <dd>
          {response.attempts}
          {response.tokenRefreshed ? ' (the token was refreshed after a 401 and the call retried)' : ''}
        </dd>
      </dl>
      {response.error && (
        <div className="diagnosis">
          <p className="provider-label">Diagnosis</p>
          <ProblemMessage problem={response.error} providerLabel="The API said" />
        </div>
      )}
      <details className="headers">
        <summary>Response headers ({headerEntries.length})</summary>
        <dl className="facts compact mono">
          {headerEntries.map(([name, value]) => (
            <div key={name} className="fact">
              <dt>{name}</dt>
              <dd>{Array.isArray(value) ? value.join(', ') : value}</dd>
            </div>
          ))}
        </dl>
      </details>
      <p className="provider-label">Payload{response.truncated ? ' (truncated)' : ''}</p>
      {payload ? (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable payload must be reachable by keyboard (WCAG 2.1.1).
        <pre className="payload" tabIndex={0}>
          <code>{payload}</code>
        </pre>
      ) : (
        <p className="muted">Empty body.</p>
      )}
    </>
  );
}

function DeleteConnector({ connector, onDeleted }: { connector: ConnectorView; onDeleted: () => void }) {
  const { api } = useConsoleData();
  return (
    <DeleteSection
      id={connector.id}
      noun="connector"
      consequences={
        <p>
          Delete <strong>{connector.name}</strong>? Its authentication is kept.
        </p>
      }
      onDelete={async () => {
        await api.deleteConnector(connector.id);
        onDeleted();
      }}
    />
  );
}
