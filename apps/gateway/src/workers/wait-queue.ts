/** Why a waiter left the queue without a slot. */
export type WaitRejection = 'queue_full' | 'timeout' | 'aborted' | 'closed';

export class WaitRejectedError extends Error {
  override readonly name = 'WaitRejectedError';
  constructor(readonly reason: WaitRejection) {
    super(`wait rejected: ${reason}`);
  }
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: WaitRejectedError) => void;
  cleanup: () => void;
}

/**
 * A bounded FIFO of requests waiting for a worker slot. Each waiter leaves with a value handed over by
 * `serve`, or is rejected on timeout, abort or when the queue is full.
 */
export class WaitQueue<T> {
  private readonly waiters: Waiter<T>[] = [];

  constructor(
    private readonly capacity: number,
    private readonly timeoutMs: number,
  ) {}

  get length(): number {
    return this.waiters.length;
  }

  wait(signal?: AbortSignal): Promise<T> {
    if (this.waiters.length >= this.capacity) return Promise.reject(new WaitRejectedError('queue_full'));
    if (signal?.aborted) return Promise.reject(new WaitRejectedError('aborted'));
    return new Promise<T>((resolve, reject) => {
      const leave = (reason: WaitRejection): void => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        waiter.cleanup();
        reject(new WaitRejectedError(reason));
      };
      const timer = setTimeout(() => leave('timeout'), this.timeoutMs);
      const onAbort = (): void => leave('aborted');
      signal?.addEventListener('abort', onAbort, { once: true });
      const waiter: Waiter<T> = {
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Hands values to waiters in arrival order while `next` can produce one. */
  serve(next: () => T | undefined): void {
    while (this.waiters.length > 0) {
      const value = next();
      if (value === undefined) return;
      const waiter = this.waiters.shift()!;
      waiter.cleanup();
      waiter.resolve(value);
    }
  }

  rejectAll(reason: WaitRejection): void {
    for (const waiter of this.waiters.splice(0)) {
      waiter.cleanup();
      waiter.reject(new WaitRejectedError(reason));
    }
  }
}
