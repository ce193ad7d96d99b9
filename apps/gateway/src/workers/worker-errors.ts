import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { WORKER_REASON_METADATA_KEY, type WorkerErrorReason } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';

export function isServiceError(error: unknown): error is ServiceError {
  // Duck-typed: grpc-js errors may come from another realm (jest's module sandbox).
  return (
    typeof error === 'object' && error !== null && typeof (error as Partial<ServiceError>).code === 'number'
  );
}

/** The worker's machine-readable reason (the `airlock-reason` trailer), or null when it sent none. */
export function workerReason(error: unknown): WorkerErrorReason | null {
  if (!isServiceError(error)) return null;
  const value = error.metadata?.get?.(WORKER_REASON_METADATA_KEY)?.[0];
  return value === undefined ? null : (value.toString() as WorkerErrorReason);
}

/** What the gateway does with one failure: the client's error, and whether another worker may do better. */
interface ReasonPolicy {
  retryable: boolean;
  toApiError: (message: string) => ApiError;
}

const notReady = (): ApiError =>
  ApiError.unavailable('The model is not ready on any worker.', 'model_not_ready', 1);

/**
 * Worker reasons → policy. A reason names what happened, so a model that cannot embed (a fact about its
 * configuration) is a 400 at once rather than a retried "not ready" 503, although both travel as
 * FAILED_PRECONDITION or UNAVAILABLE.
 */
const BY_REASON: Record<WorkerErrorReason, ReasonPolicy> = {
  MODEL_NOT_FOUND: {
    retryable: false,
    toApiError: (m) => new ApiError(404, 'not_found_error', m, 'model_not_found', 'model'),
  },
  MODEL_NOT_READY: { retryable: true, toApiError: notReady },
  QUEUE_FULL: {
    retryable: true,
    toApiError: () => ApiError.rateLimited('All workers for this model are busy. Retry shortly.', 1),
  },
  DRAINING: {
    retryable: true,
    toApiError: () => ApiError.unavailable('No worker could serve the request.', 'no_worker_available', 1),
  },
  INVALID_ARGUMENT: { retryable: false, toApiError: (m) => ApiError.badRequest(m) },
  CONTEXT_LENGTH_EXCEEDED: {
    retryable: false,
    toApiError: (m) => ApiError.badRequest(m, 'messages', 'context_length_exceeded'),
  },
  EMBEDDINGS_NOT_SERVED: {
    retryable: false,
    toApiError: (m) => ApiError.badRequest(m, 'model', 'model_does_not_embed'),
  },
  FEATURE_NOT_SUPPORTED: {
    retryable: false,
    toApiError: (m) => ApiError.badRequest(m, null, 'unsupported_parameter'),
  },
  GENERATION_FAILED: { retryable: false, toApiError: () => ApiError.internal() },
  CANCELLED: {
    retryable: true,
    toApiError: () => ApiError.unavailable('The worker went away.', 'worker_lost', 1),
  },
  INTERNAL: { retryable: false, toApiError: () => ApiError.internal() },
};

/**
 * The fallback when a failure carries no reason (transport errors, an older worker). CANCELLED is retryable
 * because callers check their own abort first: a cancel we did not ask for is a worker going away.
 */
const BY_CODE: Record<number, ReasonPolicy> = {
  [GrpcStatus.INVALID_ARGUMENT]: BY_REASON.INVALID_ARGUMENT,
  [GrpcStatus.OUT_OF_RANGE]: BY_REASON.CONTEXT_LENGTH_EXCEEDED,
  [GrpcStatus.NOT_FOUND]: BY_REASON.MODEL_NOT_FOUND,
  [GrpcStatus.RESOURCE_EXHAUSTED]: BY_REASON.QUEUE_FULL,
  [GrpcStatus.UNAVAILABLE]: BY_REASON.DRAINING,
  [GrpcStatus.CANCELLED]: BY_REASON.CANCELLED,
  [GrpcStatus.FAILED_PRECONDITION]: BY_REASON.MODEL_NOT_READY,
  [GrpcStatus.DEADLINE_EXCEEDED]: {
    retryable: false,
    toApiError: () =>
      new ApiError(504, 'server_error', 'The request took longer than the configured timeout.', 'timeout'),
  },
};

function policyFor(error: unknown): ReasonPolicy | null {
  if (!isServiceError(error)) return null;
  const reason = workerReason(error);
  return (reason !== null ? BY_REASON[reason] : undefined) ?? BY_CODE[error.code] ?? null;
}

/** Worker answers that mean "try another worker" when no token has been produced yet. */
export function isRetryable(error: unknown): boolean {
  return policyFor(error)?.retryable ?? false;
}

/** Transport failures: the worker is taken out until a status probe answers. */
export function isWorkerDown(error: unknown): boolean {
  if (!isServiceError(error)) return false;
  return error.code === GrpcStatus.UNAVAILABLE || error.code === GrpcStatus.CANCELLED;
}

/** A worker failure → the OpenAI error the client sees. Worker messages carry no content. */
export function workerErrorToApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const policy = policyFor(error);
  if (policy && isServiceError(error)) return policy.toApiError(error.details || error.message);
  return ApiError.internal();
}
