import type { ChatResponse, CompleteResponse, EmbedResponse, Finish, ToolCall } from '@airlock/contracts';
import type { CompletionRecorder } from '../auth/completion-recorder.js';
import type { GatewayConfig } from '../config.js';
import { ApiError } from '../errors/api-error.js';
import type { GatewayMetrics } from '../metrics.js';
import type { ParsedChat } from '../openai/chat-request.js';
import type { ParsedCompletion } from '../openai/completion-request.js';
import type { ParsedEmbedding } from '../openai/embedding-request.js';
import {
  FINISH_REASON,
  addUsage,
  chatChunk,
  completionChunk,
  toOpenAiToolCall,
  toOpenAiUsage,
  type ResponseIdentity,
} from '../openai/responses.js';
import { WholeCharacterDeltas, type SseWriter } from '../openai/sse.js';
import { generate } from '../workers/generation.js';
import { isRetryable, isWorkerDown, workerErrorToApiError } from '../workers/worker-errors.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import { Exchange, type RequestContext } from './exchange.js';
import { mergeIndexed, primeAll, type EventStream } from './streams.js';

/** How a streamed or collected answer ends: the status and outcome the audit record gets. */
interface Ending {
  status: number;
  outcome: 'success' | 'error' | 'cancelled';
  errorClass: string;
}

const CANCELLED: Ending = { status: 499, outcome: 'cancelled', errorClass: 'client_closed_request' };

/**
 * Runs OpenAI requests on the worker pool: n choices per request as parallel generations, streamed as
 * server-sent events or collected into one response, each request ending in exactly one audit record.
 */
export class InferenceService {
  constructor(
    private readonly pool: WorkerPool,
    private readonly recorder: CompletionRecorder,
    private readonly metrics: GatewayMetrics,
    private readonly config: GatewayConfig,
  ) {}

  async chat(parsed: ParsedChat, ctx: RequestContext, sse: SseWriter | null): Promise<object | void> {
    const exchange = new Exchange(ctx, parsed.model, this.recorder, this.metrics);
    const identity = this.identity(`chatcmpl-${ctx.requestId}`, parsed.model);
    const request = { ...parsed.request, requestId: ctx.requestId };
    const generations = Array.from({ length: parsed.n }, () =>
      generate<ChatResponse>(
        this.pool,
        this.generationOptions(parsed.model, ctx, exchange),
        (client, deadline) => client.chat(request, deadline),
      ),
    );
    const choices = Array.from({ length: parsed.n }, (_, index) => new ChatChoice(index === 0));
    return this.run(exchange, ctx, generations, sse, {
      opening: () =>
        choices.map((_, index) => ({
          index,
          delta: { role: 'assistant', content: '' },
          finish_reason: null,
        })),
      onEvent: (index, event) => choices[index].apply(event, exchange, index, sse !== null),
      chunk: (choiceList, usage) => chatChunk(identity, choiceList, usage),
      collected: () => ({
        id: identity.id,
        object: 'chat.completion',
        created: identity.created,
        model: identity.model,
        system_fingerprint: null,
        choices: choices.map((choice, index) => choice.toChoice(index)),
        usage: toOpenAiUsage(exchange.usage),
      }),
      includeUsage: parsed.includeUsage,
    });
  }

  async completion(
    parsed: ParsedCompletion,
    ctx: RequestContext,
    sse: SseWriter | null,
  ): Promise<object | void> {
    const exchange = new Exchange(ctx, parsed.model, this.recorder, this.metrics);
    const identity = this.identity(`cmpl-${ctx.requestId}`, parsed.model);
    const requests = parsed.requests.flatMap((r) =>
      Array.from({ length: parsed.n }, () => ({ ...r, requestId: ctx.requestId })),
    );
    const generations = requests.map((request) =>
      generate<CompleteResponse>(
        this.pool,
        this.generationOptions(parsed.model, ctx, exchange),
        (client, deadline) => client.complete(request, deadline),
      ),
    );
    // Choice i answers prompt ⌊i/n⌋: the first choice of each prompt counts its prompt tokens.
    const choices = requests.map((_, index) => new TextChoice(index % parsed.n === 0));
    return this.run(exchange, ctx, generations, sse, {
      opening: () => [],
      onEvent: (index, event) => choices[index].apply(event, exchange, index),
      chunk: (choiceList, usage) => completionChunk(identity, choiceList, usage),
      collected: () => ({
        ...completionChunk(
          identity,
          choices.map((choice, index) => choice.toChoice(index)),
        ),
        usage: toOpenAiUsage(exchange.usage),
      }),
      includeUsage: parsed.includeUsage,
    });
  }

  async embed(parsed: ParsedEmbedding, ctx: RequestContext): Promise<object> {
    const exchange = new Exchange(ctx, parsed.model, this.recorder, this.metrics);
    try {
      const response = await this.embedWithRetry(parsed, ctx, exchange);
      exchange.usage.promptTokens = response.promptTokens;
      exchange.onUsage();
      const body = {
        object: 'list',
        model: parsed.model,
        data: response.embeddings.map((e, index) => ({
          object: 'embedding',
          index,
          embedding:
            parsed.encoding === 'base64'
              ? Buffer.from(new Float32Array(e.values).buffer).toString('base64')
              : e.values,
        })),
        usage: { prompt_tokens: response.promptTokens, total_tokens: response.promptTokens },
      };
      exchange.finish(200, 'success', '', body);
      return body;
    } catch (error) {
      const apiError = workerErrorToApiError(error);
      exchange.finish(
        ctx.abort.signal.aborted ? 499 : apiError.status,
        ctx.abort.signal.aborted ? 'cancelled' : 'error',
        apiError.code ?? '',
      );
      throw apiError;
    }
  }

  private async embedWithRetry(
    parsed: ParsedEmbedding,
    ctx: RequestContext,
    exchange: Exchange,
  ): Promise<EmbedResponse> {
    const tried = new Set<string>();
    const deadline = new Date(Date.now() + this.config.requestTimeoutMs);
    let lastError: unknown = null;
    for (let attempt = 1; ; attempt++) {
      const lease = await this.pool.acquire(parsed.model, tried, ctx.abort.signal).catch((error: unknown) => {
        throw lastError === null ? error : workerErrorToApiError(lastError);
      });
      tried.add(lease.worker.address);
      exchange.onWorker(lease.worker.address);
      try {
        return await lease.worker.client.embed(
          { ...parsed.request, requestId: ctx.requestId },
          deadline,
          ctx.abort.signal,
        );
      } catch (error) {
        if (isWorkerDown(error)) this.pool.markFailed(lease.worker);
        if (!isRetryable(error) || attempt >= this.config.workerAttempts || ctx.abort.signal.aborted)
          throw error;
        lastError = error;
      } finally {
        lease.release();
      }
    }
  }

  /** The shared loop: prime, then stream chunks (SSE) or collect, and end with one audit record. */
  private async run<E>(
    exchange: Exchange,
    ctx: RequestContext,
    generations: AsyncGenerator<E>[],
    sse: SseWriter | null,
    shape: {
      opening: () => unknown[];
      onEvent: (index: number, event: E) => unknown;
      chunk: (choices: unknown[], usage?: ReturnType<typeof toOpenAiUsage> | null) => object;
      collected: () => object;
      includeUsage: boolean;
    },
  ): Promise<object | void> {
    let primed: EventStream<E>[];
    try {
      primed = await primeAll(generations, ctx.abort);
    } catch (error) {
      const apiError = workerErrorToApiError(error);
      this.end(exchange, ctx, { status: apiError.status, outcome: 'error', errorClass: apiError.code ?? '' });
      throw apiError;
    }
    let ending: Ending = { status: 200, outcome: 'success', errorClass: '' };
    let responseBody: unknown;
    try {
      if (sse) sse.open(ctx.authorization.rateLimitHeaders);
      if (sse) {
        const opening = shape.opening();
        if (opening.length > 0) await sse.send(shape.chunk(opening));
      }
      for await (const [index, event] of mergeIndexed(primed, ctx.abort)) {
        const choice = shape.onEvent(index, event);
        if (sse && choice) await sse.send(shape.chunk([choice]));
        if (sse?.closed) break;
      }
      if (ctx.clientGone() || sse?.closed) {
        ending = CANCELLED;
        return;
      }
      if (!sse) {
        const body = shape.collected();
        responseBody = body;
        return body;
      }
      responseBody = shape.collected();
      if (shape.includeUsage) await sse.send(shape.chunk([], toOpenAiUsage(exchange.usage)));
      await sse.done();
    } catch (error) {
      if (ctx.clientGone() || sse?.closed) {
        ending = CANCELLED;
        return;
      }
      const apiError = workerErrorToApiError(error);
      ending = { status: apiError.status, outcome: 'error', errorClass: apiError.code ?? '' };
      if (!sse) throw apiError;
      // Mid-stream failure: a final error event the SDKs raise, instead of a silently cut stream.
      await sse.send(apiError.toBody());
      sse.end();
    } finally {
      this.end(exchange, ctx, ending, responseBody);
      sse?.end();
    }
  }

  private end(exchange: Exchange, ctx: RequestContext, ending: Ending, responseBody?: unknown): void {
    exchange.finish(
      ending.status,
      ctx.clientGone() ? 'cancelled' : ending.outcome,
      ending.errorClass,
      responseBody,
    );
  }

  private generationOptions(model: string, ctx: RequestContext, exchange: Exchange) {
    return {
      model,
      signal: ctx.abort.signal,
      attempts: this.config.workerAttempts,
      requestTimeoutMs: this.config.requestTimeoutMs,
      idleTimeoutMs: this.config.idleTimeoutMs,
      onWorker: exchange.onWorker,
    };
  }

  private identity(id: string, model: string): ResponseIdentity {
    return { id, created: Math.floor(Date.now() / 1000), model };
  }
}

/** One chat choice: turns worker events into stream deltas and keeps the collected message. */
class ChatChoice {
  constructor(private readonly countsPrompt: boolean) {}

  private content = '';
  private reasoning = '';
  private readonly toolCalls: ToolCall[] = [];
  private finish: Finish | null = null;
  private readonly text = new WholeCharacterDeltas();
  private readonly thoughts = new WholeCharacterDeltas();

  apply(event: ChatResponse, exchange: Exchange, index: number, streaming: boolean): object | null {
    switch (event.event) {
      case 'textDelta': {
        exchange.onToken();
        const piece = this.text.push(event.textDelta);
        this.content += piece;
        return streaming && piece ? { index, delta: { content: piece }, finish_reason: null } : null;
      }
      case 'reasoningDelta': {
        exchange.onToken();
        const piece = this.thoughts.push(event.reasoningDelta);
        this.reasoning += piece;
        return streaming && piece
          ? { index, delta: { reasoning_content: piece }, finish_reason: null }
          : null;
      }
      case 'toolCall': {
        exchange.onToken();
        this.toolCalls.push(event.toolCall);
        const call = { index: this.toolCalls.length - 1, ...toOpenAiToolCall(event.toolCall) };
        return streaming ? { index, delta: { tool_calls: [call] }, finish_reason: null } : null;
      }
      case 'finish': {
        this.finish = event.finish;
        addUsage(exchange.usage, event.finish.usage, this.countsPrompt);
        exchange.onUsage();
        const rest = this.text.flush();
        this.content += rest;
        return { index, delta: rest ? { content: rest } : {}, finish_reason: this.finishReason() };
      }
    }
  }

  toChoice(index: number) {
    return {
      index,
      message: {
        role: 'assistant',
        content: this.content.length > 0 || this.toolCalls.length === 0 ? this.content : null,
        refusal: null,
        ...(this.reasoning ? { reasoning_content: this.reasoning } : {}),
        ...(this.toolCalls.length > 0 ? { tool_calls: this.toolCalls.map(toOpenAiToolCall) } : {}),
      },
      logprobs: null,
      finish_reason: this.finishReason(),
    };
  }

  private finishReason() {
    if (!this.finish) throw ApiError.internal('The worker ended the generation without a result.');
    if (this.toolCalls.length > 0) return 'tool_calls' as const;
    return FINISH_REASON[this.finish.finishReason];
  }
}

/** One legacy-completion choice. */
class TextChoice {
  constructor(private readonly countsPrompt: boolean) {}

  private text = '';
  private finish: Finish | null = null;
  private readonly deltas = new WholeCharacterDeltas();

  apply(event: CompleteResponse, exchange: Exchange, index: number): object | null {
    if (event.event === 'textDelta') {
      exchange.onToken();
      const piece = this.deltas.push(event.textDelta);
      this.text += piece;
      return piece ? { index, text: piece, logprobs: null, finish_reason: null } : null;
    }
    this.finish = event.finish;
    addUsage(exchange.usage, event.finish.usage, this.countsPrompt);
    exchange.onUsage();
    const rest = this.deltas.flush();
    this.text += rest;
    return { index, text: rest, logprobs: null, finish_reason: FINISH_REASON[event.finish.finishReason] };
  }

  toChoice(index: number) {
    if (!this.finish) throw ApiError.internal('The worker ended the generation without a result.');
    return { index, text: this.text, logprobs: null, finish_reason: FINISH_REASON[this.finish.finishReason] };
  }
}
