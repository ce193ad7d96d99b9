import { status } from '@grpc/grpc-js';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { audit } from '@airlock/contracts';
import type { Logger } from '@airlock/telemetry';

/** One generation's usage, as auth-audit's ReportUsage takes it. */
export type UsageReport = Required<
  Pick<audit.ReportUsageRequest, 'requestId' | 'generationId' | 'promptTokens' | 'completionTokens'>
>;

export interface UsageReporterOptions {
  /** Reports held at most; a new one beyond pushes out the oldest (counted as dropped, reason "full"). */
  maxPending: number;
  /** A report not delivered after this long is given up (reason "expired"): auth-audit keeps its books a day. */
  maxAgeMs: number;
  /** Reports in flight at once. */
  concurrency?: number;
  /** Backoff after a failed delivery: doubles from the first to the last, reset by a delivery. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  clock?: () => number;
}

/** Codes no retry can change: the report is dropped (reason "refused") and the metric tells. */
const NOT_RETRIED = new Set<number>([
  status.INVALID_ARGUMENT,
  status.PERMISSION_DENIED,
  status.UNAUTHENTICATED,
  status.UNIMPLEMENTED,
  status.NOT_FOUND,
]);

interface Pending {
  report: UsageReport;
  queuedAt: number;
}

/**
 * The worker's own account of the usage of each generation it ran, sent to auth-audit so that it survives
 * the gateway (killed mid-stream, or a client that cancelled before the usage reached it). Bounded: while
 * auth-audit is down, reports wait in a queue of at most `maxPending` and for at most `maxAgeMs`; delivery
 * resumes, oldest first, with a backoff that doubles while it fails.
 */
export class UsageReporter {
  private readonly queue: Pending[] = [];
  private inFlight = 0;
  private failures = 0;
  private retryAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private readonly pendingGauge: Gauge;
  private readonly delivered: Counter;
  private readonly dropped: Counter<'reason'>;

  constructor(
    private readonly send: ((report: audit.ReportUsageRequest) => Promise<void>) | undefined,
    private readonly workerId: string,
    registry: Registry,
    private readonly logger: Logger,
    private readonly options: UsageReporterOptions,
  ) {
    this.pendingGauge = new Gauge({
      name: 'airlock_worker_usage_reports_pending',
      help: 'Usage reports waiting to be delivered to auth-audit',
      registers: [registry],
      collect: () => this.pendingGauge.set(this.pending),
    });
    this.delivered = new Counter({
      name: 'airlock_worker_usage_reports_delivered_total',
      help: 'Usage reports auth-audit committed',
      registers: [registry],
    });
    this.dropped = new Counter({
      name: 'airlock_worker_usage_reports_dropped_total',
      help: 'Usage reports given up, by reason (full: queue bound; expired: too old; refused: not retryable)',
      labelNames: ['reason'],
      registers: [registry],
    });
  }

  /** Whether reports go anywhere (an auth-audit address is configured). */
  get enabled(): boolean {
    return this.send !== undefined;
  }

  /** Waiting or in flight. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  report(report: UsageReport): void {
    if (!this.send || this.closed || !report.requestId) return;
    if (this.pending >= this.options.maxPending) {
      this.drop('full');
      // The oldest waiting one goes; with every slot in flight, this one.
      if (this.queue.length === 0) return;
      this.queue.shift();
    }
    this.queue.push({ report, queuedAt: this.now() });
    this.pump();
  }

  /** Resolves once every report is delivered or given up, or after timeoutMs (false: some still pending). */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.pending === 0) return true;
    let timeout: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timeout = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([idle, late]);
    clearTimeout(timeout);
    return result;
  }

  /** Stops sending; what is still queued is lost (counted in the pending gauge until the process ends). */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  private pump(): void {
    if (this.closed || !this.send) return;
    const now = this.now();
    if (now < this.retryAt) {
      this.schedule(this.retryAt - now);
      return;
    }
    while (this.inFlight < (this.options.concurrency ?? 4) && this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (now - next.queuedAt > this.options.maxAgeMs) {
        this.drop('expired');
        continue;
      }
      this.inFlight++;
      // deliver() never rejects: every failure is counted or re-queued inside it.
      void this.deliver(next).finally(() => {
        this.inFlight--;
        this.pump();
        if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
    }
    if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async deliver(item: Pending): Promise<void> {
    try {
      await this.send!({ ...item.report, worker: this.workerId });
      this.delivered.inc();
      this.failures = 0;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code !== undefined && NOT_RETRIED.has(code)) {
        this.drop('refused');
        this.logger.warn({ requestId: item.report.requestId, code }, 'usage report refused by auth-audit');
        return;
      }
      // Back at the front: order is kept, and everything waits out the backoff (auth-audit is likely down).
      this.queue.unshift(item);
      this.failures++;
      const base = this.options.retryBaseMs ?? 200;
      const delay = Math.min(this.options.retryMaxMs ?? 30_000, base * 2 ** Math.min(this.failures - 1, 20));
      this.retryAt = this.now() + delay;
      if (this.failures === 1)
        this.logger.warn({ code, delayMs: delay }, 'usage reports not delivered; retrying');
    }
  }

  private schedule(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, ms);
    this.timer.unref();
  }

  private drop(reason: 'full' | 'expired' | 'refused'): void {
    this.dropped.inc({ reason });
  }

  private now(): number {
    return this.options.clock?.() ?? Date.now();
  }
}
