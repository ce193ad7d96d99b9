// API keys: the list (revoked ones too), create (the secret is shown once, here, and nowhere else), revoke.
import { useState } from 'preact/hooks';
import { api, query } from '../api';
import type { ApiKey, Role, SignedIn } from '../types';
import { ErrorNote, Field, Loading, Time, useLoad } from '../ui';

interface Created {
  key: ApiKey;
  secret: string;
}

export function KeysView({ session }: { session: SignedIn }) {
  const [showRevoked, setShowRevoked] = useState(false);
  const keys = useLoad(
    () =>
      api<{ data: ApiKey[] }>(
        'GET',
        `/admin/v1/keys${query({ include_revoked: showRevoked ? 'true' : '' })}`,
      ),
    String(showRevoked),
  );
  const [created, setCreated] = useState<Created | null>(null);
  const [confirming, setConfirming] = useState('');
  const [error, setError] = useState<unknown>(null);

  const revoke = async (id: string) => {
    setError(null);
    try {
      await api('DELETE', `/admin/v1/keys/${encodeURIComponent(id)}`);
      setConfirming('');
      keys.reload();
    } catch (failure) {
      setError(failure);
    }
  };

  return (
    <section aria-labelledby="keys-heading">
      <h1 id="keys-heading" tabIndex={-1}>
        API keys
      </h1>
      <CreateKey
        session={session}
        onCreated={(c) => {
          setCreated(c);
          keys.reload();
        }}
      />
      {created ? (
        <div class="result ok" role="status">
          <h2>Key “{created.key.name}” created</h2>
          <p>Copy the secret now: it is shown only this once and stored only as a hash.</p>
          <Field label="Secret">
            <input
              class="secret mono"
              readOnly
              value={created.secret}
              onFocus={(e) => e.currentTarget.select()}
            />
          </Field>
          <div class="actions">
            <button type="button" class="secondary" onClick={() => setCreated(null)}>
              I have copied it
            </button>
          </div>
        </div>
      ) : null}
      <ErrorNote error={error} />
      <div class="inline">
        <label class="check">
          <input
            type="checkbox"
            checked={showRevoked}
            onChange={(e) => setShowRevoked(e.currentTarget.checked)}
          />
          Show revoked keys
        </label>
      </div>
      <ErrorNote error={keys.error} />
      {keys.loading && !keys.data ? <Loading what="keys" /> : null}
      {keys.data ? (
        <div class="table-wrap" aria-busy={keys.loading}>
          <table>
            <caption>{keys.data.data.length} keys</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Id</th>
                <th scope="col">Tenant</th>
                <th scope="col">Role</th>
                <th scope="col">Models</th>
                <th scope="col">Req/min</th>
                <th scope="col">Created</th>
                <th scope="col">State</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.data.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td class="mono">{k.id}</td>
                  <td>{k.global ? 'all' : k.tenant}</td>
                  <td>{k.role.replace('_', ' ')}</td>
                  <td>{k.allowed_models.length ? k.allowed_models.join(', ') : 'tenant’s'}</td>
                  <td>{k.requests_per_minute || '—'}</td>
                  <td>
                    <Time iso={k.created_at} />
                  </td>
                  <td>
                    {k.revoked_at ? (
                      <span class="badge state-bad">
                        revoked <Time iso={k.revoked_at} />
                      </span>
                    ) : (
                      <span class="badge state-ok">active</span>
                    )}
                  </td>
                  <td>
                    {k.revoked_at ? null : confirming === k.id ? (
                      <span class="inline-actions">
                        <button type="button" class="danger" onClick={() => void revoke(k.id)}>
                          Confirm revoke {k.name}
                        </button>
                        <button type="button" class="secondary" onClick={() => setConfirming('')}>
                          Keep
                        </button>
                      </span>
                    ) : (
                      <button
                        type="button"
                        class="secondary"
                        aria-label={`Revoke ${k.name}`}
                        onClick={() => setConfirming(k.id)}
                      >
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

function CreateKey({ session, onCreated }: { session: SignedIn; onCreated: (created: Created) => void }) {
  const [name, setName] = useState('');
  const [tenant, setTenant] = useState(session.tenant || 'default');
  const [role, setRole] = useState<Role>('user');
  const [models, setModels] = useState('');
  const [rpm, setRpm] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const admin = session.role === 'admin';

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const created = await api<Created>('POST', '/admin/v1/keys', {
        name,
        tenant: admin ? tenant : session.tenant,
        role,
        allowed_models: models
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean),
        requests_per_minute: rpm ? Number(rpm) : 0,
      });
      setName('');
      onCreated(created);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-label="Create a key">
      <h2>Create a key</h2>
      <div class="filters">
        <Field label="Name">
          <input required maxLength={128} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        {admin ? (
          <Field label="Tenant">
            <input required value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} />
          </Field>
        ) : null}
        <Field label="Role">
          <select value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
            <option value="user">user (inference)</option>
            <option value="auditor">auditor</option>
            <option value="tenant_admin">tenant admin</option>
            {admin ? <option value="admin">admin</option> : null}
          </select>
        </Field>
        <Field label="Allowed models" hint="comma-separated; empty: the tenant's">
          <input value={models} onInput={(e) => setModels(e.currentTarget.value)} />
        </Field>
        <Field label="Requests per minute" hint="0 or empty: the tenant's">
          <input type="number" min={0} value={rpm} onInput={(e) => setRpm(e.currentTarget.value)} />
        </Field>
      </div>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </div>
      <ErrorNote error={error} />
    </form>
  );
}
