import type { ClientReadableStream } from '@grpc/grpc-js';
import type { ModelProvenance } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import { isRetryable, isWorkerDown, workerErrorToApiError } from './worker-errors.js';
import type { WorkerClient } from './worker-client.js';
import type { WorkerPool } from './worker-pool.js';

export interface GenerationOptions {
  model: string;
  signal: AbortSignal;
  attempts: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  /** Told which worker serves the request and, from its status, the weights it serves it from (audit, logs). */
  onWorker?: (address: string, served?: ModelProvenance | null) => void;
  /** Routing hint (prompt_cache_key, scoped to the tenant): prefer the worker that served it last. */
  cacheKey?: string;
}

/**
 * Runs one server-streaming generation on the pool: least-loaded worker, a retry on another worker when
 * one fails before its first event, the client's abort and an idle timer wired to cancel the gRPC call.
 * Stopping the iteration early (client gone) cancels the call too, which frees the worker's slot.
 */
export async function* generate<E>(
  pool: WorkerPool,
  options: GenerationOptions,
  start: (client: WorkerClient, deadline: Date) => ClientReadableStream<E>,
): AsyncGenerator<E> {
  const tried = new Set<string>();
  const deadline = new Date(Date.now() + options.requestTimeoutMs);
  let lastError: unknown = null;
  for (let attempt = 1; ; attempt++) {
    // On a retry with no other worker left, the client hears why the last worker refused.
    const lease = await pool
      .acquire(options.model, tried, options.signal, options.cacheKey)
      .catch((error: unknown) => {
        throw lastError === null ? error : workerErrorToApiError(lastError);
      });
    tried.add(lease.worker.address);
    options.onWorker?.(lease.worker.address, lease.worker.model(options.model)?.provenance);
    const call = start(lease.worker.client, deadline);
    let idle = false;
    // One timer per call, re-armed per event (not a new timer per token). While the consumer holds an
    // event (a slow client applying backpressure) the worker is not idle: the timer only re-arms.
    let consumerHolds = false;
    const idleTimer = setTimeout(onIdle, options.idleTimeoutMs);
    function onIdle(): void {
      if (consumerHolds) {
        idleTimer.refresh();
        return;
      }
      idle = true;
      call.cancel();
    }
    const onAbort = (): void => call.cancel();
    options.signal.addEventListener('abort', onAbort, { once: true });
    let started = false;
    let finished = false;
    try {
      for await (const event of call as AsyncIterable<E>) {
        started = true;
        consumerHolds = true;
        yield event;
        consumerHolds = false;
        idleTimer.refresh();
      }
      finished = true;
      return;
    } catch (error) {
      if (idle) {
        throw new ApiError(504, 'server_error', 'The worker stopped producing tokens.', 'idle_timeout');
      }
      if (options.signal.aborted) throw error;
      if (isWorkerDown(error)) pool.markFailed(lease.worker);
      if (!started && isRetryable(error) && attempt < options.attempts) {
        lastError = error;
        continue;
      }
      throw workerErrorToApiError(error);
    } finally {
      clearTimeout(idleTimer);
      options.signal.removeEventListener('abort', onAbort);
      if (!finished) call.cancel();
      lease.release();
    }
  }
}
