import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { defaultLlamaServerBin } from '../engine/llama-server-binary.js';
import { internalTransportFromEnv, type InternalTransport } from '@airlock/contracts';

/** The worker's process settings, read once from the environment at boot. */
export interface WorkerSettings {
  grpcHost: string;
  grpcPort: number;
  opsHost: string;
  opsPort: number;
  dataDir: string;
  /** One GGUF file to serve (AIRLOCK_MODEL); its id is the file name without `.gguf`. */
  modelPath?: string;
  /** The YAML catalog (AIRLOCK_MODELS_FILE); takes precedence over AIRLOCK_MODEL. */
  modelsFile?: string;
  drainTimeoutSeconds: number;
  /** Threads of a model whose catalog entry names none (AIRLOCK_WORKER_THREADS); else every available CPU. */
  defaultThreads?: number;
  workerId: string;
  /**
   * llama.cpp's llama-server for models whose catalog entry says `engine: llama-server`
   * (AIRLOCK_LLAMA_SERVER_BIN); by default where bench/llama-cpp-build.mjs caches its build.
   */
  llamaServerBin: string;
  logLevel: string;
  /** mTLS from the platform CA (only the gateway may call), or plaintext when asked for by name. */
  transport: InternalTransport;
  /** auth-audit's host:port (AIRLOCK_AUTH_AUDIT_ADDRESS): where the worker reports its usage; unset: none. */
  authAuditAddress?: string;
  /** Usage reports held while auth-audit is unreachable (AIRLOCK_USAGE_REPORTS_MAX_PENDING). */
  usageReportsMaxPending?: number;
}

const port = z.coerce.number().int().min(0).max(65535);

const envSchema = z.object({
  AIRLOCK_GRPC_HOST: z.string().min(1).default('127.0.0.1'),
  AIRLOCK_GRPC_PORT: port.default(50061),
  AIRLOCK_HOST: z.string().min(1).optional(),
  AIRLOCK_OPS_PORT: port.default(9402),
  AIRLOCK_DATA_DIR: z.string().min(1).default('./data'),
  AIRLOCK_MODEL: z.string().min(1).optional(),
  AIRLOCK_MODELS_FILE: z.string().min(1).optional(),
  AIRLOCK_DRAIN_TIMEOUT_SECONDS: z.coerce.number().min(0).max(3600).default(30),
  AIRLOCK_WORKER_ID: z.string().min(1).optional(),
  AIRLOCK_WORKER_THREADS: z.coerce.number().int().min(1).max(1024).optional(),
  AIRLOCK_LLAMA_SERVER_BIN: z.string().min(1).optional(),
  AIRLOCK_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  AIRLOCK_AUTH_AUDIT_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')
    .optional(),
  AIRLOCK_USAGE_REPORTS_MAX_PENDING: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
});

export class SettingsError extends Error {}

/** Validates the environment; a bad value stops the process with a message naming the variable. */
export function readWorkerSettings(env: NodeJS.ProcessEnv = process.env): WorkerSettings {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new SettingsError(`invalid worker settings: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  if (!e.AIRLOCK_MODEL && !e.AIRLOCK_MODELS_FILE) {
    throw new SettingsError(
      'no model to serve: set AIRLOCK_MODEL (a GGUF file) or AIRLOCK_MODELS_FILE (a catalog)',
    );
  }
  const transport = internalTransportFromEnv(env);
  if (!transport.ok) throw new SettingsError(`invalid worker settings: ${transport.problem}`);
  const host = e.AIRLOCK_GRPC_HOST;
  return {
    grpcHost: host,
    grpcPort: e.AIRLOCK_GRPC_PORT,
    opsHost: e.AIRLOCK_HOST ?? host,
    opsPort: e.AIRLOCK_OPS_PORT,
    dataDir: resolve(e.AIRLOCK_DATA_DIR),
    modelPath: e.AIRLOCK_MODEL && resolve(e.AIRLOCK_MODEL),
    modelsFile: e.AIRLOCK_MODELS_FILE && resolve(e.AIRLOCK_MODELS_FILE),
    drainTimeoutSeconds: e.AIRLOCK_DRAIN_TIMEOUT_SECONDS,
    defaultThreads: e.AIRLOCK_WORKER_THREADS,
    workerId: e.AIRLOCK_WORKER_ID ?? hostname(),
    llamaServerBin: resolve(e.AIRLOCK_LLAMA_SERVER_BIN ?? defaultLlamaServerBin(env)),
    logLevel: e.AIRLOCK_LOG_LEVEL,
    transport: transport.transport,
    authAuditAddress: e.AIRLOCK_AUTH_AUDIT_ADDRESS,
    usageReportsMaxPending: e.AIRLOCK_USAGE_REPORTS_MAX_PENDING,
  };
}
