import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createLogger, NestPinoLogger, OpsServer, type Logger } from '@airlock/telemetry';
import { PLAINTEXT_WARNING, SERVICE_IDENTITY, internalChannelCredentials } from '@airlock/contracts';
import type { AuthAuditClient } from './auth/auth-audit.port.js';
import { CompletionRecorder } from './auth/completion-recorder.js';
import { GrpcAuditClient } from './auth/grpc-audit-client.js';
import type { GatewayConfig } from './config.js';
import { ApiError } from './errors/api-error.js';
import { installCors } from './http/cors.js';
import { loadConsoleConfig, type ConsoleConfig } from './console/console-config.js';
import { installConsole } from './console/console-routes.js';
import { OpenAiErrorFilter } from './errors/error.filter.js';
import { GatewayModule } from './gateway.module.js';
import {
  CLIENT_REQUEST_ID_KEY,
  modelOf,
  RAW_BODY_KEY,
  RECORDED_KEY,
  recordFailure,
  STARTED_KEY,
  type AirlockRequest,
} from './http/http-context.js';
import type { Socket } from 'node:net';
import { InferenceService } from './inference/inference.service.js';
import { ResponsesService } from './inference/responses.service.js';
import { GatewayMetrics } from './metrics.js';
import { createDiscovery } from './workers/discovery.js';
import { WorkerPool } from './workers/worker-pool.js';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from './openai/schema-limits.js';

export interface GatewayApp {
  port: number;
  opsPort: number;
  pool: WorkerPool;
  metrics: GatewayMetrics;
  close(): Promise<void>;
}

export interface GatewayAppOptions {
  logger?: Logger;
  /** Replaces the gRPC auth-audit client (the benchmark's worker-only baseline uses this). */
  auth?: AuthAuditClient;
  /** The web console's settings (default: from AIRLOCK_CONSOLE_* variables). */
  console?: ConsoleConfig;
}

/** The client's x-request-id is kept (as its own audit field) up to this length; ids are always ours. */
const MAX_CLIENT_REQUEST_ID = 1024;

/** Builds and starts the gateway: worker pool and discovery, auth-audit client, HTTP API, ops port. */
export async function startGatewayApp(
  config: GatewayConfig,
  options: GatewayAppOptions = {},
): Promise<GatewayApp> {
  const logger = options.logger ?? createLogger({ service: 'gateway', level: config.logLevel });
  if (config.internalTransport.kind === 'plaintext') logger.warn(PLAINTEXT_WARNING);
  const pool = new WorkerPool({
    workerCredentials: internalChannelCredentials(config.internalTransport, SERVICE_IDENTITY.worker),
    statusIntervalMs: config.workerStatusIntervalMs,
    queueCapacity: config.queueCapacity,
    queueTimeoutMs: config.queueTimeoutMs,
    logger,
  });
  // Built first: a Kubernetes client that cannot load its service account fails before anything opens.
  const discovery = await createDiscovery(config, pool, logger);
  const auth =
    options.auth ??
    new GrpcAuditClient(
      config.authAuditAddress,
      undefined,
      internalChannelCredentials(config.internalTransport, SERVICE_IDENTITY.authAudit),
      Math.ceil((config.requestTimeoutMs + config.auditLeaseMarginMs) / 1000),
      logger,
    );
  const holder: { metrics?: GatewayMetrics } = {};
  const recorder = new CompletionRecorder(auth, {
    maxBackoffMs: config.auditRetryMaxMs,
    maxPending: config.auditMaxPending,
    holdMs: config.auditCompletionHoldMs,
    logger,
    onDelivered: (_record, attempts) => {
      if (attempts > 1) holder.metrics?.auditRetries.inc();
    },
    onDeadLetter: (reason) => holder.metrics?.auditDeadLetters.inc({ reason }),
  });
  const metrics = new GatewayMetrics(pool, () => recorder.pendingCount);
  holder.metrics = metrics;
  const inference = new InferenceService(pool, recorder, metrics, config);
  const responses = new ResponsesService(pool, recorder, metrics, config, auth);

  const adapter = new FastifyAdapter({
    bodyLimit: config.maxBodyBytes,
    http: { maxHeaderSize: config.maxHeaderBytes },
    keepAliveTimeout: config.idleTimeoutMs,
    requestIdHeader: false,
    // Always the gateway's own id: a client's x-request-id must never link records of two requests.
    genReqId: () => randomUUID(),
    // Requests the HTTP parser refuses (oversized headers, garbage) never reach a route: record them here.
    clientErrorHandler: (error: Error & { code?: string }, socket: Socket) => {
      const headersTooLarge = error.code === 'HPE_HEADER_OVERFLOW';
      const status = headersTooLarge ? 431 : 400;
      recorder.refusal({
        requestId: randomUUID(),
        clientRequestId: '',
        action: 'http',
        model: '',
        clientAddress: socket.remoteAddress ?? '',
        userAgent: '',
        statusCode: status,
        errorClass: headersTooLarge ? 'headers_too_large' : 'malformed_http',
      });
      if (socket.writable) {
        const body = JSON.stringify({
          error: {
            message: headersTooLarge
              ? 'The request headers are larger than the configured limit.'
              : 'The request could not be parsed.',
            type: 'invalid_request_error',
            param: null,
            code: headersTooLarge ? 'headers_too_large' : 'bad_request',
          },
        });
        socket.end(
          `HTTP/1.1 ${status} ${headersTooLarge ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
            `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
            `connection: close\r\n\r\n${body}`,
        );
      } else {
        socket.destroy();
      }
    },
    logger: false,
    return503OnClosing: true,
    // Only the configured proxies' X-Forwarded-For is believed (the right-most untrusted hop is the client);
    // without them a client could name any address for its audit records.
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    GatewayModule.with({ config, pool, recorder, auth, inference, responses, scaler: discovery.scaler }),
    adapter,
    { bodyParser: false, logger: new NestPinoLogger(logger) },
  );
  app.useGlobalFilters(new OpenAiErrorFilter(logger, (refusal) => recorder.refusal(refusal)));
  installHooks(app.getHttpAdapter().getInstance(), metrics, logger, config);
  installConsole(app.getHttpAdapter().getInstance(), {
    config: options.console ?? loadConsoleConfig(),
    auth,
    logger,
  });

  let discovering = false;
  let closing = false;
  const ops = new OpsServer({
    host: config.host,
    port: config.opsPort,
    registry: metrics.registry,
    isReady: () => !closing,
  });
  try {
    await app.listen(config.port, config.host);
    app.getHttpServer().maxConnections = config.maxConnections;
    pool.start();
    discovering = true;
    await discovery.start();
  } catch (error) {
    if (discovering) await discovery.stop();
    await app.close();
    pool.close();
    throw error;
  }
  const opsPort = await ops.listen();
  const port = (app.getHttpServer().address() as AddressInfo).port;
  logger.info(
    { port, opsPort, discovery: config.discovery.kind, transport: config.internalTransport.kind },
    'gateway listening',
  );

  return {
    port,
    opsPort,
    pool,
    metrics,
    close: async () => {
      closing = true;
      await discovery.stop();
      await app.close();
      pool.close();
      const lost = await recorder.flush(10_000);
      if (lost > 0) logger.error({ lost }, 'completion records undelivered at shutdown');
      auth.close();
      await ops.close();
    },
  };
}

/** Raw JSON bodies (kept for the audit digest), x-request-id on every response, metrics and access log. */
function installHooks(
  fastify: FastifyInstance,
  metrics: GatewayMetrics,
  logger: Logger,
  config: GatewayConfig,
): void {
  fastify.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit: config.maxBodyBytes },
    (request: FastifyRequest, body: Buffer, done: (error: Error | null, value?: unknown) => void) => {
      (request as AirlockRequest)[RAW_BODY_KEY] = body;
      if (body.length === 0) return done(null, undefined);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        return done(Object.assign(new Error('The request body is not valid JSON.'), { statusCode: 400 }));
      }
      // Recursive code further on (schemas, grammars, templates) must never meet an unbounded nesting.
      if (exceedsJsonDepth(parsed, MAX_JSON_DEPTH)) {
        return done(
          ApiError.badRequest(
            `The request body nests deeper than ${MAX_JSON_DEPTH} levels.`,
            undefined,
            'json_too_deep',
          ),
        );
      }
      done(null, parsed);
    },
  );
  fastify.addHook('onRequest', (request, reply, done) => {
    const startedAt = performance.now();
    (request as AirlockRequest)[STARTED_KEY] = startedAt;
    const given = request.headers['x-request-id'];
    if (typeof given === 'string')
      (request as AirlockRequest)[CLIENT_REQUEST_ID_KEY] = given.slice(0, MAX_CLIENT_REQUEST_ID);
    void reply.header('x-request-id', request.id);
    reply.raw.once('close', () => {
      const route = request.routeOptions.url ?? 'unmatched';
      const status = reply.raw.writableFinished ? reply.raw.statusCode : 499;
      const seconds = (performance.now() - startedAt) / 1000;
      metrics.requests.inc({ route, model: metrics.modelLabel(modelOf(request)), status: String(status) });
      metrics.duration.observe({ route }, seconds);
      logger.info(
        { requestId: request.id, method: request.method, route, status, ms: Math.round(seconds * 1000) },
        'request',
      );
    });
    done();
  });
  // The one gate of every answer Fastify sends (success or error): a request started on its decision
  // waits here for its durable record, and a failed commit replaces the answer with its 503.
  fastify.addHook('onSend', (request, reply, payload, done) => {
    if (!(request as AirlockRequest)[RECORDED_KEY]) return done(null, payload);
    void recordFailure(request).then((failure) => {
      if (!failure) return done(null, payload);
      void reply.code(failure.status).headers({
        ...failure.headers,
        'content-type': 'application/json; charset=utf-8',
      });
      reply.removeHeader('content-length');
      done(null, JSON.stringify(failure.toBody()));
    });
  });
  installCors(fastify, config.corsOrigins);
}
