// Tenants and their quotas; a change sends only the quota fields (the API's update mask keeps the rest).
import { useState } from 'preact/hooks';
import { api } from '../api';
import type { SignedIn, Tenant } from '../types';
import { ErrorNote, Field, Loading, Time, useLoad } from '../ui';

const QUOTAS = [
  ['requests_per_minute', 'Requests per minute'],
  ['tokens_per_minute', 'Tokens per minute'],
  ['tokens_per_day', 'Tokens per day'],
  ['tokens_per_month', 'Tokens per month'],
] as const;

type QuotaName = (typeof QUOTAS)[number][0];

const limit = (value: number) => (value ? value.toLocaleString() : 'no limit');

export function TenantsView({ session }: { session: SignedIn }) {
  const tenants = useLoad(() => api<{ data: Tenant[] }>('GET', '/admin/v1/tenants'), 'tenants');
  const [editing, setEditing] = useState('');
  return (
    <section aria-labelledby="tenants-heading">
      <h1 id="tenants-heading" tabIndex={-1}>
        Tenants and quotas
      </h1>
      {session.role === 'tenant_admin' ? (
        <p class="muted">As tenant admin you see and change the quotas of tenant {session.tenant} only.</p>
      ) : null}
      <ErrorNote error={tenants.error} />
      {tenants.loading && !tenants.data ? <Loading what="tenants" /> : null}
      {tenants.data ? (
        <div class="table-wrap" aria-busy={tenants.loading}>
          <table>
            <thead>
              <tr>
                <th scope="col">Tenant</th>
                <th scope="col">Models</th>
                {QUOTAS.map(([name, label]) => (
                  <th scope="col" key={name}>
                    {label}
                  </th>
                ))}
                <th scope="col">Capture</th>
                <th scope="col">State</th>
                <th scope="col">Updated</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tenants.data.data.map((t) => (
                <tr key={t.id}>
                  <td>
                    {t.name} <span class="muted mono">{t.id !== t.name ? t.id : ''}</span>
                  </td>
                  <td>{t.allowed_models.length ? t.allowed_models.join(', ') : 'all'}</td>
                  {QUOTAS.map(([name]) => (
                    <td key={name} data-quota={name}>
                      {limit(t[name])}
                    </td>
                  ))}
                  <td>{t.content_capture}</td>
                  <td>
                    {t.disabled ? (
                      <span class="badge state-bad">disabled</span>
                    ) : (
                      <span class="badge state-ok">enabled</span>
                    )}
                  </td>
                  <td>
                    <Time iso={t.updated_at} />
                  </td>
                  <td>
                    <button
                      type="button"
                      class="secondary"
                      aria-expanded={editing === t.id}
                      aria-label={`Edit quotas of ${t.id}`}
                      onClick={() => setEditing(editing === t.id ? '' : t.id)}
                    >
                      Edit quotas
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
      {editing && tenants.data ? (
        <QuotaForm
          tenant={tenants.data.data.find((t) => t.id === editing)!}
          onDone={() => {
            setEditing('');
            tenants.reload();
          }}
        />
      ) : null}
    </section>
  );
}

function QuotaForm({ tenant, onDone }: { tenant: Tenant; onDone: () => void }) {
  const [values, setValues] = useState<Record<QuotaName, string>>(
    Object.fromEntries(QUOTAS.map(([name]) => [name, String(tenant[name])])) as Record<QuotaName, string>,
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api(
        'PATCH',
        `/admin/v1/tenants/${encodeURIComponent(tenant.id)}`,
        Object.fromEntries(QUOTAS.map(([name]) => [name, Number(values[name] || 0)])),
      );
      onDone();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="panel" onSubmit={(e) => void submit(e)} aria-label={`Quotas of ${tenant.id}`}>
      <h2>Quotas of {tenant.name}</h2>
      <p class="hint">0 means no limit. Keys may set lower limits of their own.</p>
      <div class="filters">
        {QUOTAS.map(([name, label]) => (
          <Field key={name} label={label}>
            <input
              type="number"
              min={0}
              value={values[name]}
              onInput={(e) => setValues({ ...values, [name]: e.currentTarget.value })}
            />
          </Field>
        ))}
      </div>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : 'Save quotas'}
        </button>
        <button type="button" class="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
      <ErrorNote error={error} />
    </form>
  );
}
