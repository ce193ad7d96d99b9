import type { ModelProvenance, Usage } from '@airlock/contracts';
import type { Authorization, CompletionOutcome } from '../auth/auth-audit.port.js';
import type { CompletionRecorder } from '../auth/completion-recorder.js';
import type { GatewayMetrics } from '../metrics.js';

/** What one authorised inference request carries through the gateway. */
export interface RequestContext {
  requestId: string;
  authorization: Authorization;
  /** Aborted when the client goes away (or the request fails): cancels every worker call. */
  abort: AbortController;
  /** True once the client closed the connection before the response was complete. */
  clientGone: () => boolean;
  startedAt: number;
  route: string;
  /**
   * Resolves once the request record is durable; rejects (with the 503 the client gets) when its commit
   * failed, after aborting `abort`. Nothing of the answer may reach the client before it resolves.
   */
  recorded: Promise<void>;
}

/**
 * One audited inference exchange: counts tokens and timings as they flow, and on `finish` files the
 * completion record (retried until committed) and the metrics. Finishing twice is a no-op. The completion
 * is filed only once the request record is durable: a request whose record failed to commit has no
 * record for a completion to close, and released nothing.
 */
export class Exchange {
  readonly usage: Usage = { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
  private workers = new Set<string>();
  private firstTokenAt = 0;
  /** Pieces streamed so far: the completion token count of a generation cancelled before its usage came. */
  private pieces = 0;
  private finishedGenerations = 0;
  private lastTokenAt = 0;
  private finished = false;
  /** The weights that answered, as the workers' finish events told them (one entry per distinct one). */
  private readonly answeredBy: ModelProvenance[] = [];
  /** The same from the serving workers' last status: stands in when no finish came (cancelled, failed). */
  private readonly servedBy: ModelProvenance[] = [];

  constructor(
    private readonly ctx: RequestContext,
    private readonly model: string,
    private readonly recorder: CompletionRecorder,
    private readonly metrics: GatewayMetrics,
  ) {
    metrics.inFlight.inc({ model });
  }

  /** A worker took the request; `model` is what its last status says of the weights it serves the model from. */
  onWorker = (address: string, model?: ModelProvenance | null): void => {
    this.workers.add(address);
    addProvenance(this.servedBy, model);
  };

  /** Called for every streamed piece of output. */
  onToken(): void {
    this.pieces++;
    const now = performance.now();
    if (this.firstTokenAt === 0) {
      this.firstTokenAt = now;
      this.metrics.timeToFirstToken.observe({ model: this.model }, (now - this.ctx.startedAt) / 1000);
    } else {
      this.metrics.interTokenLatency.observe({ model: this.model }, (now - this.lastTokenAt) / 1000);
    }
    this.lastTokenAt = now;
  }

  /**
   * A generation finished: its usage is in (counted pieces no longer stand in for it), and its worker said which
   * weights answered.
   */
  onFinish(model?: ModelProvenance | null): void {
    this.finishedGenerations++;
    addProvenance(this.answeredBy, model);
  }

  finish(statusCode: number, outcome: CompletionOutcome, errorClass = '', responseBody?: unknown): void {
    if (this.finished) return;
    this.finished = true;
    const latencyMs = performance.now() - this.ctx.startedAt;
    const tenant = this.ctx.authorization.tenant;
    if (this.finishedGenerations === 0 && this.usage.completionTokens === 0)
      this.usage.completionTokens = this.pieces;
    this.metrics.inFlight.dec({ model: this.model });
    this.metrics.tokens.inc({ model: this.model, tenant, direction: 'in' }, this.usage.promptTokens);
    this.metrics.tokens.inc({ model: this.model, tenant, direction: 'out' }, this.usage.completionTokens);
    const models = this.answeredBy.length > 0 ? this.answeredBy : this.servedBy;
    const record = {
      requestId: this.ctx.requestId,
      outcome,
      statusCode,
      errorClass,
      model: this.model,
      worker: [...this.workers].join(','),
      promptTokens: this.usage.promptTokens,
      completionTokens: this.usage.completionTokens,
      cachedTokens: this.usage.cachedTokens,
      latencyMs,
      timeToFirstTokenMs: this.firstTokenAt === 0 ? 0 : this.firstTokenAt - this.ctx.startedAt,
      responseBody: Buffer.from(responseBody === undefined ? '' : JSON.stringify(responseBody)),
      // Position by position: the n-th digest was signed by the n-th signer ('' = unsigned).
      modelSha256: models.map((m) => m.sha256).join(','),
      modelSigner: models.map((m) => m.signer).join(','),
    };
    this.ctx.recorded.then(
      () => this.recorder.record(record),
      () => this.metrics.unrecordedRequests.inc({ model: this.model }),
    );
  }
}

function addProvenance(list: ModelProvenance[], model: ModelProvenance | null | undefined): void {
  if (!model?.sha256) return;
  if (!list.some((m) => m.sha256 === model.sha256 && m.signer === model.signer))
    list.push({ sha256: model.sha256, signer: model.signer });
}
