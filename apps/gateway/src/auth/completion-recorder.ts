import * as grpc from '@grpc/grpc-js';
import type { Logger } from '@airlock/telemetry';
import type { AuthAuditClient, CompletionRecord, RefusalRecord } from './auth-audit.port.js';

/** auth-audit refuses bodies above this (validation.ts MAX_BODY_BYTES): larger ones are cut and flagged. */
export const MAX_AUDIT_BODY_BYTES = 16 * 1024 * 1024;

/** gRPC codes that no retry can turn into a commit: dead-lettered at once. */
const PERMANENT = new Set<number>([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.OUT_OF_RANGE,
]);
/**
 * NOT_FOUND can be a race (the request record of an Authorize that timed out commits in the same batch as
 * its Complete); a few tries settle it, after that auth-audit's lease sweeper closes the request.
 */
const NOT_FOUND_ATTEMPTS = 5;

export interface CompletionRecorderOptions {
  /** The longest pause between two tries of one record. */
  maxBackoffMs: number;
  /** The first pause; doubles per failure. */
  initialBackoffMs?: number;
  /** Records waiting at most; beyond it `full` is true and the gateway admits no new requests. */
  maxPending?: number;
  /**
   * How long a record may be held to go out together with the next Authorize (`sendHeld`), so that
   * auth-audit's group commit writes both in one transaction: at one client, a completion committing on
   * its own delays the next request's record by one commit (an fsync). 0: sent at once.
   */
  holdMs?: number;
  logger: Logger;
  onDelivered?: (record: CompletionRecord | RefusalRecord, attempts: number) => void;
  /** A record given up on: it can never commit (reason = the gRPC code name). */
  onDeadLetter?: (reason: string) => void;
}

/**
 * Delivers completion and refusal records to auth-audit, retrying each with capped exponential backoff
 * until it is committed. The response to the client never waits for this; `flush` waits for it at
 * shutdown. Bounded: `full` turns new requests away (fail closed) instead of growing without limit, and
 * errors no retry can fix are dead-lettered (logged and counted) instead of retried forever. If the
 * gateway is killed, what was pending is not lost for good: auth-audit closes the open requests as
 * interrupted when their lease expires, with the usage the workers reported.
 */
export class CompletionRecorder {
  private readonly pending = new Set<Promise<void>>();
  private stopped = false;
  private held: (() => void)[] = [];
  private holdTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly client: Pick<AuthAuditClient, 'complete' | 'recordRefusal'>,
    private readonly options: CompletionRecorderOptions,
  ) {}

  get pendingCount(): number {
    return this.pending.size;
  }

  /** No room for another request's records: the caller answers 503 rather than run unrecorded. */
  get full(): boolean {
    return this.pending.size >= (this.options.maxPending ?? Number.POSITIVE_INFINITY);
  }

  /**
   * Files a record. Delivery starts on the next turn of the event loop, after the response the record
   * describes has been written: starting the gRPC call costs ~0.1 ms of CPU the client need not wait for.
   */
  record(record: CompletionRecord): void {
    const bounded = boundBody(record);
    this.track(bounded.requestId, () => this.client.complete(bounded), bounded);
  }

  /** Files the record of a request refused before (or without) Authorize. */
  refusal(record: RefusalRecord): void {
    // A refusal flood must not grow memory: past the bound these are dropped (and counted).
    if (this.full) {
      this.options.onDeadLetter?.('backlog_full');
      return;
    }
    this.track(record.requestId, () => this.client.recordRefusal(record), record);
  }

  /** Lets every held record go now: called just before an Authorize goes out, to share its commit. */
  sendHeld(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    const held = this.held;
    this.held = [];
    for (const send of held) send();
  }

  /** Waits for every record in flight, up to `timeoutMs`; returns how many are still undelivered. */
  async flush(timeoutMs: number): Promise<number> {
    this.sendHeld();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.pending]),
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    this.stopped = true;
    return this.pending.size;
  }

  private track(
    requestId: string,
    send: () => Promise<void>,
    record: CompletionRecord | RefusalRecord,
  ): void {
    const delivery = this.sendTurn()
      .then(() => this.deliver(requestId, send, record))
      .finally(() => this.pending.delete(delivery));
    this.pending.add(delivery);
  }

  /** When a new record goes out: with the next Authorize or after holdMs, else on the next turn. */
  private sendTurn(): Promise<void> {
    const holdMs = this.options.holdMs ?? 0;
    if (holdMs === 0 || this.stopped) return new Promise<void>((resolve) => setImmediate(resolve));
    return new Promise<void>((resolve) => {
      this.held.push(resolve);
      this.holdTimer ??= setTimeout(() => this.sendHeld(), holdMs).unref();
    });
  }

  private async deliver(
    requestId: string,
    send: () => Promise<void>,
    record: CompletionRecord | RefusalRecord,
  ): Promise<void> {
    let backoff = this.options.initialBackoffMs ?? 100;
    for (let attempt = 1; ; attempt++) {
      try {
        await send();
        this.options.onDelivered?.(record, attempt);
        return;
      } catch (error) {
        const code = (error as Partial<grpc.ServiceError>).code;
        if (
          (typeof code === 'number' && PERMANENT.has(code)) ||
          (code === grpc.status.NOT_FOUND && attempt >= NOT_FOUND_ATTEMPTS)
        ) {
          const reason = grpc.status[code] ?? String(code);
          this.options.onDeadLetter?.(reason);
          this.options.logger.error(
            { requestId, attempt, reason },
            'audit record dead-lettered: it can never commit',
          );
          return;
        }
        if (this.stopped) {
          this.options.logger.error({ requestId, attempt }, 'completion record lost at shutdown');
          return;
        }
        this.options.logger.warn({ requestId, attempt, code }, 'completion record not committed; retrying');
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, this.options.maxBackoffMs);
      }
    }
  }
}

/** A response over the audit limit is recorded by its first bytes and its size, never refused. */
function boundBody(record: CompletionRecord): CompletionRecord {
  if (!record.responseBody || record.responseBody.length <= MAX_AUDIT_BODY_BYTES) return record;
  return {
    ...record,
    responseBody: record.responseBody.subarray(0, MAX_AUDIT_BODY_BYTES),
    responseBodyBytes: record.responseBody.length,
  };
}
