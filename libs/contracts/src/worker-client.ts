import { credentials, loadPackageDefinition, type Client, type ChannelOptions } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_LOADER_OPTIONS, WORKER_PROTO_FILE } from './proto.js';

type ClientConstructor = new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
  options?: ChannelOptions,
) => Client;

let workerServiceClient: ClientConstructor | undefined;

/**
 * A raw grpc-js client of airlock.worker.v1.WorkerService (insecure channel: traffic stays inside the
 * cluster network, which NetworkPolicies restrict). Methods are grpc-js's dynamic ones: `chat(req)` returns
 * a readable stream, unary methods take a callback.
 */
export function createWorkerClient(
  address: string,
  options?: ChannelOptions,
): Client & Record<string, unknown> {
  if (!workerServiceClient) {
    const definition = loadPackageDefinition(
      loadSync(WORKER_PROTO_FILE, PROTO_LOADER_OPTIONS),
    ) as unknown as {
      airlock: { worker: { v1: { WorkerService: ClientConstructor } } };
    };
    workerServiceClient = definition.airlock.worker.v1.WorkerService;
  }
  return new workerServiceClient(address, credentials.createInsecure(), options) as Client &
    Record<string, unknown>;
}
