import { fileURLToPath } from 'node:url';
import type { Options } from '@grpc/proto-loader';

/** Root of the .proto tree; works from src/ (tests) and dist/ (built services) alike. */
export const PROTO_ROOT = fileURLToPath(new URL('../proto', import.meta.url));

/** One set of proto-loader options for every server and client, so field shapes never drift. */
export const PROTO_LOADER_OPTIONS: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export const WORKER_PROTO_FILE = 'airlock/worker/v1/worker_service.proto';
export const WORKER_PACKAGE = 'airlock.worker.v1';
export const WORKER_SERVICE = 'WorkerService';

/** The gRPC trailer that carries a worker's WorkerErrorReason (AIP-193 style machine-readable reason). */
export const WORKER_REASON_METADATA_KEY = 'airlock-reason';
