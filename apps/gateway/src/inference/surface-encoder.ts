import type { ApiError } from '../errors/api-error.js';

/** One server-sent event: `event:` names it (the Responses API does; chat and completions do not). */
export interface StreamEvent {
  event?: string;
  data: unknown;
}

/** For encoders with nothing to send: shared, so the per-token path allocates no empty arrays. */
export const NO_EVENTS: readonly StreamEvent[] = Object.freeze([]);

/**
 * One OpenAI API surface (chat, completions, responses): how worker events become that surface's
 * stream events and collected body. The run loop (`runGenerations`) knows none of them; a new surface
 * is one encoder.
 */
export interface SurfaceEncoder<E> {
  /** Sent as soon as the stream opens, before the first worker event. */
  opening(): readonly StreamEvent[];
  /** One worker event of generation `index`; what to stream now (encoders built for collecting send none). */
  onEvent(index: number, event: E): readonly StreamEvent[];
  /**
   * Every generation ended well; runs before the answer is sent (a stored response is committed here so
   * that a follow-up request finds it). A rejection is the request's error.
   */
  settle?(): Promise<void>;
  /** The events that close a successful stream (usage chunk, completion event). */
  closing(): readonly StreamEvent[];
  /** The whole answer as one object: the non-streamed body, and what the audit record keeps. */
  collected(): object;
  /** What tells a streaming client that the answer failed mid-way (instead of a silently cut stream). */
  failure(error: ApiError): readonly StreamEvent[];
  /** Chat and completions end a stream with `data: [DONE]`; the Responses API does not. */
  readonly endsWithDone: boolean;
}
