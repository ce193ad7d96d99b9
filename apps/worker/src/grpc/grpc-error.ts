import { Metadata, status } from '@grpc/grpc-js';
import { WORKER_REASON_METADATA_KEY } from '@airlock/contracts';
import { RpcException } from '@nestjs/microservices';
import { WorkerError } from '../engine/worker-errors.js';

/**
 * A gRPC status for any error leaving the worker. Known errors keep their code and message and carry their
 * reason in the `airlock-reason` trailer; anything else becomes INTERNAL with no internals in it.
 */
export function toRpcException(error: unknown): RpcException {
  const known =
    error instanceof WorkerError
      ? error
      : new WorkerError(status.INTERNAL, 'INTERNAL', 'internal worker error');
  const metadata = new Metadata();
  metadata.set(WORKER_REASON_METADATA_KEY, known.reason);
  return new RpcException({ code: known.code, message: known.message, details: known.message, metadata });
}
