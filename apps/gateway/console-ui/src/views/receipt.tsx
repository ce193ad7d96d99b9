// A client's audit receipt (the x-airlock-audit-receipt header of any OpenAI response): its inclusion proof
// from the gateway, checked again here; signatures too where the role may read the log's public keys.
import { useState } from 'preact/hooks';
import { api, query } from '../api';
import { checkReceipt, importKeys, type ReceiptChecks } from '../proofs';
import { href } from '../router';
import type { CheckpointList, InclusionProof, SignedIn } from '../types';
import { ErrorNote, Field, Loading, Time } from '../ui';

const LABELS: Record<keyof ReceiptChecks, string> = {
  inclusion: 'Inclusion proof recomputed in this browser (RFC 9162)',
  receipt_matches_log: 'Receipt names the record the log holds',
  receipt_signature: "Receipt's Ed25519 signature",
  checkpoint_signature: "Checkpoint's Ed25519 signature",
};

export function ReceiptView({ session }: { session: SignedIn }) {
  const [receipt, setReceipt] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<{ proof: InclusionProof; checks: ReceiptChecks } | null>(null);

  const check = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const text = receipt.trim();
      const proof = await api<InclusionProof>(
        'GET',
        `/admin/v1/audit/proofs/inclusion${query({ receipt: text })}`,
      );
      // Users may prove a receipt but not read the checkpoint list (and its keys): signatures then stay unchecked.
      const keys =
        session.role === 'user'
          ? null
          : await importKeys(
              (await api<CheckpointList>('GET', '/admin/v1/audit/checkpoints?page_size=1')).signing_keys.map(
                (k) => k.public_key_pem,
              ),
            );
      setResult({ proof, checks: await checkReceipt(text, proof, keys) });
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  const checks = result ? (Object.entries(result.checks) as [keyof ReceiptChecks, boolean | null][]) : [];
  const allHold = checks.every(([, value]) => value !== false) && result?.proof.receipt_valid;
  return (
    <section aria-labelledby="receipt-heading">
      <h1 id="receipt-heading" tabIndex={-1}>
        Check an audit receipt
      </h1>
      <p class="muted">
        Every OpenAI response carries <code>x-airlock-audit-sequence</code> and a signed{' '}
        <code>x-airlock-audit-receipt</code>. Paste the receipt to prove that its record is in the signed log.
      </p>
      <form onSubmit={(e) => void check(e)} class="panel">
        <Field label="Receipt (x-airlock-audit-receipt)">
          <textarea
            value={receipt}
            onInput={(e) => setReceipt(e.currentTarget.value)}
            required
            spellcheck={false}
          />
        </Field>
        <div class="actions">
          <button type="submit" disabled={busy}>
            {busy ? 'Checking…' : 'Check receipt'}
          </button>
        </div>
      </form>
      {busy ? <Loading what="the inclusion proof" /> : null}
      <ErrorNote error={error} />
      {result ? (
        <div class={`result ${allHold ? 'ok' : 'failed'}`} role="status">
          <h2>{allHold ? 'Receipt proven' : 'Receipt does not hold'}</h2>
          <p>
            Record{' '}
            {session.role === 'user' ? (
              result.proof.sequence
            ) : (
              <a href={href('audit', 'records', result.proof.sequence)}>{result.proof.sequence}</a>
            )}{' '}
            is in the tree of size {result.proof.checkpoint.sequence} signed{' '}
            <Time iso={result.proof.checkpoint.time} />.
          </p>
          <ul class="checks">
            <li>
              <Mark value={result.proof.receipt_valid} /> Gateway: receipt valid
            </li>
            {checks.map(([name, value]) => (
              <li key={name}>
                <Mark value={value} /> {LABELS[name]}
                {value === null ? ' (not checked: your role cannot read the public keys)' : ''}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </section>
  );
}

function Mark({ value }: { value: boolean | null }) {
  if (value === null) return <span class="badge state-warn">—</span>;
  return value ? <span class="badge state-ok">holds</span> : <span class="badge state-bad">fails</span>;
}
