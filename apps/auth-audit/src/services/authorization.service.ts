import { status } from '@grpc/grpc-js';
import type { audit } from '@airlock/contracts';
import { AUTHENTICATION_DENIALS, type Denial } from '../auth/principal.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { AuditAppender } from '../audit/audit-appender.js';
import type { AuthorizeDecision, AuthorizeOp } from '../authorization/batch-decisions.js';
import { Observable } from 'rxjs';
import { AUTHORIZE_ACTIONS, type AuthorizeActionKey } from '../authorization/actions.js';
import type { RateLimitView } from '../quota/quota-ledger.js';
import { AuthAuditError, invalidArgument } from '../errors.js';
import type { ReceiptSigner } from '../audit/receipts.js';
import type { AuthAuditMetrics } from '../metrics/auth-audit-metrics.js';
import { captureToContract, denialToContract, principalToContract } from '../grpc/contract-mapping.js';
import { body, count, durationMicros, modelDigests, requireRequestId, text } from '../validation.js';
import { emptyDraft } from '../audit/audit-record.js';
import type { AuthAuditDb } from '../database/database.js';

/** Fields a client controls reach the record stored escaped or cut (with a flag), never refused. */
const MAX_CLIENT_FIELD = 64 * 1024;
const clientField = (value: string | undefined, field: string) => {
  const result = value ?? '';
  if (result.length > MAX_CLIENT_FIELD) throw invalidArgument(`${field} is longer than ${MAX_CLIENT_FIELD}`);
  return result;
};

export interface AuthorizationOptions {
  /** An allowed request without a completion after this long is closed as interrupted. */
  defaultLeaseSeconds: number;
}

const COMPLETE_OUTCOMES: Partial<Record<audit.Outcome, 'succeeded' | 'failed' | 'cancelled'>> = {
  OUTCOME_SUCCEEDED: 'succeeded',
  OUTCOME_FAILED: 'failed',
  OUTCOME_CANCELLED: 'cancelled',
};

const NO_RATE_LIMIT: RateLimitView = {
  requestsLimit: 0,
  requestsRemaining: 0,
  requestsResetSeconds: 0,
  tokensLimit: 0,
  tokensRemaining: 0,
  tokensResetSeconds: 0,
};

/** The gateway's hot path: Authorize before a request, Complete after it. */
export class AuthorizationService {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly appender: AuditAppender,
    private readonly metrics: AuthAuditMetrics,
    private readonly receipts: ReceiptSigner,
    /** Why inference is refused while the checkpoint signer is halted (undefined: admitting). */
    private readonly signerHalted: () => string | undefined,
    private readonly db: AuthAuditDb,
    private readonly options: AuthorizationOptions = { defaultLeaseSeconds: 900 },
  ) {}

  async authorize(request: audit.AuthorizeRequest): Promise<audit.AuthorizeResponse> {
    return this.respond(await this.appender.authorize(await this.authorizeOp(request)));
  }

  /**
   * Authorize answering twice (see the contract): an allowed request's decision before its record commits,
   * then the recorded answer. A commit that fails after the decision ends the stream with its error.
   */
  streamingAuthorize(request: audit.StreamingAuthorizeRequest): Observable<audit.StreamingAuthorizeResponse> {
    return new Observable((subscriber) => {
      this.authorizeOp(request.request ?? ({} as audit.AuthorizeRequest))
        .then((op) =>
          this.appender.authorize(op, (decision) => {
            if (decision.allowed) subscriber.next({ authorization: this.answer(decision), recorded: false });
          }),
        )
        .then(
          (decision) => {
            subscriber.next({ authorization: this.respond(decision), recorded: true });
            subscriber.complete();
          },
          (error: unknown) => subscriber.error(error),
        );
    });
  }

  /** The validated op of an Authorize; refuses (fail closed) while the checkpoint signer is halted. */
  private async authorizeOp(request: audit.AuthorizeRequest): Promise<AuthorizeOp> {
    const halted = this.signerHalted();
    if (halted) {
      // Fail closed: the log no longer extends what was witnessed; no inference until an operator acts.
      throw new AuthAuditError(
        status.UNAVAILABLE,
        'audit log integrity check failed; inference is stopped',
        'audit_integrity',
      );
    }
    const action = AUTHORIZE_ACTIONS[request.action as AuthorizeActionKey];
    if (!action) throw invalidArgument(`action must be one of ${Object.keys(AUTHORIZE_ACTIONS).join(', ')}`);
    const op: AuthorizeOp = {
      type: 'authorize' as const,
      action,
      requestId: requireRequestId(request.requestId),
      model: clientField(request.model, 'model'),
      clientAddress: clientField(request.clientAddress, 'client_address'),
      userAgent: clientField(request.userAgent, 'user_agent'),
      clientRequestId: clientField(request.clientRequestId, 'client_request_id'),
      endUser: text(request.endUser, 'end_user', 256),
      requestBody: body(request.requestBody, 'request_body'),
      reserveTokens: count(request.reserveTokens, 'reserve_tokens'),
      leaseMs:
        (count(request.leaseSeconds, 'lease_seconds', 86_400) || this.options.defaultLeaseSeconds) * 1000,
      credential: await this.authenticator.present(request.credential),
    };
    if (action.needsModel && op.model === '') throw invalidArgument('model is required');
    return op;
  }

  /** The committed decision, counted once. */
  private respond(decision: AuthorizeDecision): audit.AuthorizeResponse {
    this.metrics.decisions.inc({ outcome: decision.allowed ? 'allowed' : 'denied' });
    if (decision.denial) this.metrics.authFailures.inc({ reason: decision.denial.code });
    return this.answer(decision);
  }

  private answer(decision: AuthorizeDecision): audit.AuthorizeResponse {
    return {
      allowed: decision.allowed,
      denialReason: decision.denial ? denialToContract(decision.denial.code) : 'DENIAL_REASON_UNSPECIFIED',
      grpcStatus: decision.denial ? grpcStatusOf(decision.denial) : status.OK,
      message: decision.denial?.message ?? '',
      principal: decision.principal ? principalToContract(decision.principal) : null,
      rateLimit: decision.rateLimit ?? NO_RATE_LIMIT,
      retryAfterSeconds: decision.denial?.retryAfterSeconds ?? 0,
      auditSequence: decision.sequence,
      auditReceipt: decision.recordHash
        ? this.receipts.receipt({ ...decision, recordHash: decision.recordHash })
        : '',
      allowedModels: decision.allowedModels,
      allModels: decision.allModels,
      contentCapture: decision.contentCapture
        ? captureToContract(decision.contentCapture)
        : 'CONTENT_CAPTURE_UNSPECIFIED',
    };
  }

  async complete(request: audit.CompleteRequest): Promise<audit.CompleteResponse> {
    const outcome = COMPLETE_OUTCOMES[request.outcome];
    if (!outcome)
      throw invalidArgument('outcome must be OUTCOME_SUCCEEDED, OUTCOME_FAILED or OUTCOME_CANCELLED');
    const result = await this.appender.complete({
      type: 'complete',
      requestId: requireRequestId(request.requestId),
      outcome,
      statusCode: count(request.statusCode, 'status_code', 999),
      errorClass: text(request.errorClass, 'error_class', 128),
      promptTokens: count(request.promptTokens, 'prompt_tokens'),
      completionTokens: count(request.completionTokens, 'completion_tokens'),
      cachedTokens: count(request.cachedTokens, 'cached_tokens'),
      latencyUs: durationMicros(request.latencyMs, 'latency_ms'),
      ttftUs: durationMicros(request.timeToFirstTokenMs, 'time_to_first_token_ms'),
      worker: text(request.worker, 'worker', 256),
      responseBody: body(request.responseBody, 'response_body'),
      responseBodyBytes: count(request.responseBodyBytes, 'response_body_bytes'),
      modelSha256: modelDigests(request.modelSha256, 'model_sha256'),
      modelSigner: text(request.modelSigner, 'model_signer', 2048),
    });
    return { auditSequence: result.sequence };
  }

  /** A refusal the gateway made before Authorize (or without it): recorded, bounded per source. */
  async recordRefusal(request: audit.RecordRefusalRequest): Promise<audit.RecordRefusalResponse> {
    const result = await this.appender.record({
      type: 'record',
      refusalSource: clientField(request.clientAddress, 'client_address'),
      draft: {
        ...emptyDraft(),
        kind: 'request',
        request_id: requireRequestId(request.requestId),
        client_request_id: clientField(request.clientRequestId, 'client_request_id'),
        action: clientField(request.action, 'action') || 'http',
        model: clientField(request.model, 'model'),
        client_address: clientField(request.clientAddress, 'client_address'),
        user_agent: clientField(request.userAgent, 'user_agent'),
        outcome: 'denied',
        status_code: count(request.statusCode, 'status_code', 999),
        error_class: clientField(request.errorClass, 'error_class') || 'refused',
        content_capture: 'none',
      },
    });
    this.metrics.decisions.inc({ outcome: 'denied' });
    if (result.sequence === 0) this.metrics.refusalsAggregated.inc();
    return { auditSequence: result.sequence };
  }

  /** A worker's usage of one generation: counted once, with the request's completion or after it. */
  async reportUsage(request: audit.ReportUsageRequest): Promise<audit.ReportUsageResponse> {
    await this.appender.reportUsage({
      type: 'usage',
      report: {
        requestId: requireRequestId(request.requestId),
        generationId: requireRequestId(request.generationId, 'generation_id'),
        worker: text(request.worker, 'worker', 256),
        promptTokens: count(request.promptTokens, 'prompt_tokens'),
        completionTokens: count(request.completionTokens, 'completion_tokens'),
      },
    });
    return {};
  }
}

function grpcStatusOf(denial: Denial): number {
  if (AUTHENTICATION_DENIALS.has(denial.code)) return status.UNAUTHENTICATED;
  if (denial.code.startsWith('rate_limited') || denial.code === 'budget_exhausted')
    return status.RESOURCE_EXHAUSTED;
  return status.PERMISSION_DENIED;
}
