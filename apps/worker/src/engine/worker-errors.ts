import { status } from '@grpc/grpc-js';
import type { WorkerErrorReason } from '@airlock/contracts';

/**
 * Errors a caller can act on, each with the gRPC status it travels as and a machine-readable reason
 * (sent in the status details as `reason: message`), so the gateway can map them to OpenAI errors.
 */
export class WorkerError extends Error {
  constructor(
    readonly code: status,
    readonly reason: WorkerErrorReason,
    message: string,
  ) {
    super(message);
  }
}

export const modelNotFound = (id: string) =>
  new WorkerError(status.NOT_FOUND, 'MODEL_NOT_FOUND', `model "${id}" is not served by this worker`);

export const modelNotReady = (id: string, why: string) =>
  new WorkerError(status.UNAVAILABLE, 'MODEL_NOT_READY', `model "${id}" is not ready: ${why}`);

export const queueFull = (id: string, capacity: number) =>
  new WorkerError(
    status.RESOURCE_EXHAUSTED,
    'QUEUE_FULL',
    `model "${id}" is busy: all sequences are generating and ${capacity} requests are already waiting`,
  );

export const draining = () =>
  new WorkerError(status.UNAVAILABLE, 'DRAINING', 'worker is shutting down and takes no new requests');

export const invalidArgument = (message: string) =>
  new WorkerError(status.INVALID_ARGUMENT, 'INVALID_ARGUMENT', message);

export const contextExceeded = (id: string, needed: number, contextSize: number) =>
  new WorkerError(
    status.OUT_OF_RANGE,
    'CONTEXT_LENGTH_EXCEEDED',
    `request needs ${needed} tokens but model "${id}" has a context of ${contextSize} tokens per sequence`,
  );

export const embeddingsNotServed = (id: string) =>
  new WorkerError(
    status.FAILED_PRECONDITION,
    'EMBEDDINGS_NOT_SERVED',
    `model "${id}" does not serve embeddings`,
  );

export const featureNotSupported = (message: string) =>
  new WorkerError(status.FAILED_PRECONDITION, 'FEATURE_NOT_SUPPORTED', message);

export const cancelled = () => new WorkerError(status.CANCELLED, 'CANCELLED', 'request was cancelled');
