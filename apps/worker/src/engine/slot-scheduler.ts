/** A sequence held by one request; release it exactly once when the request ends. */
export interface SlotLease<Slot> {
  readonly slot: Slot;
  release(): void;
}

interface Waiter<Slot> {
  resolve: (lease: SlotLease<Slot>) => void;
  reject: (error: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * Hands out a fixed set of slots (parallel sequences) first come, first served. At most `queueCapacity`
 * requests wait; past that, acquire fails at once so the caller can try another worker.
 */
export class SlotScheduler<Slot> {
  private readonly idle: Slot[];
  private readonly waiters: Waiter<Slot>[] = [];

  constructor(
    private readonly slots: readonly Slot[],
    private readonly queueCapacity: number,
    private readonly whenFull: () => Error,
  ) {
    this.idle = [...slots];
  }

  get total(): number {
    return this.slots.length;
  }

  get busy(): number {
    return this.slots.length - this.idle.length;
  }

  get queued(): number {
    return this.waiters.length;
  }

  get capacity(): number {
    return this.queueCapacity;
  }

  /** Slots currently held by requests. */
  busySlots(): Slot[] {
    return this.slots.filter((slot) => !this.idle.includes(slot));
  }

  acquire(signal?: AbortSignal): Promise<SlotLease<Slot>> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const slot = this.idle.shift();
    if (slot !== undefined) return Promise.resolve(this.lease(slot));
    if (this.waiters.length >= this.queueCapacity) return Promise.reject(this.whenFull());

    return new Promise<SlotLease<Slot>>((resolve, reject) => {
      const waiter: Waiter<Slot> = { resolve, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(abortReason(signal));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  /** Fails every waiting request (used when the worker drains or the model is unloaded). */
  rejectWaiting(error: Error): void {
    for (const waiter of this.waiters.splice(0)) {
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(error);
    }
  }

  private lease(slot: Slot): SlotLease<Slot> {
    let released = false;
    return {
      slot,
      release: () => {
        if (released) return;
        released = true;
        this.handOver(slot);
      },
    };
  }

  private handOver(slot: Slot): void {
    const next = this.waiters.shift();
    if (!next) {
      this.idle.push(slot);
      return;
    }
    if (next.onAbort) next.signal?.removeEventListener('abort', next.onAbort);
    next.resolve(this.lease(slot));
  }
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}
