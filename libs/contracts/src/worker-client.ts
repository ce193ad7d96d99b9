import {
  credentials as grpcCredentials,
  loadPackageDefinition,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, WORKER_PROTO_FILE } from './proto.js';

type ClientConstructor = new (address: string, creds: ChannelCredentials, options?: ChannelOptions) => Client;

let workerServiceClient: ClientConstructor | undefined;

/**
 * A raw grpc-js client of airlock.worker.v1.WorkerService. Pass `internalChannelCredentials(...)` for the
 * mTLS the worker requires; without credentials the channel is plaintext (only for a worker started with
 * AIRLOCK_INTERNAL_PLAINTEXT=true). Methods are grpc-js's dynamic ones: `chat(req)` returns a readable
 * stream, unary methods take a callback.
 */
export function createWorkerClient(
  address: string,
  options?: ChannelOptions,
  credentials: ChannelCredentials = grpcCredentials.createInsecure(),
): Client & Record<string, unknown> {
  if (!workerServiceClient) {
    const definition = loadPackageDefinition(
      loadSync(WORKER_PROTO_FILE, PROTO_LOADER_OPTIONS),
    ) as unknown as {
      airlock: { worker: { v1: { WorkerService: ClientConstructor } } };
    };
    workerServiceClient = definition.airlock.worker.v1.WorkerService;
  }
  return new workerServiceClient(address, credentials, options) as Client & Record<string, unknown>;
}
