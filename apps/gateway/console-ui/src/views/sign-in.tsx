// Sign-in: the organisation's identity provider (authorization code + PKCE, run by the gateway) or an API
// key for evaluation. The key goes to the gateway once and lives on only in the HttpOnly session cookie.
import { useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorNote, Field } from '../ui';

export function SignInView({ oidc, onSignedIn }: { oidc: boolean; onSignedIn: () => Promise<unknown> }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  // An OIDC sign-in that failed comes back here with the gateway's reason.
  const [error, setError] = useState<unknown>(() => {
    const reason = new URLSearchParams(location.search).get('sign_in_error');
    return reason ? new Error(reason) : null;
  });

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('POST', '/console/api/session', { api_key: key });
      setKey('');
      await onSignedIn();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <h1>Airlock console</h1>
      <p class="muted">For auditors and administrators of this Airlock installation.</p>
      {oidc ? (
        <p>
          <a class="button" href="/console/oidc/login">
            Sign in with your organisation
          </a>
        </p>
      ) : null}
      <form onSubmit={(e) => void submit(e)} aria-describedby="key-note">
        <Field label="API key">
          <input
            type="password"
            name="api_key"
            autoComplete="off"
            required
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
          />
        </Field>
        <p id="key-note" class="hint">
          For evaluation. The key is sent once; the session is an HttpOnly cookie, and this page never keeps
          the key.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in with key'}
        </button>
      </form>
      <ErrorNote error={error} />
    </main>
  );
}
