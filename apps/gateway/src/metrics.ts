import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { WorkerPool } from './workers/worker-pool.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TOKEN_GAP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** Every request naming a model no worker serves is counted under this one label (bounded cardinality). */
export const UNKNOWN_MODEL_LABEL = 'unknown';

/** The gateway's Prometheus metrics, in a registry of its own (one per app instance). */
export class GatewayMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'airlock_gateway_requests_total',
    help: 'HTTP requests answered, by route, model and status code.',
    labelNames: ['route', 'model', 'status'] as const,
    registers: [this.registry],
  });

  readonly duration = new Histogram({
    name: 'airlock_gateway_request_duration_seconds',
    help: 'Time from request arrival to the last byte of the response, by route.',
    labelNames: ['route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly timeToFirstToken = new Histogram({
    name: 'airlock_gateway_time_to_first_token_seconds',
    help: 'Time from request arrival to the first generated token, by model.',
    labelNames: ['model'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly interTokenLatency = new Histogram({
    name: 'airlock_gateway_inter_token_latency_seconds',
    help: 'Time between two streamed tokens, by model.',
    labelNames: ['model'] as const,
    buckets: TOKEN_GAP_BUCKETS,
    registers: [this.registry],
  });

  readonly tokens = new Counter({
    name: 'airlock_gateway_tokens_total',
    help: 'Tokens in (prompt) and out (completion), by model and tenant.',
    labelNames: ['model', 'tenant', 'direction'] as const,
    registers: [this.registry],
  });

  readonly inFlight = new Gauge({
    name: 'airlock_gateway_in_flight_requests',
    help: 'Inference requests being served or waiting, by model.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  readonly auditRetries = new Counter({
    name: 'airlock_gateway_audit_completion_retries_total',
    help: 'Completion records that needed more than one try to commit.',
    registers: [this.registry],
  });

  readonly auditDeadLetters = new Counter({
    name: 'airlock_gateway_audit_dead_letters_total',
    help: 'Audit records given up on because no retry can commit them (alert on any), by reason.',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly unrecordedRequests = new Counter({
    name: 'airlock_gateway_unrecorded_requests_total',
    help: 'Requests started on their decision whose request record then failed to commit: generation aborted, nothing released, 503 (alert on any), by model.',
    labelNames: ['model'] as const,
    registers: [this.registry],
  });

  /** Label for a model named by a request: only ids the workers serve; anything else counts as "unknown". */
  modelLabel(model: string): string {
    if (model === '') return '';
    return this.pool.serves(model) ? model : UNKNOWN_MODEL_LABEL;
  }

  constructor(
    private readonly pool: WorkerPool,
    auditPending: () => number,
  ) {
    new Gauge({
      name: 'airlock_gateway_queued_requests',
      help: 'Requests waiting for a free worker slot, by model.',
      labelNames: ['model'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [model, queued] of pool.queuedByModel()) this.set({ model }, queued);
      },
    });
    new Gauge({
      name: 'airlock_gateway_worker_up',
      help: '1 when the worker answers its status probe, by worker address.',
      labelNames: ['worker'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const worker of pool.list()) this.set({ worker: worker.address }, worker.alive ? 1 : 0);
      },
    });
    new Gauge({
      name: 'airlock_gateway_audit_completion_pending',
      help: 'Completion and refusal records not yet committed by auth-audit (bounded by AIRLOCK_AUDIT_MAX_PENDING).',
      registers: [this.registry],
      collect() {
        this.set(auditPending());
      },
    });
  }
}
