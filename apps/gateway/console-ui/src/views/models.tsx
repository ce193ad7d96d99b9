// Models with their live load, desired and ready replicas (Kubernetes discovery) and a scale control; the
// workers and their health. Refreshes every 5 s while open.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import type { ModelStatus, ModelsAnswer } from '../types';
import { ErrorNote, Loading, useLoad } from '../ui';

export function ModelsView() {
  const models = useLoad(() => api<ModelsAnswer>('GET', '/admin/v1/models'), 'models');
  useEffect(() => {
    const timer = setInterval(models.reload, 5000);
    return () => clearInterval(timer);
  }, []);
  return (
    <section aria-labelledby="models-heading">
      <h1 id="models-heading" tabIndex={-1}>
        Models and workers
      </h1>
      <ErrorNote error={models.error} />
      {models.loading && !models.data ? <Loading what="models" /> : null}
      {models.data ? (
        <>
          <div class="table-wrap">
            <table>
              <caption>Live load, refreshed every 5 seconds</caption>
              <thead>
                <tr>
                  <th scope="col">Model</th>
                  <th scope="col">Workers alive</th>
                  <th scope="col">Slots busy</th>
                  <th scope="col">Gateway queue</th>
                  <th scope="col">Worker queue</th>
                  <th scope="col">Tokens/s</th>
                  <th scope="col">Replicas desired / ready</th>
                  <th scope="col">Scale</th>
                </tr>
              </thead>
              <tbody>
                {models.data.data.map((m) => (
                  <tr key={m.id} data-model={m.id}>
                    <td>{m.id}</td>
                    <td>
                      {m.load.workers_alive} / {m.workers.length}
                    </td>
                    <td>
                      {m.load.slots_busy} / {m.load.slots_total}
                    </td>
                    <td>{m.queued}</td>
                    <td>{m.load.worker_queue}</td>
                    <td>{m.load.tokens_per_second.toFixed(1)}</td>
                    <td class="replicas">
                      {m.replicas ? (
                        m.replicas.error ? (
                          <span class="badge state-bad" title={m.replicas.error}>
                            unknown, {m.replicas.ready} ready
                          </span>
                        ) : (
                          `${m.replicas.desired ?? '?'} / ${m.replicas.ready}`
                        )
                      ) : (
                        <span class="muted">static workers</span>
                      )}
                    </td>
                    <td>{m.replicas ? <ScaleControl model={m} onScaled={models.reload} /> : null}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <h2>Workers</h2>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Address</th>
                  <th scope="col">Worker id</th>
                  <th scope="col">Health</th>
                  <th scope="col">Models</th>
                </tr>
              </thead>
              <tbody>
                {models.data.workers.map((w) => (
                  <tr key={w.address}>
                    <td class="mono">{w.address}</td>
                    <td class="mono">{w.worker_id ?? '—'}</td>
                    <td>
                      {!w.alive ? (
                        <span class="badge state-bad">unreachable</span>
                      ) : w.draining ? (
                        <span class="badge state-warn">draining</span>
                      ) : (
                        <span class="badge state-ok">healthy</span>
                      )}
                    </td>
                    <td>
                      {w.models
                        .map(
                          (model) =>
                            `${model.model_id ?? model.id ?? '?'} (${(model.state ?? 'unknown').replace(/^MODEL_STATE_/, '').toLowerCase()})`,
                        )
                        .join(', ') || '—'}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      ) : null}
    </section>
  );
}

function ScaleControl({ model, onScaled }: { model: ModelStatus; onScaled: () => void }) {
  const [replicas, setReplicas] = useState(String(model.replicas?.desired ?? 0));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('PUT', `/admin/v1/models/${encodeURIComponent(model.id)}/replicas`, {
        replicas: Number(replicas),
      });
      onScaled();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="inline compact" onSubmit={(e) => void submit(e)}>
      <label>
        <span class="visually-hidden">Replicas of {model.id}</span>
        <input
          type="number"
          min={0}
          class="narrow"
          value={replicas}
          onInput={(e) => setReplicas(e.currentTarget.value)}
        />
      </label>
      <button type="submit" class="secondary" disabled={busy} aria-label={`Scale ${model.id}`}>
        {busy ? 'Scaling…' : 'Scale'}
      </button>
      <ErrorNote error={error} />
    </form>
  );
}
