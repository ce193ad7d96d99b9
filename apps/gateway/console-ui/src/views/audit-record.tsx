// One record: every field as stored, its place in the hash chain, and the admin action's details.
import type { ComponentChild } from 'preact';
import { api, query } from '../api';
import { href } from '../router';
import type { AuditRecord, RecordPage, SignedIn } from '../types';
import { ErrorNote, Loading, Outcome, Time, useLoad } from '../ui';
import { mayReadContent, RecordContentPanel } from './record-content';

export function AuditRecordView({ sequence, session }: { sequence: number; session: SignedIn }) {
  const record = useLoad(
    () =>
      api<RecordPage>(
        'GET',
        `/admin/v1/audit/records${query({ from_sequence: sequence, to_sequence: sequence })}`,
      ),
    String(sequence),
  );
  const r = record.data?.data[0];
  return (
    <section aria-labelledby="record-heading">
      <p>
        <a href={href('audit')}>← Audit log</a>
      </p>
      <h1 id="record-heading" tabIndex={-1}>
        Record {sequence}
      </h1>
      <ErrorNote error={record.error} />
      {record.loading && !record.data ? <Loading what={`record ${sequence}`} /> : null}
      {record.data && !r ? <p>No record {sequence} that you may see.</p> : null}
      {r ? <RecordFields record={r} /> : null}
      {r && (r.request_ciphertext || r.response_ciphertext) && mayReadContent(session) ? (
        <RecordContentPanel key={r.sequence} sequence={r.sequence} />
      ) : null}
    </section>
  );
}

function details(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}

function RecordFields({ record: r }: { record: AuditRecord }) {
  const rows: [string, ComponentChild][] = [
    ['Time', <Time iso={r.time} />],
    ['Kind', r.kind.replace('_', ' ')],
    ['Action', r.action],
    ['Outcome', <Outcome value={r.outcome} />],
    ['HTTP status', r.status_code || '—'],
    ['Error class', r.error_class || '—'],
    ['Request id', <span class="mono">{r.request_id}</span>],
    ['Client request id', r.client_request_id || '—'],
    ['Principal', <span class="mono">{r.principal_id || '—'}</span>],
    ['Principal kind', r.principal_kind || '—'],
    ['Tenant', r.tenant || '—'],
    ['Role', r.role || '—'],
    ['Model', r.model || '—'],
    ['Worker', r.worker || '—'],
    ['Target', r.target || '—'],
    ['Client address', r.client_address || '—'],
    ['User agent', r.user_agent || '—'],
    [
      'Tokens (prompt / completion / cached)',
      `${r.prompt_tokens} / ${r.completion_tokens} / ${r.cached_tokens}`,
    ],
    ['Latency', r.latency_ms ? `${r.latency_ms.toFixed(1)} ms` : '—'],
    ['Time to first token', r.time_to_first_token_ms ? `${r.time_to_first_token_ms.toFixed(1)} ms` : '—'],
    ['Content capture', r.content_capture || '—'],
    ['Request digest', <span class="mono wrap">{r.request_digest || '—'}</span>],
    ['Response digest', <span class="mono wrap">{r.response_digest || '—'}</span>],
    [
      'Encrypted content',
      r.request_ciphertext || r.response_ciphertext ? `kept, key ${r.content_key_id}` : 'none kept',
    ],
    ['Field flags', r.field_flags || '—'],
    ['Previous hash', <span class="mono wrap">{r.prev_hash}</span>],
    ['Hash', <span class="mono wrap">{r.hash}</span>],
  ];
  return (
    <>
      <dl class="fields">
        {rows.map(([name, value]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      {r.details_json ? (
        <>
          <h2>Details</h2>
          <pre class="details">{details(r.details_json)}</pre>
        </>
      ) : null}
      <nav class="pager" aria-label="Neighbouring records">
        {r.sequence > 1 ? (
          <a href={href('audit', 'records', r.sequence - 1)}>← Record {r.sequence - 1}</a>
        ) : null}
        <a href={href('audit', 'records', r.sequence + 1)}>Record {r.sequence + 1} →</a>
      </nav>
    </>
  );
}
