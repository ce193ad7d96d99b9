/**
 * Starts every generator and waits for its first event, so that errors before the first token (queue
 * full, no worker, bad request) become a proper HTTP status instead of an error inside a 200 stream.
 */
export async function primeAll<E>(
  generators: AsyncGenerator<E>[],
  abort: AbortController,
): Promise<EventStream<E>[]> {
  const firsts = await Promise.allSettled(generators.map((g) => g.next()));
  const failure = firsts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    abort.abort();
    await Promise.allSettled(generators.map((g) => g.return(undefined)));
    throw failure.reason;
  }
  return generators.map((g, i) => primed((firsts[i] as PromiseFulfilledResult<IteratorResult<E>>).value, g));
}

/** A generation whose first event has been read: iterate it, or `return()` to stop (and cancel) it. */
export interface EventStream<E> extends AsyncIterableIterator<E> {
  return(): Promise<IteratorResult<E>>;
}

/**
 * The first event from memory, then the generator's own. A plain iterator rather than an async generator
 * with `yield*`, which would add a round of promise hops to every token.
 */
function primed<E>(first: IteratorResult<E>, rest: AsyncGenerator<E>): EventStream<E> {
  let pending: IteratorResult<E> | null = first;
  const stream: EventStream<E> = {
    next: () => {
      if (pending === null) return rest.next();
      const result = pending;
      pending = null;
      return Promise.resolve(result);
    },
    // The consumer stopping early: the generator's `finally` cancels its gRPC call (freeing the slot).
    return: () => {
      pending = null;
      return rest.return(undefined);
    },
    [Symbol.asyncIterator]: () => stream,
  };
  return stream;
}

/**
 * Interleaves several generators in arrival order, tagging each event with its generator's index.
 * On early exit or failure it aborts the rest (through `abort`) and waits for them to clean up.
 */
export async function* mergeIndexed<E>(
  generators: EventStream<E>[],
  abort: AbortController,
): AsyncGenerator<[number, E]> {
  if (generators.length === 1) {
    for await (const event of generators[0]) yield [0, event];
    return;
  }
  const pending = new Map<number, Promise<[number, IteratorResult<E>]>>();
  const pull = (index: number): void => {
    pending.set(
      index,
      generators[index].next().then((result): [number, IteratorResult<E>] => [index, result]),
    );
  };
  generators.forEach((_, index) => pull(index));
  let completed = false;
  try {
    while (pending.size > 0) {
      const [index, result] = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield [index, result.value];
    }
    completed = true;
  } finally {
    if (!completed) {
      abort.abort();
      for (const promise of pending.values()) promise.catch(() => undefined);
      await Promise.allSettled(generators.map((g) => g.return()));
    }
  }
}
