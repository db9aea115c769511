import { type FormEvent, useRef, useState } from 'react';
import { useAnnounce } from './announcer.js';
import {
  type AuthenticationCreate,
  type AuthenticationPatch,
  type AuthenticationView,
  type GrantType,
  type ProblemView,
  problemOf,
} from './api-client.js';
import { ConnectButton, RedirectUri } from './connect-panel.js';
import { useConsoleData } from './console-data.js';
import { ErrorSummary, errorFor, type FieldErrors, fieldErrorsOf, sentence, TextField } from './field.js';
import { grantTypeLabels } from './format.js';
import { type KeyValueRow, KeyValueRows, recordFromRows, rowsFromRecord } from './key-value-rows.js';
import { ProblemMessage } from './problem-message.js';
import { useUnsavedChangesGuard } from './sticky-state.js';

type ClientAuthMethod = AuthenticationView['clientAuthMethod'];
type AudienceParam = AuthenticationView['audienceParam'];

/** Everything the person typed, kept outside the form so that closing a panel loses nothing. */
export interface AuthenticationDraft {
  name: string;
  grantType: GrantType;
  authorizationUrl: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  replaceClientSecret: boolean;
  headerPrefix: string;
  audience: string;
  scope: string;
  username: string;
  password: string;
  replacePassword: boolean;
  clientAuthMethod: ClientAuthMethod;
  audienceParam: AudienceParam;
  extraAuthorizationParams: KeyValueRow[];
  extraTokenParams: KeyValueRow[];
  pkce: boolean;
  revocationUrl: string;
  issuer: string;
  advancedOpen: boolean;
}

export function emptyAuthenticationDraft(grantType: GrantType = 'client_credentials'): AuthenticationDraft {
  return {
    name: '',
    grantType,
    authorizationUrl: '',
    tokenUrl: '',
    clientId: '',
    clientSecret: '',
    replaceClientSecret: true,
    headerPrefix: 'Bearer',
    audience: '',
    scope: '',
    username: '',
    password: '',
    replacePassword: true,
    clientAuthMethod: 'client_secret_basic',
    audienceParam: 'audience',
    extraAuthorizationParams: [],
    extraTokenParams: [],
    pkce: true,
    revocationUrl: '',
    issuer: '',
    advancedOpen: false,
  };
}

export function draftFromAuthentication(view: AuthenticationView): AuthenticationDraft {
  return {
    name: view.name,
    grantType: view.grantType,
    authorizationUrl: view.authorizationUrl ?? '',
    tokenUrl: view.tokenUrl,
    clientId: view.clientId,
    clientSecret: '',
    replaceClientSecret: !view.clientSecretSet,
    headerPrefix: view.headerPrefix,
    audience: view.audience ?? '',
    scope: view.scope ?? '',
    username: view.username ?? '',
    password: '',
    replacePassword: !view.passwordSet,
    clientAuthMethod: view.clientAuthMethod,
    audienceParam: view.audienceParam,
    extraAuthorizationParams: rowsFromRecord(view.extraAuthorizationParams),
    extraTokenParams: rowsFromRecord(view.extraTokenParams),
    pkce: view.pkce ?? true,
    revocationUrl: view.revocationUrl ?? '',
    issuer: '',
    advancedOpen: false,
  };
}

function sameRecord(a: Record<string, string>, b: Record<string, string> | undefined): boolean {
  const other = b ?? {};
  const keys = Object.keys(a);
  return keys.length === Object.keys(other).length && keys.every((key) => a[key] === other[key]);
}

/** The create request: only the fields the chosen grant type takes (API.md "Authentications"). */
export function createRequestOf(draft: AuthenticationDraft): AuthenticationCreate {
  const body: AuthenticationCreate = {
    name: draft.name.trim(),
    type: 'oauth2',
    grantType: draft.grantType,
    tokenUrl: draft.tokenUrl.trim(),
    clientId: draft.clientId.trim(),
    clientSecret: draft.clientSecret,
    headerPrefix: draft.headerPrefix.trim(),
    clientAuthMethod: draft.clientAuthMethod,
  };
  if (draft.audience.trim()) {
    body.audience = draft.audience.trim();
    body.audienceParam = draft.audienceParam;
  }
  if (draft.scope.trim()) body.scope = draft.scope.trim().split(/\s+/).join(' ');
  if (draft.revocationUrl.trim()) body.revocationUrl = draft.revocationUrl.trim();
  const extraToken = recordFromRows(draft.extraTokenParams);
  if (Object.keys(extraToken).length > 0) body.extraTokenParams = extraToken;
  if (draft.grantType === 'authorization_code') {
    body.authorizationUrl = draft.authorizationUrl.trim();
    body.pkce = draft.pkce;
    const extraAuthorization = recordFromRows(draft.extraAuthorizationParams);
    if (Object.keys(extraAuthorization).length > 0) body.extraAuthorizationParams = extraAuthorization;
  }
  if (draft.grantType === 'password') {
    body.username = draft.username.trim();
    body.password = draft.password;
  }
  return body;
}

/** The patch request: changed fields only; secrets only when the person chose to replace them. */
export function patchRequestOf(draft: AuthenticationDraft, view: AuthenticationView): AuthenticationPatch {
  const next = createRequestOf(draft);
  const patch: { -readonly [K in keyof AuthenticationPatch]: AuthenticationPatch[K] } = {};
  if (next.name !== view.name) patch.name = next.name;
  if (next.grantType !== view.grantType) patch.grantType = next.grantType;
  if (next.tokenUrl !== view.tokenUrl) patch.tokenUrl = next.tokenUrl;
  if (next.clientId !== view.clientId) patch.clientId = next.clientId;
  if (draft.replaceClientSecret && draft.clientSecret) patch.clientSecret = draft.clientSecret;
  if (next.headerPrefix !== view.headerPrefix) patch.headerPrefix = next.headerPrefix ?? 'Bearer';
  if ((next.audience ?? '') !== (view.audience ?? '')) patch.audience = next.audience ?? '';
  if (next.audience && draft.audienceParam !== view.audienceParam) patch.audienceParam = draft.audienceParam;
  if ((next.scope ?? '') !== (view.scope ?? '')) patch.scope = next.scope ?? '';
  if (draft.clientAuthMethod !== view.clientAuthMethod) patch.clientAuthMethod = draft.clientAuthMethod;
  if ((next.revocationUrl ?? '') !== (view.revocationUrl ?? '') && next.revocationUrl) {
    patch.revocationUrl = next.revocationUrl;
  }
  const extraToken = recordFromRows(draft.extraTokenParams);
  if (!sameRecord(extraToken, view.extraTokenParams)) patch.extraTokenParams = extraToken;
  if (draft.grantType === 'authorization_code') {
    if (next.authorizationUrl !== view.authorizationUrl) patch.authorizationUrl = next.authorizationUrl ?? '';
    if (draft.pkce !== (view.pkce ?? true)) patch.pkce = draft.pkce;
    const extraAuthorization = recordFromRows(draft.extraAuthorizationParams);
    if (!sameRecord(extraAuthorization, view.extraAuthorizationParams)) {
      patch.extraAuthorizationParams = extraAuthorization;
    }
  }
  if (draft.grantType === 'password') {
    if (next.username !== view.username) patch.username = next.username ?? '';
    if (draft.replacePassword && draft.password) patch.password = draft.password;
  }
  return patch;
}

/** Required fields checked before the round trip; the server checks everything again. */
function missingFields(draft: AuthenticationDraft, existing: AuthenticationView | null): ProblemView | null {
  const errors: { path: string; message: string }[] = [];
  const required = (path: string, value: string) => {
    if (!value.trim()) errors.push({ path, message: 'is required' });
  };
  required('/name', draft.name);
  if (draft.grantType === 'authorization_code') required('/authorizationUrl', draft.authorizationUrl);
  required('/tokenUrl', draft.tokenUrl);
  required('/clientId', draft.clientId);
  if (!existing || (draft.replaceClientSecret && !existing.clientSecretSet)) {
    required('/clientSecret', draft.clientSecret);
  }
  if (draft.grantType === 'password') {
    required('/username', draft.username);
    if (!existing?.passwordSet || draft.grantType !== existing.grantType) {
      required('/password', draft.password);
    }
  }
  if (errors.length === 0) return null;
  return { code: 'validation_failed', message: 'Some required fields are empty.', errors };
}

export function isDraftDirty(draft: AuthenticationDraft, existing: AuthenticationView | null): boolean {
  if (!existing) return true;
  return Object.keys(patchRequestOf(draft, existing)).length > 0;
}

const fieldLabels: Record<string, string> = {
  '/name': 'Name',
  '/grantType': 'Grant Type',
  '/authorizationUrl': 'Authorization URL',
  '/tokenUrl': 'Token URL',
  '/clientId': 'Client ID',
  '/clientSecret': 'Client Secret',
  '/headerPrefix': 'Header Prefix',
  '/audience': 'Audience',
  '/scope': 'Scope',
  '/username': 'Username',
  '/password': 'Password',
  '/clientAuthMethod': 'Client authentication method',
  '/audienceParam': 'Audience parameter',
  '/extraAuthorizationParams': 'Extra authorization parameters',
  '/extraTokenParams': 'Extra token parameters',
  '/pkce': 'PKCE',
  '/revocationUrl': 'Revocation URL',
  '/type': 'Type',
};

const fieldOrder = [
  '/name',
  '/grantType',
  '/authorizationUrl',
  '/tokenUrl',
  '/clientId',
  '/clientSecret',
  '/headerPrefix',
  '/audience',
  '/scope',
  '/username',
  '/password',
  '/clientAuthMethod',
  '/audienceParam',
  '/extraAuthorizationParams',
  '/extraTokenParams',
  '/pkce',
  '/revocationUrl',
];
const advancedFields = new Set([
  '/clientAuthMethod',
  '/audienceParam',
  '/extraAuthorizationParams',
  '/extraTokenParams',
  '/pkce',
  '/revocationUrl',
]);

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
 * The OAuth 2.0 authentication form of both paths (Security › Authorization and the connector
 * sidebar). Its fields follow the grant type exactly as the product page lists them.
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
  const errors: FieldErrors = fieldErrorsOf(problem);
  const id = (name: string) => `${idPrefix}-${name}`;
  const set = <K extends keyof AuthenticationDraft>(key: K, value: AuthenticationDraft[K]) =>
    onDraftChange({ ...draft, [key]: value });
  const grant = draft.grantType;
  const dirty = isDraftDirty(draft, existing);
  useUnsavedChangesGuard(
    existing
      ? dirty
      : [
          draft.name,
          draft.tokenUrl,
          draft.clientId,
          draft.clientSecret,
          draft.authorizationUrl,
          draft.password,
        ].some((value) => value.trim() !== ''),
  );

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (saving) return;
    const missing = missingFields(draft, existing);
    if (missing) {
      setProblem(missing);
      if (missing.errors?.some((e) => advancedFields.has(e.path))) set('advancedOpen', true);
      window.setTimeout(() => summaryRef.current?.focus(), 0);
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
      if (failure.errors?.some((e) => [...advancedFields].some((f) => e.path.startsWith(f)))) {
        onDraftChange({ ...draft, advancedOpen: true });
      }
      window.setTimeout(() => summaryRef.current?.focus(), 0);
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
      const next = { ...draft };
      if (found.tokenUrl) {
        next.tokenUrl = found.tokenUrl;
        filled.push('Token URL');
      }
      if (found.authorizationUrl && grant === 'authorization_code') {
        next.authorizationUrl = found.authorizationUrl;
        filled.push('Authorization URL');
      }
      if (found.revocationUrl) {
        next.revocationUrl = found.revocationUrl;
        filled.push('Revocation URL');
      }
      const methods = found.clientAuthMethods ?? [];
      if (methods.length > 0 && !methods.includes(next.clientAuthMethod)) {
        const supported = (['client_secret_basic', 'client_secret_post'] as const).find((m) =>
          methods.includes(m),
        );
        if (supported) {
          next.clientAuthMethod = supported;
          filled.push('Client authentication method');
        }
      }
      onDraftChange(next);
      const grantNote =
        found.grantTypes && !found.grantTypes.includes(grant)
          ? ` Note: the issuer does not list ${grantTypeLabels[grant]} among its grant types.`
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

  const secretField = (
    key: 'clientSecret' | 'password',
    replaceKey: 'replaceClientSecret' | 'replacePassword',
    label: string,
    isSet: boolean,
  ) => {
    const error = errorFor(errors, `/${key}`, label);
    if (existing && isSet && !draft[replaceKey]) {
      return (
        <fieldset className={error ? 'field has-error' : 'field'}>
          <legend className="label">{label}</legend>
          <div className="input-row secret-set">
            <span className="badge neutral">
              <span aria-hidden="true">●●●● </span>set
            </span>
            <span className="muted">Stored encrypted; it is never shown again.</span>
            <button
              type="button"
              className="button secondary small"
              onClick={() => {
                onDraftChange({ ...draft, [replaceKey]: true, [key]: '' });
                window.setTimeout(() => document.getElementById(id(key))?.focus(), 0);
              }}
            >
              Replace
            </button>
          </div>
          {error && <p className="field-error">{error}</p>}
        </fieldset>
      );
    }
    return (
      <TextField
        id={id(key)}
        label={label}
        type="password"
        autoComplete="new-password"
        value={draft[key]}
        onChange={(value) => set(key, value)}
        error={error}
        hint={existing && isSet ? 'Type a new value to replace the stored one.' : undefined}
        trailing={
          existing && isSet ? (
            <button
              type="button"
              className="button ghost small"
              onClick={() => onDraftChange({ ...draft, [replaceKey]: false, [key]: '' })}
            >
              Keep current
            </button>
          ) : undefined
        }
      />
    );
  };

  return (
    <form
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
        fields={fieldOrder.map((pointer) => ({
          pointer,
          label: fieldLabels[pointer] ?? pointer,
          id: id(pointer.slice(1)),
        }))}
        onReveal={(pointer) => {
          if (advancedFields.has(pointer) && !draft.advancedOpen) set('advancedOpen', true);
        }}
      />

      <TextField
        id={id('name')}
        label="Name"
        value={draft.name}
        onChange={(value) => set('name', value)}
        error={errorFor(errors, '/name', fieldLabels['/name'] ?? '')}
        placeholder="e.g. Billing API (production)"
      />

      <fieldset
        className={errors['/grantType'] ? 'grant-types has-error' : 'grant-types'}
        id={id('grantType')}
      >
        <legend>Grant Type</legend>
        <div className="segmented">
          {(Object.keys(grantTypeLabels) as GrantType[]).map((value) => (
            <label key={value} className={grant === value ? 'segment checked' : 'segment'}>
              <input
                type="radio"
                name={id('grantType')}
                value={value}
                checked={grant === value}
                onChange={() => set('grantType', value)}
              />
              {grantTypeLabels[value]}
            </label>
          ))}
        </div>
        {errors['/grantType'] && (
          <p className="field-error">{sentence('Grant Type', errors['/grantType'])}</p>
        )}
      </fieldset>

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

      {grant === 'authorization_code' && (
        <TextField
          id={id('authorizationUrl')}
          label="Authorization URL"
          type="url"
          inputMode="url"
          value={draft.authorizationUrl}
          onChange={(value) => set('authorizationUrl', value)}
          error={errorFor(errors, '/authorizationUrl', fieldLabels['/authorizationUrl'] ?? '')}
          placeholder="https://login.example.com/oauth2/authorize"
        />
      )}
      <TextField
        id={id('tokenUrl')}
        label="Token URL"
        type="url"
        inputMode="url"
        value={draft.tokenUrl}
        onChange={(value) => set('tokenUrl', value)}
        error={errorFor(errors, '/tokenUrl', fieldLabels['/tokenUrl'] ?? '')}
        placeholder="https://login.example.com/oauth2/token"
      />
      <TextField
        id={id('clientId')}
        label="Client ID"
        value={draft.clientId}
        onChange={(value) => set('clientId', value)}
        error={errorFor(errors, '/clientId', fieldLabels['/clientId'] ?? '')}
      />
      {secretField(
        'clientSecret',
        'replaceClientSecret',
        'Client Secret',
        existing?.clientSecretSet ?? false,
      )}
      <TextField
        id={id('headerPrefix')}
        label="Header Prefix"
        optional
        value={draft.headerPrefix}
        onChange={(value) => set('headerPrefix', value)}
        error={errorFor(errors, '/headerPrefix', fieldLabels['/headerPrefix'] ?? '')}
        hint={
          <>
            Sent as{' '}
            <code>
              Authorization: {draft.headerPrefix.trim() ? `${draft.headerPrefix.trim()} ` : ''}&lt;token&gt;
            </code>
            . Usually Bearer; leave empty to send the bare token.
          </>
        }
      />
      <TextField
        id={id('audience')}
        label="Audience"
        optional
        value={draft.audience}
        onChange={(value) => set('audience', value)}
        error={errorFor(errors, '/audience', fieldLabels['/audience'] ?? '')}
        placeholder="https://api.example.com"
      />
      <TextField
        id={id('scope')}
        label="Scope"
        optional
        value={draft.scope}
        onChange={(value) => set('scope', value)}
        error={errorFor(errors, '/scope', fieldLabels['/scope'] ?? '')}
        hint="Space-separated. Ask for the least access the integration needs."
        placeholder="read:invoices write:invoices"
      />
      {grant === 'password' && (
        <>
          <TextField
            id={id('username')}
            label="Username"
            value={draft.username}
            autoComplete="off"
            onChange={(value) => set('username', value)}
            error={errorFor(errors, '/username', fieldLabels['/username'] ?? '')}
          />
          {secretField('password', 'replacePassword', 'Password', existing?.passwordSet ?? false)}
        </>
      )}

      {grant === 'authorization_code' &&
        (existing?.redirectUri ? (
          <div className="connect-box">
            <RedirectUri id={id('redirectUri')} uri={existing.redirectUri} />
            {existing.grantType === 'authorization_code' && (
              <ConnectButton
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

      <details
        className="advanced"
        open={draft.advancedOpen}
        onToggle={(event) => {
          const open = (event.currentTarget as HTMLDetailsElement).open;
          if (open !== draft.advancedOpen) set('advancedOpen', open);
        }}
      >
        <summary>Advanced</summary>
        <div className="advanced-body">
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
                onChange={(event) => set('issuer', event.target.value)}
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

          <div className="field">
            <label htmlFor={id('clientAuthMethod')}>Client authentication method</label>
            <select
              id={id('clientAuthMethod')}
              value={draft.clientAuthMethod}
              aria-describedby={id('clientAuthMethod-hint')}
              onChange={(event) => set('clientAuthMethod', event.target.value as ClientAuthMethod)}
            >
              <option value="client_secret_basic">HTTP Basic header (client_secret_basic)</option>
              <option value="client_secret_post">Request body (client_secret_post)</option>
            </select>
            <p className="field-hint" id={id('clientAuthMethod-hint')}>
              How the Client ID and Secret are sent to the token endpoint (RFC 6749 §2.3.1).
            </p>
            {errorFor(errors, '/clientAuthMethod', fieldLabels['/clientAuthMethod'] ?? '') && (
              <p className="field-error">
                {errorFor(errors, '/clientAuthMethod', fieldLabels['/clientAuthMethod'] ?? '')}
              </p>
            )}
          </div>

          <div className="field">
            <label htmlFor={id('audienceParam')}>Audience parameter</label>
            <select
              id={id('audienceParam')}
              value={draft.audienceParam}
              aria-describedby={id('audienceParam-hint')}
              onChange={(event) => set('audienceParam', event.target.value as AudienceParam)}
            >
              <option value="audience">audience</option>
              <option value="resource">resource (RFC 8707)</option>
            </select>
            <p className="field-hint" id={id('audienceParam-hint')}>
              The token request parameter that carries the Audience.
            </p>
          </div>

          {grant === 'authorization_code' && (
            <>
              <div className="field checkbox">
                <input
                  id={id('pkce')}
                  type="checkbox"
                  checked={draft.pkce}
                  onChange={(event) => set('pkce', event.target.checked)}
                />
                <label htmlFor={id('pkce')}>Use PKCE (S256, RFC 7636)</label>
              </div>
              <KeyValueRows
                idPrefix={id('extraAuthorizationParams')}
                legend="Extra authorization parameters"
                description="Added to the authorization URL, e.g. prompt=consent or access_type=offline."
                keyLabel="Parameter"
                valueLabel="Value"
                addLabel="Add parameter"
                rows={draft.extraAuthorizationParams}
                onChange={(rows) => set('extraAuthorizationParams', rows)}
                error={errorFor(
                  errors,
                  '/extraAuthorizationParams',
                  fieldLabels['/extraAuthorizationParams'] ?? '',
                )}
              />
            </>
          )}
          <KeyValueRows
            idPrefix={id('extraTokenParams')}
            legend="Extra token parameters"
            description="Added to every token request. Protocol parameters cannot be overridden."
            keyLabel="Parameter"
            valueLabel="Value"
            addLabel="Add parameter"
            rows={draft.extraTokenParams}
            onChange={(rows) => set('extraTokenParams', rows)}
            error={errorFor(errors, '/extraTokenParams', fieldLabels['/extraTokenParams'] ?? '')}
          />
          <TextField
            id={id('revocationUrl')}
            label="Revocation URL"
            optional
            type="url"
            inputMode="url"
            value={draft.revocationUrl}
            onChange={(value) => set('revocationUrl', value)}
            error={errorFor(errors, '/revocationUrl', fieldLabels['/revocationUrl'] ?? '')}
            hint="Tokens are revoked here when the authentication is deleted. Found from the issuer when empty."
          />
        </div>
      </details>

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
