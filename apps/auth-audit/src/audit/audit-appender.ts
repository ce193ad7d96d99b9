import type { Logger } from '@airlock/telemetry';
import type { AuthAuditDb } from '../database/database.js';
import { asServiceError, AuthAuditError, DatabaseUnavailableError } from '../errors.js';
import type { AuthAuditMetrics } from '../metrics/auth-audit-metrics.js';
import {
  runBatch,
  type AuthorizeDecision,
  type AuthorizeOp,
  type BatchOp,
  type BatchOptions,
  type BatchResult,
  type CompleteOp,
  type CompleteResult,
  type InterruptOp,
  type RecordOp,
  type UsageOp,
} from '../authorization/batch-decisions.js';
import type { ContentSealer } from './content-sealer.js';

/** The kind of record each op appends (for the records metric). */
const RECORD_KIND_OF: Record<BatchOp['type'], string> = {
  authorize: 'request',
  record: 'request',
  complete: 'completion',
  interrupt: 'completion',
  usage: 'usage',
};

interface Pending {
  op: BatchOp;
  resolve: (result: BatchResult) => void;
  reject: (error: unknown) => void;
  /** Told an Authorize's decision once, before its record commits (cleared when told). */
  onDecided?: (decision: AuthorizeDecision) => void;
}

export interface AuditAppenderOptions {
  maxBatchSize: number;
  /**
   * Batches in flight at once. Two let the next batch do its lookups and quota work while the previous one
   * waits for its commit; they still append in turn (the chain-head lock), so the chain stays ordered.
   */
  maxConcurrentBatches?: number;
  /** Told the chain head after every committed batch (drives "every N records" checkpoints). */
  onCommitted?: (headSequence: number) => void;
  /** The time quota windows and records use; tests pin it so that no minute boundary can intervene. */
  clock?: () => Date;
  /** Reservations, leases and the refusal limiter the batch decisions use. */
  batchOptions?: BatchOptions;
}

/**
 * Group commit for Authorize and Complete. Operations that arrive while a batch is committing wait and go
 * together in the next one: one transaction, one chain-head lock, one multi-row insert. A caller's promise
 * settles only after its batch has committed. If the transaction fails for a reason other than the
 * database being unreachable, each op is committed on its own, so one bad input fails only its own caller.
 */
export class AuditAppender {
  private queue: Pending[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private startScheduled = false;

  constructor(
    private readonly db: AuthAuditDb,
    private readonly sealer: ContentSealer,
    private readonly metrics: AuthAuditMetrics,
    private readonly logger: Logger,
    private readonly options: AuditAppenderOptions,
  ) {}

  /**
   * Decides and records one Authorize; settles once its record has committed. `onDecided`, when given, is
   * told the decision as soon as its batch has made it, before the commit: work may start on it, but
   * nothing may be released until this promise resolves (a failed commit rejects it after the decision).
   */
  authorize(op: AuthorizeOp, onDecided?: (decision: AuthorizeDecision) => void): Promise<AuthorizeDecision> {
    return this.submit(op, onDecided) as Promise<AuthorizeDecision>;
  }

  complete(op: CompleteOp): Promise<CompleteResult> {
    return this.submit(op) as Promise<CompleteResult>;
  }

  /** A record decided outside the batch (a refusal, an aggregate); sequence 0 when it was aggregated. */
  record(op: RecordOp): Promise<CompleteResult> {
    return this.submit(op) as Promise<CompleteResult>;
  }

  /** Closes an open request whose lease expired, with what is known of it. */
  interrupt(op: InterruptOp): Promise<CompleteResult> {
    return this.submit(op) as Promise<CompleteResult>;
  }

  /** A worker's usage of one generation; appends a usage record only when it raises a closed request's. */
  reportUsage(op: UsageOp): Promise<CompleteResult> {
    return this.submit(op) as Promise<CompleteResult>;
  }

  /** Stops taking work and waits for the batches in flight. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.inFlight.size > 0 || this.startScheduled) {
      if (this.startScheduled) await new Promise((resolve) => setImmediate(resolve));
      else await Promise.all(this.inFlight);
    }
  }

  private submit(op: BatchOp, onDecided?: Pending['onDecided']): Promise<BatchResult> {
    if (this.closed) return Promise.reject(new DatabaseUnavailableError());
    return new Promise<BatchResult>((resolve, reject) => {
      this.queue.push({ op, resolve, reject, onDecided });
      this.startBatches();
    }).then((result) => {
      if (result instanceof AuthAuditError) throw result;
      return result;
    });
  }

  /**
   * Starts the next batch one event-loop turn later, so that every request already read from the sockets
   * joins it. Without the turn, an in-process database (PGlite runs a whole transaction without returning to
   * the event loop) would commit one op per transaction: nothing can arrive while it runs.
   */
  private startBatches(): void {
    if (this.startScheduled) return;
    this.startScheduled = true;
    setImmediate(() => {
      this.startScheduled = false;
      this.startBatchesNow();
    });
  }

  /** Starts a batch with everything queued, while fewer than the allowed number are in flight. */
  private startBatchesNow(): void {
    while (this.queue.length > 0 && this.inFlight.size < (this.options.maxConcurrentBatches ?? 1)) {
      const batch = this.queue.splice(0, this.options.maxBatchSize);
      const running: Promise<void> = this.commit(batch).finally(() => {
        this.inFlight.delete(running);
        this.startBatches();
      });
      this.inFlight.add(running);
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    try {
      await this.commitTogether(batch);
    } catch (error) {
      const failure = asServiceError(error);
      const reason = failure instanceof DatabaseUnavailableError ? 'database_unavailable' : 'error';
      this.metrics.batchFailures.inc({ reason });
      // Class and code only: a driver message could quote parameters.
      this.logger.error(
        {
          batchSize: batch.length,
          errorClass: (error as Error)?.constructor?.name,
          code: (error as { code?: string })?.code,
        },
        'audit batch rolled back',
      );
      if (failure instanceof DatabaseUnavailableError || batch.length === 1) {
        for (const pending of batch) pending.reject(failure);
        return;
      }
      // One op's record failed the shared transaction: commit each alone, so only that one fails.
      this.metrics.batchFallbacks.inc();
      for (const pending of batch) {
        try {
          await this.commitTogether([pending]);
        } catch (single) {
          this.metrics.batchFailures.inc({ reason: 'single' });
          pending.reject(asServiceError(single));
        }
      }
    }
  }

  /** One transaction for the whole batch; settles every caller's promise only once it has committed. */
  private async commitTogether(batch: Pending[]): Promise<void> {
    const stopTimer = this.metrics.appendSeconds.startTimer();
    const now = this.options.clock?.() ?? new Date();
    const results = await this.db.transaction().execute((trx) =>
      runBatch(
        trx,
        batch.map((pending) => pending.op),
        this.sealer,
        now,
        this.options.batchOptions,
        (index, decision) => tellDecision(batch[index], decision),
      ),
    );
    stopTimer();
    this.metrics.batchSize.observe(batch.length);
    let head = 0;
    results.forEach((result, index) => {
      if (!(result instanceof AuthAuditError)) {
        head = Math.max(head, result.sequence);
        if (result.sequence > 0) this.metrics.records.inc({ kind: RECORD_KIND_OF[batch[index].op.type] });
      }
      batch[index].resolve(result);
    });
    if (head > 0) {
      this.metrics.chainHead.set(head);
      this.options.onCommitted?.(head);
    }
  }
}

/** An early decision is told once: a batch retried op by op decides again, and its commit tells the rest. */
function tellDecision(pending: Pending, decision: AuthorizeDecision): void {
  const onDecided = pending.onDecided;
  pending.onDecided = undefined;
  onDecided?.(decision);
}
