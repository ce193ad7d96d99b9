import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthAuditClient, CompletionRecord, InferenceAction } from '../auth/auth-audit.port.js';
import { ApiError } from '../errors/api-error.js';
import type { RequestContext } from '../inference/exchange.js';
import type { GatewayConfig } from '../config.js';
import type { RequestLimits } from '../openai/chat-request.js';
import { SseWriter } from '../openai/sse.js';
import type { CompletionRecorder } from '../auth/completion-recorder.js';

/** What admission needs beyond the request: the budget reservation and the audit backlog. */
export interface Admission {
  /** Tokens this request may use at most (prompt estimate + max tokens × choices). */
  reserveTokens?: number;
  /** Refuses new requests while its backlog is full; files the outcome of an Authorize that timed out. */
  recorder?: CompletionRecorder;
  /** OpenAI's safety_identifier / user, for the request record. */
  endUser?: string;
  /** Return at the decision, before the request record is durable (generating routes). */
  early?: boolean;
}

/** A rough prompt size from the body: ~4 bytes per token, an over-estimate for JSON-wrapped text. */
export function promptTokenEstimate(request: FastifyRequest): number {
  return Math.ceil(rawBody(request).length / 4);
}

/** Set on the request so that metrics and logs can name the model. */
export const MODEL_KEY = Symbol('airlock.model');
/** performance.now() at arrival, for latency and time to first token. */
export const STARTED_KEY = Symbol('airlock.startedAt');
/** The raw body bytes, kept for the audit digest. */
export const RAW_BODY_KEY = Symbol('airlock.rawBody');
/** The client's own x-request-id (the request's id is always the gateway's). */
export const CLIENT_REQUEST_ID_KEY = Symbol('airlock.clientRequestId');
/** Set once Authorize was called: from then on auth-audit holds the request's record. */
export const AUTHORIZE_KEY = Symbol('airlock.authorize');
/** Settles when the request record is durable (rejects when its commit failed): see authorizeRequest. */
export const RECORDED_KEY = Symbol('airlock.recorded');

export type AirlockRequest = FastifyRequest & {
  [MODEL_KEY]?: string;
  [RAW_BODY_KEY]?: Buffer;
  [STARTED_KEY]?: number;
  [CLIENT_REQUEST_ID_KEY]?: string;
  [AUTHORIZE_KEY]?: boolean;
  [RECORDED_KEY]?: Promise<void>;
};

export function clientRequestId(request: FastifyRequest): string {
  return (request as AirlockRequest)[CLIENT_REQUEST_ID_KEY] ?? '';
}

export function authorizeAttempted(request: FastifyRequest): boolean {
  return (request as AirlockRequest)[AUTHORIZE_KEY] === true;
}

export function rawBody(request: FastifyRequest): Buffer {
  return (request as AirlockRequest)[RAW_BODY_KEY] ?? Buffer.alloc(0);
}

export function modelOf(request: FastifyRequest): string {
  return (request as AirlockRequest)[MODEL_KEY] ?? '';
}

export function bearer(request: FastifyRequest): string {
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1] : '';
}

/**
 * Authenticates and authorises one request through auth-audit (which also commits its request record),
 * then returns the context that follows it through the gateway. Missing credentials are still sent so
 * that the refusal is audited. With `admission.early` it returns at the decision, before the record is
 * durable: the caller may start the worker, and `ctx.recorded` (awaited by every path that writes to the
 * client: `releaseWhenRecorded`, the SSE open, the error filter) holds the answer back until the record
 * has committed; a failed commit aborts `ctx.abort` and turns the answer into its 503.
 */
export async function authorizeRequest(
  auth: AuthAuditClient,
  request: FastifyRequest,
  reply: FastifyReply,
  action: InferenceAction,
  model: string,
  admission: Admission = {},
): Promise<RequestContext> {
  (request as AirlockRequest)[MODEL_KEY] = model;
  const abort = new AbortController();
  let gone = false;
  // Listening before Authorize: a client that leaves while it is pending must not get a generation.
  reply.raw.once('close', () => {
    if (reply.raw.writableFinished) return;
    gone = true;
    abort.abort();
  });
  if (admission.recorder?.full) {
    throw ApiError.unavailable(
      'Too many audit records are waiting for the audit service; try again shortly.',
      'audit_backlog',
      1,
    );
  }
  (request as AirlockRequest)[AUTHORIZE_KEY] = true;
  const startedAt = (request as AirlockRequest)[STARTED_KEY] ?? performance.now();
  const input = {
    credential: bearer(request),
    requestId: request.id,
    action,
    model,
    clientAddress: request.ip,
    userAgent: request.headers['user-agent'] ?? '',
    requestBody: rawBody(request),
    clientRequestId: clientRequestId(request),
    reserveTokens: admission.reserveTokens ?? 0,
    endUser: admission.endUser ?? '',
  };
  const authorizing = auth.authorizeEarly(input);
  // Held completion records go out with this Authorize and just after it: auth-audit commits them in one
  // batch (PGlite) or right behind it (PostgreSQL), never in front of the request a client waits on.
  admission.recorder?.sendHeld();
  const early = await authorizing.catch((error: unknown) => {
    fileTimeout(error, request.id, model, startedAt, admission.recorder);
    throw error;
  });
  const recorded: Promise<void> = early.recorded.then(
    (authorization) => {
      void reply.headers(authorization.auditHeaders);
    },
    (error: unknown) => {
      // Nothing was released and nothing will be: stop the work begun on the decision.
      abort.abort();
      fileTimeout(error, request.id, model, startedAt, admission.recorder);
      throw error;
    },
  );
  recorded.catch(() => undefined);
  (request as AirlockRequest)[RECORDED_KEY] = recorded;
  if (!admission.early) await recorded;
  const authorization = early.decision;
  void reply.headers(authorization.rateLimitHeaders);
  if (authorization.allowedModels && model && !authorization.allowedModels.includes(model)) {
    const refused = new ApiError(
      403,
      'permission_error',
      `You may not use the model '${model}'.`,
      'model_not_allowed',
      'model',
    );
    void recorded.then(() =>
      admission.recorder?.record({
        ...emptyOutcome(request.id, model),
        outcome: 'error',
        statusCode: 403,
        errorClass: 'model_not_allowed',
      }),
    );
    throw refused;
  }
  return {
    requestId: request.id,
    authorization,
    abort,
    clientGone: () => gone,
    startedAt,
    route: request.routeOptions.url ?? '',
    recorded,
  };
}

/** An Authorize that timed out may commit after all: its outcome is what the client saw, a 503 timeout. */
function fileTimeout(
  error: unknown,
  requestId: string,
  model: string,
  startedAt: number,
  recorder: CompletionRecorder | undefined,
): void {
  if (!(error instanceof ApiError) || error.code !== 'authorize_timeout') return;
  recorder?.record({
    ...emptyOutcome(requestId, model),
    outcome: 'error',
    statusCode: error.status,
    errorClass: 'authorize_timeout',
    latencyMs: performance.now() - startedAt,
  });
}

function emptyOutcome(requestId: string, model: string): CompletionRecord {
  return {
    requestId,
    outcome: 'error',
    statusCode: 0,
    errorClass: '',
    model,
    worker: '',
    promptTokens: 0,
    completionTokens: 0,
    cachedTokens: 0,
    latencyMs: 0,
    timeToFirstTokenMs: 0,
    responseBody: Buffer.alloc(0),
  };
}

/**
 * Waits until the request's record is durable (its receipt headers are then on the reply); null when it
 * is (or when the request was never authorised early), else the error the client must get instead.
 */
export async function recordFailure(request: FastifyRequest): Promise<ApiError | null> {
  const recorded = (request as AirlockRequest)[RECORDED_KEY];
  if (!recorded) return null;
  try {
    await recorded;
    return null;
  } catch (error) {
    return error instanceof ApiError ? error : ApiError.internal();
  }
}

/** Hands the raw response to the SSE writer; Fastify stops managing this reply. */
export function openStream(reply: FastifyReply): SseWriter {
  reply.hijack();
  return new SseWriter(reply.raw, () => reply.getHeaders() as OutgoingHttpHeaders);
}

/** The request limits every generating surface validates against. */
export function requestLimits(config: GatewayConfig): RequestLimits {
  return {
    maxN: config.maxN,
    tokenLimits: (model) => ({ maxTokens: config.modelMaxTokens[model] ?? config.maxTokens }),
  };
}
