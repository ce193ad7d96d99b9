import type { Logger } from '@airlock/telemetry';
import type { AuthAuditDb } from '../database/database.js';
import { asServiceError, AuthAuditError, DatabaseUnavailableError } from '../errors.js';
import type { AuthAuditMetrics } from '../metrics/auth-audit-metrics.js';
import {
  decideAdmissions,
  isAdmission,
  readAdmissionInputs,
  runBatch,
  settleResults,
  type AdmissionInputs,
  type AdmissionOp,
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
import type { ReceiptEntry } from './receipts.js';
import { QuotaLedger, type CounterTotals } from '../quota/quota-ledger.js';
import { KnownQuotaTotals } from '../quota/known-quota-totals.js';
import { appendOnHead, chainRecords, readChainHead, type ChainHead } from './audit-chain.js';

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
  /** performance.now() when it was queued. */
  queuedAt: number;
  /** Told an Authorize's decision once, before its record commits (cleared when told). */
  onDecided?: (decision: AuthorizeDecision) => void;
}

export interface AuditAppenderOptions {
  maxBatchSize: number;
  /**
   * Batches in flight at once. With pipelining, the next batch does its lookups while the one before it
   * writes; writes still go one after another, in order.
   */
  maxConcurrentBatches?: number;
  /**
   * Pipelined appends (PostgreSQL): a batch of Authorize and record ops decides against the head and quota
   * totals this process's own last write left, and writes in one statement that applies only if the head is
   * still there. Ops that settle a request (Complete, interrupt, usage) and every batch when off lock the head
   * and their counters in a transaction of their own (PGlite, one session, gains nothing from pipelining).
   */
  pipelined?: boolean;
  /** Told the chain head after every committed batch (drives "every N records" checkpoints). */
  onCommitted?: (headSequence: number) => void;
  /** The time quota windows and records use; tests pin it so that no minute boundary can intervene. */
  clock?: () => Date;
  /** Reservations, leases and the refusal limiter the batch decisions use. */
  batchOptions?: BatchOptions;
}

/** What a pipelined batch read while the batch before it was writing. */
interface Prepared {
  /** The committed head, read before the counters (when any had to be read): they are at least this recent. */
  headAtRead?: ChainHead;
  inputs: AdmissionInputs;
  /** Totals read for counters the appender did not know then. */
  read: CounterTotals[];
}

/**
 * The chain as this process's own writes left it: every record after `ownSince` up to `head` is one it
 * appended, write by write (`before`: the head each write started from).
 */
interface KnownChain {
  head: ChainHead;
  ownSince: number;
  writes: { before: number }[];
}

/** The longest a Complete, interrupt or usage op waits while admission batches go before it. */
const SETTLEMENT_MAX_WAIT_MS = 50;

/** Own writes remembered; a read older than all of them cannot be checked and takes the locked path. */
const REMEMBERED_WRITES = 64;

/**
 * Group commit for Authorize and Complete. Operations that arrive while a batch is committing wait and go
 * together in the next one. A caller's promise settles only after its batch has committed. If a batch fails
 * for a reason other than the database being unreachable, each op is committed on its own, so one bad input
 * fails only its own caller.
 *
 * Pipelined (docs/audit-log.md, "Batching and pipelining"): a batch of Authorize and record ops reads keys,
 * tenants and unknown quota counters while the batch before it writes; once that write has settled it
 * decides against the head and quota totals that write left, hashes its records onto that head and writes
 * them with appendOnHead — one statement, one round trip, which writes nothing unless the database's head is
 * still that head. So a batch never commits on top of one that failed (the head stayed behind), nor on top
 * of another writer's records; whenever a write finds the head moved or fails, what the appender knew is
 * forgotten and the batch is redone by the locked path, which reads everything again under the head and
 * counter locks. Ops that settle a request go in batches of their own, on the locked path.
 */
export class AuditAppender {
  private queue: Pending[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private startScheduled = false;
  /** The last write in the order batches were started; the next one waits for it. */
  private lastWrite: Promise<void> = Promise.resolve();
  /** Set while nobody else is known to have appended since this process's last write. */
  private known: KnownChain | undefined;
  private readonly quotaTotals = new KnownQuotaTotals();
  private readonly batchOptions: BatchOptions;

  constructor(
    private readonly db: AuthAuditDb,
    private readonly sealer: ContentSealer,
    private readonly metrics: AuthAuditMetrics,
    private readonly logger: Logger,
    private readonly options: AuditAppenderOptions,
  ) {
    this.batchOptions = { ...options.batchOptions, refusalAnswers: new WeakMap() };
  }

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
      this.queue.push({ op, resolve, reject, onDecided, queuedAt: performance.now() });
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
      const batch = this.nextBatch();
      const running: Promise<void> = this.commit(batch).finally(() => {
        this.inFlight.delete(running);
        this.startBatches();
      });
      this.inFlight.add(running);
    }
  }

  /**
   * Everything queued, up to the batch size; pipelined, only ops of one class (admissions, or ops that
   * settle a request), each class in arrival order. Ops of one request never meet in the queue:
   * its Complete and usage come after its Authorize was decided, so its batch has already been started.
   */
  private nextBatch(): Pending[] {
    if (!this.options.pipelined) return this.queue.splice(0, this.options.maxBatchSize);
    // Admissions first: a client waits on them, while a settlement's client already has its answer. The
    // gateway sends a held completion together with the next Authorize, and a settlement batch (the locked
    // path, many round trips) started first would delay that Authorize by its whole transaction. A
    // settlement waits no longer than SETTLEMENT_MAX_WAIT_MS behind admissions.
    const oldestSettlement = this.queue.find((pending) => !isAdmission(pending.op));
    const admissions =
      this.queue.some((pending) => isAdmission(pending.op)) &&
      !(oldestSettlement && performance.now() - oldestSettlement.queuedAt > SETTLEMENT_MAX_WAIT_MS);
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    for (const pending of this.queue) {
      if (batch.length < this.options.maxBatchSize && isAdmission(pending.op) === admissions)
        batch.push(pending);
      else rest.push(pending);
    }
    this.queue = rest;
    return batch;
  }

  /** Reads (pipelined) now, then writes once every batch started before this one has written. */
  private async commit(batch: Pending[]): Promise<void> {
    const now = this.options.clock?.() ?? new Date();
    const pipelinable = this.options.pipelined && batch.every((pending) => isAdmission(pending.op));
    const prepared = pipelinable ? this.prepare(batch, now) : undefined;
    const previous = this.lastWrite;
    let written!: () => void;
    this.lastWrite = new Promise<void>((resolve) => (written = resolve));
    try {
      await previous;
      await this.write(batch, now, await prepared);
    } finally {
      written();
    }
  }

  /** The pipelined batch's lookups; undefined (then the locked path reads) when they fail. */
  private async prepare(batch: Pending[], now: Date): Promise<Prepared | undefined> {
    try {
      const inputs = await readAdmissionInputs(
        this.db,
        batch.map((pending) => pending.op),
        now,
      );
      const unknown = [...inputs.quotaSubjects].filter((subject) => !this.quotaTotals.knows(subject, now));
      // Keys and tenants may change at any time (a revocation counts from the batch that reads it); only
      // counters read from the database must be checked against the head they were read at.
      if (unknown.length === 0) return { inputs, read: [] };
      const headAtRead = await readChainHead(this.db);
      const read = await QuotaLedger.read(this.db, unknown, now);
      return { headAtRead, inputs, read };
    } catch {
      return undefined;
    }
  }

  private async write(batch: Pending[], now: Date, prepared: Prepared | undefined): Promise<void> {
    try {
      if (!(prepared && (await this.writePipelined(batch, now, prepared))))
        await this.writeLocked(batch, now);
    } catch (error) {
      this.forget();
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
          await this.writeLocked([pending], this.options.clock?.() ?? new Date());
        } catch (single) {
          this.forget();
          this.metrics.batchFailures.inc({ reason: 'single' });
          pending.reject(asServiceError(single));
        }
      }
    }
  }

  /**
   * Decides and appends on the head the last write left; false when that is not possible (nothing known,
   * reads that another writer may have overtaken, the head moved) and the locked path must do it.
   */
  private async writePipelined(batch: Pending[], now: Date, prepared: Prepared): Promise<boolean> {
    const known = this.known;
    if (!known || (prepared.headAtRead && !readsStillTrue(known, prepared.headAtRead))) return false;
    const read = new Map(
      prepared.read.map((totals) => [
        `${totals.subject}|${totals.windowKind}|${totals.windowStart.getTime()}`,
        totals,
      ]),
    );
    // What this process's writes left wins over a read that may predate the last of them.
    const ledger = QuotaLedger.from(
      prepared.inputs.quotaSubjects,
      now,
      (subject, kind, start) =>
        this.quotaTotals.get(subject, kind, start) ?? read.get(`${subject}|${kind}|${start.getTime()}`),
    );
    if (!ledger) return false;
    const ops = batch.map((pending) => pending.op as AdmissionOp);
    const decisions = decideAdmissions(ops, prepared.inputs, ledger, this.sealer, now, this.batchOptions);
    if (decisions.drafts.length === 0) {
      // Only refusals counted into aggregates: nothing to write, the answers stand as decided.
      if (decisions.opened.length + ledger.changedDeltas().length > 0) return false;
      this.committed(batch, decisions.results, 0);
      return true;
    }
    decisions.results.forEach((result, index) => {
      if (ops[index].type === 'authorize') tellDecision(batch[index], result as AuthorizeDecision);
    });
    const stopTimer = this.metrics.appendSeconds.startTimer();
    const head = known.head;
    const rows = chainRecords(head, decisions.drafts, now);
    const appended = await appendOnHead(this.db, {
      head,
      rows,
      quotaDeltas: ledger.changedDeltas(),
      opened: decisions.opened,
    });
    if (!appended) {
      // Another writer appended (a replica, the admin journal): start again from the database.
      this.forget();
      this.metrics.pipelineRedone.inc();
      return false;
    }
    stopTimer();
    const last = rows.at(-1)!;
    known.writes.push({ before: head.sequence });
    if (known.writes.length > REMEMBERED_WRITES) {
      known.writes.shift();
      known.ownSince = known.writes[0].before;
    }
    known.head = { sequence: last.sequence, hash: last.hash };
    this.quotaTotals.remember(ledger.totals(), now);
    this.metrics.batches.inc({ path: 'pipelined' });
    this.committed(
      batch,
      settleResults(decisions.results, decisions.resultIndexOfDraft, rows),
      last.sequence,
    );
    return true;
  }

  /** One transaction that locks the head and the batch's counters, reading everything inside it. */
  private async writeLocked(batch: Pending[], now: Date): Promise<void> {
    this.forget();
    const stopTimer = this.metrics.appendSeconds.startTimer();
    const outcome = await this.db.transaction().execute((trx) =>
      runBatch(
        trx,
        batch.map((pending) => pending.op),
        this.sealer,
        now,
        this.batchOptions,
        (index, decision) => tellDecision(batch[index], decision),
      ),
    );
    stopTimer();
    if (outcome.head) {
      // Locked, the head and these counters were read as they are: the next batch may pipeline on them
      // (also after a batch that appended nothing, as a worker's usage report of a still open request:
      // else every Authorize behind one would take the locked path).
      const before = (outcome.first?.sequence ?? outcome.head.sequence + 1) - 1;
      this.known = {
        head: { sequence: outcome.head.sequence, hash: outcome.head.hash },
        ownSince: before,
        writes: [{ before }],
      };
      this.quotaTotals.remember(outcome.ledger.totals(), now);
    }
    this.metrics.batches.inc({ path: 'locked' });
    this.committed(batch, outcome.results, outcome.first ? outcome.head!.sequence : 0);
  }

  /** Settles the callers of a committed batch and reports the head it left (0: it appended nothing). */
  private committed(batch: Pending[], results: BatchResult[], headSequence: number): void {
    this.metrics.batchSize.observe(batch.length);
    // The batch's request records share one list: their receipts get one signature (receipts.ts).
    const receiptGroup: ReceiptEntry[] = [];
    results.forEach((result, index) => {
      if (batch[index].op.type !== 'authorize' || result instanceof AuthAuditError) return;
      const decision = result as AuthorizeDecision;
      if (!decision.recordHash || decision.sequence <= 0) return;
      decision.receiptGroup = receiptGroup;
      decision.receiptIndex =
        receiptGroup.push({ sequence: decision.sequence, recordHash: decision.recordHash }) - 1;
    });
    results.forEach((result, index) => {
      if (!(result instanceof AuthAuditError) && result.sequence > 0)
        this.metrics.records.inc({ kind: RECORD_KIND_OF[batch[index].op.type] });
      batch[index].resolve(result);
    });
    if (headSequence > 0) {
      this.metrics.chainHead.set(headSequence);
      this.options.onCommitted?.(headSequence);
    }
  }

  private forget(): void {
    this.known = undefined;
    this.quotaTotals.forget();
  }
}

/**
 * Whether the counters a batch read are still true: every write since the head read before them is this
 * process's own (whose totals it knows), so nobody else can have changed them.
 */
function readsStillTrue(known: KnownChain, headAtRead: ChainHead): boolean {
  if (headAtRead.sequence === known.head.sequence) return headAtRead.hash === known.head.hash;
  return (
    headAtRead.sequence >= known.ownSince &&
    known.writes.some((write) => write.before === headAtRead.sequence)
  );
}

/** An early decision is told once: a batch retried op by op decides again, and its commit tells the rest. */
function tellDecision(pending: Pending, decision: AuthorizeDecision): void {
  const onDecided = pending.onDecided;
  pending.onDecided = undefined;
  onDecided?.(decision);
}
