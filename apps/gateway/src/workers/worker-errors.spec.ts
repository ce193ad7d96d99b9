import { Metadata, status } from '@grpc/grpc-js';
import { isRetryable, workerErrorToApiError } from './worker-errors.js';

function workerError(code: status, reason?: string) {
  const metadata = new Metadata();
  if (reason) metadata.set('airlock-reason', reason);
  return Object.assign(new Error('worker said no'), { code, details: 'worker said no', metadata });
}

describe('worker errors', () => {
  it('map on the reason: a model that cannot embed is a 400 at once, not a retried 503', () => {
    const error = workerError(status.FAILED_PRECONDITION, 'EMBEDDINGS_NOT_SERVED');
    expect(isRetryable(error)).toBe(false);
    expect(workerErrorToApiError(error)).toMatchObject({ status: 400, code: 'model_does_not_embed' });
    const unsupported = workerError(status.FAILED_PRECONDITION, 'FEATURE_NOT_SUPPORTED');
    expect(workerErrorToApiError(unsupported)).toMatchObject({ status: 400, code: 'unsupported_parameter' });
  });

  it('retry what another worker may serve, and fall back to the code without a reason', () => {
    expect(isRetryable(workerError(status.UNAVAILABLE, 'MODEL_NOT_READY'))).toBe(true);
    expect(isRetryable(workerError(status.RESOURCE_EXHAUSTED, 'QUEUE_FULL'))).toBe(true);
    expect(isRetryable(workerError(status.INVALID_ARGUMENT, 'INVALID_ARGUMENT'))).toBe(false);
    expect(workerErrorToApiError(workerError(status.OUT_OF_RANGE))).toMatchObject({
      status: 400,
      code: 'context_length_exceeded',
    });
    expect(isRetryable(workerError(status.UNAVAILABLE))).toBe(true);
    expect(workerErrorToApiError(workerError(status.DEADLINE_EXCEEDED)).status).toBe(504);
  });
});
