import { useRef, useState } from 'react';
import { useAnnounce } from './announcer.js';
import { type AuthenticationView, type ProblemView, problemOf } from './api-client.js';
import { useConsoleData } from './console-data.js';
import { ErrorSummary, errorFor, fieldErrorsOf, TextAreaField, TextField } from './field.js';
import { ProblemMessage } from './problem-message.js';

/**
 * "Import Google service account" (docs/keys.md "The JWT-bearer grant"): the key file Google made,
 * the scopes, and for domain-wide delegation the user to act as — saved in one request as a JWT
 * Bearer authentication. The file is read by the server once and never shown again.
 */
export function ServiceAccountImport(props: {
  idPrefix: string;
  name: string;
  onImported: (view: AuthenticationView) => void;
}) {
  const { idPrefix, onImported } = props;
  const { api } = useConsoleData();
  const announce = useAnnounce();
  const [open, setOpen] = useState(false);
  const [name, setName] = useState(props.name);
  const [file, setFile] = useState('');
  const [scope, setScope] = useState('');
  const [subject, setSubject] = useState('');
  const [saving, setSaving] = useState(false);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const summaryRef = useRef<HTMLDivElement>(null);
  const id = (part: string) => `${idPrefix}-sa-${part}`;
  const errors = fieldErrorsOf(problem);

  const readFile = async (input: HTMLInputElement) => {
    const chosen = input.files?.[0];
    if (chosen !== undefined) setFile(await chosen.text());
  };

  const save = async () => {
    const missing = [
      ...(name.trim() === '' ? [{ path: '/name', message: 'is required' }] : []),
      ...(file.trim() === '' ? [{ path: '/serviceAccountJson', message: 'is required' }] : []),
      ...(scope.trim() === '' ? [{ path: '/assertion/scope', message: 'is required' }] : []),
    ];
    if (missing.length > 0) {
      setProblem({ code: 'validation_failed', message: 'Some required fields are empty.', errors: missing });
      return;
    }
    setSaving(true);
    setProblem(null);
    try {
      // As docs/api.md shapes it: sub for domain-wide delegation, Google's scope among the claims.
      const assertion: { sub?: string; claims: Record<string, string> } = {
        claims: { scope: scope.trim().replace(/\s+/g, ' ') },
      };
      if (subject.trim() !== '') assertion.sub = subject.trim();
      const view = await api.createAuthentication({
        name: name.trim(),
        type: 'oauth2',
        serviceAccountJson: file,
        assertion,
      });
      setFile('');
      announce(`Authentication ${view.name} created from the service account key file`);
      onImported(view);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setSaving(false);
    }
  };

  if (!open) {
    return (
      <div className="service-account-import">
        <p className="muted">
          Server to server, no person signing in: a service account signs a JWT (RFC 7523).
        </p>
        <button type="button" className="button secondary" onClick={() => setOpen(true)}>
          Import Google service account
        </button>
      </div>
    );
  }
  return (
    <fieldset className="service-account-import" aria-describedby={id('hint')}>
      <legend>Import Google service account</legend>
      <p className="field-hint" id={id('hint')}>
        In the Google Cloud console: <em>IAM &amp; Admin → Service accounts → Keys → Add key → JSON</em>. The
        file sets the token URL, the issuer (the service account's email) and the key; it is never shown
        again.
      </p>
      <ErrorSummary
        problem={problem}
        summaryRef={summaryRef}
        fields={[
          { pointer: '/name', label: 'Name', id: id('name') },
          { pointer: '/serviceAccountJson', label: 'Key file', id: id('file') },
          { pointer: '/assertion/scope', label: 'Scopes', id: id('scope') },
          { pointer: '/assertion/sub', label: 'Act as user', id: id('sub') },
        ]}
      />
      <TextField
        id={id('name')}
        label="Name"
        value={name}
        onChange={setName}
        error={errorFor(errors, '/name', 'Name')}
      />
      <div className="field">
        <label htmlFor={id('upload')}>Key file (JSON)</label>
        <input
          id={id('upload')}
          type="file"
          accept="application/json,.json"
          onChange={(event) => void readFile(event.currentTarget)}
        />
      </div>
      <TextAreaField
        id={id('file')}
        label="…or paste its contents"
        value={file}
        onChange={setFile}
        placeholder='{ "type": "service_account", … }'
        error={errorFor(errors, '/serviceAccountJson', 'Key file')}
      />
      <TextField
        id={id('scope')}
        label="Scopes"
        value={scope}
        onChange={setScope}
        placeholder="https://www.googleapis.com/auth/drive.readonly"
        hint="Space-separated; they go in the assertion, as Google reads them."
        error={errorFor(errors, '/assertion/scope', 'Scopes')}
      />
      <TextField
        id={id('sub')}
        label="Act as user"
        optional
        value={subject}
        onChange={setSubject}
        placeholder="someone@your-domain.com"
        hint="Domain-wide delegation: a Workspace administrator must allow the service account these scopes."
        error={errorFor(errors, '/assertion/sub', 'Act as user')}
      />
      {problem && !problem.errors && <ProblemMessage problem={problem} />}
      <div className="form-actions">
        <button type="button" className="button primary" disabled={saving} onClick={() => void save()}>
          {saving ? 'Importing…' : 'Import and save'}
        </button>
        <button type="button" className="button ghost" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
    </fieldset>
  );
}
