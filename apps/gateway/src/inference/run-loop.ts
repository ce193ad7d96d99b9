import type { GatewayConfig } from '../config.js';
import type { GenerationOptions } from '../workers/generation.js';
import { workerErrorToApiError } from '../workers/worker-errors.js';
import type { SseWriter } from '../openai/sse.js';
import type { Exchange, RequestContext } from './exchange.js';
import { mergeIndexed, primeAll, type EventStream } from './streams.js';
import type { StreamEvent, SurfaceEncoder } from './surface-encoder.js';

/** How a streamed or collected answer ends: the status and outcome the audit record gets. */
interface Ending {
  status: number;
  outcome: 'success' | 'error' | 'cancelled';
  errorClass: string;
}

const CANCELLED: Ending = { status: 499, outcome: 'cancelled', errorClass: 'client_closed_request' };

/**
 * The loop every generating surface shares: prime the generations (errors before the first token are a
 * plain HTTP error), then stream the encoder's events (SSE) or collect its body, and end with exactly one
 * audit record. Returns the body to send when not streaming.
 */
export async function runGenerations<E>(
  exchange: Exchange,
  ctx: RequestContext,
  generations: AsyncGenerator<E>[],
  sse: SseWriter | null,
  encoder: SurfaceEncoder<E>,
): Promise<object | void> {
  let primed: EventStream<E>[];
  try {
    primed = await primeAll(generations, ctx.abort);
    // Generation began on the decision; the first byte waits for the durable request record. A failed
    // commit aborted the generations (so priming may fail for that reason) and is the error to answer.
    if (sse) await ctx.recorded;
  } catch (error) {
    const failure = await ctx.recorded.then(
      () => null,
      (reason: unknown) => reason,
    );
    if (failure !== null) {
      // The generations were aborted with the record; returning them frees their worker leases.
      await Promise.allSettled(generations.map((generation) => generation.return(undefined)));
      const apiError = workerErrorToApiError(failure);
      end(exchange, ctx, { status: apiError.status, outcome: 'error', errorClass: apiError.code ?? '' });
      throw apiError;
    }
    const apiError = workerErrorToApiError(error);
    // A client that left before the first byte cancelled its request; the worker did not fail it.
    end(
      exchange,
      ctx,
      ctx.clientGone()
        ? CANCELLED
        : { status: apiError.status, outcome: 'error', errorClass: apiError.code ?? '' },
    );
    throw apiError;
  }
  let ending: Ending = { status: 200, outcome: 'success', errorClass: '' };
  let responseBody: unknown;
  try {
    if (sse) {
      // ctx.recorded has resolved: its receipt headers are on the reply, which the writer reads at open.
      sse.open(ctx.authorization.rateLimitHeaders);
      await sendAll(sse, encoder.opening());
    }
    for await (const [index, event] of mergeIndexed(primed, ctx.abort)) {
      const events = encoder.onEvent(index, event);
      if (sse) await sendAll(sse, events);
      if (sse?.closed) break;
    }
    if (ctx.clientGone() || sse?.closed) {
      ending = CANCELLED;
      return;
    }
    // A collected answer is whole before its record may be durable; nothing (not even a stored response)
    // is kept or released for a request without one.
    await ctx.recorded;
    await encoder.settle?.();
    const body = encoder.collected();
    responseBody = body;
    if (!sse) return body;
    await sendAll(sse, encoder.closing());
    if (encoder.endsWithDone) await sse.done();
    else sse.end();
  } catch (error) {
    if (ctx.clientGone() || sse?.closed) {
      ending = CANCELLED;
      return;
    }
    const apiError = workerErrorToApiError(error);
    ending = { status: apiError.status, outcome: 'error', errorClass: apiError.code ?? '' };
    if (!sse) throw apiError;
    // Mid-stream failure: a final error event the SDKs raise, instead of a silently cut stream.
    await sendAll(sse, encoder.failure(apiError));
    sse.end();
  } finally {
    end(exchange, ctx, ending, responseBody);
    sse?.end();
  }
}

async function sendAll(sse: SseWriter, events: readonly StreamEvent[]): Promise<void> {
  for (const event of events) await sse.send(event.data, event.event);
}

function end(exchange: Exchange, ctx: RequestContext, ending: Ending, responseBody?: unknown): void {
  exchange.finish(
    ending.status,
    ctx.clientGone() ? 'cancelled' : ending.outcome,
    ending.errorClass,
    responseBody,
  );
}

/** How every generation of a request runs: its model, the client's abort, the gateway's timeouts. */
export function generationOptions(
  config: GatewayConfig,
  model: string,
  ctx: RequestContext,
  exchange: Exchange,
): GenerationOptions {
  return {
    model,
    signal: ctx.abort.signal,
    attempts: config.workerAttempts,
    requestTimeoutMs: config.requestTimeoutMs,
    idleTimeoutMs: config.idleTimeoutMs,
    onWorker: exchange.onWorker,
  };
}
