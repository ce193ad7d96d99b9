import type { LlamaContext, LlamaContextSequence } from 'node-llama-cpp';

/** What node-llama-cpp 3.22's context queues for one sequence: the fields this module reads. */
interface QueuedDecode {
  sequenceId: number;
}

type DecodeTokens = (item: QueuedDecode, logitDataMapper: unknown) => Promise<unknown>;

/** The internal entry point every sequence's evaluation goes through (LlamaContext#_decodeTokens). */
interface ContextInternals {
  _decodeTokens?: DecodeTokens;
}

/**
 * How long a step waits for a generating sequence that is late: about one step, within these bounds. Between
 * two decodes a sequence only runs JavaScript (sampling is part of the decode), so only a busy event loop or
 * a loaded machine makes one late; the bounds keep a step from splitting then, and from stalling for long.
 */
const MIN_WAIT_MS = 5;
const MAX_WAIT_MS = 50;

/** One batch released to the context. */
export interface LockstepStep {
  /** Sequences whose decodes went into it. */
  sequences: number;
  /** Released by the timer because a generating sequence was late. */
  late: boolean;
}

/**
 * Drives a context's generating sequences in lockstep, as llama.cpp's own server does: each sequence's next
 * decode is held until every generating sequence has asked for its own, and then all are queued in the same
 * tick, so node-llama-cpp evaluates them in one batch.
 *
 * Without it, node-llama-cpp decodes whatever is queued as soon as it is queued. Sequences come back from a
 * decode one by one (sampling and their JavaScript run in turn), so the first one back is decoded alone while
 * the others catch up, and they stay out of phase: two sequences took 127 decodes for 128 tokens.
 *
 * A sequence counts as generating from its first decode until `leave` (the end of its request); a new one
 * joins the next step with its prompt. A late one does not stall the others for long: a step waits about as
 * long as a step takes (5–50 ms), then goes with the sequences that are there.
 */
export class DecodeLockstep {
  private readonly generating = new Set<number>();
  private held: (() => void)[] = [];
  private heldSequences = new Set<number>();
  private timer?: NodeJS.Timeout;
  /** Smoothed time from releasing a step to the first sequence asking for its next decode. */
  private stepMs = MIN_WAIT_MS;
  private releasedAt = 0;
  private stepTimed = true;

  private constructor(
    private readonly decode: DecodeTokens,
    private readonly onStep: (step: LockstepStep) => void,
  ) {}

  /**
   * Puts the lockstep in front of a context's decodes. Returns undefined (and changes nothing) when the
   * installed node-llama-cpp has no such entry point; the worker then runs with node-llama-cpp's own schedule.
   */
  static attach(
    context: LlamaContext,
    onStep: (step: LockstepStep) => void = () => undefined,
  ): DecodeLockstep | undefined {
    const internals = context as unknown as ContextInternals;
    const original = internals._decodeTokens;
    if (typeof original !== 'function') return undefined;
    const lockstep = new DecodeLockstep(original.bind(context), onStep);
    internals._decodeTokens = (item, logitDataMapper) => lockstep.admit(item, logitDataMapper);
    return lockstep;
  }

  /** The batching options that go with it: dispatch in the same tick the held decodes are queued. */
  static readonly batching = {
    dispatchSchedule: (dispatch: () => void) => queueMicrotask(dispatch),
  };

  /** The sequence's request is over: it no longer holds up the others. */
  leave(sequence: LlamaContextSequence): void {
    const sequenceId = (sequence as unknown as { _sequenceId?: number })._sequenceId;
    if (sequenceId === undefined || !this.generating.delete(sequenceId)) return;
    this.releaseIfComplete();
  }

  private admit(item: QueuedDecode, logitDataMapper: unknown): Promise<unknown> {
    if (!this.stepTimed) {
      this.stepTimed = true;
      this.stepMs = 0.8 * this.stepMs + 0.2 * (performance.now() - this.releasedAt);
    }
    this.generating.add(item.sequenceId);
    return new Promise((resolve, reject) => {
      this.held.push(() => {
        this.decode(item, logitDataMapper).then(resolve, reject);
      });
      this.heldSequences.add(item.sequenceId);
      this.releaseIfComplete();
    });
  }

  private releaseIfComplete(): void {
    if (this.held.length === 0) return;
    if (this.heldSequences.size >= this.generating.size) {
      this.release(false);
      return;
    }
    if (this.timer) return;
    const waitMs = Math.min(MAX_WAIT_MS, Math.max(MIN_WAIT_MS, this.stepMs));
    this.timer = setTimeout(() => this.release(true), waitMs);
  }

  private release(late: boolean): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const held = this.held;
    this.held = [];
    this.heldSequences = new Set();
    this.releasedAt = performance.now();
    this.stepTimed = false;
    for (const queue of held) queue();
    this.onStep({ sequences: held.length, late });
  }
}
