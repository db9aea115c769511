import { useState } from 'react';
import { useAnnounce } from './announcer.js';
import { type AuthenticationView, type ProblemView, type PublicKeyView, problemOf } from './api-client.js';
import { useConsoleData } from './console-data.js';
import { CopyField } from './copy-field.js';
import { formatDateTime } from './format.js';
import { ProblemMessage } from './problem-message.js';

const STATUS_LABELS: Record<PublicKeyView['status'], { label: string; badge: string }> = {
  current: { label: 'Signing', badge: 'success' },
  next: { label: 'Next: waiting to be activated', badge: 'warning' },
  retiring: { label: 'Retiring: still published', badge: 'neutral' },
};

/**
 * The "Keys" of an authentication that signs or presents a key (docs/keys.md): for each key its
 * public JWK, its PEM and, for mutual TLS, its certificate, each with a Copy button — what to register
 * at the provider; the published jwks_uri; the DPoP key; and the three steps of a rotation. Nothing
 * here is secret: the private key never reaches the console.
 */
export function KeysSection(props: {
  idPrefix: string;
  authentication: AuthenticationView;
  onChanged: (view: AuthenticationView) => void;
}) {
  const { idPrefix, authentication, onChanged } = props;
  const { api } = useConsoleData();
  const announce = useAnnounce();
  const [busy, setBusy] = useState<string | null>(null);
  const [problem, setProblem] = useState<ProblemView | null>(null);
  const keys = authentication.keys ?? [];
  const dpop = authentication.dpopKey;
  if (keys.length === 0 && dpop === undefined) return null;
  const id = (name: string) => `${idPrefix}-keys-${name}`;
  const next = keys.find((key) => key.status === 'next');
  const retiring = keys.find((key) => key.status === 'retiring');

  const run = async (step: string, action: () => Promise<AuthenticationView>, said: string) => {
    setBusy(step);
    setProblem(null);
    try {
      const view = await action();
      announce(said);
      onChanged(view);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(null);
    }
  };

  return (
    <section className="keys-section" aria-labelledby={id('title')}>
      <h3 id={id('title')}>Keys</h3>
      {keys.length > 0 && (
        <p className="muted">
          Register the public key (or the certificate, for mutual TLS) at the provider
          {authentication.jwksUri ? ', or give it the JWKS URL' : ''}. The private key never leaves Grantry.
        </p>
      )}
      {authentication.jwksUri && (
        <CopyField
          id={id('jwks-uri')}
          label="JWKS URL (jwks_uri)"
          value={authentication.jwksUri}
          hint="Public: providers that fetch a client's keys read them here, the next key of a rotation included."
        />
      )}
      {keys.map((key) => (
        <KeyCard key={key.kid} idPrefix={id(key.kid.slice(0, 12))} publicKey={key} />
      ))}
      {keys.length > 0 && (
        <div className="rotation">
          <h4>Rotate without downtime</h4>
          <ol className="muted">
            <li>Add a next key: it is published beside the current one, which keeps signing.</li>
            <li>Register it at the provider, then activate it: Grantry checks it with a token request.</li>
            <li>Finish: the old key is dropped.</li>
          </ol>
          <div className="form-actions">
            {next === undefined && retiring === undefined && (
              <button
                type="button"
                className="button secondary"
                disabled={busy !== null}
                onClick={() =>
                  void run('rotate', () => api.rotateKey(authentication.id), 'A next key was added.')
                }
              >
                {busy === 'rotate' ? 'Adding…' : 'Add next key'}
              </button>
            )}
            {next !== undefined && (
              <button
                type="button"
                className="button primary"
                disabled={busy !== null}
                onClick={() =>
                  void run(
                    'activate',
                    () => api.activateKey(authentication.id),
                    'The new key signs now; the old one is still published.',
                  )
                }
              >
                {busy === 'activate' ? 'Checking…' : 'Activate next key'}
              </button>
            )}
            {(next !== undefined || retiring !== undefined) && (
              <button
                type="button"
                className="button secondary"
                disabled={busy !== null}
                onClick={() =>
                  void run(
                    'finish',
                    () => api.finishKeyRotation(authentication.id),
                    'The rotation is finished: only the new key is left.',
                  )
                }
              >
                {busy === 'finish' ? 'Finishing…' : 'Finish rotation'}
              </button>
            )}
          </div>
          <div aria-live="polite">{problem && <ProblemMessage problem={problem} />}</div>
        </div>
      )}
      {dpop !== undefined && (
        <div className="key-card">
          <h4>DPoP key</h4>
          <p className="muted">
            Tokens are bound to this key (RFC 9449): every token request and API call carries a proof made
            with it. Providers learn it from the proofs; nothing to register.
          </p>
          <CopyField id={id('dpop-jkt')} label="Thumbprint (jkt)" value={dpop.jkt} />
        </div>
      )}
    </section>
  );
}

function KeyCard({ idPrefix, publicKey }: { idPrefix: string; publicKey: PublicKeyView }) {
  const status = STATUS_LABELS[publicKey.status];
  return (
    <div className="key-card">
      <p className="key-head">
        <span className={`badge ${status.badge}`}>{status.label}</span> <code>{publicKey.alg}</code>{' '}
        <span className="muted">
          {publicKey.origin === 'generated' ? 'made by Grantry' : 'imported'},{' '}
          {formatDateTime(publicKey.createdAt)}
        </span>
      </p>
      <CopyField id={`${idPrefix}-kid`} label="Key ID (kid)" value={publicKey.kid} />
      <CopyField
        id={`${idPrefix}-jwk`}
        label="Public key (JWK)"
        value={JSON.stringify(publicKey.publicJwk, null, 2)}
        multiline
      />
      <CopyField
        id={`${idPrefix}-pem`}
        label="Public key (PEM)"
        value={publicKey.publicKeyPem.trim()}
        multiline
      />
      {publicKey.certificate && (
        <CopyField
          id={`${idPrefix}-certificate`}
          label="Certificate (PEM)"
          value={publicKey.certificate.trim()}
          multiline
          footer={
            <>
              SHA-256 <code>{publicKey.certificateSha256}</code>
              {publicKey.certificateExpiresAt
                ? `, expires ${formatDateTime(publicKey.certificateExpiresAt)}`
                : ''}
            </>
          }
        />
      )}
    </div>
  );
}
