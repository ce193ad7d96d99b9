import type { CounterTotals } from './quota-ledger.js';
import { WINDOW_KINDS, windowStart, type WindowKind } from './quota-windows.js';

const key = (subject: string, kind: WindowKind, start: Date) => `${subject}|${kind}|${start.getTime()}`;

/** Past this many counters, those of ended windows are dropped (they are never asked for again). */
const TRIM_ABOVE = 20_000;

/**
 * The quota totals as the appender's own committed batches left them. They are true only while nobody else
 * has appended since (every other writer of quota_counters moves the chain head in the same transaction), so
 * the appender forgets them all whenever its next write finds the head moved or fails.
 */
export class KnownQuotaTotals {
  private readonly totals = new Map<string, CounterTotals>();

  get(subject: string, kind: WindowKind, start: Date): CounterTotals | undefined {
    return this.totals.get(key(subject, kind, start));
  }

  /** Whether every current window of the subject is known. */
  knows(subject: string, now: Date): boolean {
    return WINDOW_KINDS.every((kind) => this.totals.has(key(subject, kind, windowStart(kind, now))));
  }

  remember(totals: CounterTotals[], now: Date): void {
    for (const counter of totals)
      this.totals.set(key(counter.subject, counter.windowKind, counter.windowStart), counter);
    if (this.totals.size <= TRIM_ABOVE) return;
    for (const [name, counter] of this.totals) {
      if (counter.windowStart.getTime() < windowStart(counter.windowKind, now).getTime())
        this.totals.delete(name);
    }
    // Still over (that many subjects in the current windows): start again from the database.
    if (this.totals.size > TRIM_ABOVE) this.totals.clear();
  }

  forget(): void {
    this.totals.clear();
  }
}
