import { useCallback, useEffect, useRef, useState } from 'react';
import { AUTHENTICATION_TYPES, type AuthenticationType, KINDS } from '../../src/services/catalogue/index.js';
import { useAnnounce } from './announcer.js';
import {
  type AuthenticationStatus,
  type AuthenticationView,
  type ListQuery,
  problemOf,
} from './api-client.js';
import { AuthenticationActions } from './authentication-actions.js';
import {
  type AuthenticationDraft,
  AuthenticationForm,
  draftFromAuthentication,
  emptyAuthenticationDraft,
} from './authentication-form.js';
import { useConsoleData, useNamesOf } from './console-data.js';
import { DeleteSection } from './delete-section.js';
import { formatDateTime, formatExpiry, kindLabel, statusLabels } from './format.js';
import { KeysSection } from './keys-section.js';
import { PageHeader } from './page-header.js';
import { ProblemMessage } from './problem-message.js';
import { ListSearch, ShowMore, useServerList } from './server-list.js';
import { SidePanel } from './side-panel.js';
import { useStickyState } from './sticky-state.js';

const statusTones: Record<AuthenticationStatus, string> = {
  ready: 'info',
  connected: 'success',
  needs_authorization: 'warning',
  error: 'error',
};

export function StatusBadge({ status }: { status: AuthenticationStatus }) {
  return <span className={`badge ${statusTones[status]}`}>{statusLabels[status]}</span>;
}

const NEW = 'new';

/** Path A: Security › Authorization — the list of authentications and their configuration panel. */
export function AuthorizationPage() {
  const {
    api,
    authentications,
    connectors,
    loadProblem,
    listVersion,
    upsertAuthentication,
    ensureAuthentication,
  } = useConsoleData();
  const [query, setQuery] = useStickyState<string>('authorization.query', () => '');
  const fetchPage = useCallback((page: ListQuery) => api.listAuthentications(page), [api]);
  // The page's list comes from the server (searched and paged there); rows show the freshest copy.
  const list = useServerList(fetchPage, query, listVersion);
  const rows = list.items.map((item) => authentications?.find((a) => a.id === item.id) ?? item);
  const announce = useAnnounce();
  const [selected, setSelected] = useStickyState<string | null>('authorization.selected', () => null);
  const [drafts, setDrafts] = useStickyState<Record<string, AuthenticationDraft>>(
    'authorization.drafts',
    () => ({}),
  );
  const [menuOpen, setMenuOpen] = useState(false);
  /** What the last deletion did, shown until the next one (the panel that said it is gone). */
  const [notice, setNotice] = useState<string | null>(null);
  const menuRef = useRef<HTMLDivElement>(null);
  const firstItemRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!menuOpen) return;
    firstItemRef.current?.focus();
    // A click or focus that leaves the menu closes it.
    const closeOutside = (event: Event) => {
      if (!menuRef.current?.contains(event.target as Node | null)) setMenuOpen(false);
    };
    document.addEventListener('mousedown', closeOutside);
    document.addEventListener('focusin', closeOutside);
    return () => {
      document.removeEventListener('mousedown', closeOutside);
      document.removeEventListener('focusin', closeOutside);
    };
  }, [menuOpen]);

  const selectedView =
    selected && selected !== NEW ? authentications?.find((a) => a.id === selected) : undefined;
  // One beyond the loaded ones (the console reads the first 500) is read by id; a gone one closes.
  const missing = selected && selected !== NEW && authentications !== null && !selectedView ? selected : null;
  useEffect(() => {
    if (missing === null) return;
    void ensureAuthentication(missing).then((view) => {
      if (view === null) setSelected((current) => (current === missing ? null : current));
    });
  }, [missing, ensureAuthentication, setSelected]);
  useNamesOf('connectors', [...rows.flatMap((auth) => auth.usedBy), ...(selectedView?.usedBy ?? [])]);
  const draftKey = selected ?? '';
  const draft =
    drafts[draftKey] ?? (selectedView ? draftFromAuthentication(selectedView) : emptyAuthenticationDraft());
  const connectorName = (id: string) => connectors?.find((c) => c.id === id)?.name ?? id;

  const openNew = (type: AuthenticationType) => {
    setMenuOpen(false);
    // The menu item disappears; focus returns to its button first so that closing the panel lands there.
    menuRef.current?.querySelector('button')?.focus();
    setDrafts((all) => (all[NEW]?.type === type ? all : { ...all, [NEW]: emptyAuthenticationDraft(type) }));
    setSelected(NEW);
  };

  const onSaved = (view: AuthenticationView) => {
    upsertAuthentication(view);
    setDrafts((all) => {
      const next = { ...all };
      delete next[NEW];
      next[view.id] = { ...draftFromAuthentication(view), advancedOpen: draft.advancedOpen };
      return next;
    });
    setSelected(view.id);
  };

  return (
    <div className={selected ? 'page with-panel' : 'page'}>
      <div className="page-main">
        <PageHeader
          section="Security"
          title="Authorization"
          action={
            <div className="menu-anchor" ref={menuRef}>
              <button
                type="button"
                className="button primary"
                aria-haspopup="true"
                aria-expanded={menuOpen}
                aria-controls="new-authentication-menu"
                onClick={() => setMenuOpen((open) => !open)}
              >
                + New Authentication
              </button>
              {menuOpen && (
                <div className="menu" id="new-authentication-menu">
                  <p className="menu-label">Authentication type</p>
                  {AUTHENTICATION_TYPES.map((type, index) => (
                    <button
                      type="button"
                      key={type}
                      ref={index === 0 ? firstItemRef : undefined}
                      className="menu-item"
                      aria-label={KINDS[type].label}
                      aria-describedby={`new-authentication-${type}-desc`}
                      onClick={() => openNew(type)}
                      onKeyDown={(event) => {
                        if (event.key === 'Escape') {
                          event.preventDefault();
                          setMenuOpen(false);
                          menuRef.current?.querySelector('button')?.focus();
                        }
                      }}
                    >
                      <span className="menu-item-title">{KINDS[type].label}</span>
                      <span className="menu-item-desc" id={`new-authentication-${type}-desc`}>
                        {KINDS[type].description}
                      </span>
                    </button>
                  ))}
                </div>
              )}
            </div>
          }
        >
          Saved authentications: OAuth 2.0 clients whose tokens Grantry fetches, caches and refreshes, and API
          keys, Basic credentials and bearer tokens, kept encrypted. Connectors use them to call third-party
          APIs.
        </PageHeader>

        {loadProblem && <ProblemMessage problem={loadProblem} role="alert" />}
        {notice && (
          <p className="note info page-notice">
            {notice}{' '}
            <button type="button" className="button ghost small" onClick={() => setNotice(null)}>
              Dismiss
            </button>
          </p>
        )}
        {list.problem && <ProblemMessage problem={list.problem} role="alert" />}
        <ListSearch
          id="authentications-search"
          label="Search authentications"
          value={query}
          onChange={setQuery}
        />
        {authentications === null && !loadProblem && <p className="muted">Loading authentications…</p>}
        {query.trim() !== '' && !list.loading && rows.length === 0 && (
          <p className="muted">No authentication’s name contains “{query.trim()}”.</p>
        )}
        {query.trim() === '' && authentications && authentications.length === 0 && (
          <div className="empty">
            <p>No authentications yet.</p>
            <button type="button" className="button secondary" onClick={() => openNew('oauth2')}>
              Create an OAuth 2.0 authentication
            </button>
          </div>
        )}
        {rows.length > 0 && (
          <div className="table-wrap">
            <table className="list">
              <caption className="visually-hidden">Authentications</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col" className="col-secondary">
                    Type
                  </th>
                  <th scope="col">Status</th>
                  <th scope="col">Token expiry</th>
                  <th scope="col" className="col-secondary">
                    Used by
                  </th>
                </tr>
              </thead>
              <tbody>
                {rows.map((auth) => (
                  <tr key={auth.id} className={auth.id === selected ? 'selected' : undefined}>
                    <th scope="row">
                      <button
                        type="button"
                        className="link-button"
                        aria-current={auth.id === selected ? 'true' : undefined}
                        onClick={() => setSelected(auth.id)}
                      >
                        {auth.name}
                      </button>
                    </th>
                    <td className="nowrap col-secondary" data-label="Type">
                      {kindLabel(auth)}
                    </td>
                    <td className="nowrap" data-label="Status">
                      <StatusBadge status={auth.status} />
                    </td>
                    <td data-label="Token expiry">
                      {auth.token ? (
                        <span title={auth.token.expiresAt ? formatDateTime(auth.token.expiresAt) : undefined}>
                          {formatExpiry(auth.token.expiresAt)}
                        </span>
                      ) : (
                        <span className="muted">
                          {auth.type === 'oauth2' ? 'No token' : 'Static credential'}
                        </span>
                      )}
                    </td>
                    <td className="col-secondary" data-label="Used by">
                      {auth.usedBy.length === 0 ? (
                        <span className="muted">Not used</span>
                      ) : (
                        auth.usedBy.map(connectorName).join(', ')
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <ShowMore list={list} />
          </div>
        )}
      </div>

      {selected && (selected === NEW || selectedView) && (
        <SidePanel
          panelKey={selected}
          eyebrow={selectedView ? `${KINDS[selectedView.type].label} authentication` : 'New authentication'}
          title={selectedView ? selectedView.name : KINDS[draft.type].label}
          headerExtra={
            selectedView ? (
              <p className="panel-meta">
                <StatusBadge status={selectedView.status} />
                <span className="muted">{kindLabel(selectedView)}</span>
                {selectedView.token && (
                  <span className="muted">{formatExpiry(selectedView.token.expiresAt)}</span>
                )}
              </p>
            ) : undefined
          }
          onClose={() => setSelected(null)}
        >
          <AuthenticationForm
            key={selected}
            idPrefix={`auth-${selected}`}
            existing={selectedView ?? null}
            draft={draft}
            onDraftChange={(next) => setDrafts((all) => ({ ...all, [draftKey]: next }))}
            onSaved={onSaved}
          />
          {selectedView && (
            <KeysSection
              key={`keys-${selectedView.id}`}
              idPrefix={`auth-${selectedView.id}`}
              authentication={selectedView}
              onChanged={onSaved}
            />
          )}
          {selectedView && <AuthenticationActions key={selectedView.id} authentication={selectedView} />}
          {selectedView && (
            <DeleteAuthentication
              // Its confirmation is for this authentication only: another one starts unasked.
              key={`delete-${selectedView.id}`}
              authentication={selectedView}
              connectorName={connectorName}
              onDeleted={(detached) => {
                setSelected(null);
                const text =
                  detached.length === 0
                    ? `Authentication ${selectedView.name} deleted.`
                    : `Authentication ${selectedView.name} deleted. ${listOfNames(detached)} now ${detached.length === 1 ? 'has' : 'have'} no authentication: attach another in REST API connectors.`;
                setNotice(text);
                announce(text);
              }}
            />
          )}
        </SidePanel>
      )}
    </div>
  );
}

/** "A", "A and B", "A, B and C". */
function listOfNames(names: string[]): string {
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/**
 * Delete, saying first what it does to the connectors that use the authentication: they are
 * detached and call their APIs without credentials until another one is attached.
 */
function DeleteAuthentication({
  authentication,
  connectorName,
  onDeleted,
}: {
  authentication: AuthenticationView;
  connectorName: (id: string) => string;
  onDeleted: (detached: string[]) => void;
}) {
  const { api, removeAuthentication, reload } = useConsoleData();
  const [usersChanged, setUsersChanged] = useState(false);
  const users = authentication.usedBy.map(connectorName);
  const remove = async () => {
    setUsersChanged(false);
    try {
      // Detaching is asked for only when the person saw which connectors it detaches.
      await api.deleteAuthentication(authentication.id, users.length > 0);
    } catch (error) {
      if (problemOf(error).code !== 'conflict') throw error;
      // A connector started using it since the list was read: show the new list, ask again.
      await reload();
      setUsersChanged(true);
      return;
    }
    removeAuthentication(authentication.id);
    if (users.length > 0) await reload();
    onDeleted(users);
  };
  const consequences =
    users.length === 0 ? (
      <p>
        Delete <strong>{authentication.name}</strong>? No connector uses it. Its stored tokens are revoked at
        the provider where possible.
      </p>
    ) : (
      <div className="note warning">
        {usersChanged && <p>Connectors started using it meanwhile. Check the list again.</p>}
        <p>
          <strong>{authentication.name}</strong> is used by{' '}
          {users.length === 1 ? 'the connector' : `${users.length} connectors`}:
        </p>
        <ul className="delete-users">
          {users.map((name) => (
            <li key={name}>{name}</li>
          ))}
        </ul>
        <p>
          Deleting it detaches it from {users.length === 1 ? 'that connector' : 'them'}: {listOfNames(users)}{' '}
          will then call {users.length === 1 ? 'its API' : 'their APIs'} without credentials, which most APIs
          refuse with 401, until you attach another authentication. Its stored tokens are revoked at the
          provider where possible.
        </p>
      </div>
    );
  return (
    <DeleteSection
      id={authentication.id}
      noun="authentication"
      consequences={consequences}
      confirmLabel={
        users.length === 0
          ? 'Delete'
          : `Delete and detach from ${users.length === 1 ? '1 connector' : `${users.length} connectors`}`
      }
      onDelete={remove}
      onCancel={() => setUsersChanged(false)}
    />
  );
}
