import type { ChannelCredentials } from '@grpc/grpc-js';
import type { GetStatusResponse, ModelStatus } from '@airlock/contracts';
import type { Logger } from '@airlock/telemetry';
import { ApiError } from '../errors/api-error.js';
import { WaitQueue, WaitRejectedError } from './wait-queue.js';
import { WorkerClient } from './worker-client.js';

/** A worker address from discovery; Kubernetes discovery also knows the model from the Service label. */
export interface WorkerEndpoint {
  address: string;
  model?: string;
}

/** Requests sent to a worker beyond its slots, per slot: keeps its queue primed so no slot idles a round trip. */
const PIPELINE_PER_SLOT = 1;

/** Cache keys remembered for routing; the oldest is forgotten first. */
const MAX_CACHE_KEYS = 10_000;

/** One worker as the gateway sees it. */
export class WorkerHandle {
  readonly client: WorkerClient;
  /** No answer to the last status probe or a call failed with UNAVAILABLE. */
  alive = false;
  /** Set after the first status answer or failure: before that, requests wait rather than fail. */
  probed = false;
  status: GetStatusResponse | null = null;
  readonly inFlight = new Map<string, number>();
  /** In-flight counts at the time of the last status answer, to subtract our own load from the worker's. */
  private inFlightAtStatus = new Map<string, number>();

  constructor(
    readonly endpoint: WorkerEndpoint,
    credentials?: ChannelCredentials,
  ) {
    this.client = new WorkerClient(endpoint.address, credentials);
  }

  get address(): string {
    return this.endpoint.address;
  }

  model(id: string): ModelStatus | undefined {
    return this.status?.models.find((m) => m.id === id);
  }

  serves(model: string): boolean {
    return this.endpoint.model === model || this.model(model) !== undefined;
  }

  acceptStatus(status: GetStatusResponse): void {
    this.status = status;
    this.alive = true;
    this.probed = true;
    this.inFlightAtStatus = new Map(this.inFlight);
  }

  /** Room for one more request of this model, and the load figure that ranks workers (lower is better). */
  capacity(model: string): { free: boolean; load: number } | null {
    const status = this.model(model);
    if (!this.alive || this.status?.draining || status?.state !== 'MODEL_STATE_READY') return null;
    const slots = Math.max(1, status.slotsTotal);
    const ours = this.inFlight.get(model) ?? 0;
    const others = Math.max(
      0,
      status.slotsBusy + status.queueLength - (this.inFlightAtStatus.get(model) ?? 0),
    );
    return { free: ours < slots * (1 + PIPELINE_PER_SLOT), load: (ours + others) / slots };
  }
}

/** A worker slot held for one generation; release exactly once. */
export interface WorkerLease {
  worker: WorkerHandle;
  release(): void;
}

export interface WorkerPoolOptions {
  statusIntervalMs: number;
  queueCapacity: number;
  queueTimeoutMs: number;
  logger: Logger;
  onChange?: () => void;
  /** The gateway's mTLS credentials for worker channels (plaintext when absent: tests with fake workers). */
  workerCredentials?: ChannelCredentials;
}

export interface PoolMetricsView {
  queued: Map<string, number>;
  workers: { address: string; alive: boolean }[];
}

/**
 * The workers known from discovery, their live status, and a bounded wait queue per model.
 * Choice is least-loaded among the workers with room; a dead worker is probed until it answers again.
 */
export class WorkerPool {
  private readonly workers = new Map<string, WorkerHandle>();
  private readonly queues = new Map<string, WaitQueue<WorkerLease>>();
  /** prompt_cache_key (scoped by the caller) → the worker that last served it: its KV cache holds the prefix. */
  private readonly cacheAffinity = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly options: WorkerPoolOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.refreshAll(), this.options.statusIntervalMs);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const queue of this.queues.values()) queue.rejectAll('closed');
    for (const worker of this.workers.values()) worker.client.close();
    this.workers.clear();
  }

  /** Replaces the set of endpoints (discovery calls this on every change). */
  setEndpoints(endpoints: WorkerEndpoint[]): void {
    const wanted = new Map(endpoints.map((e) => [e.address, e]));
    for (const [address, worker] of this.workers) {
      if (!wanted.has(address) || wanted.get(address)!.model !== worker.endpoint.model) {
        worker.client.close();
        this.workers.delete(address);
      }
    }
    for (const [address, endpoint] of wanted) {
      if (!this.workers.has(address)) {
        const worker = new WorkerHandle(endpoint, this.options.workerCredentials);
        this.workers.set(address, worker);
        void this.refresh(worker);
      }
    }
    this.dispatchAll();
  }

  list(): WorkerHandle[] {
    return [...this.workers.values()];
  }

  /** Every model id served by a live worker (or named by discovery), sorted. */
  modelIds(): string[] {
    const ids = new Set<string>();
    for (const worker of this.workers.values()) {
      if (worker.endpoint.model) ids.add(worker.endpoint.model);
      if (worker.alive) for (const m of worker.status?.models ?? []) ids.add(m.id);
    }
    return [...ids].sort();
  }

  /** Whether any worker (live, or named for the model by discovery) serves the model. */
  serves(model: string): boolean {
    for (const worker of this.workers.values()) if (worker.serves(model)) return true;
    return false;
  }

  queuedCount(model: string): number {
    return this.queues.get(model)?.length ?? 0;
  }

  queuedByModel(): Map<string, number> {
    return new Map([...this.queues].map(([model, queue]) => [model, queue.length]));
  }

  /**
   * A slot on the least-loaded worker for `model`, skipping `exclude` (workers already tried).
   * Waits in the model's queue when all are busy; throws ApiError 404/429/503.
   */
  async acquire(
    model: string,
    exclude: ReadonlySet<string>,
    signal?: AbortSignal,
    cacheKey = '',
  ): Promise<WorkerLease> {
    const lease = this.tryLease(model, exclude, cacheKey);
    if (lease) return this.remember(cacheKey, lease);
    const candidates = this.list().filter((w) => !exclude.has(w.address));
    const servers = candidates.filter((w) => w.serves(model));
    const anyPending = candidates.some((w) => !w.probed);
    if (!anyPending && !servers.some((w) => w.alive)) {
      const unknownModel = exclude.size === 0 && servers.length === 0 && candidates.some((w) => w.alive);
      if (unknownModel) throw ApiError.modelNotFound(model);
      throw ApiError.unavailable(
        `No worker is available for the model '${model}'.`,
        'no_worker_available',
        1,
      );
    }
    const queue = this.queueOf(model);
    try {
      // Excluded workers stay excluded for this waiter: it is served by dispatch only from the others.
      return this.remember(
        cacheKey,
        await (exclude.size === 0 ? queue.wait(signal) : this.waitExcluding(model, exclude, signal)),
      );
    } catch (error) {
      if (!(error instanceof WaitRejectedError)) throw error;
      if (error.reason === 'aborted') throw error;
      if (error.reason === 'closed')
        throw ApiError.unavailable('The gateway is shutting down.', 'shutting_down');
      const ready = this.list().some((w) => w.serves(model) && w.capacity(model) !== null);
      if (!ready) {
        throw ApiError.unavailable(
          `No worker is available for the model '${model}'.`,
          'no_worker_available',
          1,
        );
      }
      throw ApiError.rateLimited(
        error.reason === 'queue_full'
          ? `The queue for the model '${model}' is full. Retry shortly.`
          : `Timed out waiting for a free worker for the model '${model}'. Retry shortly.`,
        1,
        'queue_full',
      );
    }
  }

  /** Marks a worker dead after a transport failure; the status loop brings it back. */
  markFailed(worker: WorkerHandle): void {
    if (!worker.alive) return;
    worker.alive = false;
    this.options.logger.warn({ worker: worker.address }, 'worker marked unavailable');
    this.options.onChange?.();
  }

  private queueOf(model: string): WaitQueue<WorkerLease> {
    let queue = this.queues.get(model);
    if (!queue) {
      queue = new WaitQueue(this.options.queueCapacity, this.options.queueTimeoutMs);
      this.queues.set(model, queue);
    }
    return queue;
  }

  /** Retries are rare: poll for a free worker other than the excluded ones, within the queue timeout. */
  private async waitExcluding(
    model: string,
    exclude: ReadonlySet<string>,
    signal?: AbortSignal,
  ): Promise<WorkerLease> {
    const deadline = Date.now() + this.options.queueTimeoutMs;
    while (Date.now() < deadline) {
      if (signal?.aborted) throw new WaitRejectedError('aborted');
      if (this.closed) throw new WaitRejectedError('closed');
      const lease = this.tryLease(model, exclude);
      if (lease) return lease;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new WaitRejectedError('timeout');
  }

  private remember(cacheKey: string, lease: WorkerLease): WorkerLease {
    if (!cacheKey) return lease;
    this.cacheAffinity.delete(cacheKey);
    this.cacheAffinity.set(cacheKey, lease.worker.address);
    if (this.cacheAffinity.size > MAX_CACHE_KEYS) {
      this.cacheAffinity.delete(this.cacheAffinity.keys().next().value!);
    }
    return lease;
  }

  /**
   * The worker that last served `cacheKey` when it has room (a prompt cache hit beats a lower load), else
   * the least-loaded worker with room.
   */
  private tryLease(model: string, exclude?: ReadonlySet<string>, cacheKey = ''): WorkerLease | undefined {
    let best: WorkerHandle | undefined;
    let bestLoad = Infinity;
    const preferred = cacheKey ? this.workers.get(this.cacheAffinity.get(cacheKey) ?? '') : undefined;
    if (preferred && !exclude?.has(preferred.address) && preferred.capacity(model)?.free) {
      best = preferred;
      bestLoad = -1;
    }
    for (const worker of bestLoad < 0 ? [] : this.workers.values()) {
      if (exclude?.has(worker.address)) continue;
      const capacity = worker.capacity(model);
      if (capacity?.free && capacity.load < bestLoad) {
        best = worker;
        bestLoad = capacity.load;
      }
    }
    if (!best) return undefined;
    const worker = best;
    worker.inFlight.set(model, (worker.inFlight.get(model) ?? 0) + 1);
    let released = false;
    return {
      worker,
      release: () => {
        if (released) return;
        released = true;
        worker.inFlight.set(model, (worker.inFlight.get(model) ?? 1) - 1);
        this.dispatch(model);
      },
    };
  }

  private dispatch(model: string): void {
    this.queues.get(model)?.serve(() => this.tryLease(model));
  }

  private dispatchAll(): void {
    for (const model of this.queues.keys()) this.dispatch(model);
  }

  private async refreshAll(): Promise<void> {
    await Promise.all([...this.workers.values()].map((worker) => this.refresh(worker)));
  }

  private async refresh(worker: WorkerHandle): Promise<void> {
    const wasAlive = worker.alive;
    try {
      const status = await worker.client.getStatus(Math.max(500, this.options.statusIntervalMs));
      if (this.closed || this.workers.get(worker.address) !== worker) return;
      worker.acceptStatus(status);
      if (!wasAlive)
        this.options.logger.info({ worker: worker.address, workerId: status.workerId }, 'worker up');
    } catch {
      if (this.closed) return;
      worker.probed = true;
      worker.alive = false;
      if (wasAlive) this.options.logger.warn({ worker: worker.address }, 'worker status probe failed');
    }
    if (wasAlive !== worker.alive) this.options.onChange?.();
    this.dispatchAll();
  }
}
