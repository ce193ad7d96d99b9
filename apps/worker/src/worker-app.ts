import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Transport, type MicroserviceOptions } from '@nestjs/microservices';
import type { Server } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import {
  PLAINTEXT_WARNING,
  PROTO_LOADER_OPTIONS,
  SERVICE_IDENTITY,
  WORKER_PACKAGE,
  WORKER_PROTO_FILE,
  WORKER_SERVICE,
  internalServerCredentials,
  type InternalTransport,
} from '@airlock/contracts';
import { createLogger, findFreePort, NestPinoLogger, OpsServer, type Logger } from '@airlock/telemetry';
import { catalogForSingleModel, readCatalogFile, type ModelSpec } from './catalog/model-catalog.js';
import { FileDigestCache } from './catalog/file-digest.js';
import type { WorkerSettings } from './config/worker-settings.js';
import { LlamaRuntime } from './engine/llama-runtime.js';
import { ModelFleet } from './engine/model-fleet.js';
import { draining } from './engine/worker-errors.js';
import { WorkerGrpcController } from './grpc/worker-grpc.controller.js';
import { auditUsageClient } from './usage/audit-usage-client.js';
import { UsageReporter } from './usage/usage-reporter.js';

const WORKER_SERVICE_NAME = `${WORKER_PACKAGE}.${WORKER_SERVICE}`;
/** A usage report still undelivered after an hour is given up (auth-audit keeps its books for a day). */
const USAGE_REPORT_MAX_AGE_MS = 3600_000;
const USAGE_FLUSH_AT_STOP_MS = 5_000;

@Module({})
class WorkerModule {
  static with(fleet: ModelFleet, usage: UsageReporter): DynamicModule {
    return {
      module: WorkerModule,
      controllers: [WorkerGrpcController],
      providers: [
        { provide: ModelFleet, useValue: fleet },
        { provide: UsageReporter, useValue: usage },
      ],
    };
  }
}

export interface WorkerApp {
  grpcPort: number;
  opsPort: number;
  fleet: ModelFleet;
  /** Delivers the usage of every generation to auth-audit (when AIRLOCK_AUTH_AUDIT_ADDRESS is set). */
  usage: UsageReporter;
  /** Resolves once every model has loaded or failed. */
  loaded: Promise<void>;
  /** SIGTERM behaviour: not ready, refuse new work, finish in-flight work (up to the drain timeout), stop. */
  drainAndClose(): Promise<{ drained: boolean }>;
  close(): Promise<void>;
}

/** Inference only from the gateway; health from any certificate the platform CA issued. */
export const WORKER_CALLERS = [
  { methodPrefix: `/${WORKER_SERVICE_NAME}/`, callers: [SERVICE_IDENTITY.gateway] },
  { methodPrefix: '/grpc.health.v1.Health/', callers: 'any' },
] as const;

/** The gRPC options shared by the worker's server and by every client of it. */
export function workerGrpcOptions(
  url: string,
  transport: InternalTransport,
  onServer?: (server: Server) => void,
): MicroserviceOptions {
  return {
    transport: Transport.GRPC,
    options: {
      url,
      credentials: internalServerCredentials(transport, WORKER_CALLERS),
      package: WORKER_PACKAGE,
      protoPath: WORKER_PROTO_FILE,
      loader: PROTO_LOADER_OPTIONS,
      // Let finished streams flush their last message; close() aborts what is still generating first.
      gracefulShutdown: true,
      // grpc.health.v1 comes with its own service definition from grpc-health-check.
      onLoadPackageDefinition: (_definition, server) => onServer?.(server as Server),
    },
  };
}

export async function modelSpecsFrom(settings: WorkerSettings): Promise<ModelSpec[]> {
  const specs = settings.modelsFile
    ? await readCatalogFile(settings.modelsFile)
    : catalogForSingleModel(settings.modelPath!);
  const threads = settings.defaultThreads;
  return threads ? specs.map((spec) => ({ ...spec, threads: spec.threads ?? threads })) : specs;
}

/**
 * Starts the worker: gRPC server (inference + grpc.health.v1), ops HTTP server, and model loading in the
 * background (readiness turns true when loading settles). Port 0 picks a free port.
 */
export async function startWorkerApp(settings: WorkerSettings, logger?: Logger): Promise<WorkerApp> {
  const log = logger ?? createLogger({ service: 'worker', level: settings.logLevel });
  if (settings.transport.kind === 'plaintext') log.warn(PLAINTEXT_WARNING);
  const specs = await modelSpecsFrom(settings);
  const fleet = new ModelFleet(
    specs,
    new LlamaRuntime(log),
    new FileDigestCache(settings.dataDir, log),
    settings.workerId,
    log,
    settings.llamaServerBin,
  );

  const auditClient = settings.authAuditAddress
    ? auditUsageClient(settings.authAuditAddress, settings.transport)
    : undefined;
  const usage = new UsageReporter(auditClient?.send, settings.workerId, fleet.metrics.registry, log, {
    maxPending: settings.usageReportsMaxPending ?? 100_000,
    maxAgeMs: USAGE_REPORT_MAX_AGE_MS,
  });
  if (!auditClient) log.warn('AIRLOCK_AUTH_AUDIT_ADDRESS is not set: usage is reported by the gateway only');

  const health = new HealthImplementation({ '': 'NOT_SERVING', [WORKER_SERVICE_NAME]: 'NOT_SERVING' });
  const setHealth = (serving: boolean) => {
    const state = serving ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', state);
    health.setStatus(WORKER_SERVICE_NAME, state);
  };

  const grpcPort = settings.grpcPort || (await findFreePort(settings.grpcHost));
  const app = await NestFactory.createMicroservice<MicroserviceOptions>(WorkerModule.with(fleet, usage), {
    ...workerGrpcOptions(`${settings.grpcHost}:${grpcPort}`, settings.transport, (server) =>
      health.addToServer(server),
    ),
    logger: new NestPinoLogger(log),
  });
  await app.listen();

  const ops = new OpsServer({
    host: settings.opsHost,
    port: settings.opsPort,
    registry: fleet.metrics.registry,
    isReady: () => fleet.ready,
  });
  const opsPort = await ops.listen();
  log.info(
    { grpcPort, opsPort, models: specs.map((s) => s.id), transport: settings.transport.kind },
    'worker listening',
  );

  const loaded = fleet.load().then(() => setHealth(fleet.ready));

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      setHealth(false);
      fleet.abortAll(draining());
      await app.close();
      // The last reports of the generations just ended; bounded, the process is stopping.
      await usage.flush(USAGE_FLUSH_AT_STOP_MS);
      usage.close();
      auditClient?.close();
      await ops.close();
      await fleet.dispose();
    })());

  return {
    grpcPort,
    opsPort,
    fleet,
    usage,
    loaded,
    close,
    async drainAndClose() {
      setHealth(false);
      const drained = await fleet.drain(settings.drainTimeoutSeconds * 1000);
      log.info(
        { drained },
        drained ? 'drained: in-flight requests finished' : 'drain timeout: stopping with requests in flight',
      );
      await close();
      return { drained };
    },
  };
}
