import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ModelStatus } from '@airlock/contracts';

/**
 * The worker's Prometheus metrics, one registry per worker instance (tests run several in one process).
 * The three gauges the Gateway API Inference Extension's endpoint picker reads are
 * `airlock_worker_queued_requests`, `airlock_worker_running_requests` and `airlock_worker_kv_cache_utilization`.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  /** Run before each scrape: an engine in another process (llama-server) brings its counters up to date. */
  private readonly scrapeHooks: (() => Promise<void>)[] = [];

  readonly promptTokens = new Counter({
    name: 'airlock_worker_prompt_tokens_total',
    help: 'Prompt tokens processed, by model',
    labelNames: ['model'],
    registers: [this.registry],
  });

  readonly generatedTokens = new Counter({
    name: 'airlock_worker_generated_tokens_total',
    help: 'Tokens generated, by model',
    labelNames: ['model'],
    registers: [this.registry],
  });

  readonly requests = new Counter({
    name: 'airlock_worker_requests_total',
    help: 'Generations finished, by model, kind and finish reason',
    labelNames: ['model', 'kind', 'finish_reason'],
    registers: [this.registry],
  });

  readonly rejected = new Counter({
    name: 'airlock_worker_rejected_requests_total',
    help: 'Requests refused before generating, by model and reason',
    labelNames: ['model', 'reason'],
    registers: [this.registry],
  });

  readonly timeToFirstToken = new Histogram({
    name: 'airlock_worker_time_to_first_token_seconds',
    help: 'From arrival (queue wait included) to the first generated token',
    labelNames: ['model'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly timePerOutputToken = new Histogram({
    name: 'airlock_worker_time_per_output_token_seconds',
    help: 'Time between generated tokens',
    labelNames: ['model'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });

  /** Batches of sequence decodes released together; decoded_sequences / decode_steps ≈ tokens per decode. */
  readonly decodeSteps = new Counter({
    name: 'airlock_worker_decode_steps_total',
    help: 'Decode steps: batches of sequence decodes released together, by model',
    labelNames: ['model'],
    registers: [this.registry],
    collect: () => this.runScrapeHooks(),
  });

  readonly decodedSequences = new Counter({
    name: 'airlock_worker_decoded_sequences_total',
    help: 'Sequence decodes released in those steps, by model',
    labelNames: ['model'],
    registers: [this.registry],
    // The registry reads metrics concurrently: both counters wait for the same run of the hooks.
    collect: () => this.runScrapeHooks(),
  });

  readonly lateDecodeSteps = new Counter({
    name: 'airlock_worker_late_decode_steps_total',
    help: 'Decode steps released without a generating sequence that was late, by model',
    labelNames: ['model'],
    registers: [this.registry],
  });

  readonly engineRestarts = new Counter({
    name: 'airlock_worker_engine_restarts_total',
    help: 'Times a model engine process (llama-server) died and was started again, by model',
    labelNames: ['model'],
    registers: [this.registry],
  });

  readonly modelLoadSeconds = new Gauge({
    name: 'airlock_worker_model_load_seconds',
    help: 'How long the model took to load',
    labelNames: ['model'],
    registers: [this.registry],
  });

  onScrape(hook: () => Promise<void>): void {
    this.scrapeHooks.push(hook);
  }

  private scrapeRun?: Promise<unknown>;

  private async runScrapeHooks(): Promise<void> {
    this.scrapeRun ??= Promise.allSettled(this.scrapeHooks.map((hook) => hook())).finally(() => {
      this.scrapeRun = undefined;
    });
    await this.scrapeRun;
  }

  constructor(statusOf: () => ModelStatus[]) {
    collectDefaultMetrics({ register: this.registry, prefix: 'airlock_worker_' });
    const liveGauge = (name: string, help: string, read: (status: ModelStatus) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['model'],
        registers: [this.registry],
        collect() {
          for (const status of statusOf()) this.set({ model: status.id }, read(status));
        },
      });
    liveGauge('airlock_worker_queued_requests', 'Requests waiting for a free sequence', (s) => s.queueLength);
    liveGauge('airlock_worker_running_requests', 'Sequences generating now', (s) => s.slotsBusy);
    liveGauge('airlock_worker_sequences', 'Parallel sequences of the model', (s) => s.slotsTotal);
    liveGauge(
      'airlock_worker_kv_cache_utilization',
      'KV-cache tokens in use / capacity (0..1)',
      (s) => s.kvCacheUtilization,
    );
    liveGauge(
      'airlock_worker_tokens_per_second',
      'Generated tokens per second, last 10 s',
      (s) => s.tokensPerSecond,
    );
    liveGauge('airlock_worker_model_ready', '1 when the model serves requests', (s) =>
      s.state === 'MODEL_STATE_READY' ? 1 : 0,
    );
  }
}
