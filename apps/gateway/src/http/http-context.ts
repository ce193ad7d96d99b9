import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Authorization, InferenceAction } from '../auth/auth-audit.port.js';
import type { AuthAuditClient } from '../auth/auth-audit.port.js';
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

export type AirlockRequest = FastifyRequest & {
  [MODEL_KEY]?: string;
  [RAW_BODY_KEY]?: Buffer;
  [STARTED_KEY]?: number;
  [CLIENT_REQUEST_ID_KEY]?: string;
  [AUTHORIZE_KEY]?: boolean;
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
 * that the refusal is audited.
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
  let authorization: Authorization;
  try {
    authorization = await auth.authorize({
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
    });
  } catch (error) {
    // The request record may commit after all: its outcome is what the client saw, a 503 timeout.
    if (error instanceof ApiError && error.code === 'authorize_timeout') {
      admission.recorder?.record({
        requestId: request.id,
        outcome: 'error',
        statusCode: error.status,
        errorClass: 'authorize_timeout',
        model,
        worker: '',
        promptTokens: 0,
        completionTokens: 0,
        cachedTokens: 0,
        latencyMs: performance.now() - ((request as AirlockRequest)[STARTED_KEY] ?? performance.now()),
        timeToFirstTokenMs: 0,
        responseBody: Buffer.alloc(0),
      });
    }
    throw error;
  }
  void reply.headers({ ...authorization.rateLimitHeaders, ...authorization.auditHeaders });
  if (authorization.allowedModels && model && !authorization.allowedModels.includes(model)) {
    admission.recorder?.record({
      requestId: request.id,
      outcome: 'error',
      statusCode: 403,
      errorClass: 'model_not_allowed',
      model,
      worker: '',
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
      latencyMs: 0,
      timeToFirstTokenMs: 0,
      responseBody: Buffer.alloc(0),
    });
    throw new ApiError(
      403,
      'permission_error',
      `You may not use the model '${model}'.`,
      'model_not_allowed',
      'model',
    );
  }
  return {
    requestId: request.id,
    authorization,
    abort,
    clientGone: () => gone,
    startedAt: (request as AirlockRequest)[STARTED_KEY] ?? performance.now(),
    route: request.routeOptions.url ?? '',
  };
}

/** Hands the raw response to the SSE writer; Fastify stops managing this reply. */
export function openStream(reply: FastifyReply): SseWriter {
  reply.hijack();
  return new SseWriter(reply.raw, reply.getHeaders() as OutgoingHttpHeaders);
}

/** The request limits every generating surface validates against. */
export function requestLimits(config: GatewayConfig): RequestLimits {
  return {
    maxN: config.maxN,
    tokenLimits: (model) => ({ maxTokens: config.modelMaxTokens[model] ?? config.maxTokens }),
  };
}
