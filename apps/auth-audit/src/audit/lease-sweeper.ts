import type { Logger } from '@airlock/telemetry';
import type { AuthAuditDb } from '../database/database.js';
import type { AuthAuditMetrics } from '../metrics/auth-audit-metrics.js';
import type { AuditAppender } from './audit-appender.js';
import { openRequestsRepository } from './open-requests.repository.js';

/**
 * How long a closed request's bookkeeping (what it was charged) and its workers' reports are kept: a
 * worker's report later than this is no longer charged. Workers give up on a report well before (an hour).
 */
export const CLOSED_RETENTION_MS = 24 * 3600 * 1000;

export interface LeaseSweeperOptions {
  intervalMs: number;
  /** Open requests closed per sweep at most; the next sweep takes the rest. */
  batchSize?: number;
  clock?: () => Date;
}

/**
 * Every allowed request ends in exactly one completion record, even when its gateway is killed: an
 * open request whose lease ran out (the gateway's request timeout plus a margin) is closed as
 * `interrupted`, with the usage its workers reported charged. Runs on every replica; the open request's
 * row lock in the batch makes two sweepers close it once.
 */
export class LeaseSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly db: AuthAuditDb,
    private readonly appender: AuditAppender,
    private readonly metrics: AuthAuditMetrics,
    private readonly logger: Logger,
    private readonly options: LeaseSweeperOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.sweepNow().catch((error: unknown) =>
        this.logger.warn(
          { errorClass: (error as Error)?.constructor?.name },
          'lease sweep failed; will retry',
        ),
      );
    }, this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** Closes expired open requests now; returns how many it closed. */
  sweepNow(): Promise<number> {
    this.running ??= this.sweep().finally(() => (this.running = undefined));
    return this.running;
  }

  private async sweep(): Promise<number> {
    const now = this.options.clock?.() ?? new Date();
    await openRequestsRepository.prune(
      this.db,
      new Date(now.getTime() - CLOSED_RETENTION_MS),
      this.options.batchSize ?? 500,
    );
    const expired = await openRequestsRepository.expired(this.db, now, this.options.batchSize ?? 500);
    if (expired.length === 0) return 0;
    const results = await Promise.all(
      expired.map((requestId) => this.appender.interrupt({ type: 'interrupt', requestId })),
    );
    const closed = results.filter((result) => result.sequence > 0).length;
    this.metrics.interruptedRequests.inc(closed);
    this.logger.warn({ closed }, 'closed requests whose gateway never reported their end');
    return closed;
  }
}
