import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS, type audit } from '@airlock/contracts';
import type { Logger } from '@airlock/telemetry';
import { ApiError } from '../errors/api-error.js';
import { CHANNEL_OPTIONS, startCall } from '../grpc-calls.js';
import type {
  AuthAuditClient,
  Authorization,
  AuthorizeInput,
  CompletionOutcome,
  CompletionRecord,
  ContentCaptureMode,
  EarlyAuthorization,
  InferenceAction,
  StoredResponse,
  RefusalRecord,
} from './auth-audit.port.js';

type Callback<Res> = (error: grpc.ServiceError | null, response: Res) => void;
type UnaryMethod = (
  request: unknown,
  options: grpc.CallOptions,
  callback: Callback<unknown>,
) => grpc.ClientUnaryCall;
type StreamMethod = (request: unknown, options: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;
type AuditStub = grpc.Client & Record<string, UnaryMethod & StreamMethod>;

const ACTION: Record<InferenceAction, audit.Action> = {
  'chat.completions': 'ACTION_CHAT_COMPLETIONS',
  completions: 'ACTION_COMPLETIONS',
  embeddings: 'ACTION_EMBEDDINGS',
  responses: 'ACTION_RESPONSES',
  'responses.get': 'ACTION_GET_STORED_RESPONSE',
  'responses.delete': 'ACTION_DELETE_STORED_RESPONSE',
  'models.list': 'ACTION_LIST_MODELS',
  'models.manage': 'ACTION_MANAGE_MODELS',
  'console.sign_in': 'ACTION_CONSOLE_SIGN_IN',
};

const OUTCOME: Record<CompletionOutcome, audit.Outcome> = {
  success: 'OUTCOME_SUCCEEDED',
  error: 'OUTCOME_FAILED',
  cancelled: 'OUTCOME_CANCELLED',
};

/** gRPC status of an admin call (or of a refused Authorize) → the HTTP error the client sees. */
const FROM_GRPC: Record<number, (message: string, retryAfter: number) => ApiError> = {
  [grpc.status.UNAUTHENTICATED]: (m) => ApiError.unauthenticated(m || undefined),
  [grpc.status.PERMISSION_DENIED]: (m) => ApiError.forbidden(m || 'Not allowed.'),
  [grpc.status.RESOURCE_EXHAUSTED]: (m, retryAfter) =>
    ApiError.rateLimited(m || 'Rate limit reached.', retryAfter || 1),
  [grpc.status.INVALID_ARGUMENT]: (m) => ApiError.badRequest(m),
  [grpc.status.NOT_FOUND]: (m) => ApiError.notFound(m),
  [grpc.status.ALREADY_EXISTS]: (m) => new ApiError(409, 'invalid_request_error', m, 'conflict'),
  [grpc.status.FAILED_PRECONDITION]: (m) =>
    new ApiError(409, 'invalid_request_error', m, 'failed_precondition'),
};

const CAPTURE: Partial<Record<audit.ContentCapture, ContentCaptureMode>> = {
  CONTENT_CAPTURE_NONE: 'none',
  CONTENT_CAPTURE_DIGEST: 'digest',
  CONTENT_CAPTURE_FULL: 'full',
};

const UNAVAILABLE_MESSAGE = 'The authorization and audit service is unavailable; no request runs unaudited.';

let stubConstructor:
  (new (address: string, credentials: grpc.ChannelCredentials, options: object) => AuditStub) | null = null;

/** The auth-audit gRPC client: Authorize and Complete for inference, and the admin RPCs passed through. */
export class GrpcAuditClient implements AuthAuditClient {
  private readonly stub: AuditStub;

  constructor(
    address: string,
    private readonly timeoutMs = 10_000,
    credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    /** Seconds until auth-audit closes an allowed request without a completion as interrupted. */
    private readonly leaseSeconds = 0,
    /** Told why an Authorize failed (a 503 for its client): operators see the transport's reason. */
    private readonly logger?: Logger,
  ) {
    if (!stubConstructor) {
      const loaded = grpc.loadPackageDefinition(
        loadSync(AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS),
      ) as unknown as {
        airlock: { audit: { v1: { AuditService: NonNullable<typeof stubConstructor> } } };
      };
      stubConstructor = loaded.airlock.audit.v1.AuditService;
    }
    this.stub = new stubConstructor(address, credentials, CHANNEL_OPTIONS);
  }

  async authorize(input: AuthorizeInput): Promise<Authorization> {
    return (await this.authorizeEarly(input)).recorded;
  }

  /**
   * StreamingAuthorize: settles at the first answer, the decision (or a recorded refusal); `recorded`
   * settles at the second. Fail closed either way: whatever goes wrong, nothing is released without a
   * committed request record.
   */
  authorizeEarly(input: AuthorizeInput): Promise<EarlyAuthorization> {
    const request: audit.StreamingAuthorizeRequest = {
      request: {
        credential: input.credential,
        model: input.model,
        action: ACTION[input.action],
        requestId: input.requestId,
        clientAddress: input.clientAddress,
        userAgent: input.userAgent,
        requestBody: input.requestBody,
        endUser: input.endUser ?? '',
        clientRequestId: input.clientRequestId,
        reserveTokens: input.reserveTokens,
        leaseSeconds: this.leaseSeconds,
      },
    };
    return new Promise((resolveEarly, rejectEarly) => {
      let decided = false;
      let settleRecorded: { resolve: (a: Authorization) => void; reject: (e: ApiError) => void } | null =
        null;
      const recorded = new Promise<Authorization>((resolve, reject) => {
        settleRecorded = { resolve, reject };
      });
      // Its consumers attach their own handlers; a rejection nobody awaits must not crash the process.
      recorded.catch(() => undefined);
      /** Set once the recorded answer (or a failure) came: the stream's normal end is then nothing to tell. */
      let answered = false;
      const fail = (error: ApiError): void => {
        answered = true;
        if (decided) settleRecorded!.reject(error);
        else rejectEarly(error);
      };
      const call = startCall(
        () =>
          this.stub.StreamingAuthorize(request, {
            deadline: Date.now() + this.timeoutMs,
          }) as grpc.ClientReadableStream<audit.StreamingAuthorizeResponse>,
      );
      call.on('data', (message: audit.StreamingAuthorizeResponse) => {
        const response = message.authorization;
        if (!response) return;
        if (!message.recorded) {
          if (decided || !response.allowed) return;
          decided = true;
          resolveEarly({ decision: toAuthorization(response), recorded });
          return;
        }
        if (!response.allowed) return fail(refusal(response));
        const authorization = toAuthorization(response);
        if (!decided) {
          decided = true;
          resolveEarly({ decision: authorization, recorded });
        }
        answered = true;
        settleRecorded!.resolve(authorization);
      });
      call.on('error', (error: grpc.ServiceError) => {
        // A timeout is told apart: the record may still commit, and the gateway then files its outcome.
        const timedOut = error.code === grpc.status.DEADLINE_EXCEEDED;
        // The status and grpc-js's or auth-audit's own fixed text (neither quotes the request), cut short.
        this.logger?.warn(
          { grpcCode: error.code, details: String(error.details ?? '').slice(0, 160), decided },
          'Authorize failed: the client gets 503',
        );
        fail(
          ApiError.unavailable(UNAVAILABLE_MESSAGE, timedOut ? 'authorize_timeout' : 'audit_unavailable', 1),
        );
      });
      // A stream that ends without its recorded answer recorded nothing (settling twice is a no-op).
      call.on('end', () => {
        if (!answered) this.logger?.warn({ decided }, 'Authorize stream ended without its recorded answer');
        fail(ApiError.unavailable(UNAVAILABLE_MESSAGE, 'audit_unavailable', 1));
      });
    });
  }

  async storeResponse(
    credential: string,
    requestId: string,
    responseId: string,
    stored: StoredResponse,
  ): Promise<void> {
    const request: audit.StoreResponseRequest = {
      credential,
      requestId,
      responseId,
      responseJson: stored.response,
      inputItemsJson: stored.inputItems,
    };
    await this.storeCall('StoreResponse', request, responseId);
  }

  async getStoredResponse(credential: string, responseId: string): Promise<StoredResponse> {
    const request: audit.GetStoredResponseRequest = { credential, responseId };
    const response = await this.storeCall<audit.GetStoredResponseResponse>(
      'GetStoredResponse',
      request,
      responseId,
    );
    return { response: response.responseJson, inputItems: response.inputItemsJson };
  }

  async deleteStoredResponse(credential: string, responseId: string): Promise<void> {
    const request: audit.DeleteStoredResponseRequest = { credential, responseId };
    await this.storeCall('DeleteStoredResponse', request, responseId);
  }

  /** The store's answers in OpenAI's terms: a response that is not the caller's does not exist. */
  private async storeCall<Res>(method: string, request: object, responseId: string): Promise<Res> {
    try {
      return await this.unary<Res>(method, request);
    } catch (error) {
      const code = (error as Partial<grpc.ServiceError>).code;
      if (code === grpc.status.NOT_FOUND) {
        return Promise.reject(
          new ApiError(
            404,
            'invalid_request_error',
            `Response with id '${responseId}' not found.`,
            'not_found',
          ),
        );
      }
      if (code === grpc.status.FAILED_PRECONDITION) {
        return Promise.reject(
          ApiError.badRequest((error as grpc.ServiceError).details, 'store', 'store_not_allowed'),
        );
      }
      throw adminError(error);
    }
  }

  async complete(record: CompletionRecord): Promise<void> {
    const request: audit.CompleteRequest = {
      requestId: record.requestId,
      outcome: OUTCOME[record.outcome],
      statusCode: record.statusCode,
      errorClass: record.errorClass,
      promptTokens: record.promptTokens,
      completionTokens: record.completionTokens,
      cachedTokens: record.cachedTokens,
      latencyMs: record.latencyMs,
      timeToFirstTokenMs: record.timeToFirstTokenMs,
      worker: record.worker,
      responseBody: record.responseBody,
      responseBodyBytes: record.responseBodyBytes ?? 0,
      modelSha256: record.modelSha256 ?? '',
      modelSigner: record.modelSigner ?? '',
    };
    await this.unary('Complete', request);
  }

  async recordRefusal(record: RefusalRecord): Promise<void> {
    const request: audit.RecordRefusalRequest = { ...record };
    await this.unary('RecordRefusal', request);
  }

  /** An admin RPC: the caller's credential goes with it and auth-audit checks the role. */
  async admin<Res>(method: string, request: object): Promise<Res> {
    try {
      return await this.unary<Res>(method, request);
    } catch (error) {
      throw adminError(error);
    }
  }

  /** A server-streaming admin RPC (the audit export), as an async iterable of its messages. */
  adminStream<Res>(method: string, request: object, signal: AbortSignal): AsyncIterable<Res> {
    const call = startCall(() => this.stub[method](request, {}));
    signal.addEventListener('abort', () => call.cancel(), { once: true });
    return (async function* () {
      try {
        for await (const message of call) yield message as Res;
      } catch (error) {
        throw adminError(error);
      }
    })();
  }

  close(): void {
    this.stub.close();
  }

  private unary<Res>(method: string, request: unknown): Promise<Res> {
    return new Promise((resolve, reject) => {
      startCall(() =>
        this.stub[method](request, { deadline: Date.now() + this.timeoutMs }, (error, response) =>
          error ? reject(error) : resolve(response as Res),
        ),
      );
    });
  }
}

function toAuthorization(response: audit.AuthorizeResponse): Authorization {
  const principal = response.principal!;
  return {
    principal: principal.id,
    tenant: principal.tenant,
    role: principal.role,
    principalName: principal.name,
    global: principal.global,
    allowedModels: response.allModels ? null : response.allowedModels,
    rateLimitHeaders: rateLimitHeaders(response.rateLimit),
    auditHeaders: response.auditReceipt
      ? {
          'x-airlock-audit-sequence': String(response.auditSequence),
          'x-airlock-audit-receipt': response.auditReceipt,
        }
      : {},
    // An auth-audit without the field (older) keeps content as the digest: nothing is stored.
    contentCapture: CAPTURE[response.contentCapture] ?? 'digest',
  };
}

function refusal(response: audit.AuthorizeResponse): ApiError {
  const map = FROM_GRPC[response.grpcStatus] ?? FROM_GRPC[grpc.status.PERMISSION_DENIED];
  const error =
    response.denialReason === 'DENIAL_REASON_MODEL_FORBIDDEN'
      ? new ApiError(403, 'permission_error', response.message, 'model_not_allowed', 'model')
      : map(response.message, response.retryAfterSeconds);
  // As OpenAI does, a refusal still says how much quota is left (a 429 shows which limit was hit).
  Object.assign(error.headers, rateLimitHeaders(response.rateLimit));
  return error;
}

function adminError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const serviceError = error as Partial<grpc.ServiceError>;
  const map = typeof serviceError.code === 'number' ? FROM_GRPC[serviceError.code] : undefined;
  if (map) return map(serviceError.details ?? '', 1);
  if (serviceError.code === grpc.status.UNAVAILABLE || serviceError.code === grpc.status.DEADLINE_EXCEEDED) {
    return ApiError.unavailable(UNAVAILABLE_MESSAGE, 'audit_unavailable', 1);
  }
  return ApiError.internal();
}

/** OpenAI's x-ratelimit-* headers; a limit of 0 (unlimited) sends none. */
function rateLimitHeaders(limit: audit.RateLimit | null): Record<string, string> {
  const headers: Record<string, string> = {};
  if (!limit) return headers;
  if (limit.requestsLimit > 0) {
    headers['x-ratelimit-limit-requests'] = String(limit.requestsLimit);
    headers['x-ratelimit-remaining-requests'] = String(limit.requestsRemaining);
    headers['x-ratelimit-reset-requests'] = `${Math.ceil(limit.requestsResetSeconds)}s`;
  }
  if (limit.tokensLimit > 0) {
    headers['x-ratelimit-limit-tokens'] = String(limit.tokensLimit);
    headers['x-ratelimit-remaining-tokens'] = String(limit.tokensRemaining);
    headers['x-ratelimit-reset-tokens'] = `${Math.ceil(limit.tokensResetSeconds)}s`;
  }
  return headers;
}
