import { type FormEvent, type ReactNode, useRef, useState } from 'react';
import { type FieldSpec, isRequired, KINDS } from '../../src/services/catalogue/index.js';
import { useAnnounce } from './announcer.js';
import { type AuthenticationView, type ProblemView, problemOf } from './api-client.js';
import {
  type AuthenticationDraft,
  createRequestOf,
  type DraftValue,
  draftFromPreset,
  draftWithoutPreset,
  emptyAuthenticationDraft,
  fieldLabels,
  formFields,
  grantOf,
  hasInput,
  isDraftDirty,
  missingFields,
  patchRequestOf,
  visibleFields,
  withProviderParam,
} from './authentication-draft.js';
import { ConnectButton, RedirectUri } from './connect-panel.js';
import { useConsoleData } from './console-data.js';
import {
  ErrorSummary,
  errorFor,
  type FieldErrors,
  fieldErrorsOf,
  sentence,
  TextAreaField,
  TextField,
  useFocusFirstError,
  withoutErrorsOf,
} from './field.js';
import { type KeyValueRow, KeyValueRows } from './key-value-rows.js';
import { ProblemMessage } from './problem-message.js';
import { ProviderPicker } from './provider-picker.js';
import { useUnsavedChangesGuard } from './sticky-state.js';

export type { AuthenticationDraft } from './authentication-draft.js';
export { draftFromAuthentication, emptyAuthenticationDraft } from './authentication-draft.js';

interface AuthenticationFormProps {
  idPrefix: string;
  existing: AuthenticationView | null;
  draft: AuthenticationDraft;
  onDraftChange: (draft: AuthenticationDraft) => void;
  onSaved: (view: AuthenticationView) => void;
  onCancel?: () => void;
  /** Shown above the fields when the form sits inside another panel (Path B). */
  title?: string;
}

/**
 * The authentication form of both paths (Security › Authorization and the connector sidebar), for
 * every kind. Its fields are the catalogue's: the kind's fields that apply to the chosen grant, in
 * the catalogue's order, advanced ones folded away — the same description the server checks.
 */
export function AuthenticationForm(props: AuthenticationFormProps) {
  const { idPrefix, existing, draft, onDraftChange, onSaved, onCancel, title } = props;
  const { api } = useConsoleData();
  const announce = useAnnounce();
  const [saving, setSaving] = useState(false);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const [discovery, setDiscovery] = useState<{ busy: boolean; problem: ProblemView | null; note: string }>({
    busy: false,
    problem: null,
    note: '',
  });
  const summaryRef = useRef<HTMLDivElement>(null);
  const formRef = useRef<HTMLFormElement>(null);
  const focusError = useFocusFirstError(() => formRef.current, summaryRef);
  const errors: FieldErrors = fieldErrorsOf(problem);
  const labels = fieldLabels(draft.type);
  const id = (name: string) => `${idPrefix}-${name}`;
  const grant = grantOf(draft);
  const dirty = isDraftDirty(draft, existing);
  const fields = visibleFields(draft);
  const advancedPointers = new Set(fields.filter((f) => f.advanced === true).map((f) => `/${f.name}`));
  useUnsavedChangesGuard(existing ? dirty : hasInput(draft));

  const setValue = (name: string, value: DraftValue) => {
    const values = { ...draft.values, [name]: value };
    // The JWT Bearer grant's assertion proves who asks: most providers authenticate no client then.
    if (name === 'grantType' && value === 'jwt_bearer' && !existing) values.clientAuthMethod = 'none';
    const next = { ...draft, values };
    // A field that the change hides (another grant, another client authentication method) takes its
    // errors with it: nobody can fix what is not shown, and it is not sent.
    const shown = new Set(visibleFields(next).map((field) => field.name));
    const hidden = formFields(draft.type)
      .filter((field) => !shown.has(field.name))
      .map((field) => `/${field.name}`);
    setProblem((current) => [`/${name}`, ...hidden].reduce(withoutErrorsOf, current));
    onDraftChange(next);
  };
  const setName = (name: string) => {
    setProblem((current) => withoutErrorsOf(current, '/name'));
    onDraftChange({ ...draft, name });
  };
  const setAdvancedOpen = (open: boolean) => onDraftChange({ ...draft, advancedOpen: open });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (saving) return;
    const missing = missingFields(draft, existing);
    if (missing) {
      setProblem(missing);
      if (missing.errors?.some((e) => advancedPointers.has(e.path))) setAdvancedOpen(true);
      focusError();
      return;
    }
    setSaving(true);
    try {
      const saved = existing
        ? await api.updateAuthentication(existing.id, patchRequestOf(draft, existing))
        : await api.createAuthentication(createRequestOf(draft));
      setProblem(null);
      announce(existing ? `Authentication ${saved.name} saved` : `Authentication ${saved.name} created`);
      onSaved(saved);
    } catch (error) {
      // The draft stays as typed: a failed save never clears the form.
      const failure = problemOf(error);
      setProblem(failure);
      if (failure.errors?.some((e) => [...advancedPointers].some((f) => e.path.startsWith(f)))) {
        setAdvancedOpen(true);
      }
      focusError();
    } finally {
      setSaving(false);
    }
  };

  const fillFromIssuer = async () => {
    const issuer = draft.issuer.trim();
    if (!issuer) {
      setDiscovery({ busy: false, problem: null, note: 'Enter the issuer URL first.' });
      return;
    }
    setDiscovery({ busy: true, problem: null, note: '' });
    try {
      const found = await api.discover(issuer);
      const filled: string[] = [];
      const values = { ...draft.values };
      const fill = (name: string, value: string | null | undefined) => {
        if (!value) return;
        values[name] = value;
        filled.push(labels[`/${name}`] ?? name);
      };
      fill('tokenUrl', found.tokenUrl);
      if (grant === 'authorization_code') fill('authorizationUrl', found.authorizationUrl);
      fill('revocationUrl', found.revocationUrl);
      const methods = found.clientAuthMethods ?? [];
      const current = String(values.clientAuthMethod ?? '');
      // Detect reads the same metadata on its own, and keeps working if the provider changes.
      if (methods.length > 0 && current !== 'auto' && !methods.includes(current)) {
        const supported = ['client_secret_basic', 'client_secret_post'].find((m) => methods.includes(m));
        fill('clientAuthMethod', supported);
      }
      let remaining = problem;
      for (const name of ['tokenUrl', 'authorizationUrl', 'revocationUrl', 'clientAuthMethod']) {
        if (values[name] !== draft.values[name]) remaining = withoutErrorsOf(remaining, `/${name}`);
      }
      setProblem(remaining);
      onDraftChange({ ...draft, values });
      const grantLabel = KINDS.oauth2.fields[0].options.find((o) => o.value === grant)?.label ?? grant;
      const grantNote =
        grant && found.grantTypes && !found.grantTypes.includes(grant)
          ? ` Note: the issuer does not list ${grantLabel} among its grant types.`
          : '';
      const note = filled.length
        ? `Filled ${filled.join(', ')} from ${found.issuer}.`
        : 'The issuer did not list any endpoints.';
      setDiscovery({ busy: false, problem: null, note: note + grantNote });
      announce(note);
    } catch (error) {
      setDiscovery({ busy: false, problem: problemOf(error), note: '' });
    }
  };

  const fieldInput = (field: FieldSpec): ReactNode => {
    const pointer = `/${field.name}`;
    const error = errorFor(errors, pointer, field.label);
    const value = draft.values[field.name];
    const required = isRequired(field, grant);
    switch (field.type) {
      case 'pem':
        return (
          <TextAreaField
            key={field.name}
            id={id(field.name)}
            label={field.label}
            optional={!required}
            value={typeof value === 'string' ? value : ''}
            onChange={(next) => setValue(field.name, next)}
            error={error}
            hint={field.help}
            placeholder="-----BEGIN CERTIFICATE-----"
          />
        );
      case 'secret':
        return (
          <SecretField
            key={field.name}
            id={id(field.name)}
            field={field}
            value={typeof value === 'string' ? value : ''}
            stored={existing !== null && (existing as Record<string, unknown>)[`${field.name}Set`] === true}
            replacing={draft.replacing[field.name] === true}
            error={error}
            onChange={(next) => setValue(field.name, next)}
            onReplace={(replacing) => {
              setProblem((current) => withoutErrorsOf(current, pointer));
              onDraftChange({
                ...draft,
                values: { ...draft.values, [field.name]: '' },
                replacing: { ...draft.replacing, [field.name]: replacing },
              });
              if (replacing) window.setTimeout(() => document.getElementById(id(field.name))?.focus(), 0);
            }}
          />
        );
      case 'enum':
        if (field.name === 'grantType') {
          return (
            <fieldset
              key={field.name}
              className={error ? 'grant-types has-error' : 'grant-types'}
              id={id(field.name)}
              aria-describedby={errors[pointer] ? id(`${field.name}-error`) : undefined}
            >
              <legend>{field.label}</legend>
              <div className="segmented">
                {(field.options ?? []).map((option) => (
                  <label
                    key={option.value}
                    className={value === option.value ? 'segment checked' : 'segment'}
                  >
                    <input
                      type="radio"
                      name={id(field.name)}
                      value={option.value}
                      checked={value === option.value}
                      onChange={() => setValue(field.name, option.value)}
                    />
                    {option.label}
                  </label>
                ))}
              </div>
              {errors[pointer] && (
                <p className="field-error" id={id(`${field.name}-error`)}>
                  {sentence(field.label, errors[pointer] ?? '')}
                </p>
              )}
            </fieldset>
          );
        }
        return (
          <div key={field.name} className={error ? 'field has-error' : 'field'}>
            <label htmlFor={id(field.name)}>{field.label}</label>
            <select
              id={id(field.name)}
              value={typeof value === 'string' ? value : ''}
              aria-invalid={error ? true : undefined}
              aria-describedby={
                [field.help ? id(`${field.name}-hint`) : '', error ? id(`${field.name}-error`) : '']
                  .filter(Boolean)
                  .join(' ') || undefined
              }
              onChange={(event) => setValue(field.name, event.target.value)}
            >
              {(field.options ?? []).map((option) => (
                <option key={option.value} value={option.value}>
                  {option.label}
                </option>
              ))}
            </select>
            {field.help && (
              <p className="field-hint" id={id(`${field.name}-hint`)}>
                {field.help}
              </p>
            )}
            {error && (
              <p className="field-error" id={id(`${field.name}-error`)}>
                {error}
              </p>
            )}
          </div>
        );
      case 'boolean':
        return (
          <div key={field.name} className={error ? 'field checkbox has-error' : 'field checkbox'}>
            <input
              id={id(field.name)}
              type="checkbox"
              checked={value === true}
              aria-invalid={error ? true : undefined}
              aria-describedby={error ? id(`${field.name}-error`) : undefined}
              onChange={(event) => setValue(field.name, event.target.checked)}
            />
            <label htmlFor={id(field.name)}>{field.label}</label>
            {error && (
              <p className="field-error" id={id(`${field.name}-error`)}>
                {error}
              </p>
            )}
          </div>
        );
      case 'parameters':
        return (
          <KeyValueRows
            key={field.name}
            idPrefix={id(field.name)}
            legend={field.label}
            description={field.help ?? ''}
            keyLabel="Parameter"
            valueLabel="Value"
            addLabel="Add parameter"
            rows={Array.isArray(value) ? value : []}
            onChange={(rows: KeyValueRow[]) => setValue(field.name, rows)}
            error={error}
          />
        );
      default:
        return (
          <TextField
            key={field.name}
            id={id(field.name)}
            label={field.label}
            optional={!required}
            type={field.type === 'url' ? 'url' : 'text'}
            inputMode={field.type === 'url' ? 'url' : field.type === 'integer' ? 'numeric' : undefined}
            value={typeof value === 'string' ? value : ''}
            onChange={(next) => setValue(field.name, next)}
            error={error}
            hint={fieldHint(field, draft)}
            placeholder={field.placeholder}
          />
        );
    }
  };

  const main = fields.filter((field) => field.advanced !== true);
  const advanced = fields.filter((field) => field.advanced === true);
  const isOAuth = draft.type === 'oauth2';

  return (
    <form
      ref={formRef}
      className="auth-form"
      noValidate
      onSubmit={(event) => void submit(event)}
      aria-labelledby={title ? id('title') : undefined}
    >
      {title && (
        <h3 id={id('title')} className="form-title">
          {title}
        </h3>
      )}
      <ErrorSummary
        problem={problem}
        summaryRef={summaryRef}
        fields={[
          ...Object.keys(draft.providerParams).map((name) => ({
            pointer: `/providerParams/${name}`,
            label: name,
            id: id(`providerParams-${name}`),
          })),
          ...['/name', ...formFields(draft.type).map((f) => `/${f.name}`)].map((pointer) => ({
            pointer,
            label: labels[pointer] ?? pointer,
            id: id(pointer.slice(1)),
          })),
        ]}
        onReveal={(pointer) => {
          if (advancedPointers.has(pointer) && !draft.advancedOpen) setAdvancedOpen(true);
        }}
      />

      {existing === null && (
        <ProviderPicker
          idPrefix={idPrefix}
          draft={draft}
          errors={errors}
          onPick={(preset, previous) => {
            setProblem(null);
            onDraftChange(
              preset !== null
                ? draftFromPreset(preset, draft)
                : previous !== null
                  ? draftWithoutPreset(previous, draft)
                  : { ...emptyAuthenticationDraft(draft.type), name: draft.name },
            );
          }}
          onParam={(name, value) => {
            setProblem((current) => withoutErrorsOf(current, `/providerParams/${name}`));
            onDraftChange(withProviderParam(draft, name, value));
          }}
          onImported={onSaved}
          onAddScope={(scope) => {
            const current = String(draft.values.scope ?? '').trim();
            if (current.split(/\s+/).includes(scope)) return;
            setValue('scope', current === '' ? scope : `${current} ${scope}`);
          }}
        />
      )}
      {existing?.provider !== undefined && (
        <p className="muted">Created from the {existing.provider} provider preset.</p>
      )}

      <TextField
        id={id('name')}
        label="Name"
        value={draft.name}
        onChange={setName}
        error={errorFor(errors, '/name', 'Name')}
        placeholder="e.g. Billing API (production)"
      />

      {main.map((field) => (
        <FieldWithNotes key={field.name} field={field} draft={draft} existing={existing}>
          {fieldInput(field)}
        </FieldWithNotes>
      ))}

      {!isOAuth && existing?.boundOrigins !== undefined && (
        <p className="muted" id={id('boundOrigins')}>
          {existing.boundOrigins.length === 0
            ? 'Not bound yet: the first connector that uses it binds it to its origin.'
            : `Sent only to ${existing.boundOrigins.join(', ')}. To use it with another origin, enter the secret again and save.`}
        </p>
      )}

      {isOAuth &&
        grant === 'authorization_code' &&
        (existing?.redirectUri ? (
          <div className="connect-box">
            <RedirectUri id={id('redirectUri')} uri={existing.redirectUri} />
            {existing.grantType === 'authorization_code' && (
              <ConnectButton
                key={existing.id}
                authentication={existing}
                disabledReason={dirty ? 'Save your changes before connecting.' : undefined}
              />
            )}
          </div>
        ) : (
          <p className="note info">
            After you save, this form shows the exact redirect URI to register at the provider, and a Connect
            button to sign in and grant access.
          </p>
        ))}

      {(advanced.length > 0 || isOAuth) && (
        <details
          className="advanced"
          open={draft.advancedOpen}
          onToggle={(event) => {
            const open = (event.currentTarget as HTMLDetailsElement).open;
            if (open !== draft.advancedOpen) setAdvancedOpen(open);
          }}
        >
          <summary>Advanced</summary>
          <div className="advanced-body">
            {isOAuth && (
              <div className="field">
                <label htmlFor={id('issuer')}>Issuer URL</label>
                <p className="field-hint" id={id('issuer-hint')}>
                  Reads the provider’s OpenID Connect / OAuth metadata and fills the endpoints.
                </p>
                <div className="input-row">
                  <input
                    id={id('issuer')}
                    type="url"
                    inputMode="url"
                    value={draft.issuer}
                    placeholder="https://login.example.com"
                    spellCheck={false}
                    aria-describedby={id('issuer-hint')}
                    onChange={(event) => onDraftChange({ ...draft, issuer: event.target.value })}
                  />
                  <button
                    type="button"
                    className="button secondary"
                    disabled={discovery.busy}
                    onClick={() => void fillFromIssuer()}
                  >
                    {discovery.busy ? 'Reading…' : 'Fill from issuer URL'}
                  </button>
                </div>
                <div aria-live="polite">
                  {discovery.note && <p className="muted">{discovery.note}</p>}
                  {discovery.problem && <ProblemMessage problem={discovery.problem} />}
                </div>
              </div>
            )}
            {advanced.map((field) => (
              <FieldWithNotes key={field.name} field={field} draft={draft} existing={existing}>
                {fieldInput(field)}
              </FieldWithNotes>
            ))}
          </div>
        </details>
      )}

      <div className="form-actions">
        <button type="submit" className="button primary" disabled={saving}>
          {saving ? 'Saving…' : existing ? 'Save changes' : 'Save authentication'}
        </button>
        {onCancel && (
          <button type="button" className="button ghost" onClick={onCancel}>
            Cancel
          </button>
        )}
        {existing && !dirty && <span className="muted">All changes saved.</span>}
      </div>
    </form>
  );
}

/** The hint under a text field: its help, and for header prefixes what will be sent. */
function fieldHint(field: FieldSpec, draft: AuthenticationDraft): ReactNode {
  if (field.type === 'headerPrefix') {
    const prefix = String(draft.values[field.name] ?? '').trim();
    const header =
      draft.type === 'api_key' ? String(draft.values.apiKeyName ?? '').trim() || '<name>' : 'Authorization';
    const what = draft.type === 'api_key' ? 'key' : 'token';
    return (
      <>
        Sent as{' '}
        <code>
          {header}: {prefix ? `${prefix} ` : ''}&lt;{what}&gt;
        </code>
        . {field.help}
      </>
    );
  }
  return field.help;
}

/** A field, with the notes the product page asks for next to some of them. */
function FieldWithNotes(props: {
  field: FieldSpec;
  draft: AuthenticationDraft;
  existing: AuthenticationView | null;
  children: ReactNode;
}) {
  const { field, draft, existing, children } = props;
  if (field.name === 'clientAuthMethod') {
    const detected = existing?.detectedClientAuthMethod;
    if (draft.values.clientAuthMethod !== 'auto' || existing?.clientAuthMethod !== 'auto' || !detected) {
      return <>{children}</>;
    }
    return (
      <>
        {children}
        <p className="field-hint" role="note">
          Detected: the provider accepts the credentials{' '}
          {detected === 'client_secret_post'
            ? 'in the request body'
            : detected === 'client_secret_jwt'
              ? 'as an assertion signed with them'
              : 'in an HTTP Basic header'}{' '}
          (<code>{detected}</code>).
        </p>
      </>
    );
  }
  if (field.name !== 'grantType') return <>{children}</>;
  const grant = grantOf(draft);
  return (
    <>
      {children}
      {grant === 'password' && (
        <div className="note warning" role="note">
          <p>
            <strong>Prefer Authorization Code or Client Credentials when possible.</strong> The Password grant
            gives Grantry a person’s username and password; use it only when the provider requires it and you
            trust this boundary.
          </p>
        </div>
      )}
      {existing && existing.warnings.length > 0 && existing.grantType === grant && grant !== 'password' && (
        <div className="note warning" role="note">
          {existing.warnings.map((warning) => (
            <p key={warning}>{warning}</p>
          ))}
        </div>
      )}
    </>
  );
}

/** A write-only secret: typed once, then shown only as "set" with a Replace button. */
function SecretField(props: {
  id: string;
  field: FieldSpec;
  value: string;
  stored: boolean;
  replacing: boolean;
  error: string | undefined;
  onChange: (value: string) => void;
  onReplace: (replacing: boolean) => void;
}) {
  const { id, field, value, stored, replacing, error, onChange, onReplace } = props;
  if (stored && !replacing) {
    return (
      <fieldset
        className={error ? 'field has-error' : 'field'}
        id={id}
        aria-describedby={error ? `${id}-error` : undefined}
      >
        <legend className="label">{field.label}</legend>
        <div className="input-row secret-set">
          <span className="badge neutral">
            <span aria-hidden="true">●●●● </span>set
          </span>
          <span className="muted">Stored encrypted; it is never shown again.</span>
          <button
            type="button"
            className="button secondary small"
            aria-label={`Replace ${field.label}`}
            onClick={() => onReplace(true)}
          >
            Replace
          </button>
        </div>
        {error && (
          <p className="field-error" id={`${id}-error`}>
            {error}
          </p>
        )}
      </fieldset>
    );
  }
  const keep = stored ? (
    <button type="button" className="button ghost small" onClick={() => onReplace(false)}>
      Keep current
    </button>
  ) : undefined;
  if (field.multiline === true) {
    // A PEM key: pasted whole, over several lines; write-only like any secret.
    return (
      <TextAreaField
        id={id}
        label={field.label}
        optional
        value={value}
        onChange={onChange}
        error={error}
        hint={stored ? 'Paste a new key to replace the stored one.' : field.help}
        placeholder="-----BEGIN PRIVATE KEY-----"
        trailing={keep}
      />
    );
  }
  return (
    <TextField
      id={id}
      label={field.label}
      type="password"
      autoComplete="new-password"
      value={value}
      onChange={onChange}
      error={error}
      hint={stored ? 'Type a new value to replace the stored one.' : field.help}
      trailing={keep}
    />
  );
}
