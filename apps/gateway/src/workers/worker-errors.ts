import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { ApiError } from '../errors/api-error.js';

export function isServiceError(error: unknown): error is ServiceError {
  // Duck-typed: grpc-js errors may come from another realm (jest's module sandbox).
  return (
    typeof error === 'object' && error !== null && typeof (error as Partial<ServiceError>).code === 'number'
  );
}

/**
 * Worker answers that mean "try another worker" when no token has been produced yet. CANCELLED is here
 * because callers check their own abort first: a cancel we did not ask for is a worker going away.
 */
const RETRYABLE = new Set<number>([
  GrpcStatus.UNAVAILABLE,
  GrpcStatus.RESOURCE_EXHAUSTED,
  GrpcStatus.FAILED_PRECONDITION,
  GrpcStatus.CANCELLED,
]);

export function isRetryable(error: unknown): boolean {
  return isServiceError(error) && RETRYABLE.has(error.code);
}

/** Transport failures: the worker is taken out until a status probe answers. */
export function isWorkerDown(error: unknown): boolean {
  return (
    isServiceError(error) && (error.code === GrpcStatus.UNAVAILABLE || error.code === GrpcStatus.CANCELLED)
  );
}

/** gRPC status from a worker → the OpenAI error the client sees. Worker messages carry no content. */
const FROM_GRPC: Record<number, (message: string) => ApiError> = {
  [GrpcStatus.INVALID_ARGUMENT]: (m) => ApiError.badRequest(m),
  [GrpcStatus.OUT_OF_RANGE]: (m) => ApiError.badRequest(m, 'messages', 'context_length_exceeded'),
  [GrpcStatus.NOT_FOUND]: (m) => new ApiError(404, 'not_found_error', m, 'model_not_found', 'model'),
  [GrpcStatus.RESOURCE_EXHAUSTED]: () =>
    ApiError.rateLimited('All workers for this model are busy. Retry shortly.', 1),
  [GrpcStatus.UNAVAILABLE]: () =>
    ApiError.unavailable('No worker could serve the request.', 'no_worker_available', 1),
  [GrpcStatus.CANCELLED]: () => ApiError.unavailable('The worker went away.', 'worker_lost', 1),
  [GrpcStatus.FAILED_PRECONDITION]: () =>
    ApiError.unavailable('The model is not ready on any worker.', 'model_not_ready', 1),
  [GrpcStatus.DEADLINE_EXCEEDED]: () =>
    new ApiError(504, 'server_error', 'The request took longer than the configured timeout.', 'timeout'),
};

export function workerErrorToApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (isServiceError(error)) {
    const map = FROM_GRPC[error.code];
    if (map) return map(error.details || error.message);
  }
  return ApiError.internal();
}
