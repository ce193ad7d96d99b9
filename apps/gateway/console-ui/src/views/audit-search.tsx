// Search the audit log: time range, tenant, principal, model, kind, outcome; pages of 50 via page tokens.
import { useState } from 'preact/hooks';
import { api, query } from '../api';
import { href } from '../router';
import type { RecordPage, SignedIn } from '../types';
import { ErrorNote, Field, Loading, Notice, Outcome, Time, useLoad } from '../ui';
import { ExportButtons } from './export';

export interface AuditFilters {
  since: string;
  until: string;
  tenant: string;
  principal: string;
  model: string;
  kind: string;
  outcome: string;
}

const EMPTY: AuditFilters = {
  since: '',
  until: '',
  tenant: '',
  principal: '',
  model: '',
  kind: '',
  outcome: '',
};
const PAGE_SIZE = 50;

/** datetime-local values are the viewer's local time; the API takes RFC 3339. */
const toIso = (local: string) => (local ? new Date(local).toISOString() : '');

export function filterQuery(f: AuditFilters): Record<string, string> {
  return {
    start_time: toIso(f.since),
    end_time: toIso(f.until),
    tenant: f.tenant,
    principal_id: f.principal,
    model: f.model,
    kind: f.kind,
    outcome: f.outcome,
  };
}

export function FilterFields({
  filters,
  onChange,
  session,
}: {
  filters: AuditFilters;
  onChange: (f: AuditFilters) => void;
  session: SignedIn;
}) {
  const set = (name: keyof AuditFilters) => (e: { currentTarget: { value: string } }) =>
    onChange({ ...filters, [name]: e.currentTarget.value });
  const allTenants = session.role === 'admin' || session.global;
  return (
    <div class="filters">
      <Field label="From (your time)">
        <input type="datetime-local" step="1" value={filters.since} onInput={set('since')} />
      </Field>
      <Field label="Until (your time)">
        <input type="datetime-local" step="1" value={filters.until} onInput={set('until')} />
      </Field>
      {allTenants ? (
        <Field label="Tenant">
          <input type="text" value={filters.tenant} onInput={set('tenant')} placeholder="all" />
        </Field>
      ) : null}
      <Field label="Principal">
        <input
          type="text"
          value={filters.principal}
          onInput={set('principal')}
          placeholder="key id or subject"
        />
      </Field>
      <Field label="Model">
        <input type="text" value={filters.model} onInput={set('model')} />
      </Field>
      <Field label="Record kind">
        <select value={filters.kind} onChange={set('kind')}>
          <option value="">any</option>
          <option value="request">request</option>
          <option value="completion">completion</option>
          <option value="usage">usage (a worker's late report)</option>
          <option value="admin_action">admin action</option>
        </select>
      </Field>
      <Field label="Outcome">
        <select value={filters.outcome} onChange={set('outcome')}>
          <option value="">any</option>
          <option value="allowed">allowed</option>
          <option value="denied">denied</option>
          <option value="succeeded">succeeded</option>
          <option value="failed">failed</option>
          <option value="cancelled">cancelled</option>
        </select>
      </Field>
    </div>
  );
}

export function AuditSearch({ session }: { session: SignedIn }) {
  const [draft, setDraft] = useState<AuditFilters>(EMPTY);
  const [filters, setFilters] = useState<AuditFilters>(EMPTY);
  // Page tokens of the pages before this one: "Previous" goes back without the API keeping state.
  const [tokens, setTokens] = useState<string[]>([]);
  const [token, setToken] = useState('');
  const key = JSON.stringify([filters, token]);
  const page = useLoad(
    () =>
      api<RecordPage>(
        'GET',
        `/admin/v1/audit/records${query({ ...filterQuery(filters), page_size: PAGE_SIZE, page_token: token })}`,
      ),
    key,
  );

  const search = (event: Event) => {
    event.preventDefault();
    setFilters(draft);
    setTokens([]);
    setToken('');
  };

  return (
    <section aria-labelledby="audit-heading">
      <h1 id="audit-heading" tabIndex={-1}>
        Audit log
      </h1>
      <form class="search" onSubmit={search} role="search" aria-label="Audit records">
        <FilterFields filters={draft} onChange={setDraft} session={session} />
        <div class="actions">
          <button type="submit">Search</button>
          <button
            type="button"
            class="secondary"
            onClick={() => {
              setDraft(EMPTY);
              setFilters(EMPTY);
              setTokens([]);
              setToken('');
            }}
          >
            Clear
          </button>
          <ExportButtons filters={filterQuery(filters)} />
        </div>
      </form>
      <ErrorNote error={page.error} />
      {page.loading && !page.data ? <Loading what="records" /> : null}
      {page.data ? (
        <>
          <div class="table-wrap" aria-busy={page.loading}>
            <table>
              <caption>
                {page.data.data.length === 0
                  ? 'No records match.'
                  : `Records ${page.data.data[0].sequence}–${page.data.data[page.data.data.length - 1].sequence}` +
                    ` (page ${tokens.length + 1})`}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Seq</th>
                  <th scope="col">Time</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Action</th>
                  <th scope="col">Principal</th>
                  <th scope="col">Tenant</th>
                  <th scope="col">Model</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {page.data.data.map((r) => (
                  <tr key={r.sequence}>
                    <td>
                      <a href={href('audit', 'records', r.sequence)} aria-label={`Record ${r.sequence}`}>
                        {r.sequence}
                      </a>
                    </td>
                    <td>
                      <Time iso={r.time} />
                    </td>
                    <td>{r.kind.replace('_', ' ')}</td>
                    <td>{r.action}</td>
                    <td class="mono">{r.principal_id || '—'}</td>
                    <td>{r.tenant || '—'}</td>
                    <td>{r.model || '—'}</td>
                    <td>
                      <Outcome value={r.outcome} />
                    </td>
                    <td>{r.status_code || '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav class="pager" aria-label="Pages">
            <button
              type="button"
              class="secondary"
              disabled={tokens.length === 0}
              onClick={() => {
                setToken(tokens[tokens.length - 1] ?? '');
                setTokens(tokens.slice(0, -1));
              }}
            >
              Previous page
            </button>
            <button
              type="button"
              class="secondary"
              disabled={!page.data.next_page_token}
              onClick={() => {
                setTokens([...tokens, token]);
                setToken(page.data?.next_page_token ?? '');
              }}
            >
              Next page
            </button>
          </nav>
          {page.data.data.length === 0 && !filters.since && !filters.until ? (
            <Notice>Nothing recorded yet that you may see.</Notice>
          ) : null}
        </>
      ) : null}
    </section>
  );
}
