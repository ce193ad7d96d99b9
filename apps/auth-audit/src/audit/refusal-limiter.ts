import { randomUUID } from 'node:crypto';
import { emptyDraft, type AuditRecordDraft } from './audit-record.js';

export interface RefusalLimiterOptions {
  windowMs: number;
  /** Refusals per source and window that still get a record each. */
  burst: number;
  /** Sources tracked at once; refusals from further sources share one overflow aggregate ("*"). */
  maxSources: number;
}

interface SourceWindow {
  startedAt: number;
  /** Refusals that got their own record in this window. */
  recorded: number;
  /** Refusals counted into the aggregate. */
  count: number;
  byClass: Map<string, number>;
}

/** The source of the overflow aggregate, when more addresses than `maxSources` refuse at once. */
export const OVERFLOW_SOURCE = '*';

/**
 * Bounds what unauthenticated refusals can write, so that a flood cannot fill the disk: per client address
 * and window, the first `burst` refusals get their own record and the rest are counted into one aggregate record
 * (`action = refusals.aggregate`, `details_json.count`) written when the window ends. Memory is bounded by
 * `maxSources`. Aggregates not yet written are lost if the process is killed — at most one window's
 * counts, never an individual record.
 */
export class RefusalLimiter {
  private readonly sources = new Map<string, SourceWindow>();
  /** Windows that ended with counts still to write. */
  private closed: { source: string; window: SourceWindow; endedAt: number }[] = [];

  constructor(private readonly options: RefusalLimiterOptions) {}

  /** True: write this refusal's own record. False: it was counted into its source's aggregate. */
  admit(clientAddress: string, errorClass: string, now: number): boolean {
    let source = clientAddress;
    let window = this.sources.get(source);
    if (!window && this.sources.size >= this.options.maxSources) {
      this.expire(now);
      if (this.sources.size >= this.options.maxSources) {
        source = OVERFLOW_SOURCE;
        window = this.sources.get(source);
      }
    }
    if (window && now - window.startedAt >= this.options.windowMs) {
      this.close(source, window, now);
      window = undefined;
    }
    if (!window) {
      window = { startedAt: now, recorded: 0, count: 0, byClass: new Map() };
      this.sources.set(source, window);
    }
    // The overflow bucket has no records of its own: it stands for many sources.
    if (source !== OVERFLOW_SOURCE && window.recorded < this.options.burst) {
      window.recorded += 1;
      return true;
    }
    window.count += 1;
    window.byClass.set(errorClass, (window.byClass.get(errorClass) ?? 0) + 1);
    return false;
  }

  get trackedSources(): number {
    return this.sources.size;
  }

  /** Aggregate records for every window that has ended (all windows with `everything`, at shutdown). */
  drain(now: number, everything = false): AuditRecordDraft[] {
    this.expire(now, everything);
    const drafts = this.closed.map(({ source, window, endedAt }) => aggregateDraft(source, window, endedAt));
    this.closed = [];
    return drafts;
  }

  private expire(now: number, everything = false): void {
    for (const [source, window] of this.sources) {
      if (everything || now - window.startedAt >= this.options.windowMs) this.close(source, window, now);
    }
  }

  private close(source: string, window: SourceWindow, now: number): void {
    this.sources.delete(source);
    if (window.count > 0)
      this.closed.push({ source, window, endedAt: Math.min(now, window.startedAt + this.options.windowMs) });
  }
}

function aggregateDraft(source: string, window: SourceWindow, endedAt: number): AuditRecordDraft {
  const byClass = Object.fromEntries([...window.byClass].sort(([a], [b]) => a.localeCompare(b)));
  const classes = Object.keys(byClass);
  return {
    ...emptyDraft(),
    kind: 'request',
    action: 'refusals.aggregate',
    client_address: source,
    outcome: 'denied',
    request_id: randomUUID(),
    status_code: 0,
    error_class: classes.length === 1 ? classes[0] : 'mixed',
    content_capture: 'none',
    details_json: JSON.stringify({
      count: window.count,
      window_start: new Date(window.startedAt).toISOString(),
      window_end: new Date(endedAt).toISOString(),
      by_error_class: byClass,
    }),
  };
}
