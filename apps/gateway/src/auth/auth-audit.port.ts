/**
 * What the gateway needs from auth-audit, in the gateway's own terms. The gRPC adapter maps these onto
 * airlock.audit.v1; tests of the HTTP layer run against the real service.
 */
export type InferenceAction =
  | 'chat.completions'
  | 'completions'
  | 'embeddings'
  | 'responses'
  | 'responses.get'
  | 'responses.delete'
  | 'models.list'
  | 'models.manage'
  | 'console.sign_in';

/** The tenant's content capture mode: what the audit log (and the response store) may keep. */
export type ContentCaptureMode = 'none' | 'digest' | 'full';

export interface AuthorizeInput {
  credential: string;
  requestId: string;
  action: InferenceAction;
  /** Empty for actions not bound to one model (listing models). */
  model: string;
  clientAddress: string;
  userAgent: string;
  /** The body as received, for the tenant's content capture (digest or encrypted); never logged. */
  requestBody: Buffer;
  /** OpenAI's safety_identifier / user: the application's end user, for the audit record. */
  endUser?: string;
  /** The client's own x-request-id (requestId is the gateway's). */
  clientRequestId: string;
  /** Tokens to reserve against budgets until the completion settles them. */
  reserveTokens: number;
}

/** A request the gateway refused before (or without) Authorize: still recorded. */
export interface RefusalRecord {
  requestId: string;
  clientRequestId: string;
  action: string;
  model: string;
  clientAddress: string;
  userAgent: string;
  statusCode: number;
  errorClass: string;
}

export interface Authorization {
  principal: string;
  tenant: string;
  role: string;
  /** The key's name or the token's subject name, and whether it spans all tenants (the console shows both). */
  principalName?: string;
  global?: boolean;
  /** Models the caller may use, null for all: /v1/models lists only these. */
  allowedModels: string[] | null;
  /** OpenAI-style x-ratelimit-* headers computed from the quota answer. */
  rateLimitHeaders: Record<string, string>;
  /** x-airlock-audit-sequence and x-airlock-audit-receipt: the client's proof of its request record. */
  auditHeaders: Record<string, string>;
  /** Responses API answers are stored only under `full`. */
  contentCapture: ContentCaptureMode;
}

/**
 * Authorize's early answer: the decision, made before the request record is durable. Work may start on
 * it (the worker's prefill and generation); nothing of the request may reach the client before `recorded`
 * resolves.
 */
export interface EarlyAuthorization {
  /** The decision; its auditHeaders are empty (no sequence or receipt yet). */
  decision: Authorization;
  /**
   * Resolves with the recorded authorization (audit headers set) once the request record is durable;
   * rejects with the ApiError the client must get instead (503 audit_unavailable or authorize_timeout,
   * or a refusal) when the commit failed: the request then has no record and files no completion.
   */
  recorded: Promise<Authorization>;
}

export type CompletionOutcome = 'success' | 'error' | 'cancelled';

export interface CompletionRecord {
  requestId: string;
  outcome: CompletionOutcome;
  statusCode: number;
  errorClass: string;
  model: string;
  worker: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  latencyMs: number;
  timeToFirstTokenMs: number;
  /** The response as returned (for streams, the assembled answer); kept per the tenant's capture mode. */
  responseBody: Buffer;
  /** Set when responseBody is only the first part of a response larger than the audit limit. */
  responseBodyBytes?: number;
  /** The weights that answered (the workers' ModelProvenance): file SHA-256s and signers, comma-separated. */
  modelSha256?: string;
  modelSigner?: string;
}

export interface AuthAuditClient extends AuditAdminClient, ResponseStoreClient {
  /**
   * Resolves once the request record is durable. Throws ApiError: 401/403/429 for refusals (recorded),
   * 503 when auth-audit cannot answer (fail closed).
   */
  authorize(input: AuthorizeInput): Promise<Authorization>;
  /** Resolves at the decision, before the record is durable (see EarlyAuthorization); throws as authorize. */
  authorizeEarly(input: AuthorizeInput): Promise<EarlyAuthorization>;
  /** Resolves once committed; rejects on any failure (the recorder retries). */
  complete(record: CompletionRecord): Promise<void>;
  /** Resolves once committed (or counted into its source's aggregate). */
  recordRefusal(record: RefusalRecord): Promise<void>;
  close(): void;
}

/** DI token of the AuthAuditClient. */
export const AUTH_AUDIT = Symbol('AUTH_AUDIT');

/** Admin RPCs of airlock.audit.v1, called with the caller's own credential (auth-audit checks roles). */
export interface AuditAdminClient {
  admin<Res>(method: string, request: object): Promise<Res>;
  adminStream<Res>(method: string, request: object, signal: AbortSignal): AsyncIterable<Res>;
}

/** A stored Responses API answer: the Response object and the conversation that was its input. */
export interface StoredResponse {
  response: Buffer;
  inputItems: Buffer;
}

/**
 * The response store in auth-audit, called with the caller's own credential (auth-audit scopes every
 * response to its tenant and principal). Throws ApiError: 404 for a response that is not the caller's,
 * 400 `store_not_allowed` where the tenant's content capture is not `full`, 503 when unreachable.
 */
export interface ResponseStoreClient {
  storeResponse(
    credential: string,
    requestId: string,
    responseId: string,
    stored: StoredResponse,
  ): Promise<void>;
  getStoredResponse(credential: string, responseId: string): Promise<StoredResponse>;
  deleteStoredResponse(credential: string, responseId: string): Promise<void>;
}
