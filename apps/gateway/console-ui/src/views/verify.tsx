// Chain verification (hash chain, signed checkpoints, witness) and the latest checkpoints.
import { useState } from 'preact/hooks';
import { api, query } from '../api';
import { href } from '../router';
import type { CheckpointList, VerifyResult } from '../types';
import { ErrorNote, Loading, Time, useLoad } from '../ui';

export function VerifyView() {
  const [fromCheckpoint, setFromCheckpoint] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<VerifyResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const checkpoints = useLoad(
    () => api<CheckpointList>('GET', `/admin/v1/audit/checkpoints${query({ page_size: 10 })}`),
    'checkpoints',
  );

  const verify = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(
        await api<VerifyResult>('POST', '/admin/v1/audit/verify', { from_last_checkpoint: fromCheckpoint }),
      );
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="verify-heading">
      <h1 id="verify-heading" tabIndex={-1}>
        Verify the audit chain
      </h1>
      <p class="muted">
        Walks every record's hash link and every signed checkpoint (RFC 9162 Merkle roots, Ed25519), and
        checks the checkpoints against the witness file outside the database.
      </p>
      <form onSubmit={(e) => void verify(e)} class="inline">
        <label class="check">
          <input
            type="checkbox"
            checked={fromCheckpoint}
            onChange={(e) => setFromCheckpoint(e.currentTarget.checked)}
          />
          From the last checkpoint only (faster)
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Verifying…' : 'Verify now'}
        </button>
      </form>
      {busy ? <Loading what="the chain (every record is hashed again)" /> : null}
      <ErrorNote error={error} />
      {result ? <VerifyOutcome result={result} /> : null}
      <h2>Latest checkpoints</h2>
      <ErrorNote error={checkpoints.error} />
      {checkpoints.loading && !checkpoints.data ? <Loading what="checkpoints" /> : null}
      {checkpoints.data ? (
        checkpoints.data.checkpoints.length === 0 ? (
          <p>No checkpoint signed yet.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Tree size</th>
                  <th scope="col">Signed</th>
                  <th scope="col">Key</th>
                  <th scope="col">Root hash</th>
                </tr>
              </thead>
              <tbody>
                {[...checkpoints.data.checkpoints].reverse().map((c) => (
                  <tr key={c.sequence}>
                    <td>{c.sequence}</td>
                    <td>
                      <Time iso={c.time} />
                    </td>
                    <td class="mono">{c.key_id}</td>
                    <td class="mono">{c.root_hash.slice(0, 16)}…</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )
      ) : null}
    </section>
  );
}

function VerifyOutcome({ result: r }: { result: VerifyResult }) {
  if (!r.ok) {
    return (
      <div class="result failed" role="alert">
        <h2>
          Chain broken at record{' '}
          <a href={href('audit', 'records', r.failed_sequence)} class="failing-sequence">
            {r.failed_sequence}
          </a>
        </h2>
        <p>
          <strong>{r.failure.replace(/_/g, ' ')}</strong>: {r.message}
        </p>
        <p class="muted">
          {r.records_checked} records checked before it; the log holds records {r.first_sequence}–
          {r.last_sequence}. Every record from {r.failed_sequence} on is unproven until an operator restores
          the log from a backup.
        </p>
      </div>
    );
  }
  return (
    <div class="result ok" role="status">
      <h2>Chain intact</h2>
      <ul>
        <li>
          {r.records_checked} records checked (sequences {r.first_sequence}–{r.last_sequence})
          {r.anchor_checkpoint_sequence ? `, from the checkpoint at ${r.anchor_checkpoint_sequence}` : ''}
        </li>
        <li>
          {r.checkpoints_checked} signed checkpoints checked; the last covers {r.last_checkpoint_sequence}{' '}
          records
          {r.unsigned_tail ? ` (${r.unsigned_tail} newer records not yet signed)` : ''}
        </li>
        <li>
          Witness: {r.witnessed_checkpoints} checkpoints witnessed, up to tree size{' '}
          {r.last_witnessed_tree_size}
        </li>
      </ul>
    </div>
  );
}
