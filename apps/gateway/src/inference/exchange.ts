import type { Usage } from '@airlock/contracts';
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
}

/**
 * One audited inference exchange: counts tokens and timings as they flow, and on `finish` files the
 * completion record (retried until committed) and the metrics. Finishing twice is a no-op.
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

  constructor(
    private readonly ctx: RequestContext,
    private readonly model: string,
    private readonly recorder: CompletionRecorder,
    private readonly metrics: GatewayMetrics,
  ) {
    metrics.inFlight.inc({ model });
  }

  onWorker = (address: string): void => {
    this.workers.add(address);
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

  /** A generation reported its usage; counted pieces no longer stand in for it. */
  onUsage(): void {
    this.finishedGenerations++;
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
    this.recorder.record({
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
    });
  }
}
