import type { Insertable, Kysely } from 'kysely';
import type { AuthAuditDatabase, QuotaCountersTable } from '../database/database-schema.js';
import type { Denial, Limits } from '../auth/principal.js';
import { secondsUntilReset, WINDOW_KINDS, windowStart, type WindowKind } from './quota-windows.js';

/** Whose usage a counter holds: "key:<id>" or "tenant:<id>". */
export interface QuotaSubject {
  subject: string;
  limits: Limits;
}

/** The numbers behind OpenAI-style x-ratelimit-* headers; a limit of 0 means unlimited. */
export interface RateLimitView {
  requestsLimit: number;
  requestsRemaining: number;
  requestsResetSeconds: number;
  tokensLimit: number;
  tokensRemaining: number;
  tokensResetSeconds: number;
}

interface Counter {
  subject: string;
  windowKind: WindowKind;
  windowStart: Date;
  requests: number;
  tokens: number;
  /** The totals the batch started from: the changes are written as differences from them. */
  startRequests: number;
  startTokens: number;
  dirty: boolean;
}

/** A counter's totals at a point in time (a row of quota_counters). */
export interface CounterTotals {
  subject: string;
  windowKind: WindowKind;
  windowStart: Date;
  requests: number;
  tokens: number;
}

type Db = Kysely<AuthAuditDatabase>;

const counterKey = (subject: string, kind: WindowKind) => `${subject}|${kind}`;

/**
 * Quota counters for one batch. `lock` upserts and row-locks every counter the batch touches (in a fixed
 * order, so replicas cannot deadlock); decisions and charges then happen in memory, in arrival order;
 * `changedTotals` are written with the chain append, before the transaction commits. Across replicas the row
 * locks make check-and-count atomic. A pipelined batch starts `from` totals the appender already knows
 * instead, and writes `changedDeltas` in the same statement that moves the chain head only if the head is
 * still where those totals were true (audit-chain.ts, appendOnHead).
 */
export class QuotaLedger {
  private readonly counters = new Map<string, Counter>();

  private constructor(private readonly now: Date) {}

  static async lock(trx: Db, subjects: Iterable<string>, now: Date): Promise<QuotaLedger> {
    const ledger = new QuotaLedger(now);
    const sorted = [...new Set(subjects)].sort();
    if (sorted.length === 0) return ledger;
    const rows = sorted.flatMap((subject) =>
      WINDOW_KINDS.map((kind) => ({
        subject,
        window_kind: kind,
        window_start: windowStart(kind, now),
        requests: 0,
        tokens: 0,
      })),
    );
    const locked = await trx
      .insertInto('quota_counters')
      .values(rows)
      .onConflict((oc) =>
        // A no-op update: it takes the row lock and returns the current totals.
        oc
          .columns(['subject', 'window_kind', 'window_start'])
          .doUpdateSet((eb) => ({ requests: eb.ref('quota_counters.requests') })),
      )
      .returning(['subject', 'window_kind', 'window_start', 'requests', 'tokens'])
      .execute();
    for (const row of locked) {
      ledger.add({
        subject: row.subject,
        windowKind: row.window_kind as WindowKind,
        windowStart: row.window_start,
        requests: row.requests,
        tokens: row.tokens,
      });
    }
    return ledger;
  }

  /**
   * A ledger over totals known without a lock; `known` answers each current window of each subject, or
   * undefined when it cannot (then this returns undefined and the batch takes the locked path).
   */
  static from(
    subjects: Iterable<string>,
    now: Date,
    known: (subject: string, kind: WindowKind, start: Date) => CounterTotals | undefined,
  ): QuotaLedger | undefined {
    const ledger = new QuotaLedger(now);
    for (const subject of new Set(subjects)) {
      for (const kind of WINDOW_KINDS) {
        const totals = known(subject, kind, windowStart(kind, now));
        if (!totals) return undefined;
        ledger.add(totals);
      }
    }
    return ledger;
  }

  /** Unlocked reads of the current windows' totals (a missing row is a window with nothing counted yet). */
  static async read(db: Db, subjects: Iterable<string>, now: Date): Promise<CounterTotals[]> {
    const wanted = [...new Set(subjects)];
    if (wanted.length === 0) return [];
    const starts = WINDOW_KINDS.map((kind) => windowStart(kind, now));
    const rows = await db
      .selectFrom('quota_counters')
      .select(['subject', 'window_kind', 'window_start', 'requests', 'tokens'])
      .where('subject', 'in', wanted)
      .where('window_start', 'in', starts)
      .execute();
    const found = new Map(
      rows.map((row) => [`${row.subject}|${row.window_kind}|${row.window_start.getTime()}`, row]),
    );
    return wanted.flatMap((subject) =>
      WINDOW_KINDS.map((kind, index) => {
        const row = found.get(`${subject}|${kind}|${starts[index].getTime()}`);
        return {
          subject,
          windowKind: kind,
          windowStart: starts[index],
          requests: row?.requests ?? 0,
          tokens: row?.tokens ?? 0,
        };
      }),
    );
  }

  private add(totals: CounterTotals): void {
    this.counters.set(counterKey(totals.subject, totals.windowKind), {
      ...totals,
      startRequests: totals.requests,
      startTokens: totals.tokens,
      dirty: false,
    });
  }

  /**
   * Checks every subject's limits; when all pass, counts the request against each and reserves
   * `reserveTokens` in every window (tokens already reserved count as spent, so concurrent admissions
   * see each other's bounds).
   */
  admit(subjects: QuotaSubject[], reserveTokens = 0): { denial?: Denial; rateLimit: RateLimitView } {
    for (const { subject, limits } of subjects) {
      const minute = this.counter(subject, 'minute');
      if (limits.requestsPerMinute > 0 && minute.requests >= limits.requestsPerMinute) {
        return this.refuse(subjects, 'rate_limited_requests', 'request rate limit reached', 'minute');
      }
      if (limits.tokensPerMinute > 0 && minute.tokens >= limits.tokensPerMinute) {
        return this.refuse(subjects, 'rate_limited_tokens', 'token rate limit reached', 'minute');
      }
      if (limits.tokensPerDay > 0 && this.counter(subject, 'day').tokens >= limits.tokensPerDay) {
        return this.refuse(subjects, 'budget_exhausted', 'daily token budget spent', 'day');
      }
      if (limits.tokensPerMonth > 0 && this.counter(subject, 'month').tokens >= limits.tokensPerMonth) {
        return this.refuse(subjects, 'budget_exhausted', 'monthly token budget spent', 'month');
      }
    }
    for (const { subject } of subjects) {
      const minute = this.counter(subject, 'minute');
      minute.requests += 1;
      minute.dirty = true;
    }
    this.charge(
      subjects.map((s) => s.subject),
      reserveTokens,
    );
    return { rateLimit: this.view(subjects) };
  }

  /**
   * Replaces a reservation made at `reservedAt` by the tokens actually used: in a window that is still
   * the same the difference is applied, in a newer window the usage is charged (the reservation stayed
   * in the window that has ended).
   */
  settle(subjects: string[], reserved: number, used: number, reservedAt: Date): void {
    for (const subject of subjects) {
      for (const kind of WINDOW_KINDS) {
        const counter = this.counter(subject, kind);
        const sameWindow = windowStart(kind, reservedAt).getTime() === counter.windowStart.getTime();
        const delta = sameWindow ? used - reserved : used;
        if (delta === 0) continue;
        counter.tokens = Math.max(0, counter.tokens + delta);
        counter.dirty = true;
      }
    }
  }

  /** Charges used tokens to every window of every subject (reported by Complete). */
  charge(subjects: string[], tokens: number): void {
    if (tokens <= 0) return;
    for (const subject of subjects) {
      for (const kind of WINDOW_KINDS) {
        const counter = this.counter(subject, kind);
        counter.tokens += tokens;
        counter.dirty = true;
      }
    }
  }

  /** The new totals of every counter this batch changed, to be written before the transaction commits. */
  changedTotals(): Insertable<QuotaCountersTable>[] {
    return [...this.counters.values()]
      .filter((counter) => counter.dirty)
      .map((counter) => ({
        subject: counter.subject,
        window_kind: counter.windowKind,
        window_start: counter.windowStart,
        requests: counter.requests,
        tokens: counter.tokens,
      }));
  }

  /** What each changed counter gained (or, for tokens settled below their reservation, lost) in this batch. */
  changedDeltas(): Insertable<QuotaCountersTable>[] {
    return [...this.counters.values()]
      .filter((counter) => counter.dirty)
      .map((counter) => ({
        subject: counter.subject,
        window_kind: counter.windowKind,
        window_start: counter.windowStart,
        requests: counter.requests - counter.startRequests,
        tokens: counter.tokens - counter.startTokens,
      }));
  }

  /** Every counter's totals as this batch leaves them (what the appender knows once it commits). */
  totals(): CounterTotals[] {
    return [...this.counters.values()].map(({ subject, windowKind, windowStart, requests, tokens }) => ({
      subject,
      windowKind,
      windowStart,
      requests,
      tokens,
    }));
  }

  private counter(subject: string, kind: WindowKind): Counter {
    const counter = this.counters.get(counterKey(subject, kind));
    if (!counter) throw new Error(`quota counter ${subject}/${kind} was not locked for this batch`);
    return counter;
  }

  private refuse(
    subjects: QuotaSubject[],
    code: Denial['code'],
    message: string,
    kind: WindowKind,
  ): { denial: Denial; rateLimit: RateLimitView } {
    const retryAfterSeconds = secondsUntilReset(kind, this.now);
    return { denial: { code, message, retryAfterSeconds }, rateLimit: this.view(subjects) };
  }

  /** The tightest limit among the subjects, per dimension. */
  private view(subjects: QuotaSubject[]): RateLimitView {
    const reset = secondsUntilReset('minute', this.now);
    const view: RateLimitView = {
      requestsLimit: 0,
      requestsRemaining: 0,
      requestsResetSeconds: 0,
      tokensLimit: 0,
      tokensRemaining: 0,
      tokensResetSeconds: 0,
    };
    let requestsBest = Infinity;
    let tokensBest = Infinity;
    for (const { subject, limits } of subjects) {
      const minute = this.counter(subject, 'minute');
      if (limits.requestsPerMinute > 0) {
        const remaining = Math.max(0, limits.requestsPerMinute - minute.requests);
        if (remaining < requestsBest) {
          requestsBest = remaining;
          Object.assign(view, {
            requestsLimit: limits.requestsPerMinute,
            requestsRemaining: remaining,
            requestsResetSeconds: reset,
          });
        }
      }
      if (limits.tokensPerMinute > 0) {
        const remaining = Math.max(0, limits.tokensPerMinute - minute.tokens);
        if (remaining < tokensBest) {
          tokensBest = remaining;
          Object.assign(view, {
            tokensLimit: limits.tokensPerMinute,
            tokensRemaining: remaining,
            tokensResetSeconds: reset,
          });
        }
      }
    }
    return view;
  }
}
