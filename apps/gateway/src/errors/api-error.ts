/** OpenAI error types; the SDKs pick their exception class from the HTTP status, the type is for people. */
export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'service_unavailable';

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

/**
 * An error the client is meant to see: status, OpenAI-shaped body and extra headers (Retry-After).
 * Anything thrown that is not an ApiError becomes a plain 500 without internals.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toBody(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  static badRequest(message: string, param: string | null = null, code = 'invalid_request'): ApiError {
    return new ApiError(400, 'invalid_request_error', message, code, param);
  }

  static unsupported(param: string): ApiError {
    return new ApiError(
      400,
      'invalid_request_error',
      `Parameter '${param}' is not supported by Airlock.`,
      'unsupported_parameter',
      param,
    );
  }

  static unauthenticated(message = 'Missing or invalid API key or token.'): ApiError {
    return new ApiError(401, 'authentication_error', message, 'invalid_api_key');
  }

  static forbidden(message: string): ApiError {
    return new ApiError(403, 'permission_error', message, 'permission_denied');
  }

  static modelNotFound(model: string): ApiError {
    return new ApiError(
      404,
      'not_found_error',
      `The model '${model}' does not exist.`,
      'model_not_found',
      'model',
    );
  }

  static notFound(message: string): ApiError {
    return new ApiError(404, 'not_found_error', message, 'not_found');
  }

  static rateLimited(message: string, retryAfterSeconds: number, code = 'rate_limit_exceeded'): ApiError {
    return new ApiError(429, 'rate_limit_error', message, code, null, {
      'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))),
    });
  }

  static unavailable(message: string, code = 'service_unavailable', retryAfterSeconds?: number): ApiError {
    const headers: Record<string, string> =
      retryAfterSeconds === undefined
        ? {}
        : { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) };
    return new ApiError(503, 'service_unavailable', message, code, null, headers);
  }

  static internal(message = 'The server had an error while processing your request.'): ApiError {
    return new ApiError(500, 'server_error', message, 'internal_error');
  }
}
