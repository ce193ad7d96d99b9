// Usage over the last hour from the audit log's completion records: tokens and requests per minute, time
// to first token and latency (median per minute), and totals per tenant and per key. The audit log is the
// gateway's own record of every request, so no Prometheus is needed; a tenant-scoped role sees its tenant.
import { api, query } from '../api';
import { BarChart, LineChart, type Point } from '../chart';
import type { AuditRecord, RecordPage } from '../types';
import { ErrorNote, Loading, useLoad } from '../ui';

const MINUTES = 60;
const MAX_PAGES = 5;
const INFERENCE = new Set(['chat.completions', 'completions', 'embeddings', 'responses']);

async function lastHour(): Promise<{ records: AuditRecord[]; truncated: boolean; since: number }> {
  const since = Math.floor(Date.now() / 60_000) * 60_000 - (MINUTES - 1) * 60_000;
  const records: AuditRecord[] = [];
  let token = '';
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = await api<RecordPage>(
      'GET',
      `/admin/v1/audit/records${query({
        kind: 'completion',
        start_time: new Date(since).toISOString(),
        page_size: 1000,
        page_token: token,
      })}`,
    );
    // Inference only: the model listings the Models view polls also end in completion records.
    records.push(...answer.data.filter((r) => INFERENCE.has(r.action)));
    if (!answer.next_page_token) return { records, truncated: false, since };
    token = answer.next_page_token;
  }
  return { records, truncated: true, since };
}

const median = (values: number[]) => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const minuteLabel = (ms: number) =>
  new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });

export function UsageView() {
  const usage = useLoad(lastHour, 'usage');
  return (
    <section aria-labelledby="usage-heading">
      <h1 id="usage-heading" tabIndex={-1}>
        Usage, last hour
      </h1>
      <p class="muted">
        From the audit log's completion records (the gateway's own data). Times in your zone.{' '}
        <button type="button" class="secondary" onClick={usage.reload}>
          Refresh
        </button>
      </p>
      <ErrorNote error={usage.error} />
      {usage.loading && !usage.data ? <Loading what="usage" /> : null}
      {usage.data ? <UsageCharts {...usage.data} /> : null}
    </section>
  );
}

function UsageCharts({
  records,
  truncated,
  since,
}: {
  records: AuditRecord[];
  truncated: boolean;
  since: number;
}) {
  const buckets = Array.from({ length: MINUTES }, (_, i) => ({
    at: since + i * 60_000,
    tokens: 0,
    requests: 0,
    ttft: [] as number[],
    latency: [] as number[],
  }));
  const tenants = new Map<string, { requests: number; prompt: number; completion: number; ttft: number[] }>();
  const keys = new Map<string, { tenant: string; requests: number; tokens: number }>();
  for (const r of records) {
    const bucket = buckets[Math.floor((new Date(r.time).getTime() - since) / 60_000)];
    if (bucket) {
      bucket.tokens += r.prompt_tokens + r.completion_tokens;
      bucket.requests += 1;
      if (r.time_to_first_token_ms > 0) bucket.ttft.push(r.time_to_first_token_ms);
      if (r.latency_ms > 0) bucket.latency.push(r.latency_ms);
    }
    const t = tenants.get(r.tenant) ?? { requests: 0, prompt: 0, completion: 0, ttft: [] };
    t.requests += 1;
    t.prompt += r.prompt_tokens;
    t.completion += r.completion_tokens;
    if (r.time_to_first_token_ms > 0) t.ttft.push(r.time_to_first_token_ms);
    tenants.set(r.tenant, t);
    const k = keys.get(r.principal_id) ?? { tenant: r.tenant, requests: 0, tokens: 0 };
    k.requests += 1;
    k.tokens += r.prompt_tokens + r.completion_tokens;
    keys.set(r.principal_id, k);
  }
  const series = (pick: (b: (typeof buckets)[number]) => number): Point[] =>
    buckets.map((b) => ({ label: minuteLabel(b.at), value: pick(b) }));
  return (
    <>
      {truncated ? (
        <p class="notice">More than {MAX_PAGES * 1000} requests: the charts show the first ones.</p>
      ) : null}
      <div class="charts">
        <BarChart
          title="Tokens per minute (prompt + completion)"
          unit="tokens"
          points={series((b) => b.tokens)}
        />
        <BarChart title="Requests per minute" unit="requests" points={series((b) => b.requests)} />
        <LineChart
          title="Time to first token, median per minute"
          unit="ms"
          points={series((b) => median(b.ttft))}
        />
        <LineChart title="Latency, median per minute" unit="ms" points={series((b) => median(b.latency))} />
      </div>
      <h2>Per tenant</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Tenant</th>
              <th scope="col">Requests</th>
              <th scope="col">Prompt tokens</th>
              <th scope="col">Completion tokens</th>
              <th scope="col">Median time to first token</th>
            </tr>
          </thead>
          <tbody>
            {[...tenants].map(([tenant, t]) => (
              <tr key={tenant} data-tenant={tenant}>
                <td>{tenant}</td>
                <td>{t.requests}</td>
                <td>{t.prompt.toLocaleString()}</td>
                <td>{t.completion.toLocaleString()}</td>
                <td>{t.ttft.length ? `${Math.round(median(t.ttft))} ms` : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Per key or user</h2>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Principal</th>
              <th scope="col">Tenant</th>
              <th scope="col">Requests</th>
              <th scope="col">Tokens</th>
            </tr>
          </thead>
          <tbody>
            {[...keys].map(([principal, k]) => (
              <tr key={principal}>
                <td class="mono">{principal}</td>
                <td>{k.tenant}</td>
                <td>{k.requests}</td>
                <td>{k.tokens.toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
