import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Authorization, InferenceAction } from '../auth/auth-audit.port.js';
import type { AuthAuditClient } from '../auth/auth-audit.port.js';
import { ApiError } from '../errors/api-error.js';
import type { RequestContext } from '../inference/exchange.js';
import type { GatewayConfig } from '../config.js';
import type { RequestLimits } from '../openai/chat-request.js';
import { SseWriter } from '../openai/sse.js';

/** Set on the request so that metrics and logs can name the model. */
export const MODEL_KEY = Symbol('airlock.model');
/** performance.now() at arrival, for latency and time to first token. */
export const STARTED_KEY = Symbol('airlock.startedAt');
/** The raw body bytes, kept for the audit digest. */
export const RAW_BODY_KEY = Symbol('airlock.rawBody');

export type AirlockRequest = FastifyRequest & {
  [MODEL_KEY]?: string;
  [RAW_BODY_KEY]?: Buffer;
  [STARTED_KEY]?: number;
};

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
  endUser = '',
): Promise<RequestContext> {
  (request as AirlockRequest)[MODEL_KEY] = model;
  const authorization: Authorization = await auth.authorize({
    credential: bearer(request),
    requestId: request.id,
    action,
    model,
    clientAddress: request.ip,
    userAgent: request.headers['user-agent'] ?? '',
    requestBody: rawBody(request),
    endUser,
  });
  void reply.headers({ ...authorization.rateLimitHeaders, ...authorization.auditHeaders });
  if (authorization.allowedModels && model && !authorization.allowedModels.includes(model)) {
    throw new ApiError(
      403,
      'permission_error',
      `You may not use the model '${model}'.`,
      'model_not_allowed',
      'model',
    );
  }
  const abort = new AbortController();
  let gone = false;
  // A client that goes away cancels its worker calls (and so frees their slots).
  reply.raw.once('close', () => {
    if (reply.raw.writableFinished) return;
    gone = true;
    abort.abort();
  });
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
