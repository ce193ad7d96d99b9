import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The service's Prometheus metrics, in a registry of its own (one per app instance). */
export class AuthAuditMetrics {
  readonly registry = new Registry();

  readonly appendSeconds = new Histogram({
    name: 'airlock_audit_append_seconds',
    help: 'Time to commit one group-commit batch (lookups, quotas and the chain append in one transaction).',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });

  readonly batchSize = new Histogram({
    name: 'airlock_audit_batch_size',
    help: 'Operations committed per group-commit batch.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  });

  readonly batchFailures = new Counter({
    name: 'airlock_audit_batch_failures_total',
    help: 'Batches rolled back (every caller in them got an error; nothing was written).',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly batchFallbacks = new Counter({
    name: 'airlock_audit_batch_fallbacks_total',
    help: 'Failed batches whose ops were then committed one by one (one bad op cannot fail the others).',
    registers: [this.registry],
  });

  readonly batches = new Counter({
    name: 'airlock_audit_batches_total',
    help: 'Committed batches, by path: pipelined (one statement on the known head) or locked (head and counters locked in a transaction).',
    labelNames: ['path'],
    registers: [this.registry],
  });

  readonly pipelineRedone = new Counter({
    name: 'airlock_audit_pipeline_redone_total',
    help: 'Pipelined batches whose write found the chain head moved (another writer appended) and were redone under the head lock.',
    registers: [this.registry],
  });

  readonly refusalsAggregated = new Counter({
    name: 'airlock_audit_refusals_aggregated_total',
    help: 'Unauthenticated refusals counted into a per-source aggregate record instead of a record each.',
    registers: [this.registry],
  });

  readonly interruptedRequests = new Counter({
    name: 'airlock_audit_interrupted_requests_total',
    help: 'Allowed requests whose lease expired without a completion; closed as interrupted.',
    registers: [this.registry],
  });

  readonly records = new Counter({
    name: 'airlock_audit_records_total',
    help: 'Audit records committed, by kind.',
    labelNames: ['kind'],
    registers: [this.registry],
  });

  readonly decisions = new Counter({
    name: 'airlock_authorize_decisions_total',
    help: 'Authorize answers, by outcome.',
    labelNames: ['outcome'],
    registers: [this.registry],
  });

  readonly authFailures = new Counter({
    name: 'airlock_auth_failures_total',
    help: 'Refused authentications and authorisations, by reason.',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  readonly verifications = new Counter({
    name: 'airlock_audit_verify_total',
    help: 'Chain verifications, by result (ok, or the failure kind).',
    labelNames: ['result'],
    registers: [this.registry],
  });

  readonly checkpoints = new Counter({
    name: 'airlock_audit_checkpoints_total',
    help: 'Signed checkpoints written.',
    registers: [this.registry],
  });

  readonly signerHalted = new Gauge({
    name: 'airlock_audit_signer_halted',
    help: '1 while the checkpoint signer refuses to sign (the log does not extend the last witnessed checkpoint) and inference is refused; alert on it.',
    registers: [this.registry],
  });

  readonly witnessFailures = new Counter({
    name: 'airlock_audit_witness_failures_total',
    help: 'Checkpoints a witness sink failed to take, by sink.',
    labelNames: ['sink'] as const,
    registers: [this.registry],
  });

  readonly chainHead = new Gauge({
    name: 'airlock_audit_chain_head_sequence',
    help: 'Sequence number of the last record this replica appended.',
    registers: [this.registry],
  });

  readonly prunedRecords = new Counter({
    name: 'airlock_audit_pruned_records_total',
    help: 'Records removed by retention pruning.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
