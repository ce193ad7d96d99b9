// The decrypted bodies of a `full`-capture record, fetched only on request: each fetch is itself an audited
// read (auth-audit appends `audit.content_read`). Shown as text nodes, never parsed into markup.
import { useState } from 'preact/hooks';
import { api } from '../api';
import type { RecordContent, SignedIn } from '../types';
import { ErrorNote, Loading } from '../ui';

/** Who may read captured content: the API decides anyway (tenant auditors only for their tenant). */
export function mayReadContent(session: SignedIn): boolean {
  return session.role === 'admin' || session.role === 'auditor';
}

function pretty(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

export function RecordContentPanel({ sequence }: { sequence: number }) {
  const [state, setState] = useState<{ loading: boolean; error: unknown; data: RecordContent | null }>({
    loading: false,
    error: null,
    data: null,
  });
  const show = () => {
    setState({ loading: true, error: null, data: null });
    api<RecordContent>('GET', `/admin/v1/audit/records/${sequence}/content`).then(
      (data) => setState({ loading: false, error: null, data }),
      (error: unknown) => setState({ loading: false, error, data: null }),
    );
  };
  const data = state.data;
  return (
    <section aria-labelledby="content-heading">
      <h2 id="content-heading">Captured content</h2>
      {data ? null : (
        <p>
          <button type="button" onClick={show} disabled={state.loading}>
            Show captured content
          </button>{' '}
          <span class="muted">Decrypting it is recorded in the audit log.</span>
        </p>
      )}
      {state.loading ? <Loading what="captured content" /> : null}
      <ErrorNote error={state.error} />
      {data ? (
        <>
          <p class="muted">This read was recorded as audit record {data.read_sequence}.</p>
          <h3>Request{data.request_sequence ? ` (record ${data.request_sequence})` : ''}</h3>
          {data.request_body === null ? (
            <p>No request body was captured.</p>
          ) : (
            <pre class="details" aria-label="Request body">
              {pretty(data.request_body)}
            </pre>
          )}
          <h3>Response{data.response_sequence ? ` (record ${data.response_sequence})` : ''}</h3>
          {data.response_body === null ? (
            <p>No response body was captured (yet).</p>
          ) : (
            <pre class="details" aria-label="Response body">
              {pretty(data.response_body)}
            </pre>
          )}
        </>
      ) : null}
    </section>
  );
}
