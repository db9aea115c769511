import { type FormEvent, useCallback, useEffect, useRef, useState } from 'react';
import { useAnnounce } from './announcer.js';
import {
  ApiError,
  type ProblemView,
  problemOf,
  type WebhookCreate,
  type WebhookDeliveryView,
  type WebhookEventTypeName,
  type WebhookView,
} from './api-client.js';
import { useConsoleData } from './console-data.js';
import { CopyField } from './copy-field.js';
import { DeleteSection } from './delete-section.js';
import {
  ErrorSummary,
  errorFor,
  fieldErrorsOf,
  TextField,
  useFocusFirstError,
  withoutErrorsOf,
} from './field.js';
import { formatDateTime, formatRelative } from './format.js';
import { PageHeader } from './page-header.js';
import { ProblemMessage } from './problem-message.js';
import { SidePanel } from './side-panel.js';
import { useStickyState, useUnsavedChangesGuard } from './sticky-state.js';

const EVENT_TYPES: { value: WebhookEventTypeName; label: string; description: string }[] = [
  {
    value: 'authentication.needs_attention',
    label: 'Needs attention',
    description: 'An authentication needs a person: it must be connected again, or its token keeps failing.',
  },
  {
    value: 'authentication.recovered',
    label: 'Recovered',
    description: 'It works again after needing attention.',
  },
  {
    value: 'authentication.connected',
    label: 'Connected',
    description: 'An Authorization Code authentication was connected at the provider.',
  },
];

const deliveryStatus: Record<WebhookDeliveryView['status'], { label: string; tone: string }> = {
  pending: { label: 'Pending', tone: 'info' },
  delivered: { label: 'Delivered', tone: 'success' },
  failed: { label: 'Failed', tone: 'error' },
};

const PAGE_SIZE = 100;

/** While the panel is open, deliveries are read again this often: retries happen on their own. */
const DELIVERY_REFRESH_MS = 2_000;

interface WebhookDraft {
  url: string;
  events: WebhookEventTypeName[];
  description: string;
  enabled: boolean;
}

function emptyDraft(): WebhookDraft {
  return { url: '', events: EVENT_TYPES.map((type) => type.value), description: '', enabled: true };
}

function draftFromWebhook(view: WebhookView): WebhookDraft {
  return { url: view.url, events: view.events, description: view.description ?? '', enabled: view.enabled };
}

function isDirty(draft: WebhookDraft, view: WebhookView | undefined): boolean {
  if (!view) return true;
  return (
    draft.url.trim() !== view.url ||
    draft.description.trim() !== (view.description ?? '') ||
    draft.enabled !== view.enabled ||
    [...draft.events].sort().join() !== [...view.events].sort().join()
  );
}

const fieldLabels: Record<string, string> = {
  '/url': 'URL',
  '/events': 'Events',
  '/description': 'Description',
};
const NEW = 'new';

/** Settings › Webhooks: where Grantry tells other systems that an authentication needs a person. */
export function WebhooksPage() {
  const { api, listVersion } = useConsoleData();
  const [webhooks, setWebhooks] = useState<WebhookView[] | null>(null);
  const [nextCursor, setNextCursor] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [loadProblem, setLoadProblem] = useState<ProblemView | null>(null);
  const request = useRef(0);
  const [selected, setSelected] = useStickyState<string | null>('webhooks.selected', () => null);
  const [drafts, setDrafts] = useStickyState<Record<string, WebhookDraft>>('webhooks.drafts', () => ({}));
  // The secret of the webhook just created, shown once: in this component's memory only.
  const [revealed, setRevealed] = useState<{ id: string; secret: string } | null>(null);

  // Read again whenever the console's lists are (listVersion): after a rejected API key is replaced,
  // the list that failed with the old key is read with the new one instead of staying empty.
  const load = useCallback(
    async (from: string | null) => {
      const mine = ++request.current;
      if (from !== null) setLoadingMore(true);
      try {
        const page = await api.listWebhooks({ limit: PAGE_SIZE, cursor: from });
        if (mine !== request.current) return;
        setWebhooks((items) => (from === null ? page.items : [...(items ?? []), ...page.items]));
        setNextCursor(page.nextCursor);
        setLoadProblem(null);
      } catch (error) {
        if (mine !== request.current) return;
        if (!(error instanceof ApiError && error.status === 401)) setLoadProblem(problemOf(error));
      } finally {
        if (mine === request.current) setLoadingMore(false);
      }
    },
    [api],
  );
  useEffect(() => {
    void listVersion;
    void load(null);
  }, [load, listVersion]);

  const selectedView = selected && selected !== NEW ? webhooks?.find((w) => w.id === selected) : undefined;
  // One not among the pages read so far is read by id; a gone one closes.
  const missing = selected && selected !== NEW && webhooks !== null && !selectedView ? selected : null;
  useEffect(() => {
    if (missing === null) return;
    let live = true;
    api.getWebhook(missing).then(
      (view) => {
        if (live) setWebhooks((items) => [...(items ?? []).filter((w) => w.id !== view.id), view]);
      },
      (error: unknown) => {
        if (live && error instanceof ApiError && error.status === 404)
          setSelected((current) => (current === missing ? null : current));
      },
    );
    return () => {
      live = false;
    };
  }, [api, missing, setSelected]);
  const draftKey = selected ?? '';
  const draft = drafts[draftKey] ?? (selectedView ? draftFromWebhook(selectedView) : emptyDraft());
  const upsert = (view: WebhookView) =>
    setWebhooks((items) =>
      (items ?? []).some((w) => w.id === view.id)
        ? (items ?? []).map((w) => (w.id === view.id ? view : w))
        : [...(items ?? []), view],
    );
  const close = () => {
    setSelected(null);
    setRevealed(null);
  };

  return (
    <div className={selected ? 'page with-panel' : 'page'}>
      <div className="page-main">
        <PageHeader
          section="Settings"
          title="Webhooks"
          action={
            <button type="button" className="button primary" onClick={() => setSelected(NEW)}>
              + New Webhook
            </button>
          }
        >
          Grantry calls these URLs when an authentication needs a person, recovers, or is connected. Each
          request is signed per Standard Webhooks; a failed delivery is retried for a day.
        </PageHeader>
        {loadProblem && <ProblemMessage problem={loadProblem} role="alert" />}
        {webhooks === null && !loadProblem && <p className="muted">Loading webhooks…</p>}
        {webhooks && webhooks.length === 0 && (
          <div className="empty">
            <p>No webhooks yet.</p>
            <button type="button" className="button secondary" onClick={() => setSelected(NEW)}>
              Create a webhook
            </button>
          </div>
        )}
        {webhooks && webhooks.length > 0 && (
          <div className="table-wrap">
            <table className="list">
              <caption className="visually-hidden">Webhooks</caption>
              <thead>
                <tr>
                  <th scope="col">URL</th>
                  <th scope="col">Events</th>
                  <th scope="col">State</th>
                  <th scope="col" className="col-secondary">
                    Created
                  </th>
                </tr>
              </thead>
              <tbody>
                {webhooks.map((webhook) => (
                  <tr key={webhook.id} className={webhook.id === selected ? 'selected' : undefined}>
                    <th scope="row">
                      <button
                        type="button"
                        className="link-button mono url-cell"
                        aria-current={webhook.id === selected ? 'true' : undefined}
                        title={webhook.url}
                        onClick={() => setSelected(webhook.id)}
                      >
                        {webhook.description || webhook.url}
                      </button>
                    </th>
                    <td data-label="Events">
                      {webhook.events
                        .map((event) => EVENT_TYPES.find((type) => type.value === event)?.label ?? event)
                        .join(', ')}
                    </td>
                    <td className="nowrap" data-label="State">
                      <span className={`badge ${webhook.enabled ? 'success' : 'neutral'}`}>
                        {webhook.enabled ? 'Enabled' : 'Disabled'}
                      </span>
                    </td>
                    <td className="col-secondary" data-label="Created">
                      {formatDateTime(webhook.createdAt)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {nextCursor !== null && (
              <button
                type="button"
                className="button secondary load-more"
                disabled={loadingMore}
                onClick={() => void load(nextCursor)}
              >
                {loadingMore ? 'Loading…' : 'Show more'}
              </button>
            )}
          </div>
        )}
      </div>
      {selected && (selected === NEW || selectedView) && (
        <SidePanel
          panelKey={selected}
          eyebrow={selectedView ? 'Webhook' : 'New webhook'}
          title={selectedView ? selectedView.description || selectedView.url : 'Webhook'}
          onClose={close}
        >
          <WebhookSidebar
            key={selected}
            existing={selectedView}
            draft={draft}
            secret={revealed && revealed.id === selected ? revealed.secret : null}
            onDraftChange={(next) => setDrafts((all) => ({ ...all, [draftKey]: next }))}
            onSaved={(view, secret) => {
              upsert(view);
              setDrafts((all) => {
                const next = { ...all };
                delete next[NEW];
                next[view.id] = draftFromWebhook(view);
                return next;
              });
              if (secret !== undefined) setRevealed({ id: view.id, secret });
              setSelected(view.id);
            }}
            onDeleted={(id) => {
              setWebhooks((items) => (items ?? []).filter((w) => w.id !== id));
              close();
            }}
          />
        </SidePanel>
      )}
    </div>
  );
}

interface WebhookSidebarProps {
  existing: WebhookView | undefined;
  draft: WebhookDraft;
  secret: string | null;
  onDraftChange: (draft: WebhookDraft) => void;
  onSaved: (view: WebhookView, secret?: string) => void;
  onDeleted: (id: string) => void;
}

function WebhookSidebar({
  existing,
  draft,
  secret,
  onDraftChange: replaceDraft,
  onSaved,
  onDeleted,
}: WebhookSidebarProps) {
  const { api } = useConsoleData();
  const announce = useAnnounce();
  const [saving, setSaving] = useState(false);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const summaryRef = useRef<HTMLDivElement>(null);
  const errors = fieldErrorsOf(problem);
  const prefix = `webhook-${existing?.id ?? NEW}`;
  const focusError = useFocusFirstError(() => document.getElementById(prefix), summaryRef);
  const id = (name: string) => `${prefix}-${name}`;
  const dirty = isDirty(draft, existing);
  useUnsavedChangesGuard(existing ? dirty : Boolean(draft.url.trim()));
  // A field's error goes as soon as the person changes that field.
  const onDraftChange = (next: WebhookDraft) => {
    for (const key of Object.keys(next) as (keyof WebhookDraft)[]) {
      if (next[key] !== draft[key]) setProblem((current) => withoutErrorsOf(current, `/${key}`));
    }
    replaceDraft(next);
  };

  const toggle = (event: WebhookEventTypeName, on: boolean) =>
    onDraftChange({
      ...draft,
      events: on
        ? [...draft.events.filter((e) => e !== event), event]
        : draft.events.filter((e) => e !== event),
    });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (saving) return;
    setSaving(true);
    try {
      const description = draft.description.trim();
      if (existing) {
        const saved = await api.updateWebhook(existing.id, {
          url: draft.url.trim(),
          events: draft.events,
          description: description === '' ? null : description,
          enabled: draft.enabled,
        });
        announce('Webhook saved');
        onSaved(saved);
      } else {
        const body: WebhookCreate = { url: draft.url.trim(), events: draft.events, enabled: draft.enabled };
        if (description !== '') body.description = description;
        const { secret: created, ...view } = await api.createWebhook(body);
        announce('Webhook created. Copy its signing secret now: it is shown only once.');
        onSaved(view, created);
      }
      setProblem(null);
    } catch (error) {
      setProblem(problemOf(error));
      focusError();
    } finally {
      setSaving(false);
    }
  };

  return (
    <>
      {secret && <SecretOnce id={id('secret')} secret={secret} />}
      <form id={prefix} noValidate onSubmit={(event) => void submit(event)}>
        <ErrorSummary
          problem={problem}
          summaryRef={summaryRef}
          fields={Object.entries(fieldLabels).map(([pointer, label]) => ({
            pointer,
            label,
            id: id(pointer.slice(1)),
          }))}
        />
        <TextField
          id={id('url')}
          label="URL"
          type="url"
          inputMode="url"
          value={draft.url}
          onChange={(value) => onDraftChange({ ...draft, url: value })}
          error={errorFor(errors, '/url', 'URL')}
          hint="Grantry POSTs signed JSON here. https only."
          placeholder="https://hooks.example.com/grantry"
        />
        <fieldset
          className={errors['/events'] ? 'field has-error' : 'field'}
          id={id('events')}
          aria-describedby={errors['/events'] ? id('events-error') : undefined}
        >
          <legend className="label">Events</legend>
          {EVENT_TYPES.map((type) => (
            <div key={type.value} className="field checkbox event-choice">
              <input
                id={id(type.value)}
                type="checkbox"
                checked={draft.events.includes(type.value)}
                aria-describedby={id(`${type.value}-desc`)}
                onChange={(event) => toggle(type.value, event.target.checked)}
              />
              <div>
                <label htmlFor={id(type.value)}>
                  {type.label} <code className="muted">{type.value}</code>
                </label>
                <p className="field-hint" id={id(`${type.value}-desc`)}>
                  {type.description}
                </p>
              </div>
            </div>
          ))}
          {errors['/events'] && (
            <p className="field-error" id={id('events-error')}>
              {errorFor(errors, '/events', 'Events')}
            </p>
          )}
        </fieldset>
        <TextField
          id={id('description')}
          label="Description"
          optional
          value={draft.description}
          onChange={(value) => onDraftChange({ ...draft, description: value })}
          error={errorFor(errors, '/description', 'Description')}
          placeholder="e.g. On-call pager"
        />
        <div className="field checkbox">
          <input
            id={id('enabled')}
            type="checkbox"
            checked={draft.enabled}
            onChange={(event) => onDraftChange({ ...draft, enabled: event.target.checked })}
          />
          <label htmlFor={id('enabled')}>Enabled</label>
        </div>
      </form>
      <div className="form-actions sticky">
        <button type="submit" form={prefix} className="button primary" disabled={saving}>
          {saving ? 'Saving…' : existing ? 'Save webhook' : 'Create webhook'}
        </button>
        <span className="muted" aria-live="polite">
          {existing && (dirty ? 'Unsaved changes.' : 'All changes saved.')}
        </span>
      </div>
      {existing ? (
        <Deliveries key={existing.id} webhook={existing} />
      ) : (
        <p className="note info">Create the webhook to get its signing secret and send a test event.</p>
      )}
      {existing && <DeleteWebhook webhook={existing} onDeleted={() => onDeleted(existing.id)} />}
    </>
  );
}

/** The signing secret, right after create: the only time Grantry shows it. */
function SecretOnce({ id, secret }: { id: string; secret: string }) {
  return (
    <div className="note warning secret-once" role="note">
      <CopyField
        id={id}
        label="Signing secret"
        value={secret}
        hint="Copy it now: Grantry shows it only this once. Verify each request with it using any Standard Webhooks library."
      />
    </div>
  );
}

function Deliveries({ webhook }: { webhook: WebhookView }) {
  const { api } = useConsoleData();
  const announce = useAnnounce();
  const [items, setItems] = useState<WebhookDeliveryView[] | null>(null);
  /** Why the deliveries could not be read: gone as soon as a read succeeds. */
  const [problem, setProblem] = useState<ProblemView | null>(null);
  /** Why the test event was not sent: gone with the next send that works. */
  const [sendProblem, setSendProblem] = useState<ProblemView | null>(null);
  const [sending, setSending] = useState(false);

  const load = useCallback(async () => {
    try {
      setItems((await api.listWebhookDeliveries(webhook.id)).items);
      // A problem from an earlier read is over once the deliveries read again.
      setProblem(null);
    } catch (error) {
      setProblem(problemOf(error));
    }
  }, [api, webhook.id]);

  useEffect(() => {
    void load();
    const timer = window.setInterval(() => void load(), DELIVERY_REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [load]);

  const sendTest = async () => {
    setSending(true);
    setSendProblem(null);
    try {
      const delivery = await api.sendTestWebhook(webhook.id);
      setItems((list) => [delivery, ...(list ?? [])]);
      announce('Test event sent');
      // The first attempt happens within a moment: show its outcome without waiting for the refresh.
      window.setTimeout(() => void load(), 500);
    } catch (error) {
      setSendProblem(problemOf(error));
    } finally {
      setSending(false);
    }
  };

  return (
    <section className="panel-section" aria-labelledby={`deliveries-${webhook.id}`}>
      <h3 id={`deliveries-${webhook.id}`}>Deliveries</h3>
      <p className="muted">Newest first. Each delivery keeps its webhook-id on every attempt.</p>
      <div className="button-row">
        <button
          type="button"
          className="button secondary"
          disabled={sending || !webhook.enabled}
          onClick={() => void sendTest()}
        >
          {sending ? 'Sending…' : 'Send test event'}
        </button>
        <button type="button" className="button ghost" onClick={() => void load()}>
          Refresh
        </button>
      </div>
      {!webhook.enabled && <p className="note info">This webhook is disabled: nothing is sent to it.</p>}
      <div aria-live="polite">
        {sendProblem && <ProblemMessage problem={sendProblem} />}
        {problem && <ProblemMessage problem={problem} />}
      </div>
      {items === null && <p className="muted">Loading deliveries…</p>}
      {items && items.length === 0 && <p className="muted">Nothing sent yet.</p>}
      {items && items.length > 0 && (
        <ol className="timeline deliveries">
          {items.map((delivery) => (
            <DeliveryItem key={delivery.id} delivery={delivery} />
          ))}
        </ol>
      )}
    </section>
  );
}

function DeliveryItem({ delivery }: { delivery: WebhookDeliveryView }) {
  const status = deliveryStatus[delivery.status];
  const last = delivery.attemptLog.at(-1);
  return (
    <li className={delivery.status === 'failed' ? 'timeline-item failed' : 'timeline-item'}>
      <div className="timeline-head">
        <span className="timeline-type">{delivery.event}</span>
        <time dateTime={delivery.at} className="muted" title={formatDateTime(delivery.at)}>
          {formatRelative(delivery.at)}
        </time>
      </div>
      <p className="delivery-facts">
        <span className={`badge ${status.tone}`}>{status.label}</span>{' '}
        {delivery.responseStatus !== null && <span className="mono">HTTP {delivery.responseStatus}</span>}{' '}
        <span className="muted">
          {delivery.attempts === 1 ? '1 attempt' : `${delivery.attempts} attempts`}
          {delivery.nextAttemptAt && delivery.attempts > 0
            ? ` · next ${formatRelative(delivery.nextAttemptAt)}`
            : ''}
        </span>
      </p>
      {last?.error && <p className="muted">{last.error.message}</p>}
      {delivery.attemptLog.length > 0 && (
        <details className="headers">
          <summary>Attempts ({delivery.attemptLog.length})</summary>
          <ol className="attempts">
            {delivery.attemptLog.map((attempt) => (
              <li key={attempt.attempt}>
                <time dateTime={attempt.at}>{formatDateTime(attempt.at)}</time> —{' '}
                {attempt.responseStatus !== null ? `HTTP ${attempt.responseStatus}` : 'no answer'}
                {attempt.error ? ` (${attempt.error.kind}: ${attempt.error.message})` : ''},{' '}
                {attempt.durationMs} ms
              </li>
            ))}
          </ol>
        </details>
      )}
      <p className="muted mono small-id">{delivery.id}</p>
    </li>
  );
}

function DeleteWebhook({ webhook, onDeleted }: { webhook: WebhookView; onDeleted: () => void }) {
  const { api } = useConsoleData();
  return (
    <DeleteSection
      id={webhook.id}
      noun="webhook"
      consequences={<p>Delete this webhook? Deliveries not yet made are dropped with it.</p>}
      onDelete={async () => {
        await api.deleteWebhook(webhook.id);
        onDeleted();
      }}
    />
  );
}
