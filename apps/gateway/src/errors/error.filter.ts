import { Catch, HttpException, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '@airlock/telemetry';
import type { RefusalRecord } from '../auth/auth-audit.port.js';
import { authorizeAttempted, clientRequestId, modelOf, recordFailure } from '../http/http-context.js';
import { ApiError } from './api-error.js';

/** Framework errors (routing, body parsing, limits) → the OpenAI error they mean. */
const BY_STATUS: Record<number, (message: string) => ApiError> = {
  400: (m) => ApiError.badRequest(m || 'The request could not be parsed.'),
  404: () => ApiError.notFound('Unknown route.'),
  405: () => new ApiError(405, 'invalid_request_error', 'Method not allowed.', 'method_not_allowed'),
  413: () =>
    new ApiError(
      413,
      'invalid_request_error',
      'The request body is larger than the configured limit.',
      'body_too_large',
    ),
  415: () =>
    new ApiError(
      415,
      'invalid_request_error',
      "Send the body as 'application/json'.",
      'unsupported_media_type',
    ),
  431: () =>
    new ApiError(
      431,
      'invalid_request_error',
      'The request headers are larger than the configured limit.',
      'headers_too_large',
    ),
};

/** Turns anything thrown into an ApiError; unknown errors become a plain 500 with no internals. */
export function toApiError(exception: unknown): ApiError {
  if (exception instanceof ApiError) return exception;
  const status =
    exception instanceof HttpException
      ? exception.getStatus()
      : (exception as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && BY_STATUS[status]) {
    const message =
      exception instanceof SyntaxError || status === 400 ? 'The request body is not valid JSON.' : '';
    return BY_STATUS[status](message);
  }
  return ApiError.internal();
}

/** The one error filter: every failure leaves as `{"error": {message, type, param, code}}`. */
@Catch()
export class OpenAiErrorFilter implements ExceptionFilter {
  constructor(
    private readonly logger: Logger,
    /** Files the record of a request refused before Authorize could record it. */
    private readonly recordRefusal: (refusal: RefusalRecord) => void = () => undefined,
  ) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const request = http.getRequest<FastifyRequest>();
    const apiError = toApiError(exception);
    if (!authorizeAttempted(request)) {
      // Bad JSON, bad parameters, unknown routes, bodies over the limit, 500s: recorded all the same.
      this.recordRefusal({
        requestId: request.id,
        clientRequestId: clientRequestId(request),
        action: routeAction(request),
        model: modelOf(request),
        clientAddress: request.ip,
        userAgent: request.headers['user-agent'] ?? '',
        statusCode: apiError.status,
        errorClass: apiError.code ?? apiError.type,
      });
    }
    if (apiError.status >= 500 && !(exception instanceof ApiError)) {
      // Message and stack only: request bodies never reach the log.
      this.logger.error(
        {
          requestId: request.id,
          err: { message: (exception as Error)?.message, stack: (exception as Error)?.stack },
        },
        'unhandled error',
      );
    }
    if (reply.raw.headersSent) {
      reply.raw.end();
      return;
    }
    if (reply.sent) {
      // A stream hijacks the reply before its first event; failing before that event (queue full, no
      // worker, timeout) it still owes the client a real status, not an empty 200 — once the request
      // record is durable (the onSend gate does not see hijacked replies), else the record's 503.
      void recordFailure(request).then((failure) => {
        const answer = failure ?? apiError;
        reply.raw
          .writeHead(answer.status, {
            ...(reply.getHeaders() as OutgoingHttpHeaders),
            ...answer.headers,
            'content-type': 'application/json; charset=utf-8',
          })
          .end(JSON.stringify(answer.toBody()));
      });
      return;
    }
    void reply.status(apiError.status).headers(apiError.headers).send(apiError.toBody());
  }
}

/** The action a route stands for, as audit records name it ("http" for anything else). */
function routeAction(request: FastifyRequest): string {
  const route = request.routeOptions?.url ?? '';
  if (route === '/v1/chat/completions') return 'chat.completions';
  if (route === '/v1/completions') return 'completions';
  if (route === '/v1/embeddings') return 'embeddings';
  if (route.startsWith('/v1/models')) return 'models.list';
  if (route.startsWith('/admin/')) return 'admin';
  return 'http';
}
